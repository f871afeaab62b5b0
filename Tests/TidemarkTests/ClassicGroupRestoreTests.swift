import TestSupport
import Testing
import TidemarkStorage

@testable import Tidemark

/// Classic groups brought back from their membership records when the broker restarts
/// (`ClassicGroup.init(restoring:)`, `GroupCoordinator.restoreGroups`), as Kafka loads them
/// from `__consumer_offsets`: running members go on with their ids and generation.
@Suite struct ClassicGroupRestoreTests {
    static func join(_ broker: Broker, _ member: String = "", instance: String? = nil, session: Int32) async -> JoinGroupResponse {
        await broker.groups.join(
            JoinGroupRequest(
                groupId: "orders", memberId: member, groupInstanceId: instance, clientId: "worker", clientHost: "/10.0.0.1",
                sessionTimeoutMs: session, rebalanceTimeoutMs: 5_000, protocolType: "consumer",
                protocols: [("range", ConsumerProtocol.encodeSubscription(topics: ["t"])), ("roundrobin", [9])]))
    }

    /// A Stable group of a static member ("pod-1", 30 s sessions) and a dynamic one (10 s).
    static func stableGroup(_ broker: Broker) async throws -> (a: String, b: String, generation: Int32) {
        let a = await join(broker, instance: "pod-1", session: 30_000)
        async let second = join(broker, session: 10_000)
        try await Task.sleep(for: .milliseconds(50))
        async let rejoin = join(broker, a.memberId, instance: "pod-1", session: 30_000)
        let (b, a2) = await (second, rejoin)
        #expect(a2.generationId == b.generationId && b.error == nil)
        let leader = a2.leaderId == a.memberId ? a.memberId : b.memberId
        let follower = leader == a.memberId ? b.memberId : a.memberId
        async let followerSync = broker.groups.sync(
            groupId: "orders", memberId: follower, groupInstanceId: follower == a.memberId ? "pod-1" : nil, generationId: b.generationId,
            assignments: nil)
        let leaderSync = await broker.groups.sync(
            groupId: "orders", memberId: leader, groupInstanceId: leader == a.memberId ? "pod-1" : nil, generationId: b.generationId,
            assignments: [a.memberId: [0xA], b.memberId: [0xB]])
        #expect(leaderSync.error == nil)
        #expect(await followerSync.error == nil)
        return (a.memberId, b.memberId, b.generationId)
    }

    /// After a restart the group is Stable at its generation with both members and their
    /// assignments: a heartbeat and a commit with the old ids succeed (they got
    /// UNKNOWN_MEMBER_ID, and kafka-python and aiokafka raised CommitFailedError), the static
    /// member's restarted instance takes its place without a rebalance, and a member that
    /// never comes back expires with its session.
    @Test func membersGoOnAcrossARestart() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        let opts = options(clock: clock, maintenanceMs: 3_600_000)
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 2)
        let (a, b, generation) = try await Self.stableGroup(broker)
        let records = try await GroupMembershipRecordTests.waitForRecords(broker, count: 1)
        let written = try #require(records.last?.1)
        #expect(written.members.map(\.groupInstanceId).sorted { ($0 ?? "") < ($1 ?? "") } == [nil, "pod-1"])
        #expect(written.currentStateTimestampMs == clock.read())
        try await broker.close()

        clock.advance(5_000)
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        let described = broker.groups.describeGroup("orders")
        #expect(described.state == .stable && described.generationId == generation && described.protocolName == "range")
        #expect(Set(described.members.map(\.memberId)) == [a, b])
        #expect(described.members.first { $0.memberId == a }?.groupInstanceId == "pod-1")
        #expect(described.members.first { $0.memberId == b }?.assignment == [0xB])
        #expect(described.members.first { $0.memberId == b }?.metadata == ConsumerProtocol.encodeSubscription(topics: ["t"]))
        #expect(broker.groups.listGroups().first { $0.groupId == "orders" }?.state == "Stable")
        #expect(broker.groups.heartbeat(groupId: "orders", memberId: b, generationId: generation) == nil)
        #expect(
            try await broker.groups.commitOffsets(
                groupId: "orders", memberId: b, generationId: generation, offsets: [TopicPartition("t", 1): CommittedOffset(offset: 3)]) == nil)
        // A restored generation is not written again (its record is the one read back).
        #expect(await broker.groups.sync(groupId: "orders", memberId: b, generationId: generation, assignments: nil).assignment == [0xB])
        await broker.groups.tick()
        try await Task.sleep(for: .milliseconds(100))
        #expect(try GroupMembershipRecordTests.records(broker).count == records.count)

        // The static member's instance restarts: its place, the same generation, its assignment,
        // answered once the record naming its new member id is in the log (a restart reading
        // the old one back would fence the running instance).
        let back = await Self.join(broker, instance: "pod-1", session: 30_000)
        #expect(back.error == nil && back.memberId != a && back.generationId == generation)
        #expect(try GroupMembershipRecordTests.records(broker).last?.1?.members.contains { $0.memberId == back.memberId } == true)
        let synced = await broker.groups.sync(
            groupId: "orders", memberId: back.memberId, groupInstanceId: "pod-1", generationId: generation, assignments: nil)
        #expect(synced.error == nil && synced.assignment == [0xA])
        #expect(broker.groups.heartbeat(groupId: "orders", memberId: a, groupInstanceId: "pod-1", generationId: generation) == .fencedInstanceId)
        // The replacement is written (tools see the new member id), in the same generation.
        let replaced = try #require(try await GroupMembershipRecordTests.waitForRecords(broker, count: records.count + 1).last?.1)
        #expect(replaced.generation == generation && Set(replaced.members.map(\.memberId)) == [back.memberId, b])

        // b never heartbeats again: its 10 s session runs out from the restart, and the group
        // rebalances; the static member is told to rejoin.
        clock.advance(9_000)
        #expect(broker.groups.heartbeat(groupId: "orders", memberId: back.memberId, groupInstanceId: "pod-1", generationId: generation) == nil)
        await broker.groups.tick()
        #expect(broker.groups.describeGroup("orders").members.count == 2)
        clock.advance(2_000)
        let log = CapturedLog()
        await broker.groups.tick(logger: log.logger)
        #expect(broker.groups.describeGroup("orders").members.map(\.memberId) == [back.memberId])
        // Said in the log, as a join's rebalance is (it was silent).
        #expect(log.matching("group members removed").contains { $0.metadata["members"]?.contains(b) == true })
        #expect(
            broker.groups.heartbeat(groupId: "orders", memberId: back.memberId, groupInstanceId: "pod-1", generationId: generation)
                == .rebalanceInProgress)
        // Rebalancing: described without metadata or a protocol, with the assignment it holds,
        // as Kafka 4 describes a group outside Stable.
        let rebalancing = broker.groups.describeGroup("orders")
        #expect(rebalancing.state == .preparingRebalance && rebalancing.protocolName.isEmpty && rebalancing.members.count == 1)
        #expect(rebalancing.members.allSatisfy { $0.assignment == [0xA] && $0.metadata.isEmpty })
        let rejoined = await Self.join(broker, back.memberId, instance: "pod-1", session: 30_000)
        #expect(rejoined.error == nil && rejoined.generationId == generation + 1, "numbering goes on from the restored generation")
        try await broker.close()
    }

    /// What cannot be a group with members starts empty, as every group did before: an Empty
    /// record, a record written without subscriptions (too large to write whole: its
    /// assignments are gone too), one whose members were all in the broker's process (no
    /// client host), groups with more than `classicGroupMaxSize` members or past
    /// `GroupOptions.membersMaxBytes` (by name). A group with members in the process and
    /// others comes back with the others, told to rejoin.
    @Test func whatCannotBeAStableGroupStartsEmpty() async throws {
        let dir = TemporaryDirectory()
        var opts = options(maintenanceMs: 3_600_000)
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        let member = GroupMembershipRecord.Member(
            memberId: "m1", clientId: "c", clientHost: "/1.2.3.4", rebalanceTimeoutMs: 300_000, sessionTimeoutMs: 10_000,
            subscription: [1, 2], assignment: [3])
        var stripped = member
        stripped.subscription = []
        stripped.assignment = []
        let stable = GroupMembershipRecord(protocolType: "consumer", generation: 4, protocolName: "range", leader: "m1", members: [member])
        try await broker.groups.store.recordMembership(group: "a-stable", stable)
        try await broker.groups.store.recordMembership(group: "b-stable", stable)
        try await broker.groups.store.recordMembership(
            group: "c-empty", GroupMembershipRecord(protocolType: "consumer", generation: 5, protocolName: nil, leader: nil, members: []))
        try await broker.groups.store.recordMembership(
            group: "d-stripped", GroupMembershipRecord(protocolType: "consumer", generation: 6, protocolName: "range", leader: "m1", members: [stripped]))
        var inProcess = member
        inProcess.memberId = "embedded"
        inProcess.clientHost = ""
        try await broker.groups.store.recordMembership(
            group: "e-embedded", GroupMembershipRecord(protocolType: "consumer", generation: 7, protocolName: "range", leader: "embedded", members: [inProcess]))
        try await broker.groups.store.recordMembership(
            group: "f-mixed",
            GroupMembershipRecord(protocolType: "consumer", generation: 8, protocolName: "range", leader: "embedded", members: [inProcess, member]))
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(broker.groups.describeGroup("a-stable").members.map(\.memberId) == ["m1"])
        #expect(broker.groups.describeGroup("b-stable").generationId == 4)
        #expect(broker.groups.describeGroup("c-empty").state == .dead, "no offsets, no members: not a group")
        #expect(broker.groups.describeGroup("d-stripped").state == .dead)
        #expect(broker.groups.heartbeat(groupId: "d-stripped", memberId: "m1", generationId: 6) == .unknownMemberId)
        #expect(broker.groups.describeGroup("e-embedded").state == .dead)
        let mixed = broker.groups.describeGroup("f-mixed")
        #expect(mixed.state == .preparingRebalance && mixed.generationId == 8 && mixed.members.map(\.memberId) == ["m1"])
        #expect(broker.groups.heartbeat(groupId: "f-mixed", memberId: "m1", generationId: 8) == .rebalanceInProgress)

        var second = member
        second.memberId = "m2"
        try await broker.groups.store.recordMembership(
            group: "g-pair", GroupMembershipRecord(protocolType: "consumer", generation: 2, protocolName: "range", leader: "m1", members: [member, second]))
        try await broker.close()

        // Fewer members allowed in a group than it has: it starts empty.
        opts.groups.classicGroupMaxSize = 1
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(broker.groups.describeGroup("a-stable").state == .stable)
        #expect(broker.groups.describeGroup("g-pair").state == .dead)
        #expect(broker.groups.describeGroup("f-mixed").state == .preparingRebalance, "one member once the embedded one is left out")
        try await broker.close()
        opts.groups.classicGroupMaxSize = 1_000

        // Room for one group: the first by name.
        let one = ClassicGroup(restoring: stable, groupId: "a-stable", options: opts.groups, nowMs: 0)!.memberBytes
        opts.groups.membersMaxBytes = one + 100
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(broker.groups.describeGroup("a-stable").state == .stable)
        #expect(broker.groups.describeGroup("b-stable").state == .dead)
        try await broker.close()
    }

    /// A group known only by its offsets and the records the log keeps is listed with the
    /// protocol type its last members had; one that never had members (offsets committed by a
    /// tool, or by a consumer that assigns its own partitions) with none, as Kafka lists it: a
    /// "simple" group to admin clients (it was listed as "consumer").
    @Test func groupsKnownByTheirOffsetsAreListedWithTheirProtocolType() async throws {
        let dir = TemporaryDirectory()
        let opts = options(maintenanceMs: 3_600_000)
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 1)
        for (group, protocolType) in [("c-empty", "consumer"), ("k-connect", "connect")] {
            try await broker.groups.store.recordMembership(
                group: group, GroupMembershipRecord(protocolType: protocolType, generation: 5, protocolName: nil, leader: nil, members: []))
        }
        for group in ["c-empty", "k-connect", "s-simple"] {
            #expect(try await broker.groups.commitOffsets(groupId: group, offsets: [TopicPartition("t", 0): CommittedOffset(offset: 1)]) == nil)
        }
        func listed() -> [String: String] {
            Dictionary(uniqueKeysWithValues: broker.groups.listGroups().map { ($0.groupId, $0.protocolType) })
        }
        #expect(listed() == ["c-empty": "consumer", "k-connect": "connect", "s-simple": ""])
        try await broker.close()
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(listed() == ["c-empty": "consumer", "k-connect": "connect", "s-simple": ""])
        try await broker.close()
    }

    /// The state machine restores what the record holds, and keeps what the record cannot
    /// say straight: a leader that is not a member, a member id or instance id twice, and a
    /// version 0 record's missing rebalance timeout (the session timeout, as in Kafka).
    @Test func aRecordsOddsAreMadeSafe() throws {
        func member(_ id: String, instance: String? = nil) -> GroupMembershipRecord.Member {
            .init(
                memberId: id, groupInstanceId: instance, clientId: "c", clientHost: "h", rebalanceTimeoutMs: -1, sessionTimeoutMs: 7_000,
                subscription: [1], assignment: [2])
        }
        let record = GroupMembershipRecord(
            protocolType: "consumer", generation: 9, protocolName: "range", leader: "gone",
            members: [member("m1", instance: "i"), member("m1"), member("m2", instance: "i")])
        let group = try #require(ClassicGroup(restoring: record, groupId: "g", options: GroupStateMachineTests.options(), nowMs: 100))
        #expect(group.state == .stable && group.generationId == 9 && group.memberOrder == ["m1", "m2"] && group.leaderId == "m1")
        #expect(group.staticMembers == ["i": "m1"] && group.members["m2"]?.groupInstanceId == nil)
        #expect(group.members["m1"]?.rebalanceTimeoutMs == 7_000 && group.members["m1"]?.lastHeartbeatMs == 100)
        #expect(group.nextDueMs == 7_101)
        var empty = record
        empty.protocolType = ""
        #expect(ClassicGroup(restoring: empty, groupId: "g", options: GroupStateMachineTests.options(), nowMs: 0) == nil)
    }

    /// An embedded consumer ends with the broker's process: a broker closed (or killed) while
    /// one was in a group does not bring it back, and the next one is not kept waiting for its
    /// session to run out.
    @Test func embeddedConsumersEndWithTheProcess() async throws {
        let dir = TemporaryDirectory()
        let opts = options(maintenanceMs: 50)
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 1)
        _ = try await Producer(broker: broker).send(topic: "t", key: nil, value: bytes("job"), partition: 0)
        var memberOptions = GroupConsumerOptions()
        memberOptions.sessionTimeoutMs = 60_000
        memberOptions.rebalanceTimeoutMs = 60_000
        let consumer = GroupConsumer(broker: broker, groupId: "embedded", topics: ["t"], options: memberOptions)
        #expect(try await consumer.poll(maxWaitMs: 5_000).count == 1)
        #expect(try await GroupMembershipRecordTests.waitForRecords(broker, count: 1).last?.1?.members.count == 1)
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(broker.groups.describeGroup("embedded").members.isEmpty)
        let next = GroupConsumer(broker: broker, groupId: "embedded", topics: ["t"], options: memberOptions)
        let started = ContinuousClock.now
        _ = try await next.poll(maxWaitMs: 100)
        #expect(ContinuousClock.now - started < .seconds(20), "not held by the old member's 60 s session")
        await next.close()
        try await broker.close()
    }
}

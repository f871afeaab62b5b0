import Foundation
import TestSupport
import Testing
import TidemarkStorage

@testable import Tidemark

/// Classic groups' membership in `__consumer_offsets`, in Kafka's GroupMetadata layouts, for
/// the tools that read that topic (Burrow's owners and client ids).
@Suite struct GroupMembershipRecordTests {
    static let member = GroupMembershipRecord.Member(
        memberId: "m1", clientId: "c", clientHost: "/1.2.3.4", rebalanceTimeoutMs: 300_000, sessionTimeoutMs: 10_000,
        subscription: [1, 2], assignment: [3])

    /// Byte for byte: GroupMetadataKey v2 and GroupMetadataValue v1 (v3 with static members).
    @Test func layoutIsKafkasGroupMetadata() {
        #expect(GroupMembershipRecord.encodeKey(group: "g") == [0, 2, 0, 1, 0x67])
        #expect(GroupMembershipRecord.decodeKey([0, 2, 0, 1, 0x67]) == "g")
        #expect(GroupMembershipRecord.decodeKey(OffsetStore.encodeKey(.init(group: "g", topicPartition: TopicPartition("t", 0)))) == nil)

        let record = GroupMembershipRecord(protocolType: "consumer", generation: 3, protocolName: "range", leader: "m1", members: [Self.member])
        let expected: [UInt8] =
            [0, 1]  // value version
            + [0, 8] + Array("consumer".utf8) + [0, 0, 0, 3]  // protocol type, generation
            + [0, 5] + Array("range".utf8) + [0, 2] + Array("m1".utf8)  // protocol, leader
            + [0, 0, 0, 1]  // one member
            + [0, 2] + Array("m1".utf8) + [0, 1] + Array("c".utf8) + [0, 8] + Array("/1.2.3.4".utf8)
            + [0, 4, 0x93, 0xE0] + [0, 0, 0x27, 0x10]  // rebalance 300,000 ms, session 10,000 ms
            + [0, 0, 0, 2, 1, 2] + [0, 0, 0, 1, 3]  // subscription, assignment
        #expect(record.encodeValue() == expected)
        #expect(GroupMembershipRecord.decodeValue(expected) == record)

        // A static member: version 3, with the state's timestamp and the member's instance id.
        var withStatic = record
        withStatic.members[0].groupInstanceId = "pod-1"
        withStatic.currentStateTimestampMs = 0x0102_0304_0506_0708
        let v3: [UInt8] =
            [0, 3]  // value version
            + [0, 8] + Array("consumer".utf8) + [0, 0, 0, 3]
            + [0, 5] + Array("range".utf8) + [0, 2] + Array("m1".utf8)
            + [1, 2, 3, 4, 5, 6, 7, 8]  // currentStateTimestamp
            + [0, 0, 0, 1]
            + [0, 2] + Array("m1".utf8) + [0, 5] + Array("pod-1".utf8)  // member id, instance id
            + [0, 1] + Array("c".utf8) + [0, 8] + Array("/1.2.3.4".utf8)
            + [0, 4, 0x93, 0xE0] + [0, 0, 0x27, 0x10]
            + [0, 0, 0, 2, 1, 2] + [0, 0, 0, 1, 3]
        #expect(withStatic.encodeValue() == v3)
        #expect(GroupMembershipRecord.decodeValue(v3) == withStatic)
        // Version 2 (a timestamp, no instance ids) is read too; version 4 (flexible) is not.
        var v2 = v3
        v2[1] = 2
        v2.removeSubrange(v2.count - 39..<v2.count - 32)  // the instance id (32 bytes follow it)
        var asV2 = withStatic
        asV2.members[0].groupInstanceId = nil
        #expect(GroupMembershipRecord.decodeValue(v2) == asV2)
        var v4 = v3
        v4[1] = 4
        #expect(GroupMembershipRecord.decodeValue(v4) == nil)

        // Empty: no members, null protocol and leader.
        let empty = GroupMembershipRecord(protocolType: "consumer", generation: 4, protocolName: nil, leader: nil, members: [])
        #expect(empty.encodeValue() == [0, 1, 0, 8] + Array("consumer".utf8) + [0, 0, 0, 4, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0])
        #expect(GroupMembershipRecord.decodeValue(empty.encodeValue()) == empty)

        // A protocol name longer than an i16 string can hold is cut between characters.
        let long = GroupMembershipRecord(
            protocolType: "consumer", generation: 1, protocolName: String(repeating: "é", count: 20_000), leader: nil, members: [])
        let decoded = GroupMembershipRecord.decodeValue(long.encodeValue())
        #expect(decoded?.protocolName == String(repeating: "é", count: 16_383))
    }

    /// The membership records in the offsets log, oldest first: (group, record; nil for a tombstone).
    static func records(_ broker: Broker) throws -> [(String, GroupMembershipRecord?)] {
        let log = broker.groups.store.partition.log
        var found: [(String, GroupMembershipRecord?)] = []
        var offset = log.logStartOffset
        while offset < log.logEndOffset {
            let batches = try log.readBatches(from: offset, maxBytes: 64 << 20)  // one segment at most
            guard let last = batches.last else { break }
            for record in batches.flatMap(\.records) {
                guard let group = GroupMembershipRecord.decodeKey(record.key) else { continue }
                found.append((group, record.value.flatMap(GroupMembershipRecord.decodeValue)))
            }
            offset = last.header.nextOffset
        }
        return found
    }

    /// (Up to 20 s: the records are written by tasks, and suites that block cooperative
    /// threads in raw socket reads run beside this one.)
    static func waitForRecords(_ broker: Broker, count: Int) async throws -> [(String, GroupMembershipRecord?)] {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let found = try records(broker)
            if found.count >= count { return found }
            try await Task.sleep(for: .milliseconds(10))
        }
        return try records(broker)
    }

    /// Waits (up to 20 s) until the groups' records say whether each has members: the writer
    /// writes a group's newest record, so a Stable record still waiting when the group became
    /// Empty is never written.
    static func waitForMemberships(_ broker: Broker, _ members: [String: Bool]) async throws -> Bool {
        func written() -> Bool {
            broker.groups.store.memberships.withLock { recorded in
                members.allSatisfy { group, has in recorded[group].map { $0.hasMembers(group: group) == has } ?? false }
            }
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while !written() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        return written()
    }

    /// A member's rebalance (Stable after the leader's sync) and its leave (Empty) each write
    /// a record naming the generation; compaction keeps the latest, and so does a restart.
    @Test func rebalancesAreRecordedAndKeptThroughCompactionAndRestart() async throws {
        let dir = TemporaryDirectory()
        var opts = options(maintenanceMs: 3_600_000)
        opts.groups.offsetsCompactionBytes = 1
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 2)
        let joined = await broker.groups.join(
            JoinGroupRequest(
                groupId: "billing", clientId: "worker-7", clientHost: "/10.0.0.7", sessionTimeoutMs: 10_000,
                rebalanceTimeoutMs: 20_000, protocolType: "consumer",
                protocols: [("range", ConsumerProtocol.encodeSubscription(topics: ["t"]))]))
        #expect(joined.error == nil && joined.generationId == 1)
        let assignment = ConsumerProtocol.encodeAssignment([TopicPartition("t", 0), TopicPartition("t", 1)])
        let synced = await broker.groups.sync(
            groupId: "billing", memberId: joined.memberId, generationId: 1, assignments: [joined.memberId: assignment])
        #expect(synced.error == nil)

        var found = try await Self.waitForRecords(broker, count: 1)
        #expect(found.count == 1 && found[0].0 == "billing")
        let stable = try #require(found[0].1)
        #expect(stable.generation == 1 && stable.protocolType == "consumer" && stable.protocolName == "range")
        #expect(stable.leader == joined.memberId)
        #expect(stable.members.map(\.clientHost) == ["/10.0.0.7"] && stable.members.map(\.clientId) == ["worker-7"])
        #expect(stable.members.first?.assignment == assignment && stable.members.first?.rebalanceTimeoutMs == 20_000)

        broker.groups.leave(groupId: "billing", memberIds: [joined.memberId])
        found = try await Self.waitForRecords(broker, count: 2)
        let empty = GroupMembershipRecord(protocolType: "consumer", generation: 2, protocolName: nil, leader: nil, members: [])
        #expect(found.count == 2 && found[1].1 == empty)

        // Enough commits (of another group) for compaction to run: it keeps the latest record.
        for offset in 1...20 {
            #expect(try await broker.groups.commitOffsets(groupId: "other", offsets: [TopicPartition("t", 0): CommittedOffset(offset: Int64(offset))]) == nil)
        }
        let before = broker.groups.store.partition.log.logStartOffset
        try await broker.groups.store.compactIfNeeded()
        #expect(broker.groups.store.partition.log.logStartOffset > before)
        #expect(try Self.records(broker).map(\.1) == [empty])
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(broker.groups.store.memberships.withLock { $0["billing"]?.classicValue(group: "billing") } == empty.encodeValue())
        try await broker.close()
    }

    /// Members with metadata too large for one record are written without their subscriptions
    /// and assignments; a record too large even so is refused, and nothing is written.
    @Test func oversizedMembershipIsReduced() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        var big = Self.member
        big.subscription = [UInt8](repeating: 7, count: 600_000)
        let record = GroupMembershipRecord(protocolType: "consumer", generation: 1, protocolName: "range", leader: "m1", members: [big, big])
        try await broker.groups.store.recordMembership(group: "wide", record)
        let written = try #require(try Self.records(broker).last?.1)
        #expect(written.members.count == 2 && written.members.allSatisfy { $0.subscription.isEmpty && $0.assignment.isEmpty })
        #expect(written.members.map(\.clientHost) == ["/1.2.3.4", "/1.2.3.4"])

        var many = record
        many.members = Array(repeating: Self.member, count: 40_000)
        await #expect(throws: TidemarkError.self) { try await broker.groups.store.recordMembership(group: "many", many) }
        #expect(try Self.records(broker).count == 1)
        try await broker.close()
    }

    /// When a group's committed offsets expire, its membership record goes with them; an
    /// Empty group that never committed loses its record at the next check (as Kafka deletes
    /// such a group), while one with members keeps it.
    @Test func expiredGroupsLoseTheirMembershipRecord() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        var opts = options(clock: clock, maintenanceMs: 3_600_000)
        opts.groups.offsetsRetentionCheckIntervalMs = 1000
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 1)
        let joined = await broker.groups.join(
            JoinGroupRequest(
                groupId: "old", clientId: "c", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, protocolType: "consumer",
                protocols: [("range", [])]))
        _ = await broker.groups.sync(groupId: "old", memberId: joined.memberId, generationId: 1, assignments: [joined.memberId: []])
        #expect(try await broker.groups.commitOffsets(
            groupId: "old", memberId: joined.memberId, generationId: 1, offsets: [TopicPartition("t", 0): CommittedOffset(offset: 1)]) == nil)
        broker.groups.leave(groupId: "old", memberIds: [joined.memberId])
        // Two groups that never commit: one is left Empty, the other keeps its member.
        for group in ["gone", "busy"] {
            let member = await broker.groups.join(
                JoinGroupRequest(
                    groupId: group, clientId: "c", sessionTimeoutMs: 30_000, rebalanceTimeoutMs: 10_000,
                    protocolType: "consumer", protocols: [("range", [])]))
            _ = await broker.groups.sync(groupId: group, memberId: member.memberId, generationId: 1, assignments: [member.memberId: []])
            if group == "gone" { broker.groups.leave(groupId: group, memberIds: [member.memberId]) }
        }
        #expect(try await Self.waitForMemberships(broker, ["old": false, "gone": false, "busy": true]))
        let written = try Self.records(broker).count

        // The first check (one interval after the start): only the Empty group without
        // offsets loses its record.
        await broker.groups.tick()
        #expect(try Self.records(broker).count == written, "no check at the start")
        clock.advance(1001)
        await broker.groups.tick()
        var found = try Self.records(broker)
        #expect(found.count == written + 1 && found.last?.0 == "gone" && found.last?.1 == nil, "\(found)")
        #expect(broker.groups.store.memberships.withLock { Set($0.keys) } == ["old", "busy"])

        // A week later "old"'s offsets expire, and its record with them.
        clock.advance(8 * 24 * 3_600_000)
        await broker.groups.tick()
        #expect(broker.groups.fetchOffsets(groupId: "old").isEmpty)
        found = try Self.records(broker)
        #expect(found.contains { $0.0 == "old" && $0.1 == nil }, "\(found)")
        #expect(broker.groups.store.memberships.withLock { $0["old"] } == nil)
        try await broker.close()
    }

    /// Offsets of a group that uses group management expire offsets.retention after the
    /// group became empty, not after its newest commit: a consumer reading a quiet topic
    /// commits nothing new for days. When it became empty survives a restart and compaction;
    /// a group that had members when the broker stopped counts as empty from the restart.
    @Test func offsetsExpireCountingFromWhenTheGroupBecameEmpty() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        let day: Int64 = 24 * 3_600_000
        var opts = options(clock: clock, maintenanceMs: 3_600_000)
        opts.groups.offsetsRetentionCheckIntervalMs = 1000
        opts.groups.offsetsCompactionBytes = 1
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 1)
        func joinAndCommit(_ group: String) async throws -> String {
            let joined = await broker.groups.join(
                JoinGroupRequest(
                    groupId: group, clientId: "c", sessionTimeoutMs: 45_000, rebalanceTimeoutMs: 10_000, protocolType: "consumer",
                    protocols: [("range", [])]))
            _ = await broker.groups.sync(groupId: group, memberId: joined.memberId, generationId: joined.generationId, assignments: [joined.memberId: []])
            #expect(try await broker.groups.commitOffsets(
                groupId: group, memberId: joined.memberId, generationId: joined.generationId,
                offsets: [TopicPartition("t", 0): CommittedOffset(offset: 5)]) == nil)
            return joined.memberId
        }
        let quiet = try await joinAndCommit("quiet")  // leaves after 8 days without a commit
        let running = try await joinAndCommit("running")  // still has its member when the broker stops
        #expect(try await broker.groups.commitOffsets(groupId: "simple", offsets: [TopicPartition("t", 0): CommittedOffset(offset: 2)]) == nil)
        #expect(try await Self.waitForRecords(broker, count: 2).count == 2)

        clock.advance(8 * day)
        broker.groups.leave(groupId: "quiet", memberIds: [quiet])
        #expect(try await Self.waitForRecords(broker, count: 3).count == 3)
        clock.advance(1001)
        #expect(broker.groups.heartbeat(groupId: "running", memberId: running, generationId: 1) == nil)
        await broker.groups.tick()
        #expect(broker.groups.fetchOffsets(groupId: "running").count == 1, "active")
        #expect(broker.groups.fetchOffsets(groupId: "quiet").count == 1, "empty for a second only")
        #expect(broker.groups.fetchOffsets(groupId: "simple").isEmpty, "a consumer without group management: its commit's age")

        // Compaction and a restart keep when "quiet" became empty; "running" had its member.
        for offset in 1...20 {
            #expect(try await broker.groups.commitOffsets(groupId: "other", offsets: [TopicPartition("t", 0): CommittedOffset(offset: Int64(offset))]) == nil)
        }
        let before = broker.groups.store.partition.log.logStartOffset
        try await broker.groups.store.compactIfNeeded()
        #expect(broker.groups.store.partition.log.logStartOffset > before)
        try await broker.close()
        clock.advance(day)
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        clock.advance(1001)
        await broker.groups.tick()
        #expect(broker.groups.fetchOffsets(groupId: "quiet").count == 1)
        #expect(broker.groups.fetchOffsets(groupId: "running").count == 1, "had members when the broker stopped")

        // Seven days after "quiet" became empty its offsets go; "running" counts from the restart.
        clock.advance(6 * day)
        await broker.groups.tick()
        #expect(broker.groups.fetchOffsets(groupId: "quiet").isEmpty)
        #expect(broker.groups.fetchOffsets(groupId: "running").count == 1)
        clock.advance(day)
        await broker.groups.tick()
        #expect(broker.groups.fetchOffsets(groupId: "running").isEmpty)
        try await broker.close()
    }

    /// As Kafka expires offsets (KIP-496, and Kafka 4's consumer groups): a group with members
    /// keeps the offsets of the topics they subscribe to, and those of a topic none subscribes
    /// to any more expire from their commit (they stayed for as long as the group ran, and with
    /// them the topic's lag, for classic and consumer-protocol groups alike); a
    /// consumer-protocol group without members loses each offset from its commit, not from
    /// when it became empty. A classic group whose subscriptions are not known (its metadata
    /// does not read) keeps them all.
    @Test func offsetsOfTopicsNoMemberSubscribesToExpireFromTheirCommit() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        let day: Int64 = 24 * 3_600_000
        var opts = options(clock: clock, maintenanceMs: 3_600_000)
        opts.groups.offsetsRetentionCheckIntervalMs = 1000
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("a", partitions: 1)
        try await broker.createTopic("b", partitions: 1)
        let both: [TopicPartition: CommittedOffset] = [TopicPartition("a", 0): CommittedOffset(offset: 5), TopicPartition("b", 0): CommittedOffset(offset: 7)]

        func classic(_ group: String, metadata: [UInt8]) async throws -> (String, Int32) {
            let joined = await broker.groups.join(
                JoinGroupRequest(
                    groupId: group, clientId: "c", sessionTimeoutMs: 45_000, rebalanceTimeoutMs: 10_000, protocolType: "consumer",
                    protocols: [("range", metadata)]))
            _ = await broker.groups.sync(groupId: group, memberId: joined.memberId, generationId: joined.generationId, assignments: [joined.memberId: []])
            #expect(try await broker.groups.commitOffsets(groupId: group, memberId: joined.memberId, generationId: joined.generationId, offsets: both) == nil)
            return (joined.memberId, joined.generationId)
        }
        let (reader, generation) = try await classic("classic", metadata: ConsumerProtocol.encodeSubscription(topics: ["a"]))
        let (unread, unreadGeneration) = try await classic("opaque", metadata: [1, 2, 3])
        func modern(_ group: String, epoch: Int32 = 0) -> ConsumerHeartbeatResult {
            broker.consumerGroupHeartbeat(
                ConsumerHeartbeat(
                    groupId: group, memberId: "m-\(group)", memberEpoch: epoch, rebalanceTimeoutMs: 60_000,
                    subscribedTopicNames: epoch == 0 ? ["a"] : nil, clientId: "c"))
        }
        var epochs: [String: Int32] = [:]
        for group in ["modern", "left"] {
            let joined = modern(group)
            #expect(joined.error == nil)
            epochs[group] = joined.memberEpoch
            #expect(try await broker.groups.commitOffsets(groupId: group, memberId: joined.memberId, generationId: joined.memberEpoch, offsets: both) == nil)
        }

        // "left" leaves three days after its commit; everyone else stays.
        clock.advance(3 * day)
        #expect(modern("left", epoch: -1).error == nil)  // (a leave)
        clock.advance(4 * day + 2000)
        #expect(broker.groups.heartbeat(groupId: "classic", memberId: reader, generationId: generation) == nil)
        #expect(broker.groups.heartbeat(groupId: "opaque", memberId: unread, generationId: unreadGeneration) == nil)
        #expect(modern("modern", epoch: epochs["modern"] ?? 0).error == nil)
        await broker.groups.tick()
        #expect(Set(broker.groups.fetchOffsets(groupId: "classic").keys) == [TopicPartition("a", 0)])
        #expect(Set(broker.groups.fetchOffsets(groupId: "modern").keys) == [TopicPartition("a", 0)])
        #expect(broker.groups.fetchOffsets(groupId: "opaque").count == 2)
        #expect(broker.groups.fetchOffsets(groupId: "left").isEmpty, "seven days after its commits, four after it emptied")
        try await broker.close()
    }

    /// The first expiry check comes one interval after the start, so consumers that were
    /// running before a restart have rejoined by then.
    @Test func noOffsetsExpireAtTheStart() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        let opts = options(clock: clock, maintenanceMs: 3_600_000)
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 1)
        #expect(try await broker.groups.commitOffsets(groupId: "g", offsets: [TopicPartition("t", 0): CommittedOffset(offset: 2)]) == nil)
        try await broker.close()
        clock.advance(8 * 24 * 3_600_000)
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        await broker.groups.tick()
        #expect(broker.groups.fetchOffsets(groupId: "g").count == 1)
        clock.advance(opts.groups.offsetsRetentionCheckIntervalMs)
        await broker.groups.tick()
        #expect(broker.groups.fetchOffsets(groupId: "g").isEmpty)
        try await broker.close()
    }
}

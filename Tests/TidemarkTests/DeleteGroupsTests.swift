import Foundation
import TestSupport
import Testing
import TidemarkStorage

@testable import Tidemark

/// DeleteGroups (`kafka-consumer-groups --delete`, `AdminClient.deleteConsumerGroups`).
@Suite struct DeleteGroupsTests {
    /// A group without members goes with its committed offsets and membership record, for
    /// good (a restart does not bring them back); one with members is refused
    /// (NON_EMPTY_GROUP), an unknown one is not found, an empty id is invalid.
    @Test func emptyGroupsAreDeletedWithTheirOffsets() async throws {
        let dir = TemporaryDirectory()
        var broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("t", partitions: 1)
        let tp = TopicPartition("t", 0)
        // "done": used group management, then every member left; "simple": commits only.
        let joined = await broker.groups.join(
            JoinGroupRequest(
                groupId: "done", clientId: "c", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, protocolType: "consumer",
                protocols: [("range", [])]))
        _ = await broker.groups.sync(groupId: "done", memberId: joined.memberId, generationId: 1, assignments: [joined.memberId: []])
        #expect(try await broker.groups.commitOffsets(
            groupId: "done", memberId: joined.memberId, generationId: 1, offsets: [tp: CommittedOffset(offset: 4)]) == nil)
        broker.groups.leave(groupId: "done", memberIds: [joined.memberId])
        #expect(try await broker.groups.commitOffsets(groupId: "simple", offsets: [tp: CommittedOffset(offset: 2)]) == nil)
        let busy = await broker.groups.join(
            JoinGroupRequest(
                groupId: "busy", clientId: "c", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, protocolType: "consumer",
                protocols: [("range", [])]))
        _ = busy
        #expect(try await GroupMembershipRecordTests.waitForMemberships(broker, ["done": false]))

        let results = await broker.deleteGroups(["done", "simple", "busy", "nobody", ""])
        #expect(results.map(\.group) == ["done", "simple", "busy", "nobody", ""])
        #expect(results.map(\.error) == [nil, nil, .nonEmptyGroup, .groupIdNotFound, .invalidGroupId])
        #expect(broker.groups.fetchOffsets(groupId: "done").isEmpty && broker.groups.fetchOffsets(groupId: "simple").isEmpty)
        #expect(broker.groups.describeGroup("done").state == .dead)
        #expect(broker.groups.store.memberships.withLock { $0["done"] } == nil)
        #expect(await broker.deleteGroups(["done"]).first?.error == .groupIdNotFound)
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        #expect(broker.groups.fetchOffsets(groupId: "done").isEmpty && broker.groups.fetchOffsets(groupId: "simple").isEmpty)
        #expect(broker.groups.store.memberships.withLock { $0["done"] } == nil)
        #expect(!broker.groups.listGroups().contains { $0.groupId == "done" })
        try await broker.close()
    }

    /// A membership record still on its way to the log when its group is deleted is not
    /// written: it was, after the deletion's tombstone, and the next start brought the group
    /// back (listed, with its last generation). The writer is kept busy with other groups'
    /// records so that the deletion comes first.
    @Test func aMembershipRecordSentBeforeADeletionDoesNotOutliveIt() async throws {
        let dir = TemporaryDirectory()
        var broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        // Each record is its own trip through the store's executor: a few thousand of them, with the
        // whole suite running beside, took over a minute and starved other tests.
        let fillers = 1_000
        await Self.joinSyncAndLeave(broker, "done", fillersBeforeLeave: fillers)
        // Its records are behind the others': not written yet.
        #expect(broker.groups.store.memberships.withLock { $0.count } < fillers)
        #expect(await broker.deleteGroups(["done"]).first?.error == nil)
        let drained = ContinuousClock.now + .seconds(120)
        while broker.groups.store.memberships.withLock({ $0.count }) < fillers && ContinuousClock.now < drained {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(broker.groups.store.memberships.withLock { $0.count } == fillers)
        try await Task.sleep(for: .milliseconds(100))
        #expect(broker.groups.store.memberships.withLock { $0["done"] } == nil)
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        #expect(broker.groups.store.memberships.withLock { $0["done"] } == nil)
        try await broker.close()
    }

    /// A group that becomes a consumer group writes no tombstone: its records on their way
    /// are still written, the last (Empty) saying it has no members, or the consumer group's
    /// records in its place (skipped, the log kept its Stable record with members: lag tools
    /// showed them as owners, and its offsets never expired). What it recorded is then forgotten, and the consumer group's own records
    /// (`ConsumerGroupSnapshot`) replace the classic one once it is Stable.
    @Test func aGroupThatChangesProtocolStillWritesItsLastRecord() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("t", partitions: 1)
        let fillers = 1_000
        await Self.joinSyncAndLeave(broker, "g", fillersBeforeLeave: fillers)
        #expect(broker.groups.store.memberships.withLock { $0.count } < fillers)
        let moved = broker.consumerGroupHeartbeat(
            ConsumerHeartbeat(groupId: "g", memberId: "m", memberEpoch: 0, rebalanceTimeoutMs: 1_000, subscribedTopicNames: ["t"]))
        #expect(moved.error == nil)
        // Until the writer has passed g's classic records and written its consumer group's.
        let drained = ContinuousClock.now + .seconds(120)
        func written() -> Bool {
            broker.groups.store.memberships.withLock { $0["g"].map { $0.classicValue(group: "g") == nil } ?? false && $0.count > fillers }
        }
        while !written() && ContinuousClock.now < drained { try await Task.sleep(for: .milliseconds(20)) }
        let record = broker.groups.store.memberships.withLock { $0["g"] }
        #expect(record?.hasMembers(group: "g") == true && record?.emptySinceMs == nil)
        #expect(record.flatMap { ConsumerGroupSnapshot(group: "g", records: $0.records) }?.members.map(\.memberId) == [moved.memberId])
        #expect(broker.groups.recordedMemberships.last(of: "g")?.protocolType == GroupCoordinator.consumerProtocolType)
        #expect(broker.groups.recordedMemberships.count == fillers + 1)
        // No classic record is left in the log: the Stable one (written before the sync was
        // answered) is deleted by a tombstone in the consumer group's batch; the Empty one was
        // still waiting when the consumer group's records took its place (`MembershipQueue`).
        let classic = try GroupMembershipRecordTests.records(broker).filter { $0.0 == "g" }
        #expect(classic.count >= 1 && classic.last.map { $0.1 == nil } == true)
        try await broker.close()
    }

    /// OffsetDelete: refused for a topic the group's members subscribe to (by the chosen
    /// protocol's subscription), and for any topic while a classic group has members of
    /// another protocol type than `consumer` (Kafka Connect's workers: their metadata, read as a
    /// consumer's, named no topics, and the offsets went).
    @Test func offsetsAreDeletedOnlyWhereNoMemberReadsThem() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("t", partitions: 1)
        try await broker.createTopic("u", partitions: 1)
        let offsets = [TopicPartition("t", 0): CommittedOffset(offset: 1), TopicPartition("u", 0): CommittedOffset(offset: 1)]
        for group in ["readers", "workers"] {
            #expect(try await broker.groups.commitOffsets(groupId: group, offsets: offsets) == nil)
        }
        _ = await broker.groups.join(
            JoinGroupRequest(
                groupId: "readers", clientId: "c", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, protocolType: "consumer",
                protocols: [("range", ConsumerProtocol.encodeSubscription(topics: ["t"]))]))
        _ = await broker.groups.join(
            JoinGroupRequest(
                groupId: "workers", clientId: "c", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, protocolType: "connect",
                protocols: [("sessioned", [0, 1, 0, 0, 0, 0, 0, 0])]))
        let readers = try await broker.groups.deleteOffsets(groupId: "readers", partitions: Array(offsets.keys))
        #expect(readers[TopicPartition("t", 0)] == .some(.groupSubscribedToTopic))
        #expect(readers.keys.contains(TopicPartition("u", 0)) && readers[TopicPartition("u", 0)]! == nil)
        do {
            _ = try await broker.groups.deleteOffsets(groupId: "workers", partitions: Array(offsets.keys))
            Issue.record("the offsets of a group with Connect workers were deleted")
        } catch {
            #expect((error as? TidemarkError)?.code == .nonEmptyGroup)
        }
        #expect(broker.groups.fetchOffsets(groupId: "workers").count == 2)
        #expect(broker.groups.fetchOffsets(groupId: "readers").keys.map(\.topic) == ["t"])
        try await broker.close()
    }

    /// `count` membership records of other groups, queued for the writer ahead of what follows.
    static func queueMembershipRecords(_ broker: Broker, _ count: Int) {
        for i in 0..<count {
            let life = broker.groups.recordedMemberships.set("filler-\(i)", generation: 1, protocolType: "consumer")
            _ = broker.groups.membershipRecords.send(
                PendingMembership(
                    group: "filler-\(i)", record: .classic(GroupMembershipRecord(protocolType: "consumer", generation: 1, protocolName: nil, leader: nil, members: [])),
                    life: life, whenWritten: nil))
        }
    }

    /// The last member's LeaveGroup is answered once the group's Empty record is in the log (the
    /// Kafka front's `leaveWhenRecorded`): answered before, a kill -9 in between brought the
    /// member back at the restart, waited for until its session ran out. Here the writer has
    /// 1,000 records ahead of it.
    @Test func aLastMembersLeaveIsAnsweredOnceItsRecordIsWritten() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("t", partitions: 1)
        let joined = await broker.groups.join(
            JoinGroupRequest(
                groupId: "g", clientId: "c", clientHost: "/10.0.0.1", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000,
                protocolType: "consumer", protocols: [("range", [])]))
        _ = await broker.groups.sync(groupId: "g", memberId: joined.memberId, generationId: 1, assignments: [joined.memberId: []])
        Self.queueMembershipRecords(broker, 1_000)
        let results = await broker.groups.leaveWhenRecorded(groupId: "g", members: [(joined.memberId, nil)])
        #expect(results == [nil])
        let recorded = broker.groups.store.memberships.withLock { $0["g"] }
        #expect(recorded != nil && recorded?.hasMembers(group: "g") == false, "the Empty record is in the log")
        // A member not in the group is answered at once.
        #expect(await broker.groups.leaveWhenRecorded(groupId: "g", members: [("nobody", nil)]) == [.unknownMemberId])
        try await broker.close()
    }

    /// A SyncGroup that makes a generation Stable is answered once the group's record naming it
    /// is in the log, as Kafka appends the group before it answers: answered first, a kill -9
    /// in between brought back the generation before (ILLEGAL_GENERATION at the members' next
    /// heartbeat). Here the writer has 1,000 records ahead of it.
    @Test func aSyncIsAnsweredOnceItsGenerationIsWritten() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("t", partitions: 1)
        let joined = await broker.groups.join(
            JoinGroupRequest(
                groupId: "g", clientId: "c", clientHost: "/10.0.0.1", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000,
                protocolType: "consumer", protocols: [("range", [])]))
        Self.queueMembershipRecords(broker, 1_000)
        let synced = await broker.groups.sync(groupId: "g", memberId: joined.memberId, generationId: 1, assignments: [joined.memberId: [7]])
        #expect(synced.error == nil && synced.assignment == [7])
        let recorded = broker.groups.store.memberships.withLock { $0["g"]?.classicValue(group: "g") }.flatMap(GroupMembershipRecord.decodeValue)
        #expect(recorded?.generation == 1 && recorded?.members.map(\.memberId) == [joined.memberId], "the Stable record is in the log")
        // A later sync of the same generation (nothing new to write) is answered at once.
        let again = await broker.groups.sync(groupId: "g", memberId: joined.memberId, generationId: 1, assignments: nil)
        #expect(again.error == nil && again.assignment == [7])
        try await broker.close()
    }

    /// A ConsumerGroupHeartbeat that sends records (a join, a leave) is answered once they
    /// are in the log, as Kafka answers after appending them; a steady one sends none and is
    /// answered at once. Here the writer has 1,000 records ahead of it each time.
    @Test func aConsumerHeartbeatIsAnsweredOnceItsRecordsAreWritten() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("t", partitions: 2)
        func recorded() -> ConsumerGroupSnapshot? {
            broker.groups.store.memberships.withLock { $0["cg"] }.flatMap { ConsumerGroupSnapshot(group: "cg", records: $0.records) }
        }
        Self.queueMembershipRecords(broker, 1_000)
        let joined = await broker.consumerGroupHeartbeatWhenRecorded(
            ConsumerHeartbeat(groupId: "cg", memberId: "m", memberEpoch: 0, rebalanceTimeoutMs: 5_000, subscribedTopicNames: ["t"], ownedPartitions: []))
        #expect(joined.error == nil)
        #expect(recorded()?.members.map(\.memberId) == ["m"], "the join's records are in the log")
        // Steady: nothing to write, answered with the writer still behind.
        let owned = joined.assignment ?? []
        _ = await broker.consumerGroupHeartbeatWhenRecorded(
            ConsumerHeartbeat(groupId: "cg", memberId: "m", memberEpoch: joined.memberEpoch, ownedPartitions: owned))
        Self.queueMembershipRecords(broker, 1_000)
        let steady = await broker.consumerGroupHeartbeatWhenRecorded(ConsumerHeartbeat(groupId: "cg", memberId: "m", memberEpoch: joined.memberEpoch))
        #expect(steady.error == nil)
        #expect(broker.groups.membershipRecords.count > 0, "a steady heartbeat does not wait for the writer")
        // A heartbeat that writes nothing, while the group's records are on their way (another
        // member's join, answered without waiting here), waits for them: what it is told may be
        // in them.
        Self.queueMembershipRecords(broker, 1_000)
        let other = broker.consumerGroupHeartbeat(
            ConsumerHeartbeat(groupId: "cg", memberId: "n", memberEpoch: 0, rebalanceTimeoutMs: 5_000, subscribedTopicNames: ["t"], ownedPartitions: []))
        #expect(other.error == nil && recorded()?.members.count == 1)
        let after = await broker.consumerGroupHeartbeatWhenRecorded(ConsumerHeartbeat(groupId: "cg", memberId: "m", memberEpoch: joined.memberEpoch))
        #expect(after.error == nil)
        #expect(recorded()?.members.count == 2, "the other member's join is in the log")
        _ = broker.consumerGroupHeartbeat(ConsumerHeartbeat(groupId: "cg", memberId: "n", memberEpoch: -1))
        let left = await broker.consumerGroupHeartbeatWhenRecorded(ConsumerHeartbeat(groupId: "cg", memberId: "m", memberEpoch: -1))
        #expect(left.error == nil)
        #expect(recorded()?.members.isEmpty == true, "the leave's Empty records are in the log")
        try await broker.close()
    }

    /// One member joins `group` and syncs (answered once the Stable record is written), then
    /// `fillers` records of other groups are queued, and the member leaves: the Empty record
    /// waits behind them.
    static func joinSyncAndLeave(_ broker: Broker, _ group: String, fillersBeforeLeave fillers: Int) async {
        let joined = await broker.groups.join(
            JoinGroupRequest(
                groupId: group, clientId: "c", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, protocolType: "consumer",
                protocols: [("range", [])]))
        _ = await broker.groups.sync(groupId: group, memberId: joined.memberId, generationId: 1, assignments: [joined.memberId: []])
        queueMembershipRecords(broker, fillers)
        broker.groups.leave(groupId: group, memberIds: [joined.memberId])
    }

    /// While a group's tombstones are being written, joins and commits to it are answered
    /// COORDINATOR_LOAD_IN_PROGRESS (clients retry): none lands between the check that the
    /// group is empty and its deletion.
    @Test func joinsAndCommitsWaitWhileAGroupIsDeleted() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("t", partitions: 1)
        broker.groups.state.withLock { $0.deleting["g"] = 1 }
        let joined = await broker.groups.join(
            JoinGroupRequest(
                groupId: "g", clientId: "c", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, protocolType: "consumer",
                protocols: [("range", [])]))
        #expect(joined.error == .groupBusy)
        #expect(try await broker.groups.commitOffsets(groupId: "g", offsets: [TopicPartition("t", 0): CommittedOffset(offset: 1)]) == .groupBusy)
        broker.groups.state.withLock { _ = $0.deleting.removeValue(forKey: "g") }
        #expect(try await broker.groups.commitOffsets(groupId: "g", offsets: [TopicPartition("t", 0): CommittedOffset(offset: 1)]) == nil)
        #expect(await broker.deleteGroups(["g"]).first?.error == nil)
        #expect(broker.groups.state.withLock { $0.deleting.isEmpty })
        try await broker.close()
    }

    /// A share group is deleted once its members have left, with its share state: a group of
    /// that name starts again from its start offset policy.
    @Test func aShareGroupIsDeletedWithItsState() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("jobs", partitions: 1)
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 3)
        let tp = TopicPartition("jobs", 0)
        let view = broker.shareLogView
        let joined = ShareCoordinatorTests.join(broker, "w1")
        ShareCoordinatorTests.openSession(broker, "w1", tp)
        #expect(broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 2, view: view).first?.offsets == [0, 1])
        _ = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 1, add: [], forget: [], acknowledgements: [tp: [ShareAcknowledgement(first: 0, last: 1, types: [.accept])]],
            allowRenew: false, view: view)
        #expect(await broker.deleteGroups(["workers"]).first?.error == .nonEmptyGroup)
        _ = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: "w1", memberEpoch: -1))
        _ = joined
        #expect(await broker.deleteGroups(["workers"]).first?.error == nil)
        #expect(broker.shares.summaries("workers", view: view).isEmpty)
        #expect(!broker.shares.isShareGroup("workers"))
        // Back from the start: the accepted jobs are delivered again to a new group of that name.
        _ = ShareCoordinatorTests.join(broker, "w2")
        ShareCoordinatorTests.openSession(broker, "w2", tp)
        #expect(broker.shares.acquire(group: "workers", member: "w2", partitions: [tp], maxRecords: 10, view: view).first?.offsets == [0, 1, 2])
        try await broker.close()
    }
}

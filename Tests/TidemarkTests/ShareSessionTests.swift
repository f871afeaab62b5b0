import Foundation
import TestSupport
import Testing
import TidemarkStorage

@testable import Tidemark

/// Share sessions: how long they live, and what makes room for new ones.
@Suite struct ShareSessionTests {
    static func heartbeat(_ broker: Broker, _ member: String, epoch: Int32) -> ConsumerHeartbeatResult {
        broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: member, memberEpoch: epoch))
    }

    /// A worker holds a job for three minutes (its lock allows ten) and sends nothing but
    /// heartbeats meanwhile, as librdkafka does between polls: its session stays, so its
    /// acknowledgement is applied and the job is not handed out again. A member that left
    /// without closing its session loses the session once it has been unused for
    /// `shareSessionIdleMs`.
    @Test func aLiveMembersSessionOutlastsTheIdleTime() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(clock: clock, maintenanceMs: 3_600_000))
        try await broker.createTopic("jobs", partitions: 1)
        try await broker.alterGroupConfig("workers", changes: [.set("share.record.lock.duration.ms", "600000")])
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 2)
        let tp = TopicPartition("jobs", 0)
        let view = broker.shareLogView
        _ = ShareCoordinatorTests.join(broker, "w2")
        #expect(ShareCoordinatorTests.openSession(broker, "w2", tp).error == nil)
        #expect(Self.heartbeat(broker, "w2", epoch: -1).error == nil)  // leaves, never closes its session
        let w1 = ShareCoordinatorTests.join(broker, "w1")
        #expect(ShareCoordinatorTests.openSession(broker, "w1", tp).error == nil)
        #expect(broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 1, view: view).first?.offsets.count == 1)

        for _ in 0..<18 {
            clock.advance(10_000)
            #expect(Self.heartbeat(broker, "w1", epoch: w1.memberEpoch).error == nil)
            await broker.shares.tick()
        }
        let acked = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 1, add: [], forget: [], acknowledgements: [tp: [ShareAcknowledgement(0, .accept)]],
            allowRenew: false, view: view)
        #expect(acked.error == nil)
        #expect(acked.acknowledged[tp] == .some(nil))
        let gone = broker.shares.updateSession(
            group: "workers", member: "w2", epoch: 1, add: [], forget: [], acknowledgements: [:], allowRenew: false, view: view)
        #expect(gone.error == .shareSessionNotFound)
        // The accepted job is not delivered again; the other one is.
        #expect(broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 10, view: view).first?.offsets == [1])
        try await broker.close()
    }

    /// A topic deleted and made again under its name: its partitions leave the share
    /// sessions, so a caller still naming them (a connection's watch from before) acquires
    /// nothing of the new topic, and nothing of the old state reaches it; once the session
    /// adds the partition again, the new topic's records are new jobs.
    @Test func aDeletedTopicLeavesTheSessionsAndItsStateGoes() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("jobs", partitions: 1)
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 3)
        let tp = TopicPartition("jobs", 0)
        let view = broker.shareLogView
        _ = ShareCoordinatorTests.join(broker, "w1")
        #expect(ShareCoordinatorTests.openSession(broker, "w1", tp).error == nil)
        #expect(broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 2, view: view).first?.offsets == [0, 1])
        try await broker.deleteTopic("jobs")
        #expect(broker.shares.summaries("workers", view: view).isEmpty)
        try await broker.createTopic("jobs", partitions: 1)
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 3)
        #expect(broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 10, view: view).isEmpty)
        let added = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 1, add: [tp], forget: [], acknowledgements: [:], allowRenew: false, view: view)
        #expect(added.error == nil)
        let fresh = broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 10, view: view)
        #expect(fresh.first?.offsets == [0, 1, 2] && fresh.first?.ranges == [AcquiredRange(first: 0, last: 2, deliveryCount: 1)])
        try await broker.close()
    }

    /// Share members count toward group.members.max.bytes (a bound of their own): each kept up
    /// to 10,000 subscribed names and its assignment, counted nowhere. A heartbeat past it is
    /// refused and changes nothing; members that go give their bytes back.
    @Test func shareMembersAreBoundedByTheirBytes() async throws {
        let dir = TemporaryDirectory()
        var opts = options(maintenanceMs: 3_600_000)
        opts.groups.membersMaxBytes = 1 << 20
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        let names = (0..<2_000).map { "a-subscribed-topic-name-of-some-length-\($0)" }  // about 130 KB a member
        var joined: [ConsumerHeartbeatResult] = []
        for index in 0..<10 {
            let result = broker.shareGroupHeartbeat(
                ShareHeartbeat(groupId: "wide-\(index)", memberId: "", memberEpoch: 0, subscribedTopicNames: names))
            guard result.error == nil else {
                #expect(result.error == .groupMaxSizeReached && index >= 5)
                break
            }
            joined.append(result)
        }
        #expect(joined.count >= 5 && joined.count < 10)
        let used = broker.shares.state.withLock { $0.memberBytes }
        #expect(used > joined.count * 100_000 && used <= 1 << 20)
        for (index, member) in joined.enumerated() {
            #expect(broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "wide-\(index)", memberId: member.memberId, memberEpoch: -1)).error == nil)
        }
        #expect(broker.shares.state.withLock { $0.memberBytes } < 10_000)
        // A small member joins again.
        #expect(broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "small", memberId: "", memberEpoch: 0, subscribedTopicNames: ["t"])).error == nil)
        try await broker.close()
    }

    /// A share group cannot take the id of a classic or consumer group that exists, empty or
    /// not, as Kafka refuses it (GROUP_ID_NOT_FOUND): one with only committed offsets, an empty
    /// consumer group, and the same after a restart (known by its records and offsets). It
    /// took them, and the group's own consumers were then refused; deleted, the id is free.
    @Test func aShareGroupDoesNotTakeTheIdOfAnEmptyGroup() async throws {
        let dir = TemporaryDirectory()
        var broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("jobs", partitions: 1)
        let tp = TopicPartition("jobs", 0)
        func share(_ group: String) -> TidemarkError.Code? {
            broker.shareGroupHeartbeat(ShareHeartbeat(groupId: group, memberId: "w", memberEpoch: 0, subscribedTopicNames: ["jobs"])).error
        }
        // Offsets only (a standalone commit: a "simple" classic group).
        #expect(try await broker.groups.commitOffsets(groupId: "simple", offsets: [tp: CommittedOffset(offset: 3)]) == nil)
        // A consumer group whose member committed and left.
        let member = broker.consumerGroupHeartbeat(
            ConsumerHeartbeat(
                groupId: "cg", memberId: "m", memberEpoch: 0, rebalanceTimeoutMs: 60_000, subscribedTopicNames: ["jobs"],
                ownedPartitions: []))
        #expect(member.error == nil)
        #expect(
            try await broker.groups.commitOffsets(groupId: "cg", memberId: "m", generationId: member.memberEpoch, offsets: [tp: CommittedOffset(offset: 5)])
                == nil)
        #expect(broker.consumerGroupHeartbeat(ConsumerHeartbeat(groupId: "cg", memberId: "m", memberEpoch: -1)).error == nil)
        #expect(share("simple") == .groupIdNotFound)
        #expect(share("cg") == .groupIdNotFound)
        #expect(share("fresh") == nil)
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        #expect(share("simple") == .groupIdNotFound)
        #expect(share("cg") == .groupIdNotFound)
        #expect(share("fresh") == nil)  // a share group goes on under its id
        // The consumer group's consumers still come back to it, with their offsets.
        #expect(
            broker.consumerGroupHeartbeat(
                ConsumerHeartbeat(
                    groupId: "cg", memberId: "m2", memberEpoch: 0, rebalanceTimeoutMs: 60_000, subscribedTopicNames: ["jobs"],
                    ownedPartitions: [])
            ).error == nil)
        #expect(broker.groups.fetchOffsets(groupId: "cg")[tp]?.offset == 5)
        // Deleted, the id is free.
        #expect(await broker.deleteGroups(["simple"]).first?.error == nil)
        #expect(share("simple") == nil)
        try await broker.close()
    }

    /// The other way round: a share group with share state but no workers (they are away, or
    /// the broker restarted) keeps its id, as Kafka's share groups last until deleted: a
    /// consumer group's join under it is refused, and the Kafka front refuses commits to it
    /// (`isShareGroup`). It was taken, and the share group's workers then refused.
    @Test func aShareGroupWithStateKeepsItsIdWithoutWorkers() async throws {
        let dir = TemporaryDirectory()
        var broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("jobs", partitions: 1)
        let tp = TopicPartition("jobs", 0)
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 2)
        let member = ShareCoordinatorTests.join(broker, "w1")
        #expect(member.error == nil)
        ShareCoordinatorTests.openSession(broker, "w1", tp)
        let got = broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 1, view: broker.shareLogView)
        let offset = try #require(got.first?.offsets.first)
        let acked = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 1, add: [], forget: [],
            acknowledgements: [tp: [ShareAcknowledgement(first: offset, last: offset, types: [.accept])]], allowRenew: false,
            view: broker.shareLogView)
        #expect(acked.error == nil)
        #expect(broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: member.memberId, memberEpoch: -1)).error == nil)
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        #expect(broker.shares.isShareGroup("workers"))
        let consumer = broker.consumerGroupHeartbeat(
            ConsumerHeartbeat(groupId: "workers", memberId: "c", memberEpoch: 0, rebalanceTimeoutMs: 5_000, subscribedTopicNames: ["jobs"], ownedPartitions: []))
        #expect(consumer.error == .groupIdNotFound)
        #expect(broker.shareGroupHolds("workers"))
        #expect(ShareCoordinatorTests.join(broker, "w2").error == nil)
        try await broker.close()
    }

    /// Share state beside a classic group's offsets (made before group ids were kept apart, or
    /// by a worker fetching under any id): both go on, neither locks the other out; a classic
    /// group with members keeps share workers out whatever share state there is.
    @Test func shareStateBesideAClassicGroupLocksNeitherOut() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("jobs", partitions: 1)
        let tp = TopicPartition("jobs", 0)
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 1)
        // A session opened without a heartbeat makes share state under "workers".
        ShareCoordinatorTests.openSession(broker, "stray", tp)
        _ = broker.shares.acquire(group: "workers", member: "stray", partitions: [tp], maxRecords: 1, view: broker.shareLogView)
        #expect(broker.shares.isShareGroup("workers") && !broker.shares.hasMembership("workers"))
        #expect(try await broker.groups.commitOffsets(groupId: "workers", offsets: [tp: CommittedOffset(offset: 1)]) == nil)
        #expect(!broker.shareGroupHolds("workers"), "a classic group has the id too: it goes on")
        let joined = await broker.groups.join(
            JoinGroupRequest(
                groupId: "workers", clientId: "c", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, protocolType: "consumer",
                protocols: [("range", [])]))
        #expect(joined.error == nil)
        #expect(ShareCoordinatorTests.join(broker, "w1").error == .groupIdNotFound, "a classic group with members keeps the id")
        broker.groups.leave(groupId: "workers", memberIds: [joined.memberId])
        #expect(ShareCoordinatorTests.join(broker, "w1").error == nil, "its share state keeps it a share group's too")
        try await broker.close()
    }

    /// A share session epoch below -1 is INVALID_SHARE_SESSION_EPOCH, as Kafka answers, not
    /// "no session" (the session is there); and DeleteGroups of an id with share state and a
    /// live consumer group's is NON_EMPTY_GROUP (the share state's deletion was success).
    @Test func oddEpochsAndMixedGroupIdsAreAnsweredAsKafkaAnswers() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("jobs", partitions: 1)
        let tp = TopicPartition("jobs", 0)
        _ = ShareCoordinatorTests.join(broker, "w1")
        #expect(ShareCoordinatorTests.openSession(broker, "w1", tp).error == nil)
        let odd = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: -2, add: [], forget: [], acknowledgements: [:], allowRenew: false, view: broker.shareLogView)
        #expect(odd.error == .invalidShareSessionEpoch)
        let next = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 1, add: [], forget: [], acknowledgements: [:], allowRenew: false, view: broker.shareLogView)
        #expect(next.error == nil)
        // A consumer group with a member, and share state under its id (a session opened there).
        let member = broker.consumerGroupHeartbeat(
            ConsumerHeartbeat(groupId: "cg", memberId: "", memberEpoch: 0, rebalanceTimeoutMs: 60_000, subscribedTopicNames: ["jobs"], clientId: "c"))
        #expect(member.error == nil)
        _ = broker.shares.updateSession(
            group: "cg", member: "stray", epoch: 0, add: [tp], forget: [], acknowledgements: [:], allowRenew: false, view: broker.shareLogView)
        _ = broker.shares.acquire(group: "cg", member: "stray", partitions: [tp], maxRecords: 1, view: broker.shareLogView)
        let deleted = await broker.deleteGroups(["cg"])
        #expect(deleted.first?.error == .nonEmptyGroup)
        #expect(broker.groups.describeConsumerGroup("cg")?.members.count == 1)
        #expect(!broker.shares.summaries("cg", view: broker.shareLogView).isEmpty)  // refused: nothing went
        try await broker.close()
    }

    /// Timeouts run on the timer clock, not the wall clock: the wall clock stepped a day forward
    /// (NTP at boot, a VM resumed) expires no session and no record lock (it used to expire
    /// every one at once: jobs handed out twice); the timer clock's own time does.
    @Test func aWallClockStepExpiresNoLockAndNoSession() async throws {
        let dir = TemporaryDirectory()
        let wall = TestClock()
        let timers = TestClock()
        var opts = options(clock: wall, maintenanceMs: 3_600_000)
        opts.timerClock = timers.read
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("jobs", partitions: 1)
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 2)
        let tp = TopicPartition("jobs", 0)
        let view = broker.shareLogView
        let w1 = ShareCoordinatorTests.join(broker, "w1")
        #expect(ShareCoordinatorTests.openSession(broker, "w1", tp).error == nil)
        #expect(broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 1, view: view).first?.offsets.count == 1)

        wall.advance(24 * 3_600_000)
        await broker.shares.tick()
        #expect(Self.heartbeat(broker, "w1", epoch: w1.memberEpoch).error == nil)
        #expect(broker.shares.summaries("workers", view: view).first?.acquired == 1)

        timers.advance(opts.groups.shareRecordLockDurationMs + 1)
        await broker.shares.tick()
        #expect(broker.shares.summaries("workers", view: view).first?.acquired == 0)
        try await broker.close()
    }

    /// The maintenance pass goes over every partition of every group, expiring the locks that
    /// are due in place and writing what changed; a partition whose window holds nothing is
    /// left alone (its window is not walked or copied), however many delayed jobs wait in it.
    @Test func theMaintenancePassExpiresLocksInEveryPartitionThatHoldsAny() async throws {
        let dir = TemporaryDirectory()
        // (Both clocks move together: the timers' alone would be the wall clock stepping back,
        // which moves the delayed jobs.)
        let wall = TestClock()
        let timers = TestClock()
        var opts = options(clock: wall, maintenanceMs: 3_600_000)
        opts.timerClock = timers.read
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("jobs", partitions: 6)
        for partition in 0..<6 {
            for i in 0..<3 {
                var builder = RecordBatchBuilder()
                // Partitions 1 and 4: jobs delayed a day, held by nobody.
                let headers = partition % 3 == 1 ? [RecordHeader(key: Broker.deliverAtHeader, value: Array("\(opts.clock() + 86_400_000)".utf8))] : []
                builder.append(timestamp: 0, key: nil, value: Array("job-\(partition)-\(i)".utf8), headers: headers)
                _ = try await broker.append(topic: "jobs", partition: partition, batches: try builder.build())
            }
        }
        let view = broker.shareLogView
        _ = ShareCoordinatorTests.join(broker, "w1")
        let tps = (0..<6).map { TopicPartition("jobs", $0) }
        #expect(broker.shares.updateSession(group: "workers", member: "w1", epoch: 0, add: tps, forget: [], acknowledgements: [:],
                                            allowRenew: false, view: view).error == nil)
        // w1 takes one job of partitions 0, 2, 3, 5 (1 and 4 have none due).
        var held: Set<Int> = []
        for tp in tps {
            let got = broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 1, view: view)
            if got.first?.offsets.isEmpty == false { held.insert(tp.partition) }
        }
        #expect(held == [0, 2, 3, 5])
        let start = broker.shares.store.partition.log.logEndOffset
        // Passes that release nothing say so (nothing to offer to waiting polls).
        #expect(await broker.shares.tick().isEmpty)  // the acquisitions' delivery counts: one write each
        #expect(broker.shares.store.partition.log.logEndOffset == start + 4)
        #expect(await broker.shares.tick().isEmpty)
        #expect(broker.shares.store.partition.log.logEndOffset == start + 4, "a pass with nothing due wrote again")

        timers.advance(opts.groups.shareRecordLockDurationMs + 1)
        wall.advance(opts.groups.shareRecordLockDurationMs + 1)
        let released = await broker.shares.tick()
        #expect(broker.shares.store.partition.log.logEndOffset == start + 8)  // the four expiries
        // The partitions whose locks expired, for `Broker.offerShareRecords`.
        #expect(Set(released.map { "\($0.group)/\($0.topicPartition.partition)" }) == ["workers/0", "workers/2", "workers/3", "workers/5"])
        #expect(released.count == 4)
        let summaries = broker.shares.summaries("workers", view: view)
        #expect(summaries.count == 6 && summaries.allSatisfy { $0.acquired == 0 })
        #expect(summaries.map(\.delayed) == [0, 3, 0, 0, 3, 0])
        broker.shares.state.withLock { s in
            #expect(s.slots.values.allSatisfy { !$0.state.holdsAny })
        }
        // Released: each partition's job goes out again.
        for tp in tps where held.contains(tp.partition) {
            let again = broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 1, view: view)
            #expect(again.first?.ranges.first?.deliveryCount == 2)
        }
        try await broker.close()
    }

    /// Commit timestamps are persisted and compared after restarts (offsets retention): they
    /// stay on the wall clock, whatever the timer clock reads (here two days behind, as after
    /// a wall clock stepped forward since the start), and so does the retention cutoff.
    @Test func commitsAndTheirRetentionStayOnTheWallClock() async throws {
        let dir = TemporaryDirectory()
        let wall = TestClock()
        let timers = TestClock(wall.read() - 2 * 86_400_000)
        var opts = options(clock: wall, maintenanceMs: 3_600_000)
        opts.timerClock = timers.read
        opts.groups.offsetsRetentionMs = 86_400_000
        opts.groups.offsetsRetentionCheckIntervalMs = 1
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 1)
        let tp = TopicPartition("t", 0)
        #expect(try await broker.groups.commitOffsets(groupId: "g", offsets: [tp: CommittedOffset(offset: 3)]) == nil)
        #expect(broker.groups.fetchOffsets(groupId: "g")[tp]?.commitTimestampMs == wall.read())
        timers.advance(10)
        wall.advance(10)
        await broker.groups.tick()
        #expect(broker.groups.fetchOffsets(groupId: "g")[tp]?.offset == 3, "a second old, not two days")
        try await broker.close()
    }

    /// With every session taken, a new one replaces the one of a member no longer in its group
    /// unused the longest; a live member's session is never taken, however long unused (its
    /// worker may hold a job): the new one is refused (SHARE_SESSION_LIMIT_REACHED).
    @Test func aFullSessionCacheMakesRoomFromItsStalestSession() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        var opts = options(clock: clock, maintenanceMs: 3_600_000)
        opts.groups.shareMaxSessions = 2
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("jobs", partitions: 1)
        let tp = TopicPartition("jobs", 0)
        let view = broker.shareLogView
        func open(_ member: String) -> TidemarkError.Code? {
            _ = ShareCoordinatorTests.join(broker, member)
            return ShareCoordinatorTests.openSession(broker, member, tp).error
        }
        #expect(open("a") == nil)
        clock.advance(1_000)
        #expect(open("b") == nil)
        #expect(open("c") == .shareSessionLimitReached)
        clock.advance(opts.groups.shareSessionIdleMs + 1)
        #expect(open("c") == .shareSessionLimitReached, "a and b are live members")
        #expect(broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: "a", memberEpoch: -1)).error == nil)
        #expect(open("c") == nil, "a left its group: its session makes room")
        let a = broker.shares.updateSession(
            group: "workers", member: "a", epoch: 1, add: [], forget: [], acknowledgements: [:], allowRenew: false, view: view)
        #expect(a.error == .shareSessionNotFound)
        let b = broker.shares.updateSession(
            group: "workers", member: "b", epoch: 1, add: [], forget: [], acknowledgements: [:], allowRenew: false, view: view)
        #expect(b.error == nil)
        try await broker.close()
    }

    /// A connection closes: the sessions it used last close, their members' jobs go back,
    /// and a fetch still running for such a member (a long poll) takes nothing more.
    @Test func aClosedConnectionsSessionsCloseAndTakeNothingMore() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("jobs", partitions: 1)
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 2)
        let tp = TopicPartition("jobs", 0)
        let view = broker.shareLogView
        for member in ["w1", "w2"] {
            _ = ShareCoordinatorTests.join(broker, member)
            #expect(ShareCoordinatorTests.openSession(broker, member, tp, connection: member == "w1" ? 7 : 8).error == nil)
        }
        #expect(broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 1, view: view).first?.offsets == [0])
        #expect(broker.shares.sessions(usedLastBy: 7, among: [("workers", "w1"), ("workers", "w2")]).map(\.member) == ["w1"])
        broker.shares.connectionClosed(7, sessions: [("workers", "w1"), ("workers", "w2")])
        #expect(broker.shares.sessions(usedLastBy: 7, among: [("workers", "w1")]).isEmpty)
        #expect(broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 10, view: view).isEmpty)
        #expect(broker.shares.acquire(group: "workers", member: "w2", partitions: [tp], maxRecords: 10, view: view).first?.offsets.first == 0)
        try await broker.close()
    }
}

/// An acquire passes over the session's partitions it last found caught up while nothing
/// changed them (`ShareCoordinator.QuietMarks`), and looks at each again once its log's end
/// moves, its slot is reset or removed, or its topic is made again.
@Suite struct QuietPartitionTests {
    static func append(_ broker: Broker, _ partition: Int, count: Int) async throws {
        var builder = RecordBatchBuilder()
        for i in 0..<count { builder.append(timestamp: 0, key: nil, value: Array("job-\(i)".utf8)) }
        _ = try await broker.append(topic: "jobs", partition: partition, batches: try builder.build())
    }

    /// How many of the session's partitions its marks pass over now.
    static func quiet(_ broker: Broker, _ partitions: [TopicPartition]) -> Int {
        broker.shares.state.withLock { s in
            guard let marks = s.sessions[.init(group: "workers", member: "w1")]?.quiet, marks.basis == partitions else { return 0 }
            return partitions.indices.filter { marks.isQuiet($0) }.count
        }
    }

    @Test func caughtUpPartitionsArePassedOverUntilTheyChange() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("jobs", partitions: 3)
        try await broker.alterGroupConfig("workers", changes: [.set("share.auto.offset.reset", "earliest")])
        let tps = (0..<3).map { TopicPartition("jobs", $0) }
        let view = broker.shareLogView
        var epoch: Int32 = 0
        // The session's partitions in its turn, as a ShareFetch walks them (`walksAll`).
        var walk = SessionPartitions()
        func open() {
            epoch = 1
            let update = broker.shares.updateSession(
                group: "workers", member: "w1", epoch: 0, add: tps, forget: [], acknowledgements: [:], allowRenew: false, view: view)
            #expect(update.error == nil && update.partitions.walksAll)
            walk = update.partitions
        }
        func take() -> [String] {
            var wouldBlock = false
            var (live, full): ([TopicPartition], [TopicPartition]) = ([], [])
            return broker.shares.acquire(
                group: "workers", member: "w1", partitions: walk, maxRecords: 100, view: view, wouldBlock: &wouldBlock, live: &live,
                full: &full
            ).flatMap { a in a.offsets.map { "\(a.topicPartition.partition):\($0)" } }.sorted()
        }
        func accept(_ taken: [String]) {
            var acks: [TopicPartition: [ShareAcknowledgement]] = [:]
            for job in taken {
                let parts = job.split(separator: ":").map { Int64($0)! }
                acks[tps[Int(parts[0])], default: []].append(ShareAcknowledgement(parts[1], .accept))
            }
            let update = broker.shares.updateSession(
                group: "workers", member: "w1", epoch: epoch, add: [], forget: [], acknowledgements: acks, allowRenew: false, view: view)
            #expect(update.error == nil && update.acknowledged.values.allSatisfy { $0 == nil })
            walk = update.partitions  // (turned one further)
            epoch += 1
        }
        open()
        try await Self.append(broker, 0, count: 2)
        var taken = take()
        #expect(taken == ["0:0", "0:1"])
        accept(taken)
        #expect(take().isEmpty)
        #expect(Self.quiet(broker, tps) == 3)
        // An acquire over a list of its own (a blocking acquire of what a walk left, in the
        // walk's turn) keeps the session's marks.
        #expect(broker.shares.acquire(group: "workers", member: "w1", partitions: [tps[2], tps[0], tps[1]], maxRecords: 1, view: view).isEmpty)
        #expect(Self.quiet(broker, tps) == 3)
        // An append: looked at again.
        try await Self.append(broker, 1, count: 1)
        #expect(Self.quiet(broker, tps) == 2)
        taken = take()
        #expect(taken == ["1:0"])
        accept(taken)
        #expect(take().isEmpty && Self.quiet(broker, tps) == 3)
        // Reset to the start, the log's end where it was: the jobs come again.
        try await broker.shares.resetOffsets(group: "workers", offsets: [tps[0]: 0], view: view)
        taken = take()
        #expect(taken == ["0:0", "0:1"])
        accept(taken)
        #expect(take().isEmpty && Self.quiet(broker, tps) == 3)
        // The state forgotten: the start policy (earliest) starts the windows again.
        try await broker.shares.deleteState(group: "workers", topics: ["jobs"])
        taken = take()
        #expect(taken == ["0:0", "0:1", "1:0"])
        accept(taken)
        #expect(take().isEmpty && Self.quiet(broker, tps) == 3)
        // The topic made again, the same logs' ends: its new jobs come.
        try await broker.deleteTopic("jobs")
        try await broker.createTopic("jobs", partitions: 3)
        open()
        try await Self.append(broker, 0, count: 2)
        try await Self.append(broker, 1, count: 1)
        #expect(take() == ["0:0", "0:1", "1:0"])
        try await broker.close()
    }
}

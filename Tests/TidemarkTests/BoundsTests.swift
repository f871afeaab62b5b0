import Dispatch
import Foundation
import Synchronization
import TestSupport
import Testing
import TidemarkStorage

@testable import Tidemark

/// Memory stays bounded whatever clients do: the embedded producer's buffer, member ids
/// handed out, idle groups, committed offsets, producer ids, long-poll timers.
@Suite struct BoundsTests {
    /// Large compressed batches are checked on lanes: one that takes long does not hold
    /// another behind it, and no more run at once than there are lanes (each may hold 64 MiB).
    @Test func decompressionChecksRunOnTheirLanesAndNoMore() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        let executor = broker.decompressor
        final class Counts: Sendable { let value = Mutex((running: 0, peak: 0)) }
        let counts = Counts()
        let gate = DispatchSemaphore(value: 0)
        let calls = (0..<(Broker.decompressionLanes + 1)).map { _ in
            Task {
                await executor.perform {
                    counts.value.withLock { $0.running += 1; $0.peak = max($0.peak, $0.running) }
                    _ = gate.wait(timeout: .now() + 20)
                    counts.value.withLock { $0.running -= 1 }
                }
            }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while counts.value.withLock({ $0.running }) < Broker.decompressionLanes && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(counts.value.withLock { $0.running } == Broker.decompressionLanes)
        try await Task.sleep(for: .milliseconds(100))
        #expect(counts.value.withLock { $0.running } == Broker.decompressionLanes)  // the next waits for a lane
        for _ in calls { gate.signal() }
        for call in calls { await call.value }
        #expect(counts.value.withLock { $0.peak } == Broker.decompressionLanes)
        #expect(Broker.decompressionLanes >= 2)
        try await broker.close()
    }

    /// A send that would pass buffer.memory waits for room; past max.block.ms it fails.
    @Test func producerBufferIsBounded() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("b", partitions: 1)
        var producerOptions = ProducerOptions()
        producerOptions.bufferMemoryBytes = 10 * 1080
        producerOptions.lingerMs = 400  // batches sit in the buffer this long
        producerOptions.maxBlockMs = 50
        let impatient = try await Producer(broker: broker, options: producerOptions)
        let value = [UInt8](repeating: 1, count: 1000)
        let records = (0..<11).map { _ in Producer.OutgoingRecord(topic: "b", key: nil, value: value, partition: 0) }
        let results = await impatient.send(records)
        #expect(results.prefix(10).allSatisfy { (try? $0.get()) != nil })
        #expect(throws: TidemarkError.self) { try results[10].get() }
        if case .failure(let error as TidemarkError) = results[10] { #expect(error.code == .timedOut) }

        producerOptions.maxBlockMs = 5_000
        let patient = try await Producer(broker: broker, options: producerOptions)
        let waited = await patient.send(records)
        #expect(waited.allSatisfy { (try? $0.get()) != nil })
        #expect(try broker.offsets(topic: "b", partition: 0).end == 21)
        // A record larger than the whole buffer fails at once.
        await #expect(throws: TidemarkError.self) {
            _ = try await patient.send(topic: "b", key: nil, value: [UInt8](repeating: 0, count: 20_000))
        }
        try await broker.close()
    }

    /// JoinGroup (v4+) without a member id hands one out; a client that never uses them
    /// cannot grow the group's list past its bound.
    @Test func unusedMemberIdsAreBounded() {
        var group = ClassicGroup(groupId: "g", options: GroupOptions())
        for _ in 0..<5000 {
            let request = JoinGroupRequest(
                groupId: "g", clientId: "flood", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, protocolType: "consumer",
                protocols: [("range", [])], requireKnownMemberId: true)
            let (response, _) = group.join(request, nowMs: 0)
            #expect(response?.error == .memberIdRequired)
        }
        #expect(group.pendingMemberIdCount <= ClassicGroup.maxPendingMemberIds)
    }

    /// What a member keeps for as long as it stays is bounded at the door: a JoinGroup's
    /// protocols (at most 100, 1 MiB), a ConsumerGroupHeartbeat's rack and instance ids (255
    /// bytes) and subscribed names (valid topic names).
    @Test func whatAMemberKeepsIsBounded() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        func join(_ protocols: [(name: String, metadata: [UInt8])]) async -> TidemarkError.Code? {
            await broker.groups.join(
                JoinGroupRequest(
                    groupId: "g", clientId: "c", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, protocolType: "consumer",
                    protocols: protocols)
            ).error
        }
        #expect(await join(Array(repeating: (name: "", metadata: []), count: 101)) == .inconsistentGroupProtocol)
        #expect(await join([("range", [UInt8](repeating: 0, count: (1 << 20) + 1))]) == .inconsistentGroupProtocol)
        #expect(await join([("range", [UInt8](repeating: 0, count: 1_000))]) == nil)

        func beat(rack: String? = nil, instance: String? = nil, names: [String] = ["t"]) -> TidemarkError.Code? {
            broker.consumerGroupHeartbeat(
                ConsumerHeartbeat(
                    groupId: "k", memberId: "m", memberEpoch: 0, instanceId: instance, rackId: rack, rebalanceTimeoutMs: 60_000,
                    subscribedTopicNames: names, clientId: "c")
            ).error
        }
        #expect(beat(rack: String(repeating: "r", count: 256)) == .invalidRequest)
        #expect(beat(instance: String(repeating: "i", count: 256)) == .invalidRequest)
        #expect(beat(names: ["t", String(repeating: "n", count: 250)]) == .invalidRequest)
        #expect(beat(names: ["a/b"]) == .invalidRequest)
        #expect(beat(rack: "r1") == nil)
        try await broker.close()
    }

    /// Classic groups are bounded: members per group (group.max.size) and what all members keep
    /// (group.members.max.bytes): each member kept up to 1 MiB of protocol metadata for as long
    /// as it heartbeated, in any number of groups, and the leader's assignments beside it.
    @Test func classicGroupMembersAreBounded() async throws {
        let dir = TemporaryDirectory()
        var opts = options()
        opts.groups.classicGroupMaxSize = 1
        opts.groups.membersMaxBytes = 1 << 20
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        func join(_ group: String, _ bytes: Int, member: String = "") async -> JoinGroupResponse {
            await broker.groups.join(
                JoinGroupRequest(
                    groupId: group, memberId: member, clientId: "c", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000,
                    protocolType: "consumer", protocols: [("range", [UInt8](repeating: 1, count: bytes))]))
        }
        #expect(await join("solo", 100).error == nil)
        #expect(await join("solo", 100).error == .groupMaxSizeReached)
        var ids: [String] = []
        for g in 0..<3 {
            let joined = await join("big-\(g)", 300_000)
            #expect(joined.error == nil)
            ids.append(joined.memberId)
        }
        #expect(await join("big-3", 300_000).error == .groupMaxSizeReached)
        // A member already in rejoins as it was.
        #expect(await join("big-0", 300_000, member: ids[0]).error == nil)
        let generation = await join("big-0", 300_000, member: ids[0]).generationId
        // The leader's assignments count too.
        let sync = await broker.groups.sync(
            groupId: "big-0", memberId: ids[0], generationId: generation, assignments: [ids[0]: [UInt8](repeating: 2, count: 200_000)])
        #expect(sync.error == .groupMaxSizeReached)
        #expect(await broker.groups.sync(groupId: "big-0", memberId: ids[0], generationId: generation, assignments: [ids[0]: [1]]).error == nil)
        // A member that leaves makes room.
        #expect(broker.groups.leave(groupId: "big-1", members: [(ids[1], nil)]) == [nil])
        #expect(await join("big-3", 300_000).error == nil)
        #expect(broker.groups.state.withLock { $0.memberBytes } < 1 << 20)
        try await broker.close()
    }

    /// Groups made by joins alone are bounded too: each JoinGroup v4+ under a new group id
    /// made a group holding one handed-out id (MEMBER_ID_REQUIRED) for the client's session
    /// timeout, counted nowhere (200,000 of them took 330 MB, and their once-a-second tick
    /// held the coordinator's lock 1.7 s). A group and its handed-out ids count toward
    /// group.members.max.bytes; a tick passes groups with nothing due by, and still expires
    /// the ids when they are due, and the groups a while after.
    @Test func groupsMadeByJoinsAloneAreBounded() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        var opts = options(clock: clock, maintenanceMs: 3_600_000)
        opts.groups.membersMaxBytes = 256 << 10
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        func join(_ group: String) async -> JoinGroupResponse {
            await broker.groups.join(
                JoinGroupRequest(
                    groupId: group, memberId: "", clientId: "c", sessionTimeoutMs: 30_000, rebalanceTimeoutMs: 30_000,
                    protocolType: "consumer", protocols: [("range", [1, 2, 3])], requireKnownMemberId: true))
        }
        var made = 0
        while made < 2_000, await join("g-\(made)").error == .memberIdRequired { made += 1 }
        #expect(made > 50 && made < 400, "\(made) groups in 256 KiB")
        #expect(await join("one-more").error == .groupMaxSizeReached)
        #expect(broker.groups.state.withLock { $0.memberBytes } <= 256 << 10)
        // Nothing due yet: the groups stay.
        clock.advance(20_000)
        await broker.groups.tick()
        #expect(broker.groups.state.withLock { $0.groups.count } == made)
        // The ids expire at their session timeout, the groups once empty for emptyGroupRetentionMs.
        clock.advance(10_001)
        await broker.groups.tick()
        #expect(broker.groups.state.withLock { $0.groups.values.allSatisfy(\.isIdle) })
        clock.advance(opts.groups.emptyGroupRetentionMs)
        await broker.groups.tick()
        #expect(broker.groups.state.withLock { ($0.groups.count, $0.memberBytes) } == (0, 0))
        #expect(await join("one-more").error == .memberIdRequired)
        try await broker.close()
    }

    /// A pattern new to a group is matched before the coordinator's lock, within its budget:
    /// one that takes too long (`.*` 2,000 times against 300 long names) is refused, an
    /// ordinary one is assigned what it matches, and then a topic made later.
    @Test func aNewPatternIsMatchedWithinItsBudget() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        for index in 0..<300 { try await broker.createTopic("jobs." + String(repeating: "x", count: 200) + "-\(index)", partitions: 1) }
        func beat(_ regex: String, member: String = "", epoch: Int32 = 0) -> ConsumerHeartbeatResult {
            broker.consumerGroupHeartbeat(
                ConsumerHeartbeat(
                    groupId: "patterns", memberId: member, memberEpoch: epoch, rebalanceTimeoutMs: 60_000,
                    subscribedTopicNames: nil, subscribedTopicRegex: regex, clientId: "c"))
        }
        let costly = beat(String(repeating: ".*", count: 2_000))
        #expect(costly.error == .invalidRegularExpression && costly.errorMessage?.contains("300 topics") == true)
        let joined = beat("jobs\\.x+-2.*")
        #expect(joined.error == nil && joined.assignment?.count == 111)  // -2, -20...-29, -200...-299
        #expect(broker.groups.describeConsumerGroup("patterns")?.members.count == 1)
        try await broker.close()
    }

    /// Consumer-protocol members count toward the same bound (group.members.max.bytes): each
    /// kept up to 10,000 subscribed names (2.5 MB) until its session timed out, in any number of
    /// groups. A pattern over 4 KiB is refused (it is kept and compiled).
    @Test func consumerGroupMembersAreBounded() async throws {
        let dir = TemporaryDirectory()
        var opts = options()
        opts.groups.membersMaxBytes = 1 << 20
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        let names = (0..<2_100).map { "topic-with-a-long-name-of-about-one-hundred-bytes-" + String(repeating: "x", count: 50) + "-\($0)" }
        func beat(_ group: String, member: String = "", epoch: Int32 = 0, names: [String]? = nil, regex: String? = nil) -> ConsumerHeartbeatResult {
            broker.consumerGroupHeartbeat(
                ConsumerHeartbeat(
                    groupId: group, memberId: member, memberEpoch: epoch, rebalanceTimeoutMs: 60_000,
                    subscribedTopicNames: names, subscribedTopicRegex: regex, clientId: "c"))
        }
        // About 260 KB each: three fit in 1 MiB, the fourth does not.
        var joined: [ConsumerHeartbeatResult] = []
        for g in 0..<3 {
            joined.append(beat("wide-\(g)", names: names))
            #expect(joined.last!.error == nil)
        }
        #expect(beat("wide-3", names: names).error == .groupMaxSizeReached)
        // A member already in heartbeats on; a small one still joins.
        #expect(beat("wide-0", member: joined[0].memberId, epoch: joined[0].memberEpoch).error == nil)
        #expect(beat("narrow", names: ["t"]).error == nil)
        #expect(beat("pattern", regex: String(repeating: "a", count: 4_097)).error == .invalidRegularExpression)
        // One that leaves makes room.
        #expect(beat("wide-1", member: joined[1].memberId, epoch: -1).error == nil)
        #expect(beat("wide-3", names: names).error == nil)
        try await broker.close()
    }

    /// A consumer-protocol member that joins and leaves makes an empty group, kept for
    /// emptyGroupRetentionMs and counted nowhere (a client looping over group ids grew the
    /// broker without end), and the tick walked every consumer group each second under the
    /// coordinator's lock. A group counts toward group.members.max.bytes; the tick looks at
    /// the groups whose first member deadline has come (a shortened session timeout counts at
    /// once) and at empty ones.
    @Test func consumerGroupsMadeByJoinAndLeaveAreBounded() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        var opts = options(clock: clock, maintenanceMs: 3_600_000)
        opts.groups.membersMaxBytes = 256 << 10
        opts.groups.emptyGroupRetentionMs = 10_000
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        func beat(_ group: String, member: String = "", epoch: Int32 = 0) -> ConsumerHeartbeatResult {
            broker.consumerGroupHeartbeat(
                ConsumerHeartbeat(
                    groupId: group, memberId: member, memberEpoch: epoch, rebalanceTimeoutMs: 60_000, subscribedTopicNames: ["t"],
                    subscribedTopicRegex: nil, clientId: "c"))
        }
        // Two members that stay: one at the default session timeout (45 s), one in a group whose
        // timeout is then shortened to 5 s.
        let stays = beat("stays")
        let shortened = beat("shortened")
        #expect(stays.error == nil && shortened.error == nil)
        var made = 0
        while made < 2_000 {
            let joined = beat("c-\(made)")
            guard joined.error == nil else {
                #expect(joined.error == .groupMaxSizeReached)
                break
            }
            #expect(beat("c-\(made)", member: joined.memberId, epoch: -1).error == nil)
            made += 1
        }
        #expect(made > 50 && made < 400, "\(made) empty groups in 256 KiB")
        #expect(broker.groups.state.withLock { $0.memberBytes } <= 256 << 10)
        try await broker.alterGroupConfig(
            "shortened", changes: [.set("consumer.heartbeat.interval.ms", "1000"), .set("consumer.session.timeout.ms", "5000")])
        clock.advance(6_000)
        await broker.groups.tick()
        #expect(broker.groups.state.withLock { ($0.consumerGroups["stays"]?.isEmpty, $0.consumerGroups["shortened"]?.isEmpty) } == (false, true))
        // Empty groups go once empty for emptyGroupRetentionMs; the member that stays expires at its session timeout.
        clock.advance(10_000)
        await broker.groups.tick()
        #expect(broker.groups.state.withLock { Set($0.consumerGroups.keys) } == ["stays"])
        #expect(broker.groups.state.withLock { $0.consumerGroups["stays"]?.isEmpty } == false)
        clock.advance(45_001 - 16_000)
        await broker.groups.tick()
        #expect(broker.groups.state.withLock { $0.consumerGroups["stays"]?.isEmpty } == true)
        clock.advance(10_000)
        await broker.groups.tick()
        #expect(broker.groups.state.withLock { ($0.consumerGroups.count, $0.memberBytes) } == (0, 0))
        #expect(beat("one-more").error == nil)
        try await broker.close()
    }

    /// Share groups are bounded (group.share.max.groups): a ShareFetch session opened under any
    /// new group id made share state that only an admin delete removed, so a client looping
    /// over group ids grew the broker without end. A group counts while it has members or
    /// state, across a restart; deleting one makes room.
    @Test func shareGroupsAreBounded() async throws {
        let dir = TemporaryDirectory()
        var opts = options()
        opts.groups.shareMaxGroups = 3
        var broker: Broker? = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker!.createTopic("jobs", partitions: 2)
        try await ShareCoordinatorTests.produce(broker!, "jobs", count: 4)
        let jobs = [TopicPartition("jobs", 0), TopicPartition("jobs", 1)]
        func fetch(_ b: Broker, _ group: String) -> (ShareSessionUpdate, [ShareAcquisition]) {
            let update = b.shares.updateSession(
                group: group, member: "m", epoch: 0, add: jobs, forget: [], acknowledgements: [:], allowRenew: false,
                view: b.shareLogView)
            return (update, b.shares.acquire(group: group, member: "m", partitions: jobs, maxRecords: 10, view: b.shareLogView))
        }
        // Two groups by sessions alone (no heartbeat, as a hostile client does), one by a heartbeat.
        #expect(fetch(broker!, "g1").1.flatMap(\.offsets).count == 4)
        #expect(fetch(broker!, "g2").1.flatMap(\.offsets).count == 4)
        let joined = broker!.shareGroupHeartbeat(ShareHeartbeat(groupId: "g3", memberId: "w", memberEpoch: 0, subscribedTopicNames: ["jobs"]))
        #expect(joined.error == nil)
        // A fourth is refused whichever way it comes; known groups go on.
        let (refused, none) = fetch(broker!, "g4")
        #expect(refused.error == .groupMaxSizeReached)
        #expect(none.isEmpty)
        #expect(broker!.shareGroupHeartbeat(ShareHeartbeat(groupId: "g4", memberId: "w", memberEpoch: 0, subscribedTopicNames: ["jobs"])).error == .groupMaxSizeReached)
        await #expect(throws: TidemarkError.self) {
            try await broker!.shares.resetOffsets(group: "g4", offsets: [jobs[0]: 0], view: broker!.shareLogView)
        }
        #expect(fetch(broker!, "g3").1.flatMap(\.offsets).count == 4)
        #expect(broker!.shares.state.withLock { $0.known.count } == 3)
        try await broker!.close()

        // After a restart the two groups' share state still counts (g3's member is gone, its
        // state is not).
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(fetch(broker!, "g4").0.error == .groupMaxSizeReached)
        #expect(await broker!.deleteGroups(["g1"]).allSatisfy { $0.error == nil })
        #expect(broker!.shares.state.withLock { $0.known.count } == 2)
        #expect(fetch(broker!, "g4").1.flatMap(\.offsets).count == 4)
        try await broker!.close()
    }

    /// Groups nobody uses any more are dropped from memory; their offsets stay until
    /// offsets.retention (7 days) passes with no member and no commit, then go for good.
    @Test func idleGroupsAndOldOffsetsExpire() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        var opts = options(clock: clock, maintenanceMs: 3_600_000)
        opts.groups.offsetsRetentionCheckIntervalMs = 1000
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("o", partitions: 1)
        for i in 0..<200 {
            let request = JoinGroupRequest(
                groupId: "flood-\(i)", clientId: "c", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, protocolType: "consumer",
                protocols: [("range", [])], requireKnownMemberId: true)
            _ = await broker.groups.join(request)
        }
        #expect(broker.groups.liveGroupCount == 200)
        #expect(try await broker.groups.commitOffsets(groupId: "old", offsets: [TopicPartition("o", 0): CommittedOffset(offset: 3)]) == nil)
        clock.advance(11_000)  // member ids handed out expire with their session timeout
        await broker.groups.tick()
        clock.advance(61_000)
        await broker.groups.tick()
        #expect(broker.groups.liveGroupCount == 0)
        #expect(broker.groups.describeGroup("old").state == .empty)
        #expect(broker.groups.fetchOffsets(groupId: "old")[TopicPartition("o", 0)]?.offset == 3)

        clock.advance(6 * 24 * 3600 * 1000)
        #expect(try await broker.groups.commitOffsets(groupId: "recent", offsets: [TopicPartition("o", 0): CommittedOffset(offset: 1)]) == nil)
        clock.advance(2 * 24 * 3600 * 1000)
        await broker.groups.tick()
        #expect(broker.groups.fetchOffsets(groupId: "old").isEmpty)
        #expect(broker.groups.fetchOffsets(groupId: "recent").count == 1)
        try await broker.close()
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(broker.groups.fetchOffsets(groupId: "old").isEmpty)
        #expect(broker.groups.fetchOffsets(groupId: "recent").count == 1)
        try await broker.close()
    }

    /// Committed offsets are bounded in memory (offsets.memory.max.bytes): standalone commits
    /// to new group ids, each with 4 KiB of metadata per partition, grew them without end, and
    /// the open that reads them all back with them. Past the bound a commit that would add is
    /// refused (INVALID_COMMIT_OFFSET_SIZE); one that moves offsets on goes through.
    @Test func committedOffsetsAreBounded() async throws {
        let dir = TemporaryDirectory()
        var opts = options()
        opts.groups.offsetsMaxMemoryBytes = 64 << 10
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("o", partitions: 1)
        let tp = TopicPartition("o", 0)
        let metadata = String(repeating: "m", count: 1_000)
        var accepted = 0
        var refusal: TidemarkError.Code?
        while refusal == nil && accepted < 1_000 {
            refusal = try await broker.groups.commitOffsets(groupId: "g-\(accepted)", offsets: [tp: CommittedOffset(offset: 1, metadata: metadata)])
            if refusal == nil { accepted += 1 }
        }
        #expect(refusal == .invalidCommitOffsetSize)
        #expect((40...64).contains(accepted), "\(accepted)")
        // A group moves its offset on, with metadata no longer than before.
        #expect(try await broker.groups.commitOffsets(groupId: "g-0", offsets: [tp: CommittedOffset(offset: 2, metadata: "short")]) == nil)
        #expect(broker.groups.fetchOffsets(groupId: "g-0")[tp]?.offset == 2)
        #expect(try await broker.groups.commitOffsets(groupId: "g-1", offsets: [tp: CommittedOffset(offset: 2, metadata: metadata)]) == nil)
        // The event-loop path refuses the same way.
        let looped = await withCheckedContinuation { (done: CheckedContinuation<TidemarkError.Code?, Never>) in
            broker.groups.commitOffsets(
                groupId: "new", memberId: "", generationId: -1, offsets: [tp: CommittedOffset(offset: 1, metadata: metadata + metadata)],
                sync: false
            ) { done.resume(returning: try? $0.get()) }
        }
        #expect(looped == .invalidCommitOffsetSize)
        #expect(broker.groups.fetchOffsets(groupId: "new").isEmpty)
        try await broker.close()

        // Read back whole at open, with the same count; deleting groups makes room.
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(try await broker.groups.commitOffsets(groupId: "later", offsets: [tp: CommittedOffset(offset: 1, metadata: metadata + metadata)]) == .invalidCommitOffsetSize)
        #expect(await broker.deleteGroups(["g-2", "g-3"]).allSatisfy { $0.error == nil })
        #expect(try await broker.groups.commitOffsets(groupId: "later", offsets: [tp: CommittedOffset(offset: 1, metadata: metadata + metadata)]) == nil)
        try await broker.close()
    }

    /// Producers remembered per partition are bounded: past `maxProducers` the least
    /// recently active are forgotten, down to nine tenths, but not one active within
    /// `evictionGraceMs` (forgotten, its retry was appended twice: producer-per-request
    /// clients pushed producers out within seconds), until `hardMaxProducers`.
    @Test func producerStateIsBoundedPerPartition() throws {
        let batch = try idempotentBatch(producerId: 0, epoch: 0, sequence: 0, values: ["x"])
        let template = try batch.withUnsafeBytes { try RecordBatchHeader.validate($0) }
        func record(_ table: inout ProducerStateTable, _ id: Int64, at nowMs: Int64) {
            var header = template
            header.producerId = id
            header.baseOffset = id
            table.record(header, nowMs: nowMs)
        }
        let cap = Int64(ProducerStateTable.maxProducers), grace = ProducerStateTable.evictionGraceMs
        var table = ProducerStateTable()
        // A burst of new producers within the grace: every one kept.
        for id in 0..<cap + 500 { record(&table, id, at: id) }
        #expect(table.producerCount == Int(cap) + 500)
        // Once they are idle past it, the next new producer makes room, oldest first.
        record(&table, cap + 500, at: cap + 500 + grace)
        #expect(table.producerCount == Int(cap - cap / 10))
        #expect(table.entries[0] == nil && table.entries[cap + 499] != nil && table.entries[cap + 500] != nil)
        // Past the hard bound, producers within the grace go too.
        var burst = ProducerStateTable()
        for id in 0..<Int64(ProducerStateTable.hardMaxProducers + 100) { record(&burst, id, at: 0) }
        #expect(burst.producerCount <= ProducerStateTable.hardMaxProducers)
        #expect(burst.entries[Int64(ProducerStateTable.hardMaxProducers + 99)] != nil)
    }

    /// Producers remembered across partitions are bounded (`maxProducerStates`): a client
    /// minting a producer id per batch on many partitions (up to 10,000 each) grew memory
    /// without bound. Past the bound the partitions that remember the most are cut to one cap
    /// (at least 100), the least recently active forgotten first.
    @Test func producerStateIsBoundedAcrossPartitions() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        var opts = options(clock: clock)
        opts.maxProducerStates = 300
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("minted", partitions: 2)
        for partition in 0..<2 {
            for id in 0..<Int64(400) {
                clock.advance(1)
                _ = try await broker.append(
                    topic: "minted", partition: partition,
                    batches: try idempotentBatch(producerId: 1_000 * Int64(partition) + id, epoch: 0, sequence: 0, values: ["x"]))
            }
        }
        await broker.runMaintenance()
        for partition in 0..<2 {
            let table = try broker.partitionState("minted", partition).producers.withLock { $0 }
            #expect(table.producerCount == 150)
            // The newest 150 of each partition.
            #expect(Set(table.entries.keys) == Set((250..<400).map { 1_000 * Int64(partition) + $0 }))
        }
        // Under the bound nothing more is forgotten.
        await broker.runMaintenance()
        #expect(try broker.partitionState("minted", 0).producers.withLock { $0.producerCount } == 150)
        try await broker.close()
        // The cap is the largest that brings the total within the bound: partitions under it
        // keep all theirs. 101 busy partitions among 10,000 idle ones, 1% over a million, lose
        // 1% each (cut to 100 each, they lost 99%).
        #expect(Broker.producerStateCap([400, 400], bound: 300) == 150)
        #expect(Broker.producerStateCap([50, 400], bound: 300) == 250)
        #expect(Broker.producerStateCap([0, 10_000, 10_000], bound: 1_000_000) == nil)
        #expect(Broker.producerStateCap([Int](repeating: 0, count: 10_000) + [Int](repeating: 10_000, count: 101), bound: 1_000_000) == 9_900)
    }

    /// The ids InitProducerId passes over are what the partitions remember at that call, not
    /// every id they ever remembered (a client minting high ids between InitProducerIds grew
    /// the set for ever).
    @Test func passedOverProducerIdsAreWhatPartitionsRememberNow() throws {
        let dir = TemporaryDirectory()
        var ids = try ProducerIdAllocator(path: dir.file("producer-ids"))
        ids.skip([5, 1 << 60, 1 << 61])
        #expect(ids.skipped == [5, 1 << 60, 1 << 61])
        ids.skip([1 << 61])
        #expect(ids.skipped == [1 << 61])
        for expected in Int64(0)..<3 { #expect(try ids.allocate() == expected) }
    }

    /// A long poll answered by an append leaves no timer behind (each used to sleep in a task
    /// of its own until its deadline); deadlines share one sleeping task.
    @Test func wokenLongPollsLeaveNoTimers() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("w", partitions: 1)
        let partition = try broker.partitionState("w", 0)
        for round in 0..<20 {
            async let polled = broker.fetch(topic: "w", partition: 0, offset: Int64(round), maxWaitMs: 60_000)
            while partition.notifier.waiterCount == 0 { try await Task.sleep(for: .milliseconds(1)) }
            try await HardeningTests.produce(broker, "w", 0, ["r\(round)"])
            #expect(try await polled.slice != nil)
        }
        #expect(broker.timers.pendingCount == 0 && !broker.timers.hasSleeper)
        // Many polls at once: one sleeping task for all their deadlines (a minute each: a
        // loaded run may take long to start all three), answered by an append.
        async let a = broker.fetch(topic: "w", partition: 0, offset: 20, maxWaitMs: 60_000)
        async let b = broker.fetch(topic: "w", partition: 0, offset: 20, maxWaitMs: 59_000)
        async let c = broker.fetch(topic: "w", partition: 0, offset: 20, maxWaitMs: 58_000)
        let deadline = ContinuousClock.now + .seconds(30)
        while partition.notifier.waiterCount < 3 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        try #require(partition.notifier.waiterCount == 3)
        #expect(broker.timers.pendingCount == 3 && broker.timers.hasSleeper)
        try await HardeningTests.produce(broker, "w", 0, ["last"])
        let answers = try await [a, b, c]
        #expect(answers.allSatisfy { $0.slice != nil })
        #expect(broker.timers.pendingCount == 0 && !broker.timers.hasSleeper)
        // A deadline that passes answers with nothing (the sleeper fired) and leaves no timer.
        let empty = try await broker.fetch(topic: "w", partition: 0, offset: 21, maxWaitMs: 200)
        #expect(empty.slice == nil)
        #expect(broker.timers.pendingCount == 0)
        try await broker.close()
    }

    /// However large max.message.bytes is (up to Int32.max), checking a compressed batch
    /// inflates it to at most 1 GiB, not 4x the setting (8 GiB).
    @Test func decompressionForChecksIsBounded() {
        var config = TopicConfig()
        #expect(config.batchValidator.maxDecompressedBytes == RecordBatch.defaultMaxDecompressedBytes)
        config.maxMessageBytes = Int(Int32.max)
        #expect(config.batchValidator.maxDecompressedBytes == 1 << 30)
    }
}

import Foundation
import Synchronization
import TestSupport
import Testing
import TidemarkStorage
@testable import Tidemark

@Suite(.serialized) struct GroupConsumerTests {
    static func memberOptions(_ name: String) -> GroupConsumerOptions {
        var options = GroupConsumerOptions()
        options.clientId = name
        options.heartbeatIntervalMs = 100
        options.sessionTimeoutMs = 3000
        options.rebalanceTimeoutMs = 3000
        return options
    }

    /// Waits until the members' assignments cover all partitions exactly once.
    static func settled(_ members: [GroupConsumer], partitions: Int, timeout: Duration = .seconds(20)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let generations = Set(members.map(\.generationId))
            let all = members.flatMap(\.assignment)
            if generations.count == 1, all.count == partitions, Set(all).count == partitions { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test func threeMembersShareSixPartitionsAndALeavingMemberLosesNothing() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("work", partitions: 6)
        let producer = try await Producer(broker: broker)
        for i in 0..<1500 { _ = try await producer.send(topic: "work", key: bytes("k\(i)"), value: bytes("\(i)")) }

        final class Shared: Sendable {
            let seen = Mutex<[String: Int]>([:])
            let stopC = Mutex(false)
            let processedByC = Mutex(0)
        }
        let shared = Shared()
        let members = (0..<3).map { GroupConsumer(broker: broker, groupId: "workers", topics: ["work"], options: Self.memberOptions("m\($0)")) }

        // Each member: poll, "process" (record), then commit: at least once.
        let tasks = members.enumerated().map { index, member in
            Task { [shared] in
                while !Task.isCancelled {
                    if index == 2 && shared.stopC.withLock({ $0 }) {
                        try? await member.commit()
                        await member.close()
                        return
                    }
                    guard let records = try? await member.poll(maxRecords: 50, maxWaitMs: 100) else { continue }
                    shared.seen.withLock { s in for r in records { s[text(r.value), default: 0] += 1 } }
                    if index == 2 { shared.processedByC.withLock { $0 += records.count } }
                    try? await member.commit()
                }
            }
        }
        #expect(await Self.settled(members, partitions: 6), "3 members never shared the 6 partitions")
        // Let member C work a little, then leave mid-stream while more records arrive. On a
        // loaded machine the first members may have consumed all 1,500 records before C got
        // its partitions: records keep arriving until C has processed some.
        var produced = 1500
        let deadlineC = ContinuousClock.now + .seconds(30)
        while shared.processedByC.withLock({ $0 }) < 20 && ContinuousClock.now < deadlineC {
            for i in produced..<(produced + 30) { _ = try await producer.send(topic: "work", key: bytes("k\(i)"), value: bytes("\(i)")) }
            produced += 30
            try await Task.sleep(for: .milliseconds(20))
        }
        shared.stopC.withLock { $0 = true }
        for i in produced..<(produced + 1500) { _ = try await producer.send(topic: "work", key: bytes("k\(i)"), value: bytes("\(i)")) }
        produced += 1500
        #expect(await Self.settled(Array(members.prefix(2)), partitions: 6), "2 members never took over C's partitions")

        let deadline = ContinuousClock.now + .seconds(30)
        while shared.seen.withLock({ $0.count }) < produced && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        let counts = shared.seen.withLock { $0 }
        let missing = (0..<produced).filter { counts["\($0)"] == nil }
        #expect(missing.isEmpty, "lost \(missing.count) messages, e.g. \(missing.prefix(5))")
        #expect(shared.processedByC.withLock { $0 } > 0)
        // Everything is committed in the end: the group's offsets are the log ends.
        for member in members.prefix(2) { try? await member.commit() }
        let committed = broker.groups.fetchOffsets(groupId: "workers")
        for p in 0..<6 {
            #expect(committed[TopicPartition("work", p)]?.offset == (try broker.offsets(topic: "work", partition: p).end))
        }
        for member in members.prefix(2) { await member.close() }
        try await broker.close()
    }

    /// Members that join at once, with long timeouts: a member whose SyncGroup met the next
    /// rebalance rejoins as itself. (It rejoined with no id, as a new member; the old one
    /// then held every rebalance until its rebalance timeout removed it, 30 s here.)
    @Test func membersJoiningAtOnceSettleWithoutWaitingOutTheirTimeouts() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("work", partitions: 6)
        let members = (0..<6).map { index in
            var options = Self.memberOptions("m\(index)")
            options.sessionTimeoutMs = 30_000
            options.rebalanceTimeoutMs = 30_000
            return GroupConsumer(broker: broker, groupId: "crowd", topics: ["work"], options: options)
        }
        let started = ContinuousClock.now
        let polls = members.map { member in
            Task {
                while !Task.isCancelled { _ = try? await member.poll(maxRecords: 10, maxWaitMs: 50) }
            }
        }
        #expect(await Self.settled(members, partitions: 6, timeout: .seconds(12)), "not settled after \(ContinuousClock.now - started)")
        for poll in polls { poll.cancel() }
        for member in members { await member.close() }
        try await broker.close()
    }

    /// Partitions added to a subscribed topic, and a topic made after the subscription, are
    /// assigned (the group read partition 0 for ever, and nothing of a topic made later); a
    /// closed member's poll throws (it went on reading partitions now another's).
    @Test func partitionsAddedLaterAreAssignedAndAClosedMemberReadsNothing() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("grows", partitions: 1)
        let member = GroupConsumer(broker: broker, groupId: "g", topics: ["grows", "later"], options: Self.memberOptions("m"))
        _ = try await member.poll(maxRecords: 10, maxWaitMs: 50)
        #expect(member.assignment == [TopicPartition("grows", 0)])
        try await broker.createPartitions(topic: "grows", count: 3)
        try await broker.createTopic("later", partitions: 1)
        let deadline = ContinuousClock.now + .seconds(20)
        while member.assignment.count < 4 && ContinuousClock.now < deadline {
            _ = try await member.poll(maxRecords: 10, maxWaitMs: 100)
        }
        #expect(Set(member.assignment) == [TopicPartition("grows", 0), TopicPartition("grows", 1), TopicPartition("grows", 2), TopicPartition("later", 0)])
        await member.close()
        await #expect(throws: TidemarkError.self) { try await member.poll(maxRecords: 10, maxWaitMs: 10) }
        try await broker.close()
    }

    /// A member of many partitions committing after each record commits the positions that
    /// moved (and, first, those the group had no offset for: a restart then starts where this
    /// member did), not one offset per assigned partition every time: 1,000 partitions wrote
    /// 1,000 offsets per job (1.4 ms a job, against 90 us with one partition). A rebalance's
    /// commit check still runs when nothing moved.
    @Test func aCommitWritesThePositionsThatMoved() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("jobs", partitions: 50)
        for i in 0..<3 { _ = try await broker.append(topic: "jobs", partition: 7, batches: try idempotentBatch(producerId: -1, epoch: -1, sequence: -1, values: ["j\(i)"])) }
        let member = GroupConsumer(broker: broker, groupId: "g", topics: ["jobs"], options: Self.memberOptions("m"))
        func written() -> Int64 { broker.groups.store.partition.log.logEndOffset }
        _ = try await member.poll(maxRecords: 1, maxWaitMs: 5_000)
        #expect(member.assignment.count == 50)
        let before = written()
        try await member.commit()
        let first = written() - before
        #expect(first >= 50, "the first commit writes every partition's position: \(first) records")
        var got = 1
        while got < 3 {
            got += try await member.poll(maxRecords: 1, maxWaitMs: 5_000).count
            let start = written()
            try await member.commit()
            #expect(written() - start == 1, "\(written() - start) offsets written for one record")
        }
        let start = written()
        try await member.commit()
        #expect(written() == start)  // nothing moved
        #expect(broker.groups.fetchOffsets(groupId: "g", partitions: [TopicPartition("jobs", 7)])[TopicPartition("jobs", 7)]?.offset == 3)
        await member.close()
        try await broker.close()
    }

    /// A member processing a batch while another joins stays in the group up to its rebalance
    /// timeout, its heartbeats going on (they stopped with the rebalance, and it was evicted at
    /// its session timeout: its records went to the other member again).
    @Test func aMemberBusyDuringARebalanceKeepsItsSession() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("work", partitions: 2)
        var slow = Self.memberOptions("slow")
        slow.sessionTimeoutMs = 1000
        slow.rebalanceTimeoutMs = 20_000
        let first = GroupConsumer(broker: broker, groupId: "busy", topics: ["work"], options: slow)
        _ = try await first.poll(maxRecords: 10, maxWaitMs: 50)
        let firstId = first.memberId
        let second = GroupConsumer(broker: broker, groupId: "busy", topics: ["work"], options: Self.memberOptions("new"))
        let joining = Task { _ = try? await second.poll(maxRecords: 10, maxWaitMs: 50) }
        try await Task.sleep(for: .milliseconds(2500))  // "processing": no poll, past the session timeout
        #expect(broker.groups.describeGroup("busy").members.map(\.memberId).contains(firstId), "evicted at its session timeout")
        _ = try await first.poll(maxRecords: 10, maxWaitMs: 50)
        _ = await joining.value
        #expect(first.memberId == firstId)
        await first.close()
        await second.close()
        try await broker.close()
    }

    /// A member waiting in a long poll joins a rebalance its heartbeat finds, within about a
    /// heartbeat interval: another member's join waited for the whole poll.
    @Test func aLongPollDoesNotHoldARebalance() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("quiet", partitions: 2)
        var waiting = Self.memberOptions("waiting")
        waiting.rebalanceTimeoutMs = 60_000
        waiting.sessionTimeoutMs = 60_000
        let first = GroupConsumer(broker: broker, groupId: "lp", topics: ["quiet"], options: waiting)
        _ = try await first.poll(maxRecords: 10, maxWaitMs: 50)
        let longPoll = Task { try await first.poll(maxRecords: 10, maxWaitMs: 20_000) }
        try await Task.sleep(for: .milliseconds(200))
        let second = GroupConsumer(broker: broker, groupId: "lp", topics: ["quiet"], options: Self.memberOptions("second"))
        let started = ContinuousClock.now
        _ = try await second.poll(maxRecords: 10, maxWaitMs: 10)
        #expect(ContinuousClock.now - started < .seconds(10), "the join waited for the other member's poll")
        #expect(await Self.settled([first, second], partitions: 2, timeout: .seconds(10)))
        longPoll.cancel()
        _ = try? await longPoll.value
        await first.close()
        await second.close()
        try await broker.close()
    }

    @Test func committedOffsetsSurviveARestart() async throws {
        let dir = TemporaryDirectory()
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options())
            try await broker.createTopic("r", partitions: 2)
            let producer = try await Producer(broker: broker)
            for i in 0..<200 { _ = try await producer.send(topic: "r", key: nil, value: bytes("\(i)"), partition: i % 2) }
            let member = GroupConsumer(broker: broker, groupId: "g", topics: ["r"], options: Self.memberOptions("a"))
            var got = 0
            while got < 60 { got += try await member.poll(maxRecords: 30, maxWaitMs: 100).count }
            try await member.commit()
            await member.close()
            try await broker.close()
        }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        let committed = broker.groups.fetchOffsets(groupId: "g")
        let total = committed.values.reduce(Int64(0)) { $0 + $1.offset }
        #expect(total == 60)
        #expect(broker.groups.listGroups().map(\.groupId) == ["g"])
        // A new member resumes exactly after what was committed: 140 records remain.
        let member = GroupConsumer(broker: broker, groupId: "g", topics: ["r"], options: Self.memberOptions("b"))
        var rest: [ConsumerRecord] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while rest.count < 140 && ContinuousClock.now < deadline { rest += try await member.poll(maxRecords: 100, maxWaitMs: 100) }
        #expect(rest.count == 140)
        for record in rest { #expect(record.offset >= committed[TopicPartition("r", record.partition)]!.offset) }
        await member.close()
        try await broker.close()
    }

    static let compactionMetadata = String(repeating: "m", count: 2000)

    /// A broker whose offsets log compacts past `compactionBytes`, with `commits` commits of
    /// the same few keys (groups g0-g2, partition c-0, offset i, 2,000 bytes of metadata): the
    /// log grows, the live state stays small. Maintenance (which compacts too) is kept out of
    /// the way: the tests compact by hand.
    static func withCommits(
        _ commits: Int, compactionBytes: Int64, in dir: TemporaryDirectory
    ) async throws -> (broker: Broker, options: BrokerOptions) {
        var brokerOptions = options(maintenanceMs: 3_600_000)
        brokerOptions.groups.offsetsCompactionBytes = compactionBytes
        let broker = try await Broker.open(dataDirectory: dir.path, options: brokerOptions)
        try await broker.createTopic("c", partitions: 1)
        for i in 0..<commits {
            _ = try await broker.groups.commitOffsets(
                groupId: "g\(i % 3)", offsets: [TopicPartition("c", 0): CommittedOffset(offset: Int64(i), metadata: compactionMetadata)])
        }
        return (broker, brokerOptions)
    }

    @Test func offsetsLogIsCompactedBySnapshot() async throws {
        let dir = TemporaryDirectory()
        let (broker, brokerOptions) = try await Self.withCommits(300, compactionBytes: 256 * 1024, in: dir)
        let store = broker.groups.store
        let metadata = Self.compactionMetadata
        let before = store.partition.log.sizeInBytes
        #expect(before > store.compactionThresholdBytes)
        try await store.compactIfNeeded()
        #expect(store.partition.log.sizeInBytes < before / 10)
        #expect(broker.groups.fetchOffsets(groupId: "g2")[TopicPartition("c", 0)]?.offset == 299)
        try await broker.close()
        let reopened = try await Broker.open(dataDirectory: dir.path, options: brokerOptions)
        #expect(reopened.groups.fetchOffsets(groupId: "g0")[TopicPartition("c", 0)]?.offset == 297)
        #expect(reopened.groups.fetchOffsets(groupId: "g1")[TopicPartition("c", 0)]?.metadata == metadata)
        try await reopened.close()
    }

    /// Entries with metadata are far over the 400 bytes a rewrite is estimated to keep each:
    /// once the rewrite alone passed the trigger, every maintenance pass rewrote the log
    /// again. Now the next rewrite waits for the log to double what the last one left.
    @Test func aCompactedLogIsNotRewrittenUntilItGrows() async throws {
        let dir = TemporaryDirectory()
        var brokerOptions = options(maintenanceMs: 3_600_000)
        brokerOptions.groups.offsetsCompactionBytes = 64 * 1024
        let broker = try await Broker.open(dataDirectory: dir.path, options: brokerOptions)
        try await broker.createTopic("c", partitions: 1)
        let metadata = String(repeating: "m", count: 4_000)
        for i in 0..<100 {
            _ = try await broker.groups.commitOffsets(
                groupId: "g\(i)", offsets: [TopicPartition("c", 0): CommittedOffset(offset: 1, metadata: metadata)])
        }
        let store = broker.groups.store
        try await store.compactIfNeeded()
        let start = store.partition.log.logStartOffset
        #expect(start > 0)
        try await store.compactIfNeeded()
        #expect(store.partition.log.logStartOffset == start, "the log was rewritten again without growing")
        #expect(broker.groups.fetchOffsets(groupId: "g99")[TopicPartition("c", 0)]?.metadata == metadata)
        try await broker.close()
    }

    /// Entries with the most metadata offset.metadata.max.bytes allows (32 KiB): compaction
    /// wrote 1,000 of them per batch, past the offsets log's 16 MiB batch bound, so it failed at
    /// every pass and the log grew; it writes batches of 2 MiB now. A single commit too large for
    /// a batch gets INVALID_COMMIT_OFFSET_SIZE, as in Kafka (it got KAFKA_STORAGE_ERROR).
    @Test func entriesWithLargeMetadataAreCompacted() async throws {
        let dir = TemporaryDirectory()
        var brokerOptions = options(maintenanceMs: 3_600_000)
        brokerOptions.groups.offsetsCompactionBytes = 1 << 20
        brokerOptions.groups.offsetMetadataMaxBytes = 32_767
        var broker = try await Broker.open(dataDirectory: dir.path, options: brokerOptions)
        let tp = TopicPartition("c", 0)
        let metadata = String(repeating: "m", count: 30_000)
        for i in 0..<600 {
            #expect(try await broker.groups.commitOffsets(groupId: "g\(i)", offsets: [tp: CommittedOffset(offset: 1, metadata: metadata)]) == nil)
        }
        let store = broker.groups.store
        try await store.compactIfNeeded()
        #expect(store.partition.log.logStartOffset > 0)
        let wide = Dictionary(uniqueKeysWithValues: (0..<600).map { (TopicPartition("c", $0), CommittedOffset(offset: 1, metadata: metadata)) })
        #expect(try await broker.groups.commitOffsets(groupId: "wide", offsets: wide) == .invalidCommitOffsetSize)
        try await broker.close()
        broker = try await Broker.open(dataDirectory: dir.path, options: brokerOptions)
        #expect(broker.groups.fetchOffsets(groupId: "g599")[tp]?.metadata == metadata)
        #expect(broker.groups.fetchOffsets(groupId: "wide").isEmpty)
        try await broker.close()
    }

    /// Starts a compaction of `store` whose roll opens files 800 ms slowly, and returns once it
    /// holds the offsets log (clear the slowdown on `scope` when done).
    static func slowCompaction(_ store: OffsetStore, scope: String) async throws -> Task<Void, any Error> {
        StorageFaults.slow(.open, by: 800_000_000, pathContains: scope)
        let compaction = Task { try await store.compactIfNeeded() }
        let deadline = ContinuousClock.now + .seconds(30)
        while store.slowHolders.load(ordering: .acquiring) == 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        return compaction
    }

    /// A DescribeGroups of a group known only by its offsets while compaction holds the offsets
    /// log: it waited for the store's lock inside the coordinator's, so every join, heartbeat
    /// and commit check of every group waited for the compaction too.
    @Test func aDescribeDoesNotHoldTheCoordinatorBehindCompaction() async throws {
        let dir = TemporaryDirectory()
        let (broker, _) = try await Self.withCommits(100, compactionBytes: 64 * 1024, in: dir)
        let store = broker.groups.store
        let scope = dir.path + "/__consumer_offsets"
        defer { StorageFaults.clear(pathContains: scope) }
        let compaction = try await Self.slowCompaction(store, scope: scope)
        // A describe of a group known only by its offsets waits for the store: on a thread of its own.
        let described = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = broker.groups.describeGroup("g1")
            described.signal()
        }
        try await Task.sleep(for: .milliseconds(100))
        let started = ContinuousClock.now
        _ = broker.groups.hasMembers("other")
        #expect(ContinuousClock.now - started < .milliseconds(400), "the coordinator waited for the compaction's 800 ms open")
        try await compaction.value
        described.wait()
        try await broker.close()
    }

    /// A commit made on an event loop while compaction holds the offsets log (its roll made
    /// slow: 200 ms per file opened) does not wait for it on the loop: the call returns at
    /// once and the commit is made by a task once compaction is done.
    @Test func aLoopCommitDoesNotWaitForCompaction() async throws {
        let dir = TemporaryDirectory()
        let (broker, brokerOptions) = try await Self.withCommits(100, compactionBytes: 64 * 1024, in: dir)
        let store = broker.groups.store
        let tp = TopicPartition("c", 0)
        let scope = dir.path + "/__consumer_offsets"
        defer { StorageFaults.clear(pathContains: scope) }
        let compaction = try await Self.slowCompaction(store, scope: scope)
        #expect(store.slowHolders.load(ordering: .acquiring) > 0)
        let started = ContinuousClock.now
        let result: Result<TidemarkError.Code?, any Error> = await withCheckedContinuation { continuation in
            broker.groups.commitOffsets(
                groupId: "g0", memberId: "", generationId: -1, offsets: [tp: CommittedOffset(offset: 500)], sync: false
            ) { continuation.resume(returning: $0) }
            #expect(ContinuousClock.now - started < .milliseconds(700), "the commit waited for the compaction's 800 ms open")
        }
        #expect(try result.get() == nil)
        try await compaction.value
        StorageFaults.clear(pathContains: scope)
        #expect(broker.groups.fetchOffsets(groupId: "g0")[tp]?.offset == 500)
        try await broker.close()
        let reopened = try await Broker.open(dataDirectory: dir.path, options: brokerOptions)
        #expect(reopened.groups.fetchOffsets(groupId: "g0")[tp]?.offset == 500)
        try await reopened.close()
    }
}

/// Options an embedding service may set to "never" or get wrong: no trap, no spinning pass.
@Suite struct EmbeddedOptionBoundsTests {
    @Test func extremeIntervalsDoNotTrapTheMaintenancePass() async throws {
        for idle in [Int64(-1), Int64.max] {
            let dir = TemporaryDirectory()
            var opts = options(maintenanceMs: 0)
            opts.segmentIdleCloseMs = idle
            let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
            try await broker.createTopic("t", partitions: 1)
            _ = try await Producer(broker: broker).send(topic: "t", key: nil, value: Array("v".utf8))
            try await Task.sleep(for: .milliseconds(100))  // passes run (a trap ended the process)
            try await broker.close()
        }
    }
}

@Suite struct OffsetResetTests {
    @Test func resetToEarliestLatestTimestampAndShift() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 2)
        let producer = try await Producer(broker: broker)
        for i in 0..<40 {
            _ = try await producer.send(topic: "t", key: nil, value: bytes("\(i)"), partition: i % 2, timestamp: 1_000 + Int64(i))
        }
        let p0 = TopicPartition("t", 0)
        let p1 = TopicPartition("t", 1)
        #expect(try await broker.resetOffsets(group: "g", topic: "t", to: .latest) == [p0: 20, p1: 20])
        #expect(broker.groups.fetchOffsets(groupId: "g")[p0]?.offset == 20)
        #expect(try broker.groupLag(group: "g").map(\.lag) == [0, 0])
        #expect(try await broker.resetOffsets(group: "g", topic: "t", to: .shift(-5)) == [p0: 15, p1: 15])
        #expect(try broker.groupLag(group: "g").map(\.lag) == [5, 5])
        #expect(try await broker.resetOffsets(group: "g", topic: "t", to: .shift(-100)) == [p0: 0, p1: 0])
        // A group that never committed has nothing to shift (Kafka's tool refuses it too).
        await #expect(throws: TidemarkError.self) { try await broker.resetOffsets(group: "new", topic: "t", to: .shift(1), dryRun: true) }
        // Timestamps 1010 and 1011 are records 10 (partition 0, offset 5) and 11 (partition 1, offset 5).
        #expect(try await broker.resetOffsets(group: "g", topic: "t", to: .timestamp(1_010)) == [p0: 5, p1: 5])
        #expect(try await broker.resetOffsets(group: "g", topic: "t", to: .timestamp(9_999)) == [p0: 20, p1: 20])
        // A dry run changes nothing.
        #expect(try await broker.resetOffsets(group: "g", topic: "t", to: .earliest, dryRun: true) == [p0: 0, p1: 0])
        #expect(broker.groups.fetchOffsets(groupId: "g")[p0]?.offset == 20)
        // Refused while the group has members.
        let member = GroupConsumer(broker: broker, groupId: "g", topics: ["t"])
        _ = try await member.poll(maxWaitMs: 0)
        await #expect { try await broker.resetOffsets(group: "g", topic: "t", to: .earliest) } throws: {
            ($0 as? TidemarkError)?.code == .rebalanceInProgress
        }
        await member.close()
        try await broker.close()
    }
}

import Foundation
import Synchronization
import TestSupport
import Testing
@testable import Tidemark
import TidemarkStorage

@Suite struct IdempotenceTests {
    @Test func aRetriedBatchIsAnsweredWithItsOriginalOffset() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("i", partitions: 1)
        let (pid, epoch) = try await broker.initProducerId()
        let first = try idempotentBatch(producerId: pid, epoch: epoch, sequence: 0, values: ["a", "b"])
        let second = try idempotentBatch(producerId: pid, epoch: epoch, sequence: 2, values: ["c"])
        let r1 = try await broker.append(topic: "i", partition: 0, batches: first)
        let r2 = try await broker.append(topic: "i", partition: 0, batches: second)
        #expect(r1.baseOffset == 0 && r2.baseOffset == 2)
        // Retries of either (as after a lost response) append nothing and get the original offsets.
        let retry1 = try await broker.append(topic: "i", partition: 0, batches: first)
        #expect(retry1.isDuplicate && retry1.baseOffset == 0 && retry1.lastOffset == 1)
        let retry2 = try await broker.append(topic: "i", partition: 0, batches: second)
        #expect(retry2.isDuplicate && retry2.baseOffset == 2)
        #expect(try await readPartition(broker, "i", 0).map { text($0.value) } == ["a", "b", "c"])
        // A gap is out of order; an older epoch is fenced; a new epoch starts at 0.
        await #expect {
            try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: epoch, sequence: 5, values: ["x"]))
        } throws: { ($0 as? TidemarkError)?.code == .outOfOrderSequence }
        _ = try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 1, sequence: 0, values: ["e1"]))
        await #expect {
            try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 3, values: ["old"]))
        } throws: { ($0 as? TidemarkError)?.code == .invalidProducerEpoch }
        await #expect {
            try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 2, sequence: 7, values: ["y"]))
        } throws: { ($0 as? TidemarkError)?.code == .outOfOrderSequence }
        // Non-idempotent batches (producer id -1) skip all of this.
        let plain = try idempotentBatch(producerId: -1, epoch: -1, sequence: -1, values: ["p"])
        _ = try await broker.append(topic: "i", partition: 0, batches: plain)
        _ = try await broker.append(topic: "i", partition: 0, batches: plain)
        #expect(try await readPartition(broker, "i", 0).map { text($0.value) } == ["a", "b", "c", "e1", "p", "p"])
        try await broker.close()
    }

    /// The batches of one append are checked in order, each after the ones before it: a
    /// producer's consecutive batches in one call are appended (they were refused as out of
    /// order, checked against the state before the call), and a batch given twice is refused
    /// (it was appended twice).
    @Test func theBatchesOfOneAppendAreCheckedInOrder() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("i", partitions: 1)
        let (pid, epoch) = try await broker.initProducerId()
        func batch(_ sequence: Int32, _ value: String) throws -> [UInt8] {
            try idempotentBatch(producerId: pid, epoch: epoch, sequence: sequence, values: [value])
        }
        _ = try await broker.append(topic: "i", partition: 0, batches: try batch(0, "a"))
        let two = try await broker.append(topic: "i", partition: 0, batches: try batch(1, "b") + batch(2, "c"))
        #expect(two.baseOffset == 1 && two.lastOffset == 2 && !two.isDuplicate)
        await #expect {
            try await broker.append(topic: "i", partition: 0, batches: try batch(3, "d") + batch(3, "d"))
        } throws: { ($0 as? TidemarkError)?.code == .outOfOrderSequence }
        // Retried together, the two are one duplicate answer.
        let retried = try await broker.append(topic: "i", partition: 0, batches: try batch(1, "b") + batch(2, "c"))
        #expect(retried.isDuplicate && retried.baseOffset == 1 && retried.lastOffset == 2)
        #expect(try await readPartition(broker, "i", 0).map { text($0.value) } == ["a", "b", "c"])
        try await broker.close()
    }

    /// The embedded producer's batch that reached the log but not the disk (the partition's
    /// directory could not be opened to sync it: EMFILE, the log stays writable) keeps its
    /// sequence numbers. (They were given back: the next batch of as many records was answered
    /// as its duplicate, with its offset, and never written.)
    @Test func aBatchInTheLogButNotDurableKeepsItsSequence() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        var config = TopicConfig()
        config.flushPolicy = .everyAppend
        try await broker.createTopic("d", partitions: 1, config: config)
        let producer = try await Producer(broker: broker)
        StorageFaults.inject(.syncDirectory, .tooManyOpenFiles, pathContains: dir.path + "/d-0", times: 1)
        await #expect(throws: (any Error).self) { _ = try await producer.send(topic: "d", key: nil, value: bytes("A")) }
        let b = try await producer.send(topic: "d", key: nil, value: bytes("B"))
        #expect(b.offset == 1)
        #expect(try await readPartition(broker, "d", 0).map { text($0.value) } == ["A", "B"])
        try await broker.close()
    }

    @Test func onlyTheLastFiveBatchesAreRemembered() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("i", partitions: 1)
        let (pid, _) = try await broker.initProducerId()
        var batches: [[UInt8]] = []
        for n in 0..<7 {
            let batch = try idempotentBatch(producerId: pid, epoch: 0, sequence: Int32(n), values: ["v\(n)"])
            batches.append(batch)
            _ = try await broker.append(topic: "i", partition: 0, batches: batch)
        }
        for n in 2..<7 { #expect(try await broker.append(topic: "i", partition: 0, batches: batches[n]).baseOffset == Int64(n)) }
        await #expect { try await broker.append(topic: "i", partition: 0, batches: batches[0]) } throws: {
            ($0 as? TidemarkError)?.code == .outOfOrderSequence
        }
        try await broker.close()
    }

    /// A power loss can keep a producer snapshot (written with the close) and lose the log's
    /// tail it covers. The open ignores it and replays, and rewrites it at once: left as it
    /// was, it would be loaded after a later crash, once new records carry the log past its
    /// offset, and describe records that no longer exist.
    @Test func aSnapshotAheadOfTheRecoveredLogIsReplaced() async throws {
        let dir = TemporaryDirectory()
        let first: [UInt8]
        let second: [UInt8]
        var pid: Int64 = 0
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options())
            try await broker.createTopic("i", partitions: 1)
            pid = try await broker.initProducerId().producerId
            first = try idempotentBatch(producerId: pid, epoch: 0, sequence: 0, values: ["a"])
            second = try idempotentBatch(producerId: pid, epoch: 0, sequence: 1, values: ["b", "c"])
            _ = try await broker.append(topic: "i", partition: 0, batches: first)
            _ = try await broker.append(topic: "i", partition: 0, batches: second)
            try await broker.close()
        }
        let snapshotPath = dir.file("i-0/producer-state.snapshot")
        #expect(ProducerStateTable.load(snapshot: Array(try Data(contentsOf: URL(fileURLWithPath: snapshotPath))))?.1 == 3)
        // The power loss: the second batch and the clean marker never reached the disk.
        let segment = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("i-0/00000000000000000000.log")))
        try segment.truncate(atOffset: UInt64(first.count))
        try segment.close()
        try Data("0".utf8).write(to: URL(fileURLWithPath: dir.file("i-0/.clean-shutdown")))
        try FileManager.default.removeItem(atPath: dir.file("i-0/recovery-point.checkpoint"))

        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(try broker.partitionState("i", 0).log.logEndOffset == 1)
        #expect(ProducerStateTable.load(snapshot: Array(try Data(contentsOf: URL(fileURLWithPath: snapshotPath))))?.1 == 1)
        // The lost batch's retry is new again, not a duplicate of records that are gone.
        let retry = try await broker.append(topic: "i", partition: 0, batches: second)
        #expect(!retry.isDuplicate && retry.baseOffset == 1)
        try await broker.close()
    }

    /// A power loss took a batch already acknowledged (a topic not synced on every append):
    /// its producer goes on past it. Refused OUT_OF_ORDER_SEQUENCE_NUMBER, that first batch
    /// in flight made librdkafka's producer fail for good. Once only: a later gap is refused,
    /// and retries of what survived are still answered as duplicates.
    @Test func aProducerGoesOnPastBatchesAPowerLossTook() async throws {
        let dir = TemporaryDirectory()
        var pid: Int64 = 0
        let first = try idempotentBatch(producerId: 0, epoch: 0, sequence: 0, values: ["a"])
        let second = try idempotentBatch(producerId: 0, epoch: 0, sequence: 1, values: ["b", "c"])
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options())
            try await broker.createTopic("i", partitions: 1)
            pid = try await broker.initProducerId().producerId
            #expect(pid == 0)
            _ = try await broker.append(topic: "i", partition: 0, batches: first)
            _ = try await broker.append(topic: "i", partition: 0, batches: second)
            _ = try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 3, values: ["d"]))
            try await broker.close()
        }
        // The power loss: the third batch (acknowledged) and the clean marker are gone.
        let segment = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("i-0/00000000000000000000.log")))
        try segment.truncate(atOffset: UInt64(first.count + second.count))
        try segment.close()
        try Data("0".utf8).write(to: URL(fileURLWithPath: dir.file("i-0/.clean-shutdown")))
        try FileManager.default.removeItem(atPath: dir.file("i-0/recovery-point.checkpoint"))

        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(try broker.partitionState("i", 0).log.logEndOffset == 3)
        let next = try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 4, values: ["e"]))
        #expect(!next.isDuplicate && next.baseOffset == 3)
        await #expect {
            try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 6, values: ["g"]))
        } throws: { ($0 as? TidemarkError)?.code == .outOfOrderSequence }
        let retry = try await broker.append(topic: "i", partition: 0, batches: second)
        #expect(retry.isDuplicate && retry.baseOffset == 1)
        #expect(try await readPartition(broker, "i", 0).map { text($0.value) } == ["a", "b", "c", "e"])
        try await broker.close()
    }

    /// The skip after a crash goes no further than the lowest sequence the producer came with
    /// since: when the batch that skips fails between its check and its append (a storage
    /// error), the next one in flight must not take the skip and be stored ahead of it.
    @Test func theSkipAfterACrashIsTheFirstBatchsOnly() throws {
        func header(_ sequence: Int32) throws -> RecordBatchHeader {
            let batch = try idempotentBatch(producerId: 7, epoch: 0, sequence: sequence, values: ["x"])
            var header = try batch.withUnsafeBytes { try RecordBatchHeader.validate($0) }
            header.baseOffset = Int64(sequence)
            return header
        }
        var table = ProducerStateTable()
        table.record(try header(0), nowMs: 0)
        table.allowOneSkipAhead()
        // Batches 1-5 were lost; 6 is checked, then its append fails (nothing recorded).
        _ = try table.checkForAppend([try header(6)])
        #expect(throws: TidemarkError.self) { try table.checkForAppend([try header(7)]) }
        // Its retry takes the skip; after it, in order again, and no second skip.
        #expect(try table.checkForAppend([try header(6)]) == [.append])
        table.record(try header(6), nowMs: 0)
        #expect(try table.checkForAppend([try header(7)]) == [.append])
        table.record(try header(7), nowMs: 0)
        #expect(throws: TidemarkError.self) { try table.checkForAppend([try header(9)]) }
    }

    /// A snapshot older than the log's start (DeleteRecords moved it, then a crash before the
    /// next snapshot) describes records that are gone: it is not used. Used, its producer
    /// expected sequence 5 and refused 10 (OUT_OF_ORDER_SEQUENCE_NUMBER, fatal to librdkafka).
    @Test func aSnapshotOlderThanTheLogStartIsNotUsed() async throws {
        let dir = TemporaryDirectory()
        var pid: Int64 = 0
        let snapshotPath = dir.file("i-0/producer-state.snapshot")
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options())
            try await broker.createTopic("i", partitions: 1)
            pid = try await broker.initProducerId().producerId
            _ = try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 0, values: ["0", "1", "2", "3", "4"]))
            try await broker.close()
        }
        let old = try Data(contentsOf: URL(fileURLWithPath: snapshotPath))
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options())
            _ = try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 5, values: ["5", "6", "7", "8", "9"]))
            _ = try await broker.deleteRecords(topic: "i", partition: 0, before: 10)
            try await broker.close()
        }
        // The crash: the snapshot of offset 5 is the newest that reached the disk.
        try old.write(to: URL(fileURLWithPath: snapshotPath))
        try Data("0".utf8).write(to: URL(fileURLWithPath: dir.file("i-0/.clean-shutdown")))
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(try broker.partitionState("i", 0).log.logStartOffset == 10)
        let next = try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 10, values: ["10"]))
        #expect(next.baseOffset == 10 && !next.isDuplicate)
        try await broker.close()
    }

    /// A replay of the log past an old snapshot that stops at damage (a segment a clean stop
    /// left, which no open reads) forgets every producer of the partition. It kept what the
    /// replay had reached: a producer that wrote past the damage expected a sequence long
    /// gone and its next batch was refused OUT_OF_ORDER_SEQUENCE_NUMBER, fatal to librdkafka.
    @Test func aReplayStoppedByDamageForgetsItsProducers() async throws {
        let dir = TemporaryDirectory()
        var config = TopicConfig()
        config.segmentBytes = 4096
        config.retentionMs = nil  // the batches' time is 2023: retention would take the segments
        let big = String(repeating: "x", count: 1500)  // two batches a segment
        var pid: Int64 = 0
        let snapshotPath = dir.file("i-0/producer-state.snapshot")
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options())
            try await broker.createTopic("i", partitions: 1, config: config)
            pid = try await broker.initProducerId().producerId
            _ = try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 0, values: [big]))
            try await broker.close()
        }
        let old = try Data(contentsOf: URL(fileURLWithPath: snapshotPath))
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options())
            for sequence in 1..<6 {
                _ = try await broker.append(
                    topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: Int32(sequence), values: [big]))
            }
            try await broker.close()
        }
        // The snapshot of offset 1 is the newest on disk, and the batch at offset 2 (first of
        // the second segment) says offset 0: the replay reads offset 1, then stops there.
        try old.write(to: URL(fileURLWithPath: snapshotPath))
        let segment = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("i-0/00000000000000000002.log")))
        try segment.write(contentsOf: Data(count: 8))
        try segment.close()
        let log = CapturedLog()
        var opts = options()
        opts.logger = log.logger
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(!log.matching("producer state replay stopped at damage").isEmpty)
        #expect(try broker.partitionState("i", 0).producers.withLock { $0.producerCount } == 0)
        let next = try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 6, values: ["6"]))
        #expect(next.baseOffset == 6 && !next.isDuplicate)
        try await broker.close()
    }

    /// InitProducerId with an id (KIP-360) bumps the epoch of an id this broker handed out;
    /// an id it never did (a data directory replaced under running clients) gets a new id,
    /// as Kafka gives every idempotent producer. Kept, it could be handed to another producer.
    @Test func anEpochBumpForAnIdNeverHandedOutGetsANewId() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        let own = try await broker.initProducerId().producerId
        let bumped = try await broker.bumpProducerEpoch(producerId: own, epoch: 0)
        #expect(bumped.producerId == own && bumped.epoch == 1)
        let stranger = try await broker.bumpProducerEpoch(producerId: own + 500, epoch: 3)
        #expect(stranger.producerId == own + 1 && stranger.epoch == 0)
        #expect(try await broker.initProducerId().producerId == own + 2)
        try await broker.close()
    }

    /// `producer-ids` missing (a partial restore) or damaged: ids the partitions remember are
    /// not handed out. Reused, a new producer's first batch met the old one's state and was
    /// answered as a duplicate, never written.
    @Test(arguments: [false, true])
    func producerIdsContinueAboveThosePartitionsRemember(damaged: Bool) async throws {
        let dir = TemporaryDirectory()
        var used: [Int64] = []
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options())
            try await broker.createTopic("i", partitions: 1)
            for _ in 0..<3 {
                let pid = try await broker.initProducerId().producerId
                used.append(pid)
                _ = try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 0, values: ["a"]))
            }
            try await broker.close()
        }
        if damaged {
            try Data("garbage".utf8).write(to: URL(fileURLWithPath: dir.file("producer-ids")))
        } else {
            try FileManager.default.removeItem(atPath: dir.file("producer-ids"))
        }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        let fresh = try await broker.initProducerId().producerId
        #expect(fresh > used.max()!)
        let appended = try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: fresh, epoch: 0, sequence: 0, values: ["new"]))
        #expect(!appended.isDuplicate && appended.baseOffset == 3)
        try await broker.close()
    }

    /// A producer id a client chose without asking (Kafka accepts an unknown producer), near
    /// Int64.max: after a restart ids are still handed out, and not that one. (Ids continued
    /// above the highest one the partitions remember, and every InitProducerId failed:
    /// "exhausted".)
    @Test func aClientChosenProducerIdDoesNotExhaustTheIds() async throws {
        let dir = TemporaryDirectory()
        let chosen = Int64.max - 1001
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options())
            try await broker.createTopic("i", partitions: 1)
            let own = try await broker.initProducerId().producerId
            for pid in [own, chosen, own + 1] {
                _ = try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 0, values: ["c"]))
            }
            try await broker.close()
        }
        try FileManager.default.removeItem(atPath: dir.file("producer-ids"))
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        var handed: [Int64] = []
        for _ in 0..<3 { handed.append(try await broker.initProducerId().producerId) }
        // 0 and 1 are remembered (the first producer's and one a client took next to it).
        #expect(handed == [2, 3, 4])
        try await broker.close()
    }

    /// A producer id a client chose while the broker runs, among those InitProducerId would
    /// hand out next: passed over. (It was handed out, and the new producer's first batch
    /// was refused as out of order: the client's sequence was ahead.)
    @Test func aProducerIdAClientTookIsNotHandedOut() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("i", partitions: 2)
        let own = try await broker.initProducerId().producerId
        // A tool writing as the next two producers, on the second partition, 5 batches in.
        for sequence in 0..<5 {
            for pid in [own + 1, own + 2] {
                _ = try await broker.append(
                    topic: "i", partition: 1, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: Int32(sequence), values: ["t"]))
            }
        }
        let next = try await broker.initProducerId().producerId
        #expect(next == own + 3)
        // Its first batch is written.
        let written = try await broker.append(
            topic: "i", partition: 1, batches: try idempotentBatch(producerId: next, epoch: 0, sequence: 0, values: ["n"]))
        #expect(!written.isDuplicate && written.baseOffset == 10)
        try await broker.close()
    }

    /// A retry on a LogAppendTime topic is answered with the append time the first attempt
    /// got (it was answered without one, -1, so the client reported the producer's time).
    @Test func aRetryOnALogAppendTimeTopicGetsTheAppendTime() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(clock: clock))
        var stamped = TopicConfig()
        stamped.timestampType = .logAppendTime
        try await broker.createTopic("i", partitions: 1, config: stamped)
        let (pid, epoch) = try await broker.initProducerId()
        let batch = try idempotentBatch(producerId: pid, epoch: epoch, sequence: 0, values: ["a"])
        let first = try await broker.append(topic: "i", partition: 0, batches: batch)
        #expect(first.logAppendTime == clock.read())
        clock.advance(5_000)
        let retry = try await broker.append(topic: "i", partition: 0, batches: batch)
        #expect(retry.isDuplicate && retry.logAppendTime == first.logAppendTime)
        try await broker.close()
    }

    /// A new producer's id does not wait behind a topic's deletion (both ran on the admin
    /// queue: deleting thousands of partitions, an fsync each, held every InitProducerId for as
    /// long). Here the deleted partition's syncs take 1.5 s each.
    @Test func aNewProducerDoesNotWaitBehindADeletion() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("gone", partitions: 1)
        _ = try await broker.append(topic: "gone", partition: 0, batches: try idempotentBatch(producerId: -1, epoch: -1, sequence: -1, values: ["x"]))
        StorageFaults.slow(.sync, by: 1_500_000_000, pathContains: dir.path + "/gone-0/")
        final class Done: Sendable { let flag = Atomic<Bool>(false) }
        let deleted = Done()
        let deletion = Task {
            try await broker.deleteTopic("gone")
            deleted.flag.store(true, ordering: .relaxed)
        }
        try await Task.sleep(for: .milliseconds(300))  // the deletion is under way
        _ = try await broker.initProducerId()
        let deletionDone = deleted.flag.load(ordering: .relaxed)
        #expect(!deletionDone, "InitProducerId waited for the deletion")
        try await deletion.value
        try await broker.close()
    }

    /// A snapshot asked of a deleted partition (a maintenance pass took its list before the
    /// delete) writes nothing: the topic was made again under the same name, and the old table
    /// went over the new partition's snapshot.
    @Test func aDeletedPartitionWritesNoSnapshotIntoItsSuccessor() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("i", partitions: 1)
        let (pid, _) = try await broker.initProducerId()
        _ = try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 0, values: ["old"]))
        let old = try broker.partitionState("i", 0)
        try await broker.deleteTopic("i")
        try await broker.createTopic("i", partitions: 1)
        _ = try await broker.append(topic: "i", partition: 0, batches: try idempotentBatch(producerId: pid + 1, epoch: 0, sequence: 0, values: ["new"]))
        let fresh = try broker.partitionState("i", 0)
        try fresh.writeSnapshot()
        let path = dir.file("i-0/producer-state.snapshot")
        let written = try Data(contentsOf: URL(fileURLWithPath: path))
        try old.writeSnapshot()
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == written)
        #expect(ProducerStateTable.load(snapshot: Array(written))?.0.entries.keys.sorted() == [pid + 1])
        try await broker.close()
    }

    /// Producer state survives a restart, both from the snapshot written at close and, after
    /// a crash (no snapshot newer than the data), from a replay of the log's batch headers.
    @Test(arguments: [true, false])
    func producerStateSurvivesRestart(cleanClose: Bool) async throws {
        let dir = TemporaryDirectory()
        var pid: Int64 = 0
        let batch: [UInt8]
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options())
            try await broker.createTopic("i", partitions: 2)
            pid = try await broker.initProducerId().producerId
            _ = try await broker.append(topic: "i", partition: 1, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 0, values: ["a"]))
            batch = try idempotentBatch(producerId: pid, epoch: 0, sequence: 1, values: ["b", "c"])
            _ = try await broker.append(topic: "i", partition: 1, batches: batch)
            if cleanClose {
                try await broker.close()
            } else {
                // A crash: the producer snapshot is gone; the log must be replayed.
                try? FileManager.default.removeItem(atPath: dir.file("i-1/producer-state.snapshot"))
                try await broker.close()
                try FileManager.default.removeItem(atPath: dir.file("i-1/producer-state.snapshot"))
            }
        }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        let retry = try await broker.append(topic: "i", partition: 1, batches: batch)
        #expect(retry.isDuplicate && retry.baseOffset == 1)
        let next = try await broker.append(topic: "i", partition: 1, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 3, values: ["d"]))
        #expect(next.baseOffset == 3 && !next.isDuplicate)
        await #expect {
            try await broker.append(topic: "i", partition: 1, batches: try idempotentBatch(producerId: pid, epoch: 0, sequence: 9, values: ["z"]))
        } throws: { ($0 as? TidemarkError)?.code == .outOfOrderSequence }
        // Producer ids are never handed out twice, also after a restart.
        #expect(try await broker.initProducerId().producerId > pid)
        try await broker.close()
    }

    @Test func snapshotRoundTripAndDamage() throws {
        var table = ProducerStateTable()
        var header = RecordBatchHeader(
            baseOffset: 10, batchLength: 100, crc: 0, attributes: 0, lastOffsetDelta: 2, baseTimestamp: 0, maxTimestamp: 5,
            producerId: 77, producerEpoch: 1, baseSequence: 4, recordsCount: 3)
        table.record(header, nowMs: 1000)
        header.baseOffset = 13
        header.baseSequence = 7
        table.record(header, nowMs: 2000)
        let snapshot = table.snapshot(logOffset: 16)
        let loaded = try #require(ProducerStateTable.load(snapshot: snapshot))
        #expect(loaded.table == table && loaded.logOffset == 16)
        for i in stride(from: 0, to: snapshot.count, by: 3) {
            var damaged = snapshot
            damaged[i] ^= 0x10
            #expect(ProducerStateTable.load(snapshot: damaged) == nil)
        }
        #expect(ProducerStateTable.load(snapshot: Array(snapshot.dropLast())) == nil)
    }

    @Test func idleProducersExpire() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        var brokerOptions = options(clock: clock)
        brokerOptions.producerIdExpirationMs = 60_000
        let broker = try await Broker.open(dataDirectory: dir.path, options: brokerOptions)
        try await broker.createTopic("i", partitions: 1)
        let batch = try idempotentBatch(producerId: 5, epoch: 0, sequence: 0, values: ["a"])
        _ = try await broker.append(topic: "i", partition: 0, batches: batch)
        let state = try broker.partitionState("i", 0)
        #expect(state.producers.withLock { $0.producerCount } == 1)
        clock.advance(30_000)
        await broker.runMaintenance()
        #expect(state.producers.withLock { $0.producerCount } == 1)
        clock.advance(31_000)
        await broker.runMaintenance()
        #expect(state.producers.withLock { $0.producerCount } == 0)
        // Forgotten: the same batch is now accepted as new (the expiry window is the guarantee).
        #expect(try await broker.append(topic: "i", partition: 0, batches: batch).isDuplicate == false)
        try await broker.close()
    }

    @Test func producerRetryThroughTheEmbeddedProducerKeepsOneCopy() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("i", partitions: 3)
        let producer = try await Producer(broker: broker)
        for i in 0..<30 { _ = try await producer.send(topic: "i", key: bytes("k\(i % 3)"), value: bytes("\(i)")) }
        // Every stored batch carries the producer's id and consecutive sequences per partition.
        for p in 0..<3 {
            var expected: Int32 = 0
            try broker.partitionState("i", p).log.batchHeaders(from: 0) { header in
                #expect(header.producerId == producer.identity!.id)
                #expect(header.baseSequence == expected)
                expected = header.lastSequence + 1
            }
        }
        try await broker.close()
    }
}

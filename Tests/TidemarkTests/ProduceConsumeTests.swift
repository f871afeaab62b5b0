import Foundation
import TestSupport
import Testing
@testable import Tidemark
import TidemarkStorage

@Suite struct ProduceConsumeTests {
    /// Kafka's own murmur2 answers (computed with kafka-python 3.0.12's partitioner).
    @Test func murmur2MatchesKafka() {
        let cases: [(String, UInt32, Int)] = [
            ("21", 3_321_034_988, 0), ("foobar", 3_504_634_814, 0), ("a-little-bit-long-string", 3_308_985_760, 2),
            ("a-little-bit-longer-string", 2_808_662_467, 5), ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 4_236_069_325, 5),
            ("abc", 479_470_107, 3), ("", 275_646_681, 3), ("user-1", 1_404_122_828, 2),
        ]
        for (key, hash, partitionOf6) in cases {
            #expect(UInt32(bitPattern: KafkaPartitioner.murmur2(bytes(key))) == hash, "\(key)")
            #expect(KafkaPartitioner.partition(forKey: bytes(key), partitionCount: 6) == partitionOf6, "\(key)")
        }
        #expect(UInt32(bitPattern: KafkaPartitioner.murmur2([0xFF, 0xFE, 0x00, 0x80])) == 1_904_227_184)
    }

    @Test func keyedRecordsLandWhereKafkaPutsThemAndReadBack() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("jobs", partitions: 6)
        let producer = try await Producer(broker: broker)
        var sent: [String: RecordMetadata] = [:]
        try await withThrowingTaskGroup(of: (String, RecordMetadata).self) { group in
            for i in 0..<300 {
                group.addTask {
                    let key = "user-\(i % 37)"
                    let meta = try await producer.send(
                        topic: "jobs", key: bytes(key), value: bytes("job-\(i)"),
                        headers: [RecordHeader(key: "trace", value: bytes("t\(i)")), RecordHeader(key: "n", value: nil)])
                    return ("job-\(i)", meta)
                }
            }
            for try await (value, meta) in group { sent[value] = meta }
        }
        for (value, meta) in sent {
            let i = Int(value.dropFirst(4))!
            #expect(meta.partition == KafkaPartitioner.partition(forKey: bytes("user-\(i % 37)"), partitionCount: 6))
        }
        var received = 0
        for p in 0..<6 {
            let records = try await readPartition(broker, "jobs", p)
            #expect(records.map(\.offset) == Array(0..<Int64(records.count)))
            for record in records {
                let meta = sent[text(record.value)]!
                #expect(meta.partition == p && meta.offset == record.offset)
                #expect(record.headers == [RecordHeader(key: "trace", value: bytes("t" + text(record.value).dropFirst(4))), RecordHeader(key: "n", value: nil)])
                #expect(record.timestamp == meta.timestamp)
            }
            received += records.count
        }
        #expect(received == 300)
        try await broker.close()
    }

    @Test func nullKeysAreSpreadStickily() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("spread", partitions: 4)
        let producer = try await Producer(broker: broker)
        for i in 0..<400 { _ = try await producer.send(topic: "spread", key: nil, value: bytes("v\(i)")) }
        let counts = try (0..<4).map { try broker.describeTopic("spread").partitions[$0].logEndOffset }
        #expect(counts.reduce(0, +) == 400)
        #expect(counts.filter { $0 > 0 }.count >= 3, "\(counts)")
        try await broker.close()
    }

    @Test func batchingUnderConcurrencyMakesFewBatches() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("b", partitions: 1, config: TopicConfig(compression: .lz4))
        var producerOptions = ProducerOptions()
        producerOptions.lingerMs = 20
        let producer = try await Producer(broker: broker, options: producerOptions)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<1000 { group.addTask { _ = try await producer.send(topic: "b", key: nil, value: bytes("value-\(i)")) } }
            try await group.waitForAll()
        }
        let partition = try broker.partitionState("b", 0)
        var batches = 0
        try partition.log.batchHeaders(from: 0) { header in
            batches += 1
            #expect(header.compressionCodec == .lz4)
            #expect(header.producerId == producer.identity!.id)
        }
        #expect(batches < 100, "\(batches) batches for 1000 records")
        #expect(try await readPartition(broker, "b", 0).count == 1000)
        try await broker.close()
    }

    @Test func consumeFromOffsetTimestampEarliestLatest() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 1)
        let producer = try await Producer(broker: broker)
        for i in 0..<50 { _ = try await producer.send(topic: "t", key: nil, value: bytes("\(i)"), partition: 0, timestamp: 1_000_000 + Int64(i) * 10) }
        let consumer = Consumer(broker: broker)
        try await consumer.assign(topic: "t", partition: 0, from: .offset(20))
        #expect(try await consumer.poll(maxRecords: 5).map(\.offset) == [20, 21, 22, 23, 24])
        try await consumer.assign(topic: "t", partition: 0, from: .timestamp(1_000_255))
        #expect(try await consumer.poll(maxRecords: 1).first?.offset == 26)
        try await consumer.assign(topic: "t", partition: 0, from: .earliest)
        #expect(try await consumer.poll(maxRecords: 1).first?.offset == 0)
        try await consumer.assign(topic: "t", partition: 0, from: .latest)
        #expect(try await consumer.poll(maxWaitMs: 0).isEmpty)
        #expect(try await broker.resolveOffset(topic: "t", partition: 0, .timestamp(9_999_999)).offset == 50)
        await #expect { try await consumer.assign(topic: "t", partition: 0, from: .offset(51)) } throws: {
            ($0 as? TidemarkError)?.code == .offsetOutOfRange
        }
        await #expect { try await broker.fetch(topic: "t", partition: 0, offset: 99) } throws: {
            ($0 as? TidemarkError)?.code == .offsetOutOfRange
        }
        try await broker.close()
    }

    /// A poll for fewer records than the partitions hold starts after the partition that gave
    /// the last poll its records: every partition with a backlog gets its turn. A poll for one
    /// record read the first partition with any, every time, until it was drained (a job
    /// queue's other partitions waited behind one busy one). A group member's polls too.
    @Test func pollsTakeTurnsAcrossPartitions() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 3)
        let producer = try await Producer(broker: broker)
        for i in 0..<12 { _ = try await producer.send(topic: "t", key: nil, value: bytes("\(i)"), partition: i % 3) }
        let consumer = Consumer(broker: broker)
        for partition in 0..<3 { try await consumer.assign(topic: "t", partition: partition, from: .earliest) }
        var seen: [Int] = []
        for _ in 0..<6 { seen += try await consumer.poll(maxRecords: 1, maxWaitMs: 0).map(\.partition) }
        #expect(seen == [0, 1, 2, 0, 1, 2])
        // Two records a poll: the next starts after the partition the last record came from.
        #expect(try await consumer.poll(maxRecords: 2, maxWaitMs: 0).map(\.partition) == [0, 0])
        #expect(try await consumer.poll(maxRecords: 2, maxWaitMs: 0).map(\.partition) == [1, 1])
        let member = GroupConsumer(broker: broker, groupId: "g", topics: ["t"], options: GroupConsumerTests.memberOptions("m"))
        var taken: [Int] = []
        for _ in 0..<6 { taken += try await member.poll(maxRecords: 1, maxWaitMs: 5_000).map(\.partition) }
        #expect(taken == [0, 1, 2, 0, 1, 2])
        await member.close()
        try await broker.close()
    }

    /// `PollOrder`: sorted, each partition once, its turn kept through assignment changes.
    @Test func pollOrderKeepsItsTurnThroughAssignmentChanges() {
        let (a0, a1, b0, b1) = (TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0), TopicPartition("b", 1))
        var order = PollOrder()
        for tp in [b1, a0, b0, a1, a0] { order.insert(tp) }
        #expect(order.partitions == [a0, a1, b0, b1] && order.topics == ["a", "b"])
        order.resume(after: a1)
        #expect(Array(order.inPollOrder) == [b0, b1, a0, a1] && order.lastTurn == a1)
        // A group's new assignment keeps the turn (`GroupConsumer.adopt`).
        var next = PollOrder([a0, b0, b1])
        next.resume(after: order.lastTurn!)
        #expect(Array(next.inPollOrder) == [b0, b1, a0] && PollOrder().lastTurn == nil)
        order.remove(a0)  // before the turn: the turn stays with b0
        #expect(Array(order.inPollOrder) == [b0, b1, a1])
        order.remove(b0)
        #expect(Array(order.inPollOrder) == [b1, a1] && order.topics == ["a", "b"])
        order.remove(b1)
        #expect(Array(order.inPollOrder) == [a1] && order.topics == ["a"])
        order.resume(after: TopicPartition("z", 0))  // no longer assigned: after where it was
        #expect(Array(order.inPollOrder) == [a1])
        #expect(PollOrder([b1, a0, b1]).partitions == [a0, b1])
    }

    @Test func longPollIsWokenByAnAppendAndTimesOutOtherwise() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("lp", partitions: 2)
        let consumer = Consumer(broker: broker)
        try await consumer.assign(topic: "lp", partition: 0, from: .latest)
        try await consumer.assign(topic: "lp", partition: 1, from: .latest)
        // Nothing arrives: the poll waits about maxWait.
        let clock = ContinuousClock()
        let before = clock.now
        #expect(try await consumer.poll(maxWaitMs: 300).isEmpty)
        #expect(clock.now - before >= .milliseconds(290))
        // An append to either partition ends the wait well before maxWait. (The margin is wide:
        // under the whole suite's load on two cores, a woken poll once took 5.5 s to run; a
        // missed wake takes the whole minute.)
        let producer = try await Producer(broker: broker)
        async let records = consumer.poll(maxWaitMs: 60_000)
        try await Task.sleep(for: .milliseconds(100))
        let start = clock.now
        _ = try await producer.send(topic: "lp", key: nil, value: bytes("wake"), partition: 1)
        let got = try await records
        #expect(got.map { text($0.value) } == ["wake"])
        #expect(clock.now - start < .seconds(30))
        // Fetch with minBytes waits for enough bytes.
        async let fetched = broker.fetch(topic: "lp", partition: 0, offset: 0, minBytes: 200, maxWaitMs: 10_000)
        for i in 0..<5 {
            try await Task.sleep(for: .milliseconds(20))
            _ = try await producer.send(topic: "lp", key: nil, value: Array(repeating: UInt8(i), count: 60), partition: 0)
        }
        #expect(try await fetched.slice!.length >= 200)
        try await broker.close()
    }

    @Test func errorsAreTypedAndLoseNothing() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("e", partitions: 1, config: TopicConfig(maxMessageBytes: 2048))
        let producer = try await Producer(broker: broker)
        _ = try await producer.send(topic: "e", key: nil, value: bytes("ok"))
        await #expect { try await producer.send(topic: "nope", key: nil, value: []) } throws: {
            ($0 as? TidemarkError)?.code == .unknownTopicOrPartition
        }
        await #expect { try await producer.send(topic: "e", key: nil, value: [], partition: 3) } throws: {
            ($0 as? TidemarkError)?.code == .unknownTopicOrPartition
        }
        await #expect { try await producer.send(topic: "e", key: nil, value: Array(repeating: 1, count: 5000)) } throws: {
            ($0 as? TidemarkError)?.code == .messageTooLarge
        }
        var big = RecordBatchBuilder()
        big.append(timestamp: 0, key: nil, value: Array(repeating: 7, count: 3000))
        await #expect { try await broker.append(topic: "e", partition: 0, batches: try big.build()) } throws: {
            ($0 as? TidemarkError)?.code == .messageTooLarge
        }
        var corrupt = try idempotentBatch(producerId: -1, epoch: -1, sequence: -1, values: ["x"])
        corrupt[corrupt.count - 1] ^= 0xFF
        await #expect { try await broker.append(topic: "e", partition: 0, batches: corrupt) } throws: {
            ($0 as? TidemarkError)?.code == .corruptMessage
        }
        await #expect { try await broker.append(topic: "e", partition: 0, batches: [1, 2, 3]) } throws: {
            ($0 as? TidemarkError)?.code == .corruptMessage
        }
        _ = try await producer.send(topic: "e", key: nil, value: bytes("still"))
        #expect(try await readPartition(broker, "e", 0).map { text($0.value) } == ["ok", "still"])
        try await broker.close()
    }

    /// A poll that meets damage (a stored batch whose magic byte rotted) returns the records
    /// before it, of that partition and the others, and a poll that gets nothing else fails
    /// with it; the other partitions' new records still come out. (Reads sized to the records
    /// wanted read on into the damage after a short read and threw the 400 records before it
    /// away, every poll: they were never delivered.)
    @Test func aPollReturnsTheRecordsBeforeDamage() async throws {
        let dir = TemporaryDirectory()
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        var config = TopicConfig()
        config.segmentBytes = 8 << 20
        try await broker.createTopic("jobs", partitions: 2, config: config)
        let size = try await ShareConsumerTests.oneRecordBatches(broker, "j", 1_000, size: 1_000)
        func other(_ values: Range<Int>) async throws {
            var builder = RecordBatchBuilder()
            for i in values { builder.append(timestamp: Int64(Date().timeIntervalSince1970 * 1000), key: nil, value: bytes("o-\(i)")) }
            _ = try await broker.append(topic: "jobs", partition: 1, batches: try builder.build())
        }
        try await other(0..<10)
        try await broker.close()
        // Batch 400's magic byte, well before the last index entry (a clean open reads only past it).
        try ShareConsumerTests.overwrite(dir.path + "/jobs-0/00000000000000000000.log", at: 400 * size + 16, [0xFF])
        broker = try await Broker.open(dataDirectory: dir.path, options: options())
        let consumer = Consumer(broker: broker)
        for p in 0..<2 { try await consumer.assign(topic: "jobs", partition: p, from: .earliest) }
        func values(_ records: [ConsumerRecord]) -> [String] { records.map { String(decoding: ($0.value ?? []).prefix { $0 != 0x20 }, as: UTF8.self) } }
        #expect(values(try await consumer.poll(maxRecords: 500)) == (0..<400).map { "j-\($0)" } + (0..<10).map { "o-\($0)" })
        await #expect { _ = try await consumer.poll(maxRecords: 500, maxWaitMs: 0) } throws: {
            ($0 as? TidemarkError)?.code == .corruptMessage
        }
        try await other(10..<15)
        #expect(values(try await consumer.poll(maxRecords: 500)) == (10..<15).map { "o-\($0)" })
        #expect(consumer.position(topic: "jobs", partition: 0) == 400)
        try await broker.close()
    }

    @Test func sendManyKeepsOrderPerPartitionAndReportsEachResult() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("many", partitions: 2, config: TopicConfig(maxMessageBytes: 4096))
        let producer = try await Producer(broker: broker)
        var records = (0..<2000).map { Producer.OutgoingRecord(topic: "many", key: nil, value: bytes("\($0)"), partition: $0 % 2) }
        records.insert(Producer.OutgoingRecord(topic: "many", key: nil, value: Array(repeating: 0, count: 5000)), at: 7)
        let results = await producer.send(records)
        #expect(results.count == 2001)
        #expect((try? results[7].get()) == nil)
        for p in 0..<2 {
            let values = try await readPartition(broker, "many", p).map { Int(text($0.value))! }
            #expect(values == Array(stride(from: p, to: 2000, by: 2)))
        }
        try await broker.close()
    }
}

/// Durable appends share fsyncs: waiters are callbacks on the broker's one flusher, which
/// syncs everything appended by the time it runs, so many concurrent producers cost few
/// fdatasyncs, and none is answered before its bytes are on disk.
@Suite struct GroupCommitTests {
    @Test func concurrentDurableAppendsShareFsyncs() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("d", partitions: 1, config: TopicConfig(flushPolicy: .everyAppend))
        let log = try broker.partitionState("d", 0).log
        let before = log.flushCount
        let appends = 256
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<appends {
                group.addTask {
                    var builder = RecordBatchBuilder()
                    builder.append(timestamp: currentTimeMilliseconds(), key: nil, value: Array("job-\(i)".utf8))
                    let result = try await broker.append(topic: "d", partition: 0, batches: try builder.build())
                    // Answered only once durable.
                    #expect(log.flushedOffset > result.lastOffset)
                }
            }
            try await group.waitForAll()
        }
        let fsyncs = log.flushCount - before
        #expect(fsyncs >= 1 && fsyncs <= appends / 2, "\(fsyncs) fsyncs for \(appends) durable appends")
        try await broker.close()
    }
}

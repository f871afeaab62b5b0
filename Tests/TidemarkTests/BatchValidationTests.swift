import TestSupport
import Testing
import TidemarkStorage

@testable import Tidemark

/// Produce validates batches as Kafka's LogValidator does: a valid CRC is not enough.
/// Nothing of a refused batch is stored; well-formed batches around it are unaffected.
@Suite struct BatchValidationTests {
    @Test(arguments: ForgedBatch.refusedKinds.map(\.name))
    func malformedBatchIsRefusedAndNothingStored(kind: String) async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("v", partitions: 1)
        let good = try RecordBatchBuilder().appending(timestamp: 1_700_000_000_000, value: "ok").build()
        _ = try await broker.append(topic: "v", partition: 0, batches: good)
        let forged = try #require(ForgedBatch.refusedKinds.first { $0.name == kind }).bytes
        await #expect {
            _ = try await broker.append(topic: "v", partition: 0, batches: forged)
        } throws: { error in
            (error as? TidemarkError)?.code == .invalidRecord
        }
        // Also when it follows a good batch in the same request: the request is all or nothing.
        await #expect(throws: TidemarkError.self) { _ = try await broker.append(topic: "v", partition: 0, batches: good + forged) }
        #expect(try broker.offsets(topic: "v", partition: 0).end == 1)
        _ = try await broker.append(topic: "v", partition: 0, batches: good)
        #expect(try await readPartition(broker, "v", 0).map { text($0.value) } == ["ok", "ok"])
        try await broker.close()
    }

    @Test func crcDamageIsACorruptMessage() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("v", partitions: 1)
        var batch = try RecordBatchBuilder().appending(timestamp: 1_700_000_000_000, value: "ok").build()
        batch[batch.count - 1] ^= 0x40
        await #expect { _ = try await broker.append(topic: "v", partition: 0, batches: batch) } throws: {
            ($0 as? TidemarkError)?.code == .corruptMessage
        }
        try await broker.close()
    }

    /// CreateTime timestamps more than message.timestamp.after.max.ms (1 h by default) in the
    /// future, or more than message.timestamp.before.max.ms (unbounded by default) in the
    /// past, are refused with INVALID_TIMESTAMP; LogAppendTime topics take any.
    @Test func timestampWindow() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(clock: clock))
        let now = clock.read()
        try await broker.createTopic("t", partitions: 1)
        func batch(_ timestamp: Int64) throws -> [UInt8] {
            try RecordBatchBuilder().appending(timestamp: timestamp, value: "x").build()
        }
        _ = try await broker.append(topic: "t", partition: 0, batches: try batch(now + 3_599_000))
        _ = try await broker.append(topic: "t", partition: 0, batches: try batch(0))
        await #expect { _ = try await broker.append(topic: "t", partition: 0, batches: try batch(now + 3_601_000)) } throws: {
            ($0 as? TidemarkError)?.code == .invalidTimestamp
        }
        var strict = TopicConfig()
        try strict.apply(kafkaName: "message.timestamp.before.max.ms", value: "60000")
        try strict.apply(kafkaName: "message.timestamp.after.max.ms", value: "0")
        try await broker.createTopic("strict", partitions: 1, config: strict)
        _ = try await broker.append(topic: "strict", partition: 0, batches: try batch(now - 59_000))
        await #expect { _ = try await broker.append(topic: "strict", partition: 0, batches: try batch(now - 61_000)) } throws: {
            ($0 as? TidemarkError)?.code == .invalidTimestamp
        }
        await #expect { _ = try await broker.append(topic: "strict", partition: 0, batches: try batch(now + 1)) } throws: {
            ($0 as? TidemarkError)?.code == .invalidTimestamp
        }
        // A record without a timestamp (-1) is not checked, as in Kafka's LogValidator.
        _ = try await broker.append(topic: "strict", partition: 0, batches: try batch(-1))
        #expect(try broker.describeTopic("strict").config.kafkaConfigs.contains { $0 == ("message.timestamp.before.max.ms", "60000") })
        var appendTime = TopicConfig()
        appendTime.timestampType = .logAppendTime
        try await broker.createTopic("append-time", partitions: 1, config: appendTime)
        _ = try await broker.append(topic: "append-time", partition: 0, batches: try batch(now + 86_400_000))
        try await broker.close()
    }
}

extension RecordBatchBuilder {
    func appending(timestamp: Int64, value: String) -> RecordBatchBuilder {
        var copy = self
        copy.append(timestamp: timestamp, key: nil, value: Array(value.utf8))
        return copy
    }
    /// sarama 1.22 sends every batch with maxTimestamp -1 (it never sets the field) while its
    /// records carry timestamps. Kafka's LogValidator stores the largest record timestamp (CRC
    /// recomputed); so does Tidemark. Such batches used to trap the broker as soon as a segment
    /// took its first time index entry (the largest timestamp's offset was still -1), and hid
    /// their records from lookups by time.
    @Test func aBatchWithoutItsMaxTimestampIsStoredWithIt() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(clock: clock))
        try await broker.createTopic("s", partitions: 1)
        let start = clock.read() - 10_000
        // 200 batches of ~80 bytes: several index intervals (4 KiB) of them.
        for i in 0..<200 {
            var batch = try RecordBatchBuilder().appending(timestamp: start + Int64(i), value: "job-\(i)").build()
            withUnsafeBytes(of: Int64(-1).bigEndian) { batch.replaceSubrange(35..<43, with: $0) }
            let crc = batch[21...].withUnsafeBytes { CRC32C.checksum($0) }
            withUnsafeBytes(of: crc.bigEndian) { batch.replaceSubrange(17..<21, with: $0) }
            _ = try await broker.append(topic: "s", partition: 0, batches: batch)
        }
        let state = try broker.partitionState("s", 0)
        let stored = try state.log.readBatches(from: 0, maxBytes: 1 << 20)
        #expect(stored.count == 200)
        // Read back with their CRCs checked, each with its record's timestamp as its largest.
        #expect(stored.enumerated().allSatisfy { $0.element.header.maxTimestamp == start + Int64($0.offset) })
        #expect(try await broker.resolveOffset(topic: "s", partition: 0, .timestamp(start + 150)) == (150, start + 150))
        try await broker.close()
        // And after a restart (indexes rebuilt or reopened).
        let reopened = try await Broker.open(dataDirectory: dir.path, options: options(clock: clock))
        #expect(try await reopened.resolveOffset(topic: "s", partition: 0, .timestamp(start + 42)) == (42, start + 42))
        try await reopened.close()
    }
    /// A client batch for a CreateTime topic that claims LogAppendTime (attributes bit 3):
    /// its timestamps were not judged by the window, and the claim was stored, so readers
    /// took the client's maxTimestamp for every record. Now judged, and stored as CreateTime.
    @Test func aBatchClaimingLogAppendTimeOnACreateTimeTopic() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(clock: clock))
        try await broker.createTopic("c", partitions: 1)
        func claiming(_ timestamp: Int64) throws -> [UInt8] {
            var batch = try RecordBatchBuilder().appending(timestamp: timestamp, value: "x").build()
            batch[22] |= 0x8
            withUnsafeBytes(of: Int64(5).bigEndian) { batch.replaceSubrange(35..<43, with: $0) }
            let crc = batch[21...].withUnsafeBytes { CRC32C.checksum($0) }
            withUnsafeBytes(of: crc.bigEndian) { batch.replaceSubrange(17..<21, with: $0) }
            return batch
        }
        let now = clock.read()
        await #expect { _ = try await broker.append(topic: "c", partition: 0, batches: try claiming(now + 7_200_000)) } throws: {
            ($0 as? TidemarkError)?.code == .invalidTimestamp
        }
        _ = try await broker.append(topic: "c", partition: 0, batches: try claiming(now - 1_000))
        let stored = try #require(try broker.partitionState("c", 0).log.readBatches(from: 0, maxBytes: 1 << 20).first)
        #expect(stored.header.timestampType == .createTime && stored.header.maxTimestamp == now - 1_000)
        #expect(try await readPartition(broker, "c", 0).map(\.timestamp) == [now - 1_000])
        try await broker.close()
    }

    /// The embedded producer's batches are appended as built, not validated again record by
    /// record: they must be well-formed on disk (framing, CRC, producer id and sequence, one
    /// record each here), and LogAppendTime still stamps them. A record with the caller's own
    /// timestamp is judged like any producer's (the topic's window), and so is a batch
    /// appended as built.
    @Test func theEmbeddedProducersBatchesAreStoredWellFormed() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(clock: clock))
        var strict = TopicConfig()
        try strict.apply(kafkaName: "message.timestamp.after.max.ms", value: "0")
        try await broker.createTopic("strict", partitions: 1, config: strict)
        var appendTime = TopicConfig()
        appendTime.timestampType = .logAppendTime
        try await broker.createTopic("stamped", partitions: 1, config: appendTime)
        let producer = try await Producer(broker: broker)
        let now = clock.read()
        for i in 0..<3 { _ = try await producer.send(topic: "strict", key: nil, value: Array("job-\(i)".utf8)) }
        await #expect { _ = try await producer.send(topic: "strict", key: nil, value: [1], timestamp: now + 60_000) } throws: {
            ($0 as? TidemarkError)?.code == .invalidTimestamp
        }
        _ = try await producer.send(topic: "strict", key: nil, value: [2], timestamp: now - 1)
        let stored = try broker.partitionState("strict", 0).log.readBatches(from: 0, maxBytes: 1 << 20)  // decoded: CRC checked
        #expect(stored.map(\.header.baseSequence) == [0, 1, 2, 3])
        #expect(stored.allSatisfy { $0.header.producerId == producer.identity?.id })
        #expect(stored.flatMap(\.records).map(\.value) == ["job-0", "job-1", "job-2"].map { Array($0.utf8) } + [[2]])
        // A batch appended as built is still judged by the window: a record stamped when it was
        // queued may have waited past message.timestamp.before.max.ms behind other appends.
        var recent = TopicConfig()
        try recent.apply(kafkaName: "message.timestamp.before.max.ms", value: "1000")
        try await broker.createTopic("recent", partitions: 1, config: recent)
        let built = try RecordBatchBuilder().appending(timestamp: now - 5_000, value: "late").build()
        await #expect { _ = try await broker.appendOwn(topic: "recent", partition: 0, batch: built, earliest: now - 5_000) } throws: {
            ($0 as? TidemarkError)?.code == .invalidTimestamp
        }
        let fresh = try RecordBatchBuilder().appending(timestamp: now - 500, value: "fresh").build()
        _ = try await broker.appendOwn(topic: "recent", partition: 0, batch: fresh, earliest: now - 500)
        // A record without a timestamp (-1) is not judged, as in Kafka's LogValidator.
        _ = try await producer.send(topic: "recent", key: nil, value: [4], timestamp: -1)
        clock.advance(5_000)
        let sent = try await producer.send(topic: "stamped", key: nil, value: [3])
        #expect(sent.timestamp == now + 5_000)
        let batch = try #require(try broker.partitionState("stamped", 0).log.readBatches(from: 0, maxBytes: 1 << 20).first)
        #expect(batch.header.timestampType == .logAppendTime && batch.header.maxTimestamp == now + 5_000)
        try await broker.close()
    }
}

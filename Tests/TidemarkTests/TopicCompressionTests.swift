import Foundation
import TestSupport
import Testing
@testable import Tidemark
import TidemarkStorage

/// A topic's compression.type, as Kafka's broker applies it: `producer` stores each batch as
/// its producer compressed it; a codec (`uncompressed` too) stores every batch in that codec,
/// a producer's batch in another recompressed before it is appended, its records, offsets,
/// timestamps and producer sequence unchanged.
@Suite struct TopicCompressionTests {
    static func batch(_ codec: CompressionCodec, producerId: Int64, sequence: Int32, values: [String], timestamp: Int64) throws -> [UInt8] {
        var builder = RecordBatchBuilder(compression: codec, producerId: producerId, producerEpoch: 0, baseSequence: sequence)
        for (i, value) in values.enumerated() {
            builder.append(timestamp: timestamp + Int64(i), key: Array("k\(i)".utf8), value: Array(value.utf8), headers: [RecordHeader(key: "h", value: [UInt8(i)])])
        }
        return try builder.build()
    }

    @Test(arguments: TopicConfig.Compression.allCases)
    func everyBatchIsStoredInTheTopicsCodec(topicCodec: TopicConfig.Compression) async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 1, config: TopicConfig(compression: topicCodec))
        let (pid, _) = try await broker.initProducerId()
        let now = currentTimeMilliseconds()
        var sent: [CompressionCodec] = []
        var expected: [String] = []
        var sequence: Int32 = 0
        for codec in CompressionCodec.allCases {
            let values = (0..<20).map { "\(codec)-\($0)-" + String(repeating: "x", count: $0 * 10) }
            let bytes = try Self.batch(codec, producerId: pid, sequence: sequence, values: values, timestamp: now)
            let result = try await broker.append(topic: "t", partition: 0, batches: bytes)
            #expect(!result.isDuplicate && result.baseOffset == Int64(expected.count))
            // A retry of it is the same batch to the producer table, however it was stored.
            let retry = try await broker.append(topic: "t", partition: 0, batches: bytes)
            #expect(retry.isDuplicate && retry.baseOffset == result.baseOffset && retry.lastOffset == result.lastOffset)
            sent.append(codec)
            expected += values
            sequence += Int32(values.count)
        }
        var stored: [CompressionCodec?] = []
        try broker.partitionState("t", 0).log.batchHeaders(from: 0) { header in
            stored.append(header.compressionCodec)
            #expect(header.producerId == pid && header.recordsCount == 20)
        }
        #expect(stored == sent.map { topicCodec.codec ?? $0 }, "\(topicCodec): \(stored)")
        let records = try await readPartition(broker, "t", 0)
        #expect(records.map { String(decoding: $0.value ?? [], as: UTF8.self) } == expected)
        #expect(records.enumerated().allSatisfy { i, r in r.offset == Int64(i) && r.timestamp == now + Int64(i % 20) })
        #expect(records.allSatisfy { $0.headers.first?.key == "h" })
        try await broker.close()
    }

    /// On an event loop (`appendNow`), a batch is recompressed within the request's allowance
    /// (64 KiB): a compressed one may inflate 255 times, so it is inflated only that far and
    /// otherwise left to the executor (nil), as is an uncompressed one past it. A batch already
    /// in the topic's codec stays on the loop.
    @Test func onlySmallUncompressedBatchesAreRecompressedOnTheLoop() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("z", partitions: 1, config: TopicConfig(compression: .zstd))
        try await broker.createTopic("l", partitions: 1, config: TopicConfig(compression: .lz4))
        let now = currentTimeMilliseconds()
        let plain = try Self.batch(.none, producerId: -1, sequence: -1, values: ["a"], timestamp: now)
        let lz4 = try Self.batch(.lz4, producerId: -1, sequence: -1, values: ["b"], timestamp: now)
        let large = try Self.batch(.none, producerId: -1, sequence: -1, values: [String(repeating: "x", count: 70_000)], timestamp: now)
        #expect(try broker.appendNow(topic: "z", partition: 0, batches: plain) != nil)
        // A small lz4 job is recompressed on the loop; one that inflates past the allowance is not.
        #expect(try broker.appendNow(topic: "z", partition: 0, batches: lz4) != nil)
        var inflating = RecordBatchBuilder(compression: .lz4)
        inflating.append(timestamp: now, key: nil, value: [UInt8](repeating: 0, count: 1 << 20))
        let zeros = try inflating.build()
        #expect(zeros.count < 8_192)
        var left = Broker.maxCompressedBytesNow
        #expect(try broker.appendNow(topic: "z", partition: 0, batches: zeros[...], loopAllowance: &left) == nil)
        // Given up after inflating it here: the rest of the request goes to the executor (each
        // of many such partitions was inflated on the loop).
        #expect(left == 0)
        #expect(try broker.appendNow(topic: "z", partition: 0, batches: lz4[...], loopAllowance: &left) == nil)
        #expect(try broker.appendNow(topic: "z", partition: 0, batches: large) == nil)
        #expect(try broker.appendNow(topic: "l", partition: 0, batches: lz4) != nil)
        #expect(Broker.needsRecompression(lz4[...], to: .lz4) == false && Broker.needsRecompression(lz4[...], to: nil) == false)
        // One request's allowance on the loop is shared by its partitions: recompressed bytes
        // count toward it (a request of 200 partitions of 64 KiB was deflated on the loop whole).
        let forty = try Self.batch(.none, producerId: -1, sequence: -1, values: [String(repeating: "y", count: 40_000)], timestamp: now)
        var allowance = Broker.maxCompressedBytesNow
        #expect(try broker.appendNow(topic: "z", partition: 0, batches: forty[...], loopAllowance: &allowance) != nil)
        #expect(allowance == Broker.maxCompressedBytesNow - forty.count)
        #expect(try broker.appendNow(topic: "z", partition: 0, batches: forty[...], loopAllowance: &allowance) == nil)
        // Batches the topic keeps as they are cost nothing.
        try await broker.createTopic("p", partitions: 1)
        #expect(try broker.appendNow(topic: "p", partition: 0, batches: forty[...], loopAllowance: &allowance) != nil)
        #expect(Broker.needsRecompression((plain + lz4)[...], to: .lz4))
        _ = try await broker.append(topic: "z", partition: 0, batches: lz4)
        var codecs: [CompressionCodec?] = []
        try broker.partitionState("z", 0).log.batchHeaders(from: 0) { codecs.append($0.compressionCodec) }
        #expect(codecs == [.zstd, .zstd, .zstd, .zstd])
        try await broker.close()
    }

    /// A batch that recompression makes larger than max.message.bytes is MESSAGE_TOO_LARGE,
    /// as Kafka refuses it (stored uncompressed: refused as it inflates, not held whole first);
    /// nothing is appended. The broker's other appends go on.
    @Test func aBatchTooLargeOnceRecompressedIsRefused() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        for (name, codec) in [("u", TopicConfig.Compression.uncompressed), ("g", .gzip)] {
            var config = TopicConfig(compression: codec)
            config.maxMessageBytes = 10_000
            try await broker.createTopic(name, partitions: 1, config: config)
        }
        let now = currentTimeMilliseconds()
        var zeros = RecordBatchBuilder(compression: .zstd)
        zeros.append(timestamp: now, key: nil, value: [UInt8](repeating: 0, count: 200_000))
        // Random bytes that make a batch of exactly 10,000 bytes: gzip only adds to them.
        var rng = SystemRandomNumberGenerator()
        var size = 9_900
        var noisy: [UInt8] = []
        repeat {
            var noise = RecordBatchBuilder(compression: .none)
            noise.append(timestamp: now, key: nil, value: (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) })
            noisy = try noise.build()
            size += 10_000 - noisy.count
        } while noisy.count != 10_000
        for (topic, batch) in [("u", try zeros.build()), ("g", noisy)] {
            #expect(batch.count <= 10_000)
            await #expect {
                try await broker.append(topic: topic, partition: 0, batches: batch)
            } throws: { ($0 as? TidemarkError)?.code == .messageTooLarge }
            #expect(try broker.offsets(topic: topic, partition: 0).end == 0)
        }
        _ = try await broker.append(topic: "u", partition: 0, batches: try Self.batch(.lz4, producerId: -1, sequence: -1, values: ["ok"], timestamp: now))
        #expect(try broker.offsets(topic: "u", partition: 0).end == 1)
        try await broker.close()
    }

    /// The embedded producer builds its batches in the topic's codec, whatever its own option.
    @Test func theEmbeddedProducerUsesTheTopicsCodec() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("z", partitions: 1, config: TopicConfig(compression: .zstd))
        try await broker.createTopic("p", partitions: 1)
        var producerOptions = ProducerOptions()
        producerOptions.compression = .gzip
        let producer = try await Producer(broker: broker, options: producerOptions)
        _ = try await producer.send(topic: "z", key: nil, value: Array("one".utf8))
        _ = try await producer.send(topic: "p", key: nil, value: Array("two".utf8))
        var codecs: [String: CompressionCodec?] = [:]
        for topic in ["z", "p"] {
            try broker.partitionState(topic, 0).log.batchHeaders(from: 0) { codecs[topic] = $0.compressionCodec }
        }
        #expect(codecs["z"] == .zstd && codecs["p"] == .gzip)
        try await broker.close()
    }

    /// A LogAppendTime topic with a codec: the recompressed batch is stamped too.
    @Test func aRecompressedBatchIsStampedOnALogAppendTimeTopic() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("s", partitions: 1, config: TopicConfig(compression: .snappy, timestampType: .logAppendTime))
        let bytes = try Self.batch(.lz4, producerId: -1, sequence: -1, values: ["a", "b"], timestamp: 5)
        let result = try await broker.append(topic: "s", partition: 0, batches: bytes)
        let stamp = try #require(result.logAppendTime)
        var headers: [RecordBatchHeader] = []
        try broker.partitionState("s", 0).log.batchHeaders(from: 0) { headers.append($0) }
        #expect(headers.count == 1 && headers[0].compressionCodec == .snappy && headers[0].timestampType == .logAppendTime)
        #expect(headers[0].maxTimestamp == stamp)
        #expect(try await readPartition(broker, "s", 0).map(\.timestamp) == [stamp, stamp])
        try await broker.close()
    }
}

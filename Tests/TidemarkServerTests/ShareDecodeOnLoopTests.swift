import Foundation
import TestSupport
import Testing
@testable import Tidemark
@testable import TidemarkServer
import TidemarkStorage

/// What a share group decodes on an event loop: a share acquire's scan (keys and delays) and
/// a share fetch's trim of a large batch decode stored batches. Compressed ones are decoded
/// there up to the produce path's allowance (`Broker.maxCompressedBytesNow`), gzip and zstd
/// never (a few KB of zstd is 64 MiB of zeros, and decoding it stalled every connection of
/// the loop); past that the work goes on off the loop, with the same answer.
@Suite struct ShareDecodeOnLoopTests {
    /// One batch of `count` records of `size` bytes that do not compress (a generator's output).
    static func batch(_ codec: CompressionCodec, count: Int, size: Int) throws -> [UInt8] {
        var builder = RecordBatchBuilder(compression: codec)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<count {
            let value = (0..<size).map { _ -> UInt8 in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: state >> 33)
            }
            builder.append(timestamp: 1_700_000_000_000 + Int64(i), key: Array("k\(i)".utf8), value: value)
        }
        return try builder.build()
    }

    @Test(arguments: [CompressionCodec.none, .gzip, .snappy, .lz4, .zstd])
    func anAcquireScanDecodesOnTheLoopOnlyWhatTheProduceAllowanceAllows(codec: CompressionCodec) async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("small", partitions: 1)
        try await broker.createTopic("large", partitions: 1)
        _ = try await broker.append(topic: "small", partition: 0, batches: try Self.batch(codec, count: 3, size: 100))
        // Past the allowance in compressed bytes, in several batches.
        for _ in 0..<5 {
            _ = try await broker.append(topic: "large", partition: 0, batches: try Self.batch(codec, count: 20, size: 1_000))
        }
        let small = try broker.recordMetadata(topic: "small", partition: 0, from: 0, count: 10, mayBlock: false)
        let large = try broker.recordMetadata(topic: "large", partition: 0, from: 0, count: 1_000, mayBlock: false)
        switch codec {
        case .none:
            #expect(small?.count == 3)
            #expect(large?.count == 100)
        case .lz4, .snappy:
            #expect(small?.count == 3)
            #expect(large == nil)
            // The allowance is the acquire's, over its partitions: 40 KB from one, then no more.
            try await broker.createTopic("pair", partitions: 2)
            for p in 0..<2 { _ = try await broker.append(topic: "pair", partition: p, batches: try Self.batch(codec, count: 40, size: 1_000)) }
            let scan = try #require(broker.shareLogViewWithoutBlocking.scan)
            #expect(try scan("pair", 0, 0, 100)?.count == 40)
            #expect(try scan("pair", 1, 0, 100) == nil)
        default:
            #expect(small == nil)
            #expect(large == nil)
        }
        // Off the loop, the scan reads them all.
        #expect(try broker.recordMetadata(topic: "small", partition: 0, from: 0, count: 10, mayBlock: true)?.count == 3)
        #expect(try broker.recordMetadata(topic: "large", partition: 0, from: 0, count: 1_000, mayBlock: true)?.map(\.offset) == Array(0..<100))
        try await broker.close()
    }

    @Test(arguments: [CompressionCodec.none, .gzip, .snappy, .lz4, .zstd])
    func aShareFetchTrimsOnTheLoopOnlyWhatTheProduceAllowanceAllows(codec: CompressionCodec) async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        // Two batches past 16 KiB (so taking one record of each decodes and trims it), 80 KiB
        // in all: past the allowance for lz4 and snappy after the first.
        let first = try Self.batch(codec, count: 40, size: 1_000)
        let second = try Self.batch(codec, count: 40, size: 1_000)
        _ = try await broker.append(topic: "jobs", partition: 0, batches: first)
        _ = try await broker.append(topic: "jobs", partition: 0, batches: second)
        let bytes = try #require(try await broker.fetch(topic: "jobs", partition: 0, offset: 0, maxBytes: 1 << 20).slice?.readBytes())
        #expect(bytes.count == first.count + second.count)
        let acquisition = ShareAcquisition(
            topicPartition: TopicPartition("jobs", 0), offsets: [3, 45],
            ranges: [AcquiredRange(first: 3, last: 3, deliveryCount: 1), AcquiredRange(first: 45, last: 45, deliveryCount: 1)])

        let allowance = LoopDecodeAllowance()
        var onLoop = ShareBatchWalk(acquisition, topicId: UUID(), maxBytes: 1 << 20)
        let finished = onLoop.take(bytes, cache: ShareBatchCache(), onLoop: allowance)
        var offLoop = ShareBatchWalk(acquisition, topicId: UUID(), maxBytes: 1 << 20)
        let whole = offLoop.take(bytes, cache: ShareBatchCache())
        #expect(whole)
        var trimmed: [RecordBatch] = []
        var rest = offLoop.kept[...]
        while !rest.isEmpty {
            trimmed.append(try RecordBatch(decoding: Array(rest)))
            rest = rest.dropFirst(trimmed.last!.header.totalSize)
        }
        #expect(trimmed.flatMap { batch in batch.records.map { batch.offset(of: $0) } } == [3, 45])
        #expect(trimmed.allSatisfy { $0.header.compressionCodec == codec })
        switch codec {
        case .none:
            #expect(finished && onLoop.kept == offLoop.kept)
        case .lz4, .snappy:
            // The first batch on the loop; the walk stops before the second.
            #expect(!finished && onLoop.covered == 39)
            #expect(onLoop.kept == Array(offLoop.kept[..<onLoop.kept.count]) && !onLoop.kept.isEmpty)
            // The allowance is the request's: another partition's walk in it decodes nothing more.
            var other = ShareBatchWalk(acquisition, topicId: UUID(), maxBytes: 1 << 20)
            let more = other.take(bytes, cache: ShareBatchCache(), onLoop: allowance)
            #expect(!more && other.kept.isEmpty)
        default:
            #expect(!finished && onLoop.kept.isEmpty && onLoop.covered == 2)
        }
        try await broker.close()
    }
}

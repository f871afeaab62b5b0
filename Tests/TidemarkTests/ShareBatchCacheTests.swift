import Foundation
import Testing
import TidemarkStorage

@testable import Tidemark

/// The broker's cache of decoded batches that share workers take a few records at a time from:
/// looked up by partition and offset, bounded in decoded bytes with the oldest batch going
/// first, a topic incarnation's batches never served for another's.
@Suite struct ShareBatchCacheTests {
    static func batch(base: Int64, records: Int) throws -> RecordBatch {
        var builder = RecordBatchBuilder()
        for i in 0..<records { builder.append(timestamp: 0, key: nil, value: Array("v\(i)".utf8) + [UInt8](repeating: 0, count: 100)) }
        var bytes = try builder.build()
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: base.bigEndian, toByteOffset: 0, as: Int64.self) }
        return try RecordBatch(decoding: bytes)
    }

    @Test func lookupsEvictionAndTopicIncarnations() throws {
        let one = try Self.batch(base: 0, records: 10)
        let size = ShareBatchCache.size(of: one)
        let cache = ShareBatchCache(maxBytes: size * 3)
        let id = UUID()
        let tp = TopicPartition("jobs", 0)
        cache.insert(tp, id: id, one)
        cache.insert(tp, id: id, one)  // the same batch again: kept once
        #expect(cache.held.count == 1 && cache.held.bytes == size)
        #expect(cache.batch(tp, id: id, containing: 9)?.header.baseOffset == 0)
        #expect(cache.batch(tp, id: id, containing: 10) == nil)
        #expect(cache.batch(tp, id: UUID(), containing: 5) == nil)  // the topic made again
        #expect(cache.batch(TopicPartition("jobs", 1), id: id, containing: 5) == nil)
        for base in stride(from: Int64(10), to: 40, by: 10) { cache.insert(tp, id: id, try Self.batch(base: base, records: 10)) }
        // Four inserted, three fit: the oldest went.
        #expect(cache.held.count == 3 && cache.held.bytes == size * 3)
        #expect(cache.batch(tp, id: id, containing: 5) == nil)
        #expect(cache.batch(tp, id: id, containing: 35)?.header.baseOffset == 30)
        // Many more, over other partitions: still bounded, the newest three kept.
        for n in 0..<200 {
            cache.insert(TopicPartition("jobs", n % 7), id: id, try Self.batch(base: Int64(1_000 + n * 10), records: 10))
        }
        #expect(cache.held.count == 3 && cache.held.bytes == size * 3)
        let newest: Int64 = 1_000 + 199 * 10
        #expect(cache.batch(TopicPartition("jobs", 199 % 7), id: id, containing: newest)?.header.baseOffset == newest)
        #expect(cache.batch(TopicPartition("jobs", 197 % 7), id: id, containing: newest - 20) != nil)
        #expect(cache.batch(TopicPartition("jobs", 196 % 7), id: id, containing: newest - 30) == nil)
        let other = UUID()
        cache.insert(TopicPartition("other", 0), id: other, one)
        cache.forget(topicId: id)
        #expect(cache.held.count == 1 && cache.held.bytes == size)
        #expect(cache.batch(TopicPartition("other", 0), id: other, containing: 3) != nil)
        // One partition's batches, inserted out of order, with a gap: each offset finds the
        // batch holding it, or none.
        let wide = ShareBatchCache(maxBytes: size * 100)
        for base in [Int64(40), 0, 20, 60] { wide.insert(tp, id: id, try Self.batch(base: base, records: 10)) }
        wide.insert(tp, id: id, try Self.batch(base: 20, records: 10))  // again: kept once
        #expect(wide.held.count == 4)
        for (offset, base) in [(Int64(0), Int64?(0)), (5, 0), (9, 0), (10, nil), (15, nil), (20, 20), (29, 20), (45, 40), (69, 60), (70, nil), (-1, nil)] {
            #expect(wide.batch(tp, id: id, containing: offset)?.header.baseOffset == base, "offset \(offset)")
        }
        // A batch larger than the whole cache is not kept.
        #expect(ShareBatchCache(maxBytes: size - 1).held.count == 0)
        let small = ShareBatchCache(maxBytes: size - 1)
        small.insert(tp, id: id, one)
        #expect(small.held.count == 0)
    }
}

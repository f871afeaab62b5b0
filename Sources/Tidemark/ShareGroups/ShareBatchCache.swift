import Foundation
import Synchronization
import TidemarkStorage

/// Recently decoded large batches that share workers take a few records at a time from (a
/// producer's 400-record batch read by workers with max.poll.records=1, or by embedded
/// `ShareConsumer`s polling one job at a time): decoded once, not once per record. Holds at
/// most `maxBytes` of decoded records (each record's struct and what it holds: a batch of tiny
/// records takes several times its stored size), and batches of at most `maxRecordsPerBatch`
/// records; the oldest goes first. Looked up by partition (up to ~2,000 batches of 16 KiB fit:
/// a list scanned whole per lookup cost microseconds per job).
///
/// Ownership: one per broker (`Broker.shareBatches`, used by the Kafka front's share fetches
/// and by the embedded `ShareConsumer`), a Mutex over the entries. Entries are
/// immutable copies of committed log data, so a hit is always the same bytes a read would give.
package final class ShareBatchCache: Sendable {
    /// A partition of one topic incarnation: a topic deleted and created again gets a new id
    /// and starts its offsets over.
    struct Key: Hashable, Sendable {
        var topicId: UUID
        var partition: Int
    }

    struct Entry: Sendable {
        var first: Int64
        var last: Int64
        var batch: RecordBatch
        var size: Int
    }

    /// The entries by partition, in offset order (a lookup is a binary search of that
    /// partition's batches), and their insertion order for eviction, oldest first from `head`.
    struct Entries: Sendable {
        var byKey: [Key: [Entry]] = [:]
        var order: [(key: Key, first: Int64, size: Int)] = []
        var head = 0
        var bytes = 0
        var count: Int { order.count - head }
    }

    package let maxBytes: Int
    private let entries = Mutex(Entries())

    package init(maxBytes: Int = 32 << 20) { self.maxBytes = maxBytes }

    /// Batches of more records are decoded only for the records a fetch sends, not kept.
    package static let maxRecordsPerBatch: Int32 = 16_384

    /// The memory `batch` takes decoded.
    package static func size(of batch: RecordBatch) -> Int {
        batch.records.reduce(MemoryLayout<RecordBatch>.stride) { $0 + MemoryLayout<Record>.stride + $1.heapBytes }
    }

    /// The batches kept, and their memory.
    package var held: (count: Int, bytes: Int) { entries.withLock { ($0.count, $0.bytes) } }

    package func batch(_ tp: TopicPartition, id: UUID, containing offset: Int64) -> RecordBatch? {
        let key = Key(topicId: id, partition: tp.partition)
        return entries.withLock { e in
            guard let list = e.byKey[key] else { return nil }
            // The last batch starting at or before the offset (batches do not overlap).
            let index = Self.firstIndex(in: list, after: offset) - 1
            return index >= 0 && offset <= list[index].last ? list[index].batch : nil
        }
    }

    /// The index of the first entry starting after `offset` (`list` is in offset order).
    static func firstIndex(in list: [Entry], after offset: Int64) -> Int {
        var low = 0
        var high = list.count
        while low < high {
            let middle = (low + high) / 2
            if list[middle].first <= offset { low = middle + 1 } else { high = middle }
        }
        return low
    }

    package func insert(_ tp: TopicPartition, id: UUID, _ batch: RecordBatch) {
        let size = Self.size(of: batch)
        guard size <= maxBytes else { return }
        let key = Key(topicId: id, partition: tp.partition)
        let first = batch.header.baseOffset
        let last = first &+ Int64(batch.header.lastOffsetDelta)
        entries.withLock { e in
            let list = e.byKey[key] ?? []
            let at = Self.firstIndex(in: list, after: first)
            guard at == 0 || list[at - 1].first != first else { return }
            e.byKey[key, default: []].insert(Entry(first: first, last: last, batch: batch, size: size), at: at)
            e.order.append((key, first, size))
            e.bytes += size
            while e.bytes > maxBytes, e.head < e.order.count {
                let oldest = e.order[e.head]
                e.head += 1
                e.bytes -= oldest.size
                if let list = e.byKey[oldest.key] {
                    let at = Self.firstIndex(in: list, after: oldest.first) - 1
                    if at >= 0 && list[at].first == oldest.first { e.byKey[oldest.key]!.remove(at: at) }
                }
                if e.byKey[oldest.key]?.isEmpty == true { e.byKey.removeValue(forKey: oldest.key) }
            }
            if e.head > 64 && e.head * 2 > e.order.count {
                e.order.removeFirst(e.head)
                e.head = 0
            }
        }
    }

    /// Drops a deleted topic's batches (they would only be pushed out by newer ones).
    package func forget(topicId: UUID) {
        entries.withLock { e in
            guard e.byKey.keys.contains(where: { $0.topicId == topicId }) else { return }
            e.byKey = e.byKey.filter { $0.key.topicId != topicId }
            e.order = e.order[e.head...].filter { $0.key.topicId != topicId }
            e.head = 0
            e.bytes = e.order.reduce(0) { $0 + $1.size }
        }
    }

    /// The first batch of `bytes` (whole stored batches read from `next`), decoded whole to be
    /// kept, when a worker taking `next...target` takes less than half of it, it is over 16 KiB
    /// and holds at most `maxRecordsPerBatch` records (the Kafka front's rule,
    /// `ShareBatchWalk.take`, which counts the acquired offsets where this counts the span from
    /// `next` to `target`); nil otherwise, and for a batch that does not decode (the caller's
    /// read then meets its damage).
    package static func decodedToKeep(_ bytes: [UInt8], next: Int64, target: Int64) -> RecordBatch? {
        guard bytes.count >= RecordBatchHeader.size,
            let header = try? bytes.withUnsafeBytes({ raw throws(RecordBatchError) in try RecordBatchHeader(parsing: raw) }),
            !header.isControl, header.totalSize > 16 << 10, header.totalSize <= bytes.count,
            header.recordsCount <= maxRecordsPerBatch, header.baseOffset <= next, next <= header.lastOffset,
            (min(target, header.lastOffset) - next + 1) * 2 < Int64(header.lastOffsetDelta) + 1
        else { return nil }
        return bytes.withUnsafeBytes { raw in try? RecordBatch(decoding: UnsafeRawBufferPointer(rebasing: raw[..<header.totalSize])) }
    }
}

extension RecordBatch {
    /// The records at offsets `from...through` (records are stored in offset order).
    func records(from: Int64, through: Int64) -> ArraySlice<Record> {
        var low = 0
        var high = records.count
        while low < high {
            let middle = (low + high) / 2
            if offset(of: records[middle]) < from { low = middle + 1 } else { high = middle }
        }
        var end = low
        while end < records.count && offset(of: records[end]) <= through { end += 1 }
        return records[low..<end]
    }
}

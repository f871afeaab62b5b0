import Foundation
import Synchronization
import TidemarkStorage

/// Recently decoded large batches that share workers take a few records at a time from (a
/// producer's 400-record batch read by workers with max.poll.records=1, or by embedded
/// `ShareConsumer`s polling one job at a time): decoded once, not once per record. Holds at most `maxBytes` of decoded records (each record's struct and
/// what it holds: a batch of tiny records takes several times its stored size), and batches
/// of at most `maxRecordsPerBatch` records; the oldest goes first.
///
/// Ownership: one per broker (`Broker.shareBatches`, used by the Kafka front's share fetches
/// and by the embedded `ShareConsumer`), a Mutex over the entries. Entries are
/// immutable copies of committed log data, so a hit is always the same bytes a read would give.
package final class ShareBatchCache: Sendable {
    struct Entry: Sendable {
        /// The topic's id too: a topic deleted and created again starts its offsets over.
        var topicId: UUID
        var topicPartition: TopicPartition
        var first: Int64
        var last: Int64
        var batch: RecordBatch
        var size: Int
    }

    package let maxBytes: Int
    private let entries = Mutex<[Entry]>([])

    package init(maxBytes: Int = 32 << 20) { self.maxBytes = maxBytes }

    /// Batches of more records are decoded only for the records a fetch sends, not kept.
    package static let maxRecordsPerBatch: Int32 = 16_384

    /// The memory `batch` takes decoded.
    package static func size(of batch: RecordBatch) -> Int {
        batch.records.reduce(MemoryLayout<RecordBatch>.stride) { $0 + MemoryLayout<Record>.stride + $1.heapBytes }
    }

    /// The batches kept, and their memory.
    package var held: (count: Int, bytes: Int) { entries.withLock { ($0.count, $0.reduce(0) { $0 + $1.size }) } }

    package func batch(_ tp: TopicPartition, id: UUID, containing offset: Int64) -> RecordBatch? {
        entries.withLock { list in
            list.first { $0.topicId == id && $0.topicPartition == tp && $0.first <= offset && offset <= $0.last }?.batch
        }
    }

    package func insert(_ tp: TopicPartition, id: UUID, _ batch: RecordBatch) {
        let size = Self.size(of: batch)
        guard size <= maxBytes else { return }
        let first = batch.header.baseOffset
        let last = first + Int64(batch.header.lastOffsetDelta)
        entries.withLock { list in
            guard !list.contains(where: { $0.topicId == id && $0.topicPartition == tp && $0.first == first }) else { return }
            list.append(Entry(topicId: id, topicPartition: tp, first: first, last: last, batch: batch, size: size))
            var total = list.reduce(0) { $0 + $1.size }
            while total > maxBytes, !list.isEmpty { total -= list.removeFirst().size }
        }
    }

    /// Drops a deleted topic's batches (they would only be pushed out by newer ones).
    package func forget(topicId: UUID) {
        entries.withLock { list in list.removeAll { $0.topicId == topicId } }
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

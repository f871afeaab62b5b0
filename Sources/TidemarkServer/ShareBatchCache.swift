import Foundation
import Synchronization
import Tidemark
import TidemarkStorage

/// Recently decoded large batches that share fetches take a few records at a time from (a
/// producer's 400-record batch read by workers with max.poll.records=1): decoded once, not
/// once per record. Holds at most `maxBytes` of decoded records (each record's struct and
/// what it holds: a batch of tiny records takes several times its stored size), and batches
/// of at most `maxRecordsPerBatch` records; the oldest goes first.
///
/// Ownership: one per server (`RequestRouter`), a Mutex over the entries. Entries are
/// immutable copies of committed log data, so a hit is always the same bytes a read would give.
final class ShareBatchCache: Sendable {
    struct Entry: Sendable {
        /// The topic's id too: a topic deleted and created again starts its offsets over.
        var topicId: UUID
        var topicPartition: TopicPartition
        var first: Int64
        var last: Int64
        var batch: RecordBatch
        var size: Int
    }

    let maxBytes: Int
    private let entries = Mutex<[Entry]>([])

    init(maxBytes: Int = 32 << 20) { self.maxBytes = maxBytes }

    /// Batches of more records are decoded only for the records a fetch sends, not kept.
    static let maxRecordsPerBatch: Int32 = 16_384

    /// The memory `batch` takes decoded.
    static func size(of batch: RecordBatch) -> Int {
        batch.records.reduce(MemoryLayout<RecordBatch>.stride) { $0 + MemoryLayout<Record>.stride + $1.heapBytes }
    }

    /// The batches kept, and their memory.
    var held: (count: Int, bytes: Int) { entries.withLock { ($0.count, $0.reduce(0) { $0 + $1.size }) } }

    func batch(_ tp: TopicPartition, id: UUID, containing offset: Int64) -> RecordBatch? {
        entries.withLock { list in
            list.first { $0.topicId == id && $0.topicPartition == tp && $0.first <= offset && offset <= $0.last }?.batch
        }
    }

    func insert(_ tp: TopicPartition, id: UUID, _ batch: RecordBatch) {
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
}

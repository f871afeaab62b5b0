import Foundation

/// Reading a restored window's keys and delays (a window restored after a restart knows its
/// records' states, not their keys or delivery times): for its first fetch (`acquire`) and,
/// before any worker polls, for the maintenance pass.
extension ShareCoordinator {
    /// What reading a restored window's keys and delays gave (`readRestored`).
    enum RestoredRead {
        /// The records of its ranges; `cutAt` when the log could not be read past that offset
        /// (damage after some records: the window is cut there).
        case read([SharePartition.RecordMeta], cutAt: Int64?)
        /// A read would wait for the disk (a view that must not), or failed for now.
        case declined
        /// Damage or an I/O error where a read starts.
        case failed(TidemarkError)
    }

    /// Reads the keys and delays of a restored window's records in `ranges` (its unfinished
    /// ones: a window held by one record can be millions long, nearly all of it acknowledged
    /// and cut), within the log's `bounds`. Only a read: the window is not changed.
    static func readRestored(
        _ ranges: [Range<Int64>], of tp: TopicPartition, bounds: (start: Int64, end: Int64),
        scan: (String, Int, Int64, Int) throws(TidemarkError) -> [SharePartition.RecordMeta]?
    ) -> RestoredRead {
        var metas: [SharePartition.RecordMeta] = []
        for range in ranges {
            let from = max(range.lowerBound, bounds.start)
            let to = min(range.upperBound, bounds.end)
            guard to > from else { continue }
            let read: [SharePartition.RecordMeta]?
            do throws(TidemarkError) {
                read = try scan(tp.topic, tp.partition, from, Int(to - from))
            } catch {
                return .failed(error)
            }
            guard let read else { return .declined }
            metas += read
            // Fewer than asked: the log cannot be read past them (damage). The window is cut
            // there: what lies beyond (keys and delays unknown) is neither handed out nor
            // skipped; extending the window from there answers the error.
            let reached = read.last.map { $0.offset + 1 } ?? from
            if reached < to { return .read(metas, cutAt: reached) }
        }
        return .read(metas, cutAt: nil)
    }

    /// Reads the keys and delays of restored windows (`SharePartition.needsMetadata`) that no
    /// fetch has read yet: windows keeping about `budget` entries a pass (one at least), at
    /// most `maxWindows` of them (each is at least one read of its log). Until
    /// then a window knows no delays: a job scheduled for tomorrow at its start read as due,
    /// and as late as its enqueue, in the queue's age (the metric to alert on) and as
    /// available in describes, after every restart until a worker polled. The log is read
    /// outside the coordinator's lock, on the calling thread (the maintenance pass runs it on
    /// the blocking executor); a window a fetch read meanwhile is left as that fetch made it.
    /// A window this cannot read in full (damage, a topic gone or made again) is left to its
    /// first fetch, which cuts it at the damage and answers the error, and not tried again.
    func readRestoredMetadata(view: ShareLogView, budget: Int = 100_000, maxWindows: Int = 1_000) {
        guard let scan = view.scan else { return }
        // Ranges are found by a walk of the window's kept entries, under the lock: only for
        // as many windows as the budget reads.
        let pending = state.withLock { s -> [(key: PartitionKey, topicId: UUID, ranges: [Range<Int64>])] in
            var out: [(key: PartitionKey, topicId: UUID, ranges: [Range<Int64>])] = []
            guard s.restoredPending else { return out }
            var kept = 0
            for (key, slot) in s.slots where slot.state.needsMetadata && !slot.metadataUnread {
                if !out.isEmpty && (kept + slot.state.entries.keptCount > budget || out.count >= maxWindows) { break }
                kept += slot.state.entries.keptCount
                out.append((key, slot.topicId, slot.state.unfinishedRanges()))
            }
            if out.isEmpty { s.restoredPending = false }
            return out
        }
        for (key, topicId, ranges) in pending {
            let tp = key.topicPartition
            // A window read in full is annotated; one that cannot be (damage, its topic gone or
            // made again) is marked; a declined read is tried at the next pass.
            var metas: [SharePartition.RecordMeta]? = nil
            if let bounds = view.bounds(tp.topic, tp.partition), view.topicId(tp.topic) == topicId {
                switch Self.readRestored(ranges, of: tp, bounds: bounds, scan: scan) {
                case .declined: continue
                case .read(let read, cutAt: nil): metas = read
                case .read, .failed: break
                }
            }
            state.withLock { s in
                // In place (a copy of a slot copies its window).
                guard let index = s.slots.index(forKey: key), s.slots.values[index].state.needsMetadata else { return }
                if let metas {
                    s.slots.values[index].state.annotate(with: metas)
                } else {
                    s.slots.values[index].metadataUnread = true
                }
            }
        }
    }
}

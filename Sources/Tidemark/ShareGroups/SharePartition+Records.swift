/// What a share partition keeps per record (`Entry`), what it reads of a record before
/// handing it out (`RecordMeta`), what it persists (`PersistedRun`), and reads by offset.
extension SharePartition {
    /// One record's state in a window: 24 bytes (stride), fields ordered so that nothing is
    /// padded, and one deadline for both meanings a record can need (a window keeps up to
    /// 1,000,000 of these per partition, and every walk reads them).
    struct Entry: Sendable, Equatable {
        var state: ShareRecordState
        /// An acquired record's delivery counts even if the process ends before it is finished
        /// (`ShareStateStore.writeRuns`): its holder is a worker in this process (the embedded
        /// `ShareConsumer`), whose job may be what ended it. (In the byte `state` leaves free.)
        var cutCounts = false
        var deliveryCount: Int16
        /// The holder of an acquired record: `owners[owner - 1]` (0: nobody).
        var owner: UInt32 = 0
        /// `lockExpiryMs` while acquired, `availableAtMs` otherwise: a record is never both
        /// held and waiting.
        private var deadlineMs: Int64 = 0
        /// A hash of the record's key (nil: no key), for per-key ordering.
        var keyHash: UInt32? = nil

        init(
            state: ShareRecordState, deliveryCount: Int16, lockExpiryMs: Int64 = 0, owner: UInt32 = 0, availableAtMs: Int64 = 0,
            keyHash: UInt32? = nil
        ) {
            self.state = state
            self.deliveryCount = deliveryCount
            self.owner = owner
            self.deadlineMs = state == .acquired ? lockExpiryMs : availableAtMs
            self.keyHash = keyHash
        }

        /// When the lock of an acquired record runs out.
        var lockExpiryMs: Int64 {
            get { deadlineMs }
            set { deadlineMs = newValue }
        }
        /// An available record waiting out its retry backoff or its delay
        /// (`tidemark.deliver.at`) is not acquired before this.
        var availableAtMs: Int64 {
            get { deadlineMs }
            set { deadlineMs = newValue }
        }

        /// Acknowledged or archived: never handed out again.
        var isFinished: Bool { state.isFinished }
    }

    /// What a window needs to know of a record before it can be handed out.
    struct RecordMeta: Sendable, Equatable {
        var offset: Int64
        var keyHash: UInt32?
        /// `tidemark.deliver.at` on the timer clock (the coordinator's; 0: none, or long past).
        var deliverAtMs: Int64
    }

    /// A persisted run: offsets `first...last` in `state` (never acquired: locks are not
    /// persisted), delivered `count` times.
    struct PersistedRun: Sendable, Equatable {
        var first: Int64
        var last: Int64
        var state: ShareRecordState
        var count: Int16
    }

    /// The record at `offset` (nil outside the window; a cut record reads as acknowledged).
    func entry(at offset: Int64) -> Entry? {
        guard offset >= startOffset, offset < endOffset else { return nil }
        return entries[Int(offset - startOffset)]
    }

    /// Contiguous runs of `offsets` held by `member`, split where the delivery count changes.
    func ranges(of offsets: [Int64], member: String) -> [AcquiredRange] {
        guard let owner = ownerNumber(member) else { return [] }
        var result: [AcquiredRange] = []
        for offset in offsets {
            guard let entry = entry(at: offset), entry.state == .acquired, entry.owner == owner else { continue }
            if var last = result.last, last.last + 1 == offset, last.deliveryCount == entry.deliveryCount {
                last.last = offset
                result[result.count - 1] = last
            } else {
                result.append(AcquiredRange(first: offset, last: offset, deliveryCount: entry.deliveryCount))
            }
        }
        return result
    }
}

extension SharePartition {
    /// The offsets a restored window must read again for its records' keys and delays: its
    /// unfinished records, in ranges joined across gaps of under `maxGap`, or wider ones so
    /// that there are at most `maxRanges` (each range is one read of the log, under the
    /// coordinator's lock). A window can be far longer than what it keeps (finished records
    /// are cut), and a read of its whole length after a restart would decode all of it.
    func unfinishedRanges(maxGap: Int64 = 1_024, maxRanges: Int = 64) -> [Range<Int64>] {
        var ranges: [Range<Int64>] = []
        for k in entries.kept where !entries.entry(kept: k).isFinished {
            let offset = startOffset + Int64(entries.position(kept: k))
            if let last = ranges.last, offset - last.upperBound < maxGap {
                ranges[ranges.count - 1] = last.lowerBound..<(offset + 1)
            } else {
                ranges.append(offset..<(offset + 1))
            }
        }
        var gap = maxGap
        while ranges.count > maxRanges {
            gap *= 2
            var joined: [Range<Int64>] = []
            for range in ranges {
                if let last = joined.last, range.lowerBound - last.upperBound < gap {
                    joined[joined.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    joined.append(range)
                }
            }
            ranges = joined
        }
        return ranges
    }
}

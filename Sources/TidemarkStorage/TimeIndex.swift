/// The sparse time index of one segment (`<base>.timeindex`).
///
/// Layout: a sequence of 12-byte entries, big-endian:
/// ```
/// timestamp      i64  the largest batch timestamp seen in the segment up to this point
/// relativeOffset u32  offset - segment base offset: the last offset of the batch that
///                     carried that timestamp
/// ```
/// Timestamps strictly increase and offsets never decrease. Entries are added alongside the
/// offset index (when the largest timestamp grew), and once more when the segment is sealed,
/// so the last entry holds the segment's largest timestamp.
/// Ownership: its `LogSegment` (under the partition's lock); not Sendable.
final class TimeIndex {
    static let entrySize = 12

    let baseOffset: Int64
    let storage: MappedIndexFile

    init(
        path: String, baseOffset: Int64, maxBytes: Int, writable: Bool, discardingEntries: Bool = false,
        memory: IndexMemoryBudget = .shared
    ) throws(StorageError) {
        self.baseOffset = baseOffset
        storage = try MappedIndexFile(
            path: path, entrySize: Self.entrySize, maxBytes: maxBytes, writable: writable, discardingEntries: discardingEntries,
            memory: memory)
    }

    var entryCount: Int { storage.entryCount }
    var isFull: Bool { storage.isFull }

    func entry(_ index: Int) -> (timestamp: Int64, offset: Int64) {
        let raw = storage.entry(index)
        let timestamp = Int64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: Int64.self))
        let relative = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        return (timestamp, baseOffset &+ Int64(relative))
    }

    var lastEntry: (timestamp: Int64, offset: Int64)? { entryCount > 0 ? entry(entryCount - 1) : nil }

    /// Appends when `timestamp` is larger than the last entry's (and there is room). `last`: the
    /// segment's final entry (see `MappedIndexFile.append`). An offset outside the segment (no
    /// batch of it carried a timestamp yet: -1) adds nothing.
    func maybeAppend(timestamp: Int64, offset: Int64, last isFinal: Bool = false) throws(StorageError) {
        guard offset >= baseOffset && offset - baseOffset <= Int64(UInt32.max) else { return }
        if let last = lastEntry, timestamp <= last.timestamp || offset < last.offset { return }
        if isFull { return }
        try storage.append(last: isFinal) { raw in
            raw.storeBytes(of: timestamp.bigEndian, toByteOffset: 0, as: Int64.self)
            raw.storeBytes(of: UInt32(offset - baseOffset).bigEndian, toByteOffset: 8, as: UInt32.self)
        }
    }

    /// The last entry whose timestamp is <= `target`, or (-1, baseOffset) when there is none.
    func lookup(_ target: Int64) -> (timestamp: Int64, offset: Int64) {
        var low = 0
        var high = entryCount - 1
        var found: (timestamp: Int64, offset: Int64) = (-1, baseOffset)
        while low <= high {
            let middle = (low + high) / 2
            let candidate = entry(middle)
            if candidate.timestamp <= target {
                found = candidate
                low = middle + 1
            } else {
                high = middle - 1
            }
        }
        return found
    }

    func truncate(toOffset offset: Int64) {
        var keep = entryCount
        while keep > 0 && entry(keep - 1).offset >= offset { keep -= 1 }
        storage.truncate(toEntries: keep)
    }

    func validate(offsetLimit: Int64?) -> Bool {
        var previous: (timestamp: Int64, offset: Int64)?
        for index in 0..<entryCount {
            let current = entry(index)
            if let previous, current.timestamp <= previous.timestamp || current.offset < previous.offset { return false }
            if current.offset < baseOffset { return false }
            if let offsetLimit, current.offset >= offsetLimit { return false }
            previous = current
        }
        return true
    }
}

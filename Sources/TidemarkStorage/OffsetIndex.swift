/// The sparse offset index of one segment (`<base>.index`).
///
/// Layout: a sequence of 8-byte entries, big-endian, strictly increasing in both fields:
/// ```
/// relativeOffset u32  offset - segment base offset: the LAST offset of an indexed batch
/// position       u32  byte position of that batch in the segment's .log
/// ```
/// An entry is added before a batch when more than `indexIntervalBytes` were appended since
/// the last one. A lookup finds the last entry at or below a target and the reader scans at
/// most one interval of batch headers from there. The index is disposable: it is rebuilt from
/// the log after a crash or when it fails `validate`.
/// Ownership: its `LogSegment` (under the partition's lock); not Sendable.
final class OffsetIndex {
    static let entrySize = 8

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

    func entry(_ index: Int) -> (offset: Int64, position: Int) {
        let raw = storage.entry(index)
        let relative = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        let position = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        return (baseOffset &+ Int64(relative), Int(position))
    }

    var lastEntry: (offset: Int64, position: Int)? { entryCount > 0 ? entry(entryCount - 1) : nil }

    /// Adds an entry. The index is sparse: an entry that would not fit (outside the segment's
    /// u32 range, a full index) or not increase (an index trusted at open that ends past where
    /// a rescan of the log's tail finds batches) is left out, never a trap.
    func append(offset: Int64, position: Int) throws(StorageError) {
        guard offset >= baseOffset && offset - baseOffset <= Int64(UInt32.max), position >= 0 && position <= Int(UInt32.max),
            !storage.isFull
        else { return }
        if let last = lastEntry, offset <= last.offset || position <= last.position { return }
        try storage.append { raw in
            raw.storeBytes(of: UInt32(offset - baseOffset).bigEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: UInt32(position).bigEndian, toByteOffset: 4, as: UInt32.self)
        }
    }

    /// The last entry whose offset is <= `target`, or (baseOffset, 0) when there is none.
    func lookup(_ target: Int64) -> (offset: Int64, position: Int) {
        var low = 0
        var high = entryCount - 1
        var found: (offset: Int64, position: Int) = (baseOffset, 0)
        while low <= high {
            let middle = (low + high) / 2
            let candidate = entry(middle)
            if candidate.offset <= target {
                found = candidate
                low = middle + 1
            } else {
                high = middle - 1
            }
        }
        return found
    }

    /// Removes the entries whose offset is >= `offset`.
    func truncate(toOffset offset: Int64) {
        var keep = entryCount
        while keep > 0 && entry(keep - 1).offset >= offset { keep -= 1 }
        storage.truncate(toEntries: keep)
    }

    /// Whether the entries are plausible for a log of `logSize` bytes whose offsets are below
    /// `offsetLimit`: strictly increasing, inside the log, inside the segment's offsets.
    func validate(logSize: Int, offsetLimit: Int64?) -> Bool {
        var previous: (offset: Int64, position: Int)?
        for index in 0..<entryCount {
            let current = entry(index)
            if let previous, current.offset <= previous.offset || current.position <= previous.position { return false }
            if current.position >= logSize { return false }
            if let offsetLimit, current.offset >= offsetLimit { return false }
            previous = current
        }
        return true
    }
}

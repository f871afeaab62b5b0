/// What a crash can leave of a segment's appends past its recovery point, told apart from
/// damage. Recovery (`LogSegment.rebuildIndexes`) cuts a remnant and refuses anything else;
/// `verify` (`LogVerifier`) calls a remnant a note and anything else a problem.
///
/// Appends to a segment are one pwritev at a time at its end, under the log's lock. A process
/// that dies (kill -9, a trap) leaves at most that last write unfinished: the file ends inside
/// it, or the zeros written ahead of a synced log's appends do. A power loss also loses the
/// pages the OS had not written back, in any order, and the sectors of a page whose write it
/// cut: they read as zeros inside the appends that were not synced. Damage of another shape, such as a length field (outside the CRC)
/// made longer so that it reaches past the file's end, over batches that check out and no
/// sector of zeros, was not left by a crash: the records after it were written whole, and a cut
/// there loses every one of them (a log cut to nothing at a flipped length in its first
/// batch). One rule, then: an intact batch (magic 2, a length that fits, an offset not below
/// the one expected, its CRC) after the bad one's start and before the first sector of zeros
/// means damage, whatever the bad batch's own shape.
enum CrashRemnant: Equatable, CustomStringConvertible {
    /// The last write, cut short by the file's end or by the zeros written ahead of it.
    case unfinishedWrite
    /// An append whose pages the OS wrote back in part before a power loss.
    case partlyWrittenBack

    var description: String {
        switch self {
        case .unfinishedWrite: "an unfinished write of the crash"
        case .partlyWrittenBack: "an append a power loss left written back in part"
        }
    }

    /// How far past a bad batch's start is read to tell (a batch's pages, the batches after).
    static let span = 8 << 20

    /// What the bad batch at `position` of `file` (`size` bytes long) is, if a crash can have
    /// left it; nil for damage. `expectedOffset`: the base offset the batch there should have.
    static func classify(
        _ error: RecordBatchError, file: SharedFile, at position: Int, size: Int, expectedOffset: Int64
    ) throws(StorageError) -> CrashRemnant? {
        guard position < size else { return .unfinishedWrite }
        let bytes = try file.read(count: min(size - position, span), at: Int64(position))
        return classify(error, bytes: bytes, at: position, size: size, expectedOffset: expectedOffset)
    }

    /// The same, over `bytes` read from `position` (at most `span` of them; fewer if the file ends).
    static func classify(_ error: RecordBatchError, bytes: [UInt8], at position: Int, size: Int, expectedOffset: Int64) -> CrashRemnant? {
        let zeros = firstUnwrittenSector(bytes, at: position)
        if hasIntactBatch(bytes, before: zeros ?? bytes.count, expectedOffset: expectedOffset) { return nil }
        if isUnfinishedWrite(error, bytes, at: position, size: size) { return .unfinishedWrite }
        // Written back in part: the bad batch is the file's last (its declared end is the file's
        // end), or a sector of zeros lies within it (from its start to its declared end).
        var declaredEnd = size
        if bytes.count >= RecordBatchHeader.logOverhead {
            declaredEnd = position + RecordBatchHeader.logOverhead + declaredLength(bytes)
            if declaredEnd == size { return .partlyWrittenBack }
        }
        if let zeros, position + zeros < max(declaredEnd, position + 1) { return .partlyWrittenBack }
        return nil
    }

    /// The unsigned length field of the batch at the start of `bytes` (at least 12 of them).
    private static func declaredLength(_ bytes: [UInt8]) -> Int {
        bytes[8..<12].reduce(0) { $0 << 8 | Int($1) }
    }

    /// Whether the bad batch is the last write cut short: by the file's end; by zeros to the
    /// end (a size that reached the disk before the data); or by the zeros written ahead of
    /// the appends (bytes, then zeros to a 4 KiB boundary at the end of the file, every byte
    /// left inside the batch its length field declares).
    private static func isUnfinishedWrite(_ error: RecordBatchError, _ bytes: [UInt8], at position: Int, size: Int) -> Bool {
        if case .truncated = error { return true }
        guard size - position <= BatchScanner.maxPreallocatedTail, bytes.count == size - position else { return false }
        guard let lastData = bytes.lastIndex(where: { $0 != 0 }) else { return true }
        guard size % 4096 == 0, bytes.count >= RecordBatchHeader.logOverhead else { return false }
        let length = declaredLength(bytes)
        let declared = RecordBatchHeader.logOverhead + length
        return length >= Int(RecordBatchHeader.minimumBatchLength) && declared <= bytes.count && lastData < declared - 1
    }

    /// The unit a disk writes whole: a page the OS wrote back in part (a power loss during
    /// its write) keeps the old contents of some of its 512-byte sectors. Past a log's end
    /// those are zeros: never written, or written ahead of the appends.
    static let sectorBytes = 512

    /// Where in `bytes` (read from file position `position`) the first part a power loss can
    /// have left unwritten starts: a 512-byte sector of the file all zeros, or the part of the
    /// first one from `position` on if all zeros and at least a batch's base offset and length
    /// long (a length of 0 is never a batch's; a few zero bytes before a boundary are a base
    /// offset's). Nil if there is none.
    static func firstUnwrittenSector(_ bytes: [UInt8], at position: Int) -> Int? {
        let end = position + bytes.count
        var sector = position / sectorBytes * sectorBytes
        while sector + sectorBytes <= end {
            let from = max(sector, position) - position, to = sector + sectorBytes - position
            if to - from >= RecordBatchHeader.logOverhead && bytes[from..<to].allSatisfy({ $0 == 0 }) { return from }
            sector += sectorBytes
        }
        return nil
    }

    /// Whether an intact batch starts in `bytes[1..<limit]` and ends by `limit`: magic 2, a
    /// valid length, a base offset at or past `expectedOffset`, and a CRC that checks out.
    static func hasIntactBatch(_ bytes: [UInt8], before limit: Int, expectedOffset: Int64) -> Bool {
        let limit = min(limit, bytes.count)
        guard limit > RecordBatchHeader.size else { return false }
        return bytes.withUnsafeBytes { raw in
            for start in 1...(limit - RecordBatchHeader.size) where raw[start + RecordBatchHeader.magicOffset] == 2 {
                let length = Int(Int32(bigEndian: raw.loadUnaligned(fromByteOffset: start + 8, as: Int32.self)))
                let baseOffset = Int64(bigEndian: raw.loadUnaligned(fromByteOffset: start, as: Int64.self))
                guard length >= Int(RecordBatchHeader.minimumBatchLength), start + RecordBatchHeader.logOverhead + length <= limit,
                    baseOffset >= expectedOffset
                else { continue }
                let batch = UnsafeRawBufferPointer(rebasing: raw[start..<(start + RecordBatchHeader.logOverhead + length)])
                if (try? RecordBatchHeader.validate(batch)) != nil { return true }
            }
            return false
        }
    }
}

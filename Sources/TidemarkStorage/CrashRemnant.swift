/// What a crash can leave of a segment's appends past its recovery point, told apart from
/// damage. Recovery (`LogSegment.rebuildIndexes`) cuts a remnant and refuses anything else;
/// `verify` (`LogVerifier`) calls a remnant a note and anything else a problem.
///
/// Appends to a segment are one pwritev at a time at its end, under the log's lock. A process
/// that dies (kill -9, a trap) leaves at most that last write unfinished: the file ends inside
/// it, or the zeros written ahead of a synced log's appends do. A power loss also loses the
/// pages the OS had not written back, in any order, and the sectors of a page whose write it
/// cut: they read as zeros (never written, or written ahead) inside the appends that were not
/// synced, including the first bytes of an append when the sector it began in kept its old
/// contents (`isTornHeaderStart`). Damage of another shape, such as a length field (outside
/// the CRC) made longer so that it reaches past the file's end over batches that check out,
/// or made negative, was not left by a crash: the records after it were written whole, and a
/// cut there loses every one of them (a log cut to nothing at a flipped length in its first
/// batch). So an intact batch (magic 2, a length that fits, a plausible offset at or past the
/// one expected, its CRC) after the bad one's start means damage: anywhere when the bad batch
/// reaches past the file's end (its bytes are all its own), else before the first sector of
/// zeros (past it, later sectors may have been written back and earlier ones not).
///
/// A process that died in the boot the log was opened in (`afterPowerLoss` false) lost nothing
/// the OS had been given: only its last write can be torn, and none of the power-loss shapes
/// below is a remnant then.
///
/// Trade-offs: after a reboot, 512 zero bytes on a sector boundary inside the bad batch read
/// as unwritten (uncompressed values of zeros: such damage is cut); a record value
/// holding a whole valid batch (a copied segment) makes a torn append there read as damage
/// (refused: nothing lost, `verify --repair` cuts it); a torn batch over `span` (8 MiB) is
/// told only by what its first 8 MiB show.
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
    /// The most bytes `hasIntactBatch` checks CRCs over: contents made to look like batch
    /// headers everywhere cannot make a recovery or a `verify` take hours.
    static let crcBudget = 256 << 20

    /// What the bad batch at `position` of `file` (`size` bytes long) is, if a crash can have
    /// left it; nil for damage. `expectedOffset`: the base offset the batch there should have.
    /// `afterPowerLoss`: whether a power loss can have come since the log was marked open (a
    /// reboot since, `LogMarkers.wasOpenedInThisBoot`). Without one the page cache kept every
    /// write: only the last can be unfinished, and sectors of zeros or a damaged last batch are
    /// damage (a flipped byte in a value of zeros read as a sector never written).
    static func classify(
        _ error: RecordBatchError, file: SharedFile, at position: Int, size: Int, expectedOffset: Int64, afterPowerLoss: Bool
    ) throws(StorageError) -> CrashRemnant? {
        guard position < size else { return .unfinishedWrite }
        let bytes = try file.read(count: min(size - position, span), at: Int64(position))
        return classify(error, bytes: bytes, at: position, size: size, expectedOffset: expectedOffset, afterPowerLoss: afterPowerLoss)
    }

    /// The same, over `bytes` read from `position` (at most `span` of them; fewer if the file ends).
    static func classify(
        _ error: RecordBatchError, bytes: [UInt8], at position: Int, size: Int, expectedOffset: Int64, afterPowerLoss: Bool
    ) -> CrashRemnant? {
        if afterPowerLoss && isTornHeaderStart(bytes, at: position, expectedOffset: expectedOffset) { return .partlyWrittenBack }
        let zeros = afterPowerLoss ? firstUnwrittenSector(bytes, at: position, reachesEnd: position + bytes.count == size) : nil
        let cutShortByTheEnd: Bool
        if case .truncated = error { cutShortByTheEnd = true } else { cutShortByTheEnd = false }
        let searched = cutShortByTheEnd ? bytes.count : zeros ?? bytes.count
        if hasIntactBatch(bytes, before: searched, expectedOffset: expectedOffset) { return nil }
        if isUnfinishedWrite(error, bytes, at: position, size: size, afterPowerLoss: afterPowerLoss) { return .unfinishedWrite }
        guard afterPowerLoss, bytes.count >= RecordBatchHeader.logOverhead else { return nil }
        // A negative length: no write, whole or torn, leaves one (torn bytes read as zeros).
        guard bytes[8] & 0x80 == 0 else { return nil }
        // Written back in part: the bad batch is the file's last (its declared end is the file's
        // end), or a sector of zeros lies within it (from its start to its declared end).
        let declaredEnd = position + RecordBatchHeader.logOverhead + declaredLength(bytes)
        if declaredEnd == size { return .partlyWrittenBack }
        if let zeros, position + zeros < declaredEnd { return .partlyWrittenBack }
        return nil
    }

    /// A bad batch at `position` refused rather than cut: among records made durable
    /// (`below` the recovery point, or after a clean shutdown), or past the recovery point but
    /// not what a crash leaves (`classify`): the error `LogSegment`'s open throws for the log at `path`.
    static func refusal(
        at position: Int, fileSize size: Int, path: String, _ why: String, durableBelow: Int64, below: Bool, afterPowerLoss: Bool
    ) -> StorageError {
        let crash =
            afterPowerLoss
            ? "its unfinished last write, or sectors a power loss did not write back"
            : "the machine has not restarted since the log was opened (its .clean-shutdown marker names this boot), "
                + "so a process crash that kept every write but its last"
        let whereItIs =
            durableBelow == .max
            ? "after a clean shutdown"
            : below
                ? "below the recovery point (offset \(durableBelow))"
                : "past the recovery point (offset \(durableBelow)), but not what a crash leaves there (\(crash)): "
                    + "batches that check out follow it, or its bytes are not a torn write's"
        return StorageError(
            .corruptLog,
            "bad batch at position \(position) (\(size - position) bytes to the end) " + whereItIs + ": \(why). "
                + "Damage, not an unfinished write: not cut (a cut takes every record from here on). `tidemark verify` shows it; "
                + "`tidemark verify --repair` on the data directory, with the broker stopped, cuts the log there "
                + "(repair a copy to keep this one as it is)",
            path: path)
    }

    /// Whether the batch at `position` reads as an append whose first sector kept its old
    /// contents (zeros) while the rest was written: its first bytes, up to the next sector
    /// boundary and fewer than a base offset and length (12; more are `firstUnwrittenSector`'s),
    /// are zeros, its base offset is not the expected one, and the rest of it is. (Intact but
    /// for a base offset outside the CRC when the zeros end within it: `LogSegment` and
    /// `verify` ask for a batch that checks out with the wrong offset too.)
    static func isTornHeaderStart(_ bytes: [UInt8], at position: Int, expectedOffset: Int64) -> Bool {
        let zeroed = sectorBytes - position % sectorBytes
        guard zeroed < RecordBatchHeader.logOverhead, bytes.count >= 8, bytes[0..<zeroed].allSatisfy({ $0 == 0 }) else { return false }
        let stored = bytes[0..<8].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        guard stored != expectedOffset else { return false }
        if zeroed >= 8 { return true }
        let expected = withUnsafeBytes(of: expectedOffset.bigEndian) { Array($0) }
        return bytes[zeroed..<8].elementsEqual(expected[zeroed..<8])
    }

    /// The unsigned length field of the batch at the start of `bytes` (at least 12 of them).
    private static func declaredLength(_ bytes: [UInt8]) -> Int {
        bytes[8..<12].reduce(0) { $0 << 8 | Int($1) }
    }

    /// Whether the bad batch is the last write cut short: by the file's end; by zeros to the
    /// end (a size that reached the disk before the data); or by the zeros written ahead of
    /// the appends (bytes, then zeros to a 4 KiB boundary at the end of the file, the zeros
    /// beginning inside the batch its length field declares).
    ///
    /// Where a write into the zeros stopped: a process killed mid-write leaves the page cache's
    /// copy of it ending on a page boundary (the kernel copies a write page by page and stops
    /// between pages), so in the same boot the zeros that follow the written bytes begin on a
    /// 4 KiB boundary; after a power loss, on a 512-byte sector's. (A byte flipped in a whole
    /// batch ahead of the zeros, whose last byte is 0 as most batches' are, read as a write cut
    /// short: an outside hunt saw a synced batch of a `flush.messages=1` topic cut after a
    /// kill -9. A copy the kernel cut short mid-page, its source page unmapped at that moment,
    /// then killed, reads as damage: refused, `verify --repair` cuts it.)
    private static func isUnfinishedWrite(
        _ error: RecordBatchError, _ bytes: [UInt8], at position: Int, size: Int, afterPowerLoss: Bool
    ) -> Bool {
        if case .truncated = error { return true }
        guard size - position <= BatchScanner.maxPreallocatedTail, bytes.count == size - position else { return false }
        guard let lastData = bytes.lastIndex(where: { $0 != 0 }) else { return true }
        let unit = afterPowerLoss ? sectorBytes : pageBytes
        guard size % pageBytes == 0, bytes.count >= RecordBatchHeader.logOverhead else { return false }
        // The first boundary past the last byte written: where the zeros began.
        let stopped = ((position + lastData) / unit + 1) * unit - position
        // Stopped inside the base offset and length (the write's first chunk, up to a boundary,
        // a few bytes long): no length to read.
        if stopped < RecordBatchHeader.logOverhead { return true }
        let length = declaredLength(bytes)
        let declared = RecordBatchHeader.logOverhead + length
        guard length >= Int(RecordBatchHeader.minimumBatchLength), declared <= bytes.count else { return false }
        return stopped < declared
    }

    /// A page of the page cache: what a killed write leaves whole.
    static let pageBytes = 4096

    /// The unit a disk writes whole: a page the OS wrote back in part (a power loss during
    /// its write) keeps the old contents of some of its 512-byte sectors. Past a log's end
    /// those are zeros: never written, or written ahead of the appends.
    static let sectorBytes = 512

    /// `isTornHeaderStart` for a batch that checks out but for its base offset.
    static func isTornHeaderStart(_ header: RecordBatchHeader, at position: Int, expectedOffset: Int64) -> Bool {
        let bytes = withUnsafeBytes(of: header.baseOffset.bigEndian) { Array($0) } + withUnsafeBytes(of: header.batchLength.bigEndian) { Array($0) }
        return isTornHeaderStart(bytes, at: position, expectedOffset: expectedOffset)
    }

    /// Where in `bytes` (read from file position `position`) the first part a power loss can
    /// have left unwritten starts: a 512-byte sector of the file all zeros, the part of the
    /// first one from `position` on, or (`reachesEnd`: `bytes` end at the file's end) the part
    /// of the last one up to the file's end (a size that reached the disk before the data), if
    /// all zeros and at least a batch's base offset and length long (a length of 0 is never a
    /// batch's; a few zero bytes before a boundary are a base offset's). Nil if there is none.
    static func firstUnwrittenSector(_ bytes: [UInt8], at position: Int, reachesEnd: Bool) -> Int? {
        let end = position + bytes.count
        var sector = position / sectorBytes * sectorBytes
        while sector < end {
            let from = max(sector, position) - position, to = min(sector + sectorBytes, end) - position
            let counts = sector + sectorBytes <= end || reachesEnd
            if counts && to - from >= RecordBatchHeader.logOverhead && bytes[from..<to].allSatisfy({ $0 == 0 }) { return from }
            sector += sectorBytes
        }
        return nil
    }

    /// Whether an intact batch starts in `bytes[1..<limit]` and ends by `limit`: magic 2, a
    /// valid length, a base offset at or past `expectedOffset` and within a record per byte of
    /// it (offsets follow on without a gap, each record at least a byte), and a CRC that checks
    /// out (over at most `crcBudget` bytes in all).
    static func hasIntactBatch(_ bytes: [UInt8], before limit: Int, expectedOffset: Int64) -> Bool {
        let limit = min(limit, bytes.count)
        guard limit > RecordBatchHeader.size else { return false }
        var budget = crcBudget
        return bytes.withUnsafeBytes { raw in
            for start in 1...(limit - RecordBatchHeader.size) where raw[start + RecordBatchHeader.magicOffset] == 2 {
                let length = Int(Int32(bigEndian: raw.loadUnaligned(fromByteOffset: start + 8, as: Int32.self)))
                let baseOffset = Int64(bigEndian: raw.loadUnaligned(fromByteOffset: start, as: Int64.self))
                guard length >= Int(RecordBatchHeader.minimumBatchLength), start + RecordBatchHeader.logOverhead + length <= limit,
                    baseOffset >= expectedOffset, baseOffset - expectedOffset <= Int64(start)
                else { continue }
                budget -= length
                if budget < 0 { return false }
                let batch = UnsafeRawBufferPointer(rebasing: raw[start..<(start + RecordBatchHeader.logOverhead + length)])
                if (try? RecordBatchHeader.validate(batch)) != nil { return true }
            }
            return false
        }
    }
}

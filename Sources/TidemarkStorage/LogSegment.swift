#if canImport(Glibc)
import Glibc
#endif

/// One segment of a partition log: `<base>.log` with its `.index` and `.timeindex`, where
/// `<base>` is the segment's base offset as 20 zero-padded decimal digits.
///
/// The `.log` file is a plain concatenation of RecordBatch v2 batches, byte for byte as
/// produced (with the broker's baseOffset), nothing before or between them. After them, the
/// active segment of a log that syncs every append may hold zeros: space written ahead of
/// the appends (`preallocateAhead`), trimmed at roll and close, and cut by recovery after a
/// crash without counting as a loss. Zeros are never a batch: a batch's length field is at
/// least `RecordBatchHeader.minimumBatchLength`.
///
/// Ownership: the `PartitionLog` that lists it, under that log's lock; not Sendable. Files
/// are opened lazily: an inactive segment costs no descriptor or mapping until it is read,
/// and `closeFiles()` gives them back when it is idle. The `.log` descriptor counts against
/// the log's `OpenFileBudget`; `evictFile()` gives it back, and the active segment reopens it
/// on next use (`file()`), keeping its mapped indexes.
final class LogSegment {
    let baseOffset: Int64
    let directory: String
    let config: LogConfig
    let use: LogFileUse

    /// Bytes of whole batches in the log file (the committed, readable end).
    private(set) var size: Int
    /// Where the zeros written ahead of the appends end (`preallocateAhead`); at or below
    /// `size` when there are none. Anything that cuts the file resets it.
    private var preallocatedEnd = 0
    /// One past the last offset, when known (always for the active segment and after a scan).
    private(set) var nextOffset: Int64?
    /// Largest batch timestamp in the segment, -1 when empty or not yet known.
    private(set) var maxTimestamp: Int64 = -1
    /// `maxTimestamp` has been read (the segment was created or opened since the log opened);
    /// it stays known after the files are closed, so a time lookup skips an older segment
    /// without reopening it.
    private(set) var maxTimestampKnown = false
    private(set) var offsetOfMaxTimestamp: Int64 = -1
    /// Broker clock (ms) when the segment received its first batch, or when it was
    /// reopened: the reference for time-based rolls. Producer timestamps are not used, so
    /// old timestamps cannot make every append roll.
    var rollBaseMilliseconds: Int64?
    private var bytesSinceLastIndexEntry = 0
    /// Byte ranges whose batches are known to check out (see `CheckedSpans`): appends, and
    /// what recovery, an index rebuild or a read scanned. Kept while the files are closed.
    private(set) var checked = CheckedSpans()

    /// The `.log` file when open. Set only here: every change is counted in `use`.
    private(set) var log: SharedFile? {
        didSet {
            if (oldValue == nil) != (log == nil) {
                if log == nil { use.closed() } else { use.opened() }
            }
        }
    }
    private var offsetIndex: OffsetIndex?
    private var timeIndex: TimeIndex?
    private(set) var isWritable = false
    var lastUsedNanoseconds: UInt64 = monotonicNanoseconds()

    static func fileName(baseOffset: Int64, suffix: String) -> String {
        let digits = String(baseOffset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    /// The base offset in a segment file name, or nil for other names.
    static func baseOffset(fromFileName name: String, suffix: String) -> Int64? {
        guard name.hasSuffix(suffix) else { return nil }
        let stem = name.dropLast(suffix.count)
        guard stem.count == 20, stem.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return Int64(stem)
    }

    var logPath: String { directory + "/" + Self.fileName(baseOffset: baseOffset, suffix: ".log") }
    var indexPath: String { directory + "/" + Self.fileName(baseOffset: baseOffset, suffix: ".index") }
    var timeIndexPath: String { directory + "/" + Self.fileName(baseOffset: baseOffset, suffix: ".timeindex") }
    var isOpen: Bool { log != nil }

    /// The `.log` file, reopened if the budget evicted it (the active segment keeps its
    /// indexes mapped and only loses the descriptor; an inactive one reopens whole).
    func file() throws(StorageError) -> SharedFile {
        if let log { return log }
        if isWritable {
            let reopened = try SharedFile.open(logPath, .readWrite)
            log = reopened
            return reopened
        }
        try openForRead(offsetLimit: nextOffset)
        return log!
    }

    /// Gives the descriptor back to the budget: the active segment only closes its `.log`
    /// (appends reopen it), an inactive one closes whole. Returns 1 when a file was closed.
    func evictFile() -> Int {
        guard log != nil else { return 0 }
        if isWritable { log = nil } else { closeFiles() }
        return 1
    }

    private init(directory: String, baseOffset: Int64, config: LogConfig, use: LogFileUse, size: Int) {
        self.directory = directory
        self.baseOffset = baseOffset
        self.config = config
        self.use = use
        self.size = size
    }

    deinit {
        if log != nil { use.closed() }
    }

    /// A new, empty, writable segment. Fails if its files exist.
    static func create(directory: String, baseOffset: Int64, config: LogConfig, use: LogFileUse) throws(StorageError)
        -> LogSegment
    {
        let segment = LogSegment(directory: directory, baseOffset: baseOffset, config: config, use: use, size: 0)
        segment.log = try SharedFile.open(segment.logPath, .readWrite, options: [.create, .exclusiveCreate])
        do {
            try FileSystem.remove(segment.indexPath)
            try FileSystem.remove(segment.timeIndexPath)
            try segment.openIndexes(writable: true)
        } catch {
            // E.g. no descriptor or address space for the indexes: leave no half-made segment.
            try? segment.deleteFiles()
            throw error
        }
        segment.nextOffset = baseOffset
        segment.maxTimestampKnown = true
        return segment
    }

    /// An existing segment, described by its file size only; nothing is opened or read.
    static func existing(directory: String, baseOffset: Int64, config: LogConfig, use: LogFileUse) throws(StorageError)
        -> LogSegment
    {
        let segment = LogSegment(directory: directory, baseOffset: baseOffset, config: config, use: use, size: 0)
        segment.size = Int(try FileSystem.fileSize(segment.logPath))
        return segment
    }

    private func openIndexes(writable: Bool, discardingEntries: Bool = false) throws(StorageError) {
        offsetIndex = try OffsetIndex(
            path: indexPath, baseOffset: baseOffset, maxBytes: config.maxIndexBytes, writable: writable,
            discardingEntries: discardingEntries, memory: config.indexMemory)
        timeIndex = try TimeIndex(
            path: timeIndexPath, baseOffset: baseOffset, maxBytes: config.maxIndexBytes, writable: writable,
            discardingEntries: discardingEntries, memory: config.indexMemory)
        isWritable = writable
    }

    // MARK: Opening

    /// Opens an inactive segment for reading. Its indexes are checked and, when missing or
    /// implausible, rebuilt from the log.
    func openForRead(offsetLimit: Int64?) throws(StorageError) {
        lastUsedNanoseconds = monotonicNanoseconds()
        if isOpen { return }
        log = try FileSystem.openRegularFile(logPath, .readOnly)
        size = Int(try log!.size())
        let indexesPresent = FileSystem.exists(indexPath) && FileSystem.exists(timeIndexPath)
        if indexesPresent {
            try openIndexes(writable: false)
            // A sealed segment holding batches has a time entry (its seal writes the last one):
            // an empty time index (made empty by a crash during a rebuild) would be trusted, and
            // every time lookup would pass the segment by.
            if offsetIndex!.validate(logSize: size, offsetLimit: offsetLimit),
                timeIndex!.validate(offsetLimit: offsetLimit), size == 0 || timeIndex!.lastEntry != nil
            {
                if let last = timeIndex!.lastEntry {
                    maxTimestamp = last.timestamp
                    offsetOfMaxTimestamp = last.offset
                }
                maxTimestampKnown = true
                return
            }
        }
        // Rebuild the indexes from the log (they are disposable); the log itself is left as is.
        try openIndexes(writable: true, discardingEntries: true)
        _ = try rebuildIndexes(truncatingInvalidTail: false)
        try sealIndexes()
        // Durable before a later open trusts them: after a power loss an unsynced rebuild could
        // come back at its size over blocks never written, and a zero time entry passes as a
        // plausible one (a segment of timestamp 0: retention would delete it at once).
        for index in [offsetIndex?.storage, timeIndex?.storage] { try? index?.fileForSync()?.syncIncludingMetadata() }
        maxTimestampKnown = true
    }

    /// Opens the segment for appends.
    ///
    /// `trustIndexes`: after a clean shutdown the indexes are kept if plausible and only
    /// the batches after the last index entry are scanned; otherwise (after a crash) the
    /// whole segment is scanned, its indexes rebuilt and a torn tail cut off.
    /// Returns the bytes cut off.
    ///
    /// `durableBelow`: the records below this offset were made durable before the stop (all of
    /// them after a clean shutdown; below the recovery point after a crash). No write was
    /// unfinished there: a bad batch is damage (the disk, a hand, a partial copy), and it and the
    /// records after it were acknowledged. It is not cut (a start cut a log at a flipped byte in
    /// its first batch, every record after it with it; a length field, outside the CRC, made
    /// longer read as a batch cut short): the open throws `.corruptLog` instead (the partition
    /// stays offline) naming `tidemark verify --repair`. Zeros to the end of the file (written
    /// ahead of appends) are cut wherever they are, as is a bad batch past `durableBelow` that
    /// a crash can have left (`CrashRemnant`: the last write unfinished, pages a power loss did
    /// not write back), as Kafka's recovery cuts it. Past `durableBelow`, other damage (a length
    /// made longer over good batches, a base offset changed) is refused too: the records after
    /// it were written whole. `durableBelow: .min` cuts at any bad batch (`verify --repair`).
    ///
    /// `afterPowerLoss`: whether a power loss can have come since the log was marked open (a
    /// reboot since): sectors the OS had not written back are remnants too; without one, only
    /// the last write can be unfinished (`CrashRemnant.classify`).
    func openForAppend(trustIndexes: Bool, durableBelow: Int64, afterPowerLoss: Bool = true) throws(StorageError) -> Int {
        lastUsedNanoseconds = monotonicNanoseconds()
        closeFiles()
        log = try SharedFile.open(logPath, .readWrite)
        size = Int(try log!.size())
        // Both indexes or neither: one missing (removed by a close that could not write it on a
        // full disk) would be made empty here and trusted, and the other then skips the scan.
        let trustIndexes = trustIndexes && FileSystem.exists(indexPath) && FileSystem.exists(timeIndexPath)
        // Untrusted indexes are rebuilt from scratch: their old entries are not read at all.
        try openIndexes(writable: true, discardingEntries: !trustIndexes)
        if trustIndexes, offsetIndex!.validate(logSize: size, offsetLimit: nil), timeIndex!.validate(offsetLimit: nil) {
            let resumeFrom = offsetIndex!.lastEntry
            if let last = timeIndex!.lastEntry {
                maxTimestamp = last.timestamp
                offsetOfMaxTimestamp = last.offset
            }
            maxTimestampKnown = true
            return try scanTail(
                from: resumeFrom?.position ?? 0, indexedLastOffset: resumeFrom?.offset, durableBelow: durableBelow, afterPowerLoss: afterPowerLoss)
        }
        maxTimestampKnown = true
        return try rebuildIndexes(truncatingInvalidTail: true, durableBelow: durableBelow, afterPowerLoss: afterPowerLoss)
    }

    /// Scans the batches after the last index entry (at `position`, already indexed),
    /// indexing them and updating the in-memory state. If anything there is damaged, falls
    /// back to a full rebuild, since index entries may point into the damage.
    /// `indexedLastOffset`: the last offset the index entry at `position` records for its batch;
    /// a batch there that does not end at it (a base offset damaged since: outside the CRC)
    /// makes the scan a full rebuild, as other damage does, rather than move the log's end.
    private func scanTail(from position: Int, indexedLastOffset: Int64?, durableBelow: Int64, afterPowerLoss: Bool) throws(StorageError) -> Int {
        var scanner = BatchScanner(file: try file(), from: position, end: size, maxBatchBytes: Int(Int32.max))
        var next = baseOffset
        while true {
            switch try scanner.next() {
            case .batch(let header, let at):
                // Offsets follow on without a gap (appends take the log's end; nothing compacts):
                // a base offset past it is damage (outside the CRC). The indexed batch the scan
                // starts at is checked against its index entry instead.
                let indexed = at == position && position > 0
                guard indexed ? header.baseOffset >= next : header.baseOffset == next, header.nextOffset > header.baseOffset,
                    header.lastOffset - baseOffset <= Int64(UInt32.max),
                    at != position || position == 0 || indexedLastOffset == nil || header.lastOffset == indexedLastOffset
                else {
                    return try rebuildIndexes(truncatingInvalidTail: true, durableBelow: durableBelow, afterPowerLoss: afterPowerLoss)
                }
                if at == position && position > 0 {
                    // The indexed batch: count it toward the next entry, don't index it again.
                    observe(header)
                    bytesSinceLastIndexEntry = header.totalSize
                    nextOffset = header.nextOffset
                } else {
                    try index(header, at: at)
                }
                next = header.nextOffset
            case .invalid:
                return try rebuildIndexes(truncatingInvalidTail: true, durableBelow: durableBelow, afterPowerLoss: afterPowerLoss)
            case .end:
                nextOffset = next
                checked.insert(position..<size)
                return 0
            }
        }
    }

    /// Rebuilds both indexes from the log, checking every batch's framing, CRC and offset
    /// order. With `truncatingInvalidTail`, the log is cut at the first bad batch; without,
    /// indexing stops there. A bad batch (not zeros written ahead) where the records below
    /// `durableBelow` were, or past them but not what a crash leaves, throws `.corruptLog`
    /// instead (`openForAppend`; `.min`: never). Returns the bytes cut off.
    @discardableResult
    func rebuildIndexes(truncatingInvalidTail: Bool, durableBelow: Int64 = .min, afterPowerLoss: Bool = true) throws(StorageError) -> Int {
        offsetIndex!.storage.truncate(toEntries: 0)
        timeIndex!.storage.truncate(toEntries: 0)
        maxTimestamp = -1
        offsetOfMaxTimestamp = -1
        bytesSinceLastIndexEntry = 0
        var scanner = BatchScanner(file: try file(), from: 0, end: size, maxBatchBytes: Int(Int32.max))
        var next = baseOffset
        var cut = 0
        // The batches up to here are checked; from here on (a bad batch's position) they are not.
        var good = 0
        defer {
            checked.clip(to: size)
            checked.insert(0..<min(good, size))
        }
        scan: while true {
            switch try scanner.next() {
            case .batch(let header, let at):
                // (Without a gap: a base offset past the end is damage, as `verify` reads it.)
                guard header.baseOffset == next, header.nextOffset > header.baseOffset,
                    header.lastOffset - baseOffset <= Int64(UInt32.max)
                else {
                    // A batch that checks out but for its offsets: damage (outside the CRC), past
                    // the recovery point too, unless its first bytes, to a sector boundary, are
                    // the zeros of a sector a power loss did not write (`CrashRemnant`).
                    if durableBelow != .min
                        && !(next >= durableBelow && afterPowerLoss && CrashRemnant.isTornHeaderStart(header, at: at, expectedOffset: next))
                    {
                        throw CrashRemnant.refusal(
                            at: at, fileSize: size, path: logPath, "it starts at offset \(header.baseOffset), expected \(next)",
                            durableBelow: durableBelow, below: next < durableBelow, afterPowerLoss: afterPowerLoss)
                    }
                    if truncatingInvalidTail { cut = try truncateFile(at: at) }
                    break scan
                }
                try index(header, at: at)
                next = header.nextOffset
                good = at + header.totalSize
            case .invalid(let error, let at):
                if durableBelow != .min, !(try BatchScanner.isPreallocatedTail(try file(), from: at, to: size)) {
                    if next < durableBelow {
                        throw CrashRemnant.refusal(
                            at: at, fileSize: size, path: logPath, "\(error)", durableBelow: durableBelow, below: true,
                            afterPowerLoss: afterPowerLoss)
                    }
                    // Past the recovery point: cut only what a crash can have left there.
                    let remnant = try CrashRemnant.classify(
                        error, file: try file(), at: at, size: size, expectedOffset: next, afterPowerLoss: afterPowerLoss)
                    if remnant == nil {
                        throw CrashRemnant.refusal(
                            at: at, fileSize: size, path: logPath, "\(error)", durableBelow: durableBelow, below: false,
                            afterPowerLoss: afterPowerLoss)
                    }
                }
                if truncatingInvalidTail {
                    // Zeros written ahead of the appends are cut, but were never data. Read so
                    // whatever the log's settings now: they may have changed since the zeros
                    // were written, and a "bad batch" in an inactive segment would remove every
                    // later one.
                    let zeros = try BatchScanner.isPreallocatedTail(try file(), from: at, to: size)
                    let bytes = try truncateFile(at: at)
                    cut = zeros ? 0 : bytes
                }
                break scan
            case .end:
                break scan
            }
        }
        nextOffset = next
        return cut
    }

    private func truncateFile(at position: Int) throws(StorageError) -> Int {
        let cut = size - position
        try file().truncate(to: Int64(position))
        size = position
        preallocatedEnd = 0
        checked.clip(to: size)
        return cut
    }

    /// Records `range` as checked by a read (clipped to the file as it is now: a cut since the
    /// read may have dropped some of it).
    func markChecked(_ range: Range<Int>) {
        checked.insert(range.clamped(to: 0..<size))
    }

    // MARK: Appending

    /// Whether a batch set of `bytes` bytes, `batchCount` batches, ending at `lastOffset`
    /// fits in this segment (size, index room, u32 relative offsets).
    func canAccept(bytes: Int, batchCount: Int, lastOffset: Int64) -> Bool {
        guard size + bytes <= config.segmentBytes || size == 0 else { return false }
        guard lastOffset - baseOffset <= Int64(UInt32.max) else { return false }
        let room = (config.maxIndexBytes / TimeIndex.entrySize) - (timeIndex?.entryCount ?? 0)
        let offsetRoom = (config.maxIndexBytes / OffsetIndex.entrySize) - (offsetIndex?.entryCount ?? 0)
        return min(room, offsetRoom) > batchCount + 1
    }

    /// Writes `vectors` (whole batches, `headers` in order, their offsets consecutive from
    /// `firstOffset`, as the caller stamped them into the bytes) at the end of the log and
    /// indexes them. On failure nothing is left appended.
    func append(
        vectors: UnsafeMutableBufferPointer<iovec>, byteCount: Int, headers: [RecordBatchHeader], firstOffset: Int64
    ) throws(StorageError) {
        precondition(isWritable, "append to a segment that is not active")
        let start = size
        let log = try file()
        do {
            try log.write(vectors: vectors, at: Int64(start))
        } catch {
            // Leave no partial batch behind; if even that fails, recovery cuts it while it is the
            // last write (an append over it later leaves damage a start refuses: verify --repair).
            try? log.truncate(to: Int64(start))
            preallocatedEnd = 0
            throw error
        }
        // Indexing can fail too (an index that cannot grow on a full disk): then the write is
        // taken back with it, so the log, its indexes and the caller all agree it never happened.
        let saved = (size, nextOffset, maxTimestamp, offsetOfMaxTimestamp, bytesSinceLastIndexEntry)
        let savedEntries = (offsetIndex!.entryCount, timeIndex!.entryCount)
        var position = start
        do {
            // The batches' offsets as the vectors wrote them: consecutive from `firstOffset`.
            var next = firstOffset
            for var header in headers {
                header.baseOffset = next
                try index(header, at: position)
                position += header.totalSize
                next = header.nextOffset
            }
        } catch {
            offsetIndex!.storage.truncate(toEntries: savedEntries.0)
            timeIndex!.storage.truncate(toEntries: savedEntries.1)
            (size, nextOffset, maxTimestamp, offsetOfMaxTimestamp, bytesSinceLastIndexEntry) = saved
            try? log.truncate(to: Int64(start))
            preallocatedEnd = 0
            throw error
        }
        precondition(position == start + byteCount, "batch sizes disagree with the bytes written")
        // The caller checked these batches (framing, CRC) or built them.
        checked.insert(start..<position)
        lastUsedNanoseconds = monotonicNanoseconds()
    }

    /// Records a batch at `position` in the indexes and in-memory state.
    private func index(_ header: RecordBatchHeader, at position: Int) throws(StorageError) {
        observe(header)
        if bytesSinceLastIndexEntry > config.indexIntervalBytes {
            try offsetIndex!.append(offset: header.lastOffset, position: position)
            try timeIndex!.maybeAppend(timestamp: maxTimestamp, offset: offsetOfMaxTimestamp)
            bytesSinceLastIndexEntry = 0
        }
        bytesSinceLastIndexEntry += header.totalSize
        size = max(size, position + header.totalSize)
        nextOffset = header.nextOffset
    }

    private func observe(_ header: RecordBatchHeader) {
        if header.maxTimestamp > maxTimestamp {
            maxTimestamp = header.maxTimestamp
            offsetOfMaxTimestamp = header.lastOffset
        }
    }

    /// Finishes the segment: adds the final time index entry, trims both indexes to
    /// their entries and maps them read-only. The log file stays open for reads.
    func sealIndexes() throws(StorageError) {
        guard isWritable, let offsetIndex, let timeIndex else { return }
        if maxTimestamp >= 0 {
            try timeIndex.maybeAppend(timestamp: maxTimestamp, offset: offsetOfMaxTimestamp)
        }
        // Both files are opened first: running out of descriptors leaves both indexes writable.
        let offsetFile = try offsetIndex.storage.fileForSeal()
        let timeFile = try timeIndex.storage.fileForSeal()
        try offsetIndex.storage.seal(with: offsetFile)
        do {
            try timeIndex.storage.seal(with: timeFile)
        } catch {
            // The time index's trim failed (EIO): the segment stays active, so its offset index
            // takes appends again. Should that fail too, its appends fail with an error.
            try? offsetIndex.storage.unseal()
            throw error
        }
        isWritable = false
    }

    /// Finishes the active segment for its log's close: the final time index entry, then both
    /// indexes unmapped and trimmed to their entries (not mapped again: the log is closing).
    ///
    /// A segment whose offset index is empty gets no final time entry: reopening it scans the
    /// whole segment (from the last offset index entry, here its start), which finds its largest
    /// timestamp again. So the thousands of small partitions a stop closes write no index file.
    func sealForClose() throws(StorageError) {
        guard isWritable, let offsetIndex, let timeIndex else { return }
        if maxTimestamp >= 0 && offsetIndex.entryCount > 0 {
            try timeIndex.maybeAppend(timestamp: maxTimestamp, offset: offsetOfMaxTimestamp, last: true)
        }
        try offsetIndex.storage.close()
        try timeIndex.storage.close()
        isWritable = false
    }

    /// The files to fdatasync for this segment to be durable: its log (reopened if evicted),
    /// and once sealed its indexes (the active segment's indexes are rebuilt after a crash, so
    /// an append never waits for them).
    func filesToSync() throws(StorageError) -> [SharedFile] {
        var files: [SharedFile] = [try file()]
        if !isWritable {
            if let file = try? offsetIndex?.storage.fileForSync() { files.append(file) }
            if let file = try? timeIndex?.storage.fileForSync() { files.append(file) }
        }
        return files
    }

    // MARK: Space ahead of the appends

    /// Zeros written once, for every preallocation.
    private static let zeros = [UInt8](repeating: 0, count: 128 << 10)

    /// Writes zeros ahead of the appends, for logs that sync every append: an fdatasync of
    /// bytes written over blocks that are already allocated and written (and inside the
    /// file's size) changes no metadata, so it costs a data write and a cache flush, not also
    /// an inode write. (Measured on this project's machines: 104 us against 188 us per 3 KB
    /// fdatasync; PostgreSQL zero-fills its WAL segments for the same reason.) `posix_fallocate`
    /// is not enough: its blocks are "unwritten" until written, and converting them is
    /// metadata again.
    ///
    /// How far ahead: a quarter of the bytes the segment holds, between 16 KiB and 1 MiB
    /// (a quiet partition keeps little; 10,000 of them at most 160 MiB), never past
    /// `segment.bytes`, ending on a 4 KiB boundary; refilled when less than half of that is
    /// left, at most 128 KiB per
    /// call, since it runs under the log's lock. The zeros become durable with the next sync.
    /// A failure (a full disk) leaves the file as it was: appends then extend it as usual.
    func preallocateAhead() {
        guard isWritable, let file = try? file() else { return }
        let want = min(max(size / 4, 16 << 10), 1 << 20)
        let end = max(preallocatedEnd, size)
        guard end - size < want / 2 else { return }
        // Ends on a 4 KiB boundary: that is how recovery tells it from a torn write's zeros.
        let target = min(min(size + want, config.segmentBytes), end + Self.zeros.count) & ~4095
        guard target > end else { return }
        let written = Self.zeros.withUnsafeBytes { zeros in
            Result { () throws(StorageError) in
                try file.write(UnsafeRawBufferPointer(rebasing: zeros[0..<(target - end)]), at: Int64(end))
            }
        }
        switch written {
        case .success: preallocatedEnd = target
        case .failure: try? file.truncate(to: Int64(end))
        }
    }

    /// Cuts the zeros written ahead, so that a segment that stops being active (a roll, a
    /// close) ends with its last batch. The caller makes the new size durable with an fsync
    /// (fdatasync need not write a size that shrank) or a syncfs, before a recovery
    /// checkpoint passes the segment: recovery does not scan it after that.
    func trimPreallocation() throws(StorageError) {
        guard preallocatedEnd > size else { return }
        try file().truncate(to: Int64(size))
        preallocatedEnd = 0
    }

    // MARK: Reading

    /// The first header at `position`, or nil past the end.
    func readHeader(at position: Int) throws(StorageError) -> RecordBatchHeader? {
        guard position + RecordBatchHeader.size <= size else { return nil }
        let bytes = try file().read(count: RecordBatchHeader.size, at: Int64(position))
        guard bytes.count == RecordBatchHeader.size else { return nil }
        return try? bytes.withUnsafeBytes { raw in
            Result { () throws(RecordBatchError) in try RecordBatchHeader(parsing: raw) }
        }.get()
    }

    /// The index's starting point for `offset`: a position at or before the batch holding it.
    func indexLookup(offset: Int64) -> (offset: Int64, position: Int) {
        lastUsedNanoseconds = monotonicNanoseconds()
        return offsetIndex?.lookup(offset) ?? (baseOffset, 0)
    }

    /// The time index's starting point for `timestamp` (an offset at or before the first
    /// batch whose timestamp may reach it).
    func timeIndexLookup(timestamp: Int64) -> Int64 {
        lastUsedNanoseconds = monotonicNanoseconds()
        return timeIndex?.lookup(timestamp).offset ?? baseOffset
    }

    // MARK: Truncation and lifecycle

    /// Removes every batch whose last offset is >= `offset` (a batch is kept or cut whole).
    /// Returns the bytes removed.
    func truncate(toOffset offset: Int64) throws(StorageError) -> Int {
        precondition(isWritable, "truncate a segment that is not active")
        let start = offsetIndex!.lookup(offset - 1)
        var position = offset - 1 < baseOffset ? 0 : start.position
        while let header = try readHeader(at: position), header.lastOffset < offset {
            position += header.totalSize
        }
        let cut = size - position
        if cut > 0 || preallocatedEnd > size {
            try file().truncate(to: Int64(position))
            size = position
            preallocatedEnd = 0
            checked.clip(to: size)
        }
        _ = try rebuildIndexes(truncatingInvalidTail: true)
        return cut
    }

    /// Drops descriptors and mappings; the segment reopens lazily. (An index kept in memory
    /// because the disk was full goes with it, unwritten: sealed, its file was written or
    /// removed then, and an active segment's indexes are closed by `sealForClose` first. No
    /// write or sync here: eviction runs under the log's lock, even on an event loop.)
    func closeFiles() {
        log = nil
        offsetIndex = nil
        timeIndex = nil
        isWritable = false
    }

    /// Closes and removes the segment's files (the log first, so an interrupted delete leaves
    /// only index files, which opening the log removes as orphans).
    func deleteFiles() throws(StorageError) {
        closeFiles()
        try FileSystem.remove(logPath)
        try FileSystem.remove(indexPath)
        try FileSystem.remove(timeIndexPath)
    }

    /// Index sizes for describe and tests.
    var indexEntryCounts: (offsets: Int, times: Int) { (offsetIndex?.entryCount ?? 0, timeIndex?.entryCount ?? 0) }
    func offsetIndexEntries() -> [(offset: Int64, position: Int)] {
        guard let offsetIndex else { return [] }
        return (0..<offsetIndex.entryCount).map { offsetIndex.entry($0) }
    }
    func timeIndexEntries() -> [(timestamp: Int64, offset: Int64)] {
        guard let timeIndex else { return [] }
        return (0..<timeIndex.entryCount).map { timeIndex.entry($0) }
    }
}

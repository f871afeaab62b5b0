/// A run of whole stored batches in one segment file, as byte positions: what a fetch
/// sends as it is (with sendfile) or what `readBytes()` copies out.
public struct LogSlice: Sendable {
    /// The segment's log file, kept open for as long as the slice is held.
    public let file: SharedFile
    public let position: Int64
    public let length: Int
    /// Base offset of the first batch (it may be below the offset asked for).
    public let firstBaseOffset: Int64
    /// The slice's bytes, when the read was asked to keep them (`keepBytes`), the slice is
    /// under `heldBelowBytes`, and the header walk's window read them whole (a read near the
    /// log's end of batches under 16 KiB: the walk reads 64 KiB windows, or to the end): then
    /// `readBytes` and `readBytesIfCached` need no second pread.
    var held: [UInt8]? = nil
    /// The slice runs to the log's end as it was when read: a read from the same offset with
    /// more room grows with appends. (One that stops before, at a byte limit or at the end of
    /// an older segment, where reads stop, does not: more is there already.)
    public internal(set) var reachesLogEnd = false

    /// Slices under this size may keep the bytes their header walk read (a copy, so a slice
    /// never keeps the walk's 64 KiB window alive). The Kafka front copies slices under the
    /// same size into its responses; larger ones go out by sendfile.
    public static let heldBelowBytes = 32 << 10

    /// The slice's bytes.
    public func readBytes() throws(StorageError) -> [UInt8] {
        if let held { return held }
        let bytes = try file.read(count: length, at: position)
        guard bytes.count == length else {
            throw StorageError(.corruptLog, "segment shorter than a slice read from it", path: file.path)
        }
        return bytes
    }

    /// The slice's bytes when all of them are in the page cache now, nil when some would have
    /// to come from the disk (preadv2 with RWF_NOWAIT: an event loop never waits for the
    /// disk). A filesystem that cannot tell is read as usual.
    public func readBytesIfCached() throws(StorageError) -> [UInt8]? {
        if let held { return held }
        guard let bytes = try file.readIfCached(count: length, at: position) else { return nil }
        guard bytes.count == length else {
            throw StorageError(.corruptLog, "segment shorter than a slice read from it", path: file.path)
        }
        return bytes
    }

    /// Whether the slice's first and last pages are in the page cache (for a slice sent with
    /// sendfile, which cannot be told not to wait). Unknown counts as cached.
    public func isCached() -> Bool {
        for at in [position, position + Int64(max(length, 1) - 1)] {
            do {
                if try file.readIfCached(count: 1, at: at) == nil { return false }
            } catch {
                // A failed read is left to the sendfile, which reports it.
            }
        }
        return true
    }

    /// Reads the slice through the page cache (1 MiB at a time, discarded), so that a later
    /// read or sendfile of it does not wait for the disk. Blocking: for an executor thread.
    public func warm() throws(StorageError) {
        let chunk = min(length, 1 << 20)
        guard chunk > 0 else { return }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var done = 0
        while done < length {
            let want = min(chunk, length - done)
            let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<want]), at: position + Int64(done))
            if n == 0 { return }
            done += n
        }
    }
}

/// The answer to a read.
public struct LogReadResult: Sendable {
    /// nil when there is nothing at or after the offset yet.
    public var slice: LogSlice?
    public var logStartOffset: Int64
    public var logEndOffset: Int64
}

/// Reads batch headers from a segment file through a small window, so walking many small
/// batches costs few preads. Value type, one owner.
struct HeaderWalker {
    static let windowBytes = 64 * 1024
    let file: SharedFile
    let end: Int
    private var window: [UInt8] = []
    private var windowStart = 0
    /// Size of the last batch seen: after a large one, only a header is read, since a
    /// window would mostly hold bytes the walk skips.
    private var lastBatchSize = 0

    /// Never wait for the disk: a header not in the page cache throws `.wouldBlock`.
    let cachedOnly: Bool

    init(file: SharedFile, end: Int, cachedOnly: Bool = false) {
        self.file = file
        self.end = end
        self.cachedOnly = cachedOnly
    }

    /// The bytes at `position..<position + count` when the last window read holds them all.
    func windowBytes(at position: Int, count: Int) -> [UInt8]? {
        guard position >= windowStart, position + count <= windowStart + window.count else { return nil }
        return Array(window[(position - windowStart)..<(position - windowStart + count)])
    }

    /// The header of the batch at `position`, or nil at the end. A header that does not
    /// fit the committed range is corruption.
    mutating func header(at position: Int) throws(StorageError) -> RecordBatchHeader? {
        guard position < end else { return nil }
        guard position + RecordBatchHeader.size <= end else {
            throw StorageError(.corruptLog, "partial batch header at position \(position)", path: file.path)
        }
        if position < windowStart || position + RecordBatchHeader.size > windowStart + window.count {
            let want = lastBatchSize > Self.windowBytes / 4 ? RecordBatchHeader.size : Self.windowBytes
            let count = min(want, end - position)
            if cachedOnly {
                guard let cached = try file.readIfCached(count: count, at: Int64(position)) else {
                    throw StorageError(.wouldBlock, "batch headers at \(position) are not in the page cache", path: file.path)
                }
                window = cached
            } else {
                window = try file.read(count: count, at: Int64(position))
            }
            windowStart = position
            guard window.count >= RecordBatchHeader.size else {
                throw StorageError(.corruptLog, "segment shorter than its committed size", path: file.path)
            }
        }
        let start = position - windowStart
        let parsed = window.withUnsafeBytes { raw in
            Result { () throws(RecordBatchError) in
                try RecordBatchHeader(parsing: UnsafeRawBufferPointer(rebasing: raw[start..<(start + RecordBatchHeader.size)]))
            }
        }
        switch parsed {
        case .success(let header):
            guard header.batchLength >= RecordBatchHeader.minimumBatchLength, position + header.totalSize <= end else {
                throw StorageError(.corruptLog, "batch at \(position) has length \(header.batchLength)", path: file.path)
            }
            lastBatchSize = header.totalSize
            return header
        case .failure(let error):
            throw StorageError(.corruptLog, "bad batch header at \(position)", path: file.path, batchError: error)
        }
    }
}

extension PartitionLog {
    /// Where a read starts: the segment's file, a position at or before the target batch, and
    /// the committed end of that segment.
    /// (Also where a time lookup starts: `PartitionLog+Time.swift`.)
    struct ReadStart: Sendable {
        var file: SharedFile
        var position: Int
        var end: Int
        var nextSegmentBase: Int64?
        var logStartOffset: Int64
        var logEndOffset: Int64
        /// The segment's base offset, to record what the read checked.
        var segmentBase: Int64
        /// nil when every byte from `position` to `end` is known to check out (the common
        /// case: segments this process wrote or scanned); else the segment's checked ranges.
        var checked: CheckedSpans?
    }

    private func locate(_ offset: Int64, mayBlock: Bool = true, upTo limit: Int64 = .max) throws(StorageError) -> ReadStart? {
        try state.withLock { s -> Result<ReadStart?, StorageError> in
            do throws(StorageError) {
                guard !s.isClosed else { throw StorageError(.closed, "log is closed", path: directory) }
                guard offset >= s.logStartOffset && offset <= s.logEndOffset else {
                    throw StorageError(
                        .offsetOutOfRange,
                        "offset \(offset) is outside [\(s.logStartOffset), \(s.logEndOffset)]", path: directory)
                }
                if offset >= min(limit, s.logEndOffset) { return .success(nil) }
                fileUse.touch()
                let index = Self.segmentIndex(containing: offset, in: s.segments)
                let segment = s.segments[index]
                let nextBase = index + 1 < s.segments.count ? s.segments[index + 1].baseOffset : nil
                if index != s.segments.count - 1 {
                    // Opening a segment (descriptors, mappings, maybe an index rebuild) is disk work.
                    guard mayBlock || segment.isOpen else {
                        throw StorageError(.wouldBlock, "offset \(offset) is in a segment that is not open", path: directory)
                    }
                    try segment.openForRead(offsetLimit: nextBase)
                    enforceOpenSegmentLimit(&s)
                }
                let start = segment.indexLookup(offset: offset)
                let checked = segment.checked.covers(start.position..<segment.size) ? nil : segment.checked
                return .success(
                    ReadStart(
                        file: try segment.file(), position: start.position, end: segment.size, nextSegmentBase: nextBase,
                        logStartOffset: s.logStartOffset, logEndOffset: s.logEndOffset, segmentBase: segment.baseOffset,
                        checked: checked))
            } catch {
                return .failure(error)
            }
        }.get()
    }

    /// Index of the last segment whose base offset is <= `offset` (binary search).
    static func segmentIndex(containing offset: Int64, in segments: [LogSegment]) -> Int {
        var low = 0
        var high = segments.count - 1
        var found = 0
        while low <= high {
            let middle = (low + high) / 2
            if segments[middle].baseOffset <= offset {
                found = middle
                low = middle + 1
            } else {
                high = middle - 1
            }
        }
        return found
    }

    /// Reads whole batches from the one holding `offset` on, up to `maxBytes` (but always
    /// the first batch, however large, so a consumer can make progress).
    ///
    /// The batches are returned as a file range, as stored: no decoding, no copy. The first
    /// batch may start before `offset` (a consumer skips the records before it). Throws
    /// `.offsetOutOfRange` outside `[logStartOffset, logEndOffset]`.
    ///
    /// With `mayBlock: false`, a read that would first open a closed segment, or read batch
    /// headers that are not in the page cache, throws `.wouldBlock`. With `keepBytes`, for a
    /// caller about to read the slice's bytes, a small slice keeps those the walk read (`held`).
    ///
    /// Bytes not yet known to check out (`CheckedSpans`: in a segment a clean stop left) have
    /// their batches' framing, CRC and offsets checked first, once: the slice stops before a batch that
    /// fails, and a read that starts at one fails with `.corruptLog` (the log is marked for
    /// repair). With `mayBlock: false` such a read throws `.wouldBlock`. `checksRecords: false`
    /// is for callers that look only at headers.
    ///
    /// `upTo`: an end the read does not pass (a batch boundary: `visibleEndOffset`), reported as
    /// the result's `logEndOffset`; an offset from there to the log end reads as at the end.
    public func read(
        from offset: Int64, maxBytes: Int, mayBlock: Bool = true, keepBytes: Bool = false, checksRecords: Bool = true,
        upTo limit: Int64 = .max
    ) throws(StorageError) -> LogReadResult {
        let target = offset
        do {
            guard let start = try locate(target, mayBlock: mayBlock, upTo: limit) else {
                let (begin, end) = state.withLock { ($0.logStartOffset, $0.logEndOffset) }
                return LogReadResult(slice: nil, logStartOffset: begin, logEndOffset: min(end, limit))
            }
            // Below the log end: the slice stops at the first batch at or past it.
            let visibleEnd = min(limit, start.logEndOffset)
            let bounded = visibleEnd < start.logEndOffset
            // Without blocking, a header not in the page cache is `.wouldBlock` too (the caller
            // reads on a thread that may wait for the disk).
            var walker = HeaderWalker(file: start.file, end: start.end, cachedOnly: !mayBlock)
            var position = start.position
            // Skip to the first batch that holds `target` or comes after it.
            var first: RecordBatchHeader?
            do throws(StorageError) {
                while let header = try walker.header(at: position) {
                    if header.lastOffset >= target {
                        first = header
                        break
                    }
                    position += header.totalSize
                }
            } catch where error.code == .wouldBlock {
                throw error
            } catch {
                throw markDamaged(error, reading: target)
            }
            // Offsets are contiguous across a log's segments: a segment that ends before the
            // next one begins, or a batch that starts past the offset asked for, means stored
            // batches were lost. That is an error for the reader, never a silent skip.
            guard let first else {
                throw markDamaged(
                    StorageError(
                        .corruptLog,
                        "offset \(target) is missing: its segment ends before \(start.nextSegmentBase.map(String.init) ?? "the log end \(start.logEndOffset)")",
                        path: start.file.path),
                    reading: target)
            }
            guard first.baseOffset <= target else {
                throw markDamaged(
                    StorageError(
                        .corruptLog, "offsets \(target)-\(first.baseOffset - 1) are missing before the batch at position \(position)",
                        path: start.file.path),
                    reading: target)
            }
            let slicePosition = position
            var length = first.totalSize
            position += first.totalSize
            var sliceEnd = first.nextOffset
            if !bounded && start.end - slicePosition <= maxBytes {
                // Everything up to the committed end fits, and it ends on a batch boundary.
                length = start.end - slicePosition
            } else {
                // A later header that is damaged ends the slice before it: the batches before
                // it are served, and the read that starts there fails. (Other failures, a read
                // that would block among them, fail this read as before.)
                while true {
                    let next: RecordBatchHeader?
                    do {
                        next = try walker.header(at: position)
                    } catch where error.code == .corruptLog {
                        break
                    }
                    guard let header = next, header.baseOffset < visibleEnd, length + header.totalSize <= maxBytes else { break }
                    length += header.totalSize
                    position += header.totalSize
                    sliceEnd = header.nextOffset
                }
            }
            if checksRecords, let checked = start.checked, !checked.covers(slicePosition..<(slicePosition + length)) {
                // Bytes not checked since the log opened (a segment a clean stop left): their
                // batches' framing, CRCs and offsets are checked before they go out, once
                // (`CheckedSpans`). That reads them, so it may wait for the disk: an event
                // loop's read goes to the executor.
                guard mayBlock else {
                    throw StorageError(
                        .wouldBlock, "batches at \(slicePosition) are not checked since the log opened", path: start.file.path)
                }
                var scanner = BatchScanner(
                    file: start.file, from: slicePosition, end: slicePosition + length, maxBatchBytes: Int(Int32.max))
                var good = slicePosition
                var damage: RecordBatchError?
                // Offsets follow on from batch to batch, as every append writes them: a base
                // offset (outside the CRC) that does not is damage too.
                var next = first.baseOffset
                scan: while true {
                    switch try scanner.next() {
                    case .batch(let header, let at):
                        guard header.baseOffset == next, header.nextOffset > header.baseOffset else {
                            damage = .invalidRecord("base offset \(header.baseOffset) where offset \(next) was next")
                            break scan
                        }
                        good = at + header.totalSize
                        next = header.nextOffset
                    case .invalid(let error, _):
                        damage = error
                        break scan
                    case .end: break scan
                    }
                }
                if good > slicePosition {
                    state.withLock { s in
                        let index = Self.segmentIndex(containing: start.segmentBase, in: s.segments)
                        guard index < s.segments.count, s.segments[index].baseOffset == start.segmentBase else { return }
                        s.segments[index].markChecked(slicePosition..<good)
                    }
                }
                if let damage {
                    // The batches before the damage are served; a read that starts there fails.
                    guard good > slicePosition else {
                        throw markDamaged(
                            StorageError(
                                .corruptLog, "the batch at position \(good) does not check out", path: start.file.path,
                                batchError: damage),
                            reading: target)
                    }
                    length = good - slicePosition
                    sliceEnd = .min  // (not at the end: cut before damage)
                }
            }
            let held = keepBytes && length < LogSlice.heldBelowBytes ? walker.windowBytes(at: slicePosition, count: length) : nil
            var slice = LogSlice(
                file: start.file, position: Int64(slicePosition), length: length, firstBaseOffset: first.baseOffset, held: held)
            slice.reachesLogEnd =
                bounded ? sliceEnd >= visibleEnd : start.nextSegmentBase == nil && slicePosition + length == start.end
            return LogReadResult(slice: slice, logStartOffset: start.logStartOffset, logEndOffset: visibleEnd)
        }
    }

    /// Records that a read met damage (once: the needs-repair mark for `tidemark verify
    /// --repair`, and `damage` for the engine's log) and returns the error for the reader.
    /// Readers that decode what they read (a share group's scan) call it for a batch whose
    /// records do not decode.
    public func markDamaged(_ error: StorageError, reading offset: Int64) -> StorageError {
        guard error.code == .corruptLog else { return error }
        var error = error
        error.message += " (reading offset \(offset))"
        let first = state.withLock { s -> Bool in
            guard s.damage == nil else { return false }
            s.damage = error.description
            return true
        }
        if first {
            let text = "\(error.description)\nrun `tidemark verify --repair` on this directory with the broker stopped\n"
            try? FileSystem.writeAtomically(Array(text.utf8), to: directory + "/" + LogVerifier.needsRepairName, directory: directory)
        }
        return error
    }

    /// Reads and decodes the batches from `offset` on (up to `maxBytes`, at least one batch):
    /// the embedded consumer's path. Records before `offset` in the first batch are included;
    /// use `RecordBatch.offset(of:)` to skip them.
    public func readBatches(from offset: Int64, maxBytes: Int) throws(StorageError) -> [RecordBatch] {
        guard let slice = try read(from: offset, maxBytes: maxBytes, keepBytes: true).slice else { return [] }
        let bytes = try slice.readBytes()
        return try Self.decodeBatches(bytes, path: slice.file.path)
    }

    static func decodeBatches(_ bytes: [UInt8], path: String) throws(StorageError) -> [RecordBatch] {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(StorageError) in
                var batches: [RecordBatch] = []
                var position = 0
                while position < raw.count {
                    do throws(RecordBatchError) {
                        let batch = try RecordBatch(decoding: UnsafeRawBufferPointer(rebasing: raw[position...]))
                        batches.append(batch)
                        position += batch.header.totalSize
                    } catch {
                        throw StorageError(.corruptLog, "stored batch does not decode", path: path, batchError: error)
                    }
                }
                return batches
            }
        }.get()
    }

    /// The headers of the stored batches from the one holding `offset` to the log end, in
    /// order, without reading their records (producer-state replay, tools).
    public func batchHeaders(from offset: Int64, body: (RecordBatchHeader) throws -> Void) throws {
        var next = offset
        while let slice = try read(from: next, maxBytes: 8 << 20, checksRecords: false).slice {
            var walker = HeaderWalker(file: slice.file, end: Int(slice.position) + slice.length)
            var position = Int(slice.position)
            while let header = try walker.header(at: position) {
                // A batch's base offset is outside its CRC: one that does not end past the
                // offsets already walked is damage (segments a clean stop left are not
                // scanned at open), and following it would read the same bytes forever.
                guard header.nextOffset > next else { throw Self.offsetsGoBack(header, after: next, directory: directory) }
                try body(header)
                next = header.nextOffset
                position += header.totalSize
            }
        }
    }

    /// The error for a stored batch whose offsets do not follow those before it.
    public static func offsetsGoBack(_ header: RecordBatchHeader, after offset: Int64, directory: String) -> StorageError {
        StorageError(
            .corruptLog,
            "a stored batch's offsets (\(header.baseOffset)...\(header.lastOffset)) do not follow offset \(offset): the log is damaged; `tidemark verify` shows where",
            path: directory)
    }

    /// The header of the stored batch holding `offset` (or the first one after it), without
    /// reading its records; nil past the end. `mayBlock` as for `read`.
    public func batchHeader(containing offset: Int64, mayBlock: Bool = true) throws(StorageError) -> RecordBatchHeader? {
        guard let slice = try read(from: offset, maxBytes: 1, mayBlock: mayBlock, checksRecords: false).slice else { return nil }
        var walker = HeaderWalker(file: slice.file, end: Int(slice.position) + slice.length)
        return try walker.header(at: Int(slice.position))
    }
}

import SystemPackage
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// What an append did.
public struct LogAppendInfo: Sendable, Equatable {
    /// Offset given to the first record of the first batch.
    public var firstOffset: Int64
    /// Offset given to the last record of the last batch.
    public var lastOffset: Int64
    /// The broker's timestamp when the log uses LogAppendTime, nil otherwise.
    public var logAppendTime: Int64?
    public var batchCount: Int
    public var recordCount: Int
    public var byteCount: Int
    /// Set when this append rolled a segment: the end offset of the rolled one.
    public var rolledSegmentEnd: Int64? = nil
}

/// A durable, append-only partition log: a directory of segments.
///
/// Directory layout (`<data>/<topic>-<partition>/`):
/// ```
/// 00000000000000000000.log        batches, RecordBatch v2 byte for byte (see RecordBatchHeader)
/// 00000000000000000000.index      sparse offset index (see OffsetIndex)
/// 00000000000000000000.timeindex  sparse time index (see TimeIndex)
/// 00000000000000004096.log ...    later segments, named by their base offset
/// recovery-point.checkpoint       "0\n<offset, 20 digits>\n": every segment before the one
///                                 holding <offset> is durable and needs no scan after a crash
/// .clean-shutdown                 "1" from a clean close until the next open, then "0" and
///                                 the boot id (both overwritten in place: see `LogMarkers`)
/// ```
///
/// Positions: `logEndOffset` is "appended" (readable, maybe only in the page cache);
/// `flushedOffset` is "flushed" (fdatasync'd). Every offset below `flushedOffset` survives
/// a crash of the process or the machine.
///
/// Concurrency: thread-safe. The segment list and offsets are owned by `state`, a `Mutex`
/// held only for in-memory work and short syscalls (pwritev, index stores), never across
/// fdatasync; durability waits go through `gate` (group commit). Methods block the calling
/// thread on disk I/O: call them from a thread pool, not from an event loop.
public final class PartitionLog: Sendable {
    public let directory: String
    /// The log's settings. They can change while it runs (`update(config:)`); a segment keeps
    /// the size limits it was created with, so new limits apply from the next roll.
    public var config: LogConfig { configuration.withLock { $0 } }
    private let configuration: Mutex<LogConfig>
    /// The config's flush policy is `.everyAppend` (`readsSyncedOnly`), kept beside it for
    /// readers that must not take its lock.
    private let syncsEveryAppend: Atomic<Bool>
    /// The log end when the log came to sync every append: seen already, it stays seen
    /// (`visibleEndOffset` never moves back).
    private let visibleFloor = Atomic<Int64>(0)
    let clock: @Sendable () -> Int64
    let state: Mutex<State>
    let gate: FlushGate
    /// `State.logStartOffset` and `State.logEndOffset`, published after every change under the
    /// lock, so readers of positions never wait behind a roll or an index rebuild.
    private let publishedStart: Atomic<Int64>
    private let publishedEnd: Atomic<Int64>
    /// The log start last written to `logStartName` (DeleteRecords): one writer at a time, and
    /// never a smaller start after a larger one. `close` holds it too: a start is written (by
    /// path) only while the log is open.
    let logStartWritten = Mutex<Int64>(.min)

    static let checkpointName = "recovery-point.checkpoint"
    /// `0\n<offset>\n`: the log start moved by `deleteRecords` (inside a segment), if any.
    static let logStartName = "log-start-offset.checkpoint"
    static let cleanShutdownName = ".clean-shutdown"

    /// Mutable state, owned by `state`'s lock.
    struct State {
        /// Sorted by base offset; the last one is the active (writable) segment.
        var segments: [LogSegment]
        var logStartOffset: Int64
        var logEndOffset: Int64
        var isClosed = false
        /// Files of rolled segments, and whether the directory changed, since the last flush.
        var pendingSync: [SharedFile] = []
        var directoryNeedsSync = false
        /// A segment rolled since the recovery checkpoint was written.
        var checkpointStale = false
        /// The recovery point on disk, when known. Recovery works by segment (it scans the
        /// one holding the point and those after), so any point inside the active segment
        /// does: a close then writes none (`checkpointCoversActive`).
        var checkpointOffset: Int64?
        /// Anything was appended, truncated or deleted since open: a clean close then has
        /// data to make durable; otherwise it only leaves its marker.
        var changedSinceOpen = false
        var messagesSinceFlush = 0
        var lastFlushNanoseconds: UInt64 = monotonicNanoseconds()
        /// When a flush last moved the recovery checkpoint to what it synced (at most once a
        /// second: `syncAppended`).
        var lastCheckpointNanoseconds: UInt64 = 0
        /// Recovery facts from open, for tests and logs.
        var recovery: RecoveryReport

        /// The checkpoint on disk lies in the active segment (and not past the log's end):
        /// a crash would scan just that segment, as with a checkpoint at the very end.
        var checkpointCoversActive: Bool {
            guard let checkpointOffset else { return false }
            return checkpointOffset >= active.baseOffset && checkpointOffset <= logEndOffset
        }
        /// The first damage a read met since open (a gap or a bad batch header), if any.
        var damage: String?

        var active: LogSegment { segments[segments.count - 1] }
    }

    /// Told how long each fdatasync of a flush took (nanoseconds) and of which log directory,
    /// e.g. for a histogram. Called on the flushing thread, after the call returned.
    public typealias SyncObserver = @Sendable (_ nanoseconds: UInt64, _ directory: String) -> Void
    let syncObserver: SyncObserver?
    /// This log's share of its `OpenFileBudget` (its segments count their open files there).
    let fileUse: LogFileUse

    init(
        directory: String, config: LogConfig, clock: @escaping @Sendable () -> Int64, syncObserver: SyncObserver? = nil,
        fileUse: LogFileUse, state: sending State
    ) {
        self.directory = directory
        self.syncObserver = syncObserver
        self.fileUse = fileUse
        self.configuration = Mutex(config)
        self.syncsEveryAppend = Atomic(config.flushPolicy == .everyAppend)
        self.clock = clock
        // A failed sync may have dropped pages the OS had been given (a writeback error marks
        // them clean): the next open must not take this boot's page cache as whole. The marker
        // loses its boot id (best effort: the disk is failing), so a crash reads as a power loss.
        self.gate = FlushGate(flushedOffset: state.logEndOffset) { [directory] in
            try? LogMarkers.overwrite([UInt8(ascii: "0")], path: directory + "/" + LogMarkers.markerName, directory: directory, sync: false)
        }
        self.publishedStart = Atomic(state.logStartOffset)
        self.publishedEnd = Atomic(state.logEndOffset)
        self.state = Mutex(state)
        fileUse.budget.register(self, use: fileUse)
    }

    deinit {
        fileUse.budget.remove(ObjectIdentifier(self))
    }

    /// Publishes the positions of `s` (call under the lock, after changing them).
    func publishPositions(_ s: borrowing State) {
        publishedStart.store(s.logStartOffset, ordering: .releasing)
        publishedEnd.store(s.logEndOffset, ordering: .releasing)
    }

    /// Changes the log's settings (retention, flush policy, sizes, timestamps): they apply to
    /// the appends, flushes and retention passes that follow, and to segments made from now on.
    /// A log that comes to sync every append is synced first, and what readers saw stays seen
    /// (`visibleFloor`: appends made while the sync ran were seen), so that `visibleEndOffset`
    /// never moves back (a share group took a lower end for a truncation). A sync that fails
    /// is thrown once the change is made.
    public func update(config: LogConfig) throws(StorageError) {
        try config.validate()
        let syncsNow = config.flushPolicy == .everyAppend
        if !syncsNow { syncsEveryAppend.store(false, ordering: .releasing) }
        configuration.withLock { $0 = config }
        if syncsNow && !syncsEveryAppend.load(ordering: .acquiring) {
            let synced = Result { () throws(StorageError) in try flush() }
            // Under the lock: no append between the floor and the switch (each append after
            // it is seen once synced).
            state.withLock { s in
                visibleFloor.store(s.logEndOffset, ordering: .releasing)
                syncsEveryAppend.store(true, ordering: .releasing)
            }
            try synced.get()
        }
    }

    // MARK: Positions

    public var logStartOffset: Int64 { publishedStart.load(ordering: .acquiring) }
    /// One past the last appended offset ("appended").
    public var logEndOffset: Int64 { publishedEnd.load(ordering: .acquiring) }
    /// One past the last offset known to be on disk ("flushed").
    public var flushedOffset: Int64 { gate.flushed }
    /// Whether readers see only what is synced (`visibleEndOffset`): the log syncs every
    /// append (`flush.messages=1`).
    public var readsSyncedOnly: Bool { syncsEveryAppend.load(ordering: .acquiring) }
    /// The end readers see (a fetch's high watermark, `read(upTo:)`): the log end, or on a log
    /// that syncs every append the part of it that is synced, as Kafka's high watermark waits
    /// for a `flush.messages=1` flush. A consumer then never reads a record that a power loss
    /// can take back and whose offset the next append would hand out again (the consumer's
    /// committed offset, or its share group's acknowledgement, then lying past new records).
    public var visibleEndOffset: Int64 {
        let end = publishedEnd.load(ordering: .acquiring)
        guard readsSyncedOnly else { return end }
        return max(visibleFloor.load(ordering: .acquiring), min(end, gate.flushed))
    }
    /// The fsync failure that failed the log (it refuses writes from then on), if any.
    public var flushFailure: StorageError? { gate.failed }
    /// fdatasync passes made so far (group commit: far fewer than durable appends).
    public var flushCount: Int { gate.flushCount.load(ordering: .relaxed) }
    /// Bytes of all segments' logs.
    public var sizeInBytes: Int64 { state.withLock { $0.segments.reduce(0) { $0 + Int64($1.size) } } }
    public var segmentCount: Int { state.withLock { $0.segments.count } }
    public var segmentBaseOffsets: [Int64] { state.withLock { $0.segments.map(\.baseOffset) } }
    public var recoveryReport: RecoveryReport { state.withLock { $0.recovery } }
    /// The first damage a read met (before a restart too: its needs-repair mark); reads past
    /// it fail until `tidemark verify --repair`.
    public var damage: String? { state.withLock { $0.damage } }
    /// Inactive segments whose files are open now.
    public var openInactiveSegmentCount: Int {
        state.withLock { s in s.segments.dropLast().filter(\.isOpen).count }
    }

    // MARK: Append

    /// Appends one or more whole RecordBatch v2 batches, concatenated in `bytes`.
    ///
    /// Each batch's framing and CRC are checked and its size against `maxBatchBytes`; offsets
    /// are assigned by rewriting baseOffset (the CRC stays valid). Under LogAppendTime the
    /// batch's timestamp type and maxTimestamp are set and its CRC recomputed; so is the
    /// maxTimestamp of a batch whose `validated` header corrects it. Returns once
    /// the bytes are appended, and also flushed when the flush policy says so. On any error
    /// nothing of the call is appended.
    ///
    /// With `applyingFlushPolicy: false` the call returns as soon as the bytes are appended;
    /// the caller then calls `applyFlushPolicy(after:)` (e.g. after releasing its own locks,
    /// so that concurrent appenders can share an fdatasync), or asks `durabilityTarget(after:)`
    /// and waits for a `LogFlusher`.
    ///
    /// With `mayBlock: false` (an event loop appending to the page cache), an append that
    /// would first create a segment (a roll) throws `.wouldBlock` and appends nothing.
    ///
    /// `validated`: the headers of these very bytes from a `RecordBatchValidator` pass the
    /// caller just made (framing and CRC included); they are not checked a second time. A
    /// maxTimestamp in them that differs from the batch's field (the validator corrected it)
    /// is what gets stored.
    @discardableResult
    public func append(
        _ bytes: UnsafeRawBufferPointer, applyingFlushPolicy: Bool = true, mayBlock: Bool = true,
        validated: [RecordBatchHeader]? = nil
    ) throws(StorageError) -> LogAppendInfo {
        // The batches lie back to back: each starts where the one before it ends (no array of
        // starts; nor of anything else per batch, below, but the headers).
        var headers: [RecordBatchHeader] = []
        var position = 0
        if let validated {
            headers = validated
            for header in validated {
                position += header.totalSize
                guard header.totalSize <= config.maxBatchBytes else {
                    throw StorageError(
                        .batchTooLarge, "batch of \(header.totalSize) bytes exceeds maxBatchBytes \(config.maxBatchBytes)")
                }
            }
            guard position == bytes.count else { throw StorageError(.invalidArgument, "validated headers do not cover the bytes") }
        }
        while position < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[position...])
            let header: RecordBatchHeader
            do {
                header = try RecordBatchHeader.validate(rest, maxBatchBytes: Int(Int32.max))
            } catch {
                throw StorageError(.invalidBatch, "batch at byte \(position) of the append", batchError: error)
            }
            guard header.totalSize <= config.maxBatchBytes else {
                throw StorageError(
                    .batchTooLarge, "batch of \(header.totalSize) bytes exceeds maxBatchBytes \(config.maxBatchBytes)")
            }
            guard header.compressionCodec != nil else {
                throw StorageError(.invalidBatch, "unknown compression codec", batchError: .unsupportedCompression(header.attributes))
            }
            headers.append(header)
            position += header.totalSize
        }
        guard !headers.isEmpty else { throw StorageError(.invalidArgument, "append of no batches") }

        // Batches stored other than as received get a restamped copy: every batch under
        // LogAppendTime, one whose maxTimestamp or timestamp type the validator corrected, and
        // one whose partitionLeaderEpoch is neither -1 (what clients send) nor 0 (this node's
        // only leader epoch, which Kafka stamps): a consumer would commit an epoch the node
        // never had, and reset its position when OffsetForLeaderEpoch says there is none.
        let appendTime: Int64? = config.timestampType == .logAppendTime ? clock() : nil
        var restamped: [(index: Int, start: Int)] = []  // allocates only when one is
        var start = 0
        for index in headers.indices {
            let epoch = Int32(bigEndian: bytes.loadUnaligned(fromByteOffset: start + RecordBatchHeader.partitionLeaderEpochOffset, as: Int32.self))
            if appendTime != nil || (epoch != -1 && epoch != 0)
                || Int64(bigEndian: bytes.loadUnaligned(fromByteOffset: start + RecordBatchHeader.maxTimestampOffset, as: Int64.self))
                    != headers[index].maxTimestamp
                || Int16(bigEndian: bytes.loadUnaligned(fromByteOffset: start + RecordBatchHeader.attributesOffset, as: Int16.self))
                    != headers[index].attributes
            {
                restamped.append((index, start))
            }
            start += headers[index].totalSize
        }
        var source = bytes
        var ownedCopy: UnsafeMutableRawBufferPointer? = nil
        defer { ownedCopy?.deallocate() }
        if !restamped.isEmpty {
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
            copy.copyMemory(from: bytes)
            for (index, start) in restamped {
                if let appendTime {
                    headers[index].maxTimestamp = appendTime
                    headers[index].attributes |= 0x8
                }
                if headers[index].partitionLeaderEpoch != -1 {
                    // Outside the CRC: written in place.
                    headers[index].partitionLeaderEpoch = 0
                    copy.storeBytes(of: Int32(0), toByteOffset: start + RecordBatchHeader.partitionLeaderEpochOffset, as: Int32.self)
                }
                Self.restamp(
                    UnsafeMutableRawBufferPointer(rebasing: copy[start..<(start + headers[index].totalSize)]),
                    maxTimestamp: headers[index].maxTimestamp, attributes: headers[index].attributes)
            }
            ownedCopy = copy
            source = UnsafeRawBufferPointer(copy)
        }

        let totalBytes = position
        let recordCount = headers.reduce(0) { $0 + Int($1.recordsCount) }
        // The new baseOffset fields and the iovecs live on the stack (or in one temporary
        // allocation for many batches): no heap allocation per append for them.
        let outcome = withUnsafeTemporaryAllocation(of: Int64.self, capacity: headers.count) { offsetFields in
            withUnsafeTemporaryAllocation(of: iovec.self, capacity: headers.count * 2) { vectors in
                // One iovec for each batch's new baseOffset and one for the rest of it, which
                // goes out as received (or restamped), without a copy.
                var start = 0
                for index in headers.indices {
                    vectors[2 * index] = iovec(iov_base: UnsafeMutableRawPointer(offsetFields.baseAddress! + index), iov_len: 8)
                    vectors[2 * index + 1] = iovec(
                        iov_base: UnsafeMutableRawPointer(mutating: source.baseAddress! + start + 8), iov_len: headers[index].totalSize - 8)
                    start += headers[index].totalSize
                }
                return appendLocked(
                    AppendPayload(offsetFields: offsetFields, vectors: vectors), headers: headers, totalBytes: totalBytes,
                    recordCount: recordCount, appendTime: appendTime, mayBlock: mayBlock)
            }
        }
        var (info, rolledEnd) = try outcome.get()
        info.rolledSegmentEnd = rolledEnd
        if applyingFlushPolicy { try applyFlushPolicy(after: info) }
        return info
    }

    /// The part of `append` under the log's lock: offsets assigned, the roll if one is due, the
    /// pwritev and the indexes, the log's end moved.
    private func appendLocked(
        _ payload: AppendPayload, headers: [RecordBatchHeader], totalBytes: Int, recordCount: Int, appendTime: Int64?, mayBlock: Bool
    ) -> Result<(LogAppendInfo, rolledEnd: Int64?), StorageError> {
        state.withLock { s in
            do throws(StorageError) {
                guard !s.isClosed else { throw StorageError(.closed, "log is closed", path: directory) }
                if let failure = gate.failed {
                    throw StorageError(.failed, "log failed an earlier fsync: \(failure)", path: directory)
                }
                fileUse.touch()
                let firstOffset = s.logEndOffset
                var next = firstOffset
                for index in headers.indices {
                    payload.offsetFields[index] = next.bigEndian
                    // Offsets end at Int64.max (a segment file named near it, copied in or
                    // hand-made): the append fails, the process goes on.
                    let end = next.addingReportingOverflow(Int64(headers[index].lastOffsetDelta) + 1)
                    guard !end.overflow else {
                        throw StorageError(.offsetOutOfRange, "the log's offsets would pass \(Int64.max)", path: directory)
                    }
                    next = end.partialValue
                }
                let lastOffset = next - 1
                var rolledEnd: Int64? = nil
                if try shouldRoll(&s, bytes: totalBytes, batchCount: headers.count, lastOffset: lastOffset) {
                    guard mayBlock else { throw StorageError(.wouldBlock, "the append needs a new segment", path: directory) }
                    rolledEnd = s.logEndOffset
                    try roll(&s)
                }
                if s.active.rollBaseMilliseconds == nil { s.active.rollBaseMilliseconds = clock() }
                try s.active.append(vectors: payload.vectors, byteCount: totalBytes, headers: headers, firstOffset: firstOffset)
                s.logEndOffset = next
                publishPositions(s)
                s.messagesSinceFlush += recordCount
                s.changedSinceOpen = true
                let info = LogAppendInfo(
                    firstOffset: firstOffset, lastOffset: lastOffset, logAppendTime: appendTime,
                    batchCount: headers.count, recordCount: recordCount, byteCount: totalBytes)
                return .success((info, rolledEnd))
            } catch {
                return .failure(error)
            }
        }
    }

    /// The iovecs of one append and the baseOffset fields they point at.
    ///
    /// `@unchecked Sendable` so it can be used inside the state lock's closure: its pointers
    /// refer to memory owned by the `append` call that made it (the caller's bytes or a
    /// restamped copy, and the temporary `offsetFields` and `vectors`), which outlives the
    /// synchronous pwritev under the lock and is never touched by another thread.
    struct AppendPayload: @unchecked Sendable {
        var offsetFields: UnsafeMutableBufferPointer<Int64>
        var vectors: UnsafeMutableBufferPointer<iovec>
    }

    /// Appends batches held in an array.
    @discardableResult
    public func append(
        _ bytes: [UInt8], applyingFlushPolicy: Bool = true, mayBlock: Bool = true, validated: [RecordBatchHeader]? = nil
    ) throws(StorageError) -> LogAppendInfo {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(StorageError) in
                try append(raw, applyingFlushPolicy: applyingFlushPolicy, mayBlock: mayBlock, validated: validated)
            }
        }.get()
    }

    /// Sets a batch's attributes and maxTimestamp and recomputes its CRC.
    static func restamp(_ raw: UnsafeMutableRawBufferPointer, maxTimestamp: Int64, attributes: Int16) {
        do {
            raw.storeBytes(of: attributes.bigEndian, toByteOffset: RecordBatchHeader.attributesOffset, as: Int16.self)
            raw.storeBytes(of: maxTimestamp.bigEndian, toByteOffset: RecordBatchHeader.maxTimestampOffset, as: Int64.self)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[RecordBatchHeader.attributesOffset...]))
            raw.storeBytes(of: crc.bigEndian, toByteOffset: RecordBatchHeader.crcOffset, as: UInt32.self)
        }
    }

    private func shouldRoll(_ s: inout State, bytes: Int, batchCount: Int, lastOffset: Int64) throws(StorageError) -> Bool {
        let active = s.active
        if active.size == 0 { return false }
        if !active.canAccept(bytes: bytes, batchCount: batchCount, lastOffset: lastOffset) { return true }
        if let base = active.rollBaseMilliseconds, clock() - base > config.segmentMs { return true }
        return false
    }

    /// Seals the active segment and starts a new one at `logEndOffset`. The sealed
    /// segment's files are queued for the next flush.
    func roll(_ s: inout State) throws(StorageError) {
        let old = s.active
        // Create first: if that fails (a full disk), the active segment is untouched.
        let segment = try LogSegment.create(directory: directory, baseOffset: s.logEndOffset, config: config, use: fileUse)
        let logFile: SharedFile
        do {
            // The old segment's descriptor first (it may have been closed for the descriptor
            // budget): failing to reopen it (EMFILE) must leave the segment active and writable,
            // not sealed behind a roll that did not happen.
            logFile = try old.file()
            try old.trimPreallocation()  // made durable by the next sync (`syncAppended`)
            try old.sealIndexes()
        } catch {
            try? segment.deleteFiles()
            throw error
        }
        s.pendingSync.append(contentsOf: (try? old.filesToSync()) ?? [logFile])
        s.segments.append(segment)
        s.directoryNeedsSync = true
        s.checkpointStale = true
        enforceOpenSegmentLimit(&s)
    }

    /// Rolls now if the active segment has data (for tests and tools).
    public func roll() throws(StorageError) {
        try state.withLock { s in
            Result { () throws(StorageError) in
                guard !s.isClosed else { throw StorageError(.closed, "log is closed", path: directory) }
                if s.active.size > 0 { try roll(&s) }
            }
        }.get()
    }
}

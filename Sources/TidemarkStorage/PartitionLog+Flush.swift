import SystemPackage

/// When appended bytes are made durable: the flush policy after each append, interval flushes,
/// the zeros kept ahead of a synced log's appends, and the recovery checkpoint a flush moves.
extension PartitionLog {
    // MARK: Flush

    /// Flushes as the policy says after `info`'s append; blocks while it does.
    public func applyFlushPolicy(after info: LogAppendInfo) throws(StorageError) {
        let end = info.lastOffset + 1
        let rolledEnd = info.rolledSegmentEnd
        switch config.flushPolicy {
        case .everyAppend:
            try flush(upTo: end)
        case .everyMessages(let count):
            if state.withLock({ $0.messagesSinceFlush }) >= count { try flush(upTo: end) }
        case .everyInterval:
            try flushIfDue()
        case .everyMessagesOrInterval(let count, _):
            if state.withLock({ $0.messagesSinceFlush }) >= count { try flush(upTo: end) } else { try flushIfDue() }
        case .os:
            break
        }
        // A rolled segment is made durable now, so recovery only ever scans the newest one.
        if let rolledEnd, gate.flushed < rolledEnd { try flush(upTo: rolledEnd) }
    }

    /// The offset that must be durable before `info`'s append is acknowledged, as the flush
    /// policy says (every append; every N messages once N are due; every T ms once T passed;
    /// and always a rolled segment), or nil when the OS may keep it for now. The non-blocking
    /// counterpart of `applyFlushPolicy(after:)`: the caller waits for a `LogFlusher`.
    public func durabilityTarget(after info: LogAppendInfo) -> Int64? {
        let end = info.lastOffset + 1
        var target: Int64? = nil
        switch config.flushPolicy {
        case .everyAppend:
            target = end
        case .everyMessages(let count):
            if state.withLock({ $0.messagesSinceFlush }) >= count { target = end }
        case .everyInterval(let ms):
            let due = state.withLock { monotonicNanoseconds() - $0.lastFlushNanoseconds >= Self.nanoseconds(ms) }
            if due { target = end }
        case .everyMessagesOrInterval(let count, let ms):
            let due = state.withLock {
                $0.messagesSinceFlush >= count || monotonicNanoseconds() - $0.lastFlushNanoseconds >= Self.nanoseconds(ms)
            }
            if due { target = end }
        case .os:
            break
        }
        if let rolledEnd = info.rolledSegmentEnd, gate.flushed < rolledEnd { target = max(target ?? 0, rolledEnd) }
        guard let target, gate.flushed < target else { return nil }
        return target
    }

    /// Under an interval policy, flushes when the last flush is older than the interval.
    public func flushIfDue() throws(StorageError) {
        let ms: Int64
        switch config.flushPolicy {
        case .everyInterval(let interval), .everyMessagesOrInterval(_, let interval): ms = interval
        default: return
        }
        let (due, end) = state.withLock { s in
            (monotonicNanoseconds() - s.lastFlushNanoseconds >= Self.nanoseconds(ms), s.logEndOffset)
        }
        if due { try flush(upTo: end) }
    }

    /// A flush interval in nanoseconds, saturating (Kafka's flush.ms default is Long.MAX).
    static func nanoseconds(_ ms: Int64) -> UInt64 {
        let (product, overflow) = UInt64(max(0, ms)).multipliedReportingOverflow(by: 1_000_000)
        return overflow ? .max : product
    }

    /// Blocks until every offset below `target` (default: everything appended) is on disk.
    /// Concurrent callers share one fdatasync.
    public func flush(upTo target: Int64? = nil) throws(StorageError) {
        let target = target ?? logEndOffset
        try gate.awaitDurable(target) { () throws(StorageError) -> Int64 in try self.syncAppended() }
    }

    /// Writes zeros ahead of the active segment's appends when the log syncs every append or
    /// is synced often (`LogConfig.preallocatesAhead`, `LogSegment.preallocateAhead`), so
    /// that the syncs that follow write no metadata. The flusher calls it after answering a
    /// pass; brief (at most 128 KiB into the page cache).
    public func preallocateAhead() {
        guard config.preallocatesAhead else { return }
        state.withLock { s in
            if !s.isClosed { s.active.preallocateAhead() }
        }
    }

    /// The flusher's work: fdatasync what was appended (rolled segments' files, the active
    /// log, the directory), then, after a roll, the recovery checkpoint.
    private func syncAppended() throws(StorageError) -> Int64 {
        let taken = state.withLock { s -> Result<([SharedFile], SharedFile, Int64, Bool, Bool, Bool), StorageError> in
            let active: SharedFile
            do throws(StorageError) {
                active = try s.active.file()  // reopened if the budget evicted it
            } catch {
                var error = error
                error.beforeSync = true  // nothing taken, nothing synced: the next flush retries
                return .failure(error)
            }
            // After a roll the checkpoint moves to the new segment (synced); otherwise, at most
            // once a second, to what this flush syncs (not synced itself: on disk it can only
            // lag, which costs a longer scan, never a record). A crash then scans the active
            // segment as before, but knows what of it was durable: damage there is refused,
            // not cut as a torn write (`LogSegment.openForAppend(durableBelow:)`).
            let now = monotonicNanoseconds()
            let follow = !s.checkpointStale && now &- s.lastCheckpointNanoseconds >= Self.checkpointFollowNanoseconds
                && s.checkpointOffset.map { $0 < s.logEndOffset && $0 >= s.active.baseOffset } == true
            if s.checkpointStale || follow { s.lastCheckpointNanoseconds = now }
            let result = (s.pendingSync, active, s.logEndOffset, s.directoryNeedsSync, s.checkpointStale || follow, s.checkpointStale)
            s.pendingSync = []
            s.directoryNeedsSync = false
            s.messagesSinceFlush = 0
            s.lastFlushNanoseconds = now
            return .success(result)
        }
        let (rolled, active, end, syncDirectory, writeCheckpoint, syncCheckpoint) = try taken.get()
        // Rolled segments' files with fsync: a roll cut the zeros written ahead, and a size
        // that shrank is metadata fdatasync need not write. (Once per roll.)
        for file in rolled { try file.syncIncludingMetadata() }
        let started = monotonicNanoseconds()
        try active.sync()
        syncObserver?(monotonicNanoseconds() &- started, directory)
        if syncDirectory {
            do throws(StorageError) { try FileSystem.syncDirectory(directory) } catch {
                // The directory could not be opened (EMFILE): its sync is still owed, and was not
                // tried. The waiters get the error; the log stays writable.
                let notOpened: Set<Errno> = [.tooManyOpenFiles, .tooManyOpenFilesInSystem, .noMemory]
                guard let errno = error.errno, notOpened.contains(errno) else { throw error }
                state.withLock { $0.directoryNeedsSync = true }
                var retry = error
                retry.beforeSync = true
                throw retry
            }
        }
        if writeCheckpoint {
            // The checkpoint only narrows the next recovery; failing to write it (a full disk)
            // loses nothing, so it is retried at the next roll or close instead of failing the log.
            if (try? LogMarkers.writeRecoveryPoint(end, directory: directory, sync: syncCheckpoint)) != nil {
                state.withLock {
                    // (A roll since this pass began keeps its checkpoint owed.)
                    if syncCheckpoint { $0.checkpointStale = false }
                    // (Not past a truncation made meanwhile, which wrote its own.)
                    if $0.logEndOffset >= end { $0.checkpointOffset = end }
                }
            }
        }
        return end
    }

    /// How often a flush moves the recovery checkpoint to what it synced, at most.
    static let checkpointFollowNanoseconds: UInt64 = 1_000_000_000

    /// Writes the recovery checkpoint in place and fdatasyncs it (see `LogMarkers`).
    func writeRecoveryCheckpoint(_ offset: Int64) throws(StorageError) {
        try LogMarkers.writeRecoveryPoint(offset, directory: directory, sync: true)
    }
}

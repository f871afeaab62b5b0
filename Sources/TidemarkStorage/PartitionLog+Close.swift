/// Closing a log: cleanly (flushed, sealed, marked), in a batch of thousands, or after a
/// failed fsync; and closing files left idle.
extension PartitionLog {
    /// Flushes everything, seals the active segment's indexes, writes the recovery
    /// checkpoint and the clean-shutdown marker, and closes every file. Idempotent.
    ///
    /// A log that failed an fsync is closed without its marker or checkpoint (what it holds
    /// may not all be on disk, so the next open scans it as after a crash), and without an
    /// error: the failure was reported when it happened.
    public func close() throws(StorageError) {
        // Under `logStartWritten`: a log start being written (by path) is written before the
        // log closes and its directory can be renamed for a delete, or not at all.
        try logStartWritten.withLock { (_: inout Int64) throws(StorageError) in try closeNow() }
    }

    private func closeNow() throws(StorageError) {
        if state.withLock({ $0.isClosed }) { return }
        if gate.failed != nil {
            state.withLock { s in
                for segment in s.segments { segment.closeFiles() }
                s.isClosed = true
            }
            return
        }
        try flush()
        defer { if isClosed { fileUse.budget.remove(ObjectIdentifier(self)) } }
        try state.withLock { s in
            Result { () throws(StorageError) in
                guard !s.isClosed else { return }
                try closingOrAbandoning(&s) { (s: inout State) throws(StorageError) in
                    try s.active.trimPreallocation()
                    try s.active.sealForClose()
                    do throws(StorageError) {
                        // Rolled files the flusher has not synced yet (a roll with no append after
                        // it leaves nothing for `flush()` to do): fsync, since a roll cut their zeros.
                        for file in s.pendingSync { try file.syncIncludingMetadata() }
                        s.pendingSync = []
                        if s.directoryNeedsSync {
                            try FileSystem.syncDirectory(directory)
                            s.directoryNeedsSync = false
                        }
                        if s.changedSinceOpen {
                            // fsync: the trim above shrank the log file.
                            for file in try s.active.filesToSync() { try file.syncIncludingMetadata() }
                        }
                    } catch {
                        // The kernel may have dropped the pages: the log is failed (what it holds
                        // may not all be on disk; the next open scans it).
                        gate.fail(error)
                        throw error
                    }
                    if s.changedSinceOpen && !s.checkpointCoversActive { try writeRecoveryCheckpoint(s.logEndOffset) }
                    // (A log untouched since open was durable and checkpointed then: only the
                    // marker changes.)
                    try LogMarkers.markClean(directory, sync: true)
                }
            }
        }.get()
    }

    /// Runs a close's steps, then closes every file. When a step fails (the active segment
    /// may be sealed by then, its indexes unmapped), the log is closed all the same, without
    /// its clean-shutdown marker, and the error thrown: left open half-sealed, the next read
    /// or append trapped; the next open scans it as after a crash.
    private func closingOrAbandoning(_ s: inout State, _ steps: (inout State) throws(StorageError) -> Void) throws(StorageError) {
        defer {
            for segment in s.segments { segment.closeFiles() }
            s.pendingSync = []
            s.isClosed = true
        }
        try steps(&s)
    }

    /// `close()` for a broker closing thousands of logs: the same end state, but nothing is
    /// fsynced here. The data and sealed indexes become durable at `batch.commit()`'s first
    /// sync; the checkpoint and the clean-shutdown marker are written after it (see `SyncBatch`).
    /// Until the commit, a crash leaves a log that the next open recovers as after any crash.
    /// Callers answer every durability waiter first (the `LogFlusher`'s shutdown): this close
    /// does not wait for one.
    public func close(deferredSync batch: SyncBatch) throws(StorageError) {
        try logStartWritten.withLock { (_: inout Int64) throws(StorageError) in try closeNow(deferredSync: batch) }
    }

    private func closeNow(deferredSync batch: SyncBatch) throws(StorageError) {
        if state.withLock({ $0.isClosed }) { return }
        if gate.failed != nil { return try closeNow() }
        defer { if isClosed { fileUse.budget.remove(ObjectIdentifier(self)) } }
        try state.withLock { s in
            Result { () throws(StorageError) in
                guard !s.isClosed else { return }
                try closingOrAbandoning(&s) { (s: inout State) throws(StorageError) in
                    try s.active.trimPreallocation()  // the batch's syncfs writes the size
                    try s.active.sealForClose()
                    try batch.add(directory: directory)
                    let (directory, checkpoint, end) = (directory, !s.checkpointCoversActive, s.logEndOffset)
                    batch.afterSync { () throws(StorageError) in
                        if checkpoint { try LogMarkers.writeRecoveryPoint(end, directory: directory, sync: false) }
                        try LogMarkers.markClean(directory, sync: false)
                    }
                }
            }
        }.get()
    }

    public var isClosed: Bool { state.withLock { $0.isClosed } }

    /// Gives every open file of this log back to its budget, unless the log is busy (its lock
    /// taken: it is in use, and may be the sweeper itself). Returns how many were closed.
    func evictFiles() -> Int {
        state.withLockIfAvailable { s -> Int in
            guard !s.isClosed else { return 0 }
            var closed = 0
            for segment in s.segments { closed += segment.evictFile() }
            return closed
        } ?? 0
    }

    /// Files of this log open now (active and inactive segments).
    public var openFileCount: Int { fileUse.held }

    /// Closes least-recently-used inactive segments beyond `maxOpenInactiveSegments`, and while
    /// the budget is over its limit (the sweep spares the log that opens), all but the newest.
    func enforceOpenSegmentLimit(_ s: inout State) {
        let open = s.segments.dropLast().filter(\.isOpen).sorted { $0.lastUsedNanoseconds < $1.lastUsedNanoseconds }
        var allowed = config.maxOpenInactiveSegments
        let over = fileUse.budget.held - fileUse.budget.limit
        if over > 0 { allowed = max(1, min(allowed, open.count - over)) }
        if open.count > allowed {
            for segment in open.prefix(open.count - allowed) { segment.closeFiles() }
        }
    }

    /// Closes inactive segments unused for `idleNanoseconds`; returns how many.
    @discardableResult
    public func closeIdleSegments(idleNanoseconds: UInt64) -> Int {
        state.withLock { s in
            let now = monotonicNanoseconds()
            var closed = 0
            for segment in s.segments.dropLast() where segment.isOpen && now - segment.lastUsedNanoseconds >= idleNanoseconds {
                segment.closeFiles()
                closed += 1
            }
            return closed
        }
    }
}

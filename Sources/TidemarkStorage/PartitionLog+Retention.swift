extension PartitionLog {
    /// Deletes whole old segments past the retention limits: while the log would still be at
    /// least `retentionBytes` without its oldest segment, and any segment whose largest
    /// timestamp is older than `retentionMs` (a segment whose records all carry no timestamp,
    /// -1, counts from when its file was last written, as in Kafka: it used to go as soon as
    /// it rolled). An active segment past the limits goes too, as in Kafka, once nothing was
    /// written to it for `retentionMs` either: the log rolls to an empty segment first (a quiet
    /// topic's records would otherwise outlive its retention).
    /// Returns the base offsets of the deleted segments.
    @discardableResult
    public func enforceRetention() throws(StorageError) -> [Int64] {
        let now = clock()
        return try state.withLock { s -> Result<[Int64], StorageError> in
            do throws(StorageError) {
                guard !s.isClosed else { return .success([]) }
                var total = s.segments.reduce(0) { $0 + Int64($1.size) }
                var count = 0
                for (index, segment) in s.segments.enumerated() {
                    let isActive = index == s.segments.count - 1
                    if isActive && segment.size == 0 { break }
                    var expired = false
                    // A negative limit is Kafka's -1, unlimited (a hand-edited topics.json, an
                    // embedder's LogConfig): never "everything is past it".
                    if let limit = config.retentionBytes, limit >= 0, total - Int64(segment.size) >= limit { expired = true }
                    if !expired, let ms = config.retentionMs, ms >= 0 {
                        if segment.maxTimestamp < 0 && !isActive {
                            try segment.openForRead(offsetLimit: s.segments[index + 1].baseOffset)
                        }
                        let newest = segment.maxTimestamp >= 0 ? segment.maxTimestamp : try FileSystem.modificationTime(segment.logPath)
                        let cutoff = now.subtractingReportingOverflow(ms)
                        expired = !cutoff.overflow && newest < cutoff.partialValue
                        // The active segment also waits until nothing was written to it for as long
                        // (records produced with old timestamps, a backfill, are not deleted as
                        // they arrive, which Kafka would do).
                        if expired && isActive { expired = try FileSystem.modificationTime(segment.logPath) < cutoff.partialValue }
                    }
                    guard expired else { break }
                    total -= Int64(segment.size)
                    count += 1
                }
                var rollFailure: StorageError? = nil
                if count == s.segments.count {
                    // A roll that fails (EMFILE, a full disk) keeps the active segment; the
                    // inactive ones still go, and the failure is reported after.
                    do throws(StorageError) { try roll(&s) } catch {
                        rollFailure = error
                        count -= 1
                    }
                }
                let removed = try removeOldestSegments(count, &s)
                enforceOpenSegmentLimit(&s)
                if let rollFailure { throw rollFailure }
                return .success(removed)
            } catch {
                return .failure(error)
            }
        }.get()
    }

    /// Removes every batch at or after `offset`, so the next append gets an offset <= `offset`.
    /// A batch holding `offset` is removed whole (batches are never split), so the new log
    /// end is the base of that batch. Below `logStartOffset` the whole log is emptied and
    /// restarts at `offset`. The result is durable when this returns.
    public func truncate(to offset: Int64) throws(StorageError) {
        precondition(offset >= 0, "negative offset")
        let (newEnd, startLowered) = try state.withLock { s -> Result<(Int64, Bool), StorageError> in
            do throws(StorageError) {
                guard !s.isClosed else { throw StorageError(.closed, "log is closed", path: directory) }
                guard offset < s.logEndOffset else { return .success((s.logEndOffset, false)) }
                let startLowered = offset < s.logStartOffset
                let keep = offset <= s.logStartOffset ? 0 : Self.segmentIndex(containing: offset, in: s.segments) + 1
                let removed = Array(s.segments[keep...])
                s.segments.removeSubrange(keep...)
                for segment in removed { try segment.deleteFiles() }
                if s.segments.isEmpty {
                    s.segments.append(try LogSegment.create(directory: directory, baseOffset: offset, config: config, use: fileUse))
                    s.logStartOffset = offset
                } else {
                    let active = s.active
                    if !active.isWritable { _ = try active.openForAppend(trustIndexes: false, durableBelow: .min) }
                    _ = try active.truncate(toOffset: offset)
                }
                s.logEndOffset = s.active.nextOffset ?? s.active.baseOffset
                s.changedSinceOpen = true
                s.checkpointOffset = nil  // until the one below is written
                publishPositions(s)
                s.pendingSync.append(contentsOf: try s.active.filesToSync())
                s.directoryNeedsSync = true
                return .success((s.logEndOffset, startLowered))
            } catch {
                return .failure(error)
            }
        }.get()
        gate.lower(to: newEnd)
        // The checkpoint must not point past the new end: a later crash would then skip
        // scanning segments written after this truncation.
        let files = try state.withLock { s -> Result<[SharedFile], StorageError> in
            let files = Result { () throws(StorageError) in s.pendingSync + (try s.active.filesToSync()) }
            if case .success = files { s.pendingSync = [] }
            return files
        }.get()
        for file in files { try file.syncIncludingMetadata() }  // the files shrank
        try FileSystem.syncDirectory(directory)
        try writeRecoveryCheckpoint(newEnd)
        state.withLock { $0.checkpointOffset = newEnd }
        if startLowered {
            // A start persisted by DeleteRecords above the new one would hide, after a
            // restart, what is appended from here.
            try logStartWritten.withLock { (written: inout Int64) throws(StorageError) in
                try FileSystem.writeAtomically(Array("0\n\(newEnd)\n".utf8), to: directory + "/" + Self.logStartName, directory: directory)
                written = newEnd
            }
        }
    }

    /// Moves the log start up to `offset` (Kafka's DeleteRecords): records below it are no
    /// longer readable, whole segments below it are deleted, and the new start is persisted
    /// (it may fall inside a segment). Offsets above the log end are clamped to it. Returns
    /// the new log start (Kafka's low watermark).
    @discardableResult
    public func deleteRecords(before offset: Int64) throws(StorageError) -> Int64 {
        let start = try state.withLock { s -> Result<Int64, StorageError> in
            do throws(StorageError) {
                guard !s.isClosed else { throw StorageError(.closed, "log is closed", path: directory) }
                let target = min(offset, s.logEndOffset)
                guard target > s.logStartOffset else { return .success(s.logStartOffset) }
                var count = 0
                while count + 1 < s.segments.count && s.segments[count + 1].baseOffset <= target { count += 1 }
                _ = try removeOldestSegments(count, &s)
                s.logStartOffset = target
                s.changedSinceOpen = true
                publishPositions(s)
                return .success(target)
            } catch {
                return .failure(error)
            }
        }.get()
        // The records up to the new start are made durable first: a start persisted past what
        // a power loss keeps would make recovery hand out offsets below it again, and hide
        // what is appended at them behind the start at the next restart.
        try flush(upTo: start)
        try logStartWritten.withLock { (written: inout Int64) throws(StorageError) in
            // Written by path: only while the log is open (`close` waits for this lock), so
            // never into the directory of a topic deleted meanwhile and made again under its name.
            guard !isClosed else { throw StorageError(.closed, "log is closed", path: directory) }
            let current = logStartOffset
            guard current > written else { return }
            if current > start { try flush(upTo: current) }  // another call moved it further meanwhile
            try FileSystem.writeAtomically(Array("0\n\(current)\n".utf8), to: directory + "/" + Self.logStartName, directory: directory)
            written = current
        }
        return start
    }

    /// Deletes the inactive segments all of whose offsets are below `offset` and moves the
    /// log start up to the first remaining segment (compaction by snapshot: the caller has
    /// rewritten what it needs at or after `offset`). Returns the deleted base offsets.
    @discardableResult
    public func deleteSegments(below offset: Int64) throws(StorageError) -> [Int64] {
        try state.withLock { s -> Result<[Int64], StorageError> in
            do throws(StorageError) {
                guard !s.isClosed else { throw StorageError(.closed, "log is closed", path: directory) }
                var count = 0
                while count + 1 < s.segments.count && s.segments[count + 1].baseOffset <= offset { count += 1 }
                return .success(try removeOldestSegments(count, &s))
            } catch {
                return .failure(error)
            }
        }.get()
    }

    /// Deletes the `count` oldest segments (never the active one) and moves the log start to
    /// the first remaining segment. Returns their base offsets.
    private func removeOldestSegments(_ count: Int, _ s: inout State) throws(StorageError) -> [Int64] {
        precondition(count < s.segments.count, "the active segment is never deleted")
        guard count > 0 else { return [] }
        let removed = Array(s.segments.prefix(count))
        s.segments.removeFirst(count)
        s.logStartOffset = max(s.logStartOffset, s.segments[0].baseOffset)
        s.changedSinceOpen = true
        publishPositions(s)
        for segment in removed { try segment.deleteFiles() }
        s.directoryNeedsSync = true
        return removed.map(\.baseOffset)
    }
}

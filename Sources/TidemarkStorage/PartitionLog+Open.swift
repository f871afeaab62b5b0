/// What opening a log found and did.
public struct RecoveryReport: Sendable, Equatable {
    /// The previous close was clean (its marker was present).
    public var wasCleanShutdown: Bool
    /// The recovery point read from the checkpoint, nil when there was none.
    public var recoveryPoint: Int64?
    /// Base offsets of the segments whose batches were scanned and checked.
    public var scannedSegments: [Int64]
    /// Bytes cut from torn or corrupt tails.
    public var truncatedBytes: Int
    /// Segments removed because they followed a corrupt one.
    public var deletedSegments: [Int64]
    /// Each cut or removal, in words: which segment, where, how many bytes, which offsets.
    /// The engine logs every one; recovery never loses data silently.
    public var losses: [String] = []
}

extension PartitionLog {
    /// Opens (creating if needed) the log in `directory`.
    ///
    /// After a clean shutdown only the active segment's tail (past its last index entry) is
    /// read. After a crash, every segment from the one holding the recovery point on is
    /// scanned: each batch's framing, CRC and offset order are checked, the log is cut at the
    /// first bad batch (later segments are deleted) and the scanned segments' indexes are
    /// rebuilt. Earlier segments are not read at all; their files open on first use. A bad
    /// batch where records were durable (`LogSegment.openForAppend(durableBelow:)`), or past
    /// them but not what a crash leaves (`CrashRemnant`: good batches after it), is refused
    /// with `.corruptLog` instead, unless not `refusingDamage` (the broker's own logs, and
    /// `verify --repair`: cut, so that the node starts).
    ///
    /// With `deferredSync`, nothing is fsynced here: what recovery kept, the marker's removal
    /// and the new checkpoint become durable at the batch's `commit()`, which must come before
    /// the log takes appends (a broker opening thousands of partitions commits once).
    ///
    /// - Parameter clock: milliseconds since the epoch, for LogAppendTime, time rolls and retention.
    public static func open(
        directory: String, config: LogConfig = LogConfig(),
        clock: @escaping @Sendable () -> Int64 = { currentTimeMilliseconds() },
        syncObserver: PartitionLog.SyncObserver? = nil, budget: OpenFileBudget = .shared,
        deferredSync: SyncBatch? = nil, refusingDamage: Bool = true
    ) throws(StorageError) -> PartitionLog {
        try config.validate()
        let use = LogFileUse(budget: budget)
        try FileSystem.createDirectory(directory)
        let names = try FileSystem.listDirectory(directory)

        var bases: [Int64] = []
        var indexBases: [(Int64, String)] = []
        for name in names {
            if name.hasSuffix(".tmp") {
                try FileSystem.remove(directory + "/" + name)
            } else if let base = LogSegment.baseOffset(fromFileName: name, suffix: ".log") {
                bases.append(base)
            } else if let base = LogSegment.baseOffset(fromFileName: name, suffix: ".index")
                ?? LogSegment.baseOffset(fromFileName: name, suffix: ".timeindex")
            {
                indexBases.append((base, name))
            }
        }
        bases.sort()
        let baseSet = Set(bases)
        for (base, name) in indexBases where !baseSet.contains(base) {
            try FileSystem.remove(directory + "/" + name)  // orphan of an interrupted delete
        }

        let wasClean = try LogMarkers.isClean(directory)
        // After a crash: whether a power loss can have come since the log was marked open (a
        // reboot since, or no boot recorded), so that sectors the OS had not written back are
        // possible; otherwise only the last write can be unfinished (`CrashRemnant`).
        let afterPowerLoss = !wasClean && !LogMarkers.wasOpenedInThisBoot(directory)
        let recoveryPoint = try readRecoveryCheckpoint(directory: directory)
        var report = RecoveryReport(
            wasCleanShutdown: wasClean, recoveryPoint: recoveryPoint, scannedSegments: [], truncatedBytes: 0,
            deletedSegments: [])

        var segments: [LogSegment] = []
        if bases.isEmpty {
            // No segment file, though checkpoints say the log had reached an offset (files
            // removed by hand, a partial restore): it restarts empty there, as Kafka's loader
            // starts at its checkpointed start, so no offset is handed out twice; said as a loss.
            let reached = LogVerifier.reachedOffset(directory)
            if LogVerifier.isPartitionDirectory(directory) {
                // (Checkpoints without segments: a log that had been opened before.)
                report.losses.append(
                    "no segment files, though the log existed (its checkpoints say it reached offset \(reached)): it restarts empty there")
            }
            segments.append(try LogSegment.create(directory: directory, baseOffset: reached, config: config, use: use))
            // The marker exists from the start ("0": open), so that every close only overwrites
            // it (a missing marker and "0" both read as not clean: no sync is needed here).
            try LogMarkers.overwrite(LogMarkers.openContents, path: directory + "/" + cleanShutdownName, directory: directory, sync: false)
        } else {
            for base in bases {
                segments.append(try LogSegment.existing(directory: directory, baseOffset: base, config: config, use: use))
            }
            var activeIsOpen = false
            if !wasClean {
                activeIsOpen = try recover(
                    &segments, from: recoveryPoint ?? 0, report: &report, config: config, refusingDamage: refusingDamage,
                    afterPowerLoss: afterPowerLoss)
            }
            let active = segments[segments.count - 1]
            if !activeIsOpen {
                report.scannedSegments.append(active.baseOffset)
                let durable = !refusingDamage ? Int64.min : wasClean ? .max : recoveryPoint ?? 0
                let cut = try active.openForAppend(trustIndexes: wasClean, durableBelow: durable, afterPowerLoss: afterPowerLoss)
                report.truncatedBytes += cut
                if cut > 0 {
                    let what =
                        refusingDamage
                        ? "after a crash: the write it left unfinished, or appends a power loss wrote back in part"
                        : wasClean ? "damage after a clean shutdown" : "an unfinished write, or damage"
                    report.losses.append(
                        "segment \(active.baseOffset): cut \(cut) bytes at position \(active.size) (\(what)); the log now ends at offset \(active.nextOffset ?? active.baseOffset)")
                }
            }
        }

        var logEnd = segments[segments.count - 1].nextOffset ?? segments[segments.count - 1].baseOffset
        // A start moved inside the first segment by DeleteRecords.
        var logStart = segments[0].baseOffset
        var restartedAtStart = false
        if let moved = try readRecoveryCheckpoint(directory: directory, name: logStartName), moved > logStart {
            if moved > logEnd {
                // Recovery cut the log below its start (damage in records DeleteRecords had
                // already removed from view). As Kafka does, the log restarts empty at its start:
                // taken down to the end instead, the offsets between were handed out again, and
                // hidden behind the start (still persisted) at the next restart.
                report.losses.append(
                    "the log ended at offset \(logEnd) after recovery, below its start \(moved): it restarts empty at \(moved)")
                for segment in segments { try segment.deleteFiles() }
                segments = [try LogSegment.create(directory: directory, baseOffset: moved, config: config, use: use)]
                logEnd = moved
                restartedAtStart = true
            }
            logStart = moved
        }
        if let point = recoveryPoint, point > logEnd, !restartedAtStart {
            // The checkpoint says the log reached further than its segments do: the newest
            // segment files were removed or cut by hand (or a crash came between a truncation's
            // cut and its new checkpoint; appends and recovery never leave the log below one).
            // Said, not silent: the offsets between are handed out again, as Kafka's loader would.
            report.losses.append(
                "the log ends at offset \(logEnd), below offset \(point) its recovery checkpoint says it reached at least: "
                    + "offsets \(logEnd)-\(point - 1) at least are gone (segment files removed or cut) and will be handed out again")
        }
        let activeSegment = segments[segments.count - 1]
        if activeSegment.size > 0 { activeSegment.rollBaseMilliseconds = clock() }
        let recoveredEnd = logEnd
        if !wasClean && deferredSync == nil {
            // What recovery kept may still be only in the page cache, and what it cut only a
            // size in memory: make both durable (fsync) before the checkpoint says so.
            for segment in segments where segment.isOpen {
                for file in try segment.filesToSync() { try file.syncIncludingMetadata() }
            }
        }
        // (After a crash the marker stays "0", and now says this boot: what the open cut or
        // kept is decided, and a later crash in this boot leaves only its last write.)
        if wasClean || afterPowerLoss { try LogMarkers.markOpen(directory, sync: deferredSync == nil) }
        // Recovery works by segment: a checkpoint inside the active segment is as good as one
        // at its end (restarting 10,000 partitions then rewrites no checkpoints).
        let checkpointIsRight =
            wasClean && report.truncatedBytes == 0 && !restartedAtStart
            && recoveryPoint.map { $0 >= activeSegment.baseOffset && $0 <= logEnd } == true
        var state = State(segments: segments, logStartOffset: logStart, logEndOffset: logEnd, recovery: report)
        // Damage a read met before a restart stays known (monitoring, `describeTopic`) until
        // `tidemark verify --repair` removes its mark.
        if names.contains(LogVerifier.needsRepairName) {
            let text = (try? FileSystem.readWholeFile(directory + "/" + LogVerifier.needsRepairName, limit: 4096)) ?? nil
            let first = text.flatMap { String(decoding: $0, as: UTF8.self).split(separator: "\n").first }
            state.damage = first.flatMap { $0.allSatisfy(\.isWhitespace) ? nil : String($0) } ?? "marked for repair"
        }
        // A new log's first segment file is in its directory only once the directory is
        // synced: the first flush does it (an acknowledged durable append to a new partition
        // must not depend on the file system's journal ordering).
        state.directoryNeedsSync = bases.isEmpty || restartedAtStart
        state.checkpointOffset = checkpointIsRight ? recoveryPoint : logEnd
        let log = PartitionLog(
            directory: directory, config: config, clock: clock, syncObserver: syncObserver, fileUse: use, state: state)
        log.state.withLock { log.enforceOpenSegmentLimit(&$0) }  // segments recovery left open
        if let batch = deferredSync {
            try batch.add(directory: directory)
            if !checkpointIsRight {
                // After the batch's first sync: what recovery kept is durable before the
                // checkpoint lets the next recovery skip it.
                batch.afterSync { () throws(StorageError) in
                    try log.replaceCheckpoint { () throws(StorageError) in
                        try LogMarkers.writeRecoveryPoint(recoveredEnd, directory: directory, sync: false)
                    }
                }
            }
        } else if !checkpointIsRight {
            try log.replaceCheckpoint { () throws(StorageError) in try log.writeRecoveryCheckpoint(recoveredEnd) }
        }
        return log
    }

    /// Runs `write`, the checkpoint's rewrite at open. One that fails (a full disk and the
    /// file new; EIO) must not keep the log from opening, nor leave the old point behind, which
    /// may lie past what recovery just cut: the file is removed instead (the next recovery then
    /// scans from the start, losing nothing), and written again at the next flush that writes
    /// one. Throws only when even the removal fails.
    func replaceCheckpoint(_ write: () throws(StorageError) -> Void) throws(StorageError) {
        do throws(StorageError) { try write() } catch {
            try FileSystem.remove(directory + "/" + LogMarkers.checkpointName)
            state.withLock {
                $0.checkpointOffset = nil
                $0.checkpointStale = true
            }
        }
    }

    /// Scans the inactive segments at and after the one holding `recoveryPoint`. Returns
    /// true when a damaged one became the last (it is then open for appends already).
    private static func recover(
        _ segments: inout [LogSegment], from recoveryPoint: Int64, report: inout RecoveryReport, config: LogConfig,
        refusingDamage: Bool, afterPowerLoss: Bool
    ) throws(StorageError) -> Bool {
        var index = firstSegmentToScan(bases: segments.map(\.baseOffset), recoveryPoint: recoveryPoint) { segments[$0].size }
        // The active (last) segment is scanned by openForAppend; inactive ones here.
        while index < segments.count - 1 {
            let segment = segments[index]
            report.scannedSegments.append(segment.baseOffset)
            let cut = try segment.openForAppend(
                trustIndexes: false, durableBelow: refusingDamage ? recoveryPoint : .min, afterPowerLoss: afterPowerLoss)
            report.truncatedBytes += cut
            let end = segment.nextOffset ?? segment.baseOffset
            let following = segments[index + 1]
            if cut > 0 {
                report.losses.append(
                    "segment \(segment.baseOffset): cut \(cut) bytes at position \(segment.size) (a bad batch); offsets \(end)-\(following.baseOffset - 1) lost")
            }
            if cut > 0 || following.baseOffset != end {
                // Everything after a damaged segment follows a gap: remove it.
                for later in segments[(index + 1)...] {
                    report.deletedSegments.append(later.baseOffset)
                    report.losses.append(
                        "segment \(later.baseOffset): removed (\(later.size) bytes, offsets from \(later.baseOffset)) because it follows damage at offset \(end)")
                    try later.deleteFiles()
                }
                segments.removeSubrange((index + 1)...)
                return true
            }
            try segment.sealIndexes()
            index += 1
        }
        return false
    }

    /// The first segment recovery scans: the one holding the recovery point, or the one
    /// before it when the point is that segment's base and the previous file ends on a 4 KiB
    /// boundary. A checkpoint written at a segment's end, then a roll, leaves the roll's cut of
    /// the zeros written ahead (`LogSegment.preallocateAhead`) unsynced until the next pass:
    /// after a crash there, the previous segment may still end with zeros, and is scanned so
    /// that they are cut. (`verify` uses the same rule.)
    static func firstSegmentToScan(bases: [Int64], recoveryPoint: Int64, size: (Int) -> Int) -> Int {
        let first = bases.lastIndex { $0 <= recoveryPoint } ?? 0
        if first > 0 && bases[first] == recoveryPoint && size(first - 1) % 4096 == 0 { return first - 1 }
        return first
    }

    /// The offset in `recovery-point.checkpoint`, or nil when absent or unreadable.
    static func readRecoveryCheckpoint(directory: String, name: String = checkpointName) throws(StorageError) -> Int64? {
        guard let bytes = try FileSystem.readWholeFile(directory + "/" + name, limit: 64) else { return nil }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        guard lines.count == 2, lines[0] == "0", let offset = Int64(lines[1]), offset >= 0 else { return nil }
        return offset
    }
}

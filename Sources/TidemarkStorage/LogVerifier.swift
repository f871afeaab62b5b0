/// Offline checks of a partition directory: every batch's framing, CRC and contents, offset
/// order within and across segments, and the consistency of both indexes with the log.
/// `repair` runs a full crash recovery (cut at the first bad batch, rebuild every index).
///
/// Verify and the broker agree on what damage is. A *problem* is what loses or hides data,
/// or stalls a reader: a bad batch the broker would not cut by itself (damage, not what a
/// crash leaves: `CrashRemnant`; or a remnant in an older segment, with data after it), a
/// gap in the offsets, a batch whose contents no consumer can read, an index that looks
/// right but points at the wrong bytes, a partition the broker marked as needing repair. A *note* is what the next open fixes by itself and loses nothing
/// acknowledged: after a crash, the unfinished write at the end of the newest segment and
/// the indexes recovery rebuilds (including their zero-filled preallocated tails); zeros
/// written ahead of a segment's appends (`LogSegment.preallocateAhead`); and any
/// index implausible enough to be rebuilt on first read.
public enum LogVerifier {
    public struct Problem: Sendable, CustomStringConvertible {
        public var path: String
        public var message: String
        public var description: String { "\(path): \(message)" }
    }

    public struct Report: Sendable {
        public var directory: String
        public var wasCleanShutdown = true
        public var segments = 0
        public var batches = 0
        public var records: Int64 = 0
        public var bytes = 0
        /// Damage: `verify` exits 1.
        public var problems: [Problem] = []
        /// What the broker repairs by itself at its next start.
        public var notes: [Problem] = []
        public var isHealthy: Bool { problems.isEmpty }
    }

    /// The file the broker leaves in a partition directory when a read met damage there.
    public static let needsRepairName = "needs-repair"

    /// The `.log` files of a partition directory, by base offset.
    public static func segmentFiles(in directory: String) throws -> [(base: Int64, path: String)] {
        try FileSystem.listDirectory(directory).compactMap { name in
            LogSegment.baseOffset(fromFileName: name, suffix: ".log").map { ($0, directory + "/" + name) }
        }.sorted { $0.base < $1.base }
    }

    /// Whether `directory` is a partition's: it holds segment files, or checkpoints a log
    /// writes (a partition whose segment files were all removed is still one, and damaged).
    public static func isPartitionDirectory(_ directory: String) -> Bool {
        if let segments = try? segmentFiles(in: directory), !segments.isEmpty { return true }
        return [PartitionLog.checkpointName, PartitionLog.logStartName].contains { FileSystem.exists(directory + "/" + $0) }
    }

    /// The offset a partition's checkpoints say its log reached (recovery point or start).
    static func reachedOffset(_ directory: String) -> Int64 {
        let point = (try? PartitionLog.readRecoveryCheckpoint(directory: directory)) ?? nil
        let start = (try? PartitionLog.readRecoveryCheckpoint(directory: directory, name: PartitionLog.logStartName)) ?? nil
        return max(point ?? 0, start ?? 0)
    }

    /// Checks one partition directory. `progress(done, total)` is called after each segment.
    /// `onlyWhatRecoveryScans`: only the segments a broker's next open would scan (none but the
    /// newest's tail after a clean shutdown: those from the recovery point's on after a crash):
    /// what that open would cut, without reading the rest.
    public static func verify(
        partitionDirectory directory: String, onlyWhatRecoveryScans: Bool = false, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> Report {
        var report = Report(directory: directory)
        do {
            report.wasCleanShutdown = try LogMarkers.isClean(directory)
        } catch {
            report.problems.append(Problem(path: directory + "/" + LogMarkers.markerName, message: error.message))
        }
        if let marker = try FileSystem.readWholeFile(directory + "/" + needsRepairName, limit: 4096) {
            report.problems.append(
                Problem(path: directory, message: "marked for repair by a reader that found it damaged (the broker, or a tool reading the directory): \(String(decoding: marker, as: UTF8.self))"))
        }
        // Read before the segments are: a live broker's roll after the scan would write one past it.
        let checkpointed = (try? PartitionLog.readRecoveryCheckpoint(directory: directory)) ?? nil
        let segments = try segmentFiles(in: directory)
        if segments.isEmpty {
            // A log always keeps a segment: its files were removed (or never restored).
            let reached = reachedOffset(directory)
            report.problems.append(Problem(
                path: directory,
                message: "no segment files"
                    + (reached > 0 ? ", though its checkpoints say the log reached offset \(reached)" : "")
                    + ": whatever records it held are gone (a broker restarts it empty at \(reached))"))
        }
        // After a crash, recovery scans (and re-indexes) the segments from the one holding the
        // recovery point on; the ones before it are trusted as they are.
        let recoveryPoint = report.wasCleanShutdown ? nil : (try PartitionLog.readRecoveryCheckpoint(directory: directory) ?? 0)
        // As the open decides it: a crash in the boot the log was opened in lost nothing the OS
        // had been given, so only the last write can be unfinished (`CrashRemnant`).
        let afterPowerLoss = !report.wasCleanShutdown && !LogMarkers.wasOpenedInThisBoot(directory)
        let firstScanned = recoveryPoint.map { point in
            PartitionLog.firstSegmentToScan(bases: segments.map(\.base), recoveryPoint: point) { index in
                (try? FileSystem.fileSize(segments[index].path)).map { Int($0) } ?? 0
            }
        }
        let validator = RecordBatchValidator()
        var expectedNext: Int64? = nil
        var logEnd: Int64? = nil
        for (index, (base, path)) in segments.enumerated() {
            let nextBase = index + 1 < segments.count ? segments[index + 1].base : nil
            let isLast = nextBase == nil
            let rescanned = firstScanned.map { index >= $0 } ?? false
            report.segments += 1
            if onlyWhatRecoveryScans && !rescanned {
                expectedNext = nil
                progress(index + 1, segments.count)
                continue
            }
            var lastOffsetAt: [Int: Int64] = [:]
            var segmentNext = base
            var damaged = false
            if let expected = expectedNext, base != expected {
                report.problems.append(Problem(
                    path: path, message: "segment starts at offset \(base) but the previous one ends at \(expected): offsets missing or repeated"))
            }
            // Where the batches would go on if the last batch's base offset field alone were
            // damaged (set after a wrong base offset): a batch there follows on, and is not
            // reported as a second problem ("expected 269" after "starts at 265, expected 1").
            var nextIfOnlyItsOffsetWasWrong: Int64?
            func batchSeen(_ header: RecordBatchHeader, _ position: Int) {
                // (The indexes are checked against where it should end: an entry for it is not a
                // second problem either.)
                var lastOffset = header.lastOffset
                if header.baseOffset != segmentNext {
                    if header.baseOffset != nextIfOnlyItsOffsetWasWrong {
                        report.problems.append(Problem(
                            path: path, message: "batch at \(position) starts at offset \(header.baseOffset), expected \(segmentNext)"))
                        lastOffset = segmentNext &+ Int64(header.lastOffsetDelta)
                        nextIfOnlyItsOffsetWasWrong = lastOffset &+ 1
                    } else {
                        nextIfOnlyItsOffsetWasWrong = nil
                    }
                } else {
                    nextIfOnlyItsOffsetWasWrong = nil
                }
                if let nextBase, header.lastOffset >= nextBase {
                    report.problems.append(Problem(
                        path: path, message: "batch at \(position) reaches offset \(header.lastOffset), past the next segment's base \(nextBase)"))
                }
                lastOffsetAt[position] = lastOffset
                segmentNext = header.nextOffset
                report.batches += 1
                report.records += Int64(header.recordsCount)
                report.bytes += header.totalSize
            }
            // A batch whose first bytes a power loss left unwritten, read as a wrong offset:
            // what follows it is not read (the open cuts there).
            var tornAt: Int?
            func isTorn(_ header: RecordBatchHeader, _ position: Int) -> Bool {
                guard afterPowerLoss, header.baseOffset != segmentNext, isLast && rescanned && segmentNext >= (recoveryPoint ?? 0),
                    CrashRemnant.isTornHeaderStart(header, at: position, expectedOffset: segmentNext)
                else { return false }
                damaged = true
                tornAt = position
                report.notes.append(Problem(
                    path: path,
                    message: "bad batch at position \(position): it starts at offset \(header.baseOffset), expected \(segmentNext), "
                        + "its first bytes zeros to a sector's end; \(CrashRemnant.partlyWrittenBack), cut at the next start (never synced to disk)"))
                return true
            }
            try SegmentInspector.scan(logFile: path, validator: validator) { item in
                if tornAt != nil { return }
                switch item {
                case .batch(let header, let position):
                    if isTorn(header, position) { return }
                    batchSeen(header, position)
                case .invalidContent(let header, let position, let failure):
                    if isTorn(header, position) { return }
                    batchSeen(header, position)
                    report.problems.append(Problem(
                        path: path,
                        message: "batch at \(position) (offsets \(header.baseOffset)-\(header.lastOffset)) has invalid contents, "
                            + "consumers cannot read past it: \(failure)"))
                case .preallocatedTail(let position, let size):
                    let message = "zeros from position \(position) to the end (\(size - position) bytes)"
                    if isLast || rescanned {
                        report.notes.append(Problem(
                            path: path,
                            message: message + ": space written ahead of appends (a log that syncs every append), "
                                + "cut at the next start or clean stop; not data"))
                    } else {
                        // The broker trusts this segment's size: reads would meet the zeros.
                        report.problems.append(Problem(
                            path: path, message: message + " after the last batch of a segment the broker does not rescan; --repair cuts them"))
                    }
                case .damaged(let error, let position, let size):
                    damaged = true
                    // (Below the recovery point the records were durable: the broker's start
                    // refuses such damage, it does not cut it.)
                    let pastRecoveryPoint = isLast && rescanned && segmentNext >= (recoveryPoint ?? 0)
                    // (Bad bytes followed by a batch that checks out, before any sector of zeros,
                    // are damage wherever they are: a start refuses them rather than cut.)
                    let remnant =
                        pastRecoveryPoint
                        ? remnantOfACrash(error, path: path, at: position, size: size, expectedOffset: segmentNext, afterPowerLoss: afterPowerLoss)
                        : nil
                    let message = "bad batch at position \(position) (\(size - position) bytes to the end): \(error)"
                    if let remnant {
                        report.notes.append(Problem(
                            path: path, message: message + "; \(remnant), cut at the next start (never synced to disk)"))
                    } else {
                        report.problems.append(Problem(
                            path: path,
                            message: message + (isLast ? "" : "; the segments after it follow a gap")))
                    }
                }
            }
            if !damaged, let nextBase, segmentNext != nextBase, nextIfOnlyItsOffsetWasWrong != nextBase {
                report.problems.append(Problem(
                    path: path, message: "segment ends at offset \(segmentNext), the next one starts at \(nextBase): offsets \(segmentNext)-\(nextBase - 1) are missing"))
            }
            expectedNext = nextBase.map { $0 == nextIfOnlyItsOffsetWasWrong ? $0 : segmentNext }
            if isLast && !damaged { logEnd = segmentNext }
            if !rescanned {
                checkIndexes(base: base, path: path, nextBase: nextBase, lastOffsetAt: lastOffsetAt, into: &report)
            }
            progress(index + 1, segments.count)
        }
        // The newest segments removed (or emptied) by hand: the rest still checks out, but the
        // recovery checkpoint, which appends and recovery leave at or below the log's end
        // (`truncate` rewrites it after cutting), says the log reached further. (Read before a
        // broker's next start rewrites it.)
        if let logEnd, let checkpointed, checkpointed > logEnd {
            report.problems.append(Problem(
                path: directory,
                message: "the log ends at offset \(logEnd), but its recovery checkpoint says it reached at least \(checkpointed): "
                    + "offsets \(logEnd)-\(checkpointed - 1) at least are gone (segment files removed or cut), and a broker would hand them out again"))
        }
        // A log start (DeleteRecords' checkpoint) past the log's end: the segments holding the
        // records from there on were removed, or the checkpoint edited. A broker's next start
        // deletes every record the log holds and restarts it empty at that start, as Kafka's
        // does: said here first (it said ok, and the next start emptied the partition).
        let start = (try? PartitionLog.readRecoveryCheckpoint(directory: directory, name: PartitionLog.logStartName)) ?? nil
        if let logEnd, let start, start > logEnd {
            report.problems.append(Problem(
                path: directory + "/" + PartitionLog.logStartName,
                message: "the log ends at offset \(logEnd), but this checkpoint says it starts at \(start): a broker's next start "
                    + "deletes the \(report.records) records it holds and restarts it empty at \(start) (segment files removed, "
                    + "or the checkpoint edited; a checkpoint of the right start, or none, keeps them)"))
        }
        if let recoveryPoint {
            report.notes.append(Problem(
                path: directory, message: "not shut down cleanly: the next start scans from offset \(recoveryPoint) and rebuilds those indexes"))
        }
        return report
    }

    /// What a crash can have left at `position` of the file at `path` (`CrashRemnant`); nil
    /// for damage, or when the file cannot be read.
    static func remnantOfACrash(
        _ error: RecordBatchError, path: String, at position: Int, size: Int, expectedOffset: Int64, afterPowerLoss: Bool
    ) -> CrashRemnant? {
        guard let file = try? FileSystem.openRegularFile(path, .readOnly) else { return nil }
        return try? CrashRemnant.classify(error, file: file, at: position, size: size, expectedOffset: expectedOffset, afterPowerLoss: afterPowerLoss)
    }

    /// Index entries are checked only where the broker trusts them. An implausible index is
    /// rebuilt on first read (a note); a plausible one pointing at the wrong bytes would make
    /// reads fail (a problem `--repair` fixes).
    private static func checkIndexes(
        base: Int64, path: String, nextBase: Int64?, lastOffsetAt: [Int: Int64], into report: inout Report
    ) {
        let stem = String(path.dropLast(".log".count))
        let logSize = (try? FileSystem.fileSize(path)).map { Int($0) } ?? 0
        let limit = nextBase ?? Int64.max
        // Entries are walked as they are read (an index file can be any size: a sparse one of
        // 1 GiB was read whole, then copied into entries).
        do {
            var plausible = true
            var wrong: (offset: Int64, position: Int)? = nil
            var previous: (offset: Int64, position: Int)? = nil
            try SegmentInspector.forEachOffsetIndexEntry(path: stem + ".index") { offset, position in
                guard plausible else { return }
                if let previous, !(previous.offset < offset && previous.position < position) { plausible = false }
                if !(position < max(logSize, 1) && offset < limit && offset >= base) { plausible = false }
                if wrong == nil, lastOffsetAt[position] != offset { wrong = (offset, position) }
                previous = (offset, position)
            }
            if !plausible {
                report.notes.append(Problem(path: stem + ".index", message: "implausible; rebuilt from the log on first read"))
            } else if let wrong {
                report.problems.append(Problem(
                    path: stem + ".index",
                    message: "entry (offset \(wrong.offset), position \(wrong.position)) does not point at the batch ending at that offset; --repair rebuilds it"))
            }
        } catch {
            report.notes.append(Problem(path: stem + ".index", message: "unreadable or missing (\(error)); rebuilt from the log on first read"))
        }
        do {
            var plausible = true
            var previous: (timestamp: Int64, offset: Int64)? = nil
            try SegmentInspector.forEachTimeIndexEntry(path: stem + ".timeindex") { timestamp, offset in
                guard plausible else { return }
                if let previous, !(previous.timestamp < timestamp && previous.offset <= offset) { plausible = false }
                if !(offset >= base && offset < limit) { plausible = false }
                previous = (timestamp, offset)
            }
            if !plausible {
                report.notes.append(Problem(path: stem + ".timeindex", message: "implausible; rebuilt from the log on first read"))
            }
        } catch {
            report.notes.append(Problem(path: stem + ".timeindex", message: "unreadable or missing (\(error)); rebuilt from the log on first read"))
        }
    }

    /// Runs a full recovery on a partition directory that no process has open: every
    /// segment is scanned, the log is cut at the first torn or corrupt batch (later segments
    /// are removed) and every index is rebuilt. Clears the broker's needs-repair mark.
    public static func repair(partitionDirectory directory: String) throws -> RecoveryReport {
        try FileSystem.remove(directory + "/" + PartitionLog.cleanShutdownName)
        try FileSystem.remove(directory + "/" + PartitionLog.checkpointName)
        // Zeros written ahead of appends (to a 4 KiB boundary) are cut as space, wherever
        // they are: as damage, they would also remove every later segment.
        var config = LogConfig()
        config.preallocate = true
        // (Not refusing damage: a repair cuts at the first bad batch, whatever its shape.)
        let log = try PartitionLog.open(directory: directory, config: config, refusingDamage: false)
        let report = log.recoveryReport
        try log.close()
        try FileSystem.remove(directory + "/" + needsRepairName)
        return report
    }
}

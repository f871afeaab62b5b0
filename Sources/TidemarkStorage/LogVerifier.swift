/// Offline checks of a partition directory: every batch's framing and CRC, offset order
/// within and across segments, and the consistency of both indexes with the log.
/// `repair` runs a full crash recovery (cut at the first bad batch, rebuild every index).
public enum LogVerifier {
    public struct Problem: Sendable, CustomStringConvertible {
        public var path: String
        public var message: String
        public var description: String { "\(path): \(message)" }
    }

    public struct Report: Sendable {
        public var directory: String
        public var segments = 0
        public var batches = 0
        public var records: Int64 = 0
        public var bytes = 0
        public var problems: [Problem] = []
        public var isHealthy: Bool { problems.isEmpty }
    }

    /// The `.log` files of a partition directory, by base offset.
    public static func segmentFiles(in directory: String) throws -> [(base: Int64, path: String)] {
        try FileSystem.listDirectory(directory).compactMap { name in
            LogSegment.baseOffset(fromFileName: name, suffix: ".log").map { ($0, directory + "/" + name) }
        }.sorted { $0.base < $1.base }
    }

    /// Checks one partition directory. `progress(done, total)` is called after each segment.
    public static func verify(partitionDirectory directory: String, progress: (Int, Int) -> Void = { _, _ in }) throws -> Report {
        var report = Report(directory: directory)
        let segments = try segmentFiles(in: directory)
        var expectedNext: Int64? = nil
        for (index, (base, path)) in segments.enumerated() {
            let nextBase = index + 1 < segments.count ? segments[index + 1].base : nil
            report.segments += 1
            var lastOffsetAt: [Int: Int64] = [:]
            var segmentNext = base
            try SegmentInspector.scan(logFile: path) { item in
                switch item {
                case .batch(let header, let position):
                    if header.baseOffset < segmentNext {
                        report.problems.append(Problem(
                            path: path, message: "batch at \(position) has base offset \(header.baseOffset), below \(segmentNext)"))
                    }
                    if let expected = expectedNext, index > 0, position == 0, header.baseOffset < expected {
                        report.problems.append(Problem(path: path, message: "segment overlaps the previous one"))
                    }
                    if let nextBase, header.lastOffset >= nextBase {
                        report.problems.append(Problem(
                            path: path, message: "batch at \(position) reaches offset \(header.lastOffset), past the next segment's base \(nextBase)"))
                    }
                    lastOffsetAt[position] = header.lastOffset
                    segmentNext = header.nextOffset
                    report.batches += 1
                    report.records += Int64(header.recordsCount)
                    report.bytes += header.totalSize
                case .damaged(let error, let position, let size):
                    report.problems.append(Problem(
                        path: path, message: "bad batch at position \(position) (\(size - position) bytes to the end): \(error)"))
                }
            }
            expectedNext = segmentNext
            checkIndexes(base: base, path: path, lastOffsetAt: lastOffsetAt, nextOffset: segmentNext, into: &report)
            progress(index + 1, segments.count)
        }
        return report
    }

    private static func checkIndexes(base: Int64, path: String, lastOffsetAt: [Int: Int64], nextOffset: Int64, into report: inout Report) {
        let stem = String(path.dropLast(".log".count))
        let indexPath = stem + ".index"
        let timePath = stem + ".timeindex"
        guard FileSystem.exists(indexPath) else {
            report.problems.append(Problem(path: indexPath, message: "missing (it can be rebuilt from the log)"))
            return
        }
        do {
            var previous: Int64 = -1
            for entry in try SegmentInspector.offsetIndexEntries(path: indexPath) {
                guard entry.offset > previous, lastOffsetAt[entry.position] == entry.offset else {
                    report.problems.append(Problem(
                        path: indexPath,
                        message: "entry (offset \(entry.offset), position \(entry.position)) does not point at the batch ending at that offset"))
                    break
                }
                previous = entry.offset
            }
        } catch {
            report.problems.append(Problem(path: indexPath, message: "unreadable: \(error)"))
        }
        guard FileSystem.exists(timePath) else {
            report.problems.append(Problem(path: timePath, message: "missing (it can be rebuilt from the log)"))
            return
        }
        do {
            var previous = Int64.min
            for entry in try SegmentInspector.timeIndexEntries(path: timePath) {
                guard entry.timestamp > previous, entry.offset >= base, entry.offset < max(nextOffset, base + 1) else {
                    report.problems.append(Problem(
                        path: timePath, message: "entry (timestamp \(entry.timestamp), offset \(entry.offset)) is out of order or outside the segment"))
                    break
                }
                previous = entry.timestamp
            }
        } catch {
            report.problems.append(Problem(path: timePath, message: "unreadable: \(error)"))
        }
    }

    /// Runs a full recovery on a partition directory that no process has open: every
    /// segment is scanned, the log is cut at the first torn or corrupt batch (later segments
    /// are removed) and every index is rebuilt.
    public static func repair(partitionDirectory directory: String) throws -> RecoveryReport {
        try FileSystem.remove(directory + "/" + PartitionLog.cleanShutdownName)
        try FileSystem.remove(directory + "/" + PartitionLog.checkpointName)
        let log = try PartitionLog.open(directory: directory)
        let report = log.recoveryReport
        try log.close()
        return report
    }
}

/// Offline reading of segment and index files, for `tidemark dump` and `tidemark verify`:
/// no `PartitionLog`, no lock, nothing written.
public enum SegmentInspector {
    /// One step of a scan through a `.log` file.
    public enum Item: Sendable {
        /// A batch whose framing and CRC are valid, at `position`.
        case batch(RecordBatchHeader, position: Int)
        /// Bytes at `position` that are not a valid batch; the scan stops there.
        case damaged(RecordBatchError, position: Int, fileSize: Int)
    }

    /// Calls `body` for every batch of the log file in order, then once more with `.damaged`
    /// if the file does not end on a valid batch boundary.
    public static func scan(logFile path: String, body: (Item) throws -> Void) throws {
        let file = try SharedFile.open(path, .readOnly)
        let size = Int(try file.size())
        var scanner = BatchScanner(file: file, from: 0, end: size, maxBatchBytes: Int(Int32.max))
        while true {
            switch try scanner.next() {
            case .batch(let header, let position): try body(.batch(header, position: position))
            case .invalid(let error, let position):
                try body(.damaged(error, position: position, fileSize: size))
                return
            case .end: return
            }
        }
    }

    /// The whole batch at `position` of a log file (for decoding its records).
    public static func readBatch(logFile path: String, position: Int, size: Int) throws -> [UInt8] {
        try SharedFile.open(path, .readOnly).read(count: size, at: Int64(position))
    }

    /// The base offset in a segment file's name (`00000000000000001234.log` -> 1234).
    public static func baseOffset(ofFile path: String) -> Int64? {
        let name = String(path.split(separator: "/").last ?? "")
        for suffix in [".log", ".index", ".timeindex"] {
            if let base = LogSegment.baseOffset(fromFileName: name, suffix: suffix) { return base }
        }
        return nil
    }

    /// The entries of an offset index file (absolute offset, position).
    public static func offsetIndexEntries(path: String) throws -> [(offset: Int64, position: Int)] {
        guard let base = baseOffset(ofFile: path) else {
            throw StorageError(.invalidArgument, "not a segment file name", path: path)
        }
        let index = try OffsetIndex(path: path, baseOffset: base, maxBytes: Int(Int32.max), writable: false)
        return (0..<index.entryCount).map { index.entry($0) }
    }

    /// The entries of a time index file (timestamp, absolute offset).
    public static func timeIndexEntries(path: String) throws -> [(timestamp: Int64, offset: Int64)] {
        guard let base = baseOffset(ofFile: path) else {
            throw StorageError(.invalidArgument, "not a segment file name", path: path)
        }
        let index = try TimeIndex(path: path, baseOffset: base, maxBytes: Int(Int32.max), writable: false)
        return (0..<index.entryCount).map { index.entry($0) }
    }
}

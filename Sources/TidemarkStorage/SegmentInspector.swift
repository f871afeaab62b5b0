/// Offline reading of segment and index files, for `tidemark dump` and `tidemark verify`:
/// no `PartitionLog`, no lock, nothing written, nothing mapped (files are read with pread, so
/// a file a running broker shrinks cannot fault the reader).
public enum SegmentInspector {
    /// One step of a scan through a `.log` file.
    public enum Item: Sendable {
        /// A batch whose framing and CRC are valid, at `position`.
        case batch(RecordBatchHeader, position: Int)
        /// A batch with valid framing and CRC whose contents `RecordBatchValidator` refuses
        /// (stored before produce validated them). The scan goes on after it.
        case invalidContent(RecordBatchHeader, position: Int, RecordBatchValidator.Failure)
        /// Bytes at `position` that are not a valid batch; the scan stops there.
        case damaged(RecordBatchError, position: Int, fileSize: Int)
        /// Zeros from `position` to the end of the file (at most 2 MiB, to a 4 KiB boundary): space written ahead
        /// of the appends of a log that syncs every append (the active segment of a running
        /// broker, or after a crash), not data. The scan ends there.
        case preallocatedTail(position: Int, fileSize: Int)
    }

    /// Calls `body` for every batch of the log file in order, then once more with `.damaged`
    /// (or `.preallocatedTail`) if the file does not end on a valid batch boundary. With a `validator`, batches whose
    /// contents it refuses come as `.invalidContent`.
    public static func scan(logFile path: String, validator: RecordBatchValidator? = nil, body: (Item) throws -> Void) throws {
        let file = try FileSystem.openRegularFile(path, .readOnly)
        let size = Int(try file.size())
        var scanner = BatchScanner(file: file, from: 0, end: size, maxBatchBytes: Int(Int32.max))
        while true {
            switch try scanner.next() {
            case .batch(let header, let position):
                let failure = validator.flatMap { validator in
                    scanner.withLastBatch { bytes -> RecordBatchValidator.Failure? in
                        do throws(RecordBatchValidator.Failure) {
                            try validator.validate(bytes, nowMs: nil)
                            return nil
                        } catch {
                            return error
                        }
                    } ?? nil
                }
                if let failure {
                    try body(.invalidContent(header, position: position, failure))
                } else {
                    try body(.batch(header, position: position))
                }
            case .invalid(let error, let position):
                if try BatchScanner.isPreallocatedTail(file, from: position, to: size) {
                    try body(.preallocatedTail(position: position, fileSize: size))
                } else {
                    try body(.damaged(error, position: position, fileSize: size))
                }
                return
            case .end: return
            }
        }
    }

    /// The whole batch at `position` of a log file (for decoding its records).
    public static func readBatch(logFile path: String, position: Int, size: Int) throws -> [UInt8] {
        try FileSystem.openRegularFile(path, .readOnly).read(count: size, at: Int64(position))
    }

    /// The base offset in a segment file's name (`00000000000000001234.log` -> 1234).
    public static func baseOffset(ofFile path: String) -> Int64? {
        let name = String(path.split(separator: "/").last ?? "")
        for suffix in [".log", ".index", ".timeindex"] {
            if let base = LogSegment.baseOffset(fromFileName: name, suffix: suffix) { return base }
        }
        return nil
    }

    /// The entries of an offset index file (absolute offset, position). Trailing all-zero
    /// entries are left out: they are the preallocated, never-written tail a crash leaves.
    public static func offsetIndexEntries(path: String) throws -> [(offset: Int64, position: Int)] {
        try entries(path: path, size: OffsetIndex.entrySize) { raw, at, base in
            let relative = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))
            let position = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self))
            return (base &+ Int64(relative), Int(position))  // wraps, as the index does: shown, not trapped on
        }
    }

    /// The entries of a time index file (timestamp, absolute offset), without a zero tail.
    public static func timeIndexEntries(path: String) throws -> [(timestamp: Int64, offset: Int64)] {
        try entries(path: path, size: TimeIndex.entrySize) { raw, at, base in
            let timestamp = Int64(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: Int64.self))
            let relative = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self))
            return (timestamp, base &+ Int64(relative))
        }
    }

    private static func base(_ path: String) throws -> Int64 {
        guard let base = baseOffset(ofFile: path) else {
            throw StorageError(.invalidArgument, "not a segment file name", path: path)
        }
        return base
    }

    /// Whole entries of an index file, read (not mapped), each made by `entry(bytes, its
    /// position, the segment's base offset)`; trailing all-zero entries dropped. No view per
    /// entry: a 256 MiB index took 1.3 GB that way (the entries take twice the file, the bytes
    /// once).
    private static func entries<Entry>(
        path: String, size: Int, _ entry: (UnsafeRawBufferPointer, Int, Int64) -> Entry
    ) throws -> [Entry] {
        let base = try base(path)
        let file = try FileSystem.openRegularFile(path, .readOnly)
        let length = Int(try file.size())
        let bytes = try file.read(count: length - length % size, at: 0)
        let count = bytes.lastIndex { $0 != 0 }.map { $0 / size + 1 } ?? 0
        return bytes.withUnsafeBytes { raw in (0..<count).map { entry(raw, $0 * size, base) } }
    }
}

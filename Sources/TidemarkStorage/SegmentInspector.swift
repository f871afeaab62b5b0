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

    /// The entries of an offset index file (absolute offset, position), without a zero tail.
    public static func offsetIndexEntries(path: String) throws -> [(offset: Int64, position: Int)] {
        var out: [(offset: Int64, position: Int)] = []
        try forEachOffsetIndexEntry(path: path) { out.append(($0, $1)) }
        return out
    }

    /// The entries of a time index file (timestamp, absolute offset), without a zero tail.
    public static func timeIndexEntries(path: String) throws -> [(timestamp: Int64, offset: Int64)] {
        var out: [(timestamp: Int64, offset: Int64)] = []
        try forEachTimeIndexEntry(path: path) { out.append(($0, $1)) }
        return out
    }

    /// Each entry of an offset index file (absolute offset, position) in order, without a
    /// zero tail, read a chunk at a time.
    public static func forEachOffsetIndexEntry(path: String, _ body: (Int64, Int) throws -> Void) throws {
        try forEachEntry(path: path, size: OffsetIndex.entrySize) { raw, at, base in
            let relative = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))
            let position = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self))
            return (base &+ Int64(relative), Int(position))  // wraps, as the index does: shown, not trapped on
        } body: { try body($0.0, $0.1) }
    }

    /// Each entry of a time index file (timestamp, absolute offset) in order, without a zero
    /// tail, read a chunk at a time.
    public static func forEachTimeIndexEntry(path: String, _ body: (Int64, Int64) throws -> Void) throws {
        try forEachEntry(path: path, size: TimeIndex.entrySize) { raw, at, base in
            let timestamp = Int64(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: Int64.self))
            let relative = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self))
            return (timestamp, base &+ Int64(relative))
        } body: { try body($0.0, $0.1) }
    }

    private static func base(_ path: String) throws -> Int64 {
        guard let base = baseOffset(ofFile: path) else {
            throw StorageError(.invalidArgument, "not a segment file name", path: path)
        }
        return base
    }

    /// Bytes of an index file read at once.
    static let indexChunkBytes = 1 << 20

    /// Whole entries of an index file, read (not mapped) a chunk at a time, each made by
    /// `entry(bytes, its position, the segment's base offset)` and handed to `body`; trailing
    /// all-zero entries dropped. Zero entries are only counted until a later entry shows they
    /// are not the tail: a 1 GiB sparse index (a hole) took 1 GB read whole, and would have
    /// taken more as entries; now a chunk.
    private static func forEachEntry<Entry>(
        path: String, size: Int, _ entry: (UnsafeRawBufferPointer, Int, Int64) -> Entry, body: (Entry) throws -> Void
    ) throws {
        let base = try base(path)
        let file = try FileSystem.openRegularFile(path, .readOnly)
        let length = Int(try file.size())
        let whole = length - length % size
        let chunk = max(size, Self.indexChunkBytes - Self.indexChunkBytes % size)
        var zeros = 0
        var at = 0
        while at < whole {
            let bytes = try file.read(count: min(chunk, whole - at), at: Int64(at))
            guard !bytes.isEmpty else { break }
            try bytes.withUnsafeBytes { raw in
                for start in stride(from: 0, to: raw.count - raw.count % size, by: size) {
                    // Entries are 8 or 12 bytes: one or two loads, not a loop over bytes.
                    let head = raw.loadUnaligned(fromByteOffset: start, as: UInt64.self)
                    let rest = size > 8 ? raw.loadUnaligned(fromByteOffset: start + size - 4, as: UInt32.self) : 0
                    if head == 0 && rest == 0 {
                        zeros += 1
                        continue
                    }
                    if zeros > 0 {
                        let zero = [UInt8](repeating: 0, count: size)
                        let made = zero.withUnsafeBytes { entry($0, 0, base) }
                        for _ in 0..<zeros { try body(made) }
                        zeros = 0
                    }
                    try body(entry(raw, start, base))
                }
            }
            at += bytes.count
        }
    }
}

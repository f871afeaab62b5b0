/// Reads the batches of a segment file in order through a buffer, checking each one's
/// framing and CRC. Used by recovery, index rebuilds and `verify`.
///
/// Memory is bounded by `maxBatchBytes` plus the read chunk, and by `largeBatchBytes`
/// whatever that is: a longer batch (a damaged length field claims up to 2 GiB) is checked
/// as it streams past, its CRC computed a chunk at a time, and its bytes are not kept.
/// Value type; one owner.
struct BatchScanner {
    enum Step {
        /// A valid batch at `position`.
        case batch(RecordBatchHeader, position: Int)
        /// Clean end of the scanned range.
        case end
        /// The bytes at `position` are not a valid batch (torn tail or corruption).
        case invalid(RecordBatchError, position: Int)
    }

    static let chunkBytes = 1 << 20
    /// Batches longer than this are checked without being held in memory (Kafka's batches
    /// are at most max.message.bytes, 1 MiB by default; a longer one is legal but rare, and a
    /// length field damaged on disk made recovery allocate up to the segment's size).
    static let largeBatchBytes = 64 << 20

    let file: SharedFile
    let end: Int
    let maxBatchBytes: Int
    private(set) var position: Int
    private var buffer: [UInt8] = []
    /// File position of buffer[0].
    private var bufferStart = 0
    /// Where in `buffer` the batch last returned by `next()` is (start, size).
    private var lastBatch: (start: Int, size: Int)?

    init(file: SharedFile, from position: Int, end: Int, maxBatchBytes: Int) {
        self.file = file
        self.position = position
        self.end = end
        self.maxBatchBytes = maxBatchBytes
        bufferStart = position
    }

    mutating func next() throws(StorageError) -> Step {
        if position >= end { return .end }
        guard try fill(RecordBatchHeader.logOverhead) else {
            return .invalid(.truncated(needed: RecordBatchHeader.logOverhead, available: end - position), position: position)
        }
        let offsetInBuffer = position - bufferStart
        let length = buffer.withUnsafeBytes {
            Int32(bigEndian: $0.loadUnaligned(fromByteOffset: offsetInBuffer + 8, as: Int32.self))
        }
        guard length >= RecordBatchHeader.minimumBatchLength,
            Int(length) + RecordBatchHeader.logOverhead <= maxBatchBytes
        else { return .invalid(.invalidBatchLength(length), position: position) }
        let total = Int(length) + RecordBatchHeader.logOverhead
        if total > Self.largeBatchBytes { return try streamLargeBatch(total) }
        guard try fill(total) else {
            return .invalid(.truncated(needed: total, available: end - position), position: position)
        }
        let start = position - bufferStart
        let result = buffer.withUnsafeBytes { raw in
            Result { () throws(RecordBatchError) in
                try RecordBatchHeader.validate(UnsafeRawBufferPointer(rebasing: raw[start..<(start + total)]))
            }
        }
        switch result {
        case .success(let header):
            let batchPosition = position
            lastBatch = (batchPosition - bufferStart, total)
            position += total
            return .batch(header, position: batchPosition)
        case .failure(let error):
            return .invalid(error, position: position)
        }
    }

    /// Checks the `total`-byte batch at `position` as `RecordBatchHeader.validate` does, its
    /// CRC over chunks read one at a time (not kept: `withLastBatch` has nothing for it).
    private mutating func streamLargeBatch(_ total: Int) throws(StorageError) -> Step {
        guard position + total <= end else {
            return .invalid(.truncated(needed: total, available: end - position), position: position)
        }
        guard try fill(RecordBatchHeader.size) else {
            return .invalid(.truncated(needed: RecordBatchHeader.size, available: end - position), position: position)
        }
        let start = position - bufferStart
        let parsed = buffer.withUnsafeBytes { raw in
            Result { () throws(RecordBatchError) in
                try RecordBatchHeader(parsing: UnsafeRawBufferPointer(rebasing: raw[start..<(start + RecordBatchHeader.size)]))
            }
        }
        let header: RecordBatchHeader
        switch parsed {
        case .success(let parsed): header = parsed
        case .failure(let error): return .invalid(error, position: position)
        }
        guard header.lastOffsetDelta >= 0, header.recordsCount >= 0 else {
            return .invalid(.invalidRecord("negative lastOffsetDelta or recordsCount"), position: position)
        }
        var crc: UInt32 = 0
        var chunk = [UInt8](repeating: 0, count: Self.chunkBytes)
        var at = position + RecordBatchHeader.attributesOffset
        while at < position + total {
            let want = min(Self.chunkBytes, position + total - at)
            let got = try chunk.withUnsafeMutableBytes { raw in
                Result { () throws(StorageError) in try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[..<want]), at: Int64(at)) }
            }.get()
            guard got == want else {
                return .invalid(.truncated(needed: total, available: at + got - position), position: position)
            }
            crc = chunk.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<want]), extending: crc) }
            at += want
        }
        guard crc == header.crc else { return .invalid(.crcMismatch(stored: header.crc, computed: crc), position: position) }
        // Past it: the buffer starts over at the next batch.
        lastBatch = nil
        buffer.removeAll(keepingCapacity: true)
        position += total
        bufferStart = position
        return .batch(header, position: position - total)
    }

    /// The most zeros after the batches that are read as space written ahead of appends
    /// (`LogSegment.preallocateAhead` keeps at most 1 MiB + 128 KiB); a longer run of zeros
    /// is damage.
    static let maxPreallocatedTail = 2 << 20

    /// Whether `[position, end)` of `file` is space written ahead of appends, not a batch:
    /// all zeros (a batch's length is never 0), at most `maxPreallocatedTail` long, and ending
    /// on a 4 KiB boundary as preallocation does (the zeros of a torn write end anywhere).
    static func isPreallocatedTail(_ file: SharedFile, from position: Int, to end: Int) throws(StorageError) -> Bool {
        guard end > position, end - position <= maxPreallocatedTail, end % 4096 == 0 else { return false }
        let bytes = try file.read(count: end - position, at: Int64(position))
        return bytes.count == end - position && !bytes.contains { $0 != 0 }
    }

    /// The bytes of the batch the last `next()` returned, valid until the next call.
    func withLastBatch<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        guard let lastBatch else { return nil }
        return try buffer.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[lastBatch.start..<(lastBatch.start + lastBatch.size)]))
        }
    }

    /// Makes `count` bytes from `position` available in the buffer; false if the range ends first.
    private mutating func fill(_ count: Int) throws(StorageError) -> Bool {
        if position + count > end { return false }
        let have = bufferStart + buffer.count - position
        if have >= count { return true }
        // Move the unread tail to the front of the (reused) buffer, then read after it: a
        // chunk, or the whole batch when that is larger.
        lastBatch = nil
        let keepFrom = position - bufferStart
        let kept = buffer.count - keepFrom
        let target = max(kept + min(end - position - kept, max(count - kept, Self.chunkBytes)), count)
        if buffer.isEmpty { buffer = [UInt8](repeating: 0, count: target) }
        buffer.withUnsafeMutableBytes { raw in
            if kept > 0 && keepFrom > 0 { raw.baseAddress!.copyMemory(from: raw.baseAddress! + keepFrom, byteCount: kept) }
        }
        if buffer.count < target {
            buffer.append(contentsOf: repeatElement(0, count: target - buffer.count))
        } else if buffer.count > target {
            buffer.removeLast(buffer.count - target)
        }
        let want = target - kept
        let readAt = Int64(position + kept)
        let got = try buffer.withUnsafeMutableBytes { raw in
            Result { () throws(StorageError) in
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[kept..<(kept + want)]), at: readAt)
            }
        }.get()
        if got < want { buffer.removeLast(want - got) }
        bufferStart = position
        return buffer.count >= count
    }
}

/// Reads the batches of a segment file in order through a buffer, checking each one's
/// framing and CRC. Used by recovery, index rebuilds and `verify`.
///
/// Memory is bounded by `maxBatchBytes` plus the read chunk. Value type; one owner.
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

    let file: SharedFile
    let end: Int
    let maxBatchBytes: Int
    private(set) var position: Int
    private var buffer: [UInt8] = []
    /// File position of buffer[0].
    private var bufferStart = 0

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
            position += total
            return .batch(header, position: batchPosition)
        case .failure(let error):
            return .invalid(error, position: position)
        }
    }

    /// Makes `count` bytes from `position` available in the buffer; false if the range ends first.
    private mutating func fill(_ count: Int) throws(StorageError) -> Bool {
        if position + count > end { return false }
        let have = bufferStart + buffer.count - position
        if have >= count { return true }
        // Keep the unread tail, then read a chunk (or the whole batch when it is larger).
        let keepFrom = position - bufferStart
        var next = Array(buffer[keepFrom...])
        let want = min(end - position, max(count, Self.chunkBytes)) - next.count
        let readAt = Int64(position + next.count)
        let more = try file.read(count: want, at: readAt)
        next.append(contentsOf: more)
        buffer = next
        bufferStart = position
        return buffer.count >= count
    }
}

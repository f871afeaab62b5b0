/// A bounds-checked, forward-only reader over borrowed bytes.
///
/// Every read checks `readerIndex + size <= bytes.count` and throws
/// `RecordBatchError.truncated` instead of trapping, so hostile input cannot crash a
/// reader. Invariant: `0 <= readerIndex <= bytes.count`. The reader does not own its
/// bytes; it is only valid inside the `withUnsafeBytes` scope that made it.
public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var readerIndex: Int

    public init(_ bytes: UnsafeRawBufferPointer, readerIndex: Int = 0) {
        precondition(readerIndex >= 0 && readerIndex <= bytes.count)
        self.bytes = bytes
        self.readerIndex = readerIndex
    }

    public var readableBytes: Int { bytes.count - readerIndex }

    public mutating func readInteger<T: FixedWidthInteger>(as: T.Type = T.self) throws(RecordBatchError) -> T {
        let size = MemoryLayout<T>.size
        guard readableBytes >= size else { throw .truncated(needed: size, available: readableBytes) }
        let value = bytes.loadUnaligned(fromByteOffset: readerIndex, as: T.self)
        readerIndex += size
        return T(bigEndian: value)
    }

    /// Reads `count` bytes as a view into the underlying buffer.
    public mutating func readSlice(count: Int) throws(RecordBatchError) -> UnsafeRawBufferPointer {
        guard count >= 0 else { throw .invalidRecord("negative length \(count)") }
        guard readableBytes >= count else { throw .truncated(needed: count, available: readableBytes) }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[readerIndex..<(readerIndex + count)])
        readerIndex += count
        return slice
    }

    public mutating func readBytes(count: Int) throws(RecordBatchError) -> [UInt8] {
        Array(try readSlice(count: count))
    }

    public mutating func readUnsignedVarint(maxBytes: Int = 10) throws(RecordBatchError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        for _ in 0..<maxBytes {
            guard readerIndex < bytes.count else { throw .truncated(needed: 1, available: 0) }
            let byte = bytes[readerIndex]
            readerIndex += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        throw .invalidRecord("varint longer than \(maxBytes) bytes")
    }

    /// Zigzag varint (Kafka's `varint`), at most 5 bytes.
    public mutating func readVarint() throws(RecordBatchError) -> Int32 {
        let raw = try readUnsignedVarint(maxBytes: 5)
        guard raw <= UInt64(UInt32.max) else { throw .invalidRecord("varint overflows 32 bits") }
        let u = UInt32(raw)
        return Int32(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    /// Zigzag varlong (Kafka's `varlong`), at most 10 bytes.
    public mutating func readVarlong() throws(RecordBatchError) -> Int64 {
        let u = try readUnsignedVarint(maxBytes: 10)
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    public mutating func skip(_ count: Int) throws(RecordBatchError) {
        _ = try readSlice(count: count)
    }
}

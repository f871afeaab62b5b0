/// Appends big-endian integers and Kafka's zigzag varints to a growable byte array.
///
/// Value type; the owner of the array is whoever holds the writer.
public struct ByteWriter: Sendable {
    public var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    @inlinable
    public mutating func writeInteger<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    @inlinable
    public mutating func writeBytes<C: Collection>(_ other: C) where C.Element == UInt8 {
        bytes.append(contentsOf: other)
    }

    @inlinable
    public mutating func writeBytes(_ other: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: other)
    }

    /// Unsigned LEB128 varint (7 bits a byte, low group first).
    @inlinable
    public mutating func writeUnsignedVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Zigzag varint of a 32-bit value (Kafka's `varint`).
    @inlinable
    public mutating func writeVarint(_ value: Int32) {
        writeUnsignedVarint(UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31))))
    }

    /// Zigzag varint of a 64-bit value (Kafka's `varlong`).
    @inlinable
    public mutating func writeVarlong(_ value: Int64) {
        writeUnsignedVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// Overwrites 4 bytes at `index` with a big-endian value (for length and CRC fields
    /// written after their contents).
    @inlinable
    public mutating func setInteger<T: FixedWidthInteger>(_ value: T, at index: Int) {
        precondition(index >= 0 && index + MemoryLayout<T>.size <= bytes.count, "setInteger out of bounds")
        withUnsafeBytes(of: value.bigEndian) { source in
            for i in 0..<source.count { bytes[index + i] = source[i] }
        }
    }

    /// Number of bytes `writeVarint` would use.
    @inlinable
    public static func varintSize(_ value: Int32) -> Int {
        unsignedVarintSize(UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31))))
    }

    @inlinable
    public static func varlongSize(_ value: Int64) -> Int {
        unsignedVarintSize(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    @inlinable
    public static func unsignedVarintSize(_ value: UInt64) -> Int {
        let bits = 64 - value.leadingZeroBitCount
        return max(1, (bits + 6) / 7)
    }
}

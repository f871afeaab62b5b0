import CCRC32C

/// CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2.
///
/// Uses the CPU's crc32 instruction (SSE4.2) when present, a table-driven
/// fallback otherwise. `CRC32C.checksum("123456789")` is `0xE3069283`.
public enum CRC32C {
    /// The checksum of `bytes`, or its extension from an earlier `crc` over more bytes.
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer, extending crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        return tidemark_crc32c_extend(crc, base, bytes.count)
    }

    /// The checksum of a byte collection that has contiguous storage.
    @inlinable
    public static func checksum<Bytes: Collection>(_ bytes: Bytes, extending crc: UInt32 = 0) -> UInt32
    where Bytes.Element == UInt8 {
        if let result = bytes.withContiguousStorageIfAvailable({ checksum(UnsafeRawBufferPointer($0), extending: crc) }) {
            return result
        }
        return Array(bytes).withUnsafeBytes { checksum($0, extending: crc) }
    }

    /// The same checksum computed by the portable code path (for tests).
    public static func portableChecksum(_ bytes: UnsafeRawBufferPointer, extending crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        return tidemark_crc32c_extend_portable(crc, base, bytes.count)
    }

    /// Whether the hardware instruction is in use on this machine.
    public static var isHardwareAccelerated: Bool { tidemark_crc32c_is_hardware_accelerated() != 0 }
}

/// Why a RecordBatch could not be read or written. Every decoding failure of hostile or
/// damaged bytes ends here; none traps and none allocates more than its stated bound.
public enum RecordBatchError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Fewer bytes than a field or the declared length needs.
    case truncated(needed: Int, available: Int)
    /// `batchLength` is below the fixed header or above the allowed maximum.
    case invalidBatchLength(Int32)
    /// A magic byte other than 2 (only RecordBatch v2 is stored).
    case unsupportedMagic(Int8)
    /// The stored CRC-32C differs from the one computed over bytes 21..end.
    case crcMismatch(stored: UInt32, computed: UInt32)
    /// A compression codec this build does not handle (gzip, snappy, zstd, or an unknown id).
    case unsupportedCompression(Int16)
    /// The compressed block is not valid for its codec.
    case corruptCompressedData(String)
    /// Decompression would produce more than the configured limit.
    case decompressedSizeLimitExceeded(limit: Int)
    /// A record inside the batch is malformed.
    case invalidRecord(String)

    public var description: String {
        switch self {
        case let .truncated(needed, available):
            return "truncated: needed \(needed) bytes, \(available) available"
        case let .invalidBatchLength(length):
            return "invalid batch length \(length)"
        case let .unsupportedMagic(magic):
            return "unsupported magic \(magic) (only RecordBatch v2 is stored)"
        case let .crcMismatch(stored, computed):
            return "CRC-32C mismatch: stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16))"
        case let .unsupportedCompression(attributes):
            return "unsupported compression codec \(attributes & 0x7)"
        case let .corruptCompressedData(message):
            return "corrupt compressed data: \(message)"
        case let .decompressedSizeLimitExceeded(limit):
            return "decompressed records exceed the limit of \(limit) bytes"
        case let .invalidRecord(message):
            return "invalid record: \(message)"
        }
    }
}

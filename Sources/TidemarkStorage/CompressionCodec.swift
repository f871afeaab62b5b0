/// The codec in bits 0-2 of a RecordBatch's attributes.
public enum CompressionCodec: Int16, Sendable, CaseIterable, CustomStringConvertible {
    case none = 0
    case gzip = 1
    case snappy = 2
    case lz4 = 3
    case zstd = 4

    public var description: String {
        switch self {
        case .none: "none"
        case .gzip: "gzip"
        case .snappy: "snappy"
        case .lz4: "lz4"
        case .zstd: "zstd"
        }
    }

    /// Whether this build can compress and decompress the codec: every one Kafka defines
    /// (`Codecs.swift`; lz4, zlib, zstd and snappy from the system).
    public var isSupported: Bool { true }
}

/// Which timestamp a batch carries (attribute bit 3).
public enum TimestampType: Sendable, Equatable, CustomStringConvertible {
    /// Producer-assigned timestamps, kept as sent.
    case createTime
    /// The broker stamps `maxTimestamp` with its clock at append; readers use it for every record.
    case logAppendTime

    public var description: String { self == .createTime ? "CreateTime" : "LogAppendTime" }
}

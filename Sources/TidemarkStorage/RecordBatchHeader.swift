/// The fixed 61-byte header of a Kafka RecordBatch v2, stored on disk exactly as on the wire.
///
/// Layout (big-endian):
/// ```
/// offset size field
///      0    8 baseOffset            i64  first offset in the batch (assigned by the broker)
///      8    4 batchLength           i32  bytes after this field (total size = 12 + batchLength)
///     12    4 partitionLeaderEpoch  i32
///     16    1 magic                 i8   = 2
///     17    4 crc                   u32  CRC-32C of bytes 21..<(12 + batchLength)
///     21    2 attributes            i16  bits 0-2 codec, 3 timestamp type (1 = LogAppendTime),
///                                        4 transactional, 5 control
///     23    4 lastOffsetDelta       i32  lastOffset - baseOffset
///     27    8 baseTimestamp         i64
///     35    8 maxTimestamp          i64
///     43    8 producerId            i64  -1 when not idempotent
///     51    2 producerEpoch         i16
///     53    4 baseSequence          i32
///     57    4 recordsCount          i32
///     61      records (one compressed block when codec != 0)
/// ```
/// The CRC leaves out baseOffset, batchLength and partitionLeaderEpoch, so the broker
/// assigns offsets by rewriting bytes 0..<8 without recomputing it.
public struct RecordBatchHeader: Sendable, Equatable {
    public static let size = 61
    /// baseOffset + batchLength: the bytes before what `batchLength` counts.
    public static let logOverhead = 12
    public static let magicOffset = 16
    public static let crcOffset = 17
    public static let partitionLeaderEpochOffset = 12
    public static let attributesOffset = 21
    public static let maxTimestampOffset = 35
    /// The smallest legal `batchLength`.
    public static let minimumBatchLength = Int32(size - logOverhead)

    public var baseOffset: Int64
    public var batchLength: Int32
    public var partitionLeaderEpoch: Int32
    public var magic: Int8
    public var crc: UInt32
    public var attributes: Int16
    public var lastOffsetDelta: Int32
    public var baseTimestamp: Int64
    public var maxTimestamp: Int64
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var recordsCount: Int32

    /// Bytes the whole batch takes, header included.
    public var totalSize: Int { Self.logOverhead + Int(batchLength) }
    /// Wrapping: baseOffset is outside the CRC, and a damaged one near Int64.max must read as
    /// an offset out of sequence (which every reader checks), not trap.
    public var lastOffset: Int64 { baseOffset &+ Int64(lastOffsetDelta) }
    public var nextOffset: Int64 { lastOffset &+ 1 }
    public var compressionCodec: CompressionCodec? { CompressionCodec(rawValue: attributes & 0x7) }
    public var timestampType: TimestampType { attributes & 0x8 != 0 ? .logAppendTime : .createTime }
    public var isTransactional: Bool { attributes & 0x10 != 0 }
    public var isControl: Bool { attributes & 0x20 != 0 }
    public var hasProducerId: Bool { producerId >= 0 }
    /// The last sequence number in the batch (wrapping at Int32.max as Kafka does).
    public var lastSequence: Int32 {
        baseSequence < 0 ? -1 : Int32((Int64(baseSequence) + Int64(lastOffsetDelta)) % (Int64(Int32.max) + 1))
    }

    public init(
        baseOffset: Int64, batchLength: Int32, partitionLeaderEpoch: Int32 = -1, magic: Int8 = 2,
        crc: UInt32, attributes: Int16, lastOffsetDelta: Int32, baseTimestamp: Int64,
        maxTimestamp: Int64, producerId: Int64 = -1, producerEpoch: Int16 = -1,
        baseSequence: Int32 = -1, recordsCount: Int32
    ) {
        self.baseOffset = baseOffset
        self.batchLength = batchLength
        self.partitionLeaderEpoch = partitionLeaderEpoch
        self.magic = magic
        self.crc = crc
        self.attributes = attributes
        self.lastOffsetDelta = lastOffsetDelta
        self.baseTimestamp = baseTimestamp
        self.maxTimestamp = maxTimestamp
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.recordsCount = recordsCount
    }

    /// Reads the header fields from the first 61 bytes (no CRC check: see `RecordBatchValidator`).
    public init(parsing bytes: UnsafeRawBufferPointer) throws(RecordBatchError) {
        var reader = ByteReader(bytes)
        baseOffset = try reader.readInteger()
        batchLength = try reader.readInteger()
        partitionLeaderEpoch = try reader.readInteger()
        magic = try reader.readInteger()
        guard magic == 2 else { throw .unsupportedMagic(magic) }
        crc = try reader.readInteger()
        attributes = try reader.readInteger()
        lastOffsetDelta = try reader.readInteger()
        baseTimestamp = try reader.readInteger()
        maxTimestamp = try reader.readInteger()
        producerId = try reader.readInteger()
        producerEpoch = try reader.readInteger()
        baseSequence = try reader.readInteger()
        recordsCount = try reader.readInteger()
    }

    /// Appends the 61 header bytes.
    public func write(to writer: inout ByteWriter) {
        writer.writeInteger(baseOffset)
        writer.writeInteger(batchLength)
        writer.writeInteger(partitionLeaderEpoch)
        writer.writeInteger(magic)
        writer.writeInteger(crc)
        writer.writeInteger(attributes)
        writer.writeInteger(lastOffsetDelta)
        writer.writeInteger(baseTimestamp)
        writer.writeInteger(maxTimestamp)
        writer.writeInteger(producerId)
        writer.writeInteger(producerEpoch)
        writer.writeInteger(baseSequence)
        writer.writeInteger(recordsCount)
    }
}

extension RecordBatchHeader {
    /// Checks one whole batch at the start of `bytes`: framing, magic, the declared
    /// length against `maxBatchBytes` and the bytes present, and the CRC.
    /// Returns the parsed header; the batch occupies `bytes[0..<header.totalSize]`.
    public static func validate(
        _ bytes: UnsafeRawBufferPointer, maxBatchBytes: Int = Int(Int32.max)
    ) throws(RecordBatchError) -> RecordBatchHeader {
        guard bytes.count >= logOverhead else { throw .truncated(needed: logOverhead, available: bytes.count) }
        let length = Int32(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: Int32.self))
        guard length >= minimumBatchLength, Int(length) + logOverhead <= maxBatchBytes else {
            throw .invalidBatchLength(length)
        }
        let total = logOverhead + Int(length)
        guard bytes.count >= total else { throw .truncated(needed: total, available: bytes.count) }
        let header = try RecordBatchHeader(parsing: bytes)
        guard header.lastOffsetDelta >= 0, header.recordsCount >= 0 else {
            throw .invalidRecord("negative lastOffsetDelta or recordsCount")
        }
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[attributesOffset..<total]))
        guard computed == header.crc else { throw .crcMismatch(stored: header.crc, computed: computed) }
        return header
    }
}

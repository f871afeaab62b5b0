/// A decoded RecordBatch v2: the header and its records.
///
/// The log never stores this form: it keeps and serves the encoded bytes as received.
/// Decoding is for consumers, tools and validation.
public struct RecordBatch: Sendable, Equatable {
    /// Default cap on the decompressed size of one batch's records.
    public static let defaultMaxDecompressedBytes = 64 << 20

    public var header: RecordBatchHeader
    public var records: [Record]

    public init(header: RecordBatchHeader, records: [Record]) {
        self.header = header
        self.records = records
    }

    /// Decodes and validates the batch at the start of `bytes` (framing, CRC, codec,
    /// every record's lengths and the record count).
    public init(
        decoding bytes: UnsafeRawBufferPointer, maxDecompressedBytes: Int = RecordBatch.defaultMaxDecompressedBytes
    ) throws(RecordBatchError) {
        let header = try RecordBatchHeader.validate(bytes)
        let body = UnsafeRawBufferPointer(rebasing: bytes[RecordBatchHeader.size..<header.totalSize])
        guard let codec = header.compressionCodec, codec.isSupported else {
            throw .unsupportedCompression(header.attributes)
        }
        if codec == .none {
            records = try Self.readRecords(body, count: header.recordsCount)
        } else {
            let plain = try codec.decompress(body, limit: maxDecompressedBytes)
            records = try plain.withUnsafeBytes { raw in
                Result { () throws(RecordBatchError) in try Self.readRecords(raw, count: header.recordsCount) }
            }.get()
        }
        self.header = header
    }

    /// Decodes the batch at the start of `bytes` as `init(decoding:)` does, but builds only the
    /// records whose offsets `keep` picks, at most `limit` of them, and stops at the first
    /// record past `through`. A batch of millions of tiny records (an LZ4 body of 64 MiB holds
    /// 9 million) then costs its decompression and a walk, not millions of records in memory
    /// (about 60 bytes each, 8 times their stored size). The records walked past are checked
    /// for framing (their length and offset); those after the stop are not read (the batch's
    /// CRC was checked).
    public init(
        decoding bytes: UnsafeRawBufferPointer, keeping keep: (Int64) -> Bool, limit: Int = .max, through: Int64 = .max,
        maxDecompressedBytes: Int = RecordBatch.defaultMaxDecompressedBytes
    ) throws(RecordBatchError) {
        let header = try RecordBatchHeader.validate(bytes)
        let body = UnsafeRawBufferPointer(rebasing: bytes[RecordBatchHeader.size..<header.totalSize])
        guard let codec = header.compressionCodec, codec.isSupported else {
            throw .unsupportedCompression(header.attributes)
        }
        let pick = Pick(base: header.baseOffset, limit: limit, through: through)
        if codec == .none {
            records = try Self.readRecords(body, count: header.recordsCount, picking: pick, keep)
        } else {
            let plain = try codec.decompress(body, limit: maxDecompressedBytes)
            records = try plain.withUnsafeBytes { raw in
                Result { () throws(RecordBatchError) in try Self.readRecords(raw, count: header.recordsCount, picking: pick, keep) }
            }.get()
        }
        self.header = header
    }

    /// Where a partial decode stops (`init(decoding:keeping:limit:through:)`).
    private struct Pick {
        var base: Int64
        var limit: Int
        var through: Int64
    }

    /// Decodes a batch held in an array.
    public init(decoding bytes: [UInt8], maxDecompressedBytes: Int = RecordBatch.defaultMaxDecompressedBytes)
        throws(RecordBatchError)
    {
        self = try bytes.withUnsafeBytes { raw in
            Result { () throws(RecordBatchError) in
                try RecordBatch(decoding: raw, maxDecompressedBytes: maxDecompressedBytes)
            }
        }.get()
    }

    /// The smallest encoding of one record: 7 one-byte fields.
    static let minimumRecordSize = 7

    private static func readRecords(
        _ bytes: UnsafeRawBufferPointer, count: Int32, picking pick: Pick? = nil, _ keep: (Int64) -> Bool = { _ in true }
    ) throws(RecordBatchError) -> [Record] {
        guard Int(count) * minimumRecordSize <= bytes.count else {
            throw .invalidRecord("\(count) records cannot fit in \(bytes.count) bytes")
        }
        var reader = ByteReader(bytes)
        var records: [Record] = []
        records.reserveCapacity(min(Int(count), pick?.limit ?? 1024, 1024))  // the count is the sender's word
        for _ in 0..<count {
            guard let pick else {
                records.append(try Record.read(from: &reader))
                continue
            }
            // Its offset first (length, attributes, timestamp delta, offset delta), from a copy.
            var peek = reader
            let length = try peek.readVarint()
            guard length >= 0, Int(length) <= peek.readableBytes else {
                throw .invalidRecord("record length \(length) with \(peek.readableBytes) bytes left")
            }
            let end = peek.readerIndex + Int(length)
            _ = try peek.readInteger(as: Int8.self)
            _ = try peek.readVarlong()
            let offset = pick.base &+ Int64(try peek.readVarint())
            guard peek.readerIndex <= end else { throw .invalidRecord("record length \(length) disagrees with its fields") }
            if offset > pick.through { return records }
            if keep(offset) {
                records.append(try Record.read(from: &reader))
                if records.count >= pick.limit { return records }
            } else {
                try reader.skip(end - reader.readerIndex)
            }
        }
        guard reader.readableBytes == 0 else {
            throw .invalidRecord("\(reader.readableBytes) bytes after the last of \(count) records")
        }
        return records
    }

    /// The absolute offset of `record`.
    public func offset(of record: Record) -> Int64 { header.baseOffset &+ Int64(record.offsetDelta) }

    /// The timestamp a consumer sees for `record`: the batch's `maxTimestamp` under
    /// LogAppendTime, the producer's timestamp otherwise.
    public func timestamp(of record: Record) -> Int64 {
        // Wrapping, as Kafka's clients compute it: a rebuilt batch (a share fetch's trimmed copy)
        // may hold timestamps whose difference from its first does not fit.
        header.timestampType == .logAppendTime ? header.maxTimestamp : header.baseTimestamp &+ record.timestampDelta
    }
}

/// Builds the bytes of one RecordBatch v2, CRC included.
///
/// Records are encoded as they are added; `build()` fills in the header and compresses.
public struct RecordBatchBuilder: Sendable {
    public var baseOffset: Int64
    public var compression: CompressionCodec
    public var timestampType: TimestampType
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var isTransactional: Bool
    public var partitionLeaderEpoch: Int32

    private var writer: ByteWriter
    public private(set) var count: Int = 0
    private var baseTimestamp: Int64 = 0
    private var maxTimestamp: Int64 = -1

    public init(
        baseOffset: Int64 = 0, compression: CompressionCodec = .none, timestampType: TimestampType = .createTime,
        producerId: Int64 = -1, producerEpoch: Int16 = -1, baseSequence: Int32 = -1,
        isTransactional: Bool = false, partitionLeaderEpoch: Int32 = -1, capacity: Int = 1024
    ) {
        self.baseOffset = baseOffset
        self.compression = compression
        self.timestampType = timestampType
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.isTransactional = isTransactional
        self.partitionLeaderEpoch = partitionLeaderEpoch
        writer = ByteWriter(capacity: RecordBatchHeader.size + capacity)
        writer.bytes.append(contentsOf: repeatElement(0, count: RecordBatchHeader.size))
    }

    /// Bytes of the uncompressed batch so far.
    public var uncompressedSize: Int { writer.count }

    /// Adds a record with an absolute timestamp (ms since the epoch).
    public mutating func append(timestamp: Int64, key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader] = []) {
        if count == 0 { baseTimestamp = timestamp }
        maxTimestamp = Swift.max(maxTimestamp, timestamp)
        let offsetDelta = Int32(count)
        withOptionalBytes(key) { key in
            withOptionalBytes(value) { value in
                Record.write(
                    to: &writer, timestampDelta: timestamp &- baseTimestamp, offsetDelta: offsetDelta,
                    key: key, value: value, headers: headers)
            }
        }
        count += 1
    }

    /// The encoded batch. An empty builder is a programmer error.
    public func build() throws(RecordBatchError) -> [UInt8] { try buildWithHeader().bytes }

    /// The encoded batch and its header (CRC included): what `PartitionLog.append` takes as
    /// `validated`, for a batch it need not check again.
    public func buildWithHeader() throws(RecordBatchError) -> (bytes: [UInt8], header: RecordBatchHeader) {
        precondition(count > 0, "a RecordBatch needs at least one record")
        guard compression.isSupported else { throw .unsupportedCompression(compression.rawValue) }
        var attributes = compression.rawValue
        if timestampType == .logAppendTime { attributes |= 0x8 }
        if isTransactional { attributes |= 0x10 }

        var output: ByteWriter
        if compression != .none {
            let compressed = try writer.bytes.withUnsafeBytes { raw in
                Result { () throws(RecordBatchError) in
                    try compression.compress(UnsafeRawBufferPointer(rebasing: raw[RecordBatchHeader.size...]))
                }
            }.get()
            output = ByteWriter(capacity: RecordBatchHeader.size + compressed.count)
            output.bytes.append(contentsOf: repeatElement(0, count: RecordBatchHeader.size))
            output.writeBytes(compressed)
        } else {
            output = writer
        }
        var header = RecordBatchHeader(
            baseOffset: baseOffset, batchLength: Int32(output.count - RecordBatchHeader.logOverhead),
            partitionLeaderEpoch: partitionLeaderEpoch, crc: 0, attributes: attributes,
            lastOffsetDelta: Int32(count - 1), baseTimestamp: baseTimestamp, maxTimestamp: maxTimestamp,
            producerId: producerId, producerEpoch: producerEpoch, baseSequence: baseSequence,
            recordsCount: Int32(count))
        var headerWriter = ByteWriter(capacity: RecordBatchHeader.size)
        header.write(to: &headerWriter)
        output.bytes.replaceSubrange(0..<RecordBatchHeader.size, with: headerWriter.bytes)
        let crc = output.bytes.withUnsafeBytes {
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[RecordBatchHeader.attributesOffset...]))
        }
        output.setInteger(crc, at: RecordBatchHeader.crcOffset)
        header.crc = crc
        return (output.bytes, header)
    }
}

@inline(__always)
func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { body($0) }
}

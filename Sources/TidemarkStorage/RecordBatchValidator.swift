/// Checks that a RecordBatch v2 makes sense, not only that its bytes arrived intact: what
/// Kafka's LogValidator checks before a broker stores a client's batch. A valid CRC proves
/// the bytes were not damaged; it does not prove a consumer can read them.
///
/// Checked, in order (the first failure is reported):
/// - framing, magic, length and CRC-32C (`RecordBatchHeader.validate`);
/// - `lastOffsetDelta + 1 == recordsCount > 0`: the offsets the batch claims are the records
///   it has (a one-record batch cannot burn 2^31 offsets);
/// - no control batches and no transactional batches from clients (Tidemark has no
///   transactions); an idempotent batch (producerId >= 0) has a sequence >= 0;
/// - a supported codec, and the records decompress within `maxDecompressedBytes`;
/// - every record parses (lengths, varints, headers) and ends where its length says, the
///   records end exactly at the batch's end, record i has offsetDelta i;
/// - under CreateTime, every record's timestamp within `[now - before, now + after]`
///   (Kafka's message.timestamp.before.max.ms / message.timestamp.after.max.ms).
///
/// Corrected, not refused (as Kafka's LogValidator does): a client's batch for a CreateTime
/// topic (`nowMs` given) whose maxTimestamp is not its largest record timestamp (sarama 1.22
/// always sends -1), or that claims LogAppendTime, gets the right maxTimestamp and the
/// CreateTime type in the returned header (its timestamps are judged by the window either
/// way); whoever stores the batch writes them into the stored copy
/// (`PartitionLog.append(validated:)` rewrites the fields and the CRC).
///
/// Allocation-free for uncompressed batches: records are walked, not decoded.
public struct RecordBatchValidator: Sendable {
    /// Why a batch was refused, with Kafka's error for it.
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// Damaged or unframed bytes (Kafka: CORRUPT_MESSAGE).
        case corrupt(RecordBatchError)
        /// A well-framed batch whose contents are wrong (Kafka: INVALID_RECORD).
        case invalidRecord(String)
        /// A record timestamp outside the allowed window (Kafka: INVALID_TIMESTAMP).
        case invalidTimestamp(String)
        /// A codec this build cannot read.
        case unsupportedCompression(Int16)

        public var description: String {
            switch self {
            case .corrupt(let error): "corrupt batch: \(error)"
            case .invalidRecord(let message): "invalid record: \(message)"
            case .invalidTimestamp(let message): "invalid timestamp: \(message)"
            case .unsupportedCompression(let attributes): "unsupported compression codec \(attributes & 7)"
            }
        }
    }

    /// Largest window into the past a CreateTime timestamp may have (nil: unbounded, Kafka's default).
    public var timestampBeforeMaxMs: Int64?
    /// Largest window into the future (Kafka 4's default: one hour).
    public var timestampAfterMaxMs: Int64?
    public var maxDecompressedBytes: Int
    /// Control batches are refused unless they come from the broker itself.
    public var allowControlBatches = false

    public static let defaultTimestampAfterMaxMs: Int64 = 3_600_000

    public init(
        timestampBeforeMaxMs: Int64? = nil, timestampAfterMaxMs: Int64? = RecordBatchValidator.defaultTimestampAfterMaxMs,
        maxDecompressedBytes: Int = RecordBatch.defaultMaxDecompressedBytes
    ) {
        self.timestampBeforeMaxMs = timestampBeforeMaxMs
        self.timestampAfterMaxMs = timestampAfterMaxMs
        self.maxDecompressedBytes = maxDecompressedBytes
    }

    /// The CreateTime timestamps allowed at broker time `nowMs`.
    public func timestampWindow(nowMs: Int64) -> ClosedRange<Int64> {
        let low = timestampBeforeMaxMs.map { nowMs &- $0 } ?? .min
        let high = timestampAfterMaxMs.map { nowMs.addingReportingOverflow($0).overflow ? .max : nowMs + $0 } ?? .max
        return min(low, high)...high
    }

    /// Validates the batch at the start of `bytes` at broker time `nowMs` (nil: no timestamp
    /// window and no correction, as for stored data). Returns its header, with the maxTimestamp
    /// the batch should carry when `nowMs` is given.
    @discardableResult
    public func validate(_ bytes: UnsafeRawBufferPointer, nowMs: Int64?) throws(Failure) -> RecordBatchHeader {
        let header: RecordBatchHeader
        do { header = try RecordBatchHeader.validate(bytes) } catch { throw .corrupt(error) }
        try checkHeader(header)
        guard let codec = header.compressionCodec, codec.isSupported else { throw .unsupportedCompression(header.attributes) }
        let body = UnsafeRawBufferPointer(rebasing: bytes[RecordBatchHeader.size..<header.totalSize])
        let window = nowMs.map(timestampWindow)
        let largest: Int64?
        if codec == .none {
            largest = try Self.walkRecords(body, header: header, window: window)
        } else {
            let plain: [UInt8]
            do {
                try Self.checkProducedBody(body, codec: codec)
                plain = try codec.decompress(body, limit: maxDecompressedBytes)
            } catch { throw .invalidRecord("\(error)") }
            largest = try plain.withUnsafeBytes { raw in
                Result { () throws(Failure) in try Self.walkRecords(raw, header: header, window: window) }
            }.get()
        }
        var checked = header
        if nowMs != nil {
            checked.attributes &= ~0x8
            if let largest { checked.maxTimestamp = largest }
        }
        return checked
    }

    /// What a produced body must be beyond decoding, as Kafka's broker reads it: an LZ4 frame
    /// of independent blocks, a gzip stream (not a bare zlib one: Java's GZIPInputStream,
    /// sarama and kafka-python refuse those, though zlib reads both). Stored bodies are read
    /// without these checks.
    static func checkProducedBody(_ body: UnsafeRawBufferPointer, codec: CompressionCodec) throws(RecordBatchError) {
        switch codec {
        case .lz4: try LZ4Frame.checkIndependentBlocks(body)
        case .gzip:
            guard body.count >= 3, body[0] == 0x1F, body[1] == 0x8B, body[2] == 0x08 else {
                throw .corruptCompressedData("not a gzip stream (no gzip header): Kafka's clients cannot read it")
            }
        default: break
        }
    }

    /// The header-only rules (also applied by `tidemark verify` to stored batches).
    public func checkHeader(_ header: RecordBatchHeader) throws(Failure) {
        guard header.recordsCount > 0 else { throw .invalidRecord("batch declares \(header.recordsCount) records") }
        guard Int64(header.lastOffsetDelta) + 1 == Int64(header.recordsCount) else {
            throw .invalidRecord(
                "lastOffsetDelta \(header.lastOffsetDelta) does not match the record count \(header.recordsCount)")
        }
        if header.isControl && !allowControlBatches { throw .invalidRecord("clients may not write control batches") }
        if header.isTransactional { throw .invalidRecord("transactional batches are not supported") }
        if header.hasProducerId && header.baseSequence < 0 {
            throw .invalidRecord("idempotent batch (producer \(header.producerId)) without a sequence")
        }
    }

    /// Walks `count` records without building them: every length is checked, nothing copied.
    /// Returns the largest record timestamp (nil when one overflows: no window judged it).
    @discardableResult
    static func walkRecords(_ bytes: UnsafeRawBufferPointer, header: RecordBatchHeader, window: ClosedRange<Int64>?)
        throws(Failure) -> Int64?
    {
        do {
            return try walk(bytes, header: header, window: window)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .invalidRecord("\(error)")
        }
    }

    private static func walk(_ bytes: UnsafeRawBufferPointer, header: RecordBatchHeader, window: ClosedRange<Int64>?) throws
        -> Int64?
    {
        var reader = ByteReader(bytes)
        var largest: Int64? = .min
        for index in 0..<Int(header.recordsCount) {
            let length = try reader.readVarint()
            guard length > 0, Int(length) <= reader.readableBytes else {
                throw Failure.invalidRecord("record \(index) has length \(length) with \(reader.readableBytes) bytes left")
            }
            let end = reader.readerIndex + Int(length)
            _ = try reader.readInteger(as: Int8.self)
            let timestampDelta = try reader.readVarlong()
            let offsetDelta = try reader.readVarint()
            guard offsetDelta == Int32(index) else {
                throw Failure.invalidRecord("record \(index) has offset delta \(offsetDelta)")
            }
            let (timestamp, overflow) = header.baseTimestamp.addingReportingOverflow(timestampDelta)
            // A record without a timestamp (-1, NO_TIMESTAMP) is not checked, as in Kafka.
            if let window, overflow || timestamp != -1 {
                guard !overflow, window.contains(timestamp) else {
                    throw Failure.invalidTimestamp(
                        "record \(index) timestamp \(overflow ? "overflows" : "\(timestamp)") is outside [\(window.lowerBound), \(window.upperBound)]")
                }
            }
            largest = overflow ? nil : largest.map { max($0, timestamp) }
            try skipBytes(&reader, nullable: true)  // key
            try skipBytes(&reader, nullable: true)  // value
            let headerCount = try reader.readVarint()
            guard headerCount >= 0 else { throw Failure.invalidRecord("record \(index) has \(headerCount) headers") }
            for _ in 0..<headerCount {
                guard reader.readerIndex < end else { throw Failure.invalidRecord("record \(index): headers past its end") }
                try skipBytes(&reader, nullable: false)  // header key (never null)
                try skipBytes(&reader, nullable: true)  // header value
            }
            guard reader.readerIndex == end else {
                throw Failure.invalidRecord("record \(index): length \(length) disagrees with its fields")
            }
        }
        guard reader.readableBytes == 0 else {
            throw Failure.invalidRecord("\(reader.readableBytes) bytes after the last of \(header.recordsCount) records")
        }
        return largest
    }

    private static func skipBytes(_ reader: inout ByteReader, nullable: Bool) throws(RecordBatchError) {
        let length = try reader.readVarint()
        if length == -1 && nullable { return }
        guard length >= 0 else { throw .invalidRecord("length \(length)") }
        try reader.skip(Int(length))
    }
}

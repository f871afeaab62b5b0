import Foundation
import TidemarkStorage

/// Batches a well-behaved producer never sends, with valid CRCs: what `RecordBatchValidator`
/// must refuse and `tidemark verify` must flag.
public enum ForgedBatch {
    /// One encoded record: `lengthBytes` replaces the record's length varint when given.
    public static func record(
        offsetDelta: Int32 = 0, timestampDelta: Int64 = 0, value: [UInt8] = Array("v".utf8), lengthBytes: [UInt8]? = nil
    ) -> [UInt8] {
        var body = ByteWriter()
        body.writeInteger(Int8(0))
        body.writeVarlong(timestampDelta)
        body.writeVarint(offsetDelta)
        body.writeVarint(-1)  // null key
        body.writeVarint(Int32(value.count))
        body.writeBytes(value)
        body.writeVarint(0)  // no headers
        var out = ByteWriter()
        if let lengthBytes { out.writeBytes(lengthBytes) } else { out.writeVarint(Int32(body.bytes.count)) }
        out.writeBytes(body.bytes)
        return out.bytes
    }

    /// A batch with the given header fields around `records`, framed and checksummed.
    public static func batch(
        records: [UInt8], recordsCount: Int32 = 1, lastOffsetDelta: Int32? = nil, attributes: Int16 = 0,
        baseTimestamp: Int64 = 1_700_000_000_000, producerId: Int64 = -1, baseSequence: Int32 = -1
    ) -> [UInt8] {
        let header = RecordBatchHeader(
            baseOffset: 0, batchLength: Int32(RecordBatchHeader.size - RecordBatchHeader.logOverhead + records.count),
            crc: 0, attributes: attributes, lastOffsetDelta: lastOffsetDelta ?? (recordsCount - 1),
            baseTimestamp: baseTimestamp, maxTimestamp: baseTimestamp, producerId: producerId, producerEpoch: producerId >= 0 ? 0 : -1,
            baseSequence: baseSequence, recordsCount: recordsCount)
        var writer = ByteWriter()
        header.write(to: &writer)
        writer.writeBytes(records)
        var bytes = writer.bytes
        let crc = CRC32C.checksum(bytes[RecordBatchHeader.attributesOffset...])
        withUnsafeBytes(of: crc.bigEndian) { bytes.replaceSubrange(RecordBatchHeader.crcOffset..<(RecordBatchHeader.crcOffset + 4), with: $0) }
        return bytes
    }

    /// The malformed batches the outside robustness run found stored, by name.
    public static var refusedKinds: [(name: String, bytes: [UInt8])] {
        [
            ("record length varint overflow", batch(records: record(lengthBytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x7F]) )),
            ("control bit on a normal batch", batch(records: record(), attributes: 0x20)),
            ("lastOffsetDelta 2^31-1 on one record", batch(records: record(), lastOffsetDelta: Int32.max)),
            ("recordsCount 5 for one record", batch(records: record(), recordsCount: 5, lastOffsetDelta: 4)),
            ("offset delta 7 on the first record", batch(records: record(offsetDelta: 7))),
            ("transactional batch", batch(records: record(), attributes: 0x10, producerId: 5, baseSequence: 0)),
            ("idempotent batch without a sequence", batch(records: record(), producerId: 5, baseSequence: -1)),
            ("record shorter than its length", batch(records: record(lengthBytes: [0x7E]))),
        ]
    }
}

/// Byte surgery on a segment file, for damage a clean stop would not notice: a batch's base
/// offset is outside its CRC.
public enum SegmentSurgery {
    /// Positions of the batches of a segment file, walked by their length fields (bytes 8-11).
    public static func batchPositions(_ path: String) throws -> [Int] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var positions: [Int] = []
        var at = 0
        while at + 12 <= bytes.count {
            let length = bytes[(at + 8)..<(at + 12)].reduce(0) { $0 << 8 | Int($1) }
            guard length > 0 else { break }
            positions.append(at)
            at += 12 + length
        }
        return positions
    }

    /// Writes `offset` as the base offset (bytes 0-7, big-endian) of the batch at `position`.
    public static func setBaseOffset(_ path: String, position: Int, to offset: Int64) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(position))
        handle.write(Data(withUnsafeBytes(of: offset.bigEndian) { Array($0) }))
    }
}

/// A batch's records stored in another codec: what a broker does when a topic's
/// `compression.type` names a codec and a producer sent another (Kafka's LogValidator
/// recompresses such a batch before it is appended).
///
/// The records (the bytes after the 61-byte header) do not depend on the codec that wraps
/// them: their offset and timestamp deltas are relative to the header, so recompressing is
/// decompressing the body and compressing it again. The new batch keeps every header field
/// of `header` (the validated header: a corrected maxTimestamp and timestamp type included)
/// but three:
/// ```
/// batchLength  i32  (bytes 8-11)    the new body's size + 49
/// crc          u32  (bytes 17-20)   CRC-32C of bytes 21 to the end, computed again
/// attributes   i16  (bytes 21-22)   bits 0-2 = the new codec; the other bits kept
/// ```
/// so an idempotent producer's id, epoch and sequence, the record count and the offset
/// deltas are the ones it sent.
extension RecordBatchHeader {
    /// The batch at the start of `batch` (validated: `header` is its header) with its body
    /// in `codec`. Decompresses at most `maxDecompressedBytes`.
    public static func recompressed(
        _ batch: UnsafeRawBufferPointer, header: RecordBatchHeader, to codec: CompressionCodec, maxDecompressedBytes: Int
    ) throws(RecordBatchError) -> [UInt8] {
        try recompressedMeasured(batch, header: header, to: codec, maxDecompressedBytes: maxDecompressedBytes).batch
    }

    /// `recompressed`, with the size of the records it inflated (the work it did).
    public static func recompressedMeasured(
        _ batch: UnsafeRawBufferPointer, header: RecordBatchHeader, to codec: CompressionCodec, maxDecompressedBytes: Int
    ) throws(RecordBatchError) -> (batch: [UInt8], recordsBytes: Int) {
        guard let from = header.compressionCodec else { throw .unsupportedCompression(header.attributes) }
        let body = UnsafeRawBufferPointer(rebasing: batch[RecordBatchHeader.size..<header.totalSize])
        let plain = try from.decompress(body, limit: maxDecompressedBytes)
        let newBody = try plain.withUnsafeBytes { raw in Result { () throws(RecordBatchError) in try codec.compress(raw) } }.get()
        var rebuilt = header
        rebuilt.attributes = (header.attributes & ~0x7) | codec.rawValue
        rebuilt.batchLength = Int32(RecordBatchHeader.size - RecordBatchHeader.logOverhead + newBody.count)
        rebuilt.crc = 0
        var writer = ByteWriter(capacity: RecordBatchHeader.size + newBody.count)
        rebuilt.write(to: &writer)
        writer.writeBytes(newBody)
        let crc = writer.bytes.withUnsafeBytes {
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[RecordBatchHeader.attributesOffset...]))
        }
        writer.setInteger(crc, at: RecordBatchHeader.crcOffset)
        return (writer.bytes, plain.count)
    }
}

import CLZ4

/// LZ4 frame format (magic 04 22 4D 18), as Kafka's RecordBatch v2 uses it.
///
/// Frames are written like librdkafka's (flag byte 0x60: independent 64 KiB blocks, no
/// checksums); frames with content size (0x68) or block checksums (0x70) read as well.
public enum LZ4Frame {
    /// Compresses `input` into one frame.
    public static func compress(_ input: UnsafeRawBufferPointer) throws(RecordBatchError) -> [UInt8] {
        var preferences = LZ4F_preferences_t()
        preferences.frameInfo.blockSizeID = LZ4F_max64KB
        preferences.frameInfo.blockMode = LZ4F_blockIndependent
        preferences.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum
        preferences.frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum
        let bound = LZ4F_compressFrameBound(input.count, &preferences)
        var output = [UInt8](repeating: 0, count: bound)
        let written = output.withUnsafeMutableBytes { out in
            LZ4F_compressFrame(out.baseAddress, out.count, input.baseAddress, input.count, &preferences)
        }
        if LZ4F_isError(written) != 0 {
            throw .corruptCompressedData("LZ4F_compressFrame: " + String(cString: LZ4F_getErrorName(written)))
        }
        output.removeLast(output.count - written)
        return output
    }

    /// Refuses a frame whose blocks are linked (FLG bit 5, block independence, clear): Kafka's
    /// broker refuses them ("Dependent block stream is unsupported"), and Java's and sarama's
    /// consumers cannot read them, so a batch stored with one would stop those consumers at its
    /// offset for good. liblz4's and cramjam's defaults write them; librdkafka, Kafka's
    /// clients, kafka-python and aiokafka write independent blocks. Checked on produce only:
    /// a frame stored before still reads.
    ///
    /// Frame header: magic 04 22 4D 18, FLG (bits 7-6 version 01, 5 block independence,
    /// 4 block checksum, 3 content size, 2 content checksum, 0 dictionary id), BD, ...
    public static func checkIndependentBlocks(_ input: UnsafeRawBufferPointer) throws(RecordBatchError) {
        guard input.count >= 5, input[0] == 0x04, input[1] == 0x22, input[2] == 0x4D, input[3] == 0x18 else {
            throw .corruptCompressedData("not an LZ4 frame (its magic is missing)")
        }
        // Version 01, and the bits Kafka reads as reserved (1 and the dictionary id) clear, as
        // its reader requires.
        guard input[4] >> 6 == 1, input[4] & 0x03 == 0 else {
            throw .corruptCompressedData("LZ4 frame flags \(input[4]) Kafka's clients do not read (version 1, no dictionary id)")
        }
        guard input[4] & 0x20 != 0 else {
            throw .corruptCompressedData(
                "LZ4 frame with linked blocks, which Kafka's clients cannot read: write independent blocks (block_linked=False)")
        }
    }

    /// Decompresses one frame, refusing to produce more than `limit` bytes.
    ///
    /// The output grows as the frame decodes (starting from the declared content size when
    /// the frame has one, itself capped by `limit`), so a lying header cannot force a large
    /// allocation.
    public static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws(RecordBatchError) -> [UInt8] {
        var context: OpaquePointer?
        let created = LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))
        guard LZ4F_isError(created) == 0, let context else {
            throw .corruptCompressedData("cannot create an LZ4 decompression context")
        }
        defer { LZ4F_freeDecompressionContext(context) }

        guard let inputBase = input.baseAddress, input.count > 0 else {
            throw .corruptCompressedData("empty LZ4 frame")
        }
        var output = [UInt8]()
        var capacity = min(limit, max(4096, input.count * 4))
        var produced = 0
        var consumed = 0
        output = [UInt8](repeating: 0, count: capacity)
        while true {
            var sourceSize = input.count - consumed
            var destinationSize = capacity - produced
            let hint = output.withUnsafeMutableBytes { out in
                LZ4F_decompress(
                    context, out.baseAddress! + produced, &destinationSize,
                    inputBase + consumed, &sourceSize, nil)
            }
            if LZ4F_isError(hint) != 0 {
                throw .corruptCompressedData(String(cString: LZ4F_getErrorName(hint)))
            }
            consumed += sourceSize
            produced += destinationSize
            if hint == 0 { break }  // frame complete
            if consumed == input.count && destinationSize == 0 && produced < capacity {
                throw .corruptCompressedData("LZ4 frame ends before its end mark")
            }
            if produced == capacity {
                guard capacity < limit else { throw .decompressedSizeLimitExceeded(limit: limit) }
                capacity = min(limit, capacity * 2)
                output.append(contentsOf: repeatElement(0, count: capacity - output.count))
            }
        }
        if consumed != input.count {
            throw .corruptCompressedData("\(input.count - consumed) trailing bytes after the LZ4 frame")
        }
        output.removeLast(output.count - produced)
        return output
    }
}

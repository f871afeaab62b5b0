import CSnappy
import CZlib
import CZstd

extension CompressionCodec {
    /// The batch body (the records after the 61-byte header) compressed with this codec. `none`
    /// gives the bytes back.
    public func compress(_ input: UnsafeRawBufferPointer) throws(RecordBatchError) -> [UInt8] {
        switch self {
        case .none: Array(input)
        case .gzip: try Gzip.compress(input)
        case .snappy: try Snappy.compress(input)
        case .lz4: try LZ4Frame.compress(input)
        case .zstd: try Zstd.compress(input)
        }
    }

    /// A compressed batch body decompressed, refusing to produce more than `limit` bytes: the
    /// output grows as it decodes, so neither a lying size field nor a small body of zeros
    /// (a decompression bomb) makes more than `limit` bytes.
    public func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws(RecordBatchError) -> [UInt8] {
        switch self {
        case .none: Array(input)
        case .gzip: try Gzip.decompress(input, limit: limit)
        case .snappy: try Snappy.decompress(input, limit: limit)
        case .lz4: try LZ4Frame.decompress(input, limit: limit)
        case .zstd: try Zstd.decompress(input, limit: limit)
        }
    }
}

/// An output buffer that grows by doubling up to a limit, for decoders that write into it.
private struct GrowingOutput {
    var bytes: [UInt8]
    var produced = 0
    let limit: Int

    init(expected: Int, limit: Int) {
        self.limit = limit
        bytes = [UInt8](repeating: 0, count: min(limit, max(4096, expected)))
    }

    var isFull: Bool { produced == bytes.count }

    /// Doubles the room, or throws at the limit.
    mutating func grow() throws(RecordBatchError) {
        guard bytes.count < limit else { throw .decompressedSizeLimitExceeded(limit: limit) }
        bytes.append(contentsOf: repeatElement(0, count: min(limit, bytes.count * 2) - bytes.count))
    }

    consuming func finished() -> [UInt8] {
        bytes.removeLast(bytes.count - produced)
        return bytes
    }
}

/// gzip (RFC 1952), Kafka's codec 1: one gzip member, as Java's GZIPOutputStream and
/// librdkafka write it. Read with zlib's automatic header detection (a zlib stream reads too);
/// bytes after the member are refused.
enum Gzip {
    static func compress(_ input: UnsafeRawBufferPointer) throws(RecordBatchError) -> [UInt8] {
        var stream = z_stream()
        // windowBits 15 + 16: a gzip header and trailer around the deflate stream.
        guard deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
            Int32(MemoryLayout<z_stream>.size)) == Z_OK
        else { throw .corruptCompressedData("cannot start a gzip stream") }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 32)
        let status = output.withUnsafeMutableBytes { out in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(input.count)
            stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(out.count)
            return deflate(&stream, Z_FINISH)
        }
        guard status == Z_STREAM_END else { throw .corruptCompressedData("gzip compression failed (\(status))") }
        output.removeLast(output.count - Int(stream.total_out))
        return output
    }

    static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws(RecordBatchError) -> [UInt8] {
        guard input.count > 0 else { throw .corruptCompressedData("empty gzip body") }
        var stream = z_stream()
        // windowBits 15 + 32: a gzip or zlib header, detected.
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .corruptCompressedData("cannot start a gzip stream")
        }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        var output = GrowingOutput(expected: input.count * 4, limit: limit)
        while true {
            let produced = output.produced
            let status = output.bytes.withUnsafeMutableBytes { out in
                stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self) + produced
                stream.avail_out = uInt(out.count - produced)
                return inflate(&stream, Z_NO_FLUSH)
            }
            output.produced = output.bytes.count - Int(stream.avail_out)
            if status == Z_STREAM_END { break }
            guard status == Z_OK || status == Z_BUF_ERROR else {
                let message = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                throw .corruptCompressedData("gzip: \(message)")
            }
            if output.isFull {
                try output.grow()
            } else if stream.avail_in == 0 || status == Z_BUF_ERROR {
                throw .corruptCompressedData("gzip stream ends before its end")
            }
        }
        if stream.avail_in != 0 { throw .corruptCompressedData("\(stream.avail_in) trailing bytes after the gzip stream") }
        return output.finished()
    }
}

/// zstd (RFC 8878), Kafka's codec 4: one or more frames. The decoder's window is capped at
/// 2^27 bytes, zstd's own default limit, which Kafka's broker reads under: Java producers at
/// levels 20-22 stream frames with windows of 2^25-2^27 (they were refused at 2^24). A frame
/// that declares a larger one is refused rather than allocated for; the window's memory is
/// held by one decompression at a time on each of the serial executors that decompress.
enum Zstd {
    static let windowLogMax: Int32 = 27

    static func compress(_ input: UnsafeRawBufferPointer) throws(RecordBatchError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
        let written = output.withUnsafeMutableBytes { out in
            ZSTD_compress(out.baseAddress, out.count, input.baseAddress, input.count, 3)
        }
        guard ZSTD_isError(written) == 0 else {
            throw .corruptCompressedData("zstd compression failed: " + String(cString: ZSTD_getErrorName(written)))
        }
        output.removeLast(output.count - written)
        return output
    }

    static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws(RecordBatchError) -> [UInt8] {
        guard input.count > 0 else { throw .corruptCompressedData("empty zstd body") }
        guard let context = ZSTD_createDCtx() else { throw .corruptCompressedData("cannot create a zstd context") }
        defer { ZSTD_freeDCtx(context) }
        _ = ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, windowLogMax)
        var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var output = GrowingOutput(expected: input.count * 4, limit: limit)
        while true {
            let produced = output.produced
            let (hint, written) = output.bytes.withUnsafeMutableBytes { out in
                var destination = ZSTD_outBuffer(dst: out.baseAddress! + produced, size: out.count - produced, pos: 0)
                let hint = ZSTD_decompressStream(context, &destination, &source)
                return (hint, destination.pos)
            }
            guard ZSTD_isError(hint) == 0 else {
                throw .corruptCompressedData("zstd: " + String(cString: ZSTD_getErrorName(hint)))
            }
            output.produced += written
            if hint == 0 {
                // A frame is done and flushed; another may follow.
                if source.pos == source.size { break }
            } else if output.isFull {
                try output.grow()
            } else if source.pos == source.size {
                // Room left, nothing more to read, the frame not done.
                throw .corruptCompressedData("zstd frame ends before its end")
            }
        }
        return output.finished()
    }
}

/// snappy, Kafka's codec 2, in the framing Java clients write (xerial's SnappyOutputStream:
/// the magic 82 'SNAPPY' 00, two big-endian Int32 versions, then blocks of a big-endian Int32
/// length and a raw snappy block), which this writes too; a body without the magic is read as
/// one raw snappy block, as some clients write it.
enum Snappy {
    static let magic: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00]
    static let headerSize = 16
    /// Input per block, as xerial writes them.
    static let blockSize = 32 << 10
    /// Above what a raw block can decode to per byte of it (64 from a 3-byte copy).
    static let maxRatio = 24

    static func compress(_ input: UnsafeRawBufferPointer) throws(RecordBatchError) -> [UInt8] {
        var output = magic + [0, 0, 0, 1, 0, 0, 0, 1]
        var start = 0
        repeat {
            let block = UnsafeRawBufferPointer(rebasing: input[start..<min(input.count, start + blockSize)])
            var length = snappy_max_compressed_length(block.count)
            var compressed = [UInt8](repeating: 0, count: length)
            let status = compressed.withUnsafeMutableBytes { out in
                snappy_compress(
                    block.baseAddress?.assumingMemoryBound(to: CChar.self), block.count,
                    out.baseAddress!.assumingMemoryBound(to: CChar.self), &length)
            }
            guard status == SNAPPY_OK else { throw .corruptCompressedData("snappy compression failed") }
            output += withUnsafeBytes(of: UInt32(length).bigEndian, Array.init)
            output += compressed[..<length]
            start += block.count
        } while start < input.count
        return output
    }

    static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws(RecordBatchError) -> [UInt8] {
        guard input.count >= headerSize, input.prefix(magic.count).elementsEqual(magic) else {
            var output: [UInt8] = []
            try appendBlock(input, to: &output, limit: limit)
            return output
        }
        var output: [UInt8] = []
        var position = headerSize
        while position < input.count {
            guard input.count - position >= 4 else { throw .corruptCompressedData("snappy block length cut off") }
            let length = Int(input[position..<(position + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            position += 4
            guard length <= input.count - position else { throw .corruptCompressedData("snappy block runs past the body") }
            try appendBlock(UnsafeRawBufferPointer(rebasing: input[position..<(position + length)]), to: &output, limit: limit)
            position += length
        }
        return output
    }

    /// One raw snappy block decoded onto `output`, its declared size checked against what
    /// `limit` leaves first.
    private static func appendBlock(_ block: UnsafeRawBufferPointer, to output: inout [UInt8], limit: Int) throws(RecordBatchError) {
        guard let base = block.baseAddress?.assumingMemoryBound(to: CChar.self), block.count > 0 else {
            throw .corruptCompressedData("empty snappy block")
        }
        var size = 0
        guard snappy_uncompressed_length(base, block.count, &size) == SNAPPY_OK else {
            throw .corruptCompressedData("snappy block with an invalid length")
        }
        guard size <= limit - output.count else { throw .decompressedSizeLimitExceeded(limit: limit) }
        // No snappy element yields more than 22 bytes per byte (a 3-byte copy of 64), so a
        // declared size past that is a lie: refused before its memory is taken and zeroed (a
        // 73-byte body made 64 MiB of it, on the event loop that checks snappy batches).
        guard size <= block.count * Self.maxRatio else {
            throw .corruptCompressedData("snappy block of \(block.count) bytes declares \(size) bytes, more than it can hold")
        }
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: size))
        var written = size
        let status = output.withUnsafeMutableBytes { out in
            snappy_uncompress(base, block.count, (out.baseAddress! + start).assumingMemoryBound(to: CChar.self), &written)
        }
        guard status == SNAPPY_OK, written == size else { throw .corruptCompressedData("snappy block does not decode") }
    }
}

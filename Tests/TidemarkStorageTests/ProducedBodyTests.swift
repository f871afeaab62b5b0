import CZstd
import TestSupport
import Testing

@testable import TidemarkStorage

/// Compressed bodies as Kafka's broker takes them from producers (found by an outside hunt
/// with real clients): refused where Kafka's readers refuse them and its consumers could not
/// read them back, taken where Kafka takes them, and never a large allocation on a lie.
@Suite struct ProducedBodyTests {
    /// A batch of `count` records whose body is `framing` of the plain records, with `codec`.
    static func batch(_ codec: CompressionCodec, records count: Int = 300, framing: ([UInt8]) -> [UInt8]) throws -> [UInt8] {
        var builder = RecordBatchBuilder()
        for i in 0..<count { builder.append(timestamp: 1_700_000_000_000, key: Array("k\(i)".utf8), value: Array(repeating: UInt8(i & 0xFF), count: 300)) }
        let plainBytes = try builder.build()
        var header = try RecordBatch(decoding: plainBytes).header
        let body = framing(Array(plainBytes[RecordBatchHeader.size...]))
        header.attributes = Int16(codec.rawValue)
        header.batchLength = Int32(RecordBatchHeader.size - RecordBatchHeader.logOverhead + body.count)
        var writer = ByteWriter()
        header.write(to: &writer)
        writer.writeBytes(body)
        writer.setInteger(CRC32C.checksum(writer.bytes[RecordBatchHeader.attributesOffset...]), at: RecordBatchHeader.crcOffset)
        return writer.bytes
    }

    static func validate(_ bytes: [UInt8]) throws {
        _ = try bytes.withUnsafeBytes { raw in
            try Result { () throws(RecordBatchValidator.Failure) in try RecordBatchValidator().validate(raw, nowMs: 1_700_000_000_000) }.get()
        }
    }

    static func compressed(_ codec: CompressionCodec, _ plain: [UInt8]) throws -> [UInt8] {
        try plain.withUnsafeBytes { raw in try Result { () throws(RecordBatchError) in try codec.compress(raw) }.get() }
    }

    /// LZ4 frames with linked blocks (liblz4's and cramjam's default) were stored, and sarama
    /// then failed on every fetch of the partition ("block dependency not supported"); Kafka
    /// refuses them. Stored ones still read.
    @Test func linkedLZ4BlocksAreRefusedOnProduce() throws {
        let linked = try Self.batch(.lz4) { LZ4FrameTests.frame($0, contentSize: false, blockChecksum: false, linked: true) }
        #expect(linked[RecordBatchHeader.size + 4] & 0x20 == 0)
        #expect { try Self.validate(linked) } throws: { "\($0)".contains("linked blocks") }
        #expect(try RecordBatch(decoding: linked).records.count == 300)
        try Self.validate(try Self.batch(.lz4) { LZ4FrameTests.frame($0, contentSize: false, blockChecksum: false) })
    }

    /// A zlib stream sent under the gzip codec was stored (zlib reads either header), and
    /// sarama and kafka-python could not read it; Java's GZIPInputStream refuses it.
    @Test func zlibStreamsAreNotGzip() throws {
        let gzip = try Self.batch(.gzip) { try! Self.compressed(.gzip, $0) }
        try Self.validate(gzip)
        let zlib = try Self.batch(.gzip) { plain in
            // The same deflate data between a zlib header and an Adler-32 trailer.
            let member = try! Self.compressed(.gzip, plain)
            var (a, b): (UInt32, UInt32) = (1, 0)
            for byte in plain {
                a = (a + UInt32(byte)) % 65521
                b = (b + a) % 65521
            }
            return [0x78, 0x9C] + member[10..<(member.count - 8)] + withUnsafeBytes(of: (b << 16 | a).bigEndian, Array.init)
        }
        #expect(try RecordBatch(decoding: zlib).records.count == 300)
        #expect { try Self.validate(zlib) } throws: { "\($0)".contains("not a gzip stream") }
    }

    /// A raw snappy block declaring 64 MiB in 13 bytes was given 64 MiB of zeroed memory
    /// before it failed to decode, on the event loop that checks snappy batches.
    @Test func aSnappyBlockCannotDeclareMoreThanItHolds() throws {
        var lie: [UInt8] = []
        var size = 64 << 20
        while size >= 0x80 {
            lie.append(UInt8(size & 0x7F) | 0x80)
            size >>= 7
        }
        lie.append(UInt8(size))
        lie += [0x00, 1, 2, 3, 4, 5, 6, 7]
        #expect { _ = try lie.withUnsafeBytes { try CompressionCodec.snappy.decompress($0, limit: 1 << 30) } } throws: {
            "\($0)".contains("declares")
        }
        // Real blocks, however compressible, are within the bound.
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        let packed = try Self.compressed(.snappy, zeros)
        #expect(try packed.withUnsafeBytes { try CompressionCodec.snappy.decompress($0, limit: 4 << 20) } == zeros)
    }

    /// zstd frames with windows up to 2^27 (Java producers stream them at levels 20-22) are
    /// taken, as Kafka's broker takes them; they were refused as "corrupt" past 2^24.
    @Test(arguments: [Int32(25), 27])
    func zstdWindowsKafkaTakesAreTaken(windowLog: Int32) throws {
        let plain = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let frame = Self.streamedZstd(plain, windowLog: windowLog)
        #expect(try frame.withUnsafeBytes { try CompressionCodec.zstd.decompress($0, limit: 1 << 20) } == plain)
        #expect(throws: RecordBatchError.self) {
            try Self.streamedZstd(plain, windowLog: 28).withUnsafeBytes { try CompressionCodec.zstd.decompress($0, limit: 1 << 20) }
        }
    }

    /// A frame written as a stream of unknown size, so its header declares the window.
    static func streamedZstd(_ plain: [UInt8], windowLog: Int32) -> [UInt8] {
        let context = ZSTD_createCCtx()!
        defer { ZSTD_freeCCtx(context) }
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_windowLog, windowLog)
        var output = [UInt8](repeating: 0, count: ZSTD_compressBound(plain.count) + 1024)
        var written = 0
        plain.withUnsafeBytes { raw in
            output.withUnsafeMutableBytes { out in
                var source = ZSTD_inBuffer(src: raw.baseAddress, size: raw.count, pos: 0)
                var destination = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                _ = ZSTD_compressStream2(context, &destination, &source, ZSTD_e_continue)
                while ZSTD_compressStream2(context, &destination, &source, ZSTD_e_end) != 0 {}
                written = destination.pos
            }
        }
        return Array(output[..<written])
    }
}

import TestSupport
import Testing

@testable import TidemarkStorage

/// The codecs of `Codecs.swift` on bodies a client can send: cut, garbled, a bomb, and the
/// forms real clients write.
@Suite struct CodecTests {
    static let compressed: [CompressionCodec] = [.gzip, .snappy, .lz4, .zstd]

    static func body(_ size: Int) -> [UInt8] {
        var rng = SeededGenerator(seed: UInt64(size))
        // Half repetitive, half random: compressible, and not only zeros.
        return (0..<size).map { $0 % 2 == 0 ? UInt8(truncatingIfNeeded: $0 / 7) : UInt8.random(in: 0...255, using: &rng) }
    }

    static func compress(_ codec: CompressionCodec, _ bytes: [UInt8]) throws -> [UInt8] {
        try bytes.withUnsafeBytes { raw in try Result { () throws(RecordBatchError) in try codec.compress(raw) }.get() }
    }

    static func decompress(_ codec: CompressionCodec, _ bytes: [UInt8], limit: Int = 64 << 20) throws -> [UInt8] {
        try bytes.withUnsafeBytes { raw in try Result { () throws(RecordBatchError) in try codec.decompress(raw, limit: limit) }.get() }
    }

    @Test(arguments: compressed, [1, 1000, 200_000])
    func roundTrips(codec: CompressionCodec, size: Int) throws {
        let plain = Self.body(size)
        #expect(try Self.decompress(codec, try Self.compress(codec, plain)) == plain)
    }

    /// A body cut anywhere, or with a byte changed, is an error (never a trap, a hang, or
    /// records made up), whatever the codec.
    @Test(arguments: compressed)
    func cutOrGarbledBodiesAreErrors(codec: CompressionCodec) throws {
        let plain = Self.body(100_000)
        let packed = try Self.compress(codec, plain)
        for cut in [1, 5, packed.count / 2, packed.count - 1] {
            #expect(throws: RecordBatchError.self) { try Self.decompress(codec, Array(packed[..<cut])) }
        }
        #expect(throws: RecordBatchError.self) { try Self.decompress(codec, []) }
        #expect(throws: RecordBatchError.self) { try Self.decompress(codec, [UInt8](repeating: 0xA5, count: 64)) }
        // Bytes after the stream are refused (lz4, gzip), or read as a further frame (zstd) or
        // block (snappy) that does not decode.
        #expect(throws: RecordBatchError.self) { try Self.decompress(codec, packed + [1, 2, 3, 4, 5, 6, 7]) }
    }

    /// 16 MiB of zeros compresses to kilobytes: decoded under a 1 MiB limit, it stops there.
    @Test(arguments: compressed)
    func aBombStopsAtTheLimit(codec: CompressionCodec) throws {
        let packed = try Self.compress(codec, [UInt8](repeating: 0, count: 16 << 20))
        #expect(packed.count < 1 << 20)
        #expect(throws: RecordBatchError.decompressedSizeLimitExceeded(limit: 1 << 20)) {
            try Self.decompress(codec, packed, limit: 1 << 20)
        }
    }

    /// Snappy as Java clients frame it (xerial: the magic, versions, then length-prefixed
    /// blocks of 32 KiB of input), which `compress` writes, and as one raw block, which some
    /// clients send: both read.
    @Test func snappyReadsJavasFramingAndRawBlocks() throws {
        let plain = Self.body(100_000)
        let framed = try Self.compress(.snappy, plain)
        #expect(Array(framed[..<8]) == [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00])
        #expect(Array(framed[8..<16]) == [0, 0, 0, 1, 0, 0, 0, 1])
        // A raw block: the framing of a body of one block taken off.
        let small = Self.body(1000)
        let one = try Self.compress(.snappy, small)
        let raw = Array(one[20...])
        #expect(Int(one[16..<20].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) == raw.count)
        #expect(try Self.decompress(.snappy, raw) == small)
        #expect(try Self.decompress(.snappy, framed) == plain)
    }

    /// gzip reads one member; zstd, every frame of the body.
    @Test func zstdReadsConcatenatedFrames() throws {
        let a = Self.body(5000)
        let b = Self.body(7000)
        #expect(try Self.decompress(.zstd, try Self.compress(.zstd, a) + Self.compress(.zstd, b)) == a + b)
    }
}

import TestSupport
import Testing
@testable import TidemarkStorage

/// `RecordBatchHeader.recompressed`: a batch's records in another codec, every header field
/// but the codec bits, length and CRC kept (the layout in Recompression.swift).
@Suite struct RecompressionTests {
    @Test(arguments: CompressionCodec.allCases)
    func aBatchReadsTheSameInEveryCodec(from source: CompressionCodec) throws {
        var rng = SeededGenerator(seed: 77 &+ UInt64(source.rawValue))
        let samples = RecordBatchTests.randomSamples(count: 50, rng: &rng)
        var builder = RecordBatchBuilder(
            baseOffset: 0, compression: source, timestampType: .logAppendTime, producerId: 42, producerEpoch: 3,
            baseSequence: 17, partitionLeaderEpoch: 5)
        for s in samples { builder.append(timestamp: s.timestamp, key: s.key, value: s.value, headers: s.headers) }
        let original = try builder.build()
        let header = try original.withUnsafeBytes { raw in try RecordBatchHeader.validate(raw) }
        let before = try RecordBatch(decoding: original)

        for target in CompressionCodec.allCases {
            let again = try original.withUnsafeBytes { raw in
                try RecordBatchHeader.recompressed(raw, header: header, to: target, maxDecompressedBytes: 1 << 20)
            }
            // Framing and CRC hold; the header is the original's but for codec, length and CRC.
            let rebuilt = try again.withUnsafeBytes { raw in try RecordBatchHeader.validate(raw) }
            #expect(rebuilt.totalSize == again.count)
            #expect(rebuilt.compressionCodec == target)
            #expect(rebuilt.attributes & ~0x7 == header.attributes & ~0x7, "timestamp type and other bits kept")
            var expected = header
            expected.attributes = rebuilt.attributes
            expected.batchLength = rebuilt.batchLength
            expected.crc = rebuilt.crc
            #expect(rebuilt == expected)
            // The same records, in the same order, with the same offsets and timestamps.
            let after = try RecordBatch(decoding: again)
            #expect(after.records == before.records)
            if target == source { #expect(again == original) }
        }
    }

    /// Decompressing for it is bounded, as reading is.
    @Test func aRecompressionKeepsToItsDecompressionLimit() throws {
        var builder = RecordBatchBuilder(compression: .zstd)
        builder.append(timestamp: 1, key: nil, value: [UInt8](repeating: 0, count: 100_000))
        let bytes = try builder.build()
        let header = try bytes.withUnsafeBytes { raw in try RecordBatchHeader.validate(raw) }
        #expect(throws: RecordBatchError.self) {
            try bytes.withUnsafeBytes { raw in
                try RecordBatchHeader.recompressed(raw, header: header, to: .gzip, maxDecompressedBytes: 10_000)
            }
        }
    }
}

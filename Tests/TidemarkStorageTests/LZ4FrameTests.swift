import TestSupport
import CLZ4
import Testing
@testable import TidemarkStorage

/// LZ4 frames as the Kafka clients write them: librdkafka 0x60 (independent blocks),
/// kafka-python 0x68 (+ content size), aiokafka 0x70 (+ block checksums).
@Suite struct LZ4FrameTests {
    static func frame(_ input: [UInt8], contentSize: Bool, blockChecksum: Bool, linked: Bool = false) -> [UInt8] {
        var preferences = LZ4F_preferences_t()
        preferences.frameInfo.blockMode = linked ? LZ4F_blockLinked : LZ4F_blockIndependent
        preferences.frameInfo.blockSizeID = LZ4F_max64KB
        preferences.frameInfo.contentSize = contentSize ? UInt64(input.count) : 0
        preferences.frameInfo.blockChecksumFlag = blockChecksum ? LZ4F_blockChecksumEnabled : LZ4F_noBlockChecksum
        var output = [UInt8](repeating: 0, count: LZ4F_compressFrameBound(input.count, &preferences))
        let written = input.withUnsafeBytes { raw in
            output.withUnsafeMutableBytes { out in
                LZ4F_compressFrame(out.baseAddress, out.count, raw.baseAddress, raw.count, &preferences)
            }
        }
        precondition(LZ4F_isError(written) == 0)
        return Array(output[..<written])
    }

    /// Re-wraps the records of an uncompressed batch in `frame` as an LZ4 batch.
    static func lz4Batch(records count: Int, framing: ([UInt8]) -> [UInt8]) throws -> (bytes: [UInt8], plain: RecordBatch) {
        var builder = RecordBatchBuilder()
        for i in 0..<count { builder.append(timestamp: Int64(i), key: Array("k\(i)".utf8), value: Array(repeating: UInt8(i & 0xFF), count: 200)) }
        let plainBytes = try builder.build()
        let plain = try RecordBatch(decoding: plainBytes)
        var writer = ByteWriter()
        var header = plain.header
        let body = framing(Array(plainBytes[RecordBatchHeader.size...]))
        header.attributes = CompressionCodec.lz4.rawValue
        header.batchLength = Int32(RecordBatchHeader.size - RecordBatchHeader.logOverhead + body.count)
        header.write(to: &writer)
        writer.writeBytes(body)
        let crc = CRC32C.checksum(writer.bytes[RecordBatchHeader.attributesOffset...])
        writer.setInteger(crc, at: RecordBatchHeader.crcOffset)
        return (writer.bytes, plain)
    }

    @Test(arguments: [(false, false, UInt8(0x60)), (true, false, 0x68), (false, true, 0x70)])
    func clientFrameFlavoursDecode(contentSize: Bool, blockChecksum: Bool, flag: UInt8) throws {
        let (bytes, plain) = try Self.lz4Batch(records: 1500) {
            Self.frame($0, contentSize: contentSize, blockChecksum: blockChecksum)
        }
        #expect(bytes[RecordBatchHeader.size + 4] == flag)
        let decoded = try RecordBatch(decoding: bytes)
        #expect(decoded.records == plain.records)
    }

    @Test func ourFramesUseLibrdkafkasFlags() throws {
        var builder = RecordBatchBuilder(compression: .lz4)
        builder.append(timestamp: 0, key: nil, value: Array(repeating: 1, count: 1000))
        let bytes = try builder.build()
        #expect(Array(bytes[61..<65]) == [0x04, 0x22, 0x4D, 0x18])
        #expect(bytes[65] == 0x60)
    }

    @Test func damagedFramesAreErrorsNotCrashes() throws {
        let input = (0..<40_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let good = Self.frame(input, contentSize: false, blockChecksum: true)
        #expect(try good.withUnsafeBytes { try LZ4Frame.decompress($0, limit: 1 << 20) } == input)
        var rng = SeededGenerator(seed: 99)
        for _ in 0..<100 {
            var bad = good
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: bad = Array(bad[..<Int.random(in: 0..<bad.count, using: &rng)])
            case 1: bad[Int.random(in: 0..<bad.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
            default: bad += rng.bytes(Int.random(in: 1...10, using: &rng))
            }
            // Either it fails with a typed error or (a flip the format cannot see) decodes to
            // something bounded; it never crashes.
            if let out = try? bad.withUnsafeBytes({ try LZ4Frame.decompress($0, limit: 1 << 20) }) {
                #expect(out.count <= 1 << 20)
            }
        }
        // A frame claiming a huge content size does not allocate it.
        var lying = Self.frame(input, contentSize: true, blockChecksum: false)
        lying.replaceSubrange(6..<14, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0])
        #expect(throws: RecordBatchError.self) { try lying.withUnsafeBytes { try LZ4Frame.decompress($0, limit: 1 << 20) } }
    }
}

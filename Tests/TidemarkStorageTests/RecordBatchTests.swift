import TestSupport
import Testing
@testable import TidemarkStorage

@Suite struct RecordBatchTests {
    struct Sample: Equatable {
        var timestamp: Int64
        var key: [UInt8]?
        var value: [UInt8]?
        var headers: [RecordHeader]
    }

    static func randomSamples(count: Int, rng: inout SeededGenerator) -> [Sample] {
        let base: Int64 = 1_700_000_000_000
        return (0..<count).map { i in
            func field() -> [UInt8]? {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: return nil
                case 1: return []
                default: return rng.bytes(Int.random(in: 1...300, using: &rng))
                }
            }
            let headerCount = Int.random(in: 0...3, using: &rng)
            let headers = (0..<headerCount).map { h in
                RecordHeader(key: h == 0 ? "" : "h\(h)-ü", value: field())
            }
            return Sample(
                timestamp: base + Int64(Int.random(in: -5_000...5_000, using: &rng)), key: field(), value: field(),
                headers: headers)
        }
    }

    static func roundTrip(_ samples: [Sample], compression: CompressionCodec, baseOffset: Int64 = 0) throws {
        var builder = RecordBatchBuilder(
            baseOffset: baseOffset, compression: compression, producerId: 42, producerEpoch: 3, baseSequence: 17)
        for s in samples { builder.append(timestamp: s.timestamp, key: s.key, value: s.value, headers: s.headers) }
        let bytes = try builder.build()
        let batch = try RecordBatch(decoding: bytes)
        #expect(batch.header.totalSize == bytes.count)
        #expect(batch.header.compressionCodec == compression)
        #expect(batch.header.recordsCount == Int32(samples.count))
        #expect(batch.header.lastOffsetDelta == Int32(samples.count - 1))
        #expect(batch.header.producerId == 42 && batch.header.producerEpoch == 3 && batch.header.baseSequence == 17)
        #expect(batch.header.maxTimestamp == samples.map(\.timestamp).max())
        #expect(batch.header.baseTimestamp == samples[0].timestamp)
        let decoded = batch.records.map {
            Sample(timestamp: batch.timestamp(of: $0), key: $0.key, value: $0.value, headers: $0.headers)
        }
        #expect(decoded == samples)
        #expect(batch.records.enumerated().allSatisfy { batch.offset(of: $1) == baseOffset + Int64($0) })
    }

    @Test(arguments: CompressionCodec.allCases, [1, 2, 100, 10_000])
    func seededRoundTrips(compression: CompressionCodec, count: Int) throws {
        var rng = SeededGenerator(seed: UInt64(count) &* 31 &+ UInt64(compression.rawValue))
        try Self.roundTrip(Self.randomSamples(count: count, rng: &rng), compression: compression, baseOffset: 1234)
    }

    @Test func nullAndEmptyStayDistinct() throws {
        let samples = [
            Sample(timestamp: 1, key: nil, value: nil, headers: []),
            Sample(timestamp: 2, key: [], value: [], headers: [RecordHeader(key: "a", value: nil)]),
            Sample(timestamp: 3, key: [0], value: nil, headers: [RecordHeader(key: "a", value: [])]),
        ]
        try Self.roundTrip(samples, compression: .none)
        try Self.roundTrip(samples, compression: .lz4)
    }

    /// A header key that is not UTF-8 reads with U+FFFD in `key` and its bytes kept, and is
    /// written back as it came: a copy of the record (replay, dead letters) is byte for byte.
    /// Copies rewrote such keys with U+FFFD.
    @Test func aHeaderKeyThatIsNotUTF8IsCopiedAsItCame() throws {
        var odd = RecordHeader(key: "", value: [1])
        odd.rawKey = [0x68, 0xFF, 0xFE, 0x6B]
        var builder = RecordBatchBuilder()
        builder.append(timestamp: 5, key: nil, value: [9], headers: [odd, RecordHeader(key: "plain", value: nil)])
        let original = try builder.build()
        let decoded = try RecordBatch(decoding: original).records[0]
        #expect(decoded.headers[0].rawKey == [0x68, 0xFF, 0xFE, 0x6B] && decoded.headers[0].key == "h\u{FFFD}\u{FFFD}k")
        #expect(decoded.headers[1].rawKey == nil && decoded.headers[1].key == "plain")
        var copy = RecordBatchBuilder()
        copy.append(timestamp: 5, key: decoded.key, value: decoded.value, headers: decoded.headers)
        #expect(try copy.build() == original)
    }

    /// The 61-byte header sits at the documented offsets, and the CRC covers bytes 21..end.
    @Test func headerLayout() throws {
        var builder = RecordBatchBuilder(baseOffset: 0x0102_0304_0506_0708, producerId: 9, producerEpoch: 2, baseSequence: 5)
        builder.append(timestamp: 1000, key: [1], value: [2, 3])
        builder.append(timestamp: 1005, key: nil, value: [4])
        let bytes = try builder.build()
        #expect(RecordBatchHeader.size == 61)
        func be<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            bytes.withUnsafeBytes { T(bigEndian: $0.loadUnaligned(fromByteOffset: at, as: T.self)) }
        }
        #expect(be(0, Int64.self) == 0x0102_0304_0506_0708)
        #expect(Int(be(8, Int32.self)) == bytes.count - 12)
        #expect(be(12, Int32.self) == -1)
        #expect(bytes[16] == 2)
        #expect(be(17, UInt32.self) == CRC32C.checksum(bytes[21...]))
        #expect(be(21, Int16.self) == 0)
        #expect(be(23, Int32.self) == 1)
        #expect(be(27, Int64.self) == 1000)
        #expect(be(35, Int64.self) == 1005)
        #expect(be(43, Int64.self) == 9)
        #expect(be(51, Int16.self) == 2)
        #expect(be(53, Int32.self) == 5)
        #expect(be(57, Int32.self) == 2)
        // Record 0: length 9, attributes 0, timestampDelta 0, offsetDelta 0, key [1], value [2,3], 0 headers.
        // Record 1: length 7, attributes 0, timestampDelta 5, offsetDelta 1, null key, value [4], 0 headers.
        #expect(
            Array(bytes[61...]) == [
                0x12, 0x00, 0x00, 0x00, 0x02, 0x01, 0x04, 0x02, 0x03, 0x00,
                0x0E, 0x00, 0x0A, 0x02, 0x01, 0x02, 0x04, 0x00,
            ])
    }

    /// The header `buildWithHeader` hands `PartitionLog.append` as validated (the offsets and
    /// share-state stores do) is the one a validation of its bytes reads, CRC included.
    @Test(arguments: [CompressionCodec.none, .lz4])
    func theBuiltHeaderIsTheValidatedOne(codec: CompressionCodec) throws {
        var builder = RecordBatchBuilder(compression: codec, producerId: 7, producerEpoch: 1, baseSequence: 3)
        for i in 0..<5 { builder.append(timestamp: 1_000 + Int64(i), key: [UInt8(i)], value: Array(repeating: 9, count: 40 * i)) }
        let (bytes, header) = try builder.buildWithHeader()
        #expect(bytes == (try builder.build()))
        let validated = try bytes.withUnsafeBytes { try RecordBatchHeader.validate($0) }
        #expect(header == validated)
        #expect(header.crc != 0 && header.totalSize == bytes.count && header.maxTimestamp == 1_004)
    }

    @Test func rewritingBaseOffsetKeepsTheCRCValid() throws {
        var bytes = makeBatch(tag: "x", count: 3)
        bytes.replaceSubrange(0..<8, with: withUnsafeBytes(of: Int64(999).bigEndian) { Array($0) })
        let batch = try RecordBatch(decoding: bytes)
        #expect(batch.header.baseOffset == 999)
    }

    @Test func damageGivesTypedErrors() throws {
        let good = makeBatch(tag: "d", count: 5)
        // Every truncation fails cleanly.
        for cut in 0..<good.count {
            #expect(throws: RecordBatchError.self) { try RecordBatch(decoding: Array(good[..<cut])) }
        }
        // A flipped byte in the CRC-covered area is a CRC mismatch.
        var flipped = good
        flipped[70] ^= 0x40
        #expect {
            try RecordBatch(decoding: flipped)
        } throws: { error in
            if case .crcMismatch = error as? RecordBatchError { return true }
            return false
        }
        // Lying lengths.
        var tooShort = good
        tooShort.replaceSubrange(8..<12, with: [0, 0, 0, 10])
        #expect(throws: RecordBatchError.invalidBatchLength(10)) { try RecordBatch(decoding: tooShort) }
        var huge = good
        huge.replaceSubrange(8..<12, with: [0x7F, 0xFF, 0xFF, 0xFF])
        #expect(throws: RecordBatchError.invalidBatchLength(.max)) { try RecordBatch(decoding: huge) }
        var longer = good
        longer.replaceSubrange(8..<12, with: [0, 0, 0x10, 0])
        #expect(throws: RecordBatchError.truncated(needed: 4096 + 12, available: good.count)) {
            try RecordBatch(decoding: longer)
        }
        // Wrong magic.
        var magic1 = good
        magic1[16] = 1
        #expect(throws: RecordBatchError.unsupportedMagic(1)) { try RecordBatch(decoding: magic1) }
    }

    /// A record count or a record length that lies is caught without allocating for it.
    @Test func lyingCountsInsideAValidCRC() throws {
        var bytes = makeBatch(tag: "c", count: 2)
        bytes.replaceSubrange(57..<61, with: [0x7F, 0xFF, 0xFF, 0xFF])
        let crc = CRC32C.checksum(bytes[21...])
        bytes.replaceSubrange(17..<21, with: withUnsafeBytes(of: crc.bigEndian) { Array($0) })
        #expect(throws: RecordBatchError.self) { try RecordBatch(decoding: bytes) }
    }

    @Test func unsupportedCodecIsTyped() throws {
        var bytes = makeBatch(tag: "z", count: 1)
        bytes[22] = 5  // no codec has this number (4 is zstd)
        let crc = CRC32C.checksum(bytes[21...])
        bytes.replaceSubrange(17..<21, with: withUnsafeBytes(of: crc.bigEndian) { Array($0) })
        #expect(throws: RecordBatchError.unsupportedCompression(5)) { try RecordBatch(decoding: bytes) }
    }

    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func decompressionIsBounded(compression: CompressionCodec) throws {
        var builder = RecordBatchBuilder(compression: compression)
        for i in 0..<100 { builder.append(timestamp: Int64(i), key: nil, value: [UInt8](repeating: 7, count: 10_000)) }
        let bytes = try builder.build()
        #expect(bytes.count < 60_000)  // 1 MB of records (snappy keeps a twentieth)
        #expect(throws: RecordBatchError.decompressedSizeLimitExceeded(limit: 100_000)) {
            try RecordBatch(decoding: bytes, maxDecompressedBytes: 100_000)
        }
        #expect(try RecordBatch(decoding: bytes).records.count == 100)
    }

    /// A partial decode builds only the records it keeps, stops at its limit or past `through`,
    /// and gives them exactly as a whole decode does (every codec).
    @Test(arguments: CompressionCodec.allCases)
    func partialDecodeKeepsOnlyWhatItPicks(compression: CompressionCodec) throws {
        var rng = SeededGenerator(seed: 77)
        let samples = Self.randomSamples(count: 500, rng: &rng)
        var builder = RecordBatchBuilder(baseOffset: 1_000, compression: compression)
        for s in samples { builder.append(timestamp: s.timestamp, key: s.key, value: s.value, headers: s.headers) }
        let bytes = try builder.build()
        let whole = try RecordBatch(decoding: bytes)
        func partial(limit: Int = .max, through: Int64 = .max, _ keep: (Int64) -> Bool) throws -> [Record] {
            try bytes.withUnsafeBytes { raw in
                try RecordBatch(decoding: raw, keeping: keep, limit: limit, through: through).records
            }
        }
        #expect(try partial { _ in true } == whole.records)
        #expect(try partial { $0 % 7 == 0 } == whole.records.filter { whole.offset(of: $0) % 7 == 0 })
        #expect(try partial(limit: 3) { $0 >= 1_250 } == Array(whole.records[250..<253]))
        #expect(try partial(through: 1_010) { $0 >= 1_005 } == Array(whole.records[5...10]))
        #expect(try partial { _ in false }.isEmpty)
    }

    /// The walk past unkept records still checks their framing: a record length that runs past
    /// the body is an error, not a skip into the next batch.
    @Test func partialDecodeChecksWhatItWalksPast() throws {
        var builder = RecordBatchBuilder()
        for i in 0..<3 { builder.append(timestamp: Int64(i), key: nil, value: [UInt8](repeating: 1, count: 10)) }
        var bytes = try builder.build()
        bytes[61] = 0x7E  // the first record's length varint: 63, past the 3 records' bytes
        let crc = CRC32C.checksum(bytes[21...])
        bytes.replaceSubrange(17..<21, with: withUnsafeBytes(of: crc.bigEndian) { Array($0) })
        #expect(throws: RecordBatchError.self) {
            try bytes.withUnsafeBytes { raw in try RecordBatch(decoding: raw, keeping: { $0 >= 2 }) }
        }
    }

    @Test func varints() {
        var writer = ByteWriter()
        let values: [Int64] = [0, -1, 1, -64, 63, 64, 300, Int64(Int32.max), Int64(Int32.min), .max, .min]
        for v in values { writer.writeVarlong(v) }
        // Zigzag: 0 -> 00, -1 -> 01, 1 -> 02, -64 -> 7F, 63 -> 7E, 64 -> 80 01.
        #expect(Array(writer.bytes[0..<7]) == [0x00, 0x01, 0x02, 0x7F, 0x7E, 0x80, 0x01])
        writer.bytes.withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            for v in values { #expect(try! reader.readVarlong() == v) }
            #expect(reader.readableBytes == 0)
        }
        for v: Int32 in [0, -1, 1, 1000, -1000, .max, .min] {
            var w = ByteWriter()
            w.writeVarint(v)
            #expect(w.count == ByteWriter.varintSize(v))
            w.bytes.withUnsafeBytes { raw in
                var reader = ByteReader(raw)
                #expect(try! reader.readVarint() == v)
            }
        }
        // An endless varint is an error, not a hang or a crash.
        [UInt8](repeating: 0xFF, count: 20).withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            #expect(throws: RecordBatchError.self) { try reader.readVarint() }
        }
    }
}

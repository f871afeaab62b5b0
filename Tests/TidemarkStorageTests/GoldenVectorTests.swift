import TestSupport
import Testing
@testable import TidemarkStorage

/// Batches written by a real Kafka client library (kafka-python 3.0.12's
/// DefaultRecordBatchBuilder), checked byte for byte against ours.
@Suite struct GoldenVectorTests {
    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            out.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return out
    }

    /// producer id 4242, epoch 3, base sequence 17; headers with an empty and a null value;
    /// a null key, an empty value, an empty key with a null value, a negative timestamp delta.
    static let kafkaPythonPlain = bytes(
        [
            "0000000000000000000000680000000002132b51650000000000020000018bcfe568000000018bcfe568050000000000",
            "00109200030000001100000003500000000c757365722d310a68656c6c6f060a7472616365066162630a656d70747900",
            "086e6f6e65010c000a020100000c001304000100"
        ].joined())

    /// 50 records, LZ4 (kafka-python frames carry the content size: flag byte 0x68).
    static let kafkaPythonLZ4 = bytes(
        [
            "00000000000000000000040d0000000002308867250003000000310000018bcfe568000000018bcfe56831ffffffffff",
            "ffffffffffffffffff0000003204224d1868407e1300000000000029c5030000ff03b201000000046b30a00176616c75",
            "652d302d0800359400b201000202046b315b0013315b000f08002f005b00540404046b325b0013325b000f08002f005b",
            "00540606046b335b0013335b000f08002f005b00540808046b345b0013345b000f08002f005b00540a0a046b355b0013",
            "355b000f08002f005b00540c0c046b365b0013365b000f08002f005b00540e0e046b375b0013375b000f08002f005b00",
            "541010046b385b0013385b000f08002f005b00541212046b395b0013395b000f08002fb300c801001414066b3130b48f",
            "03143190030f090038006600651616066b313166000593030f090037006600651818066b31326600049e030f09003800",
            "6600651a1a066b3133660004a9030f090038006600651c1c066b3134660004b4030f090038006600651e1e066b313566",
            "0004bf030f090038006600652020066b3136660004ca030f090038006600652222066b3137660004d5030f0900380066",
            "00652424066b3138660004e0030f090038006600652626066b3139660004eb030f090038006600552828066b32fc0314",
            "32fc030f090038006600552a2a066b32fc031432f3030f090038006600552c2c066b32fc031432f3030f090038006600",
            "552e2e066b32fc031432f3030f090038006600553030066b32fc031432f3030f090038006600553232066b32fc031432",
            "f3030f090038006600553434066b32fc031432f3030f090038006600553636066b32fc031432f3030f09003800660055",
            "3838066b32fc031432f3030f090038006600553a3a066b32fc031432f3030f090038006600553c3c066b33fc031433fc",
            "030f090038006600643e3e066b3331c8041433fc030f090038006600554040066b33fc031433fc030f09003800660055",
            "4242066b33fc031433fc030f090038006600554444066b33fc031433fc030f090038006600554646066b33fc031433fc",
            "030f090038006600554848066b33fc031433fc030f090038006600554a4a066b33fc031433fc030f090038006600554c",
            "4c066b33fc031433fc030f090038006600554e4e066b33fc031433fc030f090038006600555050066b34fc031434fc03",
            "0f090038006600555252066b34fc031434fc030f090038006600555454066b34fc031434fc030f090038006600555656",
            "066b34fc031434fc030f090038006600555858066b34fc031434fc030f090038006600555a5a066b34fc031434fc030f",
            "090038006600555c5c066b34fc031434fc030f090038006600555e5e066b34fc031434fc030f09003800660055606006",
            "6b34fc031434fc030f090038006600556262066b34fc031434fc030f090034502d34392d0000000000"
        ].joined())

    @Test func ourEncoderMatchesKafkaPythonByteForByte() throws {
        var builder = RecordBatchBuilder(producerId: 4242, producerEpoch: 3, baseSequence: 17, partitionLeaderEpoch: 0)
        builder.append(
            timestamp: 1_700_000_000_000, key: Array("user-1".utf8), value: Array("hello".utf8),
            headers: [
                RecordHeader(key: "trace", value: Array("abc".utf8)), RecordHeader(key: "empty", value: []),
                RecordHeader(key: "none", value: nil),
            ])
        builder.append(timestamp: 1_700_000_000_005, key: nil, value: [])
        builder.append(timestamp: 1_699_999_999_990, key: [], value: nil)
        #expect(try builder.build() == Self.kafkaPythonPlain)
    }

    @Test func kafkaPythonBatchesDecode() throws {
        let plain = try RecordBatch(decoding: Self.kafkaPythonPlain)
        #expect(plain.header.producerId == 4242 && plain.header.lastSequence == 19)
        #expect(plain.records.map(\.key) == [Array("user-1".utf8), nil, []])
        #expect(plain.records.map(\.value) == [Array("hello".utf8), [], nil])
        #expect(plain.records[0].headers.map(\.value) == [Array("abc".utf8), [], nil])
        #expect(plain.timestamp(of: plain.records[2]) == 1_699_999_999_990)

        #expect(Self.kafkaPythonLZ4[61 + 4] == 0x68)
        let lz4 = try RecordBatch(decoding: Self.kafkaPythonLZ4)
        #expect(lz4.header.compressionCodec == .lz4)
        #expect(lz4.records.count == 50)
        for (i, record) in lz4.records.enumerated() {
            #expect(record.key == Array("k\(i)".utf8))
            #expect(record.value == Array(String(repeating: "value-\(i)-", count: 10).utf8))
            #expect(lz4.timestamp(of: record) == 1_700_000_000_000 + Int64(i))
        }
    }
}

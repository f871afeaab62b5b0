import TestSupport
import Testing
import TidemarkStorage

@Suite struct CRC32CTests {
    @Test func checkValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        // 32 zero bytes and 32 0xFF bytes: RFC 3720 (iSCSI) test vectors.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum(Array(0..<32) as [UInt8]) == 0x46DD_794E)
    }

    @Test func hardwareAgreesWithPortableOnEveryShape() {
        var rng = SeededGenerator(seed: 7)
        let data = rng.bytes(70_000)
        for length in [0, 1, 7, 8, 9, 63, 64, 4095, 4096, 12_287, 12_288, 12_289, 24_577, 40_000, 69_990] {
            for misalignment in [0, 1, 3, 7] where misalignment + length <= data.count {
                data.withUnsafeBytes { raw in
                    let slice = UnsafeRawBufferPointer(rebasing: raw[misalignment..<(misalignment + length)])
                    #expect(CRC32C.checksum(slice) == CRC32C.portableChecksum(slice), "length \(length)")
                }
            }
        }
    }

    @Test func extendingEqualsOneShot() {
        var rng = SeededGenerator(seed: 11)
        let data = rng.bytes(30_000)
        let whole = CRC32C.checksum(data)
        let partial = CRC32C.checksum(data[..<12_345])
        #expect(CRC32C.checksum(data[12_345...], extending: partial) == whole)
    }
}

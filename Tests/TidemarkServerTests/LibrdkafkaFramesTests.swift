import Foundation
import TestSupport
import Testing
import Tidemark
import TidemarkServer
import TidemarkWire

/// Frames captured from real clients (librdkafka 2.16, as confluent-kafka bundles it) decode
/// and are answered,
/// including one with bytes after its last field, which Kafka ignores.
@Suite struct LibrdkafkaFramesTests {
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

    @Test(arguments: [
        "0003000d00000002000772646b61666b610001000000",
        "0003000d00000003000772646b61666b610000000000010000",
    ])
    func metadataV13FromLibrdkafka(_ hex: String) async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        let processor = RequestProcessor(broker: broker)
        let outcome = await processor.process(Self.bytes(hex))
        if case .close(let reason) = outcome { Issue.record("closed: \(reason)") }
        try await broker.close()
    }
}

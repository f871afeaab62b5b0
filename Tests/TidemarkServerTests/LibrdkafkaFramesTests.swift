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

/// Hostile bytes in the body of every implemented request version: random bodies, bodies of
/// 0xFF (lengths and counts of -1 or huge), truncations of a valid body and a body with a
/// huge array count. Each is answered or refused (close), never a trap, and the broker keeps
/// answering well-formed requests afterwards.
@Suite struct HostileBodiesTests {
    static func frame(_ api: ApiKey, _ version: Int16, body: [UInt8]) throws -> [UInt8] {
        var coder = WireCoder(writingFlexible: false)
        var header = RequestHeader(apiKey: api.rawValue, apiVersion: version, correlationId: 7, clientId: "hostile")
        try header.code(&coder, flexible: api.isFlexible(version))
        return try coder.finishedBytes() + body
    }

    @Test func everyRequestVersionSurvivesHostileBodies() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("t", partitions: 2)
        let processor = RequestProcessor(broker: broker)
        var rng = SeededGenerator(seed: 848)
        var cases = 0
        for api in ApiKey.allCases {
            for version in api.implemented {
                var bodies: [[UInt8]] = [[], [UInt8](repeating: 0xFF, count: 64), [0x7F, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF]]
                bodies.append([0, 1, 0x74] + [UInt8](repeating: 0x7F, count: 40))
                for _ in 0..<12 {
                    bodies.append((0..<Int.random(in: 1...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
                }
                for body in bodies {
                    _ = await processor.process(try Self.frame(api, version, body: body))
                    cases += 1
                }
            }
        }
        // Every prefix (in steps) of the frames real clients sent, kept as fuzzing seeds.
        let seeds = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../tools/fuzz/seeds")
        let files = try FileManager.default.contentsOfDirectory(atPath: seeds.path).filter { $0.hasSuffix(".bin") }
        #expect(files.count >= 40)
        for file in files {
            let frame = [UInt8](try Data(contentsOf: seeds.appendingPathComponent(file)))
            for cut in stride(from: 8, to: frame.count, by: max(1, frame.count / 24)) {
                _ = await processor.process(Array(frame[..<cut]))
                cases += 1
            }
        }
        #expect(cases > 2000)
        // Still serving: ApiVersions and Metadata answer.
        guard case .response = await processor.process(try Self.frame(.apiVersions, 3, body: [1, 1, 0])) else {
            Issue.record("ApiVersions not answered after the hostile bodies")
            return
        }
        var metadata = MetadataRequest()
        metadata.topicList = [.init(name: "t")]
        var coder = WireCoder(writingFlexible: true)
        try metadata.encode(into: &coder, version: 12)
        let outcome = await processor.process(try Self.frame(.metadata, 12, body: try coder.finishedBytes()))
        guard case .response(let bytes) = outcome else {
            Issue.record("Metadata not answered: \(outcome)")
            return
        }
        let response = try MetadataResponse.decode(bytes, from: 5, version: 12, flexible: true)
        #expect(response.topics.first?.partitions.count == 2)
        try await broker.close()
    }
}

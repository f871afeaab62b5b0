import TestSupport
import Testing
import Tidemark
import TidemarkServer
import TidemarkStorage
import TidemarkWire

/// What one client's requests may make the broker hold: request budget for frames that do
/// not arrive, copies of records in fetch responses, and fetch limits as Kafka applies them.
///
/// Nested in `ServerTests` so the two never run at once (raw clients block in recv).
extension ServerTests { @Suite(.serialized) struct ResourceBoundTests {
    /// A fetch of `partitions` (each listed with its offset) of `topic`.
    static func fetch(
        _ topic: String, _ partitions: [(Int32, Int64)], maxBytes: Int32 = 50 << 20, partitionMaxBytes: Int32 = 1 << 20,
        minBytes: Int32 = 1, maxWaitMs: Int32 = 0
    ) -> FetchRequest {
        var fetch = FetchRequest()
        fetch.maxWaitMs = maxWaitMs
        fetch.minBytes = minBytes
        fetch.maxBytes = maxBytes
        var t = FetchRequest.Topic()
        t.topic = topic
        t.partitions = partitions.map { index, offset in
            var p = FetchRequest.Partition()
            p.partition = index
            p.fetchOffset = offset
            p.partitionMaxBytes = partitionMaxBytes
            return p
        }
        fetch.topics = [t]
        return fetch
    }

    static func answer(_ client: RawClient, _ request: FetchRequest) async throws -> FetchResponse {
        try client.request(.fetch, version: 11, correlation: 1, request)
        let (_, body) = try #require(await client.response())
        return try FetchResponse.decode(body, version: 11, flexible: false)
    }

    /// A Produce (acks=1) of one batch holding one record of `value` to partition 0 of `topic`.
    static func produce(_ topic: String, _ value: [UInt8]) throws -> ProduceRequest {
        var produce = ProduceRequest()
        produce.acks = 1
        produce.timeoutMs = 5000
        var t = ProduceRequest.TopicData()
        t.name = topic
        var p = ProduceRequest.PartitionData()
        p.records = .bytes(try RecordBatchBuilder().built(value: value)[...])
        t.partitions = [p]
        produce.topics = [t]
        return produce
    }

    /// `count` batches of `bytes` each to every partition of `topic`.
    static func fill(_ broker: Broker, _ topic: String, partitions: Int, batches count: Int, bytes: Int) async throws {
        for p in 0..<partitions {
            for i in 0..<count {
                var builder = RecordBatchBuilder()
                builder.append(timestamp: 1_700_000_000_000, key: nil, value: [UInt8](repeating: UInt8(i & 0xFF), count: bytes))
                _ = try await broker.append(topic: topic, partition: p, batches: try builder.build())
            }
        }
    }

    /// Forty clients each declaring a 1 MB frame and sending nothing more: they used to
    /// reserve the whole request budget (here 2 MiB) until the frame timeout, and a real 1 MB
    /// produce from another client waited behind them. A size prefix alone reserves nothing now.
    @Test func sizePrefixesAloneHoldNoBudget() async throws {
        try await ServerTests.withServer(maxRequestBytes: 4 << 20, configure: {
            $0.queuedMaxRequestBytes = 2 << 20
            $0.frameTimeoutMs = 20_000
        }) { server in
            try await server.broker.createTopic("big", partitions: 1)
            var holders: [RawClient] = []
            for _ in 0..<40 {
                let client = try RawClient(port: server.boundPort)
                client.send(withUnsafeBytes(of: Int32(1_000_000).bigEndian) { Array($0) })
                holders.append(client)
            }
            try await Task.sleep(for: .milliseconds(200))
            #expect(server.queuedRequestBytes == 0)
            let produce = try Self.produce("big", [UInt8](repeating: 1, count: 900_000))
            let producer = try RawClient(port: server.boundPort)
            let started = ContinuousClock.now
            try producer.request(.produce, version: 7, correlation: 5, produce)
            let (correlation, body) = try #require(await producer.response())
            #expect(correlation == 5 && ContinuousClock.now - started < .seconds(5))
            #expect(try ProduceResponse.decode(body, version: 7, flexible: false).topics[0].partitions[0].errorCode == 0)
            withExtendedLifetime(holders) {}
        }
    }

    /// Four 1 MB produces whose first halves arrive before their second halves, with a 2 MiB
    /// budget: each first half reserves its bytes, the budget is full, and every second half
    /// waits for more. The oldest frame holding part of its reservation always gets its next
    /// step, so it completes, is answered, gives its bytes back, and the next follows (reserved
    /// step by step without that, the four waited on each other until the frame timeout).
    @Test func framesReservedStepByStepAllComplete() async throws {
        try await ServerTests.withServer(maxRequestBytes: 4 << 20, configure: {
            $0.queuedMaxRequestBytes = 2 << 20
            $0.frameTimeoutMs = 20_000
        }) { server in
            try await server.broker.createTopic("big", partitions: 1)
            var frames: [[UInt8]] = []
            for i in 0..<4 {
                let produce = try Self.produce("big", [UInt8](repeating: UInt8(i), count: 1_000_000))
                let payload = try RawClient.payload(.produce, version: 7, correlation: Int32(i), produce)
                frames.append(RawClient.framed(payload))
            }
            let clients = try (0..<4).map { _ in try RawClient(port: server.boundPort) }
            for (client, frame) in zip(clients, frames) { client.send(Array(frame[..<(frame.count / 2)])) }
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            for (client, frame) in zip(clients, frames) { client.send(Array(frame[(frame.count / 2)...])) }
            for (i, client) in clients.enumerated() {
                let (correlation, body) = try #require(await client.response())
                #expect(correlation == Int32(i))
                #expect(try ProduceResponse.decode(body, version: 7, flexible: false).topics[0].partitions[0].errorCode == 0)
            }
            #expect(ContinuousClock.now - started < .seconds(10))
            #expect(server.queuedRequestBytes == 0)
        }
    }

    /// A large frame behind a long poll on the same connection is not read ahead (it would
    /// hold 1 MB of the budget for the poll's minutes): it waits, unreserved, and is answered
    /// once the poll is. Small frames still pipeline behind it.
    @Test func aLargeFrameWaitsUnreservedBehindALongPoll() async throws {
        try await ServerTests.withServer(maxRequestBytes: 4 << 20) { server in
            try await server.broker.createTopic("quiet", partitions: 1)
            try await server.broker.createTopic("big", partitions: 1)
            let client = try RawClient(port: server.boundPort)
            try client.request(.fetch, version: 11, correlation: 1, Self.fetch("quiet", [(0, 0)], maxWaitMs: 1_500))
            let produce = try Self.produce("big", [UInt8](repeating: 1, count: 1_000_000))
            try client.request(.produce, version: 7, correlation: 2, produce)
            try await Task.sleep(for: .milliseconds(500))
            #expect(server.queuedRequestBytes < 100_000, "\(server.queuedRequestBytes) bytes reserved behind the poll")
            let (first, _) = try #require(await client.response())
            let (second, body) = try #require(await client.response())
            #expect(first == 1 && second == 2)
            #expect(try ProduceResponse.decode(body, version: 7, flexible: false).topics[0].partitions[0].errorCode == 0)
        }
    }

    /// One partition listed 50 times in a fetch is read and answered once (each listing copied
    /// its 30 KB; then the others were answered without offsets, as a partition with no high
    /// watermark). Kafka keys a fetch's partitions by name: one answer.
    @Test func aPartitionListedManyTimesIsReadOnce() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("dup", partitions: 1)
            try await Self.fill(server.broker, "dup", partitions: 1, batches: 1, bytes: 30_000)
            let client = try RawClient(port: server.boundPort)
            let response = try await Self.answer(client, Self.fetch("dup", Array(repeating: (0, 0), count: 50), partitionMaxBytes: 30_000))
            let sizes = response.topics[0].partitions.map { $0.records?.count ?? 0 }
            #expect(sizes.count == 1 && sizes[0] > 30_000)
            #expect(response.topics[0].partitions[0].highWatermark == 1)
        }
    }

    /// Copies of records stop at the broker's response memory (here 100 KB; the first
    /// partition is always answered), and what a response holds is given back once written.
    @Test func copiesStopAtTheResponseMemoryLimit() async throws {
        try await ServerTests.withServer(configure: { $0.responseMemoryBytes = 100_000 }) { server in
            try await server.broker.createTopic("wide", partitions: 20)
            try await Self.fill(server.broker, "wide", partitions: 20, batches: 1, bytes: 20_000)
            let client = try RawClient(port: server.boundPort)
            let response = try await Self.answer(client, Self.fetch("wide", (0..<20).map { (Int32($0), 0) }))
            let total = response.topics[0].partitions.reduce(0) { $0 + ($1.records?.count ?? 0) }
            #expect(total > 20_000 && total <= 100_000, "\(total) bytes copied")
            let deadline = ContinuousClock.now + .seconds(30)
            while server.responseBytesHeld > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(server.responseBytesHeld == 0)
            // The next fetch, from where the first stopped, gets the rest.
            let answered = Set(response.topics[0].partitions.filter { ($0.records?.count ?? 0) > 0 }.map(\.partitionIndex))
            let rest = try await Self.answer(client, Self.fetch("wide", (0..<20).filter { !answered.contains(Int32($0)) }.map { (Int32($0), 0) }))
            #expect(rest.topics[0].partitions.contains { ($0.records?.count ?? 0) > 0 })
        }
    }

    /// The first partition is held to max_bytes too (its first batch always goes whole): it
    /// used to get its whole partition_max_bytes, and a response over librdkafka's
    /// receive.message.max.bytes made it reconnect and fetch the same again, for ever.
    @Test func theFirstPartitionKeepsToMaxBytes() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("first", partitions: 1)
            try await Self.fill(server.broker, "first", partitions: 1, batches: 10, bytes: 20_000)
            let client = try RawClient(port: server.boundPort)
            let capped = try await Self.answer(client, Self.fetch("first", [(0, 0)], maxBytes: 50_000))
            let size = capped.topics[0].partitions[0].records?.count ?? 0
            #expect(size > 20_000 && size <= 50_000, "\(size) bytes for max_bytes 50,000")
            let tiny = try await Self.answer(client, Self.fetch("first", [(0, 0)], maxBytes: 1))
            #expect((tiny.topics[0].partitions[0].records?.count ?? 0) > 20_000, "the first batch goes whole")
        }
    }

    /// A partition error answers a long poll at once (it waited for the other, empty
    /// partition's data or the deadline).
    @Test func aPartitionErrorEndsALongPoll() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("poll", partitions: 2)
            try await Self.fill(server.broker, "poll", partitions: 1, batches: 1, bytes: 100)
            let client = try RawClient(port: server.boundPort)
            let started = ContinuousClock.now
            let failed = try await Self.answer(client, Self.fetch("poll", [(0, 99), (1, 0)], maxWaitMs: 30_000))
            #expect(failed.topics[0].partitions[0].errorCode == KafkaError.offsetOutOfRange.rawValue)
            #expect(ContinuousClock.now - started < .seconds(10))
        }
    }

    /// ListOffsets' special times: -3 (MAX_TIMESTAMP) answers the record with the largest
    /// timestamp (it answered the log start: the first record at or after -3), -4 (earliest
    /// local) the log start, -5 (latest tiered) none: nothing is tiered.
    @Test func listOffsetsSpecialTimes() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("times", partitions: 1)
            var builder = RecordBatchBuilder()
            for timestamp: Int64 in [100, 300, 200] { builder.append(timestamp: timestamp, key: nil, value: [1]) }
            _ = try await server.broker.append(topic: "times", partition: 0, batches: try builder.build())
            let client = try RawClient(port: server.boundPort)
            var answers: [Int64: (Int64, Int64)] = [:]
            for (correlation, time) in [Int64(-3), -4, -5, -1].enumerated() {
                var request = ListOffsetsRequest()
                var t = ListOffsetsRequest.Topic()
                t.name = "times"
                var p = ListOffsetsRequest.Partition()
                p.timestamp = time
                t.partitions = [p]
                request.topics = [t]
                try client.request(.listOffsets, version: 9, correlation: Int32(correlation), request)
                let (_, body) = try #require(await client.response())
                let answer = try ListOffsetsResponse.decode(body, from: 1, version: 9, flexible: true).topics[0].partitions[0]
                #expect(answer.errorCode == 0)
                answers[time] = (answer.offset, answer.timestamp)
            }
            #expect(answers[-3]! == (1, 300))
            #expect(answers[-4]! == (0, -1))
            #expect(answers[-5]! == (-1, -1))
            #expect(answers[-1]! == (3, -1))

            // As Kafka answers: a special time below the version that knows it, or a negative
            // time that is no special one, is UNSUPPORTED_VERSION; a partition named twice is
            // INVALID_REQUEST each time (another partition of the request is answered).
            func errors(_ version: Int16, _ partitions: [(Int32, Int64)]) async throws -> [Int16] {
                var request = ListOffsetsRequest()
                var t = ListOffsetsRequest.Topic()
                t.name = "times"
                t.partitions = partitions.map { index, time in
                    var p = ListOffsetsRequest.Partition()
                    p.partitionIndex = index
                    p.timestamp = time
                    return p
                }
                request.topics = [t]
                try client.request(.listOffsets, version: version, correlation: 50, request)
                let (_, body) = try #require(await client.response())
                let flexible = ApiKey.listOffsets.isFlexible(version)
                return try ListOffsetsResponse.decode(body, from: flexible ? 1 : 0, version: version, flexible: flexible)
                    .topics[0].partitions.map(\.errorCode)
            }
            let unsupported = KafkaError.unsupportedVersion.rawValue
            #expect(try await errors(6, [(0, -3)]) == [unsupported])
            #expect(try await errors(7, [(0, -3)]) == [0])
            #expect(try await errors(7, [(0, -4)]) == [unsupported])
            #expect(try await errors(8, [(0, -5)]) == [unsupported])
            #expect(try await errors(10, [(0, -6)]) == [unsupported])
            #expect(try await errors(10, [(0, -100)]) == [unsupported])
            #expect(try await errors(1, [(0, -1)]) == [0])
            let invalid = KafkaError.invalidRequest.rawValue
            #expect(try await errors(10, [(0, -1), (0, -2), (1, -1)]) == [invalid, invalid, KafkaError.unknownTopicOrPartition.rawValue])
        }
    }
}
}

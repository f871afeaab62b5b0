import Foundation
import TestSupport
import Testing
@testable import Tidemark
@testable import TidemarkServer
import TidemarkStorage
import TidemarkWire

/// When a long-polling Fetch is answered, as Kafka's DelayedFetch answers it: once the bytes of
/// every partition reach min_bytes, at once when a read cannot grow (it ends at a segment's
/// end) or a partition fails, at its deadline otherwise; and never later than its client stays.
///
/// Nested in `ServerTests` so the two never run at once (raw clients block in recv).
extension ServerTests { @Suite(.serialized) struct FetchWaitTests {
    static func values(_ count: Int, size: Int) throws -> [UInt8] {
        var builder = RecordBatchBuilder()
        for _ in 0..<count { builder.append(timestamp: 1_700_000_000_000, key: nil, value: [UInt8](repeating: 7, count: size)) }
        return try builder.build()
    }

    /// The fetch's answer and how long it took.
    static func timed(_ client: RawClient, _ request: FetchRequest, version: Int16 = 11) async throws -> (FetchResponse, Duration) {
        let started = ContinuousClock.now
        try client.request(.fetch, version: version, correlation: 1, request)
        let (_, body) = try #require(await client.response())
        let flexible = ApiKey.fetch.isFlexible(version)
        return (try FetchResponse.decode(body, from: flexible ? 1 : 0, version: version, flexible: flexible), ContinuousClock.now - started)
    }

    static func bytes(_ response: FetchResponse) -> Int {
        response.topics.flatMap(\.partitions).reduce(0) { $0 + ($1.records?.count ?? 0) }
    }

    /// A partition with some data and another empty, min_bytes above what they hold: the
    /// appends that bring the first past it answer the fetch (it waited its whole max_wait:
    /// only partitions found empty were watched). One partition below min_bytes waits (it was
    /// answered at once: no partition was empty).
    @Test func minBytesCountsEveryPartition() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("m", partitions: 2)
            _ = try await server.broker.append(topic: "m", partition: 0, batches: try Self.values(1, size: 100))
            let client = try RawClient(port: server.boundPort)
            let broker = server.broker
            let appender = Task {
                try await Task.sleep(for: .milliseconds(300))
                _ = try await broker.append(topic: "m", partition: 0, batches: try Self.values(20, size: 500))
            }
            let (grown, waited) = try await Self.timed(
                client, ResourceBoundTests.fetch("m", [(0, 0), (1, 0)], minBytes: 5_000, maxWaitMs: 6_000))
            try await appender.value
            #expect(waited < .seconds(4), "answered after \(waited)")
            #expect(Self.bytes(grown) > 5_000)

            let (short, early) = try await Self.timed(client, ResourceBoundTests.fetch("m", [(0, 0)], minBytes: 50_000, maxWaitMs: 1_000))
            #expect(early >= .milliseconds(900), "answered after \(early)")
            #expect(Self.bytes(short) > 10_000)
        }
    }

    /// A read that ends at a segment's end cannot grow: the fetch is answered at once, below
    /// min_bytes, as Kafka answers it (the consumer reads the next segment next).
    @Test func aReadEndingAtASegmentsEndIsAnsweredAtOnce() async throws {
        try await ServerTests.withServer { server in
            var config = TopicConfig()
            config.segmentBytes = 2_000
            try await server.broker.createTopic("rolled", partitions: 1, config: config)
            for _ in 0..<4 { _ = try await server.broker.append(topic: "rolled", partition: 0, batches: try Self.values(3, size: 500)) }
            #expect(try server.broker.partitionState("rolled", 0).log.segmentCount > 1)
            let client = try RawClient(port: server.boundPort)
            let (response, waited) = try await Self.timed(
                client, ResourceBoundTests.fetch("rolled", [(0, 0)], minBytes: 1 << 20, maxWaitMs: 5_000))
            #expect(waited < .seconds(2), "answered after \(waited)")
            #expect(Self.bytes(response) > 1_000)
        }
    }

    /// A read cut short by its partition's byte limit has all it can take: with min_bytes at
    /// that limit, the fetch is answered at once (it waited max_wait: no append makes that read
    /// longer, so a consumer behind got a partition's worth per max_wait).
    @Test func aReadCutByItsLimitIsAnsweredAtOnce() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("behind", partitions: 1)
            for _ in 0..<20 { _ = try await server.broker.append(topic: "behind", partition: 0, batches: try Self.values(3, size: 1_000)) }
            let client = try RawClient(port: server.boundPort)
            let (response, waited) = try await Self.timed(
                client, ResourceBoundTests.fetch("behind", [(0, 0)], partitionMaxBytes: 20_000, minBytes: 20_000, maxWaitMs: 5_000))
            #expect(waited < .seconds(2), "answered after \(waited)")
            #expect(Self.bytes(response) > 15_000 && Self.bytes(response) <= 20_000)
        }
    }

    /// A commit wakes a fetch long-polling `__consumer_offsets` (offset monitors read it); it
    /// waited its whole max_wait: commits never woke readers.
    @Test func aCommitWakesAFetchOfTheOffsetsTopic() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("orders", partitions: 1)
            let end = try server.broker.offsets(topic: "__consumer_offsets", partition: 0).end
            let client = try RawClient(port: server.boundPort)
            let groups = server.broker.groups
            let committer = Task {
                try await Task.sleep(for: .milliseconds(300))
                _ = try await groups.commitOffsets(groupId: "billing", offsets: [TopicPartition("orders", 0): CommittedOffset(offset: 1)])
            }
            let (response, waited) = try await Self.timed(
                client, ResourceBoundTests.fetch("__consumer_offsets", [(0, end)], maxWaitMs: 5_000))
            try await committer.value
            #expect(waited < .seconds(3), "answered after \(waited)")
            #expect(Self.bytes(response) > 0)
        }
    }

    /// A stale topic id (v13) beside an empty partition: answered at once, as every other
    /// error (it waited max_wait, so a consumer recovering from a re-created topic waited
    /// that long on every fetch). A zero id is UNKNOWN_TOPIC_ID too, in Fetch and Produce.
    @Test func anUnknownTopicIdIsAnsweredAtOnce() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("s", partitions: 1)
            let id = try await ServerTests.FetchSessionTests.topicId(of: "s", port: server.boundPort)
            var request = ResourceBoundTests.fetch("", [(0, 0)], maxWaitMs: 5_000)
            request.topics[0].topicId = id
            var stale = request.topics[0]
            stale.topicId = WireUUID(UUID())
            request.topics.append(stale)
            // A zero id names no topic either (it was read as a topic named "").
            var zero = request.topics[0]
            zero.topicId = .zero
            request.topics.append(zero)
            let client = try RawClient(port: server.boundPort)
            let (response, waited) = try await Self.timed(client, request, version: 13)
            #expect(waited < .seconds(2), "answered after \(waited)")
            let unknown = KafkaError.unknownTopicId.rawValue
            #expect(response.topics.flatMap(\.partitions).map(\.errorCode) == [0, unknown, unknown])

            // Produce v13 names topics by id too.
            var produce = try ResourceBoundTests.produce("", [1, 2, 3])
            produce.topics.append(produce.topics[0])
            produce.topics[0].topicId = id
            produce.topics[1].topicId = .zero
            try client.request(.produce, version: 13, correlation: 2, produce)
            let (_, body) = try #require(await client.response())
            let produced = try ProduceResponse.decode(body, from: 1, version: 13, flexible: true)
            #expect(produced.topics.flatMap(\.partitions).map(\.errorCode) == [0, unknown])
        }
    }

    /// A client that closes its connection while its fetch long-polls: the fetch ends then,
    /// and gives back its request memory (it held it, and its watches, until max_wait: three
    /// such fetches of 3 MB held up a producer's large frames for 30 s).
    @Test func aClosedConnectionEndsItsLongPoll() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("quiet", partitions: 1)
            let client = try RawClient(port: server.boundPort)
            // A frame of about 56 KB (one partition listed 2,000 times), waiting 20 s.
            try client.request(.fetch, version: 11, correlation: 1, ResourceBoundTests.fetch("quiet", Array(repeating: (0, 0), count: 2_000), maxWaitMs: 20_000))
            let parked = ContinuousClock.now + .seconds(5)
            while server.queuedRequestBytes == 0 && ContinuousClock.now < parked { try await Task.sleep(for: .milliseconds(20)) }
            try await Task.sleep(for: .milliseconds(200))
            #expect(server.queuedRequestBytes > 50_000)
            client.shutdownBoth()
            let released = ContinuousClock.now + .seconds(3)
            while server.queuedRequestBytes > 0 && ContinuousClock.now < released { try await Task.sleep(for: .milliseconds(20)) }
            #expect(server.queuedRequestBytes == 0)
        }
    }

    /// A fetch whose frame is large (over 64 KiB) waits at most 500 ms, whatever its max_wait:
    /// waiting, it holds its frame's request memory, and clients parking such fetches held the
    /// budget, and every other client's large frames, for up to five minutes.
    @Test func aLargeFetchWaitsLittle() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("quiet", partitions: 1)
            let client = try RawClient(port: server.boundPort)
            let (_, large) = try await Self.timed(client, ResourceBoundTests.fetch("quiet", Array(repeating: (0, 0), count: 20_000), maxWaitMs: 20_000))
            #expect(large >= .milliseconds(400) && large < .seconds(3), "answered after \(large)")
            let (_, small) = try await Self.timed(client, ResourceBoundTests.fetch("quiet", [(0, 0)], maxWaitMs: 1_500))
            #expect(small >= .milliseconds(1_400), "answered after \(small)")
        }
    }

    /// Fetch sessions are bounded in partitions across all sessions: past the bound a new
    /// session is not opened (the client fetches without one) and one that would grow past it
    /// ends. (1,000 sessions of 100,000 partitions each, a few hundred bytes a partition.)
    @Test func fetchSessionsAreBoundedInPartitions() {
        let cache = FetchSessionCache(maxSessions: 10, maxPartitionsPerSession: 100, maxCachedPartitions: 10)
        func request(session: Int32, epoch: Int32, _ partitions: [Int32]) -> FetchRequest {
            var request = ResourceBoundTests.fetch("t", partitions.map { ($0, 0) })
            request.sessionId = session
            request.sessionEpoch = epoch
            return request
        }
        func opened(_ plan: FetchSessionCache.Plan) -> Int32? {
            if case .full(_, let id, true) = plan { return id }
            return nil
        }
        let first = try? #require(opened(cache.plan(request(session: 0, epoch: 0, Array(0..<6)), nowMs: 0)))
        #expect(cache.cachedPartitions == 6)
        #expect(opened(cache.plan(request(session: 0, epoch: 0, Array(0..<6)), nowMs: 0)) == nil)
        #expect(cache.cachedPartitions == 6)
        // Growing past the bound ends the session.
        guard case .error(.fetchSessionIdNotFound) = cache.plan(request(session: first!, epoch: 1, Array(6..<11)), nowMs: 0) else {
            Issue.record("a session grew past the bound")
            return
        }
        #expect(cache.count == 0 && cache.cachedPartitions == 0)
        let second = opened(cache.plan(request(session: 0, epoch: 0, Array(0..<6)), nowMs: 0))
        #expect(second != nil && cache.cachedPartitions == 6)
        // A session closed gives its partitions back.
        _ = cache.plan(request(session: second!, epoch: -1, []), nowMs: 0)
        #expect(cache.count == 0 && cache.cachedPartitions == 0)
    }
} }

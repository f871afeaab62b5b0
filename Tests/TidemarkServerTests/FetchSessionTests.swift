import Synchronization
import TestSupport
import Testing
import Tidemark
import TidemarkServer
import TidemarkStorage
import TidemarkWire

/// Incremental fetch sessions (KIP-227) over a real socket: a full fetch opens a session,
/// incremental fetches carry and get only what changed.
extension ServerTests {
    @Suite(.serialized) struct FetchSessionTests {
        let client: RawClient
        var correlation: Int32 = 0
        let version: Int16
        /// Topic id (v13+) or name.
        let topicId: WireUUID

        static func produce(_ broker: Broker, partition: Int, _ value: String) async throws {
            var builder = RecordBatchBuilder()
            builder.append(timestamp: 0, key: nil, value: Array(value.utf8))
            _ = try await broker.append(topic: "s", partition: partition, batches: try builder.build())
        }

        mutating func fetch(
            session: Int32, epoch: Int32, partitions: [(Int32, Int64)], forget: [Int32] = [], maxWaitMs: Int32 = 0
        ) async throws -> FetchResponse {
            var request = FetchRequest()
            request.maxWaitMs = maxWaitMs
            request.minBytes = 1
            request.sessionId = session
            request.sessionEpoch = epoch
            var topic = FetchRequest.Topic()
            topic.topic = version >= 13 ? "" : "s"
            topic.topicId = version >= 13 ? topicId : .zero
            topic.partitions = partitions.map { index, offset in
                var p = FetchRequest.Partition()
                p.partition = index
                p.fetchOffset = offset
                return p
            }
            request.topics = partitions.isEmpty ? [] : [topic]
            if !forget.isEmpty {
                var forgotten = FetchRequest.Forgotten()
                forgotten.topic = topic.topic
                forgotten.topicId = topic.topicId
                forgotten.partitions = forget
                request.forgotten = [forgotten]
            }
            correlation += 1
            try client.request(.fetch, version: version, correlation: correlation, request)
            let (got, body) = try #require(await client.response())
            #expect(got == correlation)
            // Flexible responses start with the header's (empty) tagged-field section.
            let flexible = ApiKey.fetch.isFlexible(version)
            return try FetchResponse.decode(body, from: flexible ? 1 : 0, version: version, flexible: flexible)
        }

        /// (partition, record bytes) of each partition in the response.
        static func summary(_ response: FetchResponse) -> [Int32: Int] {
            var result: [Int32: Int] = [:]
            for topic in response.topics {
                for p in topic.partitions { result[p.partitionIndex] = p.records?.count ?? 0 }
            }
            return result
        }

        static func topicId(of topic: String, port: Int) async throws -> WireUUID {
            let client = try RawClient(port: port)
            var request = MetadataRequest()
            request.topicList = [.init(name: topic)]
            try client.request(.metadata, version: 12, correlation: 1, request)
            let (_, body) = try #require(await client.response())
            let response = try MetadataResponse.decode(body, from: 1, version: 12, flexible: true)
            return try #require(response.topics.first?.topicId)
        }

        @Test(arguments: [Int16(11), 13])
        static func incrementalFetchesCarryOnlyWhatChanged(version: Int16) async throws {
            try await ServerTests.withServer { server in
                try await server.broker.createTopic("s", partitions: 3)
                try await produce(server.broker, partition: 0, "a0")
                let id = version >= 13 ? try await topicId(of: "s", port: server.boundPort) : .zero
                var session = FetchSessionTests(client: try RawClient(port: server.boundPort), version: version, topicId: id)

                // A full fetch (epoch 0) opens a session and answers every partition.
                let full = try await session.fetch(session: 0, epoch: 0, partitions: [(0, 0), (1, 0), (2, 0)])
                #expect(full.errorCode == 0 && full.sessionId > 0)
                #expect(summary(full).keys.sorted() == [0, 1, 2] && summary(full)[0]! > 0)
                let sessionId = full.sessionId

                // Epoch 1: partition 0 moved past its record; nothing else changed: empty answer.
                let quiet = try await session.fetch(session: sessionId, epoch: 1, partitions: [(0, 1)])
                #expect(quiet.errorCode == 0 && quiet.sessionId == sessionId && summary(quiet).isEmpty)

                // A record on partition 2: an incremental fetch with no partitions gets just it.
                try await produce(server.broker, partition: 2, "a2")
                let one = try await session.fetch(session: sessionId, epoch: 2, partitions: [], maxWaitMs: 2000)
                #expect(summary(one).keys.sorted() == [2] && summary(one)[2]! > 0)

                // Out of order epochs and unknown sessions are refused at the top level.
                let stale = try await session.fetch(session: sessionId, epoch: 2, partitions: [])
                #expect(stale.errorCode == KafkaError.invalidFetchSessionEpoch.rawValue)
                let unknown = try await session.fetch(session: 99_999, epoch: 1, partitions: [])
                #expect(unknown.errorCode == KafkaError.fetchSessionIdNotFound.rawValue)

                // Forgotten partitions are no longer read: a new record on 1 after forgetting it.
                let forgot = try await session.fetch(session: sessionId, epoch: 3, partitions: [(2, 1)], forget: [1])
                #expect(summary(forgot).isEmpty)
                try await produce(server.broker, partition: 1, "a1")
                let after = try await session.fetch(session: sessionId, epoch: 4, partitions: [])
                #expect(summary(after).isEmpty)

                // Epoch -1 closes the session: the next incremental fetch on it is unknown.
                let closing = try await session.fetch(session: sessionId, epoch: -1, partitions: [(1, 0)])
                #expect(closing.sessionId == 0 && summary(closing)[1]! > 0)
                let gone = try await session.fetch(session: sessionId, epoch: 5, partitions: [])
                #expect(gone.errorCode == KafkaError.fetchSessionIdNotFound.rawValue)
                try await HostileRequestTests.expectAlive(server)
            }
        }

        /// A session's idle time is counted on the timers' clock: a wall clock stepped an hour
        /// forward (NTP at boot, a VM resumed) evicted every live session at once.
        @Test static func aClockStepDoesNotEvictLiveSessions() async throws {
            let dir = TemporaryDirectory()
            let step = Atomic<Int64>(0)
            var options = BrokerOptions()
            options.clock = { currentTimeMilliseconds() + step.load(ordering: .relaxed) }
            options.timerClock = { SteadyClock.shared.now() }
            let broker = try await Broker.open(dataDirectory: dir.path, options: options)
            var config = ServerConfig()
            config.port = 0
            let server = try await KafkaServer.start(broker: broker, config: config)
            try await broker.createTopic("s", partitions: 1)
            var session = FetchSessionTests(client: try RawClient(port: server.boundPort), version: 11, topicId: .zero)
            let full = try await session.fetch(session: 0, epoch: 0, partitions: [(0, 0)])
            #expect(full.errorCode == 0 && full.sessionId > 0)
            step.store(3_600_000, ordering: .relaxed)
            let next = try await session.fetch(session: full.sessionId, epoch: 1, partitions: [])
            #expect(next.errorCode == 0 && next.sessionId == full.sessionId)
            await server.stop()
            try await broker.close()
        }

        /// The cache is bounded: past its slots, a session in use is kept and the new client
        /// fetches without one (it used to evict the least recently used session however
        /// recently used: past the slots, consumers took turns failing). Ids are not sequential.
        @Test static func theSessionCacheIsBounded() async throws {
            try await ServerTests.withServer(configure: { $0.fetchSessionCacheSlots = 2 }) { server in
                try await server.broker.createTopic("s", partitions: 1)
                var session = FetchSessionTests(client: try RawClient(port: server.boundPort), version: 11, topicId: .zero)
                var ids: [Int32] = []
                for _ in 0..<3 { ids.append(try await session.fetch(session: 0, epoch: 0, partitions: [(0, 0)]).sessionId) }
                #expect(ids[0] != 0 && ids[1] != 0 && ids[0] != ids[1] && ids[2] == 0)
                #expect(ids[1] != ids[0] &+ 1, "random, not counted from 1")
                #expect(try await session.fetch(session: ids[0], epoch: 1, partitions: []).errorCode == 0)
                #expect(try await session.fetch(session: ids[1], epoch: 1, partitions: []).errorCode == 0)
            }
        }
    }
}

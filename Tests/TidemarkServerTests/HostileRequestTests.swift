import TestSupport
import Testing
import Tidemark
import TidemarkServer
import TidemarkStorage
import TidemarkWire

/// Requests built to make the broker trap or grow: each must be refused (an error code, or
/// this one connection closed) while the broker keeps serving everyone else.
///
/// Nested in `ServerTests` so the two never run at once: their raw clients block a
/// cooperative thread in recv while the server's request tasks need one.
extension ServerTests { @Suite(.serialized) struct HostileRequestTests {
    /// The broker still answers a fresh connection.
    static func expectAlive(_ server: KafkaServer) async throws {
        let probe = try RawClient(port: server.boundPort)
        try probe.request(.apiVersions, version: 0, correlation: 77, ApiVersionsRequest())
        let (correlation, _) = try #require(await probe.response())
        #expect(correlation == 77)
    }

    static func joinRequest(group: String) -> JoinGroupRequestMessage {
        var join = JoinGroupRequestMessage()
        join.groupId = group
        join.sessionTimeoutMs = 10_000
        join.rebalanceTimeoutMs = 10_000
        join.protocolType = "consumer"
        join.protocols = [.init(name: "range", metadata: [0, 1])]
        return join
    }

    /// A client id of 32,760 bytes used to make a member id over 32,767 bytes, and the
    /// response encoder trapped on it.
    @Test func hugeClientIdGetsABoundedMemberId() async throws {
        try await ServerTests.withServer { server in
            let client = try RawClient(port: server.boundPort)
            let clientId = String(repeating: "c", count: 32_760)
            try client.request(.joinGroup, version: 4, correlation: 1, Self.joinRequest(group: "g1"), clientId: clientId)
            let (correlation, body) = try #require(await client.response())
            #expect(correlation == 1)
            let response = try JoinGroupResponseMessage.decode(body, version: 4, flexible: false)
            #expect(response.errorCode == KafkaError.memberIdRequired.rawValue)
            #expect(response.memberId.utf8.count < 200)
            // Joining with that id works and the member is described with its full client id.
            var join = Self.joinRequest(group: "g1")
            join.memberId = response.memberId
            try client.request(.joinGroup, version: 4, correlation: 2, join, clientId: clientId)
            let (_, joined) = try #require(await client.response())
            #expect(try JoinGroupResponseMessage.decode(joined, version: 4, flexible: false).errorCode == 0)
            try await Self.expectAlive(server)
        }
    }

    /// A LeaveGroup v3+ naming one member twice trapped building a dictionary of results
    /// (found by the request fuzzer). Each entry is answered; the broker goes on.
    @Test func leaveGroupWithRepeatedMembersIsAnswered() async throws {
        try await ServerTests.withServer { server in
            let client = try RawClient(port: server.boundPort)
            for group in ["no-such-group", "g-leave"] {
                if group == "g-leave" {
                    try client.request(.joinGroup, version: 4, correlation: 1, Self.joinRequest(group: group))
                    _ = try #require(await client.response())
                }
                var leave = LeaveGroupRequest()
                leave.groupId = group
                leave.members = [.init(memberId: ""), .init(memberId: ""), .init(memberId: "m")]
                try client.request(.leaveGroup, version: 3, correlation: 2, leave)
                let (correlation, body) = try #require(await client.response())
                #expect(correlation == 2)
                let response = try LeaveGroupResponse.decode(body, version: 3, flexible: false)
                #expect(response.members.map(\.memberId) == ["", "", "m"])
                #expect(response.members.allSatisfy { $0.errorCode == KafkaError.unknownMemberId.rawValue })
            }
            try await Self.expectAlive(server)
        }
    }

    /// Invalid UTF-8 grew up to 3x when decoded with replacement characters and then trapped
    /// the int16 length of the echo. It is refused: the connection closes, others go on.
    @Test func invalidUTF8IsRefusedNotRepaired() async throws {
        try await ServerTests.withServer { server in
            // OffsetCommit metadata of 30,000 bytes of 0xFF.
            var commit = OffsetCommitRequest()
            commit.groupId = "g2"
            var topic = OffsetCommitRequest.Topic()
            topic.name = "t"
            var partition = OffsetCommitRequest.Partition()
            partition.committedMetadata = String(repeating: "M", count: 30_000)
            topic.partitions = [partition]
            commit.topics = [topic]
            var payload = try RawClient.payload(.offsetCommit, version: 2, correlation: 1, commit)
            for i in payload.indices where payload[i] == UInt8(ascii: "M") { payload[i] = 0xFF }
            let client = try RawClient(port: server.boundPort)
            client.send(frame: payload)
            #expect(await client.closedWithoutAnswer())

            // A Metadata request naming a topic of invalid UTF-8.
            var metadata = MetadataRequest()
            metadata.topics = [String(repeating: "N", count: 20_000)]
            var bad = try RawClient.payload(.metadata, version: 4, correlation: 2, metadata)
            for i in bad.indices where bad[i] == UInt8(ascii: "N") { bad[i] = 0xC3 }
            let other = try RawClient(port: server.boundPort)
            other.send(frame: bad)
            #expect(await other.closedWithoutAnswer())
            try await Self.expectAlive(server)
        }
    }

    /// Names with long runs of combining marks: Swift normalizes a string to hash or compare
    /// it, in time that grows with the square of such a run, and two 1 MiB Produce requests
    /// naming 32 topics of 16,000 marks each held both event loops for 10 s. A string with more
    /// than 30 marks in a row (not stream-safe Unicode) is refused at decoding: the connection
    /// closes. 30 in a row is a name like any other.
    @Test func namesWithLongRunsOfCombiningMarksAreRefused() async throws {
        try await ServerTests.withServer { server in
            var metadata = MetadataRequest()
            metadata.topics = ["e" + String(repeating: "\u{301}", count: 31)]
            let client = try RawClient(port: server.boundPort)
            client.send(frame: try RawClient.payload(.metadata, version: 4, correlation: 1, metadata))
            #expect(await client.closedWithoutAnswer())

            var produce = ProduceRequest()
            produce.acks = 1
            produce.timeoutMs = 1_000
            var topic = ProduceRequest.TopicData()
            topic.name = String(repeating: "\u{334}", count: 8_000)
            topic.partitions = [ProduceRequest.PartitionData()]
            produce.topics = [topic]
            let producer = try RawClient(port: server.boundPort)
            producer.send(frame: try RawClient.payload(.produce, version: 7, correlation: 2, produce))
            #expect(await producer.closedWithoutAnswer())

            // U+0F73 has combining class 0 but decomposes into two combining marks: 16 are 32.
            metadata.topics = ["a" + String(repeating: "\u{F73}", count: 16)]
            let tibetan = try RawClient(port: server.boundPort)
            tibetan.send(frame: try RawClient.payload(.metadata, version: 4, correlation: 4, metadata))
            #expect(await tibetan.closedWithoutAnswer())

            metadata.topics = ["e" + String(repeating: "\u{301}", count: 30)]
            let fine = try RawClient(port: server.boundPort)
            try fine.request(.metadata, version: 4, correlation: 3, metadata)
            let (_, body) = try #require(await fine.response())
            #expect(try MetadataResponse.decode(body, version: 4, flexible: false).topics.first?.errorCode != 0)
            try await Self.expectAlive(server)
        }
    }

    /// A Fetch naming 250,001 topics with no partitions is 1.5 MB on the wire and was about
    /// 15 times that once decoded (16 million of them took 3 GB): a request decodes at most
    /// 250,000 array elements in all (`DecodeLimits.requests`), and one past it is refused.
    @Test func arrayElementsPastTheDecodeBoundAreRefused() async throws {
        try await ServerTests.withServer(maxRequestBytes: 4 << 20) { server in
            var fetch = FetchRequest()
            fetch.maxWaitMs = 0
            fetch.topics = Array(repeating: FetchRequest.Topic(), count: 250_001)
            let client = try RawClient(port: server.boundPort)
            client.send(frame: try RawClient.payload(.fetch, version: 4, correlation: 1, fetch))
            #expect(await client.closedWithoutAnswer())
            fetch.topics = Array(repeating: FetchRequest.Topic(), count: 1_000)
            let fine = try RawClient(port: server.boundPort)
            try fine.request(.fetch, version: 4, correlation: 2, fetch)
            #expect(try #require(await fine.response()).0 == 2)
            try await Self.expectAlive(server)
        }
    }

    /// Large answers other than fetches' are held until read, against a bound of their own: an
    /// answer to a request that changes nothing, that would pass it while another is held,
    /// closes its connection instead (400 connections asking for 5 MB of DescribeConfigs and
    /// never reading held 2 GB). An answer alone is always sent, and small ones go on.
    @Test func largeAnswersPastTheResponseMemoryCloseTheirConnection() async throws {
        try await ServerTests.withServer(configure: { $0.responseMemoryBytes = 1 << 20 }) { server in
            func describe(groups: Int) -> DescribeConfigsRequest {
                var request = DescribeConfigsRequest()
                request.resources = (0..<groups).map { index in
                    var resource = DescribeConfigsRequest.Resource()
                    resource.resourceType = 32  // GROUP
                    resource.resourceName = "g\(index)"
                    return resource
                }
                return request
            }
            // About 5.4 MB: sent though over the bound (nothing else is held), and held (what
            // the socket buffers do not take) while this client reads nothing.
            let unread = try RawClient(port: server.boundPort)
            unread.send(frame: try RawClient.payload(.describeConfigs, version: 1, correlation: 1, describe(groups: 10_000)))
            // Until its answer is made and held (a fixed half second was too little for it with
            // the whole suite running beside).
            let deadline = ContinuousClock.now + .seconds(60)
            while server.responseBytesHeld <= 1 << 20 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(server.responseBytesHeld > 1 << 20)
            let greedy = try RawClient(port: server.boundPort)
            greedy.send(frame: try RawClient.payload(.describeConfigs, version: 1, correlation: 2, describe(groups: 5_000)))
            #expect(await greedy.closedWithoutAnswer())
            let modest = try RawClient(port: server.boundPort)
            try modest.request(.describeConfigs, version: 1, correlation: 3, describe(groups: 50))
            let (_, small) = try #require(await modest.response())
            #expect(try DescribeConfigsResponse.decode(small, version: 1, flexible: false).results.count == 50)
            let (answered, body) = try #require(await unread.response())
            #expect(answered == 1)
            #expect(try DescribeConfigsResponse.decode(body, version: 1, flexible: false).results.count == 10_000)
            try await Self.expectAlive(server)
        }
    }

    /// JoinGroups that wait for a rebalance give their frames' bytes back to the request
    /// budget once decoded: four parked JoinGroups of 1 MB used to hold a 4 MB budget for the
    /// whole rebalance (60 s here, up to 30 minutes), and another client's 100 KB Produce was not
    /// read until it ended. What a waiting member keeps is bounded by the coordinator.
    @Test func parkedJoinsDoNotHoldTheRequestBudget() async throws {
        try await ServerTests.withServer(maxRequestBytes: 2 << 20, configure: { $0.queuedMaxRequestBytes = 4_000_000 }) { server in
            // A member that never rejoins: the group waits for it while the others are parked.
            let first = try RawClient(port: server.boundPort)
            var join = Self.joinRequest(group: "parked")
            join.rebalanceTimeoutMs = 60_000
            join.sessionTimeoutMs = 60_000
            try first.request(.joinGroup, version: 3, correlation: 1, join)
            let (_, body) = try #require(await first.response())
            let joined = try JoinGroupResponseMessage.decode(body, version: 3, flexible: false)
            var sync = SyncGroupRequestMessage()
            sync.groupId = "parked"
            sync.memberId = joined.memberId
            sync.generationId = joined.generationId
            sync.assignments = [.init(memberId: joined.memberId, assignment: [1])]
            try first.request(.syncGroup, version: 3, correlation: 2, sync)
            _ = try #require(await first.response())

            var waiting: [RawClient] = []
            join.protocols = [.init(name: "range", metadata: [UInt8](repeating: 1, count: 999_000))]
            for index in 0..<4 {
                let client = try RawClient(port: server.boundPort)
                try client.request(.joinGroup, version: 3, correlation: Int32(10 + index), join)
                waiting.append(client)
            }
            try await Task.sleep(for: .milliseconds(500))
            var produce = ProduceRequest()
            produce.acks = 1
            var topic = ProduceRequest.TopicData()
            topic.name = "elsewhere"
            var partition = ProduceRequest.PartitionData()
            var builder = RecordBatchBuilder()
            builder.append(timestamp: 1_700_000_000_000, key: nil, value: [UInt8](repeating: 2, count: 100_000))
            partition.records = .bytes(try builder.build()[...])
            topic.partitions = [partition]
            produce.topics = [topic]
            let producer = try RawClient(port: server.boundPort)
            let started = ContinuousClock.now
            try producer.request(.produce, version: 7, correlation: 20, produce)
            #expect(try #require(await producer.response()).0 == 20)
            #expect(ContinuousClock.now - started < .seconds(30), "read only once the 60 s rebalance ended")
            _ = waiting
        }
    }

    /// Commit metadata is capped like Kafka's offset.metadata.max.bytes (4096), counted as
    /// Kafka counts it: UTF-16 code units (4,096 "é" fit, which are 8,192 UTF-8 bytes and were
    /// refused; an emoji counts two, as in Java).
    @Test func oversizedCommitMetadataIsRefusedPerPartition() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("meta", partitions: 5)
            var commit = OffsetCommitRequest()
            commit.groupId = "g3"
            var topic = OffsetCommitRequest.Topic()
            topic.name = "meta"
            let metadata = [
                String(repeating: "x", count: 4097), String(repeating: "y", count: 4096), String(repeating: "é", count: 4096),
                String(repeating: "é", count: 4097), String(repeating: "😀", count: 2049),
            ]
            topic.partitions = metadata.enumerated().map { index, text in
                var p = OffsetCommitRequest.Partition()
                p.partitionIndex = Int32(index)
                p.committedOffset = 5 + Int64(index)
                p.committedMetadata = text
                return p
            }
            commit.topics = [topic]
            let client = try RawClient(port: server.boundPort)
            try client.request(.offsetCommit, version: 2, correlation: 3, commit)
            let (_, body) = try #require(await client.response())
            let response = try OffsetCommitResponse.decode(body, version: 2, flexible: false)
            let tooLarge = KafkaError.offsetMetadataTooLarge.rawValue
            #expect(response.topics[0].partitions.map(\.errorCode) == [tooLarge, 0, 0, tooLarge, tooLarge])
            let stored = server.broker.groups.fetchOffsets(groupId: "g3")
            #expect(stored[TopicPartition("meta", 0)] == nil)
            #expect(stored[TopicPartition("meta", 1)]?.offset == 6)
            #expect(stored[TopicPartition("meta", 2)]?.metadata == metadata[2])
        }
    }

    /// A fetch asking for Int32.max bytes gets at most the broker's fetch.max.bytes, so the
    /// response always fits its int32 frame size.
    @Test func fetchIsClampedToTheBrokerLimit() async throws {
        try await ServerTests.withServer(configure: { $0.fetchMaxBytes = 4096 }) { server in
            try await server.broker.createTopic("clamp", partitions: 1)
            for i in 0..<50 {
                var builder = RecordBatchBuilder()
                builder.append(timestamp: 0, key: nil, value: [UInt8](repeating: UInt8(i), count: 500))
                _ = try await server.broker.append(topic: "clamp", partition: 0, batches: try builder.build())
            }
            var fetch = FetchRequest()
            fetch.maxBytes = Int32.max
            var topic = FetchRequest.Topic()
            topic.topic = "clamp"
            var partition = FetchRequest.Partition()
            partition.partitionMaxBytes = Int32.max
            topic.partitions = [partition]
            fetch.topics = [topic]
            let client = try RawClient(port: server.boundPort)
            try client.request(.fetch, version: 11, correlation: 1, fetch)
            let (_, body) = try #require(await client.response())
            let response = try FetchResponse.decode(body, version: 11, flexible: false)
            let records = try #require(response.topics.first?.partitions.first?.records).count
            #expect(records > 0 && records <= 4096)
        }
    }

    /// Past the bound on sendfile descriptors, fetched slices are read and copied: the same
    /// bytes, and no descriptor dup'ed (each one counted against `ulimit -n` with the rest).
    @Test func slicesPastTheSendfileBoundAreCopied() async throws {
        for bound in [0, 1_000] {
            try await ServerTests.withServer(configure: { $0.maxSendfileDescriptors = bound }) { server in
                try await server.broker.createTopic("big", partitions: 1)
                var stored: [[UInt8]] = []
                for i in 0..<4 {
                    var builder = RecordBatchBuilder()
                    builder.append(timestamp: 0, key: nil, value: [UInt8](repeating: UInt8(i), count: 48 << 10))
                    let batch = try builder.build()
                    _ = try await server.broker.append(topic: "big", partition: 0, batches: batch)
                    stored.append(batch)
                }
                var fetch = FetchRequest()
                var topic = FetchRequest.Topic()
                topic.topic = "big"
                var partition = FetchRequest.Partition()
                partition.partitionMaxBytes = 1 << 20
                topic.partitions = [partition]
                fetch.topics = [topic]
                let client = try RawClient(port: server.boundPort)
                try client.request(.fetch, version: 11, correlation: 1, fetch)
                let (_, body) = try #require(await client.response())
                let fetched = try FetchResponse.decode(body, version: 11, flexible: false).topics[0].partitions[0]
                guard case .bytes(let view)? = fetched.records else {
                    Issue.record("no records")
                    return
                }
                // Walk the batches: base offset (8), length (4), then `length` bytes.
                let bytes = Array(view)
                var values: [[UInt8]] = []
                var at = 0
                while at + 12 <= bytes.count {
                    let length = bytes[(at + 8)..<(at + 12)].reduce(0) { $0 << 8 | Int($1) }
                    guard at + 12 + length <= bytes.count else { break }
                    values.append(try RecordBatch(decoding: Array(bytes[at..<(at + 12 + length)])).records.first?.value ?? [])
                    at += 12 + length
                }
                #expect(values == (0..<4).map { [UInt8](repeating: UInt8($0), count: 48 << 10) }, "bound \(bound)")
                // Each dup'ed descriptor is closed (and uncounted) once its write completes.
                let deadline = ContinuousClock.now + .seconds(5)
                while server.sendfileDescriptorsOpen != 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
                #expect(server.sendfileDescriptorsOpen == 0)
                #expect(bound == 0 ? server.slicesCopied >= 1 : server.slicesCopied == 0, "bound \(bound): \(server.slicesCopied) copied")
            }
        }
    }

    /// A slice copied because every sendfile descriptor is held counts against the response
    /// memory: one that would take it past its bound closes the connection (the client
    /// fetches again) instead of being copied whatever the bound (an outside hunt: 1,300
    /// connections fetching 60 MB each and never reading held 2.7 GB). One that fits is copied.
    @Test func copiesPastTheSendfileBoundKeepToTheResponseMemory() async throws {
        try await ServerTests.withServer(configure: {
            $0.maxSendfileDescriptors = 0
            $0.responseMemoryBytes = 128 << 10
        }) { server in
            try await server.broker.createTopic("big", partitions: 1)
            for i in 0..<4 {
                var builder = RecordBatchBuilder()
                builder.append(timestamp: 0, key: nil, value: [UInt8](repeating: UInt8(i), count: 48 << 10))
                _ = try await server.broker.append(topic: "big", partition: 0, batches: try builder.build())
            }
            func fetch(maxBytes: Int32) async throws -> FetchResponse? {
                var fetch = FetchRequest()
                var topic = FetchRequest.Topic()
                topic.topic = "big"
                var partition = FetchRequest.Partition()
                partition.partitionMaxBytes = maxBytes
                topic.partitions = [partition]
                fetch.topics = [topic]
                let client = try RawClient(port: server.boundPort)
                try client.request(.fetch, version: 11, correlation: 1, fetch)
                guard let (_, body) = await client.response() else { return nil }
                return try FetchResponse.decode(body, version: 11, flexible: false)
            }
            // One batch (48 KiB) fits the room: copied and answered.
            let small = try #require(try await fetch(maxBytes: 60 << 10))
            #expect(small.topics[0].partitions[0].errorCode == 0)
            #expect(server.slicesCopied == 1)
            // Four (192 KiB) do not: the connection closes, nothing is copied.
            #expect(try await fetch(maxBytes: 1 << 20) == nil)
            #expect(server.slicesCopied == 1 && server.responseBytesHeld == 0)
            // Two partitions of 96 KiB each fit the room alone but not together: the second
            // closes the connection (each was checked alone).
            try await server.broker.createTopic("pair", partitions: 2)
            for p in 0..<2 {
                for i in 0..<2 {
                    var builder = RecordBatchBuilder()
                    builder.append(timestamp: 0, key: nil, value: [UInt8](repeating: UInt8(i), count: 48 << 10))
                    _ = try await server.broker.append(topic: "pair", partition: p, batches: try builder.build())
                }
            }
            var both = FetchRequest()
            var topic = FetchRequest.Topic()
            topic.topic = "pair"
            topic.partitions = (0..<2).map { index in
                var partition = FetchRequest.Partition()
                partition.partition = Int32(index)
                partition.partitionMaxBytes = 1 << 20
                return partition
            }
            both.topics = [topic]
            let client = try RawClient(port: server.boundPort)
            try client.request(.fetch, version: 11, correlation: 1, both)
            #expect(await client.response() == nil)
            #expect(server.slicesCopied == 2 && server.responseBytesHeld == 0)
        }
    }

    /// EIO on fdatasync: the producer gets KAFKA_STORAGE_ERROR (56), now and for every later
    /// append to that log, while fetches of what it holds are still answered.
    @Test func fsyncFailureAnswersKafkaStorageError() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("eio", partitions: 1, config: TopicConfig(flushPolicy: .everyAppend))
            var builder = RecordBatchBuilder()
            builder.append(timestamp: 0, key: nil, value: Array("kept".utf8))
            let client = try RawClient(port: server.boundPort)
            try client.request(.produce, version: 7, correlation: 1, ServerTests.produceRequest(topic: "eio", batch: try builder.build()))
            let (_, first) = try #require(await client.response())
            #expect(try ProduceResponse.decode(first, version: 7, flexible: false).topics[0].partitions[0].errorCode == 0)

            let scope = server.broker.dataDirectory + "/eio-0/"
            StorageFaults.inject(.sync, .ioError, pathContains: scope)
            defer { StorageFaults.clear(pathContains: scope) }
            for correlation in Int32(2)...3 {
                try client.request(.produce, version: 7, correlation: correlation, ServerTests.produceRequest(topic: "eio", batch: try builder.build()))
                let (_, body) = try #require(await client.response())
                let code = try ProduceResponse.decode(body, version: 7, flexible: false).topics[0].partitions[0].errorCode
                #expect(code == KafkaError.kafkaStorageError.rawValue)
            }
            var fetch = FetchRequest()
            var topic = FetchRequest.Topic()
            topic.topic = "eio"
            topic.partitions = [FetchRequest.Partition()]
            fetch.topics = [topic]
            try client.request(.fetch, version: 11, correlation: 4, fetch)
            let (_, fetched) = try #require(await client.response())
            let partition = try FetchResponse.decode(fetched, version: 11, flexible: false).topics[0].partitions[0]
            #expect(partition.errorCode == 0)
            guard case .bytes(let view)? = partition.records, case let bytes = Array(view) else { return }
            #expect(try RecordBatch(decoding: bytes).records.first?.value == Array("kept".utf8))  // the first batch
        }
    }

    /// Batches with valid CRCs and wrong contents get Kafka's codes and are not stored.
    @Test func malformedBatchesGetKafkaErrorCodes() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("bad", partitions: 1)
            var future = RecordBatchBuilder()
            future.append(timestamp: currentTimeMilliseconds() + 7_200_000, key: nil, value: [1])
            var crc = try RecordBatchBuilder().built(value: [2])
            crc[crc.count - 1] ^= 1
            let cases: [([UInt8], KafkaError)] = [
                (ForgedBatch.batch(records: ForgedBatch.record(), attributes: 0x20), .invalidRecord),
                (ForgedBatch.batch(records: ForgedBatch.record(), lastOffsetDelta: Int32.max), .invalidRecord),
                (ForgedBatch.batch(records: ForgedBatch.record(lengthBytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x7F])), .invalidRecord),
                (try future.build(), .invalidTimestamp),
                (crc, .corruptMessage),
            ]
            let client = try RawClient(port: server.boundPort)
            for (index, (batch, expected)) in cases.enumerated() {
                try client.request(.produce, version: 7, correlation: Int32(index), ServerTests.produceRequest(topic: "bad", batch: batch))
                let (_, body) = try #require(await client.response())
                #expect(try ProduceResponse.decode(body, version: 7, flexible: false).topics[0].partitions[0].errorCode == expected.rawValue)
            }
            #expect(try server.broker.offsets(topic: "bad", partition: 0).end == 0)
        }
    }

    /// Twelve connections each holding an unfinished near-limit frame: the broker reserves at
    /// most its request budget for them (the others stop being read), small requests from
    /// other clients are still answered, and unfinished frames time out and give the budget back.
    @Test func unfinishedHugeFramesAreBounded() async throws {
        try await ServerTests.withServer(configure: {
            $0.queuedMaxRequestBytes = 2 << 20
            $0.frameTimeoutMs = 5_000  // seconds: a loaded run may take a while to send them all
        }) { server in
            let frame = 1_000_000
            var holders: [RawClient] = []
            for _ in 0..<12 {
                let client = try RawClient(port: server.boundPort)
                client.send(withUnsafeBytes(of: Int32(frame).bigEndian) { Array($0) } + [UInt8](repeating: 7, count: 100_000))
                holders.append(client)
            }
            let admitted = ContinuousClock.now + .seconds(4)
            while server.queuedRequestBytes < frame && ContinuousClock.now < admitted { try await Task.sleep(for: .milliseconds(5)) }
            #expect(server.queuedRequestBytes >= frame)
            // Then, for a second (the frame timeout is 5 s), the budget is never passed however
            // many of the twelve the broker has read from.
            var most = 0
            let watched = ContinuousClock.now + .seconds(1)
            while ContinuousClock.now < watched {
                most = max(most, server.queuedRequestBytes)
                try await Task.sleep(for: .milliseconds(2))
            }
            #expect(most >= frame && most <= 2 << 20, "\(most) bytes reserved")
            try await Self.expectAlive(server)
            // The timeout closes every holder (those waiting for budget once admitted) and gives
            // everything back.
            for holder in holders { #expect(await holder.closedWithoutAnswer()) }
            let deadline = ContinuousClock.now + .seconds(30)
            while server.queuedRequestBytes > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(server.queuedRequestBytes == 0)
            try await Self.expectAlive(server)
        }
    }

    /// `count` fetches of partition 0 of `topic` from offset 0 (no wait), framed back to back.
    static func pipelinedFetches(topic name: String, count: Int) throws -> [UInt8] {
        var fetch = FetchRequest()
        fetch.maxWaitMs = 0
        var topic = FetchRequest.Topic()
        topic.topic = name
        var partition = FetchRequest.Partition()
        partition.partitionMaxBytes = 1 << 20
        topic.partitions = [partition]
        fetch.topics = [topic]
        var pipelined: [UInt8] = []
        for correlation in 0..<count {
            let payload = try RawClient.payload(.fetch, version: 11, correlation: Int32(correlation), fetch)
            pipelined += RawClient.framed(payload)
        }
        return pipelined
    }

    /// The same client, for longer than the frame timeout: closed, and the requests it had
    /// queued give their share of the request budget back (they used to hold it for as long
    /// as the client liked).
    @Test func aClientThatNeverReadsIsClosedAfterTheFrameTimeout() async throws {
        try await ServerTests.withServer(configure: { $0.frameTimeoutMs = 3_000 }) { server in
            try await server.broker.createTopic("stalled", partitions: 1)
            let producer = try await Producer(broker: server.broker)
            _ = try await producer.send(topic: "stalled", key: nil, value: [UInt8](repeating: 7, count: 900_000), partition: 0)
            let client = try RawClient(port: server.boundPort)
            // 100 whole frames (9 KB: read at once, so no frame is left half read for the
            // frame timeout to catch) asking for 90 MB of answers.
            client.send(try Self.pipelinedFetches(topic: "stalled", count: 100))
            let queued = ContinuousClock.now + .seconds(2)
            while server.queuedRequestBytes == 0 && ContinuousClock.now < queued { try await Task.sleep(for: .milliseconds(5)) }
            #expect(server.queuedRequestBytes > 0)
            let deadline = ContinuousClock.now + .seconds(30)
            while server.queuedRequestBytes > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(server.queuedRequestBytes == 0)
            // It reads what was sent before the close, then the end of the stream.
            var answers = 0
            while await client.response() != nil { answers += 1 }
            #expect(answers < 100)
            try await Self.expectAlive(server)
        }
    }

    /// A client that pipelines fetches and never reads the answers: the broker stops starting
    /// its requests (and reading its socket) once 64 KiB of answers wait unsent, instead of
    /// buffering every answer; reading them later gets every one, in order.
    @Test func answersNobodyReadsAreNotBufferedWithoutBound() async throws {
        let node = try await HTTPMetricsTests.start()
        try await node.broker.createTopic("unread", partitions: 1)
        let producer = try await Producer(broker: node.broker)
        _ = try await producer.send(topic: "unread", key: nil, value: [UInt8](repeating: 7, count: 30_000), partition: 0)
        let client = try RawClient(port: node.server.boundPort)
        client.send(try Self.pipelinedFetches(topic: "unread", count: 1000))
        try await Task.sleep(for: .seconds(1))
        let handled = try await node.scrape()[Sample(name: "tidemark_kafka_requests_total", labels: ["api": "Fetch"])] ?? 0
        // What the socket buffers hold (a few MB) is answered; the rest waits for the client.
        #expect(handled < 700, "\(handled) fetches answered into a socket nobody reads")
        for correlation in 0..<1000 {
            let (answered, body) = try #require(await client.response())
            #expect(answered == Int32(correlation))
            if correlation == 999 { #expect(try FetchResponse.decode(body, version: 11, flexible: false).topics[0].partitions[0].errorCode == 0) }
        }
        try await node.stop()
    }

    /// A frame header, then a byte at a time: the connection is closed at the frame timeout.
    @Test func slowFramesAreClosed() async throws {
        try await ServerTests.withServer(configure: { $0.frameTimeoutMs = 300 }) { server in
            let slow = try RawClient(port: server.boundPort)
            slow.send(withUnsafeBytes(of: Int32(1000).bigEndian) { Array($0) })
            let started = ContinuousClock.now
            for _ in 0..<3 {
                try await Task.sleep(for: .milliseconds(50))
                slow.send([1])
            }
            #expect(await slow.closedWithoutAnswer())
            #expect(ContinuousClock.now - started < .seconds(5))
            try await Self.expectAlive(server)
        }
    }

    /// `--frame-timeout-ms 9223372036854775807` (Kafka's usual "never"): a frame that arrives in
    /// two reads is read and answered. Its overall deadline (three timeouts) overflowed
    /// TimeAmount's `*` and ended the process at the first frame split across reads.
    @Test func aFrameTimeoutOfInt64MaxMeansNever() async throws {
        try await ServerTests.withServer(configure: { $0.frameTimeoutMs = .max }) { server in
            let client = try RawClient(port: server.boundPort)
            let frame = RawClient.framed(try RawClient.payload(.apiVersions, version: 0, correlation: 5, ApiVersionsRequest()))
            client.send(Array(frame.prefix(6)))
            try await Task.sleep(for: .milliseconds(100))
            client.send(Array(frame.dropFirst(6)))
            let (correlation, _) = try #require(await client.response())
            #expect(correlation == 5)
            try await Self.expectAlive(server)
        }
    }
}
}

extension RecordBatchBuilder {
    func built(value: [UInt8]) throws -> [UInt8] {
        var copy = self
        copy.append(timestamp: currentTimeMilliseconds(), key: nil, value: value)
        return try copy.build()
    }
}

import Foundation
import TestSupport
import Testing
@testable import Tidemark
import TidemarkServer
import TidemarkStorage
import TidemarkWire

/// ShareFetch runs on the connection's event loop; what would wait for the disk does not.
extension ServerTests {
    static func shareFetch(
        _ client: RawClient, topicId: WireUUID, partitions: [Int32] = [0], maxRecords: Int32 = 1, epoch: Int32, correlation: Int32
    ) async throws -> ShareFetchResponse {
        try sendShareFetch(client, topicId: topicId, partitions: partitions, maxRecords: maxRecords, epoch: epoch, correlation: correlation)
        let (c, body) = try #require(await client.response())
        #expect(c == correlation)
        return try ShareFetchResponse.decode(body, from: 1, version: 1, flexible: true)
    }

    /// Sends `member`'s ShareFetch (a long poll of `maxWaitMs`) without waiting for its answer;
    /// `partitions` are listed when it opens the session (epoch 0), `add` (added to it) at a
    /// later epoch, `forget` forgotten.
    static func sendShareFetch(
        _ client: RawClient, topicId: WireUUID, partitions: [Int32] = [0], maxRecords: Int32 = 1, epoch: Int32, correlation: Int32,
        add: [Int32] = [], forget: [Int32] = [], member: String = "worker-1", maxWaitMs: Int32 = 2_000, group: String = "workers"
    ) throws {
        var request = ShareFetchRequest()
        request.groupId = group
        request.memberId = member
        request.shareSessionEpoch = epoch
        request.maxWaitMs = maxWaitMs
        request.maxRecords = maxRecords
        request.batchSize = maxRecords
        let listed = epoch == 0 ? partitions : add
        if !listed.isEmpty {
            var topic = ShareAcknowledgeTopic()
            topic.topicId = topicId
            topic.partitions = listed.map { .init(partitionIndex: $0) }
            request.topics = [topic]
        }
        if !forget.isEmpty { request.forgottenTopicsData = [ConsumerTopicPartitions(topicId: topicId, partitions: forget)] }
        try client.request(.shareFetch, version: 1, correlation: correlation, request)
    }

    /// `member`'s ShareAcknowledge of `offset` of partition 0 (`type`: 1 accept, 2 release,
    /// 3 reject) at session `epoch`; returns the answer.
    static func acknowledge(
        _ client: RawClient, topicId: WireUUID, member: String = "worker-1", _ offset: Int64, type: Int8, epoch: Int32,
        correlation: Int32 = 99
    ) async throws -> ShareAcknowledgeResponse {
        var request = ShareAcknowledgeRequest()
        request.groupId = "workers"
        request.memberId = member
        request.shareSessionEpoch = epoch
        var topic = ShareAcknowledgeTopic()
        topic.topicId = topicId
        topic.partitions = [
            .init(partitionIndex: 0, acknowledgementBatches: [.init(firstOffset: offset, lastOffset: offset, acknowledgeTypes: [type])])
        ]
        request.topics = [topic]
        try client.request(.shareAcknowledge, version: 1, correlation: correlation, request)
        let (_, body) = try #require(await client.response())
        return try ShareAcknowledgeResponse.decode(body, from: 1, version: 1, flexible: true)
    }

    /// A topic of `partitions` partitions, a client in the "workers" share group on it, the
    /// topic's id, and its partitions' append notifiers (to count the watches on them).
    static func watchedTopic(_ server: KafkaServer, _ topic: String, partitions: Int) async throws
        -> (RawClient, WireUUID, [AppendNotifier])
    {
        try await server.broker.createTopic(topic, partitions: partitions)
        let client = try RawClient(port: server.boundPort)
        try await Self.joinShareGroup(client, topic: topic)
        let topicId = try await FetchSessionTests.topicId(of: topic, port: server.boundPort)
        let notifiers = try (0..<partitions).map { try server.broker.partitionState(topic, $0).notifier }
        return (client, topicId, notifiers)
    }

    /// A one-partition topic holding `jobs` records "job-0"... in one batch, and a client that
    /// joined the "workers" share group on it: (the client, the topic's id).
    static func jobsTopic(_ server: KafkaServer, _ topic: String, jobs: Int) async throws -> (RawClient, WireUUID) {
        try await server.broker.createTopic(topic, partitions: 1)
        let client = try RawClient(port: server.boundPort)
        var builder = RecordBatchBuilder(compression: .none)
        for i in 0..<jobs { builder.append(timestamp: 1000, key: nil, value: Array("job-\(i)".utf8)) }
        try await Self.produceEach(client, topic: topic, [try builder.build()])
        try await Self.joinShareGroup(client, topic: topic)
        return (client, try await FetchSessionTests.topicId(of: topic, port: server.boundPort))
    }

    static func joinShareGroup(_ client: RawClient, topic: String, member: String = "worker-1") async throws {
        var heartbeat = ShareGroupHeartbeatRequest()
        heartbeat.groupId = "workers"
        heartbeat.memberId = member
        heartbeat.subscribedTopicNames = [topic]
        try client.request(.shareGroupHeartbeat, version: 1, correlation: 1, heartbeat)
        let (_, joined) = try #require(await client.response())
        #expect(try ShareGroupHeartbeatResponse.decode(joined, from: 1, version: 1, flexible: true).errorCode == 0)
    }

    /// Jobs whose log is not in the page cache: the first fetch must read the records' keys and
    /// delays (its acquire) and then their batch, the second fetch the batch again; each of the
    /// three reads happens off the loop (the loop's own attempts only look at the page cache;
    /// `.readNoWait` is injected to make them miss for certain), and each job arrives once.
    @Test func coldJobsAreAcquiredAndReadOffTheEventLoop() async throws {
        try await Self.withServer { server in
            try await server.broker.createTopic("coldjobs", partitions: 1)
            let client = try RawClient(port: server.boundPort)
            var builder = RecordBatchBuilder(compression: .none)
            for i in 0..<3 { builder.append(timestamp: 1000, key: Array("k\(i)".utf8), value: [UInt8](repeating: UInt8(i), count: 200)) }
            let batch = try builder.build()
            try await Self.produceEach(client, topic: "coldjobs", [batch])
            let log = server.broker.dataDirectory + "/coldjobs-0/00000000000000000000.log"

            try await Self.joinShareGroup(client, topic: "coldjobs")
            let topicId = try await FetchSessionTests.topicId(of: "coldjobs", port: server.boundPort)

            StorageFaults.inject(.readNoWait, .resourceTemporarilyUnavailable, pathContains: log, times: nil)
            defer { StorageFaults.clear(pathContains: log) }
            try dropFromPageCache(log)
            let first = try await Self.shareFetch(client, topicId: topicId, epoch: 0, correlation: 2)
            let p0 = try #require(first.responses.first?.partitions.first)
            #expect(p0.errorCode == 0)
            #expect(p0.acquiredRecords.map { [$0.firstOffset, $0.lastOffset, Int64($0.deliveryCount)] } == [[0, 0, 1]])
            guard case .bytes(let got0)? = p0.records else { throw TidemarkError(.invalidRequest, "no records") }
            #expect(Array(got0)[8...] == batch[8...])
            #expect(server.fetchReadsOffLoop == 2, "the acquire's scan and the batch's read")

            // The window already knows offset 1; its batch is cold again.
            try dropFromPageCache(log)
            let second = try await Self.shareFetch(client, topicId: topicId, epoch: 1, correlation: 3)
            let p1 = try #require(second.responses.first?.partitions.first)
            #expect(p1.errorCode == 0)
            #expect(p1.acquiredRecords.map { [$0.firstOffset, $0.lastOffset, Int64($0.deliveryCount)] } == [[1, 1, 1]])
            guard case .bytes(let got1)? = p1.records else { throw TidemarkError(.invalidRequest, "no records") }
            #expect(Array(got1)[8...] == batch[8...])
            #expect(server.fetchReadsOffLoop == 3, "the batch's read")
        }
    }

    /// A ShareFetch opens a session only for a member of the group: one naming a group and
    /// member no heartbeat made is UNKNOWN_MEMBER_ID and makes no share group (an outside hunt:
    /// 1,000 made-up groups in 0.2 s locked real ones out at `group.share.max.groups`, and
    /// their members acquired real jobs), answered after the fetch's wait (a client whose
    /// membership a restart forgot fetches again at once until it rejoins). The member that
    /// joined is served.
    @Test func aShareFetchNeedsAMemberOfTheGroup() async throws {
        try await Self.withServer { server in
            let (client, topicId) = try await Self.jobsTopic(server, "members", jobs: 2)
            let stranger = try RawClient(port: server.boundPort)
            try Self.sendShareFetch(stranger, topicId: topicId, epoch: 0, correlation: 5, member: "made-up", maxWaitMs: 0)
            let (_, body) = try #require(await stranger.response())
            let refused = try ShareFetchResponse.decode(body, from: 1, version: 1, flexible: true)
            #expect(refused.errorCode == 25 && refused.responses.isEmpty)
            let asked = ContinuousClock.now
            try Self.sendShareFetch(
                stranger, topicId: topicId, epoch: 0, correlation: 6, member: "nobody", maxWaitMs: 300, group: "phantom")
            let (_, phantom) = try #require(await stranger.response())
            #expect(ContinuousClock.now - asked >= .milliseconds(290), "held for the fetch's wait")
            #expect(try ShareFetchResponse.decode(phantom, from: 1, version: 1, flexible: true).errorCode == 25)
            #expect(!server.broker.shares.isShareGroup("phantom"))
            let served = try await Self.shareFetch(client, topicId: topicId, epoch: 0, correlation: 7)
            #expect(served.errorCode == 0 && served.responses.first?.partitions.first?.acquiredRecords.first?.firstOffset == 0)
        }
    }

    /// A ShareFetch's answer is a copy, held until its client reads it: with the response
    /// memory full, nothing is acquired (the poll waits, answered empty at its deadline)
    /// rather than read whatever the bound (an outside hunt: 50 connections fetching 60 MB each
    /// and never reading held 2.8 GB); once the memory is free they are served.
    @Test func aShareFetchKeepsToTheResponseMemory() async throws {
        try await Self.withServer(configure: { $0.responseMemoryBytes = 1 << 20 }) { server in
            let (client, topicId) = try await Self.jobsTopic(server, "held", jobs: 2)
            // An unread answer of about 5.4 MB fills the response memory.
            var describe = DescribeConfigsRequest()
            describe.resources = (0..<10_000).map { index in
                var resource = DescribeConfigsRequest.Resource()
                resource.resourceType = 32
                resource.resourceName = "g\(index)"
                return resource
            }
            let unread = try RawClient(port: server.boundPort)
            unread.send(frame: try RawClient.payload(.describeConfigs, version: 1, correlation: 1, describe))
            let deadline = ContinuousClock.now + .seconds(60)
            while server.responseBytesHeld <= 1 << 20 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(server.responseBytesHeld > 1 << 20)
            // Nothing acquired for an answer that could not be held: the poll waits out its wait
            // (it answered at once, giving the job back, and workers polled in a busy loop).
            let asked = ContinuousClock.now
            try Self.sendShareFetch(client, topicId: topicId, epoch: 0, correlation: 2, maxWaitMs: 500)
            let (_, body) = try #require(await client.response())
            #expect(ContinuousClock.now - asked >= .milliseconds(490))
            let empty = try ShareFetchResponse.decode(body, from: 1, version: 1, flexible: true)
            #expect(empty.errorCode == 0)
            #expect(empty.responses.flatMap(\.partitions).allSatisfy { $0.acquiredRecords.isEmpty }, "\(empty.responses)")
            _ = try #require(await unread.response())
            let freed = ContinuousClock.now + .seconds(10)
            while server.responseBytesHeld > 0 && ContinuousClock.now < freed { try await Task.sleep(for: .milliseconds(10)) }
            let served = try await Self.shareFetch(client, topicId: topicId, epoch: 1, correlation: 3)
            #expect(served.responses.first?.partitions.first?.acquiredRecords.first?.firstOffset == 0, "the job was given back")
        }
    }

    /// ShareAcknowledge with a partition's batches overlapping (the same record accepted and
    /// released) is answered INVALID_REQUEST for that partition, as Kafka does, and the record
    /// stays acquired; a partition listed twice counts as its last listing (Kafka's map); the
    /// batches in order are then applied.
    @Test func overlappingAcknowledgementBatchesAreInvalid() async throws {
        try await Self.withServer { server in
            let (client, topicId) = try await Self.jobsTopic(server, "acks", jobs: 2)
            let fetched = try await Self.shareFetch(client, topicId: topicId, maxRecords: 2, epoch: 0, correlation: 2)
            #expect(fetched.responses.first?.partitions.first?.acquiredRecords.map(\.lastOffset) == [1])
            func acknowledge(_ batches: [(Int64, Int64, Int8)], epoch: Int32, correlation: Int32,
                             listedBefore: [(Int64, Int64, Int8)]? = nil) async throws -> Int16? {
                var request = ShareAcknowledgeRequest()
                request.groupId = "workers"
                request.memberId = "worker-1"
                request.shareSessionEpoch = epoch
                var topic = ShareAcknowledgeTopic()
                topic.topicId = topicId
                topic.partitions = [listedBefore, batches].compactMap { $0 }.map { batches in
                    ShareAcknowledgeTopic.Partition(
                        partitionIndex: 0,
                        acknowledgementBatches: batches.map { .init(firstOffset: $0.0, lastOffset: $0.1, acknowledgeTypes: [$0.2]) })
                }
                request.topics = [topic]
                try client.request(.shareAcknowledge, version: 1, correlation: correlation, request)
                let (_, body) = try #require(await client.response())
                let response = try ShareAcknowledgeResponse.decode(body, from: 1, version: 1, flexible: true)
                return response.responses.first?.partitions.first?.errorCode
            }
            #expect(try await acknowledge([(0, 1, 1), (1, 1, 2)], epoch: 1, correlation: 3) == KafkaError.invalidRequest.rawValue)
            #expect(server.broker.shares.summaries("workers", view: server.broker.shareLogView).first?.acquired == 2)
            #expect(try await acknowledge([(0, 0, 1), (1, 1, 2)], epoch: 2, correlation: 4, listedBefore: [(1, 1, 1), (0, 0, 2)]) == 0)
            let summary = try #require(server.broker.shares.summaries("workers", view: server.broker.shareLogView).first)
            #expect(summary.startOffset == 1 && summary.acquired == 0 && summary.available == 1)
        }
    }

    /// A partition whose next records are not in the page cache is served in the same fetch as
    /// one whose records are (the loop's acquire leaves it out; the executor acquires from it),
    /// not starved while the other always has records.
    /// A ShareFetch's max_bytes bounds its answer: the first partition with records goes whole,
    /// the records acquired past the budget are given back unread (each partition read at
    /// least its first batch: 1,000 partitions of 1 MiB batches made 1 GiB at max_bytes 1), and
    /// the next fetch gets them at once (not after their lock expires).
    @Test func aShareFetchPastItsByteBudgetGivesTheRestBack() async throws {
        try await Self.withServer { server in
            try await server.broker.createTopic("wide", partitions: 4)
            let client = try RawClient(port: server.boundPort)
            let batches = try (0..<4).map { p in
                var builder = RecordBatchBuilder(compression: .none)
                builder.append(timestamp: 1000, key: nil, value: [UInt8](repeating: UInt8(p), count: 10_000))
                return try builder.build()
            }
            try await Self.produceEach(client, topic: "wide", batches)
            try await Self.joinShareGroup(client, topic: "wide")
            let topicId = try await FetchSessionTests.topicId(of: "wide", port: server.boundPort)
            var request = ShareFetchRequest()
            request.groupId = "workers"
            request.memberId = "worker-1"
            request.shareSessionEpoch = 0
            request.maxWaitMs = 1_000
            request.maxBytes = 1
            request.maxRecords = 100
            request.batchSize = 100
            var topic = ShareAcknowledgeTopic()
            topic.topicId = topicId
            topic.partitions = (0..<4).map { .init(partitionIndex: $0) }
            request.topics = [topic]
            try client.request(.shareFetch, version: 1, correlation: 2, request)
            let (_, body) = try #require(await client.response())
            let first = try ShareFetchResponse.decode(body, from: 1, version: 1, flexible: true)
            let got = first.responses.flatMap(\.partitions).filter { !$0.acquiredRecords.isEmpty }.map(\.partitionIndex)
            #expect(got.count == 1, "\(got)")
            let rest = try await Self.shareFetch(client, topicId: topicId, partitions: [], maxRecords: 100, epoch: 1, correlation: 3)
            let then = rest.responses.flatMap(\.partitions).filter { !$0.acquiredRecords.isEmpty }.map(\.partitionIndex)
            #expect(Set(then).union(got) == [0, 1, 2, 3] && then.count == 3, "\(then)")
        }
    }

    /// A batch of 200,000 empty records (LZ4: about 1 KB stored, 1.6 MB decompressed, some 14 MB
    /// as decoded records): a worker taking one job at a time gets each trimmed to its record,
    /// and the broker keeps none of it decoded; a batch of a few large records is kept once, at
    /// its decoded size. (The cache counted stored bytes: batches of tiny records held many times that.)
    @Test func aBatchOfManyTinyRecordsIsTrimmedAndNotKept() async throws {
        try await Self.withServer { server in
            try await server.broker.createTopic("tiny", partitions: 1)
            let client = try RawClient(port: server.boundPort)
            var builder = RecordBatchBuilder(compression: .lz4)
            for _ in 0..<200_000 { builder.append(timestamp: 1000, key: nil, value: []) }
            let tiny = try builder.build()
            try await Self.produceEach(client, topic: "tiny", [tiny])
            try await Self.joinShareGroup(client, topic: "tiny")
            let topicId = try await FetchSessionTests.topicId(of: "tiny", port: server.boundPort)
            for (epoch, offset) in [(Int32(0), Int64(0)), (1, 1), (2, 2)] {
                let answer = try await Self.shareFetch(client, topicId: topicId, epoch: epoch, correlation: 2 + epoch)
                let p0 = try #require(answer.responses.first?.partitions.first)
                #expect(p0.acquiredRecords.map { [$0.firstOffset, $0.lastOffset] } == [[offset, offset]])
                guard case .bytes(let got)? = p0.records else { throw TidemarkError(.invalidRequest, "no records") }
                let batch = try RecordBatch(decoding: Array(got))
                #expect(batch.records.map { batch.offset(of: $0) } == [offset])
            }
            #expect(server.shareBatchesCached.count == 0)

            // Eight records of 4 KB: one acquired, trimmed, and the batch kept decoded.
            try await server.broker.createTopic("large", partitions: 1)
            var large = RecordBatchBuilder(compression: .none)
            for i in 0..<8 { large.append(timestamp: 1000, key: nil, value: [UInt8](repeating: UInt8(i), count: 4_000)) }
            try await Self.produceEach(client, topic: "large", [try large.build()])
            let largeId = try await FetchSessionTests.topicId(of: "large", port: server.boundPort)
            let answer = try await Self.shareFetch(client, topicId: largeId, epoch: 0, correlation: 10)
            #expect(answer.responses.first?.partitions.first?.acquiredRecords.map(\.lastOffset) == [0])
            #expect(server.shareBatchesCached.count == 1)
            #expect((32_000..<40_000).contains(server.shareBatchesCached.bytes), "\(server.shareBatchesCached.bytes)")
        }
    }

    @Test func aColdPartitionIsServedBesideAHotOne() async throws {
        try await Self.withServer { server in
            try await server.broker.createTopic("mixed", partitions: 2)
            let client = try RawClient(port: server.boundPort)
            let batches = try (0..<2).map { p in
                var builder = RecordBatchBuilder(compression: .none)
                builder.append(timestamp: 1000, key: nil, value: Array("job-\(p)".utf8))
                return try builder.build()
            }
            try await Self.produceEach(client, topic: "mixed", batches)
            try await Self.joinShareGroup(client, topic: "mixed")
            let topicId = try await FetchSessionTests.topicId(of: "mixed", port: server.boundPort)
            let cold = server.broker.dataDirectory + "/mixed-1/"
            StorageFaults.inject(.readNoWait, .resourceTemporarilyUnavailable, pathContains: cold, times: nil)
            defer { StorageFaults.clear(pathContains: cold) }
            let fetched = try await Self.shareFetch(client, topicId: topicId, partitions: [0, 1], maxRecords: 10, epoch: 0, correlation: 2)
            let answered = fetched.responses.flatMap(\.partitions).filter { !$0.acquiredRecords.isEmpty }.map(\.partitionIndex)
            #expect(answered.sorted() == [0, 1])
        }
    }

    /// Partitions a topic does not have are answered UNKNOWN_TOPIC_OR_PARTITION and never join
    /// the share session (listing millions of them would grow it without bound). A partition
    /// whose acknowledgement names a type that does not exist is answered once: its records,
    /// and the acknowledgement refused (INVALID_REQUEST), as Kafka does.
    @Test func partitionsThatDoNotExistAreRefusedAndBadAcknowledgementTypesAnsweredOnce() async throws {
        try await Self.withServer { server in
            let (client, topicId) = try await Self.jobsTopic(server, "one", jobs: 2)
            let fetched = try await Self.shareFetch(client, topicId: topicId, partitions: [0, 7, -1], maxRecords: 1, epoch: 0, correlation: 2)
            let entries = fetched.responses.flatMap(\.partitions)
            let unknown = KafkaError.unknownTopicOrPartition.rawValue
            #expect(entries.filter { $0.partitionIndex == 7 }.map(\.errorCode) == [unknown])
            #expect(entries.filter { $0.partitionIndex == -1 }.map(\.errorCode) == [unknown])
            // No acknowledgement was refused: the request carried none (Kafka's answer).
            #expect(entries.allSatisfy { $0.acknowledgeErrorCode == 0 }, "\(entries)")
            #expect(entries.filter { $0.partitionIndex == 0 }.map { $0.acquiredRecords.map(\.firstOffset) } == [[0]])

            var request = ShareFetchRequest()
            request.groupId = "workers"
            request.memberId = "worker-1"
            request.shareSessionEpoch = 1
            request.maxWaitMs = 2_000
            request.maxRecords = 1
            request.batchSize = 1
            var topic = ShareAcknowledgeTopic()
            topic.topicId = topicId
            topic.partitions = [.init(partitionIndex: 0, acknowledgementBatches: [.init(firstOffset: 0, lastOffset: 0, acknowledgeTypes: [9])])]
            request.topics = [topic]
            try client.request(.shareFetch, version: 1, correlation: 3, request)
            let (_, body) = try #require(await client.response())
            let second = try ShareFetchResponse.decode(body, from: 1, version: 1, flexible: true)
            let zero = second.responses.flatMap(\.partitions).filter { $0.partitionIndex == 0 }
            #expect(zero.count == 1, "\(second.responses)")
            #expect(zero.first?.errorCode == 0 && zero.first?.acknowledgeErrorCode == KafkaError.invalidRequest.rawValue)
            #expect(zero.first?.acquiredRecords.map(\.firstOffset) == [1])
            #expect(second.responses.flatMap(\.partitions).allSatisfy { $0.partitionIndex == 0 }, "the session holds partition 0 only")
            // Offset 0 is still held: the refused acknowledgement changed nothing.
            #expect(server.broker.shares.summaries("workers", view: server.broker.shareLogView).first?.acquired == 2)
        }
    }

    /// A worker's connection closes (the process killed mid-job): its share session closes
    /// with it and the job it held goes back at once (delivery count 1 kept), not when its
    /// lock runs out (30 s), as Kafka does since 4.1.
    @Test func aClosedConnectionGivesItsJobsBack() async throws {
        try await Self.withServer { server in
            do {
                let (client, topicId) = try await Self.jobsTopic(server, "crash", jobs: 1)
                let fetched = try await Self.shareFetch(client, topicId: topicId, maxRecords: 1, epoch: 0, correlation: 2)
                #expect(fetched.responses.first?.partitions.first?.acquiredRecords.map(\.firstOffset) == [0])
            }  // the connection closes here
            let view = server.broker.shareLogView
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline, server.broker.shares.summaries("workers", view: view).first?.acquired != 0 {
                try await Task.sleep(for: .milliseconds(20))
            }
            let summary = try #require(server.broker.shares.summaries("workers", view: view).first)
            #expect(summary.acquired == 0 && summary.available == 1, "\(summary)")
        }
    }

    /// Epoch 0 opens a share session and carries no acknowledgements: a ShareFetch opening one
    /// with acknowledgements is refused whole (INVALID_REQUEST) and opens nothing; a
    /// ShareAcknowledge at epoch 0 is refused (INVALID_SHARE_SESSION_EPOCH) and leaves the
    /// member's session as it was (it used to replace it with an empty one), as in Kafka.
    @Test func epochZeroCarriesNoAcknowledgements() async throws {
        try await Self.withServer { server in
            let (client, topicId) = try await Self.jobsTopic(server, "zero", jobs: 2)
            var topic = ShareAcknowledgeTopic()
            topic.topicId = topicId
            topic.partitions = [.init(partitionIndex: 0, acknowledgementBatches: [.init(firstOffset: 0, lastOffset: 0, acknowledgeTypes: [1])])]

            var opening = ShareFetchRequest()
            opening.groupId = "workers"
            opening.memberId = "worker-1"
            opening.shareSessionEpoch = 0
            opening.maxWaitMs = 100
            opening.topics = [topic]
            try client.request(.shareFetch, version: 1, correlation: 2, opening)
            let (_, refusedBody) = try #require(await client.response())
            let refused = try ShareFetchResponse.decode(refusedBody, from: 1, version: 1, flexible: true)
            #expect(refused.errorCode == KafkaError.invalidRequest.rawValue && refused.responses.isEmpty)
            #expect(server.broker.shares.summaries("workers", view: server.broker.shareLogView).first?.acquired ?? 0 == 0)

            let fetched = try await Self.shareFetch(client, topicId: topicId, maxRecords: 1, epoch: 0, correlation: 3)
            #expect(fetched.errorCode == 0 && fetched.responses.first?.partitions.first?.acquiredRecords.map(\.firstOffset) == [0])
            var acknowledge = ShareAcknowledgeRequest()
            acknowledge.groupId = "workers"
            acknowledge.memberId = "worker-1"
            acknowledge.shareSessionEpoch = 0
            acknowledge.topics = [topic]
            try client.request(.shareAcknowledge, version: 1, correlation: 4, acknowledge)
            let (_, ackBody) = try #require(await client.response())
            let ack = try ShareAcknowledgeResponse.decode(ackBody, from: 1, version: 1, flexible: true)
            #expect(ack.errorCode == KafkaError.invalidShareSessionEpoch.rawValue)
            // The session opened by the fetch still expects epoch 1, and the job is still held.
            acknowledge.shareSessionEpoch = 1
            try client.request(.shareAcknowledge, version: 1, correlation: 5, acknowledge)
            let (_, secondBody) = try #require(await client.response())
            let second = try ShareAcknowledgeResponse.decode(secondBody, from: 1, version: 1, flexible: true)
            #expect(second.errorCode == 0 && second.responses.first?.partitions.first?.errorCode == 0)
        }
    }

    /// A long poll over partitions with nothing to hand out goes on through its timer wakes
    /// (every 200 ms it acquires again; the append watches registered at its start stay): jobs
    /// appended 700 ms in, to one partition and then another, are both answered, the first by
    /// the poll that was waiting, the second by the next, and each answer comes before its wait's end.
    @Test func aLongPollThroughTimerWakesIsAnsweredByAnAppend() async throws {
        try await Self.withServer { server in
            try await server.broker.createTopic("idle", partitions: 3)
            let client = try RawClient(port: server.boundPort)
            try await Self.joinShareGroup(client, topic: "idle")
            let topicId = try await FetchSessionTests.topicId(of: "idle", port: server.boundPort)
            for (epoch, partition) in [(Int32(0), 1), (Int32(1), 2)] {
                let broker = server.broker
                let appender = Task {
                    try await Task.sleep(for: .milliseconds(700))
                    var builder = RecordBatchBuilder()
                    builder.append(timestamp: 1000, key: nil, value: Array("late-\(partition)".utf8))
                    _ = try await broker.append(topic: "idle", partition: partition, batches: try builder.build())
                }
                let started = ContinuousClock.now
                let answer = try await Self.shareFetch(
                    client, topicId: topicId, partitions: [0, 1, 2], epoch: epoch, correlation: 10 + epoch)
                let waited = ContinuousClock.now - started
                try await appender.value
                let got = answer.responses.flatMap(\.partitions).filter { !$0.acquiredRecords.isEmpty }
                #expect(got.map(\.partitionIndex) == [Int32(partition)])
                #expect(waited >= .milliseconds(650) && waited < .milliseconds(1_900), "\(waited)")
            }
        }
    }

    /// A share session keeps one append watch per partition: an append that gives its long
    /// poll nothing (a delayed job) spends that partition's watch, which is made anew (not the
    /// others', which stay: one append to a 1,000-partition session re-registers one); the
    /// next append to that partition then answers the poll with its job. The watches stay for
    /// the session's next fetch and go when the connection closes.
    @Test func anAppendThatGivesNothingRewatchesItsPartitionOnly() async throws {
        try await Self.withServer { server in
            let (client, topicId, notifiers) = try await Self.watchedTopic(server, "watched", partitions: 3)
            let broker = server.broker
            func waitFor(_ counts: [Int], line: Int = #line) async throws {
                let deadline = ContinuousClock.now + .seconds(5)
                while notifiers.map(\.waiterCount) != counts && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
                #expect(notifiers.map(\.waiterCount) == counts, "waited at line \(line)")
            }
            func fetch(epoch: Int32, correlation: Int32) throws {
                try Self.sendShareFetch(client, topicId: topicId, partitions: [0, 1, 2], epoch: epoch, correlation: correlation)
            }
            try fetch(epoch: 0, correlation: 10)
            try await waitFor([1, 1, 1])
            let registered = notifiers.map(\.registrations)
            let later = Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000
            var delayed = RecordBatchBuilder()
            delayed.append(
                timestamp: 1000, key: nil, value: Array("later".utf8),
                headers: [RecordHeader(key: Broker.deliverAtHeader, value: Array("\(later)".utf8))])
            _ = try await broker.append(topic: "watched", partition: 1, batches: try delayed.build())
            // Partition 1's watch fired; the poll made that one anew (and no other) and waits on.
            let deadline = ContinuousClock.now + .seconds(5)
            while notifiers[1].registrations == registered[1] && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            try await waitFor([1, 1, 1])
            #expect(notifiers.map(\.registrations) == [registered[0], registered[1] + 1, registered[2]])
            var job = RecordBatchBuilder()
            job.append(timestamp: 1000, key: nil, value: Array("now".utf8))
            _ = try await broker.append(topic: "watched", partition: 1, batches: try job.build())
            let (correlation, body) = try #require(await client.response())
            #expect(correlation == 10)
            let answer = try ShareFetchResponse.decode(body, from: 1, version: 1, flexible: true)
            let got = answer.responses.flatMap(\.partitions).filter { !$0.acquiredRecords.isEmpty }
            #expect(got.map(\.partitionIndex) == [1])
            #expect(got.first?.acquiredRecords.map(\.firstOffset) == [1])
            // The watches are the session's, kept for its next fetches on this connection. An
            // append while no fetch waits (a job for partition 2) wakes nobody: the session is
            // told, its watch stays (a share waiter wakes only a waiting poll), and the next
            // fetch takes the job.
            try await waitFor([1, 1, 1])
            let beforeTwo = notifiers[2].registrations
            var other = RecordBatchBuilder()
            other.append(timestamp: 1000, key: nil, value: Array("two".utf8))
            _ = try await broker.append(topic: "watched", partition: 2, batches: try other.build())
            try await waitFor([1, 1, 1])
            #expect(notifiers[2].registrations == beforeTwo)
            try fetch(epoch: 1, correlation: 11)
            let (_, body2) = try #require(await client.response())
            let second = try ShareFetchResponse.decode(body2, from: 1, version: 1, flexible: true)
            #expect(second.responses.flatMap(\.partitions).filter { !$0.acquiredRecords.isEmpty }.map(\.partitionIndex) == [2])
            try fetch(epoch: 2, correlation: 12)
            try await Task.sleep(for: .milliseconds(50))
            try await waitFor([1, 1, 1])
            // They go with the connection, and the poll still waiting on its timer (its session
            // closed) registers none again.
            shutdown(client.fd, Int32(SHUT_RDWR))
            try await waitFor([0, 0, 0])
            try await Task.sleep(for: .milliseconds(500))
            #expect(notifiers.map(\.waiterCount) == [0, 0, 0])
        }
    }

    /// A kept session's watches follow its partitions: a fetch that adds one (forgetting none)
    /// has it watched, so an append there answers its long poll; fetches that change nothing
    /// make no watch anew.
    @Test func aPartitionAddedToAKeptSessionIsWatched() async throws {
        try await Self.withServer { server in
            let (client, topicId, notifiers) = try await Self.watchedTopic(server, "adds", partitions: 3)
            let broker = server.broker
            try Self.sendShareFetch(client, topicId: topicId, partitions: [0, 1], epoch: 0, correlation: 10, maxWaitMs: 50)
            _ = try #require(await client.response())
            #expect(notifiers.map(\.waiterCount) == [1, 1, 0])
            let appender = Task {
                try await Task.sleep(for: .milliseconds(400))
                var job = RecordBatchBuilder()
                job.append(timestamp: 1000, key: nil, value: Array("new".utf8))
                _ = try await broker.append(topic: "adds", partition: 2, batches: try job.build())
            }
            let started = ContinuousClock.now
            try Self.sendShareFetch(client, topicId: topicId, epoch: 1, correlation: 11, add: [2], maxWaitMs: 3_000)
            let (c, body) = try #require(await client.response())
            let waited = ContinuousClock.now - started
            try await appender.value
            #expect(c == 11)
            let answer = try ShareFetchResponse.decode(body, from: 1, version: 1, flexible: true)
            #expect(answer.responses.flatMap(\.partitions).filter { !$0.acquiredRecords.isEmpty }.map(\.partitionIndex) == [2])
            #expect(waited < .milliseconds(2_000), "\(waited)")
            #expect(notifiers.map(\.waiterCount) == [1, 1, 1])
            // Nothing changes: the watches stay as they are, none made or looked up anew.
            let registered = notifiers.map(\.registrations)
            try Self.sendShareFetch(client, topicId: topicId, epoch: 2, correlation: 12, maxWaitMs: 50)
            _ = try #require(await client.response())
            #expect(notifiers.map(\.registrations) == registered)
        }
    }

    /// A partition the session forgets is watched no more and nothing is taken from it, even
    /// when its watch fired before the fetch that forgot it (the watch's callback may come back
    /// to the loop before or after that fetch is read).
    @Test func aForgottenPartitionIsNeitherWatchedNorTakenFrom() async throws {
        try await Self.withServer { server in
            let (client, topicId, notifiers) = try await Self.watchedTopic(server, "forgets", partitions: 2)
            let broker = server.broker
            func append(_ partition: Int, _ value: String) async throws {
                var job = RecordBatchBuilder()
                job.append(timestamp: 1000, key: nil, value: Array(value.utf8))
                _ = try await broker.append(topic: "forgets", partition: partition, batches: try job.build())
            }
            func fetch(epoch: Int32, correlation: Int32, forget: [Int32] = []) async throws -> [Int32: [Int64]] {
                try Self.sendShareFetch(
                    client, topicId: topicId, partitions: [0, 1], maxRecords: 10, epoch: epoch, correlation: correlation, forget: forget)
                let (c, body) = try #require(await client.response())
                #expect(c == correlation)
                let answer = try ShareFetchResponse.decode(body, from: 1, version: 1, flexible: true)
                return answer.responses.flatMap(\.partitions).filter { !$0.acquiredRecords.isEmpty }
                    .reduce(into: [:]) { $0[$1.partitionIndex] = $1.acquiredRecords.map(\.firstOffset) }
            }
            try await append(0, "a")
            #expect(try await fetch(epoch: 0, correlation: 10) == [0: [0]])
            // No fetch waits: a job for partition 1 is told to the session (its watch stays).
            // The next fetch forgets partition 1 and waits; another job there neither answers
            // it nor is taken.
            try await append(1, "b")
            let later = Task {
                try await Task.sleep(for: .milliseconds(300))
                try await append(1, "c")
                try await Task.sleep(for: .milliseconds(300))
                try await append(0, "d")
            }
            #expect(try await fetch(epoch: 1, correlation: 11, forget: [1]) == [0: [1]])
            try await later.value
            #expect(notifiers[1].waiterCount == 0)
        }
    }

    /// A long poll's timer wakes look again at the partitions that have something in their
    /// window, not only at those an append woke it for: a delayed job already in the window
    /// (no append comes) goes out when it is due, before the poll's end.
    @Test func aDelayedJobComesDueDuringALongPoll() async throws {
        try await Self.withServer { server in
            let (client, topicId, notifiers) = try await Self.watchedTopic(server, "comesdue", partitions: 3)
            let due = Int64(Date().timeIntervalSince1970 * 1000) + 700
            var delayed = RecordBatchBuilder()
            delayed.append(
                timestamp: 1000, key: nil, value: Array("soon".utf8),
                headers: [RecordHeader(key: Broker.deliverAtHeader, value: Array("\(due)".utf8))])
            _ = try await server.broker.append(topic: "comesdue", partition: 1, batches: try delayed.build())
            let started = ContinuousClock.now
            let answer = try await Self.shareFetch(client, topicId: topicId, partitions: [0, 1, 2], epoch: 0, correlation: 10)
            let waited = ContinuousClock.now - started
            let got = answer.responses.flatMap(\.partitions).filter { !$0.acquiredRecords.isEmpty }
            #expect(got.map(\.partitionIndex) == [1])
            #expect(waited >= .milliseconds(500) && waited < .milliseconds(1_900), "\(waited)")
            #expect(notifiers.map(\.waiterCount) == [1, 1, 1])  // kept for the session's next fetch
        }
    }

    /// Of the group's polls waiting on a partition, an append wakes one per record, not every
    /// worker (a thundering herd: each acquired again, one got the job). Two workers wait on
    /// one partition. Worker 1 holds a job and waits first: a second job wakes its poll (its
    /// watch is first in line), which may take nothing (its fair share of two jobs is held) and
    /// passes the wake on; worker 2 takes the job (each woken watch is registered again: two).
    /// Then, both jobs finished, one job wakes one poll: the other's watch stays, and it
    /// answers nothing. It was told of the append, so when the job it did not get is released,
    /// its timer wake finds it, well before its wait ends (its fetch began with nothing to
    /// take, so only being told puts the partition in its timer wakes' walk).
    @Test func anAppendWakesOnePollPerJob() async throws {
        try await Self.withServer { server in
            let (first, topicId, notifiers) = try await Self.watchedTopic(server, "herd", partitions: 1)
            let second = try RawClient(port: server.boundPort)
            try await Self.joinShareGroup(second, topic: "herd", member: "worker-2")
            let notifier = notifiers[0]
            func waiting(_ count: Int) async throws {
                let deadline = ContinuousClock.now + .seconds(5)
                while notifier.waiterCount != count && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
                #expect(notifier.waiterCount == count)
            }
            func answer(_ client: RawClient, _ correlation: Int32) async throws -> [Int64] {
                let (c, body) = try #require(await client.response())
                #expect(c == correlation)
                let response = try ShareFetchResponse.decode(body, from: 1, version: 1, flexible: true)
                return response.responses.flatMap(\.partitions).flatMap(\.acquiredRecords).map(\.firstOffset)
            }
            func acknowledge(_ client: RawClient, _ member: String, _ offset: Int64, type: Int8, epoch: Int32) async throws {
                #expect(try await Self.acknowledge(client, topicId: topicId, member: member, offset, type: type, epoch: epoch).errorCode == 0)
            }
            func append(_ values: [String]) async throws {
                var jobs = RecordBatchBuilder()
                for value in values { jobs.append(timestamp: 1000, key: nil, value: Array(value.utf8)) }
                _ = try await server.broker.append(topic: "herd", partition: 0, batches: try jobs.build())
            }
            try Self.sendShareFetch(first, topicId: topicId, epoch: 0, correlation: 10, maxWaitMs: 5_000)
            try await waiting(1)
            try await append(["a"])
            #expect(try await answer(first, 10) == [0])
            try Self.sendShareFetch(first, topicId: topicId, epoch: 1, correlation: 11, maxWaitMs: 1_000)
            try Self.sendShareFetch(second, topicId: topicId, epoch: 0, correlation: 20, member: "worker-2", maxWaitMs: 5_000)
            try await waiting(2)
            try await Task.sleep(for: .milliseconds(50))
            var registered = notifier.registrations
            try await append(["b"])
            #expect(try await answer(second, 20) == [1])
            #expect(notifier.registrations == registered + 2)
            #expect(try await answer(first, 11) == [])
            try await acknowledge(first, "worker-1", 0, type: 1, epoch: 2)
            try await acknowledge(second, "worker-2", 1, type: 1, epoch: 1)

            try Self.sendShareFetch(first, topicId: topicId, epoch: 3, correlation: 12, maxWaitMs: 5_000)
            try Self.sendShareFetch(second, topicId: topicId, epoch: 2, correlation: 21, member: "worker-2", maxWaitMs: 5_000)
            try await Task.sleep(for: .milliseconds(50))
            registered = notifier.registrations
            try await append(["c"])
            #expect(try await answer(first, 12) == [2])
            try await Task.sleep(for: .milliseconds(300))
            #expect(notifier.registrations == registered + 1 && notifier.waiterCount == 2)
            let released = ContinuousClock.now
            try await acknowledge(first, "worker-1", 2, type: 2, epoch: 4)
            #expect(try await answer(second, 21) == [2])
            #expect(ContinuousClock.now - released < .milliseconds(1_500))
        }
    }
}

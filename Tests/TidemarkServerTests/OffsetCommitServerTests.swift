import Foundation
import Synchronization
import TestSupport
import Testing
import TidemarkServer
import TidemarkStorage
import TidemarkWire

@testable import Tidemark

/// OffsetCommit, the per-job acknowledgement of a Kafka consumer that commits after each job,
/// runs on the connection's event loop. A commit is as durable as the records it commits: for
/// a topic synced on every append it is answered once synced, commits from many consumers
/// sharing an fdatasync (the broker's flusher), not one fsync each on a blocking thread; for a
/// topic the OS flushes it is answered from the page cache and synced within a second.
///
/// The offsets log's disk is made slow (`StorageFaults.slow`), so a commit answered before
/// its fsync comes back far sooner than one fsync, and commits that did not share fsyncs
/// would take one fsync each, one after another.
@Suite(.serialized) struct OffsetCommitServerTests {
    static func commit(_ client: RawClient, group: String, topic: String, offset: Int64, correlation: Int32) async throws -> Int16 {
        try client.request(.offsetCommit, version: 2, correlation: correlation, commitRequest(group: group, topic: topic, offset: offset))
        let (c, body) = try #require(await client.response())
        #expect(c == correlation)
        return try commitError(body)
    }

    /// `commit` on the calling thread (the consumers' own threads).
    static func commitBlocking(_ client: RawClient, group: String, topic: String, offset: Int64, correlation: Int32) throws -> Int16 {
        try client.request(.offsetCommit, version: 2, correlation: correlation, commitRequest(group: group, topic: topic, offset: offset))
        let (c, body) = try #require(client.responseBlocking())
        #expect(c == correlation)
        return try commitError(body)
    }

    static func commitRequest(group: String, topic: String, offset: Int64) -> OffsetCommitRequest {
        var request = OffsetCommitRequest()
        request.groupId = group
        var t = OffsetCommitRequest.Topic()
        t.name = topic
        var p = OffsetCommitRequest.Partition()
        p.committedOffset = offset
        p.committedMetadata = ""
        t.partitions = [p]
        request.topics = [t]
        return request
    }

    static func commitError(_ body: [UInt8]) throws -> Int16 {
        let response = try OffsetCommitResponse.decode(body, version: 2, flexible: false)
        return try #require(response.topics.first?.partitions.first).errorCode
    }

    @Test func commitsFromManyConsumersShareFsyncsAndAreDurableWhenAnswered() async throws {
        let dir = TemporaryDirectory()
        let consumers = 8
        let rounds = 12
        var broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1, config: TopicConfig(flushPolicy: .everyAppend))
        var config = ServerConfig()
        config.port = 0
        let server = try await KafkaServer.start(broker: broker, config: config)
        let scope = dir.path + "/__consumer_offsets"
        StorageFaults.slow(.sync, by: 20_000_000, pathContains: scope)
        let before = broker.groupCommitStatistics
        let log = broker.groups.store.partition.log
        // Each consumer commits its next offset and waits for the answer, `rounds` times, on
        // its own thread (blocking sockets stay out of the test's task pool).
        let fastest = Mutex<UInt64>(.max)
        let failures = Mutex<[String]>([])
        let done = DispatchGroup()
        for c in 0..<consumers {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                do {
                    let client = try RawClient(port: server.boundPort)
                    for r in 1...rounds {
                        let started = DispatchTime.now().uptimeNanoseconds
                        // This commit lands at or after the log's end now: answered, it is synced.
                        let end = log.logEndOffset
                        let code = try Self.commitBlocking(client, group: "workers-\(c)", topic: "jobs", offset: Int64(r), correlation: Int32(r))
                        let took = DispatchTime.now().uptimeNanoseconds - started
                        fastest.withLock { $0 = min($0, took) }
                        if code != 0 { failures.withLock { $0.append("consumer \(c) round \(r): error \(code)") } }
                        if log.flushedOffset <= end { failures.withLock { $0.append("consumer \(c) round \(r): answered unsynced") } }
                    }
                } catch {
                    failures.withLock { $0.append("consumer \(c): \(error)") }
                }
            }
        }
        await withCheckedContinuation { continuation in done.notify(queue: .global()) { continuation.resume() } }
        StorageFaults.clear(pathContains: scope)
        let after = broker.groupCommitStatistics
        await server.stop()
        try await broker.close()

        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        // Answered only after an fdatasync (20 ms here: commits pile up behind it even on a
        // loaded run) covered it.
        #expect(fastest.withLock { $0 } >= 20_000_000)
        // The commits waited for the flusher (all but those a sync had covered by the time they
        // asked), and they shared its passes: 96 commits alone would take 96 passes; here about
        // one pass per cohort of 8.
        let commits = consumers * rounds
        #expect(after.waiters - before.waiters >= commits / 2)
        #expect(after.passes - before.passes <= commits / 2, "\(after.passes - before.passes) fsyncs for \(commits) commits")

        // Durable: a new broker on the same directory rebuilds every group's last commit.
        broker = try await Broker.open(dataDirectory: dir.path)
        for c in 0..<consumers {
            #expect(broker.groups.fetchOffsets(groupId: "workers-\(c)")[TopicPartition("jobs", 0)]?.offset == Int64(rounds))
        }
        try await broker.close()
    }

    /// A commit whose fdatasync fails is answered with the storage error, not success.
    @Test func aCommitWhoseFsyncFailsIsNotAnsweredAsStored() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("jobs", partitions: 1, config: TopicConfig(flushPolicy: .everyAppend))
            let client = try RawClient(port: server.boundPort)
            #expect(try await Self.commit(client, group: "workers", topic: "jobs", offset: 1, correlation: 1) == 0)
            let scope = server.broker.dataDirectory + "/__consumer_offsets"
            StorageFaults.inject(.sync, .ioError, pathContains: scope, times: nil)
            defer { StorageFaults.clear(pathContains: scope) }
            #expect(try await Self.commit(client, group: "workers", topic: "jobs", offset: 2, correlation: 2) == KafkaError.kafkaStorageError.rawValue)
        }
    }

    /// A commit of a topic the OS flushes does not wait for a sync (2 s per fdatasync here):
    /// it is answered from the page cache, and the maintenance pass (every second) syncs it.
    @Test func aCommitOfAnOSFlushedTopicIsAnsweredAtOnceAndSyncedWithinASecond() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("jobs", partitions: 1)
            let client = try RawClient(port: server.boundPort)
            let log = server.broker.groups.store.partition.log
            // A first commit, at the disk's own speed.
            #expect(try await Self.commit(client, group: "workers", topic: "jobs", offset: 1, correlation: 1) == 0)
            let scope = server.broker.dataDirectory + "/__consumer_offsets"
            StorageFaults.slow(.sync, by: 2_000_000_000, pathContains: scope)
            defer { StorageFaults.clear(pathContains: scope) }
            let waitersBefore = server.broker.groupCommitStatistics.waiters
            let started = ContinuousClock.now
            #expect(try await Self.commit(client, group: "workers", topic: "jobs", offset: 2, correlation: 2) == 0)
            #expect(ContinuousClock.now - started < .milliseconds(1_500), "the commit waited for its sync")
            #expect(server.broker.groupCommitStatistics.waiters == waitersBefore)
            let end = log.logEndOffset
            #expect(log.flushedOffset < end)
            let deadline = ContinuousClock.now + .seconds(30)
            while log.flushedOffset < end && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(log.flushedOffset >= end)
            // By the maintenance pass (every second; the sync takes 2 s), not at some later time.
            #expect(ContinuousClock.now - started < .seconds(10))
        }
    }

    /// A commit to a share group's id is refused (GROUP_ID_NOT_FOUND, as Kafka refuses a group
    /// of another type). It was stored, and the share group was then listed as an empty
    /// classic group, with offsets that outlived its deletion.
    @Test func aCommitToAShareGroupIsRefused() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("jobs", partitions: 1)
            let worker = try await ShareConsumer(broker: server.broker, group: "workers", topics: ["jobs"], mode: .explicit)
            _ = try await worker.poll(timeout: .milliseconds(50))
            #expect(server.broker.shares.isShareGroup("workers"))
            let client = try RawClient(port: server.boundPort)
            #expect(try await Self.commit(client, group: "workers", topic: "jobs", offset: 1, correlation: 1) == KafkaError.groupIdNotFound.rawValue)
            #expect(server.broker.groups.fetchOffsets(groupId: "workers").isEmpty)
            #expect(!server.broker.groups.listGroups().contains { $0.groupId == "workers" })
            try await worker.close()
        }
    }
    /// The leader epoch a consumer commits with its offset (OffsetCommit v6+, KIP-320) is kept,
    /// written to the offsets log and given back by OffsetFetch v5+ (librdkafka and the Java
    /// client check a restored position against it), after a restart too; a commit of an older
    /// version, without one, reads back as -1, as Kafka answers.
    @Test func theCommittedLeaderEpochIsKeptAndGivenBack() async throws {
        let dir = TemporaryDirectory()
        var broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 2)
        var config = ServerConfig()
        config.port = 0
        var server = try await KafkaServer.start(broker: broker, config: config)
        var client = try RawClient(port: server.boundPort)
        var request = Self.commitRequest(group: "workers", topic: "jobs", offset: 12)
        request.topics[0].partitions[0].committedLeaderEpoch = 0
        var older = OffsetCommitRequest.Partition()
        older.partitionIndex = 1
        older.committedOffset = 4
        older.committedLeaderEpoch = 9
        try client.request(.offsetCommit, version: 8, correlation: 1, request)
        let (_, body) = try #require(await client.response())
        #expect(try OffsetCommitResponse.decode(body, from: 1, version: 8, flexible: true).topics.first?.partitions.first?.errorCode == 0)
        request.topics[0].partitions = [older]
        try client.request(.offsetCommit, version: 5, correlation: 2, request)  // v5 carries no epoch
        _ = try #require(await client.response())

        func fetched(version: Int16) async throws -> [Int32: (Int64, Int32)] {
            var fetch = OffsetFetchRequest()
            fetch.groupId = "workers"
            fetch.topics = [OffsetFetchRequest.Topic(name: "jobs", partitionIndexes: [0, 1])]
            try client.request(.offsetFetch, version: version, correlation: 3, fetch)
            let (_, body) = try #require(await client.response())
            let response = try OffsetFetchResponse.decode(body, from: version >= 6 ? 1 : 0, version: version, flexible: version >= 6)
            let partitions = try #require(response.topics.first).partitions
            return Dictionary(uniqueKeysWithValues: partitions.map { ($0.partitionIndex, ($0.committedOffset, $0.committedLeaderEpoch)) })
        }
        for version: Int16 in [5, 7] {
            let answer = try await fetched(version: version)
            #expect(answer[0]?.0 == 12 && answer[0]?.1 == 0, "v\(version): \(answer)")
            #expect(answer[1]?.0 == 4 && answer[1]?.1 == -1, "v\(version): \(answer)")
        }
        await server.stop()
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path)
        server = try await KafkaServer.start(broker: broker, config: config)
        client = try RawClient(port: server.boundPort)
        let restored = try await fetched(version: 7)
        #expect(restored[0]?.0 == 12 && restored[0]?.1 == 0, "\(restored)")
        // An epoch this node never had (offsets copied from elsewhere) is kept, answered unknown.
        request.topics[0].partitions = [OffsetCommitRequest.Partition()]
        request.topics[0].partitions[0].committedOffset = 13
        request.topics[0].partitions[0].committedLeaderEpoch = 7
        try client.request(.offsetCommit, version: 8, correlation: 4, request)
        _ = try #require(await client.response())
        #expect(broker.groups.fetchOffsets(groupId: "workers")[TopicPartition("jobs", 0)]?.leaderEpoch == 7)
        let copied = try await fetched(version: 7)
        #expect(copied[0]?.0 == 13 && copied[0]?.1 == -1, "\(copied)")
        await server.stop()
        try await broker.close()
    }

    /// A member's commit (a generation, >= 0) to a group that does not exist, with no members
    /// and no offsets (it expired, or was deleted under a consumer), is GROUP_ID_NOT_FOUND from
    /// OffsetCommit v9 and ILLEGAL_GENERATION before, as Kafka's OffsetMetadataManager answers.
    /// A group that has offsets exists: the commit is the unknown member's. A commit without a
    /// generation (an admin's, a standalone consumer's) creates the group, at every version.
    @Test func aMembersCommitToAGroupThatDoesNotExist() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("jobs", partitions: 1)
            let client = try RawClient(port: server.boundPort)
            func commit(_ group: String, generation: Int32, member: String, version: Int16, correlation: Int32) async throws -> Int16 {
                var request = Self.commitRequest(group: group, topic: "jobs", offset: 5)
                request.generationId = generation
                request.memberId = member
                try client.request(.offsetCommit, version: version, correlation: correlation, request)
                let (c, body) = try #require(await client.response())
                #expect(c == correlation)
                let response = try OffsetCommitResponse.decode(body, from: version >= 8 ? 1 : 0, version: version, flexible: version >= 8)
                return try #require(response.topics.first?.partitions.first).errorCode
            }
            #expect(try await commit("gone", generation: 3, member: "m-1", version: 9, correlation: 1) == KafkaError.groupIdNotFound.rawValue)
            #expect(try await commit("gone", generation: 3, member: "m-1", version: 8, correlation: 2) == KafkaError.illegalGeneration.rawValue)
            #expect(try await commit("gone", generation: 0, member: "m-1", version: 2, correlation: 3) == KafkaError.illegalGeneration.rawValue)
            #expect(server.broker.groups.fetchOffsets(groupId: "gone").isEmpty)
            // Without a generation the commit is stored, and the group then exists.
            #expect(try await commit("gone", generation: -1, member: "", version: 9, correlation: 4) == 0)
            #expect(try await commit("gone", generation: 3, member: "m-1", version: 9, correlation: 5) == KafkaError.unknownMemberId.rawValue)
            #expect(try await commit("gone", generation: 3, member: "m-1", version: 5, correlation: 6) == KafkaError.unknownMemberId.rawValue)
        }
    }
}

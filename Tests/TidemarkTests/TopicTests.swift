import Foundation
import TestSupport
import Testing
@testable import Tidemark
import TidemarkStorage

@Suite struct TopicTests {
    /// The time of a record (time lag, queue age) is its own, not its batch's first, when the
    /// batch's records span a second or more: a producer that buffered 60 records through an
    /// outage, a minute apart, made a group one record behind read an hour late. Compressed
    /// batches too.
    @Test(arguments: [CompressionCodec.none, .lz4])
    func aRecordsTimeIsItsOwnInABatchThatSpansMinutes(codec: CompressionCodec) async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("backfill", partitions: 1)
        let start = currentTimeMilliseconds() - 3_600_000
        var builder = RecordBatchBuilder(compression: codec)
        for i in 0..<60 { builder.append(timestamp: start + Int64(i) * 60_000, key: nil, value: Array("r\(i)".utf8)) }
        _ = try await broker.append(topic: "backfill", partition: 0, batches: try builder.build())
        #expect(broker.timestamp(topic: "backfill", partition: 0, at: 0) == start)
        #expect(broker.timestamp(topic: "backfill", partition: 0, at: 59) == start + 59 * 60_000)
        #expect(broker.timestamp(topic: "backfill", partition: 0, at: 30) == start + 30 * 60_000)
        #expect(broker.timestamp(topic: "backfill", partition: 0, at: 60) == nil)
        try await broker.close()
    }

    @Test func createListDescribeDeleteAndPersist() async throws {
        let dir = TemporaryDirectory()
        var config = TopicConfig()
        config.retentionBytes = 1 << 30
        config.compression = .lz4
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options())
            try await broker.createTopic("jobs", partitions: 3, config: config)
            try await broker.createTopic("emails.v2_x-y", partitions: 1)
            #expect(broker.listTopics() == ["emails.v2_x-y", "jobs"])
            let description = try broker.describeTopic("jobs")
            #expect(description.partitions.count == 3)
            #expect(description.config == config)
            #expect(description.partitions.allSatisfy { $0.logEndOffset == 0 && $0.logStartOffset == 0 })
            _ = try await broker.append(topic: "jobs", partition: 1, batches: try idempotentBatch(producerId: -1, epoch: -1, sequence: -1, values: ["a", "b"]))
            #expect(try broker.describeTopic("jobs").partitions[1].logEndOffset == 2)
            await #expect(throws: TidemarkError.self) { try await broker.createTopic("jobs", partitions: 1) }
            try await broker.deleteTopic("emails.v2_x-y")
            #expect(!FileManager.default.fileExists(atPath: dir.file("emails.v2_x-y-0")))
            try await broker.close()
        }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(broker.listTopics() == ["jobs"])
        #expect(try broker.describeTopic("jobs").config == config)
        #expect(try broker.describeTopic("jobs").partitions[1].logEndOffset == 2)
        try await broker.close()
    }

    @Test(arguments: ["", ".", "..", "has space", "slash/x", "ü", String(repeating: "a", count: 250), "__consumer_offsets", "__share_group_state", "__cluster_metadata"])
    func invalidNamesAreRefused(name: String) async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        await #expect { try await broker.createTopic(name, partitions: 1) } throws: { error in
            (error as? TidemarkError)?.code == .invalidTopicName
        }
        try await broker.close()
    }

    @Test func validNamesAndLimits() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic(String(repeating: "a", count: 249), partitions: 1)
        await #expect { try await broker.createTopic("zero", partitions: 0) } throws: {
            ($0 as? TidemarkError)?.code == .invalidPartitions
        }
        await #expect { try await broker.deleteTopic("missing") } throws: {
            ($0 as? TidemarkError)?.code == .unknownTopicOrPartition
        }
        try await broker.close()
    }

    @Test func aSecondBrokerCannotOpenTheSameDirectory() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        // flock locks are per open file description: a second open in this process conflicts too.
        await #expect(throws: (any Error).self) { try await Broker.open(dataDirectory: dir.path, options: options()) }
        try await broker.close()
    }

    @Test func closedBrokerRefusesWork() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 1)
        try await broker.close()
        try await broker.close()
        await #expect { try await broker.createTopic("u", partitions: 1) } throws: { ($0 as? TidemarkError)?.code == .brokerClosed }
        await #expect {
            try await broker.append(topic: "t", partition: 0, batches: try idempotentBatch(producerId: -1, epoch: -1, sequence: -1, values: ["x"]))
        } throws: { ($0 as? TidemarkError)?.code == .brokerClosed }
    }
}

/// Topic ids (Kafka's topic UUIDs) and the internal `__consumer_offsets` topic.
@Suite struct TopicIdTests {
    @Test func idsPersistAndChangeWhenATopicIsMadeAgain() async throws {
        let dir = TemporaryDirectory()
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 1)
        let first = try broker.topicId(of: "t")
        #expect(broker.topicName(forId: first) == "t")
        let offsetsId = try broker.topicId(of: "__consumer_offsets")
        try await broker.close()
        broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(try broker.topicId(of: "t") == first)
        #expect(try broker.topicId(of: "__consumer_offsets") == offsetsId)
        try await broker.deleteTopic("t")
        #expect(broker.topicName(forId: first) == nil)
        try await broker.createTopic("t", partitions: 1)
        #expect(try broker.topicId(of: "t") != first)
        try await broker.close()
    }

    /// `__consumer_offsets` is readable (Kafka's record layouts) and never written by clients.
    @Test func consumerOffsetsIsReadableNotWritable() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 1)
        #expect(try await broker.groups.commitOffsets(groupId: "g", offsets: [TopicPartition("t", 0): CommittedOffset(offset: 42)]) == nil)
        #expect(!broker.listTopics().contains("__consumer_offsets"))
        #expect(broker.internalTopicNames == ["__consumer_offsets"])
        let records = try await readPartition(broker, "__consumer_offsets", 0)
        #expect(records.count == 1)
        let key = try #require(records.first?.key)
        #expect(key.prefix(2) == [0, 1])  // OffsetCommitKey version 1
        #expect(try #require(records.first?.value).prefix(2) == [0, 3])  // OffsetCommitValue version 3
        var builder = RecordBatchBuilder()
        builder.append(timestamp: 0, key: nil, value: [1])
        await #expect { _ = try await broker.append(topic: "__consumer_offsets", partition: 0, batches: try builder.build()) } throws: {
            ($0 as? TidemarkError)?.code == .invalidTopicName
        }
        await #expect(throws: TidemarkError.self) { try await broker.deleteTopic("__consumer_offsets") }
        try await broker.close()
    }
}

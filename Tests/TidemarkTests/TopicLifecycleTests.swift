import Foundation
import SystemPackage
import TestSupport
import Testing
import TidemarkStorage

@testable import Tidemark

/// Topics deleted, created again, grown, and what a failure half-way leaves.
@Suite(.serialized) struct TopicLifecycleTests {
    /// A deleted topic's committed offsets go with it (as Kafka deletes them): consumers of a
    /// topic created again under the name start from its beginning, not at the old offsets.
    @Test func aTopicCreatedAgainHasNoCommittedOffsets() async throws {
        let dir = TemporaryDirectory()
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("orders", partitions: 2)
        try await broker.createTopic("other", partitions: 1)
        for group in ["billing", "audit"] {
            #expect(try await broker.groups.commitOffsets(
                groupId: group,
                offsets: [TopicPartition("orders", 0): CommittedOffset(offset: 10_000), TopicPartition("orders", 1): CommittedOffset(offset: 7),
                          TopicPartition("other", 0): CommittedOffset(offset: 3)]) == nil)
        }
        try await broker.deleteTopic("orders")
        #expect(broker.groups.fetchOffsets(groupId: "billing").keys.map(\.topic) == ["other"])
        try await broker.close()
        broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(broker.groups.fetchOffsets(groupId: "audit").keys.map(\.topic) == ["other"], "the tombstones are in the log")
        try await broker.createTopic("orders", partitions: 2)
        #expect(broker.groups.fetchOffsets(groupId: "billing")[TopicPartition("orders", 0)] == nil)
        try await broker.close()
    }

    /// Offsets a delete could not remove (here: the offsets log's write fails, as a crash
    /// right after the topic's removal would leave them) are removed when a topic of that
    /// name is created again.
    @Test func offsetsADeleteLeftGoWhenTheNameIsCreatedAgain() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("orders", partitions: 1)
        #expect(try await broker.groups.commitOffsets(groupId: "billing", offsets: [TopicPartition("orders", 0): CommittedOffset(offset: 9)]) == nil)
        // Every write of the offsets log fails during the delete (one failure could be taken by
        // a background write first, such as the zeros a synced log keeps ahead).
        StorageFaults.inject(.write, .ioError, pathContains: dir.path + "/__consumer_offsets-0/", times: nil)
        try await broker.deleteTopic("orders")
        StorageFaults.clear(pathContains: dir.path)
        #expect(broker.groups.fetchOffsets(groupId: "billing")[TopicPartition("orders", 0)]?.offset == 9, "what this test is about")
        try await broker.createTopic("orders", partitions: 1)
        #expect(broker.groups.fetchOffsets(groupId: "billing").isEmpty)
        try await broker.close()
    }

    /// A delete a crash interrupted (here: the rename of one partition's directory fails) left
    /// that directory under its name; a later CreatePartitions reaching that partition must
    /// not open it as the new partition's data.
    @Test func anInterruptedDeleteDoesNotComeBackThroughCreatePartitions() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 2)
        try await HardeningTests.produce(broker, "t", 1, ["old-1", "old-2"])
        StorageFaults.inject(.rename, .ioError, pathContains: dir.path + "/t-1", times: nil)
        await #expect(throws: (any Error).self) { try await broker.deleteTopic("t") }
        try await broker.close()
        StorageFaults.clear(pathContains: dir.path)
        #expect(FileManager.default.fileExists(atPath: dir.path + "/t-1"), "the leftover this test is about")

        broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 1)
        try await broker.createPartitions(topic: "t", count: 2)
        #expect(try broker.describeTopic("t").partitions[1].logEndOffset == 0)
        #expect(try await readPartition(broker, "t", 1).isEmpty)
        try await broker.close()
    }

    /// A topic whose creation failed to reach topics.json (a full disk) is not created: not
    /// listed, not writable, and a retry once there is room creates it. The same for new
    /// partitions.
    @Test func aCreationThatCannotBePersistedIsNotLive() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        StorageFaults.inject(.write, .noSpace, pathContains: dir.path + "/topics.json", times: 1)
        await #expect(throws: (any Error).self) { try await broker.createTopic("jobs", partitions: 1) }
        #expect(!broker.listTopics().contains("jobs"))
        await #expect(throws: TidemarkError.self) { try await HardeningTests.produce(broker, "jobs", 0, ["lost"]) }
        try await broker.createTopic("jobs", partitions: 1)
        try await HardeningTests.produce(broker, "jobs", 0, ["kept"])

        StorageFaults.inject(.write, .noSpace, pathContains: dir.path + "/topics.json", times: 1)
        await #expect(throws: (any Error).self) { try await broker.createPartitions(topic: "jobs", count: 3) }
        #expect(try broker.describeTopic("jobs").partitions.count == 1)
        try await broker.createPartitions(topic: "jobs", count: 3)
        #expect(try broker.describeTopic("jobs").partitions.count == 3)
        try await broker.close()
    }

    /// An idempotent producer's retry of a batch on a log whose fsync failed (flush.messages=2:
    /// the second append's flush fails) fails as the first attempt did: the kernel may have
    /// dropped its pages, so it cannot be answered as stored.
    @Test func aRetryOnALogWhoseFsyncFailedIsNotAnsweredAsStored() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("f", partitions: 1, config: TopicConfig(flushPolicy: .everyMessages(2)))
        _ = try await broker.append(topic: "f", partition: 0, batches: try idempotentBatch(producerId: 7, epoch: 0, sequence: 0, values: ["a"]))
        StorageFaults.inject(.sync, .ioError, pathContains: dir.path + "/f-0/", times: nil)
        let second = try idempotentBatch(producerId: 7, epoch: 0, sequence: 1, values: ["b"])
        await #expect(throws: TidemarkError.self) { try await broker.append(topic: "f", partition: 0, batches: second) }
        await #expect(throws: TidemarkError.self) { try await broker.append(topic: "f", partition: 0, batches: second) }
        StorageFaults.clear(pathContains: dir.path)
        try? await broker.close()
    }
}

import Foundation
import TestSupport
import Testing
import TidemarkStorage
@testable import Tidemark

/// Values a client may send that used to trap the broker (an arithmetic overflow, a slice
/// past an array's end): each is now refused with an error, or taken as Kafka takes it, and
/// the broker keeps serving. Each test fails (the process traps) without its fix.
@Suite struct HostileValuesTests {
    static let tp = TopicPartition("jobs", 0)

    static func openSession(_ broker: Broker, _ partitions: [TopicPartition]) {
        _ = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: "w1", memberEpoch: 0, subscribedTopicNames: ["jobs"]))
        _ = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 0, add: partitions, forget: [], acknowledgements: [:], allowRenew: false,
            view: broker.shareLogView)
    }

    /// ShareAcknowledge of the range -1...Int64.max: its length overflowed.
    @Test func anAcknowledgementSpanningAllOffsetsIsRefused() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("jobs", partitions: 1)
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 1)
        Self.openSession(broker, [Self.tp])
        // Something acquired: the partition has share state to acknowledge against.
        #expect(broker.shares.acquire(group: "workers", member: "w1", partitions: [Self.tp], maxRecords: 1, view: broker.shareLogView).count == 1)
        for (first, last) in [(Int64(-1), Int64.max), (Int64.min, Int64.max), (Int64.min, -2)] {
            let update = broker.shares.updateSession(
                group: "workers", member: "w1", epoch: 1, add: [], forget: [],
                acknowledgements: [Self.tp: [ShareAcknowledgement(first: first, last: last, types: [.accept])]], allowRenew: false,
                view: broker.shareLogView)
            #expect(update.acknowledged[Self.tp] == .some(.invalidRequest))
            // The session moved on: the next request carries the next epoch.
            _ = broker.shares.updateSession(
                group: "workers", member: "w1", epoch: -1, add: [], forget: [], acknowledgements: [:], allowRenew: false,
                view: broker.shareLogView)
            Self.openSession(broker, [Self.tp])
        }
        try await broker.close()
    }

    /// A ShareFetch session over two partitions, then one that forgets both: the read cursor
    /// was left past the end of the (now empty) list.
    @Test func forgettingEveryPartitionOfASessionLeavesItEmpty() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("jobs", partitions: 2)
        let both = [TopicPartition("jobs", 0), TopicPartition("jobs", 1)]
        Self.openSession(broker, both)
        let moved = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 1, add: [], forget: [], acknowledgements: [:], allowRenew: false,
            view: broker.shareLogView)
        #expect(moved.error == nil && moved.partitions.count == 2)
        let emptied = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 2, add: [], forget: both, acknowledgements: [:], allowRenew: false,
            view: broker.shareLogView)
        #expect(emptied.error == nil && emptied.partitions.isEmpty)
        let again = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 3, add: [both[1]], forget: [], acknowledgements: [:], allowRenew: false,
            view: broker.shareLogView)
        #expect(Array(again.partitions) == [both[1]])
        try await broker.close()
    }

    /// A session's partitions: each fetch starts one further round the list (no partition
    /// starves the others), a partition listed again is not added twice, and one forgotten
    /// and listed again comes back (the session keeps its partitions as a list and a set;
    /// a request no longer copies or hashes the whole list, which cost a 1,000-partition
    /// session's every ShareAcknowledge more than its acknowledgement).
    @Test func aSessionsPartitionsRotateAndStayUnique() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("jobs", partitions: 3)
        let tps = (0..<3).map { TopicPartition("jobs", $0) }
        Self.openSession(broker, tps + [tps[1]])
        var epoch: Int32 = 1
        func update(add: [TopicPartition] = [], forget: [TopicPartition] = []) -> [TopicPartition] {
            let u = broker.shares.updateSession(
                group: "workers", member: "w1", epoch: epoch, add: add, forget: forget, acknowledgements: [:], allowRenew: false,
                view: broker.shareLogView)
            #expect(u.error == nil)
            epoch += 1
            return Array(u.partitions)
        }
        // (Opening the session moved the cursor once: the next fetch starts at the third.)
        #expect(update() == [tps[2], tps[0], tps[1]])
        #expect(update(add: [tps[2], tps[0]]) == [tps[0], tps[1], tps[2]])
        #expect(update() == [tps[1], tps[2], tps[0]])
        #expect(update(forget: [tps[1], tps[1]]) == [tps[0], tps[2]])
        #expect(update(add: [tps[1]]) == [tps[2], tps[1], tps[0]])
        #expect(update(add: [tps[1]]) == [tps[1], tps[0], tps[2]])
        try await broker.close()
    }

    /// AlterShareGroupOffsets with a negative start offset (its window arithmetic overflowed
    /// at the next fetch, and again after every restart) or a group id too long for the share
    /// state's key (a 16-bit length).
    @Test func shareOffsetsMustBeOffsetsOfAValidGroup() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("jobs", partitions: 1)
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 3)
        for offset in [Int64.min, -1] {
            await #expect { try await broker.shares.resetOffsets(group: "idle", offsets: [Self.tp: offset], view: broker.shareLogView) }
                throws: { ($0 as? TidemarkError)?.code == .invalidRequest }
        }
        let long = String(repeating: "g", count: 40_000)
        await #expect { try await broker.shares.resetOffsets(group: long, offsets: [Self.tp: 1], view: broker.shareLogView) }
            throws: { ($0 as? TidemarkError)?.code == .invalidRequest }
        try await broker.shares.resetOffsets(group: "idle", offsets: [Self.tp: 1], view: broker.shareLogView)
        #expect(broker.shares.summaries("idle", view: broker.shareLogView).first?.startOffset == 1)
        // Past any log's end: refused (Int64.max overflowed the window's arithmetic later, and
        // its snapshot did not read back at restart).
        for offset in [Int64.max / 2, Int64.max] {
            await #expect { try await broker.shares.resetOffsets(group: "idle", offsets: [Self.tp: offset], view: broker.shareLogView) }
                throws: { ($0 as? TidemarkError)?.code == .invalidRequest }
        }
        // With a partition that does not exist: refused whole, nothing moved (the others used to
        // move in memory, unlogged, while the answer said all failed).
        try await broker.createTopic("more", partitions: 2)
        try await ShareCoordinatorTests.produce(broker, "more", count: 5)
        try await broker.shares.resetOffsets(
            group: "idle", offsets: [TopicPartition("more", 0): 2, TopicPartition("more", 1): 0], view: broker.shareLogView)
        for _ in 0..<8 {
            await #expect {
                try await broker.shares.resetOffsets(
                    group: "idle", offsets: [TopicPartition("more", 0): 4, TopicPartition("more", 1): 0, TopicPartition("more", 9): 0],
                    view: broker.shareLogView)
            } throws: { ($0 as? TidemarkError)?.code == .unknownTopicOrPartition }
        }
        let starts = broker.shares.summaries("idle", view: broker.shareLogView).filter { $0.topicPartition.topic == "more" }.map(\.startOffset)
        #expect(starts.sorted() == [0, 2])
        try await broker.close()
    }

    /// ShareGroupHeartbeat subscriptions: a name no topic can have is kept out of the
    /// subscription before the group's lock (names of any length were kept, and resolved under
    /// it per member; refusing it, as later, ended librdkafka workers, where Kafka assigns
    /// nothing for it), and a group's members together subscribe to at most 10,000 distinct names.
    @Test func shareSubscriptionsAreValidNamesAndBounded() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("jobs", partitions: 1)
        for (index, bad) in ["", String(repeating: "n", count: 250), "a/b", ".."].enumerated() {
            let result = broker.shareGroupHeartbeat(
                ShareHeartbeat(groupId: "workers", memberId: "w\(index)", memberEpoch: 0, subscribedTopicNames: ["jobs", bad]))
            #expect(result.error == nil, "\(bad.prefix(10))")
            let kept = broker.shares.describe("workers")?.members.first { $0.memberId == "w\(index)" }?.subscribedTopicNames
            #expect(kept == ["jobs"], "\(bad.prefix(10)): \(kept ?? [])")
            _ = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: "w\(index)", memberEpoch: -1))
        }
        let many = (0..<6_000).map { "topic-\($0)" }
        #expect(broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: "a", memberEpoch: 0, subscribedTopicNames: many)).error == nil)
        let others = (6_000..<12_000).map { "topic-\($0)" }
        let over = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: "b", memberEpoch: 0, subscribedTopicNames: others))
        #expect(over.error == .invalidRequest)
        // The same names as the first member's fit.
        #expect(broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: "c", memberEpoch: 0, subscribedTopicNames: many)).error == nil)
        try await broker.close()
    }

    /// flush.ms set to Kafka's own default (Long.MAX): its nanoseconds overflowed on every
    /// produce and every maintenance pass.
    @Test func flushMsAtKafkasDefaultMeansTheOSFlushes() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        var config = TopicConfig()
        try config.apply(kafkaName: "flush.ms", value: "\(Int64.max)")
        #expect(config.flushPolicy == .os)
        try config.apply(kafkaName: "flush.ms", value: "\(Int64.max - 1)")
        try await broker.createTopic("slow", partitions: 1, config: config)
        try await ShareCoordinatorTests.produce(broker, "slow", count: 2)
        try broker.partitionState("slow", 0).log.flushIfDue()
        #expect(try broker.offsets(topic: "slow", partition: 0).end == 2)
        try await broker.close()
    }

    /// Record timestamps as far apart as Int64 allows (a CreateTime batch with a record at
    /// Int64.min passes the default window, which has no lower bound): rebuilding a batch from
    /// some of its records (a share fetch's trimmed copy) overflowed the timestamp delta.
    @Test func aBatchRebuiltFromRecordsFarApartInTime() throws {
        var builder = RecordBatchBuilder()
        builder.append(timestamp: 1_800_000_000_000, key: nil, value: Array("now".utf8))
        builder.append(timestamp: Int64.min, key: nil, value: Array("long ago".utf8))
        let batch = try RecordBatch(decoding: try builder.build())
        #expect(batch.records.map { batch.timestamp(of: $0) } == [1_800_000_000_000, Int64.min])
    }
}

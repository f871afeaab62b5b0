import Foundation
import TestSupport
import Testing
@testable import Tidemark
import TidemarkStorage

/// What consumers see of a topic synced every append (`flush.messages=1`), and a fetch racing
/// its topic's delete.
@Suite struct SyncedReadsTests {
    /// Readers see a record once it is synced, as Kafka's high watermark waits for a
    /// flush.messages=1 flush: a fetch waiting for it is answered then, not at the append, and
    /// the latest offset (ListOffsets, lag) is what is synced. (A consumer that read it before,
    /// its offset committed, would after a power loss lie past records appended again there.)
    @Test func aTopicSyncedEveryAppendIsSeenOnceSynced() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        var config = TopicConfig()
        config.flushPolicy = .everyAppend
        try await broker.createTopic("synced", partitions: 1, config: config)
        // Each fdatasync of the partition takes two seconds.
        StorageFaults.slow(.sync, by: 2_000_000_000, pathContains: dir.path + "/synced-0/")
        let fetched = Task { try await broker.fetch(topic: "synced", partition: 0, offset: 0, minBytes: 1, maxWaitMs: 10_000) }
        let produced = Task { try await broker.append(topic: "synced", partition: 0, batches: try plainBatch(["job"])) }
        try await Task.sleep(for: .milliseconds(400))
        let state = try broker.partitionState("synced", 0)
        let latest = try broker.offsets(topic: "synced", partition: 0).end
        let early = try #require(try broker.readNow(topic: "synced", partition: 0, offset: 0, maxBytes: 1 << 20))
        let synced = state.log.flushedOffset
        // Never past what is synced (on a machine too busy to look before the sync ends, that
        // is all this can say).
        #expect(latest <= synced && early.highWatermark <= synced)
        if synced == 0 { #expect(latest == 0 && early.slice == nil) }
        _ = try await produced.value
        #expect(try broker.offsets(topic: "synced", partition: 0).end == 1)
        let result = try await fetched.value
        #expect(result.highWatermark == 1 && result.slice != nil)
        StorageFaults.clear(pathContains: dir.path)
        try await broker.close()
    }

    /// A fetch whose partition's log closed under it (its topic deleted meanwhile) is told the
    /// partition is unknown, as Kafka tells it; COORDINATOR_NOT_AVAILABLE (the broker-closed
    /// answer) made the Java consumer's poll() throw.
    @Test func aReadOfADeletedTopicsLogIsAnUnknownPartition() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("gone", partitions: 1)
        _ = try await broker.append(topic: "gone", partition: 0, batches: try plainBatch(["a"]))
        let state = try broker.partitionState("gone", 0)
        try await broker.deleteTopic("gone")
        #expect {
            try broker.readLocked(state, offset: 0, maxBytes: 1 << 20, mayBlock: true)
        } throws: { ($0 as? TidemarkError)?.code == .unknownTopicOrPartition }
        try await broker.close()
    }

    func plainBatch(_ values: [String]) throws -> [UInt8] {
        var builder = RecordBatchBuilder()
        for value in values { builder.append(timestamp: currentTimeMilliseconds(), key: nil, value: Array(value.utf8)) }
        return try builder.build()
    }
}

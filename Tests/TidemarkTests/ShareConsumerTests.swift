import Foundation
import TestSupport
import Testing
import TidemarkStorage

@testable import Tidemark

/// The embedded `ShareConsumer` as a worker uses it: long jobs, failed reads, locks that ran out.
@Suite struct ShareConsumerTests {
    static func job(_ broker: Broker, _ partition: Int, _ value: String) async throws {
        var builder = RecordBatchBuilder()
        builder.append(timestamp: 0, key: nil, value: Array(value.utf8))
        _ = try await broker.append(topic: "jobs", partition: partition, batches: try builder.build())
    }

    /// A worker busy with one job for longer than the session timeout (here 3 s), without
    /// polling: its background heartbeats keep it a member, so the job is not handed to
    /// another worker and its acknowledgement is applied. It used to heartbeat only inside
    /// poll and commit; the group dropped it and gave its job away.
    @Test func aWorkerBusyPastTheSessionTimeoutKeepsItsJob() async throws {
        let dir = TemporaryDirectory()
        var opts = options()
        opts.groups.shareSessionTimeoutMs = 3_000
        opts.groups.shareHeartbeatIntervalMs = 100
        opts.groups.shareRecordLockDurationMs = 60_000
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("jobs", partitions: 1)
        try await Self.job(broker, 0, "long")
        let busy = try await ShareConsumer(broker: broker, group: "pool", topics: ["jobs"], mode: .explicit)
        let jobs = try await busy.poll(timeout: .seconds(2))
        #expect(jobs.count == 1)
        try await Task.sleep(for: .milliseconds(5_000))  // working
        let other = try await ShareConsumer(broker: broker, group: "pool", topics: ["jobs"], mode: .explicit)
        #expect(try await other.poll(timeout: .milliseconds(300)).isEmpty)
        busy.acknowledge(jobs[0], .accept)
        #expect(try await busy.commit()[TopicPartition("jobs", 0)] == .some(nil))
        try await other.close()
        try await busy.close()
        try await broker.close()
    }

    /// A poll whose read of one partition fails gives back everything it acquired: the next
    /// poll returns both partitions' jobs. (Implicit mode used to accept, at the next poll,
    /// the jobs read from the other partition but never returned: lost.) The failing read is
    /// the n-th of the partition's reads (the acquire's own scan reads it first), for each n
    /// until one fails inside the poll's delivery.
    @Test func aFailedReadGivesBackEverythingThePollAcquired() async throws {
        var failedInDelivery = false
        for skip in 0..<8 where !failedInDelivery {
            let dir = TemporaryDirectory()
            defer { StorageFaults.clear(pathContains: dir.path) }
            let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
            try await broker.createTopic("jobs", partitions: 2)
            try await Self.job(broker, 0, "a")
            try await Self.job(broker, 1, "b")
            let worker = try await ShareConsumer(broker: broker, group: "pool", topics: ["jobs"])
            StorageFaults.inject(.read, .ioError, pathContains: dir.path + "/jobs-1/", skip: skip, times: nil)
            var values: [String] = []
            do {
                values = try await worker.poll(timeout: .milliseconds(100)).map { String(decoding: $0.value ?? [], as: UTF8.self) }
            } catch {
                failedInDelivery = true
            }
            StorageFaults.clear(pathContains: dir.path)
            for _ in 0..<5 where values.count < 2 {
                values += try await worker.poll(timeout: .milliseconds(100)).map { String(decoding: $0.value ?? [], as: UTF8.self) }
            }
            #expect(values.sorted() == ["a", "b"], "failing read \(skip + 1)")
            try await worker.close()
            try await broker.close()
        }
        #expect(failedInDelivery)
    }

    /// Two jobs of one partition acknowledged together after the first one's lock ran out:
    /// the partition's acknowledgement is refused whole, so the consumer sends it again in
    /// parts and the second job is accepted (it used to stay held and go out again).
    @Test func anExpiredLockDoesNotCostTheOtherAcknowledgements() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        var opts = options(clock: clock, maintenanceMs: 3_600_000)
        opts.groups.shareRecordLockDurationMs = 15_000
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("jobs", partitions: 1)
        let worker = try await ShareConsumer(broker: broker, group: "pool", topics: ["jobs"], mode: .explicit)
        try await Self.job(broker, 0, "first")
        let first = try await worker.poll(timeout: .seconds(1))
        clock.advance(10_000)
        try await Self.job(broker, 0, "second")
        let second = try await worker.poll(timeout: .seconds(1))
        #expect(first.map(\.offset) == [0] && second.map(\.offset) == [1])
        clock.advance(6_000)  // the first lock ran out; the second has 9 s left
        worker.acknowledge(first[0], .accept)
        worker.acknowledge(second[0], .accept)
        #expect(try await worker.commit()[TopicPartition("jobs", 0)] == .some(.invalidRecordState))
        try await worker.close()  // what it still held goes back at once
        let next = try await ShareConsumer(broker: broker, group: "pool", topics: ["jobs"], mode: .explicit)
        let again = try await next.poll(timeout: .milliseconds(500))
        #expect(again.map(\.offset) == [0] && again.first?.deliveryCount == 2, "the second job was accepted")
        try await next.close()
        try await broker.close()
    }

    /// Per-key ordering with max.record.locks 100: a key whose first job is delayed an hour,
    /// with 100 more jobs of that key behind it, filled the in-flight cap with jobs that cannot
    /// go out, and a job of another key behind them waited the hour.
    @Test func aBlockedKeyDoesNotHoldBackOtherKeys() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("orders", partitions: 1)
        try await broker.alterGroupConfig(
            "fifo", changes: [.set("share.key.ordering", "true"), .set("share.partition.max.record.locks", "100")])
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await KeyOrderingAndDelayTests.append(broker, "orders", key: "a", value: "a-later", deliverAt: now + 3_600_000)
        var builder = RecordBatchBuilder()
        for i in 0..<100 { builder.append(timestamp: 0, key: Array("a".utf8), value: Array("a-\(i)".utf8)) }
        _ = try await broker.append(topic: "orders", partition: 0, batches: try builder.build())
        try await KeyOrderingAndDelayTests.append(broker, "orders", key: "b", value: "b-now")
        let worker = try await ShareConsumer(broker: broker, group: "fifo", topics: ["orders"], mode: .explicit)
        #expect(KeyOrderingAndDelayTests.values(try await worker.poll(timeout: .milliseconds(500))) == ["b-now"])
        try await worker.close()
        try await broker.close()
    }
}

import Foundation
import TestSupport
import Testing
import TidemarkStorage
@testable import Tidemark

/// The broker-wide bound on what share windows keep (`GroupOptions.shareWindowsTotalMaxRecords`):
/// each group keeps its own window of a partition, so delayed jobs were kept once per group
/// reading them, with no bound but groups x partitions x 100,000.
@Suite struct ShareWindowsBoundTests {
    static let delayed = 6_000

    /// `delayed` jobs for tomorrow, then 10 for now, in one batch.
    static func enqueue(_ broker: Broker) async throws {
        let tomorrow = Array("\(Int64(Date().timeIntervalSince1970 * 1000) + 86_400_000)".utf8)
        var builder = RecordBatchBuilder()
        for i in 0..<delayed {
            builder.append(timestamp: 0, key: nil, value: Array("later\(i)".utf8),
                headers: [RecordHeader(key: Broker.deliverAtHeader, value: tomorrow)])
        }
        for i in 0..<10 { builder.append(timestamp: 0, key: nil, value: Array("now\(i)".utf8)) }
        _ = try await broker.append(topic: "jobs", partition: 0, batches: try builder.build())
    }

    /// Polls until `count` jobs came or a poll brings none.
    static func take(_ worker: ShareConsumer, _ count: Int) async throws -> [String] {
        var got: [String] = []
        while got.count < count {
            let jobs = try await worker.poll(timeout: .milliseconds(200))
            if jobs.isEmpty { break }
            for job in jobs { worker.acknowledge(job, .accept) }
            try await worker.commit()
            got += KeyOrderingAndDelayTests.values(jobs)
        }
        return got
    }

    static func end(_ broker: Broker, _ group: String) -> Int64? {
        broker.shares.summaries(group, view: broker.shareLogView).first?.endOffset
    }

    @Test func windowsOfManyGroupsStayWithinTheBound() async throws {
        let dir = TemporaryDirectory()
        var options = BrokerOptions()
        options.groups.shareWindowsTotalMaxRecords = 10_000
        options.groups.sharePartitionMaxRecordLocks = 500
        var broker = try await Broker.open(dataDirectory: dir.path, options: options)
        try await broker.createTopic("jobs", partitions: 1)
        try await Self.enqueue(broker)
        let all = Self.delayed + 10

        // Group a reads past the jobs for tomorrow to the ten for now: its window keeps 6,010.
        let a = try await ShareConsumer(broker: broker, group: "a", topics: ["jobs"], mode: .explicit)
        #expect(try await Self.take(a, 10) == (0..<10).map { "now\($0)" })
        #expect(Self.end(broker, "a") == Int64(all))
        try await a.close()
        // Group b may keep what is left of the 10,000 (3,990 jobs for tomorrow): nothing for it.
        let b = try await ShareConsumer(broker: broker, group: "b", topics: ["jobs"], mode: .explicit)
        #expect(try await Self.take(b, 10).isEmpty)
        #expect(Self.end(broker, "b") == Int64(10_000 - all))
        // Group c keeps its 500 record locks' worth, no more.
        let c = try await ShareConsumer(broker: broker, group: "c", topics: ["jobs"], mode: .explicit)
        #expect(try await Self.take(c, 10).isEmpty)
        #expect(Self.end(broker, "c") == 500)
        #expect(broker.shares.windowRecords.kept == 10_500)
        await broker.shares.tick()
        #expect(broker.shares.windowRecords == (kept: 10_500, limit: 10_000))

        // Restored windows count at open: a's (b and c handed nothing out, so their windows
        // were not written; they are read again when used).
        try await b.close()
        try await c.close()
        try await broker.close()
        broker = try await Broker.open(dataDirectory: dir.path, options: options)
        #expect(broker.shares.windowRecords.kept == all)
        // Once group a and its window are gone (counted at the next maintenance pass), b reads on.
        #expect(await broker.deleteGroups(["a"]).allSatisfy { $0.error == nil })
        await broker.shares.tick()
        #expect(broker.shares.windowRecords.kept == 0)
        let b2 = try await ShareConsumer(broker: broker, group: "b", topics: ["jobs"], mode: .explicit)
        #expect(try await Self.take(b2, 10) == (0..<10).map { "now\($0)" })
        #expect(Self.end(broker, "b") == Int64(all))
        // Nobody got a job for tomorrow, and c waits again at the bound.
        let c2 = try await ShareConsumer(broker: broker, group: "c", topics: ["jobs"], mode: .explicit)
        #expect(try await Self.take(c2, 10).isEmpty)
        #expect(Self.end(broker, "c") == Int64(10_000 - all))
        #expect(broker.shares.windowRecords.kept == 10_000)
        try await b2.close()
        try await c2.close()
        try await broker.close()
    }

    /// A window at its own bound (`group.share.window.max.records`) with jobs for now behind
    /// the jobs for tomorrow it keeps: the workers get nothing, and the maintenance pass says
    /// why, naming the partition (nothing was logged: the queue's age grew and the log was
    /// silent).
    @Test func aFullWindowIsLogged() async throws {
        let dir = TemporaryDirectory()
        var options = BrokerOptions()
        options.groups.shareWindowMaxRecords = 1_000
        options.groups.sharePartitionMaxRecordLocks = 100
        // Only the test's passes (a pass of the broker's own would log the wait first).
        options.maintenanceIntervalMs = 3_600_000
        let broker = try await Broker.open(dataDirectory: dir.path, options: options)
        try await broker.createTopic("jobs", partitions: 1)
        try await Self.enqueue(broker)
        let worker = try await ShareConsumer(broker: broker, group: "pool", topics: ["jobs"], mode: .explicit)
        #expect(try await Self.take(worker, 10).isEmpty)
        #expect(Self.end(broker, "pool") == 1_000)
        let log = CapturedLog()
        await broker.shares.tick(logger: log.logger)
        let lines = log.matching("a share window is full")
        #expect(lines.count == 1)
        #expect(lines.first.map { $0.level == .warning && $0.metadata["group"] == "pool" && $0.metadata["topic"] == "jobs" } == true)
        #expect(lines.first?.metadata["kept"] == "1000" && lines.first?.metadata["bound"] == "1000")
        #expect(log.matching("broker-wide bound").isEmpty)
        // Once a minute at most.
        #expect(try await Self.take(worker, 10).isEmpty)
        await broker.shares.tick(logger: log.logger)
        #expect(log.matching("a share window is full").count == 1)
        try await worker.close()
        try await broker.close()
    }
}

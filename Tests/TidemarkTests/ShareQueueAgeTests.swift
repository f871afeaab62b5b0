import Foundation
import TestSupport
import Testing
import TidemarkStorage
@testable import Tidemark

/// The age of a share group's oldest job not acknowledged (`tidemark_queue_oldest_unacked_age_seconds`,
/// the console's alert): jobs waiting for their delivery time do not count, so one scheduled
/// for tomorrow, which holds the share start offset, does not read as a job a day late.
@Suite struct ShareQueueAgeTests {
    static func append(_ broker: Broker, value: String, timestamp: Int64, deliverAt: Int64? = nil) async throws {
        try await KeyOrderingAndDelayTests.append(broker, "jobs", key: nil, value: value, deliverAt: deliverAt, timestamp: timestamp)
    }

    static func ageSeconds(_ broker: Broker, group: String = "workers") -> Double? {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        return broker.queueReports(group: group, ages: true).first.map { q in
            q.oldestUnfinishedMs.map { Double(now - $0) / 1000 } ?? 0
        }
    }

    @Test func aJobWaitingForItsTimeIsNotLate() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // Enqueued an hour ago for tomorrow, then a job a minute old, then one enqueued two
        // hours ago for half a second from now.
        try await Self.append(broker, value: "tomorrow", timestamp: now - 3_600_000, deliverAt: now + 86_400_000)
        try await Self.append(broker, value: "now", timestamp: now - 60_000)
        try await Self.append(broker, value: "soon", timestamp: now - 7_200_000, deliverAt: now + 500)
        let worker = try await ShareConsumer(broker: broker, group: "workers", topics: ["jobs"], mode: .explicit)
        let first = try await worker.poll(timeout: .milliseconds(100))
        #expect(first.map { String(decoding: $0.value ?? [], as: UTF8.self) } == ["now"])
        // Held, a minute old: the oldest job not acknowledged (not the one for tomorrow).
        let held = try #require(Self.ageSeconds(broker))
        #expect(held >= 59 && held < 600, "\(held) s")
        for job in first { worker.acknowledge(job, .accept) }
        try await worker.commit()
        // Nothing due: 0, though the job for tomorrow holds the start and one is due soon.
        #expect(Self.ageSeconds(broker) == 0)
        let summary = try #require(broker.shares.summaries("workers", view: broker.shareLogView).first)
        #expect(summary.startOffset == 0 && summary.lag == 2 && summary.oldestDueOffset == nil)
        // Once due, the delayed job counts from its time, not from two hours ago.
        try await Task.sleep(for: .milliseconds(700))
        let due = try #require(Self.ageSeconds(broker))
        #expect(due >= 0 && due < 60, "\(due) s")
        try await worker.close()
        try await broker.close()
    }

    /// Jobs in partitions added while no worker runs are in the queue's depth and age (they
    /// were missing until a worker fetched there, and the next worker was handed them all), as
    /// partitions not started (`SharePartitionSummary.started`); with
    /// `share.auto.offset.reset=latest` they are not the group's, and count nothing.
    @Test func partitionsAddedWhileNoWorkerRunsAreInTheQueue() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await Self.append(broker, value: "first", timestamp: now - 1_000)
        for group in ["workers", "latecomers"] {
            if group == "latecomers" { try await broker.alterGroupConfig(group, changes: [.set("share.auto.offset.reset", "latest")]) }
            let worker = try await ShareConsumer(broker: broker, group: group, topics: ["jobs"], mode: .explicit)
            _ = try await worker.poll(timeout: .milliseconds(100))
            try await worker.close()
        }
        try await broker.createPartitions(topic: "jobs", count: 3)
        for (p, value) in [(1, "a"), (2, "b"), (2, "c")] {
            var builder = RecordBatchBuilder()
            builder.append(timestamp: now - 120_000, key: nil, value: Array(value.utf8))
            _ = try await broker.append(topic: "jobs", partition: p, batches: try builder.build())
        }
        let summaries = broker.shares.summaries("workers", view: broker.shareLogView)
        #expect(summaries.map(\.topicPartition.partition) == [0, 1, 2])
        #expect(summaries.map(\.started) == [true, false, false])
        #expect(summaries.map(\.unread) == [0, 1, 2])
        let queue = try #require(broker.queueReports(group: "workers", ages: true).first)
        let depth: Int64 = Int64(queue.available) + Int64(queue.inFlight) + Int64(queue.delayed) + queue.unread
        #expect(depth == 4, "the first job (released at close) and three new")
        let age = try #require(Self.ageSeconds(broker))
        #expect(age >= 119 && age < 600, "the new jobs' age: \(age) s")
        // A group starting at the latest offset does not own what came before its first fetch.
        let late = try #require(broker.queueReports(group: "latecomers", ages: false).first)
        #expect(late.unread == 0)
        try await broker.close()
    }

    /// A job read after its delivery time had passed counts from that time; a job waiting out a
    /// retry backoff counts (it is late, not scheduled).
    @Test func anOverdueJobCountsFromItsTimeAndARetriedOneCounts() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        try await broker.alterGroupConfig("retrying", changes: [.set("share.redelivery.backoff.ms", "60000")])
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await Self.append(broker, value: "first", timestamp: now - 60_000)
        try await Self.append(broker, value: "overdue", timestamp: now - 7_200_000, deliverAt: now - 600_000)
        let worker = try await ShareConsumer(broker: broker, group: "workers", topics: ["jobs"], mode: .explicit)
        let first = try await worker.poll(maxRecords: 1, timeout: .milliseconds(100))
        #expect(first.map { String(decoding: $0.value ?? [], as: UTF8.self) } == ["first"])
        for job in first { worker.acknowledge(job, .accept) }
        try await worker.commit()
        // Due ten minutes ago, enqueued two hours ago: ten minutes late.
        let overdue = try #require(Self.ageSeconds(broker))
        #expect(overdue >= 590 && overdue < 1_200, "\(overdue) s")
        try await worker.close()

        let retrier = try await ShareConsumer(broker: broker, group: "retrying", topics: ["jobs"], mode: .explicit)
        let jobs = try await retrier.poll(maxRecords: 1, timeout: .milliseconds(100))
        #expect(jobs.map { String(decoding: $0.value ?? [], as: UTF8.self) } == ["first"])
        for job in jobs { retrier.acknowledge(job, .release) }
        try await retrier.commit()
        // Released, waiting out a minute's backoff: still the oldest job not done.
        let retried = try #require(Self.ageSeconds(broker, group: "retrying"))
        #expect(retried >= 59 && retried < 590, "\(retried) s")
        try await retrier.close()
        try await broker.close()
    }

    /// A delayed job a worker holds, or one released to wait out a backoff, still counts from
    /// its delivery time, not its enqueue: its window entry then holds its lock's or backoff's
    /// deadline, and the age is read from the record's own time. (A job scheduled a month
    /// ahead read as a month late from the moment a worker took it.)
    @Test func aDelayedJobOnceDeliveredStillCountsFromItsTime() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        try await broker.alterGroupConfig("retrying", changes: [.set("share.redelivery.backoff.ms", "60000")])
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // Enqueued two hours ago, due a minute ago.
        try await Self.append(broker, value: "overdue", timestamp: now - 7_200_000, deliverAt: now - 60_000)
        try await Self.append(broker, value: "later", timestamp: now - 10_000)
        let worker = try await ShareConsumer(broker: broker, group: "workers", topics: ["jobs"], mode: .explicit)
        let held = try await worker.poll(maxRecords: 1, timeout: .milliseconds(100))
        #expect(held.map { String(decoding: $0.value ?? [], as: UTF8.self) } == ["overdue"])
        let summary = try #require(broker.shares.summaries("workers", view: broker.shareLogView).first)
        #expect(summary.oldestDueOffset == 0 && summary.oldestDueDelivered && summary.oldestDueAtMs == nil)
        // Held: a minute late, not two hours.
        let age = try #require(Self.ageSeconds(broker))
        #expect(age >= 59 && age < 600, "\(age) s")
        try await worker.close()

        let retrier = try await ShareConsumer(broker: broker, group: "retrying", topics: ["jobs"], mode: .explicit)
        let jobs = try await retrier.poll(maxRecords: 1, timeout: .milliseconds(100))
        #expect(jobs.map { String(decoding: $0.value ?? [], as: UTF8.self) } == ["overdue"])
        for job in jobs { retrier.acknowledge(job, .release) }
        try await retrier.commit()
        // Released, waiting out its backoff: still a minute late.
        let retried = try #require(Self.ageSeconds(broker, group: "retrying"))
        #expect(retried >= 59 && retried < 600, "\(retried) s")
        try await retrier.close()
        try await broker.close()
    }

    /// After a restart, a window's delays are read as the broker opens, not only by the first
    /// worker's fetch: a job scheduled for tomorrow at the start of the queue is not read as
    /// due (and as old as its enqueue) while no worker is connected. (Every restart read it as
    /// an hour late here, and the console's alert fired until a worker polled; then, until the
    /// first maintenance pass, a second after the start: a scrape then saw it due.)
    @Test func aRestartedQueueKnowsItsDelayedJobsBeforeAnyWorkerPolls() async throws {
        let dir = TemporaryDirectory()
        do {
            let broker = try await Broker.open(dataDirectory: dir.path)
            try await broker.createTopic("jobs", partitions: 1)
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            try await Self.append(broker, value: "tomorrow", timestamp: now - 3_600_000, deliverAt: now + 86_400_000)
            try await Self.append(broker, value: "now", timestamp: now - 60_000)
            try await Self.append(broker, value: "next", timestamp: now - 30_000)
            let worker = try await ShareConsumer(broker: broker, group: "workers", topics: ["jobs"], mode: .explicit)
            let jobs = try await worker.poll(maxRecords: 1, timeout: .milliseconds(100))
            #expect(jobs.map { String(decoding: $0.value ?? [], as: UTF8.self) } == ["now"])
            for job in jobs { worker.acknowledge(job, .accept) }
            try await worker.commit()
            try await worker.close()
            try await broker.close()
        }
        var slow = BrokerOptions()
        slow.maintenanceIntervalMs = 3_600_000  // no pass runs during the test
        let broker = try await Broker.open(dataDirectory: dir.path, options: slow)
        // The job enqueued 30 s ago is the oldest due; tomorrow's is delayed.
        let age = try #require(Self.ageSeconds(broker))
        #expect(age >= 29 && age < 600, "\(age) s")
        let summary = try #require(broker.shares.summaries("workers", view: broker.shareLogView).first)
        #expect(summary.startOffset == 0 && summary.oldestDueOffset == 2 && summary.delayed == 1 && summary.lag == 2)
        try await broker.close()
    }

    /// Records past the window (no worker has read that far: workers down) are read for their
    /// delivery times: a job for tomorrow enqueued an hour ago is not late, and a job behind it
    /// counts from its own enqueue. (Both read as an hour late: the first record past the
    /// window was taken at its enqueue.)
    @Test func jobsNoWorkerHasReadYetCountFromTheirTimes() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await Self.append(broker, value: "first", timestamp: now - 60_000)
        let worker = try await ShareConsumer(broker: broker, group: "workers", topics: ["jobs"], mode: .explicit)
        let jobs = try await worker.poll(maxRecords: 1, timeout: .milliseconds(100))
        #expect(jobs.map { String(decoding: $0.value ?? [], as: UTF8.self) } == ["first"])
        for job in jobs { worker.acknowledge(job, .accept) }
        try await worker.commit()
        try await worker.close()
        // No worker now.
        try await Self.append(broker, value: "tomorrow", timestamp: now - 3_600_000, deliverAt: now + 86_400_000)
        let summary = try #require(broker.shares.summaries("workers", view: broker.shareLogView).first)
        #expect(summary.endOffset == 1 && summary.oldestDueOffset == 1 && summary.lag == 1)
        #expect(Self.ageSeconds(broker) == 0)
        try await Self.append(broker, value: "next", timestamp: now - 30_000)
        let age = try #require(Self.ageSeconds(broker))
        #expect(age >= 29 && age < 600, "\(age) s")
        try await broker.close()
    }
}

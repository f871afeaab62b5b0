import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Tidemark

/// Embedded long polls end when their task is cancelled: they used to loop (each wait
/// returned at once) at full speed until their deadline, and then return as if nothing
/// happened. (Generous bounds: other suites block cooperative threads in raw socket reads.)
@Suite struct CancellationTests {
    static func cancelledSoon<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async -> (Duration, Bool) {
        let started = ContinuousClock.now
        let task = Task { try await body() }
        try? await Task.sleep(for: .milliseconds(100))
        task.cancel()
        let cancelled: Bool
        do {
            _ = try await task.value
            cancelled = false
        } catch {
            cancelled = error is CancellationError
        }
        return (ContinuousClock.now - started, cancelled)
    }

    @Test func longPollsStopWhenCancelled() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("idle", partitions: 2)
        let fetched = await Self.cancelledSoon { try await broker.fetch(topic: "idle", partition: 0, offset: 0, minBytes: 1, maxWaitMs: 120_000) }
        #expect(fetched.0 < .seconds(60) && fetched.1, "\(fetched)")
        let consumer = Consumer(broker: broker)
        try await consumer.assign(topic: "idle", partition: 0, from: .earliest)
        try await consumer.assign(topic: "idle", partition: 1, from: .earliest)
        let polled = await Self.cancelledSoon { try await consumer.poll(maxRecords: 10, maxWaitMs: 120_000) }
        #expect(polled.0 < .seconds(60) && polled.1, "\(polled)")
        let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["idle"])
        let shared = await Self.cancelledSoon { try await worker.poll(timeout: .seconds(120)) }
        #expect(shared.0 < .seconds(60) && shared.1, "\(shared)")
        try await worker.close()
        try await broker.close()
    }

    /// A long poll over many partitions is one wait: a watch on each partition and one entry
    /// in the broker's deadline timers (it was a child task per partition, each with its own
    /// deadline entry; a share worker's, a sleeping task per wait), and whichever ends it (an
    /// append, the deadline, cancellation) leaves no watch and no entry behind.
    @Test func aLongPollOverManyPartitionsIsOneWaitAndLeavesNothing() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("many", partitions: 40)
        let notifiers = try (0..<40).map { try broker.partitionState("many", $0).notifier }
        func settled(_ watches: Int, entries: Int) async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                if notifiers.allSatisfy({ $0.waiterCount == watches }) && broker.timers.pendingCount == entries { return true }
                try await Task.sleep(for: .milliseconds(5))
            }
            return false
        }
        let consumer = Consumer(broker: broker)
        for partition in 0..<40 { try await consumer.assign(topic: "many", partition: partition, from: .latest) }
        let producer = try await Producer(broker: broker)
        let woken = Task { try await consumer.poll(maxRecords: 10, maxWaitMs: 60_000) }
        #expect(try await settled(1, entries: 1))
        _ = try await producer.send(topic: "many", key: nil, value: bytes("job"), partition: 17)
        #expect(try await woken.value.map(\.partition) == [17])
        #expect(try await settled(0, entries: 0))
        #expect(try await consumer.poll(maxRecords: 10, maxWaitMs: 50).isEmpty)
        #expect(try await settled(0, entries: 0))
        let cancelled = Task { try await consumer.poll(maxRecords: 10, maxWaitMs: 60_000) }
        #expect(try await settled(1, entries: 1))
        cancelled.cancel()
        _ = try? await cancelled.value
        #expect(try await settled(0, entries: 0))
        let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["many"])
        #expect(try await worker.poll(maxRecords: 10, timeout: .seconds(30)).map(\.partition) == [17])  // (the group reads from the start)
        let shared = Task { try await worker.poll(maxRecords: 10, timeout: .seconds(60)) }
        #expect(try await settled(1, entries: 1), "\(notifiers.map(\.waiterCount)) \(broker.timers.pendingCount)")
        _ = try await producer.send(topic: "many", key: nil, value: bytes("job"), partition: 3)
        let got = try await shared.value
        #expect(got.map(\.partition) == [3], "\(got)")
        #expect(try await settled(0, entries: 0))
        try await worker.close()
        try await broker.close()
    }

    /// `flush` waits for the records sent before it, not for those another task keeps
    /// sending: with a steady sender beside it, it never returned.
    @Test func flushDoesNotWaitForLaterSends() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("busy", partitions: 2)
        let producer = try await Producer(broker: broker)
        _ = try await producer.send(topic: "busy", key: nil, value: [0], partition: 0)
        // Four senders, so that some record is always in flight.
        let senders = (0..<4).map { n in
            Task {
                while !Task.isCancelled {
                    _ = await producer.send((0..<50).map { Producer.OutgoingRecord(topic: "busy", key: nil, value: [UInt8($0)], partition: n % 2) })
                }
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        // The flush must return while the senders still send (up to 60 s on a loaded machine).
        final class Flag: Sendable { let raised = Atomic<Bool>(false) }
        let flushed = Flag()
        let flushing = Task {
            await producer.flush()
            flushed.raised.store(true, ordering: .releasing)
        }
        for _ in 0..<600 where !flushed.raised.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(100)) }
        let done = flushed.raised.load(ordering: .acquiring)
        #expect(done, "flush still waiting while other tasks kept sending")
        for sender in senders { sender.cancel() }
        for sender in senders { _ = await sender.value }
        await flushing.value
        await producer.flush()
        try await broker.close()
    }

    /// Reports (a /metrics scrape, a console page) are bounded: past `Broker.maxReports`
    /// running or waiting, one is refused (nil) without running; one whose task is cancelled
    /// before its turn (its client closed the connection) never runs. (Every report of a
    /// client that had gone ran, one after another: 2,931 scrapes sent and dropped held the
    /// next real one for 584 s.)
    @Test func reportsAreBoundedAndCancelledOnesDoNotRun() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        let gate = DispatchSemaphore(value: 0)
        final class Count: Sendable { let value = Atomic<Int>(0) }
        let ran = Count()
        // One report holds the reporter; the others wait behind it.
        let holder = Task { await broker.report { gate.wait(); ran.value.add(1, ordering: .relaxed); return 1 } }
        try await Task.sleep(for: .milliseconds(100))
        let cancelled = Task { await broker.report { ran.value.add(100, ordering: .relaxed); return 2 } }
        var waiting: [Task<Int?, Never>] = []
        for _ in 0..<(Broker.maxReports - 2) { waiting.append(Task { await broker.report { ran.value.add(1, ordering: .relaxed); return 3 } }) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(await broker.report { 4 } == nil, "one past the bound is refused")
        cancelled.cancel()
        gate.signal()
        #expect(await holder.value == 1)
        #expect(await cancelled.value == nil)
        for task in waiting { #expect(await task.value == 3) }
        #expect(ran.value.load(ordering: .relaxed) == Broker.maxReports - 1, "the cancelled report did not run")
        #expect(await broker.report { 5 } == 5)
        try await broker.close()
    }
}

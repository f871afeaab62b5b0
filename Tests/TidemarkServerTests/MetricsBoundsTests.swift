import Dispatch
import Foundation
import NIOCore
import TestSupport
import Testing
import Tidemark
@testable import TidemarkHTTP

/// What one scrape may cost: consumer groups' per-partition rows are bounded (`maxGroupRows`):
/// a group has a row per partition of every topic it committed to, and one OffsetCommit makes
/// a group, so 200 groups of two 500-partition topics made a 36 MB scrape taking 3.7 s.
@Suite struct MetricsBoundsTests {
    @Test func groupRowsAreBoundedAndWholeGroupsLeftOut() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("wide", partitions: 40)
        for g in 0..<5 {
            _ = try await broker.groups.commitOffsets(groupId: "g\(g)", offsets: [TopicPartition("wide", 0): CommittedOffset(offset: 0)])
        }
        let identity = NodeIdentity(brokerId: 0, address: "127.0.0.1:9092", version: TidemarkVersion.current)
        func lagRows(_ text: String) -> [String] {
            text.split(separator: "\n").filter { $0.hasPrefix("kafka_consumergroup_lag{") }.map(String.init)
        }
        let all = lagRows(MetricsRoutes(broker: broker, registry: nil, identity: identity).exposition())
        #expect(all.count == 5 * 40)
        // Room for two groups and a half: two are exported, whole; the rest are left out.
        let bounded = lagRows(MetricsRoutes(broker: broker, registry: nil, identity: identity, maxGroupRows: 100).exposition())
        #expect(bounded.count == 2 * 40)
        #expect(bounded.allSatisfy { $0.contains("consumergroup=\"g0\"") || $0.contains("consumergroup=\"g1\"") })
        // A group with a member is exported first, whatever its name: groups left behind by
        // name pushed live ones out.
        let joined = broker.consumerGroupHeartbeat(
            ConsumerHeartbeat(groupId: "z-live", memberId: "", memberEpoch: 0, rebalanceTimeoutMs: 60_000, subscribedTopicNames: ["wide"], clientId: "c"))
        #expect(joined.error == nil)
        let few = MetricsRoutes(broker: broker, registry: nil, identity: identity, maxGroups: 2).exposition()
            .split(separator: "\n").filter { $0.hasPrefix("kafka_consumergroup_members{") }
        #expect(few.sorted() == ["kafka_consumergroup_members{consumergroup=\"g0\"} 0", "kafka_consumergroup_members{consumergroup=\"z-live\"} 1"], "\(few)")
        // The console's list too (it kept the first by name: 1,001 groups left behind by a
        // batch job hid every live one).
        let console = ConsoleData(broker: broker, registry: nil, identity: identity, maxGroups: 2)
        #expect(console.groupRows(timeLags: false).map(\.id) == ["z-live", "g0"])

        // Share groups alike: one whose worker left, by name first, and a live one.
        try await broker.createTopic("jobs", partitions: 1)
        let left = try await ShareConsumer(broker: broker, group: "a-left", topics: ["jobs"], mode: .explicit)
        _ = try await left.poll(timeout: .milliseconds(50))
        try await left.close()
        let live = try await ShareConsumer(broker: broker, group: "z-working", topics: ["jobs"], mode: .explicit)
        _ = try await live.poll(timeout: .milliseconds(50))
        #expect(broker.shares.groupIds() == ["a-left", "z-working"])
        let queues = MetricsRoutes(broker: broker, registry: nil, identity: identity, maxGroups: 1).exposition()
            .split(separator: "\n").filter { $0.hasPrefix("tidemark_queue_leases_in_flight{") }
        #expect(queues == ["tidemark_queue_leases_in_flight{group=\"z-working\",topic=\"jobs\"} 0"], "\(queues)")
        // (Group, topic) rows are bounded too, whole groups left out (1,000 share groups of
        // 1,000 topics each made a scrape of 1 GB).
        let rowBound = MetricsRoutes(broker: broker, registry: nil, identity: identity, maxQueueRows: 1).exposition()
            .split(separator: "\n").filter { $0.hasPrefix("tidemark_queue_leases_in_flight{") || $0.hasPrefix("tidemark_queue_workers{") }
        #expect(rowBound == ["tidemark_queue_leases_in_flight{group=\"z-working\",topic=\"jobs\"} 0", "tidemark_queue_workers{group=\"z-working\"} 1"], "\(rowBound)")
        #expect(console.queueRows(withRates: false, ages: false).map(\.group) == ["z-working", "a-left"])
        // One group's rows whatever its place in the list.
        let one = ConsoleData(broker: broker, registry: nil, identity: identity, maxGroups: 1)
        #expect(one.queueRows(withRates: false, ages: false, only: "a-left").map(\.group) == ["a-left"])
        try await live.close()
        try await broker.close()
    }

    /// Scrapes that arrive while an exposition is being made share it: 20 at once take one
    /// report slot (with 7 of the 8 held, each made its own and 19 were refused busy).
    @Test func scrapesAtOnceShareOneExposition() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        let routes = MetricsRoutes(
            broker: broker, registry: nil, identity: NodeIdentity(brokerId: 0, address: "127.0.0.1:9092", version: TidemarkVersion.current))
        let gate = DispatchSemaphore(value: 0)
        let held = (0..<(Broker.maxReports - 1)).map { _ in Task { await broker.report { gate.wait() } } }
        try await Task.sleep(for: .milliseconds(200))
        let scrapes = (0..<20).map { _ in Task { await routes.sharedExposition() } }
        try await Task.sleep(for: .milliseconds(200))
        for _ in held { gate.signal() }
        for task in held { _ = await task.value }
        var answered = 0
        var storage = Set<UInt>()
        for scrape in scrapes {
            guard let buffer = await scrape.value, String(buffer: buffer).contains("kafka_brokers") else { continue }
            answered += 1
            storage.insert(buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) })
        }
        #expect(answered == 20)
        // One copy of its bytes for all twenty answers (a copy each was held until each client
        // read it: 48 scrapers that read nothing held 3 GB of a 67 MB exposition).
        #expect(storage.count == 1)
        try await broker.close()
    }

    /// Console pages filling the reports' line do not turn a scrape away: it takes its turn
    /// (one scrape of three, beside 60 console reads, was answered 503, and Prometheus saw the
    /// node down).
    @Test func consolePagesDoNotTurnAScrapeAway() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        let routes = MetricsRoutes(
            broker: broker, registry: nil, identity: NodeIdentity(brokerId: 0, address: "127.0.0.1:9092", version: TidemarkVersion.current))
        let gate = DispatchSemaphore(value: 0)
        let held = (0..<Broker.maxReports).map { _ in Task { await broker.report { gate.wait() } } }
        try await Task.sleep(for: .milliseconds(200))
        #expect(await broker.report { 1 } == nil, "the line is full for console pages")
        let scrape = Task { await routes.sharedExposition() }
        try await Task.sleep(for: .milliseconds(100))
        for _ in held { gate.signal() }
        for task in held { _ = await task.value }
        #expect(await scrape.value.map { String(buffer: $0) }?.contains("kafka_brokers") == true)
        try await broker.close()
    }
}

#if canImport(Glibc)
import Glibc
#endif
import TestSupport
import Testing
import Tidemark
import TidemarkServer
import TidemarkStorage
import TidemarkWire

/// `max.connections` and `max.connections.per.ip`: on reaching `max.connections` accepting
/// stops until a connection closes (the client waiting is then let in); a connection past
/// `max.connections.per.ip` is closed as it arrives and counted; those connected are served.
///
/// Nested in `ServerTests` so that its blocking raw clients never run beside other suites'.
extension ServerTests { @Suite(.serialized) struct ConnectionLimitTests {
    /// ApiVersions on `client`: true when answered, false when the connection was closed.
    static func answers(_ client: RawClient, _ correlation: Int32) async throws -> Bool {
        try client.request(.apiVersions, version: 0, correlation: correlation, ApiVersionsRequest())
        guard let (answered, _) = await client.response() else { return false }
        #expect(answered == correlation)
        return true
    }

    static func refused(_ node: HTTPMetricsTests.Node, _ limit: String) async throws -> Double? {
        try await node.scrape()[Sample(name: "tidemark_connections_refused_total", labels: ["listener": "kafka", "limit": limit])]
    }

    @Test func atMaxConnectionsAcceptingWaitsForAClose() async throws {
        let node = try await HTTPMetricsTests.start(configure: { $0.maxConnections = 3 })
        let port = node.server.boundPort
        var held = try (0..<3).map { _ in try RawClient(port: port) }
        for (index, client) in held.enumerated() { #expect(try await Self.answers(client, Int32(index))) }
        #expect(try await Self.refused(node, "max.connections") == 0)

        // Reaching the limit stopped accepting: the next client waits in the kernel's backlog
        // (connected, unanswered), nobody is refused, and those connected are still served.
        try await Task.sleep(for: .milliseconds(50))  // the listener's loop has paused it
        let waiting = try RawClient(port: port)
        try waiting.request(.apiVersions, version: 0, correlation: 11, ApiVersionsRequest())
        for (index, client) in held.enumerated() { #expect(try await Self.answers(client, Int32(20 + index))) }
        #expect(try await Self.refused(node, "max.connections") == 0)

        // One closes: the waiting client is accepted and answered (its request was sent).
        held.removeFirst()
        #expect(await waiting.response()?.0 == 11)
        #expect(try await Self.refused(node, "max.connections") == 0)
        try await node.stop()
    }

    @Test func connectionsPastMaxConnectionsPerIpAreClosedAndCounted() async throws {
        let node = try await HTTPMetricsTests.start(configure: { $0.maxConnectionsPerIp = 2 })
        let port = node.server.boundPort
        let held = try (0..<2).map { _ in try RawClient(port: port) }
        for (index, client) in held.enumerated() { #expect(try await Self.answers(client, Int32(index))) }
        #expect(try await !Self.answers(try RawClient(port: port), 10))
        #expect(try await Self.refused(node, "max.connections.per.ip") == 1)
        #expect(try await Self.refused(node, "max.connections") == 0)
        try await node.stop()
    }

    @Test func theLimitsAreBrokerSettings() throws {
        var settings = BrokerConfig()
        try settings.set("max.connections", "500")
        try settings.set("max.connections.per.ip", "20")
        #expect(settings.server.maxConnections == 500)
        #expect(settings.server.maxConnectionsPerIp == 20)
        #expect(throws: BrokerConfig.Failure.self) { try settings.set("max.connections", "0") }
        let described = Dictionary(uniqueKeysWithValues: settings.describe.map { ($0.name, $0.value) })
        #expect(described["max.connections"] == "500")
        #expect(described["max.connections.per.ip"] == "20")
        // The default leaves the segment files' budget and a reserve free: 192, and 3 per loop.
        var unset = BrokerConfig()
        unset.server.eventLoops = 4
        unset.broker.openFileBudget = OpenFileBudget(limit: 100)
        let defaults = Dictionary(uniqueKeysWithValues: unset.describe.map { ($0.name, $0.value) })
        var limit = rlimit()
        #expect(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0)
        let soft = Int(min(UInt64(limit.rlim_cur), UInt64(Int32.max)))
        #expect(defaults["max.connections"] == "\(DescriptorPlan(soft: soft, budget: 100, eventLoops: 4).connections)")
    }

    /// Segment files, Kafka and HTTP connections, sendfile descriptors and the process's own
    /// fit the descriptor limit together: at `ulimit -n 128` the defaults (64 connections at
    /// least, half the limit for segments) came to more than the limit, and running out ended
    /// the process (libdispatch's worker monitor aborts when it cannot open /proc).
    @Test func theDescriptorPlanFitsTheLimit() {
        // Event loops as machines have them, up to where the floors pass a small limit.
        for (loops, smallest) in [(1, 128), (4, 128), (16, 256), (64, 1024)] {
            for soft in [128, 200, 256, 300, 511, 512, 1024, 2000, 4096, 65536, 1 << 20] where soft >= smallest {
                let budget = OpenFileBudget.limit(forSoftLimit: UInt64(soft))
                let plan = DescriptorPlan(soft: soft, budget: budget, eventLoops: loops)
                let used = budget + plan.connections + plan.http + plan.sendfile + plan.own
                #expect(used <= soft && plan.fits, "ulimit -n \(soft), \(loops) loops: \(budget) + \(plan) = \(used)")
                #expect(plan.own >= 32 + 3 * (loops + 1))
                #expect(plan.connections >= 16 && plan.http >= 8 && plan.sendfile >= 16 && budget >= 32)
            }
        }
        // Past that, the plan says so (the server warns).
        #expect(!DescriptorPlan(soft: 128, budget: OpenFileBudget.limit(forSoftLimit: 128), eventLoops: 16).fits)
        // A large limit keeps Kafka's proportions: half for segments (at most 65,536), 128 HTTP.
        #expect(OpenFileBudget.limit(forSoftLimit: 4096) == 2048 && DescriptorPlan(soft: 4096, budget: 2048, eventLoops: 2).http == 128)
    }

    /// Values that trapped the broker while it read its settings (an Int64 overflow, a zero
    /// that reached NIO's precondition) or made it misbehave are refused with a message.
    @Test func settingsThatTrappedAreRefused() throws {
        var settings = BrokerConfig()
        for (key, value) in [
            ("log.retention.hours", "\(Int64.max / 1000)"), ("log.retention.minutes", "\(Int64.max)"), ("log.roll.hours", "\(Int64.max)"),
            ("num.network.threads", "0"), ("socket.request.max.bytes", "-1"), ("producer.id.expiration.ms", "0"),
            ("fetch.max.bytes", "-5"), ("log.flush.interval.messages", "0"),
            // The expiry's cutoff overflowed at the first check; 0 expired every empty group's offsets.
            ("offsets.retention.minutes", "-153722867280912"), ("offsets.retention.minutes", "0"),
        ] {
            #expect(throws: BrokerConfig.Failure.self, "\(key)=\(value)") { try settings.set(key, value) }
        }
        try settings.set("log.roll.hours", "2")
        // Kafka's INT: past 32 bits is refused as Kafka refuses it; the largest is kept.
        #expect(throws: BrokerConfig.Failure.self) { try settings.set("offsets.retention.minutes", "\(Int64.max)") }
        try settings.set("offsets.retention.minutes", "\(Int32.max)")
        #expect(settings.broker.groups.offsetsRetentionMs == Int64(Int32.max) * 60_000)
        try settings.set("log.flush.interval.messages", "1000")
        try settings.set("log.flush.interval.ms", "500")
        #expect(settings.broker.defaultTopicConfig.segmentMs == 7_200_000)
        #expect(settings.broker.defaultTopicConfig.flushPolicy == .everyMessages(1000))
        #expect(settings.broker.defaultTopicConfig.flushAlsoEveryMs == 500)
    }

    /// Broker-wide heartbeat settings have the floors a group's own have, and each pair is
    /// checked once everything is set: a 1 ms interval had every member heartbeat hundreds of
    /// times a second, and an interval at or past the session timeout expired every member.
    @Test func groupHeartbeatSettingsMustFitTheirSessions() throws {
        var settings = BrokerConfig()
        for (key, value) in [
            ("group.consumer.heartbeat.interval.ms", "1"), ("group.share.heartbeat.interval.ms", "99"),
            ("group.consumer.session.timeout.ms", "999"), ("group.share.session.timeout.ms", "5"),
        ] {
            #expect(throws: BrokerConfig.Failure.self, "\(key)=\(value)") { try settings.set(key, value) }
        }
        try settings.checked()
        // Either of a pair may come first; only the final pair is judged.
        try settings.set("group.consumer.heartbeat.interval.ms", "60000")
        #expect(throws: BrokerConfig.Failure.self) { try settings.checked() }
        try settings.set("group.consumer.session.timeout.ms", "90000")
        try settings.checked()
        try settings.set("group.share.session.timeout.ms", "1000")
        try settings.set("group.share.heartbeat.interval.ms", "1000")
        #expect(throws: BrokerConfig.Failure.self) { try settings.checked() }
        try settings.set("group.share.heartbeat.interval.ms", "500")
        try settings.checked()
        try settings.set("group.min.session.timeout.ms", "60000")
        try settings.set("group.max.session.timeout.ms", "30000")
        #expect(throws: BrokerConfig.Failure.self) { try settings.checked() }
        #expect(settings.broker.groups.consumerHeartbeatIntervalMs == 60000)
        #expect(settings.broker.groups.shareHeartbeatIntervalMs == 500)
    }
}
}

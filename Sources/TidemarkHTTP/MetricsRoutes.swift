import CoreMetrics
import Logging
import NIOCore
import NIOHTTP1
import Prometheus
import Synchronization
import Tidemark
import TidemarkStorage

#if canImport(Glibc)
import Glibc
#endif

/// Who this node is, as `kafka_broker_info` and the console show it.
public struct NodeIdentity: Sendable {
    public var brokerId: Int
    /// The advertised `host:port` clients connect to.
    public var address: String
    public var version: String
    public init(brokerId: Int, address: String, version: String) {
        self.brokerId = brokerId
        self.address = address
        self.version = version
    }
}

/// `GET /healthz` (the process is up: answered from the moment the listener binds, during
/// recovery too) and `/readyz` (recovery finished and the Kafka listener accepts
/// connections: 200, else 503).
public final class HealthRoutes: HTTPRoutes {
    private let readyFlag = Atomic<Bool>(false)
    public init() {}

    public var isReady: Bool {
        get { readyFlag.load(ordering: .acquiring) }
        set { readyFlag.store(newValue, ordering: .releasing) }
    }

    public func respond(to request: HTTPRequest) async -> HTTPResponse? {
        guard request.method == .GET || request.method == .HEAD else { return nil }
        switch request.path {
        case "/healthz": return .text("ok\n")
        case "/readyz": return isReady ? .text("ready\n") : .text("not ready\n", status: .serviceUnavailable)
        default: return nil
        }
    }

    public func methods(for request: HTTPRequest) -> [HTTPMethod] {
        request.path == "/healthz" || request.path == "/readyz" ? [.GET, .HEAD] : []
    }
}

/// `GET /metrics`.
///
/// `/metrics` is Prometheus text format 0.0.4, in two parts:
/// 1. computed at scrape from the engine's own answers (the kafka_exporter model): every
///    kafka_exporter series (exact names and labels, so Grafana 7589 works unchanged), log
///    sizes, offline partitions, consumer-group time lag, share-group queue depths and
///    counters, the process block;
/// 2. what swift-metrics recorded as it happened (requests, errors and durations per Kafka
///    API, connections, bytes and records per topic, fsync durations), emitted by
///    swift-prometheus' registry with HELP lines added from `MetricName.help`.
///
/// Bounds: at most `maxGroups` consumer groups (those with members first) and share groups are
/// exported, consumer groups' per-partition rows up to `maxGroupRows` and share groups'
/// (group, topic) rows up to `maxQueueRows` (the rest are left out, and logged once);
/// label values are escaped as the format requires.
public final class MetricsRoutes: HTTPRoutes {
    public let broker: Broker
    public let registry: PrometheusCollectorRegistry?
    public let identity: NodeIdentity
    public let maxGroups: Int
    /// Per-partition rows of consumer groups exported at most (see `writeKafkaExporterSeries`).
    public let maxGroupRows: Int
    /// (Share group, topic) rows exported at most, about 14 series each (see `writeTidemarkSeries`).
    public let maxQueueRows: Int
    public static let defaultMaxQueueRows = 10_000
    /// When the process started, on the wall clock (`process_start_time_seconds`, as every
    /// exporter gives it).
    let started: Double
    /// Uptime is counted on the monotonic clock: on the wall clock a step back read 0 for the
    /// length of the step, and a step forward jumped (a "restarted" alert either way).
    let startedTick = ContinuousClock.now
    let logger: Logger
    /// The bounds already said in the log (at most four keys).
    private let warnedAboutGroups = Mutex<Set<String>>([])
    /// Per counter series, what was last exported (see `monotonic`).
    private let counterFloors = Mutex<[String: (exported: Double, value: Double, held: Double)]>([:])

    public init(
        broker: Broker, registry: PrometheusCollectorRegistry?, identity: NodeIdentity,
        maxGroups: Int = 1000, maxGroupRows: Int = 100_000, maxQueueRows: Int = MetricsRoutes.defaultMaxQueueRows, logger: Logger = Logger(label: "tidemark.http")
    ) {
        self.maxQueueRows = maxQueueRows
        self.broker = broker
        self.registry = registry
        self.identity = identity
        self.maxGroups = maxGroups
        self.maxGroupRows = maxGroupRows
        self.logger = logger
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        started = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    public func respond(to request: HTTPRequest) async -> HTTPResponse? {
        guard request.method == .GET || request.method == .HEAD, request.path == "/metrics" else { return nil }
        // Time lags read batch headers from disk: off the cooperative pool, one scrape at a time.
        guard let bytes = await sharedExposition() else { return Self.busy }
        return HTTPResponse(headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"], body: .shared(bytes))
    }

    public func methods(for request: HTTPRequest) -> [HTTPMethod] { request.path == "/metrics" ? [.GET, .HEAD] : [] }

    /// The exposition being made, which scrapes that arrive meanwhile share: N scrapes at once
    /// are one report, not N one after another (a client that sends scrapes and half-closes
    /// is still answered, so its reports cannot be skipped: 200 of them held a real scrape for
    /// 40 s). A shared one began before the later scrapes asked, by at most one report's time.
    /// Its bytes are made once and shared by the answers, not copied into each (a copy per
    /// answer of a 20 MB exposition was seconds of the HTTP loop after 200 scrapes at once,
    /// and each copy was held until its client read it: 48 that read nothing, 3 GB).
    private let making = Mutex<Task<ByteBuffer?, Never>?>(nil)

    func sharedExposition() async -> ByteBuffer? {
        let task = making.withLock { current -> Task<ByteBuffer?, Never> in
            if let current { return current }
            let task = Task { [self] in
                let text = await broker.report(reserved: true) { [self] in ByteBufferAllocator().buffer(string: exposition()) }
                making.withLock { $0 = nil }
                return text
            }
            current = task
            return task
        }
        return await task.value
    }

    /// The answer when `Broker.maxReports` reports already run or wait (or the client has gone).
    static var busy: HTTPResponse { .error(.serviceUnavailable, "busy: \(Broker.maxReports) reports are running or waiting; try again") }

    /// The whole exposition text.
    public func exposition() -> String {
        var out = Exposition()
        writeKafkaExporterSeries(&out)
        writeTidemarkSeries(&out)
        writeProcessSeries(&out)
        if let registry { out.appendRegistry(registry.emitToString()) }
        return out.text
    }

    // MARK: kafka_exporter

    private func writeKafkaExporterSeries(_ out: inout Exposition) {
        out.family(MetricName.brokers, .gauge) { $0.sample([], 1) }
        out.family(MetricName.brokerInfo, .gauge) { $0.sample([("address", identity.address), ("id", "\(identity.brokerId)")], 1) }

        let topics = broker.describeAllTopics()
        out.family(MetricName.topicPartitions, .gauge) { f in
            for topic in topics { f.sample([("topic", topic.name)], Double(topic.partitions.count)) }
        }
        let perPartition: [(String, (PartitionDescription) -> Double)] = [
            (MetricName.partitionCurrentOffset, { Double($0.logEndOffset) }),
            (MetricName.partitionOldestOffset, { Double($0.logStartOffset) }),
            (MetricName.partitionLeader, { [id = identity.brokerId] in $0.isWritable ? Double(id) : -1 }),
            (MetricName.partitionReplicas, { _ in 1 }),
            (MetricName.partitionInSyncReplicas, { $0.isWritable ? 1 : 0 }),
            (MetricName.partitionLeaderIsPreferred, { $0.isWritable ? 1 : 0 }),
            (MetricName.partitionUnderReplicated, { _ in 0 }),
        ]
        for (name, value) in perPartition {
            // An offline partition has no offsets to report (kafka_exporter leaves them out too):
            // a -1 would read as the offset falling, and lag computed from it as none.
            let offsets = name == MetricName.partitionCurrentOffset || name == MetricName.partitionOldestOffset
            out.family(name, .gauge) { f in
                for topic in topics {
                    for p in topic.partitions where !offsets || p.offline == nil {
                        f.sample([("partition", "\(p.partition)"), ("topic", topic.name)], value(p))
                    }
                }
            }
        }

        // Consumer groups (classic and KIP-848), Empty ones with commits included: lag stays
        // visible when every worker is down. Partitions without a commit are -1, as
        // kafka_exporter reports them.
        // Groups with members come first (then the rest, each by name), for both bounds below:
        // taken by name alone, 1,100 groups left behind by a batch job ("bulk-*") pushed every
        // live group out of the lag series.
        var groups = broker.groups.listGroupsWithMembersFirst()
        if groups.count > maxGroups {
            warnOnce("groups", "more than \(maxGroups) consumer groups: /metrics exports \(maxGroups), those with members first, then by name")
            groups = Array(groups.prefix(maxGroups))
        }
        // Rows (a series each in two families) are bounded too: a group has a row per partition
        // of every topic it committed to, and one OffsetCommit makes a group (200 groups of two
        // 500-partition topics made a 36 MB scrape taking 3.7 s). Past the bound, the groups
        // that follow by name are left out whole.
        // With each group, what its members are assigned (for the uncommitted partitions
        // below), read from the same description as their count, within a bound of its own
        // over the scrape.
        var reports: [(id: String, members: Int, rows: [GroupPartitionLag], assigned: [TopicPartition])] = []
        var rowsLeft = maxGroupRows
        var assignmentsLeft = maxGroupRows
        for group in groups {
            let rows = broker.groupOffsets(group.groupId)
            guard rows.count <= rowsLeft else {
                warnOnce(
                    "rows", "consumer groups' partitions pass \(maxGroupRows) series: /metrics exports \(reports.count) of \(groups.count) groups, those with members first")
                break
            }
            rowsLeft -= rows.count
            let (members, assigned) = broker.membersAndAssignments(group, limit: assignmentsLeft)
            assignmentsLeft -= assigned.count
            reports.append((group.groupId, members, rows, assigned))
        }
        func labels(_ group: String, _ tp: TopicPartition) -> [(String, String)] {
            [("consumergroup", group), ("partition", "\(tp.partition)"), ("topic", tp.topic)]
        }
        out.family(MetricName.groupCurrentOffset, .gauge) { f in
            for g in reports { for r in g.rows { f.sample(labels(g.id, r.topicPartition), Double(r.committed ?? -1)) } }
        }
        out.family(MetricName.groupLag, .gauge) { f in
            for g in reports { for r in g.rows { f.sample(labels(g.id, r.topicPartition), Double(r.lag ?? -1)) } }
        }
        let byGroupTopic = reports.flatMap { g in
            Dictionary(grouping: g.rows) { $0.topicPartition.topic }.sorted { $0.key < $1.key }.map { (g.id, $0.key, $0.value) }
        }
        // Untyped: Prometheus' linter refuses a gauge whose name ends in _sum.
        out.family(MetricName.groupCurrentOffsetSum, .untyped) { f in
            for (group, topic, rows) in byGroupTopic {
                // Summed in Double: committed offsets are whatever clients sent.
                f.sample([("consumergroup", group), ("topic", topic)], rows.reduce(0.0) { $0 + Double($1.committed ?? -1) })
            }
        }
        out.family(MetricName.groupLagSum, .untyped) { f in
            for (group, topic, rows) in byGroupTopic {
                f.sample([("consumergroup", group), ("topic", topic)], rows.reduce(0.0) { $0 + Double($1.lag ?? 0) })
            }
        }
        out.family(MetricName.groupMembers, .gauge) { f in
            for g in reports { f.sample([("consumergroup", g.id)], Double(g.members)) }
        }
        // Assigned partitions without a commit, per group and topic: what kafka_exporter's
        // series leave out (a topic the group committed nothing to).
        let partitionCounts = Dictionary(topics.map { ($0.name, $0.partitions.count) }, uniquingKeysWith: { first, _ in first })
        out.family(MetricName.groupUncommittedPartitions, .gauge) { f in
            for g in reports where !g.assigned.isEmpty {
                let committed = Set(g.rows.lazy.filter { $0.committed != nil }.map(\.topicPartition))
                let counts = Broker.uncommitted(g.assigned, topics: partitionCounts, committed: committed)
                for (topic, count) in counts.sorted(by: { $0.key < $1.key }) {
                    f.sample([("consumergroup", g.id), ("topic", topic)], Double(count))
                }
            }
        }
        // Time lag: how old the oldest unconsumed record is, per group and topic.
        out.family(MetricName.groupLagSeconds, .gauge) { f in
            for (group, topic, rows) in byGroupTopic {
                f.sample([("consumergroup", group), ("topic", topic)], broker.timeLagSeconds(rows))
            }
        }

        out.family(MetricName.logSize, .gauge) { f in
            for topic in topics {
                for p in topic.partitions where p.offline == nil {
                    f.sample([("partition", "\(p.partition)"), ("topic", topic.name)], Double(p.sizeInBytes))
                }
            }
            // The share-state log is no topic here, but its bytes are on the disk.
            f.sample([("partition", "0"), ("topic", "__share_group_state")], Double(broker.shareStateLogBytes))
        }
        out.family(MetricName.partitionsOffline, .gauge) { f in
            f.sample([], Double(topics.reduce(0) { $0 + $1.partitions.filter { !$0.isWritable }.count }))
        }
        out.family(MetricName.partitionsDamaged, .gauge) { f in
            f.sample([], Double(topics.reduce(0) { $0 + $1.partitions.filter { $0.damaged != nil }.count }))
        }
        let files = broker.options.openFileBudget
        out.family(MetricName.logOpenFiles, .gauge) { $0.sample([], Double(files.held)) }
        out.family(MetricName.logOpenFilesLimit, .gauge) { $0.sample([], Double(files.limit)) }
        out.family(MetricName.logFileEvictions, .counter) { $0.sample([], Double(files.evictions)) }
        out.family(MetricName.logIndexMemory, .gauge) { $0.sample([], Double(broker.indexMemoryBytes)) }
        let commits = broker.groupCommitStatistics
        out.family(MetricName.groupCommitPasses, .counter) { $0.sample([], Double(commits.passes)) }
        out.family(MetricName.groupCommitWaiters, .counter) { $0.sample([], Double(commits.waiters)) }
    }

    // MARK: Tidemark

    private func writeTidemarkSeries(_ out: inout Exposition) {
        out.family(MetricName.buildInfo, .gauge) { $0.sample([("version", identity.version)], 1) }
        out.family(MetricName.uptime, .gauge) { $0.sample([], (ContinuousClock.now - startedTick).inSeconds) }

        // Share groups, per group and topic (partitions summed).
        var groupIds = broker.shares.groupIdsWithMembersFirst()
        if groupIds.count > maxGroups {
            warnOnce("share groups", "more than \(maxGroups) share groups: /metrics exports \(maxGroups), those with members first, then by name")
            groupIds = Array(groupIds.prefix(maxGroups))
        }
        // A row per (group, topic), about 14 series each: 1,000 share groups of 1,000 topics
        // each were a scrape of 1 GB. Past the bound, the groups that follow are left out whole.
        var queues: [QueueReport] = []
        var exported: [String] = []
        for group in groupIds {
            let rows = broker.queueReports(group: group, ages: true)
            guard queues.count + rows.count <= maxQueueRows else {
                warnOnce(
                    "queue rows", "share groups' (group, topic) rows pass \(maxQueueRows): /metrics exports \(exported.count) of \(groupIds.count) share groups, those with members first")
                break
            }
            queues += rows
            exported.append(group)
        }
        groupIds = exported
        pruneFloors(keeping: queues)
        let nowMs = broker.options.clock()
        let gauges: [(String, (QueueReport) -> Double)] = [
            (MetricName.queueInFlight, { Double($0.inFlight) }),
            (MetricName.queueAvailable, { Double($0.available) }),
            (MetricName.queueDelayed, { Double($0.delayed) }),
            (MetricName.queueUnread, { Double($0.unread) }),
            (MetricName.queueOldestUnackedAge, { q in q.oldestUnfinishedMs.map { max(0, (Double(nowMs) - Double($0)) / 1000) } ?? 0 }),
            (MetricName.queueDeadLettersPending, { Double($0.deadLettersPending) }),
        ]
        for (name, value) in gauges {
            out.family(name, .gauge) { f in
                for q in queues { f.sample([("group", q.group), ("topic", q.topic)], value(q)) }
            }
        }
        let counters: [(String, (QueueReport) -> Int64)] = [
            (MetricName.queueDeadLettered, { $0.deadLettered }),
            (MetricName.queueLockExpirations, { $0.activity.lockExpirations }),
            (MetricName.queueDeliveries, { $0.activity.deliveries }),
            (MetricName.queueRedeliveries, { $0.activity.redeliveries }),
        ]
        for (name, value) in counters {
            out.family(name, .counter) { f in
                for q in queues { f.sample([("group", q.group), ("topic", q.topic)], monotonic(name, q, Double(value(q)))) }
            }
        }
        out.family(MetricName.queueWorkers, .gauge) { f in
            for group in groupIds { f.sample([("group", group)], Double(broker.shares.describe(group)?.members.count ?? 0)) }
        }
        let windows = broker.shares.windowRecords
        out.family(MetricName.shareWindowRecords, .gauge) { $0.sample([], Double(windows.kept)) }
        out.family(MetricName.shareWindowRecordsLimit, .gauge) { $0.sample([], Double(windows.limit)) }
        out.family(MetricName.queueAcks, .counter) { f in
            for q in queues {
                for (type, count) in [
                    ("accept", q.activity.accepted), ("release", q.activity.released), ("reject", q.activity.rejected),
                    ("renew", q.activity.renewed),
                ] {
                    f.sample([("group", q.group), ("topic", q.topic), ("type", type)], Double(count))
                }
            }
        }
    }

    // MARK: Process

    private func writeProcessSeries(_ out: inout Exposition) {
        out.family(MetricName.processStartTime, .gauge) { $0.sample([], started) }
        var usage = rusage()
        if getrusage(RUSAGE_SELF.rawValue, &usage) == 0 {
            let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
                + Double(usage.ru_stime.tv_usec) / 1e6
            out.family(MetricName.processCPUSeconds, .counter) { $0.sample([], cpu) }
        }
        if let statm = readSmallFile("/proc/self/statm"), let resident = statm.split(separator: " ").dropFirst().first,
            let pages = Double(resident)
        {
            out.family(MetricName.processResidentMemory, .gauge) { $0.sample([], pages * Double(sysconf(Int32(_SC_PAGESIZE)))) }
        }
        if let fds = countDirectoryEntries("/proc/self/fd") {
            out.family(MetricName.processOpenFds, .gauge) { $0.sample([], Double(fds)) }
        }
    }

    /// A counter as exported. A share fetch counts its acquisitions as deliveries and takes
    /// back those it could not send a moment later: a scrape in between saw the higher value,
    /// and Prometheus reads any fall as a reset (rate() then spikes by the whole count). So
    /// deliveries never fall below what was last exported by less than the records held then
    /// (all a give-back can take back: records acquired since add as much as they can take);
    /// a larger fall is a real reset (the topic was created again) and is exported as one.
    /// Series of groups gone are forgotten.
    private func monotonic(_ name: String, _ queue: QueueReport, _ value: Double) -> Double {
        guard name == MetricName.queueDeliveries || name == MetricName.queueRedeliveries else { return value }
        let key = name + "\u{0}" + queue.group + "\u{0}" + queue.topic
        return counterFloors.withLock { floors in
            let last = floors[key] ?? (0, 0, 0)
            let reset = value < last.value - last.held
            let exported = reset ? value : max(value, last.exported)
            floors[key] = (exported, value, Double(queue.inFlight))
            return exported
        }
    }

    /// Forgets the floors of series this scrape did not export.
    private func pruneFloors(keeping queues: [QueueReport]) {
        let live = Set(queues.map { $0.group + "\u{0}" + $0.topic })
        counterFloors.withLock { floors in
            floors = floors.filter { key, _ in live.contains(String(key.split(separator: "\u{0}", maxSplits: 1).last ?? "")) }
        }
    }

    /// Each bound is said once (its own key: the first one said used to silence the others).
    private func warnOnce(_ key: String, _ message: String) {
        let first = warnedAboutGroups.withLock { $0.insert(key).inserted }
        if first { logger.warning("\(message)") }
    }
}

private func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 512)
    let n = read(fd, &buffer, buffer.count)
    guard n > 0 else { return nil }
    return String(decoding: buffer[..<n], as: UTF8.self)
}

private func countDirectoryEntries(_ path: String) -> Int? {
    // (Not by copying each `dirent`: see `DirectoryNames`.)
    guard let names = try? DirectoryNames.read(path) else { return nil }
    return max(0, names.count - 1)  // less the descriptor reading the directory
}

/// Builds Prometheus text format 0.0.4: one HELP and TYPE line per family, then its samples,
/// label values escaped (backslash, double quote, newline).
struct Exposition {
    enum Kind: String {
        case gauge, counter, untyped
    }

    struct Family {
        fileprivate var lines = ""
        fileprivate let name: String
        mutating func sample(_ labels: [(String, String)], _ value: Double) {
            lines += name
            if !labels.isEmpty {
                lines += "{"
                for (i, (key, label)) in labels.enumerated() {
                    if i > 0 { lines += "," }
                    lines += key + "=\"" + Exposition.escape(label) + "\""
                }
                lines += "}"
            }
            lines += " " + Exposition.format(value) + "\n"
        }
    }

    private(set) var text = ""

    mutating func family(_ name: String, _ kind: Kind, _ body: (inout Family) -> Void) {
        var family = Family(name: name)
        body(&family)
        if let help = MetricName.help[name] { text += "# HELP \(name) \(help)\n" }
        text += "# TYPE \(name) \(kind.rawValue)\n"
        text += family.lines
    }

    /// swift-prometheus' output, with a HELP line (from `MetricName.help`) before each TYPE
    /// line that has none (swift-metrics carries no help text).
    mutating func appendRegistry(_ emitted: String) {
        for line in emitted.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") {
                let name = line.dropFirst(7).split(separator: " ").first.map(String.init) ?? ""
                if let help = MetricName.help[name] { text += "# HELP \(name) \(help)\n" }
            }
            text += line + "\n"
        }
    }

    /// A label value in the text format: backslash, double quote and line feed escaped. By
    /// Unicode scalar: "\r\n" is one Character in Swift, not equal to "\n", and a group id
    /// holding it went out with a raw line feed that broke the whole exposition for promtool.
    static func escape(_ value: String) -> String {
        guard value.unicodeScalars.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return value }
        var out = String.UnicodeScalarView()
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
            case "\"": out.append(contentsOf: "\\\"".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            default: out.append(scalar)
            }
        }
        return String(out)
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

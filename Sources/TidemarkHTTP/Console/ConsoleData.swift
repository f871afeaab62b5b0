import Foundation
import Logging
import Prometheus
import Synchronization
import Tidemark

/// What the console shows, computed from the engine's own answers, plus the rates and the
/// lag history only a sampler can know.
///
/// Concurrency: `samples` (a Mutex) owns the previous sample, the rates and the lag history;
/// the sampler Task (`start`/`stop`) is the only writer, requests read, and note when they did
/// in `lastViewed` (a Mutex: the sampler slows down when nobody looks). Bounds: lag history
/// keeps 120 points (10 minutes at 5 s) for at most `maxGroups` groups; everything else is
/// recomputed from the engine.
final class ConsoleData: Sendable {
    let broker: Broker
    let registry: PrometheusCollectorRegistry?
    let identity: NodeIdentity
    let maxGroups: Int
    /// Intervals (uptime, rates, the history's spacing, the snapshot's age) are measured on the
    /// monotonic clock: on the wall clock a step back of an hour froze the live page for an
    /// hour and made uptime negative. The wall clock only stamps the lag history's points.
    let started = ContinuousClock.now

    struct Counters {
        var at = Date.distantPast
        var tick: ContinuousClock.Instant? = nil
        var endOffsets: [String: Int64] = [:]
        var produceRequests: Double?
        var fetchRequests: Double?
        var bytesIn: Double?
        var bytesOut: Double?
        var fsyncBuckets: [(le: Double, count: Double)] = []
        var acks: [String: [String: Int64]] = [:]  // "group\u{0}topic" -> type -> count
    }

    struct Rates {
        var produceRequests: Double?
        var fetchRequests: Double?
        var bytesIn: Double?
        var bytesOut: Double?
        var fsyncP99: Double?
        var records: [String: Double] = [:]
        var acks: [String: [String: Double]] = [:]
    }

    struct Samples {
        var previous = Counters()
        var rates = Rates()
        var lagHistory: [String: [ConsoleModel.LagPoint]] = [:]
        var lastHistoryTick: ContinuousClock.Instant? = nil
        var connections: Double?
    }

    private let samples = Mutex(Samples())
    private let sampler = Mutex<Task<Void, Never>?>(nil)
    private let lastSnapshot = Mutex<(at: ContinuousClock.Instant, snapshot: ConsoleModel.Snapshot)?>(nil)
    /// The snapshot being made, which the streams that ask meanwhile share (`sharedSnapshot`).
    private let makingSnapshot = Mutex<Task<ConsoleModel.Snapshot?, Never>?>(nil)

    init(broker: Broker, registry: PrometheusCollectorRegistry?, identity: NodeIdentity, maxGroups: Int) {
        self.broker = broker
        self.registry = registry
        self.identity = identity
        self.maxGroups = maxGroups
    }

    /// Samples until `stop`: once a second while the console is being looked at (a read of
    /// the rates or the lag history in the last `viewedWindow`), else every `idleInterval`,
    /// the lag history's step. A broker nobody watches pays a fifth of the sampler's cost:
    /// each sample renders and parses the whole exposition and walks every partition (2% of a
    /// core at 10,000 partitions; an idle broker of 4,000 went from 1.5% to 0.8% in all). The rates a first look shows are then up to 5 s old, over 5 s; the
    /// next second's sample is a second's.
    func start() {
        sampler.withLock { task in
            guard task == nil else { return }
            task = Task { [weak self] in
                var last: ContinuousClock.Instant? = nil
                while !Task.isCancelled {
                    let now = ContinuousClock.now
                    if let self, self.dueToSample(sinceSample: last.map { now - $0 }, now: now) {
                        self.sample()
                        last = now
                    }
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    static let viewedWindow = Duration.seconds(60)
    static let idleInterval = Duration.seconds(5)
    /// When the rates or the lag history were last read.
    private let lastViewed = Mutex<ContinuousClock.Instant?>(nil)
    /// Samples taken (for tests).
    let samplesTaken = Atomic<Int>(0)

    /// Whether the sampler's tick at `now` samples: the first tick, any while the console is
    /// looked at, else once `idleInterval` has passed (less half a tick: ticks come a second
    /// apart, after the sample's own time).
    func dueToSample(sinceSample: Duration?, now: ContinuousClock.Instant) -> Bool {
        guard let sinceSample else { return true }
        if let viewed = lastViewed.withLock({ $0 }), now - viewed < Self.viewedWindow { return true }
        return sinceSample >= Self.idleInterval - .milliseconds(500)
    }

    /// Reads the sampled state, and notes that the console is being looked at.
    private func viewing<T>(_ read: (Samples) -> T) -> T {
        lastViewed.withLock { $0 = ContinuousClock.now }
        return samples.withLock { read($0) }
    }

    func stop() { sampler.withLock { $0?.cancel(); $0 = nil } }

    // MARK: Sampling

    func sample() {
        guard !broker.isClosed else { return }
        samplesTaken.add(1, ordering: .relaxed)
        var now = Counters()
        now.at = Date()
        now.tick = .now
        for topic in describedTopics() { now.endOffsets[topic.name] = topic.partitions.reduce(0) { $0 + $1.logEndOffset } }
        var connections: Double?
        if let registry {
            let values = Self.parse(registry.emitToString())
            now.produceRequests = values["tidemark_kafka_requests_total", default: [:]]["api=Produce"]
            now.fetchRequests = values["tidemark_kafka_requests_total", default: [:]]["api=Fetch"]
            now.bytesIn = values["tidemark_bytes_in_total"].map { $0.values.reduce(0, +) }
            now.bytesOut = values["tidemark_bytes_out_total"].map { $0.values.reduce(0, +) }
            connections = values["tidemark_connections_active"].map { $0.values.reduce(0, +) }
            now.fsyncBuckets = (values["tidemark_log_fsync_duration_seconds_bucket"] ?? [:]).compactMap { labels, count in
                guard let le = labels.split(separator: "=").last.flatMap({ $0 == "+Inf" ? Double.infinity : Double($0) }) else { return nil }
                return (le, count)
            }.sorted { $0.le < $1.le }
        }
        // Counts only: no time lag or queue age (those read batch headers) once a second.
        for row in queueRows(withRates: false, ages: false) { now.acks[row.group + "\u{0}" + row.topic] = row.acks }
        let groupLags = groupRows(timeLags: false).map { ($0.id, $0.lag) }

        samples.withLock { s in
            let before = s.previous
            let seconds = before.tick.map { (now.tick! - $0).inSeconds } ?? 0
            if seconds > 0 && seconds < 60 {
                func rate(_ a: Double?, _ b: Double?) -> Double? {
                    guard let a, let b else { return nil }
                    return max(0, (b - a) / seconds)
                }
                s.rates.produceRequests = rate(before.produceRequests, now.produceRequests)
                s.rates.fetchRequests = rate(before.fetchRequests, now.fetchRequests)
                s.rates.bytesIn = rate(before.bytesIn, now.bytesIn)
                s.rates.bytesOut = rate(before.bytesOut, now.bytesOut)
                s.rates.records = now.endOffsets.reduce(into: [:]) { out, entry in
                    out[entry.key] = max(0, Double(entry.value - (before.endOffsets[entry.key] ?? entry.value)) / seconds)
                }
                s.rates.acks = now.acks.reduce(into: [:]) { out, entry in
                    let old = before.acks[entry.key] ?? entry.value
                    out[entry.key] = entry.value.reduce(into: [:]) { $0[$1.key] = max(0, Double($1.value - (old[$1.key] ?? $1.value)) / seconds) }
                }
                s.rates.fsyncP99 = Self.quantile(0.99, before: before.fsyncBuckets, now: now.fsyncBuckets) ?? s.rates.fsyncP99
            }
            s.previous = now
            s.connections = connections
            if s.lastHistoryTick.map({ now.tick! - $0 >= .seconds(5) }) ?? true {
                s.lastHistoryTick = now.tick
                let t = now.at.timeIntervalSince1970
                for (group, lag) in groupLags.prefix(maxGroups) {
                    var points = s.lagHistory[group] ?? []
                    points.append(ConsoleModel.LagPoint(t: t, lag: lag))
                    if points.count > 120 { points.removeFirst(points.count - 120) }
                    s.lagHistory[group] = points
                }
                let live = Set(groupLags.map(\.0))
                s.lagHistory = s.lagHistory.filter { live.contains($0.key) }
            }
        }
    }

    /// name -> (label text -> value) of a text exposition (labels joined as `k=v,k=v`).
    static func parse(_ text: String) -> [String: [String: Double]] {
        var out: [String: [String: Double]] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = line[..<space]
            var name = String(series)
            var labels = ""
            if let brace = series.firstIndex(of: "{") {
                name = String(series[..<brace])
                labels = series[series.index(after: brace)...].dropLast().replacingOccurrences(of: "\"", with: "")
            }
            out[name, default: [:]][labels] = value
        }
        return out
    }

    /// The q-quantile of what a cumulative histogram recorded between two samples (linear
    /// inside the bucket, as Prometheus' histogram_quantile). nil when nothing was recorded.
    static func quantile(_ q: Double, before: [(le: Double, count: Double)], now: [(le: Double, count: Double)]) -> Double? {
        let old = Dictionary(before.map { ($0.le, $0.count) }, uniquingKeysWith: { a, _ in a })
        let deltas = now.map { ($0.le, $0.count - (old[$0.le] ?? 0)) }
        guard let total = deltas.last?.1, total > 0 else { return nil }
        let rank = q * total
        var lower = 0.0
        var below = 0.0
        for (le, count) in deltas {
            if count >= rank {
                if le.isInfinite { return lower }
                return lower + (le - lower) * (count - below > 0 ? (rank - below) / (count - below) : 0)
            }
            lower = le.isInfinite ? lower : le
            below = count
        }
        return lower
    }

    // MARK: Views

    func describedTopics() -> [TopicDescription] { broker.describeAllTopics() }

    func overview() -> ConsoleModel.Overview {
        let topics = describedTopics()
        let (rates, connections) = viewing { ($0.rates, $0.connections) }
        var offline: [ConsoleModel.OfflinePartition] = []
        var damaged: [ConsoleModel.OfflinePartition] = []
        for topic in topics {
            for p in topic.partitions {
                if let reason = p.offline ?? p.failed.map({ "failed: \($0)" }) {
                    offline.append(.init(topic: topic.name, partition: p.partition, reason: reason))
                }
                if let damage = p.damaged { damaged.append(.init(topic: topic.name, partition: p.partition, reason: damage)) }
            }
        }
        return ConsoleModel.Overview(
            version: identity.version, nodeId: identity.brokerId, kafkaAddress: identity.address,
            dataDirectory: broker.dataDirectory, uptimeSeconds: (ContinuousClock.now - started).inSeconds,
            topics: topics.filter { !$0.isInternal }.count, partitions: topics.reduce(0) { $0 + $1.partitions.count },
            groups: broker.groups.listGroups().count, queues: broker.shares.groupIds().count, connections: connections,
            produceRequestsPerSecond: rates.produceRequests, fetchRequestsPerSecond: rates.fetchRequests,
            recordsInPerSecond: rates.records.filter { !broker.isInternalTopic($0.key) }.values.reduce(0, +),
            bytesInPerSecond: rates.bytesIn, bytesOutPerSecond: rates.bytesOut, fsyncP99Seconds: rates.fsyncP99,
            recordsTotal: topics.filter { !$0.isInternal }.reduce(0) { $0 + $1.partitions.reduce(0) { $0 + $1.logEndOffset - $1.logStartOffset } },
            partitionsOffline: offline, partitionsDamaged: damaged)
    }

    func topicRows() -> [ConsoleModel.TopicRow] {
        let rates = viewing { $0.rates.records }
        return describedTopics().map { t in
            ConsoleModel.TopicRow(
                name: t.name, isInternal: t.isInternal, partitions: t.partitions.count,
                records: t.partitions.reduce(0) { $0 + $1.logEndOffset - $1.logStartOffset },
                sizeBytes: t.partitions.reduce(0) { $0 + $1.sizeInBytes }, recordsPerSecond: rates[t.name] ?? 0,
                retentionMs: t.config.retentionMs, retentionBytes: t.config.retentionBytes)
        }
    }

    func topicDetail(_ name: String) -> ConsoleModel.TopicDetail? {
        guard let t = try? broker.describeTopic(name) else { return nil }
        return ConsoleModel.TopicDetail(
            name: t.name, id: t.id.uuidString.lowercased(), isInternal: t.isInternal,
            configs: t.config.kafkaConfigs.map { ConsoleModel.Config(name: $0.0, value: $0.1) },
            partitions: t.partitions.map {
                ConsoleModel.PartitionRow(
                    partition: $0.partition, logStartOffset: $0.logStartOffset, logEndOffset: $0.logEndOffset,
                    sizeBytes: $0.sizeInBytes, segments: $0.segmentCount, offline: $0.offline)
            })
    }

    /// The group's partitions as the console shows them (committed -1 and lag 0 where it has
    /// no commit; `groupOffsets` says which).
    func groupPartitions(_ rows: [GroupPartitionLag]) -> [ConsoleModel.GroupPartition] {
        rows.map {
            ConsoleModel.GroupPartition(
                topic: $0.topicPartition.topic, partition: $0.topicPartition.partition, committed: $0.committed ?? -1,
                logEndOffset: $0.logEndOffset, lag: $0.lag ?? 0)
        }
    }

    /// A group's members as its page shows them: at most `ConsoleModel.maxMembersShown`, their
    /// assignments summed up (`ConsoleModel.assignmentText`).
    func members(_ listing: GroupListing) -> [ConsoleModel.GroupMember] {
        if listing.type == .consumer {
            return (broker.groups.describeConsumerGroup(listing.groupId)?.members ?? []).prefix(ConsoleModel.maxMembersShown).map {
                .init(memberId: $0.memberId, clientId: $0.clientId, host: $0.clientHost, assignment: ConsoleModel.assignmentText($0.assignment))
            }
        }
        return broker.groups.describeGroup(listing.groupId).members.prefix(ConsoleModel.maxMembersShown).map {
            let decoded = ConsumerProtocol.decodeAssignment($0.assignment, limit: ConsoleModel.maxAssignmentPartitions)
            return .init(
                memberId: $0.memberId, clientId: $0.clientId, host: $0.clientHost,
                assignment: decoded.map { ConsoleModel.assignmentText($0.topics, omitted: $0.omitted) } ?? [])
        }
    }

    func groupRows(timeLags: Bool = true) -> [ConsoleModel.GroupRow] {
        // Groups with members first: 1,001 groups left behind by a batch job hid every live one.
        broker.groups.listGroupsWithMembersFirst().prefix(maxGroups).map { listing in
            let rows = broker.groupOffsets(listing.groupId)
            return ConsoleModel.GroupRow(
                id: listing.groupId, type: listing.type.rawValue, state: listing.state, members: broker.memberCount(listing),
                topics: Array(Set(rows.map(\.topicPartition.topic))).sorted(), lag: rows.reduce(0) { $0 + ($1.lag ?? 0) },
                timeLagSeconds: timeLags ? broker.timeLagSeconds(rows) : 0)
        }
    }

    func groupDetail(_ id: String) -> ConsoleModel.GroupDetail? {
        guard let listing = broker.groups.listGroups().first(where: { $0.groupId == id }) else { return nil }
        let rows = broker.groupOffsets(id)
        return ConsoleModel.GroupDetail(
            id: id, type: listing.type.rawValue, state: listing.state, members: members(listing), partitions: groupPartitions(rows),
            lag: rows.reduce(0) { $0 + ($1.lag ?? 0) }, timeLagSeconds: broker.timeLagSeconds(rows),
            lagHistory: viewing { $0.lagHistory[id] ?? [] })
    }

    /// (Share group, topic) rows listed at most: /metrics' default bound.
    static let maxQueueRows = MetricsRoutes.defaultMaxQueueRows

    func queueRows(withRates: Bool = true, ages: Bool = true, only group: String? = nil) -> [ConsoleModel.QueueRow] {
        let rates = withRates ? viewing { $0.rates.acks } : [:]
        let nowMs = broker.options.clock()
        var rows: [ConsoleModel.QueueRow] = []
        // One group's rows whatever its place; all groups' with those that have members first.
        let groups = group.map { [$0] } ?? Array(broker.shares.groupIdsWithMembersFirst().prefix(maxGroups))
        for g in groups {
            let members = broker.shares.describe(g)?.members.count ?? 0
            let dlq = broker.deadLetterTopic(of: g)
            // As /metrics: at most `maxQueueRows` (group, topic) rows, whole groups.
            let reports = broker.queueReports(group: g, ages: ages)
            guard rows.count + reports.count <= Self.maxQueueRows else { break }
            for q in reports {
                let a = q.activity
                rows.append(
                    ConsoleModel.QueueRow(
                        group: g, topic: q.topic, available: q.available, inFlight: q.inFlight, delayed: q.delayed,
                        archived: q.archived, backlog: q.backlog, deadLettered: q.deadLettered,
                        deadLettersPending: q.deadLettersPending, deliveries: a.deliveries, redeliveries: a.redeliveries,
                        lockExpirations: a.lockExpirations,
                        acks: ["accept": a.accepted, "release": a.released, "reject": a.rejected, "renew": a.renewed],
                        acksPerSecond: rates[g + "\u{0}" + q.topic] ?? [:],
                        oldestUnackedAgeSeconds: q.oldestUnfinishedMs.map { max(0, (Double(nowMs) - Double($0)) / 1000) } ?? 0,
                        members: members, deadLetterTopic: dlq))
            }
        }
        return rows
    }

    func queueDetail(_ group: String) -> ConsoleModel.QueueDetail? {
        guard broker.shares.groupIds().contains(group) else { return nil }
        let description = broker.shares.describe(group)
        let parts = broker.shares.summaries(group, view: broker.shareLogView).map { s in
            ConsoleModel.QueuePartition(
                topic: s.topicPartition.topic, partition: s.topicPartition.partition, startOffset: s.startOffset,
                endOffset: s.endOffset, logEndOffset: s.logEndOffset, available: s.available, inFlight: s.acquired,
                delayed: s.delayed, archived: s.archived, backlog: s.lag,
                holders: s.holders.sorted { $0.key < $1.key }.map {
                    ConsoleModel.Holder(member: ConsoleModel.shown($0.key), records: $0.value.count, lockDeadlineMs: $0.value.earliestExpiryMs)
                })
        }
        return ConsoleModel.QueueDetail(
            group: group, state: description?.state ?? "Empty",
            members: (description?.members ?? []).prefix(ConsoleModel.maxMembersShown).map {
                .init(memberId: $0.memberId, clientId: $0.clientId, host: $0.clientHost, assignment: ConsoleModel.assignmentText($0.assignment))
            },
            deadLetterTopic: broker.deadLetterTopic(of: group), queues: queueRows(only: group), partitions: parts)
    }

    /// The live snapshot (its sequence 0: each stream numbers its own), made at most once a
    /// second however many streams are open: as a broker report (off Swift's shared pool,
    /// bounded with the other reads), one for all the streams that ask while it is made (each
    /// asking for its own filled `Broker.maxReports` with 8 open consoles, and scrapes were
    /// answered busy). Nil when the broker's reports are all taken.
    func sharedSnapshot() async -> ConsoleModel.Snapshot? {
        if let cached = lastSnapshot.withLock({ $0 }), ContinuousClock.now - cached.at < .milliseconds(900) { return cached.snapshot }
        let task = makingSnapshot.withLock { current -> Task<ConsoleModel.Snapshot?, Never> in
            if let current { return current }
            let task = Task { [self] in
                let made = await broker.report { [self] in
                    ConsoleModel.Snapshot(sequence: 0, overview: overview(), groups: groupRows(), queues: queueRows(), topics: topicRows())
                }
                if let made { lastSnapshot.withLock { $0 = (ContinuousClock.now, made) } }
                makingSnapshot.withLock { $0 = nil }
                return made
            }
            current = task
            return task
        }
        return await task.value
    }
}

import Instrumentation
import Tracing
import CoreMetrics
import Dispatch
import Foundation
import Logging
import Synchronization
import TidemarkStorage


/// What `describeTopic` reports for one partition.
public struct PartitionDescription: Sendable, Equatable {
    public var partition: Int
    /// Why the partition is offline (its directory could not be opened), or nil when it serves.
    public var offline: String? = nil
    /// The fsync failure that makes its log refuse writes until a restart (its records and
    /// offsets are still read), or nil.
    public var failed: String? = nil
    /// Damage a read met in its log (marked for `tidemark verify --repair`, the broker
    /// stopped; a read that starts at a damaged header fails with CORRUPT_MESSAGE), or nil.
    /// The partition still serves up to the damage.
    public var damaged: String? = nil
    /// Neither offline nor failed: it takes writes.
    public var isWritable: Bool { offline == nil && failed == nil }
    public var logStartOffset: Int64
    public var logEndOffset: Int64
    public var flushedOffset: Int64
    public var sizeInBytes: Int64
    public var segmentCount: Int
}

public struct TopicDescription: Sendable, Equatable {
    public var name: String
    /// The topic's UUID (Kafka's topic id).
    public var id: UUID = UUID()
    public var isInternal = false
    public var config: TopicConfig
    /// The settings the topic sets itself, by Kafka name; the others are the broker's defaults.
    public var overrides: Set<String> = []
    public var partitions: [PartitionDescription]
}

/// An in-process Tidemark broker over a data directory: topics, partitions, idempotent
/// produce, fetch with long-poll, and consumer groups with durable committed offsets.
///
/// Concurrency: `Broker` is Sendable and safe to share. The topic registry is a `Mutex`
/// read on every request; topic creation and deletion (control plane) run one at a time on
/// a serial admin queue. Storage I/O runs on `BlockingExecutor`, never on the caller's
/// task thread. Each partition's append lock lives in its `PartitionState`.
public final class Broker: Sendable {
    public let dataDirectory: String
    public let options: BrokerOptions
    let executor = BlockingExecutor()
    /// Checks of compressed batches too large for the event loop, one at a time (see
    /// `Broker.append`): memory bounded by one decompressed batch.
    let decompressor = BlockingExecutor(serial: true, label: "tidemark.decompress")
    /// Records decoded for people to read (`readRecords`: the console), one page at a time:
    /// a page's decoded records may be ~12x its bytes (two bytes of an empty header are 24 in
    /// memory), so memory is bounded by one page, not by the number of viewers.
    let browser = BlockingExecutor(serial: true, label: "tidemark.browse")
    /// Reports that read from disk (`report`), one at a time.
    let reporter = BlockingExecutor(serial: true, label: "tidemark.reports")
    /// Reports running or waiting on `reporter` (bounded by `maxReports`).
    let reportsWaiting = Atomic<Int>(0)
    /// Group commit for every partition: one thread syncing what waiting appenders need.
    let flusher: LogFlusher
    /// The deadlines of embedded long polls, on one sleeping task.
    let timers = DeadlineTimers()
    private let adminQueue = DispatchQueue(label: "tidemark.admin")
    /// Producer id allocations, one at a time (an allocation persists a block every 1,000 ids:
    /// an fsync), apart from `adminQueue`: a new producer does not wait behind a topic's
    /// deletion (thousands of partitions closed and removed, an fsync each). Holds a closure
    /// per InitProducerId being answered.
    let producerIdQueue = DispatchQueue(label: "tidemark.producer-ids")
    let registry: Mutex<Registry>
    /// Changed by `producerIdQueue` only (after open), held across an allocation's fsync.
    let producerIds: Mutex<ProducerIdAllocator>
    let lockFile: SharedFile
    public let groups: GroupCoordinator
    /// Share groups (KIP-932): membership, record locks and acknowledgements.
    public let shares: ShareCoordinator
    /// Per-group settings (Kafka's GROUP config resources).
    public let groupConfigs: GroupConfigs
    /// Traffic per topic and fsync durations (swift-metrics).
    public let metrics: EngineMetrics
    /// The tracer the embedded clients and the broker use: `BrokerOptions.tracer`, else the
    /// process's bootstrapped one as it was when the broker opened (a no-op tracer unless
    /// something was bootstrapped). Resolved once: `InstrumentationSystem.tracer` takes a lock.
    public let tracer: any Tracer
    /// False with the no-op tracer: the hot paths then skip span work entirely.
    public let isTracing: Bool
    let maintenance = Mutex<Task<Void, Never>?>(nil)
    /// Delivery times read for the queue age (`Broker.queueReports`), per share partition: the
    /// oldest job not done stays the same one over many reports. At most `DeliveryTimes.max`.
    let deliveryTimes = Mutex(DeliveryTimes())
    /// What `Broker.firstDuePastWindow` found, per share partition, while it holds. At most
    /// `DeliveryTimes.max`.
    let pastWindowDue = Mutex(PastWindowDue())

    struct Registry: Sendable {
        var topics: [String: TopicState] = [:]
        /// Topic ids of the topics above.
        var names: [UUID: String] = [:]
        var isClosed = false
    }

    /// One partition of a topic: serving, or offline because its directory could not be
    /// opened (the rest of the broker goes on; requests for it get a storage error).
    enum PartitionSlot: Sendable {
        case online(PartitionState)
        case offline(reason: String)

        var state: PartitionState? {
            if case .online(let state) = self { return state }
            return nil
        }
    }

    /// A topic and its partitions; immutable once made (delete replaces the registry entry).
    final class TopicState: Sendable {
        let name: String
        let id: UUID
        let config: TopicConfig
        /// The settings the topic sets itself, by Kafka name (the rest are the broker's).
        let overrides: Set<String>
        /// Whether `overrides` are written to topics.json: false for a topic from an earlier
        /// version's file opened by the tools (`topicsFollowDefaults` false), whose overrides are
        /// derived against Kafka's defaults alone; the next broker node derives them against its
        /// own settings too.
        let savesOverrides: Bool
        let slots: [PartitionSlot]
        /// An internal topic (`__consumer_offsets`): readable, never produced to by clients.
        let isInternal: Bool
        init(
            name: String, id: UUID, config: TopicConfig, overrides: Set<String>, savesOverrides: Bool = true, slots: [PartitionSlot],
            isInternal: Bool = false
        ) {
            self.savesOverrides = savesOverrides
            self.name = name
            self.id = id
            self.config = config
            self.overrides = overrides
            self.slots = slots
            self.isInternal = isInternal
        }
        var stored: TopicStore.Topic {
            TopicStore.Topic(name: name, partitions: slots.count, config: config, id: id, overrides: savesOverrides ? overrides.sorted() : nil)
        }
        /// The partitions that serve.
        var partitions: [PartitionState] { slots.compactMap(\.state) }
    }

    static let offsetsTopic = "__consumer_offsets"
    /// The committed-offsets log's settings, its own whatever the broker's (as described).
    static let offsetsTopicConfig: TopicConfig = {
        var config = TopicConfig(retentionBytes: nil, retentionMs: nil, segmentBytes: 64 << 20, flushPolicy: .os)
        config.maxMessageBytes = 16 << 20
        return config
    }()
    /// The share-state log's directory name (not a topic clients see).
    static let shareStateLog = "__share_group_state"
    /// Names no client may create: the internal topics of this node and of Kafka (a topic
    /// named after them would shadow them in a migration, or collide with their directories).
    /// Other names starting with `__` are ordinary topics, as in Kafka (Debezium's heartbeats).
    static let reservedTopicNames: Set<String> = [offsetsTopic, shareStateLog, "__cluster_metadata", "__transaction_state"]

    /// A topic whose name differs from `name` only by '.' against '_' (Kafka refuses both:
    /// metric names map '.' to '_'), other than `name` itself.
    func collidingTopic(_ name: String) -> String? {
        guard name.contains(".") || name.contains("_") else { return nil }
        let folded = name.replacingOccurrences(of: ".", with: "_")
        let names = registry.withLock { Array($0.topics.keys) } + Array(Self.reservedTopicNames)
        return names.first { $0 != name && $0.replacingOccurrences(of: ".", with: "_") == folded }
    }

    /// Internal topics by name (fixed at open): `__consumer_offsets`, served from the
    /// committed-offsets log.
    let internalTopics: [String: TopicState]
    private var internalIds: [String: UUID] { internalTopics.mapValues(\.id) }

    private init(
        dataDirectory: String, options: BrokerOptions, lockFile: SharedFile, registry: Registry,
        producerIds: ProducerIdAllocator, groups: GroupCoordinator, shares: ShareCoordinator, flusher: LogFlusher, internalTopics: [String: TopicState], groupConfigs: GroupConfigs,
        metrics: EngineMetrics
    ) {
        self.metrics = metrics
        self.tracer = options.tracer ?? InstrumentationSystem.tracer
        self.isTracing = !(tracer is NoOpTracer)
        self.groupConfigs = groupConfigs
        self.shares = shares
        self.flusher = flusher
        self.dataDirectory = dataDirectory
        self.options = options
        self.lockFile = lockFile
        self.registry = Mutex(registry)
        self.producerIds = Mutex(producerIds)
        self.groups = groups
        self.internalTopics = internalTopics
    }

    /// Opens (creating if needed) the broker's data directory: loads topics, recovers each
    /// partition, rebuilds producer state and committed offsets, and starts maintenance.
    public static func open(dataDirectory: String = "./tidemark-data", options: BrokerOptions = BrokerOptions())
        async throws -> Broker
    {
        try options.groups.validate()
        let executor = BlockingExecutor()
        let openStarted = ContinuousClock.now
        let metrics = EngineMetrics(
            factory: options.metricsFactory ?? MetricsSystem.factory, slowFsyncMs: options.slowFsyncWarningMs, logger: options.logger)
        let (lock, registry, producerIds, offsetsPartition, offsetsId, sharePartition) = try await executor.run {
            () throws -> (SharedFile, Registry, ProducerIdAllocator, PartitionState, UUID, PartitionState) in
            try DurableFile.createDirectory(dataDirectory)
            let lock = try DurableFile.lockExclusively(dataDirectory + "/.lock")
            var registry = Registry()
            var producerIds = try ProducerIdAllocator(path: dataDirectory + "/producer-ids")
            let store = TopicStore(path: dataDirectory + "/topics.json")
            try Self.removeDeletedLeftovers(dataDirectory, logger: options.logger)
            let (loaded, internalIds, madeIds) = try store.load()
            let topics = Self.resolveTopicSettings(loaded, options: options)
            let offsetsId = internalIds[offsetsTopic] ?? UUID()
            let ids = internalIds.merging([offsetsTopic: offsetsId]) { old, _ in old }
            if madeIds || internalIds[offsetsTopic] == nil {
                try store.save(topics, internalIds: ids)
            } else if topics != loaded {
                // Only the derived overrides or a followed default changed: a save that fails
                // (a full disk) does not refuse the start; the next change of a topic saves them.
                do { try store.save(topics, internalIds: ids) } catch {
                    options.logger.warning(
                        "topics.json could not be rewritten with the topics' settings; retried at the next topic change",
                        metadata: ["error": "\(error)"])
                }
            }
            // Every partition's recovery is made durable by one batch (two syncfs calls in all,
            // not several fsyncs per partition), committed before anything is served.
            let openingSync = SyncBatch()
            for topic in topics {
                // (nil only for the tools, `topicsFollowDefaults` false: they create no topics'
                // settings, and what they save keeps the stored config as it is.)
                let overrides = topic.overrides.map(Set.init) ?? TopicConfig.overrides(of: topic.config, against: TopicConfig())
                // A partition that cannot be opened (an unreadable directory, say) goes offline
                // alone: the others serve, and the broker starts.
                let logger = options.logger
                let clock = options.clock
                let budget = options.openFileBudget
                let slots = parallelMap(topic.partitions) { p -> PartitionSlot in
                    do {
                        return .online(
                            try PartitionState.open(
                                topic: topic.name, partition: p, directory: Self.partitionDirectory(dataDirectory, topic.name, p),
                                config: topic.config.logConfig, clock: clock, logger: logger, metrics: metrics, budget: budget,
                                deferredSync: openingSync, listed: true))
                    } catch {
                        logger.error(
                            "partition offline: it could not be opened; requests for it get KAFKA_STORAGE_ERROR",
                            metadata: ["topic": "\(topic.name)", "partition": "\(p)", "error": "\(error)"])
                        return .offline(reason: "\(error)")
                    }
                }
                let id = topic.id!
                registry.topics[topic.name] = TopicState(
                    name: topic.name, id: id, config: topic.config, overrides: overrides, savesOverrides: topic.overrides != nil, slots: slots)
                registry.names[id] = topic.name
            }
            try openingSync.commit()
            // Producer ids the partitions remember must never be handed out again, whatever
            // `producer-ids` says (missing after a partial restore, damaged): a reused id would
            // meet its old sequences, and a new batch could be answered as a duplicate, unwritten.
            let next = producerIds.next
            let ahead = registry.topics.values.flatMap(\.partitions).flatMap { state in
                state.producers.withLock { $0.entries.keys.filter { $0 >= next } }
            }
            if !ahead.isEmpty {
                options.logger.warning(
                    "producer ids the partitions remember are at or above the next one producer-ids gives (missing or damaged, or ids clients chose); they are not handed out",
                    metadata: [
                        "file": "\(dataDirectory)/producer-ids", "next": "\(next)", "ids": "\(Set(ahead).count)",
                        "highest": "\(ahead.max()!)",
                    ])
                producerIds.skip(ahead)
            }
            // The committed-offsets log: one partition, never expired by retention; synced by
            // every maintenance pass (1 s), and before answering commits of synced topics
            // (`OffsetStore`): no commit waits for the once-a-second sync.
            // Both internal logs keep zeros ahead of their appends: their syncs then write no
            // metadata (`LogConfig.preallocate`).
            var offsetsLogConfig = Self.offsetsTopicConfig.logConfig
            offsetsLogConfig.preallocate = true
            let offsets = try PartitionState.open(
                topic: offsetsTopic, partition: 0, directory: Self.partitionDirectory(dataDirectory, offsetsTopic, 0),
                config: offsetsLogConfig, clock: options.clock, logger: options.logger, metrics: metrics,
                countTraffic: false, budget: options.openFileBudget)
            // The share-state log: one partition, flushed by the flusher (group commit).
            var shareConfig = TopicConfig(retentionBytes: nil, retentionMs: nil, segmentBytes: 64 << 20, flushPolicy: .os)
            shareConfig.maxMessageBytes = 64 << 20
            var shareLogConfig = shareConfig.logConfig
            shareLogConfig.preallocate = true
            let shareState = try PartitionState.open(
                topic: shareStateLog, partition: 0, directory: Self.partitionDirectory(dataDirectory, shareStateLog, 0),
                config: shareLogConfig, clock: options.clock, logger: options.logger, metrics: metrics,
                countTraffic: false, budget: options.openFileBudget)
            return (lock, registry, producerIds, offsets, offsetsId, shareState)
        }
        let flusher = LogFlusher()
        // An open that fails from here on must not leave the flusher's thread parked for good,
        // nor the directory locked until the last reference to the lock file goes (a Dispatch
        // thread may still hold one for a moment: a retry at once found it "in use").
        var opened = false
        defer {
            if !opened {
                flusher.shutdown()
                DurableFile.unlock(lock)
            }
        }
        let offsetStore = try await OffsetStore.open(
            partition: offsetsPartition, executor: executor, flusher: flusher, clock: options.clock,
            compactionThresholdBytes: options.groups.offsetsCompactionBytes, maxMemoryBytes: options.groups.offsetsMaxMemoryBytes)
        let offsetsTopicState = TopicState(
            name: offsetsTopic, id: offsetsId, config: Self.offsetsTopicConfig,
            overrides: TopicConfig.overrides(of: Self.offsetsTopicConfig, against: TopicConfig()), slots: [.online(offsetsPartition)],
            isInternal: true)
        let groupConfigs = try GroupConfigs(
            path: dataDirectory + "/group-configs.json",
            brokerDefaults: [
                "consumer.session.timeout.ms": "\(options.groups.consumerSessionTimeoutMs)",
                "consumer.heartbeat.interval.ms": "\(options.groups.consumerHeartbeatIntervalMs)",
                "share.session.timeout.ms": "\(options.groups.shareSessionTimeoutMs)",
                "share.heartbeat.interval.ms": "\(options.groups.shareHeartbeatIntervalMs)",
                "share.record.lock.duration.ms": "\(options.groups.shareRecordLockDurationMs)",
                "share.delivery.count.limit": "\(options.groups.shareDeliveryCountLimit)",
                "share.partition.max.record.locks": "\(options.groups.sharePartitionMaxRecordLocks)",
            ], deadLetterPrefix: options.groups.deadLetterTopicPrefix)
        let groups = GroupCoordinator(
            options: options.groups, store: offsetStore, configs: groupConfigs, clock: options.timers, wallClock: options.clock,
            logger: options.logger)
        let (shareStore, shareStates, unreadable) = try await ShareStateStore.open(
            partition: sharePartition, flusher: flusher, executor: executor, clock: options.clock,
            compactionThresholdBytes: options.groups.shareStateCompactionBytes)
        if unreadable > 0 {
            options.logger.error(
                "share-state records that could not be read or applied were skipped: the partitions they describe restart from their previous state",
                metadata: ["records": "\(unreadable)"])
        }
        let shares = ShareCoordinator(
            options: options.groups, configs: groupConfigs, store: shareStore, restored: shareStates, topicNames: registry.names,
            clock: options.timers, wallClock: options.clock)
        var logBounds: [UUID: [Int: (start: Int64, end: Int64)]] = [:]
        for topic in registry.topics.values {
            for (p, slot) in topic.slots.enumerated() {
                if let log = slot.state?.log { logBounds[topic.id, default: [:]][p] = (log.logStartOffset, log.logEndOffset) }
            }
        }
        let cut = try await shares.followLogs { id, partition in logBounds[id]?[partition] }
        if cut > 0 {
            options.logger.warning(
                "share state was ahead of its logs (recovered after a power loss?): cut back to the log ends",
                metadata: ["partitions": "\(cut)"])
        }
        let broker = Broker(
            dataDirectory: dataDirectory, options: options, lockFile: lock, registry: registry, producerIds: producerIds,
            groups: groups, shares: shares,
            flusher: flusher, internalTopics: [offsetsTopic: offsetsTopicState], groupConfigs: groupConfigs, metrics: metrics)
        broker.startMaintenance()
        opened = true
        let partitionCount = registry.topics.values.reduce(0) { $0 + $1.slots.count }
        options.logger.info(
            "data directory opened",
            metadata: [
                "partitions": "\(partitionCount)", "seconds": "\((ContinuousClock.now - openStarted).secondsText)",
                "open_file_budget": "\(options.openFileBudget.limit)",
            ])
        return broker
    }

    static func partitionDirectory(_ data: String, _ topic: String, _ partition: Int) -> String {
        "\(data)/\(topic)-\(partition)"
    }

    // MARK: Topics

    /// Runs `body` on the serial admin queue: topic changes happen one at a time.
    func admin<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            adminQueue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    func checkOpen() throws(TidemarkError) {
        if registry.withLock({ $0.isClosed }) { throw TidemarkError(.brokerClosed, "broker is closed") }
    }

    /// Each topic's config at open: its own settings (`overrides`) over the broker's defaults
    /// of the day, when `options.topicsFollowDefaults`; else as stored. A topic from a
    /// topics.json without `overrides` (an earlier version's, or one an earlier version
    /// rewrote) sets what differs from Kafka's defaults or from the broker's now, so its first
    /// open changes nothing: a setting given explicitly equal to Kafka's default (retention.ms
    /// of 7 days under `log.retention.hours=24`) must not become the broker's shorter one and
    /// delete data. A setting that changes is logged.
    static func resolveTopicSettings(_ topics: [TopicStore.Topic], options: BrokerOptions) -> [TopicStore.Topic] {
        let defaults = options.defaultTopicConfig
        // Without the broker's settings, nothing is derived either: the next broker node derives
        // a topic's settings against its own.
        guard options.topicsFollowDefaults else { return topics }
        return topics.map { stored in
            var topic = stored
            let overrides =
                stored.overrides.map(Set.init)
                ?? TopicConfig.overrides(of: stored.config, against: TopicConfig())
                .union(TopicConfig.overrides(of: stored.config, against: defaults))
            topic.overrides = overrides.sorted()
            do {
                let (config, refused) = try TopicConfig.resolved(defaults: defaults, overrides: overrides, of: stored.config)
                topic.config = config
                for setting in refused {
                    options.logger.error(
                        "a topic's stored setting is refused by this version; it follows the broker's instead",
                        metadata: ["topic": "\(stored.name)", "setting": "\(setting)"])
                }
            } catch {
                options.logger.error(
                    "a topic's settings do not fit together with the broker's defaults; it keeps the settings it had",
                    metadata: ["topic": "\(stored.name)", "error": "\(error)"])
                return topic
            }
            let before = Dictionary(stored.config.kafkaConfigs, uniquingKeysWith: { first, _ in first })
            for (name, value) in topic.config.kafkaConfigs where before[name] != value {
                options.logger.info(
                    "a topic follows the broker's setting, changed since it was last opened",
                    metadata: ["topic": "\(stored.name)", "setting": "\(name)", "was": "\(before[name] ?? "")", "now": "\(value)"])
            }
            return topic
        }
    }

    /// What `createTopic` checks before it creates anything (CreateTopics' validateOnly runs
    /// the same): the name, the partition count, the config. A topic of that name may exist.
    public func checkNewTopic(_ name: String, partitions: Int, config: TopicConfig) throws {
        try TopicName.validate(name)
        guard !Self.reservedTopicNames.contains(name) else {
            throw TidemarkError(.invalidTopicName, "'\(name)' is the name of an internal topic")
        }
        if let existing = collidingTopic(name) {
            throw TidemarkError(.invalidTopicName, "topic '\(name)' collides with existing topic '\(existing)': '.' and '_' map to the same metric name")
        }
        guard partitions >= 1 && partitions <= options.maxPartitionsPerTopic else {
            throw TidemarkError(
                .invalidPartitions, "partition count must be in [1, \(options.maxPartitionsPerTopic)], got \(partitions)")
        }
        try config.validate()
    }

    /// Creates a topic; without a `config`, the broker's `defaultTopicConfig`. `overrides` name
    /// the settings the topic sets itself, by Kafka name (CreateTopics' configs); without them,
    /// those in which `config` differs from the broker's defaults. The others follow the
    /// broker's defaults, also when a restart changes them.
    public func createTopic(_ name: String, partitions: Int, config: TopicConfig? = nil, overrides: Set<String>? = nil)
        async throws
    {
        let overrides = overrides ?? config.map { TopicConfig.overrides(of: $0, against: options.defaultTopicConfig) } ?? []
        let config = config ?? options.defaultTopicConfig
        try checkOpen()
        try checkNewTopic(name, partitions: partitions, config: config)
        // Offsets a delete left (a crash between the topic's removal and its offsets'): the new
        // topic's consumers must not resume at the old one's offsets. Only while no topic of
        // this name exists (a concurrent create of it keeps its consumers' commits).
        try await groups.store.delete(topic: name) { [self] in registry.withLock { $0.topics[name] == nil } }
        try await admin { [self] in
            if registry.withLock({ $0.topics[name] != nil }) {
                throw TidemarkError(.topicAlreadyExists, "topic '\(name)' already exists")
            }
            if let existing = collidingTopic(name) {
                throw TidemarkError(.invalidTopicName, "topic '\(name)' collides with existing topic '\(existing)': '.' and '_' map to the same metric name")
            }
            try removeLeftovers(of: name, partitions: 0..<partitions)
            var states: [PartitionState] = []
            do {
                let (dataDirectory, clock, logger, budget) = (dataDirectory, options.clock, options.logger, options.openFileBudget)
                let opened = parallelMap(partitions) { p in
                    Result {
                        try PartitionState.open(
                            topic: name, partition: p, directory: Self.partitionDirectory(dataDirectory, name, p),
                            config: config.logConfig, clock: clock, logger: logger, metrics: self.metrics, budget: budget,
                            creating: true)
                    }
                }
                for result in opened {
                    switch result {
                    case .success(let state): states.append(state)
                    case .failure: break
                    }
                }
                if let failure = opened.first(where: { if case .failure = $0 { true } else { false } }) { _ = try failure.get() }
            } catch {
                for state in states { try? state.log.close() }
                for p in 0..<partitions { try? Self.deleteDirectory(Self.partitionDirectory(dataDirectory, name, p), in: dataDirectory) }
                throw error
            }
            let topic = TopicState(name: name, id: UUID(), config: config, overrides: overrides, slots: states.map { .online($0) })
            // Listed in topics.json before anyone can use it: a topic whose creation failed
            // (a full disk) must not take writes that a restart would then not find.
            do {
                let all = registry.withLock { r in r.topics.values.map(\.stored) } + [topic.stored]
                try TopicStore(path: dataDirectory + "/topics.json").save(all, internalIds: internalIds)
            } catch {
                for state in states { try? state.log.close() }
                for p in 0..<partitions { try? Self.deleteDirectory(Self.partitionDirectory(dataDirectory, name, p), in: dataDirectory) }
                throw error
            }
            registry.withLock { r in
                r.topics[name] = topic
                r.names[topic.id] = name
            }
            options.logger.info("topic created", metadata: ["topic": "\(name)", "partitions": "\(partitions)"])
        }
    }

    /// Deletes a topic, its data and its committed group offsets (as Kafka does); a topic
    /// created later under the same name starts empty.
    ///
    /// Crash-safe: topics.json forgets the topic first; each partition directory is then
    /// renamed to `<name>-<p>.<id>-delete` (the data directory fsynced) and removed; a crash
    /// anywhere leaves only `-delete` leftovers, removed at the next open, or directories no
    /// topic lists, removed before a topic of that name is created again.
    public func deleteTopic(_ name: String) async throws {
        try checkOpen()
        guard internalTopics[name] == nil else { throw TidemarkError(.invalidTopicName, "internal topic '\(name)' cannot be deleted") }
        try await admin { [self] in
            // topics.json forgets the topic before the registry does: a save that fails (a full
            // disk) leaves the topic served, not gone until a restart brings it back.
            let (found, rest) = registry.withLock { r -> (TopicState?, [TopicStore.Topic]) in
                (r.topics[name], r.topics.values.filter { $0.name != name }.map(\.stored))
            }
            guard found != nil else { throw TidemarkError(.unknownTopicOrPartition, "topic '\(name)' does not exist") }
            try TopicStore(path: dataDirectory + "/topics.json").save(rest, internalIds: internalIds)
            let removed = registry.withLock { r -> TopicState in
                let removed = r.topics.removeValue(forKey: name)!
                r.names.removeValue(forKey: removed.id)
                return removed
            }
            shares.topicDeleted(name, id: removed.id)
            for partition in removed.partitions {
                partition.notifier.close()
                try? partition.log.close()
            }
            for p in removed.slots.indices {
                try Self.deleteDirectory(Self.partitionDirectory(dataDirectory, name, p), in: dataDirectory)
            }
            metrics.forget(name)
            options.logger.info("topic deleted", metadata: ["topic": "\(name)"])
        }
        do {
            try await groups.store.delete(topic: name) { [self] in registry.withLock { $0.topics[name] == nil } }
        } catch {
            // Deleted again before a topic of this name is created.
            options.logger.error("committed offsets of a deleted topic not deleted", metadata: ["topic": "\(name)", "error": "\(error)"])
        }
    }

    static let deletedSuffix = "-delete"

    /// Directories of these partitions that topics.json does not list are leftovers of a
    /// create or delete a crash interrupted: removed before such a partition is created, so
    /// they never come back as its data. Runs on the admin queue.
    func removeLeftovers(of topic: String, partitions: Range<Int>) throws {
        for p in partitions {
            let directory = Self.partitionDirectory(dataDirectory, topic, p)
            if DurableFile.exists(directory) {
                options.logger.warning("removing a leftover directory before creating the partition", metadata: ["path": "\(directory)"])
                try Self.deleteDirectory(directory, in: dataDirectory)
            }
        }
    }

    /// Renames `directory` to a `-delete` name, fsyncs the data directory (the rename is then
    /// durable: the old name can never come back), and removes the renamed tree.
    static func deleteDirectory(_ directory: String, in dataDirectory: String) throws {
        guard DurableFile.exists(directory) else { return }
        // `<name>-<p>.<8 hex>-delete`, the name cut so the whole stays within NAME_MAX (255):
        // a topic of 249 characters must be deletable too.
        let slash = directory.lastIndex(of: "/").map { directory.index(after: $0) } ?? directory.startIndex
        let base = directory[slash...]
        let suffix = "." + UUID().uuidString.lowercased().prefix(8) + deletedSuffix
        let kept = base.utf8.count + suffix.utf8.count <= 255 ? base : base.prefix(255 - suffix.utf8.count)
        let doomed = String(directory[..<slash]) + String(kept) + suffix
        try DurableFile.rename(directory, to: doomed)
        try DurableFile.syncDirectory(dataDirectory)
        try DurableFile.removeTree(doomed)
    }

    /// Removes what interrupted deletes left: directories renamed to `-delete` names.
    static func removeDeletedLeftovers(_ dataDirectory: String, logger: Logger) throws {
        for name in try DurableFile.listDirectory(dataDirectory) where name.hasSuffix(deletedSuffix) {
            logger.info("removing what an interrupted topic delete left", metadata: ["path": "\(dataDirectory)/\(name)"])
            try DurableFile.removeTree(dataDirectory + "/" + name)
        }
    }

    public func listTopics() -> [String] {
        registry.withLock { $0.topics.keys.sorted() }
    }

    public func partitionCount(of topic: String) throws(TidemarkError) -> Int {
        try topicState(topic).slots.count
    }

    /// The partitions of `topic` that cannot take writes: offline since the open (their
    /// directory could not be opened) or failed since (an fsync failed).
    public func unavailablePartitions(of topic: String) -> Set<Int> {
        guard let state = try? topicState(topic) else { return [] }
        var unavailable: Set<Int> = []
        for (index, slot) in state.slots.enumerated() {
            switch slot {
            case .offline: unavailable.insert(index)
            case .online(let p): if p.log.flushFailure != nil { unavailable.insert(index) }
            }
        }
        return unavailable
    }

    public func describeTopic(_ name: String) throws(TidemarkError) -> TopicDescription {
        let topic = try topicState(name)
        return TopicDescription(
            name: name, id: topic.id, isInternal: topic.isInternal, config: topic.config, overrides: topic.overrides,
            partitions: topic.slots.enumerated().map { index, slot in
                switch slot {
                case .online(let p):
                    // A log that failed an fsync refuses appends until a restart: unavailable to
                    // monitoring (tidemark_partitions_offline, leader -1), its offsets still reported.
                    PartitionDescription(
                        partition: p.partition, failed: p.log.flushFailure.map { "\($0)" }, damaged: p.log.damage,
                        logStartOffset: p.log.logStartOffset,
                        logEndOffset: p.log.logEndOffset, flushedOffset: p.log.flushedOffset, sizeInBytes: p.log.sizeInBytes,
                        segmentCount: p.log.segmentCount)
                case .offline(let reason):
                    PartitionDescription(
                        partition: index, offline: reason, logStartOffset: -1, logEndOffset: -1, flushedOffset: -1,
                        sizeInBytes: 0, segmentCount: 0)
                }
            })
    }

    func topicState(_ name: String) throws(TidemarkError) -> TopicState {
        let (topic, closed) = registry.withLock { ($0.topics[name], $0.isClosed) }
        if closed { throw TidemarkError(.brokerClosed, "broker is closed") }
        guard let topic = topic ?? internalTopics[name] else { throw TidemarkError(.unknownTopicOrPartition, "unknown topic '\(name)'") }
        return topic
    }

    /// A topic's id (Kafka's topic UUID: a new one when a topic is deleted and made again).
    public func topicId(of name: String) throws(TidemarkError) -> UUID { try topicState(name).id }

    /// The name of the topic with `id`, or nil when no topic has it (any more).
    public func topicName(forId id: UUID) -> String? {
        registry.withLock { $0.names[id] } ?? internalTopics.values.first { $0.id == id }?.name
    }

    /// Internal topics (readable with fetch and list-offsets; never produced to by clients).
    public var internalTopicNames: [String] { internalTopics.keys.sorted() }

    public func isInternalTopic(_ name: String) -> Bool { internalTopics[name] != nil }

    func partitionState(_ topic: String, _ partition: Int) throws(TidemarkError) -> PartitionState {
        try topicAndPartition(topic, partition).1
    }

    /// A topic's config and one of its partitions, with one registry lookup. With
    /// `forWriting`, internal topics are refused (clients never produce to them).
    func topicAndPartition(_ topic: String, _ partition: Int, forWriting: Bool = false) throws(TidemarkError)
        -> (TopicConfig, PartitionState)
    {
        let state = try topicState(topic)
        if forWriting && state.isInternal {
            throw TidemarkError(.invalidTopicName, "internal topic '\(topic)' is written by the broker only")
        }
        guard partition >= 0 && partition < state.slots.count else {
            throw TidemarkError(.unknownTopicOrPartition, "topic '\(topic)' has no partition \(partition)")
        }
        switch state.slots[partition] {
        case .online(let partitionState): return (state.config, partitionState)
        case .offline(let reason): throw TidemarkError(.storage, "partition \(topic)-\(partition) is offline: \(reason)")
        }
    }
}

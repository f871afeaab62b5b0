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
    /// Checks of compressed batches too large for the event loop, two at a time, the others
    /// started in arrival order (see `Broker.append`): memory bounded by two decompressed
    /// batches, and one long check does not hold the others behind it.
    let decompressor = BlockingExecutor(lanes: Broker.decompressionLanes, label: "tidemark.decompress")
    /// Lanes of `decompressor`.
    static let decompressionLanes = 2
    /// Records decoded for people to read (`readRecords`: the console), one page at a time:
    /// a page's decoded records may be ~12x its bytes (two bytes of an empty header are 24 in
    /// memory), so memory is bounded by one page, not by the number of viewers.
    let browser = BlockingExecutor(serial: true, label: "tidemark.browse")
    /// Reports that read from disk (`report`), one at a time.
    let reporter = BlockingExecutor(serial: true, label: "tidemark.reports")
    /// Reports running or waiting on `reporter` (bounded by `maxReports`).
    let reportsWaiting = Atomic<Int>(0)
    /// Share windows opened so far (`offerShareRecords`): an acquire reads it before it
    /// looks, and closes the windows it found full only if none was opened since
    /// (`AppendNotifier.closeShareWindow`).
    let shareWindowOpens = Atomic<UInt64>(0)
    /// Group commit for every partition: one thread syncing what waiting appenders need.
    let flusher: LogFlusher
    /// The deadlines of embedded long polls, on one sleeping task.
    let timers = DeadlineTimers()
    /// Topic creation, deletion and changes, one at a time (`admin`, in Broker+Topics.swift).
    let adminQueue = DispatchQueue(label: "tidemark.admin")
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
    /// Decoded large batches share workers take a few records at a time from (bounded).
    package let shareBatches = ShareBatchCache()
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
    /// When (uptime ns) the producer-state bound was last said (`boundProducerStates`).
    let producerBoundWarnedAt = Atomic<UInt64>(0)

    struct Registry: Sendable {
        var topics: [String: TopicState] = [:] { didSet { generation &+= 1 } }
        /// Moves with every change of `topics` (consumer groups re-read their topics then).
        var generation: UInt64 = 0
        /// Topic ids of the topics above.
        var names: [UUID: String] = [:]
        /// Deleted topics whose directories may not all be gone (a rename failed), with their
        /// partition counts: every save of topics.json keeps them (`deleting`), and the next
        /// open, or a topic created under the name, finishes them.
        var deleting: [String: Int] = [:]
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
    var internalIds: [String: UUID] { internalTopics.mapValues(\.id) }

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
            let (loaded, internalIds, madeIds, deleting) = try store.loadWithDeletions()
            // Deletions a crash cut: their directories go now, then the file forgets them. One
            // that fails again (a directory that cannot be renamed) is said and kept for the
            // next open; it does not refuse the start.
            for (name, count) in deleting.sorted(by: { $0.key < $1.key }) {
                options.logger.info("finishing a topic deletion a stop interrupted", metadata: ["topic": "\(name)", "partitions": "\(count)"])
                do {
                    try Self.deleteDirectories((0..<count).map { Self.partitionDirectory(dataDirectory, name, $0) }, in: dataDirectory)
                } catch {
                    registry.deleting[name] = count
                    options.logger.error(
                        "a deleted topic's directories could not be removed; retried at the next start",
                        metadata: ["topic": "\(name)", "error": "\(error)"])
                }
            }
            Self.reportUnlistedDirectories(
                dataDirectory,
                listed: Dictionary(loaded.map { ($0.name, Optional($0.partitions)) }, uniquingKeysWith: { a, _ in a })
                    .merging(Self.reservedTopicNames.map { ($0, nil) }) { listed, _ in listed },
                logger: options.logger)
            let topics = Self.resolveTopicSettings(loaded, options: options)
            let offsetsId = internalIds[offsetsTopic] ?? UUID()
            let ids = internalIds.merging([offsetsTopic: offsetsId]) { old, _ in old }
            if madeIds || internalIds[offsetsTopic] == nil {
                try store.save(topics, internalIds: ids, deleting: registry.deleting)
            } else if topics != loaded || deleting != registry.deleting {
                // Only the derived overrides or a followed default changed: a save that fails
                // (a full disk) does not refuse the start; the next change of a topic saves them.
                do { try store.save(topics, internalIds: ids, deleting: registry.deleting) } catch {
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
                budget.settle()
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
            // metadata (`LogConfig.preallocate`). Damage in them is cut, as a crash's unfinished
            // write is, and logged as a loss: refused, the node would not start at all (a user
            // partition's damage takes only that partition offline).
            var offsetsLogConfig = Self.offsetsTopicConfig.logConfig
            offsetsLogConfig.preallocate = true
            let offsets = try PartitionState.open(
                topic: offsetsTopic, partition: 0, directory: Self.partitionDirectory(dataDirectory, offsetsTopic, 0),
                config: offsetsLogConfig, clock: options.clock, logger: options.logger, metrics: metrics,
                countTraffic: false, budget: options.openFileBudget, refusingDamage: false)
            // The share-state log: one partition, flushed by the flusher (group commit).
            var shareConfig = TopicConfig(retentionBytes: nil, retentionMs: nil, segmentBytes: 64 << 20, flushPolicy: .os)
            shareConfig.maxMessageBytes = 64 << 20
            var shareLogConfig = shareConfig.logConfig
            shareLogConfig.preallocate = true
            let shareState = try PartitionState.open(
                topic: shareStateLog, partition: 0, directory: Self.partitionDirectory(dataDirectory, shareStateLog, 0),
                config: shareLogConfig, clock: options.clock, logger: options.logger, metrics: metrics,
                countTraffic: false, budget: options.openFileBudget, refusingDamage: false)
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
        let offsetStore = try await Self.readingOwnLog(offsetsTopic, dataDirectory) {
            try await OffsetStore.open(
                partition: offsetsPartition, executor: executor, flusher: flusher, clock: options.clock,
                compactionThresholdBytes: options.groups.offsetsCompactionBytes, maxMemoryBytes: options.groups.offsetsMaxMemoryBytes)
        }
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
        let (shareStore, shareStates, unreadable) = try await Self.readingOwnLog(shareStateLog, dataDirectory) {
            try await ShareStateStore.open(
                partition: sharePartition, flusher: flusher, executor: executor, clock: options.clock,
                compactionThresholdBytes: options.groups.shareStateCompactionBytes)
        }
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
        groups.restoreGroupsAndSay(catalog: broker.groupCatalog, topicName: { [broker] in broker.topicName(forId: $0) })
        // Restored share windows learn their records' delays before the node serves (the
        // maintenance passes read any left past the budget): until then a delayed job read as
        // due, and as old as its enqueue, to a scrape in the first second.
        if options.readsRestoredShareWindowsAtOpen { shares.readRestoredMetadata(view: broker.shareLogView) }
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

    /// Runs `read`, the replay of one of the broker's own logs at open. Damage the replay meets
    /// (where the log's open did not read: before its newest segment's tail after a clean
    /// stop) stops the start: the error says which log and how to repair it.
    static func readingOwnLog<T>(_ name: String, _ dataDirectory: String, _ read: () async throws -> T) async throws -> T {
        do {
            return try await read()
        } catch var error as StorageError where error.code == .corruptLog {
            error.message += ". The broker's own log \(name) is damaged there, and the node cannot start without it: "
                + "`tidemark verify --repair \(dataDirectory)` (with the broker stopped) cuts it at the damage "
                + "(what it held after that point is lost: committed offsets or share-group state)"
            throw error
        }
    }

    static func partitionDirectory(_ data: String, _ topic: String, _ partition: Int) -> String {
        "\(data)/\(topic)-\(partition)"
    }
}

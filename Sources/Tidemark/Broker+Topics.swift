import Dispatch
import Foundation
import Logging
import TidemarkStorage

// The topic registry's control plane (create, delete, settings at open) and its lookups.
extension Broker {
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
        // A default changed since the last start moves every topic that follows it: said once
        // per setting, not per topic (1,000 topics made 2,000 lines of a restart's log).
        var followed: [String: (setting: String, was: String, now: String, topics: [String])] = [:]
        defer {
            for change in followed.values.sorted(by: { $0.setting < $1.setting }) {
                let named = change.topics.prefix(5).joined(separator: ", ") + (change.topics.count > 5 ? " and \(change.topics.count - 5) more" : "")
                options.logger.info(
                    "topics follow the broker's setting, changed since they were last opened",
                    metadata: ["setting": "\(change.setting)", "was": "\(change.was)", "now": "\(change.now)", "count": "\(change.topics.count)", "topics": "\(named)"])
            }
        }
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
                let key = "\(name)\u{0}\(before[name] ?? "")\u{0}\(value)"
                followed[key, default: (name, before[name] ?? "", value, [])].topics.append(stored.name)
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
                budget.settle()
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
                // (A deletion of this name left pending is over: its leftovers were removed
                // before the partitions were made.)
                let (all, deleting) = registry.withLock { r in (r.topics.values.map(\.stored), r.deleting.filter { $0.key != name }) }
                try TopicStore(path: dataDirectory + "/topics.json").save(all + [topic.stored], internalIds: internalIds, deleting: deleting)
                registry.withLock { _ = $0.deleting.removeValue(forKey: name) }
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
    /// Crash-safe: topics.json forgets the topic first and names it as a deletion under way
    /// (`deleting`); every partition directory is then renamed to `<name>-<p>.<id>-delete`,
    /// the data directory fsynced once, the trees removed, and the entry dropped. A crash
    /// anywhere leaves `-delete` leftovers, removed at the next open, or directories the
    /// entry names, which the next open removes.
    public func deleteTopic(_ name: String) async throws {
        try checkOpen()
        guard internalTopics[name] == nil else { throw TidemarkError(.invalidTopicName, "internal topic '\(name)' cannot be deleted") }
        try await admin { [self] in
            // topics.json forgets the topic before the registry does: a save that fails (a full
            // disk) leaves the topic served, not gone until a restart brings it back.
            let (found, rest, deleting) = registry.withLock { r -> (TopicState?, [TopicStore.Topic], [String: Int]) in
                (r.topics[name], r.topics.values.filter { $0.name != name }.map(\.stored), r.deleting)
            }
            guard let found else { throw TidemarkError(.unknownTopicOrPartition, "topic '\(name)' does not exist") }
            // Saved as a deletion under way: an open that finds it finishes it.
            let store = TopicStore(path: dataDirectory + "/topics.json")
            try store.save(rest, internalIds: internalIds, deleting: deleting.merging([name: found.slots.count]) { _, new in new })
            let removed = registry.withLock { r -> TopicState in
                let removed = r.topics.removeValue(forKey: name)!
                r.names.removeValue(forKey: removed.id)
                r.deleting[name] = found.slots.count
                return removed
            }
            shares.topicDeleted(name, id: removed.id)
            shareBatches.forget(topicId: removed.id)
            for partition in removed.partitions {
                partition.notifier.close()
                try? partition.log.close()
            }
            // On a failure the deletion stays pending: every save keeps it, the next open ends it.
            try Self.deleteDirectories(removed.slots.indices.map { Self.partitionDirectory(dataDirectory, name, $0) }, in: dataDirectory)
            // Done: the deletion leaves the file (else the next save, or open, drops it).
            let (others, stillDeleting) = registry.withLock { r in
                r.deleting.removeValue(forKey: name)
                return (r.topics.values.map(\.stored), r.deleting)
            }
            do { try store.save(others, internalIds: internalIds, deleting: stillDeleting) } catch {
                options.logger.warning("topics.json could not be rewritten after a deletion; the next change or start does it", metadata: ["error": "\(error)"])
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
        try deleteDirectories([directory], in: dataDirectory)
    }

    /// `deleteDirectory` for many: every directory renamed, the data directory fsynced once,
    /// then the trees removed (a rename or removal that fails does not stop the others; the
    /// first failure is thrown at the end). One fsync per rename took a second for 1,000
    /// partitions, the window in which a crash left directories no topic lists.
    static func deleteDirectories(_ directories: [String], in dataDirectory: String) throws {
        var doomed: [String] = []
        var failure: (any Error)? = nil
        for directory in directories {
            do {
                if let renamed = try renameForDeletion(directory) { doomed.append(renamed) }
            } catch {
                failure = failure ?? error
            }
        }
        if !doomed.isEmpty { try DurableFile.syncDirectory(dataDirectory) }
        for directory in doomed {
            do { try DurableFile.removeTree(directory) } catch { failure = failure ?? error }  // else removed at the next open
        }
        if let failure { throw failure }
    }

    /// Renames `directory` to a `-delete` name (not fsynced), returned; nil when it does not exist.
    static func renameForDeletion(_ directory: String) throws -> String? {
        guard DurableFile.exists(directory) else { return nil }
        // `<name>-<p>.<8 hex>-delete`, the name cut so the whole stays within NAME_MAX (255):
        // a topic of 249 characters must be deletable too.
        let slash = directory.lastIndex(of: "/").map { directory.index(after: $0) } ?? directory.startIndex
        let base = directory[slash...]
        let suffix = "." + UUID().uuidString.lowercased().prefix(8) + deletedSuffix
        let kept = base.utf8.count + suffix.utf8.count <= 255 ? base : base.prefix(255 - suffix.utf8.count)
        let doomed = String(directory[..<slash]) + String(kept) + suffix
        try DurableFile.rename(directory, to: doomed)
        return doomed
    }

    /// Partition directories no topic lists (`<topic>-<n>` of a topic topics.json does not
    /// have, or past the partitions it lists for the topic): left by a deletion a crash cut
    /// between topics.json and the renames, a creation cut between the directories and
    /// topics.json, or by a topics.json edited or restored from an
    /// older backup. They are not served, nor removed here (a hand edit must not cost data),
    /// but said at open, with what to do: they were kept without a word. `listed`: each
    /// topic's partition count (nil: every partition of it is listed).
    static func reportUnlistedDirectories(_ dataDirectory: String, listed: [String: Int?], logger: Logger) {
        let unlisted = unlistedDirectories(dataDirectory, listed: listed)
        guard !unlisted.isEmpty else { return }
        logger.warning(
            "partition directories that no topic lists, not served (a topic creation or deletion a crash interrupted, or topics.json edited or restored from an older copy): remove them to free their space, or give topics.json the partitions they hold; creating a topic or partitions of that name removes them",
            metadata: ["count": "\(unlisted.count)", "first": "\(unlisted.sorted().prefix(5).joined(separator: ","))", "path": "\(dataDirectory)"])
    }

    /// The names of the partition directories in `dataDirectory` that `listed` does not list.
    static func unlistedDirectories(_ dataDirectory: String, listed: [String: Int?]) -> [String] {
        guard let names = try? DurableFile.listDirectory(dataDirectory) else { return [] }
        var unlisted: [String] = []
        for name in names where !name.hasSuffix(deletedSuffix) {
            guard let dash = name.lastIndex(of: "-"), let partition = Int(name[name.index(after: dash)...]) else { continue }
            let topic = String(name[..<dash])
            let isListed = listed[topic].map { count in count.map { partition < $0 } ?? true } ?? false
            guard !isListed, (try? TopicName.validate(topic)) != nil,
                LogVerifier.isPartitionDirectory(dataDirectory + "/" + name)
            else { continue }
            unlisted.append(name)
        }
        return unlisted.sorted()
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

    /// This node's cluster id, as Kafka's clients and tools read it (Metadata, DescribeCluster):
    /// a UUID in 22 characters of URL-safe base64 without padding, as Kafka writes one
    /// (`Uuid.toString`), the offsets topic's id, made once with the data directory and kept
    /// in topics.json (a new topics.json is a new cluster id): each node's own across restarts, so tools watching several tell them
    /// apart (every node said "tidemark").
    public var clusterId: String {
        let id = internalTopics[Self.offsetsTopic]?.id ?? UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        let bytes = withUnsafeBytes(of: id.uuid) { Data($0) }
        let text = bytes.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        // Never a leading "-" (Kafka draws its ids again for that: a command line would read
        // one as an option).
        return text.hasPrefix("-") ? "A" + text.dropFirst() : text
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

    /// The state of each of `partitions` (nil: its topic or partition does not exist, or it is
    /// offline), with one registry lookup per run of partitions of one topic: a poll over 1,000
    /// partitions of a topic looked the topic up 1,000 times per pass.
    func partitionStates(_ partitions: [TopicPartition]) -> [PartitionState?] {
        var topic: (name: String, state: TopicState?)?
        return partitions.map { tp in
            if topic?.name != tp.topic { topic = (tp.topic, try? topicState(tp.topic)) }
            guard let slots = topic?.state?.slots, tp.partition >= 0 && tp.partition < slots.count,
                case .online(let state) = slots[tp.partition]
            else { return nil }
            return state
        }
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

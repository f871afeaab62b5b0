import Foundation
import TidemarkStorage

/// One partition's figures for DescribeLogDirs.
public struct PartitionLogDirInfo: Sendable, Equatable {
    public var topic: String
    public var partition: Int
    public var sizeInBytes: Int64
}

/// One producer's state on a partition (DescribeProducers).
public struct ProducerDescription: Sendable, Equatable {
    public var producerId: Int64
    public var epoch: Int16
    public var lastSequence: Int32
    public var lastTimestamp: Int64
}

/// A change to a topic's or a group's configuration, by Kafka name (IncrementalAlterConfigs).
public enum ConfigChange: Sendable, Equatable {
    case set(String, String?)
    /// Back to the default.
    case delete(String)
    /// Adds the comma-separated items not already in a list setting (IncrementalAlterConfigs APPEND).
    case append(String, String?)
    /// Removes the comma-separated items from a list setting (SUBTRACT).
    case subtract(String, String?)

    /// The setting it changes.
    public var name: String {
        switch self {
        case .set(let name, _), .delete(let name), .append(let name, _), .subtract(let name, _): name
        }
    }
}

extension Broker {
    // MARK: Partitions and records

    /// Raises a topic's partition count to `count` (Kafka's CreatePartitions: never lower).
    public func createPartitions(topic name: String, count: Int, validateOnly: Bool = false) async throws {
        try checkOpen()
        guard !isInternalTopic(name) else { throw TidemarkError(.invalidTopicName, "internal topic '\(name)' cannot change") }
        try await admin { [self] in
            let topic = try topicState(name)
            guard count > topic.slots.count else {
                throw TidemarkError(
                    .invalidPartitions,
                    "topic '\(name)' has \(topic.slots.count) partition\(topic.slots.count == 1 ? "" : "s"); the new count must be larger, got \(count)")
            }
            guard count <= options.maxPartitionsPerTopic else {
                throw TidemarkError(.invalidPartitions, "at most \(options.maxPartitionsPerTopic) partitions per topic")
            }
            if validateOnly { return }
            try removeLeftovers(of: name, partitions: topic.slots.count..<count)
            let (dataDirectory, clock, logger, config, budget) = (
                dataDirectory, options.clock, options.logger, topic.config, options.openFileBudget
            )
            let added = parallelMap(count - topic.slots.count) { index in
                Result {
                    try PartitionState.open(
                        topic: name, partition: topic.slots.count + index,
                        directory: Self.partitionDirectory(dataDirectory, name, topic.slots.count + index),
                        config: config.logConfig, clock: clock, logger: logger, metrics: self.metrics, budget: budget,
                        creating: true)
                }
            }
            budget.settle()
            var states: [PartitionState] = []
            for result in added {
                if case .success(let state) = result { states.append(state) }
            }
            if states.count != added.count {
                for state in states { try? state.log.close() }
                _ = try added.first { if case .failure = $0 { true } else { false } }!.get()
            }
            do {
                try replaceTopic(
                    TopicState(
                        name: name, id: topic.id, config: topic.config, overrides: topic.overrides, savesOverrides: topic.savesOverrides,
                        slots: topic.slots + states.map { .online($0) }))
            } catch {
                for state in states { try? state.log.close() }
                for p in topic.slots.count..<count { try? Self.deleteDirectory(Self.partitionDirectory(dataDirectory, name, p), in: dataDirectory) }
                throw error
            }
            logger.info("partitions added", metadata: ["topic": "\(name)", "partitions": "\(count)"])
        }
    }

    /// Moves a partition's log start up to `offset` (Kafka's DeleteRecords; -1: the log end):
    /// the records before it are gone. Returns the new log start (the low watermark).
    public func deleteRecords(topic: String, partition: Int, before offset: Int64) async throws -> Int64 {
        let (_, state) = try topicAndPartition(topic, partition, forWriting: true)
        // -1: the high watermark, as in Kafka (what readers see: `visibleEndOffset`).
        let target = offset == -1 ? state.log.visibleEndOffset : offset
        guard target >= 0, target <= state.log.visibleEndOffset else {
            throw TidemarkError(.offsetOutOfRange, "offset \(offset) is past the end of \(topic)-\(partition)")
        }
        return try await executor.run { [self] in
            do throws(StorageError) {
                return try state.log.deleteRecords(before: target)
            } catch where error.code == .closed && (try? topicAndPartition(topic, partition, forWriting: true))?.1 !== state {
                // The topic was deleted meanwhile (it may exist again under its name): as Kafka
                // answers a DeleteRecords for a partition it no longer has. (It was a storage
                // error: the log start's write found its directory renamed for the delete.)
                throw TidemarkError(.unknownTopicOrPartition, "\(topic)-\(partition) was deleted while its records were")
            } catch {
                throw TidemarkError.wrapping(error, "delete records of \(topic)-\(partition)")
            }
        }
    }

    /// Each partition's size on disk (DescribeLogDirs), and the data directory's disk.
    public func logDirectoryUsage() -> (partitions: [PartitionLogDirInfo], totalBytes: Int64, usableBytes: Int64) {
        let topics = registry.withLock { Array($0.topics.values) }
        var result: [PartitionLogDirInfo] = []
        for topic in topics {
            for case .online(let state) in topic.slots {
                result.append(PartitionLogDirInfo(topic: topic.name, partition: state.partition, sizeInBytes: state.log.sizeInBytes))
            }
        }
        var stats = statvfs()
        let (total, usable): (Int64, Int64) =
            statvfs(dataDirectory, &stats) == 0
            ? (Int64(stats.f_blocks) * Int64(stats.f_frsize), Int64(stats.f_bavail) * Int64(stats.f_frsize)) : (-1, -1)
        return (result.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }, total, usable)
    }

    /// The idempotent producers a partition remembers (DescribeProducers).
    public func producers(topic: String, partition: Int) throws(TidemarkError) -> [ProducerDescription] {
        let state = try partitionState(topic, partition)
        return state.producers.withLock { table in
            table.entries.map { id, entry in
                ProducerDescription(
                    producerId: id, epoch: entry.epoch, lastSequence: entry.batches.last?.lastSequence ?? -1,
                    lastTimestamp: entry.batches.last?.timestamp ?? -1)
            }.sorted { $0.producerId < $1.producerId }
        }
    }

    // MARK: Topic configuration

    /// Changes a topic's configuration by Kafka names: `replacing` (AlterConfigs) makes every
    /// name not given return to the broker's default; otherwise only the changes apply
    /// (IncrementalAlterConfigs). The new settings reach the running partitions at once
    /// (size limits from their next segment) and are persisted.
    public func alterTopicConfig(_ name: String, changes: [ConfigChange], replacing: Bool = false, validateOnly: Bool = false)
        async throws
    {
        try checkOpen()
        guard !isInternalTopic(name) else { throw TidemarkError(.invalidConfig, "internal topic '\(name)' cannot be configured") }
        try await admin { [self] in
            let topic = try topicState(name)
            // Without the broker's settings, a setting deleted would be pinned at Kafka's
            // default, and the next broker node would read it as the topic's own.
            guard topic.savesOverrides else {
                throw TidemarkError(
                    .invalidConfig, "topic '\(name)' is from an earlier version's topics.json: change its settings through a running broker")
            }
            var config = replacing ? options.defaultTopicConfig : topic.config
            let defaults = options.defaultTopicConfig
            // The names the topic sets itself once the changes apply: a deleted one follows the
            // broker's default again (also after the broker's default changes).
            var overridden = replacing ? Set<String>() : topic.overrides
            for change in TopicConfig.inApplyOrder(changes, name: \.name, isRemoval: { if case .delete = $0 { true } else { false } }) {
                switch change {
                case .set(let key, let value):
                    try config.apply(kafkaName: key, value: value)
                    overridden.insert(TopicConfig.overrideName(of: key))
                case .delete(let key):
                    try config.reset(kafkaName: key, to: defaults)
                    overridden.remove(TopicConfig.overrideName(of: key))
                case .append(let key, let value), .subtract(let key, let value):
                    overridden.insert(key)
                    guard TopicConfig.listKafkaNames.contains(key) else {
                        throw TidemarkError(.invalidConfig, "\(key) is not a list: APPEND and SUBTRACT do not apply")
                    }
                    func items(_ list: String?) -> [String] {
                        (list ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                    }
                    let current = items(config.kafkaConfigs.first { $0.0 == key }?.1)
                    let given = items(value)
                    let result: [String]
                    if case .append = change {
                        var seen = Set(current)
                        result = current + given.filter { seen.insert($0).inserted }
                    } else {
                        let removed = Set(given)
                        result = current.filter { !removed.contains($0) }
                    }
                    try config.apply(kafkaName: key, value: result.joined(separator: ","))
                }
            }
            try config.validate()
            do throws(StorageError) { try config.logConfig.validate() } catch { throw TidemarkError.wrapping(error, "configure \(name)") }
            if validateOnly { return }
            // Persisted first: a change that cannot be saved (a full disk) is not live.
            try replaceTopic(
                TopicState(
                    name: name, id: topic.id, config: config, overrides: overridden, savesOverrides: topic.savesOverrides, slots: topic.slots))
            // Every partition takes the change (one whose sync failed too: it is thrown after).
            var failure: StorageError?
            for case .online(let state) in topic.slots {
                do throws(StorageError) { try state.log.update(config: config.logConfig) } catch {
                    failure = failure ?? error
                }
                // No longer synced every append: what was appended unsynced is seen now.
                state.notifier.notify(newEnd: state.log.visibleEndOffset)
            }
            if let failure { throw TidemarkError.wrapping(failure, "configure \(name)") }
            options.logger.info("topic configuration changed", metadata: ["topic": "\(name)"])
        }
    }

    /// Persists the topic list with `topic` in place of the one with its name, then puts it in
    /// the registry: a change answered as failed (a full disk) is not live. Runs on the admin
    /// queue (the only writer of the list, so nothing changes between the two).
    func replaceTopic(_ topic: TopicState) throws {
        let (others, deleting) = registry.withLock { r in (r.topics.values.filter { $0.name != topic.name }.map(\.stored), r.deleting) }
        try TopicStore(path: dataDirectory + "/topics.json").save(others + [topic.stored], internalIds: internalTopics.mapValues(\.id), deleting: deleting)
        registry.withLock { $0.topics[topic.name] = topic }
    }
}

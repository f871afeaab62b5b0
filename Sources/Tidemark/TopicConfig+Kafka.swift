import TidemarkStorage

/// Kafka's names for topic settings.
extension TopicConfig {
    /// Applies a Kafka topic config by its Kafka name (`retention.ms`, `flush.messages`, ...).
    /// A value is taken without the white space around it, as Kafka's ConfigDef parses
    /// every type (`retention.ms= 100` sets 100).
    public mutating func apply(kafkaName name: String, value: String?) throws(TidemarkError) {
        let value = value?.trimmingCharacters(in: .whitespacesAndNewlines)
        func number() throws(TidemarkError) -> Int64 {
            guard let value, let n = Int64(value) else { throw TidemarkError(.invalidConfig, "\(name) needs a number, got \(value ?? "null")") }
            return n
        }
        switch name {
        case "retention.ms":
            // -1 keeps everything; below it is refused, as Kafka's validator (at least -1) does.
            let n = try number()
            guard n >= -1 else { throw TidemarkError(.invalidConfig, "retention.ms must be >= -1, got \(n)") }
            self.retentionMs = n < 0 ? nil : n
        case "retention.bytes": self.retentionBytes = try number() < 0 ? nil : try number()
        case "segment.bytes":
            // At least 1 MiB, as Kafka 4 requires (KIP-1030): a topic set up here is one Kafka takes.
            let n = try number()
            guard n >= Self.minimumSegmentBytes && n <= Int64(Int32.max) else {
                throw TidemarkError(
                    .invalidConfig,
                    "segment.bytes must be in [\(Self.minimumSegmentBytes), \(Int32.max)] (Kafka 4's range), got \(n); internal.segment.bytes takes smaller sizes, for tests")
            }
            self.segmentBytes = Int(n)
        case "internal.segment.bytes":
            // Kafka 4's internal setting for tests that need small segments; described as segment.bytes.
            let n = try number()
            guard n >= Int64(RecordBatchHeader.size) && n <= Int64(Int32.max) else {
                throw TidemarkError(.invalidConfig, "internal.segment.bytes must be in [\(RecordBatchHeader.size), \(Int32.max)], got \(n)")
            }
            self.segmentBytes = Int(n)
        case "max.message.bytes": self.maxMessageBytes = Int(try number())
        case "message.timestamp.type":
            guard value == "CreateTime" || value == "LogAppendTime" else {
                throw TidemarkError(.invalidConfig, "message.timestamp.type must be CreateTime or LogAppendTime")
            }
            self.timestampType = value == "LogAppendTime" ? .logAppendTime : .createTime
        case "compression.type":
            guard let value, let compression = Compression(kafkaName: value) else {
                throw TidemarkError(
                    .invalidConfig,
                    "compression.type \(value ?? "null") is not one of uncompressed, zstd, lz4, snappy, gzip, producer")
            }
            self.compression = compression
        case "flush.messages":
            // Kafka's default, Long.MAX, means never by count; flush.ms keeps its value.
            let n = try number()
            guard n >= 1 else { throw TidemarkError(.invalidConfig, "flush.messages must be >= 1, got \(n)") }
            setKafkaFlush(messages: n == Int64.max ? nil : Int(n), ms: kafkaFlush.ms)
        case "flush.ms":
            // Kafka's default, Long.MAX, means no interval; flush.messages keeps its value.
            let n = try number()
            guard n >= 0 else { throw TidemarkError(.invalidConfig, "flush.ms must be >= 0, got \(n)") }
            setKafkaFlush(messages: kafkaFlush.messages, ms: n == Int64.max ? nil : max(1, n))
        case "segment.ms":
            let n = try number()
            guard n >= 1 else { throw TidemarkError(.invalidConfig, "segment.ms must be >= 1, got \(n)") }
            self.segmentMs = n
        case "index.interval.bytes":
            let n = try number()
            guard n >= 0 && n <= Int64(Int32.max) else { throw TidemarkError(.invalidConfig, "index.interval.bytes must be in [0, \(Int32.max)]") }
            self.indexIntervalBytes = Int(n)
        case "message.timestamp.before.max.ms":
            let n = try number()
            guard n >= 0 else { throw TidemarkError(.invalidConfig, "\(name) must be >= 0") }
            self.messageTimestampBeforeMaxMs = n == Int64.max ? nil : n
        case "message.timestamp.after.max.ms":
            let n = try number()
            guard n >= 0 else { throw TidemarkError(.invalidConfig, "\(name) must be >= 0") }
            self.messageTimestampAfterMaxMs = n
        case "cleanup.policy":
            guard value == "delete" else { throw TidemarkError(.invalidConfig, "only cleanup.policy=delete is supported") }
        case "errors.deadletterqueue.group.enable":
            switch value?.lowercased() {
            case "true": self.deadLetterQueueEnabled = true
            case "false": self.deadLetterQueueEnabled = false
            default: throw TidemarkError(.invalidConfig, "\(name) must be true or false")
            }
        default:
            guard let kind = Self.storedOnlyKafkaNames[name] else {
                throw TidemarkError(.invalidConfig, "unknown topic config \(name)")
            }
            guard let value else { throw TidemarkError(.invalidConfig, "\(name) needs a value") }
            try kind.check(name, value)
            storedOnly = (storedOnly ?? [:]).merging([name: value]) { _, new in new }
        }
    }

    /// What a stored-only setting's value must look like (Kafka's type and range for it).
    public enum StoredOnlyKind: Sendable {
        case bool, list, ratio
        case number(min: Int64, max: Int64 = .max)
        /// A boolean only `false` of which a single node can honour.
        case falseOnly(String)

        /// Most entries a list setting holds (replicas of a topic's partitions, on a few brokers).
        static let maxListEntries = 30_000

        func check(_ name: String, _ value: String) throws(TidemarkError) {
            switch self {
            case .bool, .falseOnly:
                guard value.lowercased() == "true" || value.lowercased() == "false" else {
                    throw TidemarkError(.invalidConfig, "\(name) must be true or false")
                }
                if case .falseOnly(let why) = self, value.lowercased() == "true" {
                    throw TidemarkError(.invalidConfig, "\(name)=true: \(why)")
                }
            case .list:
                // Kafka's ThrottledReplicaListValidator: the literal `*`, or entries
                // `partition:broker` (empty entries allowed). Bounded here: a topic has at most
                // 10,000 partitions, so more entries than `maxListEntries` name replicas that
                // cannot exist (APPEND could otherwise grow the value, and topics.json, for ever).
                let entries = value.split(separator: ",", omittingEmptySubsequences: false).map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
                if entries.joined() == "*" { return }
                guard entries.count <= Self.maxListEntries else {
                    throw TidemarkError(.invalidConfig, "\(name) has \(entries.count) entries: at most \(Self.maxListEntries)")
                }
                func isReplica(_ entry: String) -> Bool {
                    let parts = entry.split(separator: ":", omittingEmptySubsequences: false)
                    return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0 >= "0" && $0 <= "9" } }
                }
                guard entries.allSatisfy({ $0.isEmpty || isReplica($0) }) else {
                    throw TidemarkError(
                        .invalidConfig,
                        "\(name) must be the literal '*' or a list of replicas as [partitionId]:[brokerId],[partitionId]:[brokerId],...")
                }
            case .ratio:
                guard let d = Double(value), d >= 0, d <= 1 else { throw TidemarkError(.invalidConfig, "\(name) must be in [0, 1]") }
            case .number(let min, let max):
                guard let n = Int64(value), n >= min, n <= max else {
                    throw TidemarkError(.invalidConfig, "\(name) must be a number in [\(min), \(max)]")
                }
            }
        }
    }

    /// Kafka topic settings that mean nothing on a single node without compaction or tiered
    /// storage: accepted (checked as Kafka checks them), kept and described, without effect.
    /// Configs that tools and operators set by habit (min.insync.replicas in every Terraform
    /// spec) then do not make a topic's creation fail.
    public static let storedOnlyKafkaNames: [String: StoredOnlyKind] = [
        "min.insync.replicas": .number(min: 1),
        "unclean.leader.election.enable": .bool,
        "preallocate": .bool,
        "delete.retention.ms": .number(min: 0),
        "file.delete.delay.ms": .number(min: 0),
        "segment.jitter.ms": .number(min: 0),
        "min.cleanable.dirty.ratio": .ratio,
        "min.compaction.lag.ms": .number(min: 0),
        "max.compaction.lag.ms": .number(min: 1),
        "compression.gzip.level": .number(min: -1, max: 9),
        "compression.lz4.level": .number(min: 1, max: 17),
        "compression.zstd.level": .number(min: -131072, max: 22),
        // Kept, not honoured: a smaller cap would hide the entries of existing indexes.
        "segment.index.bytes": .number(min: 4, max: Int64(Int32.max)),
        "leader.replication.throttled.replicas": .list,
        "follower.replication.throttled.replicas": .list,
        "local.retention.ms": .number(min: -2),
        "local.retention.bytes": .number(min: -2),
        "remote.storage.enable": .falseOnly("this node has no tiered storage"),
        "remote.log.copy.disable": .bool,
        "remote.log.delete.on.disable": .bool,
    ]

    /// Kafka's default of each stored-only setting: what DescribeConfigs lists for a topic
    /// that does not set it (DEFAULT_CONFIG), so `kafka-configs --describe --all` and UIs see
    /// a topic's whole set of settings, as a Kafka broker lists them.
    public static let storedOnlyKafkaDefaults: [String: String] = [
        "min.insync.replicas": "1",
        "unclean.leader.election.enable": "false",
        "preallocate": "false",
        "delete.retention.ms": "86400000",
        "file.delete.delay.ms": "60000",
        "segment.jitter.ms": "0",
        "min.cleanable.dirty.ratio": "0.5",
        "min.compaction.lag.ms": "0",
        "max.compaction.lag.ms": "\(Int64.max)",
        "compression.gzip.level": "-1",
        "compression.lz4.level": "9",
        "compression.zstd.level": "3",
        "segment.index.bytes": "10485760",
        "leader.replication.throttled.replicas": "",
        "follower.replication.throttled.replicas": "",
        "local.retention.ms": "-2",
        "local.retention.bytes": "-2",
        "remote.storage.enable": "false",
        "remote.log.copy.disable": "false",
        "remote.log.delete.on.disable": "false",
    ]

    /// The Kafka names whose values are lists (IncrementalAlterConfigs' APPEND and SUBTRACT).
    public static let listKafkaNames: Set<String> = [
        "cleanup.policy", "leader.replication.throttled.replicas", "follower.replication.throttled.replicas",
    ]

    /// Puts one setting, by Kafka name, back to its value in `defaults`.
    public mutating func reset(kafkaName name: String, to defaults: TopicConfig) throws(TidemarkError) {
        switch name {
        case "retention.ms": retentionMs = defaults.retentionMs
        case "retention.bytes": retentionBytes = defaults.retentionBytes
        case "segment.bytes", "internal.segment.bytes": segmentBytes = defaults.segmentBytes
        case "max.message.bytes": maxMessageBytes = defaults.maxMessageBytes
        case "message.timestamp.type": timestampType = defaults.timestampType
        case "message.timestamp.before.max.ms": messageTimestampBeforeMaxMs = defaults.messageTimestampBeforeMaxMs
        case "message.timestamp.after.max.ms": messageTimestampAfterMaxMs = defaults.messageTimestampAfterMaxMs
        case "compression.type": compression = defaults.compression
        case "flush.messages":
            setKafkaFlush(messages: defaults.kafkaFlush.messages, ms: kafkaFlush.ms)
        case "flush.ms":
            setKafkaFlush(messages: kafkaFlush.messages, ms: defaults.kafkaFlush.ms)
        case "segment.ms": segmentMs = defaults.segmentMs
        case "index.interval.bytes": indexIntervalBytes = defaults.indexIntervalBytes
        case "cleanup.policy": break
        case "errors.deadletterqueue.group.enable": deadLetterQueueEnabled = defaults.deadLetterQueueEnabled
        default:
            guard Self.storedOnlyKafkaNames[name] != nil else { throw TidemarkError(.invalidConfig, "unknown topic config \(name)") }
            storedOnly?[name] = defaults.storedOnly?[name]
            if storedOnly?.isEmpty == true { storedOnly = nil }
        }
    }

    /// The Kafka names of the topic settings Tidemark understands.
    public static let kafkaNames: Set<String> = Set([
        "retention.ms", "retention.bytes", "segment.bytes", "max.message.bytes", "message.timestamp.type",
        "message.timestamp.before.max.ms", "message.timestamp.after.max.ms", "compression.type", "flush.messages",
        "flush.ms", "cleanup.policy", "errors.deadletterqueue.group.enable", "segment.ms", "index.interval.bytes",
        "internal.segment.bytes",
    ]).union(storedOnlyKafkaNames.keys)

    /// Settings in the order they are applied: `internal.segment.bytes` set after
    /// `segment.bytes`, so that it wins when both are given, as Kafka's LogConfig.segmentSize()
    /// prefers it; removed (`isRemoval`) before, so that a segment.bytes given with the removal
    /// stays.
    public static func inApplyOrder<T>(_ settings: [T], name: (T) -> String, isRemoval: (T) -> Bool = { _ in false }) -> [T] {
        let internalName = "internal.segment.bytes"
        return settings.filter { name($0) == internalName && isRemoval($0) } + settings.filter { name($0) != internalName }
            + settings.filter { name($0) == internalName && !isRemoval($0) }
    }

    /// Kafka 4's smallest segment.bytes (1 MiB).
    public static let minimumSegmentBytes: Int64 = 1 << 20

    /// The name a setting is kept and described under: `internal.segment.bytes` sets segment.bytes.
    public static func overrideName(of kafkaName: String) -> String {
        kafkaName == "internal.segment.bytes" ? "segment.bytes" : kafkaName
    }

    /// The config as Kafka names and values (DescribeConfigs, `tidemark topics describe`).

    public var kafkaConfigs: [(String, String)] {
        let config = self
        let flush = config.kafkaFlush
        let log = LogConfig()
        let honoured: [(String, String)] = [
            ("cleanup.policy", "delete"),
            ("compression.type", config.compression.kafkaName),
            ("errors.deadletterqueue.group.enable", "\(config.deadLetterQueueEnabled ?? false)"),
            ("flush.messages", "\(flush.messages.map(Int64.init) ?? Int64.max)"),
            ("flush.ms", "\(flush.ms ?? Int64.max)"),
            ("index.interval.bytes", "\(config.indexIntervalBytes ?? log.indexIntervalBytes)"),
            ("max.message.bytes", "\(config.maxMessageBytes)"),
            ("message.timestamp.after.max.ms", "\(config.messageTimestampAfterMaxMs ?? RecordBatchValidator.defaultTimestampAfterMaxMs)"),
            ("message.timestamp.before.max.ms", "\(config.messageTimestampBeforeMaxMs ?? Int64.max)"),
            ("message.timestamp.type", config.timestampType == .logAppendTime ? "LogAppendTime" : "CreateTime"),
            ("retention.bytes", "\(config.retentionBytes ?? -1)"),
            ("retention.ms", "\(config.retentionMs ?? -1)"),
            ("segment.bytes", "\(config.segmentBytes)"),
            ("segment.ms", "\(config.segmentMs ?? log.segmentMs)"),
        ]
        // A stored-only entry under a name handled above (a hand-edited topics.json) is not
        // listed twice: callers key dictionaries by name. One the topic does not set is listed
        // at Kafka's default.
        let handled = Set(honoured.map(\.0))
        let kept = Self.storedOnlyKafkaDefaults.merging(config.storedOnly ?? [:]) { _, set in set }
            .filter { !handled.contains($0.key) }.map { ($0.key, $0.value) }
        return (honoured + kept).sorted { $0.0 < $1.0 }
    }

    /// The names of the settings in which `config` differs from `defaults`: what a topic made
    /// from a whole config (the embedded API, a topic from an earlier version) sets itself.
    public static func overrides(of config: TopicConfig, against defaults: TopicConfig) -> Set<String> {
        let base = Dictionary(uniqueKeysWithValues: defaults.kafkaConfigs)
        return Set(config.kafkaConfigs.filter { name, value in base[name] != value }.map(\.0))
    }

    /// A topic's config: `defaults` (the broker's now) with the settings `overrides` of
    /// `config` (the topic's own) over them. A setting the topic does not set follows the
    /// broker's, also after the broker's changes (a restart with another `log.retention.ms`),
    /// as in Kafka.
    /// A setting whose stored value this version refuses (a range tightened since) is left at
    /// the default and named in `refused`, so the rest still apply.
    public static func resolved(defaults: TopicConfig, overrides: Set<String>, of config: TopicConfig) throws(TidemarkError)
        -> (config: TopicConfig, refused: [String])
    {
        var resolved = defaults
        var refused: [String] = []
        // flush.messages and flush.ms are set one at a time, each keeping the other's value.
        for (name, value) in config.kafkaConfigs where overrides.contains(name) {
            // A stored segment size was accepted when set (internal.segment.bytes, or before
            // segment.bytes had Kafka's minimum): kept as it is.
            let applied = name == "segment.bytes" ? "internal.segment.bytes" : name
            do { try resolved.apply(kafkaName: applied, value: value) } catch { refused.append("\(name)=\(value): \(error.message)") }
        }
        try resolved.validate()
        return (resolved, refused)
    }
}

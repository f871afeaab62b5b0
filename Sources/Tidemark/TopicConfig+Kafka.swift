import TidemarkStorage

/// Kafka's names for topic settings.
extension TopicConfig {
    /// Applies a Kafka topic config by its Kafka name (`retention.ms`, `flush.messages`, ...).
    public mutating func apply(kafkaName name: String, value: String?) throws(TidemarkError) {
        func number() throws(TidemarkError) -> Int64 {
            guard let value, let n = Int64(value) else { throw TidemarkError(.invalidConfig, "\(name) needs a number, got \(value ?? "null")") }
            return n
        }
        switch name {
        case "retention.ms": self.retentionMs = try number() < 0 ? nil : try number()
        case "retention.bytes": self.retentionBytes = try number() < 0 ? nil : try number()
        case "segment.bytes": self.segmentBytes = Int(try number())
        case "max.message.bytes": self.maxMessageBytes = Int(try number())
        case "message.timestamp.type":
            guard value == "CreateTime" || value == "LogAppendTime" else {
                throw TidemarkError(.invalidConfig, "message.timestamp.type must be CreateTime or LogAppendTime")
            }
            self.timestampType = value == "LogAppendTime" ? .logAppendTime : .createTime
        case "compression.type":
            switch value {
            case "lz4": self.compression = .lz4
            case "producer", "uncompressed", "none": self.compression = .none
            default: throw TidemarkError(.invalidConfig, "compression.type \(value ?? "null") is not supported")
            }
        case "flush.messages":
            let n = try number()
            self.flushPolicy = n <= 1 ? .everyAppend : .everyMessages(Int(n))
        case "flush.ms":
            // Kafka's default, Long.MAX, means no interval: the OS flushes.
            let n = try number()
            self.flushPolicy = n == Int64.max ? .os : .everyIntervalMs(max(1, n))
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
            throw TidemarkError(.invalidConfig, "unknown topic config \(name)")
        }
    }

    /// Puts one setting, by Kafka name, back to its value in `defaults`.
    public mutating func reset(kafkaName name: String, to defaults: TopicConfig) throws(TidemarkError) {
        switch name {
        case "retention.ms": retentionMs = defaults.retentionMs
        case "retention.bytes": retentionBytes = defaults.retentionBytes
        case "segment.bytes": segmentBytes = defaults.segmentBytes
        case "max.message.bytes": maxMessageBytes = defaults.maxMessageBytes
        case "message.timestamp.type": timestampType = defaults.timestampType
        case "message.timestamp.before.max.ms": messageTimestampBeforeMaxMs = defaults.messageTimestampBeforeMaxMs
        case "message.timestamp.after.max.ms": messageTimestampAfterMaxMs = defaults.messageTimestampAfterMaxMs
        case "compression.type": compression = defaults.compression
        case "flush.messages", "flush.ms": flushPolicy = defaults.flushPolicy
        case "cleanup.policy": break
        case "errors.deadletterqueue.group.enable": deadLetterQueueEnabled = defaults.deadLetterQueueEnabled
        default: throw TidemarkError(.invalidConfig, "unknown topic config \(name)")
        }
    }

    /// The Kafka names of the topic settings Tidemark understands.
    public static let kafkaNames: Set<String> = [
        "retention.ms", "retention.bytes", "segment.bytes", "max.message.bytes", "message.timestamp.type",
        "message.timestamp.before.max.ms", "message.timestamp.after.max.ms", "compression.type", "flush.messages",
        "flush.ms", "cleanup.policy", "errors.deadletterqueue.group.enable",
    ]

    /// The config as Kafka names and values (DescribeConfigs, `tidemark topics describe`).

    public var kafkaConfigs: [(String, String)] {
        let config = self
        let flush: (String, String) =
            switch config.flushPolicy {
            case .everyAppend: ("flush.messages", "1")
            case .everyMessages(let n): ("flush.messages", "\(n)")
            case .everyIntervalMs(let ms): ("flush.ms", "\(ms)")
            case .os: ("flush.messages", "\(Int64.max)")
            }
        return [
            ("cleanup.policy", "delete"),
            ("compression.type", config.compression == .lz4 ? "lz4" : "producer"),
            ("errors.deadletterqueue.group.enable", "\(config.deadLetterQueueEnabled ?? false)"),
            flush,
            ("max.message.bytes", "\(config.maxMessageBytes)"),
            ("message.timestamp.after.max.ms", "\(config.messageTimestampAfterMaxMs ?? RecordBatchValidator.defaultTimestampAfterMaxMs)"),
            ("message.timestamp.before.max.ms", "\(config.messageTimestampBeforeMaxMs ?? Int64.max)"),
            ("message.timestamp.type", config.timestampType == .logAppendTime ? "LogAppendTime" : "CreateTime"),
            ("retention.bytes", "\(config.retentionBytes ?? -1)"),
            ("retention.ms", "\(config.retentionMs ?? -1)"),
            ("segment.bytes", "\(config.segmentBytes)"),
        ]
    }

}

import TidemarkStorage

/// Per-topic settings, persisted with the topic. Units are in the names.
public struct TopicConfig: Sendable, Equatable, Codable {
    public var retentionBytes: Int64?
    public var retentionMs: Int64?
    public var segmentBytes: Int
    /// The largest record batch a producer may send (Kafka's max.message.bytes).
    public var maxMessageBytes: Int
    public var flushPolicy: Flush
    /// Kafka's compression.type: `.none` (`producer`) stores batches as their producer
    /// compressed them; a codec (`uncompressed` included) stores every batch in it, the
    /// Kafka front recompressing a client's batch in another codec, as Kafka's broker does,
    /// and the embedded producer and appender building theirs in it.
    public var compression: Compression
    public var timestampType: Timestamps
    /// How far in the past a CreateTime record timestamp may be (Kafka's
    /// message.timestamp.before.max.ms); nil: unbounded, Kafka's default.
    public var messageTimestampBeforeMaxMs: Int64? = nil
    /// How far in the future (message.timestamp.after.max.ms); nil: Kafka 4's default, one hour.
    public var messageTimestampAfterMaxMs: Int64? = nil
    /// The topic may receive share groups' dead letters (KIP-1191's
    /// errors.deadletterqueue.group.enable); a topic without it is never written as a DLQ.
    public var deadLetterQueueEnabled: Bool? = nil
    /// Roll the active segment once its first batch is this old (Kafka's segment.ms; nil:
    /// seven days). Retention can then delete what a quiet topic holds.
    public var segmentMs: Int64? = nil
    /// Bytes between index entries (index.interval.bytes; nil: 4096).
    public var indexIntervalBytes: Int? = nil
    /// Kafka topic settings a single node accepts and keeps (so tools that set them, and read
    /// them back, see their values) but has no use for: `TopicConfig.storedOnlyKafkaNames`.
    public var storedOnly: [String: String]? = nil

    /// With `flushPolicy` `.everyMessages` or `.everyAppend`: Kafka's flush.ms set as well,
    /// whichever comes first (`.everyAppend` syncs every append anyway; the value is kept to be
    /// described). A field of its own, not a case of `Flush`, so that a topics.json written
    /// with it still loads in a node of an earlier version (which ignores it).
    public var flushAlsoEveryMs: Int64? = nil

    /// When appends are forced to disk.
    public enum Flush: Sendable, Equatable, Codable {
        case everyAppend, everyMessages(Int), everyIntervalMs(Int64), os
    }

    /// Kafka's flush.messages (nil: Long.MAX, never by count) and flush.ms (nil: never by time).
    public var kafkaFlush: (messages: Int?, ms: Int64?) {
        switch flushPolicy {
        case .everyAppend: (1, flushAlsoEveryMs)
        case .everyMessages(let n): (n, flushAlsoEveryMs)
        case .everyIntervalMs(let ms): (nil, ms)
        case .os: (nil, nil)
        }
    }

    /// Sets the policy of Kafka's two settings.
    public mutating func setKafkaFlush(messages: Int?, ms: Int64?) {
        switch (messages, ms) {
        case (nil, nil): (flushPolicy, flushAlsoEveryMs) = (.os, nil)
        case (1?, let ms): (flushPolicy, flushAlsoEveryMs) = (.everyAppend, ms)
        case (let n?, let ms): (flushPolicy, flushAlsoEveryMs) = (.everyMessages(n), ms)
        case (nil, let ms?): (flushPolicy, flushAlsoEveryMs) = (.everyIntervalMs(ms), nil)
        }
    }
    /// `none` is Kafka's `producer` (the name kept for the topics.json files that hold it).
    public enum Compression: String, Sendable, Equatable, Codable, CaseIterable {
        case none, lz4, uncompressed, gzip, snappy, zstd

        /// The codec every stored batch is in; nil for `producer` (each batch its own).
        public var codec: CompressionCodec? {
            switch self {
            case .none: nil
            case .uncompressed: CompressionCodec.none
            case .gzip: .gzip
            case .snappy: .snappy
            case .lz4: .lz4
            case .zstd: .zstd
            }
        }

        /// Kafka's name of the setting's value.
        public var kafkaName: String { self == .none ? "producer" : rawValue }

        /// The value of a Kafka name (`none` read as `producer`, as earlier versions did).
        public init?(kafkaName: String) {
            switch kafkaName {
            case "producer", "none": self = .none
            case "uncompressed", "gzip", "snappy", "lz4", "zstd": self.init(rawValue: kafkaName)
            default: return nil
            }
        }
    }
    public enum Timestamps: String, Sendable, Equatable, Codable { case createTime, logAppendTime }

    public init(
        retentionBytes: Int64? = nil, retentionMs: Int64? = 7 * 24 * 3600 * 1000, segmentBytes: Int = 1 << 30,
        maxMessageBytes: Int = 1_048_588, flushPolicy: Flush = .os, compression: Compression = .none,
        timestampType: Timestamps = .createTime
    ) {
        self.retentionBytes = retentionBytes
        self.retentionMs = retentionMs
        self.segmentBytes = segmentBytes
        self.maxMessageBytes = maxMessageBytes
        self.flushPolicy = flushPolicy
        self.compression = compression
        self.timestampType = timestampType
    }

    /// The most a compressed batch may inflate to when it is checked, whatever
    /// max.message.bytes allows (up to Int32.max: 8 GiB at 4x): a request is at most 100 MiB,
    /// and one batch must not take more memory than this to check.
    static let maxDecompressedBytes = 1 << 30

    /// What a produced batch must satisfy to be stored.
    var batchValidator: RecordBatchValidator {
        RecordBatchValidator(
            timestampBeforeMaxMs: messageTimestampBeforeMaxMs,
            timestampAfterMaxMs: messageTimestampAfterMaxMs ?? RecordBatchValidator.defaultTimestampAfterMaxMs,
            maxDecompressedBytes: max(RecordBatch.defaultMaxDecompressedBytes, min(maxMessageBytes * 4, Self.maxDecompressedBytes)))
    }

    /// The storage settings of each partition log.
    var logConfig: LogConfig {
        var config = LogConfig()
        config.retentionBytes = retentionBytes
        config.retentionMs = retentionMs
        config.segmentBytes = segmentBytes
        config.maxBatchBytes = maxMessageBytes
        config.timestampType = timestampType == .logAppendTime ? .logAppendTime : .createTime
        if let segmentMs { config.segmentMs = segmentMs }
        if let indexIntervalBytes { config.indexIntervalBytes = indexIntervalBytes }
        switch flushPolicy {
        case .everyAppend: config.flushPolicy = .everyAppend
        case .everyMessages(let n):
            config.flushPolicy = flushAlsoEveryMs.map { .everyMessagesOrInterval(messages: n, milliseconds: $0) } ?? .everyMessages(n)
        case .everyIntervalMs(let ms): config.flushPolicy = .everyInterval(milliseconds: ms)
        case .os: config.flushPolicy = .os
        }
        return config
    }

    /// A batch larger than `segmentBytes` is stored in a segment of its own (as in Kafka,
    /// which does not tie the two either).
    func validate() throws(TidemarkError) {
        guard maxMessageBytes >= RecordBatchHeader.size && maxMessageBytes <= Int(Int32.max) else {
            throw TidemarkError(.invalidConfig, "max.message.bytes must be in [\(RecordBatchHeader.size), \(Int32.max)], got \(maxMessageBytes)")
        }
        do { try logConfig.validate() } catch { throw TidemarkError(.invalidConfig, error.message) }
    }
}

/// Topic names as Kafka allows them: 1 to 249 of `[a-zA-Z0-9._-]`, not "." or "..".
public enum TopicName {
    public static let maxLength = 249

    /// Why a group member's subscription is refused: a name no topic can have (the first
    /// one, cut to a topic name's length). nil when every name could be a topic's. Group
    /// coordinators check this before their lock: names of any length were kept per member,
    /// and resolved or sorted under it.
    static func refusal(ofSubscription names: [String]?) -> String? {
        guard let bad = names?.first(where: { name in (try? validate(name)) == nil }) else { return nil }
        return "subscribed topic name is not a valid topic name: '\(bad.prefix(maxLength))'"
    }

    public static func validate(_ name: String) throws(TidemarkError) {
        guard !name.isEmpty, name.utf8.count <= maxLength else {
            throw TidemarkError(.invalidTopicName, "topic name must be 1 to \(maxLength) characters: '\(name)'")
        }
        guard name != "." && name != ".." else { throw TidemarkError(.invalidTopicName, "topic name cannot be '\(name)'") }
        let allowed = name.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x2E || c == 0x5F || c == 0x2D
        }
        guard allowed else {
            throw TidemarkError(.invalidTopicName, "topic name may only contain [a-zA-Z0-9._-]: '\(name)'")
        }
    }
}

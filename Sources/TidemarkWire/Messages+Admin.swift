// CreateTopics, DeleteTopics, DescribeConfigs: every version Kafka 4.1 serves and the older
// ones Tidemark already spoke. Flexible versions end each structure with its tagged fields.

/// CreateTopics (19) request v0-7: topics [name, num_partitions i32 (-1: the broker's
/// default, v4+), replication_factor i16, assignments [partition_index, broker_ids [i32]],
/// configs [name, value nullable]], timeout_ms i32, validate_only bool (v1+). Flexible from v5.
public struct CreateTopicsRequest: KafkaMessage {
    public struct Assignment: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var brokerIds: [Int32] = []
        public init() {}
    }
    public struct Config: Sendable, Equatable {
        public var name = ""
        public var value: String? = nil
        public init(name: String = "", value: String? = nil) {
            self.name = name
            self.value = value
        }
    }
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var numPartitions: Int32 = -1
        public var replicationFactor: Int16 = -1
        public var assignments: [Assignment] = []
        public var configs: [Config] = []
        public init() {}
    }
    public var topics: [Topic] = []
    public var timeoutMs: Int32 = 30_000
    public var validateOnly = false
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.int32(&t.numPartitions, "num_partitions")
            try c.int16(&t.replicationFactor, "replication_factor")
            try c.array(&t.assignments, "assignments", make: { Assignment() }) { (c: inout WireCoder, a: inout Assignment) throws(WireError) in
                try c.int32(&a.partitionIndex, "partition_index")
                try c.int32Array(&a.brokerIds, "broker_ids")
                try c.taggedFields()
            }
            try c.array(&t.configs, "configs", make: { Config() }) { (c: inout WireCoder, k: inout Config) throws(WireError) in
                try c.string(&k.name, "name")
                try c.nullableString(&k.value, "value")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.int32(&timeoutMs, "timeout_ms")
        if version >= 1 { try c.bool(&validateOnly, "validate_only") }
        try c.taggedFields()
    }
}

/// CreateTopics response v0-7: throttle_time_ms (v2+), topics [name, topic_id (v7),
/// error_code, error_message (v1+), num_partitions, replication_factor, configs nullable
/// [name, value, read_only, config_source, is_sensitive] (v5+)].
public struct CreateTopicsResponse: KafkaMessage {
    public struct Config: Sendable, Equatable {
        public var name = ""
        public var value: String? = nil
        public var readOnly = false
        public var configSource: Int8 = -1
        public var isSensitive = false
        public init(name: String = "", value: String? = nil, configSource: Int8 = -1) {
            self.name = name
            self.value = value
            self.configSource = configSource
        }
    }
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var topicId = WireUUID.zero
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public var numPartitions: Int32 = -1
        public var replicationFactor: Int16 = -1
        public var configs: [Config]? = nil
        public init(name: String = "", errorCode: Int16 = 0, errorMessage: String? = nil) {
            self.name = name
            self.errorCode = errorCode
            self.errorMessage = errorMessage
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var topics: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 2 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            if version >= 7 { try c.uuid(&t.topicId, "topic_id") }
            try c.int16(&t.errorCode, "error_code")
            if version >= 1 { try c.nullableString(&t.errorMessage, "error_message") }
            if version >= 5 {
                try c.int32(&t.numPartitions, "num_partitions")
                try c.int16(&t.replicationFactor, "replication_factor")
                try c.nullableArray(&t.configs, "configs", make: { Config() }) { (c: inout WireCoder, k: inout Config) throws(WireError) in
                    try c.string(&k.name, "name")
                    try c.nullableString(&k.value, "value")
                    try c.bool(&k.readOnly, "read_only")
                    try c.int8(&k.configSource, "config_source")
                    try c.bool(&k.isSensitive, "is_sensitive")
                    try c.taggedFields()
                }
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// DeleteTopics (20) request v0-6: topic_names [string] (v0-5) or topics [name nullable,
/// topic_id] (v6), timeout_ms. Flexible from v4.
public struct DeleteTopicsRequest: KafkaMessage {
    public struct Topic: Sendable, Equatable {
        public var name: String? = nil
        public var topicId = WireUUID.zero
        public init(name: String? = nil, topicId: WireUUID = .zero) {
            self.name = name
            self.topicId = topicId
        }
    }
    public var topics: [Topic] = []
    public var timeoutMs: Int32 = 30_000
    public init() {}

    /// The topics named (v0-5 always name them; v6 may give ids instead).
    public var topicNames: [String] {
        get { topics.compactMap(\.name) }
        set { topics = newValue.map { Topic(name: $0) } }
    }

    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 6 {
            try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
                try c.nullableString(&t.name, "name")
                try c.uuid(&t.topicId, "topic_id")
                try c.taggedFields()
            }
        } else {
            var names = topicNames
            try c.stringArray(&names, "topic_names")
            topicNames = names
        }
        try c.int32(&timeoutMs, "timeout_ms")
        try c.taggedFields()
    }
}

/// DeleteTopics response v0-6: throttle_time_ms (v1+), responses [name (nullable v6),
/// topic_id (v6), error_code, error_message (v5+)].
public struct DeleteTopicsResponse: KafkaMessage {
    public struct Result: Sendable, Equatable {
        public var name: String? = ""
        public var topicId = WireUUID.zero
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public init(name: String? = "", errorCode: Int16 = 0) {
            self.name = name
            self.errorCode = errorCode
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var responses: [Result] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 1 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.array(&responses, "responses", make: { Result() }) { (c: inout WireCoder, r: inout Result) throws(WireError) in
            try c.nullableString(&r.name, "name")
            if version < 6 && r.name == nil { throw .invalid("name: null before v6") }
            if version >= 6 { try c.uuid(&r.topicId, "topic_id") }
            try c.int16(&r.errorCode, "error_code")
            if version >= 5 { try c.nullableString(&r.errorMessage, "error_message") }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// DescribeConfigs (32) request v0-4: resources [resource_type i8 (2 topic, 4 broker, 32
/// group), resource_name, configuration_keys nullable [string]], include_synonyms bool
/// (v1+), include_documentation (v3+). Flexible from v4.
public struct DescribeConfigsRequest: KafkaMessage {
    public struct Resource: Sendable, Hashable {
        public var resourceType: Int8 = 2
        public var resourceName = ""
        public var configurationKeys: [String]? = nil
        public init() {}
    }
    public var resources: [Resource] = []
    public var includeSynonyms = false
    public var includeDocumentation = false
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.array(&resources, "resources", make: { Resource() }) { (c: inout WireCoder, r: inout Resource) throws(WireError) in
            try c.int8(&r.resourceType, "resource_type")
            try c.string(&r.resourceName, "resource_name")
            try c.nullableArray(&r.configurationKeys, "configuration_keys", make: { "" }) {
                (c: inout WireCoder, k: inout String) throws(WireError) in try c.string(&k, "key")
            }
            try c.taggedFields()
        }
        if version >= 1 { try c.bool(&includeSynonyms, "include_synonyms") }
        if version >= 3 { try c.bool(&includeDocumentation, "include_documentation") }
        try c.taggedFields()
    }
}

/// DescribeConfigs response v0-4: throttle_time_ms, results [error_code, error_message,
/// resource_type, resource_name, configs [name, value nullable, read_only, is_default (v0) |
/// config_source i8 (v1+), is_sensitive, synonyms (v1+) [name, value, source i8],
/// config_type i8 (v3+), documentation nullable (v3+)]].
public struct DescribeConfigsResponse: KafkaMessage {
    /// Kafka's ConfigSource values.
    public enum Source: Int8, Sendable {
        case unknown = 0, dynamicTopic = 1, dynamicBroker = 2, dynamicDefaultBroker = 3, staticBroker = 4, defaultConfig = 5
        case dynamicBrokerLogger = 6, clientMetric = 7, dynamicGroup = 8
    }
    public struct Config: Sendable, Equatable {
        public var name = ""
        public var value: String? = nil
        public var readOnly = false
        public var isDefault = false
        public var configSource: Int8 = Source.defaultConfig.rawValue
        public var isSensitive = false
        public var synonyms: [Synonym] = []
        public var configType: Int8 = 0
        public var documentation: String? = nil
        public init(name: String = "", value: String? = nil, isDefault: Bool = false) {
            self.name = name
            self.value = value
            self.isDefault = isDefault
            self.configSource = isDefault ? Source.defaultConfig.rawValue : Source.dynamicTopic.rawValue
        }
    }
    public struct Synonym: Sendable, Equatable {
        public var name = ""
        public var value: String? = nil
        public var source: Int8 = 0
        public init(name: String = "", value: String? = nil, source: Int8 = 0) {
            self.name = name
            self.value = value
            self.source = source
        }
    }
    public struct Result: Sendable, Equatable {
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public var resourceType: Int8 = 2
        public var resourceName = ""
        public var configs: [Config] = []
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var results: [Result] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.array(&results, "results", make: { Result() }) { (c: inout WireCoder, r: inout Result) throws(WireError) in
            try c.int16(&r.errorCode, "error_code")
            try c.nullableString(&r.errorMessage, "error_message")
            try c.int8(&r.resourceType, "resource_type")
            try c.string(&r.resourceName, "resource_name")
            try c.array(&r.configs, "configs", make: { Config() }) { (c: inout WireCoder, k: inout Config) throws(WireError) in
                try c.string(&k.name, "name")
                try c.nullableString(&k.value, "value")
                try c.bool(&k.readOnly, "read_only")
                if version == 0 {
                    try c.bool(&k.isDefault, "is_default")
                } else {
                    try c.int8(&k.configSource, "config_source")
                }
                try c.bool(&k.isSensitive, "is_sensitive")
                if version >= 1 {
                    try c.array(&k.synonyms, "synonyms", make: { Synonym() }) { (c: inout WireCoder, s: inout Synonym) throws(WireError) in
                        try c.string(&s.name, "name")
                        try c.nullableString(&s.value, "value")
                        try c.int8(&s.source, "source")
                        try c.taggedFields()
                    }
                }
                if version >= 3 {
                    try c.int8(&k.configType, "config_type")
                    try c.nullableString(&k.documentation, "documentation")
                }
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

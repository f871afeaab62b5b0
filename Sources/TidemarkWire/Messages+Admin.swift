// CreateTopics, DeleteTopics, DescribeConfigs.

/// CreateTopics (19) request: topics [name, num_partitions i32, replication_factor i16,
/// assignments [partition_index, broker_ids [i32]], configs [name, value nullable]],
/// timeout_ms i32, validate_only bool (v1+).
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
            }
            try c.array(&t.configs, "configs", make: { Config() }) { (c: inout WireCoder, k: inout Config) throws(WireError) in
                try c.string(&k.name, "name")
                try c.nullableString(&k.value, "value")
            }
        }
        try c.int32(&timeoutMs, "timeout_ms")
        if version >= 1 { try c.bool(&validateOnly, "validate_only") }
    }
}

/// CreateTopics response: throttle_time_ms (v2+), topics [name, error_code, error_message (v1+)].
public struct CreateTopicsResponse: KafkaMessage {
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
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
            try c.int16(&t.errorCode, "error_code")
            if version >= 1 { try c.nullableString(&t.errorMessage, "error_message") }
        }
    }
}

/// DeleteTopics (20) request v0-1: topic_names [string], timeout_ms.
public struct DeleteTopicsRequest: KafkaMessage {
    public var topicNames: [String] = []
    public var timeoutMs: Int32 = 30_000
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.stringArray(&topicNames, "topic_names")
        try c.int32(&timeoutMs, "timeout_ms")
    }
}

/// DeleteTopics response: throttle_time_ms (v1+), responses [name, error_code].
public struct DeleteTopicsResponse: KafkaMessage {
    public struct Result: Sendable, Equatable {
        public var name = ""
        public var errorCode: Int16 = 0
        public init(name: String = "", errorCode: Int16 = 0) {
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
            try c.string(&r.name, "name")
            try c.int16(&r.errorCode, "error_code")
        }
    }
}

/// DescribeConfigs (32) request: resources [resource_type i8 (2 = topic, 4 = broker),
/// resource_name, configuration_keys nullable [string]], include_synonyms bool (v1+).
public struct DescribeConfigsRequest: KafkaMessage {
    public struct Resource: Sendable, Equatable {
        public var resourceType: Int8 = 2
        public var resourceName = ""
        public var configurationKeys: [String]? = nil
        public init() {}
    }
    public var resources: [Resource] = []
    public var includeSynonyms = false
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.array(&resources, "resources", make: { Resource() }) { (c: inout WireCoder, r: inout Resource) throws(WireError) in
            try c.int8(&r.resourceType, "resource_type")
            try c.string(&r.resourceName, "resource_name")
            try c.nullableArray(&r.configurationKeys, "configuration_keys", make: { "" }) {
                (c: inout WireCoder, k: inout String) throws(WireError) in try c.string(&k, "key")
            }
        }
        if version >= 1 { try c.bool(&includeSynonyms, "include_synonyms") }
    }
}

/// DescribeConfigs response: throttle_time_ms, results [error_code, error_message,
/// resource_type, resource_name, configs [name, value nullable, read_only, is_default (v0) |
/// config_source i8 (v1+), is_sensitive, synonyms (v1+) [name, value, source i8]]].
public struct DescribeConfigsResponse: KafkaMessage {
    public struct Config: Sendable, Equatable {
        public var name = ""
        public var value: String? = nil
        public var readOnly = false
        public var isDefault = false
        public var configSource: Int8 = 5  // DEFAULT_CONFIG
        public var isSensitive = false
        public var synonyms: [Synonym] = []
        public init(name: String = "", value: String? = nil, isDefault: Bool = false) {
            self.name = name
            self.value = value
            self.isDefault = isDefault
            self.configSource = isDefault ? 5 : 1  // 1 = TOPIC_CONFIG
        }
    }
    public struct Synonym: Sendable, Equatable {
        public var name = ""
        public var value: String? = nil
        public var source: Int8 = 0
        public init() {}
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
                    }
                }
            }
        }
    }
}

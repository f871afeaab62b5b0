// ApiVersions, Metadata, Produce, Fetch, ListOffsets, InitProducerId. Field lists follow
// apache/kafka's message schemas (clients/src/main/resources/common/message/*.json).

/// ApiVersions (18) v0-4. Request v0-2: empty; v3+ (flexible): client_software_name,
/// client_software_version (compact strings), tagged fields.
public struct ApiVersionsRequest: KafkaMessage {
    public var clientSoftwareName = ""
    public var clientSoftwareVersion = ""
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 3 {
            try c.string(&clientSoftwareName, "client_software_name")
            try c.string(&clientSoftwareVersion, "client_software_version")
        }
        try c.taggedFields()
    }
}

/// ApiVersions response: error_code i16, api_keys [api_key i16, min_version i16,
/// max_version i16 (+tags v3)], throttle_time_ms i32 (v1+), tags (v3). Its header is always v0.
public struct ApiVersionsResponse: KafkaMessage {
    public struct Key: Sendable, Equatable {
        public var apiKey: Int16 = 0
        public var minVersion: Int16 = 0
        public var maxVersion: Int16 = 0
        public init(apiKey: Int16 = 0, minVersion: Int16 = 0, maxVersion: Int16 = 0) {
            self.apiKey = apiKey
            self.minVersion = minVersion
            self.maxVersion = maxVersion
        }
    }
    public var errorCode: Int16 = 0
    public var apiKeys: [Key] = []
    public var throttleTimeMs: Int32 = 0
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int16(&errorCode, "error_code")
        try c.array(&apiKeys, "api_keys", make: { Key() }) { (c: inout WireCoder, k: inout Key) throws(WireError) in
            try c.int16(&k.apiKey)
            try c.int16(&k.minVersion)
            try c.int16(&k.maxVersion)
            try c.taggedFields()
        }
        if version >= 1 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.taggedFields()
    }
}

/// Metadata (3) request v0-13: topics [topic_id uuid (v10+), name (nullable v10+)]
/// (v0: empty = all; v1+: null = all), allow_auto_topic_creation bool (v4+),
/// include_cluster_authorized_operations (v8-10), include_topic_authorized_operations (v8+).
/// Flexible from v9. A topic asked for by id (v12+) has a null name.
public struct MetadataRequest: KafkaMessage {
    public struct Topic: Sendable, Equatable {
        public var topicId = WireUUID.zero
        public var name: String? = nil
        public init(topicId: WireUUID = .zero, name: String? = nil) {
            self.topicId = topicId
            self.name = name
        }
    }
    public var topicList: [Topic]? = nil
    public var allowAutoTopicCreation = true
    public var includeClusterAuthorizedOperations = false
    public var includeTopicAuthorizedOperations = false
    public init() {}

    /// The topics asked for by name (nil: all topics).
    public var topics: [String]? {
        get { topicList.map { $0.compactMap(\.name) } }
        set { topicList = newValue.map { $0.map { Topic(name: $0) } } }
    }

    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version == 0 {
            var list = topicList ?? []
            try c.array(&list, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
                try c.nullableString(&t.name, "name")
            }
            topicList = c.isReading && list.isEmpty ? nil : list
        } else {
            try c.nullableArray(&topicList, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
                if version >= 10 { try c.uuid(&t.topicId, "topic_id") }
                try c.nullableString(&t.name, "name")
                if version < 10 && t.name == nil { throw .invalid("name: null before v10") }
                try c.taggedFields()
            }
        }
        if version >= 4 { try c.bool(&allowAutoTopicCreation, "allow_auto_topic_creation") }
        if version >= 8 && version <= 10 { try c.bool(&includeClusterAuthorizedOperations, "include_cluster_authorized_operations") }
        if version >= 8 { try c.bool(&includeTopicAuthorizedOperations, "include_topic_authorized_operations") }
        try c.taggedFields()
    }
}

/// Metadata response v0-13: throttle_time_ms (v3+), brokers [node_id, host, port, rack (v1+)],
/// cluster_id (v2+), controller_id (v1+), topics [error_code, name (nullable v12+), topic_id
/// (v10+), is_internal (v1+), partitions [error_code, partition_index, leader_id, leader_epoch
/// (v7+), replica_nodes, isr_nodes, offline_replicas (v5+)], topic_authorized_operations
/// (v8+)], cluster_authorized_operations (v8-10), error_code (v13).
public struct MetadataResponse: KafkaMessage {
    public struct Broker: Sendable, Equatable {
        public var nodeId: Int32 = 0
        public var host = ""
        public var port: Int32 = 0
        public var rack: String? = nil
        public init(nodeId: Int32 = 0, host: String = "", port: Int32 = 0) {
            self.nodeId = nodeId
            self.host = host
            self.port = port
        }
    }
    public struct Partition: Sendable, Equatable {
        public var errorCode: Int16 = 0
        public var partitionIndex: Int32 = 0
        public var leaderId: Int32 = 0
        public var leaderEpoch: Int32 = -1
        public var replicaNodes: [Int32] = []
        public var isrNodes: [Int32] = []
        public var offlineReplicas: [Int32] = []
        public init() {}
    }
    public struct Topic: Sendable, Equatable {
        public var errorCode: Int16 = 0
        public var name: String? = ""
        public var topicId = WireUUID.zero
        public var isInternal = false
        public var partitions: [Partition] = []
        public var topicAuthorizedOperations: Int32 = Int32.min
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var brokers: [Broker] = []
    public var clusterId: String? = nil
    public var controllerId: Int32 = -1
    public var topics: [Topic] = []
    public var clusterAuthorizedOperations: Int32 = Int32.min
    public var errorCode: Int16 = 0
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 3 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.array(&brokers, "brokers", make: { Broker() }) { (c: inout WireCoder, b: inout Broker) throws(WireError) in
            try c.int32(&b.nodeId, "node_id")
            try c.string(&b.host, "host")
            try c.int32(&b.port, "port")
            if version >= 1 { try c.nullableString(&b.rack, "rack") }
            try c.taggedFields()
        }
        if version >= 2 { try c.nullableString(&clusterId, "cluster_id") }
        if version >= 1 { try c.int32(&controllerId, "controller_id") }
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.int16(&t.errorCode, "error_code")
            try c.nullableString(&t.name, "name")
            if version < 12 && t.name == nil { throw .invalid("name: null before v12") }
            if version >= 10 { try c.uuid(&t.topicId, "topic_id") }
            if version >= 1 { try c.bool(&t.isInternal, "is_internal") }
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int16(&p.errorCode, "error_code")
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int32(&p.leaderId, "leader_id")
                if version >= 7 { try c.int32(&p.leaderEpoch, "leader_epoch") }
                try c.int32Array(&p.replicaNodes, "replica_nodes")
                try c.int32Array(&p.isrNodes, "isr_nodes")
                if version >= 5 { try c.int32Array(&p.offlineReplicas, "offline_replicas") }
                try c.taggedFields()
            }
            if version >= 8 { try c.int32(&t.topicAuthorizedOperations, "topic_authorized_operations") }
            try c.taggedFields()
        }
        if version >= 8 && version <= 10 { try c.int32(&clusterAuthorizedOperations, "cluster_authorized_operations") }
        if version >= 13 { try c.int16(&errorCode, "error_code") }
        try c.taggedFields()
    }
}

/// Produce (0) request v3-13: transactional_id nullable string, acks i16, timeout_ms i32,
/// topic_data [name (v3-12) | topic_id uuid (v13), partition_data [index i32, records nullable
/// bytes]]. Flexible from v9.
public struct ProduceRequest: KafkaMessage {
    public struct PartitionData: Sendable {
        public var index: Int32 = 0
        public var records: RecordsData? = nil
        public init() {}
    }
    public struct TopicData: Sendable {
        public var name = ""
        public var topicId = WireUUID.zero
        public var partitions: [PartitionData] = []
        public init() {}
    }
    public var transactionalId: String? = nil
    public var acks: Int16 = -1
    public var timeoutMs: Int32 = 30_000
    public var topics: [TopicData] = []
    /// Not on the wire: set as it is coded, true from v13 (topics named by id only), as Fetch's.
    public var topicsById = false
    /// Not on the wire: set as it is coded, true from v7, the first whose batches may be zstd
    /// (Kafka refuses zstd below it with UNSUPPORTED_COMPRESSION_TYPE).
    public var allowsZstd = true
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        topicsById = version >= 13
        allowsZstd = version >= 7
        try c.nullableString(&transactionalId, "transactional_id")
        try c.int16(&acks, "acks")
        try c.int32(&timeoutMs, "timeout_ms")
        try c.array(&topics, "topic_data", make: { TopicData() }) { (c: inout WireCoder, t: inout TopicData) throws(WireError) in
            if version >= 13 { try c.uuid(&t.topicId, "topic_id") } else { try c.string(&t.name, "name") }
            try c.array(&t.partitions, "partition_data", make: { PartitionData() }) {
                (c: inout WireCoder, p: inout PartitionData) throws(WireError) in
                try c.int32(&p.index, "index")
                try c.records(&p.records)
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// Produce response v3-v7: responses [name, partition_responses [index i32, error_code i16,
/// base_offset i64, log_append_time_ms i64, log_start_offset i64 (v5+)]], throttle_time_ms.
public struct ProduceResponse: KafkaMessage {
    public struct RecordError: Sendable, Equatable {
        public var batchIndex: Int32 = 0
        public var message: String? = nil
        public init(batchIndex: Int32 = 0, message: String? = nil) {
            self.batchIndex = batchIndex
            self.message = message
        }
    }
    public struct Partition: Sendable, Equatable {
        public var index: Int32 = 0
        public var errorCode: Int16 = 0
        public var baseOffset: Int64 = -1
        public var logAppendTimeMs: Int64 = -1
        public var logStartOffset: Int64 = -1
        public var recordErrors: [RecordError] = []
        public var errorMessage: String? = nil
        public init() {}
    }
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var topicId = WireUUID.zero
        public var partitions: [Partition] = []
        public init() {}
    }
    public var topics: [Topic] = []
    public var throttleTimeMs: Int32 = 0
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.array(&topics, "responses", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            if version >= 13 { try c.uuid(&t.topicId, "topic_id") } else { try c.string(&t.name, "name") }
            try c.array(&t.partitions, "partition_responses", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.index, "index")
                try c.int16(&p.errorCode, "error_code")
                try c.int64(&p.baseOffset, "base_offset")
                try c.int64(&p.logAppendTimeMs, "log_append_time_ms")
                if version >= 5 { try c.int64(&p.logStartOffset, "log_start_offset") }
                if version >= 8 {
                    try c.array(&p.recordErrors, "record_errors", make: { RecordError() }) {
                        (c: inout WireCoder, e: inout RecordError) throws(WireError) in
                        try c.int32(&e.batchIndex, "batch_index")
                        try c.nullableString(&e.message, "batch_index_error_message")
                        try c.taggedFields()
                    }
                    try c.nullableString(&p.errorMessage, "error_message")
                }
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.taggedFields()
    }
}

/// Fetch (1) request v4-18: replica_id (v4-14; tagged replica_state from v15), max_wait_ms,
/// min_bytes, max_bytes, isolation_level i8, session_id (v7+), session_epoch (v7+), topics
/// [topic (v4-12) | topic_id (v13+), partitions [partition, current_leader_epoch (v9+),
/// fetch_offset i64, last_fetched_epoch (v12+), log_start_offset i64 (v5+),
/// partition_max_bytes]], forgotten_topics_data (v7+) [topic | topic_id, partitions [i32]],
/// rack_id (v11+). Flexible from v12 (its tagged fields are skipped on read).
public struct FetchRequest: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partition: Int32 = 0
        public var currentLeaderEpoch: Int32 = -1
        public var fetchOffset: Int64 = 0
        public var lastFetchedEpoch: Int32 = -1
        public var logStartOffset: Int64 = -1
        public var partitionMaxBytes: Int32 = 1 << 20
        public init() {}
    }
    public struct Topic: Sendable, Equatable {
        public var topic = ""
        public var topicId = WireUUID.zero
        public var partitions: [Partition] = []
        public init() {}
    }
    public struct Forgotten: Sendable, Equatable {
        public var topic = ""
        public var topicId = WireUUID.zero
        public var partitions: [Int32] = []
        public init() {}
    }
    public var replicaId: Int32 = -1
    public var maxWaitMs: Int32 = 500
    public var minBytes: Int32 = 1
    public var maxBytes: Int32 = 50 << 20
    public var isolationLevel: Int8 = 0
    public var sessionId: Int32 = 0
    public var sessionEpoch: Int32 = -1
    public var topics: [Topic] = []
    public var forgotten: [Forgotten] = []
    public var rackId = ""
    /// Not on the wire: set as it is coded, true from v13, where topics are named by id only
    /// (a zero id is then an id no topic has, UNKNOWN_TOPIC_ID, not a topic named "").
    public var topicsById = false
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        topicsById = version >= 13
        if version <= 14 { try c.int32(&replicaId, "replica_id") }
        try c.int32(&maxWaitMs, "max_wait_ms")
        try c.int32(&minBytes, "min_bytes")
        try c.int32(&maxBytes, "max_bytes")
        try c.int8(&isolationLevel, "isolation_level")
        if version >= 7 {
            try c.int32(&sessionId, "session_id")
            try c.int32(&sessionEpoch, "session_epoch")
        }
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            if version >= 13 { try c.uuid(&t.topicId, "topic_id") } else { try c.string(&t.topic, "topic") }
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partition, "partition")
                if version >= 9 { try c.int32(&p.currentLeaderEpoch, "current_leader_epoch") }
                try c.int64(&p.fetchOffset, "fetch_offset")
                if version >= 12 { try c.int32(&p.lastFetchedEpoch, "last_fetched_epoch") }
                if version >= 5 { try c.int64(&p.logStartOffset, "log_start_offset") }
                try c.int32(&p.partitionMaxBytes, "partition_max_bytes")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        if version >= 7 {
            try c.array(&forgotten, "forgotten_topics_data", make: { Forgotten() }) { (c: inout WireCoder, f: inout Forgotten) throws(WireError) in
                if version >= 13 { try c.uuid(&f.topicId, "topic_id") } else { try c.string(&f.topic, "topic") }
                try c.int32Array(&f.partitions, "partitions")
                try c.taggedFields()
            }
        }
        if version >= 11 { try c.string(&rackId, "rack_id") }
        try c.taggedFields()
    }
}

/// Fetch response v4-18: throttle_time_ms, error_code (v7+), session_id (v7+), responses
/// [topic (v4-12) | topic_id (v13+), partitions [partition_index, error_code, high_watermark,
/// last_stable_offset, log_start_offset (v5+), aborted_transactions nullable [producer_id,
/// first_offset], preferred_read_replica (v11+), records nullable bytes]]. Flexible from v12
/// (the optional tagged fields, diverging epoch and the like, are not sent).
public struct FetchResponse: KafkaMessage {
    public struct Partition: Sendable {
        public var partitionIndex: Int32 = 0
        public var errorCode: Int16 = 0
        public var highWatermark: Int64 = -1
        public var lastStableOffset: Int64 = -1
        public var logStartOffset: Int64 = -1
        public var abortedTransactions: [(producerId: Int64, firstOffset: Int64)]? = nil
        public var preferredReadReplica: Int32 = -1
        public var records: RecordsData? = nil
        public init() {}
    }
    public struct Topic: Sendable {
        public var topic = ""
        public var topicId = WireUUID.zero
        public var partitions: [Partition] = []
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var sessionId: Int32 = 0
    public var topics: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        if version >= 7 {
            try c.int16(&errorCode, "error_code")
            try c.int32(&sessionId, "session_id")
        }
        try c.array(&topics, "responses", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            if version >= 13 { try c.uuid(&t.topicId, "topic_id") } else { try c.string(&t.topic, "topic") }
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int16(&p.errorCode, "error_code")
                try c.int64(&p.highWatermark, "high_watermark")
                try c.int64(&p.lastStableOffset, "last_stable_offset")
                if version >= 5 { try c.int64(&p.logStartOffset, "log_start_offset") }
                try c.nullableArray(&p.abortedTransactions, "aborted_transactions", make: { (0, 0) }) {
                    (c: inout WireCoder, a: inout (producerId: Int64, firstOffset: Int64)) throws(WireError) in
                    try c.int64(&a.producerId, "producer_id")
                    try c.int64(&a.firstOffset, "first_offset")
                    try c.taggedFields()
                }
                if version >= 11 { try c.int32(&p.preferredReadReplica, "preferred_read_replica") }
                try c.records(&p.records)
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// ListOffsets (2) request v0-10: replica_id, isolation_level i8 (v2+), topics [name,
/// partitions [partition_index, current_leader_epoch (v4+), timestamp i64 (-1 latest,
/// -2 earliest, -3 max timestamp), max_num_offsets i32 (v0 only)]], timeout_ms (v10+).
/// Flexible from v6.
public struct ListOffsetsRequest: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var currentLeaderEpoch: Int32 = -1
        public var timestamp: Int64 = -1
        public var maxNumOffsets: Int32 = 1
        public init() {}
    }
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitions: [Partition] = []
        public init() {}
    }
    public var replicaId: Int32 = -1
    public var isolationLevel: Int8 = 0
    public var topics: [Topic] = []
    public var timeoutMs: Int32 = 0
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&replicaId, "replica_id")
        if version >= 2 { try c.int8(&isolationLevel, "isolation_level") }
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                if version >= 4 { try c.int32(&p.currentLeaderEpoch, "current_leader_epoch") }
                try c.int64(&p.timestamp, "timestamp")
                if version == 0 { try c.int32(&p.maxNumOffsets, "max_num_offsets") }
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        if version >= 10 { try c.int32(&timeoutMs, "timeout_ms") }
        try c.taggedFields()
    }
}

/// ListOffsets response v0-10: throttle_time_ms (v2+), topics [name, partitions
/// [partition_index, error_code, old_style_offsets [i64] (v0) | timestamp i64, offset i64
/// (v1+), leader_epoch (v4+)]]. Flexible from v6.
public struct ListOffsetsResponse: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var errorCode: Int16 = 0
        public var oldStyleOffsets: [Int64] = []
        public var timestamp: Int64 = -1
        public var offset: Int64 = -1
        public var leaderEpoch: Int32 = -1
        public init() {}
    }
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitions: [Partition] = []
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var topics: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 2 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int16(&p.errorCode, "error_code")
                if version == 0 {
                    try c.array(&p.oldStyleOffsets, "old_style_offsets", counted: false, make: { 0 }) { (c: inout WireCoder, o: inout Int64) throws(WireError) in
                        try c.int64(&o, "offset")
                    }
                } else {
                    try c.int64(&p.timestamp, "timestamp")
                    try c.int64(&p.offset, "offset")
                }
                if version >= 4 { try c.int32(&p.leaderEpoch, "leader_epoch") }
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// InitProducerId (22) request v0-5: transactional_id nullable string, transaction_timeout_ms
/// i32, producer_id i64 (v3+), producer_epoch i16 (v3+: a producer asking to bump its epoch).
/// Flexible from v2.
public struct InitProducerIdRequest: KafkaMessage {
    public var transactionalId: String? = nil
    public var transactionTimeoutMs: Int32 = 60_000
    public var producerId: Int64 = -1
    public var producerEpoch: Int16 = -1
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.nullableString(&transactionalId, "transactional_id")
        try c.int32(&transactionTimeoutMs, "transaction_timeout_ms")
        if version >= 3 {
            try c.int64(&producerId, "producer_id")
            try c.int16(&producerEpoch, "producer_epoch")
        }
        try c.taggedFields()
    }
}

/// InitProducerId response v0-5: throttle_time_ms, error_code, producer_id i64, producer_epoch i16.
public struct InitProducerIdResponse: KafkaMessage {
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var producerId: Int64 = -1
    public var producerEpoch: Int16 = -1
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.int16(&errorCode, "error_code")
        try c.int64(&producerId, "producer_id")
        try c.int16(&producerEpoch, "producer_epoch")
        try c.taggedFields()
    }
}

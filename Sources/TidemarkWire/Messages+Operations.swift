// The admin APIs operators' tools call: DeleteRecords, OffsetForLeaderEpoch, AlterConfigs,
// IncrementalAlterConfigs, DescribeLogDirs, CreatePartitions, OffsetDelete, DescribeCluster,
// DescribeProducers, ListTransactions. Every version Kafka 4.1 serves.

/// DeleteRecords (21) request v0-2: topics [name, partitions [partition_index, offset]],
/// timeout_ms. Flexible from v2.
public struct DeleteRecordsRequest: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var offset: Int64 = 0
        public init(partitionIndex: Int32 = 0, offset: Int64 = 0) {
            self.partitionIndex = partitionIndex
            self.offset = offset
        }
    }
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitions: [Partition] = []
        public init() {}
    }
    public var topics: [Topic] = []
    public var timeoutMs: Int32 = 30_000
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int64(&p.offset, "offset")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.int32(&timeoutMs, "timeout_ms")
        try c.taggedFields()
    }
}

/// DeleteRecords response v0-2: throttle_time_ms, topics [name, partitions [partition_index,
/// low_watermark, error_code]].
public struct DeleteRecordsResponse: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var lowWatermark: Int64 = -1
        public var errorCode: Int16 = 0
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
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int64(&p.lowWatermark, "low_watermark")
                try c.int16(&p.errorCode, "error_code")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// OffsetForLeaderEpoch (23) request v2-4: replica_id (v3+), topics [topic, partitions
/// [partition, current_leader_epoch, leader_epoch]]. Flexible from v4.
public struct OffsetForLeaderEpochRequest: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partition: Int32 = 0
        public var currentLeaderEpoch: Int32 = -1
        public var leaderEpoch: Int32 = 0
        public init() {}
    }
    public struct Topic: Sendable, Equatable {
        public var topic = ""
        public var partitions: [Partition] = []
        public init() {}
    }
    public var replicaId: Int32 = -2
    public var topics: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 3 { try c.int32(&replicaId, "replica_id") }
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.topic, "topic")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partition, "partition")
                try c.int32(&p.currentLeaderEpoch, "current_leader_epoch")
                try c.int32(&p.leaderEpoch, "leader_epoch")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// OffsetForLeaderEpoch response v2-4: throttle_time_ms, topics [topic, partitions
/// [error_code, partition, leader_epoch, end_offset]].
public struct OffsetForLeaderEpochResponse: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var errorCode: Int16 = 0
        public var partition: Int32 = 0
        public var leaderEpoch: Int32 = -1
        public var endOffset: Int64 = -1
        public init() {}
    }
    public struct Topic: Sendable, Equatable {
        public var topic = ""
        public var partitions: [Partition] = []
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var topics: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.topic, "topic")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int16(&p.errorCode, "error_code")
                try c.int32(&p.partition, "partition")
                try c.int32(&p.leaderEpoch, "leader_epoch")
                try c.int64(&p.endOffset, "end_offset")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// AlterConfigs (33) request v0-2 and IncrementalAlterConfigs (44) request v0-1: resources
/// [resource_type, resource_name, configs [name, config_operation i8 (incremental: 0 set,
/// 1 delete, 2 append, 3 subtract), value nullable]], validate_only. AlterConfigs is flexible
/// from v2, IncrementalAlterConfigs from v1.
public struct AlterConfigsRequest: KafkaMessage {
    public struct Config: Sendable, Equatable {
        public var name = ""
        public var operation: Int8 = 0
        public var value: String? = nil
        public init(name: String = "", operation: Int8 = 0, value: String? = nil) {
            self.name = name
            self.operation = operation
            self.value = value
        }
    }
    public struct Resource: Sendable, Equatable {
        public var resourceType: Int8 = 2
        public var resourceName = ""
        public var configs: [Config] = []
        public init() {}
    }
    /// IncrementalAlterConfigs (configs carry an operation) rather than AlterConfigs.
    public var incremental = false
    public var resources: [Resource] = []
    public var validateOnly = false
    public init() {}
    public init(incremental: Bool) { self.incremental = incremental }
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        let incremental = self.incremental
        try c.array(&resources, "resources", make: { Resource() }) { (c: inout WireCoder, r: inout Resource) throws(WireError) in
            try c.int8(&r.resourceType, "resource_type")
            try c.string(&r.resourceName, "resource_name")
            try c.array(&r.configs, "configs", make: { Config() }) { (c: inout WireCoder, k: inout Config) throws(WireError) in
                try c.string(&k.name, "name")
                if incremental { try c.int8(&k.operation, "config_operation") }
                try c.nullableString(&k.value, "value")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.bool(&validateOnly, "validate_only")
        try c.taggedFields()
    }
}

/// AlterConfigs and IncrementalAlterConfigs responses: throttle_time_ms, responses
/// [error_code, error_message, resource_type, resource_name].
public struct AlterConfigsResponse: KafkaMessage {
    public struct Result: Sendable, Equatable {
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public var resourceType: Int8 = 2
        public var resourceName = ""
        public init(errorCode: Int16 = 0, errorMessage: String? = nil, resourceType: Int8 = 2, resourceName: String = "") {
            self.errorCode = errorCode
            self.errorMessage = errorMessage
            self.resourceType = resourceType
            self.resourceName = resourceName
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var responses: [Result] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.array(&responses, "responses", make: { Result() }) { (c: inout WireCoder, r: inout Result) throws(WireError) in
            try c.int16(&r.errorCode, "error_code")
            try c.nullableString(&r.errorMessage, "error_message")
            try c.int8(&r.resourceType, "resource_type")
            try c.string(&r.resourceName, "resource_name")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// DescribeLogDirs (35) request v1-4: topics nullable [topic, partitions [i32]] (null: all).
/// Flexible from v2.
public struct DescribeLogDirsRequest: KafkaMessage {
    public struct Topic: Sendable, Equatable {
        public var topic = ""
        public var partitions: [Int32] = []
        public init() {}
    }
    public var topics: [Topic]? = nil
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.nullableArray(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.topic, "topic")
            try c.int32Array(&t.partitions, "partitions")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// DescribeLogDirs response v1-4: throttle_time_ms, error_code (v3+), results [error_code,
/// log_dir, topics [name, partitions [partition_index, partition_size, offset_lag,
/// is_future_key]], total_bytes (v4+), usable_bytes (v4+)].
public struct DescribeLogDirsResponse: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var partitionSize: Int64 = 0
        public var offsetLag: Int64 = 0
        public var isFutureKey = false
        public init() {}
    }
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitions: [Partition] = []
        public init() {}
    }
    public struct Result: Sendable, Equatable {
        public var errorCode: Int16 = 0
        public var logDir = ""
        public var topics: [Topic] = []
        public var totalBytes: Int64 = -1
        public var usableBytes: Int64 = -1
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var results: [Result] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        if version >= 3 { try c.int16(&errorCode, "error_code") }
        try c.array(&results, "results", make: { Result() }) { (c: inout WireCoder, r: inout Result) throws(WireError) in
            try c.int16(&r.errorCode, "error_code")
            try c.string(&r.logDir, "log_dir")
            try c.array(&r.topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
                try c.string(&t.name, "name")
                try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                    try c.int32(&p.partitionIndex, "partition_index")
                    try c.int64(&p.partitionSize, "partition_size")
                    try c.int64(&p.offsetLag, "offset_lag")
                    try c.bool(&p.isFutureKey, "is_future_key")
                    try c.taggedFields()
                }
                try c.taggedFields()
            }
            if version >= 4 {
                try c.int64(&r.totalBytes, "total_bytes")
                try c.int64(&r.usableBytes, "usable_bytes")
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// CreatePartitions (37) request v0-3: topics [name, count (the new total), assignments
/// nullable [broker_ids [i32]]], timeout_ms, validate_only. Flexible from v2.
public struct CreatePartitionsRequest: KafkaMessage {
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var count: Int32 = 0
        public var assignments: [[Int32]]? = nil
        public init(name: String = "", count: Int32 = 0) {
            self.name = name
            self.count = count
        }
    }
    public var topics: [Topic] = []
    public var timeoutMs: Int32 = 30_000
    public var validateOnly = false
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.int32(&t.count, "count")
            try c.nullableArray(&t.assignments, "assignments", make: { [] }) { (c: inout WireCoder, a: inout [Int32]) throws(WireError) in
                try c.int32Array(&a, "broker_ids")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.int32(&timeoutMs, "timeout_ms")
        try c.bool(&validateOnly, "validate_only")
        try c.taggedFields()
    }
}

/// CreatePartitions response v0-3: throttle_time_ms, results [name, error_code, error_message].
public struct CreatePartitionsResponse: KafkaMessage {
    public struct Result: Sendable, Equatable {
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
    public var results: [Result] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.array(&results, "results", make: { Result() }) { (c: inout WireCoder, r: inout Result) throws(WireError) in
            try c.string(&r.name, "name")
            try c.int16(&r.errorCode, "error_code")
            try c.nullableString(&r.errorMessage, "error_message")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// OffsetDelete (47) request v0 (never flexible): group_id, topics [name, partitions
/// [partition_index]].
public struct OffsetDeleteRequest: KafkaMessage {
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitions: [Int32] = []
        public init(name: String = "", partitions: [Int32] = []) {
            self.name = name
            self.partitions = partitions
        }
    }
    public var groupId = ""
    public var topics: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.array(&t.partitions, "partitions", counted: false, make: { 0 }) { (c: inout WireCoder, p: inout Int32) throws(WireError) in
                try c.int32(&p, "partition_index")
            }
        }
    }
}

/// OffsetDelete response v0: error_code, throttle_time_ms, topics [name, partitions
/// [partition_index, error_code]].
public struct OffsetDeleteResponse: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var errorCode: Int16 = 0
        public init(partitionIndex: Int32 = 0, errorCode: Int16 = 0) {
            self.partitionIndex = partitionIndex
            self.errorCode = errorCode
        }
    }
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitions: [Partition] = []
        public init(name: String = "", partitions: [Partition] = []) {
            self.name = name
            self.partitions = partitions
        }
    }
    public var errorCode: Int16 = 0
    public var throttleTimeMs: Int32 = 0
    public var topics: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int16(&errorCode, "error_code")
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int16(&p.errorCode, "error_code")
            }
        }
    }
}

/// DescribeCluster (60) request v0-2 (flexible from v0): include_cluster_authorized_operations,
/// endpoint_type i8 (v1+; 1 brokers), include_fenced_brokers (v2).
public struct DescribeClusterRequest: KafkaMessage {
    public var includeClusterAuthorizedOperations = false
    public var endpointType: Int8 = 1
    public var includeFencedBrokers = false
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.bool(&includeClusterAuthorizedOperations, "include_cluster_authorized_operations")
        if version >= 1 { try c.int8(&endpointType, "endpoint_type") }
        if version >= 2 { try c.bool(&includeFencedBrokers, "include_fenced_brokers") }
        try c.taggedFields()
    }
}

/// DescribeCluster response v0-2: throttle_time_ms, error_code, error_message, endpoint_type
/// (v1+), cluster_id, controller_id, brokers [broker_id, host, port, rack, is_fenced (v2)],
/// cluster_authorized_operations.
public struct DescribeClusterResponse: KafkaMessage {
    public struct Broker: Sendable, Equatable {
        public var brokerId: Int32 = 0
        public var host = ""
        public var port: Int32 = 0
        public var rack: String? = nil
        public var isFenced = false
        public init(brokerId: Int32 = 0, host: String = "", port: Int32 = 0) {
            self.brokerId = brokerId
            self.host = host
            self.port = port
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var errorMessage: String? = nil
    public var endpointType: Int8 = 1
    public var clusterId = ""
    public var controllerId: Int32 = -1
    public var brokers: [Broker] = []
    public var clusterAuthorizedOperations: Int32 = Int32.min
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.int16(&errorCode, "error_code")
        try c.nullableString(&errorMessage, "error_message")
        if version >= 1 { try c.int8(&endpointType, "endpoint_type") }
        try c.string(&clusterId, "cluster_id")
        try c.int32(&controllerId, "controller_id")
        try c.array(&brokers, "brokers", make: { Broker() }) { (c: inout WireCoder, b: inout Broker) throws(WireError) in
            try c.int32(&b.brokerId, "broker_id")
            try c.string(&b.host, "host")
            try c.int32(&b.port, "port")
            try c.nullableString(&b.rack, "rack")
            if version >= 2 { try c.bool(&b.isFenced, "is_fenced") }
            try c.taggedFields()
        }
        try c.int32(&clusterAuthorizedOperations, "cluster_authorized_operations")
        try c.taggedFields()
    }
}

/// DescribeProducers (61) request v0 (flexible): topics [name, partition_indexes [i32]].
public struct DescribeProducersRequest: KafkaMessage {
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitionIndexes: [Int32] = []
        public init() {}
    }
    public var topics: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.int32Array(&t.partitionIndexes, "partition_indexes")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// DescribeProducers response v0: throttle_time_ms, topics [name, partitions [partition_index,
/// error_code, error_message, active_producers [producer_id, producer_epoch i32,
/// last_sequence, last_timestamp, coordinator_epoch, current_txn_start_offset]]].
public struct DescribeProducersResponse: KafkaMessage {
    public struct Producer: Sendable, Equatable {
        public var producerId: Int64 = 0
        public var producerEpoch: Int32 = 0
        public var lastSequence: Int32 = -1
        public var lastTimestamp: Int64 = -1
        public var coordinatorEpoch: Int32 = -1
        public var currentTxnStartOffset: Int64 = -1
        public init() {}
    }
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public var activeProducers: [Producer] = []
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
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int16(&p.errorCode, "error_code")
                try c.nullableString(&p.errorMessage, "error_message")
                try c.array(&p.activeProducers, "active_producers", make: { Producer() }) {
                    (c: inout WireCoder, a: inout Producer) throws(WireError) in
                    try c.int64(&a.producerId, "producer_id")
                    try c.int32(&a.producerEpoch, "producer_epoch")
                    try c.int32(&a.lastSequence, "last_sequence")
                    try c.int64(&a.lastTimestamp, "last_timestamp")
                    try c.int32(&a.coordinatorEpoch, "coordinator_epoch")
                    try c.int64(&a.currentTxnStartOffset, "current_txn_start_offset")
                    try c.taggedFields()
                }
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// ListTransactions (66) request v0-2 (flexible): state_filters [string], producer_id_filters
/// [i64], duration_filter i64 (v1+, -1: any), transactional_id_pattern nullable string (v2+, a
/// regular expression; null: any).
public struct ListTransactionsRequest: KafkaMessage {
    public var stateFilters: [String] = []
    public var producerIdFilters: [Int64] = []
    public var durationFilter: Int64 = -1
    public var transactionalIdPattern: String? = nil
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.stringArray(&stateFilters, "state_filters")
        try c.array(&producerIdFilters, "producer_id_filters", make: { 0 }) { (c: inout WireCoder, id: inout Int64) throws(WireError) in
            try c.int64(&id, "producer_id")
        }
        if version >= 1 { try c.int64(&durationFilter, "duration_filter") }
        if version >= 2 { try c.nullableString(&transactionalIdPattern, "transactional_id_pattern") }
        try c.taggedFields()
    }
}

/// ListTransactions response v0-2: throttle_time_ms, error_code, unknown_state_filters
/// [string], transaction_states [transactional_id, producer_id i64, transaction_state].
public struct ListTransactionsResponse: KafkaMessage {
    public struct Transaction: Sendable, Equatable {
        public var transactionalId = ""
        public var producerId: Int64 = 0
        public var transactionState = ""
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var unknownStateFilters: [String] = []
    public var transactionStates: [Transaction] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.int16(&errorCode, "error_code")
        try c.stringArray(&unknownStateFilters, "unknown_state_filters")
        try c.array(&transactionStates, "transaction_states", make: { Transaction() }) {
            (c: inout WireCoder, t: inout Transaction) throws(WireError) in
            try c.string(&t.transactionalId, "transactional_id")
            try c.int64(&t.producerId, "producer_id")
            try c.string(&t.transactionState, "transaction_state")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

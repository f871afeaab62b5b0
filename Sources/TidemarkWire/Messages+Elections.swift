// Where partitions live: ElectLeaders (43), ListPartitionReassignments (46) and
// AlterPartitionReassignments (45). On one node every partition's only replica is node 0.

/// ElectLeaders (43) request v0-2 (flexible from v2): election_type i8 (v1+; 0 preferred,
/// 1 unclean), topic_partitions nullable [topic, partitions [i32]] (null: every partition),
/// timeout_ms i32.
public struct ElectLeadersRequest: KafkaMessage {
    public struct Topic: Sendable, Equatable {
        public var topic = ""
        public var partitions: [Int32] = []
        public init(topic: String = "", partitions: [Int32] = []) {
            self.topic = topic
            self.partitions = partitions
        }
    }
    public var electionType: Int8 = 0
    public var topicPartitions: [Topic]? = nil
    public var timeoutMs: Int32 = 60_000
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 1 { try c.int8(&electionType, "election_type") }
        try c.nullableArray(&topicPartitions, "topic_partitions", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.topic, "topic")
            try c.int32Array(&t.partitions, "partitions")
            try c.taggedFields()
        }
        try c.int32(&timeoutMs, "timeout_ms")
        try c.taggedFields()
    }
}

/// ElectLeaders response v0-2: throttle_time_ms, error_code (v1+), replica_election_results
/// [topic, partition_result [partition_id i32, error_code, error_message]].
public struct ElectLeadersResponse: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionId: Int32 = 0
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public init(partitionId: Int32 = 0, errorCode: Int16 = 0, errorMessage: String? = nil) {
            self.partitionId = partitionId
            self.errorCode = errorCode
            self.errorMessage = errorMessage
        }
    }
    public struct Result: Sendable, Equatable {
        public var topic = ""
        public var partitionResult: [Partition] = []
        public init(topic: String = "", partitionResult: [Partition] = []) {
            self.topic = topic
            self.partitionResult = partitionResult
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var replicaElectionResults: [Result] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        if version >= 1 { try c.int16(&errorCode, "error_code") }
        try c.array(&replicaElectionResults, "replica_election_results", make: { Result() }) {
            (c: inout WireCoder, r: inout Result) throws(WireError) in
            try c.string(&r.topic, "topic")
            try c.array(&r.partitionResult, "partition_result", make: { Partition() }) {
                (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionId, "partition_id")
                try c.int16(&p.errorCode, "error_code")
                try c.nullableString(&p.errorMessage, "error_message")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// ListPartitionReassignments (46) request v0 (flexible): timeout_ms i32, topics nullable
/// [name, partition_indexes [i32]] (null: every partition).
public struct ListPartitionReassignmentsRequest: KafkaMessage {
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitionIndexes: [Int32] = []
        public init() {}
    }
    public var timeoutMs: Int32 = 60_000
    public var topics: [Topic]? = nil
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&timeoutMs, "timeout_ms")
        try c.nullableArray(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.int32Array(&t.partitionIndexes, "partition_indexes")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// ListPartitionReassignments response v0: throttle_time_ms, error_code, error_message,
/// topics [name, partitions [partition_index, replicas [i32], adding_replicas [i32],
/// removing_replicas [i32]]].
public struct ListPartitionReassignmentsResponse: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var replicas: [Int32] = []
        public var addingReplicas: [Int32] = []
        public var removingReplicas: [Int32] = []
        public init() {}
    }
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitions: [Partition] = []
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var errorMessage: String? = nil
    public var topics: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.int16(&errorCode, "error_code")
        try c.nullableString(&errorMessage, "error_message")
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int32Array(&p.replicas, "replicas")
                try c.int32Array(&p.addingReplicas, "adding_replicas")
                try c.int32Array(&p.removingReplicas, "removing_replicas")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// AlterPartitionReassignments (45) request v0-1 (flexible): timeout_ms i32,
/// allow_replication_factor_change bool (v1+, default true), topics [name, partitions
/// [partition_index, replicas nullable [i32] (null: cancel the partition's reassignment)]].
public struct AlterPartitionReassignmentsRequest: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var replicas: [Int32]? = nil
        public init() {}
    }
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitions: [Partition] = []
        public init() {}
    }
    public var timeoutMs: Int32 = 60_000
    public var allowReplicationFactorChange = true
    public var topics: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&timeoutMs, "timeout_ms")
        if version >= 1 { try c.bool(&allowReplicationFactorChange, "allow_replication_factor_change") }
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.nullableArray(&p.replicas, "replicas", make: { 0 }) { (c: inout WireCoder, r: inout Int32) throws(WireError) in
                    try c.int32(&r, "replica")
                }
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// AlterPartitionReassignments response v0-1: throttle_time_ms, allow_replication_factor_change
/// bool (v1+), error_code, error_message, responses [name, partitions [partition_index,
/// error_code, error_message]].
public struct AlterPartitionReassignmentsResponse: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public init() {}
    }
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitions: [Partition] = []
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var allowReplicationFactorChange = true
    public var errorCode: Int16 = 0
    public var errorMessage: String? = nil
    public var responses: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        if version >= 1 { try c.bool(&allowReplicationFactorChange, "allow_replication_factor_change") }
        try c.int16(&errorCode, "error_code")
        try c.nullableString(&errorMessage, "error_message")
        try c.array(&responses, "responses", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int16(&p.errorCode, "error_code")
                try c.nullableString(&p.errorMessage, "error_message")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// Share groups (KIP-932): ShareGroupHeartbeat (76), ShareGroupDescribe (77), ShareFetch (78)
/// and ShareAcknowledge (79). Flexible in every version (compact strings and arrays, a
/// tagged-field section closing each structure). Version 1 is what Kafka 4.1 and librdkafka
/// speak; ShareFetch/ShareAcknowledge v2 add the acquire mode (KIP-1206) and lock renewal
/// (KIP-1222).

/// ShareGroupHeartbeat (76) request v1:
/// `group_id string, member_id string, member_epoch i32, rack_id nullable string,
/// subscribed_topic_names nullable [string]` (null: unchanged since the last heartbeat).
public struct ShareGroupHeartbeatRequest: KafkaMessage {
    public var groupId = ""
    public var memberId = ""
    public var memberEpoch: Int32 = 0
    public var rackId: String? = nil
    public var subscribedTopicNames: [String]? = nil
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        try c.string(&memberId, "member_id")
        try c.int32(&memberEpoch, "member_epoch")
        try c.nullableString(&rackId, "rack_id")
        try c.nullableArray(&subscribedTopicNames, "subscribed_topic_names", make: { "" }) {
            (c: inout WireCoder, name: inout String) throws(WireError) in try c.string(&name, "subscribed_topic_names")
        }
        try c.taggedFields()
    }
}

/// ShareGroupHeartbeat (76) response v1: the same layout as ConsumerGroupHeartbeat's
/// (`throttle_time_ms, error_code, error_message, member_id, member_epoch,
/// heartbeat_interval_ms, assignment nullable struct {topic_partitions [topic_id, partitions]}`).
public typealias ShareGroupHeartbeatResponse = ConsumerGroupHeartbeatResponse

/// ShareGroupDescribe (77) request v1: group_ids [string], include_authorized_operations bool.
public typealias ShareGroupDescribeRequest = ConsumerGroupDescribeRequest

/// ShareGroupDescribe (77) response v1:
/// ```
/// throttle_time_ms i32, groups [error_code i16, error_message nullable string, group_id string,
///   group_state string, group_epoch i32, assignment_epoch i32, assignor_name string,
///   members [member_id string, rack_id nullable string, member_epoch i32, client_id string,
///     client_host string, subscribed_topic_names [string],
///     assignment {topic_partitions [topic_id uuid, topic_name string, partitions [i32]]}],
///   authorized_operations i32]
/// ```
public struct ShareGroupDescribeResponse: KafkaMessage {
    public typealias TopicPartitions = ConsumerGroupDescribeResponse.TopicPartitions
    public struct Member: Sendable, Equatable {
        public var memberId = ""
        public var rackId: String? = nil
        public var memberEpoch: Int32 = 0
        public var clientId = ""
        public var clientHost = ""
        public var subscribedTopicNames: [String] = []
        public var assignment: [TopicPartitions] = []
        public init() {}
    }
    public struct Group: Sendable, Equatable {
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public var groupId = ""
        public var groupState = ""
        public var groupEpoch: Int32 = 0
        public var assignmentEpoch: Int32 = 0
        public var assignorName = ""
        public var members: [Member] = []
        public var authorizedOperations: Int32 = Int32.min
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var groups: [Group] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.array(&groups, "groups", make: { Group() }) { (c: inout WireCoder, g: inout Group) throws(WireError) in
            try c.int16(&g.errorCode, "error_code")
            try c.nullableString(&g.errorMessage, "error_message")
            try c.string(&g.groupId, "group_id")
            try c.string(&g.groupState, "group_state")
            try c.int32(&g.groupEpoch, "group_epoch")
            try c.int32(&g.assignmentEpoch, "assignment_epoch")
            try c.string(&g.assignorName, "assignor_name")
            try c.array(&g.members, "members", make: { Member() }) { (c: inout WireCoder, m: inout Member) throws(WireError) in
                try c.string(&m.memberId, "member_id")
                try c.nullableString(&m.rackId, "rack_id")
                try c.int32(&m.memberEpoch, "member_epoch")
                try c.string(&m.clientId, "client_id")
                try c.string(&m.clientHost, "client_host")
                try c.stringArray(&m.subscribedTopicNames, "subscribed_topic_names")
                try ConsumerGroupDescribeResponse.assignment(&c, &m.assignment, "assignment")
                try c.taggedFields()
            }
            try c.int32(&g.authorizedOperations, "authorized_operations")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// An acknowledgement range: `first_offset i64, last_offset i64, acknowledge_types [i8]`
/// (one type for the whole range, or one per offset). Types: 0 GAP, 1 ACCEPT, 2 RELEASE,
/// 3 REJECT, 4 RENEW (v2).
public struct AcknowledgementBatch: Sendable, Equatable {
    public var firstOffset: Int64 = 0
    public var lastOffset: Int64 = 0
    public var acknowledgeTypes: [Int8] = []
    public init(firstOffset: Int64 = 0, lastOffset: Int64 = 0, acknowledgeTypes: [Int8] = []) {
        self.firstOffset = firstOffset
        self.lastOffset = lastOffset
        self.acknowledgeTypes = acknowledgeTypes
    }

    static func code(_ c: inout WireCoder, _ b: inout AcknowledgementBatch) throws(WireError) {
        try c.int64(&b.firstOffset, "first_offset")
        try c.int64(&b.lastOffset, "last_offset")
        try c.array(&b.acknowledgeTypes, "acknowledge_types", counted: false, make: { 0 }) { (c: inout WireCoder, t: inout Int8) throws(WireError) in
            try c.int8(&t, "acknowledge_types")
        }
        try c.taggedFields()
    }
}

/// Per-partition acknowledgements in a request: `topic_id uuid, partitions [partition_index
/// i32, acknowledgement_batches [...]]`.
public struct ShareAcknowledgeTopic: Sendable, Equatable {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var acknowledgementBatches: [AcknowledgementBatch] = []
        public init(partitionIndex: Int32 = 0, acknowledgementBatches: [AcknowledgementBatch] = []) {
            self.partitionIndex = partitionIndex
            self.acknowledgementBatches = acknowledgementBatches
        }
    }
    public var topicId = WireUUID.zero
    public var partitions: [Partition] = []
    public init(topicId: WireUUID = .zero, partitions: [Partition] = []) {
        self.topicId = topicId
        self.partitions = partitions
    }

    static func code(_ c: inout WireCoder, _ t: inout ShareAcknowledgeTopic) throws(WireError) {
        try c.uuid(&t.topicId, "topic_id")
        try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
            try c.int32(&p.partitionIndex, "partition_index")
            try c.array(&p.acknowledgementBatches, "acknowledgement_batches", make: { AcknowledgementBatch() }, AcknowledgementBatch.code)
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// `leader_id i32, leader_epoch i32` (a struct: its own tagged-field section).
public struct LeaderIdAndEpoch: Sendable, Equatable {
    public var leaderId: Int32 = -1
    public var leaderEpoch: Int32 = -1
    public init(leaderId: Int32 = -1, leaderEpoch: Int32 = -1) {
        self.leaderId = leaderId
        self.leaderEpoch = leaderEpoch
    }

    static func code(_ c: inout WireCoder, _ l: inout LeaderIdAndEpoch) throws(WireError) {
        try c.int32(&l.leaderId, "leader_id")
        try c.int32(&l.leaderEpoch, "leader_epoch")
        try c.taggedFields()
    }
}

/// `node_id i32, host string, port i32, rack nullable string`.
public struct NodeEndpoint: Sendable, Equatable {
    public var nodeId: Int32 = 0
    public var host = ""
    public var port: Int32 = 0
    public var rack: String? = nil
    public init(nodeId: Int32 = 0, host: String = "", port: Int32 = 0) {
        self.nodeId = nodeId
        self.host = host
        self.port = port
    }

    static func code(_ c: inout WireCoder, _ n: inout NodeEndpoint) throws(WireError) {
        try c.int32(&n.nodeId, "node_id")
        try c.string(&n.host, "host")
        try c.int32(&n.port, "port")
        try c.nullableString(&n.rack, "rack")
        try c.taggedFields()
    }
}

/// ShareFetch (78) request v1-2:
/// ```
/// group_id nullable string, member_id nullable string, share_session_epoch i32,
/// max_wait_ms i32, min_bytes i32, max_bytes i32, max_records i32, batch_size i32,
/// share_acquire_mode i8 (v2), is_renew_ack bool (v2),
/// topics [topic_id uuid, partitions [partition_index i32, acknowledgement_batches [...]]],
/// forgotten_topics_data [topic_id uuid, partitions [i32]]
/// ```
public struct ShareFetchRequest: KafkaMessage {
    public var groupId: String? = nil
    public var memberId: String? = nil
    public var shareSessionEpoch: Int32 = 0
    public var maxWaitMs: Int32 = 500
    public var minBytes: Int32 = 1
    public var maxBytes: Int32 = Int32.max
    public var maxRecords: Int32 = 500
    public var batchSize: Int32 = 500
    public var shareAcquireMode: Int8 = 0
    public var isRenewAck = false
    public var topics: [ShareAcknowledgeTopic] = []
    public var forgottenTopicsData: [ConsumerTopicPartitions] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.nullableString(&groupId, "group_id")
        try c.nullableString(&memberId, "member_id")
        try c.int32(&shareSessionEpoch, "share_session_epoch")
        try c.int32(&maxWaitMs, "max_wait_ms")
        try c.int32(&minBytes, "min_bytes")
        try c.int32(&maxBytes, "max_bytes")
        try c.int32(&maxRecords, "max_records")
        try c.int32(&batchSize, "batch_size")
        if version >= 2 {
            try c.int8(&shareAcquireMode, "share_acquire_mode")
            try c.bool(&isRenewAck, "is_renew_ack")
        }
        try c.array(&topics, "topics", make: { ShareAcknowledgeTopic() }, ShareAcknowledgeTopic.code)
        try c.array(&forgottenTopicsData, "forgotten_topics_data", make: { ConsumerTopicPartitions() }, ConsumerTopicPartitions.code)
        try c.taggedFields()
    }
}

/// ShareFetch (78) response v1-2:
/// ```
/// throttle_time_ms i32, error_code i16, error_message nullable string,
/// acquisition_lock_timeout_ms i32,
/// responses [topic_id uuid, partitions [partition_index i32, error_code i16,
///   error_message nullable string, acknowledge_error_code i16,
///   acknowledge_error_message nullable string, current_leader {leader_id i32, leader_epoch i32},
///   records compact bytes (never null: librdkafka refuses a null), acquired_records
///   [first_offset i64, last_offset i64, delivery_count i16]]],
/// node_endpoints [node_id i32, host string, port i32, rack nullable string]
/// ```
public struct ShareFetchResponse: KafkaMessage {
    public struct AcquiredRecords: Sendable, Equatable {
        public var firstOffset: Int64 = 0
        public var lastOffset: Int64 = 0
        public var deliveryCount: Int16 = 0
        public init(firstOffset: Int64 = 0, lastOffset: Int64 = 0, deliveryCount: Int16 = 0) {
            self.firstOffset = firstOffset
            self.lastOffset = lastOffset
            self.deliveryCount = deliveryCount
        }
    }
    public struct Partition: Sendable {
        public var partitionIndex: Int32 = 0
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public var acknowledgeErrorCode: Int16 = 0
        public var acknowledgeErrorMessage: String? = nil
        public var currentLeader = LeaderIdAndEpoch()
        public var records: RecordsData? = .bytes([][...])
        public var acquiredRecords: [AcquiredRecords] = []
        public init(partitionIndex: Int32 = 0) { self.partitionIndex = partitionIndex }
    }
    public struct Topic: Sendable {
        public var topicId = WireUUID.zero
        public var partitions: [Partition] = []
        public init(topicId: WireUUID = .zero, partitions: [Partition] = []) {
            self.topicId = topicId
            self.partitions = partitions
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var errorMessage: String? = nil
    public var acquisitionLockTimeoutMs: Int32 = 0
    public var responses: [Topic] = []
    public var nodeEndpoints: [NodeEndpoint] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.int16(&errorCode, "error_code")
        try c.nullableString(&errorMessage, "error_message")
        try c.int32(&acquisitionLockTimeoutMs, "acquisition_lock_timeout_ms")
        try c.array(&responses, "responses", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.uuid(&t.topicId, "topic_id")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int16(&p.errorCode, "error_code")
                try c.nullableString(&p.errorMessage, "error_message")
                try c.int16(&p.acknowledgeErrorCode, "acknowledge_error_code")
                try c.nullableString(&p.acknowledgeErrorMessage, "acknowledge_error_message")
                try LeaderIdAndEpoch.code(&c, &p.currentLeader)
                if !c.isReading && p.records == nil { p.records = .bytes([][...]) }  // never null on the wire
                try c.records(&p.records)
                try c.array(&p.acquiredRecords, "acquired_records", make: { AcquiredRecords() }) {
                    (c: inout WireCoder, a: inout AcquiredRecords) throws(WireError) in
                    try c.int64(&a.firstOffset, "first_offset")
                    try c.int64(&a.lastOffset, "last_offset")
                    try c.int16(&a.deliveryCount, "delivery_count")
                    try c.taggedFields()
                }
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.array(&nodeEndpoints, "node_endpoints", make: { NodeEndpoint() }, NodeEndpoint.code)
        try c.taggedFields()
    }
}

/// ShareAcknowledge (79) request v1-2:
/// ```
/// group_id nullable string, member_id nullable string, share_session_epoch i32,
/// is_renew_ack bool (v2), topics [topic_id uuid, partitions [partition_index i32,
/// acknowledgement_batches [...]]]
/// ```
/// Epoch -1 applies the acknowledgements and closes the member's share session.
public struct ShareAcknowledgeRequest: KafkaMessage {
    public var groupId: String? = nil
    public var memberId: String? = nil
    public var shareSessionEpoch: Int32 = 0
    public var isRenewAck = false
    public var topics: [ShareAcknowledgeTopic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.nullableString(&groupId, "group_id")
        try c.nullableString(&memberId, "member_id")
        try c.int32(&shareSessionEpoch, "share_session_epoch")
        if version >= 2 { try c.bool(&isRenewAck, "is_renew_ack") }
        try c.array(&topics, "topics", make: { ShareAcknowledgeTopic() }, ShareAcknowledgeTopic.code)
        try c.taggedFields()
    }
}

/// ShareAcknowledge (79) response v1-2:
/// ```
/// throttle_time_ms i32, error_code i16, error_message nullable string,
/// acquisition_lock_timeout_ms i32 (v2), responses [topic_id uuid, partitions
/// [partition_index i32, error_code i16, error_message nullable string,
/// current_leader {leader_id i32, leader_epoch i32}]], node_endpoints [...]
/// ```
public struct ShareAcknowledgeResponse: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public var currentLeader = LeaderIdAndEpoch()
        public init(partitionIndex: Int32 = 0) { self.partitionIndex = partitionIndex }
    }
    public struct Topic: Sendable, Equatable {
        public var topicId = WireUUID.zero
        public var partitions: [Partition] = []
        public init(topicId: WireUUID = .zero, partitions: [Partition] = []) {
            self.topicId = topicId
            self.partitions = partitions
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var errorMessage: String? = nil
    public var acquisitionLockTimeoutMs: Int32 = 0
    public var responses: [Topic] = []
    public var nodeEndpoints: [NodeEndpoint] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.int16(&errorCode, "error_code")
        try c.nullableString(&errorMessage, "error_message")
        if version >= 2 { try c.int32(&acquisitionLockTimeoutMs, "acquisition_lock_timeout_ms") }
        try c.array(&responses, "responses", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.uuid(&t.topicId, "topic_id")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int16(&p.errorCode, "error_code")
                try c.nullableString(&p.errorMessage, "error_message")
                try LeaderIdAndEpoch.code(&c, &p.currentLeader)
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.array(&nodeEndpoints, "node_endpoints", make: { NodeEndpoint() }, NodeEndpoint.code)
        try c.taggedFields()
    }
}

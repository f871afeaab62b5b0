/// The next-generation consumer group protocol (KIP-848): ConsumerGroupHeartbeat (68) and
/// ConsumerGroupDescribe (69). Both are flexible in every version (compact strings and
/// arrays, a tagged-field section closing each structure).

/// Topic partitions by topic id, as the heartbeat messages carry them:
/// `topic_id uuid, partitions [i32]`.
public struct ConsumerTopicPartitions: Sendable, Equatable {
    public var topicId = WireUUID.zero
    public var partitions: [Int32] = []
    public init(topicId: WireUUID = .zero, partitions: [Int32] = []) {
        self.topicId = topicId
        self.partitions = partitions
    }

    static func code(_ c: inout WireCoder, _ t: inout ConsumerTopicPartitions) throws(WireError) {
        try c.uuid(&t.topicId, "topic_id")
        try c.int32Array(&t.partitions, "partitions")
        try c.taggedFields()
    }
}

/// ConsumerGroupHeartbeat (68) request v0-1:
/// ```
/// group_id string, member_id string, member_epoch i32, instance_id nullable string,
/// rack_id nullable string, rebalance_timeout_ms i32,
/// subscribed_topic_names nullable [string], subscribed_topic_regex nullable string (v1+),
/// server_assignor nullable string, topic_partitions nullable [topic_id uuid, partitions [i32]]
/// ```
/// Nullable fields are null when unchanged since the member's previous heartbeat. v1 members
/// make their own member id (KIP-1082); v0 members joining send an empty one.
public struct ConsumerGroupHeartbeatRequest: KafkaMessage {
    public var groupId = ""
    public var memberId = ""
    public var memberEpoch: Int32 = 0
    public var instanceId: String? = nil
    public var rackId: String? = nil
    public var rebalanceTimeoutMs: Int32 = -1
    public var subscribedTopicNames: [String]? = nil
    public var subscribedTopicRegex: String? = nil
    public var serverAssignor: String? = nil
    public var topicPartitions: [ConsumerTopicPartitions]? = nil
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        try c.string(&memberId, "member_id")
        try c.int32(&memberEpoch, "member_epoch")
        try c.nullableString(&instanceId, "instance_id")
        try c.nullableString(&rackId, "rack_id")
        try c.int32(&rebalanceTimeoutMs, "rebalance_timeout_ms")
        try c.nullableArray(&subscribedTopicNames, "subscribed_topic_names", make: { "" }) {
            (c: inout WireCoder, name: inout String) throws(WireError) in try c.string(&name, "subscribed_topic_names")
        }
        if version >= 1 { try c.nullableString(&subscribedTopicRegex, "subscribed_topic_regex") }
        try c.nullableString(&serverAssignor, "server_assignor")
        try c.nullableArray(&topicPartitions, "topic_partitions", make: { ConsumerTopicPartitions() }, ConsumerTopicPartitions.code)
        try c.taggedFields()
    }
}

/// ConsumerGroupHeartbeat (68) response v0-1:
/// ```
/// throttle_time_ms i32, error_code i16, error_message nullable string,
/// member_id nullable string, member_epoch i32, heartbeat_interval_ms i32,
/// assignment nullable struct (int8 marker) { topic_partitions [topic_id uuid, partitions [i32]] }
/// ```
/// The assignment is null when the member's partitions did not change.
public struct ConsumerGroupHeartbeatResponse: KafkaMessage {
    public struct Assignment: Sendable, Equatable {
        public var topicPartitions: [ConsumerTopicPartitions] = []
        public init(topicPartitions: [ConsumerTopicPartitions] = []) { self.topicPartitions = topicPartitions }
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var errorMessage: String? = nil
    public var memberId: String? = nil
    public var memberEpoch: Int32 = 0
    public var heartbeatIntervalMs: Int32 = 0
    public var assignment: Assignment? = nil
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.int16(&errorCode, "error_code")
        try c.nullableString(&errorMessage, "error_message")
        try c.nullableString(&memberId, "member_id")
        try c.int32(&memberEpoch, "member_epoch")
        try c.int32(&heartbeatIntervalMs, "heartbeat_interval_ms")
        try c.nullableStruct(&assignment, "assignment", make: { Assignment() }) {
            (c: inout WireCoder, a: inout Assignment) throws(WireError) in
            try c.array(&a.topicPartitions, "topic_partitions", make: { ConsumerTopicPartitions() }, ConsumerTopicPartitions.code)
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// ConsumerGroupDescribe (69) request v0-1: group_ids [string], include_authorized_operations bool.
public struct ConsumerGroupDescribeRequest: KafkaMessage {
    public var groupIds: [String] = []
    public var includeAuthorizedOperations = false
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.stringArray(&groupIds, "group_ids")
        try c.bool(&includeAuthorizedOperations, "include_authorized_operations")
        try c.taggedFields()
    }
}

/// ConsumerGroupDescribe (69) response v0-1:
/// ```
/// throttle_time_ms i32, groups [error_code i16, error_message nullable string, group_id string,
///   group_state string, group_epoch i32, assignment_epoch i32, assignor_name string,
///   members [member_id string, instance_id nullable string, rack_id nullable string,
///     member_epoch i32, client_id string, client_host string, subscribed_topic_names [string],
///     subscribed_topic_regex nullable string, assignment {topic_partitions [...]},
///     target_assignment {topic_partitions [...]}, member_type i8 (v1+)],
///   authorized_operations i32]
/// ```
/// where each topic partitions entry is `topic_id uuid, topic_name string, partitions [i32]`.
public struct ConsumerGroupDescribeResponse: KafkaMessage {
    public struct TopicPartitions: Sendable, Equatable {
        public var topicId = WireUUID.zero
        public var topicName = ""
        public var partitions: [Int32] = []
        public init(topicId: WireUUID = .zero, topicName: String = "", partitions: [Int32] = []) {
            self.topicId = topicId
            self.topicName = topicName
            self.partitions = partitions
        }
    }
    public struct Member: Sendable, Equatable {
        public var memberId = ""
        public var instanceId: String? = nil
        public var rackId: String? = nil
        public var memberEpoch: Int32 = 0
        public var clientId = ""
        public var clientHost = ""
        public var subscribedTopicNames: [String] = []
        public var subscribedTopicRegex: String? = nil
        public var assignment: [TopicPartitions] = []
        public var targetAssignment: [TopicPartitions] = []
        /// v1+: 0 a classic member of a consumer group, 1 a consumer member, -1 unknown.
        public var memberType: Int8 = -1
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

    static func assignment(_ c: inout WireCoder, _ value: inout [TopicPartitions], _ field: String) throws(WireError) {
        try c.array(&value, field, make: { TopicPartitions() }) { (c: inout WireCoder, t: inout TopicPartitions) throws(WireError) in
            try c.uuid(&t.topicId, "topic_id")
            try c.string(&t.topicName, "topic_name")
            try c.int32Array(&t.partitions, "partitions")
            try c.taggedFields()
        }
        try c.taggedFields()
    }

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
                try c.nullableString(&m.instanceId, "instance_id")
                try c.nullableString(&m.rackId, "rack_id")
                try c.int32(&m.memberEpoch, "member_epoch")
                try c.string(&m.clientId, "client_id")
                try c.string(&m.clientHost, "client_host")
                try c.stringArray(&m.subscribedTopicNames, "subscribed_topic_names")
                try c.nullableString(&m.subscribedTopicRegex, "subscribed_topic_regex")
                try Self.assignment(&c, &m.assignment, "assignment")
                try Self.assignment(&c, &m.targetAssignment, "target_assignment")
                if version >= 1 { try c.int8(&m.memberType, "member_type") }
                try c.taggedFields()
            }
            try c.int32(&g.authorizedOperations, "authorized_operations")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

// FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
// DescribeGroups, ListGroups.

/// FindCoordinator (10) request: key string, key_type i8 (v1+).
public struct FindCoordinatorRequest: KafkaMessage {
    public var key = ""
    public var keyType: Int8 = 0
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&key, "key")
        if version >= 1 { try c.int8(&keyType, "key_type") }
    }
}

/// FindCoordinator response: throttle_time_ms (v1+), error_code, error_message (v1+),
/// node_id, host, port.
public struct FindCoordinatorResponse: KafkaMessage {
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var errorMessage: String? = nil
    public var nodeId: Int32 = 0
    public var host = ""
    public var port: Int32 = 0
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 1 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.int16(&errorCode, "error_code")
        if version >= 1 { try c.nullableString(&errorMessage, "error_message") }
        try c.int32(&nodeId, "node_id")
        try c.string(&host, "host")
        try c.int32(&port, "port")
    }
}

/// JoinGroup (11) request: group_id, session_timeout_ms, rebalance_timeout_ms (v1+),
/// member_id, group_instance_id (v5+), protocol_type, protocols [name, metadata bytes].
public struct JoinGroupRequestMessage: KafkaMessage {
    public struct GroupProtocol: Sendable, Equatable {
        public var name = ""
        public var metadata: [UInt8] = []
        public init(name: String = "", metadata: [UInt8] = []) {
            self.name = name
            self.metadata = metadata
        }
    }
    public var groupId = ""
    public var sessionTimeoutMs: Int32 = 0
    public var rebalanceTimeoutMs: Int32 = -1
    public var memberId = ""
    public var groupInstanceId: String? = nil
    public var protocolType = ""
    public var protocols: [GroupProtocol] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        try c.int32(&sessionTimeoutMs, "session_timeout_ms")
        if version >= 1 { try c.int32(&rebalanceTimeoutMs, "rebalance_timeout_ms") }
        try c.string(&memberId, "member_id")
        if version >= 5 { try c.nullableString(&groupInstanceId, "group_instance_id") }
        try c.string(&protocolType, "protocol_type")
        try c.array(&protocols, "protocols", make: { GroupProtocol() }) { (c: inout WireCoder, p: inout GroupProtocol) throws(WireError) in
            try c.string(&p.name, "name")
            try c.bytes(&p.metadata, "metadata")
        }
    }
}

/// JoinGroup response: throttle_time_ms (v2+), error_code, generation_id, protocol_name,
/// leader, member_id, members [member_id, group_instance_id (v5+), metadata bytes].
public struct JoinGroupResponseMessage: KafkaMessage {
    public struct Member: Sendable, Equatable {
        public var memberId = ""
        public var groupInstanceId: String? = nil
        public var metadata: [UInt8] = []
        public init(memberId: String = "", groupInstanceId: String? = nil, metadata: [UInt8] = []) {
            self.memberId = memberId
            self.groupInstanceId = groupInstanceId
            self.metadata = metadata
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var generationId: Int32 = -1
    public var protocolName = ""
    public var leader = ""
    public var memberId = ""
    public var members: [Member] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 2 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.int16(&errorCode, "error_code")
        try c.int32(&generationId, "generation_id")
        try c.string(&protocolName, "protocol_name")
        try c.string(&leader, "leader")
        try c.string(&memberId, "member_id")
        try c.array(&members, "members", make: { Member() }) { (c: inout WireCoder, m: inout Member) throws(WireError) in
            try c.string(&m.memberId, "member_id")
            if version >= 5 { try c.nullableString(&m.groupInstanceId, "group_instance_id") }
            try c.bytes(&m.metadata, "metadata")
        }
    }
}

/// SyncGroup (14) request: group_id, generation_id, member_id, group_instance_id (v3+),
/// assignments [member_id, assignment bytes].
public struct SyncGroupRequestMessage: KafkaMessage {
    public struct Assignment: Sendable, Equatable {
        public var memberId = ""
        public var assignment: [UInt8] = []
        public init(memberId: String = "", assignment: [UInt8] = []) {
            self.memberId = memberId
            self.assignment = assignment
        }
    }
    public var groupId = ""
    public var generationId: Int32 = 0
    public var memberId = ""
    public var groupInstanceId: String? = nil
    public var assignments: [Assignment] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        try c.int32(&generationId, "generation_id")
        try c.string(&memberId, "member_id")
        if version >= 3 { try c.nullableString(&groupInstanceId, "group_instance_id") }
        try c.array(&assignments, "assignments", make: { Assignment() }) { (c: inout WireCoder, a: inout Assignment) throws(WireError) in
            try c.string(&a.memberId, "member_id")
            try c.bytes(&a.assignment, "assignment")
        }
    }
}

/// SyncGroup response: throttle_time_ms (v1+), error_code, assignment bytes.
public struct SyncGroupResponseMessage: KafkaMessage {
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var assignment: [UInt8] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 1 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.int16(&errorCode, "error_code")
        try c.bytes(&assignment, "assignment")
    }
}

/// Heartbeat (12) request v0-1: group_id, generation_id, member_id.
public struct HeartbeatRequest: KafkaMessage {
    public var groupId = ""
    public var generationId: Int32 = 0
    public var memberId = ""
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        try c.int32(&generationId, "generation_id")
        try c.string(&memberId, "member_id")
    }
}

/// Heartbeat and LeaveGroup responses (v0-1): throttle_time_ms (v1+), error_code.
public struct ErrorOnlyResponse: KafkaMessage {
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public init() {}
    public init(errorCode: Int16) { self.errorCode = errorCode }
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 1 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.int16(&errorCode, "error_code")
    }
}

/// LeaveGroup (13) request v0-1: group_id, member_id.
public struct LeaveGroupRequest: KafkaMessage {
    public var groupId = ""
    public var memberId = ""
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        try c.string(&memberId, "member_id")
    }
}

/// OffsetCommit (8) request: group_id, generation_id (v1+), member_id (v1+),
/// retention_time_ms (v2-4), topics [name, partitions [partition_index, committed_offset,
/// commit_timestamp (v1 only), committed_metadata nullable string]].
public struct OffsetCommitRequest: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var committedOffset: Int64 = 0
        public var commitTimestamp: Int64 = -1
        public var committedMetadata: String? = nil
        public init() {}
    }
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitions: [Partition] = []
        public init() {}
    }
    public var groupId = ""
    public var generationId: Int32 = -1
    public var memberId = ""
    public var retentionTimeMs: Int64 = -1
    public var topics: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        if version >= 1 {
            try c.int32(&generationId, "generation_id")
            try c.string(&memberId, "member_id")
        }
        if version >= 2 { try c.int64(&retentionTimeMs, "retention_time_ms") }
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int64(&p.committedOffset, "committed_offset")
                if version == 1 { try c.int64(&p.commitTimestamp, "commit_timestamp") }
                try c.nullableString(&p.committedMetadata, "committed_metadata")
            }
        }
    }
}

/// OffsetCommit response: throttle_time_ms (v3+), topics [name, partitions [partition_index, error_code]].
public struct OffsetCommitResponse: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
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
        if version >= 3 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int16(&p.errorCode, "error_code")
            }
        }
    }
}

/// OffsetFetch (9) request: group_id, topics [name, partition_indexes [i32]] (nullable = all, v2+).
public struct OffsetFetchRequest: KafkaMessage {
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitionIndexes: [Int32] = []
        public init() {}
    }
    public var groupId = ""
    public var topics: [Topic]? = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        try c.nullableArray(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.int32Array(&t.partitionIndexes, "partition_indexes")
        }
    }
}

/// OffsetFetch response: throttle_time_ms (v3+), topics [name, partitions [partition_index,
/// committed_offset, metadata nullable string, error_code]], error_code (v2+).
public struct OffsetFetchResponse: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var committedOffset: Int64 = -1
        public var metadata: String? = ""
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
    public var errorCode: Int16 = 0
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 3 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int64(&p.committedOffset, "committed_offset")
                try c.nullableString(&p.metadata, "metadata")
                try c.int16(&p.errorCode, "error_code")
            }
        }
        if version >= 2 { try c.int16(&errorCode, "error_code") }
    }
}

/// DescribeGroups (15) request: groups [string], include_authorized_operations bool (v3+).
public struct DescribeGroupsRequest: KafkaMessage {
    public var groups: [String] = []
    public var includeAuthorizedOperations = false
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.stringArray(&groups, "groups")
        if version >= 3 { try c.bool(&includeAuthorizedOperations, "include_authorized_operations") }
    }
}

/// DescribeGroups response: throttle_time_ms (v1+), groups [error_code, group_id,
/// group_state, protocol_type, protocol_data, members [member_id, client_id, client_host,
/// member_metadata bytes, member_assignment bytes], authorized_operations i32 (v3+)].
public struct DescribeGroupsResponse: KafkaMessage {
    public struct Member: Sendable, Equatable {
        public var memberId = ""
        public var clientId = ""
        public var clientHost = ""
        public var memberMetadata: [UInt8] = []
        public var memberAssignment: [UInt8] = []
        public init() {}
    }
    public struct Group: Sendable, Equatable {
        public var errorCode: Int16 = 0
        public var groupId = ""
        public var groupState = ""
        public var protocolType = ""
        public var protocolData = ""
        public var members: [Member] = []
        public var authorizedOperations: Int32 = Int32.min
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var groups: [Group] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 1 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.array(&groups, "groups", make: { Group() }) { (c: inout WireCoder, g: inout Group) throws(WireError) in
            try c.int16(&g.errorCode, "error_code")
            try c.string(&g.groupId, "group_id")
            try c.string(&g.groupState, "group_state")
            try c.string(&g.protocolType, "protocol_type")
            try c.string(&g.protocolData, "protocol_data")
            try c.array(&g.members, "members", make: { Member() }) { (c: inout WireCoder, m: inout Member) throws(WireError) in
                try c.string(&m.memberId, "member_id")
                try c.string(&m.clientId, "client_id")
                try c.string(&m.clientHost, "client_host")
                try c.bytes(&m.memberMetadata, "member_metadata")
                try c.bytes(&m.memberAssignment, "member_assignment")
            }
            if version >= 3 { try c.int32(&g.authorizedOperations, "authorized_operations") }
        }
    }
}

/// ListGroups (16) request v0-1: empty.
public struct EmptyRequest: KafkaMessage {
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {}
}

/// ListGroups response: throttle_time_ms (v1+), error_code, groups [group_id, protocol_type].
public struct ListGroupsResponse: KafkaMessage {
    public struct Group: Sendable, Equatable {
        public var groupId = ""
        public var protocolType = ""
        public init(groupId: String = "", protocolType: String = "") {
            self.groupId = groupId
            self.protocolType = protocolType
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var groups: [Group] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 1 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.int16(&errorCode, "error_code")
        try c.array(&groups, "groups", make: { Group() }) { (c: inout WireCoder, g: inout Group) throws(WireError) in
            try c.string(&g.groupId, "group_id")
            try c.string(&g.protocolType, "protocol_type")
        }
    }
}

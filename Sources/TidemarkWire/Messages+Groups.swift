// FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups, ListGroups,
// DeleteGroups
// (OffsetCommit and OffsetFetch: Messages+Offsets.swift): every version Kafka 4.1 serves (and the older ones Tidemark
// already spoke). In flexible versions every structure ends with its tagged-field section
// (`taggedFields()` is a no-op otherwise).

/// FindCoordinator (10) v0-6: key string (v0-3), key_type i8 (v1+), coordinator_keys
/// [string] (v4+). Flexible from v3.
public struct FindCoordinatorRequest: KafkaMessage {
    public var key = ""
    public var keyType: Int8 = 0
    public var coordinatorKeys: [String] = []
    public init() {}

    /// The keys asked for, whichever version carried them.
    public var keys: [String] { coordinatorKeys.isEmpty ? [key] : coordinatorKeys }

    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version <= 3 { try c.string(&key, "key") }
        if version >= 1 { try c.int8(&keyType, "key_type") }
        if version >= 4 { try c.stringArray(&coordinatorKeys, "coordinator_keys") }
        try c.taggedFields()
    }
}

/// FindCoordinator response v0-6: throttle_time_ms (v1+), then (v0-3) error_code,
/// error_message (v1+), node_id, host, port; or (v4+) coordinators [key, node_id, host, port,
/// error_code, error_message].
public struct FindCoordinatorResponse: KafkaMessage {
    public struct Coordinator: Sendable, Equatable {
        public var key = ""
        public var nodeId: Int32 = 0
        public var host = ""
        public var port: Int32 = 0
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var errorMessage: String? = nil
    public var nodeId: Int32 = 0
    public var host = ""
    public var port: Int32 = 0
    public var coordinators: [Coordinator] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 1 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        if version <= 3 {
            try c.int16(&errorCode, "error_code")
            if version >= 1 { try c.nullableString(&errorMessage, "error_message") }
            try c.int32(&nodeId, "node_id")
            try c.string(&host, "host")
            try c.int32(&port, "port")
        } else {
            try c.array(&coordinators, "coordinators", make: { Coordinator() }) { (c: inout WireCoder, k: inout Coordinator) throws(WireError) in
                try c.string(&k.key, "key")
                try c.int32(&k.nodeId, "node_id")
                try c.string(&k.host, "host")
                try c.int32(&k.port, "port")
                try c.int16(&k.errorCode, "error_code")
                try c.nullableString(&k.errorMessage, "error_message")
                try c.taggedFields()
            }
        }
        try c.taggedFields()
    }
}

/// JoinGroup (11) request v0-9: group_id, session_timeout_ms, rebalance_timeout_ms (v1+),
/// member_id, group_instance_id (v5+), protocol_type, protocols [name, metadata bytes],
/// reason (v8+). Flexible from v6.
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
    public var reason: String? = nil
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
            try c.taggedFields()
        }
        if version >= 8 { try c.nullableString(&reason, "reason") }
        try c.taggedFields()
    }
}

/// JoinGroup response v0-9: throttle_time_ms (v2+), error_code, generation_id, protocol_type
/// (v7+), protocol_name (nullable v7+), leader, skip_assignment (v9), member_id, members
/// [member_id, group_instance_id (v5+), metadata bytes].
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
    public var protocolType: String? = nil
    public var protocolName: String? = ""
    public var leader = ""
    public var skipAssignment = false
    public var memberId = ""
    public var members: [Member] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 2 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.int16(&errorCode, "error_code")
        try c.int32(&generationId, "generation_id")
        if version >= 7 {
            try c.nullableString(&protocolType, "protocol_type")
            try c.nullableString(&protocolName, "protocol_name")
        } else {
            var name = protocolName ?? ""
            try c.string(&name, "protocol_name")
            protocolName = name
        }
        try c.string(&leader, "leader")
        if version >= 9 { try c.bool(&skipAssignment, "skip_assignment") }
        try c.string(&memberId, "member_id")
        try c.array(&members, "members", make: { Member() }) { (c: inout WireCoder, m: inout Member) throws(WireError) in
            try c.string(&m.memberId, "member_id")
            if version >= 5 { try c.nullableString(&m.groupInstanceId, "group_instance_id") }
            try c.bytes(&m.metadata, "metadata")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// SyncGroup (14) request v0-5: group_id, generation_id, member_id, group_instance_id (v3+),
/// protocol_type and protocol_name (nullable, v5+), assignments [member_id, assignment bytes].
/// Flexible from v4.
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
    public var protocolType: String? = nil
    public var protocolName: String? = nil
    public var assignments: [Assignment] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        try c.int32(&generationId, "generation_id")
        try c.string(&memberId, "member_id")
        if version >= 3 { try c.nullableString(&groupInstanceId, "group_instance_id") }
        if version >= 5 {
            try c.nullableString(&protocolType, "protocol_type")
            try c.nullableString(&protocolName, "protocol_name")
        }
        try c.array(&assignments, "assignments", make: { Assignment() }) { (c: inout WireCoder, a: inout Assignment) throws(WireError) in
            try c.string(&a.memberId, "member_id")
            try c.bytes(&a.assignment, "assignment")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// SyncGroup response v0-5: throttle_time_ms (v1+), error_code, protocol_type and
/// protocol_name (nullable, v5+), assignment bytes.
public struct SyncGroupResponseMessage: KafkaMessage {
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var protocolType: String? = nil
    public var protocolName: String? = nil
    public var assignment: [UInt8] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 1 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.int16(&errorCode, "error_code")
        if version >= 5 {
            try c.nullableString(&protocolType, "protocol_type")
            try c.nullableString(&protocolName, "protocol_name")
        }
        try c.bytes(&assignment, "assignment")
        try c.taggedFields()
    }
}

/// Heartbeat (12) request v0-4: group_id, generation_id, member_id, group_instance_id (v3+).
/// Flexible from v4.
public struct HeartbeatRequest: KafkaMessage {
    public var groupId = ""
    public var generationId: Int32 = 0
    public var memberId = ""
    public var groupInstanceId: String? = nil
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        try c.int32(&generationId, "generation_id")
        try c.string(&memberId, "member_id")
        if version >= 3 { try c.nullableString(&groupInstanceId, "group_instance_id") }
        try c.taggedFields()
    }
}

/// Heartbeat response v0-4 (and OffsetDelete-style answers): throttle_time_ms (v1+), error_code.
public struct ErrorOnlyResponse: KafkaMessage {
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public init() {}
    public init(errorCode: Int16) { self.errorCode = errorCode }
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 1 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.int16(&errorCode, "error_code")
        try c.taggedFields()
    }
}

/// LeaveGroup (13) request v0-5: group_id, member_id (v0-2) or members [member_id,
/// group_instance_id, reason (v5)] (v3+). Flexible from v4.
public struct LeaveGroupRequest: KafkaMessage {
    public struct Member: Sendable, Equatable {
        public var memberId = ""
        public var groupInstanceId: String? = nil
        public var reason: String? = nil
        public init(memberId: String = "", groupInstanceId: String? = nil, reason: String? = nil) {
            self.memberId = memberId
            self.groupInstanceId = groupInstanceId
            self.reason = reason
        }
    }
    public var groupId = ""
    public var memberId = ""
    public var members: [Member] = []
    public init() {}

    /// The members leaving, whichever version carried them.
    public var memberIds: [String] { members.isEmpty ? [memberId] : members.map(\.memberId) }

    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        if version <= 2 {
            try c.string(&memberId, "member_id")
        } else {
            try c.array(&members, "members", make: { Member() }) { (c: inout WireCoder, m: inout Member) throws(WireError) in
                try c.string(&m.memberId, "member_id")
                try c.nullableString(&m.groupInstanceId, "group_instance_id")
                if version >= 5 { try c.nullableString(&m.reason, "reason") }
                try c.taggedFields()
            }
        }
        try c.taggedFields()
    }
}

/// LeaveGroup response v0-5: throttle_time_ms (v1+), error_code, members (v3+) [member_id,
/// group_instance_id, error_code].
public struct LeaveGroupResponse: KafkaMessage {
    public struct Member: Sendable, Equatable {
        public var memberId = ""
        public var groupInstanceId: String? = nil
        public var errorCode: Int16 = 0
        public init(memberId: String = "", groupInstanceId: String? = nil, errorCode: Int16 = 0) {
            self.memberId = memberId
            self.groupInstanceId = groupInstanceId
            self.errorCode = errorCode
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var members: [Member] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 1 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        try c.int16(&errorCode, "error_code")
        if version >= 3 {
            try c.array(&members, "members", make: { Member() }) { (c: inout WireCoder, m: inout Member) throws(WireError) in
                try c.string(&m.memberId, "member_id")
                try c.nullableString(&m.groupInstanceId, "group_instance_id")
                try c.int16(&m.errorCode, "error_code")
                try c.taggedFields()
            }
        }
        try c.taggedFields()
    }
}

/// DescribeGroups (15) request v0-6: groups [string], include_authorized_operations (v3+).
/// Flexible from v5.
public struct DescribeGroupsRequest: KafkaMessage {
    public var groups: [String] = []
    public var includeAuthorizedOperations = false
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.stringArray(&groups, "groups")
        if version >= 3 { try c.bool(&includeAuthorizedOperations, "include_authorized_operations") }
        try c.taggedFields()
    }
}

/// DescribeGroups response v0-6: throttle_time_ms (v1+), groups [error_code, error_message
/// (v6), group_id, group_state, protocol_type, protocol_data, members [member_id,
/// group_instance_id (v4+), client_id, client_host, member_metadata, member_assignment],
/// authorized_operations (v3+)].
public struct DescribeGroupsResponse: KafkaMessage {
    public struct Member: Sendable, Equatable {
        public var memberId = ""
        public var groupInstanceId: String? = nil
        public var clientId = ""
        public var clientHost = ""
        public var memberMetadata: [UInt8] = []
        public var memberAssignment: [UInt8] = []
        public init() {}
    }
    public struct Group: Sendable, Equatable {
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
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
            if version >= 6 { try c.nullableString(&g.errorMessage, "error_message") }
            try c.string(&g.groupId, "group_id")
            try c.string(&g.groupState, "group_state")
            try c.string(&g.protocolType, "protocol_type")
            try c.string(&g.protocolData, "protocol_data")
            try c.array(&g.members, "members", make: { Member() }) { (c: inout WireCoder, m: inout Member) throws(WireError) in
                try c.string(&m.memberId, "member_id")
                if version >= 4 { try c.nullableString(&m.groupInstanceId, "group_instance_id") }
                try c.string(&m.clientId, "client_id")
                try c.string(&m.clientHost, "client_host")
                try c.bytes(&m.memberMetadata, "member_metadata")
                try c.bytes(&m.memberAssignment, "member_assignment")
                try c.taggedFields()
            }
            if version >= 3 { try c.int32(&g.authorizedOperations, "authorized_operations") }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// ListGroups (16) request v0-5: states_filter [string] (v4+), types_filter [string] (v5).
/// Flexible from v3.
public struct ListGroupsRequest: KafkaMessage {
    public var statesFilter: [String] = []
    public var typesFilter: [String] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 4 { try c.stringArray(&statesFilter, "states_filter") }
        if version >= 5 { try c.stringArray(&typesFilter, "types_filter") }
        try c.taggedFields()
    }
}

/// ListGroups response v0-5: throttle_time_ms (v1+), error_code, groups [group_id,
/// protocol_type, group_state (v4+), group_type (v5)].
public struct ListGroupsResponse: KafkaMessage {
    public struct Group: Sendable, Equatable {
        public var groupId = ""
        public var protocolType = ""
        public var groupState = ""
        public var groupType = ""
        public init(groupId: String = "", protocolType: String = "", groupState: String = "", groupType: String = "") {
            self.groupId = groupId
            self.protocolType = protocolType
            self.groupState = groupState
            self.groupType = groupType
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
            if version >= 4 { try c.string(&g.groupState, "group_state") }
            if version >= 5 { try c.string(&g.groupType, "group_type") }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// DeleteGroups (42) request v0-2: groups_names [string]. Flexible from v2.
public struct DeleteGroupsRequest: KafkaMessage {
    public var groupsNames: [String] = []
    public init() {}
    public init(groupsNames: [String]) { self.groupsNames = groupsNames }
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.stringArray(&groupsNames, "groups_names")
        try c.taggedFields()
    }
}

/// DeleteGroups response v0-2: throttle_time_ms, results [group_id, error_code].
public struct DeleteGroupsResponse: KafkaMessage {
    public struct Result: Sendable, Equatable {
        public var groupId = ""
        public var errorCode: Int16 = 0
        public init(groupId: String = "", errorCode: Int16 = 0) {
            self.groupId = groupId
            self.errorCode = errorCode
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var results: [Result] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.array(&results, "results", make: { Result() }) { (c: inout WireCoder, r: inout Result) throws(WireError) in
            try c.string(&r.groupId, "group_id")
            try c.int16(&r.errorCode, "error_code")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// A request with no body in the versions Tidemark reads it at.
public struct EmptyRequest: KafkaMessage {
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) { try c.taggedFields() }
}

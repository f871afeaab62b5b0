// Committed offsets: OffsetCommit and OffsetFetch, every version Kafka 4.1 serves. In
// flexible versions every structure ends with its tagged-field section.

/// OffsetCommit (8) request v0-9: group_id, generation_id (v1+; the member epoch for
/// consumer-protocol groups), member_id (v1+), group_instance_id (v7+), retention_time_ms
/// (v2-4), topics [name, partitions [partition_index, committed_offset, commit_timestamp (v1
/// only), committed_leader_epoch (v6+), committed_metadata nullable string]]. Flexible from v8.
public struct OffsetCommitRequest: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var committedOffset: Int64 = 0
        public var commitTimestamp: Int64 = -1
        public var committedLeaderEpoch: Int32 = -1
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
    public var groupInstanceId: String? = nil
    public var retentionTimeMs: Int64 = -1
    public var topics: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        if version >= 1 {
            try c.int32(&generationId, "generation_id")
            try c.string(&memberId, "member_id")
        }
        if version >= 7 { try c.nullableString(&groupInstanceId, "group_instance_id") }
        if version >= 2 && version <= 4 { try c.int64(&retentionTimeMs, "retention_time_ms") }
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.name, "name")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int64(&p.committedOffset, "committed_offset")
                if version == 1 { try c.int64(&p.commitTimestamp, "commit_timestamp") }
                if version >= 6 { try c.int32(&p.committedLeaderEpoch, "committed_leader_epoch") }
                try c.nullableString(&p.committedMetadata, "committed_metadata")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// OffsetCommit response v0-9: throttle_time_ms (v3+), topics [name, partitions
/// [partition_index, error_code]].
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
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// OffsetFetch (9) request v0-9. v0-7: group_id, topics [name, partition_indexes] (nullable
/// v2+: all), require_stable (v7). v8+: groups [group_id, member_id (v9+), member_epoch
/// (v9+), topics nullable [name, partition_indexes]], require_stable. Flexible from v6.
/// Either way the request is read as `groups` (one group before v8).
public struct OffsetFetchRequest: KafkaMessage {
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitionIndexes: [Int32] = []
        public init(name: String = "", partitionIndexes: [Int32] = []) {
            self.name = name
            self.partitionIndexes = partitionIndexes
        }
    }
    public struct Group: Sendable, Equatable {
        public var groupId = ""
        public var memberId: String? = nil
        public var memberEpoch: Int32 = -1
        /// nil: every partition the group committed.
        public var topics: [Topic]? = nil
        public init(groupId: String = "", topics: [Topic]? = nil) {
            self.groupId = groupId
            self.topics = topics
        }
    }
    public var groups: [Group] = [Group()]
    public var requireStable = false
    public init() {}

    /// The single group of v0-7 requests.
    public var groupId: String {
        get { groups.first?.groupId ?? "" }
        set { if groups.isEmpty { groups = [Group()] }; groups[0].groupId = newValue }
    }
    public var topics: [Topic]? {
        get { groups.first?.topics }
        set { if groups.isEmpty { groups = [Group()] }; groups[0].topics = newValue }
    }

    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version <= 7 {
            var group = groups.first ?? Group()
            try c.string(&group.groupId, "group_id")
            if version >= 2 {
                try c.nullableArray(&group.topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
                    try c.string(&t.name, "name")
                    try c.int32Array(&t.partitionIndexes, "partition_indexes")
                    try c.taggedFields()
                }
            } else {
                var list = group.topics ?? []
                try c.array(&list, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
                    try c.string(&t.name, "name")
                    try c.int32Array(&t.partitionIndexes, "partition_indexes")
                }
                group.topics = list
            }
            groups = [group]
        } else {
            try c.array(&groups, "groups", make: { Group() }) { (c: inout WireCoder, g: inout Group) throws(WireError) in
                try c.string(&g.groupId, "group_id")
                if version >= 9 {
                    try c.nullableString(&g.memberId, "member_id")
                    try c.int32(&g.memberEpoch, "member_epoch")
                }
                try c.nullableArray(&g.topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
                    try c.string(&t.name, "name")
                    try c.int32Array(&t.partitionIndexes, "partition_indexes")
                    try c.taggedFields()
                }
                try c.taggedFields()
            }
        }
        if version >= 7 { try c.bool(&requireStable, "require_stable") }
        try c.taggedFields()
    }
}

/// OffsetFetch response v0-9. v0-7: throttle_time_ms (v3+), topics [name, partitions
/// [partition_index, committed_offset, committed_leader_epoch (v5+), metadata, error_code]],
/// error_code (v2+). v8+: throttle_time_ms, groups [group_id, topics [...], error_code].
public struct OffsetFetchResponse: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var committedOffset: Int64 = -1
        public var committedLeaderEpoch: Int32 = -1
        public var metadata: String? = ""
        public var errorCode: Int16 = 0
        public init() {}
    }
    public struct Topic: Sendable, Equatable {
        public var name = ""
        public var partitions: [Partition] = []
        public init() {}
    }
    public struct Group: Sendable, Equatable {
        public var groupId = ""
        public var topics: [Topic] = []
        public var errorCode: Int16 = 0
        public init(groupId: String = "") { self.groupId = groupId }
    }
    public var throttleTimeMs: Int32 = 0
    public var groups: [Group] = [Group()]
    public init() {}

    /// The single group of v0-7 responses.
    public var topics: [Topic] {
        get { groups.first?.topics ?? [] }
        set { if groups.isEmpty { groups = [Group()] }; groups[0].topics = newValue }
    }
    public var errorCode: Int16 {
        get { groups.first?.errorCode ?? 0 }
        set { if groups.isEmpty { groups = [Group()] }; groups[0].errorCode = newValue }
    }

    private static func codeTopic(_ c: inout WireCoder, _ t: inout Topic, version: Int16) throws(WireError) {
        try c.string(&t.name, "name")
        try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
            try c.int32(&p.partitionIndex, "partition_index")
            try c.int64(&p.committedOffset, "committed_offset")
            if version >= 5 { try c.int32(&p.committedLeaderEpoch, "committed_leader_epoch") }
            try c.nullableString(&p.metadata, "metadata")
            try c.int16(&p.errorCode, "error_code")
            try c.taggedFields()
        }
        try c.taggedFields()
    }

    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        if version >= 3 { try c.int32(&throttleTimeMs, "throttle_time_ms") }
        if version <= 7 {
            var group = groups.first ?? Group()
            try c.array(&group.topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
                try Self.codeTopic(&c, &t, version: version)
            }
            if version >= 2 { try c.int16(&group.errorCode, "error_code") }
            groups = [group]
        } else {
            try c.array(&groups, "groups", make: { Group() }) { (c: inout WireCoder, g: inout Group) throws(WireError) in
                try c.string(&g.groupId, "group_id")
                try c.array(&g.topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
                    try Self.codeTopic(&c, &t, version: version)
                }
                try c.int16(&g.errorCode, "error_code")
                try c.taggedFields()
            }
        }
        try c.taggedFields()
    }
}

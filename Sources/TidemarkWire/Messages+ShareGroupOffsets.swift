/// Share-group offsets, the admin side: DescribeShareGroupOffsets (90), AlterShareGroupOffsets
/// (91) and DeleteShareGroupOffsets (92), with Tidemark's per-partition details in a tagged
/// field. Flexible in every version.

/// DescribeShareGroupOffsets (90) request v0-1: groups [group_id string, topics nullable
/// [topic_name string, partitions [i32]]] (null topics: every partition the group has state for).
public struct DescribeShareGroupOffsetsRequest: KafkaMessage {
    public struct Topic: Sendable, Equatable {
        public var topicName = ""
        public var partitions: [Int32] = []
        public init(topicName: String = "", partitions: [Int32] = []) {
            self.topicName = topicName
            self.partitions = partitions
        }
    }
    public struct Group: Sendable, Equatable {
        public var groupId = ""
        public var topics: [Topic]? = nil
        public init(groupId: String = "", topics: [Topic]? = nil) {
            self.groupId = groupId
            self.topics = topics
        }
    }
    public var groups: [Group] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.array(&groups, "groups", make: { Group() }) { (c: inout WireCoder, g: inout Group) throws(WireError) in
            try c.string(&g.groupId, "group_id")
            try c.nullableArray(&g.topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
                try c.string(&t.topicName, "topic_name")
                try c.int32Array(&t.partitions, "partitions")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// Tidemark's details of a share partition, carried in tagged field 10000 of each
/// DescribeShareGroupOffsets partition (other clients skip it, as they skip any unknown tag):
/// ```
/// end_offset i64, log_end_offset i64, available i32, acquired i32, acknowledged i32,
/// archived i32, holders i32 count, [member_id i16-length string, records i32,
/// earliest_lock_expiry_ms i64], dead_lettered i64, dead_letters_pending i32, delayed i32,
/// start_offset i64, lag i64
/// ```
/// (fields from dead_lettered on may be absent, from an earlier version: read as 0, and
/// start_offset and lag as -1). `available` counts records due now, `delayed` those waiting
/// for their delivery time or retry backoff (Kafka's AVAILABLE state holds both). For a
/// partition the group has no state in yet (the wire's start offset -1), `start_offset` and
/// `lag` are where a worker would start and what it would find.

public struct SharePartitionDetails: Sendable, Equatable {
    public static let tag: UInt32 = 10_000
    public struct Holder: Sendable, Equatable {
        public var memberId: String
        public var records: Int32
        public var earliestLockExpiryMs: Int64
        public init(memberId: String, records: Int32, earliestLockExpiryMs: Int64) {
            self.memberId = memberId
            self.records = records
            self.earliestLockExpiryMs = earliestLockExpiryMs
        }
    }
    public var endOffset: Int64 = 0
    public var logEndOffset: Int64 = 0
    public var available: Int32 = 0
    public var acquired: Int32 = 0
    public var acknowledged: Int32 = 0
    public var archived: Int32 = 0
    public var holders: [Holder] = []
    public var deadLettered: Int64 = 0
    public var deadLettersPending: Int32 = 0
    public var delayed: Int32 = 0
    public var startOffset: Int64 = -1
    public var lag: Int64 = -1
    public init() {}

    public func encoded() throws(WireError) -> [UInt8] {
        var c = WireCoder(writingFlexible: false)
        var copy = self
        try copy.code(&c)
        // No records field here: everything is in the coder's own buffer.
        guard case .bytes(let bytes)? = c.finishedChunks().first, c.finishedChunks().count == 1 else { return [] }
        return Array(bytes)
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> SharePartitionDetails {
        var c = WireCoder(reading: bytes)
        var details = SharePartitionDetails()
        try details.code(&c)
        return details
    }

    mutating func code(_ c: inout WireCoder) throws(WireError) {
        try c.int64(&endOffset, "end_offset")
        try c.int64(&logEndOffset, "log_end_offset")
        try c.int32(&available, "available")
        try c.int32(&acquired, "acquired")
        try c.int32(&acknowledged, "acknowledged")
        try c.int32(&archived, "archived")
        try c.array(&holders, "holders", make: { Holder(memberId: "", records: 0, earliestLockExpiryMs: 0) }) {
            (c: inout WireCoder, h: inout Holder) throws(WireError) in
            try c.string(&h.memberId, "member_id")
            try c.int32(&h.records, "records")
            try c.int64(&h.earliestLockExpiryMs, "earliest_lock_expiry_ms")
        }
        if !c.isReading || c.remaining >= 12 {
            try c.int64(&deadLettered, "dead_lettered")
            try c.int32(&deadLettersPending, "dead_letters_pending")
        }
        if !c.isReading || c.remaining >= 20 {
            try c.int32(&delayed, "delayed")
            try c.int64(&startOffset, "start_offset")
            try c.int64(&lag, "lag")
        }
    }
}

/// DescribeShareGroupOffsets (90) response v0-1:
/// ```
/// throttle_time_ms i32, groups [group_id string, topics [topic_name string, topic_id uuid,
///   partitions [partition_index i32, start_offset i64, leader_epoch i32, lag i64 (v1),
///   error_code i16, error_message nullable string, (tag 10000: SharePartitionDetails)]],
///   error_code i16, error_message nullable string]
/// ```
public struct DescribeShareGroupOffsetsResponse: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var startOffset: Int64 = -1
        public var leaderEpoch: Int32 = 0
        public var lag: Int64 = -1
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        /// Tidemark's own details (tag 10000), nil from other brokers.
        public var details: SharePartitionDetails? = nil
        public init(partitionIndex: Int32 = 0) { self.partitionIndex = partitionIndex }
    }
    public struct Topic: Sendable, Equatable {
        public var topicName = ""
        public var topicId = WireUUID.zero
        public var partitions: [Partition] = []
        public init(topicName: String = "", topicId: WireUUID = .zero) {
            self.topicName = topicName
            self.topicId = topicId
        }
    }
    public struct Group: Sendable, Equatable {
        public var groupId = ""
        public var topics: [Topic] = []
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public init(groupId: String = "") { self.groupId = groupId }
    }
    public var throttleTimeMs: Int32 = 0
    public var groups: [Group] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.array(&groups, "groups", make: { Group() }) { (c: inout WireCoder, g: inout Group) throws(WireError) in
            try c.string(&g.groupId, "group_id")
            try c.array(&g.topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
                try c.string(&t.topicName, "topic_name")
                try c.uuid(&t.topicId, "topic_id")
                try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                    try c.int32(&p.partitionIndex, "partition_index")
                    try c.int64(&p.startOffset, "start_offset")
                    try c.int32(&p.leaderEpoch, "leader_epoch")
                    if version >= 1 { try c.int64(&p.lag, "lag") }
                    try c.int16(&p.errorCode, "error_code")
                    try c.nullableString(&p.errorMessage, "error_message")
                    var tags: [UInt32: [UInt8]] = [:]
                    if !c.isReading, let details = p.details { tags[SharePartitionDetails.tag] = try details.encoded() }
                    try c.taggedFields(&tags)
                    if c.isReading, let bytes = tags[SharePartitionDetails.tag] { p.details = try SharePartitionDetails.decode(bytes) }
                }
                try c.taggedFields()
            }
            try c.int16(&g.errorCode, "error_code")
            try c.nullableString(&g.errorMessage, "error_message")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// AlterShareGroupOffsets (91) request v0: group_id string, topics [topic_name string,
/// partitions [partition_index i32, start_offset i64]].
public struct AlterShareGroupOffsetsRequest: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var startOffset: Int64 = 0
        public init(partitionIndex: Int32 = 0, startOffset: Int64 = 0) {
            self.partitionIndex = partitionIndex
            self.startOffset = startOffset
        }
    }
    public struct Topic: Sendable, Equatable {
        public var topicName = ""
        public var partitions: [Partition] = []
        public init(topicName: String = "", partitions: [Partition] = []) {
            self.topicName = topicName
            self.partitions = partitions
        }
    }
    public var groupId = ""
    public var topics: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        try c.array(&topics, "topics", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.topicName, "topic_name")
            try c.array(&t.partitions, "partitions", make: { Partition() }) { (c: inout WireCoder, p: inout Partition) throws(WireError) in
                try c.int32(&p.partitionIndex, "partition_index")
                try c.int64(&p.startOffset, "start_offset")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// AlterShareGroupOffsets (91) response v0: throttle_time_ms i32, error_code i16, error_message
/// nullable string, responses [topic_name string, topic_id uuid, partitions [partition_index
/// i32, error_code i16, error_message nullable string]].
public struct AlterShareGroupOffsetsResponse: KafkaMessage {
    public struct Partition: Sendable, Equatable {
        public var partitionIndex: Int32 = 0
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public init(partitionIndex: Int32 = 0) { self.partitionIndex = partitionIndex }
    }
    public struct Topic: Sendable, Equatable {
        public var topicName = ""
        public var topicId = WireUUID.zero
        public var partitions: [Partition] = []
        public init(topicName: String = "", topicId: WireUUID = .zero) {
            self.topicName = topicName
            self.topicId = topicId
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var errorMessage: String? = nil
    public var responses: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.int16(&errorCode, "error_code")
        try c.nullableString(&errorMessage, "error_message")
        try c.array(&responses, "responses", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.topicName, "topic_name")
            try c.uuid(&t.topicId, "topic_id")
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

/// DeleteShareGroupOffsets (92) request v0: group_id string, topics [topic_name string].
public struct DeleteShareGroupOffsetsRequest: KafkaMessage {
    public var groupId = ""
    public var topicNames: [String] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.string(&groupId, "group_id")
        try c.array(&topicNames, "topics", make: { "" }) { (c: inout WireCoder, name: inout String) throws(WireError) in
            try c.string(&name, "topic_name")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// DeleteShareGroupOffsets (92) response v0: throttle_time_ms i32, error_code i16,
/// error_message nullable string, responses [topic_name string, topic_id uuid, error_code i16,
/// error_message nullable string].
public struct DeleteShareGroupOffsetsResponse: KafkaMessage {
    public struct Topic: Sendable, Equatable {
        public var topicName = ""
        public var topicId = WireUUID.zero
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public init(topicName: String = "", topicId: WireUUID = .zero) {
            self.topicName = topicName
            self.topicId = topicId
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var errorMessage: String? = nil
    public var responses: [Topic] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.int16(&errorCode, "error_code")
        try c.nullableString(&errorMessage, "error_message")
        try c.array(&responses, "responses", make: { Topic() }) { (c: inout WireCoder, t: inout Topic) throws(WireError) in
            try c.string(&t.topicName, "topic_name")
            try c.uuid(&t.topicId, "topic_id")
            try c.int16(&t.errorCode, "error_code")
            try c.nullableString(&t.errorMessage, "error_message")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

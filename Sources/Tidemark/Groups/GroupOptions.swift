/// Settings of the group coordinator.
public struct GroupOptions: Sendable {
    /// Session timeouts a member may ask for (Kafka's group.min/max.session.timeout.ms).
    public var minSessionTimeoutMs: Int32 = 6000
    public var maxSessionTimeoutMs: Int32 = 1_800_000
    /// How long a new (empty) group waits for more members before its first generation.
    public var initialRebalanceDelayMs: Int64 = 0
    /// The longest a rebalance waits for members to rejoin, whatever they asked for (a
    /// member's rebalance timeout is its max.poll.interval.ms, 5 minutes by default). By
    /// default what they asked for, as in Kafka: a worker whose jobs run longer (a
    /// max.poll.interval.ms of hours) is waited for, not evicted mid-job (its job given to
    /// another worker while it runs). What a waiting member keeps is bounded by
    /// `membersMaxBytes`, however long it waits.
    public var maxRebalanceTimeoutMs: Int64 = Int64(Int32.max)
    /// How long a new member's first JoinGroup may wait for its rebalance (Kafka's
    /// classic-group new-member join timeout, 5 minutes): it has no id to heartbeat with, and
    /// a client that gave up (a request timeout during a long rebalance) and came back as
    /// another member left a defunct one to be given partitions. Past it the join is answered
    /// UNKNOWN_MEMBER_ID (a client still there joins again).
    public var newMemberJoinTimeoutMs: Int64 = 300_000
    /// An empty group's state machine is dropped after this (its committed offsets stay,
    /// under `offsetsRetentionMs`): groups made by clients that never come back cost nothing.
    public var emptyGroupRetentionMs: Int64 = 60_000
    /// Committed offsets of a group without members are deleted once its newest commit is
    /// this old (Kafka's offsets.retention.minutes, 7 days).
    public var offsetsRetentionMs: Int64 = 7 * 24 * 3600 * 1000
    /// How often expired offsets are looked for (offsets.retention.check.interval.ms).
    public var offsetsRetentionCheckIntervalMs: Int64 = 600_000
    /// The committed-offsets log is rewritten (live entries only) past this size.
    public var offsetsCompactionBytes: Int64 = 16 << 20
    /// The most memory committed offsets take, all groups together (an estimate: about 100
    /// bytes per partition plus its topic name and metadata; Tidemark's
    /// offsets.memory.max.bytes). A commit that would pass it is refused with
    /// INVALID_COMMIT_OFFSET_SIZE; commits that move existing offsets on always go through.
    /// The default holds about 2 million partitions' offsets without metadata.
    public var offsetsMaxMemoryBytes = 256 << 20
    /// The longest metadata string a committed offset may carry (Kafka's
    /// offset.metadata.max.bytes), counted as Kafka counts it: UTF-16 code units (Java's
    /// `String.length()`), so 4,096 accented letters fit; longer ones are refused with
    /// OFFSET_METADATA_TOO_LARGE. See `metadataFits`.
    public var offsetMetadataMaxBytes = 4096

    /// Whether commit metadata is within `offsetMetadataMaxBytes`, and within the offsets
    /// log's 16-bit string length in UTF-8.
    public func metadataFits(_ metadata: String) -> Bool {
        metadata.utf16.count <= offsetMetadataMaxBytes && metadata.utf8.count <= Int(Int16.max)
    }
    /// Consumer-protocol (KIP-848) groups: a member is removed when it has not heartbeated for
    /// this long (Kafka's group.consumer.session.timeout.ms; a group's
    /// `consumer.session.timeout.ms` config overrides it).
    public var consumerSessionTimeoutMs: Int64 = 45_000
    /// How often consumer-protocol members heartbeat (group.consumer.heartbeat.interval.ms;
    /// overridden per group by `consumer.heartbeat.interval.ms`).
    public var consumerHeartbeatIntervalMs: Int32 = 5_000
    /// The most members a consumer-protocol group takes (group.consumer.max.size); more are
    /// refused with GROUP_MAX_SIZE_REACHED.
    public var consumerGroupMaxSize = 1_000
    /// The most members a classic (JoinGroup) group takes (Kafka's group.max.size, unbounded
    /// there); more are refused with GROUP_MAX_SIZE_REACHED.
    public var classicGroupMaxSize = 1_000
    /// The most memory group members keep, all groups together: classic members' protocol
    /// metadata (up to 1 MiB each), assignments and ids, consumer-protocol members'
    /// subscriptions (up to 10,000 names each) and ids (Tidemark's group.members.max.bytes). A
    /// join, heartbeat or sync that would pass it is refused with GROUP_MAX_SIZE_REACHED;
    /// members already in keep their place.
    public var membersMaxBytes = 256 << 20
    /// Share groups (KIP-932), Kafka's broker names: group.share.record.lock.duration.ms,
    /// group.share.delivery.count.limit, group.share.partition.max.record.locks,
    /// group.share.heartbeat.interval.ms, group.share.session.timeout.ms, group.share.max.size.
    /// Each but the last is overridden per group by its `share.*` group config.
    public var shareRecordLockDurationMs: Int64 = 30_000
    public var shareDeliveryCountLimit: Int16 = 5
    public var sharePartitionMaxRecordLocks = 2_000
    public var shareHeartbeatIntervalMs: Int32 = 5_000
    public var shareSessionTimeoutMs: Int64 = 45_000
    public var shareGroupMaxSize = 200
    /// The most entries a share partition's window keeps in memory (32 bytes each): records
    /// not finished (delayed ones included) and acknowledged ones not yet cut. A window that is
    /// out of them reads no further records until some finish.
    public var shareWindowMaxRecords = 100_000
    /// The most entries all share partitions' windows keep together
    /// (group.share.windows.total.max.records; 32 bytes each). Each group keeps its own window
    /// of a partition, so records waiting unfinished (delayed jobs) are kept once per group
    /// that reads them: without this, 1,000 groups reading 100,000 delayed jobs of one
    /// partition kept 3.2 GB. Past it, a window still grows to its partition's record locks
    /// (`share.partition.max.record.locks`; eleven times that with per-key ordering), enough to
    /// hand out what it holds, but reads no further behind records waiting unfinished until
    /// some finish.
    public var shareWindowsTotalMaxRecords = 8_000_000
    /// The most share groups the broker keeps (group.share.max.groups): a group counts while it
    /// has members or share state (start offsets, windows), until DeleteGroups or
    /// DeleteShareGroupOffsets. A heartbeat or offset reset that would make one more is refused
    /// with GROUP_MAX_SIZE_REACHED. Kafka 4.0's default is 10; a job broker's groups are its
    /// queues' worker pools, so this allows more. Each group's state grows with the partitions
    /// it reads (a window each), so this and the partition count bound the share state.
    public var shareMaxGroups = 1_000
    /// Retry backoff of share groups (Tidemark's; per group share.redelivery.backoff.ms and
    /// share.redelivery.backoff.max.ms): 0 redelivers at once, as Kafka does.
    public var shareRedeliveryBackoffMs: Int64 = 0
    public var shareRedeliveryBackoffMaxMs: Int64 = 60_000
    /// A share group's dead-letter topic (group config errors.deadletterqueue.topic.name)
    /// must start with this (KIP-1191's errors.deadletterqueue.topic.name.prefix).
    public var deadLetterTopicPrefix = "dlq."
    /// Partitions of a dead-letter topic created on first use.
    public var deadLetterTopicPartitions = 1
    /// Share sessions kept at once, and how long an unused one is kept once its member is no
    /// longer in the group (a live member's session stays: a worker holding a job sends
    /// nothing until it acknowledges). With all sessions taken, a new one replaces the one of
    /// a member no longer in its group unused the longest; else SHARE_SESSION_LIMIT_REACHED.
    public var shareMaxSessions = 2_000
    public var shareSessionIdleMs: Int64 = 120_000
    /// The share-state log is rewritten (newest snapshots only) past this size.
    public var shareStateCompactionBytes: Int64 = 16 << 20
    public init() {}

    /// Refuses share settings that mean nothing (a lock, a session or a heartbeat of 0 ms or
    /// less, fewer than one delivery or lock, a negative backoff): `Broker.open` checks them.
    /// Large durations are fine: deadlines saturate.
    public func validate() throws(TidemarkError) {
        func require(_ holds: Bool, _ what: String) throws(TidemarkError) {
            if !holds { throw TidemarkError(.invalidConfig, "GroupOptions: \(what)") }
        }
        // (A share-state snapshot keeps at most 1,000,000 unfinished records: a larger window could not be read back.)
        try require(shareWindowMaxRecords >= 1 && shareWindowMaxRecords <= 1_000_000, "shareWindowMaxRecords must be 1...1,000,000")
        try require(shareWindowsTotalMaxRecords >= 1 && shareWindowsTotalMaxRecords <= 1_000_000_000,
            "shareWindowsTotalMaxRecords must be 1...1,000,000,000")
        try require(shareRecordLockDurationMs > 0, "shareRecordLockDurationMs must be positive")
        try require(shareDeliveryCountLimit >= 1, "shareDeliveryCountLimit must be at least 1")
        try require(sharePartitionMaxRecordLocks >= 1 && sharePartitionMaxRecordLocks <= 1_000_000, "sharePartitionMaxRecordLocks must be 1...1,000,000")
        try require(shareHeartbeatIntervalMs > 0 && shareSessionTimeoutMs > 0, "share heartbeat and session timeout must be positive")
        try require(shareRedeliveryBackoffMs >= 0 && shareRedeliveryBackoffMaxMs >= 0, "share redelivery backoffs must not be negative")
        try require(classicGroupMaxSize >= 1 && membersMaxBytes >= 0, "classicGroupMaxSize must be at least 1 and membersMaxBytes not negative")
        try require(shareGroupMaxSize >= 1 && shareMaxSessions >= 1 && shareMaxGroups >= 1,
            "shareGroupMaxSize, shareMaxSessions and shareMaxGroups must be at least 1")
    }
}

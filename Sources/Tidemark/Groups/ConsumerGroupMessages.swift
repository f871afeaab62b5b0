import Foundation

/// The consumer-group protocol's (KIP-848) messages as the engine sees them, the topics a
/// group is assigned from, and the states Kafka names; `ConsumerGroup` is the state machine
/// that answers them.

/// A ConsumerGroupHeartbeat (KIP-848), as the engine sees it: topics by name (the server
/// maps Kafka's topic ids), nil for "unchanged since my last heartbeat".
public struct ConsumerHeartbeat: Sendable {
    public var groupId: String
    /// Empty only when a v0 member joins: the broker then makes one.
    public var memberId: String
    /// 0 joins, -1 leaves, -2 leaves for now (a static member), > 0 is the member's epoch.
    public var memberEpoch: Int32
    public var instanceId: String?
    public var rackId: String?
    /// -1: unchanged.
    public var rebalanceTimeoutMs: Int32
    public var subscribedTopicNames: [String]?
    public var subscribedTopicRegex: String?
    public var serverAssignor: String?
    /// The partitions the member owns now.
    public var ownedPartitions: [TopicPartition]?
    public var clientId: String
    public var clientHost: String

    public init(
        groupId: String, memberId: String, memberEpoch: Int32, instanceId: String? = nil, rackId: String? = nil,
        rebalanceTimeoutMs: Int32 = -1, subscribedTopicNames: [String]? = nil, subscribedTopicRegex: String? = nil,
        serverAssignor: String? = nil, ownedPartitions: [TopicPartition]? = nil, clientId: String = "",
        clientHost: String = ""
    ) {
        self.groupId = groupId
        self.memberId = memberId
        self.memberEpoch = memberEpoch
        self.instanceId = instanceId
        self.rackId = rackId
        self.rebalanceTimeoutMs = rebalanceTimeoutMs
        self.subscribedTopicNames = subscribedTopicNames
        self.subscribedTopicRegex = subscribedTopicRegex
        self.serverAssignor = serverAssignor
        self.ownedPartitions = ownedPartitions
        self.clientId = clientId
        self.clientHost = clientHost
    }

    /// Given but blank: nothing but spaces and control characters, as Java's `trim` leaves empty.
    public static func isBlank(_ value: String?) -> Bool { value.map { $0.utf8.allSatisfy { $0 <= 0x20 } } ?? false }

    /// Why Kafka's coordinator would refuse this heartbeat as malformed (INVALID_REQUEST),
    /// before it looks at any group; nil when well-formed. Ids given but blank (nothing but
    /// spaces and control characters, as Java's `trim` sees them); a member id missing where
    /// the member must have one (epochs above 0 and -1); a join without a rebalance timeout,
    /// with owned partitions, or subscribing to nothing; -2 without an instance id; epochs
    /// below -2. (From v1 the wire demands a member id at every epoch: the Kafka front checks
    /// that, and that a join's owned partitions are given, as an empty list.)
    public var malformation: String? {
        let blank = Self.isBlank
        if blank(groupId) { return "GroupId can't be empty." }
        if blank(instanceId) { return "InstanceId can't be empty." }
        if blank(rackId) { return "RackId can't be empty." }
        switch memberEpoch {
        case 1..., -1:
            if blank(memberId) { return "MemberId can't be empty." }
        case 0:
            if rebalanceTimeoutMs == -1 { return "RebalanceTimeoutMs must be provided in first request." }
            if let owned = ownedPartitions, !owned.isEmpty { return "TopicPartitions must be empty when (re-)joining." }
            if (subscribedTopicNames ?? []).isEmpty && (subscribedTopicRegex ?? "").isEmpty {
                return "SubscribedTopicNames or SubscribedTopicRegex must be set in first request."
            }
        case ConsumerGroup.leftForNowEpoch:
            if instanceId == nil { return "InstanceId can't be null." }
        default:
            return "MemberEpoch is invalid."
        }
        return nil
    }
}

/// The answer to a ConsumerGroupHeartbeat.
public struct ConsumerHeartbeatResult: Sendable, Equatable {
    public var error: TidemarkError.Code?
    public var errorMessage: String?
    public var memberId: String
    public var memberEpoch: Int32
    public var heartbeatIntervalMs: Int32
    /// The member's partitions, when it must (re)learn them; nil when unchanged.
    public var assignment: [TopicPartition]?

    static func failure(_ code: TidemarkError.Code, _ message: String, memberId: String = "") -> ConsumerHeartbeatResult {
        ConsumerHeartbeatResult(error: code, errorMessage: message, memberId: memberId, memberEpoch: -1, heartbeatIntervalMs: 0)
    }
}

/// The topics a group may subscribe to: read when a group's subscribed metadata is refreshed.
public struct TopicCatalog: Sendable {
    public var partitionCount: @Sendable (String) -> Int?
    public var topicNames: @Sendable () -> [String]
    /// A topic's id, which the group's records name its partitions by (`ConsumerGroupSnapshot`).
    public var topicId: @Sendable (String) -> UUID?
    /// A number that changes whenever a topic is created or deleted or gains partitions:
    /// groups re-read their subscribed topics only then. Nil: every second.
    public var generation: (@Sendable () -> UInt64)?
    public init(
        partitionCount: @escaping @Sendable (String) -> Int?, topicNames: @escaping @Sendable () -> [String],
        topicId: @escaping @Sendable (String) -> UUID? = { _ in nil }, generation: (@Sendable () -> UInt64)? = nil
    ) {
        self.partitionCount = partitionCount
        self.topicNames = topicNames
        self.topicId = topicId
        self.generation = generation
    }
}

/// A consumer-protocol group's state, as Kafka names it.
public enum ConsumerGroupState: String, Sendable {
    case empty = "Empty"
    case assigning = "Assigning"
    case reconciling = "Reconciling"
    case stable = "Stable"
}

/// What ConsumerGroupDescribe reports.
public struct ConsumerGroupDescription: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        public var memberId: String
        public var instanceId: String?
        public var rackId: String?
        public var memberEpoch: Int32
        public var clientId: String
        public var clientHost: String
        public var subscribedTopicNames: [String]
        public var subscribedTopicRegex: String?
        public var assignment: [TopicPartition]
        public var targetAssignment: [TopicPartition]
    }
    public var groupId: String
    public var state: ConsumerGroupState
    public var groupEpoch: Int32
    public var assignmentEpoch: Int32
    public var assignorName: String
    public var members: [Member]
}

/// The classic group protocol's messages as the engine sees them (JoinGroup, SyncGroup) and
/// the states Kafka names; `ClassicGroup` is the state machine that answers them.

/// The state of a classic consumer group, as Kafka names them.
public enum GroupState: String, Sendable, Equatable {
    case empty = "Empty"
    case preparingRebalance = "PreparingRebalance"
    case completingRebalance = "CompletingRebalance"
    case stable = "Stable"
    case dead = "Dead"
}

/// A JoinGroup request, as the engine sees it.
public struct JoinGroupRequest: Sendable {
    public var groupId: String
    /// Empty for a member joining for the first time.
    public var memberId: String
    public var groupInstanceId: String?
    public var clientId: String
    public var clientHost: String
    public var sessionTimeoutMs: Int32
    public var rebalanceTimeoutMs: Int32
    public var protocolType: String
    /// (name, metadata) in the member's order of preference.
    public var protocols: [(name: String, metadata: [UInt8])]
    /// JoinGroup v4+: a member without an id first gets one with `.memberIdRequired`.
    public var requireKnownMemberId: Bool
    /// JoinGroup v9+ (KIP-814): a static leader replaced without a rebalance is told it leads,
    /// with the members, and to skip the assignment (`JoinGroupResponse.skipAssignment`).
    public var supportsSkipAssignment: Bool

    public init(
        groupId: String, memberId: String = "", groupInstanceId: String? = nil, clientId: String, clientHost: String = "",
        sessionTimeoutMs: Int32, rebalanceTimeoutMs: Int32, protocolType: String,
        protocols: [(name: String, metadata: [UInt8])], requireKnownMemberId: Bool = false, supportsSkipAssignment: Bool = false
    ) {
        self.groupId = groupId
        self.memberId = memberId
        self.groupInstanceId = groupInstanceId
        self.clientId = clientId
        self.clientHost = clientHost
        self.sessionTimeoutMs = sessionTimeoutMs
        self.rebalanceTimeoutMs = rebalanceTimeoutMs
        self.protocolType = protocolType
        self.protocols = protocols
        self.requireKnownMemberId = requireKnownMemberId
        self.supportsSkipAssignment = supportsSkipAssignment
    }
}

public struct JoinGroupResponse: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        public var memberId: String
        public var groupInstanceId: String?
        public var metadata: [UInt8]
    }
    public var error: TidemarkError.Code?
    public var generationId: Int32
    public var protocolType: String?
    public var protocolName: String?
    public var leaderId: String
    public var memberId: String
    /// Every member with its metadata for the chosen protocol: for the leader only.
    public var members: [Member]
    /// The leader is to sync without assigning (a static leader replaced in a Stable group,
    /// JoinGroup v9+): the group keeps its assignment.
    public var skipAssignment = false

    static func failure(_ code: TidemarkError.Code, memberId: String = "") -> JoinGroupResponse {
        JoinGroupResponse(
            error: code, generationId: -1, protocolType: nil, protocolName: nil, leaderId: "", memberId: memberId, members: [])
    }
}

public struct SyncGroupResponse: Sendable, Equatable {
    public var error: TidemarkError.Code?
    public var protocolType: String?
    public var protocolName: String?
    public var assignment: [UInt8]

    static func failure(_ code: TidemarkError.Code) -> SyncGroupResponse {
        SyncGroupResponse(error: code, protocolType: nil, protocolName: nil, assignment: [])
    }
}

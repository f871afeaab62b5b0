/// Settings of the group coordinator.
public struct GroupOptions: Sendable {
    /// Session timeouts a member may ask for (Kafka's group.min/max.session.timeout.ms).
    public var minSessionTimeoutMs: Int32 = 6000
    public var maxSessionTimeoutMs: Int32 = 1_800_000
    /// How long a new (empty) group waits for more members before its first generation.
    public var initialRebalanceDelayMs: Int64 = 0
    /// The longest a rebalance waits for members to rejoin, whatever they asked for (a
    /// member's rebalance timeout is its max.poll.interval.ms, 5 minutes by default).
    public var maxRebalanceTimeoutMs: Int64 = 30 * 60 * 1000
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
    /// The longest metadata string a committed offset may carry, in UTF-8 bytes (Kafka's
    /// offset.metadata.max.bytes); longer ones are refused with OFFSET_METADATA_TOO_LARGE.
    public var offsetMetadataMaxBytes = 4096
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
    /// nothing until it acknowledges). With all sessions taken, a new one replaces the one
    /// unused the longest if unused for `shareSessionIdleMs`; else SHARE_SESSION_LIMIT_REACHED.
    public var shareMaxSessions = 2_000
    public var shareSessionIdleMs: Int64 = 120_000
    /// The share-state log is rewritten (newest snapshots only) past this size.
    public var shareStateCompactionBytes: Int64 = 16 << 20
    public init() {}
}

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

    public init(
        groupId: String, memberId: String = "", groupInstanceId: String? = nil, clientId: String, clientHost: String = "",
        sessionTimeoutMs: Int32, rebalanceTimeoutMs: Int32, protocolType: String,
        protocols: [(name: String, metadata: [UInt8])], requireKnownMemberId: Bool = false
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

/// One classic consumer group as a pure state machine: every input carries `nowMs`, every
/// output is a value (responses for the caller and for members waiting in Join or Sync).
/// No clock, no I/O, no concurrency: `GroupCoordinator` owns instances under its lock.
///
/// States: Empty -> PreparingRebalance (a join) -> CompletingRebalance (all known members
/// rejoined, or the rebalance timeout passed: the stragglers are removed; generation + 1) ->
/// Stable (the leader's SyncGroup). A join, leave or session expiry in Stable or
/// CompletingRebalance goes back to PreparingRebalance. When the last member goes: Empty.
struct ClassicGroup: Sendable {
    struct Member: Sendable {
        var id: String
        var groupInstanceId: String?
        var clientId: String
        var clientHost: String
        var sessionTimeoutMs: Int32
        var rebalanceTimeoutMs: Int32
        var protocolType: String
        var protocols: [(name: String, metadata: [UInt8])]
        var assignment: [UInt8] = []
        var lastHeartbeatMs: Int64
        var awaitingJoin = false
        var awaitingSync = false
    }

    /// A response owed to a member that is waiting for it.
    enum Delivery: Sendable {
        case join(memberId: String, JoinGroupResponse)
        case sync(memberId: String, SyncGroupResponse)
    }

    let groupId: String
    let options: GroupOptions
    private(set) var state: GroupState = .empty
    private(set) var generationId: Int32 = 0
    private(set) var protocolType: String?
    private(set) var protocolName: String?
    private(set) var leaderId: String?
    private(set) var members: [String: Member] = [:]
    /// Join order, for choosing a leader.
    private(set) var memberOrder: [String] = []
    /// Ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    private var pendingMemberIds: [String: Int64] = [:]
    /// Member ids handed out (MEMBER_ID_REQUIRED) and not yet used, per group, at most.
    static let maxPendingMemberIds = 1000
    var pendingMemberIdCount: Int { pendingMemberIds.count }
    /// Nothing waits on or is remembered by the group: it can be dropped once empty a while.
    var isIdle: Bool { members.isEmpty && pendingMemberIds.isEmpty && (state == .empty || state == .dead) }
    private var rebalanceDeadlineMs: Int64 = 0
    private var earliestCompletionMs: Int64 = 0
    private var memberSequence = 0

    init(groupId: String, options: GroupOptions) {
        self.groupId = groupId
        self.options = options
    }

    /// Longest client-id prefix a member id carries: member ids are echoed in every group
    /// response, so their size must not follow whatever a client calls itself.
    static let memberIdClientPrefixMaxBytes = 128

    private mutating func newMemberId(clientId: String) -> String {
        memberSequence += 1
        var prefix = ""
        for character in clientId {
            if prefix.utf8.count + character.utf8.count > Self.memberIdClientPrefixMaxBytes { break }
            prefix.append(character)
        }
        if prefix.isEmpty { prefix = "member" }
        return "\(prefix)-\(memberSequence)-\(UInt32.random(in: .min ... .max))"
    }

    // MARK: Join

    /// Handles a JoinGroup. Returns the caller's response when it is known now; nil means
    /// the caller waits for a `.join` delivery (when the rebalance completes).
    mutating func join(_ request: JoinGroupRequest, nowMs: Int64) -> (JoinGroupResponse?, [Delivery]) {
        guard request.sessionTimeoutMs >= options.minSessionTimeoutMs && request.sessionTimeoutMs <= options.maxSessionTimeoutMs else {
            return (.failure(.invalidSessionTimeout, memberId: request.memberId), [])
        }
        guard !request.protocols.isEmpty, !request.protocolType.isEmpty else {
            return (.failure(.inconsistentGroupProtocol, memberId: request.memberId), [])
        }
        if state == .dead { return (.failure(.unknownMemberId, memberId: request.memberId), []) }
        if !members.isEmpty {
            let supported = commonProtocols(adding: request.protocols.map(\.name), excluding: request.memberId)
            if request.protocolType != protocolTypeOfMembers || supported.isEmpty {
                return (.failure(.inconsistentGroupProtocol, memberId: request.memberId), [])
            }
        }

        var memberId = request.memberId
        if memberId.isEmpty {
            memberId = newMemberId(clientId: request.clientId)
            if request.requireKnownMemberId {
                if pendingMemberIds.count >= Self.maxPendingMemberIds {
                    // Ids handed out and never used: the ones closest to expiring go first.
                    for (id, _) in pendingMemberIds.sorted(by: { $0.value < $1.value }).prefix(Self.maxPendingMemberIds / 10) {
                        pendingMemberIds.removeValue(forKey: id)
                    }
                }
                pendingMemberIds[memberId] = nowMs + Int64(request.sessionTimeoutMs)
                return (.failure(.memberIdRequired, memberId: memberId), [])
            }
            return addMemberAndRebalance(request, memberId: memberId, nowMs: nowMs)
        }
        if pendingMemberIds.removeValue(forKey: memberId) != nil {
            return addMemberAndRebalance(request, memberId: memberId, nowMs: nowMs)
        }
        guard var member = members[memberId] else { return (.failure(.unknownMemberId, memberId: memberId), []) }

        let metadataChanged = !sameProtocols(member.protocols, request.protocols)
        member.protocols = request.protocols
        member.sessionTimeoutMs = request.sessionTimeoutMs
        member.rebalanceTimeoutMs = request.rebalanceTimeoutMs
        member.clientId = request.clientId
        member.lastHeartbeatMs = nowMs
        members[memberId] = member

        switch state {
        case .preparingRebalance:
            members[memberId]!.awaitingJoin = true
            return (nil, maybeCompleteJoin(nowMs: nowMs))
        case .completingRebalance where !metadataChanged, .stable where !metadataChanged && memberId != leaderId:
            // Same metadata: the current generation stands; answer at once.
            return (joinResponse(for: memberId), [])
        default:
            members[memberId]!.awaitingJoin = true
            var deliveries = prepareRebalance(nowMs: nowMs)
            deliveries += maybeCompleteJoin(nowMs: nowMs)
            return (nil, deliveries)
        }
    }

    private mutating func addMemberAndRebalance(_ request: JoinGroupRequest, memberId: String, nowMs: Int64)
        -> (JoinGroupResponse?, [Delivery])
    {
        members[memberId] = Member(
            id: memberId, groupInstanceId: request.groupInstanceId, clientId: request.clientId,
            clientHost: request.clientHost, sessionTimeoutMs: request.sessionTimeoutMs,
            rebalanceTimeoutMs: request.rebalanceTimeoutMs, protocolType: request.protocolType,
            protocols: request.protocols, lastHeartbeatMs: nowMs, awaitingJoin: true)
        memberOrder.append(memberId)
        var deliveries: [Delivery] = []
        if state != .preparingRebalance { deliveries += prepareRebalance(nowMs: nowMs) }
        deliveries += maybeCompleteJoin(nowMs: nowMs)
        return (nil, deliveries)
    }

    private var protocolTypeOfMembers: String? { members.values.first?.protocolType }

    private func commonProtocols(adding names: [String], excluding memberId: String) -> Set<String> {
        var common = Set(names)
        for (id, member) in members where id != memberId { common.formIntersection(member.protocols.map(\.name)) }
        return common
    }

    private func sameProtocols(_ a: [(name: String, metadata: [UInt8])], _ b: [(name: String, metadata: [UInt8])]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.name == $1.name && $0.metadata == $1.metadata }
    }

    /// Enters PreparingRebalance; members waiting in Sync are told a rebalance started.
    private mutating func prepareRebalance(nowMs: Int64) -> [Delivery] {
        var deliveries: [Delivery] = []
        for (id, member) in members where member.awaitingSync {
            members[id]!.awaitingSync = false
            deliveries.append(.sync(memberId: id, .failure(.rebalanceInProgress)))
        }
        let wasEmpty = state == .empty
        state = .preparingRebalance
        let timeout = min(members.values.map { Int64($0.rebalanceTimeoutMs) }.max() ?? 0, options.maxRebalanceTimeoutMs)
        rebalanceDeadlineMs = nowMs + max(timeout, 0)
        earliestCompletionMs = wasEmpty ? nowMs + options.initialRebalanceDelayMs : nowMs
        return deliveries
    }

    /// Completes the join phase when every member has rejoined (after the initial delay of
    /// a new group), or when the rebalance deadline has passed.
    private mutating func maybeCompleteJoin(nowMs: Int64) -> [Delivery] {
        guard state == .preparingRebalance else { return [] }
        let allJoined = members.values.allSatisfy(\.awaitingJoin)
        if (allJoined && nowMs >= earliestCompletionMs) || nowMs >= rebalanceDeadlineMs {
            return completeJoin(nowMs: nowMs)
        }
        return []
    }

    private mutating func completeJoin(nowMs: Int64) -> [Delivery] {
        for (id, member) in members where !member.awaitingJoin { remove(id) }
        generationId = generationId == Int32.max ? 1 : generationId + 1
        guard !members.isEmpty else {
            state = .empty
            protocolName = nil
            protocolType = nil
            leaderId = nil
            return []
        }
        protocolType = protocolTypeOfMembers
        protocolName = chooseProtocol()
        if leaderId == nil || members[leaderId!] == nil { leaderId = memberOrder.first }
        state = .completingRebalance
        var deliveries: [Delivery] = []
        for id in memberOrder {
            members[id]!.awaitingJoin = false
            members[id]!.lastHeartbeatMs = nowMs
            members[id]!.assignment = []
            deliveries.append(.join(memberId: id, joinResponse(for: id)))
        }
        return deliveries
    }

    /// The protocol every member supports that most members list first among those.
    private func chooseProtocol() -> String {
        let candidates = members.values.reduce(Set(members.values.first!.protocols.map(\.name))) {
            $0.intersection($1.protocols.map(\.name))
        }
        var votes: [String: Int] = [:]
        for member in members.values {
            if let preferred = member.protocols.first(where: { candidates.contains($0.name) }) { votes[preferred.name, default: 0] += 1 }
        }
        return votes.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }!.key
    }

    private func joinResponse(for memberId: String) -> JoinGroupResponse {
        let isLeader = memberId == leaderId
        let list: [JoinGroupResponse.Member] =
            isLeader
            ? memberOrder.map { id in
                let member = members[id]!
                let metadata = member.protocols.first { $0.name == protocolName }?.metadata ?? []
                return JoinGroupResponse.Member(memberId: id, groupInstanceId: member.groupInstanceId, metadata: metadata)
            } : []
        return JoinGroupResponse(
            error: nil, generationId: generationId, protocolType: protocolType, protocolName: protocolName,
            leaderId: leaderId ?? "", memberId: memberId, members: list)
    }

    private mutating func remove(_ memberId: String) {
        members.removeValue(forKey: memberId)
        memberOrder.removeAll { $0 == memberId }
        if leaderId == memberId { leaderId = nil }
    }

    // MARK: Sync, heartbeat, leave

    /// Handles a SyncGroup. The leader's carries everyone's assignment. nil: the caller
    /// waits for a `.sync` delivery (the leader's sync).
    mutating func sync(memberId: String, generationId: Int32, assignments: [String: [UInt8]]?, nowMs: Int64)
        -> (SyncGroupResponse?, [Delivery])
    {
        guard members[memberId] != nil else { return (.failure(.unknownMemberId), []) }
        guard generationId == self.generationId else { return (.failure(.illegalGeneration), []) }
        members[memberId]!.lastHeartbeatMs = nowMs
        switch state {
        case .empty, .dead: return (.failure(.unknownMemberId), [])
        case .preparingRebalance: return (.failure(.rebalanceInProgress), [])
        case .stable: return (syncResponse(for: memberId), [])
        case .completingRebalance:
            members[memberId]!.awaitingSync = true
            guard memberId == leaderId, let assignments else { return (nil, []) }
            for id in memberOrder { members[id]!.assignment = assignments[id] ?? [] }
            state = .stable
            var deliveries: [Delivery] = []
            for id in memberOrder where members[id]!.awaitingSync {
                members[id]!.awaitingSync = false
                if id != memberId { deliveries.append(.sync(memberId: id, syncResponse(for: id))) }
            }
            return (syncResponse(for: memberId), deliveries)
        }
    }

    private func syncResponse(for memberId: String) -> SyncGroupResponse {
        SyncGroupResponse(
            error: nil, protocolType: protocolType, protocolName: protocolName, assignment: members[memberId]?.assignment ?? [])
    }

    /// Handles a Heartbeat: nil when all is well, otherwise the error to answer.
    mutating func heartbeat(memberId: String, generationId: Int32, nowMs: Int64) -> TidemarkError.Code? {
        guard members[memberId] != nil, state != .empty, state != .dead else { return .unknownMemberId }
        guard generationId == self.generationId else { return .illegalGeneration }
        members[memberId]!.lastHeartbeatMs = nowMs
        return state == .preparingRebalance ? .rebalanceInProgress : nil
    }

    /// Removes members that leave; the rest rebalance.
    mutating func leave(memberIds: [String], nowMs: Int64) -> ([String: TidemarkError.Code?], [Delivery]) {
        var results: [String: TidemarkError.Code?] = [:]
        var removedAny = false
        var deliveries: [Delivery] = []
        for id in memberIds {
            guard let member = members[id] else {
                results[id] = .unknownMemberId
                continue
            }
            if member.awaitingJoin { deliveries.append(.join(memberId: id, .failure(.unknownMemberId, memberId: id))) }
            if member.awaitingSync { deliveries.append(.sync(memberId: id, .failure(.unknownMemberId))) }
            remove(id)
            results[id] = .some(nil)
            removedAny = true
        }
        if removedAny { deliveries += membershipChanged(nowMs: nowMs) }
        return (results, deliveries)
    }

    private mutating func membershipChanged(nowMs: Int64) -> [Delivery] {
        switch state {
        case .stable, .completingRebalance:
            if members.isEmpty {
                generationId = generationId == Int32.max ? 1 : generationId + 1
                state = .empty
                protocolName = nil
                protocolType = nil
                leaderId = nil
                return []
            }
            return prepareRebalance(nowMs: nowMs) + maybeCompleteJoin(nowMs: nowMs)
        case .preparingRebalance:
            return maybeCompleteJoin(nowMs: nowMs)
        case .empty, .dead:
            return []
        }
    }

    /// Time passes: sessions expire (members waiting in Join are covered by the rebalance
    /// timeout instead), and a rebalance whose deadline passed completes without stragglers.
    mutating func tick(nowMs: Int64) -> [Delivery] {
        pendingMemberIds = pendingMemberIds.filter { $0.value > nowMs }
        var deliveries: [Delivery] = []
        let expired = members.values.filter { !$0.awaitingJoin && $0.lastHeartbeatMs + Int64($0.sessionTimeoutMs) < nowMs }
        if !expired.isEmpty {
            for member in expired {
                if member.awaitingSync { deliveries.append(.sync(memberId: member.id, .failure(.unknownMemberId))) }
                remove(member.id)
            }
            deliveries += membershipChanged(nowMs: nowMs)
        }
        deliveries += maybeCompleteJoin(nowMs: nowMs)
        return deliveries
    }

    // MARK: Offsets

    /// Whether an OffsetCommit from this member and generation may be stored (Kafka's rules:
    /// a standalone commit needs an empty group; a member commits for its current generation,
    /// also while a rebalance is being prepared).
    func validateCommit(memberId: String, generationId: Int32) -> TidemarkError.Code? {
        if generationId < 0 && memberId.isEmpty {
            return members.isEmpty ? nil : .unknownMemberId
        }
        if state == .completingRebalance { return .rebalanceInProgress }
        guard members[memberId] != nil else { return .unknownMemberId }
        guard generationId == self.generationId else { return .illegalGeneration }
        return nil
    }

    /// Every waiting member is answered (the coordinator is shutting down).
    mutating func abandonWaiters() -> [Delivery] {
        var deliveries: [Delivery] = []
        for (id, member) in members {
            if member.awaitingJoin { deliveries.append(.join(memberId: id, .failure(.rebalanceInProgress, memberId: id))) }
            if member.awaitingSync { deliveries.append(.sync(memberId: id, .failure(.rebalanceInProgress))) }
            members[id]!.awaitingJoin = false
            members[id]!.awaitingSync = false
        }
        return deliveries
    }
}

/// One classic consumer group as a pure state machine: every input carries `nowMs`, every
/// output is a value (responses for the caller and for members waiting in Join or Sync).
/// No clock, no I/O, no concurrency: `GroupCoordinator` owns instances under its lock.
///
/// States: Empty -> PreparingRebalance (a join) -> CompletingRebalance (all known members
/// rejoined and every id handed out with MEMBER_ID_REQUIRED was used or expired, or the
/// rebalance timeout passed: dynamic stragglers are removed; generation + 1) -> Stable (the
/// leader's SyncGroup). A join, leave or session expiry in Stable or CompletingRebalance goes
/// back to PreparingRebalance. When the last member goes: Empty. Members that have not sent
/// their SyncGroup within the rebalance timeout after a join completed are removed, in
/// CompletingRebalance and in Stable (Kafka's pending sync).
///
/// The state is kept here and mutated only by this type's own files (`ClassicGroup.swift`:
/// joins, `ClassicGroup+Session.swift`: sync, heartbeat, leave, time); the coordinator reads it.
///
/// Static members (KIP-345: a `group.instance.id`): a restarted instance joins with no member
/// id and takes its old member's place under a new id, keeping its assignment; in Stable,
/// with the group's protocol unchanged, without a rebalance. The old id is fenced
/// (FENCED_INSTANCE_ID) in every request that names the instance with it. A static member
/// that does not rejoin a rebalance stays in the group (the leader assigns it its share), as in
/// Kafka: it has until its session or the pending-sync deadline runs out to come back.
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
        /// A member whose first join has not completed: when that join is given up
        /// (`GroupOptions.newMemberJoinTimeoutMs`). Nil once it has been in a generation.
        var newJoinDeadlineMs: Int64?

        /// About what it keeps in memory: its strings, protocols and assignment, and a fixed
        /// part for the rest (`GroupOptions.membersMaxBytes` bounds the sum).
        var keptBytes: Int {
            Self.keptBytes(protocols: protocols) + id.utf8.count + (groupInstanceId?.utf8.count ?? 0) + clientId.utf8.count
                + clientHost.utf8.count + protocolType.utf8.count + assignment.count
        }

        static func keptBytes(protocols: [(name: String, metadata: [UInt8])]) -> Int {
            protocols.reduce(256) { $0 + 24 + $1.name.utf8.count + $1.metadata.count }
        }
    }

    /// What the group keeps in memory: its members (`Member.keptBytes`), the ids it handed
    /// out and that were not used yet, and the group itself (`groupBytes`). Counted so that
    /// `GroupOptions.membersMaxBytes` bounds groups too: any client could make a group per
    /// JoinGroup (one MEMBER_ID_REQUIRED each), without bound.
    var memberBytes: Int {
        members.values.reduce(Self.groupBytes(groupId) + pendingMemberIds.count * Self.pendingIdBytes) { $0 + $1.keptBytes }
    }
    /// What a group costs with no one in it: its state, and its id in the coordinator's tables
    /// (measured: 200,000 empty groups of 200-byte ids took 340 MB).
    static func groupBytes(_ groupId: String) -> Int { 1_024 + 4 * groupId.utf8.count }
    static let pendingIdBytes = 128

    /// The earliest time `tick` may change something: a handed-out id expiring, a session
    /// running out, a rebalance or sync deadline; `.max` when nothing waits on time. (A
    /// heartbeat moves a session's end later: an earlier time is only a tick with nothing to do.)
    var nextDueMs: Int64 {
        var due = pendingMemberIds.values.min() ?? .max
        for member in members.values {
            if member.awaitingJoin, let deadline = member.newJoinDeadlineMs { due = min(due, deadline.saturatingAdd(1)) }
            guard !member.awaitingJoin && !member.awaitingSync else { continue }
            due = min(due, member.lastHeartbeatMs.addingReportingOverflow(Int64(member.sessionTimeoutMs) + 1).partialValue)
        }
        switch state {
        case .preparingRebalance:
            due = min(due, rebalanceDeadlineMs)
            // The initial delay only matters once everyone has joined (else it is long past,
            // and the group would be ticked every pass while it waits).
            if pendingMemberIds.isEmpty && members.values.allSatisfy(\.awaitingJoin) { due = min(due, earliestCompletionMs) }
        case .completingRebalance, .stable where !pendingSync.isEmpty: due = min(due, syncDeadlineMs)
        default: break
        }
        return due
    }

    /// A response owed to a member that is waiting for it.
    enum Delivery: Sendable {
        case join(memberId: String, JoinGroupResponse)
        case sync(memberId: String, SyncGroupResponse)
    }

    let groupId: String
    let options: GroupOptions
    var state: GroupState = .empty
    var generationId: Int32 = 0
    var protocolType: String?
    var protocolName: String?
    var leaderId: String?
    var members: [String: Member] = [:]
    /// Join order, for choosing a leader.
    var memberOrder: [String] = []
    /// Static members: instance id -> its current member id.
    var staticMembers: [String: String] = [:]
    /// Ids handed out with MEMBER_ID_REQUIRED, with their expiry (the session timeout of the
    /// JoinGroup that got them). A rebalance waits for them as for members (Kafka's pending
    /// members): a member whose first JoinGroup crossed another's joins its generation.
    var pendingMemberIds: [String: Int64] = [:]
    /// Members that have not sent a SyncGroup since the last join completed: at
    /// `syncDeadlineMs` they are removed and the others rebalance (Kafka's pending sync).
    var pendingSync: Set<String> = []
    /// Member ids handed out (MEMBER_ID_REQUIRED) and not yet used, per group, at most.
    static let maxPendingMemberIds = 1000
    var pendingMemberIdCount: Int { pendingMemberIds.count }
    /// Nothing waits on or is remembered by the group: it can be dropped once empty a while.
    var isIdle: Bool { members.isEmpty && pendingMemberIds.isEmpty && (state == .empty || state == .dead) }
    var rebalanceDeadlineMs: Int64 = 0
    /// When the members in `pendingSync` are removed (the rebalance timeout after the join
    /// completed); `.max` while no join has completed since the last rebalance began.
    var syncDeadlineMs: Int64 = .max
    var earliestCompletionMs: Int64 = 0
    var memberSequence = 0

    init(groupId: String, options: GroupOptions) {
        self.groupId = groupId
        self.options = options
    }

    /// The group as its last membership record left it, when the broker restarts: Stable at
    /// the record's generation with its members (in the record's order), their assignments,
    /// static members' instances and the leader, every session starting at `nowMs`. Kafka's
    /// coordinator loads classic groups from `__consumer_offsets` the same way, so members
    /// that were running go on heartbeating and committing with their ids and generation;
    /// those that do not come back expire with their sessions, and the rest rebalance.
    /// A member keeps only its metadata for the chosen protocol (the record holds no other).
    ///
    /// Members without a client host are left out: they were in the broker's process (the
    /// embedded `GroupConsumer`; clients over the network always have one) and ended with it.
    /// When some are, the others are told to rejoin (PreparingRebalance), as when members leave.
    ///
    /// Nil when the record cannot be a group with members: none (after leaving out those in
    /// the process), no protocol or protocol type, or no member with a subscription or an
    /// assignment. The last is how a record too large to be written whole was written
    /// (`OffsetStore.recordMembership`): a member given its empty assignment back would
    /// consume nothing.
    init?(restoring record: GroupMembershipRecord, groupId: String, options: GroupOptions, nowMs: Int64) {
        guard let protocolName = record.protocolName, !record.protocolType.isEmpty,
            record.members.contains(where: { !$0.subscription.isEmpty || !$0.assignment.isEmpty })
        else { return nil }
        self.init(groupId: groupId, options: options)
        let remote = record.members.filter { !$0.clientHost.isEmpty }
        guard !remote.isEmpty else { return nil }
        for saved in remote where members[saved.memberId] == nil {
            var instance = saved.groupInstanceId
            if let id = instance {
                if staticMembers[id] != nil { instance = nil } else { staticMembers[id] = saved.memberId }
            }
            members[saved.memberId] = Member(
                id: saved.memberId, groupInstanceId: instance, clientId: saved.clientId, clientHost: saved.clientHost,
                sessionTimeoutMs: saved.sessionTimeoutMs,
                // Version 0 has no rebalance timeout: Kafka takes the session timeout then.
                rebalanceTimeoutMs: saved.rebalanceTimeoutMs < 0 ? saved.sessionTimeoutMs : saved.rebalanceTimeoutMs,
                protocolType: record.protocolType, protocols: [(protocolName, saved.subscription)], assignment: saved.assignment,
                lastHeartbeatMs: nowMs)
            memberOrder.append(saved.memberId)
        }
        state = .stable
        generationId = record.generation
        protocolType = record.protocolType
        self.protocolName = protocolName
        leaderId = record.leader.flatMap { members[$0] != nil ? $0 : nil } ?? memberOrder.first
        if remote.count < record.members.count { _ = prepareRebalance(nowMs: nowMs) }
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
        if let instance = request.groupInstanceId {
            if memberId.isEmpty, let old = staticMembers[instance], members[old] != nil {
                return replaceStaticMember(old, request, nowMs: nowMs)
            }
            if !memberId.isEmpty, let code = fenced(memberId, instance: instance) {
                return (.failure(code, memberId: memberId), [])
            }
            if memberId.isEmpty {
                // A new static member needs no second join for its id (as in Kafka).
                return addMemberAndRebalance(request, memberId: newMemberId(clientId: request.clientId), nowMs: nowMs)
            }
        }
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
        // Kafka's group.max.size: a new member of a full group is refused.
        guard members.count < options.classicGroupMaxSize else {
            return (.failure(.groupMaxSizeReached, memberId: memberId), [])
        }
        // The first member names the group's protocol type, as in Kafka (an empty group keeps
        // its last one until then).
        if members.isEmpty { protocolType = request.protocolType }
        members[memberId] = Member(
            id: memberId, groupInstanceId: request.groupInstanceId, clientId: request.clientId,
            clientHost: request.clientHost, sessionTimeoutMs: request.sessionTimeoutMs,
            rebalanceTimeoutMs: request.rebalanceTimeoutMs, protocolType: request.protocolType,
            protocols: request.protocols, lastHeartbeatMs: nowMs, awaitingJoin: true,
            newJoinDeadlineMs: nowMs.saturatingAdd(max(options.newMemberJoinTimeoutMs, 0)))
        memberOrder.append(memberId)
        if let instance = request.groupInstanceId { staticMembers[instance] = memberId }
        var deliveries: [Delivery] = []
        if state != .preparingRebalance { deliveries += prepareRebalance(nowMs: nowMs) }
        deliveries += maybeCompleteJoin(nowMs: nowMs)
        return (nil, deliveries)
    }

    /// A static member's new instance takes the old member's place (its join order, its
    /// leadership, its assignment) under a new id; whatever the old id waited for is answered
    /// FENCED_INSTANCE_ID. In Stable, when the group would keep its protocol, it is answered
    /// at once with the current generation (no rebalance: the other members go on), and with
    /// the leader id from before, so that even a replaced leader just syncs to get its
    /// assignment back (as Kafka does). Otherwise, or when its metadata for that protocol
    /// changed (a new subscription: Kafka would not notice), it rebalances like any join.
    private mutating func replaceStaticMember(_ old: String, _ request: JoinGroupRequest, nowMs: Int64)
        -> (JoinGroupResponse?, [Delivery])
    {
        var member = members[old]!
        let sameMetadata = member.protocols.first { $0.name == protocolName }?.metadata == request.protocols.first { $0.name == protocolName }?.metadata
        var deliveries: [Delivery] = []
        if member.awaitingJoin { deliveries.append(.join(memberId: old, .failure(.fencedInstanceId, memberId: old))) }
        if member.awaitingSync { deliveries.append(.sync(memberId: old, .failure(.fencedInstanceId))) }
        let newId = newMemberId(clientId: request.clientId)
        let previousLeader = leaderId
        // Not a new member (Kafka's replacement is not): its instance fences the old one, and
        // its wait is bounded by the rebalance's deadline, not by a first join's.
        member.newJoinDeadlineMs = nil
        member.id = newId
        member.awaitingJoin = false
        member.awaitingSync = false
        member.protocols = request.protocols
        member.sessionTimeoutMs = request.sessionTimeoutMs
        member.rebalanceTimeoutMs = request.rebalanceTimeoutMs
        member.clientId = request.clientId
        member.clientHost = request.clientHost
        member.lastHeartbeatMs = nowMs
        members.removeValue(forKey: old)
        members[newId] = member
        memberOrder = memberOrder.map { $0 == old ? newId : $0 }
        if leaderId == old { leaderId = newId }
        staticMembers[request.groupInstanceId!] = newId
        // A replacement owes the SyncGroup its old member did (else it could hold the share
        // unread); Kafka rebalances at the deadline even when the new one synced.
        if pendingSync.remove(old) != nil { pendingSync.insert(newId) }
        switch state {
        case .stable where sameMetadata && chooseProtocol() == protocolName:
            if request.supportsSkipAssignment && leaderId == newId {
                // KIP-814 (v9+): a replaced leader is told it leads, with the members, so that
                // it watches their topics again, and to keep the assignment as it is.
                var response = joinResponse(for: newId)
                response.skipAssignment = true
                return (response, deliveries)
            }
            // Before v9, a leader told so would assign again without a rebalance: it is told
            // the old id leads, and only syncs to get its assignment back.
            return (
                JoinGroupResponse(
                    error: nil, generationId: generationId, protocolType: protocolType, protocolName: protocolName,
                    leaderId: previousLeader ?? "", memberId: newId, members: []), deliveries
            )
        case .preparingRebalance:
            members[newId]!.awaitingJoin = true
            return (nil, deliveries + maybeCompleteJoin(nowMs: nowMs))
        default:
            members[newId]!.awaitingJoin = true
            deliveries += prepareRebalance(nowMs: nowMs)
            return (nil, deliveries + maybeCompleteJoin(nowMs: nowMs))
        }
    }

    /// For a request that names an instance (Kafka's `validateMember`): UNKNOWN_MEMBER_ID when
    /// no static member has it, FENCED_INSTANCE_ID when one has it under another member id.
    func fenced(_ memberId: String, instance: String?) -> TidemarkError.Code? {
        guard let instance else { return nil }
        guard let current = staticMembers[instance] else { return .unknownMemberId }
        return current == memberId ? nil : .fencedInstanceId
    }

    private var protocolTypeOfMembers: String? { members.values.first?.protocolType }

    /// The topics its members subscribe to, when Kafka's coordinator knows them (KIP-496): a
    /// Stable group of the consumer protocol whose members' subscriptions all read; nil
    /// otherwise (rebalancing, another protocol type, a subscription that does not read), when
    /// none of its offsets expires while it has members.
    var knownSubscribedTopics: Set<String>? {
        guard state == .stable, protocolType == "consumer", let protocolName else { return nil }
        var topics = Set<String>()
        for member in members.values {
            guard let metadata = member.protocols.first(where: { $0.name == protocolName })?.metadata,
                let names = ConsumerProtocol.decodeSubscriptionTopics(metadata)
            else { return nil }
            topics.formUnion(names)
        }
        return topics
    }

    private func commonProtocols(adding names: [String], excluding memberId: String) -> Set<String> {
        var common = Set(names)
        for (id, member) in members where id != memberId { common.formIntersection(member.protocols.map(\.name)) }
        return common
    }

    private func sameProtocols(_ a: [(name: String, metadata: [UInt8])], _ b: [(name: String, metadata: [UInt8])]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.name == $1.name && $0.metadata == $1.metadata }
    }

    /// Enters PreparingRebalance; members waiting in Sync are told a rebalance started.
    mutating func prepareRebalance(nowMs: Int64) -> [Delivery] {
        var deliveries: [Delivery] = []
        for (id, member) in members where member.awaitingSync {
            // Its session starts again as its wait ends (it sent no heartbeat meanwhile).
            members[id]!.awaitingSync = false
            members[id]!.lastHeartbeatMs = nowMs
            deliveries.append(.sync(memberId: id, .failure(.rebalanceInProgress)))
        }
        // Back from CompletingRebalance: the assignment the leader did not send is no one's
        // (Kafka's resetAndPropagateAssignmentWithError); from Stable, members keep theirs until
        // the next one.
        if state == .completingRebalance {
            for id in memberOrder { members[id]!.assignment = [] }
        }
        let wasEmpty = state == .empty
        state = .preparingRebalance
        pendingSync = []
        syncDeadlineMs = .max
        let timeout = min(members.values.map { Int64($0.rebalanceTimeoutMs) }.max() ?? 0, options.maxRebalanceTimeoutMs)
        rebalanceDeadlineMs = nowMs + max(timeout, 0)
        earliestCompletionMs = wasEmpty ? nowMs.saturatingAdd(max(options.initialRebalanceDelayMs, 0)) : nowMs
        return deliveries
    }

    /// Completes the join phase when every member has rejoined and no id handed out is still
    /// to be used (after the initial delay of a new group), or when the rebalance deadline
    /// has passed.
    mutating func maybeCompleteJoin(nowMs: Int64) -> [Delivery] {
        guard state == .preparingRebalance else { return [] }
        let allJoined = members.values.allSatisfy(\.awaitingJoin) && !pendingMemberIds.values.contains { $0 > nowMs }
        if (allJoined && nowMs >= earliestCompletionMs) || nowMs >= rebalanceDeadlineMs {
            return completeJoin(nowMs: nowMs)
        }
        return []
    }

    /// Dynamic members that did not rejoin are removed; static ones stay, with their metadata
    /// (the leader assigns them their share; as Kafka does). The leader is one that rejoined;
    /// when only static members that did not rejoin are left, the join waits another
    /// rebalance timeout (their sessions end sooner, as Kafka's coordinator waits).
    private mutating func completeJoin(nowMs: Int64) -> [Delivery] {
        for (id, member) in members where !member.awaitingJoin && member.groupInstanceId == nil { remove(id) }
        let rejoined = memberOrder.filter { members[$0]!.awaitingJoin }
        if rejoined.isEmpty && !members.isEmpty {
            let timeout = min(members.values.map { Int64($0.rebalanceTimeoutMs) }.max() ?? 0, options.maxRebalanceTimeoutMs)
            rebalanceDeadlineMs = nowMs + max(timeout, 1)
            return []
        }
        generationId = generationId == Int32.max ? 1 : generationId + 1
        guard !members.isEmpty else {
            state = .empty
            protocolName = nil
            // The protocol type stays, as in Kafka: an empty group is still listed and
            // described as the consumer group it was.
            leaderId = nil
            return []
        }
        protocolType = protocolTypeOfMembers
        protocolName = chooseProtocol()
        if let leader = leaderId, members[leader]?.awaitingJoin == true {} else { leaderId = rejoined.first }
        state = .completingRebalance
        let timeout = min(members.values.map { Int64($0.rebalanceTimeoutMs) }.max() ?? 0, options.maxRebalanceTimeoutMs)
        syncDeadlineMs = nowMs + max(timeout, 0)
        pendingSync = Set(members.keys)
        // Sessions start again; assignments stay until the leader's (as Kafka's initNextGeneration).
        for id in memberOrder { members[id]!.lastHeartbeatMs = nowMs }
        var deliveries: [Delivery] = []
        for id in rejoined {
            members[id]!.awaitingJoin = false
            members[id]!.newJoinDeadlineMs = nil
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

    func joinResponse(for memberId: String) -> JoinGroupResponse {
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

    mutating func remove(_ memberId: String) {
        if let instance = members[memberId]?.groupInstanceId, staticMembers[instance] == memberId { staticMembers.removeValue(forKey: instance) }
        members.removeValue(forKey: memberId)
        pendingSync.remove(memberId)
        memberOrder.removeAll { $0 == memberId }
        if leaderId == memberId { leaderId = nil }
    }
}

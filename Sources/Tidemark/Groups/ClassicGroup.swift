/// One classic consumer group as a pure state machine: every input carries `nowMs`, every
/// output is a value (responses for the caller and for members waiting in Join or Sync).
/// No clock, no I/O, no concurrency: `GroupCoordinator` owns instances under its lock.
///
/// States: Empty -> PreparingRebalance (a join) -> CompletingRebalance (all known members
/// rejoined, or the rebalance timeout passed: the stragglers are removed; generation + 1) ->
/// Stable (the leader's SyncGroup). A join, leave or session expiry in Stable or
/// CompletingRebalance goes back to PreparingRebalance. When the last member goes: Empty.
///
/// Static members (KIP-345: a `group.instance.id`): a restarted instance joins with no member
/// id and takes its old member's place under a new id, keeping its assignment; in Stable,
/// with the group's protocol unchanged, without a rebalance. The old id is fenced
/// (FENCED_INSTANCE_ID) in every request that names the instance with it.
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
        for member in members.values where !member.awaitingJoin {
            due = min(due, member.lastHeartbeatMs.addingReportingOverflow(Int64(member.sessionTimeoutMs) + 1).partialValue)
        }
        switch state {
        case .preparingRebalance: due = min(due, rebalanceDeadlineMs, earliestCompletionMs)
        case .completingRebalance: due = min(due, syncDeadlineMs)
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
    private(set) var state: GroupState = .empty
    private(set) var generationId: Int32 = 0
    private(set) var protocolType: String?
    private(set) var protocolName: String?
    private(set) var leaderId: String?
    private(set) var members: [String: Member] = [:]
    /// Join order, for choosing a leader.
    private(set) var memberOrder: [String] = []
    /// Static members: instance id -> its current member id.
    private(set) var staticMembers: [String: String] = [:]
    /// Ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    private var pendingMemberIds: [String: Int64] = [:]
    /// Member ids handed out (MEMBER_ID_REQUIRED) and not yet used, per group, at most.
    static let maxPendingMemberIds = 1000
    var pendingMemberIdCount: Int { pendingMemberIds.count }
    /// Nothing waits on or is remembered by the group: it can be dropped once empty a while.
    var isIdle: Bool { members.isEmpty && pendingMemberIds.isEmpty && (state == .empty || state == .dead) }
    private var rebalanceDeadlineMs: Int64 = 0
    /// In CompletingRebalance: when the members that have not sent their SyncGroup are
    /// removed (the rebalance timeout after the join completed).
    private var syncDeadlineMs: Int64 = .max
    private var earliestCompletionMs: Int64 = 0
    private var memberSequence = 0

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
            if !memberId.isEmpty, let current = staticMembers[instance], current != memberId {
                return (.failure(.fencedInstanceId, memberId: memberId), [])
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
            protocols: request.protocols, lastHeartbeatMs: nowMs, awaitingJoin: true)
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
        switch state {
        case .stable where sameMetadata && chooseProtocol() == protocolName:
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

    /// FENCED_INSTANCE_ID when `instance` names a static member under another member id.
    func fenced(_ memberId: String, instance: String?) -> TidemarkError.Code? {
        guard let instance, let current = staticMembers[instance], current != memberId else { return nil }
        return .fencedInstanceId
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
            // The protocol type stays, as in Kafka: an empty group is still listed and
            // described as the consumer group it was.
            leaderId = nil
            return []
        }
        protocolType = protocolTypeOfMembers
        protocolName = chooseProtocol()
        if leaderId == nil || members[leaderId!] == nil { leaderId = memberOrder.first }
        state = .completingRebalance
        let timeout = min(members.values.map { Int64($0.rebalanceTimeoutMs) }.max() ?? 0, options.maxRebalanceTimeoutMs)
        syncDeadlineMs = nowMs + max(timeout, 0)
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
        if let instance = members[memberId]?.groupInstanceId, staticMembers[instance] == memberId { staticMembers.removeValue(forKey: instance) }
        members.removeValue(forKey: memberId)
        memberOrder.removeAll { $0 == memberId }
        if leaderId == memberId { leaderId = nil }
    }

    // MARK: Sync, heartbeat, leave

    /// Handles a SyncGroup. The leader's carries everyone's assignment. nil: the caller
    /// waits for a `.sync` delivery (the leader's sync).
    mutating func sync(memberId: String, instance: String? = nil, generationId: Int32, assignments: [String: [UInt8]]?, nowMs: Int64)
        -> (SyncGroupResponse?, [Delivery])
    {
        if let fenced = fenced(memberId, instance: instance) { return (.failure(fenced), []) }
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
    mutating func heartbeat(memberId: String, instance: String? = nil, generationId: Int32, nowMs: Int64) -> TidemarkError.Code? {
        if let fenced = fenced(memberId, instance: instance) { return fenced }
        guard members[memberId] != nil, state != .empty, state != .dead else { return .unknownMemberId }
        guard generationId == self.generationId else { return .illegalGeneration }
        members[memberId]!.lastHeartbeatMs = nowMs
        return state == .preparingRebalance ? .rebalanceInProgress : nil
    }

    /// Removes members that leave; the rest rebalance.
    mutating func leave(memberIds: [String], nowMs: Int64) -> ([String: TidemarkError.Code?], [Delivery]) {
        let (results, deliveries) = leave(members: memberIds.map { ($0, nil) }, nowMs: nowMs)
        var byId: [String: TidemarkError.Code?] = [:]
        for (index, id) in memberIds.enumerated() where byId[id] == nil { byId[id] = results[index] }
        return (byId, deliveries)
    }

    /// Removes members that leave (LeaveGroup v3+: each by member id, instance id or both; a
    /// static member named by its instance alone is found by it, one named with an older
    /// member id is fenced); the rest rebalance. Results in the order asked.
    mutating func leave(members leaving: [(memberId: String, instance: String?)], nowMs: Int64) -> ([TidemarkError.Code?], [Delivery]) {
        var results: [TidemarkError.Code?] = []
        var removedAny = false
        var deliveries: [Delivery] = []
        for (memberId, instance) in leaving {
            var id = memberId
            if let instance {
                guard let current = staticMembers[instance] else {
                    results.append(.unknownMemberId)
                    continue
                }
                guard memberId.isEmpty || memberId == current else {
                    results.append(.fencedInstanceId)
                    continue
                }
                id = current
            }
            guard let member = members[id] else {
                results.append(.unknownMemberId)
                continue
            }
            if member.awaitingJoin { deliveries.append(.join(memberId: id, .failure(.unknownMemberId, memberId: id))) }
            if member.awaitingSync { deliveries.append(.sync(memberId: id, .failure(.unknownMemberId))) }
            remove(id)
            results.append(nil)
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
        // Pending sync (as Kafka since 3.0, KAFKA-12890): members that have not sent their
        // SyncGroup within the rebalance timeout are removed, the leader among them if it never
        // sent the assignment; the others rejoin. A leader that heartbeats and never syncs
        // held its followers' SyncGroups, and the group, for ever.
        if state == .completingRebalance && nowMs >= syncDeadlineMs {
            let late = members.values.filter { !$0.awaitingSync }.map(\.id)
            for id in late { remove(id) }
            if !late.isEmpty { deliveries += membershipChanged(nowMs: nowMs) }
        }
        deliveries += maybeCompleteJoin(nowMs: nowMs)
        return deliveries
    }

    // MARK: Offsets

    /// Whether an OffsetCommit from this member and generation may be stored (Kafka's rules:
    /// a standalone commit needs an empty group; a member commits for its current generation,
    /// also while a rebalance is being prepared).
    func validateCommit(memberId: String, instance: String? = nil, generationId: Int32) -> TidemarkError.Code? {
        // In Kafka's order (ClassicGroup.validateOffsetCommit): who is committing first, the
        // group's state last. A fenced member committing while the group completes a rebalance
        // is told its id or generation is stale (the Java client then rejoins), not that a
        // rebalance is in progress.
        if generationId < 0 && members.isEmpty { return nil }  // an admin or standalone commit to an empty group
        if generationId >= 0 || !memberId.isEmpty || instance != nil {
            if let fenced = fenced(memberId, instance: instance) { return fenced }
            // An instance id no static member holds is unknown, whatever the member id
            // (Kafka's validateMember).
            if let instance, staticMembers[instance] == nil { return .unknownMemberId }
            guard members[memberId] != nil else { return .unknownMemberId }
            guard generationId == self.generationId else { return .illegalGeneration }
        } else {
            return .unknownMemberId  // no member named, and the group has members
        }
        if state == .completingRebalance { return .rebalanceInProgress }
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

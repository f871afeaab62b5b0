/// What tools and clients read of the groups: ListGroups, DescribeGroups, who leads, what
/// kind of group an id is.
extension GroupCoordinator {
    // MARK: Describe

    /// Groups whose state machines are in memory now (members, or recently active).
    var liveGroupCount: Int { state.withLock { $0.groups.count } }

    /// `listGroups()` with the groups that have members first (each part by name): what a
    /// bounded view (the console, /metrics) keeps, so groups left behind by a batch job
    /// ("bulk-*") cannot push every live group out.
    public func listGroupsWithMembersFirst() -> [GroupListing] {
        let listed = listGroups()
        let isIdle = { (group: GroupListing) in group.state == "Empty" || group.state == "Dead" }
        return listed.filter { !isIdle($0) } + listed.filter(isIdle)
    }

    /// Every group: classic ones (including those known only by their committed offsets, as
    /// Kafka lists them) and consumer-protocol ones.
    public func listGroups() -> [GroupListing] {
        let known = state.withLock { s in
            s.groups.values.map { GroupListing(groupId: $0.groupId, protocolType: $0.protocolType ?? "", state: $0.state.rawValue, type: .classic) }
                + s.consumerGroups.values.map {
                    GroupListing(groupId: $0.groupId, protocolType: "consumer", state: $0.state.rawValue, type: .consumer)
                }
        }
        let names = Set(known.map(\.groupId))
        // A group known only by what the log keeps: a consumer-protocol one if its last records
        // are (an Empty one's say so; Kafka lists it so too), else classic, with the protocol
        // type its last members had; one that never had members (offsets committed by a tool or
        // an assign()-ing consumer) has none, as in Kafka: a "simple" group to admin clients.
        let kept = store.memberships.withLock { $0 }
        let offsetOnly = store.groupsWithOffsets().subtracting(names).map { id in
            guard let records = kept[id] else {
                return GroupListing(groupId: id, protocolType: "", state: GroupState.empty.rawValue, type: .classic)
            }
            guard let value = records.classicValue(group: id) else {
                return GroupListing(groupId: id, protocolType: "consumer", state: GroupState.empty.rawValue, type: .consumer)
            }
            let protocolType = GroupMembershipRecord.decodeValue(value)?.protocolType ?? ""
            return GroupListing(groupId: id, protocolType: protocolType, state: GroupState.empty.rawValue, type: .classic)
        }
        return (known + offsetOnly).sorted { $0.groupId < $1.groupId }
    }

    /// Whether `memberId` leads its classic group's current generation.
    public func isLeader(groupId: String, memberId: String) -> Bool {
        state.withLock { $0.groups[groupId]?.leaderId == memberId }
    }

    /// Whether the group (classic or consumer protocol) has members now.
    public func hasMembers(_ groupId: String) -> Bool {
        state.withLock { s in !(s.groups[groupId]?.members.isEmpty ?? true) || !(s.consumerGroups[groupId]?.isEmpty ?? true) }
    }

    /// Which protocol a group id runs now: nil when the broker has no state machine for it.
    public func groupType(_ groupId: String) -> GroupType? {
        state.withLock { s in s.groups[groupId] != nil ? .classic : (s.consumerGroups[groupId] != nil ? .consumer : nil) }
    }

    /// Whether a classic or consumer group has this id, as Kafka counts groups: one with a
    /// state machine here, or known only by its membership records or committed offsets (an
    /// empty group keeps its id until it is deleted or its offsets expire; a group of only
    /// offsets is classic).
    public enum GroupIdUse: Equatable, Sendable {
        case free
        case taken(GroupType)
        /// The offsets store is busy (a compaction holds its lock): ask again in a moment.
        case busy
    }

    /// `GroupIdUse` of `groupId`, without waiting for the offsets store.
    public func use(of groupId: String) -> GroupIdUse {
        if let type = groupType(groupId) { return .taken(type) }
        if let recorded = store.memberships.withLock({ $0[groupId] }) {
            return .taken(recorded.classicValue(group: groupId) != nil ? .classic : .consumer)
        }
        switch store.hasOffsetsWithoutWaitingLong(group: groupId) {
        case true?: return .taken(.classic)
        case false?: return .free
        case nil: return .busy
        }
    }

    public func describeGroup(_ groupId: String) -> GroupDescription {
        // The offsets store's lock is not taken under the coordinator's: compaction holds it
        // while it rewrites the log, and every join and heartbeat would wait behind a describe.
        let described = state.withLock { s -> GroupDescription? in
            guard let group = s.groups[groupId] else { return nil }
            // Outside Stable, members without their metadata and no protocol, as Kafka 4
            // describes them (`describeNoMetadata`: the assignment they hold stays).
            let stable = group.state == .stable
            let members = group.memberOrder.map { id in
                let member = group.members[id]!
                return GroupDescription.Member(
                    memberId: id, groupInstanceId: member.groupInstanceId, clientId: member.clientId,
                    clientHost: member.clientHost,
                    metadata: stable ? member.protocols.first { $0.name == group.protocolName }?.metadata ?? [] : [],
                    assignment: member.assignment)
            }
            return GroupDescription(
                groupId: groupId, state: group.state, protocolType: group.protocolType ?? "",
                protocolName: stable ? group.protocolName ?? "" : "", generationId: group.generationId, members: members)
        }
        return described
            ?? GroupDescription(
                groupId: groupId, state: store.hasOffsets(group: groupId) ? .empty : .dead,
                protocolType: "", protocolName: "", generationId: -1, members: [])
    }
}

/// A ShareGroupHeartbeat, as the engine sees it (topics by name).
public struct ShareHeartbeat: Sendable {
    public var groupId: String
    public var memberId: String
    /// 0 joins, -1 leaves, > 0 is the member's epoch.
    public var memberEpoch: Int32
    public var rackId: String?
    /// nil: unchanged since the last heartbeat.
    public var subscribedTopicNames: [String]?
    public var clientId: String
    public var clientHost: String

    public init(
        groupId: String, memberId: String, memberEpoch: Int32, rackId: String? = nil,
        subscribedTopicNames: [String]? = nil, clientId: String = "", clientHost: String = ""
    ) {
        self.groupId = groupId
        self.memberId = memberId
        self.memberEpoch = memberEpoch
        self.rackId = rackId
        self.subscribedTopicNames = subscribedTopicNames
        self.clientId = clientId
        self.clientHost = clientHost
    }
}

/// What ShareGroupDescribe and the tools report of a share group.
public struct ShareGroupDescription: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        public var memberId: String
        public var rackId: String?
        public var memberEpoch: Int32
        public var clientId: String
        public var clientHost: String
        public var subscribedTopicNames: [String]
        public var assignment: [TopicPartition]
    }
    public var groupId: String
    /// "Empty" or "Stable".
    public var state: String
    public var groupEpoch: Int32
    public var members: [Member]
}

/// One share group's membership (KIP-932): who is in it and what each may fetch from.
///
/// Every member is assigned every partition of the topics it subscribes to: records, not
/// partitions, are what members share, and each acquisition locks records to one member, so
/// work spreads per fetch. The group epoch moves on joins, leaves, subscription changes and
/// partition-count changes; a member's epoch becomes the group's when its assignment is sent.
///
/// A pure state machine (time as `nowMs`, topics through a `TopicCatalog`), owned by
/// `ShareCoordinator`'s mutex.
struct ShareGroup: Sendable {
    struct Member: Sendable {
        var memberId: String
        var rackId: String?
        var clientId: String
        var clientHost: String
        var subscribedTopicNames: [String] = []
        var memberEpoch: Int32 = 0
        var lastHeartbeatMs: Int64
        var assignment: Set<TopicPartition> = []
        /// About what it keeps in memory (set at each heartbeat): a fixed part, its ids, its
        /// subscribed names and its assignment.
        var keptBytes = 0

        mutating func countBytes() {
            keptBytes = 512 + memberId.utf8.count + clientId.utf8.count + clientHost.utf8.count + (rackId?.utf8.count ?? 0)
                + subscribedTopicNames.reduce(0) { $0 + 24 + $1.utf8.count } + assignment.count * 48
        }
    }

    struct Settings: Sendable {
        var sessionTimeoutMs: Int64
        var heartbeatIntervalMs: Int32
        var maxSize: Int
    }

    let groupId: String
    private(set) var groupEpoch: Int32 = 0
    private(set) var members: [String: Member] = [:]
    private(set) var memberOrder: [String] = []
    /// How many members subscribe to each topic name: the workers that share the backlog of
    /// its partitions (`SharePartition.fairShare`). Kept with `members` (`store`, `remove`).
    private(set) var readers: [String: Int] = [:]
    private var partitionCounts: [String: Int] = [:]
    private var metadataRefreshedMs: Int64 = .min
    /// A subscribed topic was deleted since the last refresh (`topicDeleted`).
    private var topicsChanged = false

    init(groupId: String) { self.groupId = groupId }

    var isEmpty: Bool { members.isEmpty }

    /// Every partition some member may fetch from.
    var assignedPartitions: Set<TopicPartition> {
        var all: Set<TopicPartition> = []
        for member in members.values { all.formUnion(member.assignment) }
        return all
    }

    /// The heartbeat's answer, and the member removed by it (a leave), whose records must be
    /// released.
    mutating func heartbeat(
        _ request: ShareHeartbeat, nowMs: Int64, settings: Settings, catalog: TopicCatalog, newMemberId: () -> String
    ) -> (ConsumerHeartbeatResult, left: String?) {
        if request.memberEpoch == -1 {
            guard members[request.memberId] != nil else {
                return (.failure(.unknownMemberId, "member \(request.memberId) is not in share group \(groupId)", memberId: request.memberId), nil)
            }
            remove(request.memberId)
            return (ConsumerHeartbeatResult(memberId: request.memberId, memberEpoch: -1, heartbeatIntervalMs: 0), request.memberId)
        }
        guard request.memberEpoch >= 0 else {
            return (.failure(.invalidRequest, "member epoch \(request.memberEpoch) is not valid", memberId: request.memberId), nil)
        }
        // The group's distinct names are resolved under the coordinator's lock at each refresh:
        // at most `maxSubscribedNames` of them, whatever members send (checked before anything
        // changes, and only when this member's names do).
        if let names = request.subscribedTopicNames {
            let asked = Set(names)
            if asked != Set(members[request.memberId]?.subscribedTopicNames ?? []) {
                var all = asked
                for other in members.values where other.memberId != request.memberId { all.formUnion(other.subscribedTopicNames) }
                guard all.count <= Self.maxSubscribedNames else {
                    return (
                        .failure(
                            .invalidRequest, "share group \(groupId) would subscribe to over \(Self.maxSubscribedNames) topic names",
                            memberId: request.memberId), nil
                    )
                }
            }
        }
        var member: Member
        var joining = false
        var epochMoved = false
        if request.memberEpoch == 0 {
            // (Its names, checked by the coordinator: some were given, though none may be a topic's.)
            guard request.subscribedTopicNames != nil else {
                return (.failure(.invalidRequest, "SubscribedTopicNames must be set in first request.", memberId: request.memberId), nil)
            }
            let id = request.memberId.isEmpty ? newMemberId() : request.memberId
            if let existing = members[id] {
                member = existing
            } else {
                guard members.count < settings.maxSize else {
                    return (.failure(.groupMaxSizeReached, "share group \(groupId) has \(members.count) members already", memberId: id), nil)
                }
                member = Member(memberId: id, clientId: request.clientId, clientHost: request.clientHost, lastHeartbeatMs: nowMs)
                memberOrder.append(id)
                epochMoved = true
            }
            joining = true
        } else {
            guard let existing = members[request.memberId] else {
                return (.failure(.unknownMemberId, "member \(request.memberId) is not in share group \(groupId)", memberId: request.memberId), nil)
            }
            guard request.memberEpoch == existing.memberEpoch || request.memberEpoch == groupEpoch else {
                return (
                    .failure(
                        .fencedMemberEpoch, "member epoch \(request.memberEpoch) is not the current \(existing.memberEpoch)",
                        memberId: request.memberId), nil
                )
            }
            member = existing
        }
        member.lastHeartbeatMs = nowMs
        if !request.clientId.isEmpty { member.clientId = request.clientId }
        if !request.clientHost.isEmpty { member.clientHost = request.clientHost }
        if let rack = request.rackId { member.rackId = rack }
        if let names = request.subscribedTopicNames {
            let sorted = Array(Set(names)).sorted()
            if sorted != member.subscribedTopicNames {
                member.subscribedTopicNames = sorted
                epochMoved = true
            }
        }
        store(member)
        if epochMoved || topicsChanged || nowMs - metadataRefreshedMs >= ConsumerGroup.metadataRefreshMs {
            if refreshMetadata(catalog, nowMs: nowMs) { epochMoved = true }
        }
        if epochMoved { groupEpoch = groupEpoch == Int32.max ? 1 : groupEpoch + 1 }
        // Assignment: every partition of every subscribed topic that exists.
        var assignment: Set<TopicPartition> = []
        for topic in member.subscribedTopicNames {
            for partition in 0..<(partitionCounts[topic] ?? 0) { assignment.insert(TopicPartition(topic, partition)) }
        }
        let changed = assignment != member.assignment
        member.assignment = assignment
        member.memberEpoch = groupEpoch
        member.countBytes()
        store(member)
        let tell = joining || changed || request.memberEpoch != member.memberEpoch
        return (
            ConsumerHeartbeatResult(
                memberId: member.memberId, memberEpoch: member.memberEpoch, heartbeatIntervalMs: settings.heartbeatIntervalMs,
                assignment: tell ? assignment.sorted(by: ServerAssignor.partitionOrder) : nil),
            nil
        )
    }

    /// What the group keeps in memory, about: a fixed part, and per member its ids, its
    /// subscribed names and its assignment (bounded, over all share groups, by
    /// `GroupOptions.membersMaxBytes`).
    var memberBytes: Int { members.values.reduce(256 + groupId.utf8.count) { $0 + $1.keptBytes } }

    /// Distinct topic names a group's members may subscribe to, together.
    static let maxSubscribedNames = 10_000

    private mutating func refreshMetadata(_ catalog: TopicCatalog, nowMs: Int64) -> Bool {
        metadataRefreshedMs = nowMs
        topicsChanged = false
        var counts: [String: Int] = [:]
        // Each distinct name looked up once (an unknown one was looked up again per member).
        var looked: Set<String> = []
        for member in members.values {
            for name in member.subscribedTopicNames where looked.insert(name).inserted {
                if let count = catalog.partitionCount(name), count > 0 { counts[name] = count }
            }
        }
        guard counts != partitionCounts else { return false }
        partitionCounts = counts
        return true
    }

    /// `topic` was deleted: the next heartbeat re-reads the topics, and every member is told
    /// its assignment then (the group's epoch moves), with the id of a topic made again under
    /// the name, or without it.
    mutating func topicDeleted(_ topic: String) {
        guard partitionCounts.removeValue(forKey: topic) != nil else { return }
        topicsChanged = true
        groupEpoch = groupEpoch == Int32.max ? 1 : groupEpoch + 1
    }

    /// Sets a member, and what `readers` counts of its subscription.
    private mutating func store(_ member: Member) {
        let before = members.updateValue(member, forKey: member.memberId)?.subscribedTopicNames ?? []
        guard before != member.subscribedTopicNames else { return }
        for name in before { unread(name) }
        for name in member.subscribedTopicNames { readers[name, default: 0] += 1 }
    }

    private mutating func unread(_ name: String) {
        let left = (readers[name] ?? 1) - 1
        readers[name] = left > 0 ? left : nil
    }

    mutating func remove(_ id: String) {
        guard let gone = members.removeValue(forKey: id) else { return }
        for name in gone.subscribedTopicNames { unread(name) }
        memberOrder.removeAll { $0 == id }
        groupEpoch = groupEpoch == Int32.max ? 1 : groupEpoch + 1
    }

    /// Members without a heartbeat for the session timeout are removed; returns them.
    mutating func tick(nowMs: Int64, sessionTimeoutMs: Int64) -> [String] {
        let expired = memberOrder.filter { id in members[id].map { nowMs - $0.lastHeartbeatMs > sessionTimeoutMs } ?? false }
        for id in expired { remove(id) }
        return expired
    }

    func isMember(_ id: String) -> Bool { members[id] != nil }

    func describe() -> ShareGroupDescription {
        ShareGroupDescription(
            groupId: groupId, state: members.isEmpty ? "Empty" : "Stable", groupEpoch: groupEpoch,
            members: memberOrder.compactMap { id in
                guard let m = members[id] else { return nil }
                return ShareGroupDescription.Member(
                    memberId: id, rackId: m.rackId, memberEpoch: m.memberEpoch, clientId: m.clientId, clientHost: m.clientHost,
                    subscribedTopicNames: m.subscribedTopicNames, assignment: m.assignment.sorted(by: ServerAssignor.partitionOrder))
            })
    }
}

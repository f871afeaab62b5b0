import Foundation

/// One consumer group under the next-generation protocol (KIP-848): the broker assigns
/// partitions and members converge on that target by heartbeats, never all stopping at once.
///
/// Epochs: the *group epoch* moves whenever membership, a subscription or the subscribed
/// topics' partition counts change; the *target assignment* is recomputed for it (its
/// assignment epoch); each member's epoch reaches the target's once the member holds exactly
/// its target partitions. A partition is never held by two members: one a member must give
/// up stays its own ("pending revocation") until a heartbeat shows it no longer owns it, and
/// a member whose target includes it waits ("unreleased") until then.
///
/// A pure state machine: time comes in as `nowMs`, topics through a `TopicCatalog`.
/// Concurrency: owned by `GroupCoordinator`'s mutex, like `ClassicGroup`.
struct ConsumerGroup: Sendable {
    enum MemberState: Sendable { case stable, unrevokedPartitions, unreleasedPartitions }

    struct Member: Sendable {
        var memberId: String
        var instanceId: String?
        var rackId: String?
        var clientId: String
        var clientHost: String
        var subscribedTopicNames: [String] = []
        var subscribedTopicRegex: String?
        var serverAssignor: String?
        var rebalanceTimeoutMs: Int32 = 300_000
        var memberEpoch: Int32 = 0
        var previousMemberEpoch: Int32 = -1
        var state: MemberState = .stable
        /// The partitions the member has been given (at `memberEpoch`).
        var assigned: Set<TopicPartition> = []
        /// Partitions the member must give up; still its own until it confirms.
        var pendingRevocation: Set<TopicPartition> = []
        var lastHeartbeatMs: Int64
        var revocationDeadlineMs: Int64 = .max
        /// Moves with each change of its subscription (names, pattern, assignor): part of what
        /// says the group's membership changed (`GroupCoordinator.noteConsumerMembership`).
        var revision: UInt32 = 0
        /// About what it keeps in memory (`keptBytes(...)`), set at each heartbeat.
        var keptBytes = 0

        /// A member's memory: a fixed part, its ids and its subscription (what
        /// `GroupOptions.membersMaxBytes` bounds, with classic members').
        static func keptBytes(memberId: String, clientId: String, clientHost: String, instanceId: String?, rackId: String?,
                              names: [String]?, regex: String?) -> Int {
            512 + memberId.utf8.count + clientId.utf8.count + clientHost.utf8.count + (instanceId?.utf8.count ?? 0)
                + (rackId?.utf8.count ?? 0) + (regex?.utf8.count ?? 0) + (names ?? []).reduce(0) { $0 + 24 + $1.utf8.count }
        }
    }

    /// What its members keep (`Member.keptBytes`): at least what its records take
    /// (`ConsumerGroupSnapshot`) but for partitions, up to 12 times as much for one-character
    /// names; so a group past 8 times the records' bound is not encoded to find it too large.
    var membersKeptBytes: Int { members.values.reduce(0) { $0 + $1.keptBytes } }

    /// What the group keeps in memory: its members' (`Member.keptBytes`) and its own
    /// (`ClassicGroup.groupBytes`: a member that joins and leaves makes an empty group, kept
    /// for `emptyGroupRetentionMs`; they were counted nowhere).
    var memberBytes: Int { members.values.reduce(ClassicGroup.groupBytes(groupId) + patterns.bytes) { $0 + $1.keptBytes } }

    /// The session timeout as of the last heartbeat or tick (the group's config over the
    /// broker's default), for `nextDueMs`.
    private(set) var sessionTimeoutMs: Int64 = 45_000

    /// When `tick` next has something to do: the first member's session to run out or
    /// revocation deadline to pass; `.max` when empty. (A heartbeat only moves it later.)
    var nextDueMs: Int64 {
        var due = Int64.max
        for member in members.values {
            due = min(due, member.lastHeartbeatMs.saturatingAdd(sessionTimeoutMs).saturatingAdd(1), member.revocationDeadlineMs)
        }
        return due
    }

    /// Settings a heartbeat is answered with (the group's configs over the broker's defaults).
    struct Settings: Sendable {
        var sessionTimeoutMs: Int64
        var heartbeatIntervalMs: Int32
        var maxSize: Int
    }

    let groupId: String
    private(set) var groupEpoch: Int32 = 0
    private(set) var assignmentEpoch: Int32 = 0
    private(set) var assignor = ServerAssignor.default
    private(set) var members: [String: Member] = [:]
    private(set) var memberOrder: [String] = []
    private(set) var target: [String: Set<TopicPartition>] = [:]
    /// Who holds each partition (assigned or pending revocation).
    private var owners: [TopicPartition: String] = [:]
    /// Static members: the member holding each group.instance.id.
    private(set) var staticMembers: [String: String] = [:]
    /// Partition counts of the subscribed topics (by name or pattern) that exist.
    private var partitionCounts: [String: Int] = [:]
    /// How many members subscribe to each name, and the partition counts of those names that
    /// are topics: kept as subscriptions change, so a member's new subscription costs its own
    /// names, not every member's. (Re-reading every name at each change, and each second, held
    /// the coordinator's lock 0.6 s for a group of 40 members of 10,000 names: every group's
    /// heartbeats and commits waited.)
    private var nameCounts: [String: Int] = [:]
    private var namedCounts: [String: Int] = [:]
    /// Whether `partitionCounts` is to be made again from the above (a member left).
    private var countsStale = false
    private var metadataRefreshedMs: Int64 = .min
    /// The topics' generation (`TopicCatalog.generation`) at the last refresh.
    private var metadataGeneration: UInt64?
    /// Members restored (`init(restoring:)`) in the middle of their reconciliation, not heard
    /// from since.
    private var restoredInFlight: Set<String> = []

    /// Subscribed metadata is re-read when the topics change (`TopicCatalog.generation`), or
    /// for a catalog without generations at most this often, unless a subscription changes.
    static let metadataRefreshMs: Int64 = 1_000

    /// The members' patterns' matches, kept between refreshes (`TopicPatternCache`).
    private var patterns = TopicPatternCache()

    init(groupId: String) { self.groupId = groupId }

    /// The group brought back from its records at a restart (`ConsumerGroupSnapshot`): its
    /// epochs, members, their partitions and targets as written; sessions count from `nowMs`.
    /// Partitions of topics gone since (`topicName` knows no such id) are dropped. If the
    /// topics now give another target (partitions added before the crash), the group epoch moves
    /// on and members reconcile at their next heartbeats, as after any metadata change. Nil
    /// for a snapshot without members, with a member state Kafka does not write, or with a
    /// pattern that cannot be matched within its budget.
    init?(
        restoring snapshot: ConsumerGroupSnapshot, groupId: String, catalog: TopicCatalog, topicName: (UUID) -> String?, nowMs: Int64,
        sessionTimeoutMs: Int64
    ) {
        guard !snapshot.members.isEmpty else { return nil }
        self.groupId = groupId
        self.sessionTimeoutMs = sessionTimeoutMs
        func resolve(_ topics: [ConsumerGroupSnapshot.TopicPartitions]) -> Set<TopicPartition> {
            var set: Set<TopicPartition> = []
            for topic in topics {
                guard let name = topicName(topic.topicId) else { continue }
                for partition in topic.partitions { set.insert(TopicPartition(name, Int(partition))) }
            }
            return set
        }
        for saved in snapshot.members {
            let states: [Int8: MemberState] = [0: .stable, 1: .unrevokedPartitions, 2: .unreleasedPartitions]
            guard let state = states[saved.state] else { return nil }
            var member = Member(
                memberId: saved.memberId, instanceId: saved.instanceId, rackId: saved.rackId, clientId: saved.clientId,
                clientHost: saved.clientHost, subscribedTopicNames: saved.subscribedTopicNames, subscribedTopicRegex: saved.subscribedTopicRegex,
                serverAssignor: saved.serverAssignor, rebalanceTimeoutMs: saved.rebalanceTimeoutMs, memberEpoch: saved.memberEpoch,
                previousMemberEpoch: saved.previousMemberEpoch, state: state, assigned: resolve(saved.assigned),
                pendingRevocation: resolve(saved.pendingRevocation), lastHeartbeatMs: nowMs)
            if state == .unrevokedPartitions { member.revocationDeadlineMs = nowMs.saturatingAdd(Int64(member.rebalanceTimeoutMs)) }
            member.keptBytes = Member.keptBytes(
                memberId: member.memberId, clientId: member.clientId, clientHost: member.clientHost, instanceId: member.instanceId,
                rackId: member.rackId, names: member.subscribedTopicNames, regex: member.subscribedTopicRegex)
            member.subscribedTopicNames = Array(Set(member.subscribedTopicNames)).sorted()
            for name in member.subscribedTopicNames { nameCounts[name, default: 0] += 1 }
            members[member.memberId] = member
            memberOrder.append(member.memberId)
            target[member.memberId] = resolve(saved.target)
            if let instanceId = member.instanceId { staticMembers[instanceId] = member.memberId }
            // Records that give a partition two owners, or name one no topic has, are damaged:
            // the group starts empty rather than hand a partition out twice.
            for tp in member.assigned.union(member.pendingRevocation) {
                guard owners[tp] == nil, tp.partition >= 0, tp.partition < catalog.partitionCount(tp.topic) ?? 0 else { return nil }
                owners[tp] = member.memberId
            }
        }
        restoredInFlight = Set(
            members.values.filter { m in
                m.memberEpoch != Self.leftForNowEpoch
                    && !(m.memberEpoch == snapshot.assignmentEpoch && m.state == .stable && m.assigned == (target[m.memberId] ?? []))
            }.map(\.memberId))
        for pattern in usedPatterns {
            guard case .success(let matched) = TopicPatternCache.matchNew(pattern, catalog: catalog) else { return nil }
            patterns.keep(matched, used: usedPatterns)
        }
        groupEpoch = snapshot.epoch
        _ = refreshMetadata(catalog, nowMs: nowMs)
        // The target the topics give now: the written one (the epochs stay), or a new one.
        let written = target
        computeTarget()
        if target == written {
            assignmentEpoch = snapshot.assignmentEpoch
        } else {
            groupEpoch = groupEpoch == Int32.max ? 1 : groupEpoch + 1
            computeTarget()
        }
    }

    var isEmpty: Bool { members.isEmpty }

    var state: ConsumerGroupState {
        if members.isEmpty { return .empty }
        if groupEpoch > assignmentEpoch { return .assigning }
        if members.values.contains(where: { $0.memberEpoch != assignmentEpoch || $0.state != .stable }) { return .reconciling }
        return .stable
    }

    /// Stable but for static members that left for now (epoch -2, their partitions kept for
    /// their next instance): a state worth writing (`GroupCoordinator.noteConsumerMembership`),
    /// as Kafka writes such a member's epoch, or a restart would bring the member back as it was
    /// and refuse its next instance (UNRELEASED_INSTANCE_ID).
    var isSettled: Bool {
        !members.isEmpty && groupEpoch == assignmentEpoch
            && members.values.allSatisfy { ($0.memberEpoch == assignmentEpoch && $0.state == .stable) || $0.memberEpoch == Self.leftForNowEpoch }
    }

    /// Whether `subscribedTopicNames` holds every topic its members subscribe to: false while
    /// a member's pattern has no matches kept (refused for its cost, or not yet matched), when
    /// the topics it reads are not known and none of the group's offsets may expire.
    var knowsItsSubscriptions: Bool {
        members.values.allSatisfy { member in
            guard let pattern = member.subscribedTopicRegex, !pattern.isEmpty else { return true }
            return patterns.matched(by: pattern) != nil
        }
    }

    /// The topics some member subscribes to by name (for OffsetDelete's check).
    var subscribedTopicNames: Set<String> {
        var names: Set<String> = []
        for member in members.values { names.formUnion(member.subscribedTopicNames) }
        return names.union(partitionCounts.keys)
    }

    /// The pattern compiled to match whole names only, as Kafka's `matches()` does (with
    /// `payments|payments-retry`, the name `payments-retry` matches), in linear time
    /// (`TopicPattern`: it runs under the coordinator's lock). Nil when the pattern is not valid.
    static func compile(_ pattern: String) -> TopicPattern? { TopicPattern(pattern) }

    static func wholeMatch(_ pattern: TopicPattern, _ name: String) -> Bool { pattern.matches(name) }

    // MARK: Heartbeat

    /// The epoch of a static member that left for now (a restart, or `close()`): it keeps its
    /// partitions, which no other member takes, until an instance with its group.instance.id
    /// joins in its place (and goes on with them) or its session runs out.
    static let leftForNowEpoch: Int32 = -2

    mutating func heartbeat(
        _ request: ConsumerHeartbeat, nowMs: Int64, settings: Settings, catalog: TopicCatalog, prematched: TopicPatternCache.MatchedPattern? = nil,
        newMemberId: () -> String
    ) -> ConsumerHeartbeatResult {
        sessionTimeoutMs = settings.sessionTimeoutMs
        if let instanceId = request.instanceId, instanceId.allSatisfy(\.isWhitespace) {
            return .failure(.invalidRequest, "the instance id must not be empty", memberId: request.memberId)
        }
        // A static member's heartbeat or leave is checked by its instance id, as Kafka does.
        if request.memberEpoch != 0, let instanceId = request.instanceId {
            guard let holder = staticMembers[instanceId] else {
                return .failure(.unknownMemberId, "instance id \(instanceId) is unknown in group \(groupId)", memberId: request.memberId)
            }
            guard holder == request.memberId else {
                return .failure(
                    .fencedInstanceId, "instance id \(instanceId) is held by member \(holder), not \(request.memberId)",
                    memberId: request.memberId)
            }
        }
        // Leaving: for good (-1), or for now (-2, a static member).
        if request.memberEpoch == -1 || request.memberEpoch == Self.leftForNowEpoch {
            guard request.memberEpoch == -1 || request.instanceId != nil else {
                return .failure(.invalidRequest, "a member leaving with epoch -2 must give its instance id", memberId: request.memberId)
            }
            guard members[request.memberId] != nil else {
                return .failure(.unknownMemberId, "member \(request.memberId) is not in group \(groupId)", memberId: request.memberId)
            }
            if request.memberEpoch == -1 { remove(request.memberId) } else { leaveForNow(request.memberId) }
            return ConsumerHeartbeatResult(
                memberId: request.memberId, memberEpoch: request.memberEpoch, heartbeatIntervalMs: 0)
        }
        guard request.memberEpoch >= 0 else {
            return .failure(.invalidRequest, "member epoch \(request.memberEpoch) is not valid", memberId: request.memberId)
        }
        // Validation before any change.
        if let name = request.serverAssignor, ServerAssignor(rawValue: name) == nil {
            return .failure(
                .unsupportedAssignor,
                "assignor '\(name)' is not one of \(ServerAssignor.allCases.map(\.rawValue).joined(separator: ", "))",
                memberId: request.memberId)
        }
        if let pattern = request.subscribedTopicRegex ?? members[request.memberId]?.subscribedTopicRegex,
            patterns.refused.contains(pattern)
        {
            return .failure(
                .invalidRegularExpression, "the pattern took too long to match against new topics: subscribe with a simpler one",
                memberId: request.memberId)
        }
        // A new pattern, matched within its steps before anything changes (by the coordinator
        // before its lock, or here); kept once the heartbeat is accepted.
        var newPattern: TopicPatternCache.MatchedPattern? = nil
        if let pattern = request.subscribedTopicRegex, !pattern.isEmpty, patterns.matched(by: pattern) == nil {
            if let prematched, prematched.pattern == pattern {
                newPattern = prematched
            } else {
                switch TopicPatternCache.matchNew(pattern, catalog: catalog) {
                case .success(let result): newPattern = result
                case .failure(let refusal): return .failure(.invalidRegularExpression, refusal.message, memberId: request.memberId)
                }
            }
        }
        var epochMoved = false
        var member: Member
        var joining = false
        if request.memberEpoch == 0 {
            guard request.subscribedTopicNames != nil || request.subscribedTopicRegex != nil else {
                return .failure(.invalidRequest, "a joining member must subscribe (topic names or a regex)", memberId: request.memberId)
            }
            let id = request.memberId.isEmpty ? newMemberId() : request.memberId
            restoredInFlight.remove(id)
            if let instanceId = request.instanceId, let holder = staticMembers[instanceId],
                holder != id || members[holder]?.memberEpoch == Self.leftForNowEpoch
            {
                // A static member's new instance: in the place of the one that left for now,
                // with its partitions; refused while that one is still in the group. (The
                // holder itself rejoining under its own member id, after a lost response or a
                // fence, is a rejoin, below, where Kafka answers UNRELEASED_INSTANCE_ID, which
                // librdkafka takes as fatal.)
                guard members[holder]?.memberEpoch == Self.leftForNowEpoch else {
                    return .failure(
                        .unreleasedInstanceId, "instance id \(instanceId) is held by member \(holder), which has not left",
                        memberId: id)
                }
                guard holder == id || members[id] == nil else {
                    return .failure(.invalidRequest, "member \(id) is in group \(groupId) already", memberId: id)
                }
                member = replace(holder, with: id)
            } else if let existing = members[id] {
                // Rejoining (it lost its state): it starts again from nothing.
                member = existing
                release(id)
                member.assigned = []
                member.pendingRevocation = []
                member.state = .stable
                member.memberEpoch = 0
                member.previousMemberEpoch = -1
            } else {
                guard members.count < settings.maxSize else {
                    return .failure(.groupMaxSizeReached, "group \(groupId) has \(members.count) members already", memberId: id)
                }
                member = Member(memberId: id, clientId: request.clientId, clientHost: request.clientHost, lastHeartbeatMs: nowMs)
                memberOrder.append(id)
                epochMoved = true
            }
            joining = true
        } else {
            guard let existing = members[request.memberId] else {
                return .failure(.unknownMemberId, "member \(request.memberId) is not in group \(groupId)", memberId: request.memberId)
            }
            if request.memberEpoch != existing.memberEpoch {
                // A lost response: the member is one epoch behind and owns nothing it should not.
                let owned = Set(request.ownedPartitions ?? [])
                guard request.memberEpoch == existing.previousMemberEpoch, request.ownedPartitions != nil,
                    owned.isSubset(of: existing.assigned)
                else {
                    return .failure(
                        .fencedMemberEpoch,
                        "member epoch \(request.memberEpoch) is not the current \(existing.memberEpoch); rejoin with epoch 0",
                        memberId: request.memberId)
                }
            }
            // Brought back from records written in the middle of its reconciliation: what it
            // holds now is not known (it may have given partitions up since, and clients say
            // what they own only when it changes: it waited for a revocation it had made, its
            // partitions unowned, until its rebalance timeout). Told what it owns, it goes on;
            // otherwise it rejoins, as after a fence.
            if restoredInFlight.remove(request.memberId) != nil && request.ownedPartitions == nil {
                return .failure(
                    .fencedMemberEpoch, "member \(request.memberId) was restored in the middle of a rebalance; rejoin with epoch 0",
                    memberId: request.memberId)
            }
            member = existing
        }
        member.lastHeartbeatMs = nowMs
        member.clientId = request.clientId.isEmpty ? member.clientId : request.clientId
        if !request.clientHost.isEmpty { member.clientHost = request.clientHost }
        if let instanceId = request.instanceId, instanceId != member.instanceId {
            // (Only at a join: a later heartbeat's instance id is its holder's, checked above.)
            if let old = member.instanceId, staticMembers[old] == member.memberId { staticMembers.removeValue(forKey: old) }
            member.instanceId = instanceId
            staticMembers[instanceId] = member.memberId
        }
        if let rackId = request.rackId { member.rackId = rackId }
        if request.rebalanceTimeoutMs >= 0 { member.rebalanceTimeoutMs = request.rebalanceTimeoutMs }
        if let names = request.subscribedTopicNames {
            let sorted = Array(Set(names)).sorted()
            if sorted != member.subscribedTopicNames {
                let (new, old) = (Set(sorted), Set(member.subscribedTopicNames))
                unsubscribe(member.subscribedTopicNames.filter { !new.contains($0) })
                subscribe(sorted.filter { !old.contains($0) }, catalog)
                member.subscribedTopicNames = sorted
                member.revision &+= 1
                epochMoved = true
            }
        }
        if let pattern = request.subscribedTopicRegex {
            let value: String? = pattern.isEmpty ? nil : pattern
            if value != member.subscribedTopicRegex {
                member.subscribedTopicRegex = value
                member.revision &+= 1
                epochMoved = true
            }
        }
        if request.serverAssignor != nil, request.serverAssignor != member.serverAssignor {
            member.serverAssignor = request.serverAssignor
            member.revision &+= 1
            epochMoved = true
        }
        member.keptBytes = Member.keptBytes(
            memberId: member.memberId, clientId: member.clientId, clientHost: member.clientHost, instanceId: member.instanceId,
            rackId: member.rackId, names: member.subscribedTopicNames, regex: member.subscribedTopicRegex)
        if let newPattern { patterns.keep(newPattern, used: usedPatterns) }
        members[member.memberId] = member
        let generation = catalog.generation?()
        let due = metadataRefreshedMs == .min || nowMs.subtractingReportingOverflow(metadataRefreshedMs).partialValue >= Self.metadataRefreshMs
        if generation.map({ $0 != metadataGeneration }) ?? due {
            if refreshMetadata(catalog, nowMs: nowMs) { epochMoved = true }
        } else if epochMoved || countsStale {
            if recount(catalog) { epochMoved = true }
        }
        if epochMoved { groupEpoch = groupEpoch == Int32.max ? 1 : groupEpoch + 1 }
        if groupEpoch > assignmentEpoch { computeTarget() }

        let before = members[member.memberId]!
        reconcile(member.memberId, owned: request.ownedPartitions.map(Set.init), nowMs: nowMs)
        guard let after = members[member.memberId] else {
            return .failure(
                .fencedMemberEpoch, "member \(member.memberId) did not give up its partitions in time",
                memberId: member.memberId)
        }
        let owned = request.ownedPartitions.map(Set.init)
        let tell =
            joining || after.memberEpoch != request.memberEpoch || after.assigned != before.assigned
            || (owned != nil && owned != after.assigned)
        return ConsumerHeartbeatResult(
            memberId: after.memberId, memberEpoch: after.memberEpoch, heartbeatIntervalMs: settings.heartbeatIntervalMs,
            assignment: tell ? after.assigned.sorted(by: ServerAssignor.partitionOrder) : nil)
    }

    /// Whether the group knows `pattern` already: kept (a member subscribes with it), or
    /// refused (then its heartbeat is refused without matching it again).
    func knowsPattern(_ pattern: String) -> Bool { patterns.knows(pattern) }

    /// The patterns members subscribe with.
    private var usedPatterns: Set<String> {
        Set(members.values.compactMap(\.subscribedTopicRegex))
    }

    /// Names a member now subscribes to: counted, and looked up if no member did before.
    private mutating func subscribe(_ names: [String], _ catalog: TopicCatalog) {
        for name in names {
            nameCounts[name, default: 0] += 1
            if nameCounts[name] == 1, let count = catalog.partitionCount(name), count > 0 { namedCounts[name] = count }
        }
    }

    /// Names a member no longer subscribes to (or a member gone): `partitionCounts` follows at
    /// the next recount.
    private mutating func unsubscribe(_ names: [String]) {
        for name in names {
            guard let count = nameCounts[name] else { continue }
            if count > 1 {
                nameCounts[name] = count - 1
            } else {
                nameCounts.removeValue(forKey: name)
                if namedCounts.removeValue(forKey: name) != nil { countsStale = true }
            }
        }
    }

    /// Re-reads the partition counts of every subscribed name (the topics changed); true when
    /// `partitionCounts` changed.
    private mutating func refreshMetadata(_ catalog: TopicCatalog, nowMs: Int64) -> Bool {
        metadataRefreshedMs = nowMs
        metadataGeneration = catalog.generation?()
        var named: [String: Int] = [:]
        for name in nameCounts.keys {
            if let count = catalog.partitionCount(name), count > 0 { named[name] = count }
        }
        namedCounts = named
        return recount(catalog)
    }

    /// Makes `partitionCounts` from the named topics' counts and the patterns' matches (as
    /// many as there are topics, not subscribed names); true when it changed.
    private mutating func recount(_ catalog: TopicCatalog) -> Bool {
        countsStale = false
        var counts = namedCounts
        let used = usedPatterns
        if !used.isEmpty || !patterns.isEmpty {
            patterns.update(names: used.isEmpty ? [] : catalog.topicNames(), patterns: used)
            for matched in patterns.allMatched {
                for name in matched where counts[name] == nil {
                    if let count = catalog.partitionCount(name), count > 0 { counts[name] = count }
                }
            }
        }
        guard counts != partitionCounts else { return false }
        partitionCounts = counts
        return true
    }

    /// The topics one member reads: its names plus its regex's matches, among those that exist.
    /// Its names are sorted: a member of many names that are not topics is searched for each
    /// topic rather than each of its names looked up.
    private func topics(of member: Member) -> Set<String> {
        let names = member.subscribedTopicNames
        var topics: Set<String>
        if names.count > partitionCounts.count * 4 {
            topics = Set(partitionCounts.keys.filter { name in
                var (low, high) = (0, names.count)
                while low < high {
                    let mid = (low + high) / 2
                    if names[mid] < name { low = mid + 1 } else { high = mid }
                }
                return low < names.count && names[low] == name
            })
        } else {
            topics = Set(names.filter { partitionCounts[$0] != nil })
        }
        // A pattern's matches as of the last refresh (none for one refused, or not kept yet).
        if let pattern = member.subscribedTopicRegex, let matched = patterns.matched(by: pattern) {
            for name in matched where partitionCounts[name] != nil { topics.insert(name) }
        }
        return topics
    }

    private mutating func computeTarget() {
        // The assignor most members ask for; the default when none asks.
        var votes: [ServerAssignor: Int] = [:]
        for member in members.values {
            if let name = member.serverAssignor, let chosen = ServerAssignor(rawValue: name) { votes[chosen, default: 0] += 1 }
        }
        assignor = votes.max { $0.value != $1.value ? $0.value < $1.value : $0.key.rawValue > $1.key.rawValue }?.key ?? .default
        let inputs = memberOrder.compactMap { id in members[id].map { ServerAssignor.Member(memberId: id, topics: topics(of: $0)) } }
        target = assignor.assign(members: inputs, partitionCounts: partitionCounts, previous: target)
        assignmentEpoch = groupEpoch
    }

    /// Moves one member toward its target: first it gives up what it must, then it takes what
    /// is free; it reaches the target's epoch once nothing is left to give up.
    private mutating func reconcile(_ id: String, owned: Set<TopicPartition>?, nowMs: Int64) {
        guard var member = members[id] else { return }
        if member.state == .unrevokedPartitions {
            if let owned, owned.isDisjoint(with: member.pendingRevocation) {
                for tp in member.pendingRevocation where owners[tp] == id { owners.removeValue(forKey: tp) }
                member.pendingRevocation = []
                member.state = .stable
                member.revocationDeadlineMs = .max
            } else {
                if nowMs >= member.revocationDeadlineMs { remove(id) }
                return
            }
        }
        let goal = target[id] ?? []
        if member.memberEpoch == assignmentEpoch && member.state == .stable && member.assigned == goal {
            members[id] = member
            return
        }
        let keep = member.assigned.intersection(goal)
        let revoke = member.assigned.subtracting(goal)
        if !revoke.isEmpty, let owned, owned.isDisjoint(with: revoke) {
            // It says it holds none of them (as Kafka's CurrentAssignmentBuilder reads owned
            // partitions): free at once. A member restored from records written before it gave
            // them up was otherwise told to give up again what it no longer held, and
            // librdkafka, holding what it was told, said nothing more until its rebalance timeout.
            for tp in revoke where owners[tp] == id { owners.removeValue(forKey: tp) }
            member.assigned = keep
        } else if !revoke.isEmpty {
            member.assigned = keep
            member.pendingRevocation = revoke
            member.state = .unrevokedPartitions
            member.revocationDeadlineMs = nowMs + Int64(member.rebalanceTimeoutMs)
            members[id] = member
            return
        }
        let wanted = goal.subtracting(keep)
        let free = wanted.filter { owners[$0] == nil || owners[$0] == id }
        for tp in free { owners[tp] = id }
        member.assigned = keep.union(free)
        if member.memberEpoch != assignmentEpoch {
            member.previousMemberEpoch = member.memberEpoch
            member.memberEpoch = assignmentEpoch
        }
        member.state = free.count == wanted.count ? .stable : .unreleasedPartitions
        members[id] = member
    }

    private mutating func release(_ id: String) {
        guard let member = members[id] else { return }
        for tp in member.assigned.union(member.pendingRevocation) where owners[tp] == id { owners.removeValue(forKey: tp) }
    }

    /// A static member leaving for now (epoch -2): it keeps its partitions and its place in the
    /// target, its session running from its last heartbeat; what it was giving up is free.
    private mutating func leaveForNow(_ id: String) {
        guard var member = members[id] else { return }
        for tp in member.pendingRevocation where owners[tp] == id { owners.removeValue(forKey: tp) }
        member.pendingRevocation = []
        member.state = .stable
        member.revocationDeadlineMs = .max
        // No later epoch of this instance is taken (a lost response's epoch included).
        member.memberEpoch = Self.leftForNowEpoch
        member.previousMemberEpoch = Self.leftForNowEpoch
        members[id] = member
    }

    /// A static member that left for now, taken over by its new instance (`id`) in place: its
    /// partitions, subscription and target move over; the group's epoch does not move. What it
    /// holds beyond its target is let go at once (the new instance owns nothing yet).
    private mutating func replace(_ old: String, with id: String) -> Member {
        var member = members.removeValue(forKey: old)!
        member.memberId = id
        if let i = memberOrder.firstIndex(of: old) { memberOrder[i] = id }
        if let goal = target.removeValue(forKey: old) { target[id] = goal }
        if let instanceId = member.instanceId { staticMembers[instanceId] = id }
        let goal = target[id] ?? []
        for tp in member.assigned where owners[tp] == old { owners[tp] = goal.contains(tp) ? id : nil }
        member.assigned.formIntersection(goal)
        member.memberEpoch = 0
        member.previousMemberEpoch = -1
        member.state = .stable
        members[id] = member
        return member
    }

    mutating func remove(_ id: String) {
        guard let member = members[id] else { return }
        if let instanceId = member.instanceId, staticMembers[instanceId] == id { staticMembers.removeValue(forKey: instanceId) }
        release(id)
        unsubscribe(member.subscribedTopicNames)
        restoredInFlight.remove(id)
        members.removeValue(forKey: id)
        memberOrder.removeAll { $0 == id }
        target.removeValue(forKey: id)
        groupEpoch = groupEpoch == Int32.max ? 1 : groupEpoch + 1
        // Its pattern's matches too may go (the next heartbeat recounts).
        countsStale = true
        if members.isEmpty {
            // An empty group keeps no pattern caches (it may be kept a while, for its offsets),
            // and subscribes to nothing (OffsetDelete goes through for any topic).
            patterns = TopicPatternCache()
            partitionCounts = [:]
            namedCounts = [:]
            countsStale = false
        }
    }

    /// Members whose session ran out, or who kept partitions past their rebalance timeout,
    /// are removed (their partitions go to the others at their next heartbeats).
    mutating func tick(nowMs: Int64, sessionTimeoutMs: Int64) -> [String] {
        self.sessionTimeoutMs = sessionTimeoutMs
        var expired: [String] = []
        for id in memberOrder {
            guard let member = members[id] else { continue }
            if nowMs - member.lastHeartbeatMs > sessionTimeoutMs || nowMs >= member.revocationDeadlineMs {
                expired.append(id)
            }
        }
        for id in expired { remove(id) }
        return expired
    }

    // MARK: Offsets

    /// OffsetCommit from this group: a member at its current epoch, or (epoch < 0) a commit
    /// from outside group management while the group is empty, whatever member id it names, as
    /// Kafka's `ConsumerGroup.validateOffsetCommit` takes it (librdkafka's consumers with
    /// `group.protocol=consumer` send their own member id with `assign()` and `commit()`: they
    /// were refused UNKNOWN_MEMBER_ID until the empty group was dropped).
    func validateCommit(memberId: String, memberEpoch: Int32, memberEpochs: Bool = true) -> TidemarkError.Code? {
        if memberEpoch < 0 && members.isEmpty { return nil }
        if memberId.isEmpty && memberEpoch < 0 { return .unknownMemberId }
        guard let member = members[memberId] else { return .unknownMemberId }
        // A member of this protocol commits with OffsetCommit v9+ (Kafka's check, before the epoch).
        guard memberEpochs else { return .unsupportedVersion }
        return memberEpoch == member.memberEpoch ? nil : .staleMemberEpoch
    }

    func describe() -> ConsumerGroupDescription {
        ConsumerGroupDescription(
            groupId: groupId, state: state, groupEpoch: groupEpoch, assignmentEpoch: assignmentEpoch,
            assignorName: assignor.rawValue,
            members: memberOrder.compactMap { id in
                guard let m = members[id] else { return nil }
                return ConsumerGroupDescription.Member(
                    memberId: id, instanceId: m.instanceId, rackId: m.rackId, memberEpoch: m.memberEpoch,
                    clientId: m.clientId, clientHost: m.clientHost, subscribedTopicNames: m.subscribedTopicNames,
                    subscribedTopicRegex: m.subscribedTopicRegex,
                    assignment: m.assigned.sorted(by: ServerAssignor.partitionOrder),
                    targetAssignment: (target[id] ?? []).sorted(by: ServerAssignor.partitionOrder))
            })
    }
}

import Foundation
import Logging
import Synchronization
import TidemarkStorage

/// Which group protocol a group id runs.
public enum GroupType: String, Sendable {
    /// JoinGroup/SyncGroup, client-side assignment.
    case classic = "Classic"
    /// ConsumerGroupHeartbeat (KIP-848), server-side assignment.
    case consumer = "Consumer"
}

/// One row of ListGroups.
public struct GroupListing: Sendable, Equatable {
    public var groupId: String
    public var protocolType: String
    public var state: String
    public var type: GroupType
}

/// What DescribeGroups reports.
public struct GroupDescription: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        public var memberId: String
        public var groupInstanceId: String?
        public var clientId: String
        public var clientHost: String
        public var metadata: [UInt8]
        public var assignment: [UInt8]
    }
    public var groupId: String
    public var state: GroupState
    public var protocolType: String
    public var protocolName: String
    public var generationId: Int32
    public var members: [Member]
}

/// Runs the consumer groups: one `ClassicGroup` state machine per group id, and the
/// members waiting in JoinGroup or SyncGroup as continuations.
///
/// Both the embedded group consumer and the Kafka front drive this same coordinator.
/// Concurrency: `state` (a Mutex) owns the groups and the waiting continuations; a state
/// machine step and the registration of its caller's continuation happen under one lock
/// hold, so no delivery can be missed; continuations are resumed after the lock is released.
public final class GroupCoordinator: Sendable {
    struct WaiterKey: Hashable {
        var group: String
        var member: String
    }

    struct State: Sendable {
        /// Classic groups (JoinGroup/SyncGroup). A group id is in at most one of the two maps.
        var groups: [String: ClassicGroup] = [:]
        /// Consumer-protocol groups (ConsumerGroupHeartbeat, KIP-848).
        var consumerGroups: [String: ConsumerGroup] = [:]
        var joinWaiters: [WaiterKey: CheckedContinuation<JoinGroupResponse, Never>] = [:]
        var syncWaiters: [WaiterKey: CheckedContinuation<SyncGroupResponse, Never>] = [:]
        var isClosed = false
        /// Since when each idle group has been idle (see `GroupOptions.emptyGroupRetentionMs`).
        var idleSince: [String: Int64] = [:]
        /// The last offsets-expiry check; the coordinator's start counts as one, so members
        /// that consumed before a restart have rejoined (are active) at the first.
        var lastOffsetsExpiryMs: Int64 = 0
        /// Groups whose deletion (DeleteGroups) is writing its tombstones, with how many
        /// deletions are: joins and commits wait (COORDINATOR_LOAD_IN_PROGRESS, which clients
        /// retry) so none lands in between.
        var deleting: [String: Int] = [:]
        /// What groups' members keep (`ClassicGroup.memberBytes`, `ConsumerGroup.memberBytes`),
        /// all groups together: `GroupOptions.membersMaxBytes` bounds it.
        private(set) var memberBytes = 0

        /// Sets (nil: removes) a consumer-protocol group, keeping `memberBytes` right. Every
        /// change of its members goes through here.
        mutating func setConsumer(_ group: ConsumerGroup?, id: String) {
            memberBytes -= consumerGroups[id]?.memberBytes ?? 0
            consumerGroups[id] = group
            memberBytes += group?.memberBytes ?? 0
            consumerDue[id] = group?.nextDueMs
            if let group, group.isEmpty {
                consumerIdle.insert(id)
            } else if consumerIdle.remove(id) != nil {
                idleSince.removeValue(forKey: id)
            }
        }

        /// Takes a consumer group out of the map, to be changed without a copy of its tables and
        /// put back with `setConsumer` (which counts its bytes again).
        mutating func takeConsumer(_ id: String) -> ConsumerGroup? {
            guard let group = consumerGroups.removeValue(forKey: id) else { return nil }
            memberBytes -= group.memberBytes
            return group
        }

        /// A consumer group's settings changed (its session timeout may be shorter): the next
        /// tick looks at it.
        mutating func consumerSettingsChanged(_ id: String, nowMs: Int64) {
            if consumerGroups[id] != nil { consumerDue[id] = min(consumerDue[id] ?? .max, nowMs) }
        }

        /// Sets (nil: removes) a classic group, keeping `memberBytes` right. Every change
        /// of a group's members, protocols or assignments goes through here (a heartbeat's
        /// changes none of them).
        mutating func setClassic(_ group: ClassicGroup?, id: String) {
            memberBytes -= groups[id]?.memberBytes ?? 0
            groups[id] = group
            memberBytes += group?.memberBytes ?? 0
            classicDue[id] = group?.nextDueMs
            if let group, group.isIdle {
                classicIdle.insert(id)
            } else if classicIdle.remove(id) != nil {
                idleSince.removeValue(forKey: id)
            }
        }

        /// The classic groups that are idle (`ClassicGroup.isIdle`): dropped by the tick once
        /// idle for `GroupOptions.emptyGroupRetentionMs`.
        private(set) var classicIdle: Set<String> = []

        /// Per classic group, when `tick` next has something to do in it (`ClassicGroup.nextDueMs`,
        /// as of its last change). The tick passes the others by: it ticked every group each
        /// second under the lock, and 200,000 groups (one JoinGroup each) held it 1.7 s a time.
        private(set) var classicDue: [String: Int64] = [:]

        /// The same for consumer-protocol groups (`ConsumerGroup.nextDueMs`), and those that
        /// are empty: the tick walked every one each second, as it did classic groups.
        private(set) var consumerDue: [String: Int64] = [:]
        private(set) var consumerIdle: Set<String> = []
    }

    public let options: GroupOptions
    let store: OffsetStore
    let configs: GroupConfigs
    /// Times sessions, rebalances and checks (`BrokerOptions.timers`: steady).
    let clock: @Sendable () -> Int64
    /// The wall clock: commit timestamps (persisted) and offsets retention, which compares
    /// them with timestamps written before a restart.
    let wallClock: @Sendable () -> Int64
    /// Touched by this type and its extensions (offsets, membership records) only.
    let state = Mutex(State())

    /// Where rebalances are logged (one line per generation, never per heartbeat).
    let logger: Logger?

    /// Membership records on their way to `__consumer_offsets`, sent under `state` as groups
    /// change, one waiting per group (`MembershipQueue`: its newest), written one by one by
    /// `membershipWriter`.
    let membershipRecords: MembershipQueue
    let membershipWriter: Task<Void, Never>
    /// Records the queue dropped to keep its bounds (a writer stalled far behind).
    let membershipRecordsDropped = Atomic<Int>(0)
    /// What was last sent to the writer, per classic group: a record is written only while
    /// the group's life it was sent in lasts (`RecordedMemberships`).
    let recordedMemberships = RecordedMemberships()

    init(
        options: GroupOptions, store: OffsetStore, configs: GroupConfigs, clock: @escaping @Sendable () -> Int64,
        wallClock: (@Sendable () -> Int64)? = nil, logger: Logger? = nil
    ) {
        self.wallClock = wallClock ?? clock
        self.logger = logger
        self.options = options
        self.store = store
        self.configs = configs
        self.clock = clock
        let records = MembershipQueue()
        membershipRecords = records
        let started = clock()
        state.withLock { $0.lastOffsetsExpiryMs = started }
        let recorded = recordedMemberships
        membershipWriter = Task { [logger] in await records.write(to: store, recorded: recorded, logger: logger) }
    }

    /// A coordinator dropped without `closeStore` (a broker whose open failed after making it)
    /// ends its writer, which would otherwise wait for records for good, holding the store.
    deinit { membershipRecords.finish() }

    struct Ready {
        var joins: [(CheckedContinuation<JoinGroupResponse, Never>, JoinGroupResponse)] = []
        var syncs: [(CheckedContinuation<SyncGroupResponse, Never>, SyncGroupResponse)] = []
        /// A join moved the group to a new generation: (generation, members), to log.
        var rebalanced: (Int32, Int)? = nil
        func resumeAll() {
            for (continuation, response) in joins { continuation.resume(returning: response) }
            for (continuation, response) in syncs { continuation.resume(returning: response) }
        }
    }

    /// Matches deliveries with waiting members (under the lock).
    private static func collect(_ deliveries: [ClassicGroup.Delivery], group: String, _ s: inout State) -> Ready {
        var ready = Ready()
        for delivery in deliveries {
            switch delivery {
            case .join(let member, let response):
                if let waiter = s.joinWaiters.removeValue(forKey: WaiterKey(group: group, member: member)) {
                    ready.joins.append((waiter, response))
                }
            case .sync(let member, let response):
                if let waiter = s.syncWaiters.removeValue(forKey: WaiterKey(group: group, member: member)) {
                    ready.syncs.append((waiter, response))
                }
            }
        }
        return ready
    }

    static func validGroupId(_ id: String) -> Bool { !id.isEmpty && id.utf8.count <= 255 }

    // MARK: Membership

    /// The most protocols a JoinGroup may name, and their bytes (names and metadata).
    static let maxProtocols = 100
    static let maxProtocolBytes = 1 << 20

    /// JoinGroup: returns when the member's generation is decided (or at once on error).
    public func join(_ request: JoinGroupRequest) async -> JoinGroupResponse {
        guard Self.validGroupId(request.groupId) else { return .failure(.invalidGroupId, memberId: request.memberId) }
        // A member's protocols are kept as long as it stays: at most 100 of them (clients name
        // one per assignor, a handful) and 1 MiB of metadata. 35 million empty ones fit a
        // 100 MiB request, 3 bytes each on the wire and 24 in memory, and each join walked them
        // under the coordinator's lock.
        guard request.protocols.count <= Self.maxProtocols,
            request.protocols.reduce(0, { $0 + $1.name.utf8.count + $1.metadata.count }) <= Self.maxProtocolBytes
        else {
            return .failure(.inconsistentGroupProtocol, memberId: request.memberId)
        }
        let now = clock()
        return await withCheckedContinuation { (continuation: CheckedContinuation<JoinGroupResponse, Never>) in
            let ready = state.withLock { s -> Ready in
                var ready = Ready()
                guard !s.isClosed else {
                    ready.joins.append((continuation, .failure(.brokerClosed, memberId: request.memberId)))
                    return ready
                }
                guard s.deleting[request.groupId] == nil else {
                    ready.joins.append((continuation, .failure(.groupBusy, memberId: request.memberId)))
                    return ready
                }
                if let other = s.consumerGroups[request.groupId] {
                    guard other.isEmpty else {
                        ready.joins.append((continuation, .failure(.inconsistentGroupProtocol, memberId: request.memberId)))
                        return ready
                    }
                    s.setConsumer(nil, id: request.groupId)
                    // What it recorded is forgotten, as the other way round: a classic generation
                    // equal to its epoch was not written, and an Empty record named its type.
                    recordedMemberships.retire(request.groupId)
                }
                let isNew = s.groups[request.groupId] == nil
                var group = s.groups[request.groupId] ?? ClassicGroup(groupId: request.groupId, options: options)
                // Members keep their protocols' metadata (up to 1 MiB each) while they stay, and a
                // group and the ids it hands out cost too: a join that would take all groups past
                // the broker's bound is refused.
                let kept = group.members[request.memberId]?.keptBytes ?? 0
                let keeps = ClassicGroup.Member.keptBytes(protocols: request.protocols) + request.memberId.utf8.count
                    + (request.groupInstanceId?.utf8.count ?? 0) + request.clientId.utf8.count + request.clientHost.utf8.count
                    + request.protocolType.utf8.count + (isNew ? ClassicGroup.groupBytes(request.groupId) : 0)
                    + (request.memberId.isEmpty ? ClassicGroup.pendingIdBytes : 0)
                if keeps > kept && s.memberBytes - kept + keeps > options.membersMaxBytes {
                    ready.joins.append((continuation, .failure(.groupMaxSizeReached, memberId: request.memberId)))
                    return ready
                }
                let generationBefore = group.generationId
                let (response, deliveries) = group.join(request, nowMs: now)
                s.setClassic(group, id: request.groupId)
                ready.rebalanced = Self.rebalanced(group, since: generationBefore)
                // A static member's new instance taking its place in a Stable group is answered
                // once the record naming its new member id is in the log, as in Kafka: a
                // restart that read the old record back would fence the running instance
                // (FENCED_INSTANCE_ID stops librdkafka and Java consumers for good).
                let replaced = request.memberId.isEmpty && request.groupInstanceId != nil && response?.error == nil && response != nil
                if let response, replaced {
                    let sent = noteMembership(group, &s, replaced: true) { written in
                        continuation.resume(
                            returning: written
                                ? response
                                : .failure(.groupBusy, memberId: response.memberId))
                    }
                    if !sent { ready.joins.append((continuation, response)) }
                } else if let response {
                    ready.joins.append((continuation, response))
                } else {
                    // The member id may have been assigned just now: find the caller's entry (a
                    // static member's new id takes its old member's place in the join order).
                    let memberId =
                        !request.memberId.isEmpty ? request.memberId
                        : request.groupInstanceId.flatMap { group.staticMembers[$0] } ?? group.memberOrder.last!
                    let key = WaiterKey(group: request.groupId, member: memberId)
                    if let previous = s.joinWaiters.updateValue(continuation, forKey: key) {
                        ready.joins.append((previous, .failure(.rebalanceInProgress, memberId: memberId)))
                    }
                }
                let more = Self.collect(deliveries, group: request.groupId, &s)
                ready.joins += more.joins
                ready.syncs += more.syncs
                if !replaced { noteMembership(group, &s) }
                return ready
            }
            ready.resumeAll()
            logRebalance(request.groupId, ready.rebalanced)
        }
    }

    /// The generation a step completed, with its member count, if it left members (what
    /// "group rebalanced" says): for joins, leaves and the tick alike.
    private static func rebalanced(_ group: ClassicGroup, since generation: Int32) -> (Int32, Int)? {
        group.generationId != generation && !group.members.isEmpty ? (group.generationId, group.memberOrder.count) : nil
    }

    private func logRebalance(_ groupId: String, _ rebalanced: (Int32, Int)?, logger: Logger? = nil) {
        guard let (generation, members) = rebalanced else { return }
        (logger ?? self.logger)?.info(
            "group rebalanced", metadata: ["group": "\(groupId)", "generation": "\(generation)", "members": "\(members)"])
    }

    /// SyncGroup: the leader passes everyone's assignment; others wait for it. `protocolType`
    /// and `protocolName` (SyncGroup v5+) must be the group's when given.
    public func sync(
        groupId: String, memberId: String, groupInstanceId: String? = nil, generationId: Int32, protocolType: String? = nil,
        protocolName: String? = nil, assignments: [String: [UInt8]]?
    ) async -> SyncGroupResponse {
        let now = clock()
        return await withCheckedContinuation { (continuation: CheckedContinuation<SyncGroupResponse, Never>) in
            let ready = state.withLock { s -> Ready in
                var ready = Ready()
                guard !s.isClosed, var group = s.groups[groupId] else {
                    ready.syncs.append((continuation, .failure(s.isClosed ? .brokerClosed : .unknownMemberId)))
                    return ready
                }
                // The leader's assignments are kept with the members: they count toward the bound too.
                if let assignments {
                    let growth = assignments.reduce(0) { sum, entry in
                        sum + (group.members[entry.key].map { entry.value.count - $0.assignment.count } ?? 0)
                    }
                    if growth > 0 && s.memberBytes + growth > options.membersMaxBytes {
                        ready.syncs.append((continuation, .failure(.groupMaxSizeReached)))
                        return ready
                    }
                }
                let (response, deliveries) = group.sync(
                    memberId: memberId, instance: groupInstanceId, generationId: generationId, protocolType: protocolType,
                    protocolName: protocolName, assignments: assignments, nowMs: now)
                s.setClassic(group, id: groupId)
                if let response {
                    ready.syncs.append((continuation, response))
                } else {
                    let key = WaiterKey(group: groupId, member: memberId)
                    if let previous = s.syncWaiters.updateValue(continuation, forKey: key) {
                        ready.syncs.append((previous, .failure(.rebalanceInProgress)))
                    }
                }
                let more = Self.collect(deliveries, group: groupId, &s)
                ready.joins += more.joins
                ready.syncs += more.syncs
                // A generation made Stable here is answered once its record is in the log, as
                // Kafka appends the group before it answers SyncGroup: answered first, a kill -9
                // in between brought back the generation before (ILLEGAL_GENERATION at the
                // members' next heartbeat and commit, CommitFailedError in kafka-python), or a
                // static member's old instance (FENCED_INSTANCE_ID, fatal in clients). A record
                // that could not be written answers them as they were (the failure is logged).
                // Answers that write nothing wait for the group's records on their way (a member's
                // SyncGroup after its leader's: the generation it is told of is in one of them).
                let held = ready.syncs
                let answer: @Sendable (Bool) -> Void = { _ in for (c, response) in held { c.resume(returning: response) } }
                if held.isEmpty {
                    noteMembership(group, &s)
                } else if noteMembership(group, &s, whenWritten: answer) || membershipRecords.afterPending(groupId, answer) {
                    ready.syncs = []
                }
                return ready
            }
            ready.resumeAll()
        }
    }

    /// Heartbeat: nil when the member is in good standing; `.rebalanceInProgress` asks it to rejoin.
    public func heartbeat(groupId: String, memberId: String, groupInstanceId: String? = nil, generationId: Int32) -> TidemarkError.Code? {
        let now = clock()
        return state.withLock { s in
            guard var group = s.groups[groupId] else { return .unknownMemberId }
            let result = group.heartbeat(memberId: memberId, instance: groupInstanceId, generationId: generationId, nowMs: now)
            s.groups[groupId] = group
            return result
        }
    }

    /// LeaveGroup: per member, nil on success or the error.
    @discardableResult
    public func leave(groupId: String, memberIds: [String]) -> [String: TidemarkError.Code?] {
        let results = leave(groupId: groupId, members: memberIds.map { ($0, nil) })
        var byId: [String: TidemarkError.Code?] = [:]
        for (id, result) in zip(memberIds, results) where byId[id] == nil { byId[id] = result }
        return byId
    }

    /// LeaveGroup v3+: members by member id, instance id or both; per member, in order, nil
    /// on success or the error (FENCED_INSTANCE_ID: the instance has a newer member id).
    public func leave(groupId: String, members: [(memberId: String, groupInstanceId: String?)]) -> [TidemarkError.Code?] {
        let now = clock()
        let (results, ready) = state.withLock { s -> ([TidemarkError.Code?], Ready) in
            guard var group = s.groups[groupId] else { return (members.map { _ in .unknownMemberId }, Ready()) }
            let generation = group.generationId
            let (results, deliveries) = group.leave(members: members.map { ($0.memberId, $0.groupInstanceId) }, nowMs: now)
            s.setClassic(group, id: groupId)
            noteMembership(group, &s)
            var ready = Self.collect(deliveries, group: groupId, &s)
            ready.rebalanced = Self.rebalanced(group, since: generation)
            return (results, ready)
        }
        ready.resumeAll()
        logRebalance(groupId, ready.rebalanced)
        return results
    }

    /// `leave`, answered once the record the leave wrote is in the log: the last member's
    /// leave writes the group's Empty record, and a kill -9 before it brought the members
    /// back at the restart, waited for until their sessions ran out. Kafka answers a
    /// LeaveGroup once its records are appended; the Kafka front uses this one. (A record
    /// not written, the broker closing, answers the same: the members have left either way.)
    public func leaveWhenRecorded(groupId: String, members: [(memberId: String, groupInstanceId: String?)]) async -> [TidemarkError.Code?] {
        let now = clock()
        return await withCheckedContinuation { (answer: CheckedContinuation<[TidemarkError.Code?], Never>) in
            let (results, ready, waits) = state.withLock { s -> ([TidemarkError.Code?], Ready, Bool) in
                guard var group = s.groups[groupId] else { return (members.map { _ in .unknownMemberId }, Ready(), false) }
                let generation = group.generationId
                let (results, deliveries) = group.leave(members: members.map { ($0.memberId, $0.groupInstanceId) }, nowMs: now)
                s.setClassic(group, id: groupId)
                let waits = noteMembership(group, &s) { _ in answer.resume(returning: results) }
                var ready = Self.collect(deliveries, group: groupId, &s)
                ready.rebalanced = Self.rebalanced(group, since: generation)
                return (results, ready, waits)
            }
            ready.resumeAll()
            logRebalance(groupId, ready.rebalanced)
            if !waits { answer.resume(returning: results) }
        }
    }

    /// Expires sessions and completes overdue rebalances in every group.
    /// `topicId`: the topics' ids, for the records of consumer groups whose members' sessions
    /// ran out (nil: those are written at the group's next change).
    func tick(logger: Logger? = nil, topicId: ((String) -> UUID?)? = nil) async {
        let now = clock()
        var expiredMembers: [(group: String, members: [String])] = []
        // What time did to classic groups, logged as a join's rebalance is: members removed
        // (sessions, a first join given up, a SyncGroup never sent) and generations completed
        // (a rebalance deadline, the initial delay, the ids handed out expiring).
        var classicChanges: [(group: String, removed: [String], rebalanced: (Int32, Int)?)] = []
        let (ready, expiryDue, activeGroups) = state.withLock { s -> (Ready, Bool, [String: OffsetStore.ActiveGroup]) in
            var ready = Ready()
            // Only the classic groups whose next deadline has come are ticked (a look at each
            // deadline, not at each group), and only idle ones are looked at for retention.
            var dueIds: [String] = []
            for (id, due) in s.classicDue where due <= now { dueIds.append(id) }
            for id in dueIds {
                guard var group = s.groups[id] else { continue }
                let (generationBefore, membersBefore) = (group.generationId, Set(group.members.keys))
                let deliveries = group.tick(nowMs: now)
                let removed = membersBefore.subtracting(group.members.keys).sorted()
                let rebalanced = Self.rebalanced(group, since: generationBefore)
                if !removed.isEmpty || rebalanced != nil { classicChanges.append((id, removed, rebalanced)) }
                let more = Self.collect(deliveries, group: id, &s)
                ready.joins += more.joins
                ready.syncs += more.syncs
                noteMembership(group, &s)
                s.setClassic(group, id: id)
            }
            for id in Array(s.classicIdle) {
                let since = s.idleSince[id] ?? now
                if now - since >= options.emptyGroupRetentionMs {
                    s.setClassic(nil, id: id)
                    s.idleSince.removeValue(forKey: id)
                    recordedMemberships.retire(id)
                } else {
                    s.idleSince[id] = since
                }
            }
            dueIds.removeAll()
            for (id, due) in s.consumerDue where due <= now { dueIds.append(id) }
            for id in dueIds {
                guard var group = s.takeConsumer(id) else { continue }  // (no copy; put back below)
                let expired = group.tick(nowMs: now, sessionTimeoutMs: consumerSettings(id).sessionTimeoutMs)
                if !expired.isEmpty { expiredMembers.append((id, expired)) }
                s.setConsumer(group, id: id)
                // Members whose sessions ran out are written out now, as any change of who is
                // in the group (`noteConsumerMembership`): it waited for a heartbeat of the others
                // that changed something, and a crash before that brought them back, holding
                // their partitions for another session. The last one's leaves the group Empty.
                if !expired.isEmpty || group.isEmpty { noteConsumerMembership(group, &s, topicId: topicId ?? { _ in nil }) }
            }
            for id in Array(s.consumerIdle) {
                let since = s.idleSince[id] ?? now
                if now - since >= options.emptyGroupRetentionMs {
                    s.setConsumer(nil, id: id)
                    s.idleSince.removeValue(forKey: id)
                    recordedMemberships.retire(id)
                } else {
                    s.idleSince[id] = since
                }
            }
            let due = now - s.lastOffsetsExpiryMs >= options.offsetsRetentionCheckIntervalMs
            if due { s.lastOffsetsExpiryMs = now }
            var active: [String: OffsetStore.ActiveGroup] = [:]
            if due {
                for (id, group) in s.groups where !group.members.isEmpty {
                    active[id] = group.knownSubscribedTopics.map { .subscribedTo($0) } ?? .keepsAll
                }
                for (id, group) in s.consumerGroups {
                    active[id] =
                        group.isEmpty
                        ? .consumerProtocolEmpty : group.knowsItsSubscriptions ? .subscribedTo(group.subscribedTopicNames) : .keepsAll
                }
            }
            return (ready, due, active)
        }
        ready.resumeAll()
        for change in classicChanges {
            if !change.removed.isEmpty {
                logger?.info(
                    "group members removed: no heartbeat in their session timeout, not rejoined or synced within the rebalance timeout, or a first join that waited too long",
                    metadata: ["group": "\(change.group)", "members": "\(change.removed)"])
            }
            logRebalance(change.group, change.rebalanced, logger: logger)
        }
        for (group, members) in expiredMembers {
            logger?.info("consumer group members removed: no heartbeat in their session timeout, or partitions kept past their rebalance timeout",
                metadata: ["group": "\(group)", "members": "\(members)"])
        }
        if expiryDue {
            do {
                let expired = try await store.expire(olderThan: wallClock().saturatingAdd(-max(options.offsetsRetentionMs, 1)), active: activeGroups)
                if !expired.isEmpty {
                    logger?.info("committed offsets expired", metadata: ["groups": "\(expired.sorted())"])
                }
            } catch {
                logger?.error("committed-offsets expiry failed; retried at the next check", metadata: ["error": "\(error)"])
            }
        }
        do {
            try await store.compactIfNeeded()
        } catch {
            logger?.error("committed-offsets compaction failed; retried at the next pass", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Shutdown

    func close() async {
        let now = clock()
        let ready = state.withLock { s -> Ready in
            s.isClosed = true
            membershipRecords.finish()
            return Self.abandonAll(&s, nowMs: now)
        }
        ready.resumeAll()
    }

    /// Answers every member parked in a JoinGroup or SyncGroup now with
    /// REBALANCE_IN_PROGRESS (clients join again), without closing: for a server that drains
    /// its connections before it stops.
    func abandonWaiters() {
        let now = clock()
        state.withLock { Self.abandonAll(&$0, nowMs: now) }.resumeAll()
    }

    private static func abandonAll(_ s: inout State, nowMs: Int64) -> Ready {
        var ready = Ready()
        for id in Array(s.groups.keys) {
            var group = s.groups[id]!
            let more = collect(group.abandonWaiters(nowMs: nowMs), group: id, &s)
            s.setClassic(group, id: id)
            ready.joins += more.joins
            ready.syncs += more.syncs
        }
        return ready
    }

    /// Closes the offsets log once the membership records noted before `close` are written.
    func closeStore() async throws {
        membershipRecords.finish()
        await membershipWriter.value
        try await store.close()
    }
}

import Foundation
import Logging
import Synchronization
import TidemarkStorage

/// Runs the share groups (KIP-932): membership (`ShareGroup`), per-(group, partition) record
/// state (`SharePartition`), share sessions (per member: the partitions it fetches and the
/// epoch its next request must carry), and the durable state (`ShareStateStore`).
///
/// Concurrency: one Mutex (`state`) owns all of it. A step and the share-state log append
/// that records it happen under one lock hold, so the log order is the state's order; the
/// fdatasync that makes acknowledgements durable happens outside it (group commit).
/// Acquisitions alone are not written per fetch: their delivery counts reach the log with the
/// partition's next snapshot (its acknowledgement, release or expiry) or the next maintenance
/// pass (`maintenanceIntervalMs`), and at close. A held record is written with the count before
/// its delivery (a delivery the process's end cuts is not the worker's failure), so a crash
/// gives the records it held back with the counts of the last snapshot, and never loses an
/// acknowledgement. Except for a worker in the process (the embedded consumer, whose job may be
/// what ended it): its acquisitions are written at once, counted (`Session.inProcess`), so a
/// job that crashes the process reaches the delivery limit instead of crashing every start.
/// Bounds: groups (`shareMaxGroups`: those with members or share state), members per group
/// (`shareGroupMaxSize`), sessions (`shareMaxSessions`), records in flight per partition
/// (`share.partition.max.record.locks`), partitions per session and per group (those of the
/// topics in the broker). So the share state is at most groups x partitions windows, whose
/// entries are bounded per window (`shareWindowMaxRecords`) and together
/// (`shareWindowsTotalMaxRecords`, beyond a floor per window of its record locks' worth).
public final class ShareCoordinator: Sendable {
    struct PartitionKey: Hashable, Sendable {
        var group: String
        var topicPartition: TopicPartition
    }

    struct State: Sendable {
        /// Share groups' membership; changed only by `setGroup` (which keeps `memberBytes`).
        private(set) var groups: [String: ShareGroup] = [:]
        /// What all share groups' members keep (`ShareGroup.memberBytes`): bounded by
        /// `GroupOptions.membersMaxBytes`, as the other groups' members are (a bound of its own).
        private(set) var memberBytes = 0
        var slots: [PartitionKey: Slot] = [:]
        /// Moves whenever a slot is made, replaced, removed or reset (`insertSlot`,
        /// `removeSlot`, AlterShareGroupOffsets): what else changes a slot cannot make one that
        /// was caught up have records without its log's end moving (`QuietMarks`).
        var slotsEpoch: UInt64 = 0
        var sessions: [SessionKey: Session] = [:]
        var idleSince: [String: Int64] = [:]
        var isClosed = false
        /// The wall clock less the timers' at the last maintenance pass that saw it change by a
        /// second or more (nil before the first): a step of the wall clock moves the delayed
        /// jobs' times (`SharePartition.shiftDelays`).
        var lastClockSkewMs: Int64? = nil
        /// Entries the windows of all slots keep (`ShareWindow.keptCount` summed), bounded by
        /// `GroupOptions.shareWindowsTotalMaxRecords`: exact after each maintenance pass, and
        /// between passes counted as acquisitions change windows (windows that shrink
        /// otherwise, or go, are counted at the next pass: an over-count, never an under-count).
        var windowRecords = 0
        /// A window that stopped reading the log at that bound since the last pass (the pass
        /// logs it, at most once a minute: `windowBoundLoggedMs`).
        var windowBoundHit: PartitionKey?
        var windowBoundLoggedMs: Int64?
        /// A window that stopped reading the log at its own bound (`ShareSettings.maxWindow`)
        /// since the last pass, with records after it: logged as above.
        var windowFull: PartitionKey?
        var windowFullLoggedMs: Int64?
        /// A partition of a group with per-key ordering whose records waiting behind their
        /// keys' unfinished ones reached their cap (ten times the record locks), since the last
        /// pass: later records there, of any key, are not read until some go out. Said in the
        /// log once a minute (`tick`).
        var keyBacklogFull: PartitionKey?
        var keyBacklogFullLoggedMs: Int64?
        /// Windows restored at open may still wait for their keys and delays
        /// (`readRestoredMetadata`); false once a pass found none (none is made later), so the
        /// maintenance pass stops looking.
        var restoredPending = true
        /// Every share group the broker knows, with how many things keep it: 1 for its
        /// membership state (`groups`) and 1 per slot. Its count is what `shareMaxGroups` bounds.
        private(set) var known: [String: Int] = [:]

        /// Whether `group` may have membership or share state: it has some already, or there
        /// is room for one more group.
        func admits(_ group: String, maxGroups: Int) -> Bool { known[group] != nil || known.count < maxGroups }

        mutating func retain(_ group: String) { known[group, default: 0] += 1 }

        mutating func release(_ group: String) {
            guard let n = known[group] else { return }
            known[group] = n > 1 ? n - 1 : nil
        }

        /// Adds `slot` under `key`, counting a new one toward its group, and its window's
        /// entries instead of those of the slot it replaces.
        mutating func insertSlot(_ slot: Slot, at key: PartitionKey) {
            slotsEpoch &+= 1
            windowRecords += slot.state.entries.keptCount
            if let old = slots.updateValue(slot, forKey: key) {
                windowRecords = max(0, windowRecords - old.state.entries.keptCount)
            } else {
                retain(key.group)
            }
        }

        /// Removes the slot under `key`, if any, its count toward its group and its window's entries.
        mutating func removeSlot(_ key: PartitionKey) {
            if let old = slots.removeValue(forKey: key) {
                slotsEpoch &+= 1
                windowRecords = max(0, windowRecords - old.state.entries.keptCount)
                release(key.group)
            }
        }

        /// Sets or drops `group`'s membership state, counting it toward the group.
        mutating func setGroup(_ group: ShareGroup?, id: String) {
            memberBytes += (group?.memberBytes ?? 0) - (groups[id]?.memberBytes ?? 0)
            switch (groups[id] == nil, group) {
            case (true, let g?): groups[id] = g; retain(id)
            case (false, let g?): groups[id] = g
            case (false, nil): groups.removeValue(forKey: id); release(id)
            case (true, nil): break
            }
        }
    }

    public let options: GroupOptions
    let configs: GroupConfigs
    let store: ShareStateStore
    /// Times locks, backoffs and delays (`BrokerOptions.timers`: steady).
    let clock: @Sendable () -> Int64
    /// The wall clock: lock deadlines are reported in it (`summaries`).
    let wallClock: @Sendable () -> Int64
    /// Internal (not private) for the extensions in `ShareCoordinator+DeadLetters.swift`.
    let state: Mutex<State>
    /// One dead-letter pass at a time (`Broker.writeDeadLetters`).
    let deadLetterPasses = PassGate()
    /// Dead-letter problems already logged (logged once until they clear).
    let deadLetterProblems = Mutex<Set<String>>([])
    /// When (ContinuousClock, ms since its first read here) the last dead-letter pass met a
    /// topic it could not write (0: it did not): passes asked for by acknowledgements wait a
    /// second after one (`Broker.writeDeadLettersAfterAcknowledgement`).
    let deadLetterPassFailedAt = Atomic<Int64>(0)

    init(options: GroupOptions, configs: GroupConfigs, store: ShareStateStore, restored: [ShareStateStore.Key: SharePartition],
         topicNames: [UUID: String], clock: @escaping @Sendable () -> Int64, wallClock: (@Sendable () -> Int64)? = nil)
    {
        self.options = options
        self.configs = configs
        self.store = store
        self.clock = clock
        self.wallClock = wallClock ?? clock
        var initial = State()
        for (key, partition) in restored {
            guard let topic = topicNames[key.topicId] else { continue }
            // Groups restored past `shareMaxGroups` (a lower setting since) stay; no new one comes
            // until they are fewer.
            initial.insertSlot(
                Slot(state: partition, topicId: key.topicId),
                at: PartitionKey(group: key.group, topicPartition: TopicPartition(topic, key.partition)))
        }
        state = Mutex(initial)
        let now = clock()
        state.withLock { s in
            for key in s.slots.keys { s.slots[key]!.state.restartBackoffs(settings: settings(key.group), nowMs: now) }
        }
    }

    // MARK: Membership

    /// ShareGroupHeartbeat. A member that leaves gives back every record it holds.
    public func heartbeat(_ request: ShareHeartbeat, catalog: TopicCatalog) -> ConsumerHeartbeatResult {
        guard GroupCoordinator.validGroupId(request.groupId) else {
            return .failure(.invalidRequest, "the group id must be 1 to 255 bytes", memberId: request.memberId)
        }
        guard request.memberId.utf8.count <= 255, (request.rackId?.utf8.count ?? 0) <= 255,
            (request.subscribedTopicNames?.count ?? 0) <= ShareGroup.maxSubscribedNames
        else {
            return .failure(.invalidRequest, "member id, rack id or subscription too long", memberId: request.memberId)
        }
        // A name no topic can have is kept out of the subscription, not refused: it would match
        // none (Kafka stores it and assigns nothing for it, where a refusal, INVALID_REQUEST, is
        // fatal to librdkafka: one mistyped name beside good ones ended the worker). Checked
        // here, before the lock, so no such name is kept or sorted under it.
        if request.memberEpoch == 0 && request.subscribedTopicNames?.isEmpty ?? true {
            return .failure(.invalidRequest, "SubscribedTopicNames must be set in first request.", memberId: request.memberId)
        }
        var request = request
        if TopicName.refusal(ofSubscription: request.subscribedTopicNames) != nil {
            request.subscribedTopicNames = request.subscribedTopicNames?.filter { (try? TopicName.validate($0)) != nil }
        }
        let now = clock()
        let settings = groupSettings(request.groupId)
        let shareSettings = self.settings(request.groupId)
        return state.withLock { s in
            if s.isClosed { return .failure(.brokerClosed, "the broker is closing", memberId: request.memberId) }
            guard s.admits(request.groupId, maxGroups: options.shareMaxGroups) else {
                return .failure(.groupMaxSizeReached, maxGroupsMessage(s), memberId: request.memberId)
            }
            var group = s.groups[request.groupId] ?? ShareGroup(groupId: request.groupId)
            let before = s.groups[request.groupId]?.memberBytes ?? 0
            let (result, left) = group.heartbeat(request, nowMs: now, settings: settings, catalog: catalog) {
                UUID().uuidString.lowercased()
            }
            // A heartbeat that would take all share members past the bound is refused, and
            // changes nothing: each member kept up to 10,000 subscribed names and its
            // assignment, counted nowhere (30 members of 10,000 long names took 116 MB).
            // Only growth the client asks for (a join, a new subscription) is refused: a member's
            // assignment also grows when its topics get partitions, and its heartbeats must go on.
            let after = group.memberBytes
            if request.subscribedTopicNames != nil && after > before && s.memberBytes - before + after > options.membersMaxBytes {
                return .failure(
                    .groupMaxSizeReached, "share group members keep \(s.memberBytes) bytes (group.members.max.bytes)",
                    memberId: request.memberId)
            }
            if !(group.isEmpty && s.groups[request.groupId] == nil) { s.setGroup(group, id: request.groupId) }
            // A member that leaves keeps its share session for now: clients leave first and then
            // close the session with their last acknowledgements (ShareAcknowledge, epoch -1),
            // which releases whatever it still holds. If that never comes, its locks expire.
            _ = left
            _ = shareSettings
            return result
        }
    }

    /// Whether a share group has this id: with membership state, or with share state (which
    /// lasts, as Kafka's share groups do, until DeleteGroups). See `Broker.shareGroupHolds`.
    public func isShareGroup(_ group: String) -> Bool { state.withLock { $0.known[group] != nil } }

    /// Whether the group has membership state (members now, or a moment ago).
    public func hasMembership(_ group: String) -> Bool { state.withLock { $0.groups[group] != nil } }

    /// `hasMembership` and `isShareGroup` under one lock (an OffsetCommit per job asks).
    func ownership(_ group: String) -> (membership: Bool, known: Bool) {
        state.withLock { ($0.groups[group] != nil, $0.known[group] != nil) }
    }

    // MARK: Sessions and acknowledgements

    /// Opens (epoch 0), moves (epoch n > 0, which must be the session's next) or closes
    /// (epoch -1) `member`'s share session, and applies the acknowledgements it carries.
    /// `add` joins partitions to the session, `forget` removes them.
    ///
    /// `requireMember`: a session is opened only for a member of the group (one that joined
    /// with a ShareGroupHeartbeat), as the Kafka front asks: a ShareFetch naming any group and
    /// member made share groups (1,000 made-up ones in 0.2 s locked every real new group out
    /// at `group.share.max.groups`), their partitions' share state (400 made-up groups on a
    /// topic of 5,000 partitions held 1.5 GB), and acquired real jobs for no worker. Kafka
    /// initializes a group's share state only once a heartbeat subscribes it. Refused with
    /// UNKNOWN_MEMBER_ID, which sends a client back to its heartbeat. (The embedded consumer
    /// is the process's own.)
    ///
    /// `inProcess`: the session's worker runs in this process (the embedded consumer): a job it
    /// holds when the process ends comes back with that delivery counted (`Session.inProcess`).
    public func updateSession(
        group: String, member: String, epoch: Int32, add: [TopicPartition], forget: [TopicPartition],
        acknowledgements: [TopicPartition: [ShareAcknowledgement]], allowRenew: Bool, view: ShareLogView, connection: UInt64? = nil,
        requireMember: Bool = false, inProcess: Bool = false
    ) -> ShareSessionUpdate {
        guard GroupCoordinator.validGroupId(group) else { return .failure(.invalidRequest, "a share request needs a group id") }
        guard !member.isEmpty, member.utf8.count <= 255 else { return .failure(.invalidRequest, "a share request needs a member id") }
        let now = clock()
        let settings = self.settings(group)
        // A group that starts at the log's end (latest) starts each partition as the session
        // names it, as Kafka initializes every partition a ShareFetch names: one the fetch's
        // record limit did not reach (filled from another topic) skipped the jobs produced until
        // a later fetch reached it. (by_duration starts at the first record recent enough: one
        // produced meanwhile is; and its start may need a read, not made under this lock.)
        let startsWhenNamed = !add.isEmpty && startPolicy(group) == .latest
        return state.withLock { s -> ShareSessionUpdate in
            if s.isClosed { return .failure(.brokerClosed, "the broker is closing") }
            let key = SessionKey(group: group, member: member)
            var session: Session
            switch epoch {
            case 0:
                if requireMember && s.groups[group]?.members[member] == nil {
                    return .failure(
                        .unknownMemberId,
                        "member \(member) is not in share group \(group): join it with a ShareGroupHeartbeat before fetching")
                }
                // (Its group is looked up here for a clear answer; its slots check it again.)
                guard s.admits(group, maxGroups: options.shareMaxGroups) else {
                    return .failure(.groupMaxSizeReached, maxGroupsMessage(s))
                }
                if s.sessions[key] == nil && s.sessions.count >= options.shareMaxSessions {
                    // Room comes only from a session whose member is no longer in its group
                    // (a live member's may hold jobs it will acknowledge), unused the longest.
                    let stale = s.sessions.filter { s.groups[$0.key.group]?.members[$0.key.member] == nil }
                        .min { $0.value.lastUsedMs < $1.value.lastUsedMs }
                    guard let stale else { return .failure(.shareSessionLimitReached, "\(s.sessions.count) share sessions are open") }
                    s.sessions.removeValue(forKey: stale.key)
                }
                session = Session(lastUsedMs: now)
                session.inProcess = inProcess
                session.requireMember = requireMember
                session.heldIn = s.sessions[key]?.heldIn ?? []
            case -1:
                guard let existing = s.sessions[key] else {
                    return .failure(.shareSessionNotFound, "member \(member) has no share session in group \(group)")
                }
                session = existing
            default:
                // An epoch below -1 is never valid (Kafka: INVALID_SHARE_SESSION_EPOCH, whether
                // or not there is a session); it was answered as if the session were gone.
                guard epoch > 0 else {
                    return .failure(.invalidShareSessionEpoch, "share session epoch \(epoch) is not valid")
                }
                guard let existing = s.sessions[key] else {
                    return .failure(.shareSessionNotFound, "member \(member) has no share session in group \(group)")
                }
                guard epoch == existing.nextEpoch else {
                    return .failure(.invalidShareSessionEpoch, "share session epoch \(epoch) is not the expected \(existing.nextEpoch)")
                }
                session = existing
                session.nextEpoch = epoch == Int32.max ? 1 : epoch + 1
            }
            session.lastUsedMs = now
            if let connection { session.connection = connection }
            for tp in add where session.known.insert(tp).inserted {
                session.partitions.append(tp)
                if startsWhenNamed { _ = slotKey(group, tp, view: view, &s) }
            }
            if !forget.isEmpty {
                let gone = Set(forget).intersection(session.known)
                if !gone.isEmpty {
                    session.known.subtract(gone)
                    session.partitions.removeAll { gone.contains($0) }
                }
            }
            var update = ShareSessionUpdate(lockDurationMs: settings.lockDurationMs)
            var changed: [PartitionKey] = []
            var syncAcknowledgements = false
            for (tp, acks) in acknowledgements {
                if epoch == 0 {
                    update.acknowledged[tp] = .some(.invalidShareSessionEpoch)
                    continue
                }
                guard let pkey = existingSlotKey(group, tp, view: view, s) else {
                    update.acknowledged[tp] = .some(.unknownTopicOrPartition)
                    continue
                }
                // In place (a copy of the slot would copy its window): a refused acknowledgement
                // changes nothing (`acknowledge` checks every offset before it applies any).
                let result = s.slots[pkey]!.state.acknowledge(acks, member: member, nowMs: now, settings: settings, allowRenew: allowRenew)
                update.acknowledged[tp] = result
                if result == nil {
                    changed.append(pkey)
                    // Only releases: offering the next record of a key after each accept woke
                    // a waiting worker per job, and the acking worker's own fetch, finding
                    // nothing then, walked the whole keyed window (one key, 4 workers: 735
                    // jobs/s at 1.4 ms of server CPU each, against 2,300 without).
                    if acks.contains(where: { $0.types.contains(.release) }) { update.released.append(tp) }
                    // A full window (`Slot.locksFull`) was closed to appends' wakes: a freed
                    // lock lets a waiting worker take the next record, and appends wake again.
                    else if s.slots[pkey]!.locksFull { update.released.append(tp) }
                    s.slots[pkey]!.locksFull = false
                    if !s.slots[pkey]!.state.deadLetters.isEmpty { update.deadLettersPending = true }
                    if view.syncsEveryAppend(tp.topic) { syncAcknowledgements = true }
                }
            }
            if epoch == -1 {
                let closed = closeSession(key, session, settings: settings, &s)
                changed += closed
                update.released += closed.map(\.topicPartition)
            } else {
                // (Forgotten partitions may have left the cursor past the end.)
                session.cursor = session.partitions.isEmpty ? 0 : (session.cursor + 1) % session.partitions.count
                update.partitions = SessionPartitions(session.partitions, start: session.cursor, walksAll: true)
                s.sessions[key] = session
            }
            do {
                let written = try writeSlots(changed, &s)
                update.durableAt = syncAcknowledgements ? written : nil
            } catch {
                // Not in the log: the worker is told so (a storage error). The records are
                // finished in memory already and their slots stay unwritten, so the next write
                // that succeeds (the maintenance pass tries each second) records them; until
                // then a crash would deliver them again. A retried acknowledgement is refused
                // (they are no longer acquired), and they are not handed out again.
                for (tp, result) in update.acknowledged where result == nil { update.acknowledged[tp] = .some(.storage) }
            }
            return update
        }
    }

    /// Waits (group commit) until everything below `offset` of the share-state log is durable.
    public func whenDurable(_ offset: Int64, _ completion: @escaping @Sendable (TidemarkError?) -> Void) {
        store.whenDurable(offset) { error in completion(error.map { TidemarkError.wrapping($0, "share state flush") }) }
    }

    func maxGroupsMessage(_ s: State) -> String {
        "the broker has \(s.known.count) share groups (group.share.max.groups is \(options.shareMaxGroups)): delete unused ones"
    }

    // MARK: Open and close

    /// At open, before anything is appended: a restored window past its log's end (crash
    /// recovery after a power loss kept less of the log than the share state saw) is cut back
    /// to it, durably, so jobs appended at those offsets again are delivered as new. (Cut
    /// only in memory, a second restart after such appends could not tell them from the lost
    /// ones.) Returns how many partitions were cut.
    func followLogs(_ bounds: (_ topicId: UUID, _ partition: Int) -> (start: Int64, end: Int64)?) async throws -> Int {
        let (durableAt, cut) = try state.withLock { s -> (Int64?, Int) in
            var changed: [PartitionKey] = []
            for (key, slot) in s.slots {
                guard let b = bounds(slot.topicId, key.topicPartition.partition), slot.state.endOffset > b.end else { continue }
                s.slots[key]!.state.follow(logStart: b.start, logEnd: b.end)
                changed.append(key)
            }
            return (try writeSlots(changed, &s), changed.count)
        }
        if let durableAt { try await waitDurable(durableAt) }
        return cut
    }

    func waitDurable(_ offset: Int64) async throws {
        let error: TidemarkError? = await withCheckedContinuation { continuation in
            whenDurable(offset) { continuation.resume(returning: $0) }
        }
        if let error { throw error }
    }

    /// Writes what is still unwritten (acquisitions since the last pass), then closes the log.
    func close() async throws {
        state.withLock { s in
            s.isClosed = true
            // A clean stop cuts the in-process workers' deliveries as it cuts a client's.
            for key in s.slots.keys where s.slots[key]!.state.uncountCutDeliveries() { s.slots[key]!.unwritten = true }
            write(s.slots.keys.filter { s.slots[$0]!.unwritten }, &s)
        }
        try await store.close()
    }
}

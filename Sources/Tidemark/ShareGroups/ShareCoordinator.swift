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
/// pass (`maintenanceIntervalMs`), and at close. A process crash in between gives the records
/// it held back with the delivery counts of the last snapshot (one more delivery than the limit
/// at most), never loses an acknowledgement.
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
    public func updateSession(
        group: String, member: String, epoch: Int32, add: [TopicPartition], forget: [TopicPartition],
        acknowledgements: [TopicPartition: [ShareAcknowledgement]], allowRenew: Bool, view: ShareLogView, connection: UInt64? = nil,
        requireMember: Bool = false
    ) -> ShareSessionUpdate {
        guard GroupCoordinator.validGroupId(group) else { return .failure(.invalidRequest, "a share request needs a group id") }
        guard !member.isEmpty, member.utf8.count <= 255 else { return .failure(.invalidRequest, "a share request needs a member id") }
        let now = clock()
        let settings = self.settings(group)
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
            for tp in add where session.known.insert(tp).inserted { session.partitions.append(tp) }
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
                update.partitions = SessionPartitions(session.partitions, start: session.cursor)
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

    /// Acquires up to `maxRecords` records over `partitions` for `member`.
    public func acquire(group: String, member: String, partitions: [TopicPartition], maxRecords: Int, view: ShareLogView)
        -> [ShareAcquisition]
    {
        var wouldBlock = false
        return acquire(group: group, member: member, partitions: partitions, maxRecords: maxRecords, view: view, wouldBlock: &wouldBlock)
    }

    /// Acquires as `acquire(group:member:partitions:maxRecords:view:)` does; `wouldBlock` is set
    /// when the view declined a read that needed the disk: a partition whose window needed
    /// that read gave nothing this time (and is as it was), and an empty result may be only
    /// that. The caller then acquires again with a view that may block, off its event loop.
    public func acquire(
        group: String, member: String, partitions: [TopicPartition], maxRecords: Int, view: ShareLogView, wouldBlock: inout Bool
    ) -> [ShareAcquisition] {
        var live: [TopicPartition] = []
        return acquire(
            group: group, member: member, partitions: SessionPartitions(partitions), maxRecords: maxRecords, view: view,
            wouldBlock: &wouldBlock, live: &live)
    }

    /// Acquires as above, over a session's partitions in this fetch's order (`ShareSessionUpdate.partitions`).
    /// `live` gets those of them it looked at whose window was not caught up (`SharePartition.isCaughtUp`):
    /// the others can get records only by an append (a long poll watches for those).
    public func acquire(
        group: String, member: String, partitions: SessionPartitions, maxRecords: Int, view: ShareLogView, wouldBlock: inout Bool,
        live: inout [TopicPartition]
    ) -> [ShareAcquisition] {
        let now = clock()
        let settings = self.settings(group)
        var declined = false
        var notCaughtUp: [TopicPartition] = []
        defer {
            if declined { wouldBlock = true }
            live = notCaughtUp
        }
        return state.withLock { s -> [ShareAcquisition] in
            // Only for an open session: a long poll whose connection closed (its session
            // closed with it, its jobs given back) must not take them again.
            guard !s.isClosed, let session = s.sessions[SessionKey(group: group, member: member)] else { return [] }
            var remaining = max(1, maxRecords)
            var result: [ShareAcquisition] = []
            var changed: [PartitionKey] = []
            var lastTopic: (name: String, id: UUID?)? = nil
            // Only the session's partitions: a caller's list can be older than the session (a
            // connection's watch of a partition of a topic deleted since, and made again under
            // its name: acquired, its records went out under an id the worker did not know).
            for tp in partitions where remaining > 0 && session.known.contains(tp) {
                // A partition with nothing in its window and nothing new in its log costs
                // lookups only: a long poll's first acquire walks every session partition.
                var needsBlocking = false
                guard let (pkey, bounds, caughtUp) = slot(group, tp, view: view, &s, lastTopic: &lastTopic, needsBlocking: &needsBlocking),
                    !caughtUp
                else {
                    if needsBlocking { declined = true }
                    continue
                }
                notCaughtUp.append(tp)
                // A restored window first reads its records' keys and delays: only a read, so
                // a view that declines it leaves the slot as it was (a later acquire does it).
                var restored: [SharePartition.RecordMeta]? = nil
                var cutAt: Int64?
                if let scan = view.scan, s.slots[pkey]!.state.needsMetadata {
                    switch Self.readRestored(s.slots[pkey]!.state.unfinishedRanges(), of: tp, bounds: bounds, scan: scan) {
                    case .failed(let error):
                        result.append(ShareAcquisition(topicPartition: tp, offsets: [], ranges: [], error: error))
                        continue
                    case .declined:
                        declined = true
                        continue
                    case .read(let metas, let cut):
                        restored = metas
                        cutAt = cut
                    }
                }
                // Taken out while it changes, so its window is changed in place, not copied.
                var slot = s.slots.removeValue(forKey: pkey)!
                // The entries the other windows keep (for the broker-wide bound); this one's
                // change is counted when it goes back.
                let keptBefore = slot.state.entries.keptCount
                let othersKept = max(0, s.windowRecords - keptBefore)
                // A window moved by the log or by expired locks (records released, archived,
                // dead-lettered) is written now; acquisitions alone wait (`Slot.unwritten`).
                var moved = slot.state.follow(logStart: bounds.start, logEnd: bounds.end)
                if let cutAt, slot.state.follow(logStart: bounds.start, logEnd: cutAt) { moved = true }
                if slot.state.expireLocks(nowMs: now, settings: settings) > 0 { moved = true }
                // Work is spread: a member takes at most its fair share of the partition's
                // backlog among the group's members (all of it when alone).
                let members = max(1, s.groups[group]?.members.count ?? 1)
                let allowed = min(remaining, slot.state.fairShare(for: member, members: members, logEnd: bounds.end))
                var logEnd = bounds.end
                var unreadable: TidemarkError?
                if let scan = view.scan {
                    // Read the keys and delays of records entering the window (and, after a
                    // restart, of those already in it); candidates then come from the window.
                    if let restored { slot.state.annotate(with: restored) }
                    slot.state.needsMetadata = false
                    // Delayed records do not count toward the in-flight cap: scanning goes on past
                    // them (at most 20,000 records per fetch) until enough can go out now.
                    // Records already in the window that can go out now count first: a member
                    // taking one record per fetch must not scan (decode) more of the log each time.
                    var scanned = 0
                    var found = slot.state.searchWindow(max: allowed, settings: settings, nowMs: now)
                    var due = found.offsets.count
                    // When fewer than allowed were found, the search saw the whole window: its
                    // counts hold, then change as records enter. With per-key ordering, records
                    // behind an unfinished one of their key are not due and hold no lock: they
                    // are capped apart (ten times the locks), so one busy key does not grow the
                    // window to its 100,000 for every fetch to walk; past that cap its backlog
                    // stops the partition's other keys too until some of it goes out (logged:
                    // `keyBacklogFull`).
                    while allowed > 0, due < allowed, scanned < 20_000, slot.state.endOffset < bounds.end {
                        // The window's bound is on the entries it keeps: finished ones are cut
                        // (behind a record that holds the start), at once when it is out of room
                        // and 256 could be (a pass over the kept entries per 256 records, at most).
                        // Past the broker-wide bound, a window keeps up to its record locks.
                        if windowRoom(slot.state, settings, othersKept: othersKept) <= 0 {
                            slot.state.shedFinished(atLeast: max(1, min(256, settings.maxWindow / 10)))
                        }
                        let roomLeft = windowRoom(slot.state, settings, othersKept: othersKept)
                        if roomLeft <= 0 {
                            if slot.state.entries.keptCount < settings.maxWindow { s.windowBoundHit = pkey } else { s.windowFull = pkey }
                        }
                        let room = min(
                            settings.maxInFlight - found.inFlight, settings.maxInFlight * 10 - found.blocked, roomLeft)
                        if settings.maxInFlight * 10 - found.blocked <= 0 { s.keyBacklogFull = pkey }
                        guard room > 0 else { break }
                        let read: [SharePartition.RecordMeta]?
                        do throws(TidemarkError) {
                            read = try scan(tp.topic, tp.partition, slot.state.endOffset, min(room, max(allowed - due, 256)))
                        } catch {
                            unreadable = error
                            break
                        }
                        guard let metas = read else {
                            declined = true
                            break
                        }
                        guard !metas.isEmpty else { break }
                        slot.state.extend(with: metas)
                        scanned += metas.count
                        for meta in metas {
                            // A delayed record holds its key too: later ones of the key wait.
                            let first = !settings.keyOrdering || (meta.keyHash.map { slot.state.claimKey($0, in: &found) } ?? true)
                            guard meta.deliverAtMs <= now else { continue }
                            if first {
                                due += 1
                                found.inFlight += 1
                            } else {
                                found.blocked += 1
                            }
                        }
                    }
                    logEnd = slot.state.endOffset
                }
                let offsets = slot.state.candidates(max: allowed, logEnd: logEnd, settings: settings, nowMs: now)
                if !offsets.isEmpty {
                    let ranges = slot.state.acquire(offsets, member: member, nowMs: now, settings: settings)
                    // Only what was acquired: a record at a lowered delivery limit is archived
                    // instead (and dead-lettered), written at once as any archiving is.
                    var acquired = offsets
                    let count = ranges.reduce(0) { $0 + Int($1.last - $1.first + 1) }
                    if count < offsets.count {
                        acquired = offsets.filter { offset in ranges.contains { $0.first <= offset && offset <= $0.last } }
                        moved = true
                    }
                    if !acquired.isEmpty {
                        result.append(ShareAcquisition(topicPartition: tp, offsets: acquired, ranges: ranges))
                        remaining -= acquired.count
                    }
                    slot.unwritten = true
                } else if let unreadable {
                    result.append(ShareAcquisition(topicPartition: tp, offsets: [], ranges: [], error: unreadable))
                }
                s.windowRecords = max(0, othersKept + slot.state.entries.keptCount)
                s.slots[pkey] = slot
                if moved { changed.append(pkey) }
            }
            write(changed, &s)
            return result
        }
    }

    /// How many more entries `partition`'s window may keep: its own bound
    /// (`ShareSettings.maxWindow`), and the broker-wide one
    /// (`GroupOptions.shareWindowsTotalMaxRecords`, with `othersKept` kept by the other
    /// windows) once it keeps its record locks' worth (with per-key ordering, eleven times that).
    func windowRoom(_ partition: SharePartition, _ settings: ShareSettings, othersKept: Int) -> Int {
        let kept = partition.entries.keptCount
        // The floor: what the window may hold in flight, and with per-key ordering the records
        // waiting behind their keys (ten times that), so one busy key does not stop the others.
        let floor = settings.keyOrdering ? settings.maxInFlight * 11 : settings.maxInFlight
        let shared = max(floor - kept, options.shareWindowsTotalMaxRecords - othersKept - kept)
        return min(settings.maxWindow - kept, shared)
    }

    /// Entries all share windows keep (as of the last maintenance pass, plus what acquisitions
    /// added since) and the broker-wide bound on them.
    public var windowRecords: (kept: Int, limit: Int) {
        (state.withLock { $0.windowRecords }, options.shareWindowsTotalMaxRecords)
    }

    /// Where acquiring from `partitions` would read the log next: a restored window from its
    /// start (its keys and delays), others from their end (records entering the window).
    /// Partitions the group has no window for yet are left out.
    func scanStarts(group: String, partitions: [TopicPartition]) -> [(TopicPartition, Int64)] {
        state.withLock { s in
            partitions.compactMap { tp in
                guard let slot = s.slots[PartitionKey(group: group, topicPartition: tp)] else { return nil }
                return (tp, slot.state.needsMetadata ? slot.state.startOffset : slot.state.endOffset)
            }
        }
    }

    /// Gives back acquired offsets that the read did not deliver.
    public func giveBack(group: String, member: String, _ topicPartition: TopicPartition, offsets: [Int64], acquired: [AcquiredRange]) {
        guard !offsets.isEmpty else { return }
        state.withLock { s in
            let pkey = PartitionKey(group: group, topicPartition: topicPartition)
            guard s.slots[pkey] != nil else { return }
            s.slots[pkey]!.state.unacquire(offsets, member: member, acquired: acquired)
            s.slots[pkey]!.unwritten = true
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
            write(s.slots.keys.filter { s.slots[$0]!.unwritten }, &s)
        }
        try await store.close()
    }
}

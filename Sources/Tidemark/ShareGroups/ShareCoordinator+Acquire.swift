import Foundation
import TidemarkStorage

/// Acquisition: what a ShareFetch hands out, from the windows the coordinator keeps (reading
/// keys and delays of records entering them), and what a fetch that could not deliver gives back.
extension ShareCoordinator {
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
        var full: [TopicPartition] = []
        return acquire(
            group: group, member: member, partitions: SessionPartitions(partitions), maxRecords: maxRecords, view: view,
            wouldBlock: &wouldBlock, live: &live, full: &full)
    }

    /// Acquires as above, over a session's partitions in this fetch's order (`ShareSessionUpdate.partitions`).
    /// `live` gets those of them it looked at whose window was not caught up (`SharePartition.isCaughtUp`):
    /// the others can get records only by an append (a long poll watches for those). `full`
    /// gets those whose window (without per-key ordering) has every record lock in flight,
    /// with records waiting past it: no record appended there can be taken until a lock is
    /// freed (the caller closes them to appends' wakes: `Broker.closeShareWindows`).
    public func acquire(
        group: String, member: String, partitions: SessionPartitions, maxRecords: Int, view: ShareLogView, wouldBlock: inout Bool,
        live: inout [TopicPartition], full: inout [TopicPartition]
    ) -> [ShareAcquisition] {
        let now = clock()
        let settings = self.settings(group)
        var declined = false
        var notCaughtUp: [TopicPartition] = []
        var fullWindows: [TopicPartition] = []
        defer {
            if declined { wouldBlock = true }
            live = notCaughtUp
            full = fullWindows
        }
        // Read before any lookup: a topic changed during the walk makes the marks it leaves stale.
        let topicsGeneration = view.topicsGeneration?()
        return state.withLock { s -> [ShareAcquisition] in
            // Only for an open session: a long poll whose connection closed (its session
            // closed with it, its jobs given back) must not take them again.
            let sessionKey = SessionKey(group: group, member: member)
            // Taken out first, so that they change in place (not copied with the session).
            var stored = s.sessions[sessionKey]?.quiet
            s.sessions[sessionKey]?.quiet = nil
            guard !s.isClosed, let session = s.sessions[sessionKey] else { return [] }
            // A member that left the group takes nothing more (its session stays open for the
            // acknowledgements it still sends).
            if session.requireMember && s.groups[group]?.members[member] == nil {
                s.sessions[sessionKey]?.quiet = stored
                return []
            }
            var remaining = max(1, maxRecords)
            var result: [ShareAcquisition] = []
            var changed: [PartitionKey] = []
            var lastTopic: ShareLogView.TopicLookup? = nil
            var quiet = Self.quietMarks(&stored, for: partitions, slotsEpoch: s.slotsEpoch, topicsGeneration: topicsGeneration)
            defer {
                // Only this walk moved the epoch since (under the lock), by making slots of the
                // partitions it looked at, and marked them as it found them: the marks hold.
                // (Were a slot removed or reset during a walk, this would hide it.)
                quiet?.slotsEpoch = s.slotsEpoch
                s.sessions[sessionKey]?.quiet = quiet ?? stored
            }
            for position in partitions.indices {
                guard remaining > 0 else { break }
                let index = partitions.baseIndex(position)
                // Caught up when last looked at, and nothing since: one read of its log's end.
                if let quiet, quiet.isQuiet(index) { continue }
                let tp = partitions.base[index]
                // Only the session's partitions: a caller's list can be older than the session (a
                // connection's watch of a partition of a topic deleted since, and made again under
                // its name: acquired, its records went out under an id the worker did not know).
                guard session.known.contains(tp) else { continue }
                var needsBlocking = false
                let found = slot(group, tp, view: view, &s, lastTopic: &lastTopic, needsBlocking: &needsBlocking)
                guard let (pkey, bounds, caughtUp) = found, !caughtUp else {
                    if needsBlocking { declined = true }
                    if quiet != nil {
                        quiet!.mark(index, found.flatMap { found in lastTopic?.logs?(tp.partition).map { ($0, found.bounds.end) } })
                    }
                    continue
                }
                if quiet != nil { quiet!.mark(index, nil) }
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
                // backlog among the group's members that read its topic (all of it when alone:
                // the members reading other topics do not share it).
                let members = max(1, s.groups[group]?.readers[tp.topic] ?? 1)
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
                        // The search saw the whole window (fewer due than allowed): its counts
                        // hold. Every lock in flight, records waiting past it: full.
                        if !settings.keyOrdering && settings.maxInFlight - found.inFlight <= 0 {
                            slot.locksFull = true
                            fullWindows.append(tp)
                        }
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
                    let ranges = slot.state.acquire(offsets, member: member, nowMs: now, settings: settings, cutCounts: session.inProcess)
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
                        if !session.heldIn.contains(tp) { s.sessions[sessionKey]?.heldIn.insert(tp) }
                        // A worker in the process: written now, its deliveries counted, before
                        // its job runs (and, perhaps, ends the process).
                        if session.inProcess { moved = true }
                    }
                    slot.unwritten = true
                } else if let unreadable {
                    result.append(ShareAcquisition(topicPartition: tp, offsets: [], ranges: [], error: unreadable))
                }
                s.windowRecords = max(0, othersKept + slot.state.entries.keptCount)
                // Caught up now (its window followed the log past records all done).
                if quiet != nil, slot.state.isCaughtUp(logStart: bounds.start, logEnd: bounds.end), let log = lastTopic?.logs?(tp.partition) {
                    quiet!.mark(index, (log, bounds.end))
                }
                s.slots[pkey] = slot
                if moved { changed.append(pkey) }
            }
            write(changed, &s)
            return result
        }
    }

    /// The marks an acquire over `partitions` uses (`QuietMarks`), taken from `stored` (the
    /// session's): those when made over the same list (emptied when a slot or topic changed
    /// since), new ones for a walk over all the session's partitions (`walksAll`: the Kafka
    /// front's first acquire of a ShareFetch, an embedded worker's poll), none for a part of
    /// them (a long poll's look at the partitions an append woke, a blocking acquire of those
    /// a walk left), `stored` kept then.
    static func quietMarks(
        _ stored: inout QuietMarks?, for partitions: SessionPartitions, slotsEpoch: UInt64, topicsGeneration: UInt64?
    ) -> QuietMarks? {
        guard let topicsGeneration else { return nil }
        let basis = partitions.base
        if var marks = stored, marks.basis == basis {
            stored = nil
            guard marks.slotsEpoch == slotsEpoch && marks.topicsGeneration == topicsGeneration else {
                return QuietMarks(basis: basis, slotsEpoch: slotsEpoch, topicsGeneration: topicsGeneration)
            }
            marks.basis = basis  // (equal, perhaps not the same storage: the next compare is then one)
            return marks
        }
        guard partitions.walksAll else { return nil }
        stored = nil
        return QuietMarks(basis: basis, slotsEpoch: slotsEpoch, topicsGeneration: topicsGeneration)
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
}

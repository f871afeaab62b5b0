/// One share group's view of one partition: which records are done, which are held by whom
/// and until when, how often each was delivered. A pure state machine: time comes in as
/// `nowMs`, nothing here does I/O.
///
/// Offsets below `startOffset` (SPSO) are finished; `endOffset` (SPEO) is the first offset
/// never acquired; every offset in between has an entry (`entries[offset - startOffset]`).
/// The window holds at most `maxInFlight` records that count as in flight (held, or available
/// now and first of their key), ten times that behind their keys, and keeps `maxWindow`
/// entries in all (delayed records count only there). The start moves over finished records
/// (acknowledged or archived) as soon as they form a prefix. Finished records behind an
/// unfinished one are cut from the window's memory (`ShareWindow.cutFinished`) once they
/// are half of what it keeps: a job delayed until tomorrow, or a long job renewing its lock,
/// holds the start, and any number of jobs after it go through meanwhile.
///
/// Entries are plain values (no reference counting): the window is walked several times per
/// fetch and acknowledgement, so a holder is a small number into `owners`, not its member id.
///
/// Concurrency: owned by `ShareCoordinator`'s mutex.
struct SharePartition: Sendable, Equatable {
    private(set) var startOffset: Int64
    private(set) var entries = ShareWindow()
    var endOffset: Int64 { startOffset + Int64(entries.count) }

    /// Dead letters not yet in the dead-letter topic, in sequence order.
    private(set) var deadLetters: [DeadLetter] = [] { didSet { deadLettersChanged = true } }
    /// The sequence the next dead letter gets.
    private(set) var deadLetterSequence: Int32 = 0 { didSet { deadLettersChanged = true } }
    /// The producer id the dead letters of this partition are written with (-1: none yet).
    var deadLetterProducerId: Int64 = -1 { didSet { deadLettersChanged = true } }
    /// Dead letters written so far.
    private(set) var deadLettered: Int64 = 0 { didSet { deadLettersChanged = true } }
    /// The dead-letter fields changed since the last write (a delta then carries them).
    private(set) var deadLettersChanged = true

    private(set) var activity = ShareActivity()

    /// Member ids of holders, numbered from 1 by `Entry.owner`; a slot nobody holds records
    /// under any more is reused (`ownerNumber(adding:)`). As many as the members that held
    /// records here at once, plus those that left since the last reuse.
    private(set) var owners: [String] = []
    /// How many records each holder in `owners` holds now (same indices), and how many
    /// records in the window are finished (acknowledged or archived): kept by every change, so
    /// a fetch's fair share needs no walk of the window.
    private(set) var heldCounts: [Int] = []
    private(set) var finishedCount = 0

    /// The records at `positions` leave the window: its counts forget them.
    private mutating func countRemoved(positions: Range<Int>) {
        let from = entries.keptIndex(atOrAfter: positions.lowerBound)
        let to = entries.keptIndex(atOrAfter: positions.upperBound)
        finishedCount -= positions.count - (to - from)
        for k in from..<to {
            let entry = entries.entry(kept: k)
            if entry.isFinished {
                finishedCount -= 1
            } else if entry.state == .acquired && entry.owner > 0 {
                heldCounts[Int(entry.owner) - 1] -= 1
            }
        }
    }

    /// The counts taken from the records themselves (at restore: once).
    private mutating func recount() {
        finishedCount = entries.cutCount
        heldCounts = heldCounts.map { _ in 0 }
        for k in entries.kept {
            let entry = entries.entry(kept: k)
            if entry.isFinished { finishedCount += 1 }
            if entry.state == .acquired && entry.owner > 0 { heldCounts[Int(entry.owner) - 1] += 1 }
        }
    }

    /// An acquired record leaves its holder.
    private mutating func unheld(_ entry: Entry) {
        if entry.state == .acquired && entry.owner > 0 { heldCounts[Int(entry.owner) - 1] -= 1 }
    }

    /// Restored entries lack their records' keys and delays: re-read before use.
    var needsMetadata = false

    /// The offsets whose persisted state (state, delivery count) may have changed since the
    /// last write: what a delta record (`ShareStateStore.encodeDelta`) carries besides the
    /// window's bounds. Empty when `dirtyFrom > dirtyTo`.
    private(set) var dirtyFrom = Int64.max
    private(set) var dirtyTo = Int64.min

    private mutating func touch(_ offset: Int64) {
        search.touched(offset)
        if offset < dirtyFrom { dirtyFrom = offset }
        if offset > dirtyTo { dirtyTo = offset }
    }

    /// No lock runs out before this (a lower bound: the earliest deadline set since the last
    /// walk of `expireLocks`, which then skips the window until it is reached). A window of
    /// delayed jobs can keep 100,000 entries; every fetch expires locks first.
    private var locksExpireNoSoonerThan = Int64.max

    /// What the last searches for candidates learned of the window (`SharePartition+Search.swift`).
    var search = CandidateSearch()

    /// When the earliest delay or backoff that the last search for candidates passed over ends
    /// (timer-clock ms; without per-key ordering): a poll that found nothing waits until then at
    /// most. nil when that search passed over none, or it has been forgotten since.
    var nextDueMs: Int64? {
        search.floorUntilMs > .min && search.floorUntilMs < .max ? search.floorUntilMs : nil
    }

    /// With per-key ordering, when the earliest delay or backoff that the last search for
    /// candidates walked past ends, of a record its key did not hold back (a record held back
    /// by its key waits for that key's acknowledgement, which wakes polls itself). A search
    /// that stopped early (it found enough) walked past fewer: its poll has records then, and
    /// the next search looks again. Once the window changes it may be early: an early wake
    /// finds nothing and waits again.
    var keyedNextDueMs: Int64? { search.keyedNextDueMs }

    /// No lock runs out before this (nil when none is held): an idle poll waits until then at most.
    var nextLockExpiryMs: Int64? {
        locksExpireNoSoonerThan < .max && holdsAny ? locksExpireNoSoonerThan : nil
    }

    /// The window moved somewhere a delta cannot say (its start went back: a reset, or the
    /// log's end below the start): the next write must be a snapshot.
    private(set) var needsSnapshot = false

    /// Written: nothing is dirty any more.
    mutating func markWritten() {
        dirtyFrom = .max
        dirtyTo = .min
        needsSnapshot = false
        deadLettersChanged = false
    }

    init(startOffset: Int64) { self.startOffset = startOffset }

    /// Appends records read from the log at the window's end (offsets from `endOffset` on,
    /// in order): available, never delivered, with their keys and delays.
    mutating func extend(with metas: [RecordMeta]) {
        for meta in metas where meta.offset == endOffset {
            entries.append(Entry(state: .available, deliveryCount: 0, availableAtMs: max(0, meta.deliverAtMs), keyHash: meta.keyHash))
        }
    }

    /// Fills in keys and delays of restored entries (`needsMetadata`).
    mutating func annotate(with metas: [RecordMeta]) {
        search.forget()
        for meta in metas {
            guard let i = index(meta.offset) else { continue }
            entries[i].keyHash = meta.keyHash
            if entries[i].state == .available && entries[i].deliveryCount == 0 {
                entries[i].availableAtMs = max(entries[i].availableAtMs, meta.deliverAtMs)
            }
        }
        needsMetadata = false
    }

    /// Restores a persisted state (locks do not survive: acquired records come back available,
    /// the delivery the broker's end cut not counted).
    init(startOffset: Int64, entries: [Entry], deadLetters: [DeadLetter] = [], deadLetterSequence: Int32 = 0,
         deadLetterProducerId: Int64 = -1, deadLettered: Int64 = 0) {
        self.init(
            startOffset: startOffset, window: ShareWindow(entries), deadLetters: deadLetters, deadLetterSequence: deadLetterSequence,
            deadLetterProducerId: deadLetterProducerId, deadLettered: deadLettered)
    }

    /// Restores as above, from a window (whose acknowledged runs may be cut).
    init(startOffset: Int64, window: ShareWindow, deadLetters: [DeadLetter] = [], deadLetterSequence: Int32 = 0,
         deadLetterProducerId: Int64 = -1, deadLettered: Int64 = 0) {
        self.deadLetters = deadLetters
        self.deadLetterSequence = deadLetterSequence
        self.deadLetterProducerId = deadLetterProducerId
        self.deadLettered = deadLettered
        self.needsMetadata = true
        self.startOffset = startOffset
        self.entries = window
        // A record held in a window restored in memory comes back as the share-state log holds
        // held records (`ShareStateStore.writeRuns`; the log never holds an acquired run): its
        // delivery was cut by the broker, not failed by the worker, so it is not counted, as
        // after a clean stop (`releaseAll(uncounted:)`) and as in Kafka; unless its worker was
        // in the process (`Entry.cutCounts`).
        for k in entries.kept where entries.entry(kept: k).state == .acquired {
            var entry = entries.entry(kept: k)
            entry.state = .available
            if !entry.cutCounts { entry.deliveryCount = max(0, entry.deliveryCount - 1) }
            entry.cutCounts = false
            entry.owner = 0
            entry.lockExpiryMs = 0
            entries.setEntry(kept: k, entry)
        }
        recount()
        advanceStart()
    }

    /// After a restart: records delivered before and available (released, or held when the
    /// broker stopped) wait out their redelivery backoff again, from now. The persisted state
    /// keeps no deadlines, and they all came back at once: never early now, at most one backoff late.
    mutating func restartBackoffs(settings: ShareSettings, nowMs: Int64) {
        guard settings.redeliveryBackoffMs > 0 else { return }
        search.forget()
        for k in entries.kept where entries.entry(kept: k).state == .available && entries.entry(kept: k).deliveryCount > 0 {
            var entry = entries.entry(kept: k)
            let wait = settings.backoff(deliveries: entry.deliveryCount, offset: startOffset + Int64(entries.position(kept: k)))
            entry.availableAtMs = max(entry.availableAtMs, nowMs.saturatingAdd(wait))
            entries.setEntry(kept: k, entry)
        }
    }

    /// Applies a delta record at restore: the window now spans `start..<end` (records that
    /// enter it are available and never delivered), `runs` give the offsets that changed, and
    /// the dead-letter fields are replaced (kept when nil: a v3 delta). A restored start may be past the delta's: restoring
    /// moved it over finished records the live window still began with (a window moved by the
    /// log start is not advanced until its next acknowledgement), and finished records stay
    /// finished, so that part is skipped. False when the delta does not fit this state (the
    /// caller keeps the state as it was before it).
    mutating func applyDelta(
        start: Int64, end: Int64, runs: [PersistedRun],
        deadLetters letters: (letters: [DeadLetter], sequence: Int32, producerId: Int64, written: Int64)?
    ) -> Bool {
        // A window may be long (finished records behind an unfinished one are cut), but what a
        // delta makes kept in memory is bounded (a damaged record must not take all memory):
        // the records it adds outside finished runs, and its runs of unfinished records, at
        // most 1,000,000 each, and the window's kept entries at most 2,000,000 after it.
        guard start >= 0, end >= start,
            runs.allSatisfy({ $0.first >= start && $0.first <= $0.last && $0.last < end && $0.state != .acquired })
        else { return false }
        let addedFrom = min(max(endOffset, start), end)
        let addedFinished = runs.reduce(Int64(0)) { sum, run in
            run.state.isFinished && run.last >= addedFrom ? sum + run.last - max(run.first, addedFrom) + 1 : sum
        }
        let added = end - addedFrom - addedFinished
        let unfinished = runs.reduce(Int64(0)) { $1.state.isFinished ? $0 : $0 + $1.last - $1.first + 1 }
        guard added <= 1_000_000, unfinished <= 1_000_000, Int64(entries.keptCount) + added + unfinished <= 2_000_000 else { return false }
        // Nothing below can fail: the window changes in place (a copy would double it per delta).
        if start > startOffset {
            entries.removeFirst(Int(min(Int64(entries.count), start - startOffset)))
            startOffset = start
        }
        if startOffset >= end {
            entries.removeAll()
        } else if endOffset > end {
            entries.removeLast(Int(endOffset - end))
        }
        // Records entering the window: finished runs cut, the others available and never
        // delivered (the runs below then set them).
        var r = 0
        while endOffset < end {
            while r < runs.count && runs[r].last < endOffset { r += 1 }
            let count: Int64
            if r < runs.count, runs[r].first <= endOffset {
                count = runs[r].last - endOffset + 1
                if runs[r].state.isFinished {
                    entries.appendCut(Int(count))
                    continue
                }
            } else {
                count = (r < runs.count ? runs[r].first : end) - endOffset
            }
            for _ in 0..<count { entries.append(Entry(state: .available, deliveryCount: 0)) }
        }
        for run in runs {
            let from = max(run.first, startOffset)
            let through = min(run.last, endOffset - 1)
            guard from <= through else { continue }
            entries.fill(Int(from - startOffset)..<Int(through - startOffset + 1), with: Entry(state: run.state, deliveryCount: run.count))
        }
        search.forget()
        recount()
        shedFinished()
        if let letters {
            deadLetters = letters.letters
            deadLetterSequence = letters.sequence
            deadLetterProducerId = letters.producerId
            deadLettered = letters.written
        }
        return true
    }

    /// Nothing to hand out, expire or move: the window is empty (nothing held, waiting or
    /// finished in it), starts at the log's end (nothing new) and the log's start has not
    /// passed it. `follow` would change nothing, and no record could be acquired.
    func isCaughtUp(logStart: Int64, logEnd: Int64) -> Bool {
        entries.isEmpty && startOffset == logEnd && logStart <= startOffset
    }

    /// Records below the log start are gone (retention, DeleteRecords): they leave the window.
    /// So are records at or past the log end, when the log was cut back (crash recovery after
    /// a power loss kept less than this state, or a truncation): the window ends at the log
    /// end, so the jobs appended next at those offsets are new, not taken for finished ones;
    /// dead letters of the lost records are dropped (a copy would take the new record at that
    /// offset; the gap in their sequence numbers makes the writer renumber them).
    /// Returns true when the window moved.
    @discardableResult
    mutating func follow(logStart: Int64, logEnd: Int64) -> Bool {
        var moved = false
        if endOffset > logEnd {
            deadLetters.removeAll { $0.offset >= logEnd }
            if startOffset >= logEnd {
                countRemoved(positions: 0..<entries.count)
                entries.removeAll()
                if logEnd < startOffset { needsSnapshot = true }
                startOffset = logEnd
            } else {
                countRemoved(positions: (entries.count - Int(endOffset - logEnd))..<entries.count)
                entries.removeLast(Int(endOffset - logEnd))
            }
            search.lowerFloor(to: endOffset)
            search.touched(endOffset)
            moved = true
        }
        guard startOffset < logStart else { return moved }
        let drop = Int(min(Int64(entries.count), logStart - startOffset))
        search.touched(startOffset)
        countRemoved(positions: 0..<drop)
        entries.removeFirst(drop)
        startOffset = logStart
        return true
    }

    /// Moves the delays of jobs never delivered (`tidemark.deliver.at`, a wall-clock time put on
    /// the timer clock when its record was read) by `deltaMs`: the wall clock stepped since,
    /// and they keep their wall-clock times (stepped back an hour, a job read before the step
    /// went out an hour before its time). Backoffs, after a delivery, are durations: they stay.
    /// Returns how many moved.
    mutating func shiftDelays(by deltaMs: Int64) -> Int {
        var moved = 0
        for k in entries.kept {
            var entry = entries.entry(kept: k)
            guard entry.state == .available, entry.deliveryCount == 0, entry.availableAtMs > 0 else { continue }
            entry.availableAtMs = max(1, entry.availableAtMs.saturatingAdd(deltaMs))
            entries.setEntry(kept: k, entry)
            moved += 1
        }
        if moved > 0 {
            // What the last search for candidates remembered of the delays is stale.
            search.forget()
        }
        return moved
    }

    /// Locks that ran out: the records become available again, or archived at the limit.
    /// Returns how many were released.
    @discardableResult
    mutating func expireLocks(nowMs: Int64, settings: ShareSettings) -> Int {
        guard nowMs >= locksExpireNoSoonerThan else { return 0 }
        var released = 0
        var earliest = Int64.max
        for k in entries.kept where entries.entry(kept: k).state == .acquired {
            let expiry = entries.entry(kept: k).lockExpiryMs
            if expiry <= nowMs {
                release(entries.position(kept: k), settings: settings, nowMs: nowMs)
                released += 1
            } else {
                earliest = min(earliest, expiry)
            }
        }
        locksExpireNoSoonerThan = earliest
        activity.lockExpirations += Int64(released)
        if released > 0 { advanceStart() }
        return released
    }

    /// `member`'s number in `owners`, nil when it never held a record here (or its slot was reused).
    func ownerNumber(_ member: String) -> UInt32? {
        owners.firstIndex(of: member).map { UInt32($0 + 1) }
    }

    /// `member`'s number, given a slot when it has none: a slot whose member holds nothing
    /// now is reused (looked for only when the table has grown, so rarely walked).
    private mutating func ownerNumber(adding member: String) -> UInt32 {
        if let number = ownerNumber(member) { return number }
        if owners.count >= 8, let free = heldCounts.firstIndex(of: 0) {
            owners[free] = member
            return UInt32(free + 1)
        }
        owners.append(member)
        heldCounts.append(0)
        return UInt32(owners.count)
    }

    /// Acquires `offsets` (from `candidates`, ascending) for `member`: locked until
    /// now + lock duration, delivery count incremented.
    ///
    /// A record whose deliveries already reach the limit (lowered since its last delivery,
    /// `share.delivery.count.limit` changed while it waited for a retry) is archived and
    /// dead-lettered instead, as its release would have done under that limit: it went out
    /// again, up to the old limit ("never past the limit" was not true).
    /// `cutCounts`: the member is a worker in this process (`Entry.cutCounts`).
    mutating func acquire(_ offsets: [Int64], member: String, nowMs: Int64, settings: ShareSettings, cutCounts: Bool = false) -> [AcquiredRange] {
        let owner = ownerNumber(adding: member)
        var archived = false
        for offset in offsets {
            while offset >= endOffset { entries.append(Entry(state: .available, deliveryCount: 0)) }
            guard offset >= startOffset else { continue }
            let i = Int(offset - startOffset)
            var entry = entries[i]
            guard entry.state == .available else { continue }
            if entry.deliveryCount >= settings.deliveryCountLimit {
                finishedCount += 1
                entries[i] = Entry(state: .archived, deliveryCount: entry.deliveryCount)
                deadLetter(offset, .maxDeliveryAttemptsReached, entry.deliveryCount, settings: settings)
                touch(offset)
                archived = true
                continue
            }
            entry.state = .acquired
            entry.cutCounts = cutCounts
            entry.deliveryCount &+= 1
            activity.deliveries += 1
            if entry.deliveryCount > 1 { activity.redeliveries += 1 }
            entry.lockExpiryMs = nowMs.saturatingAdd(settings.lockDurationMs)
            locksExpireNoSoonerThan = min(locksExpireNoSoonerThan, entry.lockExpiryMs)
            entry.owner = owner
            entries[i] = entry
            heldCounts[Int(owner) - 1] += 1
            touch(offset)
        }
        if archived { advanceStart() }
        return ranges(of: offsets, member: member)
    }

    /// At a clean stop: the records workers in the process hold are written as any held record
    /// is, with the delivery the stop cuts not counted (it is not their job's doing). True when
    /// there were any.
    mutating func uncountCutDeliveries() -> Bool {
        var any = false
        for k in entries.kept where entries.entry(kept: k).state == .acquired && entries.entry(kept: k).cutCounts {
            var entry = entries.entry(kept: k)
            entry.cutCounts = false
            entries.setEntry(kept: k, entry)
            touch(startOffset + Int64(entries.position(kept: k)))  // (what it persists changed)
            any = true
        }
        return any
    }

    /// Gives back acquisitions that were not delivered (the read did not reach them): as if
    /// never acquired, delivery count included. With `acquired` (the ranges the acquisition
    /// handed out), only records still at the delivery count it gave them: after a session
    /// closed and the same member id acquired them again (a fetch whose read was slow, then a
    /// reconnect), the late fetch gave back the new acquisition, and the job went out twice.
    mutating func unacquire(_ offsets: [Int64], member: String, acquired: [AcquiredRange]? = nil) {
        guard let owner = ownerNumber(member) else { return }
        for offset in offsets {
            guard let i = index(offset), entries[i].state == .acquired, entries[i].owner == owner else { continue }
            if let acquired, acquired.deliveryCount(of: offset) != entries[i].deliveryCount { continue }
            activity.deliveries -= 1
            if entries[i].deliveryCount > 1 { activity.redeliveries -= 1 }
            unheld(entries[i])
            entries[i].state = .available
            entries[i].cutCounts = false
            entries[i].deliveryCount = max(0, entries[i].deliveryCount - 1)
            entries[i].owner = 0
            entries[i].lockExpiryMs = 0
            touch(offset)
            search.lowerFloor(to: offset)
        }
        // Never-delivered records at the end leave the window again.
        while let last = entries.last, last.state == .available, last.deliveryCount == 0 { entries.removeLast() }
        search.lowerFloor(to: endOffset)
    }

    /// Applies a worker's acknowledgements, all or none: every offset must be acquired by
    /// `member` under a live lock, else `.invalidRecordState` and nothing changes. The ranges
    /// must come in offset order without overlapping, else `.invalidRequest`: an offset
    /// acknowledged twice in one request (ACCEPT then RELEASE) would be finished and handed
    /// out again, and the same range repeated would make one request walk the window once per
    /// repeat. (Kafka refuses a range that starts before the previous one's last offset; one
    /// that starts on it, acknowledging that record twice, is refused here too.)
    mutating func acknowledge(
        _ acks: [ShareAcknowledgement], member: String, nowMs: Int64, settings: ShareSettings, allowRenew: Bool
    ) -> TidemarkError.Code? {
        let owner = ownerNumber(member) ?? 0
        var previousLast = Int64.min
        for ack in acks {
            guard ack.first >= 0, ack.first <= ack.last, ack.last - ack.first < 1 << 20, ack.first > previousLast,
                ack.types.count == 1 || Int64(ack.types.count) == ack.last - ack.first + 1
            else { return .invalidRequest }
            previousLast = ack.last
        }
        for ack in acks {
            if !allowRenew && ack.types.contains(.renew) { return .invalidRequest }
            for offset in ack.first...ack.last {
                guard owner > 0, let entry = entry(at: offset), entry.state == .acquired, entry.owner == owner,
                    entry.lockExpiryMs > nowMs
                else { return .invalidRecordState }
            }
        }
        for ack in acks {
            for offset in ack.first...ack.last {
                let type = ack.types.count == 1 ? ack.types[0] : ack.types[Int(offset - ack.first)]
                let i = Int(offset - startOffset)
                touch(offset)
                switch type {
                case .accept:
                    activity.accepted += 1
                    unheld(entries[i])
                    finishedCount += 1
                    entries[i] = Entry(state: .acknowledged, deliveryCount: entries[i].deliveryCount)
                case .reject:
                    activity.rejected += 1
                    unheld(entries[i])
                    finishedCount += 1
                    entries[i] = Entry(state: .archived, deliveryCount: entries[i].deliveryCount)
                    deadLetter(offset, .rejected, entries[i].deliveryCount, settings: settings)
                case .gap:
                    unheld(entries[i])
                    finishedCount += 1
                    entries[i] = Entry(state: .archived, deliveryCount: entries[i].deliveryCount)
                case .release:
                    activity.released += 1
                    release(i, settings: settings, nowMs: nowMs)
                case .renew:
                    activity.renewed += 1
                    entries[i].lockExpiryMs = nowMs.saturatingAdd(settings.lockDurationMs)
                    // (The group's lock duration may have been shortened since the acquisition.)
                    locksExpireNoSoonerThan = Swift.min(locksExpireNoSoonerThan, entries[i].lockExpiryMs)
                }
            }
        }
        advanceStart()
        return nil
    }

    /// Everything `member` holds goes back (it left, its session closed, or it expired).
    /// `uncounted`: the broker is stopping, not the worker failing: each record goes back
    /// with the delivery count it had before it was handed out, and none is archived.
    /// Returns how many records were released.
    @discardableResult
    mutating func releaseAll(held member: String, settings: ShareSettings, uncounted: Bool = false) -> Int {
        guard let owner = ownerNumber(member) else { return 0 }
        var released = 0
        for k in entries.kept where entries.entry(kept: k).state == .acquired && entries.entry(kept: k).owner == owner {
            // Given back unprocessed (a close, a leave): available at once, no backoff.
            let i = entries.position(kept: k)
            if uncounted {
                touch(startOffset + Int64(i))
                search.lowerFloor(to: startOffset + Int64(i))
                unheld(entries[i])
                entries[i] = Entry(state: .available, deliveryCount: Swift.max(0, entries[i].deliveryCount - 1), keyHash: entries[i].keyHash)
            } else {
                release(i, settings: settings, nowMs: nil)
            }
            released += 1
        }
        if released > 0 { advanceStart() }
        return released
    }

    /// Moves the start offset (and the whole window, empty) somewhere else: AlterShareGroupOffsets.
    mutating func reset(to offset: Int64) {
        startOffset = offset
        countRemoved(positions: 0..<entries.count)
        entries.removeAll()
        needsSnapshot = true
        search.forget()
    }

    private func index(_ offset: Int64) -> Int? {
        offset >= startOffset && offset < endOffset ? Int(offset - startOffset) : nil
    }

    /// Back to available (after the backoff when `nowMs` is given), or archived at the limit.
    private mutating func release(_ i: Int, settings: ShareSettings, nowMs: Int64?) {
        touch(startOffset + Int64(i))
        search.lowerFloor(to: startOffset + Int64(i))
        unheld(entries[i])
        let count = entries[i].deliveryCount
        guard count < settings.deliveryCountLimit else {
            finishedCount += 1
            entries[i] = Entry(state: .archived, deliveryCount: count)
            deadLetter(startOffset + Int64(i), .maxDeliveryAttemptsReached, count, settings: settings)
            return
        }
        var entry = Entry(state: .available, deliveryCount: count, keyHash: entries[i].keyHash)
        if let nowMs { entry.availableAtMs = nowMs.saturatingAdd(settings.backoff(deliveries: count, offset: startOffset + Int64(i))) }
        entries[i] = entry
    }

    /// Dead letters a partition keeps waiting at most: past it (a dead-letter topic that cannot
    /// be written: an existing topic not marked as one), the oldest go, so that the list a
    /// snapshot, and a delta written after the letters changed, carry stays bounded (150 KB).
    static let maxPendingDeadLetters = 10_000

    private mutating func deadLetter(_ offset: Int64, _ disposition: DeadLetter.Disposition, _ count: Int16, settings: ShareSettings) {
        guard settings.deadLetters else { return }
        if deadLetters.count >= Self.maxPendingDeadLetters { deadLetters.removeFirst(deadLetters.count - Self.maxPendingDeadLetters + 1) }
        deadLetters.append(DeadLetter(offset: offset, disposition: disposition, deliveryCount: count, sequence: deadLetterSequence))
        deadLetterSequence = deadLetterSequence == Int32.max ? 0 : deadLetterSequence + 1
    }

    /// Forgets the waiting dead letters (the group no longer has a dead-letter topic).
    mutating func dropDeadLetters() { deadLetters.removeAll() }

    /// The dead letters with these sequences are in the dead-letter topic.
    mutating func deadLettersWritten(_ sequences: Set<Int32>) {
        let before = deadLetters.count
        deadLetters.removeAll { sequences.contains($0.sequence) }
        deadLettered = deadLettered.saturatingAdd(Int64(before - deadLetters.count))
    }

    /// A new producer id for the dead letters (the old one was forgotten by the broker): the
    /// pending ones are numbered again from 0.
    mutating func restartDeadLetters(producerId: Int64) {
        deadLetterProducerId = producerId
        for i in deadLetters.indices { deadLetters[i].sequence = Int32(i) }
        deadLetterSequence = Int32(deadLetters.count)
    }

    /// Moves the start over the finished prefix (cut positions are finished: the prefix ends
    /// at the first kept unfinished entry), then cuts acknowledged records if enough are kept.
    private mutating func advanceStart() {
        var k = entries.kept.lowerBound
        while k < entries.kept.upperBound, entries.entry(kept: k).isFinished { k += 1 }
        let done = k < entries.kept.upperBound ? entries.position(kept: k) : entries.count
        if done > 0 {
            finishedCount -= done
            entries.removeFirst(done)
            startOffset += Int64(done)
        }
        shedFinished()
    }

    /// Finished records kept in the window (not cut).
    var keptFinished: Int { finishedCount - entries.cutCount }

    /// Cuts the finished records the window keeps once they are half of what it keeps (and
    /// at least `ShareWindow.compactionThreshold`): a pass over the kept entries per at least
    /// as many records finished, so amortized O(1) each. With `atLeast`, once there are that
    /// many (a window out of room).
    mutating func shedFinished(atLeast: Int? = nil) {
        let finished = keptFinished
        let enough = atLeast ?? Swift.max(ShareWindow.compactionThreshold, entries.keptCount / 2)
        guard finished > 0, finished >= enough else { return }
        entries.cutFinished()
    }
}

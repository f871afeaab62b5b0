/// The search for records a fetch may take (`candidates`), and what searches remember of the
/// window so that the next one need not walk all of it (`CandidateSearch`).
///
/// Without per-key ordering a record can go out when it is available and due: the walk starts
/// at a floor below which nothing can go out before a time. With per-key ordering, a record
/// can go out only when no unfinished record of its key comes before it, so a walk must know
/// the keys of everything before where it starts: two prefixes (`KeyedPrefix`) summarize the
/// window's records, the first up to the first one that is held or could go out (finished
/// records, delayed ones, records behind a delayed one of their key), the second from there to
/// the first that could go out (held ones too); they change only by time (their earliest
/// delay) or by an event at their offsets (`touched`). A window of 50,000 jobs scheduled for
/// later, in front of the jobs due now, or a key's backlog behind its held job, is walked once,
/// not on every fetch.
extension SharePartition {
    /// What a search found in the window: the offsets that can go out now (at most `max`),
    /// and, when fewer than `max` (the walk then saw the whole window), the records in flight
    /// (held, or available now and first of their key) and, with per-key ordering, those
    /// available now but behind an unfinished one of their key (`blocked`).
    struct WindowSearch {
        var offsets: [Int64] = []
        var inFlight = 0
        var blocked = 0
        /// With per-key ordering: keys of unfinished records past the prefixes (theirs are in
        /// `CandidateSearch.keyed` and `keyedHeld`), for `claimKey` as records enter the window.
        var keysPastPrefix = KeyHashSet()
    }

    /// The offsets a fetch may take, at most `max`: available records already delivered
    /// (ascending) first, then records never delivered, up to the log end and the in-flight cap.
    mutating func candidates(max: Int, logEnd: Int64, settings: ShareSettings, nowMs: Int64) -> [Int64] {
        guard max > 0 else { return [] }
        var out = searchWindow(max: max, settings: settings, nowMs: nowMs).offsets
        if out.count == max { return out }
        // Saturating: a start near Int64.max (a window not yet cut back to the log) trapped.
        let limit = min(logEnd, startOffset.saturatingAdd(Int64(settings.maxInFlight)))
        var offset = endOffset
        while offset < limit && out.count < max {
            out.append(offset)
            offset += 1
        }
        return out
    }

    /// The records of the window (not past its end) that can go out now, at most `max`, and
    /// its counts (`WindowSearch`).
    mutating func searchWindow(max: Int, settings: ShareSettings, nowMs: Int64) -> WindowSearch {
        guard max > 0 else { return WindowSearch() }
        if settings.keyOrdering { return searchKeyed(max: max, nowMs: nowMs) }
        var result = WindowSearch()
        // The walk starts at the floor while it holds, and leaves it at the first record it
        // hands out (or the end), valid until the first delay it skipped ends.
        let floored = nowMs < search.floorUntilMs
        // Kept entries only: a cut record is acknowledged.
        var k = entries.keptIndex(atOrAfter: floored ? Int(Swift.min(Int64(entries.count), Swift.max(0, search.floor - startOffset))) : 0)
        var until = floored ? search.floorUntilMs : Int64.max
        var firstOut: Int? = nil
        while k < entries.kept.upperBound {
            let entry = entries.entry(kept: k)
            let i = entries.position(kept: k)
            k += 1
            guard entry.state == .available, entry.availableAtMs <= nowMs else {
                if entry.state == .available && firstOut == nil { until = Swift.min(until, entry.availableAtMs) }
                continue
            }
            if firstOut == nil { firstOut = i }
            result.offsets.append(startOffset + Int64(i))
            if result.offsets.count == max { break }
        }
        search.floor = startOffset + Int64(firstOut ?? entries.count)
        search.floorUntilMs = until
        search.keyedNextDueMs = nil
        // Fewer than asked: those are all that can go out, and with the held ones they are in flight.
        result.inFlight = heldTotal + result.offsets.count
        return result
    }

    /// With per-key ordering: the prefixes are taken as they are while they hold, extended over
    /// the records after them that change only by time or an event, and the rest walked with
    /// the keys they hold. The first (`keyed`) ends at the first held record, the second
    /// (`keyedHeld`) goes on over held records and those behind them: an acknowledgement
    /// forgets only the second, so a long window of jobs waiting behind a busy key's held one
    /// is walked once, and a flow of jobs taken and acknowledged behind delayed ones walks
    /// only what is in flight.
    private mutating func searchKeyed(max: Int, nowMs: Int64) -> WindowSearch {
        var inert = KeyedPrefix(end: startOffset)
        var held: KeyedPrefix? = nil
        if let kept = search.keyed, nowMs < kept.validUntilMs, kept.end <= endOffset {
            inert = kept
            if let more = search.keyedHeld, nowMs < more.validUntilMs, more.end <= endOffset { held = more }
        }
        // Taken out while they grow, so their keys change in place.
        search.keyed = nil
        search.keyedHeld = nil
        var k: Int
        if held == nil {
            k = entries.keptIndex(atOrAfter: Int(Swift.max(0, inert.end - startOffset)))
            k = extend(&inert, from: k, nowMs: nowMs, over: nil)
            inert.end = k < entries.kept.upperBound ? startOffset + Int64(entries.position(kept: k)) : endOffset
            held = KeyedPrefix(end: inert.end)
        } else {
            k = entries.keptIndex(atOrAfter: Int(Swift.max(0, held!.end - startOffset)))
        }
        var more = held!
        held = nil
        k = extend(&more, from: k, nowMs: nowMs, over: inert.keys)
        more.end = k < entries.kept.upperBound ? startOffset + Int64(entries.position(kept: k)) : endOffset
        var result = WindowSearch()
        result.inFlight = more.acquired
        result.blocked = inert.dueBlocked + more.dueBlocked
        var nextDue = Swift.min(inert.nextDueMs, more.nextDueMs)
        while k < entries.kept.upperBound {
            let entry = entries.entry(kept: k)
            let i = entries.position(kept: k)
            k += 1
            guard entry.state == .available || entry.state == .acquired else { continue }
            let first = entry.keyHash.map { !inert.keys.contains($0) && !more.keys.contains($0) && result.keysPastPrefix.insert($0) } ?? true
            if entry.state == .acquired {
                result.inFlight += 1
            } else if entry.availableAtMs > nowMs {
                // A record held back by its key waits for that key's acknowledgement, which
                // wakes polls itself.
                if first { nextDue = Swift.min(nextDue, entry.availableAtMs) }
            } else if !first {
                result.blocked += 1
            } else {
                result.inFlight += 1
                result.offsets.append(startOffset + Int64(i))
                if result.offsets.count == max { break }
            }
        }
        search.keyed = inert
        search.keyedHeld = more
        search.keyedNextDueMs = nextDue < .max ? nextDue : nil
        return result
    }

    /// Extends `prefix` over the kept entries from `k` that cannot go out now: finished,
    /// delayed, behind an unfinished one of their key, and (with `over`, the keys of the
    /// prefix before it) held. Returns where it stopped: a record that could go out now, or
    /// (without `over`) a held one.
    private func extend(_ prefix: inout KeyedPrefix, from k: Int, nowMs: Int64, over before: KeyHashSet?) -> Int {
        var k = k
        while k < entries.kept.upperBound {
            let entry = entries.entry(kept: k)
            if entry.state == .acquired {
                guard let before else { break }
                prefix.acquired += 1
                if let key = entry.keyHash, !before.contains(key) { prefix.keys.insert(key) }
            } else if entry.state == .available {
                let due = entry.availableAtMs <= nowMs
                let first = entry.keyHash.map { !(before?.contains($0) ?? false) && !prefix.keys.contains($0) } ?? true
                if due && first { break }
                if first, let key = entry.keyHash { prefix.keys.insert(key) }
                if due {
                    prefix.dueBlocked += 1
                } else {
                    prefix.validUntilMs = Swift.min(prefix.validUntilMs, entry.availableAtMs)
                    if first { prefix.nextDueMs = Swift.min(prefix.nextDueMs, entry.availableAtMs) }
                }
            }
            k += 1
        }
        return k
    }

    /// With per-key ordering, a record entering the window (after `searchWindow`): true when no
    /// unfinished record of `key` comes before it (its key is then taken).
    func claimKey(_ key: UInt32, in found: inout WindowSearch) -> Bool {
        !(search.keyed?.keys.contains(key) ?? false) && !(search.keyedHeld?.keys.contains(key) ?? false)
            && found.keysPastPrefix.insert(key)
    }
}

/// What the last searches for candidates learned of a share window (`SharePartition.searchWindow`).
/// A cache, not state: two partitions that differ only here are equal.
///
/// Concurrency: part of its `SharePartition` (owned by `ShareCoordinator`'s mutex).
struct CandidateSearch: Sendable, Equatable {
    /// Without per-key ordering: no record below `floor` can go out before `floorUntilMs`
    /// (held, finished, or delayed no less). Releases lower it; changed delays or a shortened
    /// window forget it.
    var floor = Int64.min
    var floorUntilMs = Int64.min
    /// With per-key ordering: the records below the first one held or due and first of its
    /// key, summarized. nil: forgotten (the next search walks from the start).
    var keyed: KeyedPrefix? = nil
    /// With per-key ordering: the records from `keyed`'s end to the first one due and first of
    /// its key (held ones among them), summarized; its keys are those `keyed` lacks. nil:
    /// forgotten (the next search walks from `keyed`'s end).
    var keyedHeld: KeyedPrefix? = nil
    /// With per-key ordering, when the earliest delay or backoff that the last search walked
    /// past ends, of a record its key did not hold back.
    var keyedNextDueMs: Int64? = nil

    static func == (a: CandidateSearch, b: CandidateSearch) -> Bool { true }

    /// The record at `offset` changed state (acquired, finished, released, counted): a prefix
    /// over it no longer holds. (Records below a prefix are neither held nor candidates, so no
    /// acquisition or acknowledgement reaches them; this keeps the prefix true if one did.)
    mutating func touched(_ offset: Int64) {
        if let keyed, offset < keyed.end {
            self.keyed = nil
            keyedHeld = nil
        } else if let keyedHeld, offset < keyedHeld.end {
            self.keyedHeld = nil
        }
    }

    /// A record at `offset` may go out again (released, or given back).
    mutating func lowerFloor(to offset: Int64) {
        if offset < floor { floor = offset }
    }

    /// Delays, keys or the window's bounds changed where a search cannot follow: all forgotten.
    mutating func forget() {
        floorUntilMs = .min
        keyed = nil
        keyedHeld = nil
        keyedNextDueMs = nil
    }
}

/// With per-key ordering, what the records of a window below `end` (from where the prefix
/// before it ends) hold: none could go out now (each is finished, held (`keyedHeld` only),
/// delayed, or behind an unfinished record of its key), so they change only when
/// `validUntilMs` comes (their earliest delay) or an event at their offsets
/// (`CandidateSearch.touched`: an acquisition, an acknowledgement, a release) forgets the prefix.
struct KeyedPrefix: Sendable {
    /// An offset: the records below it are summarized.
    var end: Int64
    /// Records held (in flight).
    var acquired = 0
    /// Keys of the unfinished records below `end`: a later record of one of them waits.
    var keys = KeyHashSet()
    /// Records below `end` available now but behind an unfinished one of their key.
    var dueBlocked = 0
    /// The earliest delay of an available record below `end` (timer clock): until then the
    /// summary holds.
    var validUntilMs = Int64.max
    /// The earliest delay of one of those records that its key does not hold back.
    var nextDueMs = Int64.max

    init(end: Int64) { self.end = end }
}

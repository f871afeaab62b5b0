import Foundation

extension ShareCoordinator {
    /// Whether `group` has records in `tp` that a member could acquire now (ignoring how many
    /// each member may hold: another member may take them). A long poll woken by an append
    /// asks it after its acquire, to pass the wake on (`Broker.passShareWake`) only when the
    /// next poll would find something. Marks a full window as `offerable` does.
    public func hasAvailable(group: String, _ tp: TopicPartition, view: ShareLogView) -> Bool {
        availableCount(group: group, tp, view: view, max: 1) > 0
    }

    /// Milliseconds until the earliest delay or retry backoff in `partitions` that their last
    /// acquire passed over ends (`SharePartition.nextDueMs`; with per-key ordering
    /// `keyedNextDueMs`: a delayed job of a keyed group went out up to 200 ms late), or the
    /// earliest record lock there runs out
    /// (`SharePartition.nextLockExpiryMs`), when that is in the future: a long poll that found
    /// nothing wakes then, not at its next 200 ms timer (a delayed job went out up to 200 ms
    /// late) or the next maintenance pass (a job whose lock ran out, up to a second late).
    public func msUntilNextDue(group: String, partitions: some Sequence<TopicPartition>) -> Int64? {
        let keyOrdering = settings(group).keyOrdering
        let now = clock()
        let due = state.withLock { s -> Int64? in
            var earliest: Int64? = nil
            func consider(_ due: Int64?) {
                if let due, due > now { earliest = min(earliest ?? due, due) }
            }
            for tp in partitions {
                guard let index = s.slots.index(forKey: PartitionKey(group: group, topicPartition: tp)) else { continue }
                consider(keyOrdering ? s.slots.values[index].state.keyedNextDueMs : s.slots.values[index].state.nextDueMs)
                consider(s.slots.values[index].state.nextLockExpiryMs)
            }
            return earliest
        }
        return due.map { $0 - now }
    }

    /// How many records (at most `max`) `group` has in `tp` that members could acquire now, as
    /// `hasAvailable` counts them (marking a full window as `offerable` does).
    public func availableCount(group: String, _ tp: TopicPartition, view: ShareLogView, max: Int) -> Int {
        offerable(group: group, tp, view: view, max: max).count
    }

    /// `availableCount`, and whether the window is full as an acquire finds it (every record
    /// lock in flight, records waiting past it: `acquire`'s `full`), marked so then
    /// (`Slot.locksFull`: the next acknowledgement there is released): for
    /// `Broker.offerShareRecords`, how many waiting polls to wake, and whether to close the
    /// window again. (Locks run out are counted as held until an acquire or the maintenance
    /// pass expires them.)
    func offerable(group: String, _ tp: TopicPartition, view: ShareLogView, max: Int) -> (count: Int, full: Bool) {
        guard max > 0 else { return (0, false) }
        let now = clock()
        let settings = self.settings(group)
        // Makes no window: a group without one there (deleted meanwhile) gets none made.
        guard let bounds = view.bounds(tp.topic, tp.partition) else { return (0, false) }
        return state.withLock { s -> (count: Int, full: Bool) in
            let key = PartitionKey(group: group, topicPartition: tp)
            // In place, no copy held: a copy of the window extended to the log end by
            // `candidates` would copy all its entries.
            guard s.slots[key]?.state.isCaughtUp(logStart: bounds.start, logEnd: bounds.end) == false else { return (0, false) }
            if settings.keyOrdering {
                return (s.slots[key]?.state.candidates(max: max, logEnd: bounds.end, settings: settings, nowMs: now).count ?? 0, false)
            }
            // As an acquire counts: records past the window enter it while a lock is free (not
            // within the lock count of its start: an accept of any but its first record freed
            // a lock that no offer counted).
            guard let found = s.slots[key]?.state.searchWindow(max: max, settings: settings, nowMs: now) else { return (0, false) }
            guard found.offsets.count < max else { return (max, false) }
            let past = Swift.max(0, bounds.end - s.slots[key]!.state.endOffset)
            let room = Swift.max(0, settings.maxInFlight - found.inFlight)
            let full = room == 0 && past > 0
            if full { s.slots[key]!.locksFull = true }
            return (Swift.min(max, found.offsets.count + Int(Swift.min(Int64(room), past))), full)
        }
    }
}

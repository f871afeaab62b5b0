import Foundation
import Logging

/// The maintenance pass: member sessions, record locks, idle sessions and groups, compaction.
extension ShareCoordinator {
    /// Expires member sessions (releasing their records), record locks, idle share sessions
    /// and idle empty groups; compacts the share-state log when it has grown. Returns the
    /// partitions where records were released, after passing them to `offer` (before the
    /// compaction, which may wait for the disk): for `Broker.offerShareRecords`.
    @discardableResult
    func tick(
        logger: Logger? = nil, offer: ([(group: String, topicPartition: TopicPartition)]) -> Void = { _ in }
    ) async -> [(group: String, topicPartition: TopicPartition)] {
        let now = clock()
        // How far the wall clock is from the timers' (which keeps the wall's rate, not its
        // steps): a change of a second or more is a step, which delayed jobs follow.
        let skew = wallClock() &- now
        var stepped: (ms: Int64, jobs: Int)? = nil
        var expiredMembers: [(String, [String])] = []
        var windowBoundHit: (PartitionKey, Int)?
        var windowFull: (PartitionKey, Int)?
        var keyBacklogFull: PartitionKey?
        let released = state.withLock { s -> [PartitionKey] in
            var released: [PartitionKey] = []
            if let last = s.lastClockSkewMs, abs(skew &- last) >= 1_000 {
                var jobs = 0
                var index = s.slots.startIndex
                while index != s.slots.endIndex {
                    defer { s.slots.formIndex(after: &index) }
                    let moved = s.slots.values[index].state.shiftDelays(by: -(skew &- last))
                    if moved > 0 {
                        jobs += moved
                        released.append(s.slots.keys[index])  // waiting polls look again
                    }
                }
                stepped = (skew &- last, jobs)
            }
            if s.lastClockSkewMs.map({ abs(skew &- $0) >= 1_000 }) ?? true { s.lastClockSkewMs = skew }
            for id in Array(s.groups.keys) {
                var group = s.groups[id]!
                let expired = group.tick(nowMs: now, sessionTimeoutMs: groupSettings(id).sessionTimeoutMs)
                s.setGroup(group, id: id)
                if !expired.isEmpty {
                    expiredMembers.append((id, expired))
                    for member in expired { released += memberGone(member, group: id, settings: settings(id), &s) }
                }
                if group.isEmpty {
                    let since = s.idleSince[id] ?? now
                    if now - since >= options.emptyGroupRetentionMs {
                        s.setGroup(nil, id: id)
                        s.idleSince.removeValue(forKey: id)
                    } else {
                        s.idleSince[id] = since
                    }
                } else {
                    s.idleSince.removeValue(forKey: id)
                }
            }
            // Expired locks, and acquisitions not written since the last pass. Whether a slot
            // holds records comes from its holders' counts, and locks are expired in place: a
            // pass walks no window that has no lock due, and copies none (a window of delayed
            // jobs is up to 100,000 entries, in every partition of every group).
            var changed: [PartitionKey] = []
            var index = s.slots.startIndex
            while index != s.slots.endIndex {
                defer { s.slots.formIndex(after: &index) }
                let key = s.slots.keys[index]
                let unwritten = s.slots.values[index].unwritten
                guard unwritten || s.slots.values[index].state.holdsAny else { continue }
                let expired = s.slots.values[index].state.expireLocks(nowMs: now, settings: settings(key.group)) > 0
                if expired { released.append(key) }
                if expired || unwritten { changed.append(key) }
            }
            write(changed, &s)
            s.windowRecords = s.slots.values.reduce(0) { $0 + $1.state.entries.keptCount }
            if let hit = s.windowBoundHit, s.windowBoundLoggedMs.map({ now - $0 >= 60_000 }) ?? true {
                windowBoundHit = (hit, s.windowRecords)
                s.windowBoundLoggedMs = now
            }
            s.windowBoundHit = nil
            if let full = s.windowFull, s.windowFullLoggedMs.map({ now - $0 >= 60_000 }) ?? true {
                windowFull = (full, s.slots[full]?.state.entries.keptCount ?? 0)
                s.windowFullLoggedMs = now
            }
            s.windowFull = nil
            if let full = s.keyBacklogFull, s.keyBacklogFullLoggedMs.map({ now - $0 >= 60_000 }) ?? true {
                keyBacklogFull = full
                s.keyBacklogFullLoggedMs = now
            }
            s.keyBacklogFull = nil
            // A live member's session stays however long it is unused (its worker may hold a
            // job for the whole lock duration and send nothing meanwhile).
            for (key, session) in s.sessions
            where now - session.lastUsedMs > options.shareSessionIdleMs && s.groups[key.group]?.members[key.member] == nil {
                s.sessions.removeValue(forKey: key)
            }
            return released
        }
        if let stepped {
            logger?.notice(
                "the wall clock stepped: delayed jobs keep their tidemark.deliver.at times",
                metadata: ["step_ms": "\(stepped.ms)", "jobs_moved": "\(stepped.jobs)"])
        }
        let releasedPartitions = released.map { (group: $0.group, topicPartition: $0.topicPartition) }
        offer(releasedPartitions)
        if let (key, kept) = windowBoundHit {
            logger?.warning(
                "share windows are at their broker-wide bound: a partition waits for its records to finish before reading further (raise group.share.windows.total.max.records, or look for delayed or unfinished jobs kept by many groups)",
                metadata: [
                    "group": "\(key.group)", "topic": "\(key.topicPartition.topic)", "partition": "\(key.topicPartition.partition)",
                    "kept": "\(kept)", "bound": "\(options.shareWindowsTotalMaxRecords)",
                ])
        }
        if let (key, kept) = windowFull {
            // A queue whose jobs for now wait behind jobs scheduled far ahead (or behind jobs
            // that never finish) says so: its age grows, and this is why.
            logger?.warning(
                "a share window is full: the partition's later records wait until some of those it keeps finish (raise group.share.window.max.records, or look for jobs delayed far ahead or never finished)",
                metadata: [
                    "group": "\(key.group)", "topic": "\(key.topicPartition.topic)", "partition": "\(key.topicPartition.partition)",
                    "kept": "\(kept)", "bound": "\(settings(key.group).maxWindow)",
                ])
        }
        if let key = keyBacklogFull {
            // One key's backlog (a bulk import of one tenant, behind a delayed or slow job of
            // its own) stops the partition's other keys: said, as its queue's age grows.
            let locks = settings(key.group).maxInFlight
            logger?.warning(
                "per-key ordering: jobs waiting behind unfinished jobs of their keys fill the partition's share (ten times share.partition.max.record.locks): later jobs there, of every key, are not read until some of those go out (raise share.partition.max.record.locks, spread a busy key's jobs, or look for a key whose head job is delayed or stuck)",
                metadata: [
                    "group": "\(key.group)", "topic": "\(key.topicPartition.topic)", "partition": "\(key.topicPartition.partition)",
                    "waiting": "\(locks * 10)",
                ])
        }
        for (group, members) in expiredMembers {
            logger?.info("share group members removed: no heartbeat in their session timeout",
                metadata: ["group": "\(group)", "members": "\(members)"])
        }
        do {
            let live = state.withLock { $0.slots.count }
            try await store.compactIfNeeded(live: live) { [self] rewrite in
                try state.withLock { s in
                    let snapshots = snapshotAll(s)
                    try rewrite(snapshots.map { ($0.key, $0.bytes) })
                    snapshotsWritten(snapshots, &s)  // only once they are in the log
                }
            }
        } catch {
            logger?.error("share-state compaction failed; retried at the next pass", metadata: ["error": "\(error)"])
        }
        return releasedPartitions
    }

    /// Releases what a member holds in every partition of its group, and drops its session.
    /// Returns the partitions where it held records. Released in place (a copy of a slot
    /// copied its window), only where its holders' counts say it holds some.
    func memberGone(_ member: String, group: String, settings: ShareSettings, _ s: inout State) -> [PartitionKey] {
        s.sessions.removeValue(forKey: SessionKey(group: group, member: member))
        var changed: [PartitionKey] = []
        var index = s.slots.startIndex
        while index != s.slots.endIndex {
            defer { s.slots.formIndex(after: &index) }
            let key = s.slots.keys[index]
            guard key.group == group, s.slots.values[index].state.held(by: member) > 0 else { continue }
            if s.slots.values[index].state.releaseAll(held: member, settings: settings) > 0 { changed.append(key) }
        }
        write(changed, &s)
        return changed
    }
}

import Foundation

/// What the tools and the console show of share groups.
extension ShareCoordinator {
    public func describe(_ group: String) -> ShareGroupDescription? { state.withLock { $0.groups[group]?.describe() } }

    public func groupIds() -> [String] {
        state.withLock { s in Array(Set(s.groups.keys).union(s.slots.keys.map(\.group))).sorted() }
    }

    /// `groupIds()` with the groups that have members first (each part by name): what a bounded
    /// view (the console, /metrics) keeps, so groups left behind cannot push live ones out.
    public func groupIdsWithMembersFirst() -> [String] {
        state.withLock { s in
            let all = Set(s.groups.keys).union(s.slots.keys.map(\.group))
            let live = all.filter { !(s.groups[$0]?.members.isEmpty ?? true) }
            return live.sorted() + all.subtracting(live).sorted()
        }
    }

    /// Per partition of the group's share state: start, end, counts, holders, lag; and per
    /// partition of its topics that has none yet (`SharePartitionSummary.started` false), what
    /// a worker would find there: jobs in partitions added while no worker ran were missing
    /// from the queue's depth, and the next worker was handed them all.
    /// `alsoTopics`: topics to cover too though the group has no state in them (a describe
    /// that names them).
    public func summaries(_ group: String, view: ShareLogView, alsoTopics: Set<String> = []) -> [SharePartitionSummary] {
        var slots = state.withLock { s in s.slots.filter { $0.key.group == group } }
        var unstarted: Set<PartitionKey> = []
        let policy = startPolicy(group)
        for topic in Set(slots.keys.map(\.topicPartition.topic)).union(alsoTopics) {
            guard let id = view.topicId(topic) else { continue }
            var partition = 0
            while partition < 1_000_000, let bounds = view.bounds(topic, partition) {
                let key = PartitionKey(group: group, topicPartition: TopicPartition(topic, partition))
                if slots[key] == nil {
                    let start = startOffset(policy, key.topicPartition, bounds: bounds, view: view) ?? bounds.end
                    slots[key] = Slot(state: SharePartition(startOffset: start), topicId: id)
                    unstarted.insert(key)
                }
                partition += 1
            }
        }
        let now = clock()
        // Lock deadlines as wall-clock times (they are kept on the timer clock).
        let toWall = wallClock() &- now
        return slots.sorted { ServerAssignor.partitionOrder($0.key.topicPartition, $1.key.topicPartition) }.map { key, slot in
            let tp = key.topicPartition
            var slot = slot
            let bounds = view.bounds(tp.topic, tp.partition)
            if let bounds { slot.state.follow(logStart: bounds.start, logEnd: bounds.end) }
            let logEnd = bounds?.end ?? slot.state.endOffset
            let counts = slot.state.counts(nowMs: now)
            let lag = max(0, logEnd - slot.state.startOffset - Int64(counts.acknowledged + counts.archived))
            let due = slot.state.oldestDue(nowMs: now, logEnd: logEnd)
            var summary = SharePartitionSummary(
                topicPartition: tp, startOffset: slot.state.startOffset, endOffset: slot.state.endOffset, logEndOffset: logEnd,
                available: counts.available, acquired: counts.acquired, acknowledged: counts.acknowledged,
                archived: counts.archived, holders: slot.state.holders().mapValues { ($0.count, $0.earliestExpiryMs &+ toWall) }, lag: lag, deadLettered: slot.state.deadLettered,
                deadLettersPending: slot.state.deadLetters.count, delayed: counts.delayed, activity: slot.state.activity,
                oldestDueOffset: due?.offset, oldestDueAtMs: due?.dueMs.map { $0 &+ toWall })
            summary.oldestDueDelivered = due?.delivered ?? false
            summary.started = !unstarted.contains(key)
            return summary
        }
    }
}

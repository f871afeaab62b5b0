/// The partitions an embedded consumer (`Consumer`, `GroupConsumer`) polls, sorted by topic
/// and partition, and where its next poll starts: after the partition that gave the last
/// poll its last record, so that every partition with a backlog gets its turn. A poll for one
/// record read the first partition with any, every time, until it was drained (a job queue's
/// other partitions waited behind one busy one); Kafka's fetch sessions turn the same way.
/// Sorted when the assignment changes (an insert is a binary search), not per poll.
///
/// A value: its owner keeps it beside the positions, under the same lock.
struct PollOrder: Sendable {
    private(set) var partitions: [TopicPartition] = []
    /// The index this poll starts at (0 when empty).
    private(set) var start = 0
    /// The distinct topics, sorted (a poll's span names them).
    private(set) var topics: [String] = []

    init() {}

    init(_ assigned: some Sequence<TopicPartition>) {
        partitions = Array(Set(assigned)).sorted(by: Self.precedes)
        for tp in partitions where topics.last != tp.topic { topics.append(tp.topic) }
    }

    static func precedes(_ a: TopicPartition, _ b: TopicPartition) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }

    /// The partition the last poll's turn ended at (the one before `start`), if any.
    var lastTurn: TopicPartition? {
        partitions.isEmpty ? nil : partitions[(start + partitions.count - 1) % partitions.count]
    }

    /// The partitions in this poll's order: from `start`, wrapping round.
    var inPollOrder: FlattenSequence<[ArraySlice<TopicPartition>]> { [partitions[start...], partitions[..<start]].joined() }

    /// The first index whose partition does not precede `tp` (where `tp` is, or would go).
    private func insertionPoint(_ tp: TopicPartition) -> Int {
        var low = 0
        var high = partitions.count
        while low < high {
            let middle = (low + high) / 2
            if Self.precedes(partitions[middle], tp) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    mutating func insert(_ tp: TopicPartition) {
        let index = insertionPoint(tp)
        guard index == partitions.count || partitions[index] != tp else { return }
        if !(index > 0 && partitions[index - 1].topic == tp.topic) && !(index < partitions.count && partitions[index].topic == tp.topic) {
            topics.insert(tp.topic, at: topics.firstIndex { $0 > tp.topic } ?? topics.count)
        }
        partitions.insert(tp, at: index)
        if index < start { start += 1 }
    }

    mutating func remove(_ tp: TopicPartition) {
        let index = insertionPoint(tp)
        guard index < partitions.count && partitions[index] == tp else { return }
        partitions.remove(at: index)
        if !(index > 0 && partitions[index - 1].topic == tp.topic) && !(index < partitions.count && partitions[index].topic == tp.topic) {
            topics.removeAll { $0 == tp.topic }
        }
        if index < start { start -= 1 }
        if start >= partitions.count { start = 0 }
    }

    /// The next poll starts after `tp` (the partition the last poll's last record came from;
    /// one no longer assigned: after where it was).
    mutating func resume(after tp: TopicPartition) {
        guard !partitions.isEmpty else { return }
        let index = insertionPoint(tp)
        start = (index < partitions.count && partitions[index] == tp ? index + 1 : index) % partitions.count
    }
}

/// Server-side partition assignors for consumer-protocol groups (KIP-848): the broker, not a
/// leader member, decides who reads what.
///
/// Both are pure functions of (members with their subscriptions, partition counts, the
/// previous target): the same inputs always give the same assignment.
public enum ServerAssignor: String, Sendable, CaseIterable {
    /// Spreads every subscribed partition evenly over the members subscribed to its topic,
    /// keeping partitions where they were when that stays balanced (Kafka's `uniform`).
    case uniform
    /// Per topic, contiguous ranges of partitions to the members subscribed to it, in member-id
    /// order, so members get the same partition numbers of co-partitioned topics (Kafka's `range`).
    case range

    public static let `default` = ServerAssignor.uniform

    /// One member as an assignor sees it.
    public struct Member: Sendable {
        public var memberId: String
        public var topics: Set<String>
        public init(memberId: String, topics: Set<String>) {
            self.memberId = memberId
            self.topics = topics
        }
    }

    /// The target assignment: member id -> its partitions. Every member gets an entry.
    public func assign(
        members: [Member], partitionCounts: [String: Int], previous: [String: Set<TopicPartition>]
    ) -> [String: Set<TopicPartition>] {
        switch self {
        case .uniform: Self.uniform(members: members, partitionCounts: partitionCounts, previous: previous)
        case .range: Self.range(members: members, partitionCounts: partitionCounts)
        }
    }

    static func range(members: [Member], partitionCounts: [String: Int]) -> [String: Set<TopicPartition>] {
        var result: [String: Set<TopicPartition>] = [:]
        for member in members { result[member.memberId] = [] }
        for topic in partitionCounts.keys.sorted() {
            let count = partitionCounts[topic]!
            let subscribers = members.filter { $0.topics.contains(topic) }.map(\.memberId).sorted()
            guard !subscribers.isEmpty, count > 0 else { continue }
            let base = count / subscribers.count
            let extra = count % subscribers.count
            var next = 0
            for (index, member) in subscribers.enumerated() {
                let take = base + (index < extra ? 1 : 0)
                for partition in next..<(next + take) { result[member]!.insert(TopicPartition(topic, partition)) }
                next += take
            }
        }
        return result
    }

    /// Sticky and balanced: (1) partitions stay with their previous owner while it is still
    /// subscribed and under its share; (2) the rest go, in order, to the eligible member with the
    /// fewest; (3) while some member has two more than an eligible other, one partition moves.
    static func uniform(
        members: [Member], partitionCounts: [String: Int], previous: [String: Set<TopicPartition>]
    ) -> [String: Set<TopicPartition>] {
        var result: [String: Set<TopicPartition>] = [:]
        for member in members { result[member.memberId] = [] }
        guard !members.isEmpty else { return result }
        let byId = Dictionary(members.map { ($0.memberId, $0) }, uniquingKeysWith: { first, _ in first })
        let order = members.map(\.memberId).sorted()
        var all: [TopicPartition] = []
        for topic in partitionCounts.keys.sorted() where members.contains(where: { $0.topics.contains(topic) }) {
            for partition in 0..<partitionCounts[topic]! { all.append(TopicPartition(topic, partition)) }
        }
        // A member's fair share: its eligible partitions over the members sharing them, rounded up.
        let share = max(1, (all.count + members.count - 1) / members.count)
        var unassigned: [TopicPartition] = []
        var taken: Set<TopicPartition> = []
        for id in order {
            let member = byId[id]!
            for tp in (previous[id] ?? []).sorted(by: Self.partitionOrder)
            where member.topics.contains(tp.topic) && (partitionCounts[tp.topic] ?? 0) > tp.partition
                && !taken.contains(tp) && result[id]!.count < share
            {
                result[id]!.insert(tp)
                taken.insert(tp)
            }
        }
        for tp in all where !taken.contains(tp) { unassigned.append(tp) }
        for tp in unassigned {
            let eligible = order.filter { byId[$0]!.topics.contains(tp.topic) }
            guard let target = eligible.min(by: { result[$0]!.count < result[$1]!.count }) else { continue }
            result[target]!.insert(tp)
        }
        // Balance: bounded by the number of partitions (each move lowers the spread).
        for _ in 0..<(all.count + 1) {
            var moved = false
            let sorted = order.sorted { result[$0]!.count > result[$1]!.count }
            search: for from in sorted {
                for to in sorted.reversed() where result[from]!.count > result[to]!.count + 1 {
                    if let tp = result[from]!.sorted(by: Self.partitionOrder).last(where: { byId[to]!.topics.contains($0.topic) }) {
                        result[from]!.remove(tp)
                        result[to]!.insert(tp)
                        moved = true
                        break search
                    }
                }
            }
            if !moved { break }
        }
        return result
    }

    public static func partitionOrder(_ a: TopicPartition, _ b: TopicPartition) -> Bool {
        a.topic != b.topic ? a.topic < b.topic : a.partition < b.partition
    }
}

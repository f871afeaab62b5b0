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
    ///
    /// Cost: about partitions x (members subscribed to their topic), per round of (3), and
    /// rounds are few (each moves all it can). It runs under the group coordinator's lock on
    /// heartbeats that change the group: a version that re-sorted every member's partitions for
    /// every pair of members took seconds for 1,000 members and 3,000 partitions.
    static func uniform(
        members: [Member], partitionCounts: [String: Int], previous: [String: Set<TopicPartition>]
    ) -> [String: Set<TopicPartition>] {
        var result: [String: Set<TopicPartition>] = [:]
        for member in members { result[member.memberId] = [] }
        guard !members.isEmpty else { return result }
        let byId = Dictionary(members.map { ($0.memberId, $0) }, uniquingKeysWith: { first, _ in first })
        let order = members.map(\.memberId).sorted()
        // Per topic, the members subscribed to it, in member-id order.
        var eligible: [String: [String]] = [:]
        for id in order {
            for topic in byId[id]!.topics where partitionCounts[topic] != nil { eligible[topic, default: []].append(id) }
        }
        var all: [TopicPartition] = []
        for topic in partitionCounts.keys.sorted() where eligible[topic] != nil {
            for partition in 0..<partitionCounts[topic]! { all.append(TopicPartition(topic, partition)) }
        }
        // A member's fair share: its eligible partitions over the members sharing them, rounded up.
        let share = max(1, (all.count + members.count - 1) / members.count)
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
        var counts = result.mapValues(\.count)
        /// The eligible member with the fewest partitions (the first in id order among equals).
        func fewest(_ topic: String) -> String? {
            var best: String?
            for id in eligible[topic] ?? [] where best == nil || counts[id]! < counts[best!]! { best = id }
            return best
        }
        for tp in all where !taken.contains(tp) {
            guard let target = fewest(tp.topic) else { continue }
            result[target]!.insert(tp)
            counts[target]! += 1
        }
        // Balance: a round moves, from the members with the most first, each partition whose
        // topic has an eligible member with at least two fewer; rounds end when one moves none
        // (each move lowers the spread, so the number of partitions bounds them).
        for _ in 0..<(all.count + 1) {
            var moved = false
            for from in order.sorted(by: { counts[$0]! != counts[$1]! ? counts[$0]! > counts[$1]! : $0 < $1 }) {
                for tp in result[from]!.sorted(by: Self.partitionOrder).reversed() {
                    guard let to = fewest(tp.topic), counts[to]! + 1 < counts[from]! else { continue }
                    result[from]!.remove(tp)
                    result[to]!.insert(tp)
                    counts[from]! -= 1
                    counts[to]! += 1
                    moved = true
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

/// The committed offsets an `OffsetStore` holds, by group and then partition: one group's
/// offsets (an OffsetFetch for all partitions, a describe, a DeleteGroups) are found without
/// walking every other group's, so exporters asking for every group cost groups x that
/// group's partitions, not groups x all offsets, under the lock commits take.
///
/// Ownership: a value inside `OffsetStore.state` (a Mutex); changed only under it.
/// Invariants: no group maps to an empty dictionary; `count` is the number of entries;
/// `memoryBytes` is the sum of `cost(group:)` over groups and `cost(_:_:)` over entries.
struct OffsetTable: Sendable {
    private(set) var groups: [String: [TopicPartition: CommittedOffset]] = [:]
    /// Entries over all groups.
    private(set) var count = 0
    /// An estimate of the memory the entries take (`OffsetStore.maxMemoryBytes` bounds it).
    private(set) var memoryBytes = 0

    /// An entry's memory: the table's slot (a partition and an offset, about 60 bytes, with the
    /// hash table's room to spare) and its strings' heap storage.
    static func cost(_ tp: TopicPartition, _ offset: CommittedOffset) -> Int {
        96 + tp.topic.utf8.count + offset.metadata.utf8.count
    }

    /// A group's own memory: its name and its dictionary.
    static func cost(group: String) -> Int { 128 + group.utf8.count }

    /// How much `memoryBytes` would grow if `offsets` were stored for `group` (negative when it
    /// would shrink: shorter metadata).
    func growth(group: String, offsets: [TopicPartition: CommittedOffset]) -> Int {
        guard let existing = groups[group] else {
            return Self.cost(group: group) + offsets.reduce(0) { $0 + Self.cost($1.key, $1.value) }
        }
        return offsets.reduce(0) { sum, entry in
            sum + Self.cost(entry.key, entry.value) - (existing[entry.key].map { Self.cost(entry.key, $0) } ?? 0)
        }
    }

    subscript(key: OffsetStore.Key) -> CommittedOffset? {
        get { groups[key.group]?[key.topicPartition] }
        set {
            if let newValue {
                if groups[key.group] == nil { memoryBytes += Self.cost(group: key.group) }
                if let old = groups[key.group, default: [:]].updateValue(newValue, forKey: key.topicPartition) {
                    memoryBytes -= Self.cost(key.topicPartition, old)
                } else {
                    count += 1
                }
                memoryBytes += Self.cost(key.topicPartition, newValue)
            } else if let old = groups[key.group]?.removeValue(forKey: key.topicPartition) {
                count -= 1
                memoryBytes -= Self.cost(key.topicPartition, old)
                if groups[key.group]?.isEmpty == true {
                    groups.removeValue(forKey: key.group)
                    memoryBytes -= Self.cost(group: key.group)
                }
            }
        }
    }

    /// The keys of every entry `include` picks (walks all of them).
    func keys(where include: (OffsetStore.Key) -> Bool) -> [OffsetStore.Key] {
        var keys: [OffsetStore.Key] = []
        for (group, offsets) in groups {
            for tp in offsets.keys {
                let key = OffsetStore.Key(group: group, topicPartition: tp)
                if include(key) { keys.append(key) }
            }
        }
        return keys
    }

    /// The keys of these groups' entries.
    func keys(ofGroups names: some Sequence<String>) -> [OffsetStore.Key] {
        names.flatMap { group in (groups[group]?.keys).map { $0.map { OffsetStore.Key(group: group, topicPartition: $0) } } ?? [] }
    }
}

/// The committed offsets an `OffsetStore` holds, by group and then partition: one group's
/// offsets (an OffsetFetch for all partitions, a describe, a DeleteGroups) are found without
/// walking every other group's, so exporters asking for every group cost groups x that
/// group's partitions, not groups x all offsets, under the lock commits take.
///
/// Ownership: a value inside `OffsetStore.state` (a Mutex); changed only under it.
/// Invariants: no group maps to an empty dictionary; `count` is the number of entries.
struct OffsetTable: Sendable {
    private(set) var groups: [String: [TopicPartition: CommittedOffset]] = [:]
    /// Entries over all groups.
    private(set) var count = 0

    subscript(key: OffsetStore.Key) -> CommittedOffset? {
        get { groups[key.group]?[key.topicPartition] }
        set {
            if let newValue {
                if groups[key.group, default: [:]].updateValue(newValue, forKey: key.topicPartition) == nil { count += 1 }
            } else if groups[key.group]?.removeValue(forKey: key.topicPartition) != nil {
                count -= 1
                if groups[key.group]?.isEmpty == true { groups.removeValue(forKey: key.group) }
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

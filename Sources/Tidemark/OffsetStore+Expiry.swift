import Synchronization
import TidemarkStorage

// Expiry of committed offsets, as Kafka 4.1 expires them (its OffsetMetadataManager's
// cleanupExpiredOffsets with each group type's offsetExpirationCondition): the coordinator
// says what it knows of each group with members (`ActiveGroup`); the store decides per offset
// and writes the tombstones.

extension OffsetStore {
    /// What the coordinator knows of a group whose offsets may expire (Kafka's
    /// `offsetExpirationCondition` and `isSubscribedToTopic`).
    enum ActiveGroup: Sendable, Equatable {
        /// Members subscribed to these topics (a Stable classic consumer group, a
        /// consumer-protocol group): offsets of other topics expire from their commit (KIP-496).
        case subscribedTo(Set<String>)
        /// Members whose subscriptions are not known (a classic group rebalancing, or of
        /// another protocol type): none of its offsets expires.
        case keepsAll
        /// A consumer-protocol group without members: each offset expires from its commit.
        case consumerProtocolEmpty
    }

    /// Deletes the committed offsets that have expired by `cutoffMs`: tombstones (null values),
    /// synced, and out of the map; the membership records of groups left with neither members
    /// nor offsets too. Returns the groups that lost offsets.
    ///
    /// As Kafka expires them: a group with members keeps the offsets of the topics they
    /// subscribe to, and those of others expire from their commit (KIP-496); a consumer-protocol
    /// group without members loses each offset from its commit. A group that used classic
    /// group management (it has a membership record) and has no members expires whole, from
    /// when it became empty (or its newest commit, if later); one that only commits (a consumer
    /// that assigns its partitions itself) from its newest commit, whole: a consumer reading a
    /// quiet partition commits nothing new for it for days, and Kafka's per-offset rule would
    /// take that offset from under it while it runs.
    func expire(olderThan cutoffMs: Int64, active: [String: ActiveGroup]) async throws -> Set<String> {
        let now = clock()
        return try await executor.run { [self] in
            let (info, expired) = try whileSlow { try state.withLock { entries -> Result<(LogAppendInfo?, Set<String>), Error> in
                var doomed: [Key] = []
                var expired = Set<String>()
                var emptied = Set<String>()
                let records = memberships.withLock { $0 }
                for (group, offsets) in entries.groups {
                    let expiring: [TopicPartition]
                    switch active[group] {
                    case .keepsAll?:
                        continue
                    case .subscribedTo(let topics)?:
                        expiring = offsets.filter { !topics.contains($0.key.topic) && $0.value.commitTimestampMs < cutoffMs }.map(\.key)
                    case .consumerProtocolEmpty?:
                        expiring = offsets.filter { $0.value.commitTimestampMs < cutoffMs }.map(\.key)
                    case nil:
                        let newest = offsets.values.lazy.map(\.commitTimestampMs).max() ?? .min
                        let idleSince = records[group].map { max(newest, $0.emptySinceMs ?? now) } ?? newest
                        expiring = idleSince < cutoffMs ? Array(offsets.keys) : []
                    }
                    guard !expiring.isEmpty else { continue }
                    expired.insert(group)
                    if expiring.count == offsets.count { emptied.insert(group) }
                    doomed += expiring.map { Key(group: group, topicPartition: $0) }
                }
                // Membership records go with their group's last offsets, and at once for a
                // group without members that has none (as Kafka deletes such a group):
                // otherwise groups that never commit would pile up here.
                let gone = records.keys.filter { group in
                    let withoutMembers = active[group] == nil || active[group] == .consumerProtocolEmpty
                    return withoutMembers && (emptied.contains(group) || entries.groups[group] == nil)
                }
                return Result { (try writeTombstones(doomed, memberships: gone, nowMs: now, &entries), expired) }
            }.get() }
            if let info { try partition.log.flush(upTo: info.lastOffset + 1) }
            return expired
        }
    }
}

import Foundation

/// What the admin requests change of share groups: start offsets (AlterShareGroupOffsets),
/// share state (DeleteShareGroupOffsets) and whole groups (DeleteGroups).
extension ShareCoordinator {
    /// AlterShareGroupOffsets: moves the start offsets; refused while the group has members.
    public func resetOffsets(group: String, offsets: [TopicPartition: Int64], view: ShareLogView) async throws {
        let durableAt = try state.withLock { s -> Int64? in
            guard GroupCoordinator.validGroupId(group) else {
                throw TidemarkError(.invalidRequest, "the group id must be 1 to 255 bytes")
            }
            if let g = s.groups[group], !g.isEmpty {
                throw TidemarkError(.nonEmptyGroup, "share group '\(group)' has active members")
            }
            guard s.admits(group, maxGroups: options.shareMaxGroups) else {
                throw TidemarkError(.groupMaxSizeReached, maxGroupsMessage(s))
            }
            if let (tp, offset) = offsets.first(where: { $0.value < 0 }) {
                throw TidemarkError(.invalidRequest, "start offset \(offset) for \(tp) is negative")
            }
            // Every partition is checked before any moves: one that does not exist used to fail
            // the request after others were reset in memory (not logged, and reported failed).
            // A start past the log end is taken (the window follows the log end back), but not
            // one no log can reach: near Int64.max it overflowed the window's arithmetic, and
            // its snapshot was unreadable at restart (which brought the old start back).
            for (tp, offset) in offsets {
                guard view.topicId(tp.topic) != nil, view.bounds(tp.topic, tp.partition) != nil else {
                    throw TidemarkError(.unknownTopicOrPartition, "\(tp) does not exist")
                }
                guard offset < ShareStateStore.maxOffset else {
                    throw TidemarkError(.invalidRequest, "start offset \(offset) for \(tp) is past any log's end")
                }
            }
            var changed: [PartitionKey] = []
            for (tp, offset) in offsets {
                guard let pkey = slotKey(group, tp, view: view, &s) else {
                    throw TidemarkError(.unknownTopicOrPartition, "\(tp) does not exist")
                }
                s.slots[pkey]!.state.reset(to: offset)  // the next write is a snapshot
                s.slotsEpoch &+= 1
                changed.append(pkey)
            }
            return try writeSlots(changed, &s)
        }
        if let durableAt { try await waitDurable(durableAt) }
    }

    /// DeleteShareGroupOffsets: forgets the group's state for these topics (all when nil);
    /// refused while the group has members.
    public func deleteState(group: String, topics: Set<String>?) async throws {
        let durableAt = try state.withLock { s -> Int64? in
            if let g = s.groups[group], !g.isEmpty {
                throw TidemarkError(.nonEmptyGroup, "share group '\(group)' has active members")
            }
            var changed: [(ShareStateStore.Key, [UInt8]?)] = []
            for (key, slot) in s.slots where key.group == group && (topics?.contains(key.topicPartition.topic) ?? true) {
                s.removeSlot(key)
                changed.append((storeKey(key, slot), nil))
            }
            return try store.write(changed)
        }
        if let durableAt { try await waitDurable(durableAt) }
    }

    /// A topic was deleted (`Broker.deleteTopic`, once it is gone from the registry): every
    /// group's share state of it goes, written as deleted (not synced: a restart restores no
    /// state of a topic id the broker no longer has), its partitions leave the share sessions,
    /// and every member of a group that read it is told its assignment at its next heartbeat.
    ///
    /// Records of a topic made again under the same name are new jobs. With the old state
    /// kept (by name), a worker's session went on acquiring the new topic's records under the
    /// old topic's locks and delivery counts, answered under the new topic id the worker did
    /// not know, so it never saw them: each ran out its delivery attempts and was archived
    /// (dead-lettered) unprocessed. An old lock running out dead-lettered the new record at its
    /// offset, and describe and the metrics kept showing the deleted topic's backlog.
    public func topicDeleted(_ topic: String, id: UUID) {
        state.withLock { s in
            var changed: [(ShareStateStore.Key, [UInt8]?)] = []
            for (key, slot) in s.slots where key.topicPartition.topic == topic && slot.topicId == id {
                s.removeSlot(key)
                changed.append((storeKey(key, slot), nil))
            }
            for key in Array(s.sessions.keys) {
                guard s.sessions[key]!.partitions.contains(where: { $0.topic == topic }) else { continue }
                s.sessions[key]!.partitions.removeAll { $0.topic == topic }
                s.sessions[key]!.known = Set(s.sessions[key]!.partitions)
            }
            for id in Array(s.groups.keys) {
                var group = s.groups[id]!
                group.topicDeleted(topic)
                s.setGroup(group, id: id)
            }
            // A failed write leaves records the next open skips (their topic id is unknown).
            _ = try? store.write(changed)
        }
    }

    /// DeleteGroups for a share group: one without members is deleted with its share state
    /// (synced) and sessions. Returns whether there was such a group; throws `.nonEmptyGroup`.
    public func deleteGroup(_ group: String) async throws -> Bool {
        let known = state.withLock { s in s.groups[group] != nil || s.slots.keys.contains { $0.group == group } }
        guard known else { return false }
        try await deleteState(group: group, topics: nil)
        state.withLock { s in
            guard s.groups[group]?.isEmpty ?? true else { return }
            s.setGroup(nil, id: group)
            s.idleSince.removeValue(forKey: group)
            for key in s.sessions.keys where key.group == group { s.sessions.removeValue(forKey: key) }
        }
        return true
    }
}

import Foundation

/// Writing slots to the share-state log (`ShareStateStore`): deltas, snapshots, compaction's
/// snapshots. Called under the coordinator's lock (`State` comes in `inout`), so the log's
/// order is the state's order.
extension ShareCoordinator {
    /// Appends what changed in these slots to the share-state log in one batch (not waited
    /// for): a delta, or a snapshot when the slot has none to build on or its deltas since
    /// add up to enough (`Slot.writesSnapshot`). Marks them written and returns the offset
    /// below which they are; when the append fails it throws and the slots are left unwritten
    /// with what changed still marked (the maintenance pass tries again).
    @discardableResult
    func writeSlots(_ keys: [PartitionKey], _ s: inout State) throws -> Int64? {
        guard !keys.isEmpty else { return nil }
        var records: [(ShareStateStore.Key, [UInt8]?)] = []
        var snapshot: [Bool] = []
        records.reserveCapacity(keys.count)
        for key in keys {
            guard let slot = s.slots[key] else { continue }
            let whole = slot.writesSnapshot
            records.append((storeKey(key, slot), whole ? ShareStateStore.encodeValue(slot.state) : ShareStateStore.encodeDelta(slot.state)))
            snapshot.append(whole)
        }
        do {
            let written = try store.write(records)
            var index = 0
            for key in keys where s.slots[key] != nil {
                s.slots[key]!.written(records[index].1?.count ?? 0, snapshot: snapshot[index])
                index += 1
            }
            return written
        } catch {
            for key in keys { s.slots[key]?.unwritten = true }
            throw error
        }
    }

    /// A snapshot of every slot, for compaction (under the lock, with the rewrite). Nothing is
    /// marked until the rewrite has appended them (`snapshotsWritten`): a compaction that fails
    /// half-way leaves every slot's pending changes and snapshot state as they were.
    func snapshotAll(_ s: State) -> [(partition: PartitionKey, key: ShareStateStore.Key, bytes: [UInt8])] {
        s.slots.map { key, slot in (key, storeKey(key, slot), ShareStateStore.encodeValue(slot.state)) }
    }

    /// Later writes build on these snapshots, now in the log.
    func snapshotsWritten(_ snapshots: [(partition: PartitionKey, key: ShareStateStore.Key, bytes: [UInt8])], _ s: inout State) {
        for snapshot in snapshots where s.slots[snapshot.partition] != nil {
            s.slots[snapshot.partition]!.written(snapshot.bytes.count, snapshot: true)
        }
    }

    /// `writeSlots` where nobody waits for it (the storage reports its own failures).
    func write(_ keys: [PartitionKey], _ s: inout State) { _ = try? writeSlots(keys, &s) }

    func storeKey(_ key: PartitionKey, _ slot: Slot) -> ShareStateStore.Key {
        ShareStateStore.Key(group: key.group, topicId: slot.topicId, partition: key.topicPartition.partition)
    }
}

import Foundation

/// What the share coordinator keeps per (group, partition) and per share session; owned by
/// `ShareCoordinator`'s mutex, inside its `State`.
extension ShareCoordinator {
    struct Slot: Sendable {
        var state: SharePartition
        var topicId: UUID
        /// Acquisitions or undone acquisitions not in the share-state log yet (the window's
        /// existence and extent: a new group's start, with `share.auto.offset.reset=latest` the
        /// log's end then; a held record is written as it was before its delivery): they go
        /// with the slot's next snapshot (an acknowledgement's) or with the maintenance pass,
        /// not one write per fetch.
        var unwritten = false
        /// The maintenance pass could not read this restored window's keys and delays
        /// (`ShareCoordinator.readRestoredMetadata`): left to its first fetch.
        var metadataUnread = false
        /// The share-state log holds a snapshot of this slot that deltas can follow (not yet
        /// after a restart or a reset), its size, and the bytes of the deltas written since:
        /// a slot writes deltas until they add up to its last snapshot, then a snapshot.
        var hasSnapshot = false
        var snapshotBytes = 0
        var deltaBytes = 0

        /// The next write must be a snapshot, not a delta.
        var writesSnapshot: Bool { !hasSnapshot || state.needsSnapshot || deltaBytes >= max(snapshotBytes, 1_024) }

        /// A record of `size` bytes (a snapshot or a delta) with what this slot holds is in the log.
        mutating func written(_ size: Int, snapshot: Bool) {
            unwritten = false
            state.markWritten()
            if snapshot {
                hasSnapshot = true
                snapshotBytes = size
                deltaBytes = 0
            } else {
                deltaBytes += size
            }
        }
    }

    struct SessionKey: Hashable, Sendable {
        var group: String
        var member: String
    }

    struct Session: Sendable {
        var nextEpoch: Int32 = 1
        var partitions: [TopicPartition] = []
        /// The same partitions as a set: adding one is checked without a pass over the list.
        var known: Set<TopicPartition> = []
        var lastUsedMs: Int64
        /// Rotates the read order between fetches, so no partition starves the others.
        var cursor = 0
        /// The connection that used it last (the Kafka front's number for it): when that
        /// connection closes, so does the session (`connectionClosed`).
        var connection: UInt64?
    }
}

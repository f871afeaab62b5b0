import Foundation
import TidemarkStorage

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
        /// An acquire found every record lock of this window in flight (`acquire`'s `full`):
        /// the caller closed the window to appends' wakes (`Broker.closeShareWindows`), and
        /// the next acknowledgement here opens it (`ShareSessionUpdate.released`).
        var locksFull = false
        /// The share-state log holds a snapshot of this slot that deltas can follow (not yet
        /// after a restart or a reset), its size, and the bytes of the deltas written since
        /// (`writesSnapshot` says when the next is a snapshot).
        var hasSnapshot = false
        var snapshotBytes = 0
        var deltaBytes = 0

        /// The next write must be a snapshot, not a delta: once the deltas since the last one add
        /// up to its size, to 1 KiB, and to a byte per entry the window keeps (a snapshot walks
        /// every one); a replay reads at most that beside the snapshot. (A window of 50,000
        /// delayed jobs snapshots in a few bytes, one run: with its size alone it was walked
        /// whole every ~20 acknowledgements, ~15 us a job.)
        var writesSnapshot: Bool {
            !hasSnapshot || state.needsSnapshot || deltaBytes >= max(snapshotBytes, 1_024, state.entries.keptCount)
        }

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
        /// Its worker runs in this process (the embedded `ShareConsumer`): the deliveries it
        /// takes count even if the process ends before they finish (`SharePartition.Entry.cutCounts`).
        var inProcess = false
        /// Opened for a member of the group (the Kafka front's sessions): it acquires only while
        /// the member is in the group (one that left keeps its session for its last
        /// acknowledgements, not to take more jobs).
        var requireMember = false
        /// The partitions it acquired from: what its member still holds there goes back when it
        /// closes, also in partitions it has since forgotten (kept across a reopen at epoch 0).
        var heldIn: Set<TopicPartition> = []
        /// The partitions its last full acquire found caught up (`QuietMarks`).
        var quiet: QuietMarks?
    }

    /// The partitions of a session's walk (`basis`, the list an acquire was given) that the
    /// last acquire over it found caught up (`SharePartition.isCaughtUp`: nothing in the window,
    /// its start at the log's end), each with its log and that end. Such a slot gets records
    /// only when its log's end moves, or the slot is made again, removed or reset
    /// (`State.slotsEpoch`), or the topic changes (`ShareLogView.topicsGeneration`): while
    /// none of that happened, the acquire passes it over after one read of the log's end,
    /// without the lookups of its slot and bounds (~200 ns a partition: a worker taking jobs
    /// from one of 1,000 partitions spent ~200 us a poll on the other 999). Only ever a reason
    /// to pass a partition over, never to take from one: a session that forgot a partition
    /// since is not harmed by a mark of it. The logs of a topic deleted since stay in memory
    /// (closed, no descriptors) until the session's next walk over all its partitions, or its end.
    struct QuietMarks: Sendable {
        struct Mark: Sendable {
            /// Kept alive by `logs` (a retain and release per look cost as much as the lookups
            /// it saves: a log's count is in a side table, it has weak references).
            let log: Unmanaged<PartitionLog>
            let end: Int64
        }
        var basis: [TopicPartition]
        var slotsEpoch: UInt64
        var topicsGeneration: UInt64
        /// By index in `basis`: nil for partitions to look at.
        private var marks: [Mark?]
        private var logs: [PartitionLog?]

        init(basis: [TopicPartition], slotsEpoch: UInt64, topicsGeneration: UInt64) {
            self.basis = basis
            self.slotsEpoch = slotsEpoch
            self.topicsGeneration = topicsGeneration
            marks = Array(repeating: nil, count: basis.count)
            logs = Array(repeating: nil, count: basis.count)
        }

        /// Whether the partition at `index` is as it was when found caught up.
        func isQuiet(_ index: Int) -> Bool {
            guard let mark = marks[index] else { return false }
            return mark.log._withUnsafeGuaranteedRef { $0.visibleEndOffset } == mark.end
        }

        /// The partition at `index` found caught up with its log at `end`, or (nil) not.
        mutating func mark(_ index: Int, _ found: (log: PartitionLog, end: Int64)?) {
            marks[index] = found.map { Mark(log: .passUnretained($0.log), end: $0.end) }
            logs[index] = found?.log
        }
    }
}

/// Finding and making a group's slot for a partition (under the coordinator's lock).
extension ShareCoordinator {
    /// The slot key of (group, tp), created (start per `share.auto.offset.reset`) when new or
    /// when the topic was recreated. nil when the topic or partition does not exist.
    func slotKey(_ group: String, _ tp: TopicPartition, view: ShareLogView, _ s: inout State) -> PartitionKey? {
        var lastTopic: ShareLogView.TopicLookup? = nil
        var needsBlocking = false
        return slot(group, tp, view: view, &s, lastTopic: &lastTopic, needsBlocking: &needsBlocking)?.key
    }

    /// The key of `group`'s slot for `tp` when it has one for the topic as it is now; nil
    /// otherwise (nothing is made: an acknowledgement where nothing was acquired has nothing
    /// to acknowledge, and must not cost a start's lookup).
    func existingSlotKey(_ group: String, _ tp: TopicPartition, view: ShareLogView, _ s: State) -> PartitionKey? {
        let key = PartitionKey(group: group, topicPartition: tp)
        guard let slot = s.slots[key], let id = view.topicId(tp.topic), slot.topicId == id, view.bounds(tp.topic, tp.partition) != nil else {
            return nil
        }
        return key
    }

    /// Looks `topic` up into `lastTopic` unless it is the topic looked up last.
    func resolve(_ topic: String, view: ShareLogView, _ lastTopic: inout ShareLogView.TopicLookup?) {
        guard lastTopic?.name != topic else { return }
        if let topicBounds = view.topicBounds {
            let found = topicBounds(topic)
            lastTopic = .init(name: topic, id: found?.id, bounds: found?.bounds, logs: found?.logs)
        } else {
            lastTopic = .init(name: topic, id: view.topicId(topic), bounds: nil, logs: nil)
        }
    }

    /// The key of `group`'s slot for `tp` (made when it has none, or when the topic was made
    /// again under the same name), the log's bounds, and whether the slot has nothing to hand
    /// out or expire now (`SharePartition.isCaughtUp`); nil when the partition does not exist.
    /// `lastTopic` carries the topic id looked up last, for a walk over one topic's partitions.
    /// `needsBlocking`: set when the slot would be made but its start needs a read this view
    /// may not make (nil is answered; a blocking view makes it).
    func slot(
        _ group: String, _ tp: TopicPartition, view: ShareLogView, _ s: inout State, lastTopic: inout ShareLogView.TopicLookup?,
        needsBlocking: inout Bool
    ) -> (key: PartitionKey, bounds: (start: Int64, end: Int64), caughtUp: Bool)? {
        resolve(tp.topic, view: view, &lastTopic)
        guard let id = lastTopic!.id,
            let bounds = view.topicBounds == nil ? view.bounds(tp.topic, tp.partition) : lastTopic!.bounds?(tp.partition)
        else { return nil }
        let key = PartitionKey(group: group, topicPartition: tp)
        if let slot = s.slots[key], slot.topicId == id {
            return (key, bounds, slot.state.isCaughtUp(logStart: bounds.start, logEnd: bounds.end))
        }
        // A new group's first slot needs room among the groups (the session's open checked
        // too, but the group may have gone since: its members left and its state was deleted).
        guard s.admits(group, maxGroups: options.shareMaxGroups) else { return nil }
        guard let start = startOffset(startPolicy(group), tp, bounds: bounds, view: view) else {
            needsBlocking = true
            return nil
        }
        s.insertSlot(Slot(state: SharePartition(startOffset: start), topicId: id), at: key)
        return (key, bounds, false)
    }
}

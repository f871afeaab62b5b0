import Foundation
import Synchronization
import TidemarkStorage

public struct TopicPartition: Sendable, Hashable, CustomStringConvertible {
    public var topic: String
    public var partition: Int
    public init(_ topic: String, _ partition: Int) {
        self.topic = topic
        self.partition = partition
    }
    public var description: String { "\(topic)-\(partition)" }
}

public struct CommittedOffset: Sendable, Equatable {
    public var offset: Int64
    public var metadata: String
    public var commitTimestampMs: Int64
    /// The leader epoch of the record before `offset`, as the committing consumer saw it
    /// (KIP-320), or -1 when unknown. Kept and given back as committed: a consumer checks its
    /// restored position against it.
    public var leaderEpoch: Int32
    public init(offset: Int64, metadata: String = "", commitTimestampMs: Int64 = 0, leaderEpoch: Int32 = -1) {
        self.offset = offset
        self.metadata = metadata
        self.commitTimestampMs = commitTimestampMs
        self.leaderEpoch = leaderEpoch
    }
}

/// Committed group offsets: a map in memory, made durable in the internal topic
/// `__consumer_offsets` (one partition) and rebuilt from it at open.
///
/// A commit is as durable as the records it commits: one that names a partition of a topic
/// synced on every append (`sync`) is answered once the broker's `LogFlusher` has synced it
/// (commits waiting together share an fdatasync with each other and with durable produces);
/// others are answered from the page cache and synced by the broker's next maintenance pass
/// (every second by default), as Redis's `appendfsync everysec` syncs XACK. A power loss can
/// then move a group back by up to a second of commits (records delivered again, never
/// skipped), where the records themselves were not synced either.
///
/// Records use Kafka's own offset-commit layouts, so Kafka's dump tools read them:
/// ```
/// key   (OffsetCommitKey v1):   version i16 = 1, group string, topic string, partition i32
/// value (OffsetCommitValue v3): version i16 = 3, offset i64, leaderEpoch i32 (-1: unknown),
///                               metadata string, commitTimestamp i64
/// ```
/// (strings: i16 length + UTF-8). A null value deletes the entry. The log also holds each
/// group's latest membership: a classic group's record (`GroupMembershipRecord`, key version 2),
/// or a consumer-protocol group's records (`ConsumerGroupSnapshot`, key versions 3 and 5 to 8).
/// The log is compacted by
/// snapshot: when it outgrows `GroupOptions.offsetsCompactionBytes`, the live entries are appended
/// again after a roll and the older segments are deleted.
///
/// Concurrency: `state` (a Mutex) owns the map and serializes commits, so the log order
/// and the map agree; a commit's append (a pwritev to the page cache) is made under it, its
/// fdatasync later by the flusher, which answers the commit. Work that holds the lock while it
/// touches the disk for long (a roll, compaction, expiry) counts itself in `slowHolders`
/// first, so an event loop's `commitNow` that finds the lock taken by it steps aside
/// (`.wouldBlock`) instead of waiting.
public final class OffsetStore: Sendable {
    struct Key: Hashable, Sendable {
        var group: String
        var topicPartition: TopicPartition
    }

    let partition: PartitionState
    let executor: BlockingExecutor
    let flusher: LogFlusher
    let clock: @Sendable () -> Int64
    let state: Mutex<OffsetTable>
    /// Holders of `state` that may keep it while they wait for the disk.
    let slowHolders = Atomic<Int>(0)
    /// Each group's latest membership records (see `Membership`), kept so that compaction
    /// writes them again, that a restart restores the group, and that offsets expire counting
    /// from when the group became empty. Changed only while `state` is held (lock order:
    /// `state`, then this).
    let memberships = Mutex<[String: Membership]>([:])
    /// The log's size right after the last compaction (0 before one).
    private let compactedBytes = Atomic<Int64>(0)

    /// A group's latest membership records, key to value: a classic group's one
    /// (`GroupMembershipRecord`), or a consumer-protocol group's (`ConsumerGroupSnapshot`).
    struct Membership: Sendable, Equatable {
        var records: [[UInt8]: [UInt8]]
        /// When they were written: their records' timestamp, which compaction keeps.
        var timestampMs: Int64
        /// Since when the group has had no members as far as the log says: an Empty record's
        /// timestamp; for a record with members read at open (the broker stopped while the
        /// group had members), the open. Nil while the group has members.
        var emptySinceMs: Int64?

        /// The classic group's record (`GroupMembershipRecord`'s value), if it is one.
        func classicValue(group: String) -> [UInt8]? { records[GroupMembershipRecord.encodeKey(group: group)] }

        /// Whether the records name members: a classic record with members, or a consumer
        /// group's member records.
        func hasMembers(group: String) -> Bool {
            if let value = classicValue(group: group) { return !(GroupMembershipRecord.decodeValue(value)?.members.isEmpty ?? true) }
            return records.keys.contains { ConsumerGroupSnapshot.decodeKey($0)?.member != nil }
        }
    }

    /// The group a membership record's key names (a classic or consumer-protocol group's);
    /// nil for any other key.
    static func membershipGroup(_ key: [UInt8]?) -> String? {
        GroupMembershipRecord.decodeKey(key) ?? ConsumerGroupSnapshot.decodeKey(key)?.group
    }
    let compactionThresholdBytes: Int64
    /// The most memory the committed offsets may take (`GroupOptions.offsetsMaxMemoryBytes`):
    /// a commit that would grow them past it is refused (`.invalidCommitOffsetSize`), so the
    /// map, and the open that reads it all back, stay bounded whatever clients commit.
    /// Commits that do not grow it (a group moving its offsets on) always go through.
    let maxMemoryBytes: Int

    private init(
        partition: PartitionState, executor: BlockingExecutor, flusher: LogFlusher, clock: @escaping @Sendable () -> Int64,
        entries: OffsetTable, compactionThresholdBytes: Int64, maxMemoryBytes: Int
    ) {
        self.maxMemoryBytes = maxMemoryBytes
        self.partition = partition
        self.flusher = flusher
        self.compactionThresholdBytes = compactionThresholdBytes
        self.executor = executor
        self.clock = clock
        self.state = Mutex(entries)
    }

    static func open(
        partition: PartitionState, executor: BlockingExecutor, flusher: LogFlusher, clock: @escaping @Sendable () -> Int64,
        compactionThresholdBytes: Int64, maxMemoryBytes: Int = .max
    ) async throws -> OffsetStore {
        let openedAt = clock()
        let (entries, memberships) = try await executor.run { () throws -> (OffsetTable, [String: Membership]) in
            var entries = OffsetTable()
            var memberships: [String: Membership] = [:]
            var offset = partition.log.logStartOffset
            while offset < partition.log.logEndOffset {
                let batches = try partition.log.readBatches(from: offset, maxBytes: 8 << 20)
                guard !batches.isEmpty else { break }
                for batch in batches {
                    // Offsets that go back (a damaged base offset, outside the CRC) would skip
                    // records silently or read the same batch forever.
                    guard batch.header.nextOffset > offset else {
                        throw PartitionLog.offsetsGoBack(batch.header, after: offset, directory: partition.log.directory)
                    }
                    for record in batch.records where batch.offset(of: record) >= offset {
                        if let key = record.key, let group = membershipGroup(key) {
                            // Each key on its own: a group's records come as a set, and a
                            // tombstone removes one of them (or the classic group's only one).
                            var membership = memberships[group] ?? Membership(records: [:], timestampMs: 0)
                            membership.records[key] = record.value
                            membership.timestampMs = batch.timestamp(of: record)
                            memberships[group] = membership.records.isEmpty ? nil : membership
                            continue
                        }
                        guard let key = decodeKey(record.key) else { continue }
                        if let value = record.value, let committed = decodeValue(value) {
                            entries[key] = committed
                        } else if record.value == nil {
                            entries[key] = nil
                        }
                    }
                    offset = batch.header.nextOffset
                }
            }
            for (group, membership) in memberships {
                memberships[group]?.emptySinceMs = membership.hasMembers(group: group) ? openedAt : membership.timestampMs
            }
            return (entries, memberships)
        }
        let store = OffsetStore(
            partition: partition, executor: executor, flusher: flusher, clock: clock, entries: entries,
            compactionThresholdBytes: compactionThresholdBytes, maxMemoryBytes: maxMemoryBytes)
        store.memberships.withLock { $0 = memberships }
        return store
    }

    /// Stores offsets (one batch, so a commit is all or nothing), synced before returning when
    /// `sync` says so (or the append rolled a segment, which is synced at once).
    func commit(group: String, offsets: [TopicPartition: CommittedOffset], sync: Bool) async throws {
        guard !offsets.isEmpty else { return }
        var info = try append(group: group, offsets: offsets, mayBlock: false)
        if info == nil {
            info = try await executor.run { [self] in try append(group: group, offsets: offsets, mayBlock: true) }
        }
        if let info, let target = durabilityTarget(after: info, sync: sync) {
            try await flusher.durable(partition.log, upTo: target)
        }
    }

    /// The offset to sync before a commit is answered: its own end when `sync`, and a segment
    /// it rolled; nil when nothing must wait.
    private func durabilityTarget(after info: LogAppendInfo, sync: Bool) -> Int64? {
        let rolled = partition.log.durabilityTarget(after: info)
        guard sync else { return rolled }
        let target = max(rolled ?? 0, info.lastOffset + 1)
        return partition.log.flushedOffset < target ? target : nil
    }

    /// What `commitNow` did.
    enum ImmediateCommit {
        /// Appended and in the map; answer once `flusher` reports this offset durable (nil:
        /// it already is).
        case appended(durableAt: Int64?)
        /// The append would block (it needs a new segment, or compaction or expiry holds the
        /// log): nothing was done; `commit` does it off the loop.
        case wouldBlock
    }

    /// `commit` without blocking or waiting, for an event loop: the append to the page cache
    /// now, the durability left to the caller (`flusher.whenDurable`).
    func commitNow(group: String, offsets: [TopicPartition: CommittedOffset], sync: Bool) throws -> ImmediateCommit {
        guard !offsets.isEmpty else { return .appended(durableAt: nil) }
        guard let info = try append(group: group, offsets: offsets, mayBlock: false) else { return .wouldBlock }
        return .appended(durableAt: durabilityTarget(after: info, sync: sync))
    }

    /// Appends a commit's batch and updates the map, under the lock. Nil when `mayBlock` is
    /// false and the append would need a new segment (nothing done).
    private func append(group: String, offsets: [TopicPartition: CommittedOffset], mayBlock: Bool) throws -> LogAppendInfo? {
        let now = clock()
        let log = partition.log
        let notifier = partition.notifier
        let body = { [maxMemoryBytes] (entries: inout OffsetTable) -> Result<LogAppendInfo?, Error> in
            do {
                let growth = entries.growth(group: group, offsets: offsets)
                if growth > 0 && entries.memoryBytes + growth > maxMemoryBytes {
                    return .failure(TidemarkError(
                        .invalidCommitOffsetSize,
                        "committed offsets take \(entries.memoryBytes) bytes of the \(maxMemoryBytes) the broker keeps "
                            + "(offsets.memory.max.bytes); delete unused groups"))
                }
                var builder = RecordBatchBuilder()
                for (tp, committed) in offsets.sorted(by: { ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition) }) {
                    builder.append(
                        timestamp: now, key: Self.encodeKey(Key(group: group, topicPartition: tp)),
                        value: Self.encodeValue(committed))
                }
                let info: LogAppendInfo
                do {
                    // Built here, so well formed: not validated again (CRC included).
                    let (batch, header) = try builder.buildWithHeader()
                    info = try log.append(batch, applyingFlushPolicy: false, mayBlock: mayBlock, validated: [header])
                } catch let error as StorageError where error.code == .wouldBlock {
                    return .success(nil)
                } catch let error as StorageError where error.code == .batchTooLarge {
                    // As Kafka answers a commit too large for one batch of its offsets topic.
                    return .failure(TidemarkError(.invalidCommitOffsetSize, "the commit is too large for one batch: \(error.message)"))
                }
                for (tp, committed) in offsets { entries[Key(group: group, topicPartition: tp)] = committed }
                notifier.notify(newEnd: info.lastOffset + 1)  // a fetch long-polling the offsets topic
                return .success(info)
            } catch {
                return .failure(error)
            }
        }
        guard !mayBlock else { return try whileSlow { try state.withLock { body(&$0) }.get() } }
        // On a loop: a lock held by a commit of another loop is brief, one held by slow work is not.
        if let done = state.withLockIfAvailable({ body(&$0) }) { return try done.get() }
        if slowHolders.load(ordering: .acquiring) > 0 { return nil }
        return try state.withLock { body(&$0) }.get()
    }

    /// Appends a classic group's membership record. Not synced here (as Kafka, which relies on
    /// replication): the maintenance pass syncs the log within a second. A record a power loss
    /// takes makes the restart restore the membership before it: members that were in it and
    /// moved on are told their generation is stale and rejoin; those gone since expire with
    /// their sessions. A record over `maxMembershipRecordBytes` (members
    /// with very large metadata) is written without the members' subscriptions and
    /// assignments; one still over it is not written. Nor is one for which `current`, asked
    /// under the lock deletions write their tombstones under, says no.
    /// Returns whether it was written (false: `current` said no).
    @discardableResult
    func recordMembership(group: String, _ record: GroupMembershipRecord, if current: @escaping @Sendable () -> Bool = { true }) async throws
        -> Bool
    {
        var value = record.encodeValue()
        if value.count > Self.maxMembershipRecordBytes {
            var reduced = record
            for index in reduced.members.indices {
                reduced.members[index].subscription = []
                reduced.members[index].assignment = []
            }
            value = reduced.encodeValue()
            guard value.count <= Self.maxMembershipRecordBytes else {
                throw TidemarkError(.storage, "membership record of \(record.members.count) members over \(Self.maxMembershipRecordBytes) bytes")
            }
        }
        return try await recordMembership(
            group: group, [(GroupMembershipRecord.encodeKey(group: group), value)], isEmpty: record.members.isEmpty, if: current)
    }

    /// Appends a consumer-protocol group's records (`ConsumerGroupSnapshot`), as
    /// `recordMembership` does a classic group's. Past `maxMembershipRecordBytes` in all, its
    /// earlier records are tombstoned instead (and the error thrown, to be logged): the group
    /// then starts empty after a restart, as every such group did before, rather than come back
    /// as it was before, its members since fenced and those gone held as owners.
    @discardableResult
    func recordMembership(group: String, _ snapshot: ConsumerGroupSnapshot, if current: @escaping @Sendable () -> Bool = { true }) async throws
        -> Bool
    {
        let records = snapshot.records(group: group)
        let bytes = records.reduce(0) { $0 + $1.key.count + $1.value.count + 16 }
        guard bytes <= Self.maxMembershipRecordBytes else {
            // Said once, when the records there were are deleted.
            guard try await forgetMembership(group: group, if: current) else { return false }
            throw TidemarkError(.storage, "records of \(snapshot.members.count) members over \(Self.maxMembershipRecordBytes) bytes: earlier ones deleted")
        }
        return try await recordMembership(group: group, records, isEmpty: snapshot.members.isEmpty, if: current)
    }

    /// Tombstones a group's membership records (one too large to write: it starts empty after
    /// a restart rather than as it was before); false when it had none.
    func forgetMembership(group: String, if current: @escaping @Sendable () -> Bool = { true }) async throws -> Bool {
        try await recordMembership(group: group, [], isEmpty: true, if: current)
    }

    /// Appends a group's membership records in one batch, with tombstones for its earlier
    /// records these do not replace (members gone; a classic group's record once it is a
    /// consumer group, and the other way round), all or nothing. No records: tombstones only.
    @discardableResult
    private func recordMembership(
        group: String, _ records: [(key: [UInt8], value: [UInt8])], isEmpty: Bool, if current: @escaping @Sendable () -> Bool
    ) async throws -> Bool {
        let now = clock()
        return try await executor.run { [self] in
            try whileSlow {
                try state.withLock { _ -> Result<Bool, Error> in
                    // Checked under the lock a deletion's tombstone is written under.
                    guard current() else { return .success(false) }
                    return Result {
                        let written = Dictionary(records, uniquingKeysWith: { _, last in last })
                        let replaced = memberships.withLock { $0[group]?.records.keys.filter { written[$0] == nil } } ?? []
                        if records.isEmpty && replaced.isEmpty { return false }
                        var builder = RecordBatchBuilder()
                        for (key, value) in records { builder.append(timestamp: now, key: key, value: value) }
                        for key in replaced { builder.append(timestamp: now, key: key, value: nil) }
                        let info = try partition.log.append(try builder.build(), applyingFlushPolicy: false)
                        partition.notifier.notify(newEnd: info.lastOffset + 1)
                        memberships.withLock {
                            $0[group] = written.isEmpty ? nil : Membership(records: written, timestampMs: now, emptySinceMs: isEmpty ? now : nil)
                        }
                        return true
                    }
                }.get()
            }
        }
    }

    /// The largest membership record written whole, and the most a consumer-protocol group's
    /// records take together (1 MiB; the log takes batches of 16 MiB).
    static let maxMembershipRecordBytes = 1 << 20

    /// Runs `body`, which may hold `state` while it waits for the disk, counted in `slowHolders`.
    func whileSlow<T>(_ body: () throws -> T) rethrows -> T {
        slowHolders.add(1, ordering: .releasing)
        defer { slowHolders.subtract(1, ordering: .releasing) }
        return try body()
    }

    /// The committed offsets of `group` (all its partitions, or those asked for).
    /// The lookups happen after the lock, in the group's map as it was (a copy on write, if a
    /// commit changes it meanwhile): an OffsetFetch may list millions of partitions, and
    /// commits wait for nothing of it.
    func fetch(group: String, partitions: [TopicPartition]?) -> [TopicPartition: CommittedOffset] {
        let offsets = state.withLock { $0.groups[group] } ?? [:]
        guard let partitions else { return offsets }
        var result: [TopicPartition: CommittedOffset] = [:]
        for tp in partitions { if let found = offsets[tp] { result[tp] = found } }
        return result
    }

    /// Groups that have committed offsets.
    func groupsWithOffsets() -> Set<String> {
        state.withLock { Set($0.groups.keys) }
    }

    /// Whether `group` has committed offsets.
    func hasOffsets(group: String) -> Bool {
        state.withLock { $0.groups[group] != nil }
    }

    /// `hasOffsets`, waiting for the lock only while no one holds it for the disk (a commit of
    /// another thread: brief), and then a few milliseconds at most; nil when still held (a
    /// compaction holds it through its rewrite).
    func hasOffsetsWithoutWaitingLong(group: String) -> Bool? {
        for _ in 0..<5 {
            if let found = state.withLockIfAvailable({ $0.groups[group] != nil }) { return found }
            if slowHolders.load(ordering: .acquiring) == 0 { return state.withLock { $0.groups[group] != nil } }
            Thread.sleep(forTimeInterval: 0.001)
        }
        return nil
    }

    /// `hasOffsets`, or nil at once when the lock is held (a compaction holds it through its
    /// rewrite): for an event loop, which must not wait for the disk.
    func hasOffsetsIfAvailable(group: String) -> Bool? {
        state.withLockIfAvailable { $0.groups[group] != nil }
    }

    /// Deletes a group's committed offsets of `partitions` (OffsetDelete): tombstones, durable
    /// before this returns. Partitions without an offset are skipped.
    func delete(group: String, partitions: [TopicPartition]) async throws {
        let keys = partitions.map { Key(group: group, topicPartition: $0) }
        try await delete { entries in keys.filter { entries[$0] != nil } }
    }

    /// Deletes every group's committed offsets of `topic` (deleted, or created again under a
    /// name an interrupted delete left offsets for): a topic created later under the same
    /// name starts empty, and its consumers must not resume at the old topic's offsets.
    /// Only while `absent` holds (checked under the lock commits take: a topic of that name
    /// created meanwhile keeps its consumers' commits).
    func delete(topic: String, whileAbsent absent: @escaping @Sendable () -> Bool) async throws {
        try await delete(when: absent) { $0.keys { $0.topicPartition.topic == topic } }
    }

    /// Deletes everything kept for `group` (DeleteGroups): its committed offsets and its
    /// membership records, tombstones, synced. Returns whether there was anything.
    func delete(wholeGroup group: String) async throws -> Bool {
        let hadOffsets = hasOffsets(group: group)
        let hadMembership = try await delete(membershipOf: group) { $0.keys(ofGroups: [group]) }
        return hadMembership || hadOffsets
    }

    /// Tombstones for the entries `doomed` picks (and for a group's membership record, if it
    /// has one), in batches of 1,000, synced; then the maps. Returns whether the group had a
    /// membership record.
    @discardableResult
    private func delete(
        membershipOf group: String? = nil, when condition: (@Sendable () -> Bool)? = nil,
        _ doomed: @escaping @Sendable (OffsetTable) -> [Key]
    ) async throws -> Bool {
        let now = clock()
        return try await executor.run { [self] in
            let (info, recorded) = try whileSlow { try state.withLock { entries -> Result<(LogAppendInfo?, Bool), Error> in
                guard condition?() ?? true else { return .success((nil, false)) }
                let keys = doomed(entries)
                // Looked up under the lock membership records are appended under: one being
                // written as the deletion starts is in the map by now (and gets its tombstone).
                let recorded = group.flatMap { group in memberships.withLock { $0[group] != nil } ? group : nil }
                return Result { (try writeTombstones(keys, memberships: recorded.map { [$0] } ?? [], nowMs: now, &entries), recorded != nil) }
            }.get() }
            if let info { try partition.log.flush(upTo: info.lastOffset + 1) }
            return recorded
        }
    }

    /// Appends tombstones for `keys` and for these groups' membership records, in batches of
    /// 1,000, and removes each batch's entries from the maps once it is in the log (a later
    /// batch that fails leaves the maps as the log says). Under `state` (its map comes in
    /// `inout`). Returns the last batch's append, nil when there was nothing to write.
    func writeTombstones(_ keys: [Key], memberships groups: [String], nowMs now: Int64, _ entries: inout OffsetTable)
        throws -> LogAppendInfo?
    {
        let membershipKeys = memberships.withLock { records in groups.flatMap { records[$0].map { Array($0.records.keys) } ?? [] } }
        let records = keys.map { (Self.encodeKey($0), Optional($0)) } + membershipKeys.map { ($0, nil as Key?) }
        var info: LogAppendInfo?
        for chunk in stride(from: 0, to: records.count, by: 1000) {
            let batch = records[chunk..<min(chunk + 1000, records.count)]
            var builder = RecordBatchBuilder()
            for (key, _) in batch { builder.append(timestamp: now, key: key, value: nil) }
            info = try partition.log.append(try builder.build(), applyingFlushPolicy: false)
            partition.notifier.notify(newEnd: info!.lastOffset + 1)
            for case (_, let key?) in batch { entries[key] = nil }
        }
        if !groups.isEmpty { memberships.withLock { records in for group in groups { records.removeValue(forKey: group) } } }
        return info
    }

    /// Rewrites the live entries and drops the older log when the log has grown large.
    func compactIfNeeded() async throws {
        let log = partition.log
        // What a rewrite would keep: about 400 bytes per offset entry, and each membership
        // record's value; compaction pays only when the log is well past that.
        let live =
            state.withLock { Int64($0.count) * 400 }
            + memberships.withLock { Int64($0.values.reduce(0) { $0 + $1.records.values.reduce(64) { $0 + $1.count } }) }
        // Nor before the log is twice what the last rewrite left: entries with metadata (up
        // to 4 KiB each) are far over the estimate, and a log made of nothing but the last
        // rewrite was rewritten again at every maintenance pass, for as long as they lived.
        let rewritten = compactedBytes.load(ordering: .relaxed)
        guard log.sizeInBytes > max(compactionThresholdBytes, live * 2, rewritten * 2) else { return }
        try await executor.run { [self] in
            // Under the lock (commits wait): roll and append the live entries, so no commit can
            // land between the snapshot and the entries it would then be overwritten by. The
            // fdatasync comes after the lock; commits made meanwhile follow the snapshot.
            let start = try whileSlow { try state.withLock { entries -> Result<Int64, Error> in
                do {
                    try log.roll()
                    let start = log.logEndOffset
                    let now = clock()
                    var builder = RecordBatchBuilder()
                    for (group, offsets) in entries.groups {
                        for (tp, value) in offsets {
                            builder.append(
                                timestamp: now, key: Self.encodeKey(Key(group: group, topicPartition: tp)), value: Self.encodeValue(value))
                            // Batches of at most 2 MiB: entries of 32 KiB of metadata (the most
                            // offset.metadata.max.bytes allows) made 1,000 of them a batch of 32 MiB.
                            if builder.count == 1000 || builder.uncompressedSize >= 2 << 20 {
                                try log.append(try builder.build(), applyingFlushPolicy: false)
                                builder = RecordBatchBuilder()
                            }
                        }
                    }
                    for membership in memberships.withLock({ $0.values }) {
                        // A group's records in one batch (a consumer group's are read as a
                        // whole), with their own timestamp: when the group became empty
                        // survives compaction.
                        if builder.count > 0 && builder.uncompressedSize + membership.records.values.reduce(0) { $0 + $1.count } >= 2 << 20 {
                            try log.append(try builder.build(), applyingFlushPolicy: false)
                            builder = RecordBatchBuilder()
                        }
                        for (key, value) in membership.records { builder.append(timestamp: membership.timestampMs, key: key, value: value) }
                    }
                    if builder.count > 0 { try log.append(try builder.build(), applyingFlushPolicy: false) }
                    partition.notifier.notify(newEnd: log.logEndOffset)
                    return .success(start)
                } catch {
                    return .failure(error)
                }
            }.get() }
            try log.flush()
            // Everything from `start` on is durable: the older segments are no longer needed.
            try log.deleteSegments(below: start)
            compactedBytes.store(log.sizeInBytes, ordering: .relaxed)
        }
    }

    func close() async throws {
        try await executor.run { [partition] in
            try partition.log.close()
        }
    }

    // MARK: Record layouts

    static func encodeKey(_ key: Key) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeInteger(Int16(1))
        writer.writeShortString(key.group)
        writer.writeShortString(key.topicPartition.topic)
        writer.writeInteger(Int32(key.topicPartition.partition))
        return writer.bytes
    }

    static func encodeValue(_ value: CommittedOffset) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeInteger(Int16(3))
        writer.writeInteger(value.offset)
        writer.writeInteger(value.leaderEpoch)
        writer.writeShortString(value.metadata)
        writer.writeInteger(value.commitTimestampMs)
        return writer.bytes
    }

    static func decodeKey(_ bytes: [UInt8]?) -> Key? {
        ByteReader.decode(bytes) { (reader: inout ByteReader) throws(RecordBatchError) -> Key? in
            guard try reader.readInteger(as: Int16.self) == 1 else { return nil }
            let group = try reader.readShortString()
            let topic = try reader.readShortString()
            let partition: Int32 = try reader.readInteger()
            return Key(group: group, topicPartition: TopicPartition(topic, Int(partition)))
        }
    }

    static func decodeValue(_ bytes: [UInt8]) -> CommittedOffset? {
        ByteReader.decode(bytes) { (reader: inout ByteReader) throws(RecordBatchError) -> CommittedOffset? in
            guard try reader.readInteger(as: Int16.self) == 3 else { return nil }
            let offset: Int64 = try reader.readInteger()
            let leaderEpoch: Int32 = try reader.readInteger()
            let metadata = try reader.readShortString()
            let timestamp: Int64 = try reader.readInteger()
            return CommittedOffset(offset: offset, metadata: metadata, commitTimestampMs: timestamp, leaderEpoch: max(leaderEpoch, -1))
        }
    }
}

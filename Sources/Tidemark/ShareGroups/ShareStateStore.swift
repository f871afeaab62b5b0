import Foundation
import Synchronization
import TidemarkStorage

/// Share-partition state made durable: the internal log `__share_group_state` (one partition),
/// holding the newest snapshot of each (group, topic id, partition), rebuilt at open.
///
/// Record layouts (big-endian; strings are i16 length + UTF-8):
/// ```
/// key   v0: version i16 = 0, group string, topic_id 16 bytes, partition i32
/// value v1: version i16 = 1, start_offset i64, run_count i32,
///           runs [first_offset i64, last_offset i64, state i8, delivery_count i16],
///           dlq_producer_id i64, dlq_next_sequence i32, dlq_written i64, dlq_pending_count i32,
///           dlq_pending [offset i64, disposition i8, delivery_count i16, sequence i32]
/// ```
/// (v0, written before dead letters existed, ends after the runs and is still read.)
/// The runs cover `start_offset` up to the end offset without holes, in order; a record held
/// under a lock is written as available (locks do not survive a restart), with its delivery
/// count. A null value forgets the partition's state (group offsets deleted, topic deleted).
///
/// Writes go into the page cache under the caller's lock (so the log order is the state's
/// order); acknowledgements are answered only once the broker's `LogFlusher` has made their
/// snapshot durable (group commit: one fdatasync covers every acknowledgement waiting).
/// The log is compacted by rewriting the newest snapshots after a roll and deleting what
/// came before, so a restart reads about one snapshot per live partition.
///
/// Concurrency: `latest` (a Mutex) maps keys to their newest snapshot's bytes, for compaction;
/// appends happen under the `ShareCoordinator` lock.
final class ShareStateStore: Sendable {
    struct Key: Hashable, Sendable {
        var group: String
        var topicId: UUID
        var partition: Int
    }

    let partition: PartitionState
    let flusher: LogFlusher
    let executor: BlockingExecutor
    let clock: @Sendable () -> Int64
    let compactionThresholdBytes: Int64
    private let latest: Mutex<[Key: [UInt8]]>

    private init(
        partition: PartitionState, flusher: LogFlusher, executor: BlockingExecutor, clock: @escaping @Sendable () -> Int64,
        latest: [Key: [UInt8]], compactionThresholdBytes: Int64
    ) {
        self.partition = partition
        self.flusher = flusher
        self.executor = executor
        self.clock = clock
        self.latest = Mutex(latest)
        self.compactionThresholdBytes = compactionThresholdBytes
    }

    /// Opens the log and reads every snapshot: the newest per key wins.
    static func open(
        partition: PartitionState, flusher: LogFlusher, executor: BlockingExecutor, clock: @escaping @Sendable () -> Int64,
        compactionThresholdBytes: Int64
    ) async throws -> (ShareStateStore, [Key: SharePartition]) {
        let latest = try await executor.run { () throws -> [Key: [UInt8]] in
            var latest: [Key: [UInt8]] = [:]
            var offset = partition.log.logStartOffset
            while offset < partition.log.logEndOffset {
                let batches = try partition.log.readBatches(from: offset, maxBytes: 8 << 20)
                guard !batches.isEmpty else { break }
                for batch in batches {
                    for record in batch.records where batch.offset(of: record) >= offset {
                        guard let key = decodeKey(record.key) else { continue }
                        if let value = record.value { latest[key] = value } else { latest.removeValue(forKey: key) }
                    }
                    offset = batch.header.nextOffset
                }
            }
            return latest
        }
        var states: [Key: SharePartition] = [:]
        for (key, value) in latest { if let state = decodeValue(value) { states[key] = state } }
        let store = ShareStateStore(
            partition: partition, flusher: flusher, executor: executor, clock: clock, latest: latest,
            compactionThresholdBytes: compactionThresholdBytes)
        return (store, states)
    }

    /// Appends snapshots (nil: forget) in one batch; returns the offset everything below which
    /// must be durable before anyone is told. Called under the coordinator's lock.
    func write(_ snapshots: [(Key, SharePartition?)]) throws -> Int64? {
        guard !snapshots.isEmpty else { return nil }
        var builder = RecordBatchBuilder()
        var values: [(Key, [UInt8]?)] = []
        for (key, state) in snapshots {
            let value = state.map(Self.encodeValue)
            builder.append(timestamp: clock(), key: Self.encodeKey(key), value: value)
            values.append((key, value))
        }
        let info = try partition.log.append(try builder.build(), applyingFlushPolicy: false)
        latest.withLock { latest in
            for (key, value) in values { if let value { latest[key] = value } else { latest.removeValue(forKey: key) } }
        }
        return info.lastOffset + 1
    }

    /// Calls back once everything up to `offset` is on disk (or with the error).
    func whenDurable(_ offset: Int64, _ completion: @escaping @Sendable (StorageError?) -> Void) {
        flusher.whenDurable(partition.log, upTo: offset, completion)
    }

    /// Rewrites the newest snapshots and drops the older log once it has grown large.
    /// `lock` runs the rewrite under the coordinator's lock, so no snapshot lands between.
    func compactIfNeeded(underLock lock: @escaping @Sendable (() throws -> Void) throws -> Void) async throws {
        let log = partition.log
        let live = latest.withLock { $0.count }
        guard log.sizeInBytes > max(compactionThresholdBytes, Int64(live) * 2_000) else { return }
        try await executor.run { [self] in
            var start: Int64 = 0
            try lock {
                try log.roll()
                start = log.logEndOffset
                let snapshot = latest.withLock { $0 }
                var builder = RecordBatchBuilder()
                for (key, value) in snapshot {
                    builder.append(timestamp: clock(), key: Self.encodeKey(key), value: value)
                    if builder.count == 500 {
                        try log.append(try builder.build(), applyingFlushPolicy: false)
                        builder = RecordBatchBuilder()
                    }
                }
                if builder.count > 0 { try log.append(try builder.build(), applyingFlushPolicy: false) }
            }
            try log.flush()
            try log.deleteSegments(below: start)
        }
    }

    func close() async throws {
        try await executor.run { [partition] in try partition.log.close() }
    }

    // MARK: Record layouts

    static func encodeKey(_ key: Key) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeInteger(Int16(0))
        writer.writeShortString(key.group)
        let u = key.topicId.uuid
        writer.writeBytes([u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15])
        writer.writeInteger(Int32(key.partition))
        return writer.bytes
    }

    static func encodeValue(_ state: SharePartition) -> [UInt8] {
        // Runs of equal (state, delivery count), acquired written as available; the count is
        // filled in once they are written (one pass over the window, no array of runs).
        var writer = ByteWriter(capacity: 64 + 19 * min(state.entries.count, 64) + 15 * state.deadLetters.count)
        writer.writeInteger(Int16(1))
        writer.writeInteger(state.startOffset)
        let countAt = writer.bytes.count
        writer.writeInteger(Int32(0))
        var runCount: Int32 = 0
        var run: (first: Int64, last: Int64, state: Int8, count: Int16)? = nil
        func write(_ run: (first: Int64, last: Int64, state: Int8, count: Int16), _ writer: inout ByteWriter) {
            writer.writeInteger(run.first)
            writer.writeInteger(run.last)
            writer.writeInteger(run.state)
            writer.writeInteger(run.count)
        }
        var offset = state.startOffset
        for entry in state.entries {
            let kind = entry.state == .acquired ? ShareRecordState.available.rawValue : entry.state.rawValue
            if let current = run, current.state == kind, current.count == entry.deliveryCount {
                run!.last = offset
            } else {
                if let current = run {
                    write(current, &writer)
                    runCount += 1
                }
                run = (offset, offset, kind, entry.deliveryCount)
            }
            offset += 1
        }
        if let current = run {
            write(current, &writer)
            runCount += 1
        }
        writer.setInteger(runCount, at: countAt)
        writer.writeInteger(state.deadLetterProducerId)
        writer.writeInteger(state.deadLetterSequence)
        writer.writeInteger(state.deadLettered)
        writer.writeInteger(Int32(state.deadLetters.count))
        for letter in state.deadLetters {
            writer.writeInteger(letter.offset)
            writer.writeInteger(letter.disposition.rawValue)
            writer.writeInteger(letter.deliveryCount)
            writer.writeInteger(letter.sequence)
        }
        return writer.bytes
    }

    static func decodeKey(_ bytes: [UInt8]?) -> Key? {
        ByteReader.decode(bytes) { (reader: inout ByteReader) throws(RecordBatchError) -> Key? in
            guard try reader.readInteger(as: Int16.self) == 0 else { return nil }
            let group = try reader.readShortString()
            let b = Array(try reader.readSlice(count: 16))
            let id = UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
            let partition: Int32 = try reader.readInteger()
            return Key(group: group, topicId: id, partition: Int(partition))
        }
    }

    static func decodeValue(_ bytes: [UInt8]) -> SharePartition? {
        ByteReader.decode(bytes) { (reader: inout ByteReader) throws(RecordBatchError) -> SharePartition? in
            let version: Int16 = try reader.readInteger()
            guard version == 0 || version == 1 else { return nil }
            let start: Int64 = try reader.readInteger()
            let count: Int32 = try reader.readInteger()
            // Offsets are never negative, and the window's arithmetic must not overflow.
            guard start >= 0, start < Int64.max / 2, count >= 0, Int(count) <= bytes.count / 19 + 1 else { return nil }
            var entries: [SharePartition.Entry] = []
            var next = start
            for _ in 0..<count {
                let first: Int64 = try reader.readInteger()
                let last: Int64 = try reader.readInteger()
                let stateRaw: Int8 = try reader.readInteger()
                let deliveries: Int16 = try reader.readInteger()
                // Runs must continue the window without holes, and stay within bounds.
                guard first == next, last >= first, last - start < 1_000_000,
                    let state = ShareRecordState(rawValue: stateRaw)
                else { return nil }
                for _ in first...last { entries.append(SharePartition.Entry(state: state, deliveryCount: deliveries)) }
                next = last + 1
            }
            guard version == 1 else { return SharePartition(startOffset: start, entries: entries) }
            let producerId: Int64 = try reader.readInteger()
            let nextSequence: Int32 = try reader.readInteger()
            let written: Int64 = try reader.readInteger()
            let pending: Int32 = try reader.readInteger()
            guard pending >= 0, Int(pending) <= bytes.count / 15 + 1 else { return nil }
            var letters: [DeadLetter] = []
            for _ in 0..<pending {
                let offset: Int64 = try reader.readInteger()
                let dispositionRaw: Int8 = try reader.readInteger()
                let deliveries: Int16 = try reader.readInteger()
                let sequence: Int32 = try reader.readInteger()
                guard let disposition = DeadLetter.Disposition(rawValue: dispositionRaw) else { return nil }
                letters.append(DeadLetter(offset: offset, disposition: disposition, deliveryCount: deliveries, sequence: sequence))
            }
            return SharePartition(
                startOffset: start, entries: entries, deadLetters: letters, deadLetterSequence: nextSequence,
                deadLetterProducerId: producerId, deadLettered: written)
        }
    }
}

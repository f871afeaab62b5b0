import Foundation
import Synchronization
import TidemarkStorage

/// Share-partition state made durable: the internal log `__share_group_state` (one partition),
/// holding snapshots of each (group, topic id, partition) and the deltas written after them,
/// replayed at open.
///
/// Record layouts (big-endian; strings are i16 length + UTF-8):
/// ```
/// key   v0: version i16 = 0, group string, topic_id 16 bytes, partition i32
/// value v1 (snapshot): version i16 = 1, start_offset i64, run_count i32,
///           runs [first_offset i64, last_offset i64, state i8, delivery_count i16],
///           dlq_producer_id i64, dlq_next_sequence i32, dlq_written i64, dlq_pending_count i32,
///           dlq_pending [offset i64, disposition i8, delivery_count i16, sequence i32]
/// value v2 (delta): version i16 = 2, start_offset i64, end_offset i64, run_count i32,
///           runs (as v1), then the dlq fields as v1
/// value v3 (delta, dead letters waiting and unchanged): as v2 without the dlq fields
/// ```
/// (v0, written before dead letters existed, is a snapshot that ends after the runs; still read.)
/// A snapshot's runs cover `start_offset` up to the end offset without holes, in order; a
/// record held under a lock is written as available (locks do not survive a restart), with
/// its delivery count. A delta applies to the state before it: the window becomes
/// `start_offset..<end_offset` (records entering it are available and never delivered), its
/// runs give the records whose state changed since the last write (in order, within the
/// window), and its dead-letter fields replace the old ones (a v3 delta keeps them: written
/// when letters wait and did not change since the slot's last record, so that dead letters
/// waiting for a topic that cannot take them, up to 10,000 of 15 bytes, are not written again
/// with every acknowledgement; versions before it cannot read v3). A null value forgets the
/// partition's state (group offsets deleted, topic deleted).
///
/// Why deltas: a snapshot is as long as the window, and a window can keep 100,000 entries
/// (delayed jobs wait in it, every other record finished around them). Finished records
/// cut from a window (`ShareWindow`) are written as runs and read back cut: a window millions
/// of records long behind one that holds its start is a snapshot of a few runs. Written whole at every
/// acknowledgement, that was quadratic: 4,000 acknowledgements beside 4,000 delayed jobs wrote
/// 159 MB. A slot writes a delta while the deltas since its last snapshot are smaller than
/// the largest of that snapshot, 1 KiB and a byte per entry its window keeps (a snapshot walks
/// every one), then a snapshot again (`ShareCoordinator.Slot.writesSnapshot`), so the bytes per write stay
/// about the size of what changed.
///
/// Writes go into the page cache under the caller's lock (so the log order is the state's
/// order); acknowledgements are answered only once the broker's `LogFlusher` has made their
/// record durable where their topic asks it (group commit: one fdatasync covers every
/// acknowledgement waiting). The log is compacted by writing a snapshot of every live
/// partition after a roll (under the coordinator's lock) and deleting what came before, so a
/// restart reads about one snapshot per live partition.
///
/// Concurrency: no state of its own besides the log (appends happen under the
/// `ShareCoordinator` lock).
final class ShareStateStore: Sendable {
    /// Offsets a record may hold (start and end offsets below it): larger ones are damage, and no
    /// log reaches them.
    static let maxOffset = Int64.max / 2

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

    private init(
        partition: PartitionState, flusher: LogFlusher, executor: BlockingExecutor, clock: @escaping @Sendable () -> Int64,
        compactionThresholdBytes: Int64
    ) {
        self.partition = partition
        self.flusher = flusher
        self.executor = executor
        self.clock = clock
        self.compactionThresholdBytes = compactionThresholdBytes
    }

    /// Opens the log and replays it: each snapshot replaces its key's state, each delta
    /// applies to it, a null forgets it. A record that cannot be read or applied (a delta
    /// with no snapshot before it) leaves the state as it was and is counted in `unreadable`
    /// (the caller logs it: none is ever written so).
    static func open(
        partition: PartitionState, flusher: LogFlusher, executor: BlockingExecutor, clock: @escaping @Sendable () -> Int64,
        compactionThresholdBytes: Int64
    ) async throws -> (store: ShareStateStore, states: [Key: SharePartition], unreadable: Int) {
        let (states, unreadable) = try await executor.run { () throws -> ([Key: SharePartition], Int) in
            var states: [Key: SharePartition] = [:]
            var unreadable = 0
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
                        guard let key = decodeKey(record.key) else { continue }
                        guard let value = record.value else {
                            states.removeValue(forKey: key)
                            continue
                        }
                        if let state = decode(value, onto: states[key]) { states[key] = state } else { unreadable += 1 }
                    }
                    offset = batch.header.nextOffset
                }
            }
            return (states, unreadable)
        }
        let store = ShareStateStore(
            partition: partition, flusher: flusher, executor: executor, clock: clock, compactionThresholdBytes: compactionThresholdBytes)
        return (store, states, unreadable)
    }

    /// Appends records (snapshots, deltas; nil: forget) in one batch; returns the offset
    /// everything below which must be durable before anyone is told. Called under the
    /// coordinator's lock.
    func write(_ records: [(Key, [UInt8]?)]) throws -> Int64? {
        guard !records.isEmpty else { return nil }
        var builder = RecordBatchBuilder()
        let now = clock()
        for (key, value) in records { builder.append(timestamp: now, key: Self.encodeKey(key), value: value) }
        // Built here, so well formed: not validated again (CRC included).
        let (batch, header) = try builder.buildWithHeader()
        let info = try partition.log.append(batch, applyingFlushPolicy: false, validated: [header])
        partition.notifier.notify(newEnd: info.lastOffset + 1)  // a fetch long-polling the topic
        return info.lastOffset + 1
    }

    /// Calls back once everything up to `offset` is on disk (or with the error).
    func whenDurable(_ offset: Int64, _ completion: @escaping @Sendable (StorageError?) -> Void) {
        flusher.whenDurable(partition.log, upTo: offset, completion)
    }

    /// Rewrites every live partition's state as a snapshot and drops the older log, once it
    /// has grown large. `underLock` runs under the coordinator's lock and hands the snapshots
    /// (taken under it) to the rewrite, so no write lands between them and the roll.
    func compactIfNeeded(
        live: Int, underLock: @escaping @Sendable (_ rewrite: ([(Key, [UInt8])]) throws -> Void) throws -> Void
    ) async throws {
        let log = partition.log
        guard log.sizeInBytes > max(compactionThresholdBytes, Int64(live) * 2_000) else { return }
        try await executor.run { [self] in
            var start: Int64 = 0
            try underLock { snapshots in
                try log.roll()
                start = log.logEndOffset
                var builder = RecordBatchBuilder()
                for (key, value) in snapshots {
                    builder.append(timestamp: clock(), key: Self.encodeKey(key), value: value)
                    if builder.count == 500 {
                        try log.append(try builder.build(), applyingFlushPolicy: false)
                        builder = RecordBatchBuilder()
                    }
                }
                if builder.count > 0 { try log.append(try builder.build(), applyingFlushPolicy: false) }
                partition.notifier.notify(newEnd: log.logEndOffset)
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

    /// A snapshot (v1): the whole window.
    static func encodeValue(_ state: SharePartition) -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + 19 * min(state.entries.count, 64) + 15 * state.deadLetters.count)
        writer.writeInteger(Int16(1))
        writer.writeInteger(state.startOffset)
        writeRuns(state, from: state.startOffset, through: state.endOffset - 1, &writer)
        writeDeadLetters(state, &writer)
        return writer.bytes
    }

    /// A delta (v2, or v3 when the dead letters did not change): the window's bounds and the
    /// records changed since the last write.
    static func encodeDelta(_ state: SharePartition) -> [UInt8] {
        let from = max(state.dirtyFrom, state.startOffset)
        let through = min(state.dirtyTo, state.endOffset - 1)
        // (With none waiting, v2: 24 bytes, and a log older versions read.)
        let letters = state.deadLettersChanged || state.deadLetters.isEmpty
        var writer = ByteWriter(capacity: 64 + 19 * (from <= through ? Int(min(through - from + 1, 64)) : 0) + (letters ? 15 * state.deadLetters.count : 0))
        writer.writeInteger(Int16(letters ? 2 : 3))
        writer.writeInteger(state.startOffset)
        writer.writeInteger(state.endOffset)
        writeRuns(state, from: from, through: through, &writer)
        if letters { writeDeadLetters(state, &writer) }
        return writer.bytes
    }

    /// Runs of equal (state, delivery count) over `from...through` (inside the window; none
    /// when empty), acquired written as available with the count before its delivery (locks
    /// do not survive the broker, and a delivery the broker's end cuts is not counted, as
    /// after a clean stop's `releaseAll(uncounted:)` and in Kafka), except a delivery to a
    /// worker in the process (`Entry.cutCounts`: a job that ends the process comes back
    /// counted, and reaches the delivery limit instead of ending it at every start): the
    /// count, then the runs. One pass, the count filled in after.
    private static func writeRuns(_ state: SharePartition, from: Int64, through: Int64, _ writer: inout ByteWriter) {
        let countAt = writer.bytes.count
        writer.writeInteger(Int32(0))
        guard from <= through else { return }
        var runCount: Int32 = 0
        var run: (first: Int64, last: Int64, state: Int8, count: Int16)? = nil
        func write(_ run: (first: Int64, last: Int64, state: Int8, count: Int16), _ writer: inout ByteWriter) {
            writer.writeInteger(run.first)
            writer.writeInteger(run.last)
            writer.writeInteger(run.state)
            writer.writeInteger(run.count)
        }
        let base = state.startOffset
        // Stretch by stretch: cut records (acknowledged, behind an unfinished one) come as one.
        state.entries.forEachStretch(from: Int(from - base), through: Int(through - base)) { first, last, entry in
            let kind = entry.state == .acquired ? ShareRecordState.available.rawValue : entry.state.rawValue
            let count = entry.state == .acquired && !entry.cutCounts ? max(0, entry.deliveryCount - 1) : entry.deliveryCount
            if let current = run, current.state == kind, current.count == count {
                run!.last = base + Int64(last)
            } else {
                if let current = run {
                    write(current, &writer)
                    runCount += 1
                }
                run = (base + Int64(first), base + Int64(last), kind, count)
            }
        }
        if let current = run {
            write(current, &writer)
            runCount += 1
        }
        writer.setInteger(runCount, at: countAt)
    }

    private static func writeDeadLetters(_ state: SharePartition, _ writer: inout ByteWriter) {
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

    /// A value read back: a snapshot (v0, v1) whole, a delta (v2, v3) applied to `existing`.
    /// nil when it cannot be read or does not apply (a delta with nothing before it).
    static func decode(_ bytes: [UInt8], onto existing: SharePartition?) -> SharePartition? {
        guard bytes.count >= 2, bytes[0] == 0, bytes[1] == 2 || bytes[1] == 3 else { return decodeValue(bytes) }
        let withLetters = bytes[1] == 2
        guard var state = existing else { return nil }
        let applied = ByteReader.decode(bytes) { (reader: inout ByteReader) throws(RecordBatchError) -> Bool? in
            _ = try reader.readInteger(as: Int16.self)
            let start: Int64 = try reader.readInteger()
            let end: Int64 = try reader.readInteger()
            let count: Int32 = try reader.readInteger()
            guard start >= 0, start < Self.maxOffset, end >= start, count >= 0, Int(count) <= bytes.count / 19 + 1 else { return nil }
            var runs: [SharePartition.PersistedRun] = []
            runs.reserveCapacity(Int(count))
            var next = start
            for _ in 0..<count {
                // In order, inside the window (`applyDelta` checks the bounds again).
                guard let run = try readRun(&reader), run.first >= next, run.last >= run.first, run.last < end else { return nil }
                runs.append(run)
                next = run.last + 1
            }
            let letters = withLetters ? try readDeadLetters(&reader, size: bytes.count) : nil
            return state.applyDelta(start: start, end: end, runs: runs, deadLetters: letters)
        }
        return applied == true ? state : nil
    }

    /// One run as both layouts write it (an acquired state, never written, is read as available);
    /// nil when its state is not one.
    private static func readRun(_ reader: inout ByteReader) throws(RecordBatchError) -> SharePartition.PersistedRun? {
        let first: Int64 = try reader.readInteger()
        let last: Int64 = try reader.readInteger()
        let stateRaw: Int8 = try reader.readInteger()
        let deliveries: Int16 = try reader.readInteger()
        guard let state = ShareRecordState(rawValue: stateRaw) else { return nil }
        return .init(first: first, last: last, state: state == .acquired ? .available : state, count: deliveries)
    }

    private static func readDeadLetters(_ reader: inout ByteReader, size: Int) throws(RecordBatchError)
        -> (letters: [DeadLetter], sequence: Int32, producerId: Int64, written: Int64)
    {
        let producerId: Int64 = try reader.readInteger()
        let nextSequence: Int32 = try reader.readInteger()
        let written: Int64 = try reader.readInteger()
        let pending: Int32 = try reader.readInteger()
        // A count, only ever added to: a negative one (or one that leaves no room to add) is damage.
        guard written >= 0, written < Self.maxOffset else { throw .truncated(needed: 0, available: 0) }
        guard pending >= 0, Int(pending) <= size / 15 + 1 else { throw .truncated(needed: 15 * Int(pending), available: size) }
        var letters: [DeadLetter] = []
        for _ in 0..<pending {
            let offset: Int64 = try reader.readInteger()
            let dispositionRaw: Int8 = try reader.readInteger()
            let deliveries: Int16 = try reader.readInteger()
            let sequence: Int32 = try reader.readInteger()
            guard let disposition = DeadLetter.Disposition(rawValue: dispositionRaw) else { throw .truncated(needed: 0, available: 0) }
            letters.append(DeadLetter(offset: offset, disposition: disposition, deliveryCount: deliveries, sequence: sequence))
        }
        return (letters, nextSequence, producerId, written)
    }

    static func decodeValue(_ bytes: [UInt8]) -> SharePartition? {
        ByteReader.decode(bytes) { (reader: inout ByteReader) throws(RecordBatchError) -> SharePartition? in
            let version: Int16 = try reader.readInteger()
            guard version == 0 || version == 1 else { return nil }
            let start: Int64 = try reader.readInteger()
            let count: Int32 = try reader.readInteger()
            // Offsets are never negative, and the window's arithmetic must not overflow.
            guard start >= 0, start < Self.maxOffset, count >= 0, Int(count) <= bytes.count / 19 + 1 else { return nil }
            var window = ShareWindow()
            var unfinished = 0
            var next = start
            for _ in 0..<count {
                // Runs must continue the window without holes, and stay within bounds: long
                // finished runs are cut (any length below `maxOffset`; short ones too once
                // 1,000,000 entries are kept), unfinished records are kept entries, at most
                // 1,000,000 (a damaged record must not take all memory).
                guard let run = try readRun(&reader), run.first == next, run.last >= run.first, run.last < Self.maxOffset else { return nil }
                let length = Int(run.last - run.first + 1)
                let finished = run.state.isFinished
                if finished && (length > 64 || window.keptCount >= 1_000_000) {
                    window.appendCut(length)
                } else {
                    if !finished { unfinished += length }
                    guard unfinished <= 1_000_000 else { return nil }
                    // (Appends grow the storage geometrically; reserving per run would copy it per run.)
                    for _ in 0..<length { window.append(SharePartition.Entry(state: run.state, deliveryCount: run.count)) }
                }
                next = run.last + 1
            }
            guard version == 1 else { return SharePartition(startOffset: start, window: window) }
            let (letters, nextSequence, producerId, written) = try readDeadLetters(&reader, size: bytes.count)
            return SharePartition(
                startOffset: start, window: window, deadLetters: letters, deadLetterSequence: nextSequence,
                deadLetterProducerId: producerId, deadLettered: written)
        }
    }
}

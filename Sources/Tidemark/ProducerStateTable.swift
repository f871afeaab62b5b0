import TidemarkStorage

/// Idempotent-producer state of one partition: per producer id, its epoch and the last
/// five batches it appended (sequence range and offsets), as Kafka keeps them.
///
/// Value type, owned by its `PartitionState`'s append lock: the check, the append and
/// the record of a batch happen under that one lock, so two retries cannot both pass.
struct ProducerStateTable: Sendable, Equatable {
    static let retainedBatches = 5

    struct BatchMetadata: Sendable, Equatable {
        var firstSequence: Int32
        var lastSequence: Int32
        var firstOffset: Int64
        var lastOffset: Int64
        var timestamp: Int64
    }

    struct Entry: Sendable, Equatable {
        var epoch: Int16
        /// Oldest first, at most `retainedBatches`.
        var batches: [BatchMetadata]
        /// Broker clock (ms) of the last append, for expiry.
        var lastUpdateMs: Int64
    }

    /// What to do with an incoming batch.
    enum Verdict: Equatable {
        /// Append it.
        case append
        /// A retry of a batch already appended: answer with its original offsets.
        case duplicate(BatchMetadata)
    }

    private(set) var entries: [Int64: Entry] = [:]
    /// The highest producer id recorded here (-1: none); forgetting leaves it (it only says
    /// where to look: `Broker.initProducerId` skips ids that partitions remember).
    private(set) var highestProducerId: Int64 = -1

    /// Producers whose next batch may skip sequences, once: those remembered when the
    /// partition opened after a crash (`allowOneSkipAhead`). A power loss can take batches
    /// already acknowledged with the log's tail (a topic not synced on every append), and
    /// their producer then goes on past them: refused OUT_OF_ORDER_SEQUENCE_NUMBER, its
    /// first batch in flight made librdkafka's producer fail for good (the jobs were lost
    /// either way). Kafka refuses it; the Java client would bump its epoch and go on.
    /// With each, the lowest first sequence its batches have come with since (`Int32.max`:
    /// none): a skip goes only that far, so that when the batch that skips fails (a storage
    /// error between its check and its append) the one after it cannot take the skip and be
    /// stored ahead of it; refused, librdkafka bumps its epoch and sends both again.
    private(set) var maySkipAhead: [Int64: Int32] = [:]

    /// After a crash: every producer remembered may skip sequences once (`maySkipAhead`).
    mutating func allowOneSkipAhead() { maySkipAhead = Dictionary(uniqueKeysWithValues: entries.keys.map { ($0, Int32.max) }) }

    /// `check` for an append about to be made: also notes the sequences that producers that
    /// may skip ahead came with in batches to append (not retries answered as duplicates).
    mutating func checkForAppend(_ headers: [RecordBatchHeader]) throws(TidemarkError) -> [Verdict] {
        let verdicts = try check(headers)
        if !maySkipAhead.isEmpty {
            for (header, verdict) in zip(headers, verdicts) where verdict == .append {
                if let lowest = maySkipAhead[header.producerId] { maySkipAhead[header.producerId] = min(lowest, header.baseSequence) }
            }
        }
        return verdicts
    }

    /// Whether `first` lies ahead of `expected` (sequences run 0...Int32.max and wrap to 0) by
    /// less than half their space, and no further than `lowest` (`maySkipAhead`; nil: no skip).
    static func skipsAhead(_ first: Int32, _ expected: Int32, upTo lowest: Int32?) -> Bool {
        guard let lowest, first <= lowest else { return false }
        let distance = first >= expected ? Int64(first) - Int64(expected) : Int64(Int32.max) - Int64(expected) + Int64(first) + 1
        return distance > 0 && distance < 1 << 30
    }

    /// The same producers in the same state (`highestProducerId` is a hint, not state).
    static func == (a: ProducerStateTable, b: ProducerStateTable) -> Bool { a.entries == b.entries }

    /// Checks a batch from an idempotent producer (`producerId >= 0`) against the state.
    func check(_ header: RecordBatchHeader) throws(TidemarkError) -> Verdict {
        guard header.producerId >= 0 else { return .append }
        let first = header.baseSequence
        let last = header.lastSequence
        guard let entry = entries[header.producerId] else { return .append }  // unknown producer: accept
        if header.producerEpoch < entry.epoch {
            throw TidemarkError(
                .invalidProducerEpoch,
                "producer \(header.producerId) epoch \(header.producerEpoch) is older than \(entry.epoch)")
        }
        if header.producerEpoch > entry.epoch {
            guard first == 0 else {
                throw TidemarkError(
                    .outOfOrderSequence, "producer \(header.producerId) new epoch must start at sequence 0, got \(first)")
            }
            return .append
        }
        if let duplicate = entry.batches.first(where: { $0.firstSequence == first && $0.lastSequence == last }) {
            return .duplicate(duplicate)
        }
        let expected = entry.batches.last.map { $0.lastSequence == Int32.max ? 0 : $0.lastSequence + 1 } ?? first
        guard first == expected || Self.skipsAhead(first, expected, upTo: maySkipAhead[header.producerId]) else {
            throw TidemarkError(
                .outOfOrderSequence,
                "producer \(header.producerId) epoch \(header.producerEpoch): expected sequence \(expected), got \(first)")
        }
        return .append
    }

    /// Checks the batches of one append in order: each against the state the batches before
    /// it leave (a producer's second batch follows its first, not the state before the
    /// append: `[seq 1, seq 2]` was refused as out of order, `[seq 1, seq 1]` appended twice).
    /// A batch that repeats an earlier one of the same append is refused.
    func check(_ headers: [RecordBatchHeader]) throws(TidemarkError) -> [Verdict] {
        if headers.count == 1 { return [try check(headers[0])] }
        // The producers of this append, as its batches so far leave them.
        var ahead = ProducerStateTable()
        var verdicts: [Verdict] = []
        verdicts.reserveCapacity(headers.count)
        for header in headers {
            let id = header.producerId
            guard id >= 0 else {
                verdicts.append(.append)
                continue
            }
            let verdict: Verdict
            if ahead.entries[id] != nil {
                verdict = try ahead.check(header)
                if case .duplicate = verdict {
                    throw TidemarkError(
                        .outOfOrderSequence,
                        "an append repeats one of its own batches (producer \(id), sequence \(header.baseSequence))")
                }
            } else {
                verdict = try check(header)
            }
            verdicts.append(verdict)
            if case .append = verdict {
                if ahead.entries[id] == nil, let entry = entries[id] { ahead.entries[id] = entry }
                ahead.record(header, nowMs: ahead.entries[id]?.lastUpdateMs ?? 0)  // offsets unknown yet: not kept
            }
        }
        return verdicts
    }

    /// Records an appended batch (`header.baseOffset` is the assigned offset).
    mutating func record(_ header: RecordBatchHeader, nowMs: Int64) {
        guard header.producerId >= 0 else { return }
        let metadata = BatchMetadata(
            firstSequence: header.baseSequence, lastSequence: header.lastSequence, firstOffset: header.baseOffset,
            lastOffset: header.lastOffset, timestamp: header.maxTimestamp)
        var entry = entries[header.producerId] ?? Entry(epoch: header.producerEpoch, batches: [], lastUpdateMs: nowMs)
        if header.producerEpoch != entry.epoch {
            entry.epoch = header.producerEpoch
            entry.batches.removeAll()
        }
        entry.batches.append(metadata)
        if entry.batches.count > Self.retainedBatches { entry.batches.removeFirst(entry.batches.count - Self.retainedBatches) }
        entry.lastUpdateMs = nowMs
        entries[header.producerId] = entry
        highestProducerId = max(highestProducerId, header.producerId)
        if !maySkipAhead.isEmpty { maySkipAhead.removeValue(forKey: header.producerId) }
        if entries.count > evictAbove || (entries.count > Self.maxProducers && nowMs >= evictAtMs) { evictForRoom(nowMs: nowMs) }
    }

    /// Producers remembered per partition. Past it the least recently active are forgotten
    /// (as expiry would forget them), down to nine tenths of it, but only those idle for
    /// `evictionGraceMs`; past `hardMaxProducers`, any. A client minting producer ids cannot
    /// grow a partition's table without bound, and a forgotten producer that returns is
    /// accepted as a new one (only its retries of the last batches before could then be
    /// duplicated: the grace keeps that from a producer whose retry may still come).
    static let maxProducers = 10_000
    static let hardMaxProducers = 4 * maxProducers
    /// Longer than clients go on retrying a batch (librdkafka's `message.timeout.ms` and
    /// the Java client's `delivery.timeout.ms`: 300 s and 120 s by default).
    static let evictionGraceMs: Int64 = 300_000

    /// Count eviction looks again past this many producers: `maxProducers`, or a tenth of it
    /// above what the grace kept (each look sorts the table), at most `hardMaxProducers`.
    private var evictAbove = maxProducers
    /// And when the oldest producer the grace kept becomes idle past it (`Int64.max`: none).
    private var evictAtMs = Int64.max

    private mutating func evictForRoom(nowMs: Int64) {
        let byAge = entries.sorted { $0.value.lastUpdateMs < $1.value.lastUpdateMs }
        // Wrapping: a time read back from a snapshot cannot trap.
        let idle = byAge.prefix { nowMs &- $0.value.lastUpdateMs >= Self.evictionGraceMs }.count
        let tenth = Self.maxProducers / 10
        let count = max(0, min(entries.count - (Self.maxProducers - tenth), idle), entries.count - (Self.hardMaxProducers - tenth))
        for (id, _) in byAge.prefix(count) { entries.removeValue(forKey: id) }
        evictAbove = min(Self.hardMaxProducers, max(Self.maxProducers, entries.count + tenth))
        evictAtMs = .max
        if entries.count > Self.maxProducers {
            // When another tenth of those kept has passed the grace (not each in turn: a look
            // sorts the table, and producers made at a steady rate pass it one by one).
            let (at, overflow) = byAge[min(count + tenth, byAge.count - 1)].value.lastUpdateMs.addingReportingOverflow(Self.evictionGraceMs)
            evictAtMs = overflow ? .max : at
        }
    }

    /// Forgets the least recently active producers past `limit` (the broker-wide bound's share
    /// of this partition, `Broker.boundProducerStates`); returns how many.
    @discardableResult
    mutating func evict(downTo limit: Int) -> Int {
        guard entries.count > limit else { return 0 }
        let doomed = entries.sorted { $0.value.lastUpdateMs < $1.value.lastUpdateMs }.prefix(entries.count - max(0, limit))
        for (id, _) in doomed { entries.removeValue(forKey: id) }
        return doomed.count
    }

    /// Forgets producers idle longer than `expirationMs`; returns how many.
    @discardableResult
    mutating func expire(nowMs: Int64, expirationMs: Int64) -> Int {
        // Wrapping: a time read back from a snapshot cannot trap the maintenance pass.
        func expired(_ entry: Entry) -> Bool { nowMs &- entry.lastUpdateMs >= expirationMs }
        // Looked for first: every partition's table, every second, was rebuilt.
        guard entries.values.contains(where: expired) else { return 0 }
        let before = entries.count
        entries = entries.filter { !expired($0.value) }
        return before - entries.count
    }

    /// Drops batches at or after `offset` (after a log truncation).
    mutating func truncate(to offset: Int64) {
        for (id, var entry) in entries {
            entry.batches.removeAll { $0.lastOffset >= offset }
            entries[id] = entry.batches.isEmpty ? nil : entry
        }
    }

    var producerCount: Int { entries.count }
}

extension ProducerStateTable {
    /// Snapshot file layout (`producer-state.snapshot` in the partition directory), big-endian:
    /// ```
    /// magic          4 bytes  "TMPS"
    /// version        i16      1
    /// logOffset      i64      the table reflects every batch below this offset
    /// producerCount  i32
    /// producers      producerCount × (
    ///                  producerId i64, epoch i16, lastUpdateMs i64, batchCount i8,
    ///                  batchCount × (firstSequence i32, lastSequence i32,
    ///                                firstOffset i64, lastOffset i64, timestamp i64))
    /// crc            u32      CRC-32C of everything before it
    /// ```
    static let snapshotMagic: [UInt8] = Array("TMPS".utf8)

    func snapshot(logOffset: Int64) -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + entries.count * 200)
        writer.writeBytes(Self.snapshotMagic)
        writer.writeInteger(Int16(1))
        writer.writeInteger(logOffset)
        writer.writeInteger(Int32(entries.count))
        for (id, entry) in entries.sorted(by: { $0.key < $1.key }) {
            writer.writeInteger(id)
            writer.writeInteger(entry.epoch)
            writer.writeInteger(entry.lastUpdateMs)
            writer.writeInteger(Int8(entry.batches.count))
            for batch in entry.batches {
                writer.writeInteger(batch.firstSequence)
                writer.writeInteger(batch.lastSequence)
                writer.writeInteger(batch.firstOffset)
                writer.writeInteger(batch.lastOffset)
                writer.writeInteger(batch.timestamp)
            }
        }
        writer.writeInteger(CRC32C.checksum(writer.bytes))
        return writer.bytes
    }

    /// Parses a snapshot; nil when it is damaged in any way (the caller then replays the log).
    static func load(snapshot bytes: [UInt8]) -> (table: ProducerStateTable, logOffset: Int64)? {
        guard bytes.count >= 22 else { return nil }
        let body = bytes[..<(bytes.count - 4)]
        let stored = bytes.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: bytes.count - 4, as: UInt32.self)) }
        guard CRC32C.checksum(body) == stored, Array(bytes[0..<4]) == snapshotMagic else { return nil }
        return bytes.withUnsafeBytes { raw -> (ProducerStateTable, Int64)? in
            var reader = ByteReader(UnsafeRawBufferPointer(rebasing: raw[4..<(raw.count - 4)]))
            do throws(RecordBatchError) {
                guard try reader.readInteger(as: Int16.self) == 1 else { return nil }
                let logOffset: Int64 = try reader.readInteger()
                let count: Int32 = try reader.readInteger()
                guard count >= 0 else { return nil }
                var table = ProducerStateTable()
                for _ in 0..<count {
                    let id: Int64 = try reader.readInteger()
                    let epoch: Int16 = try reader.readInteger()
                    let lastUpdate: Int64 = try reader.readInteger()
                    let batchCount: Int8 = try reader.readInteger()
                    guard batchCount >= 0 && Int(batchCount) <= retainedBatches else { return nil }
                    var batches: [BatchMetadata] = []
                    for _ in 0..<batchCount {
                        batches.append(
                            BatchMetadata(
                                firstSequence: try reader.readInteger(), lastSequence: try reader.readInteger(),
                                firstOffset: try reader.readInteger(), lastOffset: try reader.readInteger(),
                                timestamp: try reader.readInteger()))
                    }
                    table.entries[id] = Entry(epoch: epoch, batches: batches, lastUpdateMs: lastUpdate)
                    table.highestProducerId = max(table.highestProducerId, id)
                }
                guard reader.readableBytes == 0 else { return nil }
                return (table, logOffset)
            } catch {
                return nil
            }
        }
    }
}

import Synchronization
import TidemarkStorage

/// One record as a consumer sees it.
public struct ConsumerRecord: Sendable, Equatable {
    public var topic: String
    public var partition: Int
    public var offset: Int64
    public var timestamp: Int64
    public var timestampType: TimestampType
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [RecordHeader]

    public init(
        topic: String, partition: Int, offset: Int64, timestamp: Int64, timestampType: TimestampType, key: [UInt8]?,
        value: [UInt8]?, headers: [RecordHeader]
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.timestampType = timestampType
        self.key = key
        self.value = value
        self.headers = headers
    }
}

extension ConsumerRecord {
    /// One of a decoded stored batch's records.
    init(_ record: Record, of batch: RecordBatch, topic: String, partition: Int) {
        self.init(
            topic: topic, partition: partition, offset: batch.offset(of: record), timestamp: batch.timestamp(of: record),
            timestampType: batch.header.timestampType, key: record.key, value: record.value, headers: record.headers)
    }
}

/// What a consumer does when its position is no longer in the log (retention passed it).
public enum OffsetResetPolicy: Sendable { case earliest, latest }

extension Broker {
    /// Decodes the records at or after `from` in a fetched slice.
    func records(in slice: LogSlice, topic: String, partition: Int, from: Int64, limit: Int, budget: DecodeBudget? = nil) throws
        -> [ConsumerRecord]
    {
        try records(in: try slice.readBytes(), topic: topic, partition: partition, from: from, limit: limit, budget: budget)
    }

    /// How much a decode may hold, for readers that show records rather than deliver them
    /// (the console): a batch decompressing past `maxBatchBytes` is refused, and decoding stops
    /// once the records kept hold `maxBytes` (at least one record is always kept).
    ///
    /// A record counts what it holds in memory, not only its payload: its keys, values and
    /// header bytes, plus the record and each header as decoded. An empty header with a null
    /// value is 2 bytes on the wire and 24 in memory; counting payload alone, a record of
    /// millions of them cost nothing, and a page of 20 held gigabytes.
    struct DecodeBudget: Sendable {
        var maxBatchBytes: Int
        var maxBytes: Int

        static func cost(of record: Record) -> Int { MemoryLayout<ConsumerRecord>.stride + record.heapBytes }
    }

    /// Decodes the records at or after `from` in whole stored batches.
    func records(in bytes: [UInt8], topic: String, partition: Int, from: Int64, limit: Int, budget: DecodeBudget? = nil) throws
        -> [ConsumerRecord]
    {
        let (out, damage) = recordsBeforeDamage(in: bytes, topic: topic, partition: partition, from: from, limit: limit, budget: budget)
        if let damage { throw damage }
        return out
    }

    /// As `records(in:...)`, but a stored batch that does not decode ends the list instead of
    /// failing it: the records of the batches before it, and the error (nil when none).
    /// Only records at or before `through` are built, and no batch after the one that holds it
    /// is decoded (a share worker taking one job out of a batch of thousands decodes that one,
    /// not the rest of the batch).
    func recordsBeforeDamage(
        in bytes: [UInt8], topic: String, partition: Int, from: Int64, limit: Int, through: Int64 = .max, budget: DecodeBudget? = nil
    ) -> (records: [ConsumerRecord], damage: TidemarkError?) {
        var out: [ConsumerRecord] = []
        var position = 0
        var kept = 0
        var damage: TidemarkError?
        bytes.withUnsafeBytes { raw in
            while position < raw.count && out.count < limit && kept < (budget?.maxBytes ?? .max) {
                let batch: RecordBatch
                do {
                    // Only the records that can go out are built (a batch may hold millions).
                    batch = try RecordBatch(
                        decoding: UnsafeRawBufferPointer(rebasing: raw[position...]), keeping: { $0 >= from },
                        limit: limit - out.count, through: through, maxDecompressedBytes: budget?.maxBatchBytes ?? RecordBatch.defaultMaxDecompressedBytes)
                } catch {
                    damage = TidemarkError(.storage, "stored batch in \(topic)-\(partition) does not decode: \(error)")
                    return
                }
                position += batch.header.totalSize
                // The batches after one that reaches `through` are not decoded.
                if batch.header.lastOffset >= through { position = raw.count }
                guard !batch.header.isControl else { continue }
                for record in batch.records where batch.offset(of: record) >= from {
                    if out.count == limit || (!out.isEmpty && kept >= (budget?.maxBytes ?? .max)) { break }
                    if batch.offset(of: record) > through { break }
                    if budget != nil { kept += DecodeBudget.cost(of: record) }
                    out.append(ConsumerRecord(record, of: batch, topic: topic, partition: partition))
                }
            }
        }
        return (out, damage)
    }

    /// Reads records of several partitions from their positions, in `order`'s turn; when none
    /// has any, waits up to `maxWaitMs` for an append to any of them. Positions are updated in
    /// `positions` (of the partitions in `order`); the caller moves `order` on after the last
    /// record's partition (`PollOrder.resume(after:)`).
    func pollRecords(
        _ positions: inout [TopicPartition: Int64], order: PollOrder, maxRecords: Int, maxWaitMs: Int64, maxBytesPerPartition: Int,
        reset: OffsetResetPolicy
    ) async throws -> [ConsumerRecord] {
        let deadline = ContinuousClock.now + .milliseconds(maxWaitMs)
        // Nothing asked, or nothing to read from (a member left without partitions, a group
        // whose topic does not exist yet): no loop. With no wait to make it returned at once
        // and looped for the whole wait, a core each standby member.
        guard maxRecords > 0 else { return [] }
        if order.partitions.isEmpty {
            if ContinuousClock.now < deadline, !isClosed { try await Task.sleep(until: deadline) }
            return []
        }
        while true {
            var out: [ConsumerRecord] = []
            // Damage a read met (a stored batch that fails its check): the records read before
            // it, of this partition and the others, go out, and a poll that gets none fails with
            // it (the next poll of a partition stopped there starts at it, and fails then).
            var damage: TidemarkError?
            let inTurn = Array(order.inPollOrder)
            let states = partitionStates(inTurn)
            for (index, tp) in inTurn.enumerated() where out.count < maxRecords {
                // A first read of 16 KiB (its first batch goes whole), then what the records still
                // wanted take, up to the partition's bytes (and one batch: a read's first goes
                // whole): a poll for one record reads the batch that holds it, not
                // `maxBytesPerPartition` of the log (1 MiB read and checked per job).
                var left = maxBytesPerPartition
                var chunk = 16 << 10
                // At its end: nothing to read (a poll over many partitions, most of them idle,
                // reads only those that have records).
                if let position = positions[tp], let state = states[index], position == state.log.visibleEndOffset { continue }
                while out.count < maxRecords && left > 0, let position = positions[tp] {
                    let fetched: FetchResult
                    do {
                        fetched = try await fetch(topic: tp.topic, partition: tp.partition, offset: position, maxBytes: min(chunk, left))
                    } catch let error as TidemarkError where error.code == .offsetOutOfRange {
                        let (start, end) = try offsets(topic: tp.topic, partition: tp.partition)
                        positions[tp] = reset == .earliest ? start : end
                        break
                    } catch let error as TidemarkError where error.code == .corruptMessage {
                        damage = damage ?? error
                        break
                    }
                    guard let slice = fetched.slice else { break }
                    let records = try records(
                        in: slice, topic: tp.topic, partition: tp.partition, from: position, limit: maxRecords - out.count)
                    out += records
                    guard let last = records.last else { break }
                    positions[tp] = last.offset + 1
                    left -= slice.length
                    if slice.reachesLogEnd || left <= 0 { break }
                    // The next read: what the records still wanted take at this read's size per record.
                    let perRecord = max(1, slice.length / records.count)
                    let wanted = maxRecords - out.count + 1
                    chunk = wanted >= left / perRecord ? left : max(16 << 10, perRecord * wanted)
                }
            }
            if out.isEmpty, let damage { throw damage }
            if !out.isEmpty || ContinuousClock.now >= deadline || isClosed { return out }
            // Nothing anywhere: wait for an append to any partition (or the deadline).
            // (A partition deleted since the pass: its notifier is closed, so the wait ends at
            // once; one whose topic was missing at the pass: no wait. The next pass's read says
            // why.)
            var watched: [(state: PartitionState, beyond: Int64)] = []
            watched.reserveCapacity(inTurn.count)
            for (index, tp) in inTurn.enumerated() {
                guard let position = positions[tp] else { continue }
                guard let state = states[index] else {
                    watched = []
                    break
                }
                watched.append((state, position))
            }
            await FirstAppend.wait(watched, until: deadline, timers: timers)
            try Task.checkCancellation()  // (cancelled: the wait returns at once)
        }
    }
}

/// An embedded consumer of partitions it chooses (no group): positions live in memory.
///
/// Concurrency: Sendable; `assigned` (a Mutex) owns the assignment: positions and poll order.
/// One `poll` at a time is expected (concurrent polls would each read from the same positions).
public final class Consumer: Sendable {
    public let broker: Broker
    public let resetPolicy: OffsetResetPolicy
    private struct Assigned: Sendable {
        var positions: [TopicPartition: Int64] = [:]
        var order = PollOrder()
    }
    private let assigned = Mutex(Assigned())

    public init(broker: Broker, resetPolicy: OffsetResetPolicy = .earliest) {
        self.broker = broker
        self.resetPolicy = resetPolicy
    }

    /// Starts reading `partition` of `topic` at `position`.
    public func assign(topic: String, partition: Int, from position: StartPosition) async throws {
        let (offset, _) = try await broker.resolveOffset(topic: topic, partition: partition, position)
        let tp = TopicPartition(topic, partition)
        assigned.withLock { a in
            if a.positions.updateValue(offset, forKey: tp) == nil { a.order.insert(tp) }
        }
    }

    public func unassign(topic: String, partition: Int) {
        let tp = TopicPartition(topic, partition)
        assigned.withLock { a in
            if a.positions.removeValue(forKey: tp) != nil { a.order.remove(tp) }
        }
    }

    /// The next offset to be read in a partition.
    public func position(topic: String, partition: Int) -> Int64? {
        assigned.withLock { $0.positions[TopicPartition(topic, partition)] }
    }

    /// Records from the assigned partitions, waiting up to `maxWaitMs` when there are none.
    /// Traced as a CLIENT `poll` span linked to each record's producer context.
    public func poll(maxRecords: Int = 500, maxWaitMs: Int64 = 500) async throws -> [ConsumerRecord] {
        let span = broker.pollSpan(topics: assigned.withLock { $0.order.topics }, group: nil)
        do {
            let records = try await pollUntraced(maxRecords: maxRecords, maxWaitMs: maxWaitMs)
            broker.finishPollSpan(span, records)
            return records
        } catch {
            span?.recordError(error)
            span?.end()
            throw error
        }
    }

    /// Runs `body` (the work a record asks for) in a CONSUMER `process {topic}` span, a child
    /// of the context its producer put in the headers: one trace from producer to worker.
    public func process<T>(_ record: ConsumerRecord, _ body: () async throws -> T) async throws -> T {
        try await broker.withProcessSpan(record, group: nil, body)
    }

    /// Records from the assigned partitions, waiting up to `maxWaitMs` when there are none.
    private func pollUntraced(maxRecords: Int = 500, maxWaitMs: Int64 = 500) async throws -> [ConsumerRecord] {
        let (before, order) = assigned.withLock { ($0.positions, $0.order) }
        var current = before
        let records = try await broker.pollRecords(
            &current, order: order, maxRecords: maxRecords, maxWaitMs: maxWaitMs, maxBytesPerPartition: 1 << 20, reset: resetPolicy)
        assigned.withLock { live in
            // (A partition assigned again, or unassigned, during the poll keeps what was set.)
            for (tp, offset) in current where offset != before[tp] && live.positions[tp] == before[tp] { live.positions[tp] = offset }
            if let last = records.last { live.order.resume(after: TopicPartition(last.topic, last.partition)) }
        }
        return records
    }
}

import Tracing
import Synchronization
import TidemarkStorage

public struct ProducerOptions: Sendable {
    /// Producer id, epoch and sequence numbers: a retried batch is never appended twice.
    public var idempotent = true
    /// How long a batch may wait for more records before it is appended (0: append as soon
    /// as the previous batch of the partition is done; records arriving meanwhile batch up).
    public var lingerMs: Int64 = 0
    /// A batch is closed when its records reach this many bytes.
    public var batchMaxBytes = 512 * 1024
    /// The codec of this producer's batches for a topic whose compression.type is `producer`
    /// (nil: none). A topic that names a codec has its batches built in that codec, as a Kafka
    /// broker would store them whatever the producer chose.
    public var compression: CompressionCodec? = nil
    /// Bytes of records sent but not yet appended (Kafka's buffer.memory). A send that would
    /// pass it waits for room, up to `maxBlockMs`, then fails.
    public var bufferMemoryBytes = 32 << 20
    /// How long a send may wait for buffer room (Kafka's max.block.ms).
    public var maxBlockMs: Int64 = 60_000
    public init() {}
}

/// Where a record went.
public struct RecordMetadata: Sendable, Equatable {
    public var topic: String
    public var partition: Int
    public var offset: Int64
    public var timestamp: Int64
}

/// The embedded producer: partitions records (Kafka's murmur2 for keys, sticky for null
/// keys), batches them per partition, and appends them with its producer id and sequence
/// numbers.
///
/// Concurrency: Sendable. `state` (a Mutex) owns the open batches, sequence numbers and
/// sticky choices; per partition at most one drain task appends at a time, in order, so
/// sequence numbers reach the log in order.
public final class Producer: Sendable {
    public let broker: Broker
    public let options: ProducerOptions
    /// (producer id, epoch), when idempotent.
    public let identity: (id: Int64, epoch: Int16)?

    private struct Pending: Sendable {
        var builder: RecordBatchBuilder
        var waiters: [(Completion, timestamp: Int64)] = []
        /// Buffer bytes its records hold (given back when the batch is done).
        var bufferedBytes = 0
        /// The earliest of its records' timestamps, -1 (none) aside: `appendOwn` judges it.
        var earliest = Int64.max
    }

    typealias Completion = @Sendable (Result<RecordMetadata, Error>) -> Void

    /// Mutated in place in `state` (`queues[tp, default:]`): a copy taken out and stored
    /// back would share the open batch's bytes, and the next record's append would copy
    /// them all (a send into a 512 KiB batch copied up to 512 KiB).
    private struct PartitionQueue: Sendable {
        var batches: [Pending] = []
        var draining = false
        /// The next batch's base sequence.
        var sequence: Int32 = 0
        /// Records sent and finished (appended or failed): a partition's batches finish in
        /// order, so a flush waits for each partition's count at its call.
        var sent = 0
        var finished = 0

        /// Adds a record to the open batch (a new one when it would not fit); true when no
        /// drain runs yet (the caller starts one; it counts as running from now).
        mutating func add(
            _ record: OutgoingRecord, timestamp: Int64, bytes: Int, codec: CompressionCodec, batchLimit: Int,
            completion: @escaping Completion
        ) -> Bool {
            if batches.isEmpty || batches[batches.count - 1].builder.uncompressedSize + bytes > batchLimit {
                // Sized for this record, growing as records join: an awaited send's batch of
                // one record does not take (and fault in) a 64 KiB buffer.
                batches.append(Pending(builder: RecordBatchBuilder(compression: codec, capacity: min(batchLimit, max(1024, bytes + 128)))))
            }
            let last = batches.count - 1
            batches[last].builder.append(timestamp: timestamp, key: record.key, value: record.value, headers: record.headers)
            batches[last].waiters.append((completion, timestamp))
            batches[last].bufferedBytes += bytes
            if timestamp != -1 { batches[last].earliest = min(batches[last].earliest, timestamp) }
            sent += 1
            defer { draining = true }
            return !draining
        }

        /// The oldest batch, taken out for its append; nil (and no drain running) when none is left.
        mutating func takeFirst() -> Pending? {
            guard !batches.isEmpty else {
                draining = false
                return nil
            }
            return batches.removeFirst()
        }
    }

    private struct State: Sendable {
        /// Everything kept per partition, in one entry (one lookup per step of a send).
        var queues: [TopicPartition: PartitionQueue] = [:]
        var sticky: [String: Int] = [:]
        /// xorshift64* state for picking sticky partitions: a system random number per
        /// record would be a getrandom syscall per awaited send (5% of its CPU, measured).
        var random = UInt64.random(in: 1...UInt64.max)
        var inFlight = 0
        var flushWaiters: [(targets: [TopicPartition: Int], continuation: CheckedContinuation<Void, Never>)] = []
        /// Buffer bytes held by records not yet appended, and the sends waiting for room.
        var bufferedBytes = 0
        var nextRoomWaiter = 0
        var roomWaiters: [RoomWaiter] = []
    }

    private let state = Mutex(State())

    /// A send waiting for buffer room, and the timer that fails it at `maxBlockMs` (cancelled
    /// when room comes first).
    private struct RoomWaiter: Sendable {
        var id: Int
        var bytes: Int
        var continuation: CheckedContinuation<Void, Error>
        var timer: Task<Void, Never>?
    }

    public init(broker: Broker, options: ProducerOptions = ProducerOptions()) async throws {
        self.broker = broker
        self.options = options
        if options.idempotent {
            let (id, epoch) = try await broker.initProducerId()
            self.identity = (id, epoch)
        } else {
            self.identity = nil
        }
    }

    /// One record to send with `send(_:)`.
    public struct OutgoingRecord: Sendable {
        public var topic: String
        public var key: [UInt8]?
        public var value: [UInt8]?
        public var headers: [RecordHeader]
        public var partition: Int?
        public var timestamp: Int64?
        public init(
            topic: String, key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader] = [], partition: Int? = nil,
            timestamp: Int64? = nil
        ) {
            self.topic = topic
            self.key = key
            self.value = value
            self.headers = headers
            self.partition = partition
            self.timestamp = timestamp
        }
    }

    /// Sends one record; returns once it is appended (and flushed as the topic's policy says).
    public func send(
        topic: String, key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader] = [], partition: Int? = nil,
        timestamp: Int64? = nil
    ) async throws -> RecordMetadata {
        guard broker.isTracing else {
            return try await sendUntraced(
                OutgoingRecord(topic: topic, key: key, value: value, headers: headers, partition: partition, timestamp: timestamp))
        }
        // A PRODUCER `send {topic}` span; its context travels in the record's headers.
        return try await broker.tracer.withSpan("send \(topic)", ofKind: .producer) { span in
            span.attributes[MessagingAttribute.system] = "kafka"
            span.attributes[MessagingAttribute.operationName] = "send"
            span.attributes[MessagingAttribute.operationType] = "send"
            span.attributes[MessagingAttribute.destination] = topic
            span.attributes[MessagingAttribute.bodySize] = value?.count ?? 0
            if let key, let text = String(validating: key, as: UTF8.self) { span.attributes[MessagingAttribute.key] = text }
            if value == nil { span.attributes[MessagingAttribute.tombstone] = true }
            var headers = headers
            broker.tracer.inject(span.context, into: &headers, using: RecordHeaderInjector())
            let sent = try await sendUntraced(
                OutgoingRecord(topic: topic, key: key, value: value, headers: headers, partition: partition, timestamp: timestamp))
            span.attributes[MessagingAttribute.partition] = "\(sent.partition)"
            span.attributes[MessagingAttribute.offset] = Int(sent.offset)
            return sent
        }
    }

    private func sendUntraced(_ record: OutgoingRecord) async throws -> RecordMetadata {
        try await reserveRoom(Self.bufferBytes(of: record))
        // When no append is under way for the partition, this task appends the batch itself
        // (no drain task to start and wait for): an awaited send costs one append.
        let result = SendResult()
        if let tp = enqueue(record, completion: { result.set($0) }) { await drain(tp) }
        return try await result.value()
    }

    /// The outcome of one awaited send: set by whoever appends its batch, awaited by the sender.
    private final class SendResult: Sendable {
        private let state = Mutex<(result: Result<RecordMetadata, Error>?, waiter: CheckedContinuation<RecordMetadata, Error>?)>((nil, nil))

        func set(_ result: Result<RecordMetadata, Error>) {
            let waiter = state.withLock { s -> CheckedContinuation<RecordMetadata, Error>? in
                s.result = result
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume(with: result)
        }

        func value() async throws -> RecordMetadata {
            if let ready = state.withLock({ $0.result }) { return try ready.get() }
            return try await withCheckedThrowingContinuation { continuation in
                let ready = state.withLock { s -> Result<RecordMetadata, Error>? in
                    if s.result == nil { s.waiter = continuation }
                    return s.result
                }
                if let ready { continuation.resume(with: ready) }
            }
        }
    }

    /// Sends many records, queued in order (so records of one partition keep their order),
    /// batched together; returns each one's result, in the same order.
    public func send(_ records: [OutgoingRecord]) async -> [Result<RecordMetadata, Error>] {
        guard !records.isEmpty else { return [] }
        let collector = ResultCollector(records.count)
        for (index, record) in records.enumerated() {
            do {
                try await reserveRoom(Self.bufferBytes(of: record))
            } catch {
                collector.set(index, .failure(error))
                continue
            }
            if let tp = enqueue(record, completion: { collector.set(index, $0) }) { Task { await self.drain(tp) } }
        }
        return await collector.all()
    }

    /// The results of one `send(_:)` of many records, filled in as their batches complete.
    private final class ResultCollector: Sendable {
        private let state: Mutex<(values: [Result<RecordMetadata, Error>?], left: Int, waiter: CheckedContinuation<[Result<RecordMetadata, Error>], Never>?)>

        init(_ count: Int) { state = Mutex((Array(repeating: nil, count: count), count, nil)) }

        func set(_ index: Int, _ result: Result<RecordMetadata, Error>) {
            let done = state.withLock { s -> (CheckedContinuation<[Result<RecordMetadata, Error>], Never>, [Result<RecordMetadata, Error>])? in
                s.values[index] = result
                s.left -= 1
                guard s.left == 0, let waiter = s.waiter else { return nil }
                s.waiter = nil
                return (waiter, s.values.map { $0! })
            }
            if let (waiter, values) = done { waiter.resume(returning: values) }
        }

        func all() async -> [Result<RecordMetadata, Error>] {
            await withCheckedContinuation { continuation in
                let values = state.withLock { s -> [Result<RecordMetadata, Error>]? in
                    if s.left == 0 { return s.values.map { $0! } }
                    s.waiter = continuation
                    return nil
                }
                if let values { continuation.resume(returning: values) }
            }
        }
    }

    /// What a record counts against `bufferMemoryBytes`.
    static func bufferBytes(of record: OutgoingRecord) -> Int {
        80 + (record.key?.count ?? 0) + (record.value?.count ?? 0)
            + record.headers.reduce(0) { $0 + $1.key.utf8.count + ($1.value?.count ?? 0) + 10 }
    }

    /// Waits until `bytes` fit in the buffer and takes them (they are given back when the
    /// record's batch is appended or fails), or throws after `maxBlockMs`.
    private func reserveRoom(_ bytes: Int) async throws {
        guard bytes <= options.bufferMemoryBytes else {
            throw TidemarkError(.messageTooLarge, "record of ~\(bytes) bytes exceeds the producer's buffer of \(options.bufferMemoryBytes)")
        }
        let limit = options.bufferMemoryBytes
        // Room now, the common case: taken without a continuation.
        let taken = state.withLock { s -> Bool in
            guard s.roomWaiters.isEmpty && s.bufferedBytes + bytes <= limit else { return false }
            s.bufferedBytes += bytes
            return true
        }
        if taken { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let id = state.withLock { s -> Int? in
                if s.roomWaiters.isEmpty && s.bufferedBytes + bytes <= limit {
                    s.bufferedBytes += bytes
                    return nil
                }
                s.nextRoomWaiter += 1
                s.roomWaiters.append(RoomWaiter(id: s.nextRoomWaiter, bytes: bytes, continuation: continuation))
                return s.nextRoomWaiter
            }
            guard let id else { return continuation.resume() }
            let maxBlockMs = options.maxBlockMs
            let timer = Task { [weak self] in
                try? await Task.sleep(for: .milliseconds(maxBlockMs))
                let expired = self?.state.withLock { s -> CheckedContinuation<Void, Error>? in
                    guard let index = s.roomWaiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return s.roomWaiters.remove(at: index).continuation
                }
                expired?.resume(
                    throwing: TidemarkError(.timedOut, "no room in the producer's buffer after \(maxBlockMs) ms (buffer.memory \(limit))"))
            }
            let stillWaiting = state.withLock { s -> Bool in
                guard let index = s.roomWaiters.firstIndex(where: { $0.id == id }) else { return false }
                s.roomWaiters[index].timer = timer
                return true
            }
            if !stillWaiting { timer.cancel() }
        }
    }

    /// Gives buffer bytes back and lets waiting sends in, oldest first.
    private func releaseRoom(_ bytes: Int) {
        let limit = options.bufferMemoryBytes
        let ready = state.withLock { s -> [RoomWaiter] in
            s.bufferedBytes -= bytes
            var ready: [RoomWaiter] = []
            while let first = s.roomWaiters.first, s.bufferedBytes + first.bytes <= limit {
                s.bufferedBytes += first.bytes
                ready.append(s.roomWaiters.removeFirst())
            }
            return ready
        }
        for waiter in ready {
            waiter.timer?.cancel()
            waiter.continuation.resume()
        }
    }

    /// Adds a record (its buffer room already reserved) to its partition's open batch (in
    /// call order) and starts that partition's drain if none is running; `completion` gets
    /// the outcome.
    @discardableResult
    private func enqueue(_ record: OutgoingRecord, completion: @escaping Completion) -> TopicPartition? {
        let reserved = Self.bufferBytes(of: record)
        // Refused before it is queued: its buffer room goes back at once.
        func refuse(_ error: Error) -> TopicPartition? {
            releaseRoom(reserved)
            completion(.failure(error))
            return nil
        }
        let topic = record.topic
        let topicState: Broker.TopicState
        do { topicState = try broker.topicState(topic) } catch { return refuse(error) }
        let count = topicState.slots.count
        let timestamp = record.timestamp ?? broker.options.clock()
        let recordBytes = reserved
        guard recordBytes <= topicState.config.maxMessageBytes else {
            return refuse(TidemarkError(
                .messageTooLarge, "record of ~\(recordBytes) bytes exceeds max message bytes \(topicState.config.maxMessageBytes)"))
        }
        if let partition = record.partition, partition < 0 || partition >= count {
            return refuse(TidemarkError(.unknownTopicOrPartition, "topic '\(topic)' has no partition \(partition)"))
        }
        let codec = topicState.config.compression.codec ?? options.compression ?? .none
        let batchLimit = min(options.batchMaxBytes, topicState.config.maxMessageBytes - 128)

        let startDrain = state.withLock { s -> TopicPartition? in
            let chosen: Int
            if let partition = record.partition {
                chosen = partition
            } else if let key = record.key {
                chosen = KafkaPartitioner.partition(forKey: key, partitionCount: count)
            } else if count == 1 {
                chosen = 0
            } else if let sticky = s.sticky[topic] {
                chosen = sticky
            } else {
                s.random ^= s.random >> 12
                s.random ^= s.random << 25
                s.random ^= s.random >> 27
                chosen = Int((s.random &* 0x2545_F491_4F6C_DD1D) >> 33) % count
                s.sticky[topic] = chosen
            }
            let tp = TopicPartition(topic, chosen)
            // Batches still in the queue are open: the one being appended was taken out of it.
            let start = s.queues[tp, default: PartitionQueue()].add(
                record, timestamp: timestamp, bytes: recordBytes, codec: codec, batchLimit: batchLimit, completion: completion)
            s.inFlight += 1
            return start ? tp : nil
        }
        // The caller starts the partition's drain (inline, or as a task).
        return startDrain
    }

    /// Appends the partition's batches one after another until none is left.
    private func drain(_ tp: TopicPartition) async {
        if options.lingerMs > 0 { try? await Task.sleep(for: .milliseconds(options.lingerMs)) }
        while true {
            // Take the oldest batch, with its sequence numbers; a null-key topic moves on
            // to another sticky partition once a batch of it is under way.
            let taken = state.withLock { s -> (Pending, Int32)? in
                guard let pending = s.queues[tp]?.takeFirst() else { return nil }
                let sequence = s.queues[tp]!.sequence
                // Sequences wrap from Int32.max to 0, as Kafka's do.
                s.queues[tp]!.sequence = Int32((Int64(sequence) + Int64(pending.builder.count)) % (Int64(Int32.max) + 1))
                if !s.sticky.isEmpty, s.sticky[tp.topic] == tp.partition { s.sticky[tp.topic] = nil }
                return (pending, sequence)
            }
            guard let (pending, sequence) = taken else { break }
            var builder = pending.builder
            if let identity {
                builder.producerId = identity.id
                builder.producerEpoch = identity.epoch
                builder.baseSequence = sequence
            }
            do {
                let bytes = try builder.build()
                let result = try await broker.appendOwn(topic: tp.topic, partition: tp.partition, batch: bytes, earliest: pending.earliest)
                for (index, (completion, timestamp)) in pending.waiters.enumerated() {
                    completion(
                        .success(
                            RecordMetadata(
                                topic: tp.topic, partition: tp.partition, offset: result.baseOffset + Int64(index),
                                timestamp: result.logAppendTime ?? timestamp)))
                }
            } catch let failure as Broker.AppendedNotDurable {
                // In the log, not made durable: its sequence numbers stay used. (Given back, the
                // next batch of as many records was answered as this one's duplicate, unwritten,
                // and one of another size was refused as out of order, again at every try.)
                for (completion, _) in pending.waiters { completion(.failure(failure.error)) }
            } catch {
                // The batch never reached the log: give its sequence numbers back.
                state.withLock { $0.queues[tp]?.sequence = sequence }
                for (completion, _) in pending.waiters { completion(.failure(error)) }
            }
            releaseRoom(pending.bufferedBytes)
            finish(tp, pending.waiters.count)
        }
    }

    private func finish(_ tp: TopicPartition, _ records: Int) {
        let ready = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.inFlight -= records
            s.queues[tp]?.finished += records
            guard !s.flushWaiters.isEmpty else { return [] }
            var ready: [CheckedContinuation<Void, Never>] = []
            s.flushWaiters.removeAll { waiter in
                guard waiter.targets.allSatisfy({ (s.queues[$0.key]?.finished ?? 0) >= $0.value }) else { return false }
                ready.append(waiter.continuation)
                return true
            }
            return ready
        }
        for waiter in ready { waiter.resume() }
    }

    /// Waits until every record sent before the call is appended or failed (records sent
    /// meanwhile, by other tasks, are not waited for: a steady sender used to keep a flush
    /// waiting for ever).
    public func flush() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { s -> Bool in
                if s.inFlight == 0 { return true }
                var targets: [TopicPartition: Int] = [:]
                for (tp, queue) in s.queues where queue.finished < queue.sent { targets[tp] = queue.sent }
                if targets.isEmpty { return true }
                s.flushWaiters.append((targets, continuation))
                return false
            }
            if idle { continuation.resume() }
        }
    }
}

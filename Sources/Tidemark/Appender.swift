import TidemarkStorage

/// A synchronous, single-writer appender to one partition, for embedding Tidemark as a log
/// (Chronicle Queue's use): records are encoded into an in-memory batch as they come, and the
/// batch is appended (one pwritev) when it reaches `batchBytes`, when it is older than
/// `lingerMs` at the next append, or on `flush()`. No task, no await, no lock per record.
///
/// Records get their offsets when their batch is appended: `flush()` returns the range.
/// Batches carry no producer id (the appender is the partition's writer and never retries).
/// Durability follows the topic's flush policy: `flush()` returns once the batch is as
/// durable as the policy asks (it blocks the calling thread on fdatasync for durable topics).
///
/// Ownership: not Sendable; one thread (or task) owns it. Call `flush()` before dropping it.
public final class Appender {
    public let topic: String
    public let partition: Int
    public let batchBytes: Int
    public let lingerMs: Int64
    let broker: Broker
    let state: PartitionState
    let config: TopicConfig
    private var builder: RecordBatchBuilder
    private var openedAtMs: Int64 = 0
    private let codec: CompressionCodec
    /// The broker's clock, taken once (reading `broker.options` per record copies the options).
    private let clock: @Sendable () -> Int64

    /// Records appended to the log since this appender was made.
    public private(set) var appendedRecords = 0

    public init(broker: Broker, topic: String, partition: Int, batchBytes: Int = 256 * 1024, lingerMs: Int64 = 5) throws {
        let (config, state) = try broker.topicAndPartition(topic, partition, forWriting: true)
        self.broker = broker
        self.topic = topic
        self.partition = partition
        self.config = config
        self.state = state
        self.batchBytes = max(1024, min(batchBytes, config.maxMessageBytes - 128))
        self.lingerMs = lingerMs
        codec = config.compression.codec ?? .none
        builder = RecordBatchBuilder(compression: codec, capacity: self.batchBytes)
        clock = broker.options.clock
    }

    /// Adds a record to the open batch; appends the batch first when this record would not
    /// fit or the batch is older than `lingerMs`. Throws what appending a full batch threw
    /// (the records of that batch are then not in the log).
    public func append(key: [UInt8]? = nil, value: [UInt8]?, headers: [RecordHeader] = [], timestamp: Int64? = nil) throws {
        let now = timestamp ?? clock()
        var size = 24 + (key?.count ?? 0) + (value?.count ?? 0)
        for header in headers { size += header.key.utf8.count + (header.value?.count ?? 0) + 8 }
        let count = builder.count
        if count > 0 && (builder.uncompressedSize + size > batchBytes || now - openedAtMs >= lingerMs) {
            _ = try flush()
        }
        if count == 0 || builder.count == 0 { openedAtMs = now }
        builder.append(timestamp: now, key: key, value: value, headers: headers)
    }

    /// Appends the open batch (if any) and returns the offsets its records got.
    @discardableResult
    public func flush() throws -> ClosedRange<Int64>? {
        guard builder.count > 0 else { return nil }
        let count = builder.count
        let bytes = try builder.build()
        builder = RecordBatchBuilder(compression: codec, capacity: batchBytes)
        // The batch is ours, built just now: framing and CRC are known good, so it is not
        // validated again record by record.
        let header = try bytes.withUnsafeBytes { try RecordBatchHeader(parsing: $0) }
        let result: Result<ImmediateAppend?, any Error> = Result { try broker.appendLocked(state, bytes[...], headers: [header], nowMs: clock(), mayBlock: true) }
        if case .failure(let error as TidemarkError) = result, error.code == .unknownTopicOrPartition, !broker.isClosed {
            // The partition's log closed under an open broker: its topic was deleted.
            throw TidemarkError(.unknownTopicOrPartition, "\(topic)-\(partition) is gone (its topic was deleted): \(count) records not appended")
        }
        guard let appended = try result.get() else { preconditionFailure("a blocking append does not report that it would block") }
        if let target = appended.durableAt {
            do throws(StorageError) { try state.log.flush(upTo: target) } catch {
                throw TidemarkError.wrapping(error, "flush of \(topic)-\(partition)")
            }
            state.synced()
        }
        appendedRecords += count
        return appended.result.baseOffset...appended.result.lastOffset
    }
}

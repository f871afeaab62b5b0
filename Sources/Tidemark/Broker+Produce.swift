import TidemarkStorage

/// What an append returned to its producer.
public struct AppendResult: Sendable, Equatable {
    public var partition: Int
    /// Offset of the first record appended (for a duplicate: of the original append).
    public var baseOffset: Int64
    public var lastOffset: Int64
    /// Set when the topic uses LogAppendTime.
    public var logAppendTime: Int64?
    public var logStartOffset: Int64
    /// The batch was a retry of one already appended; nothing was written.
    public var isDuplicate: Bool
}

extension Broker {
    /// Appends encoded RecordBatch v2 batches (as a Kafka producer sends them) to a partition.
    ///
    /// Checks: the topic and partition exist, each batch is at most the topic's
    /// `maxMessageBytes` and passes `RecordBatchValidator` (framing, CRC, offsets and record
    /// count, every record, no control or transactional batches, timestamps), and, for
    /// idempotent producers, epoch and sequence (a retry of one of the producer's last five
    /// batches is answered with its original offsets and not appended again). Returns after
    /// the append and the topic's flush policy; readers are woken. Throws `TidemarkError`.
    public func append(topic: String, partition: Int, batches: [UInt8]) async throws -> AppendResult {
        let state = try partitionState(topic, partition)
        let now = options.clock()
        let headers = try Self.parseHeaders(batches, config: try topicState(topic).config, nowMs: now)
        let result = try await executor.run { () throws -> AppendResult in
            // Check, append and record under the partition's append lock.
            let outcome = state.producers.withLock { table -> Result<(AppendResult, LogAppendInfo?), TidemarkError> in
                do throws(TidemarkError) {
                    var duplicates: [ProducerStateTable.BatchMetadata] = []
                    for header in headers {
                        if case .duplicate(let original) = try table.check(header) { duplicates.append(original) }
                    }
                    if let first = duplicates.first {
                        guard duplicates.count == headers.count else {
                            throw TidemarkError(.outOfOrderSequence, "an append mixes retried and new batches")
                        }
                        let duplicate = AppendResult(
                            partition: partition, baseOffset: first.firstOffset, lastOffset: duplicates.last!.lastOffset,
                            logAppendTime: nil, logStartOffset: state.log.logStartOffset, isDuplicate: true)
                        return .success((duplicate, nil))
                    }
                    let info: LogAppendInfo
                    do throws(StorageError) {
                        info = try state.log.append(batches, applyingFlushPolicy: false)
                    } catch {
                        throw TidemarkError.wrapping(error, "append to \(topic)-\(partition)")
                    }
                    var next = info.firstOffset
                    for var header in headers {
                        header.baseOffset = next
                        table.record(header, nowMs: now)
                        next = header.nextOffset
                    }
                    let appended = AppendResult(
                        partition: partition, baseOffset: info.firstOffset, lastOffset: info.lastOffset,
                        logAppendTime: info.logAppendTime, logStartOffset: state.log.logStartOffset, isDuplicate: false)
                    return .success((appended, info))
                } catch {
                    return .failure(error)
                }
            }
            let (result, info) = try outcome.get()
            if let info {
                state.notifier.notify(newEnd: info.lastOffset + 1)
                do throws(StorageError) {
                    try state.log.applyFlushPolicy(after: info)
                } catch {
                    throw TidemarkError.wrapping(error, "flush of \(topic)-\(partition)")
                }
            }
            return result
        }
        return result
    }

    /// Headers of the batches in a produce payload, each batch validated as Kafka's
    /// LogValidator would (`RecordBatchValidator`: framing, CRC, offsets against the record
    /// count, every record parsed, no control or transactional batches, timestamps within the
    /// topic's window). The size limit is checked first, so nothing oversized is decompressed.
    static func parseHeaders(_ bytes: [UInt8], config: TopicConfig, nowMs: Int64) throws(TidemarkError) -> [RecordBatchHeader] {
        guard !bytes.isEmpty else { throw TidemarkError(.corruptMessage, "empty record set") }
        let validator = config.batchValidator
        // A LogAppendTime topic replaces producer timestamps: they are not judged.
        let validationTime: Int64? = config.timestampType == .logAppendTime ? nil : nowMs
        let parsed = bytes.withUnsafeBytes { raw -> Result<[RecordBatchHeader], TidemarkError> in
            var headers: [RecordBatchHeader] = []
            var position = 0
            while position < raw.count {
                let rest = UnsafeRawBufferPointer(rebasing: raw[position...])
                guard rest.count >= RecordBatchHeader.logOverhead else {
                    return .failure(TidemarkError(.corruptMessage, "truncated batch at byte \(position)"))
                }
                let length = Int32(bigEndian: rest.loadUnaligned(fromByteOffset: 8, as: Int32.self))
                if length > 0 && Int(length) + RecordBatchHeader.logOverhead > config.maxMessageBytes {
                    return .failure(
                        TidemarkError(
                            .messageTooLarge,
                            "batch of \(Int(length) + RecordBatchHeader.logOverhead) bytes exceeds max message bytes \(config.maxMessageBytes)"))
                }
                do throws(RecordBatchValidator.Failure) {
                    let header = try validator.validate(rest, nowMs: validationTime)
                    headers.append(header)
                    position += header.totalSize
                } catch {
                    return .failure(TidemarkError(refused: error, at: position))
                }
            }
            return .success(headers)
        }
        return try parsed.get()
    }
}

extension TidemarkError {
    /// A batch `RecordBatchValidator` refused, with the engine code that says why.
    init(refused failure: RecordBatchValidator.Failure, at position: Int) {
        let message = "batch at byte \(position): \(failure)"
        switch failure {
        case .corrupt: self.init(.corruptMessage, message)
        case .invalidRecord: self.init(.invalidRecord, message)
        case .invalidTimestamp: self.init(.invalidTimestamp, message)
        case .unsupportedCompression: self.init(.unsupportedCompression, message)
        }
    }
}

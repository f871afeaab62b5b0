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
    /// `maxMessageBytes`, framing and CRC are valid, the codec is supported, and, for
    /// idempotent producers, epoch and sequence (a retry of one of the producer's last five
    /// batches is answered with its original offsets and not appended again). Returns after
    /// the append and the topic's flush policy; readers are woken. Throws `TidemarkError`.
    public func append(topic: String, partition: Int, batches: [UInt8]) async throws -> AppendResult {
        let state = try partitionState(topic, partition)
        let maxBytes = try topicState(topic).config.maxMessageBytes
        let headers = try Self.parseHeaders(batches, maxMessageBytes: maxBytes)
        let now = options.clock()
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

    /// Headers of the batches in a produce payload, with size and framing checks (the
    /// CRC is checked by the storage append).
    static func parseHeaders(_ bytes: [UInt8], maxMessageBytes: Int) throws(TidemarkError) -> [RecordBatchHeader] {
        guard !bytes.isEmpty else { throw TidemarkError(.corruptMessage, "empty record set") }
        let parsed = bytes.withUnsafeBytes { raw -> Result<[RecordBatchHeader], TidemarkError> in
            var headers: [RecordBatchHeader] = []
            var position = 0
            while position < raw.count {
                let rest = UnsafeRawBufferPointer(rebasing: raw[position...])
                guard rest.count >= RecordBatchHeader.size else {
                    return .failure(TidemarkError(.corruptMessage, "truncated batch header at byte \(position)"))
                }
                let header: RecordBatchHeader
                do throws(RecordBatchError) {
                    header = try RecordBatchHeader(parsing: rest)
                } catch {
                    return .failure(TidemarkError(.corruptMessage, "batch at byte \(position): \(error)"))
                }
                guard header.batchLength >= RecordBatchHeader.minimumBatchLength, header.totalSize <= rest.count else {
                    return .failure(TidemarkError(.corruptMessage, "batch at byte \(position) has length \(header.batchLength)"))
                }
                guard header.totalSize <= maxMessageBytes else {
                    return .failure(
                        TidemarkError(
                            .messageTooLarge, "batch of \(header.totalSize) bytes exceeds max message bytes \(maxMessageBytes)"))
                }
                guard let codec = header.compressionCodec, codec.isSupported else {
                    return .failure(TidemarkError(.unsupportedCompression, "compression codec \(header.attributes & 7) is not supported"))
                }
                headers.append(header)
                position += header.totalSize
            }
            return .success(headers)
        }
        return try parsed.get()
    }
}

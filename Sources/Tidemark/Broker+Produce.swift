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

/// An append done without blocking, and what must be durable before it is acknowledged.
public struct ImmediateAppend: Sendable {
    public var result: AppendResult
    /// When set, answer the producer only after `Broker.whenDurable` reports this offset durable.
    public var durableAt: Int64?
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
    ///
    /// The append itself (a pwritev to the page cache) runs on the calling task; only a
    /// segment roll goes to the blocking executor, and durability is waited for through the
    /// broker's `LogFlusher` (group commit), not on a parked thread.
    public func append(topic: String, partition: Int, batches: [UInt8]) async throws -> AppendResult {
        try await append(topic: topic, partition: partition, batches: batches[...])
    }

    /// `append` of a view into a larger buffer (a request frame's records field).
    public func append(topic: String, partition: Int, batches: ArraySlice<UInt8>) async throws -> AppendResult {
        let (config, state) = try topicAndPartition(topic, partition, forWriting: true)
        let now = options.clock()
        // Compressed batches are decompressed to be checked (up to 64 MiB each): past what the
        // event loop may check, two at a time on lanes of their own, not on the calling
        // task's cooperative thread, and never more than two batches' worth of memory however
        // many requests send them. Smaller ones (the embedded producer's) are checked here.
        // So is a recompression (the topic names a codec the producer did not use) of a
        // compressed batch, or of more than that.
        let (compressed, recompress) = Self.framing(batches, recompressingTo: config.compression.codec)
        let big = compressed > Self.maxCompressedBytesNow || (recompress && (compressed > 0 || batches.count > Self.maxCompressedBytesNow))
        let checked =
            big
            ? try await decompressor.run { try Self.checkedAsStored(batches, config: config, nowMs: now) }
            : try Self.checkedAsStored(batches, config: config, nowMs: now)
        guard let (stored, headers, _) = checked else {  // (no loop limit here: never nil)
            throw TidemarkError(.invalidRequest, "append to \(topic)-\(partition): the batches could not be stored as the topic keeps them")
        }
        return try await appendChecked(state, stored, headers: headers, nowMs: now)
    }

    /// The batches checked (`parseHeaders`), and as the topic stores them: when its
    /// compression.type names a codec, a batch in another is recompressed (Kafka's LogValidator
    /// does the same), and held to max.message.bytes again.
    ///
    /// `loopInflateLimit`: the records an event loop may still inflate to recompress; nil
    /// (nothing done) when they are more, for the executor to do. The third value is how
    /// many bytes were inflated.
    static func checkedAsStored(
        _ batches: ArraySlice<UInt8>, config: TopicConfig, nowMs: Int64, loopInflateLimit: Int? = nil
    ) throws(TidemarkError) -> (ArraySlice<UInt8>, [RecordBatchHeader], Int)? {
        let headers = try parseHeaders(batches, config: config, nowMs: nowMs)
        guard let target = config.compression.codec, headers.contains(where: { $0.compressionCodec != target }) else {
            return (batches, headers, 0)
        }
        let limit = config.batchValidator.maxDecompressedBytes
        var inflated = 0
        var overLoopLimit = false
        let rebuilt = batches.withUnsafeBytes { raw -> Result<([UInt8], [RecordBatchHeader]), TidemarkError> in
            var bytes: [UInt8] = []
            bytes.reserveCapacity(raw.count)
            var stored: [RecordBatchHeader] = []
            var position = 0
            for header in headers {
                let batch = UnsafeRawBufferPointer(rebasing: raw[position..<(position + header.totalSize)])
                defer { position += header.totalSize }
                guard header.compressionCodec != target else {
                    bytes.append(contentsOf: batch)
                    stored.append(header)
                    continue
                }
                do throws(RecordBatchError) {
                    // Stored uncompressed, the records are the batch: inflated past max.message.bytes
                    // they are refused as they grow, not held whole first (and copied twice).
                    let storedLimit = target == .none ? min(limit, config.maxMessageBytes - RecordBatchHeader.size + 1) : limit
                    let loopLeft = loopInflateLimit.map { $0 - inflated }
                    let inflateLimit = min(storedLimit, loopLeft ?? .max)
                    let again: [UInt8]
                    do throws(RecordBatchError) {
                        let measured = try RecordBatchHeader.recompressedMeasured(
                            batch, header: header, to: target, maxDecompressedBytes: max(0, inflateLimit))
                        again = measured.batch
                        inflated += measured.recordsBytes
                    } catch .decompressedSizeLimitExceeded where (loopLeft ?? .max) < storedLimit {
                        overLoopLimit = true
                        return .success(([], []))
                    } catch .decompressedSizeLimitExceeded where target == .none {
                        return .failure(
                            TidemarkError(
                                .messageTooLarge,
                                "batch at byte \(position) is over max message bytes \(config.maxMessageBytes) uncompressed (the topic's compression.type)"))
                    }
                    guard again.count <= config.maxMessageBytes else {
                        return .failure(
                            TidemarkError(
                                .messageTooLarge,
                                "batch at byte \(position) is \(again.count) bytes in \(target) (the topic's compression.type), over max message bytes \(config.maxMessageBytes)"))
                    }
                    let header = try again.withUnsafeBytes { raw in
                        Result { () throws(RecordBatchError) in try RecordBatchHeader(parsing: raw) }
                    }.get()
                    bytes.append(contentsOf: again)
                    stored.append(header)
                } catch {
                    return .failure(TidemarkError(.corruptMessage, "batch at byte \(position): recompressing to \(target): \(error)"))
                }
            }
            return .success((bytes, stored))
        }
        let (bytes, stored) = try rebuilt.get()
        return overLoopLimit ? nil : (bytes[...], stored, inflated)
    }

    /// `append` of one batch the embedded `Producer` built just now, its earliest record
    /// timestamp `earliest` (records without one, -1, aside): its framing, CRC and records are
    /// known good, so it is not validated again record by record (as the `Appender`'s are
    /// not). Its timestamps are still judged by the topic's window, from `earliest` and the
    /// header's largest (a caller's timestamp, or the producer's own stamp on a record that
    /// waited long behind other appends); the storage checks its size.
    func appendOwn(topic: String, partition: Int, batch: [UInt8], earliest: Int64) async throws -> AppendResult {
        let (config, state) = try topicAndPartition(topic, partition, forWriting: true)
        let now = options.clock()
        let header = try batch.withUnsafeBytes { raw throws(TidemarkError) -> RecordBatchHeader in
            do { return try RecordBatchHeader(parsing: raw) } catch { throw TidemarkError(.corruptMessage, "a built batch: \(error)") }
        }
        if config.timestampType == .createTime {
            let window = config.batchValidator.timestampWindow(nowMs: now)
            guard earliest >= window.lowerBound, header.maxTimestamp <= window.upperBound else {
                throw TidemarkError(
                    .invalidTimestamp,
                    "record timestamps \(earliest)-\(header.maxTimestamp) are outside [\(window.lowerBound), \(window.upperBound)]")
            }
        }
        return try await appendChecked(state, batch[...], headers: [header], nowMs: now, markingAppended: true)
    }

    /// An append that reached the log (its records have offsets, its producer's sequence
    /// numbers are used) but could not be made durable as its topic asks (`appendOwn` only).
    struct AppendedNotDurable: Error {
        let error: TidemarkError
    }

    /// The append of checked batches: on the calling task, or on the executor when a roll is
    /// needed; then the topic's flush policy (group commit).
    /// `markingAppended`: a failed flush throws `AppendedNotDurable`.
    private func appendChecked(
        _ state: PartitionState, _ batches: ArraySlice<UInt8>, headers: [RecordBatchHeader], nowMs now: Int64,
        markingAppended: Bool = false
    ) async throws -> AppendResult {
        let (topic, partition) = (state.topic, state.partition)
        var outcome: ImmediateAppend
        if let done = try appendLocked(state, batches, headers: headers, nowMs: now, mayBlock: false) {
            outcome = done
        } else {
            outcome = try await executor.run { [self] in
                try appendLocked(state, batches, headers: headers, nowMs: now, mayBlock: true)!
            }
        }
        if let target = outcome.durableAt {
            do {
                try await flusher.durable(state.log, upTo: target)
                state.synced()
            } catch {
                let failure = TidemarkError.wrapping(error, "flush of \(topic)-\(partition)")
                if markingAppended { throw AppendedNotDurable(error: failure) }
                throw failure
            }
        }
        return outcome.result
    }

    /// The event loop's append: validates and appends to the page cache now, without
    /// blocking. Returns nil when the append would block (it needs a new segment): nothing
    /// was done, and the caller runs `append` where blocking is fine. A non-nil `durableAt`
    /// must be made durable (`whenDurable`) before the producer is answered.
    public func appendNow(topic: String, partition: Int, batches: [UInt8]) throws(TidemarkError) -> ImmediateAppend? {
        try appendNow(topic: topic, partition: partition, batches: batches[...])
    }

    /// `appendNow` of a view into a larger buffer (the Kafka front passes the records field
    /// of a request frame as is: no copy).
    ///
    /// Compressed batches are decompressed to be checked, which a hostile batch makes costly
    /// (64 MiB of zeros in 260 KB): with `compressedOnLoop` false, or past
    /// `maxCompressedBytesNow` of compressed bytes, nil is answered and `append` checks them
    /// on the executor.
    public func appendNow(
        topic: String, partition: Int, batches: ArraySlice<UInt8>, compressedOnLoop: Bool = true
    ) throws(TidemarkError) -> ImmediateAppend? {
        var allowance = compressedOnLoop ? Self.maxCompressedBytesNow : 0
        return try appendNow(topic: topic, partition: partition, batches: batches, loopAllowance: &allowance)
    }

    /// `appendNow` within what an event loop may still spend on this request (`loopAllowance`,
    /// bytes; the Kafka front gives each request `maxCompressedBytesNow`): compressed bytes
    /// (decompressed to be checked), the bytes of an uncompressed batch the topic recompresses,
    /// and the records a compressed one inflates to be recompressed count toward it, and are
    /// taken from it. A compressed batch is inflated for recompression only within what is left
    /// (it may inflate 255 times: gzip of 16 MiB is tens of milliseconds every client on the
    /// loop waits for); past it, or past the allowance, nil, for `append` on the executor, and a
    /// batch given up on after work was done here spends the rest of the allowance.
    public func appendNow(
        topic: String, partition: Int, batches: ArraySlice<UInt8>, loopAllowance: inout Int
    ) throws(TidemarkError) -> ImmediateAppend? {
        let (config, state) = try topicAndPartition(topic, partition, forWriting: true)
        let (compressed, recompress) = Self.framing(batches, recompressingTo: config.compression.codec)
        if compressed > loopAllowance { return nil }
        let cost = compressed + (recompress && compressed == 0 ? batches.count : 0)
        if cost > loopAllowance { return nil }
        // A compressed batch to recompress is inflated here only within what is left (a small
        // lz4 job stays on the loop; one that inflates past it goes to the executor, whose
        // queue a client sending batches of zeros would otherwise hold every such job behind).
        let inflateLimit = recompress && compressed > 0 ? loopAllowance - cost : nil
        if let inflateLimit, inflateLimit <= 0 { return nil }
        let now = options.clock()
        guard let (stored, headers, inflated) = try Self.checkedAsStored(batches, config: config, nowMs: now, loopInflateLimit: inflateLimit)
        else {
            // Checked (inflated) and partly inflated again here: nothing more on this loop for
            // the request (a request of many such partitions inflated each on the loop).
            loopAllowance = 0
            return nil
        }
        loopAllowance -= cost + (compressed > 0 ? inflated : 0)  // (an uncompressed batch's are its bytes, counted)
        return try appendLocked(state, stored, headers: headers, nowMs: now, mayBlock: false)
    }

    /// Calls `completion` once `offset` of the partition is durable (nil) or cannot be (the
    /// error): group commit through the broker's `LogFlusher`. The callback runs on the
    /// flusher's thread; hand the work back to its owner.
    public func whenDurable(
        topic: String, partition: Int, offset: Int64, _ completion: @escaping @Sendable (TidemarkError?) -> Void
    ) {
        let state: PartitionState
        do { state = try partitionState(topic, partition) } catch { return completion(error) }
        flusher.whenDurable(state.log, upTo: offset) { error in
            if error == nil { state.synced() }
            completion(error.map { TidemarkError.wrapping($0, "flush of \(topic)-\(partition)") })
        }
    }

    /// Check, append and record under the partition's append lock (never held across an
    /// fdatasync). Returns nil when `mayBlock` is false and the storage would block.
    func appendLocked(
        _ state: PartitionState, _ batches: ArraySlice<UInt8>, headers: [RecordBatchHeader], nowMs now: Int64, mayBlock: Bool
    ) throws(TidemarkError) -> ImmediateAppend? {
        let topic = state.topic
        let partition = state.partition
        let outcome = state.producers.withLock { table -> Result<(AppendResult, LogAppendInfo?)?, TidemarkError> in
            do throws(TidemarkError) {
                var duplicates: [ProducerStateTable.BatchMetadata] = []
                for verdict in try table.checkForAppend(headers) {
                    if case .duplicate(let original) = verdict { duplicates.append(original) }
                }
                if let first = duplicates.first {
                    guard duplicates.count == headers.count else {
                        throw TidemarkError(.outOfOrderSequence, "an append mixes retried and new batches")
                    }
                    // On a LogAppendTime topic the table keeps the append time (below): the
                    // retry is answered with it, as the first attempt was.
                    let stamped = state.log.config.timestampType == .logAppendTime
                    let duplicate = AppendResult(
                        partition: partition, baseOffset: first.firstOffset, lastOffset: duplicates.last!.lastOffset,
                        logAppendTime: stamped ? duplicates.last!.timestamp : nil, logStartOffset: state.log.logStartOffset,
                        isDuplicate: true)
                    return .success((duplicate, nil))
                }
                let info: LogAppendInfo
                do throws(StorageError) {
                    info = try batches.withUnsafeBytes { raw in
                        Result { () throws(StorageError) in
                            try state.log.append(raw, applyingFlushPolicy: false, mayBlock: mayBlock, validated: headers)
                        }
                    }.get()
                } catch where error.code == .wouldBlock {
                    return .success(nil)
                } catch {
                    throw TidemarkError.servingPartition(error, "append to \(topic)-\(partition)", brokerClosed: isClosed)
                }
                var next = info.firstOffset
                for var header in headers {
                    header.baseOffset = next
                    if let stamped = info.logAppendTime { header.maxTimestamp = stamped }  // as the log stores it
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
        guard let (result, info) = try outcome.get() else { return nil }
        guard let info else {
            // A retry of batches already appended: answered when they are as durable as the
            // first attempt's answer would have been. On a log whose fsync failed they may be
            // lost (the kernel may have dropped the pages): the retry fails as the first did.
            if let failure = state.log.flushFailure, state.log.flushedOffset <= result.lastOffset {
                throw TidemarkError.wrapping(failure, "append to \(topic)-\(partition)")
            }
            let durable = state.log.config.flushPolicy == .everyAppend && state.log.flushedOffset <= result.lastOffset
            return ImmediateAppend(result: result, durableAt: durable ? result.lastOffset + 1 : nil)
        }
        // Readers see it now, or (a topic synced every append) once it is synced: `synced`.
        if !state.log.readsSyncedOnly { state.notifier.notify(newEnd: info.lastOffset + 1) }
        if let traffic = state.traffic {
            traffic.bytesIn.increment(by: Int64(batches.count))
            traffic.recordsIn.increment(by: info.lastOffset - info.firstOffset + 1)
        }
        return ImmediateAppend(result: result, durableAt: state.log.durabilityTarget(after: info))
    }

    /// Headers of the batches in a produce payload, each batch validated as Kafka's
    /// LogValidator would (`RecordBatchValidator`: framing, CRC, offsets against the record
    /// count, every record parsed, no control or transactional batches, timestamps within the
    /// topic's window). The size limit is checked first, so nothing oversized is decompressed.
    /// Compressed bytes `appendNow` decompresses where it runs (an event loop); beyond, the
    /// executor does.
    public static let maxCompressedBytesNow = 64 << 10

    /// The bytes of the compressed batches in `bytes` (framing read from the headers only;
    /// malformed framing ends the count, and the validation that follows refuses it). A gzip
    /// or zstd batch counts as more than `maxCompressedBytesNow` whatever its size: their
    /// ratio has no useful bound (64 MiB of zeros is a few KB of zstd), so they are never
    /// decompressed on an event loop. LZ4's (about 255:1) and snappy's (about 21:1) are.
    public static func compressedBytes(_ bytes: ArraySlice<UInt8>) -> Int {
        framing(bytes, recompressingTo: nil).compressed
    }

    /// Whether a batch in `bytes` is in another codec than `target` (nil: any codec is kept).
    static func needsRecompression(_ bytes: ArraySlice<UInt8>, to target: CompressionCodec?) -> Bool {
        framing(bytes, recompressingTo: target).recompress
    }

    /// `compressedBytes` and `needsRecompression` in one walk of the batches' framing (their
    /// lengths and codec bits), as the produce path asks both of each partition's records.
    static func framing(_ bytes: ArraySlice<UInt8>, recompressingTo target: CompressionCodec?) -> (compressed: Int, recompress: Bool) {
        var position = bytes.startIndex
        var total = 0
        var recompress = false
        while bytes.endIndex - position >= RecordBatchHeader.attributesOffset + 2 {
            let length = bytes[(position + 8)..<(position + 12)].reduce(0) { $0 << 8 | Int($1) }
            guard length > 0 else { break }
            let size = min(length + RecordBatchHeader.logOverhead, bytes.endIndex - position)
            let codec = CompressionCodec(rawValue: Int16(bytes[position + RecordBatchHeader.attributesOffset + 1] & 0x07))
            if let target, codec != target { recompress = true }
            switch codec {
            case .none?: break
            case .gzip?, .zstd?: total += max(size, maxCompressedBytesNow + 1)
            default: total += size
            }
            position += size
        }
        return (total, recompress)
    }

    static func parseHeaders(_ bytes: ArraySlice<UInt8>, config: TopicConfig, nowMs: Int64) throws(TidemarkError) -> [RecordBatchHeader] {
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

extension Broker {
    // MARK: Producer ids

    /// A new producer id (epoch 0) for an idempotent producer; never reused. An id that a
    /// partition remembers is passed over: a client may write with an id it chose, without
    /// asking (Kafka accepts an unknown producer), and the producer handed that id met the
    /// client's sequences (its first batch refused as out of order, which clients treat as
    /// fatal, or answered as a duplicate and not written). Ids are handed out in order from
    /// small numbers, so a tool that writes as producer 1 took the second producer's id.
    /// Costs one look per partition, with its append lock, per InitProducerId; a partition's
    /// ids are walked only when it remembers one at or above the next (a walk of every table,
    /// a million producers at the bound, took milliseconds per new producer).
    public func initProducerId() async throws -> (producerId: Int64, epoch: Int16) {
        try checkOpen()
        return try await withCheckedThrowingContinuation { continuation in
            producerIdQueue.async { [self] in
                let partitions = registry.withLock { $0.topics.values.flatMap(\.partitions) }
                continuation.resume(
                    with: Result {
                        try producerIds.withLock { ids in
                            // One pass: the ids at or above the next one that partitions remember.
                            let next = ids.next
                            ids.skip(
                                partitions.flatMap { state in
                                    state.producers.withLock { table in
                                        table.highestProducerId >= next ? table.entries.keys.filter { $0 >= next } : []
                                    }
                                })
                            return (try ids.allocate(), Int16(0))
                        }
                    })
            }
        }
    }

    /// The next epoch of an idempotent producer that asks for one (InitProducerId v3+ with
    /// its id); an epoch that would overflow gets a new producer id instead, as Kafka does, and
    /// so does an id this broker never handed out (a data directory replaced under running
    /// clients): kept, it could be handed to another producer later, the two then fencing each
    /// other or one's batches answered as the other's duplicates.
    public func bumpProducerEpoch(producerId: Int64, epoch: Int16) async throws -> (producerId: Int64, epoch: Int16) {
        try checkOpen()
        let handedOut = producerIds.withLock { producerId < $0.next }
        guard epoch >= 0 && epoch < Int16.max - 1, handedOut else { return try await initProducerId() }
        return (producerId, epoch + 1)
    }
}

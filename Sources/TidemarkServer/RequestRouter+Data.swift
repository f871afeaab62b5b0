import NIOCore
import Tracing
import Tidemark
import TidemarkStorage
import TidemarkWire

// ApiVersions, Metadata, Produce, Fetch, ListOffsets, InitProducerId.
extension RequestRouter {
    /// A partition's records shorter than this are copied into the response; longer ones go
    /// out by sendfile (see `KafkaConnectionHandler.writeSlice`). The size under which a read
    /// keeps the bytes its header walk read (`LogSlice.held`): those are the ones copied.
    static let sendfileMinimumBytes = LogSlice.heldBelowBytes
    /// File slices (each a descriptor until written) in one fetch response; the rest are copied.
    static let maxFileSlicesPerResponse = 16

    func apiVersions() -> ApiVersionsResponse {
        var response = ApiVersionsResponse()
        response.apiKeys = ApiKey.allCases.map {
            ApiVersionsResponse.Key(apiKey: $0.rawValue, minVersion: $0.advertised.lowerBound, maxVersion: $0.advertised.upperBound)
        }
        return response
    }

    /// Metadata: this node leads every partition (leader epoch 0). All topics (a null list)
    /// include the internal ones; v10+ carry topic ids, and v12+ topics asked for by id are
    /// answered under their names (UNKNOWN_TOPIC_ID when no topic has the id). Topics named
    /// and missing are created when the broker and the client both allow it.
    func metadata(_ request: MetadataRequest, version: Int16) async -> MetadataResponse {
        var response = MetadataResponse()
        response.brokers = [
            MetadataResponse.Broker(nodeId: config.nodeId, host: config.effectiveAdvertisedHost, port: advertisedPort)
        ]
        response.clusterId = config.clusterId ?? broker.clusterId
        response.controllerId = config.nodeId
        if request.includeClusterAuthorizedOperations { response.clusterAuthorizedOperations = AuthorizedOperations.cluster }
        let asked: [MetadataRequest.Topic] = (
            request.topicList ?? (broker.listTopics() + broker.internalTopicNames).map { MetadataRequest.Topic(name: $0) }
        ).firstOfEachKey { "\($0.topicId)/\($0.name ?? "")" }
        for entry in asked {
            var topic = MetadataResponse.Topic()
            var name = entry.name
            if name == nil && version >= 12 {
                name = topicName(for: entry.topicId)
                if name == nil {
                    topic.name = nil
                    topic.topicId = entry.topicId
                    topic.errorCode = KafkaError.unknownTopicId.rawValue
                    response.topics.append(topic)
                    continue
                }
            }
            guard let name else {
                topic.errorCode = KafkaError.invalidRequest.rawValue
                topic.name = ""
                response.topics.append(topic)
                continue
            }
            topic.name = name
            var count = try? broker.partitionCount(of: name)
            if count == nil && request.topicList != nil && entry.name != nil && config.autoCreateTopics && request.allowAutoTopicCreation {
                do {
                    try await broker.createTopic(name, partitions: config.defaultPartitions)
                    logger.info("auto-created topic", metadata: ["topic": "\(name)"])
                } catch let error as TidemarkError where error.code == .topicAlreadyExists {
                } catch {
                    topic.errorCode = KafkaError(error).rawValue
                    // A disk that refuses the topic (full, read-only) is said once a minute,
                    // not once per client retry.
                    if Self.isDiskFailure(error) {
                        failureLog.error(
                            logger, "auto-creating a topic failed", key: "create:\(name)",
                            metadata: ["topic": "\(name)", "error": "\(error)"])
                    }
                }
                count = try? broker.partitionCount(of: name)
            } else if count == nil, entry.name != nil, (try? TopicName.validate(name)) == nil {
                topic.errorCode = KafkaError.invalidTopicException.rawValue  // not retriable: no client waits for it
            }
            if let count {
                if request.includeTopicAuthorizedOperations { topic.topicAuthorizedOperations = AuthorizedOperations.topic }
                topic.topicId = wireId(of: name)
                topic.isInternal = broker.isInternalTopic(name)
                // A partition that cannot take writes has no leader, as Kafka reports a replica
                // on a failed disk: producers' partitioners skip it instead of sending there
                // until their delivery timeout.
                let unavailable = broker.unavailablePartitions(of: name)
                topic.partitions = (0..<count).map { p in
                    var partition = MetadataResponse.Partition()
                    partition.partitionIndex = Int32(p)
                    partition.leaderId = config.nodeId
                    partition.leaderEpoch = 0
                    partition.replicaNodes = [config.nodeId]
                    partition.isrNodes = [config.nodeId]
                    if unavailable.contains(p) {
                        partition.errorCode = KafkaError.leaderNotAvailable.rawValue
                        partition.leaderId = -1
                        partition.isrNodes = []
                        partition.offlineReplicas = [config.nodeId]
                    }
                    return partition
                }
            } else if topic.errorCode == 0 {
                topic.errorCode = KafkaError.unknownTopicOrPartition.rawValue
            }
            response.topics.append(topic)
        }
        return response
    }

    /// Produce, run on `loop`: each partition is validated and appended now (a pwritev to the
    /// page cache); a partition whose append would block (a roll) is appended by the engine's
    /// executor; durable topics wait for the flusher (group commit). `done` runs on `loop` once
    /// every partition is answered, i.e. durable where the topic asks for it.
    func produce(_ request: ProduceRequest, on loop: any EventLoop, _ done: @escaping (ProduceResponse) -> Void) {
        let inFlight = ProduceInFlight(request: request, done: done)
        let bound = NIOLoopBound(inFlight, eventLoop: loop)
        let validAcks = request.acks == 0 || request.acks == 1 || request.acks == -1
        // A partition listed twice in one request is refused in every place it is listed: its
        // batches would otherwise be appended twice, in an order two tasks decide.
        // Bytes decompressed (to be checked) or recompressed (for a topic that names a codec) on
        // the loop for this request, at most `Broker.maxCompressedBytesNow` in all: the rest is
        // done on the executor (`Broker.appendNow(loopAllowance:)`).
        var loopAllowance = Broker.maxCompressedBytesNow
        var seen: [String: Set<Int32>] = [:]
        var listedTwice: [String: Set<Int32>] = [:]
        // (One partition, the job workload's request, has nothing to compare: no allocation.)
        for topicData in request.topics where request.topics.count > 1 || topicData.partitions.count > 1 {
            let key = request.topicsById ? "\(topicData.topicId)" : topicData.name
            for partitionData in topicData.partitions where !seen[key, default: []].insert(partitionData.index).inserted {
                listedTwice[key, default: []].insert(partitionData.index)
            }
        }
        for (t, topicData) in request.topics.enumerated() {
            // Produce v13 names topics by id (a zero id is no topic's: UNKNOWN_TOPIC_ID).
            let resolved = request.topicsById ? topicName(for: topicData.topicId) : topicData.name
            let key = request.topicsById ? "\(topicData.topicId)" : topicData.name
            for (p, partitionData) in topicData.partitions.enumerated() {
                let topic = resolved ?? ""
                let partition = Int(partitionData.index)
                do {
                    guard resolved != nil else { throw KafkaError.unknownTopicId }
                    guard validAcks else { throw KafkaError.invalidRequiredAcks }
                    guard request.transactionalId == nil else { throw KafkaError.transactionalIdAuthorizationFailed }
                    guard listedTwice[key]?.contains(partitionData.index) != true else { throw KafkaError.invalidRequest }
                    guard case .bytes(let records)? = partitionData.records else { throw KafkaError.invalidRecord }
                    try Self.checkOneBatchV2(records)
                    // Produce below v7 may not carry zstd (ProduceRequest.validateRecords).
                    if !request.allowsZstd, records[records.startIndex + RecordBatchHeader.attributesOffset + 1] & 0x07 == 4 {
                        throw KafkaError.unsupportedCompressionType
                    }
                    if broker.isTracing { inFlight.startSpan(t, p, topic: topic, partition: partition, records: records, router: self) }
                    if let appended = try broker.appendNow(topic: topic, partition: partition, batches: records, loopAllowance: &loopAllowance) {
                        inFlight.set(t, p, appended.result)
                        if let offset = appended.durableAt {
                            inFlight.waiting += 1
                            inFlight.spanWaits(t, p)
                            broker.whenDurable(topic: topic, partition: partition, offset: offset) { [self] error in
                                loop.execute {
                                    if let error { bound.value.fail(t, p, error, router: self, topic: topic) }
                                    bound.value.endSpan(t, p)
                                    bound.value.waiting -= 1
                                    bound.value.finishIfDone()
                                }
                            }
                        }
                    } else {
                        // Would block: the engine's executor appends it (and waits for durability).
                        inFlight.waiting += 1
                        inFlight.spanWaits(t, p)
                        Task { [self] in
                            let outcome: Result<AppendResult, Error>
                            do {
                                outcome = .success(try await broker.append(topic: topic, partition: partition, batches: records))
                            } catch {
                                outcome = .failure(error)
                            }
                            loop.execute {
                                switch outcome {
                                case .success(let result): bound.value.set(t, p, result)
                                case .failure(let error): bound.value.fail(t, p, error, router: self, topic: topic)
                                }
                                bound.value.endSpan(t, p)
                                bound.value.waiting -= 1
                                bound.value.finishIfDone()
                            }
                        }
                    }
                } catch {
                    inFlight.fail(t, p, error, router: self, topic: topic)
                }
                if inFlight.waitingSpan(t, p) == false { inFlight.endSpan(t, p) }
            }
        }
        inFlight.started = true
        inFlight.finishIfDone()
    }

    /// Kafka's rule for Produce v3 and later (ProduceRequest.validateRecords): a partition's
    /// records are exactly one batch, of magic 2. Anything else is INVALID_RECORD, which
    /// clients do not retry (CORRUPT_MESSAGE, which they do, is kept for bytes that fail
    /// their CRC or framing further in). Several batches would also be checked against the
    /// producer state from before the first of them.
    static func checkOneBatchV2(_ records: ArraySlice<UInt8>) throws {
        guard records.count >= RecordBatchHeader.size else { throw KafkaError.invalidRecord }
        let start = records.startIndex
        let length = records[(start + 8)..<(start + 12)].reduce(0) { $0 << 8 | Int($1) }
        guard records[start + 16] == 2 else { throw KafkaError.invalidRecord }
        guard 12 + length >= records.count else { throw KafkaError.invalidRecord }
    }

    /// Fetch, run on `loop`: partitions are read now (page-cache reads, the answer sent with
    /// sendfile); a partition in a segment that is not open is read by the engine's executor.
    /// Below min_bytes, the request waits for an append to any partition it found empty (the
    /// appender wakes it: no task and no timer task per poll) or for its deadline, an event
    /// loop timer; then it reads once more and answers.
    /// Fetch, through the fetch session the request names (v7+; see `FetchSessionCache`).
    func fetch(
        _ request: FetchRequest, on loop: any EventLoop, connection: ConnectionShares? = nil, frameBytes: Int = 0,
        _ done: @escaping (FetchResponse) -> Void
    ) {
        // A waiting fetch holds its frame's request memory (`RequestMemoryBudget`): one over the
        // budget's small-frame size waits at most `largeFetchMaxWaitMs`, so clients parking large
        // fetches cannot hold the budget, and every other client's large frames, for minutes.
        // (Consumers wait 500 ms by default; one of thousands of partitions uses a fetch session,
        // whose fetches after the first are small.)
        let limit = frameBytes > Self.largeFetchFrameBytes ? min(config.fetchMaxWaitMs, Self.largeFetchMaxWaitMs) : config.fetchMaxWaitMs
        let wait = min(Int64(max(0, request.maxWaitMs)), limit)
        let deadline = NIODeadline.now() + .milliseconds(wait)
        // A long poll ends when its connection closes (it held the frame's request memory,
        // and its watches, for up to max_wait after its client had gone). Only a fetch still
        // waiting once its first attempt returns (on this loop) is one: the weak reference
        // costs a side table per fetch.
        func run(_ fetch: FetchInFlight) {
            fetch.attempt(router: self, loop: loop, preRead: [:])
            connection?.longPoll = fetch.isOver ? nil : fetch
        }
        let sessionless = request.sessionId == 0 && request.sessionEpoch == -1
        guard !sessionless, config.fetchSessionCacheSlots > 0 else {
            run(FetchInFlight(request: request, deadline: deadline, done: done))
            return
        }
        let sessions = fetchSessions
        // Idle times on the timers' clock: on the wall clock, a step forward past the idle
        // time evicted every live session at once (FETCH_SESSION_ID_NOT_FOUND for all).
        switch sessions.plan(request, nowMs: broker.options.timers()) {
        case .error(let code):
            var response = FetchResponse()
            response.errorCode = code.rawValue
            done(response)
        case .full(let whole, let sessionId, let record):
            run(
                FetchInFlight(request: whole, deadline: deadline) { response in
                    if record {
                        done(sessions.answer(response, sessionId: sessionId, incremental: false))
                    } else {
                        var response = response
                        response.sessionId = sessionId
                        done(response)
                    }
                })
        case .incremental(let whole, let sessionId):
            run(
                FetchInFlight(request: whole, deadline: deadline) { response in
                    done(sessions.answer(response, sessionId: sessionId, incremental: true))
                })
        }
    }

    static let largeFetchFrameBytes = 64 << 10
    static let largeFetchMaxWaitMs: Int64 = 500

    /// The least ListOffsets version that knows a special (negative) time; nil for a negative
    /// time that is none of them (-6, earliest pending upload, is a tiered-storage time of v11,
    /// which this broker does not speak).
    static func listOffsetsVersion(knowing time: Int64) -> Int16? {
        switch time {
        case -1, -2: 0
        case -3: 7  // MAX_TIMESTAMP
        case -4: 8  // EARLIEST_LOCAL_TIMESTAMP
        case -5: 9  // LATEST_TIERED_TIMESTAMP
        default: nil
        }
    }

    /// ListOffsets. As Kafka answers: a partition named twice in one request (v1+) is
    /// INVALID_REQUEST for each time it is named; a special time its version does not know, or
    /// a negative time that is no special one, is UNSUPPORTED_VERSION (they were answered as
    /// lookups: -3 before v7 as MAX_TIMESTAMP, -100 as a time search).
    func listOffsets(_ request: ListOffsetsRequest, version: Int16) async -> ListOffsetsResponse {
        var response = ListOffsetsResponse()
        var named: [TopicPartition: Int] = [:]
        if version >= 1 {
            for topic in request.topics {
                for partition in topic.partitions { named[TopicPartition(topic.name, Int(partition.partitionIndex)), default: 0] += 1 }
            }
        }
        for topicRequest in request.topics {
            var topic = ListOffsetsResponse.Topic()
            topic.name = topicRequest.name
            for partitionRequest in topicRequest.partitions {
                var result = ListOffsetsResponse.Partition()
                result.partitionIndex = partitionRequest.partitionIndex
                if named[TopicPartition(topicRequest.name, Int(partitionRequest.partitionIndex)), default: 0] > 1 {
                    result.errorCode = KafkaError.invalidRequest.rawValue
                    topic.partitions.append(result)
                    continue
                }
                if partitionRequest.timestamp < 0,
                    (Self.listOffsetsVersion(knowing: partitionRequest.timestamp) ?? .max) > version
                {
                    result.errorCode = KafkaError.unsupportedVersion.rawValue
                    topic.partitions.append(result)
                    continue
                }
                do {
                    let tp = (topic: topicRequest.name, partition: Int(partitionRequest.partitionIndex))
                    switch partitionRequest.timestamp {
                    case -3:
                        // MAX_TIMESTAMP (v7+): the record with the largest timestamp.
                        let found = try await broker.offsetOfMaxTimestamp(topic: tp.topic, partition: tp.partition)
                        result.offset = found?.offset ?? -1
                        result.timestamp = found?.timestamp ?? -1
                        topic.partitions.append(result)
                        continue
                    case -5:
                        // LATEST_TIERED_TIMESTAMP (v9+): nothing is tiered here.
                        _ = try broker.offsets(topic: tp.topic, partition: tp.partition)
                        result.offset = -1
                        result.timestamp = -1
                        topic.partitions.append(result)
                        continue
                    default:
                        break
                    }
                    let position: StartPosition =
                        switch partitionRequest.timestamp {
                        case -1: .latest
                        // EARLIEST_LOCAL_TIMESTAMP (-4, v8+): the local log is the whole log.
                        case -2, -4: .earliest
                        default: .timestamp(partitionRequest.timestamp)
                        }
                    let (offset, timestamp) = try await broker.resolveOffset(
                        topic: topicRequest.name, partition: Int(partitionRequest.partitionIndex), position)
                    if case .timestamp = position, timestamp == nil {
                        // No record at or after that time: Kafka answers -1.
                        result.offset = -1
                        result.timestamp = -1
                    } else {
                        result.offset = offset
                        result.timestamp = timestamp ?? -1
                    }
                    result.oldStyleOffsets = result.offset >= 0 ? [result.offset] : []
                } catch {
                    result.errorCode = KafkaError(error).rawValue
                }
                topic.partitions.append(result)
            }
            response.topics.append(topic)
        }
        return response
    }

    func initProducerId(_ request: InitProducerIdRequest) async -> InitProducerIdResponse {
        var response = InitProducerIdResponse()
        guard request.transactionalId == nil else {
            // Transactions are not supported: only idempotent producers get ids (the error
            // FindCoordinator answers them, fatal in clients).
            response.errorCode = KafkaError.transactionalIdAuthorizationFailed.rawValue
            return response
        }
        do {
            // v3+: a producer that knows its id asks for its epoch to be bumped (KIP-360), so it
            // can go on after a fatal sequence error without losing its identity.
            let (id, epoch) =
                request.producerId >= 0
                ? try await broker.bumpProducerEpoch(producerId: request.producerId, epoch: request.producerEpoch)
                : try await broker.initProducerId()
            response.producerId = id
            response.producerEpoch = epoch
        } catch {
            response.errorCode = KafkaError(error).rawValue
        }
        return response
    }
}

extension KafkaError: Error {}

/// One produce request being answered on its connection's loop: the response being filled
/// and how many partitions still wait (an executor append or the flusher).
///
/// Confined to that loop (reached from other threads only through `NIOLoopBound`).
final class ProduceInFlight {
    var response = ProduceResponse()
    var waiting = 0
    /// All partitions were started: `done` may run once nothing waits.
    var started = false
    private var done: ((ProduceResponse) -> Void)?

    init(request: ProduceRequest, done: @escaping (ProduceResponse) -> Void) {
        self.done = done
        response.topics = request.topics.map { topicData in
            var topic = ProduceResponse.Topic()
            topic.name = topicData.name
            topic.topicId = topicData.topicId
            topic.partitions = topicData.partitions.map { partitionData in
                var result = ProduceResponse.Partition()
                result.index = partitionData.index
                return result
            }
            return topic
        }
    }

    /// The broker's `produce {topic}` spans (tracing on only), by partition slot; each ends
    /// when its partition is answered (after the fsync covering it, when one is waited for).
    private var spans: [Int: (span: any Span, waiting: Bool)] = [:]

    private static func slot(_ t: Int, _ p: Int) -> Int { t << 20 | p }

    /// Starts the partition's SERVER span, a child of the context the producer put in the
    /// first record's headers (read from an uncompressed first batch only: nothing is
    /// decompressed for tracing; the records themselves are never changed).
    func startSpan(_ t: Int, _ p: Int, topic: String, partition: Int, records: ArraySlice<UInt8>, router: RequestRouter) {
        let broker = router.broker
        var parent: InstrumentationContext? = nil
        if records.count >= RecordBatchHeader.size {
            // `records` is a view of the request frame: read it by offset from its start.
            let (attributes, length) = records.withUnsafeBytes { raw in
                (raw[RecordBatchHeader.attributesOffset + 1], Int(Int32(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: Int32.self))))
            }
            let end = RecordBatchHeader.logOverhead + length
            // Only the first record is built (a batch may hold a hundred thousand).
            if attributes & 0x07 == 0, length > 0, end <= records.count,
                let batch = records.withUnsafeBytes({ raw in
                    try? RecordBatch(decoding: UnsafeRawBufferPointer(rebasing: raw[..<end]), keeping: { _ in true }, limit: 1)
                }),
                let first = batch.records.first
            {
                parent = broker.extractContext(from: first.headers)
            }
        }
        let span = broker.tracer.startSpan("produce \(topic)", context: parent ?? .topLevel, ofKind: .server)
        span.attributes[MessagingAttribute.system] = "kafka"
        span.attributes[MessagingAttribute.operationName] = "produce"
        span.attributes[MessagingAttribute.destination] = topic
        span.attributes[MessagingAttribute.partition] = "\(partition)"
        span.attributes[MessagingAttribute.bodySize] = records.count
        spans[Self.slot(t, p)] = (span, false)
    }

    func spanWaits(_ t: Int, _ p: Int) { spans[Self.slot(t, p)]?.waiting = true }

    /// Whether the partition's span waits for a later completion (nil: no span).
    func waitingSpan(_ t: Int, _ p: Int) -> Bool? { spans[Self.slot(t, p)]?.waiting }

    func endSpan(_ t: Int, _ p: Int) {
        guard let (span, _) = spans.removeValue(forKey: Self.slot(t, p)) else { return }
        let result = response.topics[t].partitions[p]
        if result.errorCode != 0 {
            span.attributes["error.type"] = "\(KafkaError(rawValue: result.errorCode) ?? .unknownServerError)"
            span.setStatus(SpanStatus(code: .error))
        } else {
            span.attributes[MessagingAttribute.offset] = Int(result.baseOffset)
        }
        span.end()
    }

    func set(_ t: Int, _ p: Int, _ appended: AppendResult) {
        response.topics[t].partitions[p].baseOffset = appended.baseOffset
        response.topics[t].partitions[p].logAppendTimeMs = appended.logAppendTime ?? -1
        response.topics[t].partitions[p].logStartOffset = appended.logStartOffset
    }

    func fail(_ t: Int, _ p: Int, _ error: any Error, router: RequestRouter, topic: String) {
        let code = (error as? KafkaError) ?? KafkaError(error)
        response.topics[t].partitions[p].errorCode = code.rawValue
        response.topics[t].partitions[p].baseOffset = -1
        // v8+: why, in words (clients log it: "batch of 2000000 bytes exceeds max message bytes").
        response.topics[t].partitions[p].errorMessage = (error as? TidemarkError)?.message
        if code == .unknownServerError || code == .kafkaStorageError {
            router.failureLog.error(
                router.logger, "produce failed", key: "produce:\(topic)", metadata: ["topic": "\(topic)", "error": "\(error)"])
        }
    }

    func finishIfDone() {
        guard started, waiting == 0, let done else { return }
        self.done = nil
        done(response)
    }
}

import CoreMetrics
import Dispatch
import Logging
import NIOCore
import Synchronization
import Tidemark
import TidemarkStorage
import TidemarkWire

/// The operations a client may perform, as the 32-bit fields of Metadata, DescribeCluster and
/// the group describes (bit n set: ACL operation code n allowed). With no authorizer, Kafka
/// answers every operation the resource type supports (AuthHelper.authorizedOperations,
/// AclEntry.supportedOperations); so does this node, which has no ACLs. INT32_MIN ("not
/// asked") is left when the request does not ask.
enum AuthorizedOperations {
    /// READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11.
    static let topic: Int32 = [3, 4, 5, 6, 7, 8, 10, 11].reduce(0) { $0 | 1 << $1 }
    /// READ 3, DELETE 6, DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11.
    static let group: Int32 = [3, 6, 8, 10, 11].reduce(0) { $0 | 1 << $1 }
    /// CREATE 5, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12.
    static let cluster: Int32 = [5, 7, 8, 9, 10, 11, 12].reduce(0) { $0 | 1 << $1 }
}

/// An outcome carried as a parse failure.
struct RequestOutcomeBox: Error {
    var outcome: RequestOutcome
    init(_ outcome: RequestOutcome) { self.outcome = outcome }
}

/// Decodes one request frame, runs it against the engine, and encodes the response.
///
/// Sendable and stateless between requests (all state is the engine's). Requests of one
/// connection reach it one at a time, in arrival order (`KafkaConnectionHandler` chains
/// them); requests of different connections run concurrently.
final class RequestRouter: Sendable {
    /// The address of the client whose request runs ("/127.0.0.1", as Kafka shows it; empty
    /// when unknown): set by the connection around each request it hands to `handle`.
    @TaskLocal static var clientHost = ""

    let broker: Broker
    let config: ServerConfig
    let logger: Logger
    /// The port actually bound (when the configured one is 0), for advertising.
    let boundPort: Int
    /// Requests being handled now, so a shutdown can wait for their answers: from start until
    /// their outcome is on their connection's loop (a request run by a task counts until its
    /// hop back to the loop, `KafkaConnectionHandler.start`).
    let inFlight = Atomic<Int>(0)
    /// The server is stopping: connections start no new request, and close once the one
    /// they run is answered (`KafkaServer.stop`).
    let draining = Atomic<Bool>(false)
    /// Closed connections still appending the Produce requests they had queued
    /// (`KafkaConnectionHandler.keepQueuedProduces`), at most `maxClosedDrains`: each holds up
    /// to 1 MiB of the request budget, and a client reconnecting in a loop must not hold more.
    let closedDrains = Atomic<Int>(0)
    static let maxClosedDrains = 32
    /// Fetched partitions read by the executor instead of the event loop: their segment was
    /// not open, or their data was not in the page cache.
    let readsOffLoop = Atomic<Int>(0)
    /// Loops for requests that arrive without one (`RequestProcessor`): produce and fetch
    /// always complete on an event loop.
    let loops: any EventLoopGroup
    /// Incremental fetch sessions (KIP-227).
    let fetchSessions: FetchSessionCache
    /// Large batches that share fetches take a few records from at a time.
    var shareBatches: ShareBatchCache { broker.shareBatches }
    /// Requests, errors, durations and connections, per Kafka API.
    let metrics: RequestMetrics
    /// Large responses in memory until written, over all connections.
    let responseMemory: ResponseMemory
    /// Failures clients repeat (a full disk, a failed partition): logged once a minute.
    let failureLog = LogThrottle()
    /// Connections closed for their client's doing (malformed or foreign bytes, idle, not
    /// reading): said once a minute per reason and client host, with how many more (a port
    /// scanner or a misconfigured client gave a line per connection).
    let connectionLog = LogThrottle()
    /// A failure of the disk underneath (full, read-only, EIO), not of the request: worth the
    /// log (through `failureLog`).
    static func isDiskFailure(_ error: any Error) -> Bool {
        !(error is TidemarkError) || (error as? TidemarkError)?.storage != nil
    }
    /// Descriptors dup'ed for sendfile and not yet closed, over all connections, and their
    /// bound (`DescriptorPlan.sendfile`): past it a slice is read and copied
    /// instead (`KafkaConnectionHandler.writeSlice`), so that slow readers of large fetches
    /// cannot run the process out of descriptors.
    let sendfileDescriptors = Atomic<Int>(0)
    let sendfileDescriptorLimit: Int
    /// Slices copied because the sendfile bound was reached (since the server started).
    let slicesCopied = Atomic<Int>(0)

    init(broker: Broker, config: ServerConfig, logger: Logger, boundPort: Int, loops: any EventLoopGroup) {
        self.broker = broker
        self.config = config
        self.logger = logger
        self.boundPort = boundPort
        self.loops = loops
        self.fetchSessions = FetchSessionCache(maxSessions: config.fetchSessionCacheSlots)
        self.sendfileDescriptorLimit = config.maxSendfileDescriptors ?? DescriptorPlan.current().sendfile
        self.metrics = RequestMetrics(factory: config.metricsFactory ?? MetricsSystem.factory)
        self.responseMemory = ResponseMemory(limitBytes: config.responseMemoryBytes)
    }

    /// A request whose header was read: what `route` and the inline path work from.
    struct Parsed {
        var api: ApiKey
        var header: RequestHeader
        var bodyStart: Int
    }

    /// Reads the header: the request to run, or the outcome when there is nothing to run.
    func parse(_ frame: [UInt8]) -> Result<Parsed, RequestOutcomeBox> {
        // The header's first two fields decide how the rest is read.
        guard frame.count >= 8 else { return .failure(.init(.close("frame of \(frame.count) bytes is too short for a header"))) }
        let apiKeyRaw = Int16(frame[0]) << 8 | Int16(frame[1])
        let version = Int16(frame[2]) << 8 | Int16(frame[3])
        guard let api = ApiKey(rawValue: apiKeyRaw) else { return .failure(.init(.close("unknown api key \(apiKeyRaw)"))) }
        var coder = WireCoder(reading: frame, limits: .requests)
        var header = RequestHeader()
        let supported = api.implemented.contains(version)
        do {
            // An ApiVersions request at an unknown version is read as far as the client id
            // only: its newer header and body are unknown by definition.
            try header.code(&coder, flexible: supported && api.isFlexible(version))
        } catch {
            return .failure(.init(.close("bad request header: \(error)")))
        }
        guard supported else {
            if api == .apiVersions { return .failure(.init(respondUnsupportedApiVersions(header))) }
            return .failure(.init(.close("\(api) v\(version) is not supported")))
        }
        return .success(Parsed(api: api, header: header, bodyStart: coder.index))
    }

    /// The requests run on an event loop (`runOnLoop`), whoever brings them.
    /// (A switch, not a set: hashing showed in the job workload's profile, once per request.)
    static func runsOnLoop(_ api: ApiKey) -> Bool {
        switch api {
        case .produce, .fetch, .apiVersions, .shareFetch, .shareAcknowledge, .offsetCommit: true
        default: false
        }
    }

    /// Runs Produce, Fetch, ShareFetch, ShareAcknowledge, OffsetCommit and ApiVersions to completion on `loop` (the connection's):
    /// decode, validate, append to the page cache or read, encode, with no task or thread hop
    /// unless the engine must block (a roll, a cold segment: those go to its executor) or
    /// wait (durability, a long poll: callbacks back to `loop`). Returns false for every other
    /// request, which the caller runs with `handle`. `done` is called on `loop`.
    func handleInline(
        _ frame: [UInt8], on loop: any EventLoop, connection: ConnectionShares? = nil, _ done: @escaping (RequestOutcome) -> Void
    ) -> Bool {
        loop.preconditionInEventLoop()
        let parsed: Parsed
        switch parse(frame) {
        case .failure(let box):
            done(box.outcome)
            return true
        case .success(let p): parsed = p
        }
        switch parsed.api {
        case _ where Self.runsOnLoop(parsed.api):
            inFlight.add(1, ordering: .relaxed)
            let started = DispatchTime.now().uptimeNanoseconds
            runOnLoop(parsed, frame: frame, on: loop, connection: connection) { [self] outcome in
                metrics.record(parsed.api, nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - started), outcome: outcome)
                done(outcome)
                // After `done`: what it sets off (request memory granted to a connection of
                // another loop) is counted too, for a stop that waits for nothing in flight.
                inFlight.subtract(1, ordering: .relaxed)
            }
            return true
        default:
            return false
        }
    }

    /// The loop-run requests. `done` is called on `loop`.
    private func runOnLoop(
        _ parsed: Parsed, frame: [UInt8], on loop: any EventLoop, connection: ConnectionShares? = nil, _ done: @escaping (RequestOutcome) -> Void
    ) {
        let header = parsed.header
        let api = parsed.api
        let version = header.apiVersion
        @Sendable func answer<M: KafkaMessage>(_ message: M) -> RequestOutcome {
            do { return try respond(message, header, api: api) } catch { return .failed("\(api) response: \(error)") }
        }
        // Answers that come from another thread (the flusher's: it must only hand work back)
        // are encoded on the loop.
        @Sendable func onLoop(_ loop: any EventLoop, _ work: @escaping @Sendable () -> Void) {
            if loop.inEventLoop { work() } else { loop.execute(work) }
        }
        do {
            switch api {
            case .apiVersions:
                _ = try ApiVersionsRequest.decode(frame, from: parsed.bodyStart, version: version, flexible: api.isFlexible(version), trailing: .ignored, limits: .requests)
                done(answer(apiVersions()))
            case .produce:
                let request = try ProduceRequest.decode(frame, from: parsed.bodyStart, version: version, flexible: api.isFlexible(version), trailing: .ignored, limits: .requests)
                let acks = request.acks  // (the answer's closure keeps this, not the request)
                produce(request, on: loop) { [self] response in
                    guard acks == 0 else { return done(answer(response)) }
                    // No answer, but its errors count, as Kafka counts them; and, as Kafka does, a
                    // failure closes the connection: the only way an acks=0 producer learns of it
                    // (it reconnects and refreshes its metadata).
                    var failed: [Int16] = []
                    for topic in response.topics {
                        for partition in topic.partitions where partition.errorCode != 0 {
                            countError(api, partition.errorCode, 1)
                            failed.append(partition.errorCode)
                        }
                    }
                    done(failed.isEmpty ? .silent : .failed("an acks=0 produce failed (error codes \(Set(failed).sorted()))"))
                }
            case .fetch:
                let request = try FetchRequest.decode(frame, from: parsed.bodyStart, version: version, flexible: api.isFlexible(version), trailing: .ignored, limits: .requests)
                fetch(request, on: loop, connection: connection, frameBytes: frame.count) { response in done(answer(response)) }
            case .shareFetch:
                let request = try ShareFetchRequest.decode(
                    frame, from: parsed.bodyStart, version: version, flexible: api.isFlexible(version), trailing: .ignored, limits: .requests)
                shareFetch(request, version: version, on: loop, connection: connection) { response in done(answer(response)) }
            case .shareAcknowledge:
                let request = try ShareAcknowledgeRequest.decode(
                    frame, from: parsed.bodyStart, version: version, flexible: api.isFlexible(version), trailing: .ignored, limits: .requests)
                // Answered on the loop: at once, or when the flusher calls back (a hop to the loop).
                let bound = NIOLoopBound(done, eventLoop: loop)
                shareAcknowledge(request, version: version, connection: connection) { response in
                    onLoop(loop) { bound.value(answer(response)) }
                }
            case .offsetCommit:
                let request = try OffsetCommitRequest.decode(
                    frame, from: parsed.bodyStart, version: version, flexible: api.isFlexible(version), trailing: .ignored, limits: .requests)
                let bound = NIOLoopBound(done, eventLoop: loop)
                offsetCommit(request, version: version) { response in
                    onLoop(loop) { bound.value(answer(response)) }
                }
            default:
                preconditionFailure("\(api) is not run on the loop")
            }
        } catch {
            done(.close("malformed \(api) v\(version): \(error)"))
        }
    }

    var advertisedPort: Int32 { Int32(config.advertisedPort ?? boundPort) }

    func handle(_ frame: [UInt8]) async -> RequestOutcome {
        inFlight.add(1, ordering: .relaxed)
        defer { inFlight.subtract(1, ordering: .relaxed) }
        let started = DispatchTime.now().uptimeNanoseconds
        let outcome = await dispatch(frame)
        if frame.count >= 2, let api = ApiKey(rawValue: Int16(frame[0]) << 8 | Int16(frame[1])) {
            metrics.record(api, nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - started), outcome: outcome)
        }
        return outcome
    }

    private func dispatch(_ frame: [UInt8]) async -> RequestOutcome {
        let parsed: Parsed
        switch parse(frame) {
        case .failure(let box): return box.outcome
        case .success(let p): parsed = p
        }
        let api = parsed.api
        let version = parsed.header.apiVersion
        if Self.runsOnLoop(api) {
            // The same loop-run code as connections use, on a loop of our own.
            let loop = loops.next()
            return await withCheckedContinuation { continuation in
                loop.execute { [self] in
                    runOnLoop(parsed, frame: frame, on: loop) { continuation.resume(returning: $0) }
                }
            }
        }
        do {
            return try await route(api, header: parsed.header, frame: frame, bodyStart: parsed.bodyStart)
        } catch let error as WireError {
            return .close("malformed \(api) v\(version): \(error)")
        } catch let error as TooManyEntries {
            return .close("\(api) v\(version) refused: \(error)")
        } catch {
            logger.error("request failed", metadata: ["api": "\(api)", "error": "\(error)"])
            return .failed("\(api) failed: \(error)")
        }
    }

    func respond<M: KafkaMessage>(_ message: M, _ header: RequestHeader, api: ApiKey) throws -> RequestOutcome {
        var coder = WireCoder(writingFlexible: false)
        var correlation = header.correlationId
        try coder.int32(&correlation)
        // Flexible responses carry header v1 (tagged fields), except ApiVersions: always v0.
        coder.flexible = api.hasFlexibleResponseHeader(header.apiVersion)
        try coder.taggedFields()
        coder.flexible = api.isFlexible(header.apiVersion)
        try message.encode(into: &coder, version: header.apiVersion)
        // Every error a response reports, top-level or per partition, as Kafka's ErrorsPerSec
        // (once per code: a fetch of 1,000 failed partitions takes the metrics lock once).
        let codes = coder.errorCodesWritten
        if codes.count == 1 {
            countError(api, codes[0], 1)
        } else if !codes.isEmpty {
            for (code, count) in Dictionary(codes.map { ($0, 1) }, uniquingKeysWith: +) { countError(api, code, count) }
        }
        let chunks = coder.finishedChunks()
        // Large answers are held until the client reads them (`ResponseMemory`). One to a
        // request that changed nothing, past the room for them, closes its connection instead.
        if Self.changesNothing(api), let size = responseMemory.refuses(chunks) {
            return .overResponseMemory(
                "a \(api) answer of \(size) bytes would take the answers held for clients past \(responseMemory.limitBytes) bytes")
        }
        return .respond(chunks)
    }

    /// Requests that only read: their answer may be refused for memory (`respond`), as nothing
    /// is lost by asking again.
    static func changesNothing(_ api: ApiKey) -> Bool {
        switch api {
        case .metadata, .listOffsets, .offsetFetch, .findCoordinator, .describeGroups, .listGroups, .describeAcls, .describeConfigs,
            .describeLogDirs, .describeCluster, .describeProducers, .consumerGroupDescribe, .shareGroupDescribe,
            .describeShareGroupOffsets, .offsetForLeaderEpoch, .listTransactions, .describeClientQuotas, .describeUserScramCredentials,
            .listPartitionReassignments:
            true
        default: false
        }
    }

    private func countError(_ api: ApiKey, _ code: Int16, _ count: Int) {
        metrics.error(api, (KafkaError(rawValue: code) ?? .unknownServerError).name, count: count)
    }

    /// ApiVersions at a version we do not know: a v0 answer with UNSUPPORTED_VERSION, so the
    /// client retries with one we do.
    private func respondUnsupportedApiVersions(_ header: RequestHeader) -> RequestOutcome {
        var response = ApiVersionsResponse()
        response.errorCode = KafkaError.unsupportedVersion.rawValue
        response.apiKeys = ApiKey.allCases.map {
            ApiVersionsResponse.Key(apiKey: $0.rawValue, minVersion: $0.advertised.lowerBound, maxVersion: $0.advertised.upperBound)
        }
        var coder = WireCoder(writingFlexible: false)
        var correlation = header.correlationId
        do {
            try coder.int32(&correlation)
            try response.encode(into: &coder, version: 0)
        } catch {
            return .failed("encoding failed")
        }
        return .respond(coder.finishedChunks())
    }

    private func route(_ api: ApiKey, header: RequestHeader, frame: [UInt8], bodyStart: Int) async throws -> RequestOutcome {
        let version = header.apiVersion
        let flexible = api.isFlexible(version)
        func body<M: KafkaMessage>(_ type: M.Type) throws -> M {
            try M.decode(frame, from: bodyStart, version: version, flexible: flexible, trailing: .ignored, limits: .requests)
        }
        switch api {
        case .apiVersions, .produce, .fetch, .shareFetch, .shareAcknowledge, .offsetCommit:
            preconditionFailure("\(api) runs on a loop")
        case .metadata:
            let request = try body(MetadataRequest.self)
            try TooManyEntries.check(request.topicList?.count ?? 0, "topics")
            return try respond(await metadata(request, version: version), header, api: api)
        case .listOffsets: return try respond(await listOffsets(try body(ListOffsetsRequest.self), version: version), header, api: api)
        case .initProducerId: return try respond(await initProducerId(try body(InitProducerIdRequest.self)), header, api: api)
        case .findCoordinator: return try respond(findCoordinator(try body(FindCoordinatorRequest.self)), header, api: api)
        case .joinGroup:
            return try respond(await joinGroup(try body(JoinGroupRequestMessage.self), header: header), header, api: api)
        case .syncGroup: return try respond(await syncGroup(try body(SyncGroupRequestMessage.self)), header, api: api)
        case .heartbeat: return try respond(heartbeat(try body(HeartbeatRequest.self)), header, api: api)
        case .leaveGroup: return try respond(await leaveGroup(try body(LeaveGroupRequest.self)), header, api: api)
        case .offsetFetch:
            let request = try body(OffsetFetchRequest.self)
            try TooManyEntries.check(request.groups.count, "groups")
            return try respond(offsetFetch(request), header, api: api)
        case .describeGroups:
            let request = try body(DescribeGroupsRequest.self)
            try TooManyEntries.check(request.groups.count, "groups")
            return try respond(describeGroups(request, version: version), header, api: api)
        case .listGroups: return try respond(listGroups(try body(ListGroupsRequest.self)), header, api: api)
        case .createTopics: return try respond(await createTopics(try body(CreateTopicsRequest.self)), header, api: api)
        case .deleteTopics: return try respond(await deleteTopics(try body(DeleteTopicsRequest.self), version: version), header, api: api)
        case .describeConfigs:
            let request = try body(DescribeConfigsRequest.self)
            try TooManyEntries.check(request.resources.count, "resources", max: TooManyEntries.maxConfigResources)
            return try respond(describeConfigs(request, version: version), header, api: api)
        case .deleteRecords: return try respond(await deleteRecords(try body(DeleteRecordsRequest.self)), header, api: api)
        case .offsetForLeaderEpoch:
            return try respond(offsetForLeaderEpoch(try body(OffsetForLeaderEpochRequest.self)), header, api: api)
        case .alterConfigs:
            var request = AlterConfigsRequest(incremental: false)
            request = try AlterConfigsRequest.decoded(frame, from: bodyStart, version: version, flexible: flexible, trailing: .ignored, limits: .requests, into: request)
            return try respond(await alterConfigs(request), header, api: api)
        case .incrementalAlterConfigs:
            var request = AlterConfigsRequest(incremental: true)
            request = try AlterConfigsRequest.decoded(frame, from: bodyStart, version: version, flexible: flexible, trailing: .ignored, limits: .requests, into: request)
            return try respond(await alterConfigs(request), header, api: api)
        case .describeLogDirs: return try respond(describeLogDirs(try body(DescribeLogDirsRequest.self)), header, api: api)
        case .createPartitions: return try respond(await createPartitions(try body(CreatePartitionsRequest.self)), header, api: api)
        case .offsetDelete: return try respond(await offsetDelete(try body(OffsetDeleteRequest.self)), header, api: api)
        case .electLeaders:
            let request = try body(ElectLeadersRequest.self)
            try TooManyEntries.check(request.topicPartitions?.reduce(0) { $0 + max(1, $1.partitions.count) } ?? 0, "partitions")
            return try respond(electLeaders(request, version: version), header, api: api)
        case .describeAcls: return try respond(describeAcls(try body(DescribeAclsRequest.self)), header, api: api)
        case .createAcls:
            let request = try body(CreateAclsRequest.self)
            try TooManyEntries.check(request.creations.count, "ACL creations")
            return try respond(createAcls(request), header, api: api)
        case .deleteAcls:
            let request = try body(DeleteAclsRequest.self)
            try TooManyEntries.check(request.filters.count, "ACL filters")
            return try respond(deleteAcls(request), header, api: api)
        case .deleteGroups: return try respond(await deleteGroups(try body(DeleteGroupsRequest.self)), header, api: api)
        case .describeCluster: return try respond(describeCluster(try body(DescribeClusterRequest.self), version: header.apiVersion), header, api: api)
        case .describeProducers: return try respond(describeProducers(try body(DescribeProducersRequest.self)), header, api: api)
        case .listTransactions: return try respond(listTransactions(try body(ListTransactionsRequest.self)), header, api: api)
        case .describeClientQuotas:
            return try respond(describeClientQuotas(try body(DescribeClientQuotasRequest.self)), header, api: api)
        case .describeUserScramCredentials:
            let request = try body(DescribeUserScramCredentialsRequest.self)
            try TooManyEntries.check(request.users?.count ?? 0, "users")
            return try respond(describeUserScramCredentials(request), header, api: api)
        case .listPartitionReassignments:
            return try respond(listPartitionReassignments(try body(ListPartitionReassignmentsRequest.self)), header, api: api)
        case .alterPartitionReassignments:
            let request = try body(AlterPartitionReassignmentsRequest.self)
            try TooManyEntries.check(request.topics.reduce(0) { $0 + max(1, $1.partitions.count) }, "partitions")
            return try respond(alterPartitionReassignments(request), header, api: api)
        case .consumerGroupHeartbeat:
            return try respond(
                await consumerGroupHeartbeat(try body(ConsumerGroupHeartbeatRequest.self), header: header), header, api: api)
        case .consumerGroupDescribe:
            let request = try body(ConsumerGroupDescribeRequest.self)
            try TooManyEntries.check(request.groupIds.count, "groups")
            return try respond(consumerGroupDescribe(request), header, api: api)
        case .shareGroupHeartbeat:
            return try respond(shareGroupHeartbeat(try body(ShareGroupHeartbeatRequest.self), header: header), header, api: api)
        case .shareGroupDescribe:
            let request = try body(ShareGroupDescribeRequest.self)
            try TooManyEntries.check(request.groupIds.count, "groups")
            return try respond(shareGroupDescribe(request), header, api: api)
        case .describeShareGroupOffsets:
            let request = try body(DescribeShareGroupOffsetsRequest.self)
            try TooManyEntries.check(request.groups.count, "groups")
            return try respond(describeShareGroupOffsets(request), header, api: api)
        case .alterShareGroupOffsets:
            return try respond(await alterShareGroupOffsets(try body(AlterShareGroupOffsetsRequest.self)), header, api: api)
        case .deleteShareGroupOffsets:
            return try respond(await deleteShareGroupOffsets(try body(DeleteShareGroupOffsetsRequest.self)), header, api: api)
        }
    }
}

/// A request naming more entries (groups, topics, config resources) than one request may: the
/// connection is closed with this as the reason (in the broker's log), and nothing is answered.
///
/// Each entry named costs an answer however short its name: a group id of five bytes is
/// answered with a group entry (about 250 bytes in memory while the answer is built), a broker
/// or group config resource with its whole config list. So a 46 MiB DescribeGroups of 8 million
/// made-up ids took 2 GB to answer, and the request budget (`queued.max.request.bytes`)
/// counts only the bytes on the wire. Clients batch far fewer (an admin client names the
/// groups or topics there are); Kafka has no such bound, only its 100 MiB frames.
struct TooManyEntries: Error, CustomStringConvertible {
    /// Groups or topics one request may name.
    static let maxEntries = 100_000
    /// Config resources one DescribeConfigs may name (each answered with its config list).
    static let maxConfigResources = 10_000

    var count: Int
    var what: String
    var max: Int

    var description: String { "it names \(count) \(what), more than the \(max) one request may" }

    static func check(_ count: Int, _ what: String, max: Int = maxEntries) throws(TooManyEntries) {
        guard count <= max else { throw TooManyEntries(count: count, what: what, max: max) }
    }
}

extension Array {
    /// The elements whose key was not seen before, in order. A request that names an entry
    /// many times (a group, a topic, a partition) gets one answer for it: otherwise a request
    /// of a few kilobytes could make a response that repeats stored data (members' metadata,
    /// a topic's partitions, a partition's producers) thousands of times, gigabytes in memory.
    /// Kafka's Metadata de-duplicates the same way; clients never repeat an entry.
    func firstOfEachKey<Key: Hashable>(_ key: (Element) -> Key) -> [Element] {
        var seen = Set<Key>()
        return filter { seen.insert(key($0)).inserted }
    }

    /// Topic entries with each (topic, partition) once, across entries naming the same topic;
    /// an entry left with no partition goes (`firstOfEachKey`'s rule, for partition lists).
    func eachPartitionOnce(topic: (Element) -> String, partitions: WritableKeyPath<Element, [Int32]>) -> [Element] {
        var seen = Set<TopicPartition>()
        return compactMap { entry in
            var unique = entry
            unique[keyPath: partitions] = entry[keyPath: partitions].filter { seen.insert(TopicPartition(topic(entry), Int($0))).inserted }
            return unique[keyPath: partitions].isEmpty ? nil : unique
        }
    }
}

import Logging
import Synchronization
import Tidemark
import TidemarkStorage
import TidemarkWire

/// Decodes one request frame, runs it against the engine, and encodes the response.
///
/// Sendable and stateless between requests (all state is the engine's). Requests of one
/// connection reach it one at a time, in arrival order (`KafkaConnectionHandler` chains
/// them); requests of different connections run concurrently.
final class RequestRouter: Sendable {
    let broker: Broker
    let config: ServerConfig
    let logger: Logger
    /// The port actually bound (when the configured one is 0), for advertising.
    let boundPort: Int
    /// Requests being handled now, so a shutdown can wait for their answers.
    let inFlight = Atomic<Int>(0)

    init(broker: Broker, config: ServerConfig, logger: Logger, boundPort: Int) {
        self.broker = broker
        self.config = config
        self.logger = logger
        self.boundPort = boundPort
    }

    var advertisedPort: Int32 { Int32(config.advertisedPort ?? boundPort) }

    func handle(_ frame: [UInt8]) async -> RequestOutcome {
        inFlight.add(1, ordering: .relaxed)
        defer { inFlight.subtract(1, ordering: .relaxed) }
        return await dispatch(frame)
    }

    private func dispatch(_ frame: [UInt8]) async -> RequestOutcome {
        // The header's first two fields decide how the rest is read.
        guard frame.count >= 8 else { return .close("frame of \(frame.count) bytes is too short for a header") }
        let apiKeyRaw = Int16(frame[0]) << 8 | Int16(frame[1])
        let version = Int16(frame[2]) << 8 | Int16(frame[3])
        guard let api = ApiKey(rawValue: apiKeyRaw) else { return .close("unknown api key \(apiKeyRaw)") }
        var coder = WireCoder(reading: frame)
        var header = RequestHeader()
        let supported = api.implemented.contains(version)
        do {
            // An ApiVersions request at an unknown version is read as far as the client id
            // only: its newer header and body are unknown by definition.
            try header.code(&coder, flexible: supported && api.isFlexible(version))
        } catch {
            return .close("bad request header: \(error)")
        }
        guard supported else {
            if api == .apiVersions { return respondUnsupportedApiVersions(header) }
            return .close("\(api) v\(version) is not supported")
        }
        do {
            return try await route(api, header: header, frame: frame, bodyStart: coder.index)
        } catch let error as WireError {
            return .close("malformed \(api) v\(version): \(error)")
        } catch {
            logger.error("request failed", metadata: ["api": "\(api)", "error": "\(error)"])
            return .close("\(api) failed: \(error)")
        }
    }

    private func respond<M: KafkaMessage>(_ message: M, _ header: RequestHeader, api: ApiKey) throws -> RequestOutcome {
        var coder = WireCoder(writingFlexible: false)
        var correlation = header.correlationId
        try coder.int32(&correlation)
        // Flexible responses carry header v1 (tagged fields), except ApiVersions: always v0.
        coder.flexible = api.isFlexible(header.apiVersion)
        try message.encode(into: &coder, version: header.apiVersion)
        return .respond(coder.finishedChunks())
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
            return .close("encoding failed")
        }
        return .respond(coder.finishedChunks())
    }

    private func route(_ api: ApiKey, header: RequestHeader, frame: [UInt8], bodyStart: Int) async throws -> RequestOutcome {
        let version = header.apiVersion
        let flexible = api.isFlexible(version)
        func body<M: KafkaMessage>(_ type: M.Type) throws -> M {
            try M.decode(frame, from: bodyStart, version: version, flexible: flexible)
        }
        switch api {
        case .apiVersions:
            _ = try body(ApiVersionsRequest.self)
            return try respond(apiVersions(), header, api: api)
        case .metadata: return try respond(await metadata(try body(MetadataRequest.self), version: version), header, api: api)
        case .produce:
            let request = try body(ProduceRequest.self)
            let response = await produce(request)
            return request.acks == 0 ? .silent : try respond(response, header, api: api)
        case .fetch: return try respond(await fetch(try body(FetchRequest.self)), header, api: api)
        case .listOffsets: return try respond(await listOffsets(try body(ListOffsetsRequest.self), version: version), header, api: api)
        case .initProducerId: return try respond(await initProducerId(try body(InitProducerIdRequest.self)), header, api: api)
        case .findCoordinator: return try respond(findCoordinator(try body(FindCoordinatorRequest.self)), header, api: api)
        case .joinGroup:
            return try respond(await joinGroup(try body(JoinGroupRequestMessage.self), header: header), header, api: api)
        case .syncGroup: return try respond(await syncGroup(try body(SyncGroupRequestMessage.self)), header, api: api)
        case .heartbeat:
            let request = try body(HeartbeatRequest.self)
            let error = broker.groups.heartbeat(groupId: request.groupId, memberId: request.memberId, generationId: request.generationId)
            return try respond(ErrorOnlyResponse(errorCode: KafkaError(optional: error).rawValue), header, api: api)
        case .leaveGroup:
            let request = try body(LeaveGroupRequest.self)
            let result = broker.groups.leave(groupId: request.groupId, memberIds: [request.memberId])
            let code = result[request.memberId] ?? .some(.unknownMemberId)
            return try respond(ErrorOnlyResponse(errorCode: KafkaError(optional: code).rawValue), header, api: api)
        case .offsetCommit: return try respond(await offsetCommit(try body(OffsetCommitRequest.self)), header, api: api)
        case .offsetFetch: return try respond(offsetFetch(try body(OffsetFetchRequest.self)), header, api: api)
        case .describeGroups: return try respond(describeGroups(try body(DescribeGroupsRequest.self)), header, api: api)
        case .listGroups:
            _ = try body(EmptyRequest.self)
            var response = ListGroupsResponse()
            response.groups = broker.groups.listGroups().map { ListGroupsResponse.Group(groupId: $0.groupId, protocolType: $0.protocolType) }
            return try respond(response, header, api: api)
        case .createTopics: return try respond(await createTopics(try body(CreateTopicsRequest.self)), header, api: api)
        case .deleteTopics: return try respond(await deleteTopics(try body(DeleteTopicsRequest.self)), header, api: api)
        case .describeConfigs: return try respond(describeConfigs(try body(DescribeConfigsRequest.self)), header, api: api)
        }
    }
}

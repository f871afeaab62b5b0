#if canImport(Glibc)
import Glibc
#endif
import TidemarkStorage
import TidemarkWire

/// A Kafka error answered by a broker, or a failure to talk to one.
public struct KafkaClientError: Error, Sendable, CustomStringConvertible {
    public var code: Int16
    public var message: String
    public init(code: Int16 = -1, _ message: String) {
        self.code = code
        self.message = message
    }
    /// "produce to jobs-0 (Kafka error 56 KAFKA_STORAGE_ERROR)": the code, and its name when known.
    public var description: String {
        guard code != -1 else { return message }
        let name = KafkaError(rawValue: code).map { " \($0.name)" } ?? ""
        return "\(message) (Kafka error \(code)\(name))"
    }
}

/// One blocking TCP connection speaking Kafka frames. Not Sendable: one owner at a time.
final class BrokerConnection {
    let host: String
    let port: Int
    /// The receive timeout (SO_RCVTIMEO) of every read.
    let timeoutSeconds: Int
    private let fd: Int32
    private var correlation: Int32 = 0
    let clientId: String

    init(host: String, port: Int, clientId: String, timeoutSeconds: Int = 30) throws {
        self.timeoutSeconds = timeoutSeconds
        self.host = host
        self.port = port
        self.clientId = clientId
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else {
            throw KafkaClientError("cannot resolve \(host):\(port)")
        }
        defer { freeaddrinfo(result) }
        var socketFd: Int32 = -1
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let address = candidate {
            socketFd = socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
            if socketFd >= 0 && connect(socketFd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 { break }
            if socketFd >= 0 { close(socketFd) }
            socketFd = -1
            candidate = address.pointee.ai_next
        }
        guard socketFd >= 0 else { throw KafkaClientError("cannot connect to \(host):\(port)") }
        fd = socketFd
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// Sends a request and waits for its response (nil body for acks=0 produce).
    func call<Request: KafkaMessage, Response: KafkaMessage>(
        _ api: ApiKey, version: Int16, _ request: Request, expectResponse: Bool = true, as: Response.Type
    ) throws -> Response? {
        correlation &+= 1
        let flexible = api.isFlexible(version)
        var coder = WireCoder(writingFlexible: false)
        var header = RequestHeader(apiKey: api.rawValue, apiVersion: version, correlationId: correlation, clientId: clientId)
        try header.code(&coder, flexible: flexible)
        coder.flexible = flexible
        try request.encode(into: &coder, version: version)
        let payload = try coder.finishedBytes()
        try write(withUnsafeBytes(of: Int32(payload.count).bigEndian) { Array($0) } + payload)
        guard expectResponse else { return nil }
        let size = Int(Int32(bigEndian: try read(4).withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
        guard size >= 4 && size <= 512 << 20 else { throw KafkaClientError("bad response size \(size) from \(host):\(port)") }
        let frame = try read(size)
        let got = Int32(bigEndian: frame.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) })
        guard got == correlation else { throw KafkaClientError("response \(got) to request \(correlation)") }
        // Flexible responses (other than ApiVersions) carry a tagged-field section in the header.
        var start = 4
        if flexible && api != .apiVersions {
            var skip = WireCoder(reading: frame, from: 4, flexible: true)
            try skip.taggedFields()
            start = skip.index
        }
        return try Response.decode(frame, from: start, version: version, flexible: flexible)
    }

    private func write(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw KafkaClientError("write to \(host):\(port) failed (errno \(errno))") }
            sent += n
        }
    }

    private func read(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                throw KafkaClientError("no answer from \(host):\(port) within \(timeoutSeconds) s")
            }
            guard n >= 0 else { throw KafkaClientError("read from \(host):\(port) failed (errno \(errno))") }
            guard n > 0 else { throw KafkaClientError("connection to \(host):\(port) closed") }
            got += n
        }
        return out
    }
}

/// A small Kafka client for the tools: metadata, admin, produce, fetch, offsets and
/// group offsets, routed to partition leaders and group coordinators, over plain TCP.
/// Works against Tidemark and against a Kafka cluster (no SASL/TLS).
///
/// Not Sendable: one task uses it at a time (the CLI). Calls block.
public final class KafkaClient {
    public let bootstrap: String
    private let clientId: String
    private var connections: [Int32: BrokerConnection] = [:]
    private var brokers: [Int32: (host: String, port: Int)] = [:]
    private var leaders: [String: [Int32]] = [:]
    /// The cluster id the last Metadata answer gave (nil before one, or from a broker without).
    public private(set) var clusterId: String?
    private let seed: BrokerConnection

    /// Connects to `host:port`.
    public init(bootstrap: String, clientId: String = "tidemark") throws {
        self.bootstrap = bootstrap
        self.clientId = clientId
        let (host, port) = try Self.parse(bootstrap)
        seed = try BrokerConnection(host: host, port: port, clientId: clientId)
    }

    static func parse(_ address: String) throws -> (String, Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            throw KafkaClientError("'\(address)' is not host:port")
        }
        return (String(address[..<colon]), port)
    }

    private func connection(_ node: Int32) throws -> BrokerConnection {
        if let existing = connections[node] { return existing }
        guard let address = brokers[node] else { return seed }
        let made = try BrokerConnection(host: address.host, port: address.port, clientId: clientId)
        connections[node] = made
        return made
    }

    private func check(_ code: Int16, _ what: String) throws {
        if code != 0 { throw KafkaClientError(code: code, what) }
    }

    // MARK: Metadata and admin

    /// Topic name -> partition count (all topics when `topics` is nil); learns leaders.
    @discardableResult
    public func metadata(topics: [String]? = nil, autoCreate: Bool = false) throws -> [String: Int] {
        var request = MetadataRequest()
        request.topics = topics
        request.allowAutoTopicCreation = autoCreate
        let response = try seed.call(.metadata, version: 4, request, as: MetadataResponse.self)!
        for broker in response.brokers { brokers[broker.nodeId] = (broker.host, Int(broker.port)) }
        clusterId = response.clusterId
        var counts: [String: Int] = [:]
        for topic in response.topics {
            let name = topic.name ?? ""
            if topic.errorCode != 0 {
                if topics != nil { try check(topic.errorCode, "metadata of topic '\(name)'") }
                continue
            }
            let sorted = topic.partitions.sorted { $0.partitionIndex < $1.partitionIndex }
            leaders[name] = sorted.map(\.leaderId)
            counts[name] = sorted.count
        }
        return counts
    }

    /// `autoCreate`: the broker may create a missing topic (`auto.create.topics.enable`), as it
    /// does for a producer's metadata request (kcat, Kafka's console producer).
    public func partitionCount(_ topic: String, autoCreate: Bool = false) throws -> Int {
        guard let count = try metadata(topics: [topic], autoCreate: autoCreate)[topic] else {
            throw KafkaClientError(code: KafkaError.unknownTopicOrPartition.rawValue, "unknown topic '\(topic)'")
        }
        return count
    }

    private func leader(_ topic: String, _ partition: Int) throws -> BrokerConnection {
        if leaders[topic] == nil { try metadata(topics: [topic]) }
        guard let list = leaders[topic], partition >= 0, partition < list.count else {
            throw KafkaClientError(code: KafkaError.unknownTopicOrPartition.rawValue, "topic '\(topic)' has no partition \(partition)")
        }
        return try connection(list[partition])
    }

    public func createTopic(_ name: String, partitions: Int, configs: [(String, String)] = []) throws {
        var request = CreateTopicsRequest()
        var topic = CreateTopicsRequest.Topic()
        topic.name = name
        // -1: the broker's default (num.partitions).
        guard let count = Int32(exactly: partitions), count > 0 || count == -1 else {
            throw KafkaClientError(code: KafkaError.invalidPartitions.rawValue, "invalid partition count \(partitions)")
        }
        topic.numPartitions = count
        topic.replicationFactor = -1
        topic.configs = configs.map { CreateTopicsRequest.Config(name: $0.0, value: $0.1) }
        request.topics = [topic]
        let response = try seed.call(.createTopics, version: 3, request, as: CreateTopicsResponse.self)!
        if let result = response.topics.first {
            try check(result.errorCode, "creating topic '\(name)'\(result.errorMessage.map { ": \($0)" } ?? "")")
        }
    }

    public func deleteTopic(_ name: String) throws {
        var request = DeleteTopicsRequest()
        request.topicNames = [name]
        // v5: TOPIC_DELETION_DISABLED (v3+, INVALID_REQUEST before) and the broker's message.
        let response = try seed.call(.deleteTopics, version: 5, request, as: DeleteTopicsResponse.self)!
        if let result = response.responses.first {
            try check(result.errorCode, "deleting topic '\(name)'\(result.errorMessage.map { ": \($0)" } ?? "")")
        }
    }

    /// Kafka config names and values of a topic.
    public func topicConfigs(_ name: String) throws -> [(String, String)] {
        var request = DescribeConfigsRequest()
        var resource = DescribeConfigsRequest.Resource()
        resource.resourceName = name
        request.resources = [resource]
        let response = try seed.call(.describeConfigs, version: 1, request, as: DescribeConfigsResponse.self)!
        guard let result = response.results.first else { return [] }
        try check(result.errorCode, "describing topic '\(name)'")
        return result.configs.map { ($0.name, $0.value ?? "") }
    }

    // MARK: Offsets, fetch, produce

    /// ListOffsets: -2 earliest, -1 latest (read committed: a Kafka source's last stable
    /// offset, before any open transaction), or a timestamp; nil when no record is that new.
    public func offset(_ topic: String, _ partition: Int, at timestamp: Int64) throws -> Int64? {
        var request = ListOffsetsRequest()
        request.isolationLevel = 1
        var t = ListOffsetsRequest.Topic()
        t.name = topic
        var p = ListOffsetsRequest.Partition()
        p.partitionIndex = Int32(partition)
        p.timestamp = timestamp
        t.partitions = [p]
        request.topics = [t]
        let response = try leader(topic, partition).call(.listOffsets, version: 2, request, as: ListOffsetsResponse.self)!
        guard let result = response.topics.first?.partitions.first else { throw KafkaClientError("empty ListOffsets answer") }
        try check(result.errorCode, "offsets of \(topic)-\(partition)")
        return result.offset >= 0 ? result.offset : nil
    }

    /// Fetches stored batches from `offset` (whole or partial batches at the end are the
    /// caller's to trim), read committed: (bytes, high watermark, the aborted transactions
    /// among them, whose records the caller leaves out; a Kafka source's, Tidemark has none).
    public func fetch(_ topic: String, _ partition: Int, offset: Int64, maxBytes: Int = 1 << 20, maxWaitMs: Int32 = 0)
        throws -> (records: [UInt8], highWatermark: Int64, aborted: [(producerId: Int64, firstOffset: Int64)])
    {
        var request = FetchRequest()
        request.isolationLevel = 1
        request.maxWaitMs = maxWaitMs
        request.minBytes = 1
        request.maxBytes = Int32(maxBytes)
        var t = FetchRequest.Topic()
        t.topic = topic
        var p = FetchRequest.Partition()
        p.partition = Int32(partition)
        p.fetchOffset = offset
        p.partitionMaxBytes = Int32(maxBytes)
        t.partitions = [p]
        request.topics = [t]
        let response = try leader(topic, partition).call(.fetch, version: 11, request, as: FetchResponse.self)!
        guard let result = response.topics.first?.partitions.first else { throw KafkaClientError("empty Fetch answer") }
        try check(result.errorCode, "fetch from \(topic)-\(partition) at \(offset)")
        let bytes = try result.records?.materialize() ?? []
        return (bytes, result.highWatermark, result.abortedTransactions ?? [])
    }

    /// Produces encoded batches to one partition with acks=all; returns the base offset.
    @discardableResult
    public func produce(_ topic: String, _ partition: Int, batches: [UInt8]) throws -> Int64 {
        var request = ProduceRequest()
        request.acks = -1
        var t = ProduceRequest.TopicData()
        t.name = topic
        var p = ProduceRequest.PartitionData()
        p.index = Int32(partition)
        p.records = .bytes(batches[...])
        t.partitions = [p]
        request.topics = [t]
        let response = try leader(topic, partition).call(.produce, version: 7, request, as: ProduceResponse.self)!
        guard let result = response.topics.first?.partitions.first else { throw KafkaClientError("empty Produce answer") }
        try check(result.errorCode, "produce to \(topic)-\(partition)")
        return result.baseOffset
    }

    /// A producer id and epoch for idempotent produce.
    public func initProducerId() throws -> (Int64, Int16) {
        let response = try seed.call(.initProducerId, version: 0, InitProducerIdRequest(), as: InitProducerIdResponse.self)!
        try check(response.errorCode, "InitProducerId")
        return (response.producerId, response.producerEpoch)
    }

    // MARK: Groups

    private func coordinator(_ group: String) throws -> BrokerConnection {
        var request = FindCoordinatorRequest()
        request.key = group
        let response = try seed.call(.findCoordinator, version: 1, request, as: FindCoordinatorResponse.self)!
        try check(response.errorCode, "finding the coordinator of '\(group)'")
        if connections[response.nodeId] == nil && brokers[response.nodeId] == nil {
            brokers[response.nodeId] = (response.host, Int(response.port))
        }
        return try connection(response.nodeId)
    }

    public func listGroups() throws -> [String] {
        let response = try seed.call(.listGroups, version: 1, EmptyRequest(), as: ListGroupsResponse.self)!
        try check(response.errorCode, "ListGroups")
        return response.groups.map(\.groupId).sorted()
    }

    /// (state, member count) of a group.
    public func describeGroup(_ group: String) throws -> (state: String, members: Int) {
        var request = DescribeGroupsRequest()
        request.groups = [group]
        let response = try coordinator(group).call(.describeGroups, version: 3, request, as: DescribeGroupsResponse.self)!
        guard let result = response.groups.first else { throw KafkaClientError("empty DescribeGroups answer") }
        try check(result.errorCode, "describing group '\(group)'")
        return (result.groupState, result.members.count)
    }

    /// Deletes groups that have no members (DeleteGroups v2): per group, nil or its error.
    public func deleteGroups(_ groups: [String]) throws -> [(group: String, error: String?)] {
        var results: [(group: String, error: String?)] = []
        for group in groups {
            let response = try coordinator(group).call(
                .deleteGroups, version: 2, DeleteGroupsRequest(groupsNames: [group]), as: DeleteGroupsResponse.self)!
            guard let result = response.results.first else { throw KafkaClientError("empty DeleteGroups answer") }
            results.append((group, result.errorCode == 0 ? nil : KafkaError(rawValue: result.errorCode)?.name ?? "error \(result.errorCode)"))
        }
        return results
    }

    /// Every group with its type ("classic", "consumer", "share") and state (ListGroups v5).
    public func listGroupsWithTypes() throws -> [(group: String, type: String, state: String)] {
        let response = try seed.call(.listGroups, version: 5, ListGroupsRequest(), as: ListGroupsResponse.self)!
        try check(response.errorCode, "ListGroups")
        return response.groups.map { ($0.groupId, $0.groupType.lowercased(), $0.groupState) }.sorted { $0.group < $1.group }
    }

    /// A share group's partitions (DescribeShareGroupOffsets with Tidemark's details): those it
    /// has state in, or, with `partitions` (topic -> count), those named (a partition without
    /// state has start offset -1, and its details say what a worker would find there).
    public func sharePartitions(_ group: String, partitions: [String: Int]? = nil) throws -> [DescribeShareGroupOffsetsResponse.Topic] {
        var request = DescribeShareGroupOffsetsRequest()
        request.groups = [
            .init(
                groupId: group,
                topics: partitions.map { named in
                    named.sorted { $0.key < $1.key }.map { .init(topicName: $0.key, partitions: (0..<$0.value).map(Int32.init)) }
                })
        ]
        let response = try coordinator(group).call(
            .describeShareGroupOffsets, version: 1, request, as: DescribeShareGroupOffsetsResponse.self)!
        guard let result = response.groups.first else { throw KafkaClientError("empty DescribeShareGroupOffsets answer") }
        try check(result.errorCode, "describing share group '\(group)'")
        return result.topics
    }

    /// A share group's members (ShareGroupDescribe).
    public func shareMembers(_ group: String) throws -> (state: String, members: [GroupSummary.Member]) {
        var request = ShareGroupDescribeRequest()
        request.groupIds = [group]
        let response = try coordinator(group).call(.shareGroupDescribe, version: 1, request, as: ShareGroupDescribeResponse.self)!
        guard let described = response.groups.first else { throw KafkaClientError("empty ShareGroupDescribe answer") }
        if described.errorCode == KafkaError.groupIdNotFound.rawValue { return ("Empty", []) }
        try check(described.errorCode, "describing share group '\(group)'")
        return (
            described.groupState,
            described.members.map {
                GroupSummary.Member(
                    memberId: $0.memberId, clientId: $0.clientId, epoch: $0.memberEpoch,
                    assignment: Dictionary($0.assignment.map { ($0.topicName, $0.partitions) }, uniquingKeysWith: +),
                    clientHost: $0.clientHost)
            }
        )
    }

    /// Moves a share group's start offsets (AlterShareGroupOffsets; refused while it has members).
    public func alterShareOffsets(_ group: String, topic: String, offsets: [Int: Int64]) throws {
        var request = AlterShareGroupOffsetsRequest()
        request.groupId = group
        request.topics = [
            .init(topicName: topic, partitions: offsets.sorted { $0.key < $1.key }.map { .init(partitionIndex: Int32($0.key), startOffset: $0.value) })
        ]
        let response = try coordinator(group).call(.alterShareGroupOffsets, version: 0, request, as: AlterShareGroupOffsetsResponse.self)!
        try check(response.errorCode, "moving the offsets of share group '\(group)'")
        for topic in response.responses { for p in topic.partitions { try check(p.errorCode, "moving \(topic.topicName)-\(p.partitionIndex)") } }
    }

    /// Changes a group's configs by Kafka name (IncrementalAlterConfigs on a GROUP resource);
    /// a nil value deletes the setting (back to the default).
    public func alterGroupConfigs(_ group: String, _ changes: [(String, String?)]) throws {
        try alterConfigs(resourceType: 32, group, changes, "configuring group '\(group)'")
    }

    /// Changes a topic's configs by Kafka name (IncrementalAlterConfigs on a TOPIC resource);
    /// a nil value deletes the setting (back to the broker's default).
    public func alterTopicConfigs(_ topic: String, _ changes: [(String, String?)]) throws {
        try alterConfigs(resourceType: 2, topic, changes, "configuring topic '\(topic)'")
    }

    private func alterConfigs(resourceType: Int8, _ name: String, _ changes: [(String, String?)], _ what: String) throws {
        var request = AlterConfigsRequest(incremental: true)
        var resource = AlterConfigsRequest.Resource()
        resource.resourceType = resourceType
        resource.resourceName = name
        resource.configs = changes.map { .init(name: $0.0, operation: $0.1 == nil ? 1 : 0, value: $0.1) }
        request.resources = [resource]
        let response = try seed.call(.incrementalAlterConfigs, version: 1, request, as: AlterConfigsResponse.self)!
        for result in response.responses where result.errorCode != 0 {
            throw KafkaClientError(code: result.errorCode, "\(what): \(result.errorMessage ?? "error \(result.errorCode)")")
        }
    }

    /// Raises a topic's partition count to `count` (CreatePartitions; never lower); with
    /// `validateOnly`, only checks that it could.
    public func createPartitions(_ topic: String, count: Int, validateOnly: Bool = false) throws {
        guard let total = Int32(exactly: count), total > 0 else {
            throw KafkaClientError(code: KafkaError.invalidPartitions.rawValue, "invalid partition count \(count)")
        }
        var request = CreatePartitionsRequest()
        request.topics = [.init(name: topic, count: total)]
        request.validateOnly = validateOnly
        let response = try seed.call(.createPartitions, version: 1, request, as: CreatePartitionsResponse.self)!
        leaders[topic] = nil
        if let result = response.results.first {
            try check(result.errorCode, "adding partitions to topic '\(topic)'\(result.errorMessage.map { ": \($0)" } ?? "")")
        }
    }

    /// A group as `tidemark groups describe` shows it.
    public struct GroupSummary: Sendable {
        public struct Member: Sendable {
            public var memberId: String
            public var clientId: String
            /// The member epoch (consumer-protocol groups only).
            public var epoch: Int32?
            /// topic -> partitions, as the broker gives them (consumer-protocol and share groups).
            public var assignment: [String: [Int32]]
            /// Where the member connects from, as Kafka shows it ("/127.0.0.1"); empty if unknown.
            public var clientHost: String
            /// A classic consumer's assignment as its group's leader wrote it (the consumer
            /// protocol's bytes; `ConsumerProtocol.decodeAssignment` reads them), else empty.
            public var consumerAssignment: [UInt8]
            public init(
                memberId: String, clientId: String, epoch: Int32? = nil, assignment: [String: [Int32]], clientHost: String = "",
                consumerAssignment: [UInt8] = []
            ) {
                self.memberId = memberId
                self.clientId = clientId
                self.epoch = epoch
                self.assignment = assignment
                self.clientHost = clientHost
                self.consumerAssignment = consumerAssignment
            }
        }
        /// "classic" or "consumer".
        public var type: String
        public var state: String
        public var members: [Member]
        public init(type: String, state: String, members: [Member]) {
            self.type = type
            self.state = state
            self.members = members
        }
    }

    /// The group's protocol, state and members; nil when the broker does not know it.
    public func groupSummary(_ group: String) throws -> GroupSummary? {
        let listed = try seed.call(.listGroups, version: 5, ListGroupsRequest(), as: ListGroupsResponse.self)!
        try check(listed.errorCode, "ListGroups")
        guard let row = listed.groups.first(where: { $0.groupId == group }) else { return nil }
        if row.groupType.lowercased() == "consumer" {
            var request = ConsumerGroupDescribeRequest()
            request.groupIds = [group]
            let response = try coordinator(group).call(
                .consumerGroupDescribe, version: 0, request, as: ConsumerGroupDescribeResponse.self)!
            guard let described = response.groups.first else { throw KafkaClientError("empty ConsumerGroupDescribe answer") }
            try check(described.errorCode, "describing group '\(group)'")
            return GroupSummary(
                type: "consumer", state: described.groupState,
                members: described.members.map { m in
                    GroupSummary.Member(
                        memberId: m.memberId, clientId: m.clientId, epoch: m.memberEpoch,
                        assignment: Dictionary(m.assignment.map { ($0.topicName, $0.partitions) }, uniquingKeysWith: +),
                        clientHost: m.clientHost)
                })
        }
        var request = DescribeGroupsRequest()
        request.groups = [group]
        let response = try coordinator(group).call(.describeGroups, version: 3, request, as: DescribeGroupsResponse.self)!
        guard let described = response.groups.first else { throw KafkaClientError("empty DescribeGroups answer") }
        try check(described.errorCode, "describing group '\(group)'")
        return GroupSummary(
            type: "classic", state: described.groupState,
            members: described.members.map {
                GroupSummary.Member(
                    memberId: $0.memberId, clientId: $0.clientId, assignment: [:], clientHost: $0.clientHost,
                    consumerAssignment: described.protocolType == "consumer" ? $0.memberAssignment : [])
            })
    }

    /// Committed offsets of a group: topic -> partition -> offset.
    public func committedOffsets(_ group: String) throws -> [String: [Int: Int64]] {
        var request = OffsetFetchRequest()
        request.groupId = group
        request.topics = nil
        let response = try coordinator(group).call(.offsetFetch, version: 3, request, as: OffsetFetchResponse.self)!
        try check(response.errorCode, "fetching offsets of '\(group)'")
        var result: [String: [Int: Int64]] = [:]
        for topic in response.topics {
            for p in topic.partitions where p.errorCode == 0 && p.committedOffset >= 0 {
                result[topic.name, default: [:]][Int(p.partitionIndex)] = p.committedOffset
            }
        }
        return result
    }

    /// Commits offsets as a standalone (empty) group member.
    public func commitOffsets(_ group: String, topic: String, offsets: [Int: Int64]) throws {
        var request = OffsetCommitRequest()
        request.groupId = group
        request.generationId = -1
        request.memberId = ""
        var t = OffsetCommitRequest.Topic()
        t.name = topic
        t.partitions = offsets.sorted { $0.key < $1.key }.map { partition, offset in
            var p = OffsetCommitRequest.Partition()
            p.partitionIndex = Int32(partition)
            p.committedOffset = offset
            p.committedMetadata = ""
            return p
        }
        request.topics = [t]
        let response = try coordinator(group).call(.offsetCommit, version: 3, request, as: OffsetCommitResponse.self)!
        for p in response.topics.flatMap(\.partitions) { try check(p.errorCode, "committing offsets of '\(group)'") }
    }
}

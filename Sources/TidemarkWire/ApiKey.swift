/// The Kafka APIs Tidemark speaks, with the versions it advertises and implements.
///
/// Advertised minimums are 0 on purpose: older librdkafka turns features on only when the
/// broker's range overlaps one exact old version (see shared/reference/kafka-wire.md). A
/// request at an advertised version outside `implemented` is answered UNSUPPORTED_VERSION
/// (ApiVersions) or closes the connection (everything else), as Kafka does.
public enum ApiKey: Int16, Sendable, CaseIterable {
    case produce = 0
    case fetch = 1
    case listOffsets = 2
    case metadata = 3
    case offsetCommit = 8
    case offsetFetch = 9
    case findCoordinator = 10
    case joinGroup = 11
    case heartbeat = 12
    case leaveGroup = 13
    case syncGroup = 14
    case describeGroups = 15
    case listGroups = 16
    case apiVersions = 18
    case createTopics = 19
    case deleteTopics = 20
    case initProducerId = 22
    case describeConfigs = 32

    public var advertised: ClosedRange<Int16> {
        switch self {
        case .produce: 0...7
        case .fetch: 0...11
        case .listOffsets: 0...2
        case .metadata: 0...4
        case .offsetCommit: 0...3
        case .offsetFetch: 0...3
        case .findCoordinator: 0...1
        case .joinGroup: 0...5
        case .heartbeat: 0...1
        case .leaveGroup: 0...1
        case .syncGroup: 0...3
        case .describeGroups: 0...3
        case .listGroups: 0...1
        case .apiVersions: 0...3
        case .createTopics: 0...3
        case .deleteTopics: 0...1
        case .initProducerId: 0...0
        case .describeConfigs: 0...1
        }
    }

    /// Versions with a codec here. Produce below 3 and Fetch below 4 carry magic 0/1
    /// message sets, which Tidemark does not store.
    public var implemented: ClosedRange<Int16> {
        switch self {
        case .produce: 3...7
        case .fetch: 4...11
        default: advertised
        }
    }

    /// Whether a version uses the flexible (compact, tagged) encoding.
    public func isFlexible(_ version: Int16) -> Bool { self == .apiVersions && version >= 3 }
}

/// Kafka's error codes, as sent on the wire.
public enum KafkaError: Int16, Sendable {
    case unknownServerError = -1
    case none = 0
    case offsetOutOfRange = 1
    case corruptMessage = 2
    case unknownTopicOrPartition = 3
    case leaderNotAvailable = 5
    case requestTimedOut = 7
    case messageTooLarge = 10
    case offsetMetadataTooLarge = 12
    case coordinatorLoadInProgress = 14
    case coordinatorNotAvailable = 15
    case notCoordinator = 16
    case invalidTopicException = 17
    case recordListTooLarge = 18
    case invalidRequiredAcks = 21
    case invalidTimestamp = 32
    case illegalGeneration = 22
    case inconsistentGroupProtocol = 23
    case invalidGroupId = 24
    case unknownMemberId = 25
    case invalidSessionTimeout = 26
    case rebalanceInProgress = 27
    case unsupportedVersion = 35
    case topicAlreadyExists = 36
    case invalidPartitions = 37
    case invalidReplicationFactor = 38
    case invalidConfig = 40
    case invalidRequest = 42
    case outOfOrderSequenceNumber = 45
    case duplicateSequenceNumber = 46
    case invalidProducerEpoch = 47
    case unknownProducerId = 59
    case kafkaStorageError = 56
    case unsupportedCompressionType = 76
    case memberIdRequired = 79
    case invalidRecord = 87
}

/// Request header v1 (v2 adds tagged fields):
/// ```
/// api_key i16, api_version i16, correlation_id i32, client_id nullable string (int16 length, also in v2)
/// ```
public struct RequestHeader: Sendable, Equatable {
    public var apiKey: Int16 = 0
    public var apiVersion: Int16 = 0
    public var correlationId: Int32 = 0
    public var clientId: String? = nil

    public init(apiKey: Int16 = 0, apiVersion: Int16 = 0, correlationId: Int32 = 0, clientId: String? = nil) {
        self.apiKey = apiKey
        self.apiVersion = apiVersion
        self.correlationId = correlationId
        self.clientId = clientId
    }

    /// Codes the header; `flexible` (header v2) adds its tagged-field section.
    public mutating func code(_ c: inout WireCoder, flexible: Bool) throws(WireError) {
        try c.int16(&apiKey, "api_key")
        try c.int16(&apiVersion, "api_version")
        try c.int32(&correlationId, "correlation_id")
        try c.classicNullableString(&clientId, "client_id")
        if flexible {
            let saved = c.flexible
            c.flexible = true
            try c.taggedFields()
            c.flexible = saved
        }
    }
}

/// A request or response body: its fields, listed once for both directions.
public protocol KafkaMessage: Sendable {
    init()
    mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError)
}

extension KafkaMessage {
    /// Decodes a body that starts at `index` and must end exactly at the end of `bytes`.
    public static func decode(_ bytes: [UInt8], from index: Int = 0, version: Int16, flexible: Bool) throws(WireError) -> Self {
        var coder = WireCoder(reading: bytes, from: index, flexible: flexible)
        var message = Self()
        try message.code(&coder, version: version)
        guard coder.remaining == 0 else { throw .invalid("\(coder.remaining) unexpected bytes after the body") }
        return message
    }

    /// Encodes the body after whatever `coder` already holds.
    public func encode(into coder: inout WireCoder, version: Int16) throws(WireError) {
        var copy = self
        try copy.code(&coder, version: version)
    }

    /// The body alone, as bytes (file slices read into memory).
    public func encoded(version: Int16, flexible: Bool) throws -> [UInt8] {
        var coder = WireCoder(writingFlexible: flexible)
        try encode(into: &coder, version: version)
        return try coder.finishedBytes()
    }
}

/// The Kafka APIs Tidemark speaks, with the versions it implements and advertises.
///
/// Implemented ranges are those Kafka 4.1 serves (apache/kafka's message schemas,
/// `validVersions` after KIP-896), plus the older versions Tidemark already spoke, and Kafka
/// 4.2's ShareFetch and ShareAcknowledge v2 (KIP-1206, KIP-1222) and
/// DescribeShareGroupOffsets v1 (its lag). Advertised
/// = implemented, with one exception Kafka itself makes (KAFKA-18659): Produce is advertised
/// from 0 because older librdkafka turns features off unless the range reaches back, while
/// Produce below 3 (magic 0/1 message sets) is refused. A request at a version outside
/// `implemented` is answered UNSUPPORTED_VERSION (ApiVersions) or closes the connection.
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
    case deleteRecords = 21
    case initProducerId = 22
    case offsetForLeaderEpoch = 23
    case describeAcls = 29
    case createAcls = 30
    case deleteAcls = 31
    case describeConfigs = 32
    case alterConfigs = 33
    case describeLogDirs = 35
    case createPartitions = 37
    case deleteGroups = 42
    case electLeaders = 43
    case incrementalAlterConfigs = 44
    case alterPartitionReassignments = 45
    case listPartitionReassignments = 46
    case offsetDelete = 47
    case describeClientQuotas = 48
    case describeUserScramCredentials = 50
    case describeCluster = 60
    case describeProducers = 61
    case listTransactions = 66
    case consumerGroupHeartbeat = 68
    case consumerGroupDescribe = 69
    case shareGroupHeartbeat = 76
    case shareGroupDescribe = 77
    case shareFetch = 78
    case shareAcknowledge = 79
    case describeShareGroupOffsets = 90
    case alterShareGroupOffsets = 91
    case deleteShareGroupOffsets = 92

    /// Versions with a codec here.
    public var implemented: ClosedRange<Int16> {
        switch self {
        case .produce: 3...13
        case .fetch: 4...18
        case .listOffsets: 0...10
        case .metadata: 0...13
        case .offsetCommit: 0...9
        case .offsetFetch: 0...9
        case .findCoordinator: 0...6
        case .joinGroup: 0...9
        case .heartbeat: 0...4
        case .leaveGroup: 0...5
        case .syncGroup: 0...5
        case .describeGroups: 0...6
        case .listGroups: 0...5
        case .apiVersions: 0...4
        case .createTopics: 0...7
        case .deleteTopics: 0...6
        case .deleteRecords: 0...2
        case .initProducerId: 0...5
        case .offsetForLeaderEpoch: 2...4
        case .describeAcls, .createAcls, .deleteAcls: 0...3
        case .describeConfigs: 0...4
        case .alterConfigs: 0...2
        case .describeLogDirs: 1...4
        case .createPartitions: 0...3
        case .deleteGroups: 0...2
        case .electLeaders: 0...2
        case .incrementalAlterConfigs: 0...1
        case .alterPartitionReassignments: 0...1
        case .listPartitionReassignments: 0...0
        case .offsetDelete: 0...0
        case .describeClientQuotas: 0...1
        case .describeUserScramCredentials: 0...0
        case .describeCluster: 0...2
        case .describeProducers: 0...0
        case .listTransactions: 0...2
        case .consumerGroupHeartbeat: 0...1
        case .consumerGroupDescribe: 0...1
        case .shareGroupHeartbeat: 1...1
        case .shareGroupDescribe: 1...1
        case .shareFetch: 1...2
        case .shareAcknowledge: 1...2
        case .describeShareGroupOffsets: 0...1
        case .alterShareGroupOffsets: 0...0
        case .deleteShareGroupOffsets: 0...0
        }
    }

    /// What ApiVersions lists.
    public var advertised: ClosedRange<Int16> {
        self == .produce ? 0...implemented.upperBound : implemented
    }

    /// The first flexible version (compact encodings, tagged fields, request header v2 and
    /// response header v1), or nil when none is.
    public var firstFlexibleVersion: Int16? {
        switch self {
        case .produce: 9
        case .fetch: 12
        case .listOffsets: 6
        case .metadata: 9
        case .offsetCommit: 8
        case .offsetFetch: 6
        case .findCoordinator: 3
        case .joinGroup: 6
        case .heartbeat: 4
        case .leaveGroup: 4
        case .syncGroup: 4
        case .describeGroups: 5
        case .listGroups: 3
        case .apiVersions: 3
        case .createTopics: 5
        case .deleteTopics: 4
        case .deleteRecords: 2
        case .initProducerId: 2
        case .offsetForLeaderEpoch: 4
        case .describeAcls, .createAcls, .deleteAcls: 2
        case .describeConfigs: 4
        case .alterConfigs: 2
        case .describeLogDirs: 2
        case .createPartitions: 2
        case .deleteGroups: 2
        case .electLeaders: 2
        case .incrementalAlterConfigs: 1
        case .alterPartitionReassignments, .listPartitionReassignments: 0
        case .offsetDelete: nil
        case .describeClientQuotas: 1
        case .describeUserScramCredentials: 0
        case .describeCluster: 0
        case .describeProducers: 0
        case .listTransactions: 0
        case .consumerGroupHeartbeat: 0
        case .consumerGroupDescribe: 0
        case .shareGroupHeartbeat, .shareGroupDescribe, .shareFetch, .shareAcknowledge: 0
        case .describeShareGroupOffsets, .alterShareGroupOffsets, .deleteShareGroupOffsets: 0
        }
    }

    /// Whether a version uses the flexible (compact, tagged) encoding.
    public func isFlexible(_ version: Int16) -> Bool { firstFlexibleVersion.map { version >= $0 } ?? false }

    /// Whether the response header carries tagged fields (v1): flexible versions, except
    /// ApiVersions, whose response header is always v0 so any client can read it.
    public func hasFlexibleResponseHeader(_ version: Int16) -> Bool { self != .apiVersions && isFlexible(version) }
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
    case invalidCommitOffsetSize = 28
    case unsupportedVersion = 35
    case topicAlreadyExists = 36
    case invalidPartitions = 37
    case invalidReplicationFactor = 38
    case invalidReplicaAssignment = 39
    case invalidConfig = 40
    case invalidRequest = 42
    case outOfOrderSequenceNumber = 45
    case duplicateSequenceNumber = 46
    case invalidProducerEpoch = 47
    case transactionalIdAuthorizationFailed = 53
    case securityDisabled = 54
    case unknownProducerId = 59
    case kafkaStorageError = 56
    case topicDeletionDisabled = 73
    case unsupportedCompressionType = 76
    case memberIdRequired = 79
    case preferredLeaderNotAvailable = 80
    case eligibleLeadersNotAvailable = 83
    case electionNotNeeded = 84
    case noReassignmentInProgress = 85
    case invalidRecord = 87
    case resourceNotFound = 91
    case duplicateResource = 92
    case groupIdNotFound = 69
    case unknownTopicId = 100
    case unknownLeaderEpoch = 75
    case fencedLeaderEpoch = 74
    case offsetNotAvailable = 78
    case groupSubscribedToTopic = 86
    case nonEmptyGroup = 68
    case policyViolation = 44
    case fetchSessionIdNotFound = 70
    case invalidFetchSessionEpoch = 71
    case groupMaxSizeReached = 81
    case fencedInstanceId = 82
    case fencedMemberEpoch = 110
    case unreleasedInstanceId = 111
    case unsupportedAssignor = 112
    case staleMemberEpoch = 113
    case mismatchedEndpointType = 114
    case unsupportedEndpointType = 115
    case invalidRegularExpression = 128
    case invalidRecordState = 121
    case shareSessionNotFound = 122
    case invalidShareSessionEpoch = 123
    case shareSessionLimitReached = 133
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

/// What to do with bytes after the last known field of a body.
public enum TrailingBytes: Sendable {
    /// An error: what tests, vectors and our own client use, to catch codec drift.
    case refused
    /// Skipped, as Apache Kafka's broker does with requests: some clients send them (librdkafka
    /// 2.x pads Metadata v12+ "all topics" requests with three bytes after the tagged fields).
    case ignored
}

extension KafkaMessage {
    /// Decodes a body that starts at `index` and ends at the end of `bytes`.
    public static func decode(
        _ bytes: [UInt8], from index: Int = 0, version: Int16, flexible: Bool, trailing: TrailingBytes = .refused,
        limits: DecodeLimits = .unlimited
    ) throws(WireError) -> Self {
        try decoded(bytes, from: index, version: version, flexible: flexible, trailing: trailing, limits: limits, into: Self())
    }

    /// Decodes into `message` (a value whose settings shape the decoding, e.g. which of two
    /// sibling APIs it is) a body that starts at `index` and ends at the end of `bytes`.
    public static func decoded(
        _ bytes: [UInt8], from index: Int = 0, version: Int16, flexible: Bool, trailing: TrailingBytes = .refused,
        limits: DecodeLimits = .unlimited, into message: Self
    ) throws(WireError) -> Self {
        var coder = WireCoder(reading: bytes, from: index, flexible: flexible, limits: limits)
        var message = message
        try message.code(&coder, version: version)
        if trailing == .refused, coder.remaining != 0 {
            throw .invalid("\(coder.remaining) unexpected bytes after the body")
        }
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

extension KafkaError {
    /// Kafka's name of the error (UNKNOWN_TOPIC_OR_PARTITION, ...), as metrics label it and
    /// tools print it.
    public var name: String {
        var out = ""
        for character in "\(self)" {
            if character.isUppercase { out += "_" }
            out += character.uppercased()
        }
        return out
    }
}

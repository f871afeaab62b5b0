import TidemarkStorage

/// An engine error: a stable code (the server maps it to a Kafka error code), a message,
/// and the storage error underneath when there is one.
public struct TidemarkError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: Sendable, Hashable {
        case unknownTopicOrPartition
        case invalidTopicName
        case topicAlreadyExists
        case invalidPartitions
        case invalidConfig
        /// A batch (or record) larger than the topic's max message bytes.
        case messageTooLarge
        /// Bytes that are not a valid RecordBatch v2 (framing or CRC).
        case corruptMessage
        /// A well-framed batch whose records or header fields are wrong (Kafka: INVALID_RECORD).
        case invalidRecord
        /// A record timestamp outside the topic's allowed window (Kafka: INVALID_TIMESTAMP).
        case invalidTimestamp
        /// A batch with a compression codec this build does not handle.
        case unsupportedCompression
        case offsetOutOfRange
        case outOfOrderSequence
        case invalidProducerEpoch
        case unknownMemberId
        case illegalGeneration
        case rebalanceInProgress
        case inconsistentGroupProtocol
        case memberIdRequired
        case invalidSessionTimeout
        case invalidGroupId
        /// Commit metadata longer than `GroupOptions.offsetMetadataMaxBytes`.
        case offsetMetadataTooLarge
        /// A commit that would take the committed offsets past `GroupOptions.offsetsMaxMemoryBytes`.
        case invalidCommitOffsetSize
        /// The broker is closed or closing.
        case brokerClosed
        /// The disk is full: nothing was written.
        case noSpace
        /// Another storage failure; see `storage`.
        case storage
        case invalidRequest
        /// A wait ran out (the embedded producer's max.block.ms).
        case timedOut
        case groupIdNotFound
        /// Committed offsets of a topic the group's members subscribe to cannot be deleted.
        case groupSubscribedToTopic
        /// A topic id no topic has (any more).
        case unknownTopicId
        /// A consumer-protocol member's epoch is not its current one: it must rejoin with epoch 0.
        case fencedMemberEpoch
        /// An offset commit from a consumer-protocol member at an older epoch.
        case staleMemberEpoch
        /// A server-side assignor this broker does not have.
        case unsupportedAssignor
        /// A subscription regular expression that does not compile.
        case invalidRegularExpression
        /// A group already has its maximum number of members.
        case groupMaxSizeReached
        /// An acknowledgement of records the member does not hold (any more).
        case invalidRecordState
        /// A share request names a share session the broker does not have.
        case shareSessionNotFound
        /// A share request's session epoch is not the one expected next.
        case invalidShareSessionEpoch
        /// The broker has as many share sessions as it keeps.
        case shareSessionLimitReached
        /// The group has members: what was asked needs it empty.
        case nonEmptyGroup
        /// A static member (group.instance.id) was replaced by a newer instance with that id.
        case fencedInstanceId
        /// A consumer-protocol member joins with the group.instance.id of a member that is
        /// still in the group (has not left with epoch -2).
        case unreleasedInstanceId
        /// The group is being deleted: try again in a moment (COORDINATOR_LOAD_IN_PROGRESS).
        case groupBusy
        /// Manual replica assignments a single node cannot follow.
        case invalidReplicaAssignment
        /// A request version the group's protocol no longer takes (a consumer-protocol member's
        /// OffsetCommit below v9, which knows no member epochs).
        case unsupportedVersion
    }

    public var code: Code
    public var message: String
    public var storage: StorageError?

    public init(_ code: Code, _ message: String, storage: StorageError? = nil) {
        self.code = code
        self.message = message
        self.storage = storage
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let storage { text += " (\(storage))" }
        return text
    }

    public static func == (lhs: TidemarkError, rhs: TidemarkError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
    }

    /// `wrapping` for the data requests of a user partition (Fetch, ListOffsets, Produce): a
    /// log closed under the request (its topic deleted meanwhile, the broker stopping) is
    /// UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers a partition it no longer has; clients
    /// refresh their metadata. (COORDINATOR_NOT_AVAILABLE there made the Java consumer's
    /// poll() throw IllegalStateException.)
    /// (For a broker that is closed, still `brokerClosed`: the embedded API's callers stop on it.)
    static func servingPartition(_ error: StorageError, _ context: String, brokerClosed: Bool) -> TidemarkError {
        guard error.code == .closed, !brokerClosed else { return wrapping(error, context) }
        return TidemarkError(.unknownTopicOrPartition, "\(context): the partition is gone (its topic was deleted meanwhile)", storage: error)
    }

    /// Classifies a storage error raised while serving a request.
    static func wrapping(_ error: StorageError, _ context: String) -> TidemarkError {
        switch error.code {
        case .invalidBatch:
            if case .unsupportedCompression = error.batchError {
                return TidemarkError(.unsupportedCompression, context, storage: error)
            }
            return TidemarkError(.corruptMessage, context, storage: error)
        case .batchTooLarge: return TidemarkError(.messageTooLarge, context, storage: error)
        case .offsetOutOfRange: return TidemarkError(.offsetOutOfRange, context, storage: error)
        case .noSpace: return TidemarkError(.noSpace, context, storage: error)
        case .closed: return TidemarkError(.brokerClosed, context, storage: error)
        case .failed: return TidemarkError(.storage, context, storage: error)
        default: return TidemarkError(.storage, context, storage: error)
        }
    }
}

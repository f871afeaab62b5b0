import Tidemark
import TidemarkStorage
import TidemarkWire

extension KafkaError {
    /// The Kafka error code for an engine error: the one place where the two meet.
    public init(_ code: TidemarkError.Code) {
        switch code {
        case .unknownTopicOrPartition: self = .unknownTopicOrPartition
        case .invalidTopicName: self = .invalidTopicException
        case .topicAlreadyExists: self = .topicAlreadyExists
        case .invalidPartitions: self = .invalidPartitions
        case .invalidConfig: self = .invalidConfig
        case .messageTooLarge: self = .messageTooLarge
        case .corruptMessage: self = .corruptMessage
        case .invalidRecord: self = .invalidRecord
        case .invalidTimestamp: self = .invalidTimestamp
        case .unsupportedCompression: self = .unsupportedCompressionType
        case .offsetOutOfRange: self = .offsetOutOfRange
        case .outOfOrderSequence: self = .outOfOrderSequenceNumber
        case .invalidProducerEpoch: self = .invalidProducerEpoch
        case .unknownMemberId: self = .unknownMemberId
        case .illegalGeneration: self = .illegalGeneration
        case .rebalanceInProgress: self = .rebalanceInProgress
        case .inconsistentGroupProtocol: self = .inconsistentGroupProtocol
        case .memberIdRequired: self = .memberIdRequired
        case .invalidSessionTimeout: self = .invalidSessionTimeout
        case .invalidGroupId: self = .invalidGroupId
        case .offsetMetadataTooLarge: self = .offsetMetadataTooLarge
        case .invalidCommitOffsetSize: self = .invalidCommitOffsetSize
        case .brokerClosed: self = .coordinatorNotAvailable
        case .noSpace, .storage: self = .kafkaStorageError
        case .invalidRequest: self = .invalidRequest
        case .timedOut: self = .requestTimedOut
        case .groupIdNotFound: self = .groupIdNotFound
        case .groupSubscribedToTopic: self = .groupSubscribedToTopic
        case .unknownTopicId: self = .unknownTopicId
        case .fencedMemberEpoch: self = .fencedMemberEpoch
        case .staleMemberEpoch: self = .staleMemberEpoch
        case .unsupportedAssignor: self = .unsupportedAssignor
        case .invalidRegularExpression: self = .invalidRegularExpression
        case .groupMaxSizeReached: self = .groupMaxSizeReached
        case .invalidRecordState: self = .invalidRecordState
        case .shareSessionNotFound: self = .shareSessionNotFound
        case .invalidShareSessionEpoch: self = .invalidShareSessionEpoch
        case .shareSessionLimitReached: self = .shareSessionLimitReached
        case .nonEmptyGroup: self = .nonEmptyGroup
        case .fencedInstanceId: self = .fencedInstanceId
        case .unreleasedInstanceId: self = .unreleasedInstanceId
        case .groupBusy: self = .coordinatorLoadInProgress
        case .invalidReplicaAssignment: self = .invalidReplicaAssignment
        case .unsupportedVersion: self = .unsupportedVersion
        }
    }

    init(_ error: any Error) {
        if let error = error as? TidemarkError {
            self.init(error.code)
        } else if error is StorageError {
            self = .kafkaStorageError  // a disk failure underneath (a full disk, EIO)
        } else if let code = error as? KafkaError {
            self = code
        } else {
            self = .unknownServerError
        }
    }

    init(optional code: TidemarkError.Code?) {
        if let code { self.init(code) } else { self = .none }
    }

    /// The error message an answer carries beside this code: an engine error's own words
    /// (its description leads with the engine's code name, "unknownTopicOrPartition: ..."),
    /// any other error's description.
    static func message(of error: any Error) -> String {
        (error as? TidemarkError)?.message ?? "\(error)"
    }
}

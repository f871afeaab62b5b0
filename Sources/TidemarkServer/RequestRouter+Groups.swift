import Tidemark
import TidemarkStorage
import TidemarkWire

// FindCoordinator, JoinGroup, SyncGroup, OffsetCommit, OffsetFetch, DescribeGroups.
extension RequestRouter {
    func findCoordinator(_ request: FindCoordinatorRequest) -> FindCoordinatorResponse {
        var response = FindCoordinatorResponse()
        guard request.keyType == 0 else {
            // Transaction coordinators do not exist here.
            response.errorCode = KafkaError.coordinatorNotAvailable.rawValue
            response.errorMessage = "transactions are not supported"
            response.nodeId = -1
            return response
        }
        response.nodeId = config.nodeId
        response.host = config.effectiveAdvertisedHost
        response.port = advertisedPort
        return response
    }

    func joinGroup(_ request: JoinGroupRequestMessage, header: RequestHeader) async -> JoinGroupResponseMessage {
        let joined = await broker.groups.join(
            JoinGroupRequest(
                groupId: request.groupId, memberId: request.memberId, groupInstanceId: request.groupInstanceId,
                clientId: header.clientId ?? "", clientHost: "", sessionTimeoutMs: request.sessionTimeoutMs,
                rebalanceTimeoutMs: request.rebalanceTimeoutMs >= 0 ? request.rebalanceTimeoutMs : request.sessionTimeoutMs,
                protocolType: request.protocolType, protocols: request.protocols.map { ($0.name, $0.metadata) },
                requireKnownMemberId: header.apiVersion >= 4))
        var response = JoinGroupResponseMessage()
        response.errorCode = KafkaError(optional: joined.error).rawValue
        response.generationId = joined.generationId
        response.protocolName = joined.protocolName ?? ""
        response.leader = joined.leaderId
        response.memberId = joined.memberId
        response.members = joined.members.map {
            JoinGroupResponseMessage.Member(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, metadata: $0.metadata)
        }
        return response
    }

    func syncGroup(_ request: SyncGroupRequestMessage) async -> SyncGroupResponseMessage {
        var assignments: [String: [UInt8]] = [:]
        for assignment in request.assignments { assignments[assignment.memberId] = assignment.assignment }
        let synced = await broker.groups.sync(
            groupId: request.groupId, memberId: request.memberId, generationId: request.generationId, assignments: assignments)
        var response = SyncGroupResponseMessage()
        response.errorCode = KafkaError(optional: synced.error).rawValue
        response.assignment = synced.assignment
        return response
    }

    func offsetCommit(_ request: OffsetCommitRequest) async -> OffsetCommitResponse {
        var offsets: [TopicPartition: CommittedOffset] = [:]
        var refused: [TopicPartition: KafkaError] = [:]
        let metadataLimit = broker.groups.options.offsetMetadataMaxBytes
        for topic in request.topics {
            let count = try? broker.partitionCount(of: topic.name)
            for partition in topic.partitions {
                let tp = TopicPartition(topic.name, Int(partition.partitionIndex))
                guard let count, partition.partitionIndex >= 0, Int(partition.partitionIndex) < count else {
                    refused[tp] = .unknownTopicOrPartition
                    continue
                }
                let metadata = partition.committedMetadata ?? ""
                guard metadata.utf8.count <= metadataLimit else {
                    refused[tp] = .offsetMetadataTooLarge
                    continue
                }
                offsets[tp] = CommittedOffset(offset: partition.committedOffset, metadata: metadata)
            }
        }
        var code: KafkaError = .none
        do {
            if let error = try await broker.groups.commitOffsets(
                groupId: request.groupId, memberId: request.memberId, generationId: request.generationId, offsets: offsets)
            {
                code = KafkaError(error)
            }
        } catch {
            code = KafkaError(error)
        }
        var response = OffsetCommitResponse()
        response.topics = request.topics.map { topic in
            var result = OffsetCommitResponse.Topic()
            result.name = topic.name
            result.partitions = topic.partitions.map { partition in
                var p = OffsetCommitResponse.Partition()
                p.partitionIndex = partition.partitionIndex
                let tp = TopicPartition(topic.name, Int(partition.partitionIndex))
                p.errorCode = (refused[tp] ?? code).rawValue
                return p
            }
            return result
        }
        return response
    }

    func offsetFetch(_ request: OffsetFetchRequest) -> OffsetFetchResponse {
        var response = OffsetFetchResponse()
        let committed: [TopicPartition: CommittedOffset]
        var asked: [(String, [Int32])]
        if let topics = request.topics {
            asked = topics.map { ($0.name, $0.partitionIndexes) }
            committed = broker.groups.fetchOffsets(
                groupId: request.groupId, partitions: topics.flatMap { t in t.partitionIndexes.map { TopicPartition(t.name, Int($0)) } })
        } else {
            committed = broker.groups.fetchOffsets(groupId: request.groupId)
            let grouped = Dictionary(grouping: committed.keys, by: \.topic)
            asked = grouped.map { ($0.key, $0.value.map { Int32($0.partition) }.sorted()) }.sorted { $0.0 < $1.0 }
        }
        response.topics = asked.map { name, partitions in
            var topic = OffsetFetchResponse.Topic()
            topic.name = name
            topic.partitions = partitions.map { index in
                var p = OffsetFetchResponse.Partition()
                p.partitionIndex = index
                if let found = committed[TopicPartition(name, Int(index))] {
                    p.committedOffset = found.offset
                    p.metadata = found.metadata
                }
                return p
            }
            return topic
        }
        return response
    }

    func describeGroups(_ request: DescribeGroupsRequest) -> DescribeGroupsResponse {
        var response = DescribeGroupsResponse()
        response.groups = request.groups.map { id in
            let described = broker.groups.describeGroup(id)
            var group = DescribeGroupsResponse.Group()
            group.groupId = id
            group.groupState = described.state.rawValue
            group.protocolType = described.protocolType
            group.protocolData = described.protocolName
            group.members = described.members.map { m in
                var member = DescribeGroupsResponse.Member()
                member.memberId = m.memberId
                member.clientId = m.clientId
                member.clientHost = m.clientHost
                member.memberMetadata = m.metadata
                member.memberAssignment = m.assignment
                return member
            }
            return group
        }
        return response
    }
}

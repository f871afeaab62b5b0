import Tidemark
import TidemarkWire

/// The next-generation consumer group protocol (KIP-848) on the wire: topic ids in, topic
/// names to the engine's `ConsumerGroup` state machines, topic ids back out.
extension RequestRouter {
    func consumerGroupHeartbeat(_ request: ConsumerGroupHeartbeatRequest, header: RequestHeader) async
        -> ConsumerGroupHeartbeatResponse
    {
        var response = ConsumerGroupHeartbeatResponse()
        func refuse(_ message: String) -> ConsumerGroupHeartbeatResponse {
            response.errorCode = KafkaError.invalidRequest.rawValue
            response.errorMessage = message
            response.memberEpoch = -1
            return response
        }
        // KIP-1082: from v1 the member makes its own id (blank is none, as Java's trim sees it).
        if header.apiVersion >= 1 && ConsumerHeartbeat.isBlank(request.memberId) { return refuse("MemberId can't be empty.") }
        // A join says it owns nothing, as an empty list (the engine sees owned partitions with
        // those of unknown topics dropped; the rest of the checks are its own, `malformation`).
        if request.memberEpoch == 0 && request.topicPartitions?.isEmpty != true {
            return refuse("TopicPartitions must be empty when (re-)joining.")
        }
        // Owned partitions by id; ids of deleted topics are dropped (those partitions are gone),
        // and so are partitions the topic does not have and repeats: 26 million listed in one
        // request were made into sets twice under the coordinator's lock.
        let owned = request.topicPartitions.map { topics in
            var seen = Set<TopicPartition>()
            return topics.flatMap { entry -> [TopicPartition] in
                guard let name = topicName(for: entry.topicId), let count = try? broker.partitionCount(of: name) else { return [] }
                return entry.partitions.lazy.filter { (0..<count).contains(Int($0)) }.map { TopicPartition(name, Int($0)) }
                    .filter { seen.insert($0).inserted }
            }
        }
        let result = await broker.consumerGroupHeartbeatWhenRecorded(
            ConsumerHeartbeat(
                groupId: request.groupId, memberId: request.memberId, memberEpoch: request.memberEpoch,
                instanceId: request.instanceId, rackId: request.rackId, rebalanceTimeoutMs: request.rebalanceTimeoutMs,
                subscribedTopicNames: request.subscribedTopicNames, subscribedTopicRegex: request.subscribedTopicRegex,
                serverAssignor: request.serverAssignor, ownedPartitions: owned, clientId: header.clientId ?? "",
                clientHost: Self.clientHost))
        response.errorCode = KafkaError(optional: result.error).rawValue
        response.errorMessage = result.errorMessage
        response.memberId = result.memberId.isEmpty ? nil : result.memberId
        response.memberEpoch = result.memberEpoch
        response.heartbeatIntervalMs = result.heartbeatIntervalMs
        if let assignment = result.assignment {
            response.assignment = .init(topicPartitions: wireTopicPartitions(assignment))
        }
        return response
    }

    func consumerGroupDescribe(_ request: ConsumerGroupDescribeRequest) -> ConsumerGroupDescribeResponse {
        var response = ConsumerGroupDescribeResponse()
        response.groups = request.groupIds.firstOfEachKey { $0 }.map { id in
            var group = ConsumerGroupDescribeResponse.Group()
            group.groupId = id
            guard let described = broker.groups.describeConsumerGroup(id) else {
                group.errorCode = KafkaError.groupIdNotFound.rawValue
                group.errorMessage =
                    broker.groups.groupType(id) == .classic
                    ? "group \(id) is a classic group, not a consumer group" : "group \(id) not found"
                group.groupState = "Dead"
                return group
            }
            if request.includeAuthorizedOperations { group.authorizedOperations = AuthorizedOperations.group }
            group.groupState = described.state.rawValue
            group.groupEpoch = described.groupEpoch
            group.assignmentEpoch = described.assignmentEpoch
            group.assignorName = described.assignorName
            group.members = described.members.map { m in
                var member = ConsumerGroupDescribeResponse.Member()
                member.memberId = m.memberId
                member.instanceId = m.instanceId
                member.rackId = m.rackId
                member.memberEpoch = m.memberEpoch
                member.clientId = m.clientId
                member.clientHost = m.clientHost
                member.subscribedTopicNames = m.subscribedTopicNames
                member.subscribedTopicRegex = m.subscribedTopicRegex
                member.assignment = describedTopicPartitions(m.assignment)
                member.targetAssignment = describedTopicPartitions(m.targetAssignment)
                member.memberType = 1  // a consumer-protocol member (no classic members join these groups)
                return member
            }
            return group
        }
        return response
    }

    /// Partitions grouped by topic, as topic ids (topics in name order, partitions ascending).
    private func wireTopicPartitions(_ partitions: [TopicPartition]) -> [ConsumerTopicPartitions] {
        Dictionary(grouping: partitions, by: \.topic).sorted { $0.key < $1.key }.map { topic, tps in
            ConsumerTopicPartitions(topicId: wireId(of: topic), partitions: tps.map { Int32($0.partition) }.sorted())
        }
    }

    private func describedTopicPartitions(_ partitions: [TopicPartition]) -> [ConsumerGroupDescribeResponse.TopicPartitions] {
        Dictionary(grouping: partitions, by: \.topic).sorted { $0.key < $1.key }.map { topic, tps in
            .init(topicId: wireId(of: topic), topicName: topic, partitions: tps.map { Int32($0.partition) }.sorted())
        }
    }
}

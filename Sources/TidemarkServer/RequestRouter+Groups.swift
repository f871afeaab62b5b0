import Dispatch
import Tidemark
import TidemarkStorage
import TidemarkWire

// FindCoordinator, JoinGroup, SyncGroup, OffsetCommit, OffsetFetch, DescribeGroups.
extension RequestRouter {
    static let transactionsRefused =
        "transactions are not supported: Tidemark is one node without a transaction coordinator (idempotent producers are)"

    /// This node coordinates every group, classic, consumer and share (key type 0). Transactions
    /// (1) need a transaction coordinator, which this node does not have: they are answered
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients treat as fatal at once (with
    /// COORDINATOR_NOT_AVAILABLE, which they retry, `init_transactions` waited for its whole
    /// timeout). Another key type is INVALID_REQUEST, as in Kafka (2, the share-state
    /// coordinator, is asked only by brokers, for state APIs this node does not serve).
    func findCoordinator(_ request: FindCoordinatorRequest) -> FindCoordinatorResponse {
        var response = FindCoordinatorResponse()
        func fill(_ errorCode: inout Int16, _ message: inout String?, _ node: inout Int32, _ host: inout String, _ port: inout Int32) {
            switch request.keyType {
            case 0:
                node = config.nodeId
                host = config.effectiveAdvertisedHost
                port = advertisedPort
            case 1:
                errorCode = KafkaError.transactionalIdAuthorizationFailed.rawValue
                message = Self.transactionsRefused
                node = -1
            default:
                errorCode = KafkaError.invalidRequest.rawValue
                message = "unknown coordinator key type \(request.keyType)"
                node = -1
            }
        }
        fill(&response.errorCode, &response.errorMessage, &response.nodeId, &response.host, &response.port)
        response.coordinators = request.coordinatorKeys.map { key in
            var coordinator = FindCoordinatorResponse.Coordinator()
            coordinator.key = key
            fill(&coordinator.errorCode, &coordinator.errorMessage, &coordinator.nodeId, &coordinator.host, &coordinator.port)
            return coordinator
        }
        return response
    }

    func heartbeat(_ request: HeartbeatRequest) -> ErrorOnlyResponse {
        let error = broker.groups.heartbeat(
            groupId: request.groupId, memberId: request.memberId, groupInstanceId: request.groupInstanceId, generationId: request.generationId)
        return ErrorOnlyResponse(errorCode: KafkaError(optional: error).rawValue)
    }

    /// LeaveGroup: v0-2 one member (its error is the response's); v3+ a list, each answered.
    /// Answered once the record a last member's leave writes is in the log (`leaveWhenRecorded`).
    func leaveGroup(_ request: LeaveGroupRequest) async -> LeaveGroupResponse {
        var response = LeaveGroupResponse()
        if request.members.isEmpty {
            let results = await broker.groups.leaveWhenRecorded(groupId: request.groupId, members: [(request.memberId, nil)])
            response.errorCode = KafkaError(optional: results.first ?? .some(.unknownMemberId)).rawValue
        } else {
            let results = await broker.groups.leaveWhenRecorded(
                groupId: request.groupId, members: request.members.map { ($0.memberId, $0.groupInstanceId) })
            response.members = zip(request.members, results).map { member, result in
                LeaveGroupResponse.Member(
                    memberId: member.memberId, groupInstanceId: member.groupInstanceId, errorCode: KafkaError(optional: result).rawValue)
            }
        }
        return response
    }

    /// ListGroups with Kafka 4's state (v4+) and type (v5) filters; every group here is a
    /// classic one.
    func listGroups(_ request: ListGroupsRequest) -> ListGroupsResponse {
        let states = Set(request.statesFilter.map { $0.lowercased() })
        let types = Set(request.typesFilter.map { $0.lowercased() })
        var response = ListGroupsResponse()
        var rows = broker.groups.listGroups().map {
            ListGroupsResponse.Group(groupId: $0.groupId, protocolType: $0.protocolType, groupState: $0.state, groupType: $0.type.rawValue)
        }
        // Share groups: live ones and those known only by their share state.
        let known = Set(rows.map(\.groupId))
        for id in broker.shares.groupIds() where !known.contains(id) {
            let state = broker.shares.describe(id)?.state ?? "Empty"
            rows.append(ListGroupsResponse.Group(groupId: id, protocolType: "share", groupState: state, groupType: "Share"))
        }
        response.groups = rows.sorted { $0.groupId < $1.groupId }.filter { group in
            (states.isEmpty || states.contains(group.groupState.lowercased()))
                && (types.isEmpty || types.contains(group.groupType.lowercased()))
        }
        return response
    }

    func joinGroup(_ request: JoinGroupRequestMessage, header: RequestHeader) async -> JoinGroupResponseMessage {
        if broker.shareGroupHolds(request.groupId) {
            var refused = JoinGroupResponseMessage()
            refused.errorCode = KafkaError.inconsistentGroupProtocol.rawValue
            refused.memberId = request.memberId
            return refused
        }
        let joined = await broker.groups.join(
            JoinGroupRequest(
                groupId: request.groupId, memberId: request.memberId, groupInstanceId: request.groupInstanceId,
                clientId: header.clientId ?? "", clientHost: Self.clientHost, sessionTimeoutMs: request.sessionTimeoutMs,
                rebalanceTimeoutMs: request.rebalanceTimeoutMs >= 0 ? request.rebalanceTimeoutMs : request.sessionTimeoutMs,
                protocolType: request.protocolType, protocols: request.protocols.map { ($0.name, $0.metadata) },
                requireKnownMemberId: header.apiVersion >= 4, supportsSkipAssignment: header.apiVersion >= 9))
        var response = JoinGroupResponseMessage()
        response.errorCode = KafkaError(optional: joined.error).rawValue
        response.generationId = joined.generationId
        response.protocolType = joined.error == nil ? request.protocolType : nil
        response.protocolName = header.apiVersion >= 7 ? joined.protocolName : (joined.protocolName ?? "")
        response.leader = joined.leaderId
        response.skipAssignment = joined.skipAssignment
        response.memberId = joined.memberId
        response.members = joined.members.map {
            JoinGroupResponseMessage.Member(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, metadata: $0.metadata)
        }
        return response
    }

    /// A JoinGroup or SyncGroup, decoded (`decodeWaiting`).
    enum WaitingRequest: Sendable {
        case join(JoinGroupRequestMessage)
        case sync(SyncGroupRequestMessage)
    }

    /// JoinGroup and SyncGroup wait for the rest of their group: up to the rebalance timeout
    /// (a member's max.poll.interval.ms, as long as it asks). They are decoded here, on the
    /// connection's loop, so that their frames' request-budget bytes go back before they wait:
    /// 260 parked JoinGroups of 1 MiB (padded with tagged fields nobody keeps) held the whole
    /// budget, and no client's request was read for the length of the rebalance. What a
    /// waiting member keeps is bounded by the coordinator instead (`GroupOptions.membersMaxBytes`:
    /// its protocols, 1 MiB at most, else refused at once); a SyncGroup's assignments are kept
    /// only from the group's leader, whose sync does not wait (a follower's are dropped here,
    /// as the coordinator ignores them). Nil: not one of these, or not decodable (the usual
    /// path answers it).
    func decodeWaiting(_ frame: [UInt8]) -> (Parsed, WaitingRequest)? {
        guard frame.count >= 2 else { return nil }
        let apiKey = Int16(frame[0]) << 8 | Int16(frame[1])
        guard apiKey == ApiKey.joinGroup.rawValue || apiKey == ApiKey.syncGroup.rawValue,
            case .success(let parsed) = parse(frame)
        else { return nil }
        let version = parsed.header.apiVersion
        let flexible = parsed.api.isFlexible(version)
        switch parsed.api {
        case .joinGroup:
            guard
                let request = try? JoinGroupRequestMessage.decode(
                    frame, from: parsed.bodyStart, version: version, flexible: flexible, trailing: .ignored, limits: .requests)
            else { return nil }
            return (parsed, .join(request))
        case .syncGroup:
            guard
                var request = try? SyncGroupRequestMessage.decode(
                    frame, from: parsed.bodyStart, version: version, flexible: flexible, trailing: .ignored, limits: .requests)
            else { return nil }
            if !request.assignments.isEmpty && !broker.groups.isLeader(groupId: request.groupId, memberId: request.memberId) {
                request.assignments = []
            }
            return (parsed, .sync(request))
        default:
            return nil
        }
    }

    /// Runs a request `decodeWaiting` decoded, as `handle` runs the others.
    func handleWaiting(_ parsed: Parsed, _ request: WaitingRequest) async -> RequestOutcome {
        inFlight.add(1, ordering: .relaxed)
        defer { inFlight.subtract(1, ordering: .relaxed) }
        let started = DispatchTime.now().uptimeNanoseconds
        let outcome: RequestOutcome
        do {
            switch request {
            case .join(let join): outcome = try respond(await joinGroup(join, header: parsed.header), parsed.header, api: parsed.api)
            case .sync(let sync): outcome = try respond(await syncGroup(sync), parsed.header, api: parsed.api)
            }
        } catch {
            logger.error("request failed", metadata: ["api": "\(parsed.api)", "error": "\(error)"])
            outcome = .failed("\(parsed.api) failed: \(error)")
        }
        metrics.record(parsed.api, nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - started), outcome: outcome)
        return outcome
    }

    func syncGroup(_ request: SyncGroupRequestMessage) async -> SyncGroupResponseMessage {
        var assignments: [String: [UInt8]] = [:]
        for assignment in request.assignments { assignments[assignment.memberId] = assignment.assignment }
        let synced = await broker.groups.sync(
            groupId: request.groupId, memberId: request.memberId, groupInstanceId: request.groupInstanceId,
            generationId: request.generationId, protocolType: request.protocolType, protocolName: request.protocolName,
            assignments: assignments)
        var response = SyncGroupResponseMessage()
        response.errorCode = KafkaError(optional: synced.error).rawValue
        response.assignment = synced.assignment
        if synced.error == nil {
            response.protocolType = synced.protocolType ?? request.protocolType
            response.protocolName = synced.protocolName ?? request.protocolName
        }
        return response
    }

    /// OffsetCommit, run on the loop: checked and appended to the offsets log there, answered
    /// (`answer`, on any thread) at once, or, for a topic synced on every append, once the
    /// commit is durable (the flusher's callback).
    func offsetCommit(_ request: OffsetCommitRequest, version: Int16, _ answer: @escaping @Sendable (OffsetCommitResponse) -> Void) {
        var offsets: [TopicPartition: CommittedOffset] = [:]
        var refused: [TopicPartition: KafkaError] = [:]
        let groupOptions = broker.groups.options
        for topic in request.topics {
            let count = try? broker.partitionCount(of: topic.name)
            for partition in topic.partitions {
                let tp = TopicPartition(topic.name, Int(partition.partitionIndex))
                guard let count, partition.partitionIndex >= 0, Int(partition.partitionIndex) < count else {
                    refused[tp] = .unknownTopicOrPartition
                    continue
                }
                let metadata = partition.committedMetadata ?? ""
                guard groupOptions.metadataFits(metadata) else {
                    refused[tp] = .offsetMetadataTooLarge
                    continue
                }
                offsets[tp] = CommittedOffset(
                    offset: partition.committedOffset, metadata: metadata, leaderEpoch: max(partition.committedLeaderEpoch, -1))
            }
        }
        let topics = request.topics
        // A share group keeps no committed offsets: a commit to one is refused, as Kafka refuses
        // a group of another type (it was stored, and the share group then listed as an empty
        // classic group, with offsets that outlived its deletion).
        if broker.shareGroupHolds(request.groupId) {
            return answer(Self.offsetCommitResponse(topics, refused: [:], code: .groupIdNotFound))
        }
        broker.groups.commitOffsets(
            groupId: request.groupId, memberId: request.memberId, groupInstanceId: request.groupInstanceId,
            generationId: request.generationId, offsets: offsets, sync: broker.commitNeedsSync(offsets.keys),
            memberEpochs: version >= 9
        ) { [refused, failureLog, logger] result in
            let code: KafkaError
            switch result {
            // Versions before 9 know no GROUP_ID_NOT_FOUND for a member's commit: Kafka tells
            // them their generation is stale.
            case .success(.groupIdNotFound?) where version < 9: code = .illegalGeneration
            case .success(let error?): code = KafkaError(error)
            case .success(nil): code = .none
            case .failure(let error):
                code = KafkaError(error)
                // The offsets log could not take it (a full or failed disk): said once a minute.
                failureLog.error(
                    logger, "committing offsets failed", key: "commit:\(request.groupId)",
                    metadata: ["group": "\(request.groupId)", "error": "\(error)"])
            }
            answer(Self.offsetCommitResponse(topics, refused: refused, code: code))
        }
    }

    /// Each partition of `topics` answered with its refusal, or `code`.
    static func offsetCommitResponse(
        _ topics: [OffsetCommitRequest.Topic], refused: [TopicPartition: KafkaError], code: KafkaError
    ) -> OffsetCommitResponse {
        var response = OffsetCommitResponse()
        response.topics = topics.map { topic in
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

    /// OffsetFetch for one group (v0-7) or several (v8+); null topics: every partition the
    /// group committed.
    func offsetFetch(_ request: OffsetFetchRequest) -> OffsetFetchResponse {
        var response = OffsetFetchResponse()
        response.groups = request.groups.firstOfEachKey(\.groupId).map { group in
            var result = OffsetFetchResponse.Group(groupId: group.groupId)
            // (v9+) A member asking as itself must be in its consumer group, at its epoch.
            if let refused = broker.groups.checkFetch(groupId: group.groupId, memberId: group.memberId, memberEpoch: group.memberEpoch) {
                result.errorCode = KafkaError(refused).rawValue
                return result
            }
            let committed: [TopicPartition: CommittedOffset]
            var asked: [(String, [Int32])]
            if let topics = group.topics {
                asked = topics.eachPartitionOnce(topic: \.name, partitions: \.partitionIndexes).map { ($0.name, $0.partitionIndexes) }
                committed = broker.groups.fetchOffsets(
                    groupId: group.groupId, partitions: topics.flatMap { t in t.partitionIndexes.map { TopicPartition(t.name, Int($0)) } })
            } else {
                committed = broker.groups.fetchOffsets(groupId: group.groupId)
                let grouped = Dictionary(grouping: committed.keys, by: \.topic)
                asked = grouped.map { ($0.key, $0.value.map { Int32($0.partition) }.sorted()) }.sorted { $0.0 < $1.0 }
            }
            result.topics = asked.map { name, partitions in
                var topic = OffsetFetchResponse.Topic()
                topic.name = name
                topic.partitions = partitions.map { index in
                    var p = OffsetFetchResponse.Partition()
                    p.partitionIndex = index
                    if let found = committed[TopicPartition(name, Int(index))] {
                        p.committedOffset = found.offset
                        // This node's only leader epoch is 0: another (offsets copied from a
                        // Kafka cluster) would send the consumer to validate it with
                        // OffsetForLeaderEpoch, answered -1, and reset its position. Unknown instead.
                        p.committedLeaderEpoch = found.leaderEpoch == 0 ? 0 : -1
                        p.metadata = found.metadata
                    }
                    return p
                }
                return topic
            }
            return result
        }
        return response
    }

    /// DescribeGroups; an unknown group is "Dead" (v6 adds GROUP_ID_NOT_FOUND and a message,
    /// as Kafka 4 answers).
    func describeGroups(_ request: DescribeGroupsRequest, version: Int16) -> DescribeGroupsResponse {
        var response = DescribeGroupsResponse()
        response.groups = request.groups.firstOfEachKey { $0 }.map { id in
            var group = DescribeGroupsResponse.Group()
            group.groupId = id
            if broker.groups.groupType(id) == .consumer {
                // A consumer-protocol group: described by ConsumerGroupDescribe, dead to this API.
                group.groupState = GroupState.dead.rawValue
                if version >= 6 {
                    group.errorCode = KafkaError.groupIdNotFound.rawValue
                    group.errorMessage = "group \(id) is a consumer group, not a classic group"
                }
                return group
            }
            let described = broker.groups.describeGroup(id)
            if request.includeAuthorizedOperations { group.authorizedOperations = AuthorizedOperations.group }
            group.groupState = described.state.rawValue
            group.protocolType = described.protocolType
            group.protocolData = described.protocolName
            if described.state == .dead && version >= 6 {
                group.errorCode = KafkaError.groupIdNotFound.rawValue
                group.errorMessage = "group \(id) not found"
            }
            group.members = described.members.map { m in
                var member = DescribeGroupsResponse.Member()
                member.memberId = m.memberId
                member.groupInstanceId = m.groupInstanceId
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

    /// OffsetDelete: a group's committed offsets of some partitions, refused per partition
    /// while its members subscribe to the topic. A partition no topic has is
    /// UNKNOWN_TOPIC_OR_PARTITION and deletes nothing, as in Kafka (it answered success).
    func offsetDelete(_ request: OffsetDeleteRequest) async -> OffsetDeleteResponse {
        var response = OffsetDeleteResponse()
        // Looked up once: the answer says what was done with the partitions as they were.
        let partitions = request.topics.flatMap { t in
            let count = (try? broker.partitionCount(of: t.name)) ?? 0
            return t.partitions.filter { $0 >= 0 && Int($0) < count }.map { TopicPartition(t.name, Int($0)) }
        }
        let known = Set(partitions)
        do {
            let results = try await broker.groups.deleteOffsets(groupId: request.groupId, partitions: partitions)
            response.topics = request.topics.map { topic in
                OffsetDeleteResponse.Topic(
                    name: topic.name,
                    partitions: topic.partitions.map { index in
                        let tp = TopicPartition(topic.name, Int(index))
                        let code = known.contains(tp) ? results[tp] ?? nil : .unknownTopicOrPartition
                        return OffsetDeleteResponse.Partition(partitionIndex: index, errorCode: KafkaError(optional: code).rawValue)
                    })
            }
        } catch {
            response.errorCode = KafkaError(error).rawValue
        }
        return response
    }

    /// DeleteGroups: each group without members goes with its committed offsets (or share
    /// state); per group NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND or INVALID_GROUP_ID otherwise.
    func deleteGroups(_ request: DeleteGroupsRequest) async -> DeleteGroupsResponse {
        var response = DeleteGroupsResponse()
        response.results = await broker.deleteGroups(request.groupsNames).map { group, error in
            DeleteGroupsResponse.Result(groupId: group, errorCode: KafkaError(optional: error).rawValue)
        }
        return response
    }
}

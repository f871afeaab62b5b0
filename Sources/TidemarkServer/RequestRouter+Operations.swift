import Foundation
import Tidemark
import TidemarkStorage
import TidemarkWire

// DeleteRecords, OffsetForLeaderEpoch, DescribeLogDirs, CreatePartitions, DescribeCluster,
// DescribeProducers.
extension RequestRouter {
    /// DeleteRecords: each partition's log start moves up to the offset (-1: its end).
    func deleteRecords(_ request: DeleteRecordsRequest) async -> DeleteRecordsResponse {
        var response = DeleteRecordsResponse()
        for topic in request.topics {
            var result = DeleteRecordsResponse.Topic()
            result.name = topic.name
            for partition in topic.partitions {
                var p = DeleteRecordsResponse.Partition()
                p.partitionIndex = partition.partitionIndex
                do {
                    p.lowWatermark = try await broker.deleteRecords(
                        topic: topic.name, partition: Int(partition.partitionIndex), before: partition.offset)
                } catch {
                    p.errorCode = KafkaError(error).rawValue
                }
                result.partitions.append(p)
            }
            response.topics.append(result)
        }
        return response
    }

    /// OffsetForLeaderEpoch: a single node has had one leader epoch, 0, from the start, so it
    /// is answered as Kafka answers with that one epoch (Partition.lastOffsetForLeaderEpoch,
    /// LeaderEpochFileCache.endOffsetFor):
    /// - the caller's current leader epoch is checked first: -1 (none) or 0 pass; above 0 is
    ///   UNKNOWN_LEADER_EPOCH (a leader this node has not been yet), below -1
    ///   FENCED_LEADER_EPOCH (older than ours);
    /// - the epoch asked about: 0 ends at the log end; -1 (undefined), or any epoch after 0,
    ///   is answered epoch -1 at offset -1 with no error (a later one was UNKNOWN_LEADER_EPOCH
    ///   here); one below -1, older than any known, is answered with itself and the start of
    ///   the first epoch after it (0's, at the log start).
    func offsetForLeaderEpoch(_ request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
        var response = OffsetForLeaderEpochResponse()
        response.topics = request.topics.map { topic in
            var result = OffsetForLeaderEpochResponse.Topic()
            result.topic = topic.topic
            result.partitions = topic.partitions.map { partition in
                var p = OffsetForLeaderEpochResponse.Partition()
                p.partition = partition.partition
                do {
                    let (start, end) = try broker.offsets(topic: topic.topic, partition: Int(partition.partition))
                    if partition.currentLeaderEpoch > 0 {
                        p.errorCode = KafkaError.unknownLeaderEpoch.rawValue
                    } else if partition.currentLeaderEpoch < -1 {
                        p.errorCode = KafkaError.fencedLeaderEpoch.rawValue
                    } else if partition.leaderEpoch == 0 {
                        p.leaderEpoch = 0
                        p.endOffset = end
                    } else if partition.leaderEpoch < -1 {
                        p.leaderEpoch = partition.leaderEpoch
                        p.endOffset = start
                    } else {
                        p.leaderEpoch = -1
                        p.endOffset = -1
                    }
                } catch {
                    p.errorCode = KafkaError(error).rawValue
                }
                return p
            }
            return result
        }
        return response
    }

    /// DescribeLogDirs: the one data directory, each partition's size, and the disk's.
    func describeLogDirs(_ request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
        let usage = broker.logDirectoryUsage()
        let wanted: Set<TopicPartition>? = request.topics.map { topics in
            Set(topics.flatMap { t in t.partitions.map { TopicPartition(t.topic, Int($0)) } })
        }
        var result = DescribeLogDirsResponse.Result()
        result.logDir = broker.dataDirectory
        result.totalBytes = usage.totalBytes
        result.usableBytes = usage.usableBytes
        let partitions = usage.partitions.filter { wanted?.contains(TopicPartition($0.topic, $0.partition)) ?? true }
        result.topics = Dictionary(grouping: partitions, by: \.topic).sorted { $0.key < $1.key }.map { name, parts in
            var topic = DescribeLogDirsResponse.Topic()
            topic.name = name
            topic.partitions = parts.map { part in
                var p = DescribeLogDirsResponse.Partition()
                p.partitionIndex = Int32(part.partition)
                p.partitionSize = part.sizeInBytes
                return p
            }
            return topic
        }
        var response = DescribeLogDirsResponse()
        response.results = [result]
        return response
    }

    /// CreatePartitions: raise each topic's count. Assignments, when given, must place each
    /// new partition on this node (INVALID_REPLICA_ASSIGNMENT otherwise, as Kafka answers for
    /// an unknown broker); a topic listed twice is refused (INVALID_REQUEST).
    func createPartitions(_ request: CreatePartitionsRequest) async -> CreatePartitionsResponse {
        var response = CreatePartitionsResponse()
        let duplicated = Set(Dictionary(grouping: request.topics, by: \.name).filter { $0.value.count > 1 }.keys)
        for topic in request.topics {
            var result = CreatePartitionsResponse.Result(name: topic.name)
            do {
                guard !duplicated.contains(topic.name) else {
                    throw TidemarkError(.invalidRequest, "topic '\(topic.name)' listed more than once")
                }
                // (The count is checked first, as in Kafka: a count that is no increase is
                // INVALID_PARTITIONS whatever assignments come with it.)
                if let assignments = topic.assignments, case let existing = try broker.partitionCount(of: topic.name),
                    Int(topic.count) > existing
                {
                    guard assignments.count == Int(topic.count) - existing else {
                        throw TidemarkError(
                            .invalidReplicaAssignment,
                            "\(assignments.count) assignments for \(Int(topic.count) - existing) new partitions")
                    }
                    for replicas in assignments where replicas != [config.nodeId] {
                        throw TidemarkError(
                            .invalidReplicaAssignment, "a single node can only place partitions on broker \(config.nodeId), got \(replicas)")
                    }
                }
                try await broker.createPartitions(topic: topic.name, count: Int(topic.count), validateOnly: request.validateOnly)
            } catch let error as TidemarkError {
                result.errorCode = KafkaError(error.code).rawValue
                result.errorMessage = error.message
            } catch {
                result.errorCode = KafkaError(error).rawValue
            }
            response.results.append(result)
        }
        return response
    }

    /// DescribeCluster: this node is the whole cluster and its controller. Its listener is a
    /// broker endpoint (endpoint type 1): asked as a controller endpoint (2, an admin client
    /// given `bootstrap.controllers`) it answers MISMATCHED_ENDPOINT_TYPE, and any other type
    /// UNSUPPORTED_ENDPOINT_TYPE (INVALID_REQUEST at v0), as a Kafka broker does, rather than
    /// letting a client believe it found a controller.
    func describeCluster(_ request: DescribeClusterRequest, version: Int16) -> DescribeClusterResponse {
        var response = DescribeClusterResponse()
        guard request.endpointType == 1 else {
            let known = request.endpointType == 2
            response.errorCode = (version == 0 ? KafkaError.invalidRequest : known ? .mismatchedEndpointType : .unsupportedEndpointType).rawValue
            response.errorMessage =
                known
                ? "this is a broker endpoint, not a controller endpoint: bootstrap with bootstrap.servers"
                : "unsupported endpoint type \(request.endpointType)"
            return response
        }
        if request.includeClusterAuthorizedOperations { response.clusterAuthorizedOperations = AuthorizedOperations.cluster }
        response.clusterId = config.clusterId ?? broker.clusterId
        response.controllerId = config.nodeId
        response.brokers = [DescribeClusterResponse.Broker(brokerId: config.nodeId, host: config.effectiveAdvertisedHost, port: advertisedPort)]
        return response
    }

    /// DescribeProducers: the idempotent producers each partition remembers.
    func describeProducers(_ request: DescribeProducersRequest) -> DescribeProducersResponse {
        var response = DescribeProducersResponse()
        response.topics = request.topics.eachPartitionOnce(topic: \.name, partitions: \.partitionIndexes).map { topic in
            var result = DescribeProducersResponse.Topic()
            result.name = topic.name
            result.partitions = topic.partitionIndexes.map { index in
                var p = DescribeProducersResponse.Partition()
                p.partitionIndex = index
                do {
                    p.activeProducers = try broker.producers(topic: topic.name, partition: Int(index)).map { producer in
                        var state = DescribeProducersResponse.Producer()
                        state.producerId = producer.producerId
                        state.producerEpoch = Int32(producer.epoch)
                        state.lastSequence = producer.lastSequence
                        state.lastTimestamp = producer.lastTimestamp
                        return state
                    }
                } catch {
                    p.errorCode = KafkaError(error).rawValue
                    p.errorMessage = KafkaError.message(of: error)
                }
                return p
            }
            return result
        }
        return response
    }

    /// ListTransactions: this node has no transaction coordinator (transactional producers are
    /// refused at FindCoordinator), so none is listed; state filters Kafka does not know are
    /// named back, as Kafka names them.
    func listTransactions(_ request: ListTransactionsRequest) -> ListTransactionsResponse {
        var response = ListTransactionsResponse()
        // A pattern Kafka's coordinator could not compile is INVALID_REGULAR_EXPRESSION there
        // (java.util.regex; ICU's syntax is close to it). Compiled only, never matched.
        if let pattern = request.transactionalIdPattern, !pattern.isEmpty, (try? NSRegularExpression(pattern: pattern)) == nil {
            response.errorCode = KafkaError.invalidRegularExpression.rawValue
            return response
        }
        var seen = Set<String>()
        response.unknownStateFilters = request.stateFilters.filter { !Self.transactionStates.contains($0) && seen.insert($0).inserted }
        return response
    }

    /// The transaction states Kafka's coordinator names (its admin client's `TransactionState`).
    static let transactionStates: Set<String> = [
        "Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence",
    ]

    /// DescribeClientQuotas: no quota is set on this node (it enforces none), so none matches;
    /// a filter Kafka refuses is refused with its error and message.
    func describeClientQuotas(_ request: DescribeClientQuotasRequest) -> DescribeClientQuotasResponse {
        var response = DescribeClientQuotasResponse()
        func refuse(_ code: KafkaError, _ message: String) -> DescribeClientQuotasResponse {
            response.errorCode = code.rawValue
            response.errorMessage = message
            response.entries = nil
            return response
        }
        var named = Set<String>()
        for component in request.components {
            let type = component.entityType
            if type.isEmpty { return refuse(.invalidRequest, "Invalid empty entity type.") }
            guard named.insert(type).inserted else {
                return refuse(.invalidRequest, "Entity type \(type) cannot appear more than once in the filter.")
            }
            guard ["ip", "user", "client-id"].contains(type) else { return refuse(.unsupportedVersion, "Unsupported entity type \(type)") }
            switch component.matchType {
            case 0 where component.match == nil:
                return refuse(.invalidRequest, "Request specified MATCH_TYPE_EXACT, but set match string to null.")
            case 1 where component.match != nil:
                return refuse(.invalidRequest, "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.")
            case 2 where component.match != nil:
                return refuse(.invalidRequest, "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.")
            case 0, 1, 2: break
            default: return refuse(.invalidRequest, "Unknown match type \(component.matchType)")
            }
        }
        if named.contains("ip") && (named.contains("user") || named.contains("client-id")) {
            return refuse(
                .invalidRequest,
                "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.")
        }
        return response
    }

    /// DescribeUserScramCredentials: this node has no SASL users, so all of them is none, and
    /// a user named is one that does not exist (named twice: DUPLICATE_RESOURCE), as Kafka
    /// answers.
    func describeUserScramCredentials(_ request: DescribeUserScramCredentialsRequest) -> DescribeUserScramCredentialsResponse {
        var response = DescribeUserScramCredentialsResponse()
        let names = request.users ?? []
        var counts: [String: Int] = [:]
        for name in names { counts[name, default: 0] += 1 }
        var answered = Set<String>()
        response.results = names.filter { answered.insert($0).inserted }.map { name in
            var result = DescribeUserScramCredentialsResponse.Result()
            result.user = name
            if counts[name, default: 0] > 1 {
                result.errorCode = KafkaError.duplicateResource.rawValue
                result.errorMessage = "Cannot describe SCRAM credentials for the same user twice in a single request: \(name)"
            } else {
                result.errorCode = KafkaError.resourceNotFound.rawValue
                result.errorMessage = "Attempt to describe a user credential that does not exist: \(name)"
            }
            return result
        }
        return response
    }
}

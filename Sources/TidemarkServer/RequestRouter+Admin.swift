import Tidemark
import TidemarkStorage
import TidemarkWire

// CreateTopics, DeleteTopics, DescribeConfigs, AlterConfigs, IncrementalAlterConfigs.
extension RequestRouter {
    /// Kafka's config resource types.
    enum ResourceType: Int8 {
        case topic = 2
        case broker = 4
        case group = 32
    }

    func createTopics(_ request: CreateTopicsRequest) async -> CreateTopicsResponse {
        var response = CreateTopicsResponse()
        // A name listed twice is refused whole, and neither entry acts (Kafka's answer).
        let duplicated = Set(Dictionary(grouping: request.topics, by: \.name).filter { $0.value.count > 1 }.keys)
        for topic in request.topics {
            var result = CreateTopicsResponse.Topic(name: topic.name)
            do {
                guard !duplicated.contains(topic.name) else {
                    throw TidemarkError(.invalidRequest, "duplicate topic name '\(topic.name)' in one request")
                }
                guard !broker.isInternalTopic(topic.name) else {
                    throw TidemarkError(.topicAlreadyExists, "'\(topic.name)' is an internal topic; it exists")
                }
                let partitions = try Self.partitionCount(of: topic, nodeId: config.nodeId, defaultPartitions: config.defaultPartitions)
                var topicConfig = broker.options.defaultTopicConfig
                for entry in TopicConfig.inApplyOrder(topic.configs, name: \.name) { try topicConfig.apply(kafkaName: entry.name, value: entry.value) }
                // The settings given are the topic's own (as described); the rest follow the broker's.
                let overrides = Set(topic.configs.map { TopicConfig.overrideName(of: $0.name) })
                if request.validateOnly {
                    if broker.listTopics().contains(topic.name) { throw TidemarkError(.topicAlreadyExists, "topic '\(topic.name)' already exists") }
                    try broker.checkNewTopic(topic.name, partitions: partitions, config: topicConfig)
                } else {
                    try await broker.createTopic(topic.name, partitions: partitions, config: topicConfig, overrides: overrides)
                    result.topicId = wireId(of: topic.name)
                }
                // v5+: what was made, so clients need not ask again.
                result.numPartitions = Int32(partitions)
                result.replicationFactor = 1
                let sources = TopicConfigSources(brokerDefaults: broker.options.defaultTopicConfig, brokerEntries: config.brokerConfigEntries)
                result.configs = topicConfig.kafkaConfigs.map { name, value in
                    CreateTopicsResponse.Config(
                        name: name, value: value,
                        configSource: sources.entry(name, value, overrides: overrides, includeSynonyms: false).configSource)
                }
            } catch let code as KafkaError {
                result.errorCode = code.rawValue
                result.errorMessage = code == .invalidReplicationFactor ? "a single node has replication factor 1" : nil
            } catch let error as TidemarkError {
                result.errorCode = KafkaError(error.code).rawValue
                result.errorMessage = error.message
            } catch {
                // A disk failure underneath (a full disk): KAFKA_STORAGE_ERROR, as for a produce.
                result.errorCode = KafkaError(error).rawValue
                result.errorMessage = KafkaError.message(of: error)
            }
            response.topics.append(result)
        }
        return response
    }

    /// The partition count a CreateTopics entry asks for: num_partitions, or the count of
    /// its manual assignments (then num_partitions and replication_factor must be -1, the
    /// partitions 0..<n each once, on this node alone), or the broker's default.
    static func partitionCount(of topic: CreateTopicsRequest.Topic, nodeId: Int32, defaultPartitions: Int) throws -> Int {
        guard !topic.assignments.isEmpty else {
            guard topic.replicationFactor == -1 || topic.replicationFactor == 1 else { throw KafkaError.invalidReplicationFactor }
            return topic.numPartitions == -1 ? defaultPartitions : Int(topic.numPartitions)
        }
        guard topic.numPartitions == -1 && topic.replicationFactor == -1 else {
            throw TidemarkError(.invalidRequest, "with manual replica assignments, num_partitions and replication_factor must be -1")
        }
        let indexes = topic.assignments.map { Int($0.partitionIndex) }
        guard indexes.sorted() == Array(0..<indexes.count) else {
            throw TidemarkError(.invalidReplicaAssignment, "replica assignments must name partitions 0 to \(indexes.count - 1), each once")
        }
        for assignment in topic.assignments where assignment.brokerIds != [nodeId] {
            throw TidemarkError(
                .invalidReplicaAssignment,
                "partition \(assignment.partitionIndex): a single node can only place it on broker \(nodeId), got \(assignment.brokerIds)")
        }
        return indexes.count
    }

    /// DeleteTopics by name, or (v6) by topic id: UNKNOWN_TOPIC_ID for an id no topic has.
    /// A topic listed twice, or named with both its name and an id, is refused (INVALID_REQUEST).
    func deleteTopics(_ request: DeleteTopicsRequest, version: Int16 = 6) async -> DeleteTopicsResponse {
        var response = DeleteTopicsResponse()
        // delete.topic.enable=false: every topic refused, as Kafka's controller refuses them
        // (INVALID_REQUEST to versions that predate TOPIC_DELETION_DISABLED).
        guard config.deleteTopicEnable else {
            response.responses = request.topics.map { topic in
                var result = DeleteTopicsResponse.Result(name: topic.name)
                result.topicId = topic.topicId
                result.errorCode = (version < 3 ? KafkaError.invalidRequest : .topicDeletionDisabled).rawValue
                result.errorMessage = version < 3 ? "This version does not support topic deletion." : "Topic deletion is disabled."
                return result
            }
            return response
        }
        let listed = request.topics.map { $0.name ?? topicName(for: $0.topicId) ?? "" }.filter { !$0.isEmpty }
        let duplicated = Set(Dictionary(grouping: listed, by: { $0 }).filter { $0.value.count > 1 }.keys)
        for topic in request.topics {
            var result = DeleteTopicsResponse.Result(name: topic.name)
            result.topicId = topic.topicId
            if (topic.name != nil) == !topic.topicId.isZero {
                result.errorCode = KafkaError.invalidRequest.rawValue
                result.errorMessage =
                    topic.name == nil ? "name a topic by its name or by its id: neither was given" : "name a topic by its name or by its id, not both"
                response.responses.append(result)
                continue
            }
            let name = topic.name ?? topicName(for: topic.topicId)
            if let name, duplicated.contains(name) {
                result.name = name
                result.errorCode = KafkaError.invalidRequest.rawValue
                result.errorMessage = "topic '\(name)' listed more than once"
                response.responses.append(result)
                continue
            }
            guard let name else {
                result.errorCode = KafkaError.unknownTopicId.rawValue
                result.errorMessage = "no topic has id \(topic.topicId)"
                response.responses.append(result)
                continue
            }
            result.name = name
            if result.topicId.isZero { result.topicId = wireId(of: name) }
            do {
                try await broker.deleteTopic(name)
            } catch {
                result.errorCode = KafkaError(error).rawValue
                result.errorMessage = KafkaError.message(of: error)
                // A disk that refuses the deletion (full, read-only) is said in the log too.
                if Self.isDiskFailure(error) {
                    failureLog.error(
                        logger, "deleting a topic failed", key: "delete:\(name)", metadata: ["topic": "\(name)", "error": "\(error)"])
                }
            }
            response.responses.append(result)
        }
        return response
    }

    /// `listeners` and `advertised.listeners` as Kafka lists them (`PLAINTEXT://host:port`),
    /// with the port bound, which the settings may have left to the system (port 0).
    var listenerEntries: [BrokerConfigEntry] {
        func listener(_ host: String, _ port: Int) -> String { "PLAINTEXT://\(host.contains(":") ? "[\(host)]" : host):\(port)" }
        return [
            BrokerConfigEntry(name: "advertised.listeners", value: listener(config.effectiveAdvertisedHost, Int(advertisedPort)), isDefault: false),
            BrokerConfigEntry(name: "listeners", value: listener(config.host, boundPort), isDefault: false),
        ]
    }

    /// DescribeConfigs for TOPIC, BROKER and GROUP resources, with each entry's source and
    /// (v1+, when asked) its synonyms: the broker-level setting a topic default comes from.
    func describeConfigs(_ request: DescribeConfigsRequest, version: Int16) -> DescribeConfigsResponse {
        typealias Source = DescribeConfigsResponse.Source
        var response = DescribeConfigsResponse()
        let brokerEntries = ((config.brokerConfigEntries.isEmpty ? BrokerConfig.describing(server: config, broker: broker) : config.brokerConfigEntries)
            + listenerEntries).sorted { $0.name < $1.name }
        for resource in request.resources.firstOfEachKey({ $0 }) {
            var result = DescribeConfigsResponse.Result()
            result.resourceType = resource.resourceType
            result.resourceName = resource.resourceName
            var entries: [DescribeConfigsResponse.Config] = []
            switch ResourceType(rawValue: resource.resourceType) {
            case .topic:
                do {
                    let described = try broker.describeTopic(resource.resourceName)
                    let sources = TopicConfigSources(brokerDefaults: broker.options.defaultTopicConfig, brokerEntries: config.brokerConfigEntries)
                    entries = described.config.kafkaConfigs.map { name, value in
                        sources.entry(name, value, overrides: described.overrides, includeSynonyms: request.includeSynonyms)
                    }
                } catch {
                    result.errorCode = KafkaError(error).rawValue
                    result.errorMessage = KafkaError.message(of: error)
                }
            case .broker where !resource.resourceName.isEmpty && resource.resourceName != "\(config.nodeId)":
                // As Kafka answers: this node's id or "" (the cluster-wide level) only. Any other
                // name answered with every broker setting made a request of 200,000 short names
                // (1.7 MB) a 330 MB answer.
                result.errorCode = KafkaError.invalidRequest.rawValue
                result.errorMessage =
                    Int32(resource.resourceName) == nil
                    ? "broker id must be an integer, but it is: \(resource.resourceName)"
                    : "unexpected broker id, expected \(config.nodeId) or empty string, but received \(resource.resourceName)"
            case .broker:
                entries = brokerEntries.map { entry in
                    var config = DescribeConfigsResponse.Config(name: entry.name, value: entry.value, isDefault: entry.isDefault)
                    config.readOnly = true
                    config.configSource = entry.isDefault ? Source.defaultConfig.rawValue : Source.staticBroker.rawValue
                    if request.includeSynonyms && !entry.isDefault {
                        config.synonyms = [.init(name: entry.name, value: entry.value, source: Source.staticBroker.rawValue)]
                    }
                    return config
                }
            case .group:
                entries = broker.groupConfigs.describe(resource.resourceName).map { name, value, isDefault in
                    var config = DescribeConfigsResponse.Config(name: name, value: value, isDefault: isDefault)
                    config.configSource = isDefault ? Source.defaultConfig.rawValue : Source.dynamicGroup.rawValue
                    return config
                }
            case nil:
                result.errorCode = KafkaError.invalidRequest.rawValue
                result.errorMessage = "unsupported resource type \(resource.resourceType)"
            }
            // Null or empty: every config (kafka-python sends an empty list for "all").
            let wanted = resource.configurationKeys.flatMap { $0.isEmpty ? nil : Set($0) }
            result.configs = entries.filter { wanted?.contains($0.name) ?? true }
            for index in result.configs.indices {
                result.configs[index].configType = BrokerConfig.configType(of: result.configs[index].name)
            }
            response.results.append(result)
        }
        return response
    }

    /// AlterConfigs (the whole set: names left out return to their defaults) and
    /// IncrementalAlterConfigs (SET and DELETE; APPEND and SUBTRACT apply to list configs:
    /// cleanup.policy and the replication throttles) for TOPIC and GROUP resources. Broker settings are static
    /// here: altering one is refused as read-only.
    func alterConfigs(_ request: AlterConfigsRequest) async -> AlterConfigsResponse {
        var response = AlterConfigsResponse()
        // Refused before anything applies, as Kafka's ConfigAdminManager refuses them: a
        // resource named twice (both copies), a setting named twice, a null value to set.
        let repeated = Set(
            Dictionary(grouping: request.resources, by: { "\($0.resourceType)/\($0.resourceName)" }).filter { $0.value.count > 1 }.keys)
        for resource in request.resources {
            var result = AlterConfigsResponse.Result(resourceType: resource.resourceType, resourceName: resource.resourceName)
            do {
                guard !repeated.contains("\(resource.resourceType)/\(resource.resourceName)") else {
                    throw TidemarkError(.invalidRequest, "Each resource must appear at most once.")
                }
                guard Set(resource.configs.map(\.name)).count == resource.configs.count else {
                    throw TidemarkError(.invalidRequest, "Error due to duplicate config keys")
                }
                let nulls = resource.configs.filter { $0.value == nil && !(request.incremental && $0.operation == 1) }.map(\.name)
                guard nulls.isEmpty else { throw TidemarkError(.invalidRequest, "Null value not supported for : \(nulls.joined(separator: ", "))") }
                var changes: [ConfigChange] = []
                for entry in resource.configs {
                    switch (request.incremental ? entry.operation : 0) {
                    case 0: changes.append(.set(entry.name, entry.value))
                    case 1: changes.append(.delete(entry.name))
                    case 2: changes.append(.append(entry.name, entry.value))
                    case 3: changes.append(.subtract(entry.name, entry.value))
                    default: throw TidemarkError(.invalidRequest, "unknown config operation \(entry.operation)")
                    }
                }
                switch ResourceType(rawValue: resource.resourceType) {
                case .topic:
                    try await broker.alterTopicConfig(
                        resource.resourceName, changes: changes, replacing: !request.incremental, validateOnly: request.validateOnly)
                case .group:
                    try await broker.alterGroupConfig(
                        resource.resourceName, changes: changes, replacing: !request.incremental, validateOnly: request.validateOnly)
                case .broker:
                    throw TidemarkError(
                        .invalidConfig, "broker settings are read-only while the node runs: set them with tidemark serve --config")
                case nil:
                    throw TidemarkError(.invalidRequest, "unsupported resource type \(resource.resourceType)")
                }
            } catch let error as TidemarkError {
                result.errorCode = KafkaError(error.code).rawValue
                result.errorMessage = error.message
            } catch {
                result.errorCode = KafkaError(error).rawValue
                result.errorMessage = KafkaError.message(of: error)
            }
            response.responses.append(result)
        }
        return response
    }
}

// DescribeAcls, CreateAcls, DeleteAcls: this node has no authorizer; Kafka without one
// answers each with SECURITY_DISABLED (AclApis), and so does Tidemark. Tools that list ACLs
// (sarama's ClusterAdmin, kafka-acls.sh, UIs) then say why, instead of losing the connection.
extension RequestRouter {
    static let noAuthorizer = "No Authorizer is configured."

    func describeAcls(_ request: DescribeAclsRequest) -> DescribeAclsResponse {
        var response = DescribeAclsResponse()
        response.errorCode = KafkaError.securityDisabled.rawValue
        response.errorMessage = "No Authorizer is configured on the broker"
        return response
    }

    func createAcls(_ request: CreateAclsRequest) -> CreateAclsResponse {
        var response = CreateAclsResponse()
        response.results = request.creations.map { _ in
            CreateAclsResponse.Result(errorCode: KafkaError.securityDisabled.rawValue, errorMessage: Self.noAuthorizer)
        }
        return response
    }

    func deleteAcls(_ request: DeleteAclsRequest) -> DeleteAclsResponse {
        var response = DeleteAclsResponse()
        response.filterResults = request.filters.map { _ in
            DeleteAclsResponse.FilterResult(errorCode: KafkaError.securityDisabled.rawValue, errorMessage: Self.noAuthorizer)
        }
        return response
    }
}

// ElectLeaders: one node leads every partition it serves, so there is never an election to
// hold. Answered as Kafka's controller answers a partition whose leader is already the
// preferred one: ELECTION_NOT_NEEDED (leaving it out when every partition was asked for),
// UNKNOWN_TOPIC_OR_PARTITION for a partition no topic has, and for an offline partition,
// which no election can bring back, PREFERRED_LEADER_NOT_AVAILABLE or
// ELIGIBLE_LEADERS_NOT_AVAILABLE. kafka-leader-election.sh then says what Kafka's says.
extension RequestRouter {
    func electLeaders(_ request: ElectLeadersRequest, version: Int16) -> ElectLeadersResponse {
        var response = ElectLeadersResponse()
        guard request.electionType == 0 || request.electionType == 1 else {
            response.errorCode = KafkaError.invalidRequest.rawValue
            return response
        }
        let unclean = request.electionType == 1
        var offline: [String: Set<Int>] = [:]
        func result(_ topic: String, _ partition: Int32) -> ElectLeadersResponse.Partition {
            guard let count = try? broker.partitionCount(of: topic) else {
                return .init(partitionId: partition, errorCode: KafkaError.unknownTopicOrPartition.rawValue, errorMessage: "No such topic as \(topic)")
            }
            guard partition >= 0 && Int(partition) < count else {
                return .init(
                    partitionId: partition, errorCode: KafkaError.unknownTopicOrPartition.rawValue,
                    errorMessage: "No such partition as \(topic)-\(partition)")
            }
            if offline[topic] == nil { offline[topic] = broker.unavailablePartitions(of: topic) }
            if offline[topic]?.contains(Int(partition)) == true {
                let code: KafkaError = unclean ? .eligibleLeadersNotAvailable : .preferredLeaderNotAvailable
                return .init(partitionId: partition, errorCode: code.rawValue, errorMessage: "\(topic)-\(partition) is offline on this node")
            }
            return .init(partitionId: partition, errorCode: KafkaError.electionNotNeeded.rawValue)
        }
        if let asked = request.topicPartitions {
            response.replicaElectionResults = asked.map { topic in
                .init(topic: topic.topic, partitionResult: topic.partitions.map { result(topic.topic, $0) })
            }
        } else {
            response.replicaElectionResults = (broker.listTopics() + broker.internalTopicNames).map { topic in
                let count = (try? broker.partitionCount(of: topic)) ?? 0
                return .init(
                    topic: topic,
                    partitionResult: (0..<Int32(count)).map { result(topic, $0) }.filter { $0.errorCode != KafkaError.electionNotNeeded.rawValue })
            }
        }
        return response
    }

    /// ListPartitionReassignments: none is ever under way (one node holds every replica), so
    /// the answer lists none; topics that do not exist are left out, as Kafka's controller
    /// leaves them.
    func listPartitionReassignments(_ request: ListPartitionReassignmentsRequest) -> ListPartitionReassignmentsResponse {
        ListPartitionReassignmentsResponse()
    }

    /// AlterPartitionReassignments: this node holds each partition's one replica, so the only
    /// assignment there is this node alone, which is where the partition already is (done at once, as
    /// Kafka completes a reassignment to the current replicas). Others are refused with Kafka's
    /// messages: an empty list, a node named twice, a node that is not this one; a
    /// cancellation finds nothing to cancel.
    func alterPartitionReassignments(_ request: AlterPartitionReassignmentsRequest) -> AlterPartitionReassignmentsResponse {
        var response = AlterPartitionReassignmentsResponse()
        response.allowReplicationFactorChange = request.allowReplicationFactorChange
        response.responses = request.topics.map { topic in
            var result = AlterPartitionReassignmentsResponse.Topic()
            result.name = topic.name
            let count = try? broker.partitionCount(of: topic.name)
            result.partitions = topic.partitions.map { asked in
                var p = AlterPartitionReassignmentsResponse.Partition()
                p.partitionIndex = asked.partitionIndex
                func refuse(_ code: KafkaError, _ message: String) {
                    p.errorCode = code.rawValue
                    p.errorMessage = message
                }
                guard let count else {
                    refuse(.unknownTopicOrPartition, "Unable to find a topic named \(topic.name).")
                    return p
                }
                guard asked.partitionIndex >= 0, Int(asked.partitionIndex) < count else {
                    refuse(.unknownTopicOrPartition, "Unable to find partition \(topic.name):\(asked.partitionIndex).")
                    return p
                }
                guard let replicas = asked.replicas else {
                    refuse(.noReassignmentInProgress, "No partition reassignment is in progress.")
                    return p
                }
                // Checked as Kafka's controller checks them, in ascending order, in one pass
                // (a list may hold millions of ids): this node is the only broker, so the
                // first fault is an id below it, else this node named twice, else an id above.
                guard !replicas.isEmpty else {
                    refuse(.invalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
                    return p
                }
                let node = config.nodeId
                var (below, above, mine): (Int32?, Int32?, Int) = (nil, nil, 0)
                for id in replicas {
                    if id < node { below = min(below ?? id, id) } else if id > node { above = min(above ?? id, id) } else { mine += 1 }
                }
                if let id = below ?? (mine > 1 ? nil : above) {
                    refuse(.invalidReplicaAssignment, "The manual partition assignment includes broker \(id), but no such broker is registered.")
                } else if mine > 1 {
                    refuse(.invalidReplicaAssignment, "The manual partition assignment includes the broker \(node) more than once.")
                }
                return p
            }
            return result
        }
        return response
    }
}

/// Where a topic setting's value comes from, as Kafka's DescribeConfigs says it: the topic's
/// own setting (DYNAMIC_TOPIC_CONFIG); else the broker's setting of it when the broker sets it
/// to other than Kafka's default (STATIC_BROKER_CONFIG: `--config`, `server.properties`); else
/// Kafka's default (DEFAULT_CONFIG). The synonyms list each level that has a value, the one
/// in force first.
struct TopicConfigSources {
    typealias Source = DescribeConfigsResponse.Source
    let brokerDefaults: [String: String]
    let kafkaDefaults: [String: String]
    /// The broker settings the operator gave, by Kafka name, as given (empty when embedded).
    let given: [String: String]

    init(brokerDefaults: TopicConfig, brokerEntries: [BrokerConfigEntry] = []) {
        self.brokerDefaults = Dictionary(uniqueKeysWithValues: brokerDefaults.kafkaConfigs)
        self.kafkaDefaults = Dictionary(uniqueKeysWithValues: TopicConfig().kafkaConfigs)
        self.given = Dictionary(brokerEntries.filter { !$0.isDefault }.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    func entry(_ name: String, _ value: String, overrides: Set<String>, includeSynonyms: Bool) -> DescribeConfigsResponse.Config {
        var synonyms: [DescribeConfigsResponse.Synonym] = []
        if overrides.contains(name) { synonyms.append(.init(name: name, value: value, source: Source.dynamicTopic.rawValue)) }
        if let brokerName = BrokerConfig.brokerName(ofTopicConfig: name) {
            if let brokerValue = brokerDefaults[name], brokerValue != kafkaDefaults[name] {
                // Under the names the operator gave it (log.retention.hours=24), the one in
                // force first, as Kafka lists them.
                let givenAs = (BrokerConfig.brokerSynonyms[name] ?? [brokerName]).compactMap { name in
                    self.given[name].map { (name, $0) }
                }
                for (synonym, synonymValue) in givenAs.isEmpty ? [(brokerName, brokerValue)] : givenAs {
                    synonyms.append(.init(name: synonym, value: synonymValue, source: Source.staticBroker.rawValue))
                }
            }
            if let kafkaValue = kafkaDefaults[name], let (synonym, synonymValue) = BrokerConfig.defaultSynonym(ofTopicConfig: name, kafkaDefault: kafkaValue) {
                synonyms.append(.init(name: synonym, value: synonymValue, source: Source.defaultConfig.rawValue))
            }
        }
        let source = synonyms.first?.source ?? Source.defaultConfig.rawValue
        var entry = DescribeConfigsResponse.Config(name: name, value: value, isDefault: source == Source.defaultConfig.rawValue)
        entry.configSource = source
        if includeSynonyms { entry.synonyms = synonyms }
        return entry
    }
}

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
        for topic in request.topics {
            var result = CreateTopicsResponse.Topic(name: topic.name)
            do {
                guard topic.replicationFactor == -1 || topic.replicationFactor == 1 else {
                    throw KafkaError.invalidReplicationFactor
                }
                guard !broker.isInternalTopic(topic.name) else { throw TidemarkError(.invalidTopicName, "'\(topic.name)' is internal") }
                let partitions = topic.numPartitions == -1 ? config.defaultPartitions : Int(topic.numPartitions)
                var topicConfig = broker.options.defaultTopicConfig
                for entry in topic.configs { try topicConfig.apply(kafkaName: entry.name, value: entry.value) }
                if request.validateOnly {
                    if broker.listTopics().contains(topic.name) { throw TidemarkError(.topicAlreadyExists, "topic '\(topic.name)' already exists") }
                    try broker.checkNewTopic(topic.name, partitions: partitions, config: topicConfig)
                } else {
                    try await broker.createTopic(topic.name, partitions: partitions, config: topicConfig)
                    result.topicId = wireId(of: topic.name)
                }
                // v5+: what was made, so clients need not ask again.
                result.numPartitions = Int32(partitions)
                result.replicationFactor = 1
                let defaults = Dictionary(uniqueKeysWithValues: broker.options.defaultTopicConfig.kafkaConfigs)
                result.configs = topicConfig.kafkaConfigs.map { name, value in
                    CreateTopicsResponse.Config(
                        name: name, value: value,
                        configSource: defaults[name] == value
                            ? DescribeConfigsResponse.Source.defaultConfig.rawValue : DescribeConfigsResponse.Source.dynamicTopic.rawValue)
                }
            } catch let code as KafkaError {
                result.errorCode = code.rawValue
                result.errorMessage = code == .invalidReplicationFactor ? "a single node has replication factor 1" : nil
            } catch let error as TidemarkError {
                result.errorCode = KafkaError(error.code).rawValue
                result.errorMessage = error.message
            } catch {
                result.errorCode = KafkaError.unknownServerError.rawValue
                result.errorMessage = "\(error)"
            }
            response.topics.append(result)
        }
        return response
    }

    /// DeleteTopics by name, or (v6) by topic id: UNKNOWN_TOPIC_ID for an id no topic has.
    func deleteTopics(_ request: DeleteTopicsRequest) async -> DeleteTopicsResponse {
        var response = DeleteTopicsResponse()
        for topic in request.topics {
            var result = DeleteTopicsResponse.Result(name: topic.name)
            result.topicId = topic.topicId
            let name = topic.name ?? topicName(for: topic.topicId)
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
                result.errorMessage = (error as? TidemarkError)?.message
            }
            response.responses.append(result)
        }
        return response
    }

    /// DescribeConfigs for TOPIC, BROKER and GROUP resources, with each entry's source and
    /// (v1+, when asked) its synonyms: the broker-level setting a topic default comes from.
    func describeConfigs(_ request: DescribeConfigsRequest, version: Int16) -> DescribeConfigsResponse {
        typealias Source = DescribeConfigsResponse.Source
        var response = DescribeConfigsResponse()
        let brokerEntries = config.brokerConfigEntries.isEmpty ? BrokerConfig.describing(server: config, broker: broker) : config.brokerConfigEntries
        for resource in request.resources {
            var result = DescribeConfigsResponse.Result()
            result.resourceType = resource.resourceType
            result.resourceName = resource.resourceName
            var entries: [DescribeConfigsResponse.Config] = []
            switch ResourceType(rawValue: resource.resourceType) {
            case .topic:
                do {
                    let described = try broker.describeTopic(resource.resourceName)
                    let defaults = Dictionary(uniqueKeysWithValues: broker.options.defaultTopicConfig.kafkaConfigs)
                    entries = described.config.kafkaConfigs.map { name, value in
                        var entry = DescribeConfigsResponse.Config(name: name, value: value, isDefault: defaults[name] == value)
                        if request.includeSynonyms, let brokerName = BrokerConfig.brokerName(ofTopicConfig: name),
                            let brokerValue = defaults[name]
                        {
                            if !entry.isDefault {
                                entry.synonyms.append(.init(name: name, value: value, source: Source.dynamicTopic.rawValue))
                            }
                            entry.synonyms.append(.init(name: brokerName, value: brokerValue, source: Source.staticBroker.rawValue))
                        }
                        return entry
                    }
                } catch {
                    result.errorCode = KafkaError(error).rawValue
                    result.errorMessage = "\(error)"
                }
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
            let wanted = resource.configurationKeys.map(Set.init)
            result.configs = entries.filter { wanted?.contains($0.name) ?? true }
            for index in result.configs.indices {
                result.configs[index].configType = BrokerConfig.configType(of: result.configs[index].name)
            }
            response.results.append(result)
        }
        return response
    }

    /// AlterConfigs (the whole set: names left out return to their defaults) and
    /// IncrementalAlterConfigs (SET and DELETE; APPEND and SUBTRACT apply to list configs,
    /// which Tidemark has none of) for TOPIC and GROUP resources. Broker settings are static
    /// here: altering one is refused as read-only.
    func alterConfigs(_ request: AlterConfigsRequest) async -> AlterConfigsResponse {
        var response = AlterConfigsResponse()
        for resource in request.resources {
            var result = AlterConfigsResponse.Result(resourceType: resource.resourceType, resourceName: resource.resourceName)
            do {
                var changes: [ConfigChange] = []
                for entry in resource.configs {
                    switch (request.incremental ? entry.operation : 0) {
                    case 0: changes.append(.set(entry.name, entry.value))
                    case 1: changes.append(.delete(entry.name))
                    case 2, 3: throw TidemarkError(.invalidConfig, "\(entry.name) is not a list: APPEND and SUBTRACT do not apply")
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
                result.errorMessage = "\(error)"
            }
            response.responses.append(result)
        }
        return response
    }
}

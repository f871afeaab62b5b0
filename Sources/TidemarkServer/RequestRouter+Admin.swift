import Tidemark
import TidemarkStorage
import TidemarkWire

// CreateTopics, DeleteTopics, DescribeConfigs.
extension RequestRouter {
    func createTopics(_ request: CreateTopicsRequest) async -> CreateTopicsResponse {
        var response = CreateTopicsResponse()
        for topic in request.topics {
            var result = CreateTopicsResponse.Topic(name: topic.name)
            do {
                guard topic.replicationFactor == -1 || topic.replicationFactor == 1 else {
                    throw KafkaError.invalidReplicationFactor
                }
                let partitions = topic.numPartitions == -1 ? config.defaultPartitions : Int(topic.numPartitions)
                var topicConfig = broker.options.defaultTopicConfig
                for entry in topic.configs { try topicConfig.apply(kafkaName: entry.name, value: entry.value) }
                if request.validateOnly {
                    if broker.listTopics().contains(topic.name) { throw TidemarkError(.topicAlreadyExists, "topic '\(topic.name)' already exists") }
                } else {
                    try await broker.createTopic(topic.name, partitions: partitions, config: topicConfig)
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

    func deleteTopics(_ request: DeleteTopicsRequest) async -> DeleteTopicsResponse {
        var response = DeleteTopicsResponse()
        for name in request.topicNames {
            var result = DeleteTopicsResponse.Result(name: name)
            do { try await broker.deleteTopic(name) } catch { result.errorCode = KafkaError(error).rawValue }
            response.responses.append(result)
        }
        return response
    }

    func describeConfigs(_ request: DescribeConfigsRequest) -> DescribeConfigsResponse {
        var response = DescribeConfigsResponse()
        for resource in request.resources {
            var result = DescribeConfigsResponse.Result()
            result.resourceType = resource.resourceType
            result.resourceName = resource.resourceName
            var entries: [(String, String)] = []
            switch resource.resourceType {
            case 2:
                do {
                    entries = try broker.describeTopic(resource.resourceName).config.kafkaConfigs
                } catch {
                    result.errorCode = KafkaError(error).rawValue
                    result.errorMessage = "\(error)"
                }
            case 4:
                let described = config.brokerConfigEntries.isEmpty ? BrokerConfig.describing(server: config, broker: broker) : config.brokerConfigEntries
                entries = described.map { ($0.name, $0.value) }
            default:
                result.errorCode = KafkaError.invalidRequest.rawValue
                result.errorMessage = "unsupported resource type \(resource.resourceType)"
            }
            let wanted = resource.configurationKeys.map(Set.init)
            let defaults = Dictionary(uniqueKeysWithValues: broker.options.defaultTopicConfig.kafkaConfigs)
            result.configs = entries.filter { wanted?.contains($0.0) ?? true }.map {
                DescribeConfigsResponse.Config(name: $0.0, value: $0.1, isDefault: defaults[$0.0] == $0.1)
            }
            response.results.append(result)
        }
        return response
    }
}

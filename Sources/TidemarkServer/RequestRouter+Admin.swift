import Tidemark
import TidemarkStorage
import TidemarkWire

// CreateTopics, DeleteTopics, DescribeConfigs, and the mapping of Kafka topic configs.
extension RequestRouter {
    /// Kafka topic config names Tidemark understands, applied to a `TopicConfig`.
    static func apply(_ name: String, _ value: String?, to config: inout TopicConfig) throws(TidemarkError) {
        func number() throws(TidemarkError) -> Int64 {
            guard let value, let n = Int64(value) else { throw TidemarkError(.invalidConfig, "\(name) needs a number, got \(value ?? "null")") }
            return n
        }
        switch name {
        case "retention.ms": config.retentionMs = try number() < 0 ? nil : try number()
        case "retention.bytes": config.retentionBytes = try number() < 0 ? nil : try number()
        case "segment.bytes": config.segmentBytes = Int(try number())
        case "max.message.bytes": config.maxMessageBytes = Int(try number())
        case "message.timestamp.type":
            guard value == "CreateTime" || value == "LogAppendTime" else {
                throw TidemarkError(.invalidConfig, "message.timestamp.type must be CreateTime or LogAppendTime")
            }
            config.timestampType = value == "LogAppendTime" ? .logAppendTime : .createTime
        case "compression.type":
            switch value {
            case "lz4": config.compression = .lz4
            case "producer", "uncompressed", "none": config.compression = .none
            default: throw TidemarkError(.invalidConfig, "compression.type \(value ?? "null") is not supported")
            }
        case "flush.messages":
            let n = try number()
            config.flushPolicy = n <= 1 ? .everyAppend : .everyMessages(Int(n))
        case "flush.ms": config.flushPolicy = .everyIntervalMs(max(1, try number()))
        case "cleanup.policy":
            guard value == "delete" else { throw TidemarkError(.invalidConfig, "only cleanup.policy=delete is supported") }
        default:
            throw TidemarkError(.invalidConfig, "unknown topic config \(name)")
        }
    }

    static func kafkaConfigs(_ config: TopicConfig) -> [(String, String)] {
        let flush: (String, String) =
            switch config.flushPolicy {
            case .everyAppend: ("flush.messages", "1")
            case .everyMessages(let n): ("flush.messages", "\(n)")
            case .everyIntervalMs(let ms): ("flush.ms", "\(ms)")
            case .os: ("flush.messages", "\(Int64.max)")
            }
        return [
            ("cleanup.policy", "delete"),
            ("compression.type", config.compression == .lz4 ? "lz4" : "producer"),
            flush,
            ("max.message.bytes", "\(config.maxMessageBytes)"),
            ("message.timestamp.type", config.timestampType == .logAppendTime ? "LogAppendTime" : "CreateTime"),
            ("retention.bytes", "\(config.retentionBytes ?? -1)"),
            ("retention.ms", "\(config.retentionMs ?? -1)"),
            ("segment.bytes", "\(config.segmentBytes)"),
        ]
    }

    func createTopics(_ request: CreateTopicsRequest) async -> CreateTopicsResponse {
        var response = CreateTopicsResponse()
        for topic in request.topics {
            var result = CreateTopicsResponse.Topic(name: topic.name)
            do {
                guard topic.replicationFactor == -1 || topic.replicationFactor == 1 else {
                    throw KafkaError.invalidReplicationFactor
                }
                let partitions = topic.numPartitions == -1 ? config.defaultPartitions : Int(topic.numPartitions)
                var topicConfig = TopicConfig()
                for entry in topic.configs { try Self.apply(entry.name, entry.value, to: &topicConfig) }
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
                    entries = Self.kafkaConfigs(try broker.describeTopic(resource.resourceName).config)
                } catch {
                    result.errorCode = KafkaError(error).rawValue
                    result.errorMessage = "\(error)"
                }
            case 4:
                entries = [
                    ("auto.create.topics.enable", "\(config.autoCreateTopics)"),
                    ("num.partitions", "\(config.defaultPartitions)"),
                    ("message.max.bytes", "\(TopicConfig().maxMessageBytes)"),
                ]
            default:
                result.errorCode = KafkaError.invalidRequest.rawValue
                result.errorMessage = "unsupported resource type \(resource.resourceType)"
            }
            let wanted = resource.configurationKeys.map(Set.init)
            let defaults = Dictionary(uniqueKeysWithValues: Self.kafkaConfigs(TopicConfig()))
            result.configs = entries.filter { wanted?.contains($0.0) ?? true }.map {
                DescribeConfigsResponse.Config(name: $0.0, value: $0.1, isDefault: defaults[$0.0] == $0.1)
            }
            response.results.append(result)
        }
        return response
    }
}

import Tidemark
import TidemarkStorage
import TidemarkWire

// ApiVersions, Metadata, Produce, Fetch, ListOffsets, InitProducerId.
extension RequestRouter {
    func apiVersions() -> ApiVersionsResponse {
        var response = ApiVersionsResponse()
        response.apiKeys = ApiKey.allCases.map {
            ApiVersionsResponse.Key(apiKey: $0.rawValue, minVersion: $0.advertised.lowerBound, maxVersion: $0.advertised.upperBound)
        }
        return response
    }

    func metadata(_ request: MetadataRequest, version: Int16) async -> MetadataResponse {
        var response = MetadataResponse()
        response.brokers = [
            MetadataResponse.Broker(nodeId: config.nodeId, host: config.effectiveAdvertisedHost, port: advertisedPort)
        ]
        response.clusterId = config.clusterId
        response.controllerId = config.nodeId
        let names = request.topics ?? broker.listTopics()
        for name in names {
            var topic = MetadataResponse.Topic()
            topic.name = name
            var count = try? broker.partitionCount(of: name)
            if count == nil && request.topics != nil && config.autoCreateTopics && request.allowAutoTopicCreation {
                do {
                    try await broker.createTopic(name, partitions: config.defaultPartitions)
                    logger.info("auto-created topic", metadata: ["topic": "\(name)"])
                } catch let error as TidemarkError where error.code != .topicAlreadyExists {
                    topic.errorCode = KafkaError(error.code).rawValue
                } catch {}
                count = try? broker.partitionCount(of: name)
            }
            if let count {
                topic.partitions = (0..<count).map { p in
                    var partition = MetadataResponse.Partition()
                    partition.partitionIndex = Int32(p)
                    partition.leaderId = config.nodeId
                    partition.replicaNodes = [config.nodeId]
                    partition.isrNodes = [config.nodeId]
                    return partition
                }
            } else if topic.errorCode == 0 {
                topic.errorCode = KafkaError.unknownTopicOrPartition.rawValue
            }
            response.topics.append(topic)
        }
        return response
    }

    func produce(_ request: ProduceRequest) async -> ProduceResponse {
        var response = ProduceResponse()
        let validAcks = request.acks == 0 || request.acks == 1 || request.acks == -1
        for topicData in request.topics {
            var topic = ProduceResponse.Topic()
            topic.name = topicData.name
            for partitionData in topicData.partitions {
                var result = ProduceResponse.Partition()
                result.index = partitionData.index
                do {
                    guard validAcks else { throw KafkaError.invalidRequiredAcks }
                    guard request.transactionalId == nil else { throw KafkaError.invalidRequest }
                    guard case .bytes(let records)? = partitionData.records, !records.isEmpty else {
                        throw KafkaError.corruptMessage
                    }
                    let appended = try await broker.append(
                        topic: topicData.name, partition: Int(partitionData.index), batches: records)
                    result.baseOffset = appended.baseOffset
                    result.logAppendTimeMs = appended.logAppendTime ?? -1
                    result.logStartOffset = appended.logStartOffset
                } catch let code as KafkaError {
                    result.errorCode = code.rawValue
                } catch {
                    result.errorCode = KafkaError(error).rawValue
                    if KafkaError(error) == .unknownServerError || KafkaError(error) == .kafkaStorageError {
                        logger.error("produce failed", metadata: ["topic": "\(topicData.name)", "error": "\(error)"])
                    }
                }
                topic.partitions.append(result)
            }
            response.topics.append(topic)
        }
        return response
    }

    func fetch(_ request: FetchRequest) async -> FetchResponse {
        let deadline = ContinuousClock.now + .milliseconds(min(Int64(max(0, request.maxWaitMs)), config.fetchMaxWaitMs))
        while true {
            var response = FetchResponse()
            var total = 0
            // Clamped, so that a response always fits the int32 size that frames it.
            var budget = min(Int(request.maxBytes > 0 ? request.maxBytes : Int32.max), config.fetchMaxBytes)
            var waitFor: [(String, Int, Int64)] = []
            for topicRequest in request.topics {
                var topic = FetchResponse.Topic()
                topic.topic = topicRequest.topic
                for partitionRequest in topicRequest.partitions {
                    var result = FetchResponse.Partition()
                    result.partitionIndex = partitionRequest.partition
                    do {
                        // The first batch is always returned, even past the byte limits.
                        let partitionLimit = min(Int(partitionRequest.partitionMaxBytes), config.fetchMaxBytes)
                        let limit = total == 0 ? partitionLimit : min(partitionLimit, budget)
                        let fetched = try await broker.fetch(
                            topic: topicRequest.topic, partition: Int(partitionRequest.partition),
                            offset: partitionRequest.fetchOffset, maxBytes: max(limit, 1))
                        result.highWatermark = fetched.highWatermark
                        result.lastStableOffset = fetched.highWatermark
                        result.logStartOffset = fetched.logStartOffset
                        if let slice = fetched.slice, total == 0 || slice.length <= budget {
                            result.records = .slice(slice)
                            total += slice.length
                            budget -= slice.length
                        } else {
                            result.records = .bytes([])
                            waitFor.append((topicRequest.topic, Int(partitionRequest.partition), fetched.highWatermark))
                        }
                    } catch {
                        result.errorCode = KafkaError(error).rawValue
                        result.records = .bytes([])
                    }
                    topic.partitions.append(result)
                }
                response.topics.append(topic)
            }
            if total >= Int(request.minBytes) || ContinuousClock.now >= deadline || waitFor.isEmpty || broker.isClosed {
                return response
            }
            // Long poll: wait for an append to any partition we found empty, then read again.
            await withTaskGroup(of: Void.self) { group in
                for (topic, partition, end) in waitFor {
                    group.addTask { await self.broker.waitForAppend(topic: topic, partition: partition, beyond: end, until: deadline) }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }

    func listOffsets(_ request: ListOffsetsRequest, version: Int16) async -> ListOffsetsResponse {
        var response = ListOffsetsResponse()
        for topicRequest in request.topics {
            var topic = ListOffsetsResponse.Topic()
            topic.name = topicRequest.name
            for partitionRequest in topicRequest.partitions {
                var result = ListOffsetsResponse.Partition()
                result.partitionIndex = partitionRequest.partitionIndex
                do {
                    let position: StartPosition =
                        switch partitionRequest.timestamp {
                        case -1: .latest
                        case -2: .earliest
                        default: .timestamp(partitionRequest.timestamp)
                        }
                    let (offset, timestamp) = try await broker.resolveOffset(
                        topic: topicRequest.name, partition: Int(partitionRequest.partitionIndex), position)
                    if case .timestamp = position, timestamp == nil {
                        // No record at or after that time: Kafka answers -1.
                        result.offset = -1
                        result.timestamp = -1
                    } else {
                        result.offset = offset
                        result.timestamp = timestamp ?? -1
                    }
                    result.oldStyleOffsets = result.offset >= 0 ? [result.offset] : []
                } catch {
                    result.errorCode = KafkaError(error).rawValue
                }
                topic.partitions.append(result)
            }
            response.topics.append(topic)
        }
        return response
    }

    func initProducerId(_ request: InitProducerIdRequest) async -> InitProducerIdResponse {
        var response = InitProducerIdResponse()
        guard request.transactionalId == nil else {
            // Transactions are not supported: only idempotent producers get ids.
            response.errorCode = KafkaError.invalidRequest.rawValue
            return response
        }
        do {
            let (id, epoch) = try await broker.initProducerId()
            response.producerId = id
            response.producerEpoch = epoch
        } catch {
            response.errorCode = KafkaError(error).rawValue
        }
        return response
    }
}

extension KafkaError: Error {}

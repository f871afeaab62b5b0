import Tidemark
import TidemarkStorage
import TidemarkWire

/// Share groups (KIP-932) on the wire: topic ids in and out, the engine's `ShareCoordinator`
/// in between. A ShareFetch applies the acknowledgements it carries (answered only once
/// durable), acquires records (long-polling up to max_wait_ms when there are none) and
/// returns the stored batches that hold them, byte for byte.
extension RequestRouter {
    func shareGroupHeartbeat(_ request: ShareGroupHeartbeatRequest, header: RequestHeader) -> ShareGroupHeartbeatResponse {
        var response = ShareGroupHeartbeatResponse()
        guard !request.memberId.isEmpty || request.memberEpoch == 0 else {
            response.errorCode = KafkaError.invalidRequest.rawValue
            response.errorMessage = "MemberId can't be empty."
            response.memberEpoch = -1
            return response
        }
        let result = broker.shareGroupHeartbeat(
            ShareHeartbeat(
                groupId: request.groupId, memberId: request.memberId, memberEpoch: request.memberEpoch, rackId: request.rackId,
                subscribedTopicNames: request.subscribedTopicNames, clientId: header.clientId ?? ""))
        response.errorCode = KafkaError(optional: result.error).rawValue
        response.errorMessage = result.errorMessage
        response.memberId = result.memberId.isEmpty ? nil : result.memberId
        response.memberEpoch = result.memberEpoch
        response.heartbeatIntervalMs = result.heartbeatIntervalMs
        if let assignment = result.assignment {
            response.assignment = .init(
                topicPartitions: Dictionary(grouping: assignment, by: \.topic).sorted { $0.key < $1.key }.map { topic, tps in
                    ConsumerTopicPartitions(topicId: wireId(of: topic), partitions: tps.map { Int32($0.partition) }.sorted())
                })
        }
        return response
    }

    func shareGroupDescribe(_ request: ShareGroupDescribeRequest) -> ShareGroupDescribeResponse {
        var response = ShareGroupDescribeResponse()
        response.groups = request.groupIds.map { id in
            var group = ShareGroupDescribeResponse.Group()
            group.groupId = id
            guard let described = broker.shares.describe(id) else {
                group.errorCode = KafkaError.groupIdNotFound.rawValue
                group.errorMessage = "share group \(id) not found"
                group.groupState = "Dead"
                return group
            }
            group.groupState = described.state
            group.groupEpoch = described.groupEpoch
            group.assignmentEpoch = described.groupEpoch
            group.assignorName = "simple"
            group.members = described.members.map { m in
                var member = ShareGroupDescribeResponse.Member()
                member.memberId = m.memberId
                member.rackId = m.rackId
                member.memberEpoch = m.memberEpoch
                member.clientId = m.clientId
                member.clientHost = m.clientHost
                member.subscribedTopicNames = m.subscribedTopicNames
                member.assignment = Dictionary(grouping: m.assignment, by: \.topic).sorted { $0.key < $1.key }.map { topic, tps in
                    .init(topicId: wireId(of: topic), topicName: topic, partitions: tps.map { Int32($0.partition) }.sorted())
                }
                return member
            }
            return group
        }
        return response
    }

    /// Acknowledgements of a request by partition; partitions of unknown topic ids and
    /// acknowledgements with a type that does not exist are answered with an error instead.
    private func acknowledgements(_ topics: [ShareAcknowledgeTopic], allowRenew: Bool)
        -> (acks: [TopicPartition: [ShareAcknowledgement]], listed: [TopicPartition], refused: [(WireUUID, Int32, KafkaError)], names: [String: WireUUID])
    {
        var acks: [TopicPartition: [ShareAcknowledgement]] = [:]
        var listed: [TopicPartition] = []
        var refused: [(WireUUID, Int32, KafkaError)] = []
        var names: [String: WireUUID] = [:]
        for topic in topics {
            guard let name = topicName(for: topic.topicId) else {
                for p in topic.partitions { refused.append((topic.topicId, p.partitionIndex, .unknownTopicId)) }
                continue
            }
            names[name] = topic.topicId
            for p in topic.partitions {
                let tp = TopicPartition(name, Int(p.partitionIndex))
                listed.append(tp)
                guard !p.acknowledgementBatches.isEmpty else { continue }
                var batches: [ShareAcknowledgement] = []
                var valid = true
                for batch in p.acknowledgementBatches {
                    let types = batch.acknowledgeTypes.compactMap(ShareAcknowledgeType.init(rawValue:))
                    guard !types.isEmpty, types.count == batch.acknowledgeTypes.count, allowRenew || !types.contains(.renew) else {
                        valid = false
                        break
                    }
                    batches.append(ShareAcknowledgement(first: batch.firstOffset, last: batch.lastOffset, types: types))
                }
                if valid { acks[tp, default: []] += batches } else { refused.append((topic.topicId, p.partitionIndex, .invalidRequest)) }
            }
        }
        return (acks, listed, refused, names)
    }

    private func awaitDurable(_ offset: Int64?) async -> TidemarkError? {
        guard let offset else { return nil }
        return await withCheckedContinuation { continuation in
            broker.shares.whenDurable(offset) { continuation.resume(returning: $0) }
        }
    }

    func shareFetch(_ request: ShareFetchRequest, version: Int16) async -> ShareFetchResponse {
        var response = ShareFetchResponse()
        guard let group = request.groupId, let member = request.memberId, !group.isEmpty, !member.isEmpty else {
            response.errorCode = KafkaError.invalidRequest.rawValue
            response.errorMessage = "ShareFetch needs a group id and a member id"
            return response
        }
        let renewing = version >= 2 && request.isRenewAck
        let (acks, listed, refused, _) = acknowledgements(request.topics, allowRenew: renewing)
        var forget: [TopicPartition] = []
        for topic in request.forgottenTopicsData {
            guard let name = topicName(for: topic.topicId) else { continue }
            forget += topic.partitions.map { TopicPartition(name, Int($0)) }
        }
        let view = broker.shareLogView
        let update = broker.shares.updateSession(
            group: group, member: member, epoch: request.shareSessionEpoch, add: listed, forget: forget, acknowledgements: acks,
            allowRenew: renewing, view: view)
        if let error = update.error {
            response.errorCode = KafkaError(error).rawValue
            response.errorMessage = update.errorMessage
            return response
        }
        response.acquisitionLockTimeoutMs = Int32(clamping: update.lockDurationMs)
        var ackResults = update.acknowledged
        if let error = await awaitDurable(update.durableAt) {
            for (tp, result) in ackResults where result == nil { ackResults[tp] = .some(error.code) }
        }
        if update.deadLettersPending { Task { [broker] in await broker.writeDeadLetters() } }

        // Acquire, long-polling while there is nothing (never with acknowledgements to answer).
        var acquired: [ShareAcquisition] = []
        if !renewing && !update.partitions.isEmpty {
            let wait = min(Int64(max(0, request.maxWaitMs)), config.fetchMaxWaitMs)
            let deadline = ContinuousClock.now + .milliseconds(wait)
            let maxRecords = Int(max(1, min(request.maxRecords, 10_000)))
            while true {
                acquired = broker.shares.acquire(
                    group: group, member: member, partitions: update.partitions, maxRecords: maxRecords, view: view)
                if !acquired.isEmpty || !acks.isEmpty || ContinuousClock.now >= deadline || broker.isClosed { break }
                // Woken by an append; at least every 200 ms to pick up released or expired records.
                let left = deadline - ContinuousClock.now
                let leftMs = Int64(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
                await broker.waitForAppends(update.partitions, timeoutMs: max(1, min(200, leftMs)))
            }
        }

        // The stored batches that hold the acquired records, byte for byte.
        var budget = min(Int(request.maxBytes > 0 ? request.maxBytes : Int32.max), config.fetchMaxBytes)
        var partitions: [TopicPartition: ShareFetchResponse.Partition] = [:]
        for acquisition in acquired {
            let tp = acquisition.topicPartition
            var entry = ShareFetchResponse.Partition(partitionIndex: Int32(tp.partition))
            do {
                let (bytes, covered) = try await readBatches(tp, from: acquisition.offsets[0], maxBytes: max(budget, 1), keep: acquisition.ranges)
                budget -= bytes.count
                let delivered = acquisition.offsets.filter { $0 <= covered }
                let undelivered = acquisition.offsets.filter { $0 > covered }
                broker.shares.giveBack(group: group, member: member, tp, offsets: undelivered)
                entry.records = .bytes(bytes[...])
                entry.acquiredRecords = acquisition.ranges.compactMap { range in
                    guard range.first <= covered else { return nil }
                    return .init(firstOffset: range.first, lastOffset: min(range.last, covered), deliveryCount: range.deliveryCount)
                }
                _ = delivered
            } catch {
                broker.shares.giveBack(group: group, member: member, tp, offsets: acquisition.offsets)
                entry.errorCode = KafkaError(error).rawValue
                entry.errorMessage = "\(error)"
            }
            partitions[tp] = entry
        }
        for (tp, result) in ackResults {
            var entry = partitions[tp] ?? ShareFetchResponse.Partition(partitionIndex: Int32(tp.partition))
            entry.acknowledgeErrorCode = KafkaError(optional: result).rawValue
            if result != nil { entry.acknowledgeErrorMessage = "acknowledgement refused: \(KafkaError(optional: result))" }
            partitions[tp] = entry
        }
        var topics: [String: ShareFetchResponse.Topic] = [:]
        for (tp, entry) in partitions.sorted(by: { ServerAssignor.partitionOrder($0.key, $1.key) }) {
            topics[tp.topic, default: ShareFetchResponse.Topic(topicId: wireId(of: tp.topic))].partitions.append(entry)
        }
        response.responses = topics.sorted { $0.key < $1.key }.map(\.value)
        for (topicId, partition, error) in refused {
            var entry = ShareFetchResponse.Partition(partitionIndex: partition)
            entry.errorCode = error.rawValue
            entry.acknowledgeErrorCode = error.rawValue
            response.responses.append(.init(topicId: topicId, partitions: [entry]))
        }
        return response
    }

    /// Reads from `offset` and keeps the batches that hold some offset of `keep`, reading no
    /// further than the last acquired offset (in growing chunks, so one acquired record costs
    /// one small read, not `maxBytes`). Returns them and the last offset the reads reached
    /// (acquired offsets past it were not delivered). A large batch of which this fetch
    /// acquired only a few records comes from `shareBatches` (decoded once, for the fetches
    /// that take its records a few at a time) and is sent trimmed to those records.
    private func readBatches(_ tp: TopicPartition, from offset: Int64, maxBytes: Int, keep: [AcquiredRange]) async throws
        -> ([UInt8], Int64)
    {
        let target = keep.map(\.last).max() ?? offset
        let topicId = try broker.topicId(of: tp.topic)
        var kept: [UInt8] = []
        var covered = offset - 1
        var chunk = 16 << 10
        while covered < target && (kept.isEmpty || kept.count < maxBytes) {
            if let cached = shareBatches.batch(tp, id: topicId, containing: covered + 1) {
                kept += Self.trimmed(cached, keep: keep)
                covered = cached.header.baseOffset + Int64(cached.header.lastOffsetDelta)
                continue
            }
            let limit = kept.isEmpty ? min(chunk, maxBytes) : min(chunk, maxBytes - kept.count)
            let result = try await broker.fetch(topic: tp.topic, partition: tp.partition, offset: covered + 1, maxBytes: max(1, limit))
            guard let slice = result.slice else { break }
            let bytes = try slice.readBytes()
            var position = 0
            let before = covered
            while position + 61 <= bytes.count {
                let base = bytes.withUnsafeBytes { Int64(bigEndian: $0.loadUnaligned(fromByteOffset: position, as: Int64.self)) }
                let length = bytes.withUnsafeBytes { Int32(bigEndian: $0.loadUnaligned(fromByteOffset: position + 8, as: Int32.self)) }
                let delta = bytes.withUnsafeBytes { Int32(bigEndian: $0.loadUnaligned(fromByteOffset: position + 23, as: Int32.self)) }
                let end = position + 12 + Int(length)
                guard length > 0, end <= bytes.count else { break }
                let last = base + Int64(delta)
                if last > covered {
                    let runs = Self.runs(keep, base: base, last: last)
                    if !runs.isEmpty {
                        let acquired = runs.reduce(Int64(0)) { $0 + ($1.upperBound - $1.lowerBound + 1) }
                        if end - position > 16 << 10, acquired * 2 < last - base + 1,
                            let decoded = try? bytes[position..<end].withUnsafeBytes({ raw in try RecordBatch(decoding: raw) })
                        {
                            shareBatches.insert(tp, id: topicId, decoded, size: end - position)
                            kept += Self.trimmed(decoded, keep: keep)
                        } else {
                            kept += bytes[position..<end]
                        }
                    }
                    covered = last
                }
                position = end
                if covered >= target { break }
            }
            if covered == before { break }  // nothing new: the log ends here
            chunk = min(chunk * 4, 4 << 20)
        }
        return (kept, covered)
    }

    /// The parts of `keep` inside [base, last].
    static func runs(_ keep: [AcquiredRange], base: Int64, last: Int64) -> [ClosedRange<Int64>] {
        keep.compactMap { range -> ClosedRange<Int64>? in
            let lower = max(range.first, base)
            let upper = min(range.last, last)
            return lower <= upper ? lower...upper : nil
        }
    }

    /// A decoded batch rebuilt with only the acquired records: one batch per run, at their
    /// original offsets, the original codec and timestamp type.
    static func trimmed(_ decoded: RecordBatch, keep: [AcquiredRange]) -> [UInt8] {
        let base = decoded.header.baseOffset
        var out: [UInt8] = []
        for run in runs(keep, base: base, last: base + Int64(decoded.header.lastOffsetDelta)) {
            var builder = RecordBatchBuilder(
                baseOffset: run.lowerBound, compression: decoded.header.compressionCodec ?? .none,
                timestampType: decoded.header.timestampType, partitionLeaderEpoch: decoded.header.partitionLeaderEpoch)
            for record in decoded.records where run.contains(decoded.offset(of: record)) {
                builder.append(timestamp: decoded.timestamp(of: record), key: record.key, value: record.value, headers: record.headers)
            }
            guard builder.count > 0, var built = try? builder.build() else { continue }
            // The builder leaves the base offset for the log to write; it is outside the CRC.
            withUnsafeBytes(of: run.lowerBound.bigEndian) { built.replaceSubrange(0..<8, with: $0) }
            out += built
        }
        return out
    }

    func shareAcknowledge(_ request: ShareAcknowledgeRequest, version: Int16) async -> ShareAcknowledgeResponse {
        await withCheckedContinuation { continuation in
            shareAcknowledge(request, version: version) { continuation.resume(returning: $0) }
        }
    }

    /// ShareAcknowledge: the acknowledgements are applied and logged now (under the share
    /// coordinator's lock), and `done` is called once they are durable: at once when nothing
    /// was written, else from the flusher's thread (the event loop's caller hops back).
    func shareAcknowledge(
        _ request: ShareAcknowledgeRequest, version: Int16, _ done: @escaping @Sendable (ShareAcknowledgeResponse) -> Void
    ) {
        var response = ShareAcknowledgeResponse()
        guard let group = request.groupId, let member = request.memberId, !group.isEmpty, !member.isEmpty else {
            response.errorCode = KafkaError.invalidRequest.rawValue
            response.errorMessage = "ShareAcknowledge needs a group id and a member id"
            return done(response)
        }
        let (acks, _, refused, _) = acknowledgements(request.topics, allowRenew: version >= 2)
        let update = broker.shares.updateSession(
            group: group, member: member, epoch: request.shareSessionEpoch, add: [], forget: [], acknowledgements: acks,
            allowRenew: version >= 2, view: broker.shareLogView)
        if let error = update.error {
            response.errorCode = KafkaError(error).rawValue
            response.errorMessage = update.errorMessage
            return done(response)
        }
        response.acquisitionLockTimeoutMs = Int32(clamping: update.lockDurationMs)
        let answered = response
        let finish: @Sendable (TidemarkError?) -> Void = { [self] error in
            var response = answered
            var results = update.acknowledged
            if let error {
                for (tp, result) in results where result == nil { results[tp] = .some(error.code) }
            }
            if update.deadLettersPending { Task { [broker] in await broker.writeDeadLetters() } }
            var topics: [String: ShareAcknowledgeResponse.Topic] = [:]
            for (tp, result) in results.sorted(by: { ServerAssignor.partitionOrder($0.key, $1.key) }) {
                var entry = ShareAcknowledgeResponse.Partition(partitionIndex: Int32(tp.partition))
                entry.errorCode = KafkaError(optional: result).rawValue
                if result != nil { entry.errorMessage = "acknowledgement refused: \(KafkaError(optional: result))" }
                topics[tp.topic, default: ShareAcknowledgeResponse.Topic(topicId: wireId(of: tp.topic))].partitions.append(entry)
            }
            response.responses = topics.sorted { $0.key < $1.key }.map(\.value)
            for (topicId, partition, error) in refused {
                var entry = ShareAcknowledgeResponse.Partition(partitionIndex: partition)
                entry.errorCode = error.rawValue
                response.responses.append(.init(topicId: topicId, partitions: [entry]))
            }
            done(response)
        }
        guard let offset = update.durableAt else { return finish(nil) }
        broker.shares.whenDurable(offset, finish)
    }
}

// MARK: Share group offsets (the admin side)

extension RequestRouter {
    /// DescribeShareGroupOffsets: per partition, the start offset and the lag (records not
    /// finished), plus Tidemark's details in a tagged field (see `SharePartitionDetails`).
    func describeShareGroupOffsets(_ request: DescribeShareGroupOffsetsRequest) -> DescribeShareGroupOffsetsResponse {
        var response = DescribeShareGroupOffsetsResponse()
        let view = broker.shareLogView
        response.groups = request.groups.map { asked in
            var group = DescribeShareGroupOffsetsResponse.Group(groupId: asked.groupId)
            let summaries = broker.shares.summaries(asked.groupId, view: view)
            var wanted: Set<TopicPartition>? = nil
            if let topics = asked.topics {
                wanted = Set(topics.flatMap { t in t.partitions.map { TopicPartition(t.topicName, Int($0)) } })
            }
            var byTopic: [String: DescribeShareGroupOffsetsResponse.Topic] = [:]
            var answered: Set<TopicPartition> = []
            for summary in summaries where wanted?.contains(summary.topicPartition) ?? true {
                let tp = summary.topicPartition
                var p = DescribeShareGroupOffsetsResponse.Partition(partitionIndex: Int32(tp.partition))
                p.startOffset = summary.startOffset
                p.lag = summary.lag
                var details = SharePartitionDetails()
                details.endOffset = summary.endOffset
                details.logEndOffset = summary.logEndOffset
                details.available = Int32(summary.available + summary.delayed)  // Kafka's AVAILABLE state
                details.acquired = Int32(summary.acquired)
                details.acknowledged = Int32(summary.acknowledged)
                details.archived = Int32(summary.archived)
                details.deadLettered = summary.deadLettered
                details.deadLettersPending = Int32(summary.deadLettersPending)
                details.holders = summary.holders.sorted { $0.key < $1.key }.map {
                    .init(memberId: $0.key, records: Int32($0.value.count), earliestLockExpiryMs: $0.value.earliestExpiryMs)
                }
                p.details = details
                byTopic[tp.topic, default: .init(topicName: tp.topic, topicId: wireId(of: tp.topic))].partitions.append(p)
                answered.insert(tp)
            }
            // Partitions asked for that the group has no state for: start offset -1.
            for tp in (wanted ?? []).subtracting(answered) {
                var p = DescribeShareGroupOffsetsResponse.Partition(partitionIndex: Int32(tp.partition))
                if (try? broker.partitionCount(of: tp.topic)).map({ tp.partition < $0 }) != true {
                    p.errorCode = KafkaError.unknownTopicOrPartition.rawValue
                }
                byTopic[tp.topic, default: .init(topicName: tp.topic, topicId: wireId(of: tp.topic))].partitions.append(p)
            }
            group.topics = byTopic.sorted { $0.key < $1.key }.map { _, topic in
                var topic = topic
                topic.partitions.sort { $0.partitionIndex < $1.partitionIndex }
                return topic
            }
            return group
        }
        return response
    }

    /// AlterShareGroupOffsets: moves start offsets; refused while the group has members.
    func alterShareGroupOffsets(_ request: AlterShareGroupOffsetsRequest) async -> AlterShareGroupOffsetsResponse {
        var response = AlterShareGroupOffsetsResponse()
        var offsets: [TopicPartition: Int64] = [:]
        for topic in request.topics {
            for p in topic.partitions { offsets[TopicPartition(topic.topicName, Int(p.partitionIndex))] = p.startOffset }
        }
        var code: KafkaError = .none
        var message: String? = nil
        do {
            try await broker.shares.resetOffsets(group: request.groupId, offsets: offsets, view: broker.shareLogView)
        } catch {
            code = KafkaError(error)
            message = (error as? TidemarkError)?.message
        }
        response.responses = request.topics.map { topic in
            var result = AlterShareGroupOffsetsResponse.Topic(topicName: topic.topicName, topicId: wireId(of: topic.topicName))
            result.partitions = topic.partitions.map { p in
                var partition = AlterShareGroupOffsetsResponse.Partition(partitionIndex: p.partitionIndex)
                partition.errorCode = code.rawValue
                partition.errorMessage = message
                return partition
            }
            return result
        }
        if code == .nonEmptyGroup {
            response.errorCode = code.rawValue
            response.errorMessage = message
        }
        return response
    }

    /// DeleteShareGroupOffsets: forgets the group's state for whole topics.
    func deleteShareGroupOffsets(_ request: DeleteShareGroupOffsetsRequest) async -> DeleteShareGroupOffsetsResponse {
        var response = DeleteShareGroupOffsetsResponse()
        do {
            try await broker.shares.deleteState(group: request.groupId, topics: Set(request.topicNames))
            response.responses = request.topicNames.map { .init(topicName: $0, topicId: wireId(of: $0)) }
        } catch {
            response.errorCode = KafkaError(error).rawValue
            response.errorMessage = (error as? TidemarkError)?.message
        }
        return response
    }
}

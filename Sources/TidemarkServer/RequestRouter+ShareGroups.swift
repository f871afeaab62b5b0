import NIOCore
import Tidemark
import TidemarkStorage
import TidemarkWire

/// Share groups (KIP-932) on the wire: topic ids in and out, the engine's `ShareCoordinator`
/// in between. A ShareFetch applies the acknowledgements it carries (answered once logged,
/// and synced on topics that sync every append), acquires records (long-polling up to max_wait_ms when there are none) and
/// returns the stored batches that hold them, byte for byte (`ShareFetchInFlight`).
extension RequestRouter {
    func shareGroupHeartbeat(_ request: ShareGroupHeartbeatRequest, header: RequestHeader) -> ShareGroupHeartbeatResponse {
        var response = ShareGroupHeartbeatResponse()
        // Kafka's checks of the request itself (GroupCoordinatorService): a share member makes
        // its own id (KIP-932 clients send a UUID from their first heartbeat), at every epoch.
        func blank(_ value: String) -> Bool { value.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" } }
        let refusal: String? =
            blank(request.groupId) ? "GroupId can't be empty."
            : blank(request.memberId) ? "MemberId can't be empty."
            : request.rackId.map(blank) == true ? "RackId can't be empty."
            : request.memberEpoch < -1 ? "MemberEpoch is invalid."
            : nil
        if let refusal {
            response.errorCode = KafkaError.invalidRequest.rawValue
            response.errorMessage = refusal
            response.memberEpoch = -1
            return response
        }
        let result = broker.shareGroupHeartbeat(
            ShareHeartbeat(
                groupId: request.groupId, memberId: request.memberId, memberEpoch: request.memberEpoch, rackId: request.rackId,
                subscribedTopicNames: request.subscribedTopicNames, clientId: header.clientId ?? "", clientHost: Self.clientHost))
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
        response.groups = request.groupIds.firstOfEachKey { $0 }.map { id in
            var group = ShareGroupDescribeResponse.Group()
            group.groupId = id
            guard let described = broker.shares.describe(id) else {
                group.errorCode = KafkaError.groupIdNotFound.rawValue
                group.errorMessage = "share group \(id) not found"
                group.groupState = "Dead"
                return group
            }
            if request.includeAuthorizedOperations { group.authorizedOperations = AuthorizedOperations.group }
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

    /// Acknowledgements of a request by partition. Partitions of unknown topic ids or that the
    /// topic does not have are refused (answered with an error, never joined to the session:
    /// a session holds only partitions that exist); a partition whose acknowledgements name a
    /// type that does not exist is listed, and its acknowledgements are refused (`badTypes`).
    private func acknowledgements(_ topics: [ShareAcknowledgeTopic], allowRenew: Bool) -> (
        acks: [TopicPartition: [ShareAcknowledgement]], listed: [TopicPartition], refused: [(WireUUID, Int32, KafkaError)],
        badTypes: [TopicPartition]
    ) {
        var acks: [TopicPartition: [ShareAcknowledgement]] = [:]
        var listed: [TopicPartition] = []
        var refused: [(WireUUID, Int32, KafkaError)] = []
        var badTypes: [TopicPartition] = []
        // Each partition listed once: a 100 MiB request naming one partition 17 million times
        // was hashed into the session under the share coordinator's lock.
        // (One partition, the job workload's case, needs no set.)
        let one = topics.count == 1 && topics[0].partitions.count == 1
        var seen = Set<TopicPartition>()
        for topic in topics {
            guard let name = topicName(for: topic.topicId), let partitions = try? broker.partitionCount(of: name) else {
                for p in topic.partitions { refused.append((topic.topicId, p.partitionIndex, .unknownTopicId)) }
                continue
            }
            for p in topic.partitions {
                guard p.partitionIndex >= 0, Int(p.partitionIndex) < partitions else {
                    refused.append((topic.topicId, p.partitionIndex, .unknownTopicOrPartition))
                    continue
                }
                let tp = TopicPartition(name, Int(p.partitionIndex))
                if one || seen.insert(tp).inserted { listed.append(tp) }
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
                // A partition listed twice: the last listing counts, as in Kafka.
                if valid {
                    acks[tp] = batches
                } else {
                    acks.removeValue(forKey: tp)
                    badTypes.append(tp)
                }
            }
        }
        return (acks, listed, refused, badTypes)
    }

    /// ShareFetch on `loop` (the connection's): the session update (acknowledgements, added
    /// and forgotten partitions) runs once, here; the rest is `ShareFetchInFlight`. `done` is
    /// called on `loop`.
    func shareFetch(
        _ request: ShareFetchRequest, version: Int16, on loop: any EventLoop, connection: ConnectionShares? = nil,
        _ done: @escaping (ShareFetchResponse) -> Void
    ) {
        loop.preconditionInEventLoop()
        var response = ShareFetchResponse()
        guard let group = request.groupId, let member = request.memberId, !group.isEmpty, !member.isEmpty else {
            response.errorCode = KafkaError.invalidRequest.rawValue
            response.errorMessage = "ShareFetch needs a group id and a member id"
            return done(response)
        }
        // A new session carries no acknowledgements (nothing was acquired in it): the whole
        // request is refused, as Kafka refuses it, and no session is opened.
        if request.shareSessionEpoch == 0, request.topics.contains(where: { $0.partitions.contains { !$0.acknowledgementBatches.isEmpty } }) {
            response.errorCode = KafkaError.invalidRequest.rawValue
            response.errorMessage = "acknowledgements in a ShareFetch that opens a share session (epoch 0)"
            return done(response)
        }
        let renewing = version >= 2 && request.isRenewAck
        let (acks, listed, refused, badTypes) = acknowledgements(request.topics, allowRenew: renewing)
        // Partitions to forget: those the topic has, each once (outside the coordinator's lock).
        var forget: [TopicPartition] = []
        var forgetting = Set<TopicPartition>()
        for topic in request.forgottenTopicsData {
            guard let name = topicName(for: topic.topicId), let count = try? broker.partitionCount(of: name) else { continue }
            for p in topic.partitions where (0..<count).contains(Int(p)) {
                let tp = TopicPartition(name, Int(p))
                if forgetting.insert(tp).inserted { forget.append(tp) }
            }
        }
        var update = broker.shares.updateSession(
            group: group, member: member, epoch: request.shareSessionEpoch, add: listed, forget: forget, acknowledgements: acks,
            allowRenew: renewing, view: broker.shareLogViewWithoutBlocking, connection: connection?.id, requireMember: true)
        if let error = update.error {
            response.errorCode = KafkaError(error).rawValue
            response.errorMessage = update.errorMessage
            // A worker whose membership a restart forgot fetches again until its heartbeat
            // rejoins (up to a heartbeat interval): librdkafka and the Java client answer this
            // refusal with a fetch at the next epoch (SHARE_SESSION_NOT_FOUND, at once), then
            // epoch 0 again. Held for the fetch's wait, as a long poll with
            // nothing would be (at most half a second), rather than a busy loop.
            if error == .unknownMemberId {
                let wait = Int64(min(max(request.maxWaitMs, 0), 500))
                let (answer, bound) = (response, NIOLoopBound(done, eventLoop: loop))
                loop.scheduleTask(in: .milliseconds(wait)) { bound.value(answer) }
                return
            }
            return done(response)
        }
        connection?.used(group: group, member: member, closed: request.shareSessionEpoch == -1)
        for tp in badTypes where acks[tp] == nil { update.acknowledged[tp] = .some(.invalidRequest) }
        // The session's append watches: the connection's, kept across its fetches (brought up
        // to date with what this request added and forgot), or this fetch's own.
        var watches: ShareSessionWatches? = nil
        if request.shareSessionEpoch != -1, let kept = connection?.watches(group: group, member: member, broker: broker, loop: loop) {
            if request.shareSessionEpoch == 0 {
                kept.cancelAll()
            } else {
                kept.forget(forget)
            }
            // All of them when the session's list changed; those that could not be watched are
            // tried again.
            kept.sync(update.partitions)
            watches = kept
        }
        let fetch = ShareFetchInFlight(
            router: self, loop: loop, request: request, group: group, member: member, renewing: renewing,
            hasAcknowledgements: !acks.isEmpty, refused: refused, update: update, watches: watches, done: done)
        // A long poll ends when its connection closes (its session closed with it: it could
        // take nothing more, and held its frame's request memory and a timer until max_wait).
        // Only a fetch still waiting once `start` returns (on this loop) is one: the weak
        // reference costs a side table per fetch.
        fetch.start()
        connection?.shareLongPoll = fetch.isOver ? nil : fetch
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
            // Stored batches were validated on append (record i has offset delta i), so the run's
            // records are found by index: one job taken from a batch of thousands costs one record.
            let records = decoded.records
            let first = Int(run.lowerBound - base)
            let indices =
                records.indices.contains(first) && Int(records[first].offsetDelta) == first
                ? first..<min(records.count, first + Int(run.upperBound - run.lowerBound) + 1) : records.indices
            for record in records[indices] where run.contains(decoded.offset(of: record)) {
                builder.append(timestamp: decoded.timestamp(of: record), key: record.key, value: record.value, headers: record.headers)
            }
            guard builder.count > 0, var built = try? builder.build() else { continue }
            // The builder leaves the base offset for the log to write; it is outside the CRC.
            withUnsafeBytes(of: run.lowerBound.bigEndian) { built.replaceSubrange(0..<8, with: $0) }
            out += built
        }
        return out
    }

    /// ShareAcknowledge: the acknowledgements are applied and logged now (under the share
    /// coordinator's lock), and `done` is called once they are as durable as their topics: at
    /// once, or after the sync that a topic syncing every append needs, from the flusher's
    /// thread (the event loop's caller hops back).
    func shareAcknowledge(
        _ request: ShareAcknowledgeRequest, version: Int16, connection: ConnectionShares? = nil,
        _ done: @escaping @Sendable (ShareAcknowledgeResponse) -> Void
    ) {
        var response = ShareAcknowledgeResponse()
        guard let group = request.groupId, let member = request.memberId, !group.isEmpty, !member.isEmpty else {
            response.errorCode = KafkaError.invalidRequest.rawValue
            response.errorMessage = "ShareAcknowledge needs a group id and a member id"
            return done(response)
        }
        // ShareAcknowledge never opens a session (as in Kafka): at epoch 0 it is refused whole,
        // and the member's session, if it has one, stays as it was.
        guard request.shareSessionEpoch != 0 else {
            response.errorCode = KafkaError.invalidShareSessionEpoch.rawValue
            response.errorMessage = "ShareAcknowledge cannot open a share session (epoch 0)"
            return done(response)
        }
        let (acks, _, refused, badTypes) = acknowledgements(request.topics, allowRenew: version >= 2)
        var update = broker.shares.updateSession(
            group: group, member: member, epoch: request.shareSessionEpoch, add: [], forget: [], acknowledgements: acks,
            allowRenew: version >= 2, view: broker.shareLogView, connection: connection?.id)
        if let error = update.error {
            response.errorCode = KafkaError(error).rawValue
            response.errorMessage = update.errorMessage
            return done(response)
        }
        connection?.used(group: group, member: member, closed: request.shareSessionEpoch == -1)
        for tp in badTypes where acks[tp] == nil { update.acknowledged[tp] = .some(.invalidRequest) }
        // Released records go to a worker already waiting, now.
        for tp in Set(update.released) { broker.offerShareRecords(group: group, tp) }
        response.acquisitionLockTimeoutMs = Int32(clamping: update.lockDurationMs)
        let answered = response
        let results = update.acknowledged, deadLettersPending = update.deadLettersPending
        let finish: @Sendable (TidemarkError?) -> Void = { [self] error in
            var response = answered
            var results = results
            if let error {
                for (tp, result) in results where result == nil { results[tp] = .some(error.code) }
            }
            if deadLettersPending { Task { [broker] in await broker.writeDeadLettersAfterAcknowledgement() } }
            // By topic name, then partition: sorted, each topic's partitions lie together (one
            // partition, the job workload's case, sorts nothing).
            let ordered = results.count < 2 ? Array(results) : results.sorted { ServerAssignor.partitionOrder($0.key, $1.key) }
            var lastTopic: String?
            for (tp, result) in ordered {
                var entry = ShareAcknowledgeResponse.Partition(partitionIndex: Int32(tp.partition))
                entry.errorCode = KafkaError(optional: result).rawValue
                if result != nil { entry.errorMessage = "acknowledgement refused: \(KafkaError(optional: result))" }
                if tp.topic != lastTopic {
                    response.responses.append(ShareAcknowledgeResponse.Topic(topicId: wireId(of: tp.topic)))
                    lastTopic = tp.topic
                }
                response.responses[response.responses.count - 1].partitions.append(entry)
            }
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
        // Each group once: a group named 100,000 times in 400 KB built its answer (up to 80 KB
        // for 1,000 partitions) each time.
        response.groups = request.groups.firstOfEachKey { $0.groupId }.map { asked in
            var group = DescribeShareGroupOffsetsResponse.Group(groupId: asked.groupId)
            var wanted: Set<TopicPartition>? = nil
            if let topics = asked.topics {
                wanted = Set(topics.flatMap { t in t.partitions.map { TopicPartition(t.topicName, Int($0)) } })
            }
            // Topics named are covered too where the group has no state yet (what a worker would
            // find there goes in the details), when it is a share group.
            let named = broker.shareGroupHolds(asked.groupId) ? Set((asked.topics ?? []).map(\.topicName)) : []
            let summaries = broker.shares.summaries(asked.groupId, view: view, alsoTopics: named)
            let byPartition = Dictionary(summaries.map { ($0.topicPartition, $0) }, uniquingKeysWith: { first, _ in first })
            func details(_ summary: SharePartitionSummary) -> SharePartitionDetails {
                var details = SharePartitionDetails()
                details.endOffset = summary.endOffset
                details.logEndOffset = summary.logEndOffset
                details.available = Int32(clamping: summary.available)
                details.delayed = Int32(clamping: summary.delayed)
                details.acquired = Int32(clamping: summary.acquired)
                details.acknowledged = Int32(clamping: summary.acknowledged)
                details.archived = Int32(clamping: summary.archived)
                details.deadLettered = summary.deadLettered
                details.deadLettersPending = Int32(clamping: summary.deadLettersPending)
                details.startOffset = summary.startOffset
                details.lag = summary.lag
                details.holders = summary.holders.sorted { $0.key < $1.key }.map {
                    .init(memberId: $0.key, records: Int32(clamping: $0.value.count), earliestLockExpiryMs: $0.value.earliestExpiryMs)
                }
                return details
            }
            var byTopic: [String: DescribeShareGroupOffsetsResponse.Topic] = [:]
            var answered: Set<TopicPartition> = []
            for summary in summaries where summary.started && wanted?.contains(summary.topicPartition) ?? true {
                let tp = summary.topicPartition
                var p = DescribeShareGroupOffsetsResponse.Partition(partitionIndex: Int32(tp.partition))
                p.startOffset = summary.startOffset
                p.lag = summary.lag
                p.details = details(summary)
                byTopic[tp.topic, default: .init(topicName: tp.topic, topicId: wireId(of: tp.topic))].partitions.append(p)
                answered.insert(tp)
            }
            // Partitions asked for that the group has no state for: start offset -1.
            for tp in (wanted ?? []).subtracting(answered) {
                var p = DescribeShareGroupOffsetsResponse.Partition(partitionIndex: Int32(tp.partition))
                if (try? broker.partitionCount(of: tp.topic)).map({ (0..<$0).contains(tp.partition) }) != true {
                    p.errorCode = KafkaError.unknownTopicOrPartition.rawValue
                } else if let summary = byPartition[tp] {
                    p.details = details(summary)
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

    /// AlterShareGroupOffsets: moves start offsets; refused while the group has members. A
    /// partition that does not exist is answered UNKNOWN_TOPIC_OR_PARTITION on its own and the
    /// rest are moved, as Kafka's broker answers (it refused the whole request, under another
    /// partition's message).
    func alterShareGroupOffsets(_ request: AlterShareGroupOffsetsRequest) async -> AlterShareGroupOffsetsResponse {
        var response = AlterShareGroupOffsetsResponse()
        var offsets: [TopicPartition: Int64] = [:]
        var missing: Set<TopicPartition> = []
        for topic in request.topics {
            let count = try? broker.partitionCount(of: topic.topicName)
            for p in topic.partitions {
                let tp = TopicPartition(topic.topicName, Int(p.partitionIndex))
                if let count, p.partitionIndex >= 0, Int(p.partitionIndex) < count {
                    offsets[tp] = p.startOffset
                } else {
                    missing.insert(tp)
                }
            }
        }
        var code: KafkaError = .none
        var message: String? = nil
        if !offsets.isEmpty {
            do {
                try await broker.shares.resetOffsets(group: request.groupId, offsets: offsets, view: broker.shareLogView)
            } catch {
                code = KafkaError(error)
                message = (error as? TidemarkError)?.message
            }
        }
        response.responses = request.topics.map { topic in
            var result = AlterShareGroupOffsetsResponse.Topic(topicName: topic.topicName, topicId: wireId(of: topic.topicName))
            result.partitions = topic.partitions.map { p in
                var partition = AlterShareGroupOffsetsResponse.Partition(partitionIndex: p.partitionIndex)
                if missing.contains(TopicPartition(topic.topicName, Int(p.partitionIndex))) {
                    partition.errorCode = KafkaError.unknownTopicOrPartition.rawValue
                    partition.errorMessage = "This server does not host this topic-partition."
                } else {
                    partition.errorCode = code.rawValue
                    partition.errorMessage = message
                }
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

    /// DeleteShareGroupOffsets: forgets the group's state for whole topics. As Kafka answers:
    /// a group that is not a share group is GROUP_ID_NOT_FOUND, and a topic that does not exist,
    /// or that the group has no state for, UNKNOWN_TOPIC_OR_PARTITION on its own (both were
    /// answered as deleted).
    func deleteShareGroupOffsets(_ request: DeleteShareGroupOffsetsRequest) async -> DeleteShareGroupOffsetsResponse {
        var response = DeleteShareGroupOffsetsResponse()
        guard broker.shareGroupHolds(request.groupId) else {
            response.errorCode = KafkaError.groupIdNotFound.rawValue
            response.errorMessage = "Group \(request.groupId) not found."
            return response
        }
        // A group with members is refused first, whatever the topics (Kafka's validateDeleteGroup).
        if let members = broker.shares.describe(request.groupId)?.members, !members.isEmpty {
            response.errorCode = KafkaError.nonEmptyGroup.rawValue
            response.errorMessage = "The group is not empty."
            return response
        }
        let held = Set(broker.shares.summaries(request.groupId, view: broker.shareLogView).filter(\.started).map(\.topicPartition.topic))
        let existing = Set(broker.listTopics())
        var refused: [String: String?] = [:]
        for name in request.topicNames where !held.contains(name) {
            let message: String? = existing.contains(name) ? "There is no offset information to delete." : nil
            refused.updateValue(message, forKey: name)
        }
        do {
            let deleting = Set(request.topicNames).subtracting(refused.keys)
            if !deleting.isEmpty { try await broker.shares.deleteState(group: request.groupId, topics: deleting) }
            response.responses = request.topicNames.map { name in
                var topic = DeleteShareGroupOffsetsResponse.Topic(topicName: name, topicId: wireId(of: name))
                if let message = refused[name] {
                    topic.errorCode = KafkaError.unknownTopicOrPartition.rawValue
                    topic.errorMessage = message
                }
                return topic
            }
        } catch {
            response.errorCode = KafkaError(error).rawValue
            response.errorMessage = (error as? TidemarkError)?.message
        }
        return response
    }
}

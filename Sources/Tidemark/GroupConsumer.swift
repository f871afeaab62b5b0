import Synchronization
import TidemarkStorage

public struct GroupConsumerOptions: Sendable {
    public var clientId = "tidemark-embedded"
    public var sessionTimeoutMs: Int32 = 10_000
    public var rebalanceTimeoutMs: Int32 = 30_000
    public var heartbeatIntervalMs: Int64 = 1_000
    /// Offered in this order of preference; the group picks one all members support.
    public var assignors: [PartitionAssignor] = [.range, .roundRobin]
    /// Where to start in a partition with no committed offset.
    public var resetPolicy: OffsetResetPolicy = .earliest
    public init() {}
}

/// An embedded member of a consumer group: joins through the broker's coordinator (the
/// same one Kafka clients use), computes assignments when it is the leader, heartbeats in
/// the background, starts each assigned partition at the group's committed offset, and
/// commits the positions of what it has processed.
///
/// Delivery: at least once, when `commit()` follows processing. Records polled but not
/// committed before a rebalance are delivered again to the partition's next owner.
///
/// Concurrency: Sendable; `state` (a Mutex) owns membership and positions. Call `poll` and
/// `commit` from one task at a time; the heartbeat task only reads and flags.
public final class GroupConsumer: Sendable {
    public let broker: Broker
    public let groupId: String
    public let topics: [String]
    public let options: GroupConsumerOptions

    private struct State: Sendable {
        var memberId = ""
        var generationId: Int32 = -1
        var assignment: [TopicPartition] = []
        var positions: [TopicPartition: Int64] = [:]
        /// The assignment in the order of the next poll (each starts after the partition the
        /// last record came from).
        var order = PollOrder()
        /// The offsets of the assignment the group has committed (at adoption, then what this
        /// member committed): a commit sends only the positions that moved, not one offset per
        /// assigned partition every time (a member of 1,000 partitions wrote 1,000 offsets per
        /// job).
        var committed: [TopicPartition: Int64] = [:]
        var needsRejoin = true
        var closed = false
        /// The subscribed topics' partition counts when the assignment was made (nil: the topic
        /// did not exist): a change makes the member rejoin, so partitions added since (or a
        /// topic created after the subscription) are assigned, as a Kafka client's leader
        /// notices them in its metadata.
        var partitionCounts: [String: Int?] = [:]
    }

    private let state = Mutex(State())
    private let heartbeatTask = Mutex<Task<Void, Never>?>(nil)

    public init(broker: Broker, groupId: String, topics: [String], options: GroupConsumerOptions = GroupConsumerOptions()) {
        self.broker = broker
        self.groupId = groupId
        self.topics = topics
        self.options = options
    }

    public var assignment: [TopicPartition] { state.withLock { $0.assignment } }
    public var memberId: String { state.withLock { $0.memberId } }
    public var generationId: Int32 { state.withLock { $0.generationId } }
    /// The next offset to read of each assigned partition (what `commit` commits).
    public var positions: [TopicPartition: Int64] { state.withLock { $0.positions } }

    /// Records from the assigned partitions. Rejoins the group first when a rebalance is
    /// under way. Traced as a CLIENT `poll` span linked to each record's producer context.
    public func poll(maxRecords: Int = 500, maxWaitMs: Int64 = 500) async throws -> [ConsumerRecord] {
        let span = broker.pollSpan(topics: topics, group: groupId)
        do {
            let records = try await pollUntraced(maxRecords: maxRecords, maxWaitMs: maxWaitMs)
            broker.finishPollSpan(span, records)
            return records
        } catch {
            span?.recordError(error)
            span?.end()
            throw error
        }
    }

    /// Runs `body` in a CONSUMER `process {topic}` span, a child of the record's producer context.
    public func process<T>(_ record: ConsumerRecord, _ body: () async throws -> T) async throws -> T {
        try await broker.withProcessSpan(record, group: groupId, body)
    }

    /// Records from the assigned partitions. Rejoins the group first when a rebalance is
    /// under way (which can take until every member has polled).
    private func pollUntraced(maxRecords: Int = 500, maxWaitMs: Int64 = 500) async throws -> [ConsumerRecord] {
        // Closed: it left the group, and its partitions are others' (it went on reading them).
        if state.withLock({ $0.closed }) { throw TidemarkError(.brokerClosed, "consumer is closed") }
        // The wait is made in slices of a heartbeat interval: a rebalance the heartbeat finds
        // meanwhile is joined at once (a member waiting out a long poll held every other
        // member's join until its poll ended).
        let deadline = ContinuousClock.now + .milliseconds(max(0, maxWaitMs))
        while true {
            if state.withLock({ $0.needsRejoin }) { try await rejoin() }
            let (held, order, generation) = state.withLock { ($0.positions, $0.order, $0.generationId) }
            var positions = held
            let sliceMs = min(max(0, (deadline - ContinuousClock.now).wholeMilliseconds), max(1, options.heartbeatIntervalMs))
            let records = try await broker.pollRecords(
                &positions, order: order, maxRecords: maxRecords, maxWaitMs: sliceMs, maxBytesPerPartition: 1 << 20,
                reset: options.resetPolicy)
            let kept = state.withLock { s -> Bool in
                // A rebalance during the poll may have moved partitions away: drop their records.
                guard s.generationId == generation else { return false }
                for (tp, offset) in positions where s.positions[tp] != nil { s.positions[tp] = offset }
                if let last = records.last { s.order.resume(after: TopicPartition(last.topic, last.partition)) }
                return true
            }
            if kept && !records.isEmpty { return records }
            if ContinuousClock.now >= deadline || state.withLock({ $0.closed }) || broker.isClosed { return [] }
            try Task.checkCancellation()
        }
    }

    /// Commits the current positions (the offsets after the records returned by `poll`) that
    /// moved since the last commit (the group's check of the member and generation is made
    /// even when none did).
    /// Throws `.rebalanceInProgress`/`.illegalGeneration` when the partitions may have moved.
    public func commit() async throws {
        let (memberId, generation, moved) = state.withLock { s in
            (s.memberId, s.generationId, s.positions.filter { s.committed[$0.key] != $0.value })
        }
        let offsets = moved.mapValues { CommittedOffset(offset: $0) }
        if let error = try await broker.groups.commitOffsets(
            groupId: groupId, memberId: memberId, generationId: generation, offsets: offsets,
            sync: broker.commitNeedsSync(offsets.keys))
        {
            if error == .rebalanceInProgress || error == .illegalGeneration || error == .unknownMemberId || error == .groupIdNotFound {
                state.withLock { $0.needsRejoin = true }
            }
            throw TidemarkError(error, "commit for group '\(groupId)' refused")
        }
        state.withLock { s in
            // (Of the same assignment: a rebalance meanwhile read the group's offsets again.)
            guard s.generationId == generation && s.memberId == memberId else { return }
            for (tp, offset) in moved where s.positions[tp] != nil { s.committed[tp] = offset }
        }
    }

    /// Leaves the group (its partitions move to the other members at once).
    public func close() async {
        let memberId = state.withLock { s -> String in
            s.closed = true
            return s.memberId
        }
        heartbeatTask.withLock { $0?.cancel() }
        if !memberId.isEmpty { broker.groups.leave(groupId: groupId, memberIds: [memberId]) }
    }

    private func rejoin() async throws {
        let subscription = ConsumerProtocol.encodeSubscription(topics: topics)
        while true {
            if state.withLock({ $0.closed }) { throw TidemarkError(.brokerClosed, "consumer is closed") }
            let request = JoinGroupRequest(
                groupId: groupId, memberId: state.withLock { $0.memberId }, clientId: options.clientId,
                sessionTimeoutMs: options.sessionTimeoutMs, rebalanceTimeoutMs: options.rebalanceTimeoutMs,
                protocolType: ConsumerProtocol.protocolType,
                protocols: options.assignors.map { ($0.rawValue, subscription) })
            let joined = await broker.groups.join(request)
            switch joined.error {
            case nil: break
            case .unknownMemberId?, .illegalGeneration?:
                state.withLock { $0.memberId = "" }
                continue
            case .rebalanceInProgress?:
                continue
            case let code?:
                throw TidemarkError(code, "joining group '\(groupId)' failed")
            }
            // Kept now: a sync that fails (a rebalance begun meanwhile) rejoins as this member.
            // (It rejoined with no id, as a new member, and the old one held the rebalance
            // until its rebalance timeout removed it.)
            state.withLock { $0.memberId = joined.memberId }
            var assignments: [String: [UInt8]]? = nil
            if joined.leaderId == joined.memberId {
                assignments = try leaderAssignments(joined)
            }
            let synced = await broker.groups.sync(
                groupId: groupId, memberId: joined.memberId, generationId: joined.generationId, assignments: assignments)
            if let error = synced.error {
                if error == .rebalanceInProgress || error == .illegalGeneration { continue }
                if error == .unknownMemberId {
                    state.withLock { $0.memberId = "" }
                    continue
                }
                throw TidemarkError(error, "syncing group '\(groupId)' failed")
            }
            let assigned = ConsumerProtocol.decodeAssignment(synced.assignment) ?? []
            try await adopt(assigned, memberId: joined.memberId, generation: joined.generationId)
            startHeartbeats()
            return
        }
    }

    /// The leader's job: decode every member's subscription and run the chosen assignor.
    private func leaderAssignments(_ joined: JoinGroupResponse) throws -> [String: [UInt8]] {
        let assignor = PartitionAssignor(rawValue: joined.protocolName ?? "") ?? .range
        var subscriptions: [String: [String]] = [:]
        for member in joined.members {
            subscriptions[member.memberId] = ConsumerProtocol.decodeSubscriptionTopics(member.metadata) ?? []
        }
        var counts: [String: Int] = [:]
        for topic in Set(subscriptions.values.flatMap { $0 }) {
            if let count = try? broker.partitionCount(of: topic) { counts[topic] = count }
        }
        return assignor.assign(subscriptions: subscriptions, partitionCounts: counts).mapValues {
            ConsumerProtocol.encodeAssignment($0)
        }
    }

    /// Takes up a new assignment, each partition at its committed offset.
    private func adopt(_ assigned: [TopicPartition], memberId: String, generation: Int32) async throws {
        let counts = currentPartitionCounts()
        let committed = broker.groups.fetchOffsets(groupId: groupId, partitions: assigned)
        var positions: [TopicPartition: Int64] = [:]
        for tp in assigned {
            if let offset = committed[tp]?.offset {
                positions[tp] = offset
            } else {
                let start: StartPosition = options.resetPolicy == .earliest ? .earliest : .latest
                positions[tp] = try await broker.resolveOffset(topic: tp.topic, partition: tp.partition, start).offset
            }
        }
        state.withLock { s in
            s.memberId = memberId
            s.generationId = generation
            // The turn carries over (after the partition the last poll's last record came
            // from): a rebalance does not send polls back to the first partitions.
            let previous = s.order
            s.order = PollOrder(assigned)
            if let last = previous.lastTurn { s.order.resume(after: last) }
            s.assignment = s.order.partitions
            s.positions = positions
            s.committed = committed.compactMapValues { $0.offset }.filter { assigned.contains($0.key) }
            s.needsRejoin = false
            s.partitionCounts = counts
        }
    }

    private func currentPartitionCounts() -> [String: Int?] {
        Dictionary(topics.map { ($0, try? broker.partitionCount(of: $0)) }, uniquingKeysWith: { first, _ in first })
    }

    private func startHeartbeats() {
        heartbeatTask.withLock { task in
            guard task == nil else { return }
            task = Task { [weak self] in
                while !Task.isCancelled {
                    guard let self else { return }
                    // (At least 1 ms: 0 or less made the task spin.)
                    try? await Task.sleep(for: .milliseconds(max(1, self.options.heartbeatIntervalMs)))
                    let (memberId, generation, closed, counts) = self.state.withLock {
                        ($0.memberId, $0.generationId, $0.closed, $0.partitionCounts)
                    }
                    if closed { return }
                    if memberId.isEmpty { continue }
                    // Partitions added to a subscribed topic, or the topic made: a new assignment.
                    if self.currentPartitionCounts() != counts { self.state.withLock { $0.needsRejoin = true } }
                    // Also while a rebalance waits for this member's poll: its session is kept to
                    // the rebalance timeout, as a Kafka client's heartbeat thread keeps it (skipped,
                    // a member processing a batch was evicted at its session timeout).
                    if let error = self.broker.groups.heartbeat(groupId: self.groupId, memberId: memberId, generationId: generation) {
                        self.state.withLock { s in
                            s.needsRejoin = true
                            if error == .unknownMemberId { s.memberId = "" }
                        }
                    }
                }
            }
        }
    }
}

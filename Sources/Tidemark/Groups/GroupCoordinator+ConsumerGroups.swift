import Foundation
import Synchronization

// Consumer-protocol groups (KIP-848): ConsumerGroupHeartbeat, settings, describe.
extension GroupCoordinator {
    /// A group's configs changed: if it is a consumer group, the next tick looks at it (its
    /// members' sessions may now run out sooner than its deadline said).
    func configsChanged(_ groupId: String) {
        let now = clock()
        state.withLock { $0.consumerSettingsChanged(groupId, nowMs: now) }
    }

    /// A consumer group's settings: its group configs over the broker's defaults.
    func consumerSettings(_ groupId: String) -> ConsumerGroup.Settings {
        let explicit = configs.explicit(groupId)
        return ConsumerGroup.Settings(
            sessionTimeoutMs: explicit["consumer.session.timeout.ms"].flatMap(Int64.init) ?? options.consumerSessionTimeoutMs,
            heartbeatIntervalMs: explicit["consumer.heartbeat.interval.ms"].flatMap(Int32.init) ?? options.consumerHeartbeatIntervalMs,
            maxSize: options.consumerGroupMaxSize)
    }

    /// ConsumerGroupHeartbeat: joins, leaves, or moves a member toward its target assignment.
    /// Answered at once (nothing waits). A classic group id with members is refused
    /// (GROUP_ID_NOT_FOUND, as Kafka does without migration); an empty one becomes a consumer
    /// group, keeping its committed offsets.
    public func consumerHeartbeat(_ request: ConsumerHeartbeat, catalog: TopicCatalog) -> ConsumerHeartbeatResult {
        consumerHeartbeat(request, catalog: catalog, whenWritten: nil).result
    }

    /// `consumerHeartbeat`, answered once the records it sent are in the log (a join, a leave,
    /// a member's new subscription, a group settling at a new epoch), as Kafka answers a
    /// heartbeat once its records are appended: answered first, a kill -9 in between brought
    /// back the group as it was (a static member's old instance refusing its new one with
    /// UNRELEASED_INSTANCE_ID, fatal in clients; a member that left, a ghost for a session).
    /// A steady heartbeat sends none and is answered at once.
    public func consumerHeartbeatWhenRecorded(_ request: ConsumerHeartbeat, catalog: TopicCatalog) async -> ConsumerHeartbeatResult {
        // Resumed by whichever comes last: the answer, or the writer done with the records.
        let gate = Mutex<(result: ConsumerHeartbeatResult?, written: Bool)>((nil, false))
        return await withCheckedContinuation { (continuation: CheckedContinuation<ConsumerHeartbeatResult, Never>) in
            let (result, sent) = consumerHeartbeat(request, catalog: catalog) { _ in
                let ready = gate.withLock { g -> ConsumerHeartbeatResult? in
                    g.written = true
                    return g.result
                }
                if let ready { continuation.resume(returning: ready) }
            }
            let now = gate.withLock { g -> Bool in
                g.result = result
                return !sent || g.written
            }
            if now { continuation.resume(returning: result) }
        }
    }

    /// `consumerHeartbeat`, with what to call once the records it sent are written (and
    /// whether it sent any: if not, `whenWritten` is never called).
    func consumerHeartbeat(
        _ request: ConsumerHeartbeat, catalog: TopicCatalog, whenWritten: (@Sendable (Bool) -> Void)?
    ) -> (result: ConsumerHeartbeatResult, sent: Bool) {
        var sent = false
        let result = consumerHeartbeat(request, catalog: catalog, whenWritten: whenWritten, sent: &sent)
        return (result, sent)
    }

    private func consumerHeartbeat(
        _ request: ConsumerHeartbeat, catalog: TopicCatalog, whenWritten: (@Sendable (Bool) -> Void)?, sent: inout Bool
    ) -> ConsumerHeartbeatResult {
        guard Self.validGroupId(request.groupId) else {
            return .failure(.invalidRequest, "the group id must be 1 to 255 bytes", memberId: request.memberId)
        }
        if let malformation = request.malformation { return .failure(.invalidRequest, malformation, memberId: request.memberId) }
        guard request.memberId.utf8.count <= 255, (request.instanceId?.utf8.count ?? 0) <= 255,
            (request.rackId?.utf8.count ?? 0) <= 255, (request.subscribedTopicNames?.count ?? 0) <= 10_000
        else {
            return .failure(.invalidRequest, "member id, instance id, rack id or subscription too long", memberId: request.memberId)
        }
        if let refusal = TopicName.refusal(ofSubscription: request.subscribedTopicNames) {
            return .failure(.invalidRequest, refusal, memberId: request.memberId)
        }
        // A pattern is kept and compiled: 4 KiB is far more than any subscription needs.
        guard (request.subscribedTopicRegex?.utf8.count ?? 0) <= 4_096 else {
            return .failure(.invalidRegularExpression, "the subscription pattern is over 4 KiB", memberId: request.memberId)
        }
        // A pattern new to the group is matched here, before the coordinator's lock: what it
        // costs (up to `TopicPatternCache.stepBudget`) is its own request's, not every group's.
        var prematched: TopicPatternCache.MatchedPattern? = nil
        if let pattern = request.subscribedTopicRegex, !pattern.isEmpty,
            !state.withLock({ $0.consumerGroups[request.groupId]?.knowsPattern(pattern) ?? false })
        {
            switch TopicPatternCache.matchNew(pattern, catalog: catalog) {
            case .success(let matched): prematched = matched
            case .failure(let refusal): return .failure(.invalidRegularExpression, refusal.message, memberId: request.memberId)
            }
        }
        let now = clock()
        return state.withLock { s in
            if s.isClosed { return .failure(.brokerClosed, "the broker is closing", memberId: request.memberId) }
            // Read under the lock (the configs' is a leaf): a config change either comes before
            // and is seen, or its `configsChanged` comes after. Read before the lock, a change in
            // between was overwritten by the old session timeout until the next heartbeat.
            let settings = consumerSettings(request.groupId)
            if s.deleting[request.groupId] != nil { return .failure(.groupBusy, "the group is being deleted", memberId: request.memberId) }
            if let classic = s.groups[request.groupId] {
                guard classic.members.isEmpty else {
                    return .failure(
                        .groupIdNotFound, "group \(request.groupId) is a classic group with members", memberId: request.memberId)
                }
                s.setClassic(nil, id: request.groupId)
                recordedMemberships.retire(request.groupId)
            }
            var group = s.consumerGroups[request.groupId] ?? ConsumerGroup(groupId: request.groupId)
            // Members keep their subscriptions while they stay: a heartbeat that would take all
            // members past the broker's bound is refused.
            // A static member's new instance takes the place of the one that left for now
            // (`ConsumerGroup.replace`), and its bytes.
            let replaced = request.memberEpoch == 0 ? request.instanceId.flatMap { group.staticMembers[$0] }.flatMap { group.members[$0] } : nil
            let existing = group.members[request.memberId] ?? replaced
            let keeps = ConsumerGroup.Member.keptBytes(
                memberId: request.memberId, clientId: request.clientId, clientHost: request.clientHost,
                instanceId: request.instanceId ?? existing?.instanceId, rackId: request.rackId ?? existing?.rackId,
                names: request.subscribedTopicNames ?? existing?.subscribedTopicNames,
                regex: request.subscribedTopicRegex ?? existing?.subscribedTopicRegex)
            // A new group counts itself too (`ClassicGroup.groupBytes`).
            let kept = (existing?.keptBytes ?? 0) - (s.consumerGroups[request.groupId] == nil ? ClassicGroup.groupBytes(request.groupId) : 0)
            if keeps > kept && s.memberBytes - kept + keeps > options.membersMaxBytes {
                return .failure(.groupMaxSizeReached, "group members keep \(s.memberBytes) bytes (group.members.max.bytes)", memberId: request.memberId)
            }
            // Changed out of the map (put back below), so its tables are not copied: a group's
            // subscribed-name counts may hold hundreds of thousands of names.
            let existed = s.takeConsumer(request.groupId) != nil
            let result = group.heartbeat(request, nowMs: now, settings: settings, catalog: catalog, prematched: prematched) {
                UUID().uuidString.lowercased()
            }
            if !(group.isEmpty && !existed) {
                s.setConsumer(group, id: request.groupId)
                // A join, a leave, a new epoch or assignment, or a refusal (which may have
                // removed the member) may have made the group Stable or Empty.
                let resubscribed = request.subscribedTopicNames != nil || request.subscribedTopicRegex != nil || request.serverAssignor != nil
                if request.memberEpoch <= 0 || resubscribed || result.error != nil || result.memberEpoch != request.memberEpoch
                    || result.assignment != nil
                {
                    sent = noteConsumerMembership(group, &s, topicId: catalog.topicId, whenWritten: whenWritten)
                }
                // One that writes nothing waits for the group's records on their way (what it is
                // told, another member's join or epoch, is in them), as Kafka answers once the
                // writes before it are committed.
                if !sent, let whenWritten { sent = membershipRecords.afterPending(request.groupId, whenWritten) }
            }
            return result
        }
    }

    /// ConsumerGroupDescribe: nil when the id is not a consumer-protocol group. An Empty one
    /// known only by its records (dropped after a while, or after a restart) is described
    /// Empty at its epoch, as Kafka does (ListGroups lists it as a consumer group).
    public func describeConsumerGroup(_ groupId: String) -> ConsumerGroupDescription? {
        if let live = state.withLock({ $0.consumerGroups[groupId]?.describe() }) { return live }
        guard let kept = store.memberships.withLock({ $0[groupId] }), kept.classicValue(group: groupId) == nil,
            let snapshot = ConsumerGroupSnapshot(group: groupId, records: kept.records), snapshot.members.isEmpty,
            state.withLock({ $0.groups[groupId] == nil && $0.consumerGroups[groupId] == nil })
        else { return nil }
        return ConsumerGroupDescription(
            groupId: groupId, state: .empty, groupEpoch: snapshot.epoch, assignmentEpoch: snapshot.assignmentEpoch,
            assignorName: ServerAssignor.default.rawValue, members: [])
    }
}

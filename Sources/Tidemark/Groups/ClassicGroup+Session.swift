/// A classic group's members after they joined: SyncGroup, Heartbeat, LeaveGroup, the passing
/// of time (sessions, deadlines) and the check of a member's OffsetCommit.
extension ClassicGroup {
    // MARK: Sync, heartbeat, leave

    /// Handles a SyncGroup. The leader's carries everyone's assignment. nil: the caller
    /// waits for a `.sync` delivery (the leader's sync). A protocol type or name (v5+) that is
    /// not the group's is INCONSISTENT_GROUP_PROTOCOL, as Kafka's `validateSyncGroup` answers.
    mutating func sync(
        memberId: String, instance: String? = nil, generationId: Int32, protocolType: String? = nil, protocolName: String? = nil,
        assignments: [String: [UInt8]]?, nowMs: Int64
    ) -> (SyncGroupResponse?, [Delivery]) {
        if let fenced = fenced(memberId, instance: instance) { return (.failure(fenced), []) }
        guard members[memberId] != nil else { return (.failure(.unknownMemberId), []) }
        guard generationId == self.generationId else { return (.failure(.illegalGeneration), []) }
        if let protocolType, let mine = self.protocolType, protocolType != mine { return (.failure(.inconsistentGroupProtocol), []) }
        if let protocolName, let mine = self.protocolName, protocolName != mine { return (.failure(.inconsistentGroupProtocol), []) }
        members[memberId]!.lastHeartbeatMs = nowMs
        switch state {
        case .empty, .dead: return (.failure(.unknownMemberId), [])
        case .preparingRebalance: return (.failure(.rebalanceInProgress), [])
        case .stable:
            pendingSync.remove(memberId)
            return (syncResponse(for: memberId), [])
        case .completingRebalance:
            pendingSync.remove(memberId)
            members[memberId]!.awaitingSync = true
            guard memberId == leaderId, let assignments else { return (nil, []) }
            for id in memberOrder { members[id]!.assignment = assignments[id] ?? [] }
            state = .stable
            var deliveries: [Delivery] = []
            for id in memberOrder where members[id]!.awaitingSync {
                // Its session starts again as its wait ends (it sent no heartbeat meanwhile).
                members[id]!.awaitingSync = false
                members[id]!.lastHeartbeatMs = nowMs
                if id != memberId { deliveries.append(.sync(memberId: id, syncResponse(for: id))) }
            }
            return (syncResponse(for: memberId), deliveries)
        }
    }

    func syncResponse(for memberId: String) -> SyncGroupResponse {
        SyncGroupResponse(
            error: nil, protocolType: protocolType, protocolName: protocolName, assignment: members[memberId]?.assignment ?? [])
    }

    /// Handles a Heartbeat: nil when all is well, otherwise the error to answer.
    mutating func heartbeat(memberId: String, instance: String? = nil, generationId: Int32, nowMs: Int64) -> TidemarkError.Code? {
        if let fenced = fenced(memberId, instance: instance) { return fenced }
        guard members[memberId] != nil, state != .empty, state != .dead else { return .unknownMemberId }
        guard generationId == self.generationId else { return .illegalGeneration }
        members[memberId]!.lastHeartbeatMs = nowMs
        return state == .preparingRebalance ? .rebalanceInProgress : nil
    }

    /// Removes members that leave; the rest rebalance.
    mutating func leave(memberIds: [String], nowMs: Int64) -> ([String: TidemarkError.Code?], [Delivery]) {
        let (results, deliveries) = leave(members: memberIds.map { ($0, nil) }, nowMs: nowMs)
        var byId: [String: TidemarkError.Code?] = [:]
        for (index, id) in memberIds.enumerated() where byId[id] == nil { byId[id] = results[index] }
        return (byId, deliveries)
    }

    /// Removes members that leave (LeaveGroup v3+: each by member id, instance id or both; a
    /// static member named by its instance alone is found by it, one named with an older
    /// member id is fenced); the rest rebalance. Results in the order asked.
    mutating func leave(members leaving: [(memberId: String, instance: String?)], nowMs: Int64) -> ([TidemarkError.Code?], [Delivery]) {
        var results: [TidemarkError.Code?] = []
        var removedAny = false
        var forgotPending = false
        var deliveries: [Delivery] = []
        for (memberId, instance) in leaving {
            var id = memberId
            if let instance {
                guard let current = staticMembers[instance] else {
                    results.append(.unknownMemberId)
                    continue
                }
                guard memberId.isEmpty || memberId == current else {
                    results.append(.fencedInstanceId)
                    continue
                }
                id = current
            }
            guard let member = members[id] else {
                // An id handed out and not used yet is forgotten (Kafka answers it NONE); a
                // rebalance waiting for it may complete.
                if instance == nil, pendingMemberIds.removeValue(forKey: id) != nil {
                    results.append(nil)
                    forgotPending = true
                } else {
                    results.append(.unknownMemberId)
                }
                continue
            }
            if member.awaitingJoin { deliveries.append(.join(memberId: id, .failure(.unknownMemberId, memberId: id))) }
            if member.awaitingSync { deliveries.append(.sync(memberId: id, .failure(.unknownMemberId))) }
            remove(id)
            results.append(nil)
            removedAny = true
        }
        if removedAny {
            deliveries += membershipChanged(nowMs: nowMs)
        } else if forgotPending {
            deliveries += maybeCompleteJoin(nowMs: nowMs)
        }
        return (results, deliveries)
    }

    mutating func membershipChanged(nowMs: Int64) -> [Delivery] {
        switch state {
        case .stable, .completingRebalance:
            if members.isEmpty {
                generationId = generationId == Int32.max ? 1 : generationId + 1
                state = .empty
                protocolName = nil
                leaderId = nil
                return []
            }
            return prepareRebalance(nowMs: nowMs) + maybeCompleteJoin(nowMs: nowMs)
        case .preparingRebalance:
            return maybeCompleteJoin(nowMs: nowMs)
        case .empty, .dead:
            return []
        }
    }

    /// Time passes: sessions expire (members waiting in Join or Sync are covered by the
    /// rebalance timeout instead, as Kafka's `hasSatisfiedHeartbeat`: librdkafka, sarama and
    /// kafka-python send no heartbeat while their SyncGroup waits for the leader's), and a
    /// rebalance whose deadline passed completes without stragglers.
    mutating func tick(nowMs: Int64) -> [Delivery] {
        pendingMemberIds = pendingMemberIds.filter { $0.value > nowMs }
        var deliveries: [Delivery] = []
        let expired = members.values.filter {
            !$0.awaitingJoin && !$0.awaitingSync && $0.lastHeartbeatMs + Int64($0.sessionTimeoutMs) < nowMs
        }
        // A new member's first join waits at most `newMemberJoinTimeoutMs` (as Kafka's), unless
        // the rebalance's own deadline came first: the tick runs after both, and Kafka's timers
        // would have completed the generation with it (the completion below does).
        let givenUp = members.values.filter { member in
            guard member.awaitingJoin, let deadline = member.newJoinDeadlineMs, deadline < nowMs else { return false }
            return !(state == .preparingRebalance && rebalanceDeadlineMs <= deadline)
        }
        if !expired.isEmpty || !givenUp.isEmpty {
            for member in expired { remove(member.id) }
            for member in givenUp {
                deliveries.append(.join(memberId: member.id, .failure(.unknownMemberId)))
                remove(member.id)
            }
            deliveries += membershipChanged(nowMs: nowMs)
        }
        // Pending sync (as Kafka since 3.0, KAFKA-12890): members that have not sent their
        // SyncGroup within the rebalance timeout after the join completed are removed, the
        // leader among them if it never sent the assignment (in CompletingRebalance), or a
        // member that heartbeats and never syncs (in Stable: its partitions went unread); the
        // others rejoin. A leader that heartbeats and never syncs held its followers'
        // SyncGroups, and the group, for ever.
        if state == .completingRebalance || state == .stable, nowMs >= syncDeadlineMs {
            let late = pendingSync.filter { members[$0] != nil }
            pendingSync = []
            syncDeadlineMs = .max
            for id in late { remove(id) }
            if !late.isEmpty { deliveries += membershipChanged(nowMs: nowMs) }
        }
        deliveries += maybeCompleteJoin(nowMs: nowMs)
        return deliveries
    }

    // MARK: Offsets

    /// Whether an OffsetCommit from this member and generation may be stored (Kafka's rules:
    /// a standalone commit needs an empty group; a member commits for its current generation,
    /// also while a rebalance is being prepared).
    func validateCommit(memberId: String, instance: String? = nil, generationId: Int32) -> TidemarkError.Code? {
        // In Kafka's order (ClassicGroup.validateOffsetCommit): who is committing first, the
        // group's state last. A fenced member committing while the group completes a rebalance
        // is told its id or generation is stale (the Java client then rejoins), not that a
        // rebalance is in progress.
        if generationId < 0 && members.isEmpty && state == .empty { return nil }  // an admin or standalone commit to an empty group
        if generationId >= 0 || !memberId.isEmpty || instance != nil {
            // An instance id no static member holds is unknown, whatever the member id
            // (Kafka's validateMember).
            if let fenced = fenced(memberId, instance: instance) { return fenced }
            guard members[memberId] != nil else { return .unknownMemberId }
            guard generationId == self.generationId else { return .illegalGeneration }
        } else {
            return .unknownMemberId  // no member named, and the group has members
        }
        if state == .completingRebalance { return .rebalanceInProgress }
        return nil
    }

    /// Every waiting member is answered (the coordinator is shutting down).
    mutating func abandonWaiters(nowMs: Int64) -> [Delivery] {
        var deliveries: [Delivery] = []
        for (id, member) in members {
            if member.awaitingJoin { deliveries.append(.join(memberId: id, .failure(.rebalanceInProgress, memberId: id))) }
            if member.awaitingSync { deliveries.append(.sync(memberId: id, .failure(.rebalanceInProgress))) }
            members[id]!.awaitingJoin = false
            members[id]!.awaitingSync = false
            // Its session starts again as its wait ends (the server may drain for a while).
            if member.awaitingJoin || member.awaitingSync { members[id]!.lastHeartbeatMs = nowMs }
        }
        return deliveries
    }
}

/// How `resetOffsets` moves a group's committed offsets.
public enum OffsetReset: Sendable, Equatable {
    case earliest
    case latest
    /// The first offset whose timestamp is >= this (ms since the epoch); the end if none.
    case timestamp(Int64)
    /// The committed offset moved by this many, clamped to the log; refused for a partition
    /// without one, as Kafka's tool refuses it.
    case shift(Int64)

    /// `base` moved by `delta`, clamped to `start...end`: any delta, none traps (past
    /// Int64's range is past the log's end or start). Every reset by `shift` uses it: the
    /// broker's and the tools' over the wire.
    public static func shifted(_ base: Int64, by delta: Int64, start: Int64, end: Int64) -> Int64 {
        let (moved, overflow) = base.addingReportingOverflow(delta)
        return overflow ? (delta > 0 ? end : start) : min(max(moved, start), end)
    }

    /// Why a shift of a partition without a committed offset (or a share group's partition
    /// without a start offset) is refused, in one wording for the engine, the console and the CLI.
    public static func nothingToShift(group: String, _ tp: TopicPartition) -> String {
        "cannot shift partition \(tp.topic)-\(tp.partition): group '\(group)' has no offset there to shift "
            + "(reset it to the earliest, the latest or a time first)"
    }
}

extension Broker {
    /// ConsumerGroupHeartbeat (KIP-848) over this broker's topics; internal topics are never
    /// assigned.
    public func consumerGroupHeartbeat(_ request: ConsumerHeartbeat) -> ConsumerHeartbeatResult {
        if shareGroupHolds(request.groupId) {
            return .failure(.groupIdNotFound, "group \(request.groupId) is a share group", memberId: request.memberId)
        }
        return groups.consumerHeartbeat(request, catalog: groupCatalog)
    }

    /// `consumerGroupHeartbeat`, answered once the records it sent are in the log
    /// (`GroupCoordinator.consumerHeartbeatWhenRecorded`): the Kafka front's.
    public func consumerGroupHeartbeatWhenRecorded(_ request: ConsumerHeartbeat) async -> ConsumerHeartbeatResult {
        if shareGroupHolds(request.groupId) {
            return .failure(.groupIdNotFound, "group \(request.groupId) is a share group", memberId: request.memberId)
        }
        return await groups.consumerHeartbeatWhenRecorded(request, catalog: groupCatalog)
    }

    /// The topics consumer-protocol groups are assigned from: every topic but the internal ones.
    var groupCatalog: TopicCatalog {
        // Looked up without a thrown error for names that are not topics: a group may
        // subscribe to many (internal topics are not in the registry's `topics`).
        TopicCatalog(
            partitionCount: { [self] name in registry.withLock { $0.isClosed ? nil : $0.topics[name]?.slots.count } },
            topicNames: { [self] in listTopics() },
            topicId: { [self] name in registry.withLock { $0.topics[name]?.id } },
            generation: { [self] in registry.withLock { $0.generation } })
    }

    /// DeleteGroups: deletes each group that has no members, with what is kept for it
    /// (committed offsets and membership record, or a share group's share state). Per group,
    /// in order: nil when deleted, else why not (`.nonEmptyGroup`, `.groupIdNotFound`,
    /// `.invalidGroupId`, or the storage error).
    public func deleteGroups(_ ids: [String]) async -> [(group: String, error: TidemarkError.Code?)] {
        var results: [(group: String, error: TidemarkError.Code?)] = []
        for id in ids {
            do {
                // Both kinds of state go: an id can have share state and a consumer group's
                // (a ShareFetch under a consumer group's id makes share state). Deleting the
                // share state alone was answered as success, leaving the consumer group, its
                // members and offsets as they were; a live one's is NON_EMPTY_GROUP.
                if groups.hasMembers(id) {
                    // Refused before anything goes (the share state under its id too).
                    results.append((id, .nonEmptyGroup))
                    continue
                }
                let shareDeleted = try await shares.deleteGroup(id)
                let other = try await groups.deleteGroup(id)
                results.append((id, shareDeleted && other == .groupIdNotFound ? nil : other))
            } catch {
                results.append((id, (error as? TidemarkError)?.code ?? .storage))
            }
        }
        return results
    }

    /// Computes new committed offsets for `group` on every partition of `topic`, and stores
    /// them unless `dryRun`. Refused (`.rebalanceInProgress`) while the group has members:
    /// they would overwrite the reset with their next commit.
    public func resetOffsets(group: String, topic: String, to reset: OffsetReset, dryRun: Bool = false) async throws
        -> [TopicPartition: Int64]
    {
        // A share group's offsets are its start offsets (`ShareCoordinator.resetOffsets`):
        // committing classic offsets under its id changed nothing of it, and made Kafka's
        // ListGroups type it classic.
        guard !shares.groupIds().contains(group) else {
            throw TidemarkError(.inconsistentGroupProtocol, "'\(group)' is a share group: its start offsets are reset as a share group's")
        }
        let partitions = try partitionCount(of: topic)
        let committed = groups.fetchOffsets(groupId: group)
        var result: [TopicPartition: Int64] = [:]
        for p in 0..<partitions {
            let tp = TopicPartition(topic, p)
            let (start, end) = try offsets(topic: topic, partition: p)
            switch reset {
            case .earliest: result[tp] = start
            case .latest: result[tp] = end
            case .timestamp(let ms): result[tp] = try await resolveOffset(topic: topic, partition: p, .timestamp(ms)).offset
            case .shift(let delta):
                // As Kafka's tool: a shift moves a committed offset; a partition without one has
                // nothing to move (its consumers start by auto.offset.reset, which this cannot know).
                guard let base = committed[tp]?.offset else {
                    throw TidemarkError(.invalidRequest, OffsetReset.nothingToShift(group: group, tp))
                }
                result[tp] = OffsetReset.shifted(base, by: delta, start: start, end: end)
            }
        }
        if dryRun { return result }
        let members = groups.describeGroup(group).members.count + (groups.describeConsumerGroup(group)?.members.count ?? 0)
        guard members == 0 else {
            throw TidemarkError(
                .rebalanceInProgress,
                "group '\(group)' has \(members) member\(members == 1 ? "" : "s") (offsets are reset only in an empty group, as in Kafka; members a restart brought back from the log stay until their sessions run out with the broker running)")
        }
        if let error = try await groups.commitOffsets(
            groupId: group, offsets: result.mapValues { CommittedOffset(offset: $0, metadata: "reset") })
        {
            throw TidemarkError(error, "resetting offsets of group '\(group)' failed")
        }
        return result
    }
}

extension Broker {
    /// Whether a commit of these partitions must be synced before it is answered: when one of
    /// their topics syncs every append (committed offsets are as durable as the records they
    /// commit; see `OffsetStore`). Unknown topics ask for nothing.
    public func commitNeedsSync<Partitions: Sequence>(_ partitions: Partitions) -> Bool where Partitions.Element == TopicPartition {
        partitions.contains { syncsEveryAppend($0.topic) }
    }

    /// Whether `topic` is synced before each append is acknowledged (`flush.messages=1`): what
    /// acknowledgements and commits of its records wait for. False for unknown topics.
    func syncsEveryAppend(_ topic: String) -> Bool {
        (try? topicState(topic))?.config.flushPolicy == .everyAppend
    }
}

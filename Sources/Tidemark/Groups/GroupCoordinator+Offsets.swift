import Foundation
import Logging
import Synchronization
import TidemarkStorage

/// Committed offsets: commits checked against the group's generation (on a task, or on an
/// event loop with the durability left to the flusher), fetches, deletes and resets.
extension GroupCoordinator {
    /// OffsetCommit: stores the offsets if the member may commit them now; per-partition
    /// result is nil (stored) or the group error. `sync`: the commit is synced before this
    /// returns (a commit of a topic synced on every append, `Broker.commitNeedsSync`);
    /// otherwise within a second. `memberEpochs`: the request knows member epochs (OffsetCommit
    /// v9+); a consumer-protocol member's commit without them is refused (`.unsupportedVersion`).
    public func commitOffsets(
        groupId: String, memberId: String = "", groupInstanceId: String? = nil, generationId: Int32 = -1,
        offsets: [TopicPartition: CommittedOffset], sync: Bool = true, memberEpochs: Bool = true
    ) async throws -> TidemarkError.Code? {
        switch checkCommit(
            groupId: groupId, memberId: memberId, instance: groupInstanceId, generationId: generationId, offsets: offsets,
            memberEpochs: memberEpochs)
        {
        case .failure(let refused): return refused.code
        case .success(let stamped):
            do {
                try await store.commit(group: groupId, offsets: stamped, sync: sync)
            } catch let error as TidemarkError where error.code == .invalidCommitOffsetSize {
                return error.code  // the committed offsets are full
            } catch {
                throw Self.commitFailure(error, groupId)
            }
            return nil
        }
    }

    /// A storage failure of a commit as the engine reports it (KAFKA_STORAGE_ERROR on the wire).
    static func commitFailure(_ error: any Error, _ groupId: String) -> any Error {
        guard let storage = error as? StorageError else { return error }
        return TidemarkError.wrapping(storage, "commit of offsets of group '\(groupId)'")
    }

    /// `commitOffsets` for an event loop: checked and appended to the page cache on the calling
    /// thread; `completion` is called there at once, or from the flusher's thread once the
    /// commit is durable, or from a task when the append would block (a new segment, or the
    /// offsets log busy with compaction): that task checks and commits again. Hand its work
    /// back to the caller's loop.
    public func commitOffsets(
        groupId: String, memberId: String, groupInstanceId: String? = nil, generationId: Int32,
        offsets: [TopicPartition: CommittedOffset], sync: Bool, memberEpochs: Bool = true,
        completion: @escaping @Sendable (Result<TidemarkError.Code?, any Error>) -> Void
    ) {
        let stamped: [TopicPartition: CommittedOffset]
        switch checkCommit(
            groupId: groupId, memberId: memberId, instance: groupInstanceId, generationId: generationId, offsets: offsets,
            memberEpochs: memberEpochs)
        {
        case .failure(let refused): return completion(.success(refused.code))
        case .success(let checked): stamped = checked
        }
        let immediate: OffsetStore.ImmediateCommit
        do {
            immediate = try store.commitNow(group: groupId, offsets: stamped, sync: sync)
        } catch let error as TidemarkError where error.code == .invalidCommitOffsetSize {
            return completion(.success(error.code))
        } catch {
            return completion(.failure(Self.commitFailure(error, groupId)))
        }
        switch immediate {
        case .appended(durableAt: nil):
            completion(.success(nil))
        case .appended(durableAt: let target?):
            store.flusher.whenDurable(store.partition.log, upTo: target) { error in
                completion(error.map { .failure(Self.commitFailure($0, groupId)) } ?? .success(nil))
            }
        case .wouldBlock:
            // Checked again when it runs: the member may have been fenced meanwhile.
            Task { [self] in
                do {
                    completion(.success(try await commitOffsets(
                        groupId: groupId, memberId: memberId, groupInstanceId: groupInstanceId, generationId: generationId,
                        offsets: offsets, sync: sync, memberEpochs: memberEpochs)))
                } catch {
                    completion(.failure(error))
                }
            }
        }
    }

    /// Why a commit is refused.
    struct RefusedCommit: Error {
        var code: TidemarkError.Code
    }

    /// Kafka's checks of an OffsetCommit (the group id, metadata sizes, the member and its
    /// generation or epoch), and the offsets stamped with the commit time where they have none.
    private func checkCommit(
        groupId: String, memberId: String, instance: String?, generationId: Int32, offsets: [TopicPartition: CommittedOffset],
        memberEpochs: Bool
    ) -> Result<[TopicPartition: CommittedOffset], RefusedCommit> {
        guard Self.validGroupId(groupId) else { return .failure(RefusedCommit(code: .invalidGroupId)) }
        if offsets.values.contains(where: { !options.metadataFits($0.metadata) }) {
            return .failure(RefusedCommit(code: .offsetMetadataTooLarge))
        }
        if offsets.keys.contains(where: { $0.topic.utf8.count > TopicName.maxLength }) {
            return .failure(RefusedCommit(code: .unknownTopicOrPartition))
        }
        enum Verdict { case checked(TidemarkError.Code?), noGroup }
        let verdict = state.withLock { s -> Verdict in
            if s.isClosed { return .checked(.brokerClosed) }
            if s.deleting[groupId] != nil { return .checked(.groupBusy) }
            if let group = s.consumerGroups[groupId] {
                return .checked(group.validateCommit(memberId: memberId, memberEpoch: generationId, memberEpochs: memberEpochs))
            }
            guard let group = s.groups[groupId] else { return .noGroup }
            return .checked(group.validateCommit(memberId: memberId, instance: instance, generationId: generationId))
        }
        let error: TidemarkError.Code?
        switch verdict {
        case .checked(let checked): error = checked
        case .noGroup:
            // A standalone commit to an unknown group needs no state machine kept for it. A
            // member's commit (a generation) to a group that does not exist at all, with no
            // members and no offsets (it expired or was deleted), is GROUP_ID_NOT_FOUND, as
            // Kafka answers (OffsetCommit v9+; older versions are told ILLEGAL_GENERATION by the
            // server). Asked outside the coordinator's lock, and without waiting (this may run on
            // an event loop): the offsets store's lock is held through compaction. While it is,
            // the member is told it is unknown: a refusal either way.
            if generationId >= 0 && store.hasOffsetsIfAvailable(group: groupId) == false {
                error = .groupIdNotFound
            } else {
                error = ClassicGroup(groupId: groupId, options: options).validateCommit(memberId: memberId, generationId: generationId)
            }
        }
        if let error { return .failure(RefusedCommit(code: error)) }
        let now = wallClock()  // persisted, and compared after restarts: the wall clock
        var stamped = offsets
        for key in stamped.keys where stamped[key]!.commitTimestampMs == 0 { stamped[key]!.commitTimestampMs = now }
        return .success(stamped)
    }

    /// OffsetDelete: removes a group's committed offsets. A partition of a topic the group's
    /// members subscribe to is refused (`.groupSubscribedToTopic`); nil means deleted (or had none).
    /// Throws `.groupIdNotFound` for a group with neither members nor offsets, and
    /// `.nonEmptyGroup` for a classic group with members of another protocol type than
    /// `consumer` (Kafka Connect's, a schema registry's), whose metadata says nothing of topics.
    public func deleteOffsets(groupId: String, partitions: [TopicPartition]) async throws -> [TopicPartition: TidemarkError.Code?] {
        let subscribed = try state.withLock { s throws(TidemarkError) -> Set<String>? in
            if let group = s.consumerGroups[groupId] { return group.subscribedTopicNames }
            guard let group = s.groups[groupId] else { return nil }
            var topics: Set<String> = []
            guard let member = group.members.values.first else { return topics }
            guard member.protocolType == "consumer" else {
                throw TidemarkError(.nonEmptyGroup, "group '\(groupId)' has members of protocol type '\(member.protocolType)'")
            }
            for member in group.members.values {
                // The chosen protocol's subscription (every protocol's while none is chosen).
                for (name, metadata) in member.protocols where group.protocolName == nil || name == group.protocolName {
                    // Only names a topic could have: a member's metadata (1 MiB) is the client's, and
                    // hashing a name of combining marks costs time quadratic in its length.
                    for topic in ConsumerProtocol.decodeSubscriptionTopics(metadata) ?? [] where (try? TopicName.validate(topic)) != nil {
                        topics.insert(topic)
                    }
                }
            }
            return topics
        }
        if subscribed == nil && !store.hasOffsets(group: groupId) {
            throw TidemarkError(.groupIdNotFound, "group '\(groupId)' does not exist")
        }
        var results: [TopicPartition: TidemarkError.Code?] = [:]
        var deletable: [TopicPartition] = []
        for tp in partitions {
            if subscribed?.contains(tp.topic) == true {
                results[tp] = .some(.groupSubscribedToTopic)
            } else {
                results[tp] = .some(nil)  // (`= nil` would remove the key)
                deletable.append(tp)
            }
        }
        try await store.delete(group: groupId, partitions: deletable)
        return results
    }

    /// DeleteGroups for a classic or consumer group: one without members is deleted with its
    /// committed offsets and membership record (tombstones, synced) and what the coordinator
    /// keeps of it. Nil when deleted; `.nonEmptyGroup` while it has members;
    /// `.groupIdNotFound` when there is no such group; `.invalidGroupId` for an empty id.
    public func deleteGroup(_ groupId: String) async throws -> TidemarkError.Code? {
        guard Self.validGroupId(groupId) else { return .invalidGroupId }
        let inMemory = state.withLock { s -> Bool? in
            if let group = s.groups[groupId], !group.members.isEmpty { return nil }
            if let group = s.consumerGroups[groupId], !group.isEmpty { return nil }
            let known = s.groups[groupId] != nil || s.consumerGroups[groupId] != nil
            s.setClassic(nil, id: groupId)
            s.setConsumer(nil, id: groupId)
            s.idleSince.removeValue(forKey: groupId)
            recordedMemberships.remove(groupId)
            s.deleting[groupId, default: 0] += 1
            return known
        }
        guard let inMemory else { return .nonEmptyGroup }
        defer {
            state.withLock { s in
                s.deleting[groupId]! -= 1
                if s.deleting[groupId] == 0 { s.deleting.removeValue(forKey: groupId) }
            }
        }
        let stored = try await store.delete(wholeGroup: groupId)
        return inMemory || stored ? nil : .groupIdNotFound
    }

    /// Kafka's check of an OffsetFetch that names a member (v9+, a consumer-protocol member
    /// asking as itself): nil when it names none (an admin, a classic consumer), or when the
    /// group is not a consumer group; else the member must be in the group
    /// (`.unknownMemberId`) at that epoch (`.staleMemberEpoch`), so a fenced member does not
    /// read offsets to go on with.
    public func checkFetch(groupId: String, memberId: String?, memberEpoch: Int32) -> TidemarkError.Code? {
        if memberId == nil && memberEpoch < 0 { return nil }
        return state.withLock { s in
            guard let group = s.consumerGroups[groupId] else { return nil }
            guard let member = group.members[memberId ?? ""] else { return .unknownMemberId }
            return member.memberEpoch == memberEpoch ? nil : .staleMemberEpoch
        }
    }

    /// OffsetFetch: the committed offsets of a group (all partitions when `partitions` is nil).
    public func fetchOffsets(groupId: String, partitions: [TopicPartition]? = nil) -> [TopicPartition: CommittedOffset] {
        store.fetch(group: groupId, partitions: partitions)
    }

    /// Sets committed offsets directly (the tools' reset). Refused while the group has members.
    public func resetOffsets(groupId: String, offsets: [TopicPartition: CommittedOffset]) async throws -> TidemarkError.Code? {
        try await commitOffsets(groupId: groupId, offsets: offsets)
    }
}

import Foundation
import TidemarkStorage
import Synchronization

/// A classic group's membership as Kafka's coordinator writes it to `__consumer_offsets` once a
/// rebalance completes (the leader's SyncGroup) and once the last member has gone, so that tools
/// reading that topic see who consumes which partition (Burrow's owners and client ids, the
/// offsets decoder of `kafka-dump-log`), and so that a restarted broker brings the group back
/// (`ClassicGroup.init(restoring:)`).
///
/// ```
/// key   (GroupMetadataKey v2):     version i16 = 2, group string
/// value (GroupMetadataValue v1/v3): version i16, protocolType string, generation i32,
///                                  protocol nullable string, leader nullable string,
///                                  [v2+] currentStateTimestamp i64 (ms, -1: unknown),
///                                  member count i32, then for each member:
///                                    memberId string, [v3+] groupInstanceId nullable string,
///                                    clientId string, clientHost string,
///                                    [v1+] rebalanceTimeout i32, sessionTimeout i32,
///                                    subscription bytes, assignment bytes
/// ```
/// Strings are an i16 length and UTF-8 (null: length -1; see `writeShortString`), bytes an i32
/// length and the bytes.
/// The subscription is the member's metadata for the chosen protocol and the assignment what
/// the leader gave it, both as the clients sent them. A group without static members is written
/// as version 1, which every Kafka reads (0-4) and Burrow since 1.0 (before 1.3 it reads only 0
/// and 1); one with static members as version 3, the first with their instance ids, which a
/// restart needs to give a restarted instance its place back. Versions 0 to 3 are read.
///
/// An Empty group's record has no members, and null protocol and leader. A null value says the
/// group is gone: written when its committed offsets expire.
struct GroupMembershipRecord: Sendable, Equatable {
    struct Member: Sendable, Equatable {
        var memberId: String
        /// A static member's `group.instance.id` (written from version 3).
        var groupInstanceId: String? = nil
        var clientId: String
        var clientHost: String
        var rebalanceTimeoutMs: Int32
        var sessionTimeoutMs: Int32
        var subscription: [UInt8]
        var assignment: [UInt8]
    }

    var protocolType: String
    var generation: Int32
    var protocolName: String?
    var leader: String?
    var members: [Member]
    /// When the group entered the state the record shows, on the wall clock (versions 2+; -1:
    /// unknown, and not written in version 1).
    var currentStateTimestampMs: Int64 = -1

    static let keyVersion: Int16 = 2

    /// 3 when a member is static (its instance id needs it), 1 otherwise.
    var valueVersion: Int16 { members.contains { $0.groupInstanceId != nil } ? 3 : 1 }

    static func encodeKey(group: String) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeInteger(keyVersion)
        writer.writeShortString(group)
        return writer.bytes
    }

    /// The group of a membership key; nil for any other key (an offset commit's is version 1).
    static func decodeKey(_ bytes: [UInt8]?) -> String? {
        ByteReader.decode(bytes) { (reader: inout ByteReader) throws(RecordBatchError) -> String? in
            guard try reader.readInteger(as: Int16.self) == keyVersion else { return nil }
            return try reader.readShortString()
        }
    }

    func encodeValue() -> [UInt8] {
        var writer = ByteWriter()
        let version = valueVersion
        writer.writeInteger(version)
        writer.writeShortString(protocolType)
        writer.writeInteger(generation)
        writer.writeShortString(protocolName)
        writer.writeShortString(leader)
        if version >= 2 { writer.writeInteger(currentStateTimestampMs) }
        writer.writeInteger(Int32(members.count))
        for member in members {
            writer.writeShortString(member.memberId)
            if version >= 3 { writer.writeShortString(member.groupInstanceId) }
            writer.writeShortString(member.clientId)
            writer.writeShortString(member.clientHost)
            writer.writeInteger(member.rebalanceTimeoutMs)
            writer.writeInteger(member.sessionTimeoutMs)
            writer.writeInteger(Int32(member.subscription.count))
            writer.writeBytes(member.subscription)
            writer.writeInteger(Int32(member.assignment.count))
            writer.writeBytes(member.assignment)
        }
        return writer.bytes
    }

    /// Reads value versions 0 to 3 (version 0 has no rebalance timeout: -1); nil for others
    /// (version 4, Kafka's first flexible one, is not written here).
    static func decodeValue(_ bytes: [UInt8]) -> GroupMembershipRecord? {
        ByteReader.decode(bytes) { (reader: inout ByteReader) throws(RecordBatchError) -> GroupMembershipRecord? in
            let version: Int16 = try reader.readInteger()
            guard (0...3).contains(version) else { return nil }
            var record = GroupMembershipRecord(
                protocolType: try reader.readShortString(), generation: try reader.readInteger(), protocolName: try reader.readNullableShortString(),
                leader: try reader.readNullableShortString(), members: [])
            if version >= 2 { record.currentStateTimestampMs = try reader.readInteger() }
            let count: Int32 = try reader.readInteger()
            guard count >= 0 else { return nil }
            for _ in 0..<count {
                let memberId = try reader.readShortString()
                let instance = version >= 3 ? try reader.readNullableShortString() : nil
                let clientId = try reader.readShortString()
                let clientHost = try reader.readShortString()
                let rebalanceTimeout: Int32 = version >= 1 ? try reader.readInteger() : -1
                let sessionTimeout: Int32 = try reader.readInteger()
                let subscription = try reader.readBytes(count: Int(try reader.readInteger(as: Int32.self)))
                let assignment = try reader.readBytes(count: Int(try reader.readInteger(as: Int32.self)))
                record.members.append(
                    Member(
                        memberId: memberId, groupInstanceId: instance, clientId: clientId, clientHost: clientHost, rebalanceTimeoutMs: rebalanceTimeout,
                        sessionTimeoutMs: sessionTimeout, subscription: subscription, assignment: assignment))
            }
            return record
        }
    }
}

extension ClassicGroup {
    /// The group as its membership record: members in join order, each with its metadata for
    /// the chosen protocol and its assignment (empty until the leader's SyncGroup).
    func membershipRecord(protocolType: String) -> GroupMembershipRecord {
        GroupMembershipRecord(
            protocolType: protocolType, generation: generationId, protocolName: protocolName, leader: leaderId,
            members: memberOrder.compactMap { id in
                members[id].map { member in
                    GroupMembershipRecord.Member(
                        memberId: id, groupInstanceId: member.groupInstanceId, clientId: member.clientId, clientHost: member.clientHost,
                        rebalanceTimeoutMs: member.rebalanceTimeoutMs, sessionTimeoutMs: member.sessionTimeoutMs,
                        subscription: member.protocols.first { $0.name == protocolName }?.metadata ?? [],
                        assignment: member.assignment)
                }
            })
    }
}

extension GroupCoordinator {
    /// Brings back, at the start, the groups whose latest membership records have members:
    /// classic ones (`ClassicGroup.init(restoring:)`) and consumer-protocol ones
    /// (`ConsumerGroup.init(restoring:)`, their topics from `catalog`, partitions by id through
    /// `topicName`). A broker restart, clean or not, does not end their members' sessions, as in
    /// Kafka. Called once the broker has opened everything else, so sessions count from just
    /// before it serves. Groups are taken by name; one that would take the members past
    /// `GroupOptions.membersMaxBytes`, or has more members than its protocol's group.max.size,
    /// starts empty, as every group did before.
    /// Returns how many were restored and how many records with members were not.
    func restoreGroups(catalog: TopicCatalog, topicName: (UUID) -> String?) -> (restored: Int, notRestored: Int) {
        let now = clock()
        let saved = store.memberships.withLock { $0 }
        return state.withLock { s in
            var restored = 0
            var notRestored = 0
            for (id, membership) in saved.sorted(by: { $0.key < $1.key }) where s.groups[id] == nil && s.consumerGroups[id] == nil {
                guard membership.hasMembers(group: id) else { continue }
                if let value = membership.classicValue(group: id) {
                    guard let record = GroupMembershipRecord.decodeValue(value), Self.validGroupId(id),
                        let group = ClassicGroup(restoring: record, groupId: id, options: options, nowMs: now),
                        group.members.count <= options.classicGroupMaxSize, s.memberBytes + group.memberBytes <= options.membersMaxBytes
                    else {
                        notRestored += 1
                        continue
                    }
                    s.setClassic(group, id: id)
                    recordedMemberships.restored(id, generation: record.generation, protocolType: record.protocolType)
                    restored += 1
                    continue
                }
                guard let snapshot = ConsumerGroupSnapshot(group: id, records: membership.records), Self.validGroupId(id),
                    var group = ConsumerGroup(
                        restoring: snapshot, groupId: id, catalog: catalog, topicName: topicName, nowMs: now,
                        sessionTimeoutMs: consumerSettings(id).sessionTimeoutMs),
                    group.members.count <= options.consumerGroupMaxSize, s.memberBytes + group.memberBytes <= options.membersMaxBytes
                else {
                    notRestored += 1
                    continue
                }
                // Members without a client host were in this process (embedded): gone with it.
                for (memberId, member) in group.members where member.clientHost.isEmpty { group.remove(memberId) }
                guard !group.isEmpty else {
                    notRestored += 1
                    continue
                }
                s.setConsumer(group, id: id)
                recordedMemberships.restored(
                    id, generation: snapshot.epoch, protocolType: Self.consumerProtocolType,
                    signature: ConsumerGroupSnapshot.signature(group.members.values.map { ($0.memberId, $0.memberEpoch) }, settled: group.isSettled),
                    membership: Self.membershipSignature(group))
                restored += 1
            }
            return (restored, notRestored)
        }
    }

    /// `restoreGroups`, said in the log.
    func restoreGroupsAndSay(catalog: TopicCatalog, topicName: (UUID) -> String?) {
        let (restored, notRestored) = restoreGroups(catalog: catalog, topicName: topicName)
        guard restored + notRestored > 0 else { return }
        logger?.info(
            "groups restored from __consumer_offsets: their members go on with their ids and generation or epoch, or expire with their sessions (groups not restored start empty: their members were all in this process, or are too many, or pass group.members.max.bytes, or were written without subscriptions)",
            metadata: ["groups": "\(restored)", "not_restored": "\(notRestored)"])
    }

    /// What `RecordedMemberships` names consumer-protocol groups' records by.
    static let consumerProtocolType = "consumer (KIP-848)"

    /// Sends a consumer-protocol group's records to the writer when it is Stable (but for static
    /// members that left for now: `ConsumerGroup.isSettled`) at an epoch (or with members, or
    /// member epochs) not recorded yet, or has just become Empty: what a restart restores
    /// (`ConsumerGroup.init(restoring:)`). Kafka writes each change as it happens; the states in
    /// between are not written here, so a crash during a reconciliation restores the last
    /// Stable one, and members that had moved on are fenced (FENCED_MEMBER_EPOCH) and rejoin.
    /// A static member's new instance takes its place without a new epoch: the member ids are
    /// part of what is compared (`ConsumerGroupSnapshot.signature`), or a restart would bring
    /// back the old instance and refuse the new one (UNRELEASED_INSTANCE_ID, fatal in clients).
    /// Called under `state`, so records leave in the order of the changes, after heartbeats
    /// that changed something (a steady member's heartbeat every few seconds does not come
    /// here: a group of 1,000 members would hash them all 200 times a second).
    /// `whenWritten` is called once the writer is done with the records (from its task; for
    /// records dropped to keep the line's bounds, under `state`: it takes no lock); returns
    /// whether they were sent, and so whether it will be.
    @discardableResult
    func noteConsumerMembership(
        _ group: ConsumerGroup, _ s: inout State, topicId: (String) -> UUID?, whenWritten: (@Sendable (Bool) -> Void)? = nil
    ) -> Bool {
        // A closing broker's writer takes no more (and a record it skipped for this one would
        // be lost with it).
        guard !s.isClosed else { return false }
        let previous = recordedMemberships.last(of: group.groupId)
        let membership = Self.membershipSignature(group)
        if previous?.protocolType == Self.consumerProtocolType && previous?.membership == membership {
            // Only epochs and partitions moved: written once the group has settled.
            guard group.isSettled || (group.isEmpty && group.groupEpoch > 0) else { return false }
        }
        let signature = ConsumerGroupSnapshot.signature(group.members.values.map { ($0.memberId, $0.memberEpoch) }, settled: group.isSettled)
        guard previous?.protocolType != Self.consumerProtocolType || previous?.generation != group.groupEpoch
            || previous?.signature != signature || previous?.membership != membership
        else { return false }
        // What its members keep bounds what its records take (their subscriptions): a group
        // far past the records' bound is not encoded at all (each change of a group of 40
        // members of 10,000 names made the writer encode 80 MB), its earlier records deleted
        // instead; nearer it, the store's check on the encoded records decides.
        let record: PendingMembership.Records
        if group.membersKeptBytes > 8 * OffsetStore.maxMembershipRecordBytes {
            record = .consumerTooLarge
        } else {
            guard let snapshot = group.snapshot(topicId: topicId) else { return false }
            record = .consumer(snapshot)
        }
        let life = recordedMemberships.set(
            group.groupId, generation: group.groupEpoch, protocolType: Self.consumerProtocolType, signature: signature, membership: membership)
        return send(
            PendingMembership(
                group: group.groupId, record: record, life: life, whenWritten: whenWritten, sequence: recordedMemberships.sent(group.groupId)))
    }

    /// Who is in the group and what they subscribe to: the member ids, each member's
    /// subscription revision, and whether it left for now. A change of it is written at once,
    /// settled or not (a static member leaving for now, or a new subscription, lost to a crash
    /// in the middle of a reconciliation brought the old one back: the next instance refused
    /// UNRELEASED_INSTANCE_ID, the member reading its old topics for good).
    static func membershipSignature(_ group: ConsumerGroup) -> Int {
        var hasher = Hasher()
        for member in group.members.values.sorted(by: { $0.memberId < $1.memberId }) {
            hasher.combine(Array(member.memberId.utf8))
            hasher.combine(member.revision)
            hasher.combine(member.memberEpoch == ConsumerGroup.leftForNowEpoch)
        }
        return hasher.finalize()
    }

    /// Sends the group's membership record to the writer when the group has just reached a
    /// generation not recorded yet, in a state worth recording: Stable (the leader's SyncGroup
    /// gave out the assignments) or Empty (the last member went). Kafka's coordinator writes
    /// the same two moments. Called under `state`, so records leave in the order of the changes.
    /// `replaced`: a static member took its old member's place in the same generation (Kafka
    /// stores the group then too, so tools see the new member id and host).
    /// `whenWritten` is called, from the writer's task (under `state` for a record dropped to
    /// keep the line's bounds: it takes no lock), once the writer is done with the record (true:
    /// appended to the log); returns whether a record was sent, and so whether it will be.
    @discardableResult
    func noteMembership(
        _ group: ClassicGroup, _ s: inout State, replaced: Bool = false, whenWritten: (@Sendable (Bool) -> Void)? = nil
    ) -> Bool {
        guard group.state == .stable || (group.state == .empty && group.generationId > 0) else { return false }
        let previous = recordedMemberships.last(of: group.groupId)
        guard previous?.generation != group.generationId || replaced else { return false }
        let protocolType = group.protocolType ?? previous?.protocolType ?? ""
        let life = recordedMemberships.set(group.groupId, generation: group.generationId, protocolType: protocolType)
        var record = group.membershipRecord(protocolType: protocolType)
        record.currentStateTimestampMs = wallClock()
        return send(PendingMembership(group: group.groupId, record: .classic(record), life: life, whenWritten: whenWritten))
    }

    /// Hands a record to the writer (`MembershipQueue`: it takes the place of the group's record
    /// still waiting); false when the writer has stopped (the broker is closing).
    @discardableResult
    private func send(_ pending: PendingMembership) -> Bool {
        let sent = membershipRecords.send(pending)
        guard sent.taken else {
            recordedMemberships.passed(pending.group, life: pending.life)
            return false
        }
        if let replaced = sent.replaced { recordedMemberships.passed(replaced.group, life: replaced.life) }
        for dropped in sent.dropped {
            recordedMemberships.passed(dropped.group, life: dropped.life)
            dropped.whenWritten?(false)
        }
        if !sent.dropped.isEmpty {
            let total = membershipRecordsDropped.add(sent.dropped.count, ordering: .relaxed).newValue
            // Said at the first and then every 1,000th: a writer this far behind is stalled.
            if total == sent.dropped.count || total / 1_000 != (total - sent.dropped.count) / 1_000 {
                logger?.warning(
                    "group membership records dropped: the writer to __consumer_offsets is far behind",
                    metadata: ["dropped_total": "\(total)", "group": "\(sent.dropped[0].group)"])
            }
        }
        return true
    }
}

/// A membership record on its way to the writer (`GroupCoordinator.membershipRecords`), with
/// the group's life it was sent in (`RecordedMemberships`) and, for a client answered only
/// once its record is in the log, what answers it (true: appended; false: not written).
struct PendingMembership: Sendable {
    enum Records: Sendable {
        case classic(GroupMembershipRecord)
        case consumer(ConsumerGroupSnapshot)
        /// A consumer-protocol group whose records would be too large: its earlier ones go.
        case consumerTooLarge
    }
    var group: String
    var record: Records
    var life: UInt64
    var whenWritten: (@Sendable (Bool) -> Void)?
    /// Which of the group's records sent this is (`RecordedMemberships.sent`): a consumer
    /// group's snapshot is whole, so the writer skips one a later record of the group follows.
    var sequence: UInt64 = 0
    /// About what the record keeps in memory (`MembershipQueue`'s bound), at most 2 MiB.
    let bytes: Int

    init(group: String, record: Records, life: UInt64, whenWritten: (@Sendable (Bool) -> Void)?, sequence: UInt64 = 0) {
        self.group = group
        self.record = record
        self.life = life
        self.whenWritten = whenWritten
        self.sequence = sequence
        func size(_ s: String?) -> Int { s?.utf8.count ?? 0 }
        let members: Int
        switch record {
        case .classic(let r):
            members = r.members.reduce(0) {
                $0 + 64 + size($1.memberId) + size($1.groupInstanceId) + size($1.clientId) + size($1.clientHost) + $1.subscription.count
                    + $1.assignment.count
            }
        case .consumer(let snapshot):
            members = snapshot.members.reduce(0) { sum, m in
                let partitions = (m.assigned + m.pendingRevocation + m.target).reduce(0) { $0 + 24 + 4 * $1.partitions.count }
                return sum + 96 + size(m.memberId) + size(m.instanceId) + size(m.rackId) + size(m.clientId) + size(m.clientHost)
                    + size(m.subscribedTopicRegex) + size(m.serverAssignor)
                    + m.subscribedTopicNames.reduce(0) { $0 + 16 + $1.utf8.count } + partitions
            }
        case .consumerTooLarge:
            members = 0
        }
        // Counted at most twice what the store writes of one group (it writes less, or none,
        // past that), so that one large group does not push every other group's record out;
        // its arrays are mostly shared with the live group anyway.
        bytes = min(128 + group.utf8.count + members, 2 * OffsetStore.maxMembershipRecordBytes)
    }
}

/// Per group, the generation (a consumer-protocol group's epoch) of the last membership records
/// sent to the writer, the protocol type they named (an Empty group's record names the type it
/// last had; a consumer-protocol group's, `GroupCoordinator.consumerProtocolType`), a consumer
/// group's member ids (`ConsumerGroupSnapshot.signature`), and the group's
/// *life*: a number given when its first record is sent, which ends when the group is deleted
/// (DeleteGroups writes its membership tombstone).
///
/// Sent records are noted under the coordinator's `state` (records leave in the order of the
/// changes); the membership writer reads it under the offsets store's lock as it appends, and
/// notes each record it has passed (`passed`): a record of a life that
/// ended since it was sent is not written. It was, after the deletion's tombstone, and the next
/// start brought the group back. A group that expires or becomes a consumer group writes no
/// tombstone: its records still go (its last, Empty, is what says it has no members), and
/// only what it recorded is forgotten (`retire`); its entry goes once the writer has passed
/// them (`passed`), so the map holds only groups with state or records on their way.
/// Concurrency: its own lock, taken last (under the coordinator's or the store's); it takes none.
final class RecordedMemberships: Sendable {
    private struct Entry {
        /// Nil once retired: the group's next record is its next life's first in all but name.
        var generation: Int32?
        var protocolType: String?
        var signature: Int = 0
        var membership: Int = 0
        /// Records sent for the group (in any life): the last one's sequence.
        var sent: UInt64 = 0
        var life: UInt64
        /// Records sent in this life that the writer has not passed yet.
        var pending: Int
    }
    private let state = Mutex<(entries: [String: Entry], lives: UInt64)>(([:], 0))

    func last(of group: String) -> (generation: Int32, protocolType: String, signature: Int, membership: Int)? {
        state.withLock { s in
            s.entries[group].flatMap { entry in entry.generation.map { ($0, entry.protocolType ?? "", entry.signature, entry.membership) } }
        }
    }

    /// The sequence of the group's last record sent (0: none on its way).
    func sent(_ group: String) -> UInt64 { state.withLock { $0.entries[group]?.sent ?? 0 } }

    /// Notes a record sent; returns the group's life.
    func set(_ group: String, generation: Int32, protocolType: String, signature: Int = 0, membership: Int = 0) -> UInt64 {
        state.withLock { s in
            var entry: Entry
            if let existing = s.entries[group] {
                entry = existing
            } else {
                s.lives += 1
                entry = Entry(life: s.lives, pending: 0)
            }
            entry.generation = generation
            entry.protocolType = protocolType
            entry.signature = signature
            entry.membership = membership
            entry.sent &+= 1
            entry.pending += 1
            s.entries[group] = entry
            return entry.life
        }
    }

    /// A group brought back from its record at a restart (`GroupCoordinator.restore`): its
    /// next record is written only for a new generation.
    func restored(_ group: String, generation: Int32, protocolType: String, signature: Int = 0, membership: Int = 0) {
        state.withLock { s in
            s.lives += 1
            s.entries[group] = Entry(
                generation: generation, protocolType: protocolType, signature: signature, membership: membership, life: s.lives, pending: 0)
        }
    }

    /// The group is deleted: its life ends, and records of it on their way are not written.
    func remove(_ group: String) { _ = state.withLock { $0.entries.removeValue(forKey: group) } }

    /// The group expired or became a consumer group: what it recorded is forgotten, but the
    /// records on their way are still written.
    func retire(_ group: String) {
        state.withLock { s in
            guard var entry = s.entries[group] else { return }
            guard entry.pending > 0 else {
                s.entries.removeValue(forKey: group)
                return
            }
            entry.generation = nil
            entry.protocolType = nil
            s.entries[group] = entry
        }
    }

    /// Whether a record sent in this life of the group may still be written.
    func isLive(_ group: String, life: UInt64) -> Bool { state.withLock { $0.entries[group]?.life == life } }

    /// The writer is done with a record of this life (written, skipped, failed or dropped).
    func passed(_ group: String, life: UInt64) {
        state.withLock { s in
            guard var entry = s.entries[group], entry.life == life else { return }
            entry.pending -= 1
            if entry.pending <= 0 && entry.generation == nil {
                s.entries.removeValue(forKey: group)
            } else {
                s.entries[group] = entry
            }
        }
    }

    var count: Int { state.withLock { $0.entries.count } }
}

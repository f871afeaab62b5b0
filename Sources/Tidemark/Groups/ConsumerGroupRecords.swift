import Foundation
import TidemarkStorage

/// A consumer-protocol group (KIP-848) as Kafka's coordinator writes it to `__consumer_offsets`,
/// so that a restarted broker brings the group back (`ConsumerGroup.init(restoring:)`) and its
/// members go on at their epochs, as they do on Kafka. Written whole, in one batch, each time
/// the group is Stable at a group epoch not written yet, and once it is Empty; the batch also
/// carries tombstones for the records of members no longer in it (`OffsetStore.recordMembership`).
///
/// Keys are Kafka's non-flexible layouts (an i16 version that names the record type, then i16-length
/// strings); values are flexible version 0 (compact strings and arrays: an unsigned varint of
/// length + 1, 0 for null; each struct ends in tagged fields, written as none and skipped when read):
/// ```
/// ConsumerGroupMetadata             key v3: group        value: epoch i32
/// ConsumerGroupTargetAssignmentMetadata
///                                   key v6: group        value: assignmentEpoch i32
/// ConsumerGroupMemberMetadata       key v5: group, member
///     value: instanceId nullable string, rackId nullable string, clientId string,
///            clientHost string, subscribedTopicNames [string], subscribedTopicRegex nullable string,
///            rebalanceTimeoutMs i32, serverAssignor nullable string
/// ConsumerGroupTargetAssignmentMember
///                                   key v7: group, member  value: [topicId uuid, partitions [i32]]
/// ConsumerGroupCurrentMemberAssignment
///                                   key v8: group, member
///     value: memberEpoch i32, previousMemberEpoch i32, state i8 (0 stable, 1 unrevoked,
///            2 unreleased partitions), assigned [topicId uuid, partitions [i32]],
///            pendingRevocation [topicId uuid, partitions [i32]]
/// ```
/// Partitions are named by topic id, so a topic deleted and created again under its name is not
/// taken for the old one. Kafka 4.0's partition metadata record (key v4), deprecated since, is
/// not written; the partition counts are read from the topics at the restart instead.
struct ConsumerGroupSnapshot: Sendable, Equatable {
    /// Partitions of one topic, by id.
    struct TopicPartitions: Sendable, Equatable {
        var topicId: UUID
        var partitions: [Int32]
    }

    struct Member: Sendable, Equatable {
        var memberId: String
        var instanceId: String?
        var rackId: String?
        var clientId: String
        var clientHost: String
        var subscribedTopicNames: [String]
        var subscribedTopicRegex: String?
        var rebalanceTimeoutMs: Int32
        var serverAssignor: String?
        var memberEpoch: Int32
        var previousMemberEpoch: Int32
        /// Kafka's `MemberState` byte: 0 stable, 1 unrevoked partitions, 2 unreleased partitions.
        var state: Int8
        var assigned: [TopicPartitions]
        var pendingRevocation: [TopicPartitions]
        var target: [TopicPartitions]
    }

    var epoch: Int32
    var assignmentEpoch: Int32
    /// Empty for an Empty group's snapshot.
    var members: [Member]

    enum KeyVersion: Int16 {
        case metadata = 3
        case memberMetadata = 5
        case targetMetadata = 6
        case targetMember = 7
        case currentAssignment = 8
    }

    /// The key's type and group (and member, for the per-member records); nil for any other key.
    static func decodeKey(_ bytes: [UInt8]?) -> (version: KeyVersion, group: String, member: String?)? {
        ByteReader.decode(bytes) { (reader: inout ByteReader) throws(RecordBatchError) -> (KeyVersion, String, String?)? in
            guard let version = KeyVersion(rawValue: try reader.readInteger()) else { return nil }
            let group = try reader.readShortString()
            switch version {
            case .metadata, .targetMetadata: return (version, group, nil)
            case .memberMetadata, .targetMember, .currentAssignment: return (version, group, try reader.readShortString())
            }
        }
    }

    static func encodeKey(_ version: KeyVersion, group: String, member: String? = nil) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeInteger(version.rawValue)
        writer.writeShortString(group)
        if let member { writer.writeShortString(member) }
        return writer.bytes
    }

    /// The snapshot's records, key and value, in the order they are written.
    func records(group: String) -> [(key: [UInt8], value: [UInt8])] {
        var records: [(key: [UInt8], value: [UInt8])] = []
        records.append((Self.encodeKey(.metadata, group: group), Self.value { $0.writeInteger(epoch) }))
        records.append((Self.encodeKey(.targetMetadata, group: group), Self.value { $0.writeInteger(assignmentEpoch) }))
        for member in members {
            records.append(
                (Self.encodeKey(.memberMetadata, group: group, member: member.memberId),
                 Self.value { w in
                     w.writeCompactString(member.instanceId)
                     w.writeCompactString(member.rackId)
                     w.writeCompactString(member.clientId)
                     w.writeCompactString(member.clientHost)
                     w.writeUnsignedVarint(UInt64(member.subscribedTopicNames.count + 1))
                     for name in member.subscribedTopicNames { w.writeCompactString(name) }
                     w.writeCompactString(member.subscribedTopicRegex)
                     w.writeInteger(member.rebalanceTimeoutMs)
                     w.writeCompactString(member.serverAssignor)
                 }))
            records.append(
                (Self.encodeKey(.targetMember, group: group, member: member.memberId),
                 Self.value { Self.write(member.target, &$0) }))
            records.append(
                (Self.encodeKey(.currentAssignment, group: group, member: member.memberId),
                 Self.value { w in
                     w.writeInteger(member.memberEpoch)
                     w.writeInteger(member.previousMemberEpoch)
                     w.writeInteger(member.state)
                     Self.write(member.assigned, &w)
                     Self.write(member.pendingRevocation, &w)
                 }))
        }
        return records
    }

    /// The snapshot the group's live records make (key to value, as the log left them); nil when
    /// they are not a whole one (no metadata record, or a member without all three of its records).
    init?(group: String, records: [[UInt8]: [UInt8]]) {
        var epoch: Int32?
        var assignmentEpoch: Int32?
        var metadata: [String: Member] = [:]
        var targets: [String: [TopicPartitions]] = [:]
        var current: [String: (Int32, Int32, Int8, [TopicPartitions], [TopicPartitions])] = [:]
        for (key, value) in records {
            guard let (version, keyGroup, member) = Self.decodeKey(key), keyGroup == group else { continue }
            let decoded: Bool? = ByteReader.decode(value) { (r: inout ByteReader) throws(RecordBatchError) -> Bool? in
                guard try r.readInteger(as: Int16.self) == 0 else { return nil }
                switch version {
                case .metadata: epoch = try r.readInteger()
                case .targetMetadata: assignmentEpoch = try r.readInteger()
                case .memberMetadata:
                    let instanceId = try r.readCompactString()
                    let rackId = try r.readCompactString()
                    guard let clientId = try r.readCompactString(), let clientHost = try r.readCompactString() else { return nil }
                    var names: [String] = []
                    for _ in 0..<(try r.readCompactCount()) {
                        guard let name = try r.readCompactString() else { return nil }
                        names.append(name)
                    }
                    let regex = try r.readCompactString()
                    let rebalanceTimeoutMs: Int32 = try r.readInteger()
                    let assignor = try r.readCompactString()
                    metadata[member!] = Member(
                        memberId: member!, instanceId: instanceId, rackId: rackId, clientId: clientId, clientHost: clientHost,
                        subscribedTopicNames: names, subscribedTopicRegex: regex, rebalanceTimeoutMs: rebalanceTimeoutMs,
                        serverAssignor: assignor, memberEpoch: 0, previousMemberEpoch: -1, state: 0, assigned: [],
                        pendingRevocation: [], target: [])
                case .targetMember: targets[member!] = try Self.read(&r)
                case .currentAssignment:
                    current[member!] = (try r.readInteger(), try r.readInteger(), try r.readInteger(), try Self.read(&r), try Self.read(&r))
                }
                try r.skipTaggedFields()
                return true
            }
            guard decoded == true else { return nil }
        }
        guard let epoch else { return nil }
        var members: [Member] = []
        for (id, var member) in metadata {
            guard let target = targets[id], let (memberEpoch, previous, state, assigned, pending) = current[id] else { return nil }
            member.target = target
            member.memberEpoch = memberEpoch
            member.previousMemberEpoch = previous
            member.state = state
            member.assigned = assigned
            member.pendingRevocation = pending
            members.append(member)
        }
        guard members.count == targets.count, members.count == current.count else { return nil }
        self.init(epoch: epoch, assignmentEpoch: assignmentEpoch ?? epoch, members: members.sorted { $0.memberId < $1.memberId })
    }

    /// The member ids and epochs, and whether the group is settled, hashed: what tells two
    /// states at one group epoch apart (a static member's new instance takes its place without
    /// a new epoch; a group written in the middle of a reconciliation settles without one).
    static func signature(_ members: [(id: String, epoch: Int32)], settled: Bool) -> Int {
        var hasher = Hasher()
        hasher.combine(settled)
        for member in members.sorted(by: { $0.id < $1.id }) {
            hasher.combine(Array(member.id.utf8))
            hasher.combine(member.epoch)
        }
        return hasher.finalize()
    }

    init(epoch: Int32, assignmentEpoch: Int32, members: [Member]) {
        self.epoch = epoch
        self.assignmentEpoch = assignmentEpoch
        self.members = members
    }

    /// A flexible version 0 value: the version, the fields, no tagged fields.
    private static func value(_ fields: (inout ByteWriter) -> Void) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeInteger(Int16(0))
        fields(&writer)
        writer.writeUnsignedVarint(0)
        return writer.bytes
    }

    private static func write(_ topics: [TopicPartitions], _ writer: inout ByteWriter) {
        writer.writeUnsignedVarint(UInt64(topics.count + 1))
        for topic in topics {
            withUnsafeBytes(of: topic.topicId.uuid) { writer.writeBytes(Array($0)) }
            writer.writeUnsignedVarint(UInt64(topic.partitions.count + 1))
            for partition in topic.partitions { writer.writeInteger(partition) }
            writer.writeUnsignedVarint(0)
        }
    }

    private static func read(_ reader: inout ByteReader) throws(RecordBatchError) -> [TopicPartitions] {
        var topics: [TopicPartitions] = []
        for _ in 0..<(try reader.readCompactCount()) {
            let raw = try reader.readBytes(count: 16)
            let id = UUID(uuid: (raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
                                 raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]))
            var partitions: [Int32] = []
            for _ in 0..<(try reader.readCompactCount()) { partitions.append(try reader.readInteger()) }
            try reader.skipTaggedFields()
            topics.append(TopicPartitions(topicId: id, partitions: partitions))
        }
        return topics
    }
}

extension ConsumerGroup {
    /// The group as its records (`ConsumerGroupSnapshot`), partitions by topic id; nil when a
    /// topic it names has no id (deleted meanwhile: the next change writes the group again).
    func snapshot(topicId: (String) -> UUID?) -> ConsumerGroupSnapshot? {
        func byId(_ partitions: Set<TopicPartition>) -> [ConsumerGroupSnapshot.TopicPartitions]? {
            var topics: [String: [Int32]] = [:]
            for tp in partitions { topics[tp.topic, default: []].append(Int32(tp.partition)) }
            var result: [ConsumerGroupSnapshot.TopicPartitions] = []
            for (name, list) in topics.sorted(by: { $0.key < $1.key }) {
                guard let id = topicId(name) else { return nil }
                result.append(.init(topicId: id, partitions: list.sorted()))
            }
            return result
        }
        var saved: [ConsumerGroupSnapshot.Member] = []
        for id in memberOrder {
            guard let m = members[id], let assigned = byId(m.assigned), let pending = byId(m.pendingRevocation),
                let goal = byId(target[id] ?? [])
            else { return nil }
            let state: Int8 = switch m.state {
            case .stable: 0
            case .unrevokedPartitions: 1
            case .unreleasedPartitions: 2
            }
            saved.append(
                .init(
                    memberId: id, instanceId: m.instanceId, rackId: m.rackId, clientId: m.clientId, clientHost: m.clientHost,
                    subscribedTopicNames: m.subscribedTopicNames, subscribedTopicRegex: m.subscribedTopicRegex,
                    rebalanceTimeoutMs: m.rebalanceTimeoutMs, serverAssignor: m.serverAssignor, memberEpoch: m.memberEpoch,
                    previousMemberEpoch: m.previousMemberEpoch, state: state, assigned: assigned, pendingRevocation: pending, target: goal))
        }
        return ConsumerGroupSnapshot(epoch: groupEpoch, assignmentEpoch: assignmentEpoch, members: saved)
    }
}

// The flexible layouts' compact fields, for the records above.
extension ByteWriter {
    /// An unsigned varint of the byte length + 1 (0: null), then the UTF-8 bytes.
    mutating func writeCompactString(_ string: String?) {
        guard let string else { return writeUnsignedVarint(0) }
        writeUnsignedVarint(UInt64(string.utf8.count + 1))
        writeBytes(Array(string.utf8))
    }
}

extension ByteReader {
    mutating func readCompactString() throws(RecordBatchError) -> String? {
        let length = try readUnsignedVarint(maxBytes: 5)
        guard length > 0 else { return nil }
        guard length - 1 <= UInt64(readableBytes) else { throw .invalidRecord("compact string past the end") }
        return String(decoding: try readSlice(count: Int(length - 1)), as: UTF8.self)
    }

    /// A compact array's element count (a null array counts none); at most what the bytes left
    /// could hold, one byte each, so a damaged count cannot make a reader loop for long.
    mutating func readCompactCount() throws(RecordBatchError) -> Int {
        let raw = try readUnsignedVarint(maxBytes: 5)
        guard raw > 0 else { return 0 }
        guard raw - 1 <= UInt64(readableBytes) else { throw .invalidRecord("compact array count past the end") }
        return Int(raw - 1)
    }

    /// Skips a struct's tagged fields (none are read here).
    mutating func skipTaggedFields() throws(RecordBatchError) {
        let count = try readUnsignedVarint(maxBytes: 5)
        guard count <= UInt64(readableBytes) else { throw .invalidRecord("tagged fields past the end") }
        for _ in 0..<Int(count) {
            _ = try readUnsignedVarint(maxBytes: 5)
            let size = try readUnsignedVarint(maxBytes: 5)
            guard size <= UInt64(readableBytes) else { throw .invalidRecord("tagged field past the end") }
            try skip(Int(size))
        }
    }
}

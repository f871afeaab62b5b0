import TidemarkStorage

/// Kafka's consumer protocol: the bytes group members exchange through JoinGroup
/// (subscription, as protocol metadata) and SyncGroup (assignment). Embedded members
/// use the same bytes, so a group may mix embedded and Kafka-client members.
///
/// ```
/// Subscription v0: version i16, topics [i32 count, string (i16 len)], userData bytes (i32 len, -1 null)
///              v1+: ... ownedPartitions, generationId, rackId (read past, not needed here)
/// Assignment   v0: version i16, partitions [i32 count, (topic string, partitions [i32 count, i32])],
///                  userData bytes
/// ```
public enum ConsumerProtocol {
    public static let protocolType = "consumer"

    public static func encodeSubscription(topics: [String]) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeInteger(Int16(0))
        writer.writeInteger(Int32(topics.count))
        for topic in topics { writer.writeShortString(topic) }
        writer.writeInteger(Int32(-1))
        return writer.bytes
    }

    /// The topics of a subscription of any version (they come first in all of them).
    public static func decodeSubscriptionTopics(_ bytes: [UInt8]) -> [String]? {
        ByteReader.decode(bytes) { (reader: inout ByteReader) throws(RecordBatchError) -> [String]? in
            let version: Int16 = try reader.readInteger()
            guard version >= 0 else { return nil }
            let count: Int32 = try reader.readInteger()
            guard count >= 0 && Int(count) * 2 <= reader.readableBytes else { return nil }
            return try (0..<count).map { _ throws(RecordBatchError) in try reader.readShortString() }
        }
    }

    public static func encodeAssignment(_ partitions: [TopicPartition]) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeInteger(Int16(0))
        let byTopic = Dictionary(grouping: partitions, by: \.topic).sorted { $0.key < $1.key }
        writer.writeInteger(Int32(byTopic.count))
        for (topic, list) in byTopic {
            writer.writeShortString(topic)
            writer.writeInteger(Int32(list.count))
            for tp in list.sorted(by: { $0.partition < $1.partition }) { writer.writeInteger(Int32(tp.partition)) }
        }
        writer.writeInteger(Int32(-1))
        return writer.bytes
    }

    /// An assignment's partitions by topic, keeping at most `limit` of them (those past it are
    /// counted in `omitted`, not read into memory): for reports of what a group's leader wrote,
    /// which may be any bytes up to the group's member bound (a million partitions of one topic
    /// is 4 MB). Nil when the bytes are not an assignment.
    public static func decodeAssignment(_ bytes: [UInt8], limit: Int) -> (topics: [(topic: String, partitions: [Int32])], omitted: Int)? {
        if bytes.isEmpty { return ([], 0) }
        return ByteReader.decode(bytes) { (reader: inout ByteReader) throws(RecordBatchError) -> ([(topic: String, partitions: [Int32])], Int)? in
            _ = try reader.readInteger(as: Int16.self)
            let topics: Int32 = try reader.readInteger()
            guard topics >= 0 && Int(topics) * 6 <= reader.readableBytes else { return nil }
            var kept: [(topic: String, partitions: [Int32])] = []
            var room = limit
            var omitted = 0
            for _ in 0..<topics {
                let length: Int16 = try reader.readInteger()
                guard length >= 0 else { return nil }
                // A topic's name is read only while partitions are kept (a million topics of no
                // partitions are 8 MB of bytes, not a million strings).
                let name = try reader.readSlice(count: Int(length))
                let count: Int32 = try reader.readInteger()
                guard count >= 0 && Int(count) * 4 <= reader.readableBytes else { return nil }
                let keep = min(Int(count), room)
                if keep > 0 || (room > 0 && count == 0) {
                    var partitions: [Int32] = []
                    partitions.reserveCapacity(keep)
                    for _ in 0..<keep { partitions.append(try reader.readInteger()) }
                    kept.append((String(decoding: name, as: UTF8.self), partitions))
                    room -= max(keep, 1)
                }
                try reader.skip((Int(count) - keep) * 4)
                omitted += Int(count) - keep
            }
            return (kept, omitted)
        }
    }

    public static func decodeAssignment(_ bytes: [UInt8]) -> [TopicPartition]? {
        decodeAssignment(bytes, limit: .max).map { decoded in
            decoded.topics.flatMap { topic in topic.partitions.map { TopicPartition(topic.topic, Int($0)) } }
        }
    }
}

/// Partition assignment strategies, computed by the group leader (as Kafka clients do).
public enum PartitionAssignor: String, Sendable, CaseIterable {
    /// Per topic, consecutive ranges of partitions; the first members get one extra.
    case range
    /// All subscribed partitions dealt out one at a time over the sorted members.
    case roundRobin = "roundrobin"

    /// `subscriptions`: member id -> topics; `partitionCounts`: topic -> partition count.
    public func assign(subscriptions: [String: [String]], partitionCounts: [String: Int]) -> [String: [TopicPartition]] {
        var result = Dictionary(uniqueKeysWithValues: subscriptions.keys.map { ($0, [TopicPartition]()) })
        let members = subscriptions.keys.sorted()
        let topics = Set(subscriptions.values.flatMap { $0 }).filter { partitionCounts[$0] != nil }.sorted()
        switch self {
        case .range:
            for topic in topics {
                let subscribers = members.filter { subscriptions[$0]!.contains(topic) }
                let count = partitionCounts[topic]!
                let each = count / subscribers.count
                let extra = count % subscribers.count
                var next = 0
                for (index, member) in subscribers.enumerated() {
                    let take = each + (index < extra ? 1 : 0)
                    for p in next..<(next + take) { result[member]!.append(TopicPartition(topic, p)) }
                    next += take
                }
            }
        case .roundRobin:
            var cursor = 0
            for topic in topics {
                for p in 0..<partitionCounts[topic]! {
                    // The next member (in circular order) subscribed to this topic.
                    for step in 0..<members.count {
                        let member = members[(cursor + step) % members.count]
                        if subscriptions[member]!.contains(topic) {
                            result[member]!.append(TopicPartition(topic, p))
                            cursor = (cursor + step + 1) % members.count
                            break
                        }
                    }
                }
            }
        }
        return result
    }
}

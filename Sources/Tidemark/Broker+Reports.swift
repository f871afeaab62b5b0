import Foundation
import TidemarkStorage

/// One partition of a consumer group's committed offsets, as kafka_exporter reports it.
public struct GroupPartitionLag: Sendable, Equatable {
    public var topicPartition: TopicPartition
    /// nil: the group has committed to this topic but not to this partition.
    public var committed: Int64?
    public var logEndOffset: Int64
    /// Log end minus committed (never below 0); nil without a commit.
    public var lag: Int64?
}

/// A share group's queue on one topic: its partitions' summaries added up.
public struct QueueReport: Sendable, Equatable {
    public var group: String
    public var topic: String
    /// Records read into the share window that a worker may take now: not held, finished, or
    /// waiting for a delivery time or a backoff.
    public var available = 0
    public var inFlight = 0
    /// Records past the share window (no worker has read them yet; due or delayed, not known
    /// until read). The queue's depth is available + inFlight + delayed + unread: without this,
    /// 5,000 jobs enqueued and 256 read by a worker showed as 246.
    public var unread: Int64 = 0
    public var delayed = 0
    public var archived = 0
    /// Records not finished (from the start offset to the log end).
    public var backlog: Int64 = 0
    public var deadLettered: Int64 = 0
    public var deadLettersPending = 0
    public var activity = ShareActivity()
    /// Time of the oldest record not finished and due (nil: none, or not asked for): its
    /// timestamp, or for a delayed job the time it came due. Jobs waiting for their delivery
    /// time do not count (one scheduled for tomorrow is not a job a day late).
    public var oldestUnfinishedMs: Int64?
}

/// What the metrics exposition and the console report, computed once here from the engine's
/// state so that both say the same thing.
extension Broker {
    /// Every topic, internal ones included, by name.
    public func describeAllTopics() -> [TopicDescription] {
        (listTopics() + internalTopicNames).compactMap { try? describeTopic($0) }.sorted { $0.name < $1.name }
    }

    /// As kafka_exporter: every partition of each topic the group committed to, in order.
    public func groupOffsets(_ group: String) -> [GroupPartitionLag] {
        let committed = groups.fetchOffsets(groupId: group)
        var rows: [GroupPartitionLag] = []
        for topic in Set(committed.keys.map(\.topic)).sorted() {
            guard let count = try? partitionCount(of: topic) else { continue }
            for p in 0..<count {
                let tp = TopicPartition(topic, p)
                // An offline partition has no end to measure lag against: left out, not lag 0.
                guard let end = try? offsets(topic: topic, partition: p).end else { continue }
                let offset = committed[tp]?.offset
                // Any committed value a client sent (Int64.min included) gives a lag in 0...end.
                rows.append(GroupPartitionLag(
                    topicPartition: tp, committed: offset, logEndOffset: end, lag: offset.map { end - min(max($0, 0), end) }))
            }
        }
        return rows
    }

    /// A group's members now, and the partitions they are assigned: a consumer-protocol group's
    /// assignments, or a classic consumer-protocol group's, decoded. At most `limit` are read (a
    /// classic member's assignment is whatever bytes its leader sent, up to the group's member
    /// bound); `limit` 0 reads none. One description of the group for both.
    public func membersAndAssignments(_ listing: GroupListing, limit: Int) -> (members: Int, assigned: [TopicPartition]) {
        var assigned: [TopicPartition] = []
        if listing.type == .consumer {
            let members = groups.describeConsumerGroup(listing.groupId)?.members ?? []
            for member in members where assigned.count < limit { assigned += member.assignment.prefix(limit - assigned.count) }
            return (members.count, assigned)
        }
        let described = groups.describeGroup(listing.groupId)
        if described.protocolType == "consumer" {
            for member in described.members where assigned.count < limit {
                guard let decoded = ConsumerProtocol.decodeAssignment(member.assignment, limit: limit - assigned.count) else { continue }
                for topic in decoded.topics { assigned += topic.partitions.map { TopicPartition(topic.topic, Int($0)) } }
            }
        }
        return (described.members.count, assigned)
    }

    /// Per topic of `assigned`, the partitions of it the group has no commit for (0 once it has
    /// one for each). `topics`: the topics that exist and their partition counts (one snapshot
    /// for a whole report; an assignment naming others, or partitions they do not have, counts
    /// nothing); `committed`: the partitions the group has commits for. (kafka_exporter's lag
    /// series leave out a topic the group has committed nothing to: a new queue whose first job
    /// never finishes shows only here.)
    public static func uncommitted(
        _ assigned: [TopicPartition], topics: [String: Int], committed: Set<TopicPartition>
    ) -> [String: Int] {
        var counts: [String: Int] = [:]
        for tp in Set(assigned) where (0..<(topics[tp.topic] ?? 0)).contains(tp.partition) {
            counts[tp.topic, default: 0] += committed.contains(tp) ? 0 : 1
        }
        return counts
    }

    /// Per partition of the group's committed offsets: (committed, log end, lag).
    public func groupLag(group: String) throws -> [(TopicPartition, committed: Int64, end: Int64, lag: Int64)] {
        groupOffsets(group).compactMap { row in
            guard let committed = row.committed, let lag = row.lag else { return nil }
            return (row.topicPartition, committed, row.logEndOffset, lag)
        }
    }

    /// Runs `body`, a report that reads from disk (time lags and queue ages read a batch header
    /// per partition; a /metrics scrape or a console page of them), off Swift's cooperative
    /// pool and one at a time: a slow disk then holds one Dispatch thread, not the few threads
    /// every task of the broker runs on, and concurrent scrapes wait their turn instead of
    /// doing the work side by side.
    ///
    /// Bounded: nil, and `body` is not run, when `maxReports` are already running or waiting
    /// (the caller answers "busy"), or when the calling task is cancelled before its turn (its
    /// client has gone). Reports of clients that had closed their connections all ran, one
    /// after another: a few thousand scrapes sent and dropped held the next real one for minutes.
    /// `reserved`: the one /metrics exposition being made (`MetricsRoutes.sharedExposition`:
    /// scrapes share it, so there is at most one), which takes its turn but is never refused
    /// for console pages filling the line (Prometheus then saw the node down, `up == 0`).
    public func report<T: Sendable>(reserved: Bool = false, _ body: @escaping @Sendable () -> T) async -> T? {
        if reserved { return await reporter.performUnlessCancelled(body) }
        guard reportsWaiting.add(1, ordering: .relaxed).newValue <= Self.maxReports else {
            reportsWaiting.subtract(1, ordering: .relaxed)
            return nil
        }
        defer { reportsWaiting.subtract(1, ordering: .relaxed) }
        return await reporter.performUnlessCancelled(body)
    }

    /// Reports running or waiting at most (see `report`).
    public static let maxReports = 8

    /// Seconds since the oldest record the rows have not consumed was written (0: caught up).
    /// Reads one batch header per lagging partition, and the batch itself when the record is
    /// inside a batch spanning a second or more (`timestamp(topic:partition:at:)`).
    public func timeLagSeconds(_ rows: [GroupPartitionLag], nowMs: Int64 = currentTimeMilliseconds()) -> Double {
        var oldest: Int64?
        for row in rows where (row.lag ?? 0) > 0 {
            let tp = row.topicPartition
            // From the oldest record the group still has to read: its committed offset, or the
            // log's start once retention or DeleteRecords passed it (that read nothing, and a
            // stalled group overtaken by retention read as caught up).
            let start = (try? offsets(topic: tp.topic, partition: tp.partition).start) ?? 0
            let next = max(row.committed ?? 0, start)
            if let ts = timestamp(topic: tp.topic, partition: tp.partition, at: next) { oldest = min(oldest ?? ts, ts) }
        }
        // In Double: a record's timestamp is the client's (Int64.min passes the default window).
        return oldest.map { max(0, (Double(nowMs) - Double($0)) / 1000) } ?? 0
    }

    /// Members of a classic or consumer-protocol group now.
    public func memberCount(_ listing: GroupListing) -> Int { membersAndAssignments(listing, limit: 0).members }

    /// A share group's queues, one per topic; `ages` also reads the oldest unfinished record's
    /// time (one batch header per partition with a backlog).
    public func queueReports(group: String, ages: Bool) -> [QueueReport] {
        var byTopic: [String: QueueReport] = [:]
        for s in shares.summaries(group, view: shareLogView) {
            let topic = s.topicPartition.topic
            var q = byTopic[topic] ?? QueueReport(group: group, topic: topic)
            q.available += s.available
            q.unread += s.unread
            q.inFlight += s.acquired
            q.delayed += s.delayed
            q.archived += s.archived
            q.backlog += s.lag
            q.deadLettered += s.deadLettered
            q.deadLettersPending += s.deadLettersPending
            q.activity.add(s.activity)
            // Past the window (no worker has read that far): its delays are not known, so the
            // records there are read for them. A job scheduled for tomorrow enqueued while every
            // worker was down read as late from its enqueue.
            var pastWindow: PastWindowDue.Found? = nil
            if ages, s.lag > 0, let offset = s.oldestDueOffset, offset == s.endOffset, s.oldestDueAtMs == nil, !s.oldestDueDelivered {
                pastWindow = firstDuePastWindow(group: group, s.topicPartition, from: offset, logEnd: s.logEndOffset)
            }
            if case .noneDue = pastWindow {
                // Only jobs waiting for their time there: nothing is late.
            } else if case .due(let since) = pastWindow {
                q.oldestUnfinishedMs = min(q.oldestUnfinishedMs ?? since, since)
            } else if ages, s.lag > 0, let offset = s.oldestDueOffset,
                var ts = timestamp(topic: topic, partition: s.topicPartition.partition, at: offset)
            {
                if let due = s.oldestDueAtMs { ts = max(ts, due) }
                // Delivered before: a delayed job's window entry no longer holds its time (it holds
                // its lock's or its backoff's), so it is read from the record. A job scheduled for
                // tomorrow that was enqueued a month ago is not a month late once a worker has it.
                if s.oldestDueDelivered, let due = deliveryTime(group: group, s.topicPartition, at: offset) { ts = max(ts, due) }
                q.oldestUnfinishedMs = min(q.oldestUnfinishedMs ?? ts, ts)
            }
            byTopic[topic] = q
        }
        return byTopic.values.sorted { $0.topic < $1.topic }
    }
}

extension Broker {
    /// The `tidemark.deliver.at` of the record at `offset` of `tp` (ms since the epoch), nil
    /// when it has none or cannot be read. Remembered per group and partition, for as long as
    /// the same record is asked for.
    func deliveryTime(group: String, _ tp: TopicPartition, at offset: Int64) -> Int64? {
        let key = DeliveryTimes.Key(group: group, topicPartition: tp)
        if let known = deliveryTimes.withLock({ $0.entries[key] }), known.offset == offset { return known.deliverAtMs }
        var found: Int64? = nil
        if let state = try? partitionState(tp.topic, tp.partition),
            let read = try? readLocked(state, offset: offset, maxBytes: 16 << 10, mayBlock: true),
            let slice = read.slice, let bytes = try? slice.readBytes(),
            let record = recordsBeforeDamage(in: bytes, topic: tp.topic, partition: tp.partition, from: offset, limit: 1).records.first,
            record.offset == offset, let ms = Self.deliverAt(of: record), ms > 0
        {
            found = ms
        }
        deliveryTimes.withLock { times in
            if times.entries.count >= DeliveryTimes.max { times.entries.removeAll(keepingCapacity: true) }
            times.entries[key] = (offset, found)
        }
        return found
    }
}

extension Broker {
    /// Records a report reads past a share window, at most.
    static let pastWindowRecords = 1_000

    /// The first record from `from` (a share window's end) that is not waiting for its
    /// delivery time, among the next `pastWindowRecords` (at most 1 MiB): `.due` with the
    /// time its age counts from (its timestamp, or its delivery time if later), `.noneDue`
    /// when every record to the log's end waits for its time, nil when that cannot be told
    /// (more records than that, or none readable: the caller takes the record at `from`).
    /// Remembered per group and partition while the window's end and the log's end stay
    /// and no delivery time it passed over has come.
    func firstDuePastWindow(group: String, _ tp: TopicPartition, from: Int64, logEnd: Int64) -> PastWindowDue.Found? {
        let key = DeliveryTimes.Key(group: group, topicPartition: tp)
        let now = options.clock()
        if let known = pastWindowDue.withLock({ $0.entries[key] }), known.from == from, known.logEnd == logEnd, now < known.validUntilMs {
            return known.found
        }
        var found: PastWindowDue.Found? = nil
        var validUntil = Int64.max
        if let state = try? partitionState(tp.topic, tp.partition),
            let read = try? readLocked(state, offset: from, maxBytes: 1 << 20, mayBlock: true),
            let slice = read.slice, let bytes = try? slice.readBytes()
        {
            let records = recordsBeforeDamage(
                in: bytes, topic: tp.topic, partition: tp.partition, from: from, limit: Self.pastWindowRecords
            ).records
            for record in records {
                let at = Self.deliverAt(of: record) ?? 0
                if at <= now {
                    found = .due(since: max(record.timestamp, at))
                    break
                }
                validUntil = min(validUntil, at)
            }
            if found == nil, let last = records.last, last.offset + 1 >= logEnd { found = .noneDue }
        }
        pastWindowDue.withLock { cache in
            if cache.entries.count >= DeliveryTimes.max { cache.entries.removeAll(keepingCapacity: true) }
            cache.entries[key] = (from, logEnd, validUntil, found)
        }
        return found
    }
}

/// What `Broker.firstDuePastWindow` found, per share partition: for a window's end and a log
/// end, until the first delivery time it passed over. Bounded as `DeliveryTimes`.
struct PastWindowDue: Sendable {
    enum Found: Sendable, Equatable {
        /// A job due, late since this time (ms since the epoch).
        case due(since: Int64)
        /// Every job there waits for its time.
        case noneDue
    }
    var entries: [DeliveryTimes.Key: (from: Int64, logEnd: Int64, validUntilMs: Int64, found: Found?)] = [:]
}

/// What `Broker.deliveryTime` read, per share partition: the record's offset and its delivery
/// time. Bounded: past `max` entries (share partitions with a job delivered and not done) it
/// starts again empty.
struct DeliveryTimes: Sendable {
    static let max = 65_536
    struct Key: Hashable, Sendable {
        var group: String
        var topicPartition: TopicPartition
    }
    var entries: [Key: (offset: Int64, deliverAtMs: Int64?)] = [:]
}

extension ShareActivity {
    public mutating func add(_ other: ShareActivity) {
        deliveries += other.deliveries
        redeliveries += other.redeliveries
        accepted += other.accepted
        released += other.released
        rejected += other.rejected
        renewed += other.renewed
        lockExpirations += other.lockExpirations
    }
}

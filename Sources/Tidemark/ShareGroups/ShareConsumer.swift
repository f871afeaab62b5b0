import Foundation
import Synchronization
import TidemarkStorage

/// A record handed to a share-group worker: the record and how many times it has been
/// delivered (1 the first time).
public struct ShareRecord: Sendable, Equatable {
    public var record: ConsumerRecord
    public var deliveryCount: Int16
    public var topic: String { record.topic }
    public var partition: Int { record.partition }
    public var offset: Int64 { record.offset }
    public var value: [UInt8]? { record.value }
    public var key: [UInt8]? { record.key }
}

/// A share-group worker inside the process (`import Tidemark`): job-queue consumption over
/// the same share groups Kafka clients use, so embedded and remote workers can share a group.
///
/// ```swift
/// let worker = try await ShareConsumer(broker: broker, group: "emails", topics: ["emails"])
/// for job in try await worker.poll(timeout: .seconds(1)) {
///     do { try await send(job.value); worker.acknowledge(job, .accept) }
///     catch { worker.acknowledge(job, job.deliveryCount < 3 ? .release : .reject) }
/// }
/// _ = try await worker.commit()
/// ```
/// In `.implicit` mode, records of a poll that were not acknowledged are accepted by the next
/// poll, commit or close; in `.explicit` mode they stay held until acknowledged or until their
/// lock runs out. Acknowledgements are sent by the next poll, `commit` or `close`, and are
/// recorded when those return (synced to disk first on topics that sync every append).
///
/// A timer heartbeats while the consumer is open, so a worker busy with a long job
/// (and renewing its lock) stays a member: it used to heartbeat only in `poll` and `commit`,
/// and a job longer than the session timeout (45 s) went to another worker meanwhile.
/// Records of a poll are returned whole or not at all: when a read fails, everything the
/// poll acquired goes back (in implicit mode, records read but never returned were accepted
/// by the next poll). An acknowledgement refused for a partition because one of its records'
/// locks ran out is sent again record by record, so the others are applied.
///
/// Concurrency: meant for one task at a time; its state (membership, session epoch, pending
/// acknowledgements) is in a Mutex so it can be handed between tasks. Heartbeats (the
/// background task's and the caller's) are serialized by `heartbeatGate`: two in flight with
/// one member epoch would fence each other.
public final class ShareConsumer: Sendable {
    public enum AcknowledgementMode: Sendable { case implicit, explicit }

    struct State: Sendable {
        var memberEpoch: Int32 = 0
        var sessionEpoch: Int32 = 0
        var assignment: [TopicPartition] = []
        var inSession: Set<TopicPartition> = []
        /// `inSession` was found to be the assignment since either last changed: a poll then
        /// compares nothing (comparing sets of 1,000 partitions per poll cost 150 us a job).
        var inSync = false
        /// Where the next poll starts in `assignment`: after the partition the last poll took
        /// its last job from, so that each partition with jobs gets its turn (a poll for one
        /// job took from the first partition with any until it was drained), as the Kafka
        /// front's sessions turn.
        var cursor = 0
        /// The assignment's partition states, looked up once per assignment (looking up every
        /// partition per poll cost ~50 us a poll over 1,000): a wait's marks read their ends.
        /// Dropped when a wait finds one closed (its topic deleted, or made again); kept only
        /// when every partition has one (a topic deleted and made again between two heartbeats
        /// would otherwise stay unwatched while the assignment looks the same).
        /// `logs` are theirs, unretained (the states keep them): the ends read before every
        /// acquire cost no retain and release of each log (~25 ns a partition: its count is in
        /// a side table).
        var waitStates: (partitions: [TopicPartition], states: [PartitionState?], logs: [Unmanaged<PartitionLog>?])?
        var pending: [TopicPartition: [ShareAcknowledgement]] = [:]
        /// The last poll's records not yet acknowledged (implicit mode accepts them).
        var unacknowledged: [TopicPartition: Set<Int64>] = [:]
        var lastHeartbeat = ContinuousClock.now - .seconds(3600)
        var heartbeatInterval: Duration = .seconds(5)
        var closed = false
    }

    public let broker: Broker
    public let group: String
    public let topics: [String]
    public let memberId: String
    public let mode: AcknowledgementMode
    private let state = Mutex(State())
    private let heartbeatGate = Mutex(())
    /// On a Dispatch queue, not a Swift task: a worker whose job blocks the cooperative
    /// threads (2 on a 2-core machine) must still heartbeat.
    private let heartbeats = HeartbeatTimer()

    /// `@unchecked Sendable`: its one mutable field is guarded by `lock`, and a DispatchSource
    /// may be cancelled from any thread (Dispatch synchronizes it); Swift does not mark the
    /// type Sendable. The source exists only once started (released never started, an inactive
    /// source would crash the process).
    private final class HeartbeatTimer: @unchecked Sendable {
        private var source: DispatchSourceTimer?
        private let lock = NSLock()

        func start(every interval: DispatchTimeInterval, _ handler: @escaping @Sendable () -> Void) {
            lock.withLock {
                guard source == nil else { return }
                let timer = DispatchSource.makeTimerSource(queue: .global())
                timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(50))
                timer.setEventHandler(handler: handler)
                timer.resume()
                source = timer
            }
        }

        func cancel() { lock.withLock { source?.cancel() } }

        deinit { source?.cancel() }
    }

    public init(broker: Broker, group: String, topics: [String], mode: AcknowledgementMode = .implicit) async throws {
        self.broker = broker
        self.group = group
        self.topics = topics
        self.memberId = UUID().uuidString.lowercased()
        self.mode = mode
        try heartbeat(force: true)
        startHeartbeats()
    }

    /// Joins or keeps the membership alive (at most once per heartbeat interval unless forced);
    /// a member the group forgot or fenced joins again, once. Nothing after `close`.
    private func heartbeat(force: Bool = false) throws {
        try heartbeatGate.withLock { _ throws in
            var force = force
            for _ in 0..<2 {
                let (epoch, due, closed) = state.withLock { s in
                    (s.memberEpoch, force || ContinuousClock.now - s.lastHeartbeat >= s.heartbeatInterval, s.closed)
                }
                guard due, !closed else { return }
                let result = broker.shareGroupHeartbeat(
                    ShareHeartbeat(
                        groupId: group, memberId: memberId, memberEpoch: epoch, subscribedTopicNames: epoch == 0 ? topics : nil,
                        clientId: "tidemark-embedded"))
                if let error = result.error {
                    state.withLock { $0.memberEpoch = 0 }
                    if error == .unknownMemberId || error == .fencedMemberEpoch {
                        force = true
                        continue
                    }
                    throw TidemarkError(error, result.errorMessage ?? "share group heartbeat failed")
                }
                state.withLock { s in
                    s.memberEpoch = result.memberEpoch
                    s.lastHeartbeat = ContinuousClock.now
                    if result.heartbeatIntervalMs > 0 { s.heartbeatInterval = .milliseconds(Int64(result.heartbeatIntervalMs)) }
                    if let assignment = result.assignment, assignment != s.assignment {
                        s.assignment = assignment
                        s.inSync = false
                    }
                }
                return
            }
        }
    }

    /// Heartbeats when due (looking every 200 ms) until `close`, or until nothing refers to
    /// the consumer.
    private func startHeartbeats() {
        heartbeats.start(every: .milliseconds(200)) { [weak self] in
            guard let self, !self.state.withLock({ $0.closed }) else { return }
            try? self.heartbeat()
        }
    }

    deinit { heartbeats.cancel() }

    /// Records this worker now holds under a lock, at most `maxRecords`; waits up to `timeout`
    /// when there are none. Sends the acknowledgements made since the last call first.
    /// Traced as a CLIENT `poll` span linked to each job's producer context.
    public func poll(maxRecords: Int = 500, timeout: Duration = .seconds(1)) async throws -> [ShareRecord] {
        let span = broker.pollSpan(topics: topics, group: group)
        do {
            let jobs = try await pollUntraced(maxRecords: maxRecords, timeout: timeout)
            broker.finishPollSpan(span, jobs.map(\.record))
            return jobs
        } catch {
            span?.recordError(error)
            span?.end()
            throw error
        }
    }

    /// Runs `body` (the job) in a CONSUMER `process {topic}` span, a child of the context the
    /// job's producer put in its headers, with its offset and delivery count: one trace from
    /// the enqueue to every attempt.
    public func process<T>(_ job: ShareRecord, _ body: () async throws -> T) async throws -> T {
        try await broker.withProcessSpan(job.record, group: group, deliveryCount: job.deliveryCount, body)
    }

    /// Records this worker now holds under a lock, at most `maxRecords`; waits up to `timeout`
    /// when there are none. Sends the acknowledgements made since the last call first.
    private func pollUntraced(maxRecords: Int = 500, timeout: Duration = .seconds(1)) async throws -> [ShareRecord] {
        // Closed: the member left; a poll opened a session under it again and took jobs that
        // no one acknowledged until their locks ran out.
        if state.withLock({ $0.closed }) { throw TidemarkError(.brokerClosed, "share consumer is closed") }
        try heartbeat()
        let results = try await sendAcknowledgements()
        if let failure = results.first(where: { $0.value == .storage }) {
            throw TidemarkError(.storage, "acknowledgements of \(failure.key) could not be made durable")
        }
        // (Acknowledgements sent, nothing taken: 0 or less took one.)
        guard maxRecords > 0 else { return [] }
        let deadline = ContinuousClock.now + timeout
        // The share coordinator's lock is the whole broker's: acquiring never waits for the
        // disk while holding it on a cooperative thread. What would (a cold window after a
        // restart) is read first on the blocking executor, as the Kafka front does.
        let view = broker.shareLogViewWithoutBlocking
        var unreadable: TidemarkError?
        // The partition whose append woke the last wait: this poll took that wake from the
        // group's other waiting polls, and passes it on when it leaves records there.
        var owed: TopicPartition?
        func passOwed() {
            if let tp = owed, broker.shares.hasAvailable(group: group, tp, view: view) {
                broker.passShareWake(topic: tp.topic, partition: tp.partition, group: group)
            }
            owed = nil
        }
        while true {
            let (partitions, cursor, cached) = state.withLock { ($0.assignment, $0.cursor, $0.waitStates) }
            let inTurn = SessionPartitions(partitions, start: cursor, walksAll: true)
            let states: [PartitionState?]
            let logs: [Unmanaged<PartitionLog>?]
            if let cached, cached.partitions == partitions {
                (states, logs) = (cached.states, cached.logs)
            } else {
                states = broker.partitionStates(partitions)
                logs = states.map { $0.map { .passUnretained($0.log) } }
                let complete = !states.contains { $0 == nil }
                state.withLock { $0.waitStates = complete ? (partitions, states, logs) : nil }
            }
            // The ends before the acquire: a wait after it wakes at once for an append made in
            // between (ends read after the acquire missed it until the wait's 200 ms slice).
            let ends = withExtendedLifetime(states) { logs.map { $0?._withUnsafeGuaranteedRef { $0.visibleEndOffset } ?? 0 } }
            var wouldBlock = false
            var live: [TopicPartition] = []
            var full: [TopicPartition] = []
            let stamp = broker.shareWindowStamp
            var acquired = broker.shares.acquire(
                group: group, member: memberId, partitions: inTurn, maxRecords: maxRecords, view: view, wouldBlock: &wouldBlock,
                live: &live, full: &full)
            if !full.isEmpty { broker.closeShareWindows(group: group, full, stamp: stamp) }
            let taken = acquired.reduce(0) { $0 + $1.offsets.count }
            if wouldBlock && taken < maxRecords {
                // A partition whose window needs the disk (after a restart, a cold segment) is
                // read on the executor even when others had records: it is not left out while
                // they keep getting traffic.
                acquired += await broker.acquireShares(
                    group: group, member: memberId, partitions: Array(inTurn), maxRecords: maxRecords - taken)
            }
            passOwed()
            if let last = acquired.last(where: { !$0.offsets.isEmpty })?.topicPartition {
                state.withLock { s in
                    if s.assignment == partitions, let index = partitions.firstIndex(of: last) { s.cursor = (index + 1) % partitions.count }
                }
            }
            // A partition whose log cannot be read where its window grows (damage) fails the
            // poll that gets nothing else by its timeout: never skipped over in silence, and
            // a worker that polls again at once does not spin on it.
            unreadable = acquired.compactMap(\.error).first
            acquired.removeAll { $0.error != nil }
            if !acquired.isEmpty {
                let records = try await deliver(acquired)
                if !records.isEmpty { return records }
            }
            if ContinuousClock.now >= deadline || broker.isClosed {
                if let unreadable { throw unreadable }
                return []
            }
            // In slices of at most 200 ms: records also come back without an append (released
            // by others, their locks run out, delays ended).
            let leftMs = (deadline - ContinuousClock.now).wholeMilliseconds
            var marks: [ShareWaitMark] = []
            marks.reserveCapacity(partitions.count)
            for (index, tp) in partitions.enumerated() {
                if let partition = states[index] { marks.append(ShareWaitMark(topicPartition: tp, state: partition, end: ends[index])) }
            }
            let woken = await broker.waitForShareAppends(group: group, marks, until: ContinuousClock.now + .milliseconds(max(1, min(200, leftMs))))
            owed = woken?.topicPartition
            if let woken, woken.state.notifier.isClosed { state.withLock { $0.waitStates = nil } }
            do {
                try Task.checkCancellation()
                try heartbeat()
            } catch {
                passOwed()
                throw error
            }
        }
    }

    /// Reads the records of the acquisitions; gives back what the reads did not reach, and all
    /// of them when a read fails (none of the records is returned then). Damage ends a
    /// partition's read instead (see below).
    private func deliver(_ acquired: [ShareAcquisition]) async throws -> [ShareRecord] {
        var out: [ShareRecord] = []
        var damaged: TidemarkError?
        var read: [(tp: TopicPartition, delivered: Set<Int64>, back: [Int64], gaps: [Int64], ranges: [AcquiredRange])] = []
        for acquisition in acquired {
            let tp = acquisition.topicPartition
            let counts = Dictionary(
                acquisition.ranges.flatMap { range in (range.first...range.last).map { ($0, range.deliveryCount) } },
                uniquingKeysWith: { first, _ in first })
            var delivered: Set<Int64> = []
            do {
                // Read up to the last acquired offset, in growing chunks (one job, one small read).
                let target = acquisition.offsets.last!
                var next = acquisition.offsets[0]
                var chunk = 16 << 10
                // A large batch of which this takes a few records is decoded once into the
                // broker's `ShareBatchCache` (the next polls take its other records from there).
                let topicId = try? broker.topicId(of: tp.topic)
                func take(_ batch: RecordBatch) {
                    for record in batch.records(from: next, through: target) {
                        let offset = batch.offset(of: record)
                        guard let count = counts[offset] else { continue }
                        out.append(
                            ShareRecord(record: ConsumerRecord(record, of: batch, topic: tp.topic, partition: tp.partition), deliveryCount: count))
                        delivered.insert(offset)
                    }
                    next = batch.header.lastOffset + 1
                }
                while next <= target {
                    if let topicId, let cached = broker.shareBatches.batch(tp, id: topicId, containing: next) {
                        take(cached)
                        continue
                    }
                    // Damage (the window may reach past a batch that rotted after it was read
                    // into it): the records before it are delivered, those from it on given
                    // back, and the poll that delivers nothing else fails with the damage.
                    let fetched: FetchResult
                    do {
                        fetched = try await broker.fetch(topic: tp.topic, partition: tp.partition, offset: next, maxBytes: chunk)
                    } catch let error as TidemarkError where error.code == .corruptMessage {
                        damaged = error
                        break
                    }
                    guard let slice = fetched.slice else { break }
                    let bytes = try slice.readBytes()
                    if let topicId, let decoded = ShareBatchCache.decodedToKeep(bytes, next: next, target: target) {
                        broker.shareBatches.insert(tp, id: topicId, decoded)  // (not kept past the cache's bound)
                        take(decoded)
                        continue
                    }
                    let (records, damage) = broker.recordsBeforeDamage(
                        in: bytes, topic: tp.topic, partition: tp.partition, from: next, limit: .max, through: target)
                    if let damage, records.isEmpty {
                        damaged = TidemarkError(.corruptMessage, "\(tp) at \(next): the log is damaged there (\(damage.message))")
                        break
                    }
                    guard let last = records.last else { break }
                    for record in records where counts[record.offset] != nil {
                        out.append(ShareRecord(record: record, deliveryCount: counts[record.offset]!))
                        delivered.insert(record.offset)
                    }
                    next = last.offset + 1
                    chunk = min(chunk * 4, 4 << 20)
                }
            } catch {
                for acquisition in acquired {
                    broker.shares.giveBack(
                        group: group, member: memberId, acquisition.topicPartition, offsets: acquisition.offsets, acquired: acquisition.ranges)
                }
                throw error
            }
            let lastRead = delivered.max() ?? (acquisition.offsets[0] - 1)
            // Offsets inside what was read that hold no record (none today) are gaps.
            read.append(
                (
                    tp, delivered, acquisition.offsets.filter { $0 > lastRead },
                    acquisition.offsets.filter { $0 <= lastRead && !delivered.contains($0) }, acquisition.ranges
                ))
        }
        for (tp, delivered, back, gaps, ranges) in read {
            broker.shares.giveBack(group: group, member: memberId, tp, offsets: back, acquired: ranges)
            // Offered to the group's waiting polls (they were told of the append, not woken).
            if !back.isEmpty { broker.offerShareRecords(group: group, tp) }
            state.withLock { s in
                s.unacknowledged[tp, default: []].formUnion(delivered)
                for gap in gaps { s.pending[tp, default: []].append(ShareAcknowledgement(gap, .gap)) }
            }
        }
        if out.isEmpty, let damaged { throw damaged }
        return out
    }

    /// Marks a record done (`.accept`), to retry (`.release`) or poison (`.reject`); sent with
    /// the next poll, commit or close.
    public func acknowledge(_ record: ShareRecord, _ type: ShareAcknowledgeType = .accept) {
        let tp = TopicPartition(record.topic, record.partition)
        state.withLock { s in
            s.pending[tp, default: []].append(ShareAcknowledgement(record.offset, type))
            s.unacknowledged[tp]?.remove(record.offset)
        }
    }

    /// Sends the acknowledgements made so far and returns, per partition, nil when they were
    /// applied (and recorded, as durable as their topic) or the reason they were not (`.invalidRecordState`: the lock
    /// had run out and the record went to another worker).
    @discardableResult
    public func commit() async throws -> [TopicPartition: TidemarkError.Code?] {
        try heartbeat()
        return try await sendAcknowledgements()
    }

    /// Extends the locks of records still being worked on (KIP-1222's RENEW).
    public func renew(_ records: [ShareRecord]) async throws -> [TopicPartition: TidemarkError.Code?] {
        for record in records {
            let tp = TopicPartition(record.topic, record.partition)
            state.withLock { $0.pending[tp, default: []].append(ShareAcknowledgement(record.offset, .renew)) }
        }
        return try await sendAcknowledgements(keepingUnacknowledged: true)
    }

    private func sendAcknowledgements(closing: Bool = false, keepingUnacknowledged: Bool = false) async throws
        -> [TopicPartition: TidemarkError.Code?]
    {
        let (epoch, add, forget, acks) = state.withLock { s -> (Int32, [TopicPartition], [TopicPartition], [TopicPartition: [ShareAcknowledgement]]) in
            if mode == .implicit && !keepingUnacknowledged {
                for (tp, offsets) in s.unacknowledged {
                    for offset in offsets.sorted() { s.pending[tp, default: []].append(ShareAcknowledgement(offset, .accept)) }
                }
                s.unacknowledged = [:]
            }
            var add: [TopicPartition] = []
            var forget: Set<TopicPartition> = []
            if !s.inSync {
                add = s.assignment.filter { !s.inSession.contains($0) }
                let current = Set(s.assignment)
                forget = s.inSession.filter { !current.contains($0) }
                s.inSync = add.isEmpty && forget.isEmpty
            }
            // In offset order, one type per record, as a partition's batches must be
            // (`ShareAcknowledgement.ordered`: the last word wins, a RENEW never replaces an
            // accept, release or reject).
            let acks = s.pending.mapValues(ShareAcknowledgement.ordered)
            s.pending = [:]
            return (closing ? -1 : s.sessionEpoch, add, Array(forget), acks)
        }
        var results: [TopicPartition: TidemarkError.Code?]
        if epoch == 0 && !acks.isEmpty {
            // A new session carries no acknowledgements: open it first.
            _ = try await update(epoch: 0, add: add, forget: forget, acks: [:])
            results = try await sendAgain(acks, closing: closing)
        } else {
            results = try await update(epoch: epoch, add: add, forget: forget, acks: acks)
        }
        // A partition is refused whole when one record's lock ran out (it went to another
        // worker): the others are sent again in halves until each part is applied or is one
        // record that is refused. Another failure (storage) stops it and is what is reported.
        for (tp, code) in results where code == .invalidRecordState && !closing {
            let records = acks[tp]!.flatMap { ack in
                (ack.first...ack.last).map { ShareAcknowledgement($0, ack.types.count == 1 ? ack.types[0] : ack.types[Int($0 - ack.first)]) }
            }
            guard records.count > 1 else { continue }
            results[tp] = .some(try await sendInParts(tp, records[...], split: true))
        }
        return results
    }

    /// Sends one partition's single-record acknowledgements (`split`: as two halves); a part
    /// refused because a record's lock ran out is sent again as two halves. The result: nil
    /// when all were applied, else the worst failure (storage before an expired lock). On a
    /// throw, what was not sent goes back to the pending acknowledgements.
    private func sendInParts(_ tp: TopicPartition, _ records: ArraySlice<ShareAcknowledgement>, split: Bool = false) async throws
        -> TidemarkError.Code?
    {
        if !split || records.count == 1 {
            let code: TidemarkError.Code?
            do {
                code = try await sendAgain([tp: ShareAcknowledgement.ordered(Array(records))], closing: false)[tp] ?? nil
            } catch {
                state.withLock { $0.pending[tp, default: []].append(contentsOf: records) }
                throw error
            }
            guard code == .invalidRecordState, records.count > 1 else { return code }
        }
        let middle = records.startIndex + records.count / 2
        let first: TidemarkError.Code?
        do {
            first = try await sendInParts(tp, records[..<middle])
        } catch {
            state.withLock { $0.pending[tp, default: []].append(contentsOf: records[middle...]) }
            throw error
        }
        if let first, first != .invalidRecordState {
            state.withLock { $0.pending[tp, default: []].append(contentsOf: records[middle...]) }
            return first
        }
        let second = try await sendInParts(tp, records[middle...])
        if let second, second != .invalidRecordState { return second }
        return first ?? second
    }

    private func sendAgain(_ acks: [TopicPartition: [ShareAcknowledgement]], closing: Bool) async throws -> [TopicPartition: TidemarkError.Code?] {
        let epoch = closing ? -1 : state.withLock { $0.sessionEpoch }
        return try await update(epoch: epoch, add: [], forget: [], acks: acks)
    }

    private func update(epoch: Int32, add: [TopicPartition], forget: [TopicPartition], acks: [TopicPartition: [ShareAcknowledgement]])
        async throws -> [TopicPartition: TidemarkError.Code?]
    {
        let result = broker.shares.updateSession(
            group: group, member: memberId, epoch: epoch, add: add, forget: forget, acknowledgements: acks, allowRenew: true,
            view: broker.shareLogView, inProcess: true)
        if let error = result.error {
            state.withLock { s in
                s.sessionEpoch = 0
                s.inSession = []
                s.inSync = false
            }
            if (error == .shareSessionNotFound || error == .invalidShareSessionEpoch) && epoch != 0 && epoch != -1 {
                _ = try await update(epoch: 0, add: state.withLock { $0.assignment }, forget: [], acks: [:])
                return try await update(epoch: state.withLock { $0.sessionEpoch }, add: [], forget: [], acks: acks)
            }
            if epoch == -1 && error == .shareSessionNotFound { return [:] }
            throw TidemarkError(error, result.errorMessage ?? "share session")
        }
        // Records it released go to a worker waiting on the Kafka front.
        for tp in Set(result.released) { broker.offerShareRecords(group: group, tp) }
        state.withLock { s in
            s.sessionEpoch = epoch == -1 ? 0 : (epoch == Int32.max ? 1 : epoch + 1)
            // What the session holds, as the coordinator has it: a topic deleted (and made
            // again under its name) left it there, so the consumer never added it back and its
            // acquisitions (of the session's partitions only) found nothing for ever.
            // (Rebuilt only when it can have changed: partitions added or forgotten, a new or
            // closed session, or the coordinator's list not as long as ours: the coordinator
            // only ever drops a session's partitions on its own, a deleted topic's, never
            // swaps one for another, so a list of the same length is the same list.)
            if epoch <= 0 || !add.isEmpty || !forget.isEmpty || result.partitions.count != s.inSession.count {
                s.inSession = epoch == -1 ? [] : Set(result.partitions)
                s.inSync = false
            }
        }
        if let durableAt = result.durableAt {
            let error: TidemarkError? = await withCheckedContinuation { c in broker.shares.whenDurable(durableAt) { c.resume(returning: $0) } }
            if let error { throw error }
        }
        if result.deadLettersPending { Task { [broker] in await broker.writeDeadLettersAfterAcknowledgement() } }
        return result.acknowledged
    }

    /// Sends what is pending (implicit mode accepts the last poll's records), leaves the group
    /// and closes the share session: records still held go back to the others at once.
    public func close() async throws {
        let already = state.withLock { s in
            defer { s.closed = true }
            return s.closed
        }
        guard !already else { return }
        heartbeats.cancel()
        _ = try await sendAcknowledgements(closing: true)
        heartbeatGate.withLock { _ in
            _ = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: group, memberId: memberId, memberEpoch: -1))
        }
    }
}

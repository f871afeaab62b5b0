import Foundation
import NIOCore
import Tidemark
import TidemarkStorage
import TidemarkWire

/// One ShareFetch answered on its connection's event loop, in steps that each run on that
/// loop with no task or thread hop unless the step must wait or would block:
///
/// 1. its acknowledgements were applied by `RequestRouter.shareFetch` (the session update
///    runs once, before this object exists); when they must be synced (a topic that syncs
///    every append), the flusher's callback brings the fetch back to the loop once they are;
/// 2. acquire with a view that never waits for the disk; when it declined a cold read, the
///    engine acquires from the partitions not served yet on its executor
///    (`Broker.acquireShares`) and the fetch comes back to the loop with both;
/// 3. nothing to acquire (and no acknowledgements to answer): long poll. An append to a
///    session partition that is this poll's to take (`ShareWake`: one waiting poll of the
///    group per record), or a loop timer at most 200 ms away (locks expire and records are
///    released without an append; partitions appended to while another poll was woken),
///    wakes it to acquire again, until `deadline`;
/// 4. read the stored batches that hold the acquired records (`ShareBatchWalk`) from the
///    page cache; a read that would wait for the disk finishes on a task (`Broker.fetch`)
///    and the fetch goes on with the next partition back on the loop. A partition whose log
///    could not be read to acquire from (damage) is answered with its error
///    (`ShareAcquisition.error`: CORRUPT_MESSAGE), as a fetch of it is;
/// 5. answer (`done`, on the loop).
///
/// Confined to its loop (reached from other threads only through `NIOLoopBound`).
final class ShareFetchInFlight {
    let router: RequestRouter
    let loop: any EventLoop
    let request: ShareFetchRequest
    let group: String
    let member: String
    let renewing: Bool
    let hasAcknowledgements: Bool
    let refused: [(WireUUID, Int32, KafkaError)]
    let update: ShareSessionUpdate
    let deadline: NIODeadline
    private var acknowledged: [TopicPartition: TidemarkError.Code?]
    private var done: ((ShareFetchResponse) -> Void)?
    /// Answered: it waits for nothing more (an abandoned fetch is once its step in progress,
    /// if any, comes back).
    var isOver: Bool { done == nil }
    /// The session's append watches: the connection's (`kept`), or this fetch's own.
    private let watches: ShareSessionWatches
    private let kept: Bool
    private var timer: Scheduled<Void>?
    /// When the wait acquires again over every partition that may have records without an
    /// append (200 ms after the last time it did: see `acquire`): the timer is set for it,
    /// and wakes by appends, which acquire from their partition only, do not put it off.
    private var fullAcquireDue = NIODeadline.now()
    /// The session partitions whose window was not caught up when this fetch last looked (or
    /// that it passed over once it had acquired enough: it answers then).
    private var live: [TopicPartition]?
    private var polling = false
    /// Partitions told since the last wake were looked at before this wait (once per wake:
    /// while appends go on, each would tell again; the timer wake takes them then).
    private var toldLooked = false
    /// Response bytes left (request's max_bytes and the server's fetch.max.bytes).
    private var budget: Int
    /// Record bytes this answer holds so far.
    private var deliveredBytes = 0
    /// What this request may decode on its loop, over all its partitions' walks.
    private let decodeAllowance = LoopDecodeAllowance()
    private var partitions: [TopicPartition: ShareFetchResponse.Partition] = [:]
    /// Partitions where this fetch's acknowledgements applied, or where it gave back records
    /// it acquired but did not deliver: offered to waiting polls when it answers, after its
    /// own acquire (`Broker.offerShareRecords`).
    private var released: Set<TopicPartition>
    /// Its connection closed (`abandon`): it waits no more.
    private var abandoned = false

    init(
        router: RequestRouter, loop: any EventLoop, request: ShareFetchRequest, group: String, member: String, renewing: Bool,
        hasAcknowledgements: Bool, refused: [(WireUUID, Int32, KafkaError)], update: ShareSessionUpdate,
        watches: ShareSessionWatches?, done: @escaping (ShareFetchResponse) -> Void
    ) {
        self.watches = watches ?? ShareSessionWatches(broker: router.broker, loop: loop, group: group)
        self.kept = watches != nil
        self.router = router
        self.loop = loop
        self.request = request
        self.group = group
        self.member = member
        self.renewing = renewing
        self.hasAcknowledgements = hasAcknowledgements
        self.refused = refused
        self.update = update
        let wait = min(Int64(max(0, request.maxWaitMs)), router.config.fetchMaxWaitMs)
        self.deadline = .now() + .milliseconds(wait)
        self.acknowledged = update.acknowledged
        self.released = Set(update.released)
        self.done = done
        self.budget = min(Int(request.maxBytes > 0 ? request.maxBytes : Int32.max), router.config.fetchMaxBytes)
    }

    private var broker: Broker { router.broker }

    /// Step 1: wait for the acknowledgements to be synced, if their topics need it.
    func start() {
        guard let offset = update.durableAt else { return acknowledgementsDone() }
        let bound = NIOLoopBound(self, eventLoop: loop)
        let loop = self.loop
        broker.shares.whenDurable(offset) { error in
            if loop.inEventLoop {
                bound.value.durable(error)
            } else {
                loop.execute { bound.value.durable(error) }
            }
        }
    }

    private func durable(_ error: TidemarkError?) {
        if let error {
            for (tp, result) in acknowledged where result == nil { acknowledged[tp] = .some(error.code) }
        }
        acknowledgementsDone()
    }

    private func acknowledgementsDone() {
        if update.deadLettersPending { Task { [broker] in await broker.writeDeadLettersAfterAcknowledgement() } }
        guard !renewing && !update.partitions.isEmpty else { return read([], from: 0) }
        // Kept watches that fired since the session's last fetch are made anew before the
        // acquire (which reads every partition anyway, appended to or not).
        _ = watches.rewatchFired()
        _ = watches.takeAppended()
        acquire()
    }

    private var maxRecords: Int { Int(max(1, min(request.maxRecords, 10_000))) }

    /// Step 2: from every session partition, or from `only` (those an append woke the long
    /// poll for: the others had nothing at the last acquire, and what they get without an
    /// append the next timer wake finds). A timer wake of a session whose watches are kept
    /// acquires from the partitions whose window was not caught up when last looked at
    /// (`live`): the others can get records by an append only, which their watches report.
    private func acquire(only: [TopicPartition]? = nil) {
        // The broker's response memory is full (answers its clients have not read): nothing is
        // acquired for an answer that could not be read into memory, and the poll waits as if
        // there were nothing (its timer wakes look again), answered empty at its deadline.
        // Acquired and given back, it answered at once and woke the next waiting poll to do the
        // same: every worker polling in a loop while the memory stayed full.
        if router.responseMemory.room <= 0 && !broker.isClosed {
            if only == nil { fullAcquireDue = .now() + .milliseconds(200) }
            return acquiredSome([])
        }
        var wouldBlock = false
        let partitions: SessionPartitions
        var full = false
        if let only, NIODeadline.now() < fullAcquireDue {
            partitions = SessionPartitions(only)
        } else {
            fullAcquireDue = .now() + .milliseconds(200)
            if kept, let live {
                // Partitions that could not be watched (their log unreadable then) are walked
                // too, and watched if they can be now.
                var seen = Set(live)
                let more = ((only ?? []) + watches.retryUnwatched()).filter { seen.insert($0).inserted }
                partitions = SessionPartitions(live + more)
            } else {
                partitions = update.partitions
                full = true
            }
        }
        var found: [TopicPartition] = []
        var locksFull: [TopicPartition] = []
        let stamp = broker.shareWindowStamp
        let acquired = broker.shares.acquire(
            group: group, member: member, partitions: partitions, maxRecords: maxRecords,
            view: broker.shareLogViewWithoutBlocking, wouldBlock: &wouldBlock, live: &found, full: &locksFull)
        if !locksFull.isEmpty { broker.closeShareWindows(group: group, locksFull, stamp: stamp) }
        if full {
            live = found
        } else if let before = live {
            let looked = Set(partitions)
            live = before.filter { !looked.contains($0) } + found
        }
        guard wouldBlock else { return acquiredSome(acquired) }
        // Partitions whose window needed the disk were left out: the executor acquires from
        // the partitions not served yet (so a cold partition is not starved by a busy one
        // that always has records), and the fetch answers with both.
        let served = Set(acquired.map(\.topicPartition))
        let rest = partitions.filter { !served.contains($0) }
        let left = maxRecords - acquired.reduce(0) { $0 + $1.offsets.count }
        guard !rest.isEmpty && left > 0 else { return acquiredSome(acquired) }
        router.readsOffLoop.add(1, ordering: .relaxed)
        let bound = NIOLoopBound(self, eventLoop: loop)
        let (loop, broker, group, member) = (loop, broker, group, member)
        Task {
            let more = await broker.acquireShares(group: group, member: member, partitions: rest, maxRecords: left)
            loop.execute { bound.value.acquiredSome(acquired + more) }
        }
    }

    /// Step 3: answer with what was acquired, or long-poll for more. A partition that could
    /// not be read (damage) alone does not end the wait: its error goes out with what the
    /// wait brings, or at the deadline, so a client that polls again at once (librdkafka's
    /// share consumer does) asks once per wait, not in a busy loop over the same damage.
    private func acquiredSome(_ acquired: [ShareAcquisition]) {
        // The appends that woke this poll: passed on where records are left.
        watches.passWakes()
        // Its connection closed while it acquired (the member's session open on another
        // connection, so the acquire took records): they go back, not into an answer no one
        // reads (they stayed locked until their lock ran out).
        if abandoned {
            for acquisition in acquired where acquisition.error == nil { giveBack(acquisition, acquisition.offsets) }
            stopWaiting()
            return read([], from: 0)
        }
        let records = acquired.contains { $0.error == nil }
        // A stopping server answers a woken poll at once (`KafkaServer.stop` waits for it).
        if records || hasAcknowledgements || NIODeadline.now() >= deadline || broker.isClosed
            || router.draining.load(ordering: .relaxed)
        {
            stopWaiting()
            return read(acquired, from: 0)
        }
        // A watch that fired while the acquire ran off the loop: made anew, then acquire again
        // (that acquire may have read the partition before the append).
        if watches.hasFired { return acquire(only: watches.rewatchFired()) }
        polling = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        // The watches stay through timer wakes (registering a watch per partition each time
        // cost an idle 1,000-partition session as much as its walk) and through appends to
        // other partitions.
        if watches.isEmpty { watches.watch(update.partitions) }
        watches.waiter = { [weak self] tp in self?.wake(appended: tp) }
        // Appends whose wake went to another poll while this one was not waiting yet (the
        // acquire may have read their partitions before them): looked at once per wake.
        if !toldLooked {
            toldLooked = true
            let told = watches.takeAppended()
            if !told.isEmpty {
                polling = false
                watches.waiter = nil
                return acquire(only: told)
            }
        }
        // A delayed job or a retry backoff that ends sooner than the next timer wake: woken then.
        var wakeAt = min(deadline, fullAcquireDue)
        if let ms = broker.shares.msUntilNextDue(group: group, partitions: live ?? Array(update.partitions)) {
            wakeAt = min(wakeAt, .now() + .milliseconds(ms + 1))
        }
        timer = loop.scheduleTask(deadline: wakeAt) { bound.value.wake(appended: nil) }
    }

    /// Its connection closed: a long poll ends now, answered with nothing (the answer is not
    /// written), so that its timer, watches and request memory go at once; one acquiring off
    /// the loop ends when that comes back. (Its session closed with the connection, and gave
    /// back its records: an acquire for it takes nothing.)
    func abandon() {
        abandoned = true
        if polling {
            polling = false
            watches.waiter = nil
            timer?.cancel()
            timer = nil
            stopWaiting()
            read([], from: 0)
        } else if let held = timer {
            // Answering damage only, held to the deadline (`finish`).
            held.cancel()
            timer = nil
            finish()
        }
    }

    /// The fetch waits no more: its own watches go, kept ones stay for the session's next fetch.
    private func stopWaiting() {
        if kept {
            watches.waiter = nil
        } else {
            watches.close()
        }
    }

    /// A timer wake (`appended` nil) or an append to `appended`.
    /// (A wake that comes while not polling, during an acquire off the loop, is passed on to
    /// another poll and stays in `watches`' fired partitions for the next wait.)
    private func wake(appended: TopicPartition?) {
        guard polling else { return }
        polling = false
        toldLooked = false
        watches.waiter = nil
        timer?.cancel()
        timer = nil
        // Partitions whose watch woke this poll, and those appended to whose wake went to
        // another poll (records released or expired there later come back without an append:
        // a timer wake finds them once they are in `live`).
        var seen = Set<TopicPartition>()
        let appendedTo = (watches.rewatchFired() + watches.takeAppended()).filter { seen.insert($0).inserted }
        acquire(only: appended == nil && appendedTo.isEmpty ? nil : appendedTo)
    }

    /// Step 4: the batches of `acquired[index...]`, in order (each partition's read is
    /// bounded by what the earlier ones left of the budget).
    private func read(_ acquired: [ShareAcquisition], from index: Int) {
        var index = index
        while index < acquired.count {
            let acquisition = acquired[index]
            index += 1
            if let error = acquisition.error {
                fail(acquisition, error)
                continue
            }
            if abandoned {  // its connection closed while a read waited for the disk
                giveBack(acquisition, acquisition.offsets)
                continue
            }
            // Past the byte budget (or the broker's response memory), once some partition has
            // records: the rest are given back unread. (Each partition read at least its first
            // batch whole: 1,000 partitions of 1 MiB batches made a 1 GiB answer at max_bytes 1.)
            // The first partition reads no more than the response memory has room for, and
            // nothing once it has none (answered empty, its records given back for the next
            // fetch): answers are copies, and connections that fetch 60 MB each and never read
            // held 55 MB apiece past the bound (50 of them, 2.8 GB).
            let room = router.responseMemory.room
            if (room <= 0 && !broker.isClosed) || (deliveredBytes > 0 && (budget <= 0 || room < deliveredBytes)) {
                giveBack(acquisition, acquisition.offsets)
                continue
            }
            var walk: ShareBatchWalk
            do {
                walk = ShareBatchWalk(
                    acquisition, topicId: try broker.topicId(of: acquisition.topicPartition.topic), maxBytes: max(min(budget, room), 1))
                if try router.readBatchesNow(&walk, allowance: decodeAllowance) {
                    deliver(acquisition, walk)
                    continue
                }
            } catch {
                fail(acquisition, error)
                continue
            }
            // A read would wait for the disk: this partition's reads go on off the loop.
            router.readsOffLoop.add(1, ordering: .relaxed)
            let bound = NIOLoopBound(self, eventLoop: loop)
            let (loop, router, started) = (loop, router, walk)
            let next = index
            Task {
                var walk = started
                let outcome: Result<ShareBatchWalk, Error>
                do {
                    try await router.readBatches(&walk)
                    outcome = .success(walk)
                } catch {
                    outcome = .failure(error)
                }
                loop.execute {
                    let fetch = bound.value
                    switch outcome {
                    case .success(let walk):
                        if fetch.abandoned {  // its connection closed meanwhile: no one reads the answer
                            fetch.giveBack(acquisition, acquisition.offsets)
                        } else {
                            fetch.deliver(acquisition, walk)
                        }
                    case .failure(let error): fetch.fail(acquisition, error)
                    }
                    fetch.read(acquired, from: next)
                }
            }
            return
        }
        finish()
    }

    /// The records the reads reached go out; acquired records past them are given back.
    /// A walk that ended at damage before any record fails the partition with it.
    private func deliver(_ acquisition: ShareAcquisition, _ walk: ShareBatchWalk) {
        let tp = acquisition.topicPartition
        if walk.kept.isEmpty, let (offset, reason) = walk.damage {
            return fail(acquisition, broker.reportDamage(topic: tp.topic, partition: tp.partition, at: offset, reason))
        }
        let covered = walk.covered
        budget -= walk.kept.count
        deliveredBytes += walk.kept.count
        giveBack(acquisition, acquisition.offsets.filter { $0 > covered })
        var entry = ShareFetchResponse.Partition(partitionIndex: Int32(tp.partition))
        entry.records = .bytes(walk.kept[...])
        entry.acquiredRecords = acquisition.ranges.compactMap { range in
            guard range.first <= covered else { return nil }
            return .init(firstOffset: range.first, lastOffset: min(range.last, covered), deliveryCount: range.deliveryCount)
        }
        partitions[tp] = entry
    }

    /// Gives back `offsets` of `acquisition` (acquired, not delivered); they are offered to
    /// waiting polls when this fetch answers.
    private func giveBack(_ acquisition: ShareAcquisition, _ offsets: [Int64]) {
        guard !offsets.isEmpty else { return }
        broker.shares.giveBack(group: group, member: member, acquisition.topicPartition, offsets: offsets, acquired: acquisition.ranges)
        released.insert(acquisition.topicPartition)
    }

    private func fail(_ acquisition: ShareAcquisition, _ error: any Error) {
        let tp = acquisition.topicPartition
        giveBack(acquisition, acquisition.offsets)
        var entry = ShareFetchResponse.Partition(partitionIndex: Int32(tp.partition))
        entry.errorCode = KafkaError(error).rawValue
        entry.errorMessage = KafkaError.message(of: error)
        partitions[tp] = entry
    }

    /// Step 5.
    private func finish() {
        guard done != nil else { return }
        // Every partition failed for damage, nothing else to answer: held to the long poll's
        // end like an acquire's damage error (a client polling again at once would spin).
        let damageOnly = !partitions.isEmpty && partitions.values.allSatisfy { $0.errorCode == KafkaError.corruptMessage.rawValue }
        if damageOnly && acknowledged.isEmpty && refused.isEmpty && timer == nil && NIODeadline.now() < deadline && !broker.isClosed
            && !abandoned
        {
            let bound = NIOLoopBound(self, eventLoop: loop)
            timer = loop.scheduleTask(deadline: deadline) { bound.value.finish() }
            return
        }
        guard let done else { return }
        self.done = nil
        var response = ShareFetchResponse()
        response.acquisitionLockTimeoutMs = Int32(clamping: update.lockDurationMs)
        for (tp, result) in acknowledged {
            var entry = partitions[tp] ?? ShareFetchResponse.Partition(partitionIndex: Int32(tp.partition))
            entry.acknowledgeErrorCode = KafkaError(optional: result).rawValue
            if result != nil { entry.acknowledgeErrorMessage = "acknowledgement refused: \(KafkaError(optional: result))" }
            partitions[tp] = entry
        }
        // By topic name, then partition: sorted, each topic's partitions lie together.
        let ordered = partitions.count < 2 ? Array(partitions) : partitions.sorted { ServerAssignor.partitionOrder($0.key, $1.key) }
        var lastTopic: String?
        for (tp, entry) in ordered {
            if tp.topic != lastTopic {
                response.responses.append(ShareFetchResponse.Topic(topicId: router.wireId(of: tp.topic)))
                lastTopic = tp.topic
            }
            response.responses[response.responses.count - 1].partitions.append(entry)
        }
        // A refused partition's acknowledgement error says so only when the request carried
        // acknowledgements, as Kafka answers (none was refused otherwise).
        let carried = !refused.isEmpty && request.topics.contains { $0.partitions.contains { !$0.acknowledgementBatches.isEmpty } }
        for (topicId, partition, error) in refused {
            var entry = ShareFetchResponse.Partition(partitionIndex: partition)
            entry.errorCode = error.rawValue
            if carried { entry.acknowledgeErrorCode = error.rawValue }
            response.responses.append(.init(topicId: topicId, partitions: [entry]))
        }
        // What this fetch released or gave back goes to a poll already waiting, now that its
        // own acquire has taken what it could (before the answer: while it counts in flight).
        for tp in released { broker.offerShareRecords(group: group, tp) }
        done(response)
    }
}

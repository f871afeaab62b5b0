import Synchronization
import TestSupport
import Testing
import TidemarkStorage

@testable import Tidemark

/// Which waiting share poll an append wakes (`ShareWake`, `AppendNotifier`).
@Suite struct ShareWakeTests {
    /// What one share watch saw: woken, or told.
    final class Seen: Sendable {
        let woken = Atomic<Int>(0)
        let told = Atomic<Int>(0)
    }

    static func watch(_ broker: Broker, local: Bool, _ seen: Seen) throws -> AppendWatch? {
        let end = try broker.offsets(topic: "jobs", partition: 0).end
        let share = ShareWake(
            group: "workers", isWaiting: { true }, isLocal: { local },
            appended: { _ in seen.told.add(1, ordering: .relaxed) })
        return broker.watchAppends(topic: "jobs", partition: 0, beyond: end, share: share) {
            seen.woken.add(1, ordering: .relaxed)
        }
    }

    /// A broker whose group "workers" keeps 100 record locks (`share.partition.max.record.locks`)
    /// on "jobs" (one partition, 110 jobs), with w1's session there: (broker, partition, its notifier).
    static func fullWindowBroker(_ dir: TemporaryDirectory) async throws -> (Broker, TopicPartition, AppendNotifier) {
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("jobs", partitions: 1)
        try await broker.alterGroupConfig("workers", changes: [.set("share.partition.max.record.locks", "100")])
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 110)
        let tp = TopicPartition("jobs", 0)
        _ = ShareCoordinatorTests.join(broker, "w1")
        #expect(ShareCoordinatorTests.openSession(broker, "w1", tp).error == nil)
        return (broker, tp, try broker.partitionState("jobs", 0).notifier)
    }

    /// w1 acquires (up to 500) as a fetch does: the count of opens read first, the windows it
    /// finds full closed after. Returns the offsets taken and those windows.
    static func acquireAndClose(_ broker: Broker, _ tp: TopicPartition) -> (offsets: [Int64], full: [TopicPartition]) {
        var wouldBlock = false
        var (live, full): ([TopicPartition], [TopicPartition]) = ([], [])
        let stamp = broker.shareWindowStamp
        let taken = broker.shares.acquire(
            group: "workers", member: "w1", partitions: SessionPartitions([tp]), maxRecords: 500, view: broker.shareLogView,
            wouldBlock: &wouldBlock, live: &live, full: &full)
        broker.closeShareWindows(group: "workers", full, stamp: stamp)
        return (taken.flatMap(\.offsets), full)
    }

    /// w1 accepts `offset` in "workers" at session `epoch`.
    static func accept(_ broker: Broker, _ tp: TopicPartition, _ offset: Int64, epoch: Int32) -> ShareSessionUpdate {
        broker.shares.updateSession(
            group: "workers", member: "w1", epoch: epoch, add: [], forget: [],
            acknowledgements: [tp: [ShareAcknowledgement(offset, .accept)]], allowRenew: false, view: broker.shareLogView)
    }

    /// A poll on the appender's own thread (its event loop's) gets the job before polls
    /// registered earlier elsewhere: the job goes out in the appender's pass, with no other
    /// thread woken. Polls in the same place keep their registration order, and a pass-on goes
    /// the same way.
    @Test func anAppendWakesThePollOnItsOwnThreadFirst() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("jobs", partitions: 1)
        let (remote, local, laterLocal) = (Seen(), Seen(), Seen())
        let watches = [
            try Self.watch(broker, local: false, remote), try Self.watch(broker, local: true, local),
            try Self.watch(broker, local: true, laterLocal),
        ]
        #expect(watches.allSatisfy { $0 != nil })

        try await ShareCoordinatorTests.produce(broker, "jobs", count: 1)
        #expect(local.woken.load(ordering: .relaxed) == 1)
        #expect(remote.woken.load(ordering: .relaxed) == 0 && remote.told.load(ordering: .relaxed) == 1)
        #expect(laterLocal.woken.load(ordering: .relaxed) == 0 && laterLocal.told.load(ordering: .relaxed) == 1)

        // Passed on: the other local poll, though the remote one was registered before it.
        broker.passShareWake(topic: "jobs", partition: 0, group: "workers")
        #expect(laterLocal.woken.load(ordering: .relaxed) == 1)
        #expect(remote.woken.load(ordering: .relaxed) == 0)
        // No local poll left: the remote one.
        broker.passShareWake(topic: "jobs", partition: 0, group: "workers")
        #expect(remote.woken.load(ordering: .relaxed) == 1)
        try await broker.close()
    }

    /// Embedded workers' waits are the group's share waits: an append wakes as many of them as
    /// it appended records, the others wait on (every waiting worker woke for each job, and
    /// all but one found nothing: 32 waiting workers cost 6x the CPU per job of one), and a
    /// wake passed on goes to the next. The wait says which partition woke it.
    @Test func anAppendWakesAsManyWaitingWorkersAsItAppendedRecords() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("jobs", partitions: 2)
        let notifier = try broker.partitionState("jobs", 1).notifier
        final class Woken: Sendable { let list = Mutex<[TopicPartition?]>([]) }
        let woken = Woken()
        let marks = try (0..<2).map { ShareWaitMark(topicPartition: TopicPartition("jobs", $0), state: try broker.partitionState("jobs", $0), end: 0) }
        let waits = (0..<4).map { _ in
            Task {
                let tp = await broker.waitForShareAppends(group: "workers", marks, until: .now + .seconds(120))?.topicPartition
                woken.list.withLock { $0.append(tp) }
            }
        }
        func settle(waiting: Int, woken count: Int) async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                if notifier.waiterCount == waiting && woken.list.withLock({ $0.count }) == count { return true }
                try await Task.sleep(for: .milliseconds(5))
            }
            return false
        }
        #expect(try await settle(waiting: 4, woken: 0))
        _ = try await broker.append(topic: "jobs", partition: 1, batches: try idempotentBatch(producerId: -1, epoch: -1, sequence: -1, values: ["j"]))
        #expect(try await settle(waiting: 3, woken: 1))
        try await Task.sleep(for: .milliseconds(50))
        #expect(woken.list.withLock { $0 } == [TopicPartition("jobs", 1)])  // one woken, three wait on
        broker.passShareWake(topic: "jobs", partition: 1, group: "workers")
        #expect(try await settle(waiting: 2, woken: 2))
        _ = try await broker.append(topic: "jobs", partition: 1, batches: try idempotentBatch(producerId: -1, epoch: -1, sequence: -1, values: ["a", "b"]))
        #expect(try await settle(waiting: 0, woken: 4))
        for wait in waits { await wait.value }
        try await broker.close()
    }

    /// Records that come back without an append (here: released) are offered to the group's
    /// waiting polls whatever end they watch for, as many as could take one
    /// (`Broker.offerShareRecords`); the end rule of a passed-on wake reaches none of them.
    @Test func aReleasedJobIsOfferedToOneWaitingPoll() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("jobs", partitions: 1)
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 2)
        let tp = TopicPartition("jobs", 0)
        _ = ShareCoordinatorTests.join(broker, "w1")
        #expect(ShareCoordinatorTests.openSession(broker, "w1", tp).error == nil)
        let held = broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 2, view: broker.shareLogView)
        #expect(held.first?.offsets == [0, 1])
        // Three polls wait at the log's end; nothing is available.
        let seen = [Seen(), Seen(), Seen()]
        let watches = try seen.map { try Self.watch(broker, local: false, $0) }
        #expect(watches.allSatisfy { $0 != nil })
        func woken() -> [Int] { seen.map { $0.woken.load(ordering: .relaxed) } }
        broker.offerShareRecords(group: "workers", tp)
        #expect(woken() == [0, 0, 0])

        func release(_ offset: Int64, epoch: Int32) -> ShareSessionUpdate {
            broker.shares.updateSession(
                group: "workers", member: "w1", epoch: epoch, add: [], forget: [],
                acknowledgements: [tp: [ShareAcknowledgement(offset, .release)]], allowRenew: false, view: broker.shareLogView)
        }
        let first = release(0, epoch: 1)
        #expect(first.error == nil && first.released == [tp])
        broker.passShareWake(topic: "jobs", partition: 0, group: "workers")
        #expect(woken() == [0, 0, 0], "the end rule wakes no poll that watches the end")
        broker.offerShareRecords(group: "workers", tp)
        #expect(woken() == [1, 0, 0], "one job available: one poll, the one registered first")
        // An accept offers nothing (no record comes back).
        let accepted = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 2, add: [], forget: [],
            acknowledgements: [tp: [ShareAcknowledgement(1, .accept)]], allowRenew: false, view: broker.shareLogView)
        #expect(accepted.error == nil && accepted.released.isEmpty)
        try await broker.close()
    }

    /// A long poll that found nothing wakes when the earliest delay its acquire passed over
    /// ends (`ShareCoordinator.msUntilNextDue`, on the timer clock), not at its next 200 ms timer.
    @Test func aPollKnowsWhenTheNextDelayedJobIsDue() async throws {
        let dir = TemporaryDirectory()
        let wall = TestClock()
        let timers = TestClock(5_000)
        var opts = options(clock: wall, maintenanceMs: 3_600_000)
        opts.timerClock = timers.read
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("jobs", partitions: 1)
        let tp = TopicPartition("jobs", 0)
        for delay: Int64 in [9_000, 4_000] {
            var builder = RecordBatchBuilder()
            builder.append(
                timestamp: 0, key: nil, value: Array("later".utf8),
                headers: [RecordHeader(key: Broker.deliverAtHeader, value: Array("\(wall.read() + delay)".utf8))])
            _ = try await broker.append(topic: "jobs", partition: 0, batches: try builder.build())
        }
        _ = ShareCoordinatorTests.join(broker, "w1")
        #expect(ShareCoordinatorTests.openSession(broker, "w1", tp).error == nil)
        #expect(broker.shares.msUntilNextDue(group: "workers", partitions: [tp]) == nil, "no acquire has looked yet")
        func acquire() -> [Int64] {
            broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 1, view: broker.shareLogView).first?.offsets ?? []
        }
        #expect(acquire() == [])
        #expect(broker.shares.msUntilNextDue(group: "workers", partitions: [tp]) == 4_000)
        timers.advance(1_500)
        #expect(broker.shares.msUntilNextDue(group: "workers", partitions: [tp]) == 2_500)
        timers.advance(2_500)
        #expect(broker.shares.msUntilNextDue(group: "workers", partitions: [tp]) == nil, "due now: nothing to wait for")
        #expect(acquire() == [1])
        #expect(broker.shares.msUntilNextDue(group: "workers", partitions: [tp]) == 5_000)
        // With per-key ordering, until its search has looked: when the lock of the job just
        // acquired runs out (30 s); then the delayed job's time too (it went out up to 200 ms
        // late: keyed searches kept no such time).
        try await broker.alterGroupConfig("workers", changes: [.set("share.key.ordering", "true")])
        #expect(broker.shares.msUntilNextDue(group: "workers", partitions: [tp]) == 30_000)
        #expect(acquire() == [])
        #expect(broker.shares.msUntilNextDue(group: "workers", partitions: [tp]) == 5_000)
        try await broker.close()
    }

    /// A long poll that found nothing also wakes when the earliest record lock runs out (a job
    /// whose worker went silent), not at the next maintenance pass; with per-key ordering too.
    @Test func aPollKnowsWhenTheNextLockRunsOut() async throws {
        let dir = TemporaryDirectory()
        let timers = TestClock(5_000)
        var opts = options(maintenanceMs: 3_600_000)
        opts.timerClock = timers.read
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("jobs", partitions: 1)
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 2)
        let tp = TopicPartition("jobs", 0)
        func acquire(_ member: String) -> [Int64] {
            broker.shares.acquire(group: "workers", member: member, partitions: [tp], maxRecords: 1, view: broker.shareLogView)
                .first?.offsets ?? []
        }
        func due() -> Int64? { broker.shares.msUntilNextDue(group: "workers", partitions: [tp]) }
        _ = ShareCoordinatorTests.join(broker, "w1")
        #expect(ShareCoordinatorTests.openSession(broker, "w1", tp).error == nil)
        #expect(acquire("w1") == [0])  // locked until 35,000 (30 s locks)
        #expect(due() == 30_000)
        timers.advance(10_000)
        #expect(acquire("w1") == [1])  // until 45,000
        #expect(due() == 20_000)
        // Accepting the first leaves its deadline as the bound until an acquire walks the locks:
        // a poll may wake once for nothing, never late.
        let accepted = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 1, add: [], forget: [],
            acknowledgements: [tp: [ShareAcknowledgement(0, .accept)]], allowRenew: false, view: broker.shareLogView)
        #expect(accepted.error == nil)
        #expect(due() == 20_000)
        _ = ShareCoordinatorTests.join(broker, "w2")
        #expect(ShareCoordinatorTests.openSession(broker, "w2", tp).error == nil)
        timers.advance(20_000)
        #expect(due() == nil, "the bound has come: nothing to wait for")
        #expect(acquire("w2") == [], "the second job's lock runs to 45,000")
        #expect(due() == 10_000)
        try await broker.alterGroupConfig("workers", changes: [.set("share.key.ordering", "true")])
        #expect(due() == 10_000)
        timers.advance(10_000)
        #expect(acquire("w2") == [1], "w1 went silent: its job goes to w2 when its lock runs out")
        #expect(due() == 30_000)
        try await broker.close()
    }

    /// A window with every record lock in flight (`share.partition.max.record.locks=100`, all
    /// held) is reported full by the acquire and closed: an append tells the group's waiting
    /// polls instead of waking them (another group's poll is woken as before). An accept there
    /// (of a record not first in the window) frees a lock: it is released
    /// (`ShareSessionUpdate.released`), and its offer opens the window and wakes one poll. A
    /// close read before an open is refused; a close is trusted for
    /// `AppendNotifier.fullWindowTrust`, then an append wakes a poll again.
    @Test func aFullWindowTellsItsPollsUntilALockIsFreed() async throws {
        let dir = TemporaryDirectory()
        let (broker, tp, notifier) = try await Self.fullWindowBroker(dir)
        let held = Self.acquireAndClose(broker, tp)
        #expect(held.offsets == Array(0..<100))
        #expect(held.full == [tp])
        #expect(notifier.isShareWindowClosed(group: "workers"))

        let seen = [Seen(), Seen()]
        var watches = try seen.map { try Self.watch(broker, local: false, $0) }
        let other = Seen()
        let end = try broker.offsets(topic: "jobs", partition: 0).end
        let otherWatch = broker.watchAppends(
            topic: "jobs", partition: 0, beyond: end,
            share: ShareWake(group: "others", isWaiting: { true }, appended: { _ in other.told.add(1, ordering: .relaxed) })
        ) { other.woken.add(1, ordering: .relaxed) }
        #expect(watches.allSatisfy { $0 != nil } && otherWatch != nil)
        func woken() -> [Int] { seen.map { $0.woken.load(ordering: .relaxed) } }
        func told() -> [Int] { seen.map { $0.told.load(ordering: .relaxed) } }
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 1)
        #expect(woken() == [0, 0] && told() == [1, 1])
        #expect(other.woken.load(ordering: .relaxed) == 1)

        // Not the window's first record: its start stays, a lock is free all the same.
        let accepted = Self.accept(broker, tp, 50, epoch: 1)
        #expect(accepted.error == nil && accepted.released == [tp])
        broker.offerShareRecords(group: "workers", tp)
        #expect(!notifier.isShareWindowClosed(group: "workers"))
        #expect(woken() == [1, 0], "one lock freed: one poll")
        // A second accept with the window open releases nothing.
        let again = Self.accept(broker, tp, 51, epoch: 2)
        #expect(again.error == nil && again.released.isEmpty)

        // Found full before a window was opened: not closed.
        let before = broker.shareWindowStamp
        broker.offerShareRecords(group: "workers", tp)
        broker.closeShareWindows(group: "workers", [tp], stamp: before)
        #expect(!notifier.isShareWindowClosed(group: "workers"))
        #expect(woken() == [1, 1], "the offer woke the other poll")

        // Trusted for a while only.
        watches[0] = try Self.watch(broker, local: false, seen[0])
        broker.closeShareWindows(group: "workers", [tp], stamp: broker.shareWindowStamp)
        #expect(notifier.isShareWindowClosed(group: "workers"))
        try await Task.sleep(for: AppendNotifier.fullWindowTrust + .milliseconds(100))
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 1)
        #expect(woken() == [2, 1])
        #expect(!notifier.isShareWindowClosed(group: "workers"))
        for watch in watches { _ = watch?.cancel() }
        _ = otherWatch?.cancel()
        try await broker.close()
    }

    /// An embedded worker's poll closes a full window too (`ShareConsumer`), and a worker
    /// waiting behind it gets the lock an accept frees.
    @Test func anEmbeddedWorkerBehindAFullWindowGetsTheFreedLock() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await broker.createTopic("jobs", partitions: 1)
        try await broker.alterGroupConfig("pool", changes: [.set("share.partition.max.record.locks", "100")])
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 110)
        let notifier = try broker.partitionState("jobs", 0).notifier
        let holder = try await ShareConsumer(broker: broker, group: "pool", topics: ["jobs"], mode: .explicit)
        let jobs = try await holder.poll(maxRecords: 100, timeout: .seconds(5))
        #expect(jobs.map(\.record.offset) == Array(0..<100))
        let waiter = try await ShareConsumer(broker: broker, group: "pool", topics: ["jobs"], mode: .explicit)
        let waiting = Task { try await waiter.poll(maxRecords: 10, timeout: .seconds(20)) }
        let deadline = ContinuousClock.now + .seconds(10)
        while !notifier.isShareWindowClosed(group: "pool") && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(notifier.isShareWindowClosed(group: "pool"))
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 5)
        holder.acknowledge(jobs[0])
        _ = try await holder.commit()
        #expect(try await waiting.value.map(\.record.offset) == [100])
        try await waiter.close()
        try await holder.close()
        try await broker.close()
    }

    /// A worker that acknowledges in its next fetch takes the lock it freed there itself: the
    /// window is full again, so the offer that follows closes it again (left open, the next
    /// append woke a waiting poll for nothing, once per job). A share watch behind a closed
    /// window registers even when the end has passed (an embedded worker, its ends read before
    /// its acquire, went round again at once for each append), and the offer that opens the
    /// window wakes it; another watch fires at once.
    @Test func aWindowFullAgainAfterItsAcknowledgementStaysClosed() async throws {
        let dir = TemporaryDirectory()
        let (broker, tp, notifier) = try await Self.fullWindowBroker(dir)
        #expect(Self.acquireAndClose(broker, tp).offsets == Array(0..<100))
        let seen = Seen()
        let watch = try Self.watch(broker, local: false, seen)
        #expect(watch != nil && notifier.isShareWindowClosed(group: "workers"))

        // The acknowledgement and the acker's own acquire, then the offer.
        #expect(Self.accept(broker, tp, 7, epoch: 1).released == [tp])
        #expect(Self.acquireAndClose(broker, tp).offsets == [100])
        broker.offerShareRecords(group: "workers", tp)
        #expect(notifier.isShareWindowClosed(group: "workers"))
        #expect(seen.woken.load(ordering: .relaxed) == 0)
        try await ShareCoordinatorTests.produce(broker, "jobs", count: 1)
        #expect(seen.woken.load(ordering: .relaxed) == 0 && seen.told.load(ordering: .relaxed) == 1)

        // Watches made with an end the log has passed.
        let passed = try broker.offsets(topic: "jobs", partition: 0).end - 1
        let behind = Seen()
        let share = ShareWake(group: "workers", isWaiting: { true }, appended: { _ in behind.told.add(1, ordering: .relaxed) })
        let held = broker.watchAppends(topic: "jobs", partition: 0, beyond: passed, share: share) { behind.woken.add(1, ordering: .relaxed) }
        #expect(held != nil && behind.woken.load(ordering: .relaxed) == 0)
        let plain = Seen()
        #expect(broker.watchAppends(topic: "jobs", partition: 0, beyond: passed) { plain.woken.add(1, ordering: .relaxed) } == nil)
        #expect(plain.woken.load(ordering: .relaxed) == 1)
        // The lock the next accept frees goes to that watch (the other one gone).
        _ = watch?.cancel()
        #expect(Self.accept(broker, tp, 8, epoch: 2).released == [tp])
        broker.offerShareRecords(group: "workers", tp)
        #expect(behind.woken.load(ordering: .relaxed) == 1)
        #expect(!notifier.isShareWindowClosed(group: "workers"))
        _ = held?.cancel()
        try await broker.close()
    }
}

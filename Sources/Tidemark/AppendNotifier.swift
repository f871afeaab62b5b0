import Synchronization

/// A share-group long poll's part in an append watch. Of the polls of one group that watch a
/// partition, an append wakes as many as it appended records (those on the appender's own
/// thread first, then those registered first; a woken poll's watch is made anew, so it goes to
/// the back), not all of them: every waiting worker woken for one job was a thundering herd
/// (each acquired again, one got the job). The others are told (`appended`, when the poll
/// gives one: the Kafka front's), without a wake, so their timer wakes look at the partition
/// (records released or expired there come back without an append); an embedded worker's wait
/// is not told (its next 200 ms slice looks at every partition).
/// A poll that was woken passes the wake on (`AppendNotifier.passOn`) when it leaves records
/// another could take, or cannot take any.
public struct ShareWake: Sendable {
    public var group: String
    /// Whether the poll waits now: one busy otherwise (between fetches, acquiring) is told,
    /// not woken (it looks at the partition before it waits). Called under the notifier's
    /// lock: it must not call back into the notifier.
    public var isWaiting: @Sendable () -> Bool
    /// Told of an append (called outside the lock); `busy`: the poll was not waiting when the
    /// wakes were chosen (if it waits by now, it must look at the partition itself). Nil: not
    /// told (an embedded worker's wait, which looks at every partition at its next slice).
    public var appended: (@Sendable (_ busy: Bool) -> Void)?
    /// Whether the poll's wake would run on the calling thread (an event loop's poll, asked on
    /// the appender's or the passer's thread). Such polls are woken first: the job goes out
    /// in the appender's own pass, with no other thread woken (and no wait for one that is
    /// not running). Called under the notifier's lock, like `isWaiting`.
    public var isLocal: @Sendable () -> Bool

    public init(
        group: String, isWaiting: @escaping @Sendable () -> Bool, isLocal: @escaping @Sendable () -> Bool = { false },
        appended: (@Sendable (_ busy: Bool) -> Void)?
    ) {
        self.group = group
        self.isWaiting = isWaiting
        self.isLocal = isLocal
        self.appended = appended
    }
}

/// Wakes readers of one partition when its log end moves: long-polling fetches of the Kafka
/// front (callbacks that hand work back to their event loop) and embedded consumers (async
/// waits with a deadline).
///
/// Owned by its `PartitionState`. Waiters are kept in a `Mutex`; each fires at most once:
/// by an append that moves the end past its offset, or by `close`. A waiter removed by
/// `cancel` never fires, so "woken" and "timed out" cannot both happen. Share-group waiters
/// (`ShareWake`) are the exception to "an append past its offset fires it": they are woken
/// one per appended record and group, and the others stay registered and are told (an append
/// has passed them: `passOn` or a later append wakes them).
final class AppendNotifier: Sendable {
    /// A class: a notify walks every waiter, and a struct of four closures and a string was
    /// copied (retained and released) at each step.
    private final class Waiter: Sendable {
        let offset: Int64
        let wake: @Sendable () -> Void
        let share: ShareWake?

        init(offset: Int64, wake: @escaping @Sendable () -> Void, share: ShareWake?) {
            self.offset = offset
            self.wake = wake
            self.share = share
        }
    }

    private struct State {
        var nextID = 0
        var waiters: [Int: Waiter] = [:]
        var isClosed = false
        /// The end the last notify saw (how many records the next one appended).
        var notifiedEnd: Int64?
        /// Groups whose share window here takes no appended record now, and since when
        /// (`closeShareWindow`): an append tells their polls instead of waking them.
        var fullWindows: [String: ContinuousClock.Instant] = [:]
        /// The stamp of the last `openShareWindow` here.
        var lastOpen: UInt64 = 0
    }

    /// How long a full window is believed without being opened again: past it, an append
    /// wakes a poll as before (which closes the window again if it is still full). A bound
    /// for what frees a window without an acknowledgement or an offer (a lowered limit's
    /// group config raised, the group's state reset): one wasted wake a second, not one per
    /// append, and no wait past it for polls that could take the records.
    static let fullWindowTrust = Duration.seconds(1)

    private let state = Mutex(State())

    /// Readers waiting now.
    var waiterCount: Int { state.withLock { $0.waiters.count } }
    /// Waits registered so far.
    var registrations: Int { state.withLock { $0.nextID } }
    /// Closed: its partition is gone (deleted, or the broker closed); watches fire at once.
    var isClosed: Bool { state.withLock { $0.isClosed } }

    /// Calls `wake` once the log end passes `offset` (or the notifier closes). Returns an id
    /// for `cancel`, or nil when `wake` already ran (the end had passed: `currentEnd` is read
    /// after registering, so an append in between is never missed). A share watch of a group
    /// whose window here is full (`closeShareWindow`) is registered even when the end has
    /// passed: those records are not its group's to take (an embedded worker behind a full
    /// window, its ends read before its acquire, went round again at once for every append).
    @discardableResult
    func watch(
        beyond offset: Int64, currentEnd: () -> Int64, share: ShareWake? = nil, wake: @escaping @Sendable () -> Void
    ) -> Int? {
        let registered = state.withLock { s -> (id: Int, full: Bool)? in
            if s.isClosed { return nil }
            s.nextID += 1
            s.waiters[s.nextID] = Waiter(offset: offset, wake: wake, share: share)
            // The end a watch starts from counts the first append's records.
            if s.notifiedEnd == nil { s.notifiedEnd = offset }
            let full = share.map { Self.isFull(s, group: $0.group) } ?? false
            return (s.nextID, full)
        }
        guard let (id, full) = registered else {
            wake()
            return nil
        }
        if !full, currentEnd() > offset, cancel(id) {
            wake()
            return nil
        }
        return id
    }

    /// Removes a waiter; true when it had not fired (it never will now).
    @discardableResult
    func cancel(_ id: Int) -> Bool {
        state.withLock { $0.waiters.removeValue(forKey: id) != nil }
    }

    /// Returns when the log end passes `offset`, when `deadline` comes (through the broker's
    /// one shared `DeadlineTimers`, not a task per wait), when the task is cancelled, or on close.
    func wait(
        untilEndPasses offset: Int64, deadline: ContinuousClock.Instant, timers: DeadlineTimers, currentEnd: () -> Int64
    ) async {
        if currentEnd() > offset || ContinuousClock.now >= deadline { return }
        /// The registration of one wait: whichever of wake, deadline and cancellation comes
        /// first resumes it (the notifier's `cancel` decides), and the others find nothing.
        final class Registration: Sendable {
            let ids = Mutex<(waiter: Int?, timer: Int?, cancelled: Bool)>((nil, nil, false))
        }
        let registration = Registration()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                guard
                    let id = watch(
                        beyond: offset, currentEnd: currentEnd,
                        wake: { [timers] in
                            if let token = registration.ids.withLock({ $0.timer }) { timers.cancel(token) }
                            continuation.resume()
                        })
                else { return }
                let token = timers.schedule(at: deadline) { [self] in
                    if cancel(id) { continuation.resume() }
                }
                let cancelledMeanwhile = registration.ids.withLock { ids -> Bool in
                    ids.waiter = id
                    ids.timer = token
                    return ids.cancelled
                }
                if cancelledMeanwhile, cancel(id) {
                    timers.cancel(token)
                    continuation.resume()
                    return
                }
                // Woken between watch and schedule: the deadline entry is not needed.
                if state.withLock({ $0.waiters[id] == nil }) { timers.cancel(token) }
            }
        } onCancel: { [self] in
            let (waiter, timer) = registration.ids.withLock { ids -> (Int?, Int?) in
                ids.cancelled = true
                return (ids.waiter, ids.timer)
            }
            if let timer { timers.cancel(timer) }
            // Removing the waiter first means its wake can no longer run: resume it here.
            if let waiter, let removed = state.withLock({ $0.waiters.removeValue(forKey: waiter) }) { removed.wake() }
        }
    }

    /// Called after an append: wakes everyone waiting for an end below `newEnd`; of the share
    /// waiters of each group, one per record appended, the waiting ones on the calling thread
    /// first, then those registered first (the others are told); none of a group whose
    /// window here is full (`closeShareWindow`).
    func notify(newEnd: Int64) {
        var told: [(tell: @Sendable (Bool) -> Void, busy: Bool)] = []
        let ready = state.withLock { s -> [Waiter] in
            let appended = s.notifiedEnd.map { max(1, newEnd - $0) } ?? 1
            s.notifiedEnd = max(s.notifiedEnd ?? newEnd, newEnd)
            guard !s.waiters.isEmpty else { return [] }
            var ready: [Waiter] = []
            var shared: [String: [(id: Int, share: ShareWake)]] = [:]
            if !s.fullWindows.isEmpty {
                let now = ContinuousClock.now
                for (group, since) in s.fullWindows where now - since >= Self.fullWindowTrust { s.fullWindows[group] = nil }
            }
            for (id, waiter) in s.waiters where newEnd > waiter.offset {
                if let share = waiter.share {
                    // A full window's group: no poll of it could take these records, all are
                    // told (without the grouping and ordering a wake needs).
                    if !s.fullWindows.isEmpty, s.fullWindows[share.group] != nil {
                        if let tell = share.appended { told.append((tell, !share.isWaiting())) }
                    } else {
                        shared[share.group, default: []].append((id, share))
                    }
                } else {
                    ready.append(waiter)
                    s.waiters.removeValue(forKey: id)
                }
            }
            for (_, waiters) in shared {
                var woken: Int64 = 0
                for (id, share) in Self.localFirst(waiters) {
                    let waiting = share.isWaiting()
                    if woken < appended, waiting, let waiter = s.waiters.removeValue(forKey: id) {
                        ready.append(waiter)
                        woken += 1
                    } else {
                        if let tell = share.appended { told.append((tell, !waiting)) }
                    }
                }
            }
            return ready
        }
        for waiter in ready { waiter.wake() }
        for (tell, busy) in told { tell(busy) }
    }

    /// Share waiters in the order they get wakes: those on the calling thread first, each
    /// part in registration order.
    private static func localFirst(_ waiters: [(id: Int, share: ShareWake)]) -> [(id: Int, share: ShareWake)] {
        waiters.map { (waiter: $0, remote: $0.share.isLocal() ? 0 : 1) }
            .sorted { ($0.remote, $0.waiter.id) < ($1.remote, $1.waiter.id) }
            .map(\.waiter)
    }

    /// Wakes the next waiting share waiter of `group` that an end of `end` has passed (one on
    /// the calling thread first, then the one registered first), if there is one: a woken
    /// poll that left records, or could take none, hands its wake to the next.
    func passOn(group: String, end: Int64) {
        let next = state.withLock { s -> Waiter? in
            var candidates: [(id: Int, share: ShareWake)] = []
            for (id, waiter) in s.waiters where end > waiter.offset {
                if let share = waiter.share, share.group == group, share.isWaiting() { candidates.append((id, share)) }
            }
            return Self.localFirst(candidates).first.flatMap { s.waiters.removeValue(forKey: $0.id) }
        }
        next?.wake()
    }

    /// `group`'s share window here takes no appended record now: every record lock it has is
    /// in flight (`ShareCoordinator.acquire`'s `full`), as an acquire found it that began when
    /// the broker's count of window opens was `stampBefore`. Appends then tell the group's
    /// polls instead of waking them (each woken poll took nothing, ~10-15 us of server CPU an
    /// append with workers waiting behind a full window), until the window is opened (an
    /// acknowledgement that frees a lock there, records offered) or `fullWindowTrust` passes.
    /// Not closed when it was opened after that count (the acquire may have seen it full
    /// before an acknowledgement freed it: closed then, it would stay closed).
    func closeShareWindow(group: String, stampBefore: UInt64) {
        state.withLock { s in
            guard !s.isClosed, s.lastOpen <= stampBefore else { return }
            s.fullWindows[group] = ContinuousClock.now
        }
    }

    /// `group`'s share window here may take records again (`closeShareWindow`); `stamp`: the
    /// broker's count of window opens, counted for this one.
    func openShareWindow(group: String, stamp: UInt64) {
        state.withLock { s in
            s.lastOpen = max(s.lastOpen, stamp)
            s.fullWindows.removeValue(forKey: group)
        }
    }

    /// Whether `group`'s share window here is closed (`closeShareWindow`), and trusted still.
    func isShareWindowClosed(group: String) -> Bool {
        state.withLock { Self.isFull($0, group: group) }
    }

    private static func isFull(_ s: State, group: String) -> Bool {
        guard !s.fullWindows.isEmpty, let since = s.fullWindows[group] else { return false }
        return ContinuousClock.now - since < fullWindowTrust
    }

    /// How many share waiters of `group` wait now (`ShareWake.isWaiting`).
    func waitingShareWaiters(group: String) -> Int {
        state.withLock { s in s.waiters.values.reduce(0) { $0 + ($1.share.map { $0.group == group && $0.isWaiting() ? 1 : 0 } ?? 0) } }
    }

    /// Wakes up to `count` waiting share waiters of `group`, whatever end they wait for (those
    /// on the calling thread first, then those registered first): records came back without
    /// an append (released, their lock expired, their holder gone), so an end passing is not
    /// what tells which polls could take them. Never chained: a woken poll passes its wake on
    /// by the end rule (`passOn`), so polls that cannot take the records (their fair share)
    /// do not wake each other in turn.
    func offer(group: String, count: Int) {
        guard count > 0 else { return }
        let woken = state.withLock { s -> [Waiter] in
            var candidates: [(id: Int, share: ShareWake)] = []
            for (id, waiter) in s.waiters {
                if let share = waiter.share, share.group == group, share.isWaiting() { candidates.append((id, share)) }
            }
            return Self.localFirst(candidates).prefix(count).compactMap { s.waiters.removeValue(forKey: $0.id) }
        }
        for waiter in woken { waiter.wake() }
    }

    /// Wakes everyone waiting now (their polls answer with what there is); later polls wait
    /// as usual.
    func wakeAll() {
        let all = state.withLock { s -> [Waiter] in
            let all = Array(s.waiters.values)
            s.waiters.removeAll()
            return all
        }
        for waiter in all { waiter.wake() }
    }

    /// Wakes everyone and lets no one wait again.
    func close() {
        let all = state.withLock { s -> [Waiter] in
            s.isClosed = true
            let all = Array(s.waiters.values)
            s.waiters.removeAll()
            return all
        }
        for waiter in all { waiter.wake() }
    }
}

/// One wait for the first of several partitions' ends to pass an offset (an embedded poll over
/// many partitions): a watch on each partition's notifier and one entry of the broker's
/// `DeadlineTimers` resume one continuation, whichever fires first (or the task's
/// cancellation), and the others are then removed. Not a task per partition, nor a sleeping
/// task per wait: a poll over 1,000 partitions made 1,000 child tasks, each with its own
/// deadline entry, for every wait.
///
/// A share worker's wait (`group`) registers share waits (`ShareWake`): an append wakes as many
/// of the group's waiting polls as it appended records, not all of them (32 embedded workers
/// waiting for the next job all woke for each one: 6x the CPU per job of one worker); the wait
/// returns the index of the partition that woke it, whose wake the poll passes on when it
/// leaves records another could take (`Broker.passShareWake`).
///
/// Concurrency: `state` (a Mutex) owns the continuation and the registrations; `finish` takes
/// them out under it (once: it marks the wait finished), and resumes and cancels outside it.
/// A registration made after the finish is cancelled by the one who made it (`add`, `setTimer`).
/// `waiting` (atomic) is read under the notifiers' locks (`ShareWake.isWaiting`).
final class FirstAppend: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Int?, Never>?
        var watches: [(notifier: AppendNotifier, id: Int)] = []
        var timer: Int?
        var finished = false
        /// Ended by its deadline: its poll looks at every partition next (a share wake that
        /// comes later is its to use, not passed on).
        var timedOut = false
    }

    private let state = Mutex(State())
    private let waiting = Atomic<Bool>(true)
    private let timers: DeadlineTimers

    private init(timers: DeadlineTimers) { self.timers = timers }

    /// Returns when one of `partitions` (a partition and the offset its end must pass) moves
    /// past it or its notifier wakes everyone (its index), at `deadline` or on the task's
    /// cancellation (nil). With `group`, the watches are the
    /// group's share waits, and a share wake that comes after the wait ended (another wake or
    /// cancellation came first) goes on to the group's next waiting poll: the others were not
    /// woken by that append. (After the deadline it does not: that poll looks at every
    /// partition next.)
    @discardableResult
    static func wait(
        _ partitions: [(state: PartitionState, beyond: Int64)], until deadline: ContinuousClock.Instant, timers: DeadlineTimers,
        group: String? = nil
    ) async -> Int? {
        guard !partitions.isEmpty, ContinuousClock.now < deadline else { return nil }
        let wait = FirstAppend(timers: timers)
        let share = group.map { group in
            ShareWake(group: group, isWaiting: { wait.waiting.load(ordering: .acquiring) }, appended: nil)
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Int?, Never>) in
                guard wait.start(continuation) else { return }
                for (index, (partition, offset)) in partitions.enumerated() {
                    let notifier = partition.notifier
                    let end: @Sendable () -> Int64 = { partition.log.visibleEndOffset }
                    // nil: the end had passed (or the notifier closed), and `finish` ran.
                    let wake: @Sendable () -> Void = {
                        if !wait.finish(index), let group, !wait.timedOut { notifier.passOn(group: group, end: end()) }
                    }
                    guard let id = notifier.watch(beyond: offset, currentEnd: end, share: share, wake: wake) else { return }
                    guard wait.add(notifier, id) else { return }
                }
                wait.setTimer(timers.schedule(at: deadline) { wait.finish(nil, timedOut: true) })
            }
        } onCancel: {
            wait.finish(nil)
        }
    }

    /// Keeps the continuation; false (resuming it) when the wait finished already (cancelled).
    private func start(_ continuation: CheckedContinuation<Int?, Never>) -> Bool {
        let finished = state.withLock { s -> Bool in
            if !s.finished { s.continuation = continuation }
            return s.finished
        }
        if finished { continuation.resume(returning: nil) }
        return !finished
    }

    /// Keeps a watch to cancel at the finish; false (cancelling it) when the wait finished.
    private func add(_ notifier: AppendNotifier, _ id: Int) -> Bool {
        let finished = state.withLock { s -> Bool in
            if !s.finished { s.watches.append((notifier, id)) }
            return s.finished
        }
        if finished { notifier.cancel(id) }
        return !finished
    }

    private var timedOut: Bool { state.withLock { $0.timedOut } }

    private func setTimer(_ token: Int) {
        let finished = state.withLock { s -> Bool in
            if !s.finished { s.timer = token }
            return s.finished
        }
        if finished { timers.cancel(token) }
    }

    /// The first wake-up (`woken`: the index of the partition whose watch fired): resumes the
    /// wait and removes the other registrations. False for later calls (they find nothing).
    @discardableResult
    private func finish(_ woken: Int?, timedOut: Bool = false) -> Bool {
        let taken = state.withLock { s -> State? in
            guard !s.finished else { return nil }
            let taken = s
            s = State(finished: true, timedOut: timedOut)
            waiting.store(false, ordering: .releasing)
            return taken
        }
        guard let taken else { return false }
        for (notifier, id) in taken.watches { notifier.cancel(id) }
        if let timer = taken.timer { timers.cancel(timer) }
        taken.continuation?.resume(returning: woken)
        return true
    }
}

/// The deadlines of every embedded long poll of a broker, served by one sleeping task (not
/// one per poll): it sleeps until the earliest deadline and is replaced when an earlier one
/// arrives. Entries cancelled before their time cost nothing more.
///
/// Concurrency: `state` (a Mutex) owns the entries and the sleeper.
final class DeadlineTimers: Sendable {
    private struct State {
        var nextToken = 0
        var entries: [Int: (deadline: ContinuousClock.Instant, action: @Sendable () -> Void)] = [:]
        var sleeper: Task<Void, Never>?
        var sleeperDeadline: ContinuousClock.Instant?
    }

    private let state = Mutex(State())

    /// Entries scheduled and not yet fired or cancelled.
    var pendingCount: Int { state.withLock { $0.entries.count } }
    /// Whether a sleeping task exists (at most one, whatever the number of entries).
    var hasSleeper: Bool { state.withLock { $0.sleeper != nil } }

    /// Runs `action` at `deadline` unless cancelled first; returns the token for `cancel`.
    func schedule(at deadline: ContinuousClock.Instant, _ action: @escaping @Sendable () -> Void) -> Int {
        state.withLock { s in
            s.nextToken += 1
            s.entries[s.nextToken] = (deadline, action)
            if s.sleeperDeadline.map({ deadline < $0 }) ?? true { rearm(&s) }
            return s.nextToken
        }
    }

    func cancel(_ token: Int) {
        state.withLock { s in
            s.entries.removeValue(forKey: token)
            if s.entries.isEmpty {
                s.sleeper?.cancel()
                s.sleeper = nil
                s.sleeperDeadline = nil
            }
        }
    }

    /// Replaces the sleeper with one for the earliest deadline (under the lock).
    private func rearm(_ s: inout State) {
        s.sleeper?.cancel()
        guard let earliest = s.entries.values.map(\.deadline).min() else {
            s.sleeper = nil
            s.sleeperDeadline = nil
            return
        }
        s.sleeperDeadline = earliest
        s.sleeper = Task.detached { [weak self] in
            try? await Task.sleep(until: earliest, clock: .continuous)
            guard !Task.isCancelled else { return }
            self?.fire()
        }
    }

    private func fire() {
        let due = state.withLock { s -> [@Sendable () -> Void] in
            let now = ContinuousClock.now
            let ready = s.entries.filter { $0.value.deadline <= now }
            for token in ready.keys { s.entries.removeValue(forKey: token) }
            s.sleeper = nil
            s.sleeperDeadline = nil
            rearm(&s)
            return ready.values.map(\.action)
        }
        for action in due { action() }
    }
}

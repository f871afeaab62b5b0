import CSystemShims
import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Group commit across logs: one thread that makes appended bytes durable for everyone
/// waiting on them. Waiters are callbacks, not parked threads: an event loop appends, asks
/// `whenDurable`, and goes on serving; the callback comes when an fdatasync covering its
/// offset has completed (or failed).
///
/// Each pass takes every log that has waiters, syncs each once up to the highest offset
/// asked of it (everything appended by then rides along; the logs of a pass concurrently),
/// and answers all of that log's waiters. One flusher per disk (per broker here).
///
/// **Waiting for the producers that are coming back.** A pass that started at the first
/// waiter would split the producers into two cohorts, one syncing while the other comes back
/// with its next message, so at most half of them would share an fsync. Instead, a pass
/// expects as many waiters as the last pass answered plus those that arrived meanwhile (the
/// producers it answered come back), and starts when that many are waiting, or when the
/// first waiter has waited for `lingerFraction` (3) recent fsync durations (at most
/// `maxLingerNanos`), whichever comes first. A lone producer never waits (it is the one
/// expected); producers that went away cost one linger, after which fewer are expected; and
/// producers that come back more slowly than that (most lingers run out) are not waited for:
/// the pass starts at once, as two cohorts alternating serve them better.
///
/// Why three fsyncs and not one: once zeros written ahead made an fdatasync ~100 us here,
/// 16-32 producers on a loaded 2-core machine took longer than one to come back, so most
/// passes split them. Waiting up to three: 15 messages per fsync at 16 producers and 27 at
/// 32 (9 and 8 with one; Redis `appendfsync always`: 8 and 19), the same throughput, 5-15%
/// less server CPU per message, and the same or better p99.
///
/// Concurrency: `state` (a Mutex) owns the waiters; the thread sleeps on a semaphore that
/// appenders signal only when the flusher asked for it (`wakeAt`), so a pass is not
/// interrupted once per arrival. Callbacks run on the flusher thread and must only hand
/// work to their owner (e.g. `EventLoop.execute`).
public final class LogFlusher: Sendable {
    public typealias Completion = @Sendable (StorageError?) -> Void

    private struct Pending {
        var log: PartitionLog
        var target: Int64
        var completions: [(Int64, Completion)]
    }

    private struct State {
        var pending: [ObjectIdentifier: Pending] = [:]
        /// Completions in `pending`.
        var waiters = 0
        /// The flusher is signalled when `waiters` reaches this: 1 while it waits for work,
        /// the expected count while it lingers, `Int.max` while it syncs (it looks again
        /// after every pass).
        var wakeAt = Int.max
        var stopped = false
        /// Passes and logs synced, and passes that started at the linger's deadline rather
        /// than with every producer expected: for tests.
        var passes = 0
        var syncedLogs = 0
        var lingerDeadlines = 0
        /// Waiters answered, in all: divided by `passes`, the messages per fsync.
        var answered = 0
    }

    private let state = Mutex(State())
    private let wakeup = Semaphore()
    private let finished = Semaphore()

    /// Lingering stops while more than this share of recent lingers ran out (the producers
    /// take longer to come back than an fdatasync: starting at once then serves them better),
    /// but for a probe every `probeEvery` passes.
    static let maxMissRate = 0.3
    static let probeEvery = 16

    /// How long a pass may wait for the producers it expects, as a multiple of the recent
    /// fdatasync duration, and its ceiling.
    let lingerFraction: Double
    let maxLingerNanos: UInt64
    let threadName: String

    /// `name` names the thread (`ps -L`, perf, debuggers; Linux keeps 15 bytes of it).
    public init(name: String = "tidemark-flush", lingerFraction: Double = 3, maxLingerNanos: UInt64 = 1_000_000) {
        self.lingerFraction = lingerFraction
        self.maxLingerNanos = maxLingerNanos
        threadName = name
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { raw in
            let flusher = Unmanaged<LogFlusher>.fromOpaque(raw!).takeRetainedValue()
            flusher.run()
            return nil
        }, box.toOpaque())
        precondition(created == 0, "cannot start the flusher thread: \(created)")
        pthread_detach(thread)
    }

    /// Calls `completion` once every offset below `offset` of `log` is durable (at once when
    /// it already is), or with the error that made it impossible.
    public func whenDurable(_ log: PartitionLog, upTo offset: Int64, _ completion: @escaping Completion) {
        if log.flushedOffset >= offset { return completion(nil) }
        let (accepted, wake) = state.withLock { s -> (Bool, Bool) in
            guard !s.stopped else { return (false, false) }
            let key = ObjectIdentifier(log)
            if s.pending[key] == nil {
                s.pending[key] = Pending(log: log, target: offset, completions: [(offset, completion)])
            } else {
                s.pending[key]!.target = max(s.pending[key]!.target, offset)
                s.pending[key]!.completions.append((offset, completion))
            }
            s.waiters += 1
            guard s.waiters >= s.wakeAt else { return (true, false) }
            s.wakeAt = Int.max
            return (true, true)
        }
        if wake { wakeup.signal() }
        if !accepted {
            completion(StorageError(.closed, "the flusher has stopped", path: log.directory))
        }
    }

    /// Waits asynchronously for durability (the embedded API's form).
    public func durable(_ log: PartitionLog, upTo offset: Int64) async throws(StorageError) {
        if log.flushedOffset >= offset { return }
        let error: StorageError? = await withCheckedContinuation { continuation in
            whenDurable(log, upTo: offset) { continuation.resume(returning: $0) }
        }
        if let error { throw error }
    }

    /// Passes, logs synced, passes started at the linger's deadline, and waiters answered, so far.
    public var statistics: (passes: Int, syncedLogs: Int, lingerDeadlines: Int, answered: Int) {
        state.withLock { ($0.passes, $0.syncedLogs, $0.lingerDeadlines, $0.answered) }
    }

    /// Answers every waiter (flushing what they wait for), then stops the thread.
    public func shutdown() {
        let first = state.withLock { s -> Bool in
            defer { s.stopped = true }
            return !s.stopped
        }
        guard first else { return }
        wakeup.signal()
        finished.wait()
    }

    private func run() {
        _ = tidemark_name_this_thread(threadName)
        var expected = 1
        var recentSyncNanos: UInt64 = 0
        // How often recent lingers ran out before their producers came back (moving average),
        // and passes since the last linger: lingering stops while it mostly fails, with a
        // probe every `probeEvery` passes to notice when it would pay again.
        var missRate = 0.0
        var passesSinceLinger = 0
        while true {
            // Work: at least one waiter (or a stop).
            while true {
                let ready = state.withLock { s -> Bool in
                    if s.waiters > 0 || s.stopped { return true }
                    s.wakeAt = 1
                    return false
                }
                if ready { break }
                wakeup.wait()
            }
            // Linger for the producers expected back, within a bound.
            if expected > 1 && (missRate < Self.maxMissRate || passesSinceLinger >= Self.probeEvery) {
                passesSinceLinger = 0
                let linger = min(UInt64(Double(recentSyncNanos) * lingerFraction), maxLingerNanos)
                let deadline = monotonicNanoseconds() + linger
                var missed = false
                while true {
                    let ready = state.withLock { s -> Bool in
                        if s.waiters >= expected || s.stopped { return true }
                        s.wakeAt = expected
                        return false
                    }
                    if ready { break }
                    if !wakeup.wait(untilMonotonicNanoseconds: deadline) {
                        state.withLock { $0.lingerDeadlines += 1 }
                        missed = true
                        break
                    }
                }
                missRate = missRate * 7 / 8 + (missed ? 1.0 / 8 : 0)
            } else {
                passesSinceLinger += 1
            }
            let (batch, answered, stopped) = state.withLock { s -> ([Pending], Int, Bool) in
                let batch = Array(s.pending.values)
                let answered = s.waiters
                s.pending.removeAll(keepingCapacity: true)
                s.waiters = 0
                s.wakeAt = Int.max
                if !batch.isEmpty { s.passes += 1 }
                s.syncedLogs += batch.count
                s.answered += answered
                return (batch, answered, s.stopped)
            }
            if batch.isEmpty {
                if stopped {
                    finished.signal()
                    return
                }
                continue
            }
            let started = monotonicNanoseconds()
            // The logs of a pass are synced concurrently: the filesystem's journal then
            // commits them together (ext4 folds concurrent fdatasyncs into one commit),
            // instead of one commit after another.
            let failures = Mutex([StorageError?](repeating: nil, count: batch.count))
            DispatchQueue.concurrentPerform(iterations: batch.count) { index in
                let pending = batch[index]
                do throws(StorageError) { try pending.log.flush(upTo: pending.target) } catch {
                    failures.withLock { $0[index] = error }
                }
            }
            let took = monotonicNanoseconds() - started
            recentSyncNanos = recentSyncNanos == 0 ? took : (recentSyncNanos * 7 + took) / 8
            // Those about to be answered come back; those that arrived during the pass are
            // waiting already (counted before the answers go out, so none is counted twice).
            expected = answered + state.withLock { $0.waiters }
            let outcome = failures.withLock { $0 }
            for (index, pending) in batch.enumerated() {
                for (_, completion) in pending.completions { completion(outcome[index]) }
            }
            // With the answers gone out: room ahead of the next appends, for logs that sync
            // every append (written while their producers come back).
            for pending in batch { pending.log.preallocateAhead() }
        }
    }
}

/// A counting semaphore over a pthread mutex and condition (Dispatch's would do, but this
/// keeps the flusher on its own thread with no Dispatch queue in between).
///
/// `@unchecked Sendable`: `count` is touched only between lock and unlock of `mutex`.
final class Semaphore: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var count = 0

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    func signal() {
        pthread_mutex_lock(mutex)
        count += 1
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    func wait() {
        pthread_mutex_lock(mutex)
        while count == 0 { pthread_cond_wait(condition, mutex) }
        count = 0  // every signal so far is answered by the pass that follows
        pthread_mutex_unlock(mutex)
    }

    /// `wait()` until CLOCK_MONOTONIC reaches `deadline`; false when it did first.
    func wait(untilMonotonicNanoseconds deadline: UInt64) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        var spec = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while count == 0 {
            if pthread_cond_timedwait(condition, mutex, &spec) == ETIMEDOUT, count == 0 { return false }
        }
        count = 0
        return true
    }
}

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
/// and answers all of that log's waiters. Appends arriving during a pass wait for the next one, so the messages per
/// fsync approach the number of producers waiting. One flusher per disk (per broker here).
///
/// Concurrency: `state` (a Mutex) owns the waiters; the thread sleeps on a semaphore.
/// Callbacks run on the flusher thread and must only hand work to their owner (e.g.
/// `EventLoop.execute`).
public final class LogFlusher: Sendable {
    public typealias Completion = @Sendable (StorageError?) -> Void

    private struct Pending {
        var log: PartitionLog
        var target: Int64
        var completions: [(Int64, Completion)]
    }

    private struct State {
        var pending: [ObjectIdentifier: Pending] = [:]
        var stopped = false
        /// Passes and fdatasync passes made, for tests and metrics.
        var passes = 0
        var syncedLogs = 0
    }

    private let state = Mutex(State())
    private let wakeup = Semaphore()
    private let finished = Semaphore()

    public init(name: String = "tidemark-flusher") {
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { raw in
            let flusher = Unmanaged<LogFlusher>.fromOpaque(raw!).takeRetainedValue()
            flusher.run()
            return nil
        }, box.toOpaque())
        precondition(created == 0, "cannot start the flusher thread: \(created)")
        pthread_detach(thread)
        _ = name
    }

    /// Calls `completion` once every offset below `offset` of `log` is durable (at once when
    /// it already is), or with the error that made it impossible.
    public func whenDurable(_ log: PartitionLog, upTo offset: Int64, _ completion: @escaping Completion) {
        if log.flushedOffset >= offset { return completion(nil) }
        let accepted = state.withLock { s -> Bool in
            guard !s.stopped else { return false }
            let key = ObjectIdentifier(log)
            if s.pending[key] == nil {
                s.pending[key] = Pending(log: log, target: offset, completions: [(offset, completion)])
            } else {
                s.pending[key]!.target = max(s.pending[key]!.target, offset)
                s.pending[key]!.completions.append((offset, completion))
            }
            return true
        }
        if accepted {
            wakeup.signal()
        } else {
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

    /// (passes, logs synced) so far.
    public var statistics: (passes: Int, syncedLogs: Int) { state.withLock { ($0.passes, $0.syncedLogs) } }

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
        while true {
            wakeup.wait()
            while true {
                let (batch, stopped) = state.withLock { s -> ([Pending], Bool) in
                    let batch = Array(s.pending.values)
                    s.pending.removeAll(keepingCapacity: true)
                    if !batch.isEmpty { s.passes += 1 }
                    s.syncedLogs += batch.count
                    return (batch, s.stopped)
                }
                // The logs of a pass are synced concurrently: the filesystem's journal then
                // commits them together (ext4 folds concurrent fdatasyncs into one commit),
                // instead of one commit after another.
                DispatchQueue.concurrentPerform(iterations: batch.count) { index in
                    let pending = batch[index]
                    var failure: StorageError? = nil
                    do throws(StorageError) { try pending.log.flush(upTo: pending.target) } catch { failure = error }
                    for (_, completion) in pending.completions { completion(failure) }
                }
                if batch.isEmpty {
                    if stopped {
                        finished.signal()
                        return
                    }
                    break
                }
            }
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
        pthread_cond_init(condition, nil)
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
}

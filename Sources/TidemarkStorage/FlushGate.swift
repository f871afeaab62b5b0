import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The group-commit rendezvous of one log: which offset is known durable, whether a
/// flush is running, and a condition variable for appenders waiting on it.
///
/// `@unchecked Sendable` because its mutable fields are only touched between `lock()` and
/// `unlock()` of its own pthread mutex (checked by the methods below, which are the only
/// accessors); Synchronization's `Mutex` has no condition variable to wait on.
final class FlushGate: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    /// Every offset below this is on disk. Guarded by `mutex`.
    private var flushedOffset: Int64
    /// A thread is running fdatasync for the log. Guarded by `mutex`.
    private var inProgress = false
    /// The first fsync failure; the log refuses writes from then on. Guarded by `mutex`.
    private var failure: StorageError?

    /// `flushedOffset`, published for readers that must not wait on the mutex (a flusher
    /// holds no lock across fdatasync, but waiters do park on it).
    private let publishedFlushed: Atomic<Int64>
    /// Flushes run so far (each one fdatasync pass over the log's files).
    let flushCount = Atomic<Int>(0)
    /// Called once, under `mutex`, when the log fails (short: it writes a marker).
    private let whenFailed: @Sendable () -> Void

    init(flushedOffset: Int64, whenFailed: @escaping @Sendable () -> Void = {}) {
        self.whenFailed = whenFailed
        self.flushedOffset = flushedOffset
        self.publishedFlushed = Atomic(flushedOffset)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    var flushed: Int64 { publishedFlushed.load(ordering: .acquiring) }

    var failed: StorageError? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return failure
    }

    /// Waits until offsets below `target` are durable. When no flush is running, the caller
    /// becomes the flusher and runs `flush`, which syncs everything appended so far and
    /// returns the offset it made durable; callers that arrive meanwhile wait for it and
    /// usually find their target covered (group commit).
    func awaitDurable(_ target: Int64, flush: () throws(StorageError) -> Int64) throws(StorageError) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while true {
            if let failure { throw failure }
            if flushedOffset >= target { return }
            if inProgress {
                pthread_cond_wait(condition, mutex)
                continue
            }
            inProgress = true
            flushCount.add(1, ordering: .relaxed)
            pthread_mutex_unlock(mutex)
            let result = Result { () throws(StorageError) in try flush() }
            pthread_mutex_lock(mutex)
            inProgress = false
            switch result {
            case .success(let offset):
                flushedOffset = max(flushedOffset, offset)
                publishedFlushed.store(flushedOffset, ordering: .releasing)
            case .failure(let error):
                // Only a failed sync fails the log; one that could not start is the waiters' error alone.
                guard error.beforeSync else {
                    if failure == nil { whenFailed() }
                    failure = error
                    break
                }
                pthread_cond_broadcast(condition)
                throw error
            }
            pthread_cond_broadcast(condition)
        }
    }

    /// Fails the log from outside a flush (a sync of its own that failed, e.g. in a close):
    /// as after a failed flush, nothing more is written or claimed durable.
    func fail(_ error: StorageError) {
        pthread_mutex_lock(mutex)
        if failure == nil {
            whenFailed()
            failure = error
        }
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Lowers the durable offset after a truncation.
    func lower(to offset: Int64) {
        pthread_mutex_lock(mutex)
        flushedOffset = min(flushedOffset, offset)
        publishedFlushed.store(flushedOffset, ordering: .releasing)
        pthread_mutex_unlock(mutex)
    }
}

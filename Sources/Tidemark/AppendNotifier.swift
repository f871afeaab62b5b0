import Synchronization

/// Wakes long-polling readers of one partition when its log end moves.
///
/// Owned by its `PartitionState`. Waiters are kept in a `Mutex`; each is resumed exactly
/// once: by an append that moves the end past its offset, by its deadline, or by `close`.
final class AppendNotifier: Sendable {
    private struct Waiter {
        var offset: Int64
        var continuation: CheckedContinuation<Void, Never>
        /// Resumes the waiter at its deadline; cancelled when it is woken first, so a long
        /// poll answered by an append leaves no sleeping task behind.
        var timer: Task<Void, Never>?
    }

    private struct State {
        var nextID = 0
        var waiters: [Int: Waiter] = [:]
        var isClosed = false
    }

    /// Long polls waiting now (each with its deadline timer).
    var waiterCount: Int { state.withLock { $0.waiters.count } }
    /// Deadline timers still alive (sleeping or finishing): they end when their poll is woken.
    let liveTimers = Atomic<Int>(0)

    private let state = Mutex(State())

    /// Returns when the log end passes `offset`, when `deadline` comes, or on close;
    /// `currentEnd` is read after registering, so an append in between is not missed.
    func wait(untilEndPasses offset: Int64, deadline: ContinuousClock.Instant, currentEnd: @Sendable () -> Int64) async {
        if currentEnd() > offset || ContinuousClock.now >= deadline { return }
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.isClosed { return true }
                    s.waiters[id] = Waiter(offset: offset, continuation: continuation)
                    return false
                }
                if resumeNow || currentEnd() > offset {
                    resume(id: id, orNow: resumeNow ? continuation : nil)
                    return
                }
                // The deadline: a timer that resumes the waiter if it is still there.
                liveTimers.add(1, ordering: .relaxed)
                let timer = Task.detached { [self] in
                    defer { liveTimers.subtract(1, ordering: .relaxed) }
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    if !Task.isCancelled { self.resume(id: id, orNow: nil) }
                }
                let registered = state.withLock { s -> Bool in
                    guard s.waiters[id] != nil else { return false }
                    s.waiters[id]!.timer = timer
                    return true
                }
                if !registered { timer.cancel() }
            }
        } onCancel: {
            self.resume(id: id, orNow: nil)
        }
    }

    private func resume(id: Int, orNow direct: CheckedContinuation<Void, Never>?) {
        if let direct {
            direct.resume()
            return
        }
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.timer?.cancel()
        waiter?.continuation.resume()
    }

    /// Called after an append: wakes everyone waiting for an end below `newEnd`.
    func notify(newEnd: Int64) {
        let ready = state.withLock { s -> [Waiter] in
            guard !s.waiters.isEmpty else { return [] }
            var ready: [Waiter] = []
            for (id, waiter) in s.waiters where newEnd > waiter.offset {
                ready.append(waiter)
                s.waiters.removeValue(forKey: id)
            }
            return ready
        }
        for waiter in ready {
            waiter.timer?.cancel()
            waiter.continuation.resume()
        }
    }

    /// Wakes everyone and lets no one wait again.
    func close() {
        let all = state.withLock { s -> [Waiter] in
            s.isClosed = true
            let all = Array(s.waiters.values)
            s.waiters.removeAll()
            return all
        }
        for waiter in all {
            waiter.timer?.cancel()
            waiter.continuation.resume()
        }
    }
}

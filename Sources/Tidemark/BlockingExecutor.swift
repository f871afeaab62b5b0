import Dispatch
import Synchronization

/// Runs blocking storage calls (pwritev, fdatasync, preads) off Swift's cooperative pool
/// and off any event loop, on a Dispatch concurrent queue whose threads may block.
struct BlockingExecutor: Sendable {
    private let queue: DispatchQueue?
    private let lanes: Lanes?

    /// `serial`: one call at a time, for work whose memory is bounded by one call only
    /// (decoding records for the console), whatever clients send.
    init(serial: Bool = false, label: String = "tidemark.storage-io") {
        queue =
            serial
            ? DispatchQueue(label: label, qos: .userInitiated)
            : DispatchQueue(label: label, qos: .userInitiated, attributes: .concurrent)
        lanes = nil
    }

    /// At most `lanes` calls at a time, the rest started in arrival order as running ones end:
    /// for work whose memory is bounded per call (the decompressing check of produced batches:
    /// each may hold 64 MiB), so memory is bounded by `lanes` calls, while one long call does
    /// not hold every other behind it.
    init(lanes count: Int, label: String) {
        precondition(count > 0, "an executor needs a lane")
        queue = nil
        lanes = Lanes(count: count, label: label)
    }

    private func submit(_ work: @escaping @Sendable () -> Void) {
        if let queue {
            queue.async(execute: work)
        } else if let lanes {
            lanes.submit(work)
        }
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            submit { continuation.resume(with: Result { try body() }) }
        }
    }

    /// `run` for work that cannot fail.
    func perform<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            submit { continuation.resume(returning: body()) }
        }
    }

    /// `perform`, unless the calling task is cancelled before `body`'s turn comes: nil then,
    /// and `body` never runs (a report for a client that has gone is not made).
    func performUnlessCancelled<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T? {
        let cancelled = CancelFlag()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                submit { continuation.resume(returning: cancelled.isSet ? nil : body()) }
            }
        } onCancel: {
            cancelled.set()
        }
    }
}

/// Set once, from any thread (a task's cancellation handler), read by a Dispatch block.
final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
}

/// A lanes executor's calls: at most `limit` run at once, on a concurrent queue; the others
/// wait in arrival order and start as running ones end, so a lane never sits idle while a call
/// waits. `state` is owned by its mutex (taken by submitters and by each call's thread as it
/// ends); the waiting calls are bounded by what holds them (each is a request's batch, within
/// the request memory budget).
private final class Lanes: Sendable {
    private let queue: DispatchQueue
    private let limit: Int
    private let state = Mutex(Waiting())

    struct Waiting {
        var running = 0
        var calls: [@Sendable () -> Void] = []
        var head = 0  // calls before it have started

        mutating func next() -> (@Sendable () -> Void)? {
            guard head < calls.count else { return nil }
            let call = calls[head]
            head += 1
            if head > 64 && head * 2 > calls.count {  // drop the started ones now and then
                calls.removeFirst(head)
                head = 0
            }
            return call
        }
    }

    init(count: Int, label: String) {
        queue = DispatchQueue(label: label, qos: .userInitiated, attributes: .concurrent)
        limit = count
    }

    func submit(_ work: @escaping @Sendable () -> Void) {
        let startNow = state.withLock { s in
            if s.running < limit {
                s.running += 1
                return true
            }
            s.calls.append(work)
            return false
        }
        if startNow { start(work) }
    }

    private func start(_ work: @escaping @Sendable () -> Void) {
        queue.async {
            work()
            let next = self.state.withLock { s in
                let call = s.next()
                if call == nil { s.running -= 1 }
                return call
            }
            if let next { self.start(next) }
        }
    }
}

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

    /// At most `lanes` calls at a time, each call given to the lane with the fewest calls
    /// running or waiting: for work whose memory is bounded per call (the decompressing check
    /// of produced batches: each may hold 64 MiB), so memory is bounded by `lanes` calls, while
    /// one client's long call does not hold every other client's behind it.
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

/// The serial queues of a lanes executor and the calls each has running or waiting.
/// `pending` is owned by its mutex (taken by submitters and by each queue's thread as a
/// call ends); the queues are Dispatch's.
private final class Lanes: Sendable {
    private let queues: [DispatchQueue]
    private let pending: Mutex<[Int]>

    init(count: Int, label: String) {
        queues = (0..<count).map { DispatchQueue(label: "\(label).\($0)", qos: .userInitiated) }
        pending = Mutex(Array(repeating: 0, count: count))
    }

    func submit(_ work: @escaping @Sendable () -> Void) {
        let lane = pending.withLock { pending in
            let lane = pending.indices.min { pending[$0] < pending[$1] }!  // (count > 0)
            pending[lane] += 1
            return lane
        }
        queues[lane].async {
            work()
            self.pending.withLock { $0[lane] -= 1 }
        }
    }
}

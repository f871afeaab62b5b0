import Dispatch
import Synchronization

/// Runs blocking storage calls (pwritev, fdatasync, preads) off Swift's cooperative pool
/// and off any event loop, on a Dispatch concurrent queue whose threads may block.
struct BlockingExecutor: Sendable {
    private let queue: DispatchQueue

    /// `serial`: one call at a time, for work whose memory is bounded by one call only
    /// (the decompressing check of produced batches: each may hold 64 MiB; decoding records
    /// for the console), whatever clients send.
    init(serial: Bool = false, label: String = "tidemark.storage-io") {
        queue =
            serial
            ? DispatchQueue(label: label, qos: .userInitiated)
            : DispatchQueue(label: label, qos: .userInitiated, attributes: .concurrent)
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// `run` for work that cannot fail.
    func perform<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: body()) }
        }
    }

    /// `perform`, unless the calling task is cancelled before `body`'s turn comes: nil then,
    /// and `body` never runs (a report for a client that has gone is not made).
    func performUnlessCancelled<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T? {
        let cancelled = CancelFlag()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                queue.async { continuation.resume(returning: cancelled.isSet ? nil : body()) }
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

import Dispatch

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
}

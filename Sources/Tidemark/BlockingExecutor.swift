import Dispatch

/// Runs blocking storage calls (pwritev, fdatasync, preads) off Swift's cooperative pool
/// and off any event loop, on a Dispatch concurrent queue whose threads may block.
struct BlockingExecutor: Sendable {
    private let queue: DispatchQueue

    /// `serial`: one call at a time (the decompressing check of produced batches: each may
    /// hold 64 MiB, so the memory they take is bounded by one, whatever clients send).
    init(serial: Bool = false) {
        queue =
            serial
            ? DispatchQueue(label: "tidemark.decompress", qos: .userInitiated)
            : DispatchQueue(label: "tidemark.storage-io", qos: .userInitiated, attributes: .concurrent)
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

import Dispatch
import Foundation
import Synchronization

/// Runs `body` for `0..<count` on up to `width` threads and returns the results in order.
/// For many small blocking jobs (opening and closing thousands of partitions: their fsyncs
/// overlap, and the filesystem commits them together).
///
/// The threads are its own, not Dispatch's: on Linux, Dispatch's concurrent queues share a
/// pool as wide as the cores with Swift's tasks, and 16 jobs blocked in file creation held
/// every task-run request of every client (Metadata, FindCoordinator) for the 20 s a
/// CreateTopics of 20,000 partitions took.
/// As many threads as cores by default (at least 2, at most 16), as Dispatch gave before: each
/// open holds a few descriptors for a moment (directory, files, checkpoint) beyond what the
/// open-file budget counts, and 16 at once on 2 cores took a broker under `ulimit -n 300`
/// past its limit at a restart.
func parallelMap<T: Sendable>(
    _ count: Int, width: Int = min(16, max(2, ProcessInfo.processInfo.activeProcessorCount)), _ body: @escaping @Sendable (Int) -> T
) -> [T] {
    guard count > 1 else { return (0..<max(0, count)).map(body) }
    let results = ParallelResults<T>(count)
    let next = ParallelCounter()
    let completed = ParallelCounter()
    let allDone = DispatchSemaphore(value: 0)
    // Each thread, and the caller, takes jobs until none is left; whoever completes the last
    // one says so. The caller working too means every job is done even if no thread started.
    let work: @Sendable () -> Void = {
        while true {
            let index = next.value.wrappingAdd(1, ordering: .relaxed).oldValue
            guard index < count else { return }
            let value = body(index)
            results.values.withLock { $0[index] = value }
            if completed.value.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == count { allDone.signal() }
        }
    }
    for _ in 1..<min(width, count) {
        let thread = Thread(block: work)
        thread.name = "tidemark.parallel"
        thread.start()
    }
    work()
    allDone.wait()
    return results.values.withLock { $0.map { $0! } }
}

private final class ParallelResults<T: Sendable>: Sendable {
    let values: Mutex<[T?]>
    init(_ count: Int) { values = Mutex(Array(repeating: nil, count: count)) }
}

private final class ParallelCounter: Sendable {
    let value = Atomic<Int>(0)
}

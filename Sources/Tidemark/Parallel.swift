import Dispatch
import Synchronization

/// Runs `body` for `0..<count` on up to `width` threads and returns the results in order.
/// For many small blocking jobs (opening and closing thousands of partitions: their fsyncs
/// overlap, and the filesystem commits them together).
func parallelMap<T: Sendable>(_ count: Int, width: Int = 16, _ body: @escaping @Sendable (Int) -> T) -> [T] {
    guard count > 1 else { return (0..<max(0, count)).map(body) }
    let results = ParallelResults<T>(count)
    let next = ParallelCounter()
    let queue = DispatchQueue(label: "tidemark.parallel", attributes: .concurrent)
    let group = DispatchGroup()
    for _ in 0..<min(width, count) {
        queue.async(group: group) {
            while true {
                let index = next.value.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < count else { return }
                let value = body(index)
                results.values.withLock { $0[index] = value }
            }
        }
    }
    group.wait()
    return results.values.withLock { $0.map { $0! } }
}

private final class ParallelResults<T: Sendable>: Sendable {
    let values: Mutex<[T?]>
    init(_ count: Int) { values = Mutex(Array(repeating: nil, count: count)) }
}

private final class ParallelCounter: Sendable {
    let value = Atomic<Int>(0)
}

#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SystemPackage

/// A seam for tests: makes chosen storage syscalls fail with a chosen errno, so full disks
/// (ENOSPC), I/O errors (EIO) and interrupted calls (EINTR) are tested without root, a
/// tmpfs or a broken disk; or makes them slow (`slow`), for a disk whose fdatasync takes
/// milliseconds whatever the machine's own disk does. In the spirit of swift-system's errno
/// mocking.
///
/// Every storage syscall wrapper asks `fault(for:path:)` first. With nothing armed that is
/// one relaxed atomic load. A fault matches by operation and by a substring of the file's
/// path, so tests running in parallel (each in its own directory) do not disturb each other.
/// An injected EINTR is seen by the wrapper's retry loop exactly like a real one.
///
/// Concurrency: the armed faults live in a `Mutex`; `armed` only says whether to look.
public enum StorageFaults {
    public enum Operation: String, Sendable, CaseIterable {
        case open, write, read, sync, allocate, map, truncate, rename, syncDirectory, createDirectory, remove
        /// A read that must not wait for the disk (preadv2 `RWF_NOWAIT`): inject EAGAIN for
        /// a deterministic page-cache miss. (A file dropped from the page cache is not enough:
        /// the kernel starts reading it back on the miss, and a fast disk can finish before the
        /// read looks again; measured here, 24 of 200 such reads of a 700-byte file succeeded.)
        case readNoWait
    }

    struct Fault: Sendable {
        var operation: Operation
        var errno: Errno
        var pathContains: String
        /// Matching calls still to let through before failing.
        var skip: Int
        /// Matching calls still to fail; `Int.max` for every one.
        var remaining: Int
    }

    struct Slowdown: Sendable {
        var operation: Operation
        var nanoseconds: UInt64
        var pathContains: String
    }

    private static let armed = Atomic<Bool>(false)
    private static let faults = Mutex<[Fault]>([])
    private static let slowdowns = Mutex<[Slowdown]>([])

    /// Makes every `operation` on paths containing `pathContains` take `nanoseconds` longer
    /// (the calling thread sleeps first), until `clear`.
    public static func slow(_ operation: Operation, by nanoseconds: UInt64, pathContains: String) {
        precondition(!pathContains.isEmpty, "scope a slowdown to a path")
        slowdowns.withLock { $0.append(Slowdown(operation: operation, nanoseconds: nanoseconds, pathContains: pathContains)) }
        armed.store(true, ordering: .releasing)
    }

    /// Fails `operation` on paths containing `pathContains` with `errno`: the first `skip`
    /// matching calls succeed, then `times` fail (`nil`: every one until `clear`).
    public static func inject(
        _ operation: Operation, _ errno: Errno, pathContains: String, skip: Int = 0, times: Int? = 1
    ) {
        precondition(!pathContains.isEmpty, "scope a fault to a path")
        faults.withLock {
            $0.append(Fault(operation: operation, errno: errno, pathContains: pathContains, skip: skip, remaining: times ?? .max))
        }
        armed.store(true, ordering: .releasing)
    }

    /// Removes the faults whose scope starts with `pathPrefix` (a test's directory), or all.
    public static func clear(pathContains pathPrefix: String? = nil) {
        let slowed = slowdowns.withLock { list -> Bool in
            if let pathPrefix { list.removeAll { $0.pathContains.hasPrefix(pathPrefix) } } else { list.removeAll() }
            return !list.isEmpty
        }
        faults.withLock { list in
            if let pathPrefix { list.removeAll { $0.pathContains.hasPrefix(pathPrefix) } } else { list.removeAll() }
            armed.store(!list.isEmpty || slowed, ordering: .releasing)
        }
    }

    /// The errno a syscall on `path` must fail with now, or nil to go ahead.
    @inline(__always)
    static func fault(for operation: Operation, path: String) -> Errno? {
        guard armed.load(ordering: .acquiring) else { return nil }
        let delay = slowdowns.withLock { list in
            list.first { $0.operation == operation && path.contains($0.pathContains) }?.nanoseconds ?? 0
        }
        if delay > 0 {
            var span = timespec(tv_sec: Int(delay / 1_000_000_000), tv_nsec: Int(delay % 1_000_000_000))
            var left = timespec()
            while nanosleep(&span, &left) != 0 { span = left }
        }
        return faults.withLock { list -> Errno? in
            guard let index = list.firstIndex(where: { $0.operation == operation && path.contains($0.pathContains) })
            else { return nil }
            if list[index].skip > 0 {
                list[index].skip -= 1
                return nil
            }
            let errno = list[index].errno
            if list[index].remaining != .max { list[index].remaining -= 1 }
            if list[index].remaining == 0 { list.remove(at: index) }
            return errno
        }
    }
}

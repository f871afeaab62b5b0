#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A bound on the segment log files that a set of logs keep open (by default every log of the
/// process: descriptors are a per-process resource, `RLIMIT_NOFILE`).
///
/// A segment holding its `.log` descriptor counts one (indexes are mapped and hold none). When
/// an open takes the count past `limit`, the opener evicts the files of the least recently used
/// logs until the count is back at `lowWater` (80% of the limit), so sweeps are rare even when
/// every log is busy. A log whose lock is taken is in use and skipped, so the bound is soft by
/// the number of concurrent openers. An evicted active segment keeps its mapped indexes and
/// reopens its file on next use (one open(2) of a cached path); an evicted inactive segment
/// closes whole and reopens as any cold segment does. Readers and the flusher hold their own
/// `SharedFile` reference, so an eviction never closes a descriptor under a read in flight; a
/// flush of an evicted active segment reopens it (fdatasync acts on the file, not the
/// descriptor, and Linux reports a writeback error to the first descriptor that has not seen it).
///
/// Concurrency: the count and each log's last use are atomics; `registry` is a `Mutex` held to
/// add or remove a log and to copy the list, never while taking a log's lock. The sweep runs
/// on the opener's thread, under the opener's own log lock, and only ever *tries* other logs'
/// locks, so it cannot deadlock; one sweep runs at a time (`sweeping`).
public final class OpenFileBudget: Sendable {
    /// The budget every log uses unless told otherwise: half the soft `RLIMIT_NOFILE` (the other
    /// half is for sockets and short-lived files), at most 65,536; under a limit below 512, half
    /// of what is left after 96 for the process's own (at least 32), so that connections and
    /// the rest still fit: running out of descriptors can end the process (libdispatch's
    /// worker monitor aborts when it cannot open /proc).
    public static let shared = OpenFileBudget(limit: defaultLimit())

    public static func defaultLimit() -> Int {
        var current = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &current) == 0 else { return 512 }
        return limit(forSoftLimit: UInt64(current.rlim_cur))
    }

    /// The budget for a soft descriptor limit (RLIM_INFINITY is the largest value: capped).
    public static func limit(forSoftLimit soft: UInt64) -> Int {
        soft < 512 ? Int(max(32, (Int64(soft) - 96) / 2)) : Int(min(soft / 2, 65_536))
    }

    private let limitValue: Atomic<Int>
    private let heldCount = Atomic<Int>(0)
    private let sweeping = Atomic<Bool>(false)
    private let sweepCount = Atomic<Int>(0)
    private let evictionCount = Atomic<Int>(0)
    private let registry = Mutex<[ObjectIdentifier: Entry]>([:])

    /// A registered log: held weakly (a log dropped without `close()` must still deinit), in a
    /// class so that a sweep walking thousands of them copies references, not weak slots.
    private final class Entry {
        weak var log: PartitionLog?
        let use: LogFileUse
        init(log: PartitionLog, use: LogFileUse) {
            self.log = log
            self.use = use
        }
    }

    public init(limit: Int) {
        precondition(limit >= 1, "an open-file budget needs room for one file")
        limitValue = Atomic(limit)
    }

    /// Files held open now (over every log of this budget).
    public var held: Int { heldCount.load(ordering: .relaxed) }
    public var limit: Int {
        get { limitValue.load(ordering: .relaxed) }
        set { limitValue.store(max(1, newValue), ordering: .relaxed) }
    }
    /// How many sweeps ran and how many files they closed (for tests and metrics).
    public var sweeps: Int { sweepCount.load(ordering: .relaxed) }
    public var evictions: Int { evictionCount.load(ordering: .relaxed) }
    /// Where a sweep stops: 80% of the limit, so that with every log busy (more logs in use
    /// than the limit) a sweep runs once per fifth of the limit's opens, not at every open.
    var lowWater: Int { max(1, limit - max(limit / 5, 1)) }

    func register(_ log: PartitionLog, use: LogFileUse) {
        registry.withLock { $0[ObjectIdentifier(log)] = Entry(log: log, use: use) }
    }

    func remove(_ id: ObjectIdentifier) {
        _ = registry.withLock { $0.removeValue(forKey: id) }
    }

    /// Counts a file `opener` just opened (under its log's lock), sweeping when over the limit.
    func opened(by opener: LogFileUse) {
        if heldCount.add(1, ordering: .relaxed).newValue > limit { sweep(sparing: opener) }
    }

    func closed() {
        heldCount.subtract(1, ordering: .relaxed)
    }

    /// Sweeps when the count is over the limit: after opening many logs at once
    /// (`parallelMap`), whose sweeps spared the logs being opened, in use then.
    public func settle() {
        if held > limit { sweep() }
    }

    /// Evicts the least recently used logs' files until the count is at `lowWater`, sparing
    /// `opener`'s log (its lock is held by this thread: a mutex is not recursive).
    func sweep(sparing opener: LogFileUse? = nil) {
        guard sweeping.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        defer { sweeping.store(false, ordering: .releasing) }
        sweepCount.add(1, ordering: .relaxed)
        // Only logs holding files are candidates (at most about `limit` of them, however many
        // logs there are); their logs are resolved after sorting, and only as far as needed.
        var candidates: [(entry: Entry, lastUsed: UInt64)] = registry.withLock { entries in
            var list: [(entry: Entry, lastUsed: UInt64)] = []
            for entry in entries.values where entry.use.held > 0 && entry.use !== opener {
                list.append((entry, entry.use.lastUsed))
            }
            return list
        }
        candidates.sort { $0.lastUsed < $1.lastUsed }
        let target = lowWater
        for candidate in candidates {
            if heldCount.load(ordering: .relaxed) <= target { break }
            guard let log = candidate.entry.log else { continue }
            evictionCount.add(log.evictFiles(), ordering: .relaxed)
        }
    }
}

/// One log's share of an `OpenFileBudget`: how many of its segments hold a file and when it
/// was last used (monotonic nanoseconds). Shared by the log and its segments; atomics only.
final class LogFileUse: Sendable {
    let budget: OpenFileBudget
    private let heldCount = Atomic<Int>(0)
    private let lastUsedNanoseconds = Atomic<UInt64>(0)

    init(budget: OpenFileBudget) {
        self.budget = budget
        touch()
    }

    var held: Int { heldCount.load(ordering: .relaxed) }
    var lastUsed: UInt64 { lastUsedNanoseconds.load(ordering: .relaxed) }

    func touch(_ now: UInt64 = monotonicNanoseconds()) {
        lastUsedNanoseconds.store(now, ordering: .relaxed)
    }

    func opened() {
        heldCount.add(1, ordering: .relaxed)
        budget.opened(by: self)
    }

    func closed() {
        heldCount.subtract(1, ordering: .relaxed)
        budget.closed()
    }
}

import CoreMetrics
import Dispatch
import Logging
import Synchronization
import TidemarkStorage

/// The engine's metrics, through swift-metrics (an embedding process picks the backend;
/// `tidemark serve` bootstraps Prometheus): per topic, bytes and records produced and bytes
/// fetched; the duration of each fdatasync.
///
/// Handles are resolved once per topic (when its partitions open) and kept on each
/// `PartitionState`, so an append or a read does one atomic add per counter, no lookup.
/// Derived values (offsets, lag, sizes, queue depths) are not pushed: the HTTP module
/// computes them at scrape time from the engine's own answers.
///
/// Concurrency: `topics` (a Mutex) owns the table of per-topic handles; handles themselves
/// are the backend's (atomic) objects.
public final class EngineMetrics: Sendable {
    /// One topic's traffic counters.
    public final class TopicTraffic: Sendable {
        let bytesIn: Counter
        let bytesOut: Counter
        let recordsIn: Counter

        init(topic: String, factory: any MetricsFactory) {
            let labels = [("topic", topic)]
            bytesIn = Counter(label: MetricName.bytesIn, dimensions: labels, factory: factory)
            bytesOut = Counter(label: MetricName.bytesOut, dimensions: labels, factory: factory)
            recordsIn = Counter(label: MetricName.recordsProduced, dimensions: labels, factory: factory)
        }

        func destroy() {
            for counter in [bytesIn, bytesOut, recordsIn] { counter.destroy() }
        }
    }

    let factory: any MetricsFactory
    private let topics = Mutex<[String: TopicTraffic]>([:])
    /// One fdatasync of a partition log (seconds in Prometheus).
    let fsync: Timer

    /// An fdatasync slower than this is logged (at most one line per 10 s).
    let slowFsyncNanoseconds: UInt64
    private let lastSlowFsyncLog = Atomic<UInt64>(0)
    let logger: Logger

    public init(factory: any MetricsFactory, slowFsyncMs: Int64 = 1000, logger: Logger = Logger(label: "tidemark.engine")) {
        self.factory = factory
        self.slowFsyncNanoseconds = UInt64(max(1, slowFsyncMs)) * 1_000_000
        self.logger = logger
        fsync = Timer(label: MetricName.fsyncDuration, preferredDisplayUnit: .seconds, factory: factory)
    }

    /// The topic's counters (made on first use).
    func traffic(_ topic: String) -> TopicTraffic {
        topics.withLock { table in
            if let found = table[topic] { return found }
            let made = TopicTraffic(topic: topic, factory: factory)
            table[topic] = made
            return made
        }
    }

    /// A deleted topic's series go (a topic made again under the name starts from zero).
    func forget(_ topic: String) {
        topics.withLock { $0.removeValue(forKey: topic) }?.destroy()
    }

    /// What a partition log calls after each fdatasync.
    var syncObserver: PartitionLog.SyncObserver {
        { [self] nanoseconds, directory in
            fsync.recordNanoseconds(Int64(clamping: nanoseconds))
            if nanoseconds >= slowFsyncNanoseconds { slowFsync(nanoseconds, directory) }
        }
    }

    private func slowFsync(_ nanoseconds: UInt64, _ directory: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        let last = lastSlowFsyncLog.load(ordering: .relaxed)
        guard now &- last >= 10_000_000_000 || last == 0,
            lastSlowFsyncLog.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged
        else { return }
        logger.warning(
            "slow fsync: the disk took this long to make appended data durable",
            metadata: ["ms": "\(nanoseconds / 1_000_000)", "log": "\(directory)"])
    }
}

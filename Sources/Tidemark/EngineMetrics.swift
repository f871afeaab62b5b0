import CoreMetrics
import Synchronization

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

    public init(factory: any MetricsFactory) {
        self.factory = factory
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
    var syncObserver: @Sendable (UInt64) -> Void {
        let fsync = self.fsync
        return { nanoseconds in fsync.recordNanoseconds(Int64(clamping: nanoseconds)) }
    }
}

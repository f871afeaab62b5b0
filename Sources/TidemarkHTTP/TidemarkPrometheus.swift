import Prometheus
import Tidemark

/// The Prometheus backend for swift-metrics as Tidemark wants it: request durations in
/// buckets that resolve a loopback round trip (100 µs) up to a slow long poll (10 s), and
/// fsync durations from 50 µs (a cached write barrier) to 2.5 s (a saturated disk). Short
/// bucket lists keep a histogram record cheap (it walks the buckets under a lock).
public enum TidemarkPrometheus {
    public static let requestBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(1),
        .seconds(10),
    ]
    public static let fsyncBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100),
        .milliseconds(500), .milliseconds(2500),
    ]

    public static func factory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = requestBuckets
        factory.durationHistogramBuckets = [
            MetricName.requestDuration: requestBuckets,
            MetricName.fsyncDuration: fsyncBuckets,
        ]
        return factory
    }
}

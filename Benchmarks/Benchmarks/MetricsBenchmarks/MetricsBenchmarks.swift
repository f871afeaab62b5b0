import Benchmark
import CoreMetrics
import Dispatch
import Prometheus
import Tidemark
import TidemarkHTTP

// Issue #13: what metrics add to one request, measured as the server and the engine record
// them, on the same swift-prometheus backend `tidemark serve` bootstraps: the request
// counter, the duration histogram (12 buckets, under its lock) and two clock reads (the
// Kafka front), bytes and records counters (the engine's append). Two threads record on the
// same handles at once, as two event loops do. Compare ns per request with the server CPU
// a request costs (run_enqueue.sh: ~25 us unbatched; a 1,000-message kcat batch: ~200 us).

let requestsPerThread = 1_000_000

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .throughput], timeUnits: .milliseconds, warmupIterations: 1,
        maxDuration: .seconds(10), maxIterations: 10)

    Benchmark("metrics per request: 2 threads x 1M (counter + histogram + 2 clock reads + 2 engine counters)") { benchmark in
        let registry = PrometheusCollectorRegistry()
        let factory = TidemarkPrometheus.factory(registry: registry)
        let requests = Counter(label: MetricName.requests, dimensions: [("api", "Produce")], factory: factory)
        let duration = Timer(
            label: MetricName.requestDuration, dimensions: [("api", "Produce")], preferredDisplayUnit: .seconds, factory: factory)
        let bytesIn = Counter(label: MetricName.bytesIn, dimensions: [("topic", "jobs")], factory: factory)
        let recordsIn = Counter(label: MetricName.recordsProduced, dimensions: [("topic", "jobs")], factory: factory)
        for _ in benchmark.scaledIterations {
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                for _ in 0..<requestsPerThread {
                    let started = DispatchTime.now().uptimeNanoseconds
                    bytesIn.increment(by: 270)
                    recordsIn.increment(by: 1)
                    requests.increment()
                    duration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started) + 20_000)
                }
            }
        }
        blackHole(registry.emitToString().count)
    }

    Benchmark("baseline: 2 threads x 1M (2 clock reads only)") { benchmark in
        for _ in benchmark.scaledIterations {
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                var sum: UInt64 = 0
                for _ in 0..<requestsPerThread {
                    let started = DispatchTime.now().uptimeNanoseconds
                    sum &+= DispatchTime.now().uptimeNanoseconds - started
                }
                blackHole(sum)
            }
        }
    }
}

import CoreMetrics
import Synchronization
import Tidemark
import TidemarkWire

/// The Kafka front's own metrics, through swift-metrics (the embedding process picks the
/// backend; `tidemark serve` uses Prometheus): per Kafka API, requests, errors and a duration
/// histogram; connections open and accepted.
///
/// Handles are resolved once (here, per API) so the request path does one atomic add and one
/// histogram record per request, no lookup; error series are made on first use (the error
/// path), under a Mutex.
final class RequestMetrics: Sendable {
    struct PerApi: Sendable {
        let requests: Counter
        let duration: Timer
    }

    let factory: any MetricsFactory
    /// Indexed by the API key's number (Kafka's keys are below 128): no hashing per request.
    private let perApi: [PerApi?]
    private let errors = Mutex<[String: Counter]>([:])
    let connectionsActive: Meter
    let connections: Counter
    let connectionsRefused: [ConnectionLimiter.Refusal: Counter]
    /// Why the broker closed a connection (`tidemark_connections_closed_total`).
    enum CloseReason: String, CaseIterable {
        case malformed, error, idle
        case frameTimeout = "frame_timeout"
        case notReading = "not_reading"
        case failed = "request_failed"
        case responseMemory = "response_memory"
    }
    let connectionsClosed: [CloseReason: Counter]

    init(factory: any MetricsFactory) {
        self.factory = factory
        var perApi = [PerApi?](repeating: nil, count: 128)
        for api in ApiKey.allCases where (0..<128).contains(Int(api.rawValue)) {
            let labels = [("api", api.kafkaName)]
            perApi[Int(api.rawValue)] = PerApi(
                requests: Counter(label: MetricName.requests, dimensions: labels, factory: factory),
                duration: Timer(label: MetricName.requestDuration, dimensions: labels, preferredDisplayUnit: .seconds, factory: factory))
        }
        self.perApi = perApi
        connectionsActive = Meter(label: MetricName.connectionsActive, dimensions: [("listener", "kafka")], factory: factory)
        connections = Counter(label: MetricName.connections, dimensions: [("listener", "kafka")], factory: factory)
        var refused: [ConnectionLimiter.Refusal: Counter] = [:]
        for refusal in [ConnectionLimiter.Refusal.maxConnections, .maxConnectionsPerIp] {
            refused[refusal] = Counter(
                label: MetricName.connectionsRefused, dimensions: [("listener", "kafka"), ("limit", refusal.rawValue)], factory: factory)
        }
        connectionsRefused = refused
        var closed: [CloseReason: Counter] = [:]
        for reason in CloseReason.allCases {
            closed[reason] = Counter(
                label: MetricName.connectionsClosed, dimensions: [("listener", "kafka"), ("reason", reason.rawValue)], factory: factory)
        }
        connectionsClosed = closed
    }

    /// One request answered (or refused) after `nanoseconds`.
    func record(_ api: ApiKey, nanoseconds: Int64, outcome: RequestOutcome) {
        let index = Int(api.rawValue)
        guard index >= 0, index < perApi.count, let handles = perApi[index] else { return }
        handles.requests.increment()
        handles.duration.recordNanoseconds(nanoseconds)
        switch outcome {
        case .close: error(api, "MALFORMED_OR_REFUSED")
        case .failed: error(api, "FAILED_CLOSED")
        case .overResponseMemory: error(api, "OVER_RESPONSE_MEMORY")
        case .respond, .silent: break
        }
    }

    /// A response carried this error code (per partition or top level).
    func error(_ api: ApiKey, _ name: String, count: Int = 1) {
        let key = "\(api.rawValue)/\(name)"
        let counter = errors.withLock { table -> Counter in
            if let found = table[key] { return found }
            let made = Counter(
                label: MetricName.requestErrors, dimensions: [("api", api.kafkaName), ("error", name)], factory: factory)
            table[key] = made
            return made
        }
        counter.increment(by: Int64(count))
    }
}

extension ApiKey {
    /// Kafka's own name of the API (ApiVersions, Produce, ...), as metrics label it.
    public var kafkaName: String {
        let raw = "\(self)"
        return raw.prefix(1).uppercased() + raw.dropFirst()
    }
}

import Logging
import OTel
import ServiceLifecycle
import Synchronization
import Tracing

/// `--otlp-endpoint URL`: the broker's own spans (produce handling, with the producer's
/// context as parent) exported over OTLP/HTTP by swift-otel (protobuf; the standard
/// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json`, `OTEL_SERVICE_NAME`, `OTEL_SDK_DISABLED`
/// environment variables are honoured). swift-otel is linked into the executable only: the
/// libraries depend on swift-distributed-tracing's API alone.
///
/// Lifecycle: the exporter and batch processor run as a ServiceLifecycle group in a Task;
/// `shutdown()` asks them to stop gracefully, which flushes what is queued.
final class TraceExport: Sendable {
    private let group: ServiceGroup
    private let running: Task<Void, Never>
    private let logger: Logger
    /// Set when a stop asks the export to finish.
    private let stopping: Flag

    /// How long a stop waits for queued spans to go out. A collector that takes connections
    /// and answers nothing held a stop for an export timeout per queued batch (16 s, where
    /// the README promises well under a second); past this, they are dropped, and the log
    /// says so.
    static let flushBound: Duration = .milliseconds(500)

    /// Bootstraps `InstrumentationSystem` with an OTLP tracer sending to `endpoint` (a base
    /// URL such as http://collector:4318, or the full .../v1/traces URL).
    init(endpoint: String, logger: Logger) throws {
        var configuration = OTel.Configuration.default
        configuration.serviceName = "tidemark"
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.endpoint =
            endpoint.hasSuffix("/v1/traces") ? endpoint : endpoint.trimmingSuffix("/") + "/v1/traces"
        configuration.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        var groupConfiguration = ServiceGroupConfiguration(
            services: [.init(service: backend.service)], gracefulShutdownSignals: [], logger: logger)
        // The flush at a stop is bounded (`shutdown`): past it, the export is cancelled.
        groupConfiguration.maximumGracefulShutdownDuration = Self.flushBound
        let group = ServiceGroup(configuration: groupConfiguration)
        self.group = group
        self.logger = logger
        let stopping = Flag()
        self.stopping = stopping
        running = Task {
            do {
                try await group.run()
            } catch {
                // After a stop asked (`stopping`), the flush cut short: `shutdown` says so.
                if !stopping.isSet { logger.error("trace export stopped", metadata: ["error": "\(error)"]) }
            }
        }
    }

    /// Flushes queued spans and stops the exporter, waiting at most about twice `flushBound`:
    /// the group cancels the export past `flushBound`, and a cancellation that does not end
    /// it is not waited for either (the process is exiting).
    func shutdown() async {
        stopping.set()
        await group.triggerGracefulShutdown()
        let running = self.running
        let once = Flag()
        let finished = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            Task {
                await running.value
                if once.set() { continuation.resume(returning: true) }
            }
            Task {
                try? await Task.sleep(for: Self.flushBound * 2)
                if once.set() { continuation.resume(returning: false) }
            }
        }
        if !finished {
            logger.warning("trace export did not finish at the stop; its queued spans are dropped", metadata: ["waited": "\(Self.flushBound * 2)"])
        }
    }
}

/// A flag set once; `set` tells its first caller (which of two tasks resumes a continuation).
private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    @discardableResult
    func set() -> Bool { !value.exchange(true, ordering: .acquiringAndReleasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}

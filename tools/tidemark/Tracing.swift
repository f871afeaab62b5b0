import Logging
import OTel
import ServiceLifecycle
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
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: backend.service)], gracefulShutdownSignals: [], logger: logger))
        self.group = group
        running = Task {
            do { try await group.run() } catch { logger.error("trace export stopped", metadata: ["error": "\(error)"]) }
        }
    }

    /// Flushes queued spans and stops the exporter.
    func shutdown() async {
        await group.triggerGracefulShutdown()
        await running.value
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}

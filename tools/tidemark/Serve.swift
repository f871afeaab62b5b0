import ArgumentParser
import Foundation
import Logging
import NIOCore
import CoreMetrics
import Prometheus
import Tidemark
import TidemarkHTTP
import TidemarkServer
import TidemarkStorage

#if canImport(Glibc)
import Glibc
#endif

/// `tidemark serve`: a broker node speaking the Kafka protocol.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a broker node that speaks the Kafka wire protocol.")

    @Option(help: "Data directory (log.dirs).") var data: String?
    @Option(help: "Address to listen on (default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on (0: any free port; default 9092).") var port: Int?
    @Option(help: "Host advertised to clients (default: --host).") var advertisedHost: String?
    @Option(help: "Port advertised to clients (default: the bound port).") var advertisedPort: Int?
    @Option(help: "Partitions of auto-created topics (num.partitions).") var defaultPartitions: Int?
    @Option(help: "Create topics that clients ask for: true or false (auto.create.topics.enable).") var autoCreateTopics: Bool?
    @Option(help: "Largest request frame in bytes (socket.request.max.bytes).") var maxRequestBytes: Int?
    @Option(help: "Request bytes read or queued over all connections before big frames wait (queued.max.request.bytes).")
    var queuedMaxRequestBytes: Int?
    @Option(help: "Close a connection whose request frame is not complete after this many ms.")
    var frameTimeoutMs: Int64?
    @Option(help: "Close a connection idle this many ms (connections.max.idle.ms).")
    var connectionsMaxIdleMs: Int64?
    @Option(help: "Event loop threads (default: one per core).") var eventLoops: Int?
    @Option(
        name: .customLong("config"),
        help: "A broker setting under its Kafka name, KEY=VALUE (repeatable), e.g. log.retention.hours=24, num.partitions=6.")
    var configs: [String] = []
    @Option(help: "A server.properties file of Kafka broker settings (--config and the flags above override it).")
    var configFile: String?
    @Option(help: "Address of the HTTP listener: the web console, /api, /metrics, /healthz, /readyz (default: --host when it is loopback or a token is given, else 127.0.0.1).")
    var httpHost: String?
    @Option(help: "Port of the HTTP listener (0: off).") var httpPort: Int = 9644
    @Option(help: "Least severe log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info
    @Option(help: "Log lines as text or json (one object per line), on standard error.") var logFormat: LogFormat = .text
    @Option(help: "Token the console's actions (offset reset, requeue) require; needed to serve HTTP beyond loopback.")
    var httpAuthToken: String?
    @Option(help: "A file holding the auth token (its first line), instead of --http-auth-token.")
    var httpAuthTokenFile: String?
    @Option(help: "Export the broker's spans over OTLP/HTTP to this collector (e.g. http://localhost:4318).")
    var otlpEndpoint: String?

    /// Kafka-named settings from the file, then --config, then the flags.
    func brokerConfig() throws -> BrokerConfig {
        var settings = BrokerConfig()
        do {
            if let configFile {
                guard let text = try? String(contentsOfFile: configFile, encoding: .utf8) else {
                    throw ValidationError("cannot read --config-file \(configFile)")
                }
                try settings.setAll(try BrokerConfig.properties(text))
            }
            for entry in configs {
                guard let equals = entry.firstIndex(of: "=") else { throw ValidationError("--config needs KEY=VALUE, got '\(entry)'") }
                try settings.set(
                    entry[..<equals].trimmingCharacters(in: .whitespaces), entry[entry.index(after: equals)...].trimmingCharacters(in: .whitespaces))
            }
            try settings.checked()
        } catch let error as BrokerConfig.Failure {
            throw ValidationError(error.description)
        }
        if let data { settings.dataDirectory = data }
        if let host { settings.server.host = host }
        if let port { settings.server.port = port }
        if let advertisedHost { settings.server.advertisedHost = advertisedHost }
        if let advertisedPort { settings.server.advertisedPort = advertisedPort }
        if let defaultPartitions { settings.server.defaultPartitions = defaultPartitions }
        if let autoCreateTopics { settings.server.autoCreateTopics = autoCreateTopics }
        if let maxRequestBytes { settings.server.maxRequestBytes = maxRequestBytes }
        if let queuedMaxRequestBytes { settings.server.queuedMaxRequestBytes = queuedMaxRequestBytes }
        if let frameTimeoutMs { settings.server.frameTimeoutMs = frameTimeoutMs }
        if let connectionsMaxIdleMs { settings.server.connectionsMaxIdleMs = connectionsMaxIdleMs }
        if let eventLoops { settings.server.eventLoops = eventLoops }
        let server = settings.server
        guard (0...65535).contains(server.port) else { throw ValidationError("--port must be in 0...65535") }
        guard server.defaultPartitions >= 1 else { throw ValidationError("--default-partitions must be at least 1") }
        guard server.maxRequestBytes >= 1024 else { throw ValidationError("--max-request-bytes must be at least 1024") }
        guard server.queuedMaxRequestBytes >= 1024 else { throw ValidationError("--queued-max-request-bytes must be at least 1024") }
        guard server.frameTimeoutMs > 0, server.connectionsMaxIdleMs > 0 else { throw ValidationError("timeouts must be positive") }
        if let loops = server.eventLoops, loops < 1 { throw ValidationError("--event-loops must be at least 1") }
        return settings
    }

    func validate() throws {
        let settings = try brokerConfig()
        guard (0...65535).contains(httpPort) else { throw ValidationError("--http-port must be in 0...65535") }
        let token = try authToken()
        if httpPort != 0, token == nil, !Self.isLoopback(Self.httpAddress(given: httpHost, kafkaHost: settings.server.host, token: token)) {
            throw ValidationError(
                "the HTTP listener (console, with its actions) binds beyond loopback only with --http-auth-token or --http-auth-token-file")
        }
    }

    /// Where the HTTP listener binds: --http-host; else the Kafka listener's address when a
    /// token is given or that address is loopback; else loopback. A broker serving Kafka on
    /// every interface (`--host 0.0.0.0`, or Kafka's `listeners=PLAINTEXT://:9092`) without a
    /// token starts, its console on 127.0.0.1 (it was refused at start).
    static func httpAddress(given: String?, kafkaHost: String, token: String?) -> String {
        if let given { return given }
        return token != nil || isLoopback(kafkaHost) ? kafkaHost : "127.0.0.1"
    }

    /// The console's token: --http-auth-token, or the first line of --http-auth-token-file.
    func authToken() throws -> String? {
        if let httpAuthToken {
            // Blank (white space only) is no token: refused where one is needed, as an empty one is.
            let token = httpAuthToken.trimmingCharacters(in: .whitespaces)
            if !token.isEmpty { return token }
        }
        guard let httpAuthTokenFile else { return nil }
        guard let text = try? String(contentsOfFile: httpAuthTokenFile, encoding: .utf8),
            let line = text.split(whereSeparator: \.isNewline).first
        else { throw ValidationError("cannot read a token from --http-auth-token-file \(httpAuthTokenFile)") }
        let token = String(line).trimmingCharacters(in: .whitespaces)
        guard !token.isEmpty else {
            throw ValidationError("--http-auth-token-file \(httpAuthTokenFile) holds no token (its first line is blank)")
        }
        return token
    }

    /// Raises the soft descriptor limit to the hard one (at most 2^20), as Redis and Go
    /// programs do: half of it goes to segment files (the open-file budget), the rest to
    /// connections. A soft limit of 1,024 would otherwise cap a node at a few hundred clients.
    static func raiseDescriptorLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        let wanted = min(limit.rlim_max, 1 << 20)
        guard wanted > limit.rlim_cur else { return }
        let old = limit.rlim_cur
        limit.rlim_cur = wanted
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            // The process-wide budget may have been sized already (option defaults are made
            // while the command line is parsed): size it again from the new limit.
            OpenFileBudget.shared.limit = OpenFileBudget.defaultLimit()
            logger.info("raised the descriptor limit (ulimit -n)", metadata: ["from": "\(old)", "to": "\(wanted)"])
        }
    }

    /// A listen failure in words: the system's for a failed call ("Address already in use"),
    /// with `busyHint` when the address is taken.
    static func reason(_ error: any Error, busyHint: String) -> String {
        guard let io = error as? IOError else { return "\(error)" }
        return String(cString: strerror(io.errnoCode)) + (io.errnoCode == EADDRINUSE ? " (\(busyHint))" : "")
    }

    /// localhost, ::1 or an IPv4 address in 127.0.0.0/8 (not any name starting "127.": a
    /// DNS name such as 127.example.com may point anywhere).
    static func isLoopback(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return host == "localhost" || host == "::1"
            || (parts.count == 4 && parts[0] == "127" && parts.allSatisfy { !$0.isEmpty && $0.count <= 3 && UInt8($0) != nil })
    }

    func run() async throws {
        // A server outlives whoever reads its output: a reader that goes away (`| head -1`, a
        // supervisor gone) is an EPIPE to ignore, never a reason to die; a descriptor closed
        // at start is /dev/null, never the number of a file the broker opens.
        StopSignals.fillClosedStandardDescriptors()
        signal(SIGPIPE, SIG_IGN)
        // SIGTERM, SIGINT and SIGHUP stop the broker cleanly from here on: one that comes while it
        // starts (recovery can take seconds) stops it once started (see StopSignals).
        let stopped = try StopSignals.install()
        bootstrapLogging(format: logFormat, level: logLevel)
        let logger = Logger(label: "tidemark")
        // Before the broker's options exist: the open-file budget is sized from this limit.
        Self.raiseDescriptorLimit(logger: logger)
        var settings = try brokerConfig()
        if !settings.unservedListeners.isEmpty {
            logger.warning(
                "listeners beyond the first are not served: a Tidemark node listens on one address (point clients at the first)",
                metadata: ["served": "\(settings.server.host):\(settings.server.port)", "not served": "\(settings.unservedListeners.joined(separator: ", "))"])
        }
        for note in settings.behavesOtherwise { logger.warning("\(note)") }
        if !settings.withoutEffect.isEmpty {
            logger.notice(
                "Kafka broker settings with no effect on one Tidemark node (accepted as Kafka would, not used)",
                metadata: ["settings": "\(settings.withoutEffect.joined(separator: ", "))"])
        }
        settings.server.brokerConfigEntries = settings.describe.map { BrokerConfigEntry(name: $0.name, value: $0.value, isDefault: $0.isDefault) }
        let config = settings.server
        // Absolute, as Kafka reports log.dirs (DescribeLogDirs, logs): a relative --data is
        // the directory it names where the broker was started.
        let data = URL(fileURLWithPath: settings.dataDirectory).standardizedFileURL.path
        let host = config.host

        // Metrics: the engine and the Kafka front record through swift-metrics; this process
        // backs it with one Prometheus registry, which /metrics emits.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(TidemarkPrometheus.factory(registry: registry))
        let traces = try otlpEndpoint.map { try TraceExport(endpoint: $0, logger: Logger(label: "tidemark.otel")) }

        // The HTTP listener comes up first: /healthz answers during recovery, /readyz once
        // the Kafka listener accepts connections.
        let health = HealthRoutes()
        var http: HTTPServer? = nil
        if httpPort != 0 {
            let httpHost = Self.httpAddress(given: httpHost, kafkaHost: host, token: try authToken())
            do {
                let httpLogger = Logger(label: "tidemark.http")
                // Its connections fit the descriptor limit with the rest (a sixteenth of a
                // small one): see DescriptorPlan.
                var limits = HTTPServer.Limits()
                limits.maxConnections = DescriptorPlan.current(eventLoops: settings.server.eventLoops ?? System.coreCount).http
                http = try await HTTPServer.start(
                    host: httpHost, port: httpPort, routes: [health], limits: limits, logger: httpLogger,
                    listenerHandler: { AcceptPauseHandler(logger: httpLogger) })
            } catch {
                throw CLIError("cannot listen for HTTP on \(httpHost):\(httpPort): \(Self.reason(error, busyHint: "--http-port sets it")) (--http-port 0 turns the HTTP listener off)")
            }
            logger.info("HTTP listener up", metadata: ["address": "\(httpHost):\(http!.boundPort)", "paths": "/ (console) /api /metrics /healthz /readyz"])
        }

        let broker = try await Broker.open(dataDirectory: data, options: settings.broker)
        let server: KafkaServer
        do {
            server = try await KafkaServer.start(broker: broker, config: config, logger: logger)
        } catch {
            // Closed as on a stop: the next start finds the data directory clean.
            try? await broker.close()
            await http?.stop()
            let reason = Self.reason(error, busyHint: "another broker on that port? --port sets it")
            throw CLIError("cannot listen on \(host):\(config.port): \(reason)")
        }
        let advertised = "\(config.effectiveAdvertisedHost):\(config.advertisedPort ?? server.boundPort)"
        let identity = NodeIdentity(brokerId: Int(config.nodeId), address: advertised, version: TidemarkVersion.current)
        var console: ConsoleRoutes? = nil
        if let http {
            http.add(MetricsRoutes(broker: broker, registry: registry, identity: identity))
            console = ConsoleRoutes(
                broker: broker, registry: registry, identity: identity, authToken: try authToken(),
                tokenForReads: !Self.isLoopback(Self.httpAddress(given: httpHost, kafkaHost: host, token: try authToken())))
            http.add(console!)
        }
        if let signalNumber = StopSignals.first {
            logger.info("stopping: a signal came while starting", metadata: ["signal": "\(StopSignals.name(signalNumber))"])
        } else {
            health.isReady = true
            // One line on stdout, written at once: scripts wait for it.
            let httpNote = http.map { ", http \(Self.httpAddress(given: httpHost, kafkaHost: host, token: try? authToken())):\($0.boundPort)" } ?? ""
            Output.unchecked("tidemark ready: listening on \(host):\(server.boundPort), data \(data)\(httpNote)\n", to: STDOUT_FILENO)
            for await signalNumber in stopped {
                logger.info("stopping", metadata: ["signal": "\(StopSignals.name(signalNumber))"])
                break
            }
        }
        health.isReady = false
        console?.stop()
        await server.drain()
        await http?.stop()
        // Closed while the Kafka loops still run: a request still waiting when the grace ran
        // out is answered by the close onto a loop that takes it.
        let closed: (any Error)?
        do {
            try await broker.close()
            closed = nil
        } catch {
            closed = error
        }
        await server.shutdownLoops()
        if let closed { throw closed }
        await traces?.shutdown()
        logger.info("stopped cleanly")
    }
}

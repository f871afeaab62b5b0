import ArgumentParser
import Dispatch
import Foundation
import Logging
import Tidemark
import TidemarkServer

#if canImport(Glibc)
import Glibc
#endif

/// `tidemark serve`: a broker node speaking the Kafka protocol.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a broker node that speaks the Kafka wire protocol.")

    @Option(help: "Data directory.") var data = "./tidemark-data"
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 9092
    @Option(help: "Host advertised to clients (default: --host).") var advertisedHost: String?
    @Option(help: "Port advertised to clients (default: the bound port).") var advertisedPort: Int?
    @Option(help: "Partitions of auto-created topics.") var defaultPartitions = 1
    @Option(help: "Create topics that clients ask for: true or false.") var autoCreateTopics = true
    @Option(help: "Largest request frame in bytes.") var maxRequestBytes = 100 << 20
    @Option(help: "Request bytes read or queued over all connections before big frames wait (queued.max.request.bytes).")
    var queuedMaxRequestBytes = 256 << 20
    @Option(help: "Close a connection whose request frame is not complete after this many ms.")
    var frameTimeoutMs: Int64 = 60_000
    @Option(help: "Close a connection idle this many ms (connections.max.idle.ms).")
    var connectionsMaxIdleMs: Int64 = 600_000
    @Option(help: "Event loop threads (default: one per core).") var eventLoops: Int?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        guard defaultPartitions >= 1 else { throw ValidationError("--default-partitions must be at least 1") }
        guard maxRequestBytes >= 1024 else { throw ValidationError("--max-request-bytes must be at least 1024") }
        guard queuedMaxRequestBytes >= 1024 else { throw ValidationError("--queued-max-request-bytes must be at least 1024") }
        guard frameTimeoutMs > 0, connectionsMaxIdleMs > 0 else { throw ValidationError("timeouts must be positive") }
        if let eventLoops, eventLoops < 1 { throw ValidationError("--event-loops must be at least 1") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = Logger(label: "tidemark")
        var config = ServerConfig()
        config.host = host
        config.port = port
        config.advertisedHost = advertisedHost
        config.advertisedPort = advertisedPort
        config.defaultPartitions = defaultPartitions
        config.autoCreateTopics = autoCreateTopics
        config.maxRequestBytes = maxRequestBytes
        config.queuedMaxRequestBytes = queuedMaxRequestBytes
        config.frameTimeoutMs = frameTimeoutMs
        config.connectionsMaxIdleMs = connectionsMaxIdleMs
        config.eventLoops = eventLoops

        let broker = try await Broker.open(dataDirectory: data)
        let server = try await KafkaServer.start(broker: broker, config: config, logger: logger)
        // Wait for SIGINT or SIGTERM.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let (stopped, continuation) = AsyncStream<Int32>.makeStream()
        let sources = [SIGINT, SIGTERM].map { signalNumber in
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { continuation.yield(signalNumber) }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        // One line on stdout, flushed at once: scripts wait for it.
        FileHandle.standardOutput.write(Data("tidemark ready: listening on \(host):\(server.boundPort), data \(data)\n".utf8))
        for await signalNumber in stopped {
            logger.info("stopping", metadata: ["signal": "\(signalNumber)"])
            break
        }
        await server.stop()
        try await broker.close()
        logger.info("stopped cleanly")
    }
}

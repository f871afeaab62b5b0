#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Prometheus
import Synchronization
import Logging
import TestSupport
import Testing
import Tidemark
@testable import TidemarkHTTP
import TidemarkServer
import TidemarkStorage
import TidemarkWire

/// A blocking HTTP/1.1 exchange over a raw socket (independent of the server's NIO code):
/// sends `raw`, reads until the server closes, returns (status, headers, body).
/// The blocking socket work runs on its own thread, not on the cooperative pool (2 threads
/// on this machine), where it could starve the server's own tasks.
func httpExchange(port: Int, _ raw: String) async throws -> (status: Int, head: String, body: String) {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try blockingHTTPExchange(port: port, raw) })
        }
    }
}

func blockingHTTPExchange(port: Int, _ raw: String) throws -> (status: Int, head: String, body: String) {
    let client = try RawClient(port: port)
    client.send(Array(raw.utf8))
    var bytes: [UInt8] = []
    while let chunk = client.receiveSome() { bytes += chunk }
    let text = String(decoding: bytes, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { return (0, text, "") }
    let head = String(text[..<split.lowerBound])
    let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
    return (status, head, String(text[split.upperBound...]))
}

func httpGet(port: Int, _ path: String) async throws -> (status: Int, head: String, body: String) {
    try await httpExchange(port: port, "GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

extension RawClient {
    func receiveSome() -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 65536)
        let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, 65536, 0) }
        return n > 0 ? Array(out[..<n]) : nil
    }
}

/// One parsed sample of a Prometheus text exposition.
struct Sample: Hashable {
    var name: String
    var labels: [String: String]
}

/// Parses text format 0.0.4 (what the tests compare against the clients' truth); fails on a
/// line it cannot read, so a malformed exposition fails the test.
func parseExposition(_ text: String) throws -> (samples: [Sample: Double], types: [String: String]) {
    var samples: [Sample: Double] = [:]
    var types: [String: String] = [:]
    for line in text.split(separator: "\n") {
        if line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            types[String(parts[2])] = String(parts[3])
            continue
        }
        if line.hasPrefix("#") { continue }
        var name = ""
        var labels: [String: String] = [:]
        var rest = Substring(line)
        if let brace = line.firstIndex(of: "{") {
            name = String(line[..<brace])
            var cursor = line.index(after: brace)
            while line[cursor] != "}" {
                let equals = line[cursor...].firstIndex(of: "=")!
                let key = String(line[cursor..<equals])
                var i = line.index(equals, offsetBy: 2)  // past ="
                var value = ""
                while line[i] != "\"" {
                    if line[i] == "\\" {
                        i = line.index(after: i)
                        value.append(line[i] == "n" ? "\n" : line[i])
                    } else {
                        value.append(line[i])
                    }
                    i = line.index(after: i)
                }
                labels[key] = value
                cursor = line.index(after: i)
                if line[cursor] == "," { cursor = line.index(after: cursor) }
            }
            rest = line[line.index(after: cursor)...]
        } else {
            let space = line.firstIndex(of: " ")!
            name = String(line[..<space])
            rest = line[space...]
        }
        guard let value = Double(rest.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "+Inf", with: "inf")) else {
            throw TidemarkError(.invalidRequest, "unreadable sample line: \(line)")
        }
        samples[Sample(name: name, labels: labels)] = value
    }
    return (samples, types)
}

/// Routes answering /big with 32 MiB (far more than loopback buffers hold), anything else "ok".
struct BigAnswerRoutes: HTTPRoutes {
    static let size = 32 << 20
    func respond(to request: HTTPRequest) async -> HTTPResponse? {
        HTTPResponse(body: .bytes(request.path == "/big" ? [UInt8](repeating: 0x41, count: Self.size) : Array("ok".utf8)))
    }
}

@Suite(.serialized) struct HTTPMetricsTests {
    /// A broker, its Kafka front and its HTTP listener, all recording into one registry.
    struct Node {
        let dir: TemporaryDirectory
        let broker: Broker
        let server: KafkaServer
        let http: HTTPServer
        let health: HealthRoutes
        let registry: PrometheusCollectorRegistry

        func stop() async throws {
            await http.stop()
            await server.stop()
            try await broker.close()
        }

        func scrape() async throws -> [Sample: Double] {
            let answer = try await httpGet(port: http.boundPort, "/metrics")
            #expect(answer.status == 200)
            #expect(answer.head.contains("text/plain; version=0.0.4"))
            return try parseExposition(answer.body).samples
        }
    }

    /// A client that pipelines requests and never reads: answers stop once NIO holds 64 KiB
    /// unsent (one more is held), instead of every answer being buffered; reading them
    /// afterwards gets them all.
    @Test func answersNobodyReadsAreNotBufferedWithoutBound() async throws {
        final class Counting: HTTPRoutes {
            let calls = Atomic<Int>(0)
            func respond(to request: HTTPRequest) async -> HTTPResponse? {
                calls.add(1, ordering: .relaxed)
                return .text(String(repeating: "x", count: 50_000))
            }
        }
        let route = Counting()
        let http = try await HTTPServer.start(host: "127.0.0.1", port: 0, routes: [route])
        let client = try RawClient(port: http.boundPort)
        // 1,000 requests (~40 KB) at once, for 50 MB of answers.
        client.send(Array(String(repeating: "GET /big HTTP/1.1\r\nHost: x\r\n\r\n", count: 1000).utf8))
        try await Task.sleep(for: .seconds(1))
        let answered = route.calls.load(ordering: .relaxed)
        #expect(answered < 500, "\(answered) answers written into a socket nobody reads")
        // Reading them all gets every answer: count the status lines as they stream in (the
        // carried tail is one byte short of a status line, so none is counted twice). Read on
        // a Dispatch thread: the routes run as tasks, and a blocking recv must not hold one of
        // the cooperative pool's threads (two on this machine).
        let status = Array("HTTP/1.1 200".utf8)
        let fd = client.fd
        let answers = await withCheckedContinuation { (done: CheckedContinuation<Int, Never>) in
            DispatchQueue.global().async {
                var answers = 0
                var carry: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 65536)
                while answers < 1000 {
                    let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, 65536, 0) }
                    guard n > 0 else { break }
                    let window = carry + chunk[..<n]
                    var index = 0
                    while index + status.count <= window.count {
                        if window[index] == status[0] && Array(window[index..<(index + status.count)]) == status { answers += 1 }
                        index += 1
                    }
                    carry = Array(window.suffix(status.count - 1))
                }
                done.resume(returning: answers)
            }
        }
        withExtendedLifetime(client) {}
        #expect(answers == 1000)
        #expect(route.calls.load(ordering: .relaxed) == 1000)
        await http.stop()
    }

    /// An event stream whose client reads nothing is closed once a chunk has stayed unwritten
    /// for the idle timeout (it used to hold its connection and stream slot forever). Chunks of
    /// 100 KB and of 16 KB: a chunk's unsent rest can be below NIO's low watermark (always, for
    /// 16 KB chunks), which leaves the channel writable while nothing moves; closing on
    /// writability alone kept such a stream open for ever (a test that failed now and then).
    @Test(arguments: [100_000, 16_000]) func aStreamNobodyReadsIsClosed(chunkBytes: Int) async throws {
        struct Endless: HTTPRoutes {
            let chunkBytes: Int
            func respond(to request: HTTPRequest) async -> HTTPResponse? {
                let (stream, continuation) = AsyncStream<[UInt8]>.makeStream(bufferingPolicy: .bufferingNewest(2))
                let producer = Task { [chunkBytes] in
                    while !Task.isCancelled {
                        continuation.yield([UInt8](repeating: 65, count: chunkBytes))
                        try? await Task.sleep(for: .milliseconds(1))
                    }
                }
                continuation.onTermination = { _ in producer.cancel() }
                return HTTPResponse(body: .stream(stream))
            }
        }
        var limits = HTTPServer.Limits()
        limits.idleTimeout = .milliseconds(500)
        let http = try await HTTPServer.start(host: "127.0.0.1", port: 0, routes: [Endless(chunkBytes: chunkBytes)], limits: limits)
        let client = try RawClient(port: http.boundPort)
        client.send(Array("GET /events HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        // The stream has started (its first bytes read, on a Dispatch thread); then nothing
        // more is read.
        let handed = HandedOver(client)
        let first = await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: handed.value.receiveSome()) }
        }
        #expect(first.map { String(decoding: $0, as: UTF8.self).hasPrefix("HTTP/1.1 200") } == true)
        let deadline = ContinuousClock.now + .seconds(30)
        while http.openConnections > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(http.openConnections == 0)
        withExtendedLifetime(client) {}
        await http.stop()
    }

    /// Waits up to `seconds` for `condition`.
    static func until(_ seconds: Int, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !condition() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    }

    @Test func aRequestThatNeverCompletesIsClosed() async throws {
        var limits = HTTPServer.Limits()
        limits.requestTimeout = .milliseconds(300)
        let node = try await Self.start(limits: limits)
        let started = ContinuousClock.now
        // A head and 10 bytes of a declared 1,000-byte body, then nothing: closed, no answer.
        let answer = try await httpExchange(
            port: node.http.boundPort, "POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
        #expect(answer.status == 0)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(try await httpGet(port: node.http.boundPort, "/healthz").status == 200)
        try await node.stop()
    }

    /// A request line and headers sent a byte at a time (each byte kept the idle timeout at
    /// bay, and the request deadline started only with a whole head): closed at the request
    /// deadline. 128 such clients held every connection, /healthz included.
    @Test func aHeadDrippedByteByByteIsClosedAtTheRequestDeadline() async throws {
        var limits = HTTPServer.Limits()
        limits.requestTimeout = .milliseconds(500)
        let node = try await Self.start(limits: limits)
        let client = try RawClient(port: node.http.boundPort)
        let started = ContinuousClock.now
        client.send(Array("GET /metr".utf8))
        var open = true
        while open && ContinuousClock.now - started < .seconds(5) {
            try await Task.sleep(for: .milliseconds(100))
            client.send(Array("x".utf8))
            open = node.http.openConnections > 0
        }
        #expect(!open, "still open after \(ContinuousClock.now - started)")
        #expect(ContinuousClock.now - started < .seconds(3))
        #expect(try await httpGet(port: node.http.boundPort, "/healthz").status == 200)
        try await node.stop()
    }

    static func start(
        limits: HTTPServer.Limits = HTTPServer.Limits(), options: BrokerOptions = BrokerOptions(),
        directory: TemporaryDirectory? = nil, logger: Logger = Logger(label: "tidemark.server"),
        configure: (inout ServerConfig) -> Void = { _ in }
    ) async throws -> Node {
        let dir = directory ?? TemporaryDirectory()
        let registry = PrometheusCollectorRegistry()
        let factory = TidemarkPrometheus.factory(registry: registry)
        var options = options
        options.metricsFactory = factory
        let broker = try await Broker.open(dataDirectory: dir.path, options: options)
        var config = ServerConfig()
        config.port = 0
        config.metricsFactory = factory
        configure(&config)
        let server = try await KafkaServer.start(broker: broker, config: config, logger: logger)
        let health = HealthRoutes()
        let http = try await HTTPServer.start(host: "127.0.0.1", port: 0, routes: [health], limits: limits)
        http.add(
            MetricsRoutes(
                broker: broker, registry: registry,
                identity: NodeIdentity(brokerId: 0, address: "127.0.0.1:\(server.boundPort)", version: TidemarkVersion.current)))
        return Node(dir: dir, broker: broker, server: server, http: http, health: health, registry: registry)
    }

    /// An embedded consumer polling one record at a time out of a backlog reads the batch that
    /// holds it, not the 1 MiB a poll may read per partition (it read and checked 1 MiB per
    /// record: 3 polls counted 3 MiB out, and a consume-process-commit loop of 5,000 jobs of
    /// 100 B took 132 ms where it takes 86). What it read is what `tidemark_bytes_out_total`
    /// counts for the topic.
    @Test func aPollForOneRecordReadsTheBatchThatHoldsIt() async throws {
        let node = try await Self.start()
        try await node.broker.createTopic("jobs", partitions: 1)
        let appender = try Appender(broker: node.broker, topic: "jobs", partition: 0, batchBytes: 64 * 1024)
        for i in 0..<20_000 { try appender.append(value: Array("job-\(i)".utf8) + [UInt8](repeating: 0x2e, count: 90)) }
        try appender.flush()
        let consumer = Consumer(broker: node.broker)
        try await consumer.assign(topic: "jobs", partition: 0, from: .earliest)
        var got: [String] = []
        for _ in 0..<3 { got += try await consumer.poll(maxRecords: 1).map { String(decoding: ($0.value ?? []).prefix(while: { $0 != 0x2e }), as: UTF8.self) } }
        #expect(got == ["job-0", "job-1", "job-2"])
        // A poll for many records still reads on, past the first batches, to its bound.
        let many = try await consumer.poll(maxRecords: 5_000)
        #expect(many.count == 5_000 && many.first?.offset == 3 && many.last?.offset == 5_002)
        let samples = try await node.scrape()
        let out = samples.filter { $0.key.name == "tidemark_bytes_out_total" && $0.key.labels["topic"] == "jobs" }.values.reduce(0, +)
        // Three reads of the first 64 KiB batch, then about 5,000 records' 500 KB, in whole
        // batches (~790 KB; it was 4.2 MB).
        #expect(out > 500_000 && out < 1_000_000, "\(out) bytes read")
        try await node.stop()
    }

    /// Connections closed for the client's doing are counted by reason, and said once a
    /// minute per reason and client host, naming what the client spoke: 20 HTTP requests and
    /// 20 TLS handshakes on the Kafka port gave 40 lines ("frame of 1195725856 bytes").
    @Test func connectionsClosedForTheClientsDoingAreCountedAndSaidOnce() async throws {
        let log = CapturedLog()
        let node = try await Self.start(logger: log.logger)
        for _ in 0..<20 {
            let http = try RawClient(port: node.server.boundPort)
            http.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            #expect(await http.closedWithoutAnswer())
            let tls = try RawClient(port: node.server.boundPort)
            tls.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
            #expect(await tls.closedWithoutAnswer())
        }
        let negative = try RawClient(port: node.server.boundPort)
        negative.send([0xff, 0xff, 0xff, 0xfb])
        #expect(await negative.closedWithoutAnswer())
        let samples = try await node.scrape()
        #expect(samples[Sample(name: "tidemark_connections_closed_total", labels: ["listener": "kafka", "reason": "malformed"])] == 41)
        #expect(samples[Sample(name: "tidemark_connections_closed_total", labels: ["listener": "kafka", "reason": "idle"])] == 0)
        let said = log.matching("connection error, closing")
        #expect(said.count == 1, "\(said.map(\.text))")
        #expect(said.first?.text.contains("an HTTP request on the Kafka listener") == true)
        #expect(said.first?.metadata["peer"]?.contains("127.0.0.1") == true)
        // A client that resets its connection: said in the system's words, not NIO's call.
        do {
            let reset = try RawClient(port: node.server.boundPort)
            reset.send([0, 0, 0, 4, 0, 18])  // half a frame: the server is reading
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(reset.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while log.matching("Connection reset by peer").isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let resets = log.matching("Connection reset by peer")
        #expect(resets.first?.metadata["error"] == "Connection reset by peer (errno 104)", "\(resets.map(\.text))")
        try await node.stop()
    }

    @Test func theOpenFileBudgetIsExposed() async throws {
        var options = BrokerOptions()
        options.openFileBudget = OpenFileBudget(limit: 5)
        let node = try await Self.start(options: options)
        try await node.broker.createTopic("wide", partitions: 12)
        let producer = try await Producer(broker: node.broker)
        for p in 0..<12 { _ = try await producer.send(topic: "wide", key: nil, value: Array("w\(p)".utf8), partition: p) }
        let m = try await node.scrape()
        let open = try #require(m[Sample(name: "tidemark_log_open_files", labels: [:])])
        #expect(open >= 1 && open <= 5)
        #expect(m[Sample(name: "tidemark_log_open_files_limit", labels: [:])] == 5)
        #expect((m[Sample(name: "tidemark_log_file_evictions_total", labels: [:])] ?? 0) >= 7)
        try await node.stop()
    }

    /// Group commit is visible: passes and the durable appends they answered (their ratio is
    /// the messages per fsync).
    @Test func groupCommitIsExposed() async throws {
        let node = try await Self.start()
        try await node.broker.createTopic("durable", partitions: 1, config: TopicConfig(flushPolicy: .everyAppend))
        let producer = try await Producer(broker: node.broker)
        for i in 0..<5 { _ = try await producer.send(topic: "durable", key: nil, value: Array("d\(i)".utf8), partition: 0) }
        let m = try await node.scrape()
        let passes = try #require(m[Sample(name: "tidemark_log_group_commit_passes_total", labels: [:])])
        let waiters = try #require(m[Sample(name: "tidemark_log_group_commit_waiters_total", labels: [:])])
        #expect(passes >= 1 && passes <= 5)
        #expect(waiters >= 5 && waiters >= passes)
        try await node.stop()
    }

    @Test func kafkaExporterSeriesMatchTheBrokersTruth() async throws {
        let node = try await Self.start()
        let broker = node.broker
        try await broker.createTopic("orders", partitions: 3)
        let producer = try await Producer(broker: broker)
        for i in 0..<10 { _ = try await producer.send(topic: "orders", key: nil, value: Array("o\(i)".utf8), partition: i % 3) }
        // A group with commits on two of three partitions and nobody in it.
        _ = try await broker.groups.commitOffsets(
            groupId: "billing", offsets: [TopicPartition("orders", 0): CommittedOffset(offset: 2), TopicPartition("orders", 1): CommittedOffset(offset: 3)])
        let m = try await node.scrape()
        func v(_ name: String, _ labels: [String: String] = [:]) -> Double? { m[Sample(name: name, labels: labels)] }
        #expect(v("kafka_brokers") == 1)
        #expect(v("kafka_broker_info", ["id": "0", "address": "127.0.0.1:\(node.server.boundPort)"]) == 1)
        #expect(v("kafka_topic_partitions", ["topic": "orders"]) == 3)
        for p in 0..<3 {
            let (start, end) = try broker.offsets(topic: "orders", partition: p)
            let labels = ["topic": "orders", "partition": "\(p)"]
            #expect(v("kafka_topic_partition_current_offset", labels) == Double(end))
            #expect(v("kafka_topic_partition_oldest_offset", labels) == Double(start))
            #expect(v("kafka_topic_partition_leader", labels) == 0)
            #expect(v("kafka_topic_partition_replicas", labels) == 1)
            #expect(v("kafka_topic_partition_in_sync_replica", labels) == 1)
            #expect(v("kafka_topic_partition_leader_is_preferred", labels) == 1)
            #expect(v("kafka_topic_partition_under_replicated_partition", labels) == 0)
            #expect((v("tidemark_log_size_bytes", labels) ?? 0) > 0)
        }
        // Committed partitions: offset and lag; the uncommitted one: -1 and -1.
        let g = ["consumergroup": "billing", "topic": "orders"]
        #expect(v("kafka_consumergroup_current_offset", g.merging(["partition": "0"]) { $1 }) == 2)
        #expect(v("kafka_consumergroup_lag", g.merging(["partition": "0"]) { $1 }) == 2)  // 4 records, committed 2
        #expect(v("kafka_consumergroup_current_offset", g.merging(["partition": "1"]) { $1 }) == 3)
        #expect(v("kafka_consumergroup_lag", g.merging(["partition": "1"]) { $1 }) == 0)
        #expect(v("kafka_consumergroup_current_offset", g.merging(["partition": "2"]) { $1 }) == -1)
        #expect(v("kafka_consumergroup_lag", g.merging(["partition": "2"]) { $1 }) == -1)
        #expect(v("kafka_consumergroup_current_offset_sum", g) == 4)  // 2 + 3 - 1, as kafka_exporter sums
        #expect(v("kafka_consumergroup_lag_sum", g) == 2)
        #expect(v("kafka_consumergroup_members", ["consumergroup": "billing"]) == 0)
        #expect((v("tidemark_consumergroup_lag_seconds", g) ?? -1) >= 0)
        // Engine metrics through swift-metrics: bytes and records in per topic.
        #expect(v("tidemark_records_produced_total", ["topic": "orders"]) == 10)
        #expect((v("tidemark_bytes_in_total", ["topic": "orders"]) ?? 0) > 0)
        await producer.flush()
        try await node.stop()
    }

    /// A group whose members are assigned a topic but have committed nothing yet (a new queue
    /// whose first job never finishes) is counted in tidemark_consumergroup_uncommitted_partitions;
    /// kafka_exporter's lag series leave such a topic out, and so do ours. It was in no series.
    @Test func assignedPartitionsWithoutACommitAreCounted() async throws {
        let node = try await Self.start()
        let broker = node.broker
        try await broker.createTopic("fresh", partitions: 2)
        try await broker.createTopic("newer", partitions: 1)
        let producer = try await Producer(broker: broker)
        for i in 0..<6 { _ = try await producer.send(topic: "fresh", key: nil, value: Array("j\(i)".utf8), partition: i % 2) }
        await producer.flush()
        // A classic consumer-protocol group: its leader assigned itself both partitions.
        let joined = await broker.groups.join(
            JoinGroupRequest(
                groupId: "workers", clientId: "w", sessionTimeoutMs: 30_000, rebalanceTimeoutMs: 30_000,
                protocolType: "consumer", protocols: [("range", [])]))
        let assignment = ConsumerProtocol.encodeAssignment([TopicPartition("fresh", 0), TopicPartition("fresh", 1)])
        _ = await broker.groups.sync(groupId: "workers", memberId: joined.memberId, generationId: joined.generationId, assignments: [joined.memberId: assignment])
        // A consumer-protocol (KIP-848) group: its member is assigned "newer" at its heartbeat.
        _ = broker.consumerGroupHeartbeat(
            ConsumerHeartbeat(groupId: "modern", memberId: "m", memberEpoch: 0, rebalanceTimeoutMs: 60_000, subscribedTopicNames: ["newer"], clientId: "c"))
        let m = try await node.scrape()
        func v(_ name: String, _ labels: [String: String]) -> Double? { m[Sample(name: name, labels: labels)] }
        let uncommitted = "tidemark_consumergroup_uncommitted_partitions"
        #expect(v(uncommitted, ["consumergroup": "workers", "topic": "fresh"]) == 2)
        #expect(v(uncommitted, ["consumergroup": "modern", "topic": "newer"]) == 1)
        // As kafka_exporter: no lag series for a topic the group committed nothing to.
        #expect(v("kafka_consumergroup_lag", ["consumergroup": "workers", "topic": "fresh", "partition": "0"]) == nil)
        #expect(v("kafka_consumergroup_members", ["consumergroup": "workers"]) == 1)
        // Once it commits one partition: that one's lag, the other at -1 and still counted.
        _ = try await broker.groups.commitOffsets(
            groupId: "workers", memberId: joined.memberId, generationId: joined.generationId, offsets: [TopicPartition("fresh", 0): CommittedOffset(offset: 1)])
        let after = try await node.scrape()
        #expect(after[Sample(name: "kafka_consumergroup_lag", labels: ["consumergroup": "workers", "topic": "fresh", "partition": "0"])] == 2)
        #expect(after[Sample(name: "kafka_consumergroup_lag", labels: ["consumergroup": "workers", "topic": "fresh", "partition": "1"])] == -1)
        #expect(after[Sample(name: uncommitted, labels: ["consumergroup": "workers", "topic": "fresh"])] == 1)
        _ = try await broker.groups.commitOffsets(
            groupId: "workers", memberId: joined.memberId, generationId: joined.generationId, offsets: [TopicPartition("fresh", 1): CommittedOffset(offset: 0)])
        #expect(try await node.scrape()[Sample(name: uncommitted, labels: ["consumergroup": "workers", "topic": "fresh"])] == 0)
        try await node.stop()
    }

    /// A group id holding CR LF, a double quote and a backslash: escaped by Unicode scalar.
    /// ("\r\n" is one Swift Character, not equal to "\n": the line feed went out raw, and
    /// promtool refused the whole exposition.)
    @Test func labelValuesAreEscapedScalarByScalar() async throws {
        let node = try await Self.start()
        try await node.broker.createTopic("t", partitions: 1)
        let group = "x\r\ny\"z\\"
        _ = try await node.broker.groups.commitOffsets(groupId: group, offsets: [TopicPartition("t", 0): CommittedOffset(offset: 0)])
        let answer = try await httpGet(port: node.http.boundPort, "/metrics")
        let lines = Array(answer.body.utf8).split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
        let escaped = "consumergroup=\"x\r\\ny\\\"z\\\\\""
        #expect(lines.contains { $0.hasPrefix("kafka_consumergroup_current_offset{") && $0.contains(escaped) })
        // Every line is a comment or a whole sample: `name{labels} value`.
        #expect(lines.allSatisfy { $0.hasPrefix("#") || $0.isEmpty || $0.range(of: #"(?s)^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+$"#, options: .regularExpression) != nil })
        try await node.stop()
    }

    /// An offline partition (its directory could not be opened) has no offsets to report:
    /// no current or oldest offset series (they read -1, a fall), and no lag (it read 0 and
    /// resolved every lag alert when the partition broke).
    @Test func anOfflinePartitionReportsNoOffsetsAndNoLag() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        do {
            let broker = try await Broker.open(dataDirectory: dir.path)
            try await broker.createTopic("jobs", partitions: 2)
            let producer = try await Producer(broker: broker)
            for p in 0..<2 { _ = try await producer.send(topic: "jobs", key: nil, value: [1], partition: p) }
            _ = try await broker.groups.commitOffsets(
                groupId: "g", offsets: [TopicPartition("jobs", 0): CommittedOffset(offset: 0), TopicPartition("jobs", 1): CommittedOffset(offset: 0)])
            await producer.flush()
            try await broker.close()
        }
        StorageFaults.inject(.open, .permissionDenied, pathContains: dir.path + "/jobs-1/", times: nil)
        let node = try await Self.start(directory: dir)
        let m = try await node.scrape()
        let p0 = ["topic": "jobs", "partition": "0"]
        let p1 = ["topic": "jobs", "partition": "1"]
        #expect(m[Sample(name: "kafka_topic_partition_current_offset", labels: p0)] == 1)
        #expect(m[Sample(name: "kafka_topic_partition_current_offset", labels: p1)] == nil)
        #expect(m[Sample(name: "kafka_topic_partition_oldest_offset", labels: p1)] == nil)
        #expect(m[Sample(name: "kafka_topic_partition_leader", labels: p1)] == -1)
        #expect(m[Sample(name: "kafka_consumergroup_lag", labels: p0.merging(["consumergroup": "g"]) { $1 })] == 1)
        #expect(m[Sample(name: "kafka_consumergroup_lag", labels: p1.merging(["consumergroup": "g"]) { $1 })] == nil)
        #expect(m[Sample(name: "tidemark_partitions_offline", labels: [:])] == 1)
        try await node.stop()
    }

    /// A partition whose log a read found damaged is counted in `tidemark_partitions_damaged`
    /// (it still serves up to the damage), across a restart (its needs-repair mark), until
    /// `verify --repair` mends it. An SRE alerts on it; before, only a log line said so.
    @Test func aDamagedPartitionIsCountedUntilRepaired() async throws {
        let dir = TemporaryDirectory()
        let damaged = Sample(name: "tidemark_partitions_damaged", labels: [:])
        do {
            let broker = try await Broker.open(dataDirectory: dir.path)
            var config = TopicConfig()
            config.segmentBytes = 4096
            try await broker.createTopic("jobs", partitions: 2, config: config)
            for _ in 0..<8 {
                var builder = RecordBatchBuilder()
                builder.append(timestamp: Int64(Date().timeIntervalSince1970 * 1000), key: nil, value: [UInt8](repeating: 1, count: 1_500))
                _ = try await broker.append(topic: "jobs", partition: 0, batches: try builder.build())
            }
            try await broker.close()
        }
        // The oldest segment's first header overwritten (its magic byte).
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: dir.path + "/jobs-0/00000000000000000000.log"))
        try handle.seek(toOffset: 16)
        try handle.write(contentsOf: Data([0xFF]))
        try handle.close()
        var node = try await Self.start(directory: dir)
        #expect(try await node.scrape()[damaged] == 0)
        await #expect { _ = try await node.broker.fetch(topic: "jobs", partition: 0, offset: 0) } throws: {
            ($0 as? TidemarkError)?.code == .corruptMessage
        }
        #expect(try await node.scrape()[damaged] == 1)
        #expect(try node.broker.describeTopic("jobs").partitions.map { $0.damaged != nil } == [true, false])
        try await node.stop()
        node = try await Self.start(directory: dir)
        #expect(try await node.scrape()[damaged] == 1, "the damage was forgotten at the restart")
        try await node.stop()
        _ = try LogVerifier.repair(partitionDirectory: dir.path + "/jobs-0")
        node = try await Self.start(directory: dir)
        #expect(try await node.scrape()[damaged] == 0)
        try await node.stop()
    }

    @Test func requestMetricsCountWhatTheKafkaFrontAnswered() async throws {
        let node = try await Self.start()
        let client = try RawClient(port: node.server.boundPort)
        for i in 0..<3 {
            try client.request(.apiVersions, version: 3, correlation: Int32(i), ApiVersionsRequest())
            _ = await client.response()
        }
        // A fetch of a topic that does not exist: an error per partition, counted by name.
        var fetch = FetchRequest()
        fetch.maxWaitMs = 0
        var topic = FetchRequest.Topic()
        topic.topic = "nowhere"
        var partition = FetchRequest.Partition()
        partition.partitionMaxBytes = 1024
        topic.partitions = [partition]
        fetch.topics = [topic]
        try client.request(.fetch, version: 4, correlation: 7, fetch)
        _ = await client.response()
        // Errors of every API are counted, not only Produce's and Fetch's.
        var list = ListOffsetsRequest()
        var listed = ListOffsetsRequest.Topic()
        listed.name = "nowhere"
        listed.partitions = [ListOffsetsRequest.Partition()]
        list.topics = [listed]
        try client.request(.listOffsets, version: 1, correlation: 8, list)
        _ = await client.response()
        let m = try await node.scrape()
        #expect(m[Sample(name: "tidemark_kafka_request_errors_total", labels: ["api": "ListOffsets", "error": "UNKNOWN_TOPIC_OR_PARTITION"])] == 1)
        #expect(m[Sample(name: "tidemark_kafka_requests_total", labels: ["api": "ApiVersions"])] == 3)
        #expect(m[Sample(name: "tidemark_kafka_request_duration_seconds_count", labels: ["api": "ApiVersions"])] == 3)
        #expect(m[Sample(name: "tidemark_kafka_request_errors_total", labels: ["api": "Fetch", "error": "UNKNOWN_TOPIC_OR_PARTITION"])] == 1)
        #expect(m[Sample(name: "tidemark_connections_active", labels: ["listener": "kafka"])] == 1)
        #expect(m[Sample(name: "tidemark_connections_total", labels: ["listener": "kafka"])] == 1)
        try await node.stop()
    }

    /// The locks are 30 s on a timer clock the test moves (a real 200 ms lock could run out
    /// before a loaded run scraped it held).
    @Test func shareGroupQueueSeries() async throws {
        final class Timers: Sendable {
            let now = Atomic<Int64>(1_800_000_000_000)
            var read: @Sendable () -> Int64 { { [self] in now.load(ordering: .relaxed) } }
        }
        let timers = Timers()
        var options = BrokerOptions()
        options.groups.shareRecordLockDurationMs = 30_000
        options.maintenanceIntervalMs = 50
        options.timerClock = timers.read
        let node = try await Self.start(options: options)
        let broker = node.broker
        try await broker.createTopic("jobs", partitions: 1)
        let producer = try await Producer(broker: broker)
        for i in 0..<6 { _ = try await producer.send(topic: "jobs", key: nil, value: Array("j\(i)".utf8)) }
        let worker = try await ShareConsumer(broker: broker, group: "workers", topics: ["jobs"], mode: .explicit)
        var got: [ShareRecord] = []
        while got.count < 6 { got += try await worker.poll(maxRecords: 6 - got.count, timeout: .seconds(2)) }
        worker.acknowledge(got[0], .accept)
        worker.acknowledge(got[1], .accept)
        worker.acknowledge(got[2], .release)
        _ = try await worker.commit()
        let m = try await node.scrape()
        let q = ["group": "workers", "topic": "jobs"]
        #expect(m[Sample(name: "tidemark_queue_leases_in_flight", labels: q)] == 3)
        #expect(m[Sample(name: "tidemark_queue_available", labels: q)] == 1)
        #expect(m[Sample(name: "tidemark_queue_deliveries_total", labels: q)] == 6)
        #expect(m[Sample(name: "tidemark_queue_acks_total", labels: q.merging(["type": "accept"]) { $1 })] == 2)
        #expect(m[Sample(name: "tidemark_queue_acks_total", labels: q.merging(["type": "release"]) { $1 })] == 1)
        #expect((m[Sample(name: "tidemark_queue_oldest_unacked_age_seconds", labels: q)] ?? -1) >= 0)
        // The workers of the group, and the share-state log's bytes (no topic, but on the disk).
        #expect(m[Sample(name: "tidemark_queue_workers", labels: ["group": "workers"])] == 1)
        #expect((m[Sample(name: "tidemark_log_size_bytes", labels: ["topic": "__share_group_state", "partition": "0"])] ?? 0) > 0)
        // The held locks run out: lock expirations are counted, and the records are available.
        timers.now.add(31_000, ordering: .relaxed)
        var later = try await node.scrape()
        let deadline = ContinuousClock.now + .seconds(30)
        while later[Sample(name: "tidemark_queue_lease_expirations_total", labels: q)] != 3 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            later = try await node.scrape()
        }
        #expect(later[Sample(name: "tidemark_queue_lease_expirations_total", labels: q)] == 3)
        #expect(later[Sample(name: "tidemark_queue_leases_in_flight", labels: q)] == 0)
        #expect(later[Sample(name: "tidemark_queue_available", labels: q)] == 4)
        try await worker.close()
        #expect(try await node.scrape()[Sample(name: "tidemark_queue_workers", labels: ["group": "workers"])] == 0)
        await producer.flush()
        try await node.stop()
    }

    /// The queue's depth counts the jobs no worker has read yet: with 3,000 enqueued and 10
    /// taken, the series showed 246 available (what the share window had read) and nothing
    /// else: 2,744 waiting jobs were in no series. `tidemark_queue_unread` has them.
    @Test func theQueuesDepthCountsJobsNotReadYet() async throws {
        let node = try await Self.start(options: BrokerOptions())
        let broker = node.broker
        try await broker.createTopic("backlog", partitions: 1)
        let producer = try await Producer(broker: broker)
        let sent = await producer.send((0..<3_000).map { Producer.OutgoingRecord(topic: "backlog", key: nil, value: Array("job-\($0)".utf8)) })
        #expect(sent.allSatisfy { (try? $0.get()) != nil })
        let worker = try await ShareConsumer(broker: broker, group: "slow", topics: ["backlog"], mode: .explicit)
        var got: [ShareRecord] = []
        while got.count < 10 { got += try await worker.poll(maxRecords: 10 - got.count, timeout: .seconds(2)) }
        let m = try await node.scrape()
        let q = ["group": "slow", "topic": "backlog"]
        #expect(m[Sample(name: "tidemark_queue_leases_in_flight", labels: q)] == 10)
        let depth = ["available", "leases_in_flight", "delayed", "unread"].map { m[Sample(name: "tidemark_queue_\($0)", labels: q)] ?? -1 }
        #expect(depth.reduce(0, +) == 3_000, "\(depth)")
        #expect(depth[3] > 0)
        try await worker.close()
        try await node.stop()
    }

    /// Records acquired and then given back unsent (a share fetch's response was full) left
    /// the deliveries counter lower than a scrape in between had seen: Prometheus read a
    /// reset. The exported counter never goes down.
    @Test func queueCountersNeverGoDown() async throws {
        let node = try await Self.start()
        let broker = node.broker
        try await broker.createTopic("jobs", partitions: 1)
        let producer = try await Producer(broker: broker)
        for i in 0..<4 { _ = try await producer.send(topic: "jobs", key: nil, value: Array("j\(i)".utf8)) }
        await producer.flush()
        let tp = TopicPartition("jobs", 0)
        #expect(broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "w", memberId: "m", memberEpoch: 0, subscribedTopicNames: ["jobs"])).error == nil)
        _ = broker.shares.updateSession(
            group: "w", member: "m", epoch: 0, add: [tp], forget: [], acknowledgements: [:], allowRenew: false, view: broker.shareLogView)
        let acquired = broker.shares.acquire(group: "w", member: "m", partitions: [tp], maxRecords: 4, view: broker.shareLogView)
        #expect(acquired.first?.offsets.count == 4)
        let q = ["group": "w", "topic": "jobs"]
        let before = try await node.scrape()[Sample(name: "tidemark_queue_deliveries_total", labels: q)]
        #expect(before == 4)
        broker.shares.giveBack(group: "w", member: "m", tp, offsets: [2, 3], acquired: acquired.first?.ranges ?? [])
        let after = try await node.scrape()[Sample(name: "tidemark_queue_deliveries_total", labels: q)]
        #expect(after == 4, "a counter went from 4 to \(after ?? -1)")
        broker.shares.giveBack(group: "w", member: "m", tp, offsets: [0, 1], acquired: acquired.first?.ranges ?? [])
        let later = try await node.scrape()[Sample(name: "tidemark_queue_deliveries_total", labels: q)]
        #expect(later == 4, "a counter went from 4 to \(later ?? -1)")
        // Delivered again: the count goes on from there.
        #expect(broker.shares.acquire(group: "w", member: "m", partitions: [tp], maxRecords: 4, view: broker.shareLogView).first?.offsets.count == 4)
        let again = try await node.scrape()[Sample(name: "tidemark_queue_deliveries_total", labels: q)]
        #expect(again == 4, "the given-back deliveries are made again: \(again ?? -1)")
        try await node.stop()
    }

    @Test func healthReadinessAndHostileHTTPInput() async throws {
        var limits = HTTPServer.Limits()
        limits.maxBodyBytes = 1024
        limits.maxConnections = 4
        let node = try await Self.start(limits: limits)
        let port = node.http.boundPort
        #expect(try await httpGet(port: port, "/healthz").status == 200)
        #expect(try await httpGet(port: port, "/readyz").status == 503)
        node.health.isReady = true
        #expect(try await httpGet(port: port, "/readyz").status == 200)
        #expect(try await httpGet(port: port, "/no-such-page").status == 404)
        // A body over the limit: 413, and the server goes on serving.
        let big = String(repeating: "x", count: 4096)
        let refused = try await httpExchange(
            port: port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: \(big.utf8.count)\r\nConnection: close\r\n\r\n\(big)")
        #expect(refused.status == 413)
        // An oversized body declared up front is refused at once, not after it was sent.
        let early = try await httpExchange(
            port: port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n\(big)")
        #expect(early.status == 413)
        // Garbage instead of HTTP: 400 (NIO's parser), nothing else breaks.
        let garbage = try await httpExchange(port: port, "\u{01}\u{02}NOT HTTP AT ALL\r\n\r\n")
        #expect(garbage.status == 400 || garbage.status == 0)
        // Every connection held by a request that never finishes (a byte at a time, within the
        // request timeout): a health check still gets in, in the place of the connection that
        // waited longest, which is closed; the bound holds. (The new connection used to be
        // closed: four such clients kept /healthz out, and an orchestrator restarted the node.)
        let held = try (0..<4).map { _ in try RawClient(port: port) }
        for client in held { client.send(Array("GET /metrics HTTP/1.1\r\n".utf8)) }
        try await Self.until(30) { node.http.openConnections == 4 }
        #expect(try await httpGet(port: port, "/healthz").status == 200)
        #expect(await held[0].closedWithoutAnswer(), "the connection waiting longest was not closed")
        #expect(try await httpGet(port: port, "/healthz").status == 200)
        try await node.stop()
    }

    /// Scrapes whose time lags wait for the disk (each read of a batch header slowed to 400 ms)
    /// are made on the broker's report queue, off Swift's concurrency threads, and scrapes that
    /// arrive meanwhile share the one being made: three at once take about one scrape's time
    /// and read the disk once (they did the disk work side by side, each in its own task; then
    /// one after another), and a health check is answered meanwhile.
    @Test func scrapesThatReadTheDiskShareOneExposition() async throws {
        let node = try await Self.start()
        try await node.broker.createTopic("lagging", partitions: 1)
        let producer = try await Producer(broker: node.broker)
        for i in 0..<10 { _ = try await producer.send(topic: "lagging", key: nil, value: Array("\(i)".utf8)) }
        _ = try await node.broker.groups.commitOffsets(groupId: "behind", offsets: [TopicPartition("lagging", 0): CommittedOffset(offset: 0)])
        let scope = node.dir.path + "/lagging-0"
        StorageFaults.slow(.read, by: 400_000_000, pathContains: scope)
        defer { StorageFaults.clear(pathContains: scope) }
        let port = node.http.boundPort
        let alone = ContinuousClock.now
        #expect(try await httpGet(port: port, "/metrics").status == 200)
        let one = ContinuousClock.now - alone
        let started = ContinuousClock.now
        let scrapes = (0..<3).map { _ in
            Task.detached { () throws -> (Int, Duration) in
                let scraped = try await httpGet(port: port, "/metrics")
                #expect(scraped.body.contains("kafka_consumergroup_lag"))
                return (scraped.status, ContinuousClock.now - started)
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await httpGet(port: port, "/healthz").status == 200)
        // Answered while the scrapes wait for the disk, not after them (a bound in ms failed on
        // a loaded machine, where everything takes longer).
        let healthAnswered = ContinuousClock.now - started
        var took: [Duration] = []
        for scrape in scrapes {
            let (status, duration) = try await scrape.value
            #expect(status == 200)
            took.append(duration)
        }
        #expect(healthAnswered < took.min()!, "health answered at \(healthAnswered), scrapes at \(took)")
        #expect(took.max()! < one * 2, "\(took), one alone \(one): the scrapes did not share one exposition")
        try await node.stop()
    }

    /// A method a path does not take gets 405 with the methods it does take in `Allow` (RFC
    /// 9110 requires it); a path nobody has stays 404, whatever the method. (POST /metrics and
    /// POST / were 404; DELETE /api/nowhere was 405.)
    @Test func aMethodAPathDoesNotTakeIsAnswered405WithAllow() async throws {
        let (node, console) = try await ConsoleAPITests.startWithConsole()
        defer { console.stop() }
        let port = node.http.boundPort
        func ask(_ method: String, _ path: String) async throws -> (Int, String?) {
            let answer = try await httpExchange(port: port, "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            let allow = answer.head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("allow:") }
            return (answer.status, allow.map { String($0.dropFirst(6)).trimmingCharacters(in: .whitespaces) })
        }
        #expect(try await ask("POST", "/metrics") == (405, "GET, HEAD"))
        #expect(try await ask("DELETE", "/healthz") == (405, "GET, HEAD"))
        #expect(try await ask("PUT", "/") == (405, "GET, HEAD"))
        #expect(try await ask("DELETE", "/api/topics") == (405, "GET, HEAD"))
        // HEAD of the event stream: its headers, no stream (it took a stream's slot).
        let head = try await httpExchange(port: port, "HEAD /api/events HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        #expect(head.status == 200 && head.head.contains("text/event-stream") && head.body.isEmpty)
        #expect(try await ask("GET", "/api/groups/g/reset") == (405, "POST"))
        #expect(try await ask("DELETE", "/api/nowhere") == (404, nil))
        #expect(try await ask("POST", "/no-such-page") == (404, nil))
        try await node.stop()
    }

    /// At the bound with every connection being answered (here: routes still running), a new
    /// connection is closed at once: what is being answered is never cut to make room.
    @Test func connectionsBeingAnsweredAreNotClosedForNewOnes() async throws {
        final class Gate: HTTPRoutes {
            let open = Mutex(false)
            let entered = Mutex(0)
            func respond(to request: HTTPRequest) async -> HTTPResponse? {
                entered.withLock { $0 += 1 }
                while !open.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(10)) }
                return HTTPResponse(status: .ok, body: .bytes(Array("done".utf8)))
            }
        }
        let gate = Gate()
        var limits = HTTPServer.Limits()
        limits.maxConnections = 2
        let http = try await HTTPServer.start(host: "127.0.0.1", port: 0, routes: [gate], limits: limits)
        async let first = httpGet(port: http.boundPort, "/slow")
        async let second = httpGet(port: http.boundPort, "/slow")
        try await Self.until(30) { gate.entered.withLock { $0 } == 2 }
        let third = try? await httpGet(port: http.boundPort, "/other").status
        gate.open.withLock { $0 = true }
        #expect(third == 0)  // closed without an answer
        #expect(try await first.status == 200)
        #expect(try await second.status == 200)
        await http.stop()
    }

    /// An answer still being written (a large body to a client not reading it yet) is being
    /// answered too: at the bound, a new connection takes the place of an idle one, not of it.
    /// At the connection bound, with no connection waiting for a request: one whose answer
    /// has been going out for longer than `slowAnswer` (its client reads nothing) is closed
    /// to make room, and a health check gets in (it was refused: 128 clients that never read
    /// took every connection, and the probes with them).
    @Test func aStuckAnswerMakesRoomForAHealthCheck() async throws {
        var limits = HTTPServer.Limits()
        limits.maxConnections = 2
        limits.slowAnswer = .milliseconds(300)
        let http = try await HTTPServer.start(host: "127.0.0.1", port: 0, routes: [BigAnswerRoutes()], limits: limits)
        let stuck = try (0..<2).map { _ in try RawClient(port: http.boundPort) }
        for client in stuck { client.send(Array("GET /big HTTP/1.1\r\nHost: x\r\n\r\n".utf8)) }
        // Both answers start going out, and nobody reads them.
        try await Self.until(30) { http.openConnections == 2 }
        try await Task.sleep(for: .milliseconds(800))
        #expect(try await httpGet(port: http.boundPort, "/healthz").status == 200)
        withExtendedLifetime(stuck) {}
        await http.stop()
    }

    /// A client that shuts down its sending side after its request gets its answer (it got
    /// none: the connection closed at the end of its input).
    @Test func aHalfClosedClientIsAnswered() async throws {
        let node = try await Self.start()
        let client = try RawClient(port: node.http.boundPort)
        client.send(Array("GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n".utf8))
        shutdown(client.fd, Int32(SHUT_WR))
        let answer = await client.receiveOffLoop(12)
        #expect(answer.map { String(decoding: $0, as: UTF8.self) } == "HTTP/1.0 200")
        try await node.stop()
    }

    /// A keep-alive client that closes its side, after its answer or before it, has its
    /// connection closed once answered: it stayed half-closed (CLOSE-WAIT) for the idle
    /// timeout, 60 s, a descriptor per scrape up to the connection limit.
    @Test func aKeepAliveClientThatLeavesIsClosed() async throws {
        let http = try await HTTPServer.start(host: "127.0.0.1", port: 0, routes: [BigAnswerRoutes()], limits: HTTPServer.Limits())
        let after = try RawClient(port: http.boundPort)
        after.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(await after.receiveOffLoop(12).map { String(decoding: $0, as: UTF8.self) } == "HTTP/1.1 200")
        let before = try RawClient(port: http.boundPort)
        before.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        shutdown(before.fd, Int32(SHUT_WR))
        #expect(await before.receiveOffLoop(12).map { String(decoding: $0, as: UTF8.self) } == "HTTP/1.1 200")
        try await Self.until(10) { http.openConnections == 1 }
        #expect(http.openConnections == 1)
        shutdown(after.fd, Int32(SHUT_WR))
        try await Self.until(10) { http.openConnections == 0 }
        #expect(http.openConnections == 0)
        withExtendedLifetime([after, before]) {}
        await http.stop()
    }

    @Test func anAnswerBeingWrittenIsNotClosedForNewOnes() async throws {
        var limits = HTTPServer.Limits()
        limits.maxConnections = 2
        let http = try await HTTPServer.start(host: "127.0.0.1", port: 0, routes: [BigAnswerRoutes()], limits: limits)
        let reader = try RawClient(port: http.boundPort)
        reader.send(Array("GET /big HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let head = await reader.receiveOffLoop(32)  // the answer is being written
        #expect(head.map { String(decoding: $0, as: UTF8.self) }?.hasPrefix("HTTP/1.1 200") == true)
        let idle = try RawClient(port: http.boundPort)
        try await Self.until(30) { http.openConnections == 2 }
        #expect(try await httpGet(port: http.boundPort, "/other").status == 200)
        #expect(await idle.closedWithoutAnswer(), "the idle connection was not the one closed")
        // The large answer arrives whole (its head's rest, then the body).
        let rest = await reader.receiveOffLoop(BigAnswerRoutes.size)
        #expect(rest != nil, "the answer being written was cut")
        await http.stop()
    }
}

@Suite(.serialized) struct ConsoleAPITests {
    /// A node with the console on its HTTP listener; actions need the token "t0ken".
    static func startWithConsole() async throws -> (HTTPMetricsTests.Node, ConsoleRoutes) {
        let node = try await HTTPMetricsTests.start()
        let console = ConsoleRoutes(
            broker: node.broker, registry: node.registry,
            identity: NodeIdentity(brokerId: 0, address: "127.0.0.1:\(node.server.boundPort)", version: TidemarkVersion.current),
            authToken: "t0ken", tokenForReads: false)
        node.http.add(console)
        return (node, console)
    }

    /// A loopback console's API answers reads without the token only to requests addressed to
    /// a loopback name: a site that points its own name at 127.0.0.1 (DNS rebinding) read
    /// every record and dead letter through the browser of whoever opened it.
    @Test func readsAddressedToAnotherNameNeedTheToken() async throws {
        let (node, console) = try await Self.startWithConsole()
        func get(_ host: String, token: String? = nil) async throws -> Int {
            let tokenLine = token.map { "X-Tidemark-Token: \($0)\r\n" } ?? ""
            return try await httpExchange(
                port: node.http.boundPort, "GET /api/overview HTTP/1.1\r\nHost: \(host)\r\n\(tokenLine)Connection: close\r\n\r\n").status
        }
        #expect(try await get("localhost:\(node.http.boundPort)") == 200)
        #expect(try await get("127.0.0.1:\(node.http.boundPort)") == 200)
        #expect(try await get("[::1]:\(node.http.boundPort)") == 200)
        #expect(try await get("evil.example:\(node.http.boundPort)") == 401)
        #expect(try await get("127.0.0.1.evil.example") == 401)
        #expect(try await get("evil.example:\(node.http.boundPort)", token: "t0ken") == 200)
        // Through a proxy on this machine (nginx's default passes the upstream's name as Host):
        // its forwarding headers say the request came from elsewhere.
        func viaProxy(_ extra: String, path: String = "/api/overview", method: String = "GET", body: String = "") async throws -> Int {
            try await httpExchange(
                port: node.http.boundPort,
                "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(node.http.boundPort)\r\n\(extra)Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)").status
        }
        #expect(try await viaProxy("X-Forwarded-For: 192.0.2.9\r\n") == 401)
        #expect(try await viaProxy("Via: 1.1 proxy\r\n") == 401)
        #expect(try await viaProxy("Forwarded: for=192.0.2.9\r\nX-Tidemark-Token:  t0ken \r\n") == 200)
        // An action through it, from the page it served: its Origin is the proxy's name.
        let reset = #"{"topic":"none","to":"earliest"}"#
        #expect(try await viaProxy(
            "X-Forwarded-Host: console.example\r\nOrigin: https://console.example\r\nX-Tidemark-Token: t0ken\r\n", path: "/api/groups/g/reset",
            method: "POST", body: reset) == 404)
        #expect(try await viaProxy(
            "X-Forwarded-Host: console.example\r\nOrigin: https://evil.example\r\nX-Tidemark-Token: t0ken\r\n", path: "/api/groups/g/reset",
            method: "POST", body: reset) == 403)
        // The token in the query only for the event stream (elsewhere it lands in access logs).
        #expect(try await viaProxy("Via: 1.1 proxy\r\n", path: "/api/overview?token=t0ken") == 401)
        // HEAD wherever GET is.
        #expect(try await viaProxy("", path: "/api/topics", method: "HEAD") == 200)
        console.stop()
        try await node.stop()
    }

    /// A group id holding `/` (Kafka allows it): `/api/groups/a%2Fb` is group "a/b" (the path
    /// was decoded before it was split: 404), and `/api/queues/jobs%2Fdlq` is not group "jobs".
    @Test func namesHoldingSlashesAreOneSegment() async throws {
        let (node, console) = try await Self.startWithConsole()
        try await node.broker.createTopic("t", partitions: 1)
        _ = try await node.broker.groups.commitOffsets(groupId: "a/b", offsets: [TopicPartition("t", 0): CommittedOffset(offset: 0)])
        let answer = try await httpGet(port: node.http.boundPort, "/api/groups/a%2Fb")
        #expect(answer.status == 200)
        #expect(answer.body.contains("\"a\\/b\"") || answer.body.contains("\"a/b\""), "\(answer.body.prefix(200))")
        #expect(try await httpGet(port: node.http.boundPort, "/api/groups/a/b").status == 404)
        console.stop()
        try await node.stop()
    }

    /// Records of 50,000 empty headers each (100 KB on the wire, 1.2 MB decoded): a page
    /// counts them as decoded (it held every header of up to 100 such records, and its JSON
    /// listed them all), and shows 64 headers of each with their count.
    @Test func recordsOfManyHeadersMakeASmallPage() async throws {
        let (node, console) = try await Self.startWithConsole()
        try await node.broker.createTopic("bomb", partitions: 1)
        let producer = try await Producer(broker: node.broker)
        let headers = [RecordHeader](repeating: RecordHeader(key: "", value: nil), count: 50_000)
        for _ in 0..<10 { _ = try await producer.send(topic: "bomb", key: nil, value: Array("v".utf8), headers: headers) }
        let answer = try await httpGet(port: node.http.boundPort, "/api/topics/bomb/messages?partition=0&limit=100")
        #expect(answer.status == 200)
        #expect(answer.body.utf8.count < 256 << 10, "\(answer.body.utf8.count) bytes")
        let page = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
        let messages = page?["messages"] as? [[String: Any]] ?? []
        // 8 MiB of decoded records: 7 of 1.2 MB, not the 10 the fetch read.
        #expect((1..<10).contains(messages.count), "\(messages.count) records")
        #expect(messages.first?["headerCount"] as? Int == 50_000)
        #expect((messages.first?["headers"] as? [Any])?.count == 64)
        console.stop()
        try await node.stop()
    }

    /// What a client writes is shown cut, and a page's JSON is bounded whatever it holds: a
    /// classic group's leader assigned one member a million partitions (the group's page was
    /// 259 MB, 1 GB of the broker's memory to make), and header keys of control characters
    /// (six bytes each in JSON) made 20 KB on disk a 48 MB page.
    @Test func whatClientsWriteMakesBoundedPages() async throws {
        let (node, console) = try await Self.startWithConsole()
        let broker = node.broker
        let joined = await broker.groups.join(
            JoinGroupRequest(
                groupId: "wide", clientId: String(repeating: "c", count: 20_000), sessionTimeoutMs: 30_000, rebalanceTimeoutMs: 30_000,
                protocolType: "consumer", protocols: [("range", [])]))
        var assignment = ByteWriter()
        assignment.writeInteger(Int16(0))
        assignment.writeInteger(Int32(1))
        assignment.writeInteger(Int16(240))
        assignment.writeBytes(Array(String(repeating: "t", count: 240).utf8))
        assignment.writeInteger(Int32(1_000_000))
        for p in 0..<Int32(1_000_000) { assignment.writeInteger(p) }
        assignment.writeInteger(Int32(-1))
        _ = await broker.groups.sync(groupId: "wide", memberId: joined.memberId, generationId: 1, assignments: [joined.memberId: assignment.bytes])
        let group = try await httpGet(port: node.http.boundPort, "/api/groups/wide")
        #expect(group.status == 200 && group.body.utf8.count < 8 << 10, "\(group.body.utf8.count) bytes")
        #expect(group.body.contains(String(repeating: "t", count: 240) + "[0-99]") && group.body.contains("…and 999900 more partitions"))
        #expect(group.body.contains(String(repeating: "c", count: 256) + "…"))

        try await broker.createTopic("keys", partitions: 1)
        let producer = try await Producer(broker: broker)
        let headers = (0..<64).map { RecordHeader(key: String(repeating: "\u{1}", count: 2048) + "\($0)", value: nil) }
        for _ in 0..<20 { _ = try await producer.send(topic: "keys", key: nil, value: Array("v".utf8), headers: headers) }
        let page = try await httpGet(port: node.http.boundPort, "/api/topics/keys/messages?partition=0&limit=100")
        #expect(page.status == 200 && page.body.utf8.count < (2 << 20) + (512 << 10), "\(page.body.utf8.count) bytes")
        let decoded = try JSONSerialization.jsonObject(with: Data(page.body.utf8)) as? [String: Any]
        let shown = decoded?["messages"] as? [[String: Any]] ?? []
        // Each record's keys are cut at 1 KiB: about 400 KB of JSON a record, so 5 of 20 fit
        // (the rest go to the next page).
        #expect((1..<20).contains(shown.count) && decoded?["next"] as? Int == shown.count, "\(shown.count) records, next \(decoded?["next"] ?? "nil")")
        console.stop()
        try await node.stop()
    }

    /// A value is text when it is UTF-8 (a cut inside a character moves back to its start)
    /// without control characters (six bytes each in JSON); base64 is sent only for the rest.
    @Test func bytesAreTextOrBase64() throws {
        let text = try #require(ConsoleModel.Bytes(Array("héllo".utf8)))
        #expect(text.text == "héllo" && text.base64 == nil && !text.isJSON)
        let json = try #require(ConsoleModel.Bytes(Array(#"{"a": 1}"#.utf8)))
        #expect(json.isJSON && json.text != nil)
        // "é" is two bytes: a 2-byte preview of "aé" cuts it; the text shown is "a".
        let cut = try #require(ConsoleModel.Bytes(Array("aé".utf8), preview: 2))
        #expect(cut.text == "a" && cut.size == 3 && cut.base64 == nil)
        let binary = try #require(ConsoleModel.Bytes([0xFF, 0x00, 0x41]))
        #expect(binary.text == nil && binary.base64 == "/wBB")
        let controls = try #require(ConsoleModel.Bytes([0x01, 0x02, 0x41]))
        #expect(controls.text == nil && controls.base64 == "AQJB")
        let lines = try #require(ConsoleModel.Bytes(Array("a\tb\r\nc".utf8)))
        #expect(lines.text == "a\tb\r\nc")
        #expect(ConsoleModel.Bytes(nil) == nil)
    }

    @Test func readsAnswerAndActionsNeedTheToken() async throws {
        let (node, console) = try await Self.startWithConsole()
        try await node.broker.createTopic("pages", partitions: 1)
        let producer = try await Producer(broker: node.broker)
        _ = try await producer.send(topic: "pages", key: nil, value: Array("<b>bold</b>".utf8))
        _ = try await node.broker.groups.commitOffsets(groupId: "readers", offsets: [TopicPartition("pages", 0): CommittedOffset(offset: 0)])
        let port = node.http.boundPort

        let page = try await httpGet(port: port, "/groups/readers")
        #expect(page.status == 200 && page.head.contains("Content-Security-Policy") && page.body.contains("/console.js"))
        let groups = try await httpGet(port: port, "/api/groups")
        #expect(groups.status == 200 && groups.body.contains("\"id\":\"readers\"") && groups.body.contains("\"lag\":1"))
        let messages = try await httpGet(port: port, "/api/topics/pages/messages?partition=0&offset=0")
        #expect(messages.status == 200 && messages.body.contains("\"text\":\"<b>bold<\\/b>\"") || messages.body.contains("\"text\":\"<b>bold</b>\""))
        #expect(try await httpGet(port: port, "/api/topics/pages/messages?partition=7").status == 400)
        #expect(try await httpGet(port: port, "/api/topics/nowhere").status == 404)

        let body = #"{"topic":"pages","to":"earliest","dryRun":false}"#
        func post(_ headers: String) async throws -> Int {
            try await httpExchange(
                port: port,
                "POST /api/groups/readers/reset HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\(headers)Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            ).status
        }
        #expect(try await post("") == 401)
        #expect(try await post("X-Tidemark-Token: nope\r\n") == 401)
        #expect(try await post("X-Tidemark-Token: t0ken\r\nOrigin: http://elsewhere\r\n") == 403)
        #expect(try await post("X-Tidemark-Token: t0ken\r\nOrigin: http://127.0.0.1:\(port)\r\n") == 200)
        #expect(node.broker.groups.fetchOffsets(groupId: "readers")[TopicPartition("pages", 0)]?.offset == 0)

        // Server-Sent Events, bounded: two snapshots, then the stream ends.
        let events = try await httpGet(port: port, "/api/events?max_events=2")
        #expect(events.head.contains("text/event-stream"))
        #expect(events.body.components(separatedBy: "event: snapshot").count - 1 == 2)
        console.stop()
        try await node.stop()
    }

    @Test func withoutATokenActionsAreRefused() async throws {
        let node = try await HTTPMetricsTests.start()
        node.http.add(
            ConsoleRoutes(
                broker: node.broker, registry: nil, identity: NodeIdentity(brokerId: 0, address: "x", version: "v"),
                authToken: nil, tokenForReads: false))
        let answer = try await httpExchange(
            port: node.http.boundPort,
            "POST /api/groups/g/reset HTTP/1.1\r\nHost: x\r\nX-Tidemark-Token: anything\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        #expect(answer.status == 403 && answer.body.contains("--http-auth-token"))
        try await node.stop()
    }
    /// Values any Kafka client can set: committed offsets of Int64.min / Int64.max, a record
    /// timestamp of Int64.min (the default window has no lower bound), held by a share group.
    /// The lag, time-lag and queue-age arithmetic behind /metrics and the console overflowed
    /// (a trap, on the first scrape or the console's 1 s sampler); a reset shifted by
    /// Int64.max overflowed too.
    @Test func hostileOffsetsAndTimestampsAreReportedNotTrapped() async throws {
        let (node, console) = try await Self.startWithConsole()
        let broker = node.broker
        try await broker.createTopic("t", partitions: 2)
        for p in 0..<2 {
            for timestamp in [Int64.min, 1_790_000_000_000] {
                var builder = RecordBatchBuilder()
                builder.append(timestamp: timestamp, key: nil, value: Array("at \(timestamp)".utf8))
                _ = try await broker.append(topic: "t", partition: p, batches: try builder.build())
            }
        }
        _ = try await broker.groups.commitOffsets(
            groupId: "edges", offsets: [TopicPartition("t", 0): CommittedOffset(offset: Int64.min), TopicPartition("t", 1): CommittedOffset(offset: Int64.max)])
        _ = try await broker.groups.commitOffsets(
            groupId: "maxes", offsets: [TopicPartition("t", 0): CommittedOffset(offset: Int64.max), TopicPartition("t", 1): CommittedOffset(offset: Int64.max)])
        _ = try await broker.groups.commitOffsets(groupId: "behind", offsets: [TopicPartition("t", 0): CommittedOffset(offset: 0)])
        _ = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "q", memberId: "w", memberEpoch: 0, subscribedTopicNames: ["t"]))
        let view = broker.shareLogView
        _ = broker.shares.updateSession(
            group: "q", member: "w", epoch: 0, add: [TopicPartition("t", 0)], forget: [], acknowledgements: [:], allowRenew: false, view: view)
        #expect(broker.shares.acquire(group: "q", member: "w", partitions: [TopicPartition("t", 0)], maxRecords: 1, view: view).count == 1)

        let m = try await node.scrape()
        #expect(m[Sample(name: "kafka_consumergroup_lag", labels: ["consumergroup": "edges", "topic": "t", "partition": "0"])] == 2)
        #expect(m[Sample(name: "kafka_consumergroup_lag", labels: ["consumergroup": "edges", "topic": "t", "partition": "1"])] == 0)
        #expect((m[Sample(name: "tidemark_consumergroup_lag_seconds", labels: ["consumergroup": "behind", "topic": "t"])] ?? 0) > 1e9)
        // DeleteRecords passes the stalled group's committed offset: its time lag is the age of
        // the log's first record now (it read 0, caught up, and an alert on it went quiet).
        _ = try await broker.deleteRecords(topic: "t", partition: 0, before: 1)
        let overtaken = try await node.scrape()
        let behind = overtaken[Sample(name: "tidemark_consumergroup_lag_seconds", labels: ["consumergroup": "behind", "topic": "t"])] ?? 0
        #expect(behind > 1_000 && behind < 1e9, "\(behind)")
        let port = node.http.boundPort
        #expect(try await httpGet(port: port, "/api/groups").status == 200)
        #expect(try await httpGet(port: port, "/api/groups/edges").status == 200)
        #expect(try await httpGet(port: port, "/api/queues").status == 200)
        let body = #"{"topic":"t","to":"shift","shift":9223372036854775807}"#
        func reset(_ group: String) async throws -> (status: Int, head: String, body: String) {
            try await httpExchange(
                port: port,
                "POST /api/groups/\(group)/reset HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nX-Tidemark-Token: t0ken\r\nOrigin: http://127.0.0.1:\(port)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        }
        #expect(try await reset("maxes").status == 200)
        // A partition without a committed offset has nothing to shift (as Kafka's tool answers).
        let unshifted = try await reset("behind")
        #expect(unshifted.status == 400 && unshifted.body.contains("cannot shift partition t-1"), "\(unshifted.body)")
        console.stop()
        try await node.stop()
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TestSupport
import Testing
import Tidemark
import TidemarkServer
import TidemarkStorage
import TidemarkWire

/// A blocking loopback client speaking raw frames, independent of the server's NIO code.
final class RawClient {
    let fd: Int32

    /// `receiveBuffer`: the socket's receive buffer (SO_RCVBUF, before connecting), for a
    /// client that reads slowly.
    init(port: Int, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw TidemarkError(.invalidRequest, "connect failed: \(errno)") }
        // Long: a loaded run (a debug build's whole suite on two cores) can leave the tasks
        // that answer waiting for a cooperative thread for tens of seconds; 10 s failed there.
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Ends both directions (the server reads the end), keeping the descriptor to `deinit`.
    func shutdownBoth() {
        shutdown(fd, Int32(SHUT_RDWR))
    }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    func request<M: KafkaMessage>(_ api: ApiKey, version: Int16, correlation: Int32, _ body: M, clientId: String = "test") throws {
        send(frame: try Self.payload(api, version: version, correlation: correlation, body, clientId: clientId))
    }

    /// A request's bytes after the size prefix (header and body).
    static func payload<M: KafkaMessage>(
        _ api: ApiKey, version: Int16, correlation: Int32, _ body: M, clientId: String = "test"
    ) throws -> [UInt8] {
        var coder = WireCoder(writingFlexible: false)
        var header = RequestHeader(apiKey: api.rawValue, apiVersion: version, correlationId: correlation, clientId: clientId)
        try header.code(&coder, flexible: api.isFlexible(version))
        coder.flexible = api.isFlexible(version)
        try body.encode(into: &coder, version: version)
        return try coder.finishedBytes()
    }

    /// Sends `payload` with its size prefix.
    func send(frame payload: [UInt8]) {
        send(Self.framed(payload))
    }

    /// `payload` after its size prefix: a frame as it goes on the wire.
    static func framed(_ payload: [UInt8]) -> [UInt8] {
        withUnsafeBytes(of: Int32(payload.count).bigEndian) { Array($0) } + payload
    }

    /// The last read ended at the receive timeout rather than at a close.
    private(set) var timedOut = false

    func receive(_ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        timedOut = false
        while got < count {
            let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { timedOut = true }
            if n <= 0 { return nil }
            got += n
        }
        return out
    }

    /// The next response: (correlation id, body after it), or nil when the server closed (or
    /// after 60 s without one). The blocking read runs on a Dispatch thread, not on the
    /// test's cooperative one: a request answered by a Swift task (Metadata, JoinGroup,
    /// ListOffsets...) must not wait for a thread that tests hold (two cores: two cooperative
    /// threads for every suite; two tests reading at once starved the server on loaded runs).
    func response() async -> (Int32, [UInt8])? {
        let handed = HandedOver(self)
        return await withCheckedContinuation { continuation in
            // A thread of its own: Dispatch's global pool grows past the cores only about once
            // a second, and the brokers under test use it too.
            Thread.detachNewThread { continuation.resume(returning: handed.value.responseBlocking()) }
        }
    }

    /// `receive(count)` on a thread of its own (see `response()`).
    func receiveOffLoop(_ count: Int) async -> [UInt8]? {
        let handed = HandedOver(self)
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: handed.value.receive(count)) }
        }
    }

    /// True when the server closed the connection without answering; false when it answered,
    /// or when nothing came within the 60 s receive timeout (which `response()` also reports
    /// as nil).
    func closedWithoutAnswer() async -> Bool {
        await response() == nil && !timedOut
    }

    /// `response()` on the calling thread.
    func responseBlocking() -> (Int32, [UInt8])? {
        guard let size = receive(4) else { return nil }
        let length = Int(Int32(bigEndian: size.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
        guard let frame = receive(length) else { return nil }
        let correlation = Int32(bigEndian: frame.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) })
        return (correlation, Array(frame[4...]))
    }
}

/// A value (a client) handed to another thread while its test awaits the answer; a strong
/// reference, so the client cannot close its socket under the read.
/// `@unchecked Sendable`: used by one thread at a time (the test awaits the other thread
/// before it touches the value again), which the compiler cannot see.
struct HandedOver<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

@Suite(.serialized) struct ServerTests {
    static func withServer(
        maxRequestBytes: Int = 1 << 20, configure: (inout ServerConfig) -> Void = { _ in },
        _ body: (KafkaServer) async throws -> Void
    ) async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        var config = ServerConfig()
        config.port = 0
        config.maxRequestBytes = maxRequestBytes
        configure(&config)
        let server = try await KafkaServer.start(broker: broker, config: config)
        do {
            try await body(server)
        } catch {
            await server.stop()
            try await broker.close()
            throw error
        }
        await server.stop()
        try await broker.close()
    }

    /// A Produce request carrying one batch for partition 0 of `topic` (acks=all).
    static func produceRequest(topic name: String, batch: [UInt8]) -> ProduceRequest {
        var partition = ProduceRequest.PartitionData()
        partition.records = .bytes(batch[...])
        var topic = ProduceRequest.TopicData()
        topic.name = name
        topic.partitions = [partition]
        var produce = ProduceRequest()
        produce.topics = [topic]
        return produce
    }

    /// Produces `batches[p]` to partition p of `topic`, one request each, and expects success.
    static func produceEach(_ client: RawClient, topic: String, _ batches: [[UInt8]]) async throws {
        for (p, batch) in batches.enumerated() {
            var produce = produceRequest(topic: topic, batch: batch)
            produce.topics[0].partitions[0].index = Int32(p)
            try client.request(.produce, version: 7, correlation: Int32(p), produce)
            let (_, body) = try #require(await client.response())
            #expect(try ProduceResponse.decode(body, version: 7, flexible: false).topics[0].partitions[0].errorCode == 0)
        }
    }

    /// Fetches every partition of `topic` from offset 0 in one request and expects each to
    /// return `batches[p]` byte for byte (but for the broker's base offset).
    static func fetchAndCheck(_ client: RawClient, topic name: String, _ batches: [[UInt8]]) async throws {
        var fetch = FetchRequest()
        fetch.maxBytes = 8 << 20
        var topic = FetchRequest.Topic()
        topic.topic = name
        topic.partitions = batches.indices.map { p in
            var partition = FetchRequest.Partition()
            partition.partition = Int32(p)
            partition.partitionMaxBytes = 1 << 20
            return partition
        }
        fetch.topics = [topic]
        try client.request(.fetch, version: 11, correlation: 100, fetch)
        let (_, body) = try #require(await client.response())
        let fetched = try FetchResponse.decode(body, version: 11, flexible: false)
        #expect(fetched.topics[0].partitions.count == batches.count)
        for answer in fetched.topics[0].partitions {
            guard case .bytes(let view)? = answer.records, case let stored = Array(view) else {
                Issue.record("partition \(answer.partitionIndex): no records")
                continue
            }
            #expect(stored[8...] == batches[Int(answer.partitionIndex)][8...], "partition \(answer.partitionIndex)")
        }
    }

    @Test func produceThenFetchOverTheWireWithSendfile() async throws {
        try await Self.withServer { server in
            let client = try RawClient(port: server.boundPort)
            var metadata = MetadataRequest()
            metadata.topics = ["wire"]
            try client.request(.metadata, version: 4, correlation: 1, metadata)
            let (c1, m1) = try #require(await client.response())
            let meta = try MetadataResponse.decode(m1, version: 4, flexible: false)
            #expect(c1 == 1 && meta.topics.first?.name == "wire" && meta.topics.first?.partitions.count == 1)
            #expect(meta.brokers.first?.port == Int32(server.boundPort))

            var builder = RecordBatchBuilder(compression: .lz4)
            for i in 0..<100 { builder.append(timestamp: 1000 + Int64(i), key: nil, value: Array("v\(i)".utf8)) }
            let batch = try builder.build()
            var produce = Self.produceRequest(topic: "wire", batch: batch)
            try client.request(.produce, version: 7, correlation: 2, produce)
            let (c2, p2) = try #require(await client.response())
            let produced = try ProduceResponse.decode(p2, version: 7, flexible: false)
            #expect(c2 == 2 && produced.topics[0].partitions[0].errorCode == 0 && produced.topics[0].partitions[0].baseOffset == 0)

            var fetch = FetchRequest()
            var ft = FetchRequest.Topic()
            ft.topic = "wire"
            ft.partitions = [FetchRequest.Partition()]
            fetch.topics = [ft]
            try client.request(.fetch, version: 11, correlation: 3, fetch)
            let (c3, f3) = try #require(await client.response())
            let fetched = try FetchResponse.decode(f3, version: 11, flexible: false)
            #expect(c3 == 3 && fetched.topics[0].partitions[0].highWatermark == 100)
            guard case .bytes(let view)? = fetched.topics[0].partitions[0].records, case let stored = Array(view) else {
                Issue.record("no records")
                return
            }
            // The stored batch comes back byte for byte but for the broker's base offset.
            #expect(stored[8...] == batch[8...])
            let decoded = try RecordBatch(decoding: stored)
            #expect(decoded.records.count == 100)

            // acks=0: no response, and the next request's answer still arrives in order.
            produce.acks = 0
            try client.request(.produce, version: 7, correlation: 4, produce)
            try client.request(.apiVersions, version: 0, correlation: 5, ApiVersionsRequest())
            let (c5, _) = try #require(await client.response())
            #expect(c5 == 5)
        }
    }

    /// One fetch over 40 partitions: small slices are copied into the response, large ones go
    /// by sendfile up to 16 per response and are copied beyond; every partition's batch comes
    /// back byte for byte whichever way it went.
    @Test func aFetchOfManyPartitionsMixesCopiedAndSentFileSlices() async throws {
        try await Self.withServer(maxRequestBytes: 8 << 20) { server in
            try await server.broker.createTopic("mixed", partitions: 40)
            let client = try RawClient(port: server.boundPort)
            let batches = try (0..<40).map { p in
                var builder = RecordBatchBuilder(compression: .none)
                let size = p < 24 ? 40 << 10 : 100  // 24 large (over the sendfile minimum), 16 small
                builder.append(timestamp: 1000, key: nil, value: [UInt8](repeating: UInt8(p), count: size))
                return try builder.build()
            }
            try await Self.produceEach(client, topic: "mixed", batches)
            try await Self.fetchAndCheck(client, topic: "mixed", batches)
        }
    }

    /// Data that is not in the page cache is read by the executor, not by the event loop: a
    /// small slice (copied) and a large one (sendfile), both dropped from the cache first, come
    /// back whole, and the router counts them as read off the loop. The loop's reads are told
    /// they would wait (`.readNoWait` injected): a dropped page is not a certain miss.
    @Test func coldDataIsReadOffTheEventLoop() async throws {
        try await Self.withServer(maxRequestBytes: 8 << 20) { server in
            try await server.broker.createTopic("cold", partitions: 2)
            let client = try RawClient(port: server.boundPort)
            let batches = try (0..<2).map { p in
                var builder = RecordBatchBuilder(compression: .none)
                builder.append(timestamp: 1000, key: nil, value: [UInt8](repeating: UInt8(7 + p), count: p == 0 ? 200 : 300 << 10))
                return try builder.build()
            }
            try await Self.produceEach(client, topic: "cold", batches)
            for p in 0..<2 { try dropFromPageCache(server.broker.dataDirectory + "/cold-\(p)/00000000000000000000.log") }
            let scope = server.broker.dataDirectory + "/cold-"
            StorageFaults.inject(.readNoWait, .resourceTemporarilyUnavailable, pathContains: scope, times: nil)
            defer { StorageFaults.clear(pathContains: scope) }
            try await Self.fetchAndCheck(client, topic: "cold", batches)
            #expect(server.fetchReadsOffLoop == 2)
        }
    }

    @Test func oversizedAndMalformedFramesCloseOnlyTheirConnection() async throws {
        try await Self.withServer { server in
            let good = try RawClient(port: server.boundPort)
            let bad = try RawClient(port: server.boundPort)
            bad.send(withUnsafeBytes(of: Int32(2 << 20).bigEndian) { Array($0) } + [0, 0, 0])
            #expect(await bad.closedWithoutAnswer())
            let garbage = try RawClient(port: server.boundPort)
            garbage.send([0, 0, 0, 10, 0x7F, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0])
            #expect(await garbage.closedWithoutAnswer())
            try good.request(.apiVersions, version: 3, correlation: 9, ApiVersionsRequest())
            let (c, body) = try #require(await good.response())
            #expect(c == 9)
            let versions = try ApiVersionsResponse.decode(body, version: 3, flexible: true)
            #expect(versions.apiKeys.count == ApiKey.allCases.count)
        }
    }

    /// Far more pipelined requests than the connection reads at once (it pauses reading past
    /// 128 unanswered ones): all are answered, in order.
    @Test func deepPipelinesAreAnsweredInOrderWithBackpressure() async throws {
        try await Self.withServer { server in
            let client = try RawClient(port: server.boundPort)
            for correlation in 0..<1000 {
                try client.request(.apiVersions, version: 0, correlation: Int32(correlation), ApiVersionsRequest())
            }
            for expected in 0..<1000 {
                let (correlation, _) = try #require(await client.response())
                #expect(correlation == Int32(expected))
            }
        }
    }

    /// Pipelined produce requests are appended in the order they were sent (what a
    /// non-idempotent client with several requests in flight relies on).
    @Test func pipelinedProducesAreAppendedInOrder() async throws {
        try await Self.withServer { server in
            let client = try RawClient(port: server.boundPort)
            var metadata = MetadataRequest()
            metadata.topics = ["ordered"]
            try client.request(.metadata, version: 4, correlation: 0, metadata)
            _ = try #require(await client.response())
            for n in 0..<200 {
                var builder = RecordBatchBuilder()
                for i in 0..<(n % 7 + 1) { builder.append(timestamp: 0, key: nil, value: Array("\(n)-\(i)".utf8)) }
                var produce = Self.produceRequest(topic: "ordered", batch: try builder.build())
                produce.acks = 1
                try client.request(.produce, version: 7, correlation: Int32(n + 1), produce)
            }
            var previous: Int64 = -1
            for n in 0..<200 {
                let (correlation, body) = try #require(await client.response())
                #expect(correlation == Int32(n + 1))
                let base = try ProduceResponse.decode(body, version: 7, flexible: false).topics[0].partitions[0].baseOffset
                #expect(base > previous, "request \(n) appended before an earlier one")
                previous = base
            }
        }
    }

    /// A framed acks=0 Produce (v7) of `batch` to `partition` of `topic`.
    static func acksZeroFrame(topic: String, partition: Int32 = 0, batch: [UInt8]) throws -> [UInt8] {
        var produce = produceRequest(topic: topic, batch: batch)
        produce.acks = 0
        produce.topics[0].partitions[0].index = partition
        return RawClient.framed(try RawClient.payload(.produce, version: 7, correlation: 1, produce))
    }

    /// A server with topics "fire" and "gate" (one partition each; "gate" synced on every
    /// append, its fdatasync slowed to a second), and the frame of an acks=0 produce to "gate":
    /// sent first, every later request of its connection is queued behind it for a second.
    static func withGate(_ body: (KafkaServer, [UInt8]) async throws -> Void) async throws {
        try await withServer(maxRequestBytes: 4 << 20) { server in
            try await server.broker.createTopic("fire", partitions: 1)
            try await server.broker.createTopic("gate", partitions: 1, config: TopicConfig(flushPolicy: .everyAppend))
            let gateDirectory = server.broker.dataDirectory + "/gate-0"
            StorageFaults.slow(.sync, by: 1_000_000_000, pathContains: gateDirectory)
            defer { StorageFaults.clear(pathContains: gateDirectory) }
            try await body(server, try acksZeroFrame(topic: "gate", batch: try AdminRequestTests.batch(["first"])))
        }
    }

    /// An acks=0 producer closes its connection as soon as its last request is written (kcat
    /// -X acks=0 does): every Produce request the broker had read before the close is still
    /// appended, in order (those queued behind the running request were dropped with the
    /// connection), and their budget given back. The first request goes to a topic synced on
    /// every append whose fdatasync takes a second (an acks=0 produce still waits for it), so
    /// every other one is queued when the close is read; every tenth carries an LZ4 batch of
    /// over 64 KiB, checked off the event loop (what queued them behind kcat's). (A request
    /// with an answer would not do: written to a closed socket, it brings a reset.)
    @Test func acksZeroRequestsWrittenBeforeACloseAreAllAppended() async throws {
        try await Self.withGate { server, gate in
            var frames = gate
            var generator = SystemRandomNumberGenerator()
            for n in 0..<100 {
                var builder = RecordBatchBuilder(compression: n % 10 == 0 ? .lz4 : .none)
                if n % 10 == 0 {
                    // Random bytes: LZ4 leaves them as large as they are.
                    let noise = (0..<70_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
                    builder.append(timestamp: 0, key: Array("\(n)".utf8), value: noise)
                } else {
                    builder.append(timestamp: 0, key: Array("\(n)".utf8), value: [])
                }
                frames += try Self.acksZeroFrame(topic: "fire", batch: try builder.build())
            }
            do {
                let client = try RawClient(port: server.boundPort)
                client.send(frames)
            }  // closed here
            let deadline = ContinuousClock.now + .seconds(30)
            while try server.broker.offsets(topic: "fire", partition: 0).end < 100 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(try server.broker.offsets(topic: "fire", partition: 0).end == 100)
            let consumer = Consumer(broker: server.broker)
            try await consumer.assign(topic: "fire", partition: 0, from: .earliest)
            var values: [String] = []
            let read = ContinuousClock.now + .seconds(30)
            while values.count < 100 && ContinuousClock.now < read {
                values += try await consumer.poll(maxRecords: 100, maxWaitMs: 100).map { String(decoding: $0.key ?? [], as: UTF8.self) }
            }
            #expect(values == (0..<100).map { "\($0)" })
            let released = ContinuousClock.now + .seconds(30)
            while (server.queuedRequestBytes > 0 || server.closedConnectionsAppending > 0) && ContinuousClock.now < released {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(server.queuedRequestBytes == 0)
            #expect(server.closedConnectionsAppending == 0)
        }
    }

    /// As on an open connection, a queued acks=0 produce that fails (a partition that does not
    /// exist) drops the requests behind it after the client's close: a producer's records are
    /// cut, never holed.
    @Test func aFailedQueuedProduceDropsTheRestAfterAClose() async throws {
        try await Self.withGate { server, gate in
            var frames = gate
            func add(_ topic: String, partition: Int32, _ value: String) throws {
                frames += try Self.acksZeroFrame(topic: topic, partition: partition, batch: try AdminRequestTests.batch([value]))
            }
            try add("fire", partition: 0, "before")
            try add("fire", partition: 7, "fails")
            for n in 0..<10 { try add("fire", partition: 0, "after-\(n)") }
            do {
                let client = try RawClient(port: server.boundPort)
                client.send(frames)
            }  // closed here
            let deadline = ContinuousClock.now + .seconds(30)
            func gateEnd() throws -> Int64 { try server.broker.offsets(topic: "gate", partition: 0).end }
            while try (server.queuedRequestBytes > 0 || server.closedConnectionsAppending > 0 || gateEnd() == 0)
                && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            try await Task.sleep(for: .milliseconds(200))
            #expect(try server.broker.offsets(topic: "gate", partition: 0).end == 1)
            #expect(try server.broker.offsets(topic: "fire", partition: 0).end == 1, "only the request before the failed one")
            #expect(server.queuedRequestBytes == 0)
            #expect(server.closedConnectionsAppending == 0)
        }
    }
}


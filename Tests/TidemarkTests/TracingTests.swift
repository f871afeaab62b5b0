import InMemoryTracing
import TestSupport
import Testing
import Tidemark
import TidemarkStorage
import Tracing

/// Spans of the embedded clients (OpenTelemetry messaging conventions) and trace context
/// carried in record headers, with swift-distributed-tracing's in-memory tracer.
@Suite struct TracingTests {
    static func open(_ tracer: InMemoryTracer) async throws -> (TemporaryDirectory, Broker) {
        let dir = TemporaryDirectory()
        var options = BrokerOptions()
        options.tracer = tracer
        return (dir, try await Broker.open(dataDirectory: dir.path, options: options))
    }

    @Test func aJobIsOneTraceFromSendToEveryAttempt() async throws {
        let tracer = InMemoryTracer()
        let (dir, broker) = try await Self.open(tracer)
        _ = dir
        try await broker.createTopic("emails", partitions: 1)
        let producer = try await Producer(broker: broker)
        let sent = try await producer.send(topic: "emails", key: Array("user-7".utf8), value: Array("welcome".utf8))

        let send = try #require(tracer.finishedSpans.first { $0.operationName == "send emails" })
        #expect(send.kind == .producer)
        #expect(send.attributes.get(MessagingAttribute.system)?.toSpanAttribute() == "kafka")
        #expect(send.attributes.get(MessagingAttribute.destination)?.toSpanAttribute() == "emails")
        #expect(send.attributes.get(MessagingAttribute.offset)?.toSpanAttribute() == .int64(sent.offset))
        #expect(send.attributes.get(MessagingAttribute.key)?.toSpanAttribute() == "user-7")

        // The context is in the stored record's headers: what any consumer (or a replay) reads.
        let stored = try #require(try await broker.fetch(topic: "emails", partition: 0, offset: 0).slice?.readBytes())
        let record = try #require(try RecordBatch(decoding: stored).records.first)
        let traceHeader = try #require(record.headers.first { $0.key == InMemoryTracer.traceIDKey })
        #expect(traceHeader.value.map { String(decoding: $0, as: UTF8.self) } == send.traceID)

        // A share-group worker: poll span linked to the producer, process span its child,
        // the second attempt in the same trace.
        let worker = try await ShareConsumer(broker: broker, group: "mailers", topics: ["emails"], mode: .explicit)
        var jobs: [ShareRecord] = []
        while jobs.isEmpty { jobs = try await worker.poll(timeout: .seconds(2)) }
        try await worker.process(jobs[0]) { worker.acknowledge(jobs[0], .release) }
        _ = try await worker.commit()
        var again: [ShareRecord] = []
        while again.isEmpty { again = try await worker.poll(timeout: .seconds(2)) }
        try await worker.process(again[0]) { worker.acknowledge(again[0], .accept) }
        _ = try await worker.commit()

        let processes = tracer.finishedSpans.filter { $0.operationName == "process emails" }
        #expect(processes.count == 2)
        for process in processes {
            #expect(process.kind == .consumer)
            #expect(process.traceID == send.traceID)
            #expect(process.parentSpanID == send.spanID)
            #expect(process.attributes.get(MessagingAttribute.consumerGroup)?.toSpanAttribute() == "mailers")
        }
        #expect(processes.map { $0.attributes.get(MessagingAttribute.deliveryCount)?.toSpanAttribute() } == [.int64(1), .int64(2)])
        let polls = tracer.finishedSpans.filter { $0.operationName == "poll emails" && !$0.links.isEmpty }
        #expect(polls.count >= 2)
        #expect(polls.allSatisfy { $0.kind == .client })
        try await worker.close()
        try await broker.close()
    }

    @Test func aGroupConsumerProcessesInTheProducersTrace() async throws {
        let tracer = InMemoryTracer()
        let (dir, broker) = try await Self.open(tracer)
        _ = dir
        try await broker.createTopic("orders", partitions: 1)
        let producer = try await Producer(broker: broker)
        _ = try await producer.send(topic: "orders", key: nil, value: Array("o-1".utf8))
        let send = try #require(tracer.finishedSpans.first { $0.operationName == "send orders" })
        let consumer = GroupConsumer(broker: broker, groupId: "billing", topics: ["orders"])
        var records: [ConsumerRecord] = []
        while records.isEmpty { records = try await consumer.poll(maxWaitMs: 500) }
        let value = try await consumer.process(records[0]) { records[0].value }
        #expect(value == Array("o-1".utf8))
        let process = try #require(tracer.finishedSpans.first { $0.operationName == "process orders" })
        #expect(process.traceID == send.traceID && process.parentSpanID == send.spanID)
        #expect(process.attributes.get(MessagingAttribute.tombstone) == nil)
        await consumer.close()
        try await broker.close()
    }

    @Test func withoutATracerNothingIsAddedToRecords() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        #expect(!broker.isTracing)
        try await broker.createTopic("plain", partitions: 1)
        let producer = try await Producer(broker: broker)
        _ = try await producer.send(topic: "plain", key: nil, value: Array("x".utf8), headers: [RecordHeader(key: "h", value: [1])])
        let stored = try #require(try await broker.fetch(topic: "plain", partition: 0, offset: 0).slice?.readBytes())
        #expect(try RecordBatch(decoding: stored).records.first?.headers.map(\.key) == ["h"])
        try await broker.close()
    }
}

import Instrumentation
import TidemarkStorage
import Tracing

/// Trace context in record headers (W3C `traceparent`/`tracestate` with an OpenTelemetry
/// tracer; whatever keys the bootstrapped instrument uses otherwise). Injecting replaces a
/// header of the same key, so a record never carries two parents.
public struct RecordHeaderInjector: Injector {
    public init() {}
    public func inject(_ value: String, forKey key: String, into carrier: inout [RecordHeader]) {
        carrier.removeAll { $0.key == key }
        carrier.append(RecordHeader(key: key, value: Array(value.utf8)))
    }
}

/// Reads trace context from record headers (the last header of a key wins).
public struct RecordHeaderExtractor: Extractor {
    public init() {}
    public func extract(key: String, from carrier: [RecordHeader]) -> String? {
        guard let header = carrier.last(where: { $0.key == key }), let value = header.value else { return nil }
        return String(decoding: value, as: UTF8.self)
    }
}

/// OpenTelemetry's messaging semantic conventions (1.44 names) for Kafka spans.
public enum MessagingAttribute {
    public static let system = "messaging.system"
    public static let operationName = "messaging.operation.name"
    public static let operationType = "messaging.operation.type"
    public static let destination = "messaging.destination.name"
    public static let partition = "messaging.destination.partition.id"
    public static let consumerGroup = "messaging.consumer.group.name"
    public static let key = "messaging.kafka.message.key"
    public static let offset = "messaging.kafka.offset"
    public static let tombstone = "messaging.kafka.message.tombstone"
    public static let batchCount = "messaging.batch.message_count"
    public static let bodySize = "messaging.message.body.size"
    public static let clientId = "messaging.client.id"
    /// Tidemark's (no convention names it): how many times a share-group record was delivered.
    public static let deliveryCount = "tidemark.share.delivery_count"
}

extension Broker {
    /// The producer's context carried by a record's headers (nil: none).
    public func extractContext(from headers: [RecordHeader]) -> InstrumentationContext? {
        var context = InstrumentationContext.topLevel
        tracer.extract(headers, into: &context, using: RecordHeaderExtractor())
        // An extraction that found nothing leaves the context empty.
        return context.isEmpty ? nil : context
    }

    /// Runs `body` in a CONSUMER `process {topic}` span whose parent is the context the
    /// producer put in the record's headers (a root span when there is none).
    func withProcessSpan<T>(
        _ record: ConsumerRecord, group: String?, deliveryCount: Int16? = nil, _ body: () async throws -> T
    ) async throws -> T {
        guard isTracing else { return try await body() }
        let parent = extractContext(from: record.headers) ?? .topLevel
        return try await tracer.withSpan("process \(record.topic)", context: parent, ofKind: .consumer) { span in
            span.attributes[MessagingAttribute.system] = "kafka"
            span.attributes[MessagingAttribute.operationName] = "process"
            span.attributes[MessagingAttribute.operationType] = "process"
            span.attributes[MessagingAttribute.destination] = record.topic
            span.attributes[MessagingAttribute.partition] = "\(record.partition)"
            span.attributes[MessagingAttribute.offset] = Int(record.offset)
            if let group { span.attributes[MessagingAttribute.consumerGroup] = group }
            if let deliveryCount { span.attributes[MessagingAttribute.deliveryCount] = Int(deliveryCount) }
            if let key = record.key, let text = String(validating: key, as: UTF8.self) {
                span.attributes[MessagingAttribute.key] = text
            }
            if record.value == nil { span.attributes[MessagingAttribute.tombstone] = true }
            return try await body()
        }
    }

    /// A CLIENT `poll {topics}` span covering a poll that returned `records`, linked to each
    /// record's producer context (at most 128 links). Ended by the caller.
    func pollSpan(topics: [String], group: String?) -> (any Span)? {
        guard isTracing else { return nil }
        let span = tracer.startSpan("poll \(topics.sorted().joined(separator: ","))", ofKind: .client)
        span.attributes[MessagingAttribute.system] = "kafka"
        span.attributes[MessagingAttribute.operationName] = "poll"
        span.attributes[MessagingAttribute.operationType] = "receive"
        if topics.count == 1 { span.attributes[MessagingAttribute.destination] = topics[0] }
        if let group { span.attributes[MessagingAttribute.consumerGroup] = group }
        return span
    }

    func finishPollSpan(_ span: (any Span)?, _ records: [ConsumerRecord]) {
        guard let span else { return }
        span.attributes[MessagingAttribute.batchCount] = records.count
        for record in records.prefix(128) {
            if let context = extractContext(from: record.headers) {
                span.addLink(SpanLink(context: context, attributes: [:]))
            }
        }
        span.end()
    }
}

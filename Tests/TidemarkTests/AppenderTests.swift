import TestSupport
import Testing
import TidemarkStorage

@testable import Tidemark

/// The synchronous appender: records batch up in memory and reach the log on size, linger or
/// flush, in order, with their offsets; the consumer reads them like any others.
@Suite struct AppenderTests {
    @Test func recordsReachTheLogInOrderOnSizeAndFlush() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("log", partitions: 1)
        let appender = try Appender(broker: broker, topic: "log", partition: 0, batchBytes: 4096, lingerMs: 60_000)
        for i in 0..<10_000 { try appender.append(key: nil, value: Array("r\(i)".utf8), timestamp: 1_700_000_000_000) }
        // Full batches went out as the appender filled them; the rest waits for flush.
        let before = try broker.offsets(topic: "log", partition: 0).end
        #expect(before > 0 && before < 10_000)
        let last = try #require(try appender.flush())
        #expect(last.upperBound == 9_999)
        #expect(try appender.flush() == nil)
        let records = try await readPartition(broker, "log", 0)
        #expect(records.count == 10_000)
        #expect(records.enumerated().allSatisfy { $0.element.offset == Int64($0.offset) && text($0.element.value) == "r\($0.offset)" })
        try await broker.close()
    }

    @Test func lingerSendsAnOldBatchAtTheNextAppend() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(clock: clock))
        try await broker.createTopic("log", partitions: 1)
        let appender = try Appender(broker: broker, topic: "log", partition: 0, lingerMs: 5)
        try appender.append(value: [1])
        #expect(try broker.offsets(topic: "log", partition: 0).end == 0)
        clock.advance(10)
        try appender.append(value: [2])
        #expect(try broker.offsets(topic: "log", partition: 0).end == 1)
        try appender.flush()
        #expect(try broker.offsets(topic: "log", partition: 0).end == 2)
        try await broker.close()
    }

    @Test func durableTopicsAreDurableWhenFlushReturns() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("d", partitions: 1, config: TopicConfig(flushPolicy: .everyAppend))
        let appender = try Appender(broker: broker, topic: "d", partition: 0)
        for i in 0..<100 { try appender.append(value: Array("d\(i)".utf8)) }
        try appender.flush()
        #expect(try broker.partitionState("d", 0).log.flushedOffset == 100)
        try await broker.close()
    }

    /// An appender whose topic was deleted says so (it said brokerClosed, which a service
    /// takes for its broker shutting down).
    @Test func anAppenderOfADeletedTopicSaysItIsGone() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("gone", partitions: 1)
        let appender = try Appender(broker: broker, topic: "gone", partition: 0)
        try appender.append(value: Array("x".utf8))
        try await broker.deleteTopic("gone")
        #expect(throws: TidemarkError(.unknownTopicOrPartition, "gone-0 is gone (its topic was deleted): 1 records not appended")) { try appender.flush() }
        try await broker.close()
    }

    /// One whose broker closed says so (not that its topic is gone).
    @Test func anAppenderOfAClosedBrokerSaysItIsClosed() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 1)
        let appender = try Appender(broker: broker, topic: "t", partition: 0)
        try appender.append(value: Array("x".utf8))
        try await broker.close()
        #expect { try appender.flush() } throws: { ($0 as? TidemarkError)?.code == .brokerClosed }
    }
}

import Foundation
import Logging
import NIOPosix
import TestSupport
import Testing
@testable import Tidemark
@testable import TidemarkServer
import TidemarkStorage
import TidemarkWire

/// A fetch of many partitions whose segments are not open (after a restart) is read by the
/// engine's executor for the fetch's next pass. What it read is held until that pass: it held
/// each read's slice, and with it the segment's descriptor, outside the open-file budget. A
/// consumer fetching 1,500 such partitions under `ulimit -n 300` took the broker to the limit.
/// Now small reads are held as bytes, at most `maxFileSlicesPerResponse` as slices, and reads
/// past what the response can take as offsets only.
@Suite struct FetchDescriptorTests {
    static let partitions = 200

    /// Descriptors this process holds on `.log` files under `dir`.
    static func logDescriptors(under dir: String) -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return entries.reduce(0) { count, fd in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)") else { return count }
            return count + (target.hasPrefix(dir) && target.hasSuffix(".log") ? 1 : 0)
        }
    }

    /// Partitions of two batches each, the first in a segment of its own: after a restart,
    /// inactive segments are not open until read, and a read of them is the executor's.
    static func rolled() -> TopicConfig {
        var config = TopicConfig()
        config.segmentBytes = 64
        return config
    }

    /// Appends the batch of `size` twice to `partition` (two segments).
    static func fill(_ broker: Broker, _ topic: String, _ partition: Int, size: Int) async throws {
        for _ in 0..<2 { _ = try await broker.append(topic: topic, partition: partition, batches: try Self.batch(size: size, tag: partition)) }
    }

    /// A broker reopened on `dir`: its inactive segments are not open until read.
    static func reopened(_ dir: TemporaryDirectory, budget: Int, fill: (Broker) async throws -> Void) async throws -> Broker {
        var options = BrokerOptions()
        options.openFileBudget = OpenFileBudget(limit: budget)
        let first = try await Broker.open(dataDirectory: dir.path, options: options)
        try await fill(first)
        try await first.close()
        options.openFileBudget = OpenFileBudget(limit: budget)
        return try await Broker.open(dataDirectory: dir.path, options: options)
    }

    static func batch(size: Int, tag: Int) throws -> [UInt8] {
        var builder = RecordBatchBuilder()
        // Now: records older than the default retention (seven days) go at the reopen.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        builder.append(timestamp: now, key: nil, value: Array("\(tag):".utf8) + [UInt8](repeating: 7, count: size))
        return try builder.build()
    }

    static func router(_ broker: Broker) -> RequestRouter {
        RequestRouter(
            broker: broker, config: ServerConfig(), logger: Logger(label: "test"), boundPort: 0, loops: MultiThreadedEventLoopGroup.singleton)
    }

    /// 200 partitions of small records and 30 of 40 KiB ones, none open (each read is of the
    /// first segment: reads stop at a segment's end): the executor's reads
    /// hold no more descriptors than the budget and the response's sendfile slices, and the
    /// next pass answers every partition with its records.
    @Test func readsOfPartitionsNotOpenHoldFewDescriptors() async throws {
        let dir = TemporaryDirectory()
        let budget = 8
        let broker = try await Self.reopened(dir, budget: budget) { broker in
            try await broker.createTopic("wide", partitions: Self.partitions, config: Self.rolled())
            for p in 0..<Self.partitions { try await Self.fill(broker, "wide", p, size: p < 30 ? 40 << 10 : 20) }
        }
        let router = Self.router(broker)
        let request = ServerTests.ResourceBoundTests.fetch("wide", (0..<Self.partitions).map { (Int32($0), 0) })
        let first = router.fetchPass(request, preRead: [:])
        #expect(first.blocked.count == Self.partitions, "the segments were open: nothing to read off the loop")
        var reads: [FetchKey: FetchPreRead] = [:]
        let copied = await router.readBlocked(first.blocked, into: &reads)
        // The copies count toward the broker's response memory until the next pass.
        #expect(copied > 170 * 20 && router.responseMemory.heldBytes == copied)
        router.responseMemory.release(copied)
        // A sweep may run beside an opener: the budget's bound is soft by one or two.
        let held = Self.logDescriptors(under: dir.path)
        #expect(held <= budget + RequestRouter.maxFileSlicesPerResponse + 2, "\(held) descriptors held for \(reads.count) reads")
        let slices = reads.values.filter { if case .read(let read) = $0 { read.slice != nil } else { false } }.count
        #expect(slices == RequestRouter.maxFileSlicesPerResponse)

        let second = router.fetchPass(request, preRead: reads)
        #expect(second.blocked.isEmpty)
        let answered: [FetchResponse.Partition] = second.response.topics.flatMap { $0.partitions }
        #expect(answered.count == Self.partitions)
        var sent = 0
        for partition in answered {
            #expect(partition.errorCode == 0 && partition.highWatermark == 2)
            let count = partition.records?.count ?? 0
            let least = partition.partitionIndex < 30 ? 40 << 10 : 20
            #expect(count > least, "partition \(partition.partitionIndex)")
            sent += count
        }
        #expect(second.room.total == sent)
        reads.removeAll()
        try await broker.close()
    }

    /// A partition the executor reads is judged at its place in the request: first in it, it
    /// goes whole, before a partition read at once that comes after it (judged after that one,
    /// it was left without records at every fetch while the other had a backlog).
    @Test func theExecutorsReadKeepsItsPlaceInTheRequest() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Self.reopened(dir, budget: 8) { broker in
            try await broker.createTopic("cold", partitions: 1, config: Self.rolled())
            try await Self.fill(broker, "cold", 0, size: 40 << 10)
            try await broker.createTopic("hot", partitions: 1)
            _ = try await broker.append(topic: "hot", partition: 0, batches: try Self.batch(size: 45 << 10, tag: 0))
        }
        let router = Self.router(broker)
        var request = ServerTests.ResourceBoundTests.fetch("cold", [(0, 0)])
        request.topics += ServerTests.ResourceBoundTests.fetch("hot", [(0, 0)]).topics
        request.maxBytes = 50 << 10
        let first = router.fetchPass(request, preRead: [:])
        #expect(first.blocked.map(\.key.topic) == ["cold"])
        var reads: [FetchKey: FetchPreRead] = [:]
        router.responseMemory.release(await router.readBlocked(first.blocked, into: &reads))
        let second = router.fetchPass(request, preRead: reads)
        let sizes = second.response.topics.map { topic in (topic.topic, topic.partitions.map { $0.records?.count ?? 0 }) }
        #expect(sizes.count == 2)
        #expect(sizes.first?.0 == "cold" && (sizes.first?.1.first ?? 0) > 40 << 10, "\(sizes)")
        #expect(sizes.last?.0 == "hot" && sizes.last?.1 == [0], "\(sizes)")
        #expect(second.answerNow)
        reads.removeAll()
        try await broker.close()
    }

    /// max_bytes of 100 KiB over 30 partitions of 40 KiB, none open: the executor reads as many
    /// as fit (the first whole) and keeps the rest as offsets, answered without records.
    @Test func readsPastTheResponsesBytesAreOffsetsOnly() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Self.reopened(dir, budget: 8) { broker in
            try await broker.createTopic("big", partitions: 30, config: Self.rolled())
            for p in 0..<30 { try await Self.fill(broker, "big", p, size: 40 << 10) }
        }
        let router = Self.router(broker)
        var request = ServerTests.ResourceBoundTests.fetch("big", (0..<30).map { (Int32($0), 0) })
        request.maxBytes = 100 << 10
        let first = router.fetchPass(request, preRead: [:])
        var reads: [FetchKey: FetchPreRead] = [:]
        router.responseMemory.release(await router.readBlocked(first.blocked, into: &reads))
        let full = reads.values.filter { if case .full(let read) = $0 { read.slice == nil && read.highWatermark == 2 } else { false } }.count
        #expect(full == 28)
        let second = router.fetchPass(request, preRead: reads)
        #expect(second.answerNow)
        let answered: [FetchResponse.Partition] = second.response.topics.flatMap { $0.partitions }
        let withRecords: [Int32] = answered.filter { ($0.records?.count ?? 0) > 0 }.map { $0.partitionIndex }
        #expect(withRecords == [0, 1])
        #expect(answered.allSatisfy { $0.highWatermark == 2 })
        reads.removeAll()
        try await broker.close()
    }
}

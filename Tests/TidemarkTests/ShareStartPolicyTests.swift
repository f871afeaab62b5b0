import Foundation
import TestSupport
import Testing
@testable import Tidemark
import TidemarkStorage

/// `share.auto.offset.reset`: earliest, latest, and KIP-1106's `by_duration:<ISO-8601>`.
@Suite struct ShareStartPolicyTests {
    @Test func durationsAreReadAsJavaReadsThem() {
        let cases: [(String, Int64?)] = [
            ("PT1H", 3_600_000), ("P1D", 86_400_000), ("P2DT3H4M5.5S", 2 * 86_400_000 + 3 * 3_600_000 + 4 * 60_000 + 5_500),
            ("pt30m", 1_800_000), ("PT0S", 0), ("PT0.001S", 1), ("PT1.0000000009S", nil), ("PT1.000000009S", 1_000), ("PT-5M", nil), ("-PT1H", nil),
            ("PT1H-30M", 1_800_000), ("P", nil), ("PT", nil), ("1H", nil), ("PT1H1H", nil), ("PT1S1M", nil), ("P1H", nil),
            ("PT1.5M", nil), ("PT99999999999999999999S", nil), ("P106751991167D", 9_223_372_036_828_800_000), ("P106751991168D", .max),
            ("PT9223372036854775807S", .max), ("PT9223372036854775808S", nil), ("P106751991167300D", .max), ("P106751991167301D", nil), ("", nil), ("PT1,5S", 1_500), ("PT-0.0001S", nil), ("-PT-0.5S", 500), ("PT1\u{17F}", nil), ("PT0.0001S", 0),
        ]
        for (text, ms) in cases {
            #expect(ShareStartPolicy.durationMilliseconds(text) == ms, "\(text)")
        }
        #expect(ShareStartPolicy("by_duration:PT1H") == .byDuration(milliseconds: 3_600_000))
        #expect(ShareStartPolicy("earliest") == .earliest && ShareStartPolicy("latest") == .latest)
        #expect(ShareStartPolicy("by_duration:-PT1H") == nil && ShareStartPolicy("none") == nil && ShareStartPolicy("by_duration:") == nil)
    }

    /// A group set to by_duration starts each partition at its first record no older than the
    /// duration, and at the log's end when none is that recent (the embedded consumer here; the
    /// Kafka front, whose loop leaves the lookup to the executor: the interop test
    /// `test_share_auto_offset_reset_by_duration_starts_at_recent_jobs`).
    @Test func aGroupByDurationStartsAtTheFirstRecentRecord() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        try await broker.createTopic("old", partitions: 1)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for (i, age) in [7_200_000, 5_400_000, 1_800_000, 60_000].enumerated() {
            try await KeyOrderingAndDelayTests.append(broker, "jobs", key: nil, value: "job-\(i)", timestamp: now - Int64(age))
        }
        try await KeyOrderingAndDelayTests.append(broker, "old", key: nil, value: "stale", timestamp: now - 7_200_000)
        await #expect(throws: TidemarkError.self) {
            try await broker.alterGroupConfig("recent", changes: [.set("share.auto.offset.reset", "by_duration:-PT1H")])
        }
        // Read without the white space around it, as Kafka's ConfigDef reads values.
        try await broker.alterGroupConfig("recent", changes: [.set("share.auto.offset.reset", " by_duration:PT1H ")])
        // Described before any worker reads: the backlog counts from there.
        #expect(broker.queueReports(group: "recent", ages: false).isEmpty)
        let worker = try await ShareConsumer(broker: broker, group: "recent", topics: ["jobs", "old"], mode: .explicit)
        let jobs = try await worker.poll(maxRecords: 10, timeout: .seconds(2))
        #expect(jobs.map { String(decoding: $0.value ?? [], as: UTF8.self) } == ["job-2", "job-3"])
        let starts = Dictionary(uniqueKeysWithValues: broker.shares.summaries("recent", view: broker.shareLogView).map { ($0.topicPartition.topic, $0.startOffset) })
        #expect(starts == ["jobs": 2, "old": 1], "\(starts)")
        try await worker.close()
        try await broker.close()
    }

    /// A start by time that cannot be looked up for now (no descriptor) is tried again at the
    /// next acquire; one that cannot succeed (an I/O error) starts the partition at its log's
    /// start, where the read answers the error (it was declined at every poll, saying nothing).
    @Test func aStartByTimeThatCannotBeReadIsRetriedOrStartsAtTheLogStart() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        try await broker.createTopic("broken", partitions: 1)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for topic in ["jobs", "broken"] {
            for (i, age) in [7_200_000, 60_000].enumerated() {
                try await KeyOrderingAndDelayTests.append(broker, topic, key: nil, value: "\(topic)-\(i)", timestamp: now - Int64(age))
            }
        }
        try await broker.alterGroupConfig("recent", changes: [.set("share.auto.offset.reset", "by_duration:PT1H")])
        #expect(broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "recent", memberId: "w1", memberEpoch: 0, subscribedTopicNames: ["jobs", "broken"])).error == nil)
        let tps = [TopicPartition("jobs", 0), TopicPartition("broken", 0)]
        _ = broker.shares.updateSession(
            group: "recent", member: "w1", epoch: 0, add: tps, forget: [], acknowledgements: [:], allowRenew: false, view: broker.shareLogView)
        StorageFaults.inject(.read, .tooManyOpenFiles, pathContains: dir.path + "/jobs-0/", times: nil)
        StorageFaults.inject(.read, .ioError, pathContains: dir.path + "/broken-0/", times: nil)
        _ = await broker.acquireShares(group: "recent", member: "w1", partitions: tps, maxRecords: 10)
        let starts = { Dictionary(uniqueKeysWithValues: broker.shares.summaries("recent", view: broker.shareLogView).filter(\.started).map { ($0.topicPartition.topic, $0.startOffset) }) }
        #expect(starts()["jobs"] == nil, "not started while it cannot be read")
        #expect(starts()["broken"] == 0, "\(starts())")
        StorageFaults.clear(pathContains: dir.path)
        let acquired = await broker.acquireShares(group: "recent", member: "w1", partitions: tps, maxRecords: 10)
        #expect(starts()["jobs"] == 1)
        #expect(acquired.first { $0.topicPartition.topic == "jobs" }?.offsets == [1])
        try await broker.close()
    }

    /// An acknowledgement where nothing was acquired makes no share state (it made one at the
    /// group's start, a by_duration group's after a time lookup on the caller's thread, an
    /// event loop's for the Kafka front): it is refused, and the group starts where it would.
    @Test func anAcknowledgementBeforeAnyAcquireMakesNoState() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        try await broker.alterGroupConfig("workers", changes: [.set("share.auto.offset.reset", "by_duration:PT1H")])
        let tp = TopicPartition("jobs", 0)
        #expect(broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: "w1", memberEpoch: 0, subscribedTopicNames: ["jobs"])).error == nil)
        _ = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 0, add: [tp], forget: [], acknowledgements: [:], allowRenew: false, view: broker.shareLogView)
        let update = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 1, add: [], forget: [],
            acknowledgements: [tp: [ShareAcknowledgement(first: 0, last: 0, types: [.accept])]], allowRenew: false,
            view: broker.shareLogViewWithoutBlocking)
        #expect(update.acknowledged[tp] == .some(.unknownTopicOrPartition))
        #expect(!broker.shares.summaries("workers", view: broker.shareLogView).contains { $0.started })
        try await broker.close()
    }
}

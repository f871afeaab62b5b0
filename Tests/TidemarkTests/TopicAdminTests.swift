import Foundation
import TestSupport
import Testing
@testable import Tidemark
import TidemarkStorage

/// What Kafka's admin tools expect of topic names and settings (found by a review against
/// Kafka's ControllerApis, ReplicationControlManager and LogConfig).
@Suite struct TopicAdminTests {
    /// The throttled-replica lists are checked as Kafka's ThrottledReplicaListValidator checks
    /// them ('*' or partition:broker entries), and bounded: APPENDs of new items grew the value,
    /// topics.json and each change's time for ever (quadratically: each took seconds after 20).
    @Test func throttledReplicaListsAreCheckedAndBounded() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 1)
        let name = "leader.replication.throttled.replicas"
        func value() throws -> String? { try broker.describeTopic("t").config.kafkaConfigs.first { $0.0 == name }?.1 }
        try await broker.alterTopicConfig("t", changes: [.set(name, "*")])
        try await broker.alterTopicConfig("t", changes: [.set(name, "0:1, 1:1")])
        try await broker.alterTopicConfig("t", changes: [.append(name, "1:1,2:1,2:1")])
        #expect(try value() == "0:1,1:1,2:1")
        try await broker.alterTopicConfig("t", changes: [.subtract(name, "0:1")])
        #expect(try value() == "1:1,2:1")
        for bad in ["x", "1:", ":1", "1:1,abc", "*,1:1", "-1:1"] {
            await #expect(throws: TidemarkError.self, "\(bad)") { try await broker.alterTopicConfig("t", changes: [.set(name, bad)]) }
        }
        let many = (0..<20_000).map { "\($0):1" }.joined(separator: ",")
        try await broker.alterTopicConfig("t", changes: [.set(name, many)])
        let more = (20_000..<40_000).map { "\($0):1" }.joined(separator: ",")
        await #expect(throws: TidemarkError.self) { try await broker.alterTopicConfig("t", changes: [.append(name, more)]) }
        #expect(try value()?.split(separator: ",").count == 20_000)
        try await broker.close()
    }

    /// Group ids are the clients' to choose: at most `maxGroups` groups have settings of their
    /// own (each new one grew the map and the file rewritten at every change, for ever). A
    /// group already configured can still change, and one whose settings are deleted frees
    /// its place.
    @Test func groupsWithSettingsOfTheirOwnAreBounded() throws {
        let dir = TemporaryDirectory()
        let configs = try GroupConfigs(path: dir.file("group-configs.json"), maxGroups: 3)
        for g in ["a", "b", "c"] { try configs.alter(g, changes: [.set("share.key.ordering", "true")], replacing: false, validateOnly: false) }
        #expect(throws: TidemarkError.self) {
            try configs.alter("d", changes: [.set("share.key.ordering", "true")], replacing: false, validateOnly: false)
        }
        #expect(configs.explicit("d").isEmpty)
        try configs.alter("c", changes: [.set("share.delivery.count.limit", "3")], replacing: false, validateOnly: false)
        try configs.alter("a", changes: [.delete("share.key.ordering")], replacing: false, validateOnly: false)
        try configs.alter("d", changes: [.set("share.key.ordering", "true")], replacing: false, validateOnly: false)
        let reread = try GroupConfigs(path: dir.file("group-configs.json"))
        #expect(reread.explicit("a").isEmpty && reread.explicit("d") == ["share.key.ordering": "true"])
        #expect(reread.explicit("c") == ["share.key.ordering": "true", "share.delivery.count.limit": "3"])
    }

    /// Kafka reserves only its internal topics' names: `__app.events` (Debezium's heartbeats
    /// start with `__`) is an ordinary topic. Names that differ only by '.' and '_' collide.
    @Test func namesKafkaAllowsAreAllowedAndCollisionsRefused() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("__app.events", partitions: 1)
        #expect(broker.listTopics() == ["__app.events"])
        await #expect { try await broker.createTopic("__app_events", partitions: 1) } throws: { error in
            (error as? TidemarkError)?.code == .invalidTopicName && "\(error)".contains("collides")
        }
        #expect(throws: TidemarkError.self) {
            try broker.checkNewTopic("__app_events", partitions: 1, config: TopicConfig())
        }
        try await broker.createTopic("__app-events", partitions: 1)
        try await broker.close()
    }

    /// A 249-character topic (Kafka's longest) is deleted and made again: the name its
    /// directory is renamed to while it goes must stay within NAME_MAX.
    @Test func aTopicWithTheLongestNameIsDeletedAndMadeAgain() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        let name = String(repeating: "n", count: TopicName.maxLength)
        try await broker.createTopic(name, partitions: 2)
        _ = try await broker.append(topic: name, partition: 1, batches: try idempotentBatch(producerId: -1, epoch: -1, sequence: -1, values: ["a"]))
        try await broker.deleteTopic(name)
        #expect(broker.listTopics().isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).allSatisfy { !$0.hasPrefix("nnn") })
        try await broker.createTopic(name, partitions: 2)
        #expect(try broker.describeTopic(name).partitions[1].logEndOffset == 0)
        try await broker.close()
    }

    /// A delete whose topics.json cannot be written (a full disk) leaves the topic served,
    /// and it stays deleted-or-not the same way after a restart.
    @Test func aDeleteThatCannotBeSavedLeavesTheTopicServed() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options())
            try await broker.createTopic("kept", partitions: 1)
            StorageFaults.inject(.open, .noSpace, pathContains: dir.path + "/topics.json")
            await #expect(throws: (any Error).self) { try await broker.deleteTopic("kept") }
            #expect(broker.listTopics() == ["kept"])
            _ = try await broker.append(topic: "kept", partition: 0, batches: try idempotentBatch(producerId: -1, epoch: -1, sequence: -1, values: ["a"]))
            try await broker.close()
        }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(broker.listTopics() == ["kept"])
        #expect(try broker.describeTopic("kept").partitions[0].logEndOffset == 1)
        try await broker.close()
    }

    /// Kafka's settings as kafka-configs, Terraform and Spring set them: segment.bytes below
    /// max.message.bytes (a larger batch gets a segment of its own); flush.messages and
    /// flush.ms kept apart; segment.ms honoured; single-node no-ops (min.insync.replicas)
    /// kept and described; APPEND and SUBTRACT on the list cleanup.policy.
    @Test func kafkaTopicSettingsAreAcceptedAsKafkaAcceptsThem() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        var config = TopicConfig()
        try config.apply(kafkaName: "segment.bytes", value: "1048576")
        try config.apply(kafkaName: "max.message.bytes", value: "2000000")
        try config.apply(kafkaName: "min.insync.replicas", value: "2")
        try config.apply(kafkaName: "segment.ms", value: "60000")
        // retention.ms: -1 keeps everything; below it is refused (Kafka: at least -1).
        try config.apply(kafkaName: "retention.ms", value: "-1")
        #expect(config.retentionMs == nil)
        #expect(throws: TidemarkError.self) { try config.apply(kafkaName: "retention.ms", value: "-2") }
        // Values are read without the white space around them, as Kafka's ConfigDef reads them.
        var spaced = TopicConfig()
        try spaced.apply(kafkaName: "retention.ms", value: " 100\t")
        try spaced.apply(kafkaName: "message.timestamp.type", value: "LogAppendTime ")
        try spaced.apply(kafkaName: "preallocate", value: " true")
        #expect(spaced.retentionMs == 100 && spaced.timestampType == .logAppendTime && spaced.storedOnly?["preallocate"] == "true")
        try await broker.createTopic("t", partitions: 1, config: config)
        let big = try idempotentBatch(producerId: -1, epoch: -1, sequence: -1, values: [String(repeating: "x", count: 1_500_000)])
        _ = try await broker.append(topic: "t", partition: 0, batches: big)
        _ = try await broker.append(topic: "t", partition: 0, batches: big)
        #expect(try broker.partitionState("t", 0).log.logEndOffset == 2)
        #expect(try broker.partitionState("t", 0).log.config.segmentMs == 60_000)

        try await broker.alterTopicConfig("t", changes: [.set("flush.messages", "1000"), .set("flush.ms", "500")])
        var described = Dictionary(uniqueKeysWithValues: try broker.describeTopic("t").config.kafkaConfigs)
        #expect(described["flush.messages"] == "1000" && described["flush.ms"] == "500")
        #expect(described["min.insync.replicas"] == "2" && described["segment.ms"] == "60000")
        #expect(try broker.partitionState("t", 0).log.config.flushPolicy == .everyMessagesOrInterval(messages: 1000, milliseconds: 500))
        try await broker.alterTopicConfig("t", changes: [.delete("flush.ms"), .delete("min.insync.replicas")])
        described = Dictionary(uniqueKeysWithValues: try broker.describeTopic("t").config.kafkaConfigs)
        #expect(described["flush.messages"] == "1000" && described["flush.ms"] == "\(Int64.max)")
        #expect(described["min.insync.replicas"] == "1", "back to Kafka's default")
        #expect(Set(TopicConfig.storedOnlyKafkaNames.keys).isSubset(of: described.keys), "the whole set is described")

        // flush.messages=1 syncs every append whatever flush.ms says: commits and share
        // acknowledgements of the topic wait for their sync too (`syncsEveryAppend`).
        try await broker.alterTopicConfig("t", changes: [.set("flush.messages", "1"), .set("flush.ms", "1000")])
        #expect(try broker.describeTopic("t").config.flushPolicy == .everyAppend)
        #expect(try broker.partitionState("t", 0).log.config.flushPolicy == .everyAppend)
        described = Dictionary(uniqueKeysWithValues: try broker.describeTopic("t").config.kafkaConfigs)
        #expect(described["flush.messages"] == "1" && described["flush.ms"] == "1000")
        try await broker.alterTopicConfig("t", changes: [.set("flush.messages", "1000"), .delete("flush.ms")])

        try await broker.alterTopicConfig("t", changes: [.append("cleanup.policy", "delete")])
        await #expect(throws: TidemarkError.self) { try await broker.alterTopicConfig("t", changes: [.append("cleanup.policy", "compact")]) }
        await #expect(throws: TidemarkError.self) { try await broker.alterTopicConfig("t", changes: [.append("retention.ms", "1")]) }
        // Kafka's compression.type values, and no other.
        for value in ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"] {
            try await broker.alterTopicConfig("t", changes: [.set("compression.type", value)])
            #expect(Dictionary(uniqueKeysWithValues: try broker.describeTopic("t").config.kafkaConfigs)["compression.type"] == value)
        }
        for (name, value) in [
            ("remote.storage.enable", "true"), ("min.insync.replicas", "0"), ("no.such.config", "1"), ("flush.messages", "0"),
            ("compression.type", "brotli"), ("compression.type", "LZ4"), ("segment.bytes", "1048575"),
        ] {
            await #expect(throws: TidemarkError.self, "\(name)=\(value)") {
                try await broker.alterTopicConfig("t", changes: [.set(name, value)])
            }
        }
        // Kafka 4's internal.segment.bytes takes a smaller size (tests' segments), kept as
        // segment.bytes, also across a restart.
        // Given with segment.bytes, it wins (Kafka's LogConfig.segmentSize()), in either order.
        try await broker.alterTopicConfig("t", changes: [.set("internal.segment.bytes", "4096"), .set("segment.bytes", "2097152")])
        #expect(try broker.describeTopic("t").overrides.contains("segment.bytes"))
        #expect(Dictionary(uniqueKeysWithValues: try broker.describeTopic("t").config.kafkaConfigs)["segment.bytes"] == "4096")
        // Removed with a segment.bytes given beside it: that one stays.
        try await broker.alterTopicConfig("t", changes: [.set("segment.bytes", "2097152"), .delete("internal.segment.bytes")])
        #expect(Dictionary(uniqueKeysWithValues: try broker.describeTopic("t").config.kafkaConfigs)["segment.bytes"] == "2097152")
        try await broker.alterTopicConfig("t", changes: [.set("internal.segment.bytes", "4096")])
        try await broker.close()
        let reopened = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(try reopened.partitionState("t", 0).log.config.flushPolicy == .everyMessages(1000))
        #expect(try reopened.partitionState("t", 0).log.config.segmentBytes == 4096)
        try await reopened.close()
    }

    /// A topic follows the broker's defaults in what it does not set itself, also across a
    /// restart that changes them, as Kafka's topics do (a topic's setting is its own only when
    /// set on it). They were copied into the topic at its creation: a restart with another
    /// `log.retention.ms` never reached the topics there, and DescribeConfigs showed the copies
    /// as the topic's own. What a topic sets stays its own, also a value equal to a default.
    /// A topics.json from before reads as setting what differs from Kafka's defaults.
    @Test func aTopicFollowsTheBrokersDefaultsItDoesNotSet() async throws {
        let dir = TemporaryDirectory()
        var opts = options()
        opts.defaultTopicConfig.retentionMs = 5000
        opts.defaultTopicConfig.maxMessageBytes = 2_000_000
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("plain", partitions: 1)
        var own = opts.defaultTopicConfig
        try own.apply(kafkaName: "segment.bytes", value: "1073741824")
        try own.apply(kafkaName: "retention.ms", value: "60000")
        try await broker.createTopic("own", partitions: 1, config: own, overrides: ["segment.bytes", "retention.ms"])
        var embedded = opts.defaultTopicConfig
        embedded.retentionBytes = 1 << 30
        try await broker.createTopic("embedded", partitions: 1, config: embedded)
        #expect(try broker.describeTopic("plain").overrides == [])
        #expect(try broker.describeTopic("own").overrides == ["segment.bytes", "retention.ms"])
        #expect(try broker.describeTopic("embedded").overrides == ["retention.bytes"])
        try await broker.close()

        opts.defaultTopicConfig = TopicConfig()
        opts.defaultTopicConfig.retentionMs = 9000
        opts.defaultTopicConfig.segmentBytes = 1 << 20
        let log = CapturedLog()
        opts.logger = log.logger
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        // Said once per setting, with the topics' count (a line per topic and setting flooded
        // the log of a restart of 1,000 topics).
        let followed = log.matching("topics follow the broker's setting")
        #expect(Set(followed.map { $0.metadata["setting"] ?? "" }).count == followed.count)
        #expect(followed.first { $0.metadata["setting"] == "retention.ms" }?.metadata["count"] == "2")
        #expect(followed.first { $0.metadata["setting"] == "retention.ms" }?.metadata["topics"] == "embedded, plain")
        let plain = try broker.describeTopic("plain").config
        #expect(plain.retentionMs == 9000 && plain.maxMessageBytes == 1_048_588 && plain.segmentBytes == 1 << 20)
        #expect(try broker.partitionState("plain", 0).log.config.retentionMs == 9000)
        let ownNow = try broker.describeTopic("own").config
        #expect(ownNow.retentionMs == 60000 && ownNow.segmentBytes == 1 << 30)
        #expect(try broker.describeTopic("embedded").config.retentionBytes == 1 << 30)
        // A setting deleted follows the broker's again; one set is the topic's.
        try await broker.alterTopicConfig("own", changes: [.delete("retention.ms"), .set("max.message.bytes", "1048588")])
        #expect(try broker.describeTopic("own").config.retentionMs == 9000)
        #expect(try broker.describeTopic("own").overrides == ["segment.bytes", "max.message.bytes"])
        try await broker.close()

        // A file from before: no overrides. Its first open changes nothing (a setting given equal
        // to Kafka's default, under a broker whose default differs, keeps its value: it would
        // otherwise take the broker's, a shorter retention deleting data), and the overrides
        // derived are saved.
        let path = dir.path + "/topics.json"
        func stripOverrides() throws {
            var file = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            file["topics"] = (file["topics"] as? [[String: Any]])?.map { topic in topic.filter { $0.key != "overrides" } }
            try JSONSerialization.data(withJSONObject: file).write(to: URL(fileURLWithPath: path))
        }
        try stripOverrides()
        // The tools (no broker settings) keep every config as stored, and derive nothing.
        var tools = options()
        tools.topicsFollowDefaults = false
        broker = try await Broker.open(dataDirectory: dir.path, options: tools)
        #expect(try broker.describeTopic("plain").config.retentionMs == 9000)
        #expect(try broker.describeTopic("own").config.maxMessageBytes == 1_048_588)
        // A topic they make is saved with its own settings; the older entries stay without
        // (the next broker node derives them against its settings), and their settings cannot
        // be changed here (a deleted one would be pinned at Kafka's default).
        try await broker.createTopic("by-tools", partitions: 1)
        await #expect(throws: TidemarkError.self) { try await broker.alterTopicConfig("plain", changes: [.delete("retention.ms")]) }
        try await broker.close()
        let saved = try #require(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])["topics"] as? [[String: Any]]
        #expect(saved?.filter { $0["overrides"] != nil }.compactMap { $0["name"] as? String } == ["by-tools"])

        opts.defaultTopicConfig.retentionMs = 3_600_000
        opts.defaultTopicConfig.maxMessageBytes = 3_000_000
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        let legacy = try broker.describeTopic("plain")
        #expect(legacy.config.maxMessageBytes == 1_048_588 && legacy.config.retentionMs == 9000)
        #expect(legacy.overrides == ["retention.ms", "segment.bytes", "max.message.bytes"])
        #expect(try broker.describeTopic("own").config.retentionMs == 9000)
        try await broker.close()
        #expect((try String(contentsOfFile: path, encoding: .utf8)).contains("overrides"))

        // A stored value this version refuses is named and left at the broker's; the topic's
        // other settings still apply. A handled name among the stored-only ones (a hand edit)
        // is not listed twice (it trapped a dictionary at the start).
        var file = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        file["topics"] = (file["topics"] as? [[String: Any]])?.map { topic in
            guard topic["name"] as? String == "plain" else { return topic }
            var topic = topic
            var config = topic["config"] as? [String: Any] ?? [:]
            config["storedOnly"] = ["compression.gzip.level": "100", "retention.ms": "5"]
            topic["config"] = config
            topic["overrides"] = ["compression.gzip.level", "retention.ms", "segment.bytes"]
            return topic
        }
        try JSONSerialization.data(withJSONObject: file).write(to: URL(fileURLWithPath: path))
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        let edited = try broker.describeTopic("plain").config
        #expect(edited.retentionMs == 9000 && edited.segmentBytes == 1 << 20 && edited.storedOnly?["compression.gzip.level"] == nil)
        try await broker.close()
    }

    /// A partition whose log failed an fsync refuses appends until a restart: it is offline
    /// to Metadata and monitoring (it was reported healthy), its records still readable.
    @Test func aFailedLogIsReportedOffline() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        var config = TopicConfig()
        config.flushPolicy = .everyAppend
        try await broker.createTopic("synced", partitions: 2, config: config)
        let one = try idempotentBatch(producerId: -1, epoch: -1, sequence: -1, values: ["a"])
        _ = try await broker.append(topic: "synced", partition: 1, batches: one)
        #expect(broker.unavailablePartitions(of: "synced").isEmpty)
        StorageFaults.inject(.sync, .ioError, pathContains: dir.path + "/synced-1/")
        await #expect(throws: (any Error).self) { try await broker.append(topic: "synced", partition: 1, batches: one) }
        #expect(broker.unavailablePartitions(of: "synced") == [1])
        let described = try broker.describeTopic("synced").partitions
        #expect(described[0].isWritable && described[1].failed != nil && described[1].offline == nil && described[1].logEndOffset == 2)
        try? await broker.close()
    }

    /// A quiet topic's records go when its retention passes, as in Kafka: the active segment
    /// is rolled and deleted once it is expired and nothing was written to it for as long.
    @Test func aQuietTopicsActiveSegmentExpires() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock(Int64(Date().timeIntervalSince1970 * 1000))
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(clock: clock, maintenanceMs: 3_600_000))
        var config = TopicConfig()
        config.retentionMs = 2_000
        try await broker.createTopic("quiet", partitions: 1, config: config)
        var builder = RecordBatchBuilder()
        builder.append(timestamp: clock.read(), key: nil, value: bytes("old"))
        _ = try await broker.append(topic: "quiet", partition: 0, batches: try builder.build())
        let log = try broker.partitionState("quiet", 0).log
        #expect(try log.enforceRetention().isEmpty)  // not expired yet
        // An hour on: the records and the file's last write (real time: the test may run slowly
        // on a loaded machine) are both well past retention.
        clock.advance(3_600_000)
        #expect(try log.enforceRetention() == [0])
        #expect(log.logStartOffset == 1 && log.logEndOffset == 1)
        _ = try await broker.append(topic: "quiet", partition: 0, batches: try builder.build())
        #expect(log.logEndOffset == 2)
        try await broker.close()
    }
}

import Foundation
import TestSupport
import Testing
import TidemarkStorage

@testable import Tidemark

#if canImport(Glibc)
import Glibc
#endif

/// The broker's own files after an operator (or a bad disk) changed them while it was stopped:
/// topics.json and group-configs.json get the checks the admin API applies (a value that
/// would trap later refuses the start, naming the file, the entry and the value), Kafka's -1
/// means unlimited retention as it does through the API, and damaged offsets in
/// `__consumer_offsets` stop the start with an error instead of a start that never ends.
@Suite struct HandEditedFilesTests {
    /// Rewrites `<dir>/topics.json` through its JSON object.
    static func editTopics(_ dir: TemporaryDirectory, _ edit: (inout [[String: Any]]) -> Void) throws {
        let path = dir.file("topics.json")
        var file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        var topics = file["topics"] as! [[String: Any]]
        edit(&topics)
        file["topics"] = topics
        try JSONSerialization.data(withJSONObject: file).write(to: URL(fileURLWithPath: path))
    }

    static func withTopic(_ dir: TemporaryDirectory) async throws {
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 1)
        try await HardeningTests.produce(broker, "t", 0, ["a", "b"])
        try await broker.close()
    }

    static func openFails(_ dir: TemporaryDirectory, mentioning words: [String]) async {
        await #expect {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options())
            try await broker.close()
        } throws: { error in
            let text = "\(error)"
            return words.allSatisfy { text.contains($0) }
        }
    }

    /// max.message.bytes past what the API allows (its batch check multiplies it by 4, which
    /// overflowed at the first produce) refuses the start with the topic and the setting.
    @Test func anOutOfRangeTopicSettingRefusesTheStart() async throws {
        let dir = TemporaryDirectory()
        try await Self.withTopic(dir)
        try Self.editTopics(dir) { topics in
            var config = topics[0]["config"] as! [String: Any]
            config["maxMessageBytes"] = 4_611_686_018_427_387_904
            topics[0]["config"] = config
        }
        await Self.openFails(dir, mentioning: ["topics.json", "'t'", "max.message.bytes"])
    }

    /// A name the API refuses (a path out of the data directory) or a topic listed twice.
    @Test(arguments: ["../escape", "dup"])
    func aBadOrRepeatedTopicNameRefusesTheStart(name: String) async throws {
        let dir = TemporaryDirectory()
        try await Self.withTopic(dir)
        try Self.editTopics(dir) { topics in
            if name == "dup" {
                topics.append(topics[0])
            } else {
                topics[0]["name"] = name
            }
        }
        await Self.openFails(dir, mentioning: ["topics.json", name == "dup" ? "listed twice" : "topic name"])
    }

    /// retention.ms and retention.bytes of -1 written into topics.json mean unlimited, as
    /// through the API (stored as none): maintenance passes keep every record. They used to
    /// delete every segment, the active one included, at each pass.
    @Test func minusOneRetentionInTopicsJsonKeepsEverything() async throws {
        let dir = TemporaryDirectory()
        try await Self.withTopic(dir)
        try Self.editTopics(dir) { topics in
            var config = topics[0]["config"] as! [String: Any]
            config["retentionMs"] = -1
            config["retentionBytes"] = -1
            topics[0]["config"] = config
            topics[0]["overrides"] = ["retention.bytes", "retention.ms"]
        }
        let clock = TestClock(4_000_000_000_000)  // a century after the records' timestamps
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(clock: clock, maintenanceMs: 20))
        let config = try broker.describeTopic("t").config
        #expect(config.retentionMs == nil && config.retentionBytes == nil)
        try await Task.sleep(for: .milliseconds(200))  // several maintenance passes
        #expect(try await readPartition(broker, "t", 0).map { text($0.value) } == ["a", "b"])
        #expect(try broker.describeTopic("t").partitions[0].logStartOffset == 0)
        try await broker.close()
    }

    /// group-configs.json with share.partition.max.record.locks at Int64.max (it sizes a share
    /// partition's window: the first ShareFetch trapped) refuses the start, naming it.
    @Test func anOutOfRangeGroupSettingRefusesTheStart() async throws {
        let dir = TemporaryDirectory()
        try await Self.withTopic(dir)
        let json = #"{"version":1,"groups":{"g":{"share.partition.max.record.locks":"9223372036854775807"}}}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: dir.file("group-configs.json")))
        await Self.openFails(dir, mentioning: ["group-configs.json", "'g'", "share.partition.max.record.locks"])
    }

    /// A FIFO where topics.json belongs: the start fails at once, naming it (it waited forever).
    @Test(.timeLimit(.minutes(1))) func aFifoInPlaceOfTopicsJsonIsAnError() async throws {
        let dir = TemporaryDirectory()
        try await Self.withTopic(dir)
        try FileManager.default.removeItem(atPath: dir.file("topics.json"))
        #expect(mkfifo(dir.file("topics.json"), 0o644) == 0)
        await Self.openFails(dir, mentioning: ["topics.json", "not a regular file"])
    }

    /// A commit batch of `__consumer_offsets` whose base offset was lowered (outside the CRC)
    /// in a part of the log a clean stop vouches for: the start stops with a corrupt-log error
    /// naming the offsets. It used to skip those commits without a word (groups rewound), or
    /// read the same batch forever when it was the last one of a read.
    @Test(.timeLimit(.minutes(1))) func damagedCommitOffsetsStopTheStartWithAnError() async throws {
        let dir = TemporaryDirectory()
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 1)
        for i in 0..<200 {  // past an index interval, so the open does not scan the early batches
            let commit = [TopicPartition("t", 0): CommittedOffset(offset: Int64(i), metadata: String(repeating: "m", count: 100))]
            #expect(try await broker.groups.commitOffsets(groupId: "g", offsets: commit) == nil)
        }
        try await broker.close()

        let segment = dir.file("__consumer_offsets-0/00000000000000000000.log")
        let positions = try SegmentSurgery.batchPositions(segment)
        #expect(positions.count >= 200)
        try SegmentSurgery.setBaseOffset(segment, position: positions[5], to: 1)
        // (The read's check of batches a clean open did not scan ends its slice before the
        // batch; the next read, from offset 5, finds it missing.)
        await Self.openFails(dir, mentioning: ["corruptLog", "offsets 5-5 are missing", "__consumer_offsets-0"])

        // Put back, the same directory opens with every commit.
        try SegmentSurgery.setBaseOffset(segment, position: positions[5], to: 5)
        broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(broker.groups.fetchOffsets(groupId: "g")[TopicPartition("t", 0)]?.offset == 199)
        try await broker.close()
    }

    /// A share-state snapshot whose dead-letter count leaves no room to add (it overflowed once
    /// a letter was written) is read as damaged, as other impossible values are.
    @Test func anImpossibleDeadLetterCountIsUnreadable() throws {
        var value: [UInt8] = []
        func put<T: FixedWidthInteger>(_ n: T) { withUnsafeBytes(of: n.bigEndian) { value += $0 } }
        put(Int16(1))  // version
        put(Int64(0))  // start offset
        put(Int32(0))  // runs
        put(Int64(-1))  // dead-letter producer id
        put(Int32(0))  // next sequence
        put(Int64.max)  // dead letters written
        put(Int32(0))  // pending letters
        #expect(ShareStateStore.decodeValue(value) == nil)
        value.replaceSubrange((value.count - 12)..<(value.count - 4), with: withUnsafeBytes(of: Int64(7).bigEndian) { Array($0) })
        #expect(ShareStateStore.decodeValue(value)?.deadLettered == 7)
    }
}

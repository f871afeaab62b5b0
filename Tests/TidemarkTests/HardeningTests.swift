import Foundation
import Synchronization
import SystemPackage
import TestSupport
import Testing
import TidemarkStorage

@testable import Tidemark

/// What a bad disk or a crash does to the engine: one partition goes offline, not the node;
/// deletes survive crashes; every cut and every damaged read is logged.
@Suite struct HardeningTests {
    /// A DeleteRecords racing the delete of its topic writes its log start into the deleted
    /// directory or not at all, never into the topic made again under the name. (Written by
    /// path after the log's lock, it landed there: the new topic's records were hidden behind
    /// the old start at the next open. The write is held up here, as a loaded disk would.)
    @Test func aLogStartIsNeverWrittenIntoATopicMadeAgain() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        func plainBatch(_ value: String) throws -> [UInt8] {
            var builder = RecordBatchBuilder()
            builder.append(timestamp: Int64(Date().timeIntervalSince1970 * 1000), key: nil, value: Array(value.utf8))
            return try builder.build()
        }
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("jobs", partitions: 1)
        for i in 0..<10 { _ = try await broker.append(topic: "jobs", partition: 0, batches: try plainBatch("old-\(i)")) }
        StorageFaults.slow(.open, by: 1_000_000_000, pathContains: dir.path + "/jobs-0/log-start-offset")
        let deleting = Task { [broker] in try await broker.deleteRecords(topic: "jobs", partition: 0, before: 5) }
        try await Task.sleep(for: .milliseconds(300))
        try await broker.deleteTopic("jobs")
        StorageFaults.clear(pathContains: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        for i in 0..<3 { _ = try await broker.append(topic: "jobs", partition: 0, batches: try plainBatch("new-\(i)")) }
        _ = try? await deleting.value
        try await broker.close()
        broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(try broker.offsets(topic: "jobs", partition: 0) == (start: 0, end: 3))
        #expect(try await readPartition(broker, "jobs", 0).map { text($0.value) } == ["new-0", "new-1", "new-2"])
        try await broker.close()
    }

    /// A broker opened on `dir` with the test options, its log captured.
    static func openLogged(_ dir: TemporaryDirectory) async throws -> (Broker, CapturedLog) {
        let log = CapturedLog()
        var opts = options()
        opts.logger = log.logger
        return (try await Broker.open(dataDirectory: dir.path, options: opts), log)
    }

    static func produce(_ broker: Broker, _ topic: String, _ partition: Int, _ values: [String]) async throws {
        var builder = RecordBatchBuilder()
        // Now-ish timestamps, so retention (7 days) keeps every segment.
        for value in values { builder.append(timestamp: currentTimeMilliseconds(), key: nil, value: Array(value.utf8)) }
        _ = try await broker.append(topic: topic, partition: partition, batches: try builder.build())
    }

    /// A partition directory that cannot be opened (EACCES) takes only that partition offline:
    /// the broker starts, the other partition serves, requests for the bad one get a storage
    /// error, and close succeeds. Once the directory is readable again it serves again.
    @Test func unreadablePartitionGoesOfflineAlone() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 2)
        try await Self.produce(broker, "t", 0, ["a"])
        try await Self.produce(broker, "t", 1, ["b"])
        try await broker.close()

        StorageFaults.inject(.open, .permissionDenied, pathContains: dir.path + "/t-1/", times: nil)
        let log: CapturedLog
        (broker, log) = try await Self.openLogged(dir)
        let described = try broker.describeTopic("t")
        #expect(described.partitions[0].offline == nil && described.partitions[0].logEndOffset == 1)
        #expect(described.partitions[1].offline?.contains("Permission denied") == true)
        #expect(!log.matching("partition offline").isEmpty)
        try await Self.produce(broker, "t", 0, ["c"])
        await #expect { try await Self.produce(broker, "t", 1, ["d"]) } throws: { ($0 as? TidemarkError)?.code == .storage }
        await #expect { _ = try await broker.fetch(topic: "t", partition: 1, offset: 0) } throws: {
            ($0 as? TidemarkError)?.code == .storage
        }
        #expect(try await readPartition(broker, "t", 0).map { text($0.value) } == ["a", "c"])
        try await broker.close()

        StorageFaults.clear(pathContains: dir.path)
        broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(try await readPartition(broker, "t", 1).map { text($0.value) } == ["b"])
        try await broker.close()
    }

    /// A byte flipped in the first batch of a partition stopped cleanly (an outside hunt: the
    /// next start, or any tool's open, cut the log there, every good batch after it with it, and
    /// `verify` said ok after): that partition stays offline, its file as it was, the log saying
    /// how to repair it; the other serves. `verify --repair` then cuts it.
    @Test func damageAfterACleanStopIsNotCut() async throws {
        try await Self.expectDamageKeepsThePartitionOffline(saying: "after a clean shutdown") { dir, bytes in
            bytes[70] ^= 0xFF  // inside the first batch's records
        }
    }

    /// After a crash, a first batch whose length field was made longer (outside the CRC: it
    /// reaches past the file's end, as the last write cut short does) with good batches after
    /// it: not what a crash leaves, so not cut (a start cut the whole log there, the tools
    /// too; found by a flaky CLI test). The partition stays offline, saying so; the other
    /// serves; `verify --repair` then cuts it.
    @Test func aLengthMadeLongerOverGoodBatchesIsNotCutAfterACrash() async throws {
        try await Self.expectDamageKeepsThePartitionOffline(saying: "past the recovery point", repairedEnd: 0) { dir, bytes in
            // As a kill -9 leaves it: not clean, the recovery point at the segment's base.
            try Data("0".utf8).write(to: URL(fileURLWithPath: dir.path + "/t-1/.clean-shutdown"))
            try Data("0\n0\n".utf8).write(to: URL(fileURLWithPath: dir.path + "/t-1/recovery-point.checkpoint"))
            bytes[9] = 0x7F  // batchLength: 8 MiB more, past the file's end
        }
    }

    /// Partition 0 of "t" holds "a", partition 1 "b", "c", "d" (three batches); after a stop,
    /// `damage` changes partition 1's segment (and may rewrite its markers). The next start keeps
    /// partition 1 offline with a reason `saying` that and naming the repair, logs it and cuts
    /// nothing; partition 0 serves. `verify --repair` then brings it back, cut at the damage
    /// (its log then ending at `repairedEnd`, when given).
    static func expectDamageKeepsThePartitionOffline(
        saying: String, repairedEnd: Int64? = nil, _ damage: (TemporaryDirectory, inout Data) throws -> Void
    ) async throws {
        let dir = TemporaryDirectory()
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("t", partitions: 2)
        try await Self.produce(broker, "t", 0, ["a"])
        for value in ["b", "c", "d"] { try await Self.produce(broker, "t", 1, [value]) }
        try await broker.close()
        let segment = dir.path + "/t-1/00000000000000000000.log"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: segment))
        try damage(dir, &bytes)
        try bytes.write(to: URL(fileURLWithPath: segment))

        let log: CapturedLog
        (broker, log) = try await Self.openLogged(dir)
        let described = try broker.describeTopic("t")
        #expect(described.partitions[0].offline == nil && described.partitions[0].logEndOffset == 1)
        let reason = described.partitions[1].offline ?? ""
        #expect(reason.contains(saying) && reason.contains("tidemark verify --repair"), "\(reason)")
        #expect(!log.matching("partition offline").isEmpty && log.matching("recovery cut the log").isEmpty)
        #expect(try await readPartition(broker, "t", 0).map { text($0.value) } == ["a"])
        try await broker.close()
        #expect(try Data(contentsOf: URL(fileURLWithPath: segment)) == bytes)

        _ = try LogVerifier.repair(partitionDirectory: dir.path + "/t-1")
        broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(try broker.describeTopic("t").partitions[1].offline == nil)
        if let repairedEnd { #expect(try broker.describeTopic("t").partitions[1].logEndOffset == repairedEnd) }
        try await broker.close()
    }

    /// The same damage in the broker's own committed-offsets log: cut and logged, so that the
    /// node starts (refused, it would not start at all); the commits before it are kept.
    @Test func damageInTheOffsetsLogIsCutSoTheNodeStarts() async throws {
        let dir = TemporaryDirectory()
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("o", partitions: 1)
        for (i, group) in ["g0", "g1", "g2"].enumerated() {
            #expect(try await broker.groups.commitOffsets(groupId: group, offsets: [TopicPartition("o", 0): CommittedOffset(offset: Int64(i + 1))]) == nil)
        }
        try await broker.close()
        let segment = dir.path + "/__consumer_offsets-0/00000000000000000000.log"
        let batches = try SegmentSurgery.batchPositions(segment)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: segment))
        bytes[batches[2] + 70] ^= 0xFF  // inside the third commit's records
        try bytes.write(to: URL(fileURLWithPath: segment))

        let log: CapturedLog
        (broker, log) = try await Self.openLogged(dir)
        #expect(!log.matching("recovery cut the log").isEmpty)
        let kept = Set(broker.groups.listGroups().map(\.groupId))
        #expect(kept.isSuperset(of: ["g0", "g1"]) && !kept.contains("g2"), "\(kept)")
        try await broker.close()
    }

    /// Damage in the offsets log where its open does not read (before the newest segment's
    /// tail after a clean stop) is met by the replay of commits: the node cannot start without
    /// them, and says which log and how to repair it (it said only that a batch did not check out).
    @Test func damageTheOffsetsReplayMeetsNamesTheRepair() async throws {
        let dir = TemporaryDirectory()
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("o", partitions: 1)
        for i in 0..<300 {
            #expect(try await broker.groups.commitOffsets(groupId: "g\(i)", offsets: [TopicPartition("o", 0): CommittedOffset(offset: 1)]) == nil)
        }
        try await broker.close()
        let segment = dir.path + "/__consumer_offsets-0/00000000000000000000.log"
        let batches = try SegmentSurgery.batchPositions(segment)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: segment))
        bytes[batches[20] + 70] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: segment))
        await #expect {
            broker = try await Broker.open(dataDirectory: dir.path, options: options())
        } throws: { error in
            "\(error)".contains("__consumer_offsets") && "\(error)".contains("tidemark verify --repair")
        }
        _ = try LogVerifier.repair(partitionDirectory: dir.path + "/__consumer_offsets-0")
        broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(broker.groups.listGroups().count == 20)
        try await broker.close()
    }

    /// An open that fails part way (a log it cannot open, a damaged group-configs.json) gives
    /// back what it took: no file of the directory stays open, no thread stays parked, and the
    /// same process opens the directory once the cause is gone.
    @Test func aFailedOpenLeavesNothingBehind() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options())
            try await broker.createTopic("t", partitions: 3)
            try await Self.produce(broker, "t", 0, ["a"])
            try await broker.close()
        }
        #expect(await openFilesSettling(under: dir.path).isEmpty)

        // Fails in the open's disk work, after the topic's logs and the offsets log opened.
        StorageFaults.inject(.open, .permissionDenied, pathContains: dir.path + "/__share_group_state-0/", times: nil)
        await #expect { _ = try await Broker.open(dataDirectory: dir.path, options: options()) } throws: {
            "\($0)".contains("Permission denied")
        }
        StorageFaults.clear(pathContains: dir.path)
        #expect(await openFilesSettling(under: dir.path).isEmpty)

        // Fails after it (the group settings file is damaged): the error names the file, and
        // the flusher's thread, started by then, stops. Other tests open and close brokers
        // meanwhile, hence the margin; each failed open used to leave one thread parked.
        let configs = dir.path + "/group-configs.json"
        try Data("{\"version\": 1, \"gro".utf8).write(to: URL(fileURLWithPath: configs))
        let flushersBefore = threads(named: "tidemark-flush")
        for _ in 0..<60 {
            await #expect { _ = try await Broker.open(dataDirectory: dir.path, options: options()) } throws: {
                "\($0)".contains("group-configs.json is damaged")
            }
        }
        #expect(threads(named: "tidemark-flush") < flushersBefore + 30)
        #expect(await openFilesSettling(under: dir.path).isEmpty)
        try FileManager.default.removeItem(atPath: configs)

        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(try await readPartition(broker, "t", 0).map { text($0.value) } == ["a"])
        try await Self.produce(broker, "t", 1, ["b"])
        try await broker.close()
    }

    /// Threads of this process with this name (from /proc/self/task).
    func threads(named name: String) -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.filter { task in
            let comm = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
            return comm.trimmingCharacters(in: .whitespacesAndNewlines) == name
        }.count
    }

    /// Paths under `directory` that this process holds open (from /proc/self/fd), but the lock
    /// file: a failed open releases its lock at once, and its descriptor may go a moment later.
    /// `openFiles(under:)` once it is empty, or after 30 s: the thread that ran an open's disk
    /// work may let go of the last reference to a log a moment after the open has answered
    /// (it resumes the caller first), which a busy machine stretches.
    func openFilesSettling(under directory: String) async -> [String] {
        for _ in 0..<1500 {
            if openFiles(under: directory).isEmpty { return [] }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return openFiles(under: directory)
    }

    func openFiles(under directory: String) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return entries.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0) }
            .filter { ($0.hasPrefix(directory + "/") || $0 == directory) && !$0.hasSuffix("/.lock") }
    }

    /// A delete interrupted after topics.json forgot the topic (here: the rename or the removal
    /// fails, as a crash would stop them) never brings the old data back under the same name.
    @Test(arguments: [StorageFaults.Operation.rename, .remove])
    func interruptedDeleteDoesNotResurrectData(failing operation: StorageFaults.Operation) async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("d", partitions: 1)
        try await Self.produce(broker, "d", 0, ["old-1", "old-2"])
        StorageFaults.inject(operation, .ioError, pathContains: dir.path + "/d-0", times: nil)
        await #expect(throws: (any Error).self) { try await broker.deleteTopic("d") }
        #expect(!broker.listTopics().contains("d"))
        try await broker.close()
        StorageFaults.clear(pathContains: dir.path)

        let log: CapturedLog
        (broker, log) = try await Self.openLogged(dir)
        #expect(!broker.listTopics().contains("d"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).allSatisfy { !$0.hasSuffix("-delete") })
        // topics.json said the deletion was under way: the open finished it (a directory the
        // deletion had not renamed was kept for good, without a word).
        #expect(log.matching("finishing a topic deletion").count == 1)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/d-0"))
        #expect(log.matching("partition directories that no topic lists").isEmpty)
        #expect(try !String(contentsOfFile: dir.path + "/topics.json", encoding: .utf8).contains("deleting"))
        try await broker.createTopic("d", partitions: 1)
        #expect(try await readPartition(broker, "d", 0).isEmpty)
        #expect(try broker.describeTopic("d").partitions[0].logEndOffset == 0)
        try await broker.close()
    }

    /// A deletion whose directory cannot be renamed stays pending through other saves of
    /// topics.json and through an open where it fails again (which starts anyway), and is
    /// finished by the first open that can; `deleting` never names an internal log.
    @Test func aPendingDeletionOutlivesOtherSavesAndFailedOpens() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("p", partitions: 1)
        try await Self.produce(broker, "p", 0, ["old"])
        StorageFaults.inject(.rename, .ioError, pathContains: dir.path + "/p-0", times: nil)
        await #expect(throws: (any Error).self) { try await broker.deleteTopic("p") }
        try await broker.createTopic("other", partitions: 1)  // another save of topics.json
        #expect(try String(contentsOfFile: dir.path + "/topics.json", encoding: .utf8).contains("\"deleting\""))
        try await broker.close()
        // Still failing: the open says so and starts.
        let log: CapturedLog
        (broker, log) = try await Self.openLogged(dir)
        #expect(log.matching("could not be removed; retried at the next start").count == 1)
        #expect(broker.listTopics() == ["other"])
        try await broker.close()
        StorageFaults.clear(pathContains: dir.path)
        broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/p-0"))
        #expect(try !String(contentsOfFile: dir.path + "/topics.json", encoding: .utf8).contains("\"deleting\""))
        try await broker.close()
        // A hand edit naming an internal log as deleting removes nothing.
        let path = dir.path + "/topics.json"
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        json["deleting"] = ["__consumer_offsets": 1]
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        broker = try await Broker.open(dataDirectory: dir.path, options: options())
        #expect(FileManager.default.fileExists(atPath: dir.path + "/__consumer_offsets-0"))
        try await broker.close()
    }

    /// A partition directory no topic lists (topics.json edited by hand) is kept, not served,
    /// and said at open with what to do.
    @Test func unlistedPartitionDirectoriesAreReportedAtOpen() async throws {
        let dir = TemporaryDirectory()
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("h", partitions: 2)
        try await Self.produce(broker, "h", 0, ["kept"])
        try await Self.produce(broker, "h", 1, ["kept too"])
        try await broker.close()
        let original = try Data(contentsOf: URL(fileURLWithPath: dir.file("topics.json")))
        try HandEditedFilesTests.editTopics(dir) { $0 = [] }
        var log: CapturedLog
        (broker, log) = try await Self.openLogged(dir)
        #expect(broker.listTopics().isEmpty)
        var said = log.matching("partition directories that no topic lists")
        #expect(said.count == 1 && said.first?.text.contains("count=2") == true && said.first?.text.contains("h-0") == true)
        #expect(FileManager.default.fileExists(atPath: dir.path + "/h-0"))
        #expect(try Broker.unlistedPartitionDirectories(dataDirectory: dir.path) == [dir.path + "/h-0", dir.path + "/h-1"])
        try await broker.close()

        // A topics.json restored from a copy made before the topic grew: its last partition
        // is not served, and was not said (an outside hunt).
        try original.write(to: URL(fileURLWithPath: dir.file("topics.json")))
        try HandEditedFilesTests.editTopics(dir) { $0[0]["partitions"] = 1 }
        (broker, log) = try await Self.openLogged(dir)
        #expect(try broker.partitionCount(of: "h") == 1)
        said = log.matching("partition directories that no topic lists")
        #expect(said.count == 1 && said.first?.text.contains("count=1") == true && said.first?.text.contains("h-1") == true)
        #expect(try Broker.unlistedPartitionDirectories(dataDirectory: dir.path) == [dir.path + "/h-1"])
        try await broker.close()
    }

    /// What a crash left unfinished, found when the broker opens, is cut and the cut is logged
    /// with the partition, the position, the bytes and the offsets.
    @Test func recoveryCutsAreLogged() async throws {
        let dir = TemporaryDirectory()
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("r", partitions: 1)
        for i in 0..<5 { try await Self.produce(broker, "r", 0, ["v\(i)"]) }
        try await broker.close()
        let logFile = dir.path + "/r-0/00000000000000000000.log"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 1, 0, 7, 7, 7]))
        try handle.close()
        // Not stopped cleanly: the write past the recovery point was the crash's.
        try Data("0".utf8).write(to: URL(fileURLWithPath: dir.path + "/r-0/.clean-shutdown"))
        let log: CapturedLog
        (broker, log) = try await Self.openLogged(dir)
        let cuts = log.matching("recovery cut the log")
        #expect(cuts.count == 1)
        #expect(cuts.first?.text.contains("cut 15 bytes") == true && cuts.first?.text.contains("partition=0") == true)
        #expect(cuts.first?.text.contains("offset 5") == true)
        #expect(try await readPartition(broker, "r", 0).count == 5)
        try await broker.close()
    }

    /// An oldest segment overwritten on disk: a fetch at its offsets answers an error (it used
    /// to skip silently to the next segment), the damage is logged once, the partition is
    /// marked for `verify --repair`, and the newer segments still serve.
    @Test(arguments: ["zeros", "emptied"])
    func damagedOldSegmentIsAnErrorNotASkip(damage: String) async throws {
        let dir = TemporaryDirectory()
        var config = TopicConfig()
        config.segmentBytes = 4096
        config.maxMessageBytes = 4096
        var broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("o", partitions: 1, config: config)
        for i in 0..<40 { try await Self.produce(broker, "o", 0, [String(repeating: "\(i % 10)", count: 300)]) }
        let segments = try broker.describeTopic("o").partitions[0].segmentCount
        #expect(segments > 2)
        try await broker.close()
        let first = dir.path + "/o-0/00000000000000000000.log"
        let size = try FileManager.default.attributesOfItem(atPath: first)[.size] as! Int
        try Data(count: damage == "zeros" ? size : 0).write(to: URL(fileURLWithPath: first))

        let log: CapturedLog
        (broker, log) = try await Self.openLogged(dir)
        for _ in 0..<3 {
            await #expect { _ = try await broker.fetch(topic: "o", partition: 0, offset: 0) } throws: {
                ($0 as? TidemarkError)?.code == .corruptMessage
            }
        }
        #expect(log.matching("verify --repair").count == 1)
        #expect(FileManager.default.fileExists(atPath: dir.path + "/o-0/" + LogVerifier.needsRepairName))
        let end = try broker.offsets(topic: "o", partition: 0).end
        let tail = try await broker.fetch(topic: "o", partition: 0, offset: end - 1)
        #expect(tail.slice != nil)
        try await broker.close()
        let report = try LogVerifier.verify(partitionDirectory: dir.path + "/o-0")
        #expect(!report.isHealthy)
        #expect(report.problems.contains { $0.message.contains("marked for repair") })
    }

    /// Maintenance failures are logged when they start (once, not every pass) and when they stop.
    @Test func maintenanceFailuresAreLoggedOnce() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        let log = CapturedLog()
        var opts = options(maintenanceMs: 3_600_000)
        opts.logger = log.logger
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("m", partitions: 1)
        try await Self.produce(broker, "m", 0, ["x"])
        StorageFaults.inject(.sync, .ioError, pathContains: dir.path + "/m-0/producer-state", times: 2)
        await broker.runMaintenance(writeSnapshots: true)
        await broker.runMaintenance(writeSnapshots: true)
        #expect(log.matching("producer-state snapshot failed").count == 1)
        #expect(log.matching("producer-state snapshot failed").first?.text.contains("Input/output error") == true)
        await broker.runMaintenance(writeSnapshots: true)
        #expect(log.matching("producer-state snapshot works again").count == 1)
        try await broker.close()
    }

    /// The minute's producer-state snapshots are written only where the log moved since the
    /// last one: an idle partition's was rewritten and fsynced every pass (an idle broker of
    /// 10,000 partitions made 10,000 fsyncs a minute). A sync that fails counts as a write.
    @Test func snapshotsAreWrittenOnlyWhereTheLogMoved() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        let log = CapturedLog()
        var opts = options(maintenanceMs: 3_600_000)
        opts.logger = log.logger
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("idle", partitions: 2)
        try await Self.produce(broker, "idle", 0, ["x"])
        await broker.runMaintenance(writeSnapshots: true)  // each partition's first
        StorageFaults.inject(.sync, .ioError, pathContains: dir.path + "/idle-", times: nil)
        await broker.runMaintenance(writeSnapshots: true)
        #expect(log.matching("producer-state snapshot failed").isEmpty, "nothing moved: nothing written")
        try await Self.produce(broker, "idle", 1, ["y"])
        await broker.runMaintenance(writeSnapshots: true)
        #expect(log.matching("producer-state snapshot failed").count == 1)
        #expect(log.matching("producer-state snapshot failed").first?.text.contains("idle-1") == true)
        StorageFaults.clear(pathContains: dir.path)
        try await broker.close()
    }

    /// A new partition directory is fsynced into the data directory before the topic exists:
    /// when that fsync fails, the create fails (and leaves nothing behind).
    @Test func newPartitionDirectoriesAreSyncedIntoTheDataDirectory() async throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        StorageFaults.inject(.syncDirectory, .ioError, pathContains: dir.path, times: 1)
        await #expect(throws: (any Error).self) { try await broker.createTopic("s", partitions: 1) }
        #expect(!broker.listTopics().contains("s"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/s-0"))
        try await broker.createTopic("s", partitions: 1)
        try await broker.close()
    }

    /// A group's heartbeat interval is at least 100 ms and less than its session timeout
    /// (Kafka's GroupConfig checks the pair): 1 ms was accepted, and each member of the group
    /// then sent 700 heartbeats a second.
    @Test func aGroupsHeartbeatsFitItsSession() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        for kind in ["consumer", "share"] {
            for changes: [ConfigChange] in [
                [.set("\(kind).heartbeat.interval.ms", "1")],
                [.set("\(kind).session.timeout.ms", "5")],
                [.set("\(kind).heartbeat.interval.ms", "600000")],
                [.set("\(kind).heartbeat.interval.ms", "2000"), .set("\(kind).session.timeout.ms", "2000")],
            ] {
                await #expect(throws: TidemarkError.self, "\(changes)") { try await broker.alterGroupConfig("g", changes: changes) }
            }
            try await broker.alterGroupConfig("g", changes: [.set("\(kind).heartbeat.interval.ms", "500"), .set("\(kind).session.timeout.ms", "3000")])
            // Once set, the other of the pair is checked against it.
            await #expect(throws: TidemarkError.self) {
                try await broker.alterGroupConfig("g", changes: [.set("\(kind).heartbeat.interval.ms", "3000")])
            }
        }
        #expect(broker.groupConfigs.value("consumer.session.timeout.ms", of: "g") == "3000")
        try await broker.close()
        // A group-configs.json an earlier version wrote with values below the new floors still
        // opens (a start must not be refused for it).
        try Array(#"{"version":1,"groups":{"old":{"consumer.heartbeat.interval.ms":"50","share.session.timeout.ms":"500"}}}"#.utf8)
            .withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: dir.path + "/group-configs.json")) }
        let reopened = try await Broker.open(dataDirectory: dir.path)
        #expect(reopened.groupConfigs.value("consumer.heartbeat.interval.ms", of: "old") == "50")
        try await reopened.close()
    }
}

/// `parallelMap`'s jobs block (file creation, fsync) on threads of their own: work started
/// while they wait still runs. On Dispatch's concurrent queues, which share a pool as wide as
/// the cores with Swift's tasks on Linux, a CreateTopics of 20,000 partitions held every
/// task-run request of every client for 20 s.
@Suite struct ParallelMapTests {
    @Test func blockedJobsLeaveTheSharedPoolFree() async {
        let ran = DispatchSemaphore(value: 0)
        let waiting = Atomic<Int>(0)
        // Called from a thread of its own, as the admin queue does. Once jobs block, work is
        // sent to Dispatch's global queue (the pool Swift's tasks share on Linux; the tasks
        // themselves wait behind other suites' raw socket reads), and the jobs wait for it.
        Thread.detachNewThread {
            let deadline = ContinuousClock.now + .seconds(20)
            while waiting.load(ordering: .relaxed) < 2 && ContinuousClock.now < deadline { usleep(1_000) }
            DispatchQueue.global().async { for _ in 0..<16 { ran.signal() } }
        }
        let results = await withCheckedContinuation { (continuation: CheckedContinuation<[Bool], Never>) in
            Thread.detachNewThread {
                continuation.resume(
                    returning: parallelMap(16, width: 16) { _ in
                        waiting.add(1, ordering: .relaxed)
                        return ran.wait(timeout: .now() + 5) == .success
                    })
            }
        }
        #expect(results == Array(repeating: true, count: 16))
    }

    @Test func everyJobRunsOnceInOrderOfResults() {
        #expect(parallelMap(0) { $0 }.isEmpty)
        #expect(parallelMap(1) { $0 * 2 } == [0])
        #expect(parallelMap(1_000, width: 7) { $0 * 2 } == (0..<1_000).map { $0 * 2 })
    }
}

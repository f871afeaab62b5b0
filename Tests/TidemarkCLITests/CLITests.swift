import Foundation
import Synchronization
import TestSupport
import Testing
import TidemarkStorage
import Tidemark

/// Runs `.build/debug/tidemark` (built with the tests) and captures what it prints.
struct CLI {
    static let binary: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/tidemark").path
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// `timeout`: the command is killed (SIGKILL) if it has not exited by then; its status is
    /// then 9's signal status, which no test expects.
    /// Runs on a Dispatch thread: waiting for a child on the test's own thread held one of
    /// the few cooperative threads (two on a 2-core machine) for as long as the child ran, and
    /// starved the other suites' brokers on a loaded run.
    @discardableResult
    static func run(_ arguments: [String], stdin: String? = nil, timeout: Double = 300) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            // A thread of its own (Dispatch's global pool grows past the cores only about once a
            // second, and the brokers under test use it too).
            Thread.detachNewThread {
                continuation.resume(with: Swift.Result { try runBlocking(arguments, stdin: stdin, timeout: timeout) })
            }
        }
    }

    static func runBlocking(_ arguments: [String], stdin: String?, timeout: Double) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = input
        try process.run()
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [process] in
            if process.isRunning && process.processIdentifier == pid { kill(pid, SIGKILL) }
        }
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        // Both pipes at once: a child filling one (64 KiB) while the other is read would wait
        // for ever (until the kill).
        final class Captured: Sendable { let data = Mutex(Data()) }
        let stderrCaptured = Captured()
        let stderrRead = DispatchSemaphore(value: 0)
        let stderrHandle = err.fileHandleForReading
        Thread.detachNewThread {
            let data = stderrHandle.readAllRetryingInterrupts()
            stderrCaptured.data.withLock { $0 = data }
            stderrRead.signal()
        }
        let stdoutData = out.fileHandleForReading.readAllRetryingInterrupts()
        stderrRead.wait()
        let stderrData = stderrCaptured.data.withLock { $0 }
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
            stderr: String(decoding: stderrData, as: UTF8.self))
    }
}

@Suite(.serialized, .enabled(if: FileManager.default.fileExists(atPath: CLI.binary), "tidemark is built with the tests"))
struct CLITests {
    @Test func helpAndBadArguments() async throws {
        let help = try await CLI.run(["--help"])
        #expect(help.status == 0)
        for command in ["serve", "topics", "produce", "consume", "groups", "dump", "verify"] {
            #expect(help.stdout.contains(command), "help lists \(command)")
        }
        for group in [[], ["topics"], ["groups"]] {
            let bare = try await CLI.run(group)
            #expect(bare.status == 64 && bare.stderr.contains("SUBCOMMANDS"), "a command group without its subcommand is a usage error")
        }
        let version = try await CLI.run(["--version"])
        #expect(version.status == 0 && version.stdout == TidemarkVersion.current + "\n", "\(version.stdout)\(version.stderr)")
        let unknown = try await CLI.run(["frobnicate"])
        #expect(unknown.status != 0 && unknown.stderr.contains("Error"))
        let missing = try await CLI.run(["dump", "/nonexistent/file.log"])
        #expect(missing.status != 0 && missing.stderr.contains("no such file: /nonexistent/file.log"))
        let noData = try await CLI.run(["topics", "list", "--data", "/nonexistent-data-dir"])
        #expect(noData.status == 1 && noData.stderr.contains("no data directory at /nonexistent-data-dir"))
        let both = try await CLI.run(["topics", "list", "--data", "/tmp", "--bootstrap", "127.0.0.1:9"])
        #expect(both.status != 0 && both.stderr.contains("choose one of --data and --bootstrap"), "it used the broker and ignored --data")
        let badPort = try await CLI.run(["serve", "--port", "70000"])
        #expect(badPort.status != 0 && badPort.stderr.contains("--port must be in 0...65535"))
        // A negative count is refused as one (it read as a missing value).
        let negative = try await CLI.run(["topics", "create", "t", "--partitions", "-1", "--data", "/nonexistent-data-dir"])
        #expect(negative.status != 0 && negative.stderr.contains("--partitions must be at least 1, got -1"), "\(negative.stderr)")
        let fewer = try await CLI.run(["consume", "t", "--max-messages", "-1", "--data", "/nonexistent-data-dir"])
        #expect(fewer.status != 0 && fewer.stderr.contains("--max-messages must be at least 1, got -1"), "\(fewer.stderr)")
        let badReset = try await CLI.run(["groups", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"])
        #expect(badReset.status != 0 && badReset.stderr.contains("choose exactly one"))
    }

    @Test func topicsProduceConsumeGroups() async throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        let create = try await CLI.run(["topics", "create", "jobs", "--partitions", "3", "--config", "retention.ms=3600000", "--data", data])
        #expect(create.status == 0 && create.stdout == "created topic jobs with 3 partitions\n")
        let bad = try await CLI.run(["topics", "create", "bad name", "--data", data])
        #expect(bad.status == 1 && bad.stderr.contains("Error: topic name may only contain") && !bad.stderr.contains("invalidTopicName"))
        #expect(!bad.stderr.contains("data directory opened"), "the engine's routine lines are left out of the tools' stderr")
        #expect(try await CLI.run(["topics", "list", "--data", data]).stdout == "jobs\n")

        let lines = (0..<30).map { "user-\($0 % 5):job-\($0)" }.joined(separator: "\n")
        let produce = try await CLI.run(["produce", "jobs", "--key-separator", ":", "--header", "src=cli", "--data", data], stdin: lines)
        #expect(produce.status == 0 && produce.stderr.contains("produced 30 records to jobs"))

        // A time without a zone is this machine's local time, as Kafka's tools read it.
        let future = try await CLI.run(["consume", "jobs", "--from-time", "2100-01-01T00:00:00.000", "--data", data])
        #expect(future.status == 0 && future.stdout.isEmpty, "\(future.stderr)")
        #expect(try await CLI.run(["consume", "jobs", "--from-time", "2100-01-01", "--data", data]).status != 0)

        let consumed = try await CLI.run(["consume", "jobs", "--json", "--data", data])
        #expect(consumed.status == 0)
        let records = consumed.stdout.split(separator: "\n").map {
            try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        #expect(records.count == 30)
        #expect(Set(records.map { $0["value"] as! String }) == Set((0..<30).map { "job-\($0)" }))
        for record in records {
            let headers = record["headers"] as! [[String: Any]]
            #expect(headers.first?["key"] as? String == "src" && headers.first?["value"] as? String == "cli")
            #expect((record["key"] as! String).hasPrefix("user-"))
        }
        let text = try await CLI.run(["consume", "jobs", "--max-messages", "2", "--data", data])
        #expect(text.stdout.split(separator: "\n").count == 2 && text.stdout.contains("\tjob-"))

        let describe = try await CLI.run(["topics", "describe", "jobs", "--data", data])
        #expect(describe.stdout.contains("partition: 2 start: 0 end:") && describe.stdout.contains("retention.ms=3600000"))

        // A group reads 10, commits; describe shows committed, end and lag; a reset moves it.
        let group = try await CLI.run(["consume", "jobs", "--group", "g1", "--max-messages", "10", "--data", data])
        #expect(group.stdout.split(separator: "\n").count == 10)
        let lag = try await CLI.run(["groups", "describe", "g1", "--data", data])
        #expect(lag.status == 0 && lag.stdout.hasPrefix("GROUP g1\tTYPE classic\tSTATE Empty\tMEMBERS 0\nTOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\n") && lag.stdout.contains("total lag: 20"))
        #expect(try await CLI.run(["groups", "list", "--data", data]).stdout == "GROUP\tTYPE\tSTATE\ng1\tclassic\tEmpty\n")
        let dry = try await CLI.run(["groups", "reset-offsets", "g1", "--topic", "jobs", "--to-earliest", "--data", data])
        #expect(dry.stdout.contains("dry run: nothing changed"))
        #expect(try await CLI.run(["groups", "describe", "g1", "--data", data]).stdout.contains("total lag: 20"))
        let applied = try await CLI.run(["groups", "reset-offsets", "g1", "--topic", "jobs", "--to-earliest", "--execute", "--data", data])
        #expect(applied.status == 0 && applied.stdout.contains("offsets reset"))
        #expect(try await CLI.run(["groups", "describe", "g1", "--data", data]).stdout.contains("total lag: 30"))
        #expect(try await CLI.run(["groups", "describe", "nobody", "--data", data]).status != 0)
        let deleted = try await CLI.run(["groups", "delete", "g1", "nobody", "--data", data])
        #expect(deleted.status != 0 && deleted.stdout == "deleted group g1\nnobody: not deleted (GROUP_ID_NOT_FOUND)\n")
        #expect(try await CLI.run(["groups", "list", "--data", data]).stdout == "GROUP\tTYPE\tSTATE\n")

        #expect(try await CLI.run(["topics", "delete", "jobs", "--data", data]).stdout == "deleted topic jobs\n")
        #expect(try await CLI.run(["topics", "list", "--data", data]).stdout == "")
    }

    /// `topics alter`: partitions added and configs set or reset, on a data directory and over
    /// the wire (the tools had no way to change a topic once made).
    @Test func topicsAlterAddsPartitionsAndChangesConfigs() async throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        #expect(try await CLI.run(["topics", "create", "t", "--data", data]).status == 0)
        let altered = try await CLI.run(["topics", "alter", "t", "--partitions", "3", "--set", "retention.ms=60000", "--data", data])
        #expect(altered.status == 0 && altered.stdout == "topic 't' configured: retention.ms=60000\ntopic 't' now has 3 partitions\n", "\(altered.stderr)")
        var described = try await CLI.run(["topics", "describe", "t", "--data", data]).stdout
        #expect(described.contains("partitions: 3") && described.contains("retention.ms=60000"), "\(described)")
        // Fewer partitions, an unknown setting, nothing at all: refused, nothing changed.
        let fewer = try await CLI.run(["topics", "alter", "t", "--partitions", "2", "--set", "retention.ms=1000", "--data", data])
        #expect(fewer.status == 1 && fewer.stderr.contains("the new count must be larger"), "\(fewer.stderr)")
        #expect(try await CLI.run(["topics", "describe", "t", "--data", data]).stdout.contains("retention.ms=60000"), "a refused count changes no config")
        let unknown = try await CLI.run(["topics", "alter", "t", "--set", "retention.mss=1", "--partitions", "5", "--data", data])
        #expect(unknown.status == 1 && unknown.stderr.contains("retention.mss"), "\(unknown.stderr)")
        #expect(try await CLI.run(["topics", "alter", "t", "--data", data]).status == 64)

        let broker = try await ServeProcess.start(data: data)
        defer { broker.stop() }
        let overWire = try await CLI.run(["topics", "alter", "t", "--partitions", "4", "--delete", "retention.ms", "--set", "max.message.bytes=2048", "--bootstrap", broker.bootstrap])
        #expect(overWire.status == 0, "\(overWire.stderr)")
        described = try await CLI.run(["topics", "describe", "t", "--bootstrap", broker.bootstrap]).stdout
        #expect(described.contains("partitions: 4") && described.contains("max.message.bytes=2048") && described.contains("retention.ms=604800000"), "\(described)")
        let smaller = try await CLI.run(["topics", "alter", "t", "--set", "retention.ms=1000", "--partitions", "3", "--bootstrap", broker.bootstrap])
        let unchanged = try await CLI.run(["topics", "describe", "t", "--bootstrap", broker.bootstrap]).stdout
        #expect(smaller.status == 1 && !unchanged.contains("retention.ms=1000"), "a refused count changes no config")
        let refused = try await CLI.run(["topics", "alter", "t", "--set", "retention.mss=1", "--partitions", "5", "--bootstrap", broker.bootstrap])
        #expect(refused.status == 1 && refused.stderr.contains("retention.mss"), "\(refused.stderr)")
        #expect(try await CLI.run(["topics", "describe", "t", "--bootstrap", broker.bootstrap]).stdout.contains("partitions: 4"))
        let missing = try await CLI.run(["topics", "alter", "nope", "--partitions", "2", "--bootstrap", broker.bootstrap])
        #expect(missing.status == 1 && missing.stderr.contains("nope"), "\(missing.stderr)")
    }

    /// A copy of a live directory (not shut down cleanly) with a bad batch in the middle: the
    /// tools opened it as the broker does and cut the log there, good batches after it with it,
    /// saying it was an unfinished write. They refuse now, and change nothing; verify --repair
    /// cuts it. An unfinished write at the end alone is cut, as the broker's start cuts it.
    ///
    /// The damage lands in the header of the batch holding the log's middle (where the batches
    /// fall depends on how `produce` split its input): on its length field (+9: made longer,
    /// past the file's end, which read as the last write cut short, and the tools cut that batch
    /// and every good one after it), or on its attributes (+21, inside the CRC).
    @Test(arguments: [9, 21]) func theToolsDoNotCutDamage(at field: Int) async throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        #expect(try await CLI.run(["topics", "create", "t", "--data", data]).status == 0)
        for round in 0..<3 {
            #expect(try await CLI.run(["produce", "t", "--data", data], stdin: (0..<20).map { "r\(round)-\($0)" }.joined(separator: "\n")).status == 0)
        }
        let log = data + "/t-0/00000000000000000000.log"
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: log)))
        var batch = 0
        while true {
            let length = bytes[(batch + 8)..<(batch + 12)].reduce(0) { $0 << 8 | Int($1) }
            if batch + 12 + length > bytes.count / 2 { break }
            batch += 12 + length
        }
        let damagedEnd = batch + 12 + bytes[(batch + 8)..<(batch + 12)].reduce(0) { $0 << 8 | Int($1) }
        #expect(damagedEnd + 61 <= bytes.count, "a whole batch follows the damaged one")
        let handle = try #require(FileHandle(forUpdatingAtPath: log))
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: UInt64(batch + field))
        try handle.write(contentsOf: Data([0xFF, 0xFF, 0xFF, 0xFF]))
        try handle.close()
        try "0".write(toFile: data + "/t-0/.clean-shutdown", atomically: false, encoding: .utf8)
        let listed = try await CLI.run(["topics", "list", "--data", data])
        #expect(listed.status == 1 && listed.stderr.contains("has damage that opening it would act on") && listed.stderr.contains("verify --repair"), "\(listed.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: log)[.size] as? UInt64 == size, "nothing was cut")
        #expect(try String(contentsOfFile: data + "/t-0/.clean-shutdown", encoding: .utf8) == "0")
        #expect(try await CLI.run(["verify", data, "--repair"]).status == 0)
        let after = try await CLI.run(["topics", "list", "--data", data])
        #expect(after.status == 0 && after.stdout == "t\n", "\(after.stderr)")
    }

    /// Topic "t" in `data` with `partitions` partitions, each holding "a", "b", "c".
    static func makeTopicOfABC(_ data: String, partitions: Int) async throws {
        #expect(try await CLI.run(["topics", "create", "t", "--partitions", "\(partitions)", "--data", data]).status == 0)
        for p in 0..<partitions {
            #expect(try await CLI.run(["produce", "t", "--partition", "\(p)", "--data", data], stdin: "a\nb\nc").status == 0)
        }
    }

    /// `topics describe` over the wire with one partition offline (damage its start refused):
    /// that partition with its error, the others and the config as usual, exit 1. (The first
    /// offline partition ended the listing with an error, the rest and the config left out.)
    @Test func describeListsEveryPartitionWhenOneIsOffline() async throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        try await Self.makeTopicOfABC(data, partitions: 3)
        let log = data + "/t-1/00000000000000000000.log"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: log))
        bytes[bytes.count - 5] ^= 0xFF  // in the records of a batch stopped cleanly: refused, offline
        try bytes.write(to: URL(fileURLWithPath: log))
        let broker = try await ServeProcess.start(data: data)
        defer { broker.stop() }
        let described = try await CLI.run(["topics", "describe", "t", "--bootstrap", broker.bootstrap])
        #expect(described.status == 1, "\(described.stderr)")
        #expect(described.stdout.contains("partition: 0 start: 0 end: 3") && described.stdout.contains("partition: 2 start: 0 end: 3"), "\(described.stdout)")
        #expect(described.stdout.contains("partition: 1 error:") && described.stdout.contains("KAFKA_STORAGE_ERROR"), "\(described.stdout)")
        #expect(described.stdout.contains("config:\n"), "\(described.stdout)")
    }

    /// A partition whose segment files are all gone is reported (verify skipped it and said ok).
    @Test func aPartitionWithoutSegmentFilesIsReported() async throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        try await Self.makeTopicOfABC(data, partitions: 2)
        for name in try FileManager.default.contentsOfDirectory(atPath: data + "/t-1") where !name.hasSuffix(".checkpoint") && !name.hasPrefix(".") {
            try FileManager.default.removeItem(atPath: data + "/t-1/" + name)
        }
        let verified = try await CLI.run(["verify", data])
        #expect(verified.status == 1, "\(verified.stdout)")
        #expect(verified.stdout.contains("ok \(data)/t-0") && verified.stdout.contains("PROBLEMS \(data)/t-1"))
        #expect(verified.stdout.contains("no segment files"))
    }

    /// A partition directory topics.json does not list (restored from a copy made before the
    /// topic grew) is a problem: a broker does not serve its records. Verify said ok.
    @Test func aPartitionTopicsJsonDoesNotListIsReported() async throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        #expect(try await CLI.run(["topics", "create", "t", "--partitions", "2", "--data", data]).status == 0)
        #expect(try await CLI.run(["produce", "t", "--partition", "1", "--data", data], stdin: "a\nb").status == 0)
        #expect(try await CLI.run(["topics", "create", "empty", "--data", data]).status == 0)
        #expect(try await CLI.run(["verify", data]).status == 0)
        let path = data + "/topics.json"
        var file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        // "empty" as a creation a crash cut before topics.json leaves it: a note, not a problem.
        var topics = (file["topics"] as! [[String: Any]]).filter { $0["name"] as? String != "empty" }
        topics[0]["partitions"] = 1
        file["topics"] = topics
        try JSONSerialization.data(withJSONObject: file).write(to: URL(fileURLWithPath: path))
        let verified = try await CLI.run(["verify", data])
        #expect(verified.status == 1, "\(verified.stdout)")
        #expect(verified.stdout.contains("ok \(data)/t-0") && verified.stdout.contains("PROBLEMS \(data)/t-1:\n  topics.json does not list"))
        #expect(verified.stdout.contains("does not serve its 2 records"))
        #expect(verified.stdout.contains("ok \(data)/empty-0: no records\n  note: topics.json does not list this partition and it holds nothing"), "\(verified.stdout)")
        #expect(!verified.stdout.contains("PROBLEMS \(data)/empty-0"))
    }

    @Test func dumpVerifyAndRepair() async throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        #expect(try await CLI.run(["topics", "create", "t", "--data", data]).status == 0)
        for round in 0..<5 {
            let lines = (0..<20).map { "r\(round)-\($0)" }.joined(separator: "\n")
            #expect(try await CLI.run(["produce", "t", "--data", data], stdin: lines).status == 0)
        }
        // Past an index interval (4 KiB), so the segment gets an index entry and closes with a
        // final time index entry (a smaller one needs none: its reopen scans it).
        let big = (0..<40).map { "big-\($0)-" + String(repeating: "x", count: 200) }.joined(separator: "\n")
        for _ in 0..<2 { #expect(try await CLI.run(["produce", "t", "--data", data], stdin: big).status == 0) }
        let log = data + "/t-0/00000000000000000000.log"
        let dump = try await CLI.run(["dump", log])
        #expect(dump.status == 0 && dump.stdout.hasPrefix("Dumping \(log)\n"))
        #expect(dump.stdout.contains("baseOffset: 0 ") && dump.stdout.contains("crcValid: true"))
        #expect(dump.stdout.contains("| offset: 99 ") && dump.stdout.contains("value: r4-19"))
        let index = try await CLI.run(["dump", data + "/t-0/00000000000000000000.timeindex"])
        #expect(index.status == 0 && index.stdout.contains("timestamp: "))

        let healthy = try await CLI.run(["verify", data])
        #expect(healthy.status == 0 && healthy.stdout.contains("ok \(data)/t-0: 1 segments"))

        // A flipped byte inside a batch's records (which the CRC covers; a
        // byte in the middle of the file may land in a header's base offset, which it does
        // not): verify reports it and exits 1.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: log))
        let size = bytes.count
        // The first batch's size, from the dump (the produce tool's batches vary with timing):
        // flip a byte half-way through its records, past the 61-byte header.
        let firstSize = dump.stdout.split(separator: "\n").first { $0.contains("position: 0 ") }
            .flatMap { line in line.split(separator: " ").drop { $0 != "size:" }.dropFirst().first }.flatMap { Int($0) } ?? 0
        #expect(firstSize > 61)
        let flipped = 61 + (firstSize - 61) / 2
        bytes[flipped] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: log))
        let broken = try await CLI.run(["verify", data + "/t-0"])
        #expect(
            broken.status == 1 && broken.stdout.contains("bad batch at position"),
            "verify exited \(broken.status): \(broken.stdout) \(broken.stderr)")
        let brokenDump = try await CLI.run(["dump", "--headers-only", log])
        #expect(
            brokenDump.status == 2 && brokenDump.stdout.contains("damaged at position"),
            "dump exited \(brokenDump.status): \(brokenDump.stdout.suffix(500)) \(brokenDump.stderr)")
        bytes[flipped] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: log))

        // A torn tail: --repair cuts it and rebuilds the indexes; verify is clean after.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.truncate(atOffset: UInt64(size - 7))
        try handle.close()
        let torn = try await CLI.run(["verify", data])
        #expect(torn.status == 1)
        let repaired = try await CLI.run(["verify", "--repair", data])
        #expect(repaired.status == 0 && repaired.stdout.contains("repaired: cut") && repaired.stdout.contains("now ok"))
        #expect(repaired.stdout.contains("  lost: segment 0: cut ") && repaired.stdout.contains("the log now ends at offset"), "\(repaired.stdout)")
        #expect(try await CLI.run(["verify", data]).status == 0)
        let after = try await CLI.run(["consume", "t", "--data", data])
        #expect(after.stdout.split(separator: "\n").count < 180 && after.stdout.hasPrefix("r0-0\n"))

        // Zeros to a 4 KiB boundary after the last batch (what a broker writes ahead of a
        // flush.messages=1 topic's appends): dump and verify name them space, not damage.
        let end = try Data(contentsOf: URL(fileURLWithPath: log)).count
        let padding = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try padding.seekToEnd()
        try padding.write(contentsOf: Data(count: 4096 - end % 4096 + 4096))
        try padding.close()
        let ahead = try await CLI.run(["dump", "--headers-only", log])
        #expect(
            ahead.status == 0 && ahead.stdout.contains("zeros from position \(end) to the end")
                && ahead.stdout.contains("space written ahead of appends, not data"),
            "dump exited \(ahead.status): \(ahead.stdout.suffix(300))")
        let spaced = try await CLI.run(["verify", data])
        #expect(spaced.status == 0 && spaced.stdout.contains("space written ahead of appends"), "\(spaced.stdout)")
    }
}

/// The offline tools and a running broker: repair refuses (it would change live files),
/// dump and a read-only verify go on with a warning.
@Suite(.serialized, .enabled(if: FileManager.default.fileExists(atPath: CLI.binary), "tidemark is built with the tests"))
struct LiveDirectoryTests {
    /// A group whose commit fell below the log start (DeleteRecords, retention) reads nothing
    /// and is moved to the start: `consume --group` commits that and exits (it committed only
    /// after printing, decided it was done from the commits, and polled for ever).
    @Test func consumeAsAGroupEndsWhenItsCommitFellBelowTheLogStart() async throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        #expect(try await CLI.run(["topics", "create", "gone", "--partitions", "1", "--data", data]).status == 0)
        #expect(try await CLI.run(["produce", "gone", "--data", data], stdin: "a\nb\nc\n").status == 0)
        #expect(try await CLI.run(["consume", "gone", "--group", "g", "--max-messages", "1", "--data", data]).stdout == "a\n")
        do {
            let broker = try await Broker.open(dataDirectory: data)
            _ = try await broker.deleteRecords(topic: "gone", partition: 0, before: 3)
            try await broker.close()
        }
        let rest = try await CLI.run(["consume", "gone", "--group", "g", "--data", data], timeout: 30)
        #expect(rest.status == 0 && rest.stdout.isEmpty)
        #expect(try await CLI.run(["groups", "describe", "g", "--data", data]).stdout.contains("total lag: 0"))
    }

    /// From a hunt of the tools with odd input: bytes that are not UTF-8 are produced as they
    /// are; a partition number past Int32 and a huge `--shift-by` are answered, not trapped
    /// on; `replay --until` past a partition's end over the wire stops at its end; a group's
    /// commit below the log start over the wire starts at the start; a removed newest segment
    /// is a problem for `verify`.
    @Test func toolsTakeOddInputAsTheEmbeddedPathDoes() async throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        #expect(try await CLI.run(["topics", "create", "t", "--partitions", "2", "--data", data]).status == 0)
        let file = dir.path + "/latin1.txt"
        try Data([0x63, 0x61, 0x66, 0xE9, 0x3A, 0x76, 0xFF, 0x0A, 0x6F, 0x6B, 0x0A]).write(to: URL(fileURLWithPath: file))
        let produced = try await CLI.run(["produce", "t", file, "--partition", "0", "--key-separator", ":", "--data", data])
        #expect(produced.status == 0, "\(produced.stderr)")
        do {
            let log = try PartitionLog.open(directory: data + "/t-0", config: LogConfig())
            let records = try log.readBatches(from: 0, maxBytes: 1 << 20).flatMap(\.records)
            #expect(records.map(\.key) == [[0x63, 0x61, 0x66, 0xE9], nil])
            #expect(records.map(\.value) == [[0x76, 0xFF], Array("ok".utf8)])
            try log.close()
        }
        let wide = try await CLI.run(["consume", "t", "--partition", "2147483648", "--data", data])
        #expect(wide.status == 1 && wide.stderr.contains("topic t has no partition 2147483648 (it has 2)"))
        // A shift moves a committed offset; without one it is refused, as Kafka's tool refuses it.
        let unshiftable = try await CLI.run(["groups", "reset-offsets", "g", "--topic", "t", "--shift-by", "5", "--data", data])
        #expect(unshiftable.status == 1 && unshiftable.stderr.contains("cannot shift partition t-0: group 'g' has no offset there"), "\(unshiftable.stderr)")
        #expect(try await CLI.run(["groups", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--execute", "--data", data]).status == 0)
        do {
            let broker = try await Broker.open(dataDirectory: data)
            _ = try await broker.deleteRecords(topic: "t", partition: 0, before: 1)
            try await broker.close()
        }
        let broker = try await ServeProcess.start(data: data)
        let overWire = try await CLI.run(["consume", "t", "--partition", "2147483648", "--bootstrap", broker.bootstrap])
        #expect(overWire.status == 1 && overWire.stderr.contains("has no partition"))
        let neverCommitted = try await CLI.run(["groups", "reset-offsets", "other", "--topic", "t", "--shift-by", "-1", "--bootstrap", broker.bootstrap])
        #expect(neverCommitted.status == 1 && neverCommitted.stderr.contains("group 'other' has no offset there"), "\(neverCommitted.stderr)")
        let shifted = try await CLI.run(["groups", "reset-offsets", "g", "--topic", "t", "--shift-by", "9223372036854775000", "--bootstrap", broker.bootstrap])
        #expect(shifted.status == 0, "\(shifted.stderr)")
        // A negative shift in the space form, as the README and kafka-consumer-groups.sh write it.
        let back = try await CLI.run(["groups", "reset-offsets", "g", "--topic", "t", "--shift-by", "-100", "--bootstrap", broker.bootstrap])
        #expect(back.status == 0, "\(back.stderr)")
        let replayed = try await CLI.run(["replay", "t", "--until", "5000", "--bootstrap", broker.bootstrap])
        #expect(replayed.status == 0 && replayed.stderr.contains("replayed 1 record"), "\(replayed.stderr)")
        let fromGroup = try await CLI.run(["consume", "t", "--group", "g", "--max-messages", "1", "--bootstrap", broker.bootstrap], timeout: 60)
        #expect(fromGroup.status == 0 && fromGroup.stdout == "ok\n", "\(fromGroup.stderr)")
        broker.stop()
        // The newest segment emptied by hand: the rest checks out, the checkpoint does not.
        #expect(try await CLI.run(["topics", "create", "small", "--config", "internal.segment.bytes=2000", "--data", data]).status == 0)
        for round in 0..<6 {
            let lines = (0..<20).map { "chunk\(round)-\($0)" }.joined(separator: "\n")
            #expect(try await CLI.run(["produce", "small", "--data", data], stdin: lines).status == 0)
        }
        let segments = try FileManager.default.contentsOfDirectory(atPath: data + "/small-0").filter { $0.hasSuffix(".log") }.sorted()
        #expect(segments.count > 1)
        try Data().write(to: URL(fileURLWithPath: data + "/small-0/" + segments.last!))
        let verified = try await CLI.run(["verify", data + "/small-0"])
        #expect(verified.status != 0 && verified.stdout.contains("its recovery checkpoint says it reached at least"), "\(verified.stdout)")
    }

    @Test func toolsRespectTheDataDirectoryLock() async throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        #expect(try await CLI.run(["topics", "create", "t", "--data", data]).status == 0)
        #expect(try await CLI.run(["produce", "t", "--data", data], stdin: "a\nb\nc").status == 0)
        let broker = try await ServeProcess.start(data: data)
        defer { broker.stop() }
        let repair = try await CLI.run(["verify", "--repair", data])
        #expect(repair.status != 0 && repair.stderr.contains("in use by a running broker"))
        let partitionRepair = try await CLI.run(["verify", "--repair", data + "/t-0"])
        #expect(partitionRepair.status != 0 && partitionRepair.stderr.contains("in use by a running broker"))
        // Named through a symlink elsewhere: the lock is looked for along the real path (the
        // path as written found none, and the repair cut segments under the broker).
        try FileManager.default.createDirectory(atPath: dir.path + "/elsewhere", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.path + "/elsewhere/t-0", withDestinationPath: data + "/t-0")
        let linkedRepair = try await CLI.run(["verify", "--repair", dir.path + "/elsewhere/t-0"])
        #expect(linkedRepair.status != 0 && linkedRepair.stderr.contains("in use by a running broker"))
        let dump = try await CLI.run(["dump", data + "/t-0/00000000000000000000.log"])
        #expect(dump.status == 0 && dump.stdout.contains("value: c") && dump.stderr.contains("warning"))
        let verify = try await CLI.run(["verify", data])
        #expect(verify.status == 0 && verify.stderr.contains("warning"))
        broker.stop()
        #expect(try await CLI.run(["verify", "--repair", data]).status == 0)
    }
}

/// `serve` takes Kafka's broker settings by name, from --config and --config-file.
@Suite(.serialized, .enabled(if: FileManager.default.fileExists(atPath: CLI.binary), "tidemark is built with the tests"))
struct ServeConfigTests {
    @Test func unknownKeysAreRefusedByName() async throws {
        let bad = try await CLI.run(["serve", "--config", "log.retention.hourz=3"])
        #expect(bad.status != 0 && bad.stderr.contains("unknown broker config 'log.retention.hourz'"))
        let badValue = try await CLI.run(["serve", "--config", "num.partitions=lots"])
        #expect(badValue.status != 0 && badValue.stderr.contains("num.partitions needs a number"))
        let dir = TemporaryDirectory()
        try "listeners=PLAINTEXT://127.0.0.1:0\nbogus.key=1\n".write(toFile: dir.path + "/server.properties", atomically: true, encoding: .utf8)
        let badFile = try await CLI.run(["serve", "--config-file", dir.path + "/server.properties"])
        #expect(badFile.status != 0 && badFile.stderr.contains("bogus.key"))
    }

    /// A server.properties written for Kafka 4 (KRaft, combined mode) starts a node: Kafka
    /// settings with no use here are accepted and named in the log (the first line of Kafka's
    /// own file, process.roles, was "unknown"); an authorizer, or a controller-only node, is
    /// refused rather than silently not enforced.
    @Test func aKafkaServerPropertiesFileStartsANode() async throws {
        let dir = TemporaryDirectory()
        let kafka = [
            "process.roles=broker,controller", "node.id=1", "controller.quorum.bootstrap.servers=localhost:9093",
            "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://:9093", "inter.broker.listener.name=PLAINTEXT",
            "controller.listener.names=CONTROLLER", "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "num.network.threads=3", "num.io.threads=8", "socket.send.buffer.bytes=102400", "num.recovery.threads.per.data.dir=1",
            "offsets.topic.replication.factor=1", "transaction.state.log.min.isr=1", "log.retention.hours=168",
            "log.segment.bytes=1073741824", "log.retention.check.interval.ms=300000", "listener.name.plaintext.ssl.keystore.type=PKCS12",
            "num.partitions 2", "",
        ]
        try kafka.joined(separator: "\n").write(toFile: dir.path + "/server.properties", atomically: true, encoding: .utf8)
        let broker = try await ServeProcess.start(data: dir.path + "/data", extra: ["--config-file", dir.path + "/server.properties"])
        defer { broker.stop() }
        #expect(try await CLI.run(["topics", "create", "from-kafka", "--bootstrap", broker.bootstrap]).status == 0)
        for (line, refusal) in [
            ("authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer", "Tidemark has no authorizer"),
            ("process.roles=controller", "a Tidemark node is a broker"),
            ("log.retention.check.interval.msx=1", "unknown broker config 'log.retention.check.interval.msx'"),
            ("log.cleaner.threads=abc", "log.cleaner.threads needs a number (Kafka's INT"),
            ("log.cleanup.policy=compact", "cleanup.policy"),
            ("min.insync.replicas=2", "only 1 can be met"),
            ("offsets.topic.replication.factor=3", "only 1 can be met"),
            ("remote.log.storage.system.enable=true", "tiered storage is not supported"),
            ("listeners=PLAINTEXT://127.0.0.1:0\nlistener.security.protocol.map=PLAINTEXT:SASL_SSL", "listener PLAINTEXT uses SASL_SSL"),
            ("listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:9094", "listener SSL uses SSL"),
            // Kafka's ConfigDef types (an INT past 32 bits was taken: no topic could be made).
            ("num.partitions=99999999999", "num.partitions needs a number (Kafka's INT, 32 bits)"),
            ("node.id=3\nbroker.id=5", "node.id (3) and broker.id (5) differ"),
            ("config.providers=file", "config providers"),
            // Every unknown name at once, and what a ZooKeeper-era file is told.
            ("zookeeper.connect=zk:2181\nlog.retention.hourz=1\nnum.partitions 3", "'zookeeper.connect', 'log.retention.hourz'"),
            ("zookeeper.connect=zk:2181", "ZooKeeper-era settings went with Kafka 4.0"),
        ] {
            try line.write(toFile: dir.path + "/bad.properties", atomically: true, encoding: .utf8)
            let refused = try await CLI.run(["serve", "--config-file", dir.path + "/bad.properties"])
            #expect(refused.status != 0 && refused.stderr.contains(refusal), "\(line): \(refused.stderr)")
        }
    }

    /// Also from a file saved with Windows line ends (CRLF): it used to read as one comment line.
    @Test(arguments: ["\n", "\r\n"])
    func settingsApplyToAutoCreatedTopics(lineEnd: String) async throws {
        let dir = TemporaryDirectory()
        try ["# a Kafka-style file", "num.partitions=3", "log.retention.hours=2", ""].joined(separator: lineEnd)
            .write(toFile: dir.path + "/server.properties", atomically: true, encoding: .utf8)
        let broker = try await ServeProcess.start(data: dir.path + "/data", extra: ["--config-file", dir.path + "/server.properties", "--config", "log.segment.bytes=4194304"])
        defer { broker.stop() }
        #expect(try await CLI.run(["topics", "create", "auto", "--bootstrap", broker.bootstrap]).status == 0)
        let described = try await CLI.run(["topics", "describe", "auto", "--bootstrap", broker.bootstrap])
        #expect(described.stdout.contains("partitions: 3"), "\(described.stdout)")
    }
}

/// A `tidemark serve` child process on a free port.
/// `@unchecked Sendable`: made on a thread of its own (`start`), then used by its test alone.
final class ServeProcess: @unchecked Sendable {
    /// Starts one and waits for its ready line on a thread of its own, not on a cooperative one.
    static func start(data: String, extra: [String] = []) async throws -> ServeProcess {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Swift.Result { try ServeProcess(data: data, extra: extra) }) }
        }
    }

    let process = Process()
    private(set) var port = 0

    init(data: String, extra: [String] = []) throws {
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["serve", "--data", data, "--port", "0"] + (extra.contains("--http-port") ? [] : ["--http-port", "0"]) + extra
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = String(decoding: out.fileHandleForReading.availableDataOrLine(), as: UTF8.self)
        // "tidemark ready: listening on 127.0.0.1:PORT, data ..."
        guard line.contains("ready"), let address = line.split(separator: " ").first(where: { $0.hasPrefix("127.0.0.1:") }),
            let bound = Int(address.dropFirst("127.0.0.1:".count).trimmingCharacters(in: CharacterSet(charactersIn: ",")))
        else { throw CocoaError(.fileReadUnknown) }
        port = bound
    }

    var bootstrap: String { "127.0.0.1:\(port)" }

    func stop() {
        process.interrupt()
        process.waitUntilExit()
    }
}

extension FileHandle {
    /// Reads until a newline (the serve command's ready line).
    func availableDataOrLine() -> Data {
        var data = Data()
        while !data.contains(UInt8(ascii: "\n")) {
            let chunk = readChunkRetryingInterrupts()
            if chunk.isEmpty { break }
            data.append(chunk)
        }
        return data
    }

    /// Everything up to the end. Foundation's `readDataToEndOfFile` and `availableData` trap
    /// (their `try!`) when a read is interrupted by a signal (EINTR): that took the whole test
    /// run down once on a loaded machine.
    func readAllRetryingInterrupts() -> Data {
        var data = Data()
        while true {
            let chunk = readChunkRetryingInterrupts()
            if chunk.isEmpty { return data }
            data.append(chunk)
        }
    }

    /// One read(2) of what is there (empty at the end or on an error), again when interrupted.
    func readChunkRetryingInterrupts() -> Data {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fileDescriptor, $0.baseAddress, $0.count) }
            if count >= 0 { return Data(buffer[0..<count]) }
            if errno != EINTR { return Data() }
        }
    }
}

@Suite(.serialized, .enabled(if: FileManager.default.fileExists(atPath: CLI.binary), "tidemark is built with the tests"))
struct ReplayTests {
    /// A line the topic refuses (past max.message.bytes) is left out with its number, the rest
    /// go on, and the command exits 1, over the wire as into a data directory (one stopped at
    /// it, the other went on, neither said which line).
    @Test func aLineTheTopicRefusesIsLeftOutAndNamed() async throws {
        let dir = TemporaryDirectory()
        let input = "before\n" + String(repeating: "x", count: 2 << 20) + "\nafter\n"
        let data = dir.path + "/data"
        #expect(try await CLI.run(["topics", "create", "t", "--data", data]).status == 0)
        let local = try await CLI.run(["produce", "t", "--data", data], stdin: input)
        #expect(local.status == 1 && local.stderr.contains("line 2 left out") && local.stderr.contains("produced 2 records"), "\(local.stderr)")
        #expect(try await CLI.run(["consume", "t", "--data", data]).stdout == "before\nafter\n")
        let broker = try await ServeProcess.start(data: dir.path + "/served")
        defer { broker.stop() }
        #expect(try await CLI.run(["topics", "create", "t", "--bootstrap", broker.bootstrap]).status == 0)
        let remote = try await CLI.run(["produce", "t", "--bootstrap", broker.bootstrap], stdin: input)
        #expect(remote.status == 1 && remote.stderr.contains("line 2 left out") && remote.stderr.contains("produced 2 records"), "\(remote.stderr)")
        #expect(try await CLI.run(["consume", "t", "--bootstrap", broker.bootstrap]).stdout == "before\nafter\n")
    }

    static func seed(_ data: String, records: Int) async throws {
        #expect(try await CLI.run(["topics", "create", "src", "--partitions", "3", "--data", data]).status == 0)
        let lines = (0..<records).map { "key-\($0 % 11):value-\($0)" }.joined(separator: "\n")
        #expect(try await CLI.run(["produce", "src", "--key-separator", ":", "--header", "h=1", "--data", data], stdin: lines).status == 0)
    }

    static func jsonLines(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    @Test func replayToStdoutAndFileWithRanges() async throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/a"
        try await Self.seed(data, records: 60)
        let all = Self.jsonLines(try await CLI.run(["replay", "src", "--data", data]).stdout)
        #expect(all.count == 60)
        let ranged = try await CLI.run(["replay", "src:0", "--from", "2", "--until", "5", "--data", data])
        #expect(Self.jsonLines(ranged.stdout).map { $0["offset"] as! Int } == [2, 3, 4])
        #expect(ranged.stderr.contains("replayed 3 records"))
        let file = dir.path + "/out.jsonl"
        #expect(try await CLI.run(["replay", "src", "--to-file", file, "--data", data]).status == 0)
        #expect(Self.jsonLines(try String(contentsOfFile: file, encoding: .utf8)).count == 60)
        // From a time in the future: nothing.
        #expect(try await CLI.run(["replay", "src", "--from", "2100-01-01T00:00:00Z", "--data", data]).stdout.isEmpty)
        #expect(try await CLI.run(["replay", "src:9", "--data", data]).status != 0)
    }

    /// Data directory -> running broker, interrupted and rerun: every record exactly once,
    /// keys, values, headers and timestamps kept.
    @Test func replayIntoAnotherBrokerResumesWithoutDuplicates() async throws {
        let dir = TemporaryDirectory()
        let source = dir.path + "/a"
        let target = dir.path + "/b"
        try await Self.seed(source, records: 300)
        #expect(try await CLI.run(["topics", "create", "dst", "--partitions", "3", "--data", target]).status == 0)
        let broker = try await ServeProcess.start(data: target)
        defer { broker.stop() }
        // The first run stops part-way (as if interrupted), the second finishes the job.
        let first = try await CLI.run(["replay", "src", "--until", "40", "--data", source, "--to-bootstrap", broker.bootstrap, "--to-topic", "dst"])
        #expect(first.status == 0)
        let second = try await CLI.run(["replay", "src", "--data", source, "--to-bootstrap", broker.bootstrap, "--to-topic", "dst"])
        #expect(second.status == 0 && second.stderr.contains("resuming after offset 39"))
        let third = try await CLI.run(["replay", "src", "--data", source, "--to-bootstrap", broker.bootstrap, "--to-topic", "dst"])
        #expect(third.stderr.contains("replayed 0 records"))

        let original = Self.jsonLines(try await CLI.run(["replay", "src", "--data", source]).stdout)
        let copied = Self.jsonLines(try await CLI.run(["replay", "dst", "--bootstrap", broker.bootstrap]).stdout)
        #expect(copied.count == 300)
        func identity(_ r: [String: Any]) -> String { "\(r["key"]!)|\(r["value"]!)|\(r["timestamp"]!)|\(r["partition"]!)" }
        #expect(Set(copied.map(identity)) == Set(original.map(identity)))
        for record in copied {
            let headers = record["headers"] as! [[String: Any]]
            #expect(headers.first?["key"] as? String == "h" && headers.contains { $0["key"] as? String == "tidemark.replay.source" })
        }
    }

    /// Between two data directories directly, interrupted (--until) and rerun.
    @Test func replayBetweenTwoDataDirectories() async throws {
        let dir = TemporaryDirectory()
        let source = dir.path + "/a"
        let target = dir.path + "/b"
        try await Self.seed(source, records: 120)
        #expect(try await CLI.run(["topics", "create", "dst", "--partitions", "3", "--data", target]).status == 0)
        let args = ["replay", "src", "--data", source, "--to-data", target, "--to-topic", "dst"]
        #expect(try await CLI.run(args + ["--until", "17"]).status == 0)
        let rerun = try await CLI.run(args)
        #expect(rerun.status == 0 && rerun.stderr.contains("resuming after offset 16"))
        let copied = Self.jsonLines(try await CLI.run(["replay", "dst", "--data", target]).stdout)
        #expect(copied.count == 120)
        #expect(Set(copied.map { $0["value"] as! String }).count == 120)
        #expect(try await CLI.run(args + ["--to-data", source]).status != 0)
    }

    /// A run from another source with a topic of the same name is not taken for an earlier run
    /// of this one (it resumed after the first source's offsets and skipped as many records;
    /// an outside hunt): each copy names its source's cluster id.
    @Test func replayFromAnotherSourceOfTheSameTopicNameCopiesItAll() async throws {
        let dir = TemporaryDirectory()
        let (first, second, target) = (dir.path + "/a", dir.path + "/c", dir.path + "/b")
        try await Self.seed(first, records: 30)
        try await Self.seed(second, records: 10_500)  // past the 10,000 records one search window reads
        #expect(try await CLI.run(["topics", "create", "dst", "--partitions", "1", "--data", target]).status == 0)
        for source in [first, second] {
            let run = try await CLI.run(["replay", "src", "--data", source, "--to-data", target, "--to-topic", "dst"])
            #expect(run.status == 0 && !run.stderr.contains("resuming"), "\(run.stderr)")
        }
        // Reruns of each copy nothing: the search for the first source's last copies goes on
        // past the second's (a review: it stopped there and copied all again).
        for source in [second, first] {
            let rerun = try await CLI.run(["replay", "src", "--data", source, "--to-data", target, "--to-topic", "dst"])
            #expect(rerun.stderr.contains("replayed 0 records"), "\(rerun.stderr)")
        }
        let copied = Self.jsonLines(try await CLI.run(["replay", "dst", "--data", target]).stdout)
        #expect(copied.count == 10_530)
    }

    /// A backfill below an earlier run's range is copied (the resume took the highest copy of
    /// any offset: `--from 3`, then `--until 3`, copied nothing and exited 0), and `--until`
    /// past a shorter partition's end copies that partition whole (it failed there, after
    /// writing the other partitions' records).
    @Test func replayBackfillsBelowAnEarlierRunAndClampsItsRange() async throws {
        let dir = TemporaryDirectory()
        let source = dir.path + "/a"
        let target = dir.path + "/b"
        for (data, topic) in [(source, "src"), (target, "dst")] {
            #expect(try await CLI.run(["topics", "create", topic, "--partitions", "2", "--data", data]).status == 0)
        }
        for (p, count) in [(0, 5), (1, 3)] {
            let lines = (0..<count).map { "p\(p)-\($0)" }.joined(separator: "\n")
            #expect(try await CLI.run(["produce", "src", "--partition", "\(p)", "--data", source], stdin: lines).status == 0)
        }
        let args = ["replay", "src:0", "--data", source, "--to-data", target, "--to-topic", "dst"]
        let later = try await CLI.run(args + ["--from", "3"])
        #expect(later.status == 0 && later.stderr.contains("replayed 2 records"), "\(later.stderr)")
        let backfill = try await CLI.run(args + ["--until", "3"])
        #expect(backfill.status == 0 && backfill.stderr.contains("replayed 3 records"), "\(backfill.stderr)")
        let rerun = try await CLI.run(args)
        #expect(rerun.status == 0 && rerun.stderr.contains("replayed 0 records"), "\(rerun.stderr)")
        let copied = Self.jsonLines(try await CLI.run(["replay", "dst:0", "--data", target]).stdout)
        #expect(Set(copied.map { $0["value"] as! String }) == Set((0..<5).map { "p0-\($0)" }) && copied.count == 5)

        let clamped = try await CLI.run(["replay", "src", "--until", "4", "--data", source])
        #expect(clamped.status == 0, "\(clamped.stderr)")
        #expect(Self.jsonLines(clamped.stdout).map { $0["value"] as! String } == ["p0-0", "p0-1", "p0-2", "p0-3", "p1-0", "p1-1", "p1-2"])
    }

    /// Over the wire into a topic with fewer partitions and a smaller max.message.bytes, rerun:
    /// batches the destination refuses as too large are split (all of a fetch's records went
    /// in one batch, refused at every rerun), and the rerun finds each source partition's last
    /// copy behind the other one's (it looked at the newest 10,000 records only, and copied
    /// everything again).
    @Test func replayOverTheWireIntoFewerPartitionsTwice() async throws {
        let dir = TemporaryDirectory()
        let source = dir.path + "/a"
        let target = dir.path + "/b"
        #expect(try await CLI.run(["topics", "create", "src", "--partitions", "2", "--data", source]).status == 0)
        let pad = String(repeating: "x", count: 100)
        for p in 0..<2 {
            let lines = (0..<12_000).map { "p\(p)-\($0)-\(pad)" }.joined(separator: "\n")
            #expect(try await CLI.run(["produce", "src", "--partition", "\(p)", "--data", source], stdin: lines).status == 0)
        }
        // A destination that takes smaller batches than the 512 KiB replay builds: they are split.
        #expect(try await CLI.run(["topics", "create", "dst", "--partitions", "1", "--config", "max.message.bytes=200000", "--data", target]).status == 0)
        let a = try await ServeProcess.start(data: source)
        defer { a.stop() }
        let b = try await ServeProcess.start(data: target)
        defer { b.stop() }
        let args = ["replay", "src", "--bootstrap", a.bootstrap, "--to-bootstrap", b.bootstrap, "--to-topic", "dst"]
        let first = try await CLI.run(args)
        #expect(first.status == 0 && first.stderr.contains("replayed 24000 records"), "\(first.stderr)")
        let second = try await CLI.run(args)
        #expect(second.status == 0 && second.stderr.contains("replayed 0 records"), "\(second.stderr)")
        let copied = try await CLI.run(["consume", "dst", "--bootstrap", b.bootstrap]).stdout.split(separator: "\n")
        #expect(copied.count == 24_000 && Set(copied).count == 24_000)

        // Lines of 1.5 KB over the wire: 1,000 of them made one batch of 1.5 MB, over the
        // 1 MiB that Kafka and Tidemark take by default.
        let long = (0..<1000).map { "\($0)-" + String(repeating: "y", count: 1500) }.joined(separator: "\n")
        #expect(try await CLI.run(["topics", "create", "wide", "--bootstrap", b.bootstrap]).status == 0)
        let produced = try await CLI.run(["produce", "wide", "--bootstrap", b.bootstrap], stdin: long)
        #expect(produced.status == 0 && produced.stderr.contains("produced 1000 records"), "\(produced.stderr)")
    }

    /// Between two running brokers.
    @Test func replayBetweenTwoRunningBrokers() async throws {
        let dir = TemporaryDirectory()
        let source = dir.path + "/a"
        let target = dir.path + "/b"
        try await Self.seed(source, records: 100)
        // A destination that takes smaller batches than the 512 KiB replay builds: they are split.
        #expect(try await CLI.run(["topics", "create", "dst", "--partitions", "1", "--config", "max.message.bytes=200000", "--data", target]).status == 0)
        let a = try await ServeProcess.start(data: source)
        defer { a.stop() }
        let b = try await ServeProcess.start(data: target)
        defer { b.stop() }
        let run = try await CLI.run(["replay", "src", "--from", "5", "--bootstrap", a.bootstrap, "--to-bootstrap", b.bootstrap, "--to-topic", "dst"])
        #expect(run.status == 0 && run.stderr.contains("replayed 85 records"))
        #expect(Self.jsonLines(try await CLI.run(["replay", "dst", "--bootstrap", b.bootstrap]).stdout).count == 85)
    }
}

@Suite(.serialized, .enabled(if: FileManager.default.fileExists(atPath: CLI.binary), "tidemark is built with the tests"))
struct BootstrapModeTests {
    /// `produce` takes CRLF lines as lines (a CSV from Windows was one record), and sends lines
    /// as they arrive: `tail -f app.log | tidemark produce` used to send nothing until EOF.
    @Test func produceReadsCRLFAndStreams() async throws {
        let dir = TemporaryDirectory()
        let broker = try await ServeProcess.start(data: dir.path + "/data")
        defer { broker.stop() }
        let b = ["--bootstrap", broker.bootstrap]
        #expect(try await CLI.run(["topics", "create", "lines", "--partitions", "1"] + b).status == 0)
        #expect(try await CLI.run(["produce", "lines"] + b, stdin: "a\r\nb\r\n\r\nc").stderr.contains("produced 3 records"))
        #expect(try await CLI.run(["consume", "lines"] + b).stdout == "a\nb\nc\n")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["produce", "lines"] + b
        let input = Pipe()
        process.standardInput = input
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        input.fileHandleForWriting.write(Data("streamed\n".utf8))
        var seen = ""
        for _ in 0..<100 where !seen.contains("streamed") {
            try await Task.sleep(for: .milliseconds(100))
            seen = try await CLI.run(["consume", "lines"] + b).stdout
        }
        #expect(seen.hasSuffix("streamed\n"), "a line reaches the broker while its input is still open")
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    /// A partition that ends in a control batch (a transaction's commit marker): `consume`
    /// prints the records and exits, where it fetched the marker again and again at full speed.
    @Test func consumeEndsAfterATrailingControlBatch() async throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        #expect(try await CLI.run(["topics", "create", "tx", "--partitions", "1", "--data", data]).status == 0)
        #expect(try await CLI.run(["produce", "tx", "--data", data], stdin: "v\n").status == 0)
        let log = try PartitionLog.open(directory: data + "/tx-0")
        var builder = RecordBatchBuilder(producerId: 7, producerEpoch: 0, baseSequence: -1, isTransactional: true)
        builder.append(timestamp: 1_700_000_000_000, key: [0, 0, 0, 1], value: [0, 0, 0, 0, 0, 0])  // COMMIT
        var marker = try builder.build()
        marker[RecordBatchHeader.attributesOffset + 1] |= 0x20  // control
        let crc = CRC32C.checksum(marker[RecordBatchHeader.attributesOffset...])
        for i in 0..<4 { marker[RecordBatchHeader.crcOffset + i] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * i)) }
        try log.append(marker)
        #expect(log.logEndOffset == 2)
        try log.close()
        let broker = try await ServeProcess.start(data: data)
        defer { broker.stop() }
        let consumed = try await CLI.run(["consume", "tx", "--bootstrap", broker.bootstrap], timeout: 30)
        #expect(consumed.status == 0 && consumed.stdout == "v\n")
    }

    /// The same commands against a running broker (--bootstrap) instead of a data directory.
    @Test func topicsProduceConsumeGroupsOverTheWire() async throws {
        let dir = TemporaryDirectory()
        let broker = try await ServeProcess.start(data: dir.path + "/data")
        defer { broker.stop() }
        let b = ["--bootstrap", broker.bootstrap]
        #expect(try await CLI.run(["topics", "create", "wire", "--partitions", "2", "--config", "retention.ms=60000"] + b).status == 0)
        #expect(try await CLI.run(["topics", "create", "wire"] + b).stderr.contains("Kafka error 36 TOPIC_ALREADY_EXISTS"))
        // A count past Int32 is an error, not a trap (exit 132).
        let huge = try await CLI.run(["topics", "create", "huge", "--partitions", "3000000000"] + b)
        #expect(huge.status == 1 && huge.stderr.contains("invalid partition count"), "\(huge.stderr)")
        #expect(try await CLI.run(["topics", "list"] + b).stdout == "wire\n")
        let lines = (0..<40).map { "k\($0 % 7):v\($0)" }.joined(separator: "\n")
        #expect(try await CLI.run(["produce", "wire", "--key-separator", ":"] + b, stdin: lines).stderr.contains("produced 40 records"))
        let describe = try await CLI.run(["topics", "describe", "wire"] + b)
        #expect(describe.stdout.contains("topic: wire partitions: 2") && describe.stdout.contains("retention.ms=60000"))
        let all = try await CLI.run(["consume", "wire", "--json"] + b)
        let values = all.stdout.split(separator: "\n").map {
            (try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["value"] as! String
        }
        #expect(Set(values) == Set((0..<40).map { "v\($0)" }))
        // Per key, records keep their order (one partition each, Kafka's partitioner).
        let k0 = all.stdout.split(separator: "\n").filter { $0.contains("\"key\":\"k0\"") }.map {
            (try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["value"] as! String
        }
        #expect(k0 == ["v0", "v7", "v14", "v21", "v28", "v35"])

        // A standalone group: reads 15, commits; describe shows the lag; reset moves it.
        #expect(try await CLI.run(["consume", "wire", "--group", "wg", "--max-messages", "15"] + b).stdout.split(separator: "\n").count == 15)
        #expect(try await CLI.run(["groups", "list"] + b).stdout.contains("wg"))
        #expect(try await CLI.run(["groups", "describe", "wg"] + b).stdout.contains("total lag: 25"))
        #expect(try await CLI.run(["groups", "reset-offsets", "wg", "--topic", "wire", "--to-latest", "--execute"] + b).status == 0)
        #expect(try await CLI.run(["groups", "describe", "wg"] + b).stdout.contains("total lag: 0"))
        #expect(try await CLI.run(["consume", "wire", "--group", "wg"] + b).stdout.isEmpty)
        #expect(try await CLI.run(["groups", "delete", "wg"] + b).stdout == "deleted group wg\n")
        #expect(try await !CLI.run(["groups", "list"] + b).stdout.contains("wg"))
        #expect(try await CLI.run(["topics", "delete", "wire"] + b).status == 0)
        #expect(try await CLI.run(["topics", "list"] + b).stdout.isEmpty)
        // A broker that is not there: one clear line, non-zero exit.
        let down = try await CLI.run(["topics", "list", "--bootstrap", "127.0.0.1:1"])
        #expect(down.status != 0 && down.stderr.contains("cannot connect to 127.0.0.1:1"))
    }
}

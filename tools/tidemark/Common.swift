import ArgumentParser
import Synchronization
import Foundation
import Tidemark
import TidemarkClient
import TidemarkStorage

#if canImport(Glibc)
import Glibc
#endif

/// `--data`: the data directory a command opens directly (no server needed).
struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: "Data directory (a broker must not have it open; default ./tidemark-data).")
    var givenData: String?
    @Option(help: "Work against this running broker instead of a data directory (host:port).") var bootstrap: String?

    var data: String { givenData ?? "./tidemark-data" }

    func validate() throws {
        // One or the other: with both, the broker was used and --data silently ignored.
        if givenData != nil && bootstrap != nil { throw ValidationError("choose one of --data and --bootstrap") }
    }

    /// A client for `--bootstrap`, or nil for data-directory mode.
    func client() throws -> KafkaClient? {
        guard let bootstrap else { return nil }
        return try KafkaClient(bootstrap: bootstrap)
    }

    /// Opens the broker over the data directory, runs `body`, and closes it.
    func withBroker<T: Sendable>(creating: Bool = false, _ body: (Broker) async throws -> T) async throws -> T {
        try await withDataDirectory(data, creating: creating, body)
    }
}

/// Opens a broker over `data` (which must exist unless `creating`), runs `body`, closes it.
func withDataDirectory<T: Sendable>(_ data: String, creating: Bool = false, _ body: (Broker) async throws -> T) async throws -> T {
    guard creating || FileManager.default.fileExists(atPath: data) else {
        throw CLIError("no data directory at \(data)")
    }
    if FileManager.default.fileExists(atPath: data) { try checkOpeningChangesNothingWanted(data) }
    let broker: Broker
    do {
        // Without the server's settings: topics keep their config as the server left it.
        var options = BrokerOptions()
        options.topicsFollowDefaults = false
        broker = try await Broker.open(dataDirectory: data, options: options)
    } catch let error as StorageError where error.message.contains("in use") {
        throw CLIError("\(data) is in use by a running broker; stop it first")
    }
    do {
        let result = try await body(broker)
        try await broker.close()
        return result
    } catch {
        try? await broker.close()
        throw error
    }
}

/// `--set KEY=VALUE` and `--delete KEY` of a config change (a topic's or a group's), as Kafka's
/// `kafka-configs --add-config / --delete-config` take them.
struct ConfigChangeOptions: ParsableArguments {
    @Option(name: .customLong("set"), help: "KEY=VALUE: a config to set (repeatable).") var settings: [String] = []
    @Option(name: .customLong("delete"), help: "KEY: a config back to its default (repeatable).") var deletions: [String] = []

    var isEmpty: Bool { settings.isEmpty && deletions.isEmpty }

    func validate() throws {
        for setting in settings where !setting.contains("=") || setting.hasPrefix("=") {
            throw ValidationError("--set needs KEY=VALUE, got '\(setting)'")
        }
    }

    /// Name and value, nil for a deletion: what IncrementalAlterConfigs sends.
    var changes: [(String, String?)] {
        settings.map { setting in
            let parts = setting.split(separator: "=", maxSplits: 1).map(String.init)
            return (parts[0], parts.count > 1 ? parts[1] : "")
        } + deletions.map { ($0, nil) }
    }

    /// The same, as the engine takes them.
    var engineChanges: [ConfigChange] { changes.map { name, value in value.map { ConfigChange.set(name, $0) } ?? .delete(name) } }

    /// "a=1, b=(default)", for the line that says what changed.
    var summary: String { changes.map { "\($0.0)=\($0.1 ?? "(default)")" }.joined(separator: ", ") }
}

/// The tools open a data directory as the broker does, which recovers it when it was not shut
/// down cleanly (every copy of a live directory): an unfinished write at a log's end is cut,
/// as the broker's start would. Damage past that is not the tools' to cut: it would take the
/// records after it with it, and the evidence `tidemark verify` shows (a `topics list` of a
/// backup with a bad batch in the middle cut the good ones after it). Refused here, saying
/// what and how to repair it; likewise a directory the tools cannot write, named as such.
func checkOpeningChangesNothingWanted(_ data: String) throws {
    guard access(data, W_OK) == 0 else {
        throw CLIError(
            "\(data) is not writable (\(String(cString: strerror(errno)))): the tools open a data directory as the broker does, "
                + "and recover it if it was not shut down cleanly. Read it as it is with `tidemark verify` and `tidemark dump`, "
                + "or copy it somewhere writable")
    }
    guard let partitions = try? Verify.parse([data]).partitions().found else { return }
    var damaged: [String] = []
    for partition in partitions {
        // (After a clean shutdown nothing is scanned here: the open reads only the newest
        // segment's tail, and refuses damage there rather than cut it.)
        guard let report = try? LogVerifier.verify(partitionDirectory: partition, onlyWhatRecoveryScans: true) else { continue }
        damaged += report.problems.map { "  \($0)" }
    }
    guard damaged.isEmpty else {
        throw CLIError(
            "\(data) has damage that opening it would act on (a broker's start keeps such a partition offline, or, in an older segment, cuts the log there and the records after it):\n" + damaged.prefix(10).joined(separator: "\n")
                + (damaged.count > 10 ? "\n  ...and \(damaged.count - 10) more" : "")
                + "\nThe tools do not cut it: `tidemark verify \(data)` lists it, `tidemark verify --repair \(data)` cuts it (the log from the bad batch on); "
                + "repair a copy to keep this one as it is")
    }
}

/// A one-line error for the terminal (argument-parser prints "Error: <message>" and exits 1).
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

/// Writes text to stdout without buffering surprises for pipes.
enum Output {
    /// Set once stdout's reader has gone (EPIPE: `tidemark consume ... | head -1`): nothing more
    /// is written, and commands that print as they read stop, closing what they opened (a
    /// process killed by SIGPIPE left its data directory marked as not shut down cleanly, and
    /// the next start recovered every partition). SIGPIPE is ignored (`TidemarkCommand.main`).
    static let readerGoneFlag = Atomic<Bool>(false)
    static var readerGone: Bool { readerGoneFlag.load(ordering: .relaxed) }
    /// The errno of a write to stdout that failed for another reason (a full disk, an I/O
    /// error): writing stops as for `readerGone`, and the command exits 1 saying so
    /// (`TidemarkCommand.main`) rather than 0 with its output cut short.
    static let writeErrno = Atomic<Int32>(0)

    static func line(_ text: String) {
        guard !readerGone else { return }
        writeStdout(Array((text + "\n").utf8))
    }

    /// Writes all of `bytes` to stdout, or sets `readerGone` (and `writeErrno` unless the
    /// reader went away). Returns whether all were written.
    @discardableResult
    static func writeStdout(_ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                // A non-blocking stdout (some process managers give one): wait for room.
                var descriptor = pollfd(fd: STDOUT_FILENO, events: Int16(POLLOUT), revents: 0)
                _ = poll(&descriptor, 1, 1000)
                continue
            }
            guard n > 0 else {
                if n < 0 && errno != EPIPE { writeErrno.store(errno, ordering: .relaxed) }
                readerGoneFlag.store(true, ordering: .relaxed)
                return false
            }
            done += n
        }
        return true
    }

    /// Exits 1 with a one-line reason if a write to stdout failed other than by its reader
    /// going away.
    static func exitIfStdoutFailed() {
        let code = writeErrno.load(ordering: .relaxed)
        guard code != 0 else { return }
        error("Error: writing standard output failed: \(String(cString: strerror(code))); the output is incomplete")
        exit(1)
    }

    /// Writes a line to stderr, ignoring failures (FileHandle's write traps on them: a full
    /// disk under `2>&1`, or a reader gone, ended the command with a trap).
    static func error(_ text: String) {
        unchecked(text + "\n", to: STDERR_FILENO)
    }

    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

    /// Writes all of `text` to `descriptor`, ignoring errors: for a process that must go on
    /// (or end its own way) when nobody reads any more. `serve` runs with SIGPIPE ignored, and
    /// FileHandle's write traps on EPIPE: `tidemark serve | head -1` used to kill the broker
    /// with SIGILL when it wrote its ready line.
    static func unchecked(_ text: String, to descriptor: Int32) {
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            done += n
        }
    }

    /// A progress bar on stderr when it is a terminal; nothing when piped.
    static func progress(_ label: String, _ done: Int, _ total: Int) {
        guard stderrIsTerminal, total > 0 else { return }
        let width = 30
        let filled = width * done / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        unchecked("\r\(label) [\(bar)] \(done)/\(total)\(done == total ? "\n" : "")", to: STDERR_FILENO)
    }

    /// A name as a table's field: control characters escaped (\x0a), so a group id with a
    /// newline or a tab does not split the table's lines or columns.
    static func field(_ name: String) -> String {
        guard name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return name }
        return String(name.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? String(format: "\\x%02x", $0.value) : String($0) }.joined())
    }

    /// Bytes as text when they are UTF-8, else as an escaped form.
    static func text(_ bytes: [UInt8]?) -> String {
        guard let bytes else { return "null" }
        if let string = String(validating: bytes, as: UTF8.self) { return string }
        return bytes.map { String(format: "\\x%02x", $0) }.joined()
    }

    /// A JSON value for bytes: a string when UTF-8, `{"base64": ...}` otherwise, null for null.
    static func json(_ bytes: [UInt8]?) -> Any {
        guard let bytes else { return NSNull() }
        if let string = String(validating: bytes, as: UTF8.self) { return string }
        return ["base64": Data(bytes).base64EncodedString()]
    }

    static func jsonLine(_ object: [String: Any]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}

/// Parses `earliest`, `latest`, an offset, or a time (ms since the epoch, or ISO 8601).
func parseStart(_ text: String) throws -> StartPosition {
    switch text {
    case "earliest", "beginning": return .earliest
    case "latest", "end": return .latest
    default:
        if let offset = Int64(text), offset >= 0 { return .offset(offset) }
        if let ms = parseTime(text) { return .timestamp(ms) }
        throw CLIError("'\(text)' is not earliest, latest, an offset or a time")
    }
}

/// A time as ms since the epoch ("@1700000000000") or ISO 8601 ("2026-11-29T10:00:00Z";
/// without a zone, "2026-11-29T10:00:00.000", this machine's local time, as Kafka's tools).
/// Nil for a time before 1970 (negative ms are ListOffsets' special times, not times: @-5 was
/// sent as one, and refused UNSUPPORTED_VERSION).
func parseTime(_ text: String) -> Int64? {
    if text.hasPrefix("@"), let ms = Int64(text.dropFirst()) { return ms >= 0 ? ms : nil }
    let formatter = ISO8601DateFormatter()
    for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
        formatter.formatOptions = options
        if let date = formatter.date(from: text) {
            let ms = date.timeIntervalSince1970 * 1000
            return ms >= 0 && ms < 9e18 ? Int64(ms) : nil
        }
    }
    // Without a zone, this machine's local time, as Kafka's tools read "2026-11-29T10:00:00.000"
    // (kafka-consumer-groups --to-datetime).
    let local = DateFormatter()
    local.locale = Locale(identifier: "en_US_POSIX")
    local.timeZone = TimeZone.current
    for format in ["yyyy-MM-dd'T'HH:mm:ss.SSS", "yyyy-MM-dd'T'HH:mm:ss"] {
        local.dateFormat = format
        if let date = local.date(from: text) {
            let ms = date.timeIntervalSince1970 * 1000
            return ms >= 0 && ms < 9e18 ? Int64(ms) : nil
        }
    }
    return nil
}

/// The data directory's lock for the offline tools (`dump`, `verify`), which work on files
/// rather than through a `Broker`.
enum DataDirectoryLock {
    /// The data directory holding `path` (itself, a partition directory's parent, or a segment
    /// file's grandparent): the nearest one with a `.lock` file.
    static func dataDirectory(containing path: String) -> String? {
        // Along the path as written and along its real path: through a symlink to a partition
        // directory, the walk up the written path found no lock, and `verify --repair` cut
        // segments under a running broker; a data directory whose partitions are links to
        // another disk has its lock only along the written one.
        let real = realpath(path, nil).map { pointer in
            defer { free(pointer) }
            return String(cString: pointer)
        }
        for start in [path] + (real.map { [$0] } ?? []) {
            var candidate = URL(fileURLWithPath: start).standardizedFileURL
            for _ in 0..<3 {
                if FileManager.default.fileExists(atPath: candidate.appendingPathComponent(".lock").path) { return candidate.path }
                candidate.deleteLastPathComponent()
            }
        }
        return nil
    }

    /// Takes the lock of the data directory holding `path`. Returns the held lock (nil when
    /// `path` is not in a data directory), or throws when a running broker holds it.
    static func acquire(for path: String) throws -> SharedFile? {
        guard let data = dataDirectory(containing: path) else { return nil }
        do {
            return try DurableFile.lockExclusively(data + "/.lock")
        } catch {
            // Only a lock someone holds is a running broker: a lock file this user may not open
            // (another user's data directory) was reported as one.
            if error.errno == .wouldBlock || error.errno == .resourceTemporarilyUnavailable {
                throw CLIError("\(data) is in use by a running broker; stop it first")
            }
            throw CLIError("cannot take the lock of \(data) (\(data)/.lock): \(error)")
        }
    }

    /// Whether a running broker holds the data directory of `path` (for read-only tools,
    /// which go on with a warning).
    static func warnIfLive(_ path: String) {
        do {
            if let lock = try acquire(for: path) { DurableFile.unlock(lock) }
        } catch {
            Output.error("warning: \(error); reading its files anyway (what is being written may look torn)")
        }
    }
}

/// Consecutive ranges of `0..<count` for batches of at most `maxRecords` items and
/// `maxBytes` of `size(i)` (a single item over `maxBytes` makes a batch of its own): how
/// `produce` and `replay` cut what they send into batches a broker takes.
func batchRanges(count: Int, maxRecords: Int = .max, maxBytes: Int, size: (Int) -> Int) -> [Range<Int>] {
    var ranges: [Range<Int>] = []
    var start = 0
    while start < count {
        var end = start
        var bytes = 0
        while end < count && end - start < maxRecords {
            let next = size(end)
            if end > start && bytes + next > maxBytes { break }
            bytes += next
            end += 1
        }
        ranges.append(start..<end)
        start = end
    }
    return ranges
}

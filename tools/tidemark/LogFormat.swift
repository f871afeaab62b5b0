import ArgumentParser
import Foundation
import Logging
import TidemarkHTTP

#if canImport(Glibc)
import Glibc
#endif

/// `--log-format json`: one JSON object per line on standard error, for log shippers:
/// `{"ts":"2026-11-30T10:00:00.123Z","level":"info","logger":"tidemark","msg":"...", ...metadata}`.
/// Each line is one write(2), so lines from different threads never interleave.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    // Source and location are not printed; an error attached to the event is, as "error".
    func log(event: LogEvent) {
        var metadata = event.metadata
        if let error = event.error { metadata = (metadata ?? [:]).merging(["error": "\(error)"]) { old, _ in old } }
        write(level: event.level, message: event.message, metadata: metadata)
    }

    private func write(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let explicit { all.merge(explicit) { _, new in new } }
        var out = "{\"ts\":\(JSONText.quote(Self.timestamp())),\"level\":\(JSONText.quote(level.rawValue))"
        out += ",\"logger\":\(JSONText.quote(label)),\"msg\":\(JSONText.quote(message.description))"
        for (key, value) in all.sorted(by: { $0.key < $1.key }) where !["ts", "level", "logger", "msg"].contains(key) {
            out += ",\(JSONText.quote(key)):\(JSONText.quote(value.description))"
        }
        out += "}\n"
        Output.unchecked(out, to: STDERR_FILENO)
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(now.tv_nsec / 1_000_000), 3))Z"
    }
}

enum LogFormat: String, CaseIterable, ExpressibleByArgument {
    case text, json
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Installs the process's log handler: text (swift-log's stream handler) or JSON lines, on
/// standard error, at `level`.
func bootstrapLogging(format: LogFormat, level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        switch format {
        case .text:
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        case .json:
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

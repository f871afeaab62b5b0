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

/// `--log-format text` (the default): swift-log's stream handler, with control characters in
/// the message and metadata escaped (a line feed as `\n`, others as `\u{1B}`). Group ids,
/// client ids and other client-chosen text reach log lines: a group id holding a line feed
/// wrote a second, forged line ("critical ... data directory corrupt").
struct TextLogHandler: LogHandler {
    var inner: StreamLogHandler

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue.mapValues { .string(Self.escaped($0.description)) } }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue.map { .string(Self.escaped($0.description)) } }
    }

    func log(event: LogEvent) {
        var event = event
        var metadata = event.metadata ?? [:]
        if let error = event.error {
            metadata["error"] = metadata["error"] ?? .string("\(error)")
            event.error = nil
        }
        event.message = "\(Self.escaped(event.message.description))"
        event.metadata = metadata.isEmpty ? nil : metadata.mapValues { .string(Self.escaped($0.description)) }
        inner.log(event: event)
    }

    /// `text` with C0 and C1 controls, DEL and the Unicode line and paragraph separators escaped.
    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where needsEscape(scalar): out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }
}

enum LogFormat: String, CaseIterable, ExpressibleByArgument {
    case text, json
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Installs the process's log handler: text (swift-log's stream handler, control characters
/// escaped) or JSON lines, on
/// standard error, at `level`.
func bootstrapLogging(format: LogFormat, level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        switch format {
        case .text:
            var handler = TextLogHandler(inner: StreamLogHandler.standardError(label: label))
            handler.logLevel = level
            return handler
        case .json:
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

import Dispatch
import Logging
import Synchronization

/// Logs a repeated failure at most once per `interval` for each key, with how many times it
/// happened meanwhile: a client retrying every 100 ms against a full disk or a failed
/// partition gives one line a minute, not ten a second (README: logs are never per request).
///
/// Concurrency: `last` (a Mutex) is touched by every event loop; the logger is called outside
/// the lock. Bounded: at most `maxKeys` keys are remembered (the oldest half is dropped past
/// it, which at worst logs those keys once more).
final class LogThrottle: Sendable {
    private struct Entry {
        var loggedAt: UInt64
        var suppressed: Int
    }

    private let last = Mutex([String: Entry]())
    let intervalNanoseconds: UInt64
    static let maxKeys = 1024

    init(intervalSeconds: UInt64 = 60) {
        intervalNanoseconds = intervalSeconds * 1_000_000_000
    }

    /// Logs `message` at error level unless this key was logged less than `interval` ago.
    func error(_ logger: Logger, _ message: String, key: String, metadata: Logger.Metadata) {
        log(.error, logger, message, key: key, metadata: metadata)
    }

    /// Logs `message` at `level` unless this key was logged less than `interval` ago.
    func log(_ level: Logger.Level, _ logger: Logger, _ message: String, key: String, metadata: Logger.Metadata) {
        let suppressed = last.withLock { entries -> Int? in
            // Read under the lock: read before it, another loop's later time could be stored
            // first, and `now - loggedAt` trapped (two connections of one host closed at once).
            let now = DispatchTime.now().uptimeNanoseconds
            if var entry = entries[key], now &- entry.loggedAt < intervalNanoseconds {
                entry.suppressed += 1
                entries[key] = entry
                return nil
            }
            let before = entries[key]?.suppressed ?? 0
            if entries.count >= Self.maxKeys {
                for old in entries.sorted(by: { $0.value.loggedAt < $1.value.loggedAt }).prefix(Self.maxKeys / 2) {
                    entries.removeValue(forKey: old.key)
                }
            }
            entries[key] = Entry(loggedAt: now, suppressed: 0)
            return before
        }
        guard let suppressed else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["repeated"] = "\(suppressed) more times since the last line" }
        logger.log(level: level, "\(message)", metadata: metadata)
    }
}

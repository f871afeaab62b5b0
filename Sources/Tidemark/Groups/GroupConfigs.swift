import Foundation
import Synchronization
import TidemarkStorage

/// Per-group settings under Kafka's group config names (resource type GROUP, 32, in
/// DescribeConfigs / IncrementalAlterConfigs / AlterConfigs), persisted in
/// `<data>/group-configs.json`:
/// ```json
/// {"version":1,"groups":{"workers":{"consumer.session.timeout.ms":"30000"}}}
/// ```
/// A group need not exist to be configured (Kafka allows configuring a group ahead of its
/// first member). Values are validated by name when set.
///
/// Concurrency: `state` (a Mutex) owns the map; writes are serialized by the broker's admin queue.
/// Its lock is a leaf (taken under the group coordinator's, it takes no other).
public final class GroupConfigs: Sendable {
    /// A known setting: its default and how a value is checked.
    struct Key: Sendable {
        var name: String
        var defaultValue: String
        var validate: @Sendable (String) -> String?
        /// The check of a value read from group-configs.json, when looser than `validate`: a
        /// bound tightened since must not refuse the start of a node whose file an earlier
        /// version wrote.
        var loaded: (@Sendable (String) -> String?)? = nil
    }

    static func integer(_ range: ClosedRange<Int64>) -> @Sendable (String) -> String? {
        { value in
            guard let n = Int64(value), range.contains(n) else { return "must be a number in \(range.lowerBound)...\(range.upperBound)" }
            return nil
        }
    }

    static func oneOf(_ choices: [String]) -> @Sendable (String) -> String? {
        { value in choices.contains(value) ? nil : "must be one of \(choices.joined(separator: ", "))" }
    }

    /// Kafka's group configs (4.1) that Tidemark honours.
    static let keys: [Key] = [
        // Wider than Kafka's broker bounds (45-60 s, 5-15 s), not unbounded: a heartbeat
        // interval of 1 ms had each member send 700 heartbeats a second.
        Key(name: "consumer.session.timeout.ms", defaultValue: "45000", validate: integer(1_000...3_600_000), loaded: integer(1...3_600_000)),
        Key(name: "consumer.heartbeat.interval.ms", defaultValue: "5000", validate: integer(100...3_600_000), loaded: integer(1...3_600_000)),
        Key(name: "share.session.timeout.ms", defaultValue: "45000", validate: integer(1_000...3_600_000), loaded: integer(1...3_600_000)),
        Key(name: "share.heartbeat.interval.ms", defaultValue: "5000", validate: integer(100...3_600_000), loaded: integer(1...3_600_000)),
        Key(name: "share.record.lock.duration.ms", defaultValue: "30000", validate: integer(1_000...3_600_000)),
        Key(name: "share.delivery.count.limit", defaultValue: "5", validate: integer(2...10)),
        Key(name: "share.partition.max.record.locks", defaultValue: "2000", validate: integer(100...10_000)),
        Key(name: "share.redelivery.backoff.ms", defaultValue: "0", validate: integer(0...86_400_000)),
        Key(name: "share.key.ordering", defaultValue: "false", validate: oneOf(["true", "false"])),
        Key(name: "share.redelivery.backoff.max.ms", defaultValue: "60000", validate: integer(1...86_400_000)),
        Key(name: "errors.deadletterqueue.topic.name", defaultValue: "", validate: { value in
            value.isEmpty || (try? TopicName.validate(value)) != nil ? nil : "must be a valid topic name" }),
        Key(name: "share.auto.offset.reset", defaultValue: "earliest", validate: { value in
            ShareStartPolicy(value) == nil ? "must be earliest, latest or by_duration:<PnDTnHnMn.nS> (not negative)" : nil }),
        Key(name: "share.isolation.level", defaultValue: "read_uncommitted", validate: oneOf(["read_uncommitted", "read_committed"])),
    ]

    static let keysByName = Dictionary(uniqueKeysWithValues: keys.map { ($0.name, $0) })

    struct File: Codable {
        var version: Int
        var groups: [String: [String: String]]
    }

    let path: String
    /// Defaults that the broker's settings replace (e.g. group.consumer.session.timeout.ms).
    let brokerDefaults: [String: String]
    /// What a dead-letter topic name must start with (errors.deadletterqueue.topic.name.prefix).
    let deadLetterPrefix: String
    /// Most groups with settings of their own.
    let maxGroups: Int
    private let state: Mutex<[String: [String: String]]>

    init(path: String, brokerDefaults: [String: String] = [:], deadLetterPrefix: String = "dlq.", maxGroups: Int = 10_000) throws {
        self.path = path
        self.maxGroups = maxGroups
        self.brokerDefaults = brokerDefaults
        self.deadLetterPrefix = deadLetterPrefix
        var groups: [String: [String: String]] = [:]
        if let bytes = try DurableFile.read(path) {
            let file: File
            do {
                file = try JSONDecoder().decode(File.self, from: Data(bytes))
            } catch {
                throw TidemarkError(
                    .storage, "\(path) is damaged (\(error)); repair it, or remove it to return every group to the default settings")
            }
            guard file.version == 1 else { throw TidemarkError(.storage, "unknown group-configs.json version \(file.version)") }
            // A hand-edited file gets the checks `alter` applies: a value out of range would trap
            // or misbehave later (share.partition.max.record.locks sizes arithmetic and windows).
            // Names this version does not know are kept, unused (a newer version's settings).
            for (group, settings) in file.groups.sorted(by: { $0.key < $1.key }) {
                for (name, value) in settings.sorted(by: { $0.key < $1.key }) {
                    if let key = Self.keysByName[name], let problem = (key.loaded ?? key.validate)(value) {
                        throw TidemarkError(
                            .storage, "\(path): group '\(group)': \(name) \(problem), got '\(value)'; correct it, or remove the setting")
                    }
                }
            }
            groups = file.groups
        }
        state = Mutex(groups)
    }

    /// A setting's value for groups that do not set it: the broker's, else Kafka's default.
    func defaultValue(_ name: String) -> String? { brokerDefaults[name] ?? Self.keysByName[name]?.defaultValue }

    /// The settings explicitly made for `group`.
    public func explicit(_ group: String) -> [String: String] { state.withLock { $0[group] ?? [:] } }

    /// Every known setting of `group`: (name, effective value, whether it is the default).
    public func describe(_ group: String) -> [(name: String, value: String, isDefault: Bool)] {
        let set = explicit(group)
        return Self.keys.map { key in (key.name, set[key.name] ?? defaultValue(key.name) ?? key.defaultValue, set[key.name] == nil) }
    }

    /// The effective value of one setting.
    public func value(_ name: String, of group: String) -> String? {
        explicit(group)[name] ?? defaultValue(name)
    }

    /// Applies changes (every name checked first: all or nothing); `replacing` clears the
    /// settings not named. Persists unless `validateOnly`.
    func alter(_ group: String, changes: [ConfigChange], replacing: Bool, validateOnly: Bool) throws {
        var settings = replacing ? [:] : explicit(group)
        for change in changes {
            switch change {
            case .set(let name, let value):
                guard let key = Self.keysByName[name] else { throw TidemarkError(.invalidConfig, "unknown group config \(name)") }
                guard var value else { settings.removeValue(forKey: name); continue }
                // Without the white space around it, as Kafka's ConfigDef reads every value.
                value = value.trimmingCharacters(in: .whitespacesAndNewlines)
                if let problem = key.validate(value) { throw TidemarkError(.invalidConfig, "\(name) \(problem), got '\(value)'") }
                if name == "errors.deadletterqueue.topic.name", !value.isEmpty, !value.hasPrefix(deadLetterPrefix) {
                    throw TidemarkError(
                        .invalidConfig, "\(name) must start with '\(deadLetterPrefix)' (errors.deadletterqueue.topic.name.prefix), got '\(value)'")
                }
                settings[name] = value
            case .delete(let name):
                guard Self.keysByName[name] != nil else { throw TidemarkError(.invalidConfig, "unknown group config \(name)") }
                settings.removeValue(forKey: name)
            case .append(let name, _), .subtract(let name, _):
                throw TidemarkError(.invalidConfig, "\(name) is not a list: APPEND and SUBTRACT do not apply")
            }
        }
        // A member must be able to heartbeat before its session expires (Kafka's GroupConfig
        // checks the same): checked when a change names either setting of the pair.
        let named = Set(changes.map(\.name))
        for kind in ["consumer", "share"] {
            let (interval, timeout) = ("\(kind).heartbeat.interval.ms", "\(kind).session.timeout.ms")
            guard named.contains(interval) || named.contains(timeout) || replacing,
                let every = Int64(settings[interval] ?? defaultValue(interval) ?? ""),
                let within = Int64(settings[timeout] ?? defaultValue(timeout) ?? "")
            else { continue }
            guard every < within else {
                throw TidemarkError(.invalidConfig, "\(interval) (\(every)) must be less than \(timeout) (\(within))")
            }
        }
        // Group ids are the clients' to choose: without a bound, configuring new ids would grow
        // the map, and the file rewritten at every change, for ever.
        var all = state.withLock { $0 }
        if !settings.isEmpty, all[group] == nil, all.count >= maxGroups {
            throw TidemarkError(
                .invalidConfig,
                "\(all.count) groups have settings of their own, the most there can be: delete the settings of groups no longer used")
        }
        if validateOnly { return }
        all[group] = settings.isEmpty ? nil : settings
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // Saved first (writes are serialized by the admin queue): a change that cannot be
        // saved (a full disk) is not live.
        try DurableFile.write(Array(try encoder.encode(File(version: 1, groups: all))), to: path)
        state.withLock { $0[group] = all[group] }
    }
}

extension Broker {
    /// Changes a group's configuration by Kafka names (GROUP resources).
    public func alterGroupConfig(_ group: String, changes: [ConfigChange], replacing: Bool = false, validateOnly: Bool = false)
        async throws
    {
        try checkOpen()
        guard GroupCoordinator.validGroupId(group) else { throw TidemarkError(.invalidGroupId, "invalid group id '\(group)'") }
        // Also when the write fails: the configs in memory may have changed before it.
        defer { if !validateOnly { groups.configsChanged(group) } }
        try await admin { [self] in try groupConfigs.alter(group, changes: changes, replacing: replacing, validateOnly: validateOnly) }
    }
}

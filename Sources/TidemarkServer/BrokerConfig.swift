import NIOCore
import Tidemark

/// Broker settings under Kafka's names (server.properties), for `tidemark serve --config
/// KEY=VALUE` and `--config-file FILE`, and for DescribeConfigs(BROKER).
///
/// Every key Tidemark honours is listed in `keys`; an unknown key is an error naming it,
/// so a typo never passes silently. Values follow Kafka's meaning and units.
public struct BrokerConfig: Sendable {
    public var server = ServerConfig()
    public var broker = BrokerOptions()
    /// The data directory (`log.dirs` / `log.dir`; one directory).
    public var dataDirectory = "./tidemark-data"
    /// The settings given, by Kafka name (what DescribeConfigs reports as set by the operator).
    public private(set) var explicit: [String: String] = [:]
    /// Kafka broker settings given that have no effect here, in the order given (logged once
    /// at start).
    public private(set) var withoutEffect: [String] = []
    /// Kafka settings accepted whose asked-for behaviour Tidemark does not have (logged as
    /// warnings at start, each saying what happens instead).
    public private(set) var behavesOtherwise: [String] = []

    public init() {}

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        /// The setting's name, when the failure is that Kafka does not define it.
        public var unknownKey: String? = nil
    }

    /// The keys understood, with what each sets (for `--help` and errors).
    public static let keys: [(String, String)] = [
        ("log.dirs", "data directory (one)"), ("log.dir", "data directory"),
        ("listeners", "PLAINTEXT://host:port to listen on"), ("advertised.listeners", "PLAINTEXT://host:port clients are told"),
        ("node.id", "this node's id"), ("broker.id", "this node's id"),
        ("num.partitions", "partitions of auto-created topics"), ("auto.create.topics.enable", "create topics clients ask for"),
        ("log.retention.ms", "topic default retention.ms"), ("log.retention.minutes", "topic default retention, minutes"),
        ("log.retention.hours", "topic default retention, hours"), ("log.retention.bytes", "topic default retention.bytes"),
        ("log.segment.bytes", "topic default segment.bytes"), ("message.max.bytes", "topic default max.message.bytes"),
        ("log.flush.interval.messages", "topic default flush.messages"), ("log.flush.interval.ms", "topic default flush.ms"),
        ("log.message.timestamp.type", "topic default message.timestamp.type"),
        ("log.message.timestamp.before.max.ms", "topic default message.timestamp.before.max.ms"),
        ("log.message.timestamp.after.max.ms", "topic default message.timestamp.after.max.ms"),
        ("compression.type", "topic default compression.type"),
        ("offsets.retention.minutes", "committed offsets of empty groups expire after this"),
        ("offsets.retention.check.interval.ms", "how often expired offsets are looked for"),
        ("offset.metadata.max.bytes", "largest commit metadata"),
        ("offsets.memory.max.bytes", "most memory all committed offsets take (Tidemark's)"),
        ("group.min.session.timeout.ms", "smallest session timeout a member may ask"),
        ("group.max.session.timeout.ms", "largest session timeout a member may ask"),
        ("group.initial.rebalance.delay.ms", "wait for more members before a new group's first generation"),
        ("group.consumer.session.timeout.ms", "consumer-protocol members are removed after this without a heartbeat"),
        ("group.consumer.heartbeat.interval.ms", "how often consumer-protocol members heartbeat"),
        ("group.consumer.max.size", "most members of a consumer-protocol group"),
        ("group.max.size", "most members of a classic group"),
        ("group.members.max.bytes", "most memory all groups' members keep (Tidemark's)"),
        ("group.share.record.lock.duration.ms", "how long a share group's acquired record stays locked to its worker"),
        ("group.share.delivery.count.limit", "deliveries before a share group's record is archived"),
        ("group.share.partition.max.record.locks", "most records in flight per share partition"),
        ("group.share.window.max.records", "most records a share partition's window keeps in memory: unfinished ones, delayed included (Tidemark's)"),
        ("group.share.heartbeat.interval.ms", "how often share group members heartbeat"),
        ("group.share.session.timeout.ms", "share group members are removed after this without a heartbeat"),
        ("group.share.max.size", "most members of a share group"),
        ("group.share.max.groups", "most share groups (with members or share state)"),
        ("errors.deadletterqueue.topic.name.prefix", "what share groups' dead-letter topic names must start with"),
        ("producer.id.expiration.ms", "idle producer state is forgotten after this"),
        ("socket.request.max.bytes", "largest request frame"), ("queued.max.request.bytes", "request bytes read or queued"),
        ("connections.max.idle.ms", "idle connections are closed after this"), ("fetch.max.bytes", "largest fetch response"),
        ("max.connections", "connections open at once; at the limit accepting waits until one closes (default: the descriptor limit less the segment files' budget, 192 and 3 per event loop)"),
        ("max.connections.per.ip", "connections open at once from one client address"),
        ("max.incremental.fetch.session.cache.slots", "incremental fetch sessions kept at once (0: none)"),
        ("num.network.threads", "event loop threads"),
    ]

    /// Applies one `key=value`.
    public mutating func set(_ key: String, _ value: String) throws(Failure) {
        // Every setting Kafka defines is its type first, as Kafka's ConfigDef parses it
        // (num.partitions=99999999999 was taken, and no topic could then be made).
        if let kind = Self.kafkaBrokerSettings[key], !Self.parses(value, as: kind) {
            throw Failure(description: "\(key) needs \(Self.expected(kind)), got '\(value)'")
        }
        if key.hasPrefix("config.providers") {
            throw Failure(description: "\(key): config providers (${provider:path:key} values) are not supported; write the values into the file")
        }
        func number() throws(Failure) -> Int64 {
            guard let n = Int64(value.trimmingCharacters(in: .whitespaces)) else {
                throw Failure(description: "\(key) needs a number, got '\(value)'")
            }
            return n
        }
        func ranged(_ range: ClosedRange<Int64>) throws(Failure) -> Int64 {
            let n = try number()
            guard range.contains(n) else { throw Failure(description: "\(key) must be in \(range.lowerBound)...\(range.upperBound), got \(n)") }
            return n
        }
        /// A count of `unit`s as milliseconds: a count too large for Int64 is an error, not a trap.
        func milliseconds(per unit: Int64) throws(Failure) -> Int64 {
            let (ms, overflow) = try number().multipliedReportingOverflow(by: unit)
            guard !overflow else { throw Failure(description: "\(key) is too large, got '\(value)'") }
            return ms
        }
        func flag() throws(Failure) -> Bool {
            switch value.lowercased() {
            case "true": return true
            case "false": return false
            default: throw Failure(description: "\(key) needs true or false, got '\(value)'")
            }
        }
        func listener() throws(Failure) -> (String, Int) {
            // PLAINTEXT://host:port (the first, when several are listed).
            let first = value.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? value
            guard let scheme = first.range(of: "://") else { throw Failure(description: "\(key) needs PLAINTEXT://host:port, got '\(value)'") }
            guard first[..<scheme.lowerBound].uppercased() == "PLAINTEXT" else {
                throw Failure(description: "\(key): only PLAINTEXT listeners are supported, got '\(value)'")
            }
            let address = first[scheme.upperBound...]
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
                (0...65535).contains(port)
            else { throw Failure(description: "\(key) needs a port, got '\(value)'") }
            let host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            return (host.isEmpty ? "0.0.0.0" : host, port)
        }
        func topicDefault(_ name: String, _ topicValue: String) throws(Failure) {
            do { try broker.defaultTopicConfig.apply(kafkaName: name, value: topicValue) } catch {
                throw Failure(description: "\(key): \(error.message)")
            }
        }
        switch key {
        case "log.dirs", "log.dir":
            guard !value.contains(",") else { throw Failure(description: "\(key): one data directory only, got '\(value)'") }
            dataDirectory = value
        case "listeners":
            (server.host, server.port) = try listener()
        case "advertised.listeners":
            let (host, port) = try listener()
            server.advertisedHost = host
            server.advertisedPort = port
        case "node.id", "broker.id": server.nodeId = Int32(clamping: try number())
        case "num.partitions":
            let n = try number()
            guard n >= 1 else { throw Failure(description: "num.partitions must be at least 1") }
            server.defaultPartitions = Int(n)
        case "auto.create.topics.enable": server.autoCreateTopics = try flag()
        // Kafka's precedence, whatever the order given: ms, then minutes, then hours. As in
        // Kafka's KafkaConfig, any negative retention is unlimited (-1; `log.retention.hours=-1`
        // is how server.properties files say it) and 0 is refused.
        case "log.retention.ms", "log.retention.minutes", "log.retention.hours":
            let ms = try milliseconds(per: key == "log.retention.ms" ? 1 : key == "log.retention.minutes" ? 60_000 : 3_600_000)
            // (Only the value in force is judged, as in Kafka.)
            let outranked = Self.brokerSynonyms["retention.ms"]!.prefix { $0 != key }.contains { explicit[$0] != nil }
            if !outranked {
                guard ms != 0 else { throw Failure(description: "\(key) must be unlimited (-1) or at least 1 ms, got 0") }
                try topicDefault("retention.ms", ms < 0 ? "-1" : "\(ms)")
            }
        case "log.roll.ms": try topicDefault("segment.ms", value)
        case "log.roll.hours":
            let ms = try milliseconds(per: 3_600_000)
            guard ms >= 3_600_000 else { throw Failure(description: "log.roll.hours must be at least 1, got \(value)") }
            if explicit["log.roll.ms"] == nil { try topicDefault("segment.ms", "\(ms)") }
        case "log.index.interval.bytes": try topicDefault("index.interval.bytes", value)
        case "log.retention.bytes": try topicDefault("retention.bytes", value)
        case "log.segment.bytes": try topicDefault("segment.bytes", value)
        case "message.max.bytes": try topicDefault("max.message.bytes", value)
        case "log.flush.interval.messages": try topicDefault("flush.messages", value)
        case "log.flush.interval.ms": try topicDefault("flush.ms", value)
        case "log.message.timestamp.type": try topicDefault("message.timestamp.type", value)
        case "log.message.timestamp.before.max.ms": try topicDefault("message.timestamp.before.max.ms", value)
        case "log.message.timestamp.after.max.ms": try topicDefault("message.timestamp.after.max.ms", value)
        case "compression.type": try topicDefault("compression.type", value)
        case "offsets.retention.minutes":
            // At least a minute, as Kafka's: 0 or less expired every empty group's offsets at
            // once, and a large negative count overflowed the expiry's cutoff (a trap).
            let (ms, overflow) = try ranged(1...Int64.max).multipliedReportingOverflow(by: 60_000)
            broker.groups.offsetsRetentionMs = overflow ? .max : ms
        case "offsets.retention.check.interval.ms": broker.groups.offsetsRetentionCheckIntervalMs = try ranged(1...Int64.max)
        // The offsets log stores metadata with a 16-bit length.
        case "offsets.memory.max.bytes": broker.groups.offsetsMaxMemoryBytes = Int(try ranged(1 << 20...Int64(1) << 40))
        case "offset.metadata.max.bytes": broker.groups.offsetMetadataMaxBytes = Int(min(max(0, try number()), Int64(Int16.max)))
        case "group.min.session.timeout.ms": broker.groups.minSessionTimeoutMs = Int32(clamping: try number())
        case "group.max.session.timeout.ms": broker.groups.maxSessionTimeoutMs = Int32(clamping: try number())
        case "group.initial.rebalance.delay.ms": broker.groups.initialRebalanceDelayMs = try ranged(0...Int64(Int32.max))
        // The same floors as a group's own settings (GroupConfigs): a broker-wide heartbeat of
        // 1 ms had every member send hundreds a second. Pairs are checked in `checked()`.
        case "group.consumer.session.timeout.ms": broker.groups.consumerSessionTimeoutMs = try ranged(1_000...3_600_000)
        case "group.consumer.heartbeat.interval.ms": broker.groups.consumerHeartbeatIntervalMs = Int32(try ranged(100...3_600_000))
        case "group.consumer.max.size": broker.groups.consumerGroupMaxSize = Int(clamping: max(1, try number()))
        case "group.max.size": broker.groups.classicGroupMaxSize = Int(try ranged(1...Int64(Int32.max)))
        case "group.members.max.bytes": broker.groups.membersMaxBytes = Int(try ranged(1 << 20...Int64(1) << 40))
        case "group.share.record.lock.duration.ms": broker.groups.shareRecordLockDurationMs = try ranged(1_000...3_600_000)
        case "group.share.delivery.count.limit": broker.groups.shareDeliveryCountLimit = Int16(try ranged(2...10))
        case "group.share.partition.max.record.locks": broker.groups.sharePartitionMaxRecordLocks = Int(try ranged(100...10_000))
        case "group.share.window.max.records": broker.groups.shareWindowMaxRecords = Int(try ranged(1_000...1_000_000))
        case "group.share.windows.total.max.records": broker.groups.shareWindowsTotalMaxRecords = Int(try ranged(10_000...1_000_000_000))
        case "group.share.heartbeat.interval.ms": broker.groups.shareHeartbeatIntervalMs = Int32(try ranged(100...3_600_000))
        case "group.share.session.timeout.ms": broker.groups.shareSessionTimeoutMs = try ranged(1_000...3_600_000)
        case "group.share.max.size": broker.groups.shareGroupMaxSize = Int(try ranged(1...10_000))
        case "group.share.max.groups": broker.groups.shareMaxGroups = Int(try ranged(1...100_000))
        case "errors.deadletterqueue.topic.name.prefix": broker.groups.deadLetterTopicPrefix = value
        case "producer.id.expiration.ms": broker.producerIdExpirationMs = try ranged(1...Int64.max)
        case "socket.request.max.bytes": server.maxRequestBytes = Int(try ranged(1...Int64(Int32.max)))
        case "queued.max.request.bytes":
            let n = try number()
            server.queuedMaxRequestBytes = n < 0 ? Int(Int32.max) : Int(n)
        case "connections.max.idle.ms": server.connectionsMaxIdleMs = try number()
        case "max.connections": server.maxConnections = Int(try ranged(1...Int64(Int32.max)))
        case "max.connections.per.ip": server.maxConnectionsPerIp = Int(try ranged(1...Int64(Int32.max)))
        case "fetch.max.bytes": server.fetchMaxBytes = Int(try ranged(0...Int64(Int32.max)))
        case "max.incremental.fetch.session.cache.slots": server.fetchSessionCacheSlots = Int(clamping: max(0, try number()))
        case "num.network.threads": server.eventLoops = Int(try ranged(1...1024))
        case "log.cleanup.policy": try topicDefault("cleanup.policy", value)
        case "delete.topic.enable": server.deleteTopicEnable = try flag()
        // Replication a single node cannot give: refused rather than acknowledged with one copy
        // (on one node Kafka could not create such topics, or would refuse acks=all writes).
        case "default.replication.factor", "min.insync.replicas", "offsets.topic.replication.factor",
            "transaction.state.log.replication.factor", "transaction.state.log.min.isr",
            "share.coordinator.state.topic.replication.factor", "share.coordinator.state.topic.min.isr":
            let n = try number()
            guard n == 1 else {
                throw Failure(description: "\(key)=\(n): a Tidemark node keeps one copy of each partition, so only 1 can be met (set it to 1)")
            }
            inert(key)
            return
        case "remote.log.storage.system.enable" where value.trimmingCharacters(in: .whitespaces).lowercased() != "false":
            _ = try flag()
            throw Failure(description: "remote.log.storage.system.enable: tiered storage is not supported (leave it false)")
        case "authorizer.class.name" where !value.trimmingCharacters(in: .whitespaces).isEmpty:
            // Accepting it would let an operator believe ACLs are enforced.
            throw Failure(description: "authorizer.class.name: Tidemark has no authorizer, so ACLs cannot be enforced (leave it unset)")
        case "process.roles" where !value.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == "broker" }):
            throw Failure(description: "process.roles: a Tidemark node is a broker (with its own metadata), got '\(value)'")
        default:
            // (Its value was checked as its type on the way in.)
            guard Self.kafkaBrokerSettings[key] != nil || Self.isKafkaPrefixedSetting(key) else {
                throw Failure(description: Self.unknownMessage([key]), unknownKey: key)
            }
            if key == "group.consumer.migration.policy" && value.lowercased() != "disabled" {
                // Not a setting without use on one node: the online conversion it asks for is
                // not built (a group changes protocol once it is empty).
                let note = "group.consumer.migration.policy=\(value): groups are not converted between the classic and consumer protocols while they have members (as Kafka's 'disabled'); a group changes protocol once empty"
                if !behavesOtherwise.contains(note) { behavesOtherwise.append(note) }
                return
            }
            // A Kafka setting with no use on one node (KRaft quorum, TLS/SASL settings, quotas,
            // thread pools...): checked as its type, accepted, so Kafka's own server.properties
            // starts a node, and named in the log at start (`withoutEffect`). Listener
            // protocols are checked once all are read (`checked`).
            inert(key)
            if key == "listener.security.protocol.map" || key == "controller.listener.names" { explicit[key] = value }
            return
        }
        explicit[key] = value
    }

    /// The refusal of settings Kafka 4.1 does not define, all of them at once.
    static func unknownMessage(_ keys: [String]) -> String {
        let zookeeper = keys.contains { $0.hasPrefix("zookeeper.") || $0 == "inter.broker.protocol.version" || $0 == "log.message.format.version" }
        return "unknown broker config\(keys.count == 1 ? "" : "s") \(keys.map { "'\($0)'" }.joined(separator: ", ")): not a Kafka 4.1 broker setting"
            + (zookeeper ? " (ZooKeeper-era settings went with Kafka 4.0: remove them)" : " (a typo?)")
    }

    /// Applies every `key=value` of a file, refusing the unknown names together (one run
    /// tells every one of them, not the first).
    public mutating func setAll(_ pairs: [(String, String)]) throws(Failure) {
        var unknown: [String] = []
        for (key, value) in pairs {
            do {
                try set(key, value)
            } catch where error.unknownKey != nil {
                unknown.append(key)
            }
        }
        if !unknown.isEmpty { throw Failure(description: Self.unknownMessage(unknown)) }
    }

    private mutating func inert(_ key: String) {
        if !withoutEffect.contains(key) { withoutEffect.append(key) }
    }

    /// Checks the settings that constrain each other, once all are set (a file, then
    /// `--config`, may set either of a pair first), with Kafka's GroupCoordinatorConfig's
    /// rules: a member must be able to heartbeat before its session expires, and a session
    /// timeout range must not be empty (every join would be refused).
    public func checked() throws(Failure) {
        try checkListenerProtocols()
        if let node = explicit["node.id"], let broker = explicit["broker.id"],
            Int64(node.trimmingCharacters(in: .whitespaces)) != Int64(broker.trimmingCharacters(in: .whitespaces))
        {
            throw Failure(description: "node.id (\(node)) and broker.id (\(broker)) differ: set them to the same value, as Kafka requires")
        }
        let groups = broker.groups
        if groups.consumerHeartbeatIntervalMs >= groups.consumerSessionTimeoutMs {
            throw Failure(description: "group.consumer.heartbeat.interval.ms (\(groups.consumerHeartbeatIntervalMs)) must be less than group.consumer.session.timeout.ms (\(groups.consumerSessionTimeoutMs))")
        }
        if Int64(groups.shareHeartbeatIntervalMs) >= groups.shareSessionTimeoutMs {
            throw Failure(description: "group.share.heartbeat.interval.ms (\(groups.shareHeartbeatIntervalMs)) must be less than group.share.session.timeout.ms (\(groups.shareSessionTimeoutMs))")
        }
        if groups.minSessionTimeoutMs > groups.maxSessionTimeoutMs {
            throw Failure(description: "group.max.session.timeout.ms (\(groups.maxSessionTimeoutMs)) must be at least group.min.session.timeout.ms (\(groups.minSessionTimeoutMs))")
        }
    }

    /// Every listener but the controller's must be PLAINTEXT: a listener whose protocol is
    /// TLS or SASL (by its name, or by listener.security.protocol.map) would otherwise be
    /// served in the clear without authentication, or dropped without a word.
    func checkListenerProtocols() throws(Failure) {
        func pairs(_ key: String) -> [(String, String)] {
            (explicit[key] ?? "").split(separator: ",").compactMap { entry in
                let parts = entry.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                return parts.count == 2 ? (parts[0].uppercased(), parts[1].uppercased()) : nil
            }
        }
        let protocols = Dictionary(pairs("listener.security.protocol.map"), uniquingKeysWith: { $1 })
        let controllers = Set((explicit["controller.listener.names"] ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces).uppercased()
        })
        for key in ["listeners", "advertised.listeners"] {
            for entry in (explicit[key] ?? "").split(separator: ",") {
                guard let scheme = entry.range(of: "://") else { continue }
                let name = entry[..<scheme.lowerBound].trimmingCharacters(in: .whitespaces).uppercased()
                guard !controllers.contains(name) else { continue }
                let security = protocols[name] ?? name
                guard security == "PLAINTEXT" else {
                    throw Failure(description: "\(key): listener \(name) uses \(security); a Tidemark node serves PLAINTEXT only (no TLS or SASL)")
                }
            }
        }
    }

    /// Listeners given beyond the one served (the first; controller listeners apart): a node
    /// listens on one address, so clients told another would find nothing there.
    public var unservedListeners: [String] {
        let controllers = Set((explicit["controller.listener.names"] ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces).uppercased()
        })
        let entries = (explicit["listeners"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
            guard let scheme = $0.range(of: "://") else { return false }
            return !controllers.contains($0[..<scheme.lowerBound].uppercased())
        }
        return Array(entries.dropFirst())
    }

    /// The effective broker settings by Kafka name (DescribeConfigs(BROKER)), with whether
    /// each was set explicitly.
    public var describe: [(name: String, value: String, isDefault: Bool)] {
        var entries: [(String, String)] = [
            ("auto.create.topics.enable", "\(server.autoCreateTopics)"),
            ("broker.id", "\(server.nodeId)"),
            ("delete.topic.enable", "\(server.deleteTopicEnable)"),
            ("connections.max.idle.ms", "\(server.connectionsMaxIdleMs)"),
            ("max.connections", "\(server.maxConnections ?? ConnectionLimiter.defaultMaxConnections(budget: broker.openFileBudget, eventLoops: server.eventLoops ?? System.coreCount))"),
            ("max.connections.per.ip", "\(server.maxConnectionsPerIp == Int.max ? Int(Int32.max) : server.maxConnectionsPerIp)"),
            ("fetch.max.bytes", "\(server.fetchMaxBytes)"),
            ("max.incremental.fetch.session.cache.slots", "\(server.fetchSessionCacheSlots)"),
            ("group.consumer.heartbeat.interval.ms", "\(broker.groups.consumerHeartbeatIntervalMs)"),
            ("group.consumer.max.size", "\(broker.groups.consumerGroupMaxSize)"),
            ("group.max.size", "\(broker.groups.classicGroupMaxSize)"),
            ("group.members.max.bytes", "\(broker.groups.membersMaxBytes)"),
            ("group.consumer.session.timeout.ms", "\(broker.groups.consumerSessionTimeoutMs)"),
            ("errors.deadletterqueue.topic.name.prefix", broker.groups.deadLetterTopicPrefix),
            ("group.share.delivery.count.limit", "\(broker.groups.shareDeliveryCountLimit)"),
            ("group.share.heartbeat.interval.ms", "\(broker.groups.shareHeartbeatIntervalMs)"),
            ("group.share.max.size", "\(broker.groups.shareGroupMaxSize)"),
            ("group.share.max.groups", "\(broker.groups.shareMaxGroups)"),
            ("group.share.partition.max.record.locks", "\(broker.groups.sharePartitionMaxRecordLocks)"),
            ("group.share.window.max.records", "\(broker.groups.shareWindowMaxRecords)"),
            ("group.share.windows.total.max.records", "\(broker.groups.shareWindowsTotalMaxRecords)"),
            ("group.share.record.lock.duration.ms", "\(broker.groups.shareRecordLockDurationMs)"),
            ("group.share.session.timeout.ms", "\(broker.groups.shareSessionTimeoutMs)"),
            ("group.initial.rebalance.delay.ms", "\(broker.groups.initialRebalanceDelayMs)"),
            ("group.max.session.timeout.ms", "\(broker.groups.maxSessionTimeoutMs)"),
            ("group.min.session.timeout.ms", "\(broker.groups.minSessionTimeoutMs)"),
            ("log.dirs", dataDirectory),
            ("node.id", "\(server.nodeId)"),
            ("num.partitions", "\(server.defaultPartitions)"),
            ("offset.metadata.max.bytes", "\(broker.groups.offsetMetadataMaxBytes)"),
            ("offsets.memory.max.bytes", "\(broker.groups.offsetsMaxMemoryBytes)"),
            ("offsets.retention.check.interval.ms", "\(broker.groups.offsetsRetentionCheckIntervalMs)"),
            ("offsets.retention.minutes", "\(broker.groups.offsetsRetentionMs / 60_000)"),
            ("producer.id.expiration.ms", "\(broker.producerIdExpirationMs)"),
            ("queued.max.request.bytes", "\(server.queuedMaxRequestBytes)"),
            ("socket.request.max.bytes", "\(server.maxRequestBytes)"),
        ]
        let topicDefaults = Dictionary(uniqueKeysWithValues: broker.defaultTopicConfig.kafkaConfigs)
        let brokerNames = [
            ("log.retention.ms", "retention.ms"), ("log.retention.bytes", "retention.bytes"),
            ("log.segment.bytes", "segment.bytes"), ("message.max.bytes", "max.message.bytes"),
            ("log.message.timestamp.type", "message.timestamp.type"),
            ("log.message.timestamp.before.max.ms", "message.timestamp.before.max.ms"),
            ("log.message.timestamp.after.max.ms", "message.timestamp.after.max.ms"),
            ("compression.type", "compression.type"),
            ("log.flush.interval.messages", "flush.messages"), ("log.flush.interval.ms", "flush.ms"),
            ("log.roll.ms", "segment.ms"), ("log.index.interval.bytes", "index.interval.bytes"),
            ("log.cleanup.policy", "cleanup.policy"),
        ]
        for (brokerName, topicName) in brokerNames {
            if let value = topicDefaults[topicName] { entries.append((brokerName, value)) }
        }
        // A setting given under another of its names (`log.retention.hours=24`) is listed as
        // given, as Kafka lists it (log.retention.ms shows the value it comes to, as a default).
        for names in Self.brokerSynonyms.values {
            for name in names where explicit[name] != nil && !entries.contains(where: { $0.0 == name }) {
                entries.append((name, explicit[name]!))
            }
        }
        return entries.sorted { $0.0 < $1.0 }.map { ($0.0, $0.1, explicit[$0.0] == nil) }
    }
}

extension BrokerConfig {
    /// A topic setting's broker-level names, in Kafka's order of precedence (the first one set
    /// wins), for those with more than one (Kafka's ServerTopicConfigSynonyms).
    static let brokerSynonyms: [String: [String]] = [
        "retention.ms": ["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
        "segment.ms": ["log.roll.ms", "log.roll.hours"],
    ]

    /// The broker setting and value Kafka names as a topic setting's DEFAULT_CONFIG synonym:
    /// the first of its broker names that has a default of its own (`log.retention.hours=168`,
    /// not `log.retention.ms`, which has none), given the topic setting's default value.
    static func defaultSynonym(ofTopicConfig name: String, kafkaDefault value: String) -> (String, String)? {
        switch name {
        case "retention.ms", "segment.ms":
            guard let ms = Int64(value), ms > 0, ms % 3_600_000 == 0 else { return nil }
            return (name == "retention.ms" ? "log.retention.hours" : "log.roll.hours", "\(ms / 3_600_000)")
        default:
            return brokerName(ofTopicConfig: name).map { ($0, value) }
        }
    }

    /// The broker setting a topic setting's default comes from (its DescribeConfigs synonym).
    static func brokerName(ofTopicConfig name: String) -> String? {
        switch name {
        case "retention.ms": "log.retention.ms"
        case "retention.bytes": "log.retention.bytes"
        case "segment.bytes": "log.segment.bytes"
        case "max.message.bytes": "message.max.bytes"
        case "message.timestamp.type": "log.message.timestamp.type"
        case "message.timestamp.before.max.ms": "log.message.timestamp.before.max.ms"
        case "message.timestamp.after.max.ms": "log.message.timestamp.after.max.ms"
        case "compression.type": "compression.type"
        case "flush.messages": "log.flush.interval.messages"
        case "flush.ms": "log.flush.interval.ms"
        case "cleanup.policy": "log.cleanup.policy"
        case "segment.ms": "log.roll.ms"
        case "index.interval.bytes": "log.index.interval.bytes"
        default: nil
        }
    }

    /// The entries of a server made without `BrokerConfig` (embedded, tests): everything default.
    static func describing(server: ServerConfig, broker: Broker) -> [BrokerConfigEntry] {
        var settings = BrokerConfig()
        settings.server = server
        settings.broker = broker.options
        settings.dataDirectory = broker.dataDirectory
        return settings.describe.map { BrokerConfigEntry(name: $0.name, value: $0.value, isDefault: $0.isDefault) }
    }
}

import Foundation

extension BrokerConfig {
    /// Kafka's ConfigType code of a setting, as DescribeConfigs v3+ reports it: 1 BOOLEAN,
    /// 2 STRING, 3 INT, 5 LONG, 7 LIST (0 UNKNOWN for names Tidemark does not know).
    /// Types follow Kafka's own definitions of each name (e.g. `segment.bytes` is an INT,
    /// `retention.ms` a LONG), so tools that validate input by type accept ours.
    public static func configType(of name: String) -> Int8 {
        switch name {
        case "auto.create.topics.enable", "delete.topic.enable": 1
        case "compression.type", "message.timestamp.type", "log.message.timestamp.type", "listeners",
            "advertised.listeners", "log.dirs", "log.dir", "share.auto.offset.reset", "share.isolation.level":
            2
        case "num.partitions", "segment.bytes", "log.segment.bytes", "max.message.bytes", "message.max.bytes",
            "offset.metadata.max.bytes", "group.min.session.timeout.ms", "group.max.session.timeout.ms",
            "group.initial.rebalance.delay.ms", "group.consumer.session.timeout.ms", "group.consumer.heartbeat.interval.ms",
            "group.consumer.max.size", "group.max.size", "max.incremental.fetch.session.cache.slots", "socket.request.max.bytes",
            "group.share.partition.max.record.locks", "group.share.heartbeat.interval.ms", "group.share.max.size", "group.share.max.groups",
            "group.share.window.max.records",
            "share.delivery.count.limit", "share.partition.max.record.locks", "group.share.delivery.count.limit", "num.network.threads", "node.id",
            "broker.id", "fetch.max.bytes", "max.connections", "max.connections.per.ip", "offsets.retention.minutes", "log.retention.hours", "log.retention.minutes", "log.roll.hours",
            "producer.id.expiration.ms", "consumer.session.timeout.ms", "consumer.heartbeat.interval.ms",
            "share.session.timeout.ms", "share.heartbeat.interval.ms", "share.record.lock.duration.ms":
            3
        case "retention.ms", "retention.bytes", "flush.messages", "flush.ms", "message.timestamp.before.max.ms",
            "message.timestamp.after.max.ms", "log.retention.ms", "log.roll.ms", "log.retention.bytes", "log.flush.interval.messages",
            "log.flush.interval.ms", "log.message.timestamp.before.max.ms", "log.message.timestamp.after.max.ms",
            "offsets.retention.check.interval.ms", "connections.max.idle.ms", "queued.max.request.bytes", "offsets.memory.max.bytes", "group.members.max.bytes",
            "group.share.record.lock.duration.ms", "group.share.session.timeout.ms":
            5
        case "cleanup.policy", "log.cleanup.policy", "leader.replication.throttled.replicas", "follower.replication.throttled.replicas": 7
        case "segment.ms", "delete.retention.ms", "file.delete.delay.ms", "segment.jitter.ms", "min.compaction.lag.ms",
            "max.compaction.lag.ms", "local.retention.ms", "local.retention.bytes":
            5
        case "index.interval.bytes", "log.index.interval.bytes", "segment.index.bytes", "min.insync.replicas", "compression.gzip.level",
            "compression.lz4.level", "compression.zstd.level":
            3
        case "unclean.leader.election.enable", "preallocate", "remote.storage.enable", "remote.log.copy.disable",
            "remote.log.delete.on.disable", "errors.deadletterqueue.group.enable":
            1
        case "min.cleanable.dirty.ratio": 6
        default: 0
        }
    }
}

/// Settings of the Kafka front.
import CoreMetrics

public struct ServerConfig: Sendable {
    /// Where request and connection metrics go (nil: swift-metrics' bootstrapped system).
    public var metricsFactory: (any MetricsFactory)? = nil
    public var host = "127.0.0.1"
    public var port = 9092
    /// What Metadata and FindCoordinator tell clients to connect to (default: host and port).
    public var advertisedHost: String? = nil
    public var advertisedPort: Int? = nil
    /// Topics named in Metadata requests are created when missing (if the client allows it).
    public var autoCreateTopics = true
    /// Whether DeleteTopics may delete topics (Kafka's delete.topic.enable): false refuses
    /// it with TOPIC_DELETION_DISABLED.
    public var deleteTopicEnable = true
    public var defaultPartitions = 1
    /// A request frame larger than this closes its connection.
    public var maxRequestBytes = 100 << 20
    /// Request bytes being read or waiting to be handled, over all connections (Kafka's
    /// queued.max.request.bytes); past it, connections with big frames stop reading. One frame
    /// at a time may go past it (the oldest arriving in steps: see `RequestMemoryBudget`), so
    /// memory for requests stays under this plus `maxRequestBytes`.
    public var queuedMaxRequestBytes = 256 << 20
    /// A frame whose bytes do not all arrive within this closes its connection.
    public var frameTimeoutMs: Int64 = 60_000
    /// A connection that sends nothing and awaits no answer for this long is closed
    /// (Kafka's connections.max.idle.ms).
    public var connectionsMaxIdleMs: Int64 = 600_000
    /// Connections open at once over all clients (Kafka's max.connections); at the limit,
    /// accepting stops until one closes (new clients wait in the backlog). nil:
    /// `DescriptorPlan.connections`, what the descriptor limit leaves after the segment files,
    /// the HTTP listener, sendfile and the process's own: a flood of connections cannot starve
    /// the storage of descriptors, or run the process out of them.
    public var maxConnections: Int? = nil
    /// Descriptors dup'ed for sendfile open at once over all connections; past it, fetched
    /// slices are copied. nil: `DescriptorPlan.sendfile`.
    public var maxSendfileDescriptors: Int? = nil
    /// Connections open at once from one client address (Kafka's max.connections.per.ip).
    public var maxConnectionsPerIp = Int.max
    /// The most record bytes one fetch response carries (Kafka's fetch.max.bytes), whatever
    /// the client asks; one batch larger than this is still sent whole so consumers progress.
    public var fetchMaxBytes = 57_671_680
    /// Response bytes held in memory until written, over all connections (see
    /// `ResponseMemory`): past it, fetches copy no more than their first partition's records.
    public var responseMemoryBytes = 256 << 20
    /// The longest a fetch long-polls, whatever the client asks (clients ask 500 ms).
    public var fetchMaxWaitMs: Int64 = 300_000
    /// Incremental fetch sessions kept at once (Kafka's max.incremental.fetch.session.cache.slots);
    /// 0 turns sessions off (every fetch is answered in full, as Kafka does when the cache is full).
    public var fetchSessionCacheSlots = 1000
    public var nodeId: Int32 = 0
    /// Event loop threads (nil: one per core).
    public var eventLoops: Int? = nil
    /// The broker's settings by Kafka name, for DescribeConfigs(BROKER) (`BrokerConfig.describe`).
    public var brokerConfigEntries: [BrokerConfigEntry] = []
    /// The cluster id answered (Metadata, DescribeCluster); nil: the broker's own
    /// (`Broker.clusterId`, this data directory's).
    public var clusterId: String? = nil

    public init() {}

    public var effectiveAdvertisedHost: String {
        if let advertisedHost { return advertisedHost }
        return host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
    }
}

/// One broker setting as DescribeConfigs reports it.
public struct BrokerConfigEntry: Sendable, Equatable {
    public var name: String
    public var value: String
    public var isDefault: Bool
    public init(name: String, value: String, isDefault: Bool) {
        self.name = name
        self.value = value
        self.isDefault = isDefault
    }
}

/// Settings of the Kafka front.
public struct ServerConfig: Sendable {
    public var host = "127.0.0.1"
    public var port = 9092
    /// What Metadata and FindCoordinator tell clients to connect to (default: host and port).
    public var advertisedHost: String? = nil
    public var advertisedPort: Int? = nil
    /// Topics named in Metadata requests are created when missing (if the client allows it).
    public var autoCreateTopics = true
    public var defaultPartitions = 1
    /// A request frame larger than this closes its connection.
    public var maxRequestBytes = 100 << 20
    /// The most record bytes one fetch response carries (Kafka's fetch.max.bytes), whatever
    /// the client asks; one batch larger than this is still sent whole so consumers progress.
    public var fetchMaxBytes = 57_671_680
    public var nodeId: Int32 = 0
    public var clusterId = "tidemark"

    public init() {}

    var effectiveAdvertisedHost: String {
        if let advertisedHost { return advertisedHost }
        return host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
    }
}

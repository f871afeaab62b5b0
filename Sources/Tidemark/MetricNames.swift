/// Every metric name Tidemark exposes, in one place. Two families:
/// - kafka_exporter's series (danielqsj/kafka_exporter), exact names and labels, so existing
///   dashboards (Grafana 7589) and alerts work unchanged;
/// - Tidemark's own, prefixed `tidemark_`, seconds and bytes as base units.
public enum MetricName {
    // kafka_exporter (computed at scrape time).
    public static let brokers = "kafka_brokers"
    public static let brokerInfo = "kafka_broker_info"
    public static let topicPartitions = "kafka_topic_partitions"
    public static let partitionCurrentOffset = "kafka_topic_partition_current_offset"
    public static let partitionOldestOffset = "kafka_topic_partition_oldest_offset"
    public static let partitionLeader = "kafka_topic_partition_leader"
    public static let partitionReplicas = "kafka_topic_partition_replicas"
    public static let partitionInSyncReplicas = "kafka_topic_partition_in_sync_replica"
    public static let partitionLeaderIsPreferred = "kafka_topic_partition_leader_is_preferred"
    public static let partitionUnderReplicated = "kafka_topic_partition_under_replicated_partition"
    public static let groupCurrentOffset = "kafka_consumergroup_current_offset"
    public static let groupCurrentOffsetSum = "kafka_consumergroup_current_offset_sum"
    public static let groupLag = "kafka_consumergroup_lag"
    public static let groupLagSum = "kafka_consumergroup_lag_sum"
    public static let groupMembers = "kafka_consumergroup_members"

    // Tidemark: requests and connections (recorded by the server as they happen).
    public static let buildInfo = "tidemark_build_info"
    public static let requests = "tidemark_kafka_requests_total"
    public static let requestErrors = "tidemark_kafka_request_errors_total"
    public static let requestDuration = "tidemark_kafka_request_duration_seconds"
    public static let connectionsActive = "tidemark_connections_active"
    public static let connections = "tidemark_connections_total"
    public static let connectionsRefused = "tidemark_connections_refused_total"
    public static let connectionsClosed = "tidemark_connections_closed_total"

    // Tidemark: traffic and storage (recorded by the engine as it happens).
    public static let bytesIn = "tidemark_bytes_in_total"
    public static let bytesOut = "tidemark_bytes_out_total"
    public static let recordsProduced = "tidemark_records_produced_total"
    public static let fsyncDuration = "tidemark_log_fsync_duration_seconds"

    // Tidemark: storage and queues (computed at scrape time).
    public static let logSize = "tidemark_log_size_bytes"
    public static let queueInFlight = "tidemark_queue_leases_in_flight"
    public static let queueAvailable = "tidemark_queue_available"
    public static let queueDelayed = "tidemark_queue_delayed"
    public static let queueUnread = "tidemark_queue_unread"
    public static let queueOldestUnackedAge = "tidemark_queue_oldest_unacked_age_seconds"
    public static let queueDeadLettered = "tidemark_queue_dead_lettered_total"
    public static let queueDeadLettersPending = "tidemark_queue_dead_letters_pending"
    public static let queueAcks = "tidemark_queue_acks_total"
    public static let queueLockExpirations = "tidemark_queue_lease_expirations_total"
    public static let queueDeliveries = "tidemark_queue_deliveries_total"
    public static let queueRedeliveries = "tidemark_queue_redeliveries_total"
    public static let queueWorkers = "tidemark_queue_workers"
    public static let shareWindowRecords = "tidemark_share_window_records"
    public static let shareWindowRecordsLimit = "tidemark_share_window_records_limit"
    public static let groupLagSeconds = "tidemark_consumergroup_lag_seconds"
    public static let groupUncommittedPartitions = "tidemark_consumergroup_uncommitted_partitions"
    public static let partitionsOffline = "tidemark_partitions_offline"
    public static let partitionsDamaged = "tidemark_partitions_damaged"
    public static let logOpenFiles = "tidemark_log_open_files"
    public static let logOpenFilesLimit = "tidemark_log_open_files_limit"
    public static let logFileEvictions = "tidemark_log_file_evictions_total"
    public static let logIndexMemory = "tidemark_log_index_memory_bytes"
    public static let groupCommitPasses = "tidemark_log_group_commit_passes_total"
    public static let groupCommitWaiters = "tidemark_log_group_commit_waiters_total"
    public static let uptime = "tidemark_uptime_seconds"
    // The process block every Prometheus client library exports.
    public static let processStartTime = "process_start_time_seconds"
    public static let processResidentMemory = "process_resident_memory_bytes"
    public static let processOpenFds = "process_open_fds"
    public static let processCPUSeconds = "process_cpu_seconds_total"

    /// The HELP text of each family (the exposition prints it before the TYPE line).
    public static let help: [String: String] = [
        brokers: "Number of Brokers in the Kafka Cluster.",
        brokerInfo: "Information about the Kafka Broker.",
        topicPartitions: "Number of partitions for this Topic",
        partitionCurrentOffset: "Current Offset of a Broker at Topic/Partition",
        partitionOldestOffset: "Oldest Offset of a Broker at Topic/Partition",
        partitionLeader: "Leader Broker ID of this Topic/Partition",
        partitionReplicas: "Number of Replicas for this Topic/Partition",
        partitionInSyncReplicas: "Number of In-Sync Replicas for this Topic/Partition",
        partitionLeaderIsPreferred: "1 if Topic/Partition is using the Preferred Broker",
        partitionUnderReplicated: "1 if Topic/Partition is under Replicated",
        groupCurrentOffset: "Current Offset of a ConsumerGroup at Topic/Partition",
        groupCurrentOffsetSum: "Current Offset of a ConsumerGroup at Topic for all partitions",
        groupLag: "Current Approximate Lag of a ConsumerGroup at Topic/Partition",
        groupLagSum: "Current Approximate Lag of a ConsumerGroup at Topic for all partitions",
        groupMembers: "Amount of members in a consumer group",
        buildInfo: "Tidemark's version (the value is always 1).",
        requests: "Kafka requests handled, by API.",
        requestErrors: "Kafka responses carrying an error code (per partition or top level), by API and error name.",
        requestDuration: "Time from a Kafka request's arrival to its response being handed to the socket, by API.",
        connectionsActive: "Open TCP connections, by listener.",
        connections: "Accepted TCP connections, by listener.",
        connectionsRefused: "TCP connections closed as they arrived, by listener and the limit that refused them (max.connections, max.connections.per.ip).",
        connectionsClosed:
            "Kafka connections the broker closed, by reason: malformed (bytes that are not a Kafka request: TLS or HTTP on the Kafka port too), error (a socket error, a reset), idle (connections.max.idle.ms), frame_timeout (a frame not completed in time), not_reading (answers left unread), request_failed (an acks=0 produce that failed, as Kafka tells such a producer, or a request the broker could not answer), response_memory (an answer that did not fit the memory held for unread answers).",
        bytesIn: "Record-batch bytes appended, by topic.",
        bytesOut: "Record-batch bytes read by fetches, by topic.",
        recordsProduced: "Records appended, by topic.",
        fsyncDuration: "Duration of one fdatasync of a partition log.",
        logSize: "Bytes on disk of a partition's segments (internal logs included: __consumer_offsets, __share_group_state).",
        queueInFlight: "Share-group records locked by a worker and not yet acknowledged.",
        queueAvailable: "Share-group records read by the broker that a worker may take now (not held, finished, delayed or backing off).",
        queueUnread: "Share-group records no worker has read yet, due or delayed (known once read); queue depth is available + leases_in_flight + delayed + unread.",
        queueWorkers: "Workers (members) of a share group now: 0 with a backlog is the alert that no one works the queue.",
        queueDelayed: "Share-group records waiting for a retry backoff or their delivery time.",
        queueOldestUnackedAge: "Age of the oldest share-group record not yet acknowledged (0 when none); a delayed record counts from its delivery time, not before.",
        queueDeadLettered: "Records copied to the dead-letter topic.",
        queueDeadLettersPending: "Records rejected or out of attempts, not yet in the dead-letter topic.",
        queueAcks: "Share-group acknowledgements since start, by type (accept, release, reject, renew).",
        queueLockExpirations: "Share-group record locks that ran out before an acknowledgement (visibility timeouts).",
        queueDeliveries: "Share-group records delivered to workers.",
        queueRedeliveries: "Share-group records delivered again after a release or an expired lock.",
        shareWindowRecords: "Records the share groups' windows keep in memory (unfinished ones and acknowledged ones not cut; 32 bytes each): counted at each maintenance pass, and as fetches add records in between.",
        shareWindowRecordsLimit: "The broker-wide bound on tidemark_share_window_records (group.share.windows.total.max.records): past it a window reads no further than its record locks.",
        groupLagSeconds: "Age of the oldest record a consumer group has not consumed yet (0 when caught up).",
        groupUncommittedPartitions:
            "Partitions a consumer group's members are assigned that the group has no committed offset for (where its consumers start is their auto.offset.reset).",
        partitionsOffline: "Partitions that could not be opened, or failed an fsync, and refuse writes with KAFKA_STORAGE_ERROR.",
        partitionsDamaged: "Partitions whose log a read found damaged on disk (marked for tidemark verify --repair; they serve up to the damage).",
        logOpenFiles: "Segment files held open by the logs (the open-file budget's count).",
        logOpenFilesLimit: "The open-file budget: segment files the logs may hold open (half the soft ulimit -n).",
        logFileEvictions: "Segment files closed to stay within the open-file budget (they reopen on use).",
        logIndexMemory: "Index entries kept in memory because the disk had no room for them (0 unless the disk filled; at most 256 MiB).",
        groupCommitPasses: "Passes of the group-commit flusher (each fdatasyncs every log with waiters once).",
        groupCommitWaiters: "Durable appends and acknowledgements answered by the group-commit flusher (per pass: messages per fsync).",
        uptime: "Seconds since the broker started.",
        processStartTime: "Start time of the process since unix epoch in seconds.",
        processResidentMemory: "Resident memory size in bytes.",
        processOpenFds: "Number of open file descriptors.",
        processCPUSeconds: "Total user and system CPU time spent in seconds.",
    ]
}

/// Tidemark's release, as `tidemark --version`, `tidemark_build_info` and the console show it.
public enum TidemarkVersion {
    public static let current = "0.2.0"
}

/// A group's share settings: its configs over the broker's defaults.
extension ShareCoordinator {
    /// The share settings of a group: its configs over the broker's defaults.
    public func settings(_ group: String) -> ShareSettings {
        let explicit = configs.explicit(group)
        var settings = ShareSettings()
        settings.lockDurationMs = explicit["share.record.lock.duration.ms"].flatMap(Int64.init) ?? options.shareRecordLockDurationMs
        settings.deliveryCountLimit = explicit["share.delivery.count.limit"].flatMap(Int16.init) ?? options.shareDeliveryCountLimit
        settings.maxInFlight = explicit["share.partition.max.record.locks"].flatMap(Int.init) ?? options.sharePartitionMaxRecordLocks
        settings.redeliveryBackoffMs = explicit["share.redelivery.backoff.ms"].flatMap(Int64.init) ?? options.shareRedeliveryBackoffMs
        settings.redeliveryBackoffMaxMs =
            explicit["share.redelivery.backoff.max.ms"].flatMap(Int64.init) ?? options.shareRedeliveryBackoffMaxMs
        settings.deadLetters = !(explicit["errors.deadletterqueue.topic.name"] ?? "").isEmpty
        settings.keyOrdering = explicit["share.key.ordering"] == "true"
        settings.maxWindow = options.shareWindowMaxRecords
        return settings
    }

    func groupSettings(_ group: String) -> ShareGroup.Settings {
        let explicit = configs.explicit(group)
        return ShareGroup.Settings(
            sessionTimeoutMs: explicit["share.session.timeout.ms"].flatMap(Int64.init) ?? options.shareSessionTimeoutMs,
            heartbeatIntervalMs: explicit["share.heartbeat.interval.ms"].flatMap(Int32.init) ?? options.shareHeartbeatIntervalMs,
            maxSize: options.shareGroupMaxSize)
    }

    /// The group's `share.auto.offset.reset`.
    func startPolicy(_ group: String) -> ShareStartPolicy {
        configs.value("share.auto.offset.reset", of: group).flatMap(ShareStartPolicy.init) ?? .earliest
    }

    /// Where `policy` starts a partition within the log's `bounds`; nil when finding it needs a
    /// read the view may not make (by_duration in a view that must not wait for the disk).
    func startOffset(_ policy: ShareStartPolicy, _ tp: TopicPartition, bounds: (start: Int64, end: Int64), view: ShareLogView) -> Int64? {
        switch policy {
        case .earliest: return bounds.start
        case .latest: return bounds.end
        case .byDuration(let ms):
            guard let lookup = view.offsetAtTime, let found = lookup(tp.topic, tp.partition, wallClock() &- ms) else { return nil }
            return min(max(found, bounds.start), bounds.end)
        }
    }

    /// For a `by_duration` group, the time its new partitions start from and those of
    /// `partitions` it has no state in (their starts are looked up outside the coordinator's
    /// lock: `Broker.acquireShares`); nil for other groups.
    func startsByTimeNeeded(group: String, partitions: [TopicPartition]) -> (cutoffMs: Int64, [TopicPartition])? {
        guard case .byDuration(let ms) = startPolicy(group) else { return nil }
        let missing = state.withLock { s in partitions.filter { s.slots[PartitionKey(group: group, topicPartition: $0)] == nil } }
        return (wallClock() &- ms, missing)
    }
}

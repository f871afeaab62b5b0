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

    func startsAtEarliest(_ group: String) -> Bool { configs.value("share.auto.offset.reset", of: group) != "latest" }
}

import Foundation
import Logging
import Synchronization
import TidemarkStorage

/// Closing the broker and its maintenance pass (retention, due flushes, idle files, expiries).
extension Broker {
    /// Answers every long poll waiting now, with what there is, and every consumer group
    /// member parked in a join or sync (REBALANCE_IN_PROGRESS: it joins again). A server
    /// draining its connections before it stops calls this, so that nothing it runs waits out
    /// a max wait or a rebalance. Later polls and joins wait as usual.
    public func wakeWaiters() {
        let topics = registry.withLock { Array($0.topics.values) }
        for partition in topics.flatMap(\.partitions) { partition.notifier.wakeAll() }
        groups.abandonWaiters()
    }

    /// Stops maintenance, wakes waiting readers, flushes every log, writes producer
    /// snapshots and clean-shutdown markers, and releases the data directory. Idempotent.
    ///
    /// A partition that fails to close (its disk went bad, say) is logged and left for
    /// recovery at the next open; the others still close cleanly, and so does the broker.
    public func close() async throws {
        let topics = registry.withLock { r -> [TopicState]? in
            if r.isClosed { return nil }
            r.isClosed = true
            return Array(r.topics.values)
        }
        guard let topics else { return }
        let closeStarted = ContinuousClock.now
        maintenance.withLock { $0?.cancel() }
        await groups.close()
        let partitions = topics.flatMap(\.partitions)
        for partition in partitions { partition.notifier.close() }
        // Everyone waiting for durability is answered (their bytes flushed) before logs close.
        flusher.shutdown()
        let logger = options.logger
        // Thousands of logs close with two filesystem syncs in all, not several fsyncs each.
        let batch = SyncBatch()
        let syncSeconds = try await executor.run { () -> String in
            _ = parallelMap(partitions.count) { index in
                let partition = partitions[index]
                do {
                    try partition.log.close(deferredSync: batch)
                    try partition.writeSnapshotIfNeeded(deferredSync: batch)
                } catch {
                    logger.error(
                        "partition did not close cleanly; the next open recovers it",
                        metadata: ["topic": "\(partition.topic)", "partition": "\(partition.partition)", "error": "\(error)"])
                }
            }
            let syncStarted = ContinuousClock.now
            do {
                try batch.commit()
            } catch {
                logger.error("the closing sync failed; the next open recovers every partition", metadata: ["error": "\(error)"])
            }
            return (ContinuousClock.now - syncStarted).secondsText
        }
        do {
            try await groups.closeStore()
        } catch {
            logger.error("committed-offsets log did not close cleanly; the next open recovers it", metadata: ["error": "\(error)"])
        }
        do {
            try await shares.close()
        } catch {
            logger.error("share-state log did not close cleanly; the next open recovers it", metadata: ["error": "\(error)"])
        }
        DurableFile.unlock(lockFile)
        logger.info(
            "data directory closed",
            metadata: [
                "partitions": "\(partitions.count)", "seconds": "\((ContinuousClock.now - closeStarted).secondsText)",
                "sync_seconds": "\(syncSeconds)",
            ])
    }

    public var isClosed: Bool { registry.withLock { $0.isClosed } }

    /// Group commit so far: flusher passes (one fdatasync per log with waiters) and the durable
    /// appends and acknowledgements they answered.
    public var groupCommitStatistics: (passes: Int, waiters: Int) {
        let statistics = flusher.statistics
        return (statistics.passes, statistics.answered)
    }

    /// Bytes of index entries the logs keep in memory because the disk had no room for them.
    public var indexMemoryBytes: Int { IndexMemoryBudget.shared.bytesInUse }

    func startMaintenance() {
        // (At least 10 ms: 0 or less made the pass loop spin a core.)
        let interval = max(10, options.maintenanceIntervalMs)
        let task = Task.detached { [weak self] in
            var lastSnapshot = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(interval))
                guard let self, !self.isClosed else { return }
                let snapshotDue = ContinuousClock.now - lastSnapshot >= .milliseconds(self.options.producerSnapshotIntervalMs)
                if snapshotDue { lastSnapshot = ContinuousClock.now }
                await self.runMaintenance(writeSnapshots: snapshotDue)
            }
        }
        maintenance.withLock { $0 = task }
    }

    /// One maintenance pass: retention, due flushes, idle segment closing, producer expiry,
    /// group session timeouts. Errors are kept for the next pass, never thrown.
    func runMaintenance(writeSnapshots: Bool = false) async {
        let partitions = registry.withLock { $0.topics.values.flatMap(\.partitions) }
        let now = options.clock()
        let expiration = options.producerIdExpirationMs
        // Clamped: a negative value trapped the pass, and one past ~213 days of nanoseconds
        // (Int64.max, "never") overflowed.
        let idle = UInt64(min(max(0, options.segmentIdleCloseMs), Int64.max / 1_000_000)) * 1_000_000
        let logger = options.logger
        let offsets = groups.store.partition
        _ = try? await executor.run {
            // Commits answered from the page cache are synced first, so a long pass does not
            // delay them.
            do {
                if offsets.log.flushedOffset < offsets.log.logEndOffset { try offsets.log.flush() }
                offsets.reportRecovered("offsets sync", logger: logger)
            } catch {
                offsets.reportOnce("offsets sync", error: error, logger: logger)
            }
            var remembered: [Int] = []
            remembered.reserveCapacity(partitions.count)
            for partition in partitions {
                func attempt(_ what: String, _ body: () throws -> Void) {
                    do {
                        try body()
                        partition.reportRecovered(what, logger: logger)
                    } catch {
                        partition.reportOnce(what, error: error, logger: logger)
                    }
                }
                attempt("retention") { _ = try partition.log.enforceRetention() }
                attempt("interval flush") { try partition.log.flushIfDue() }
                partition.log.closeIdleSegments(idleNanoseconds: idle)
                remembered.append(
                    partition.producers.withLock { table in
                        table.expire(nowMs: now, expirationMs: expiration)
                        return table.producerCount
                    })
                // Only where the log moved since the last snapshot: every partition's was rewritten
                // and fsynced each pass, an idle broker of 10,000 partitions 10,000 fsyncs a
                // minute. (Producers expired since are expired again when a restart loads it.)
                if writeSnapshots { attempt("producer-state snapshot") { try partition.writeSnapshotIfNeeded() } }
            }
            self.boundProducerStates(partitions, remembered: remembered, logger: logger)
        }
        // Restored share windows no fetch has read yet learn their delays (a read of the log).
        let view = shareLogView
        _ = try? await executor.run { [shares] in shares.readRestoredMetadata(view: view) }
        await groups.tick(logger: logger, topicId: groupCatalog.topicId)
        await shares.tick(logger: logger) { offerShareRecords($0) }
        await writeDeadLettersUnlessRunning()
    }
}

extension Broker {
    /// The broker-wide bound on remembered producers (`BrokerOptions.maxProducerStates`):
    /// past it, the partitions that remember the most are cut to one cap, the largest that
    /// brings the total within the bound (water-filling: partitions under it keep all theirs,
    /// so a few busy partitions among idle ones lose only the excess), never below 100; their
    /// least recently active producers are forgotten first, as expiry would forget them.
    /// `remembered`: each partition's count, in `partitions`' order. Said once an hour.
    func boundProducerStates(_ partitions: [PartitionState], remembered: [Int], logger: Logger) {
        let bound = options.maxProducerStates
        guard let cap = Self.producerStateCap(remembered, bound: bound) else { return }
        let share = max(100, cap)
        let forgotten = zip(partitions, remembered).reduce(0) { sum, pair in
            pair.1 > share ? sum + pair.0.producers.withLock { $0.evict(downTo: share) } : sum
        }
        let now = DispatchTime.now().uptimeNanoseconds
        let last = producerBoundWarnedAt.load(ordering: .relaxed)
        guard forgotten > 0, last == 0 || now &- last >= 3_600_000_000_000 else { return }
        producerBoundWarnedAt.store(now, ordering: .relaxed)
        logger.warning(
            "more idempotent producers than the broker remembers (maxProducerStates): the least recently active were forgotten",
            metadata: ["remembered": "\(remembered.reduce(0, +))", "bound": "\(bound)", "per_partition": "\(share)", "forgotten": "\(forgotten)"])
    }

    /// The largest cap c with the sum of min(count, c) over `counts` within `bound`; nil when
    /// the counts are within it already.
    static func producerStateCap(_ counts: [Int], bound: Int) -> Int? {
        guard counts.reduce(0, +) > bound else { return nil }
        var room = max(0, bound)
        let sorted = counts.sorted()
        for (i, count) in sorted.enumerated() {
            let share = room / (sorted.count - i)
            if count > share { return share }
            room -= count
        }
        return nil
    }
}

extension Duration {
    /// Whole milliseconds, saturating at Int64's bounds (a poll's timeout of Int64.max seconds
    /// overflowed when converted).
    public var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (millis, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? .min : .max }
        return millis.saturatingAdd(attoseconds / 1_000_000_000_000_000)
    }

    /// Seconds as a Double (uptimes, rates).
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }

    /// Seconds with millisecond precision, for log lines ("1.234").
    var secondsText: String {
        let millis = wholeMilliseconds
        let fraction = String(millis % 1000)
        return "\(millis / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}

import Logging
import Synchronization
import TidemarkStorage

/// One partition inside the engine: its log, its idempotent-producer table and the
/// notifier that wakes long-polling readers.
///
/// Sendable. `producers` is also the partition's append lock: the duplicate check, the
/// storage append and the record of the batch happen while holding it, so two retries of
/// one batch can never both be appended. It is never held across an fdatasync or an await.
final class PartitionState: Sendable {
    let topic: String
    let partition: Int
    let log: PartitionLog
    let producers: Mutex<ProducerStateTable>
    let notifier = AppendNotifier()
    /// Failures already logged (maintenance work, damage met by reads), so a failure that
    /// repeats every second is logged when it starts and when it stops, not each time.
    private let reported = Mutex<Set<String>>([])
    /// The log end the snapshot on disk covers (-1: none, or stale).
    let snapshotEnd = Atomic<Int64>(-1)
    /// The visible end `synced` last told the notifier of.
    let syncedNotified = Atomic<Int64>(-1)

    static let snapshotName = "producer-state.snapshot"
    var snapshotPath: String { log.directory + "/" + Self.snapshotName }

    /// The topic's traffic counters (shared by its partitions); nil for internal logs.
    let traffic: EngineMetrics.TopicTraffic?

    init(topic: String, partition: Int, log: PartitionLog, producers: ProducerStateTable, traffic: EngineMetrics.TopicTraffic? = nil) {
        self.traffic = traffic
        self.topic = topic
        self.partition = partition
        self.log = log
        self.producers = Mutex(producers)
    }

    /// Opens the partition's log and rebuilds its producer table: the snapshot, then the
    /// batch headers appended after it (or the whole log when the snapshot is unusable).
    ///
    /// `creating`: a new partition also gets its (empty) snapshot file now, so that later
    /// snapshots, the first stop's included, overwrite it in place: a stop after creating
    /// 10,000 partitions creates no inodes (ext4 allocating them made most of such a stop).
    /// Its directory entry is not synced: a lost or torn snapshot only means a replay.
    static func open(
        topic: String, partition: Int, directory: String, config: LogConfig, clock: @escaping @Sendable () -> Int64,
        logger: Logger, metrics: EngineMetrics? = nil, countTraffic: Bool = true, budget: OpenFileBudget = .shared,
        deferredSync: SyncBatch? = nil, creating: Bool = false, listed: Bool = false, refusingDamage: Bool = true
    ) throws -> PartitionState {
        if listed && !DurableFile.exists(directory) {
            // A known partition without its directory (deleted by hand, a restore that missed
            // it): it starts empty at offset 0, which consumers' committed offsets will not
            // find. Said, not silent.
            logger.error(
                "partition directory missing: the partition starts empty at offset 0",
                metadata: ["topic": "\(topic)", "partition": "\(partition)", "path": "\(directory)"])
        }
        let log = try PartitionLog.open(
            directory: directory, config: config, clock: clock, syncObserver: metrics?.syncObserver, budget: budget,
            deferredSync: deferredSync, refusingDamage: refusingDamage)
        let recovery = log.recoveryReport
        for loss in recovery.losses {
            logger.warning(
                "recovery cut the log", metadata: ["topic": "\(topic)", "partition": "\(partition)", "detail": "\(loss)"])
        }
        if !recovery.wasCleanShutdown && !recovery.scannedSegments.isEmpty {
            logger.info(
                "recovered after an unclean shutdown",
                metadata: [
                    "topic": "\(topic)", "partition": "\(partition)",
                    "scanned_segments": "\(recovery.scannedSegments.count)", "bytes_cut": "\(recovery.truncatedBytes)",
                ])
        }
        var table = ProducerStateTable()
        var replayFrom = log.logStartOffset
        var snapshotAhead = false
        var snapshotBehind = false
        if let bytes = try DurableFile.read(directory + "/" + snapshotName),
            let (loaded, offset) = ProducerStateTable.load(snapshot: bytes)
        {
            if offset < log.logStartOffset {
                // Older than the log's start (DeleteRecords or retention moved it, then a crash
                // came before the next snapshot): the records between the two are gone, so
                // their producers' state cannot be rebuilt. Forgotten, as Kafka forgets
                // producers whose last batch is below the log start: an idempotent producer
                // that wrote there continues as a new one (its next sequence accepted), rather
                // than being refused OUT_OF_ORDER_SEQUENCE_NUMBER, fatal to librdkafka.
                snapshotBehind = true  // replaced below, by the state replayed from the start
            } else if offset <= log.logEndOffset {
                table = loaded
                table.truncate(to: log.logEndOffset)
                replayFrom = max(offset, log.logStartOffset)
            } else {
                // The log lost its tail (a power loss cut it) but not the snapshot: unusable
                // now, and dangerous later, once new records carry the log past its offset
                // (it would describe records that no longer exist). Replaced below.
                snapshotAhead = true
            }
        }
        if creating && log.logEndOffset == 0 && !DurableFile.exists(directory + "/" + snapshotName) {
            try DurableFile.overwrite(table.snapshot(logOffset: 0), to: directory + "/" + snapshotName, sync: false)
        }
        let now = clock()
        let snapshotCurrent = replayFrom == log.logEndOffset
        if replayFrom < log.logEndOffset {
            do {
                try log.batchHeaders(from: replayFrom) { header in
                    if header.hasProducerId && header.lastOffset >= replayFrom { table.record(header, nowMs: now) }
                }
            } catch {
                // Damage in old data must not keep the partition from serving: every producer is
                // forgotten (a forgotten producer is accepted at any sequence; its retries could
                // duplicate), and reads of that range answer the error. Kept as the replay left
                // them, producers that wrote past the damage had stale sequences: their next
                // batch refused OUT_OF_ORDER_SEQUENCE_NUMBER, fatal to librdkafka.
                table = ProducerStateTable()
                logger.error(
                    "producer state replay stopped at damage; this partition's idempotent producers are forgotten",
                    metadata: ["topic": "\(topic)", "partition": "\(partition)", "error": "\(error)"])
            }
        }
        // A crash may have been a power loss that took acknowledged batches with the tail.
        if !recovery.wasCleanShutdown { table.allowOneSkipAhead() }
        let state = PartitionState(
            topic: topic, partition: partition, log: log, producers: table, traffic: countTraffic ? metrics?.traffic(topic) : nil)
        if snapshotAhead {
            logger.warning(
                "producer-state snapshot was ahead of the recovered log; rewritten",
                metadata: ["topic": "\(topic)", "partition": "\(partition)"])
            try state.writeSnapshot()
        } else if snapshotBehind {
            logger.info(
                "producer-state snapshot older than the log start; producers of deleted records forgotten",
                metadata: ["topic": "\(topic)", "partition": "\(partition)"])
            try state.writeSnapshot()
        } else if snapshotCurrent {
            state.snapshotEnd.store(log.logEndOffset, ordering: .relaxed)
        }
        return state
    }

    /// Logs `error` from `what` unless it was logged already (see `reported`).
    func reportOnce(_ what: String, error: any Error, logger: Logger) {
        let isNew = reported.withLock { $0.insert(what).inserted }
        if isNew {
            logger.error(
                "\(what) failed", metadata: ["topic": "\(topic)", "partition": "\(partition)", "error": "\(error)"])
        }
    }

    /// Clears a failure logged by `reportOnce` once the work succeeds again.
    func reportRecovered(_ what: String, logger: Logger) {
        if reported.withLock({ $0.remove(what) }) != nil {
            logger.info("\(what) works again", metadata: ["topic": "\(topic)", "partition": "\(partition)"])
        }
    }

    /// A sync of this partition completed: on a topic synced every append, readers see what
    /// it made durable now (long polls woken), not at the append (`visibleEndOffset`).
    /// Once per end (a flusher's pass answers many producers of the partition: each notify
    /// woke another share poll, and walked every waiter, on the flusher's thread).
    func synced() {
        guard log.readsSyncedOnly else { return }
        let end = log.visibleEndOffset
        var seen = syncedNotified.load(ordering: .relaxed)
        while end > seen {
            let (exchanged, current) = syncedNotified.compareExchange(expected: seen, desired: end, ordering: .relaxed)
            if exchanged { return notifier.notify(newEnd: end) }
            seen = current
        }
    }

    /// Writes the producer table's snapshot at the current log end.
    func writeSnapshot() throws {
        let taken = producers.withLock { table -> ([UInt8], Int64)? in
            // Not for a closed log: its topic was deleted, and its directory may be a new
            // partition's of the same name now (a maintenance pass takes its list of partitions
            // first: the old table was written over the new partition's snapshot, which a crash
            // then loaded). A delete and a re-create within this write is not caught.
            guard !log.isClosed else { return nil }
            let end = log.logEndOffset
            return (table.snapshot(logOffset: end), end)
        }
        guard let (bytes, end) = taken else { return }
        // In place (the snapshot's CRC catches a torn write, and the log is then replayed):
        // thousands of partitions snapshotting each minute create and delete no files.
        try DurableFile.overwrite(bytes, to: snapshotPath, sync: true)
        snapshotEnd.store(end, ordering: .relaxed)
    }

    /// Writes the snapshot unless the one on disk already covers the log's end (a partition
    /// untouched since it opened costs no fsync at close).
    func writeSnapshotIfNeeded() throws {
        if snapshotEnd.load(ordering: .relaxed) == log.logEndOffset { return }
        try writeSnapshot()
    }

    /// `writeSnapshotIfNeeded()` at a broker's close, made durable by the batch's first sync
    /// together with the log it covers (not after it: a snapshot durable ahead of its log is
    /// recognised at the next open and replaced, so it needs no ordering; and the second sync
    /// then has a third fewer files to write).
    func writeSnapshotIfNeeded(deferredSync batch: SyncBatch) throws {
        let (bytes, end) = producers.withLock { table in
            let end = log.logEndOffset
            return (table.snapshot(logOffset: end), end)
        }
        if snapshotEnd.load(ordering: .relaxed) == end { return }
        try batch.add(directory: log.directory)
        try DurableFile.overwrite(bytes, to: snapshotPath, sync: false)
        snapshotEnd.store(end, ordering: .relaxed)
    }
}

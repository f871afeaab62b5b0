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

    static let snapshotName = "producer-state.snapshot"
    var snapshotPath: String { log.directory + "/" + Self.snapshotName }

    init(topic: String, partition: Int, log: PartitionLog, producers: ProducerStateTable) {
        self.topic = topic
        self.partition = partition
        self.log = log
        self.producers = Mutex(producers)
    }

    /// Opens the partition's log and rebuilds its producer table: the snapshot, then the
    /// batch headers appended after it (or the whole log when the snapshot is unusable).
    static func open(
        topic: String, partition: Int, directory: String, config: LogConfig, clock: @escaping @Sendable () -> Int64
    ) throws -> PartitionState {
        let log = try PartitionLog.open(directory: directory, config: config, clock: clock)
        var table = ProducerStateTable()
        var replayFrom = log.logStartOffset
        if let bytes = try DurableFile.read(directory + "/" + snapshotName),
            let (loaded, offset) = ProducerStateTable.load(snapshot: bytes),
            offset <= log.logEndOffset
        {
            table = loaded
            table.truncate(to: log.logEndOffset)
            replayFrom = max(offset, log.logStartOffset)
        }
        let now = clock()
        if replayFrom < log.logEndOffset {
            try log.batchHeaders(from: replayFrom) { header in
                if header.hasProducerId && header.lastOffset >= replayFrom { table.record(header, nowMs: now) }
            }
        }
        return PartitionState(topic: topic, partition: partition, log: log, producers: table)
    }

    /// Writes the producer table's snapshot at the current log end.
    func writeSnapshot() throws {
        let bytes = producers.withLock { table in table.snapshot(logOffset: log.logEndOffset) }
        try DurableFile.write(bytes, to: snapshotPath)
    }
}

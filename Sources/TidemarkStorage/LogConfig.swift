/// When appended batches are forced to disk with fdatasync.
public enum FlushPolicy: Sendable, Equatable, CustomStringConvertible {
    /// Every append waits for its bytes to be on disk. Concurrent appenders share one
    /// fdatasync (group commit).
    case everyAppend
    /// Flush once at least this many messages were appended since the last flush.
    case everyMessages(Int)
    /// Flush when an append finds the last flush older than this, and on `flushIfDue`.
    case everyInterval(milliseconds: Int64)
    /// Leave it to the operating system; flush only on roll and close.
    case os
    /// Whichever comes first of `everyMessages` and `everyInterval` (Kafka's flush.messages
    /// and flush.ms both set).
    case everyMessagesOrInterval(messages: Int, milliseconds: Int64)

    public var description: String {
        switch self {
        case .everyAppend: "every-append"
        case .everyMessages(let count): "every-\(count)-messages"
        case .everyInterval(let ms): "every-\(ms)ms"
        case .os: "os"
        case .everyMessagesOrInterval(let count, let ms): "every-\(count)-messages-or-\(ms)ms"
        }
    }
}

/// Settings of one partition log. Units are in the names.
public struct LogConfig: Sendable, Equatable {
    /// Roll to a new segment before the active one would pass this size. At most Int32.max
    /// (file positions are u32 in the index).
    public var segmentBytes: Int = 1 << 30
    /// Roll a non-empty segment whose first batch is older than this.
    public var segmentMs: Int64 = 7 * 24 * 3600 * 1000
    /// Bytes between offset/time index entries.
    public var indexIntervalBytes: Int = 4096
    /// The most an index file may grow to; a full index rolls the segment.
    public var maxIndexBytes: Int = 10 << 20
    /// Delete old segments while the log is larger than this (nil or negative: unlimited).
    public var retentionBytes: Int64? = nil
    /// Delete segments whose largest timestamp is older than this (nil or negative: forever).
    public var retentionMs: Int64? = 7 * 24 * 3600 * 1000
    public var flushPolicy: FlushPolicy = .os
    /// CreateTime keeps producer timestamps; LogAppendTime stamps each batch at append.
    public var timestampType: TimestampType = .createTime
    /// The largest batch (header included) an append accepts.
    public var maxBatchBytes: Int = 1_048_588
    /// Inactive segments kept open (descriptors and mappings) per log; the least recently
    /// used beyond this are closed.
    public var maxOpenInactiveSegments: Int = 8
    /// Keep zeros written ahead of the appends (`LogSegment.preallocateAhead`), for a log that
    /// something syncs often through the flusher although its policy is not `.everyAppend`
    /// (which always does): the broker's committed-offsets and share-state logs.
    public var preallocate = false
    /// What indexes of this log may keep in memory when the disk has no room for them, shared
    /// with every log naming the same budget (`MappedIndexFile`).
    public var indexMemory: IndexMemoryBudget = .shared

    /// Whether the active segment keeps zeros ahead of its appends.
    public var preallocatesAhead: Bool { preallocate || flushPolicy == .everyAppend }

    public init() {}

    public func validate() throws(StorageError) {
        guard segmentBytes >= RecordBatchHeader.size && segmentBytes <= Int(Int32.max) else {
            throw StorageError(.invalidArgument, "segmentBytes must be in [61, \(Int32.max)], got \(segmentBytes)")
        }
        guard indexIntervalBytes >= 0 else { throw StorageError(.invalidArgument, "indexIntervalBytes must be >= 0") }
        guard maxIndexBytes >= TimeIndex.entrySize * 2 else {
            throw StorageError(.invalidArgument, "maxIndexBytes must be >= \(TimeIndex.entrySize * 2)")
        }
        guard maxBatchBytes >= RecordBatchHeader.size else {
            throw StorageError(.invalidArgument, "maxBatchBytes must be >= \(RecordBatchHeader.size)")
        }
        guard segmentMs > 0 else { throw StorageError(.invalidArgument, "segmentMs must be > 0") }
        if case .everyMessages(let count) = flushPolicy, count < 1 {
            throw StorageError(.invalidArgument, "flush every N messages needs N >= 1")
        }
        if case .everyInterval(let ms) = flushPolicy, ms < 1 {
            throw StorageError(.invalidArgument, "flush interval must be >= 1 ms")
        }
        if case .everyMessagesOrInterval(let count, let ms) = flushPolicy, count < 1 || ms < 1 {
            throw StorageError(.invalidArgument, "flush every N messages or T ms needs N >= 1 and T >= 1")
        }
        guard maxOpenInactiveSegments >= 0 else {
            throw StorageError(.invalidArgument, "maxOpenInactiveSegments must be >= 0")
        }
    }
}

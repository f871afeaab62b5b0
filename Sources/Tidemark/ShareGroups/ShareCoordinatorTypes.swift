import Foundation
import TidemarkStorage

// What the share coordinator is given (the broker's view of the logs) and hands out
// (session updates, acquired records, partition summaries).

/// Where partitions' logs are, for share partitions (supplied by the broker).
public struct ShareLogView: Sendable {
    /// The topic a walk over a session's partitions is in (an acquire's): its id and the
    /// bounds of its partitions, looked up when the topic changes.
    struct TopicLookup {
        var name: String
        var id: UUID?
        var bounds: (@Sendable (Int) -> (start: Int64, end: Int64)?)?
        var logs: (@Sendable (Int) -> PartitionLog?)?
    }

    public var topicId: @Sendable (String) -> UUID?
    public var bounds: @Sendable (String, Int) -> (start: Int64, end: Int64)?
    /// Keys and delays of up to `count` records from an offset (a read of the log), or nil
    /// when reading them would wait for the disk and this view must not
    /// (`Broker.shareLogViewWithoutBlocking`); throws when the log cannot be read there
    /// (damage: `corruptMessage`; an I/O error). No scan (nil here): records go out as read.
    var scan: (@Sendable (String, Int, Int64, Int) throws(TidemarkError) -> [SharePartition.RecordMeta]?)?
    /// Whether a topic's appends are synced before they are answered (`flush.messages=1`):
    /// acknowledgements of its records are then answered only once synced too. Otherwise they
    /// are answered once in the share-state log (the page cache), as the topic's records are.
    public var syncsEveryAppend: @Sendable (String) -> Bool
    /// The first offset of a partition whose record timestamp is at or after a time (ms since
    /// the epoch), or its log end when none is (a read of the time index and the log: nil here
    /// in a view that must not wait for the disk). It answers nil when it cannot tell now (the
    /// start is then left for a later attempt). For `share.auto.offset.reset=by_duration`.
    var offsetAtTime: (@Sendable (String, Int, Int64) -> Int64?)?
    /// A topic's id and `bounds` for its partitions, from one lookup of the topic (an acquire
    /// walking a session of 1,000 partitions looked the topic up for each); nil here:
    /// `topicId` and `bounds` are used.
    /// With it, the log of each partition (whose `visibleEndOffset` is `bounds`' end): an
    /// acquire keeps those of partitions it found caught up (`ShareCoordinator.QuietMarks`).
    var topicBounds:
        (@Sendable (String) -> (id: UUID, bounds: @Sendable (Int) -> (start: Int64, end: Int64)?, logs: @Sendable (Int) -> PartitionLog?)?)?
    /// Moves whenever a topic is made, deleted or changed (its partitions added, one brought
    /// back online): the logs `topicBounds` gave before may no longer be the partitions'.
    var topicsGeneration: (@Sendable () -> UInt64)?
    public init(
        topicId: @escaping @Sendable (String) -> UUID?, bounds: @escaping @Sendable (String, Int) -> (start: Int64, end: Int64)?
    ) {
        self.topicId = topicId
        self.bounds = bounds
        self.scan = nil
        self.offsetAtTime = nil
        self.topicBounds = nil
        self.topicsGeneration = nil
        self.syncsEveryAppend = { _ in true }
    }
}

/// The outcome of opening, moving or closing a share session (ShareFetch/ShareAcknowledge).
public struct ShareSessionUpdate: Sendable {
    /// A top-level error: nothing else happened.
    public var error: TidemarkError.Code?
    public var errorMessage: String?
    /// Per partition that carried acknowledgements: nil when applied, else why not.
    public var acknowledged: [TopicPartition: TidemarkError.Code?] = [:]
    /// Everything below this offset of the share-state log must be durable before the answer:
    /// set when an acknowledgement of a topic that syncs every append was applied
    /// (`ShareLogView.syncsEveryAppend`); nil when the answer may go now.
    public var durableAt: Int64?
    /// The session's partitions, in the order to read them this time.
    public var partitions = SessionPartitions()
    /// How long acquired records stay locked (AcquisitionLockTimeoutMs).
    public var lockDurationMs: Int64 = 0
    /// Some acknowledgement made dead letters: `Broker.writeDeadLetters` should run.
    public var deadLettersPending = false
    /// Partitions where acknowledgements applied released records, or freed a lock of a full
    /// window (`Slot.locksFull`), or where the closed session gave records back: they may be
    /// available there now without an append. The
    /// caller offers them to waiting polls (`Broker.offerShareRecords`) once its own acquire,
    /// if any, is done.
    public var released: [TopicPartition] = []

    static func failure(_ code: TidemarkError.Code, _ message: String) -> ShareSessionUpdate {
        ShareSessionUpdate(error: code, errorMessage: message)
    }
}

/// A share session's partitions in the order one fetch reads them: the session's list,
/// started at its cursor and wrapped around. A view of the session's array (shared, not
/// copied): a request costs nothing per partition the session holds until it reads them.
public struct SessionPartitions: RandomAccessCollection, Sendable {
    /// The list, in its own order (`start` is where the walk begins in it).
    public let base: [TopicPartition]
    let start: Int
    /// Every partition of the session (a ShareFetch's first acquire, an embedded worker's
    /// poll), not some of them: an acquire over it marks those it finds caught up
    /// (`ShareCoordinator.QuietMarks`) in place of the marks of another list.
    let walksAll: Bool

    public init(_ base: [TopicPartition] = [], start: Int = 0, walksAll: Bool = false) {
        self.base = base
        self.start = base.isEmpty ? 0 : start % base.count
        self.walksAll = walksAll
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { base.count }
    public subscript(position: Int) -> TopicPartition {
        base[baseIndex(position)]
    }

    /// Where the partition at `position` (in this walk's order) is in `base`.
    func baseIndex(_ position: Int) -> Int {
        let i = start + position
        return i < base.count ? i : i - base.count
    }
}

/// Records acquired from one partition by one fetch.
public struct ShareAcquisition: Sendable {
    public var topicPartition: TopicPartition
    /// Every acquired offset, ascending.
    public var offsets: [Int64]
    public var ranges: [AcquiredRange]
    /// Why nothing could be acquired from the partition: its log could not be read where its
    /// window grows (damage: `corruptMessage`; an I/O error), so records past there can be
    /// neither handed out nor skipped. `offsets` and `ranges` are empty then. Set only when
    /// the partition had nothing else to hand out: the records before the damage go first.
    public var error: TidemarkError?
}

/// One share partition as the tools show it.
public struct SharePartitionSummary: Sendable, Equatable {
    public var topicPartition: TopicPartition
    public var startOffset: Int64
    public var endOffset: Int64
    public var logEndOffset: Int64
    public var available: Int
    public var acquired: Int
    public var acknowledged: Int
    public var archived: Int
    /// Member -> (records held, earliest lock deadline in ms since the epoch).
    public var holders: [String: (count: Int, earliestExpiryMs: Int64)]
    /// Records not yet finished: from the start offset to the log end, less those finished
    /// inside the window.
    public var lag: Int64
    /// Records copied to the dead-letter topic so far, and waiting to be.
    public var deadLettered: Int64 = 0
    public var deadLettersPending: Int = 0
    /// Available records waiting for a retry backoff or a delivery time (not in `available`).
    public var delayed: Int = 0
    /// Counters since the broker started: deliveries, acknowledgements by type, expirations.
    public var activity = ShareActivity()
    /// Records past the window, to the log's end: no worker has read them yet, so whether each
    /// is due or delayed is not known (every offset there is a record: this node stores no
    /// control batches and does not compact).
    public var unread: Int64 { max(0, logEndOffset - endOffset) }
    /// The first record not finished that is due (`SharePartition.oldestDue`), and, for a
    /// delayed job, when it came due (ms since the epoch): where the oldest job's age is read.
    public var oldestDueOffset: Int64? = nil
    public var oldestDueAtMs: Int64? = nil
    /// That record has been delivered (its own delivery time, if it has one, is in the log).
    public var oldestDueDelivered = false
    /// False for a partition of one of the group's topics that no worker has read yet (it has
    /// no share state: a partition added while the workers were away): where the group would
    /// start on it (`share.auto.offset.reset`) and what waits there. Kafka's
    /// DescribeShareGroupOffsets does not list those.
    public var started = true

    public static func == (a: SharePartitionSummary, b: SharePartitionSummary) -> Bool {
        a.topicPartition == b.topicPartition && a.startOffset == b.startOffset && a.endOffset == b.endOffset
            && a.available == b.available && a.acquired == b.acquired && a.lag == b.lag
    }
}

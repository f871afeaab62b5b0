/// The share-partition vocabulary (KIP-932) that the engine's API, the wire front and the
/// share-state log share: record states, acknowledgement types and ranges, dead letters,
/// settings and activity counters. The state machine itself is `SharePartition`.

/// A record's state in a share partition (KIP-932), with the values Kafka persists.
public enum ShareRecordState: Int8, Sendable {
    case available = 0
    case acquired = 1
    case acknowledged = 2
    case archived = 4

    /// Acknowledged or archived: never handed out again.
    public var isFinished: Bool { self == .acknowledged || self == .archived }
}

/// What a worker says about records it holds.
public enum ShareAcknowledgeType: Int8, Sendable {
    /// No record at this offset (inside an acquired range): archived.
    case gap = 0
    /// Done: never delivered again.
    case accept = 1
    /// Give it back: delivered again (archived at the delivery limit).
    case release = 2
    /// Poison: archived, never delivered again.
    case reject = 3
    /// Still working: the lock is extended (KIP-1222).
    case renew = 4
}

/// A run of acquired offsets with one delivery count, as ShareFetch reports them.
public struct AcquiredRange: Sendable, Equatable {
    public var first: Int64
    public var last: Int64
    public var deliveryCount: Int16
    public init(first: Int64, last: Int64, deliveryCount: Int16) {
        self.first = first
        self.last = last
        self.deliveryCount = deliveryCount
    }
}

/// One acknowledgement range from a worker: one type for every offset, or one per offset.
extension [AcquiredRange] {
    /// The delivery count these ranges (ascending, not overlapping) gave `offset`; nil when
    /// none holds it. A binary search.
    func deliveryCount(of offset: Int64) -> Int16? {
        var (low, high) = (0, count)
        while low < high {
            let mid = (low + high) / 2
            if self[mid].last < offset { low = mid + 1 } else { high = mid }
        }
        return low < count && self[low].first <= offset ? self[low].deliveryCount : nil
    }
}

public struct ShareAcknowledgement: Sendable, Equatable {
    public var first: Int64
    public var last: Int64
    public var types: [ShareAcknowledgeType]
    public init(first: Int64, last: Int64, types: [ShareAcknowledgeType]) {
        self.first = first
        self.last = last
        self.types = types
    }
    public init(_ offset: Int64, _ type: ShareAcknowledgeType) { self.init(first: offset, last: offset, types: [type]) }

    /// `acks` as one partition's batches must be: ascending, not overlapping, one type per
    /// record (the last one given, except that a RENEW never replaces a final word: a job
    /// accepted and then renewed in the same send is accepted); runs of one type in one batch.
    static func ordered(_ acks: [ShareAcknowledgement]) -> [ShareAcknowledgement] {
        var latest: [Int64: ShareAcknowledgeType] = [:]
        for ack in acks where ack.first >= 0 && ack.first <= ack.last && ack.last - ack.first < 1 << 20 {
            guard ack.types.count == 1 || Int64(ack.types.count) == ack.last - ack.first + 1 else { continue }
            for offset in ack.first...ack.last {
                let type = ack.types.count == 1 ? ack.types[0] : ack.types[Int(offset - ack.first)]
                if type == .renew, let given = latest[offset], given != .renew { continue }
                latest[offset] = type
            }
        }
        var out: [ShareAcknowledgement] = []
        for (offset, type) in latest.sorted(by: { $0.key < $1.key }) {
            if let last = out.last, last.last + 1 == offset, last.types == [type] {
                out[out.count - 1].last = offset
            } else {
                out.append(ShareAcknowledgement(offset, type))
            }
        }
        return out
    }
}


/// A record archived by a REJECT or at the delivery limit, waiting to be copied to the
/// group's dead-letter topic (KIP-1191). Its sequence number is fixed when it is archived and
/// persisted with the share state, so a copy written before a crash and written again after
/// it is recognised as the same (idempotent append) and the topic holds it once.
public struct DeadLetter: Sendable, Equatable {
    public enum Disposition: Int8, Sendable {
        case rejected = 0
        case maxDeliveryAttemptsReached = 1
        public var headerValue: String { self == .rejected ? "REJECTED" : "MAX_DELIVERY_ATTEMPTS_REACHED" }
    }
    public var offset: Int64
    public var disposition: Disposition
    public var deliveryCount: Int16
    public var sequence: Int32
}

/// The settings a share partition runs with (a group's configs over the broker's defaults).
public struct ShareSettings: Sendable, Equatable {
    /// How long an acquired record stays locked to its worker (share.record.lock.duration.ms).
    public var lockDurationMs: Int64 = 30_000
    /// Deliveries before a released or expired record is archived (share.delivery.count.limit).
    public var deliveryCountLimit: Int16 = 5
    /// The most records in flight (between the start and end offsets) per partition
    /// (share.partition.max.record.locks).
    public var maxInFlight = 2_000
    /// Retry backoff (share.redelivery.backoff.ms, 0: redeliver at once as Kafka does): after a
    /// RELEASE or an expired lock, the n-th delivery's record waits
    /// min(max, initial * 2^(n-1)) scaled by a factor in [0.5, 1.0] before it is available.
    public var redeliveryBackoffMs: Int64 = 0
    /// The longest backoff (share.redelivery.backoff.max.ms).
    public var redeliveryBackoffMaxMs: Int64 = 60_000
    /// The group has a dead-letter topic: records archived by REJECT or at the limit are kept
    /// as dead letters until copied there.
    public var deadLetters = false
    /// Per-key ordering (share.key.ordering): at most one record of a key in flight; a key's
    /// records go out in offset order, each after the one before it is finished.
    public var keyOrdering = false
    /// The most entries a partition's window keeps in memory, delayed records included (they
    /// do not count toward `maxInFlight`). Acknowledged records behind the start are cut and
    /// not counted, so a record that holds the start (a long delay, a renewed lock) stops
    /// nothing; this many records waiting unfinished do.
    public var maxWindow = 100_000
    public init() {}

    /// The wait before a record delivered `deliveries` times is available again. The factor
    /// in [0.5, 1.0] is derived from the offset and the count (spread, and reproducible).
    public func backoff(deliveries: Int16, offset: Int64) -> Int64 {
        guard redeliveryBackoffMs > 0, deliveries > 0 else { return 0 }
        let exponent = min(Int64(deliveries) - 1, 40)
        // Doubling saturates at the maximum (a shift that overflowed lost its high bits).
        let doubled = redeliveryBackoffMs > Int64.max >> exponent ? Int64.max : redeliveryBackoffMs << exponent
        let full = max(0, min(redeliveryBackoffMaxMs, doubled))
        var mix = UInt64(bitPattern: offset) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(UInt16(bitPattern: deliveries)) &* 0xBF58_476D_1CE4_E5B9
        mix ^= mix >> 31
        let fraction = Double(mix % 1_000_001) / 1_000_000  // 0...1
        let wait = Double(full) * (0.5 + 0.5 * fraction)
        return wait >= Double(Int64.max) ? Int64.max : Int64(wait)
    }
}

/// What happened here since the broker started (counters for metrics and the console;
/// not persisted: they start from zero at each start, as Prometheus counters may).
public struct ShareActivity: Sendable, Equatable {
    public var deliveries: Int64 = 0
    /// Deliveries of records delivered before (delivery count above 1).
    public var redeliveries: Int64 = 0
    public var accepted: Int64 = 0
    public var released: Int64 = 0
    public var rejected: Int64 = 0
    public var renewed: Int64 = 0
    /// Locks that ran out before the worker acknowledged (visibility timeouts).
    public var lockExpirations: Int64 = 0
    public init() {}
}

extension Int64 {
    /// `self + other`, at `Int64.max` (or `.min`) instead of trapping: deadlines from settings
    /// an embedding program may set as large as it likes.
    func saturatingAdd(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }
}

import Logging
import Synchronization

/// Membership records on their way to `__consumer_offsets` (`GroupCoordinator.membershipWriter`
/// reads them): at most one per group, its newest. A group's records say its whole membership,
/// so a newer one makes an older one pointless: it takes the older one's place in the line, and
/// whoever waits for the older one (`PendingMembership.whenWritten`) is told with the newer
/// one's outcome. Groups leave in the order they first had a record waiting.
///
/// A burst of changes to a few groups is so a few records, and a burst over many groups (30,000
/// members leaving their one-member groups at once) one record each. (The line held 10,000
/// records and dropped the oldest: a group whose last record was dropped came back after a
/// crash as it had been, its member a ghost until its session ran out.)
///
/// Bounded by `maxGroups` groups and `maxBytes` of records waiting (`PendingMembership.bytes`),
/// for a writer stalled behind a failing disk: past either, the oldest is dropped, and the
/// caller says so in the log.
///
/// Concurrency: its own lock, a leaf (taken under the coordinator's); one reader, the writer
/// task, waits in `next()`.
final class MembershipQueue: Sendable {
    static let maxGroups = 100_000
    static let maxBytes = 64 << 20

    private struct State {
        /// Group ids in the order their records leave; `line[head...]` are waiting.
        var line: [String] = []
        var head = 0
        var waiting: [String: PendingMembership] = [:]
        var bytes = 0
        var finished = false
        var reader: CheckedContinuation<PendingMembership?, Never>? = nil
        /// The group whose record the writer has (from `next()` to `done`), and who waits for it.
        var inFlight: String? = nil
        var inFlightWaiters: [@Sendable (Bool) -> Void] = []

        mutating func pop() -> PendingMembership? {
            while head < line.count {
                let group = line[head]
                head += 1
                if head >= 1_024 && head * 2 >= line.count {
                    line.removeFirst(head)
                    head = 0
                }
                if let pending = waiting.removeValue(forKey: group) {
                    bytes -= pending.bytes
                    return pending
                }
            }
            return nil
        }
    }

    /// What became of a record handed over, and of the ones it displaced: the caller notes
    /// them passed (`RecordedMemberships.passed`) and tells whoever waited for a dropped one.
    struct Sent {
        /// False: the queue is finished (the broker is closing); the record was not taken.
        var taken: Bool
        /// The group's older record, whose place this one took (its waiter now waits for this).
        var replaced: PendingMembership?
        /// Records of other groups dropped to keep the bounds.
        var dropped: [PendingMembership] = []
    }

    private let state = Mutex(State())
    private let maxGroups: Int
    private let maxBytes: Int

    init(maxGroups: Int = MembershipQueue.maxGroups, maxBytes: Int = MembershipQueue.maxBytes) {
        self.maxGroups = maxGroups
        self.maxBytes = maxBytes
    }

    func send(_ pending: PendingMembership) -> Sent {
        let (sent, reader) = state.withLock { s -> (Sent, CheckedContinuation<PendingMembership?, Never>?) in
            guard !s.finished else { return (Sent(taken: false), nil) }
            if let reader = s.reader {
                s.reader = nil
                s.inFlight = pending.group
                return (Sent(taken: true), reader)
            }
            var sent = Sent(taken: true)
            var next = pending
            if let older = s.waiting[pending.group] {
                next.whenWritten = Self.chain(older.whenWritten, pending.whenWritten)
                s.bytes -= older.bytes
                sent.replaced = older
            } else {
                s.line.append(pending.group)
            }
            s.waiting[pending.group] = next
            s.bytes += next.bytes
            while s.waiting.count > 1 && (s.waiting.count > maxGroups || s.bytes > maxBytes), let oldest = s.pop() {
                sent.dropped.append(oldest)
            }
            return (sent, nil)
        }
        reader?.resume(returning: pending)
        return sent
    }

    /// Both, first `a` (nil when neither).
    static func chain(_ a: (@Sendable (Bool) -> Void)?, _ b: (@Sendable (Bool) -> Void)?) -> (@Sendable (Bool) -> Void)? {
        guard let a else { return b }
        guard let b else { return a }
        return { written in
            a(written)
            b(written)
        }
    }

    /// Whoever waits for a record the writer skipped for the group's later one now waits for
    /// that one; false when none of the group's waits (then tell them now).
    func follow(_ group: String, _ whenWritten: (@Sendable (Bool) -> Void)?) -> Bool {
        state.withLock { s in
            guard var pending = s.waiting[group] else { return false }
            pending.whenWritten = Self.chain(whenWritten, pending.whenWritten)
            s.waiting[group] = pending
            return true
        }
    }

    /// Calls `whenWritten` once the group's records now on their way (waiting, or being
    /// written) are done: for an answer that sent no record but shows a state one of them
    /// records (a member's SyncGroup after its leader's, a heartbeat after another member's
    /// join), as Kafka answers such a request once the writes before it are committed. False
    /// when none is on its way (answer now).
    func afterPending(_ group: String, _ whenWritten: @escaping @Sendable (Bool) -> Void) -> Bool {
        state.withLock { s in
            if var pending = s.waiting[group] {
                pending.whenWritten = Self.chain(pending.whenWritten, whenWritten)
                s.waiting[group] = pending
                return true
            }
            guard s.inFlight == group else { return false }
            s.inFlightWaiters.append(whenWritten)
            return true
        }
    }

    /// The writer is done with the record `next()` gave it. `skipped`: it was not written for
    /// the group's later record, which those waiting for it now wait for (when it still waits).
    func done(_ written: Bool, skipped: Bool = false) {
        let waiters = state.withLock { s -> [@Sendable (Bool) -> Void] in
            defer {
                s.inFlight = nil
                s.inFlightWaiters = []
            }
            if skipped, let group = s.inFlight, var later = s.waiting[group] {
                for waiter in s.inFlightWaiters { later.whenWritten = Self.chain(later.whenWritten, waiter) }
                s.waiting[group] = later
                return []
            }
            return s.inFlightWaiters
        }
        for waiter in waiters { waiter(written) }
    }

    /// The writer (`GroupCoordinator.membershipWriter`, this queue's one reader): appends each
    /// record to the offsets log while its group's life lasts (`RecordedMemberships.isLive`),
    /// until the queue is finished and empty.
    func write(to store: OffsetStore, recorded: RecordedMemberships, logger: Logger?) async {
        while var pending = await next() {
            let (group, life) = (pending.group, pending.life)
            var written = false
            var superseded = false
            do {
                let current = { @Sendable in recorded.isLive(group, life: life) }
                // A later record of the group is on its way (sent since the writer took this
                // one), and a consumer group's records are written whole: this one is
                // skipped, and whoever waits for it waits for the later one (if that is not
                // in the line yet, this one is written).
                if case .classic = pending.record {} else if recorded.sent(group) != pending.sequence {
                    superseded = follow(group, pending.whenWritten)
                    if superseded { pending.whenWritten = nil }
                }
                switch pending.record {
                case _ where superseded: break
                case .classic(let record): written = try await store.recordMembership(group: group, record, if: current)
                case .consumer(let snapshot): written = try await store.recordMembership(group: group, snapshot, if: current)
                case .consumerTooLarge:
                    // Said once, when the records there were are deleted.
                    if try await store.forgetMembership(group: group, if: current) {
                        throw TidemarkError(
                            .storage, "the group's members keep more than \(OffsetStore.maxMembershipRecordBytes) bytes: earlier records deleted")
                    }
                }
            } catch {
                logger?.warning(
                    "group membership record not written to __consumer_offsets", metadata: ["group": "\(group)", "error": "\(error)"])
            }
            recorded.passed(group, life: life)
            pending.whenWritten?(written)
            done(written, skipped: superseded)
        }
    }

    /// The next record, waiting for one; nil once finished and empty.
    func next() async -> PendingMembership? {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { s -> PendingMembership?? in
                if let pending = s.pop() {
                    s.inFlight = pending.group
                    return .some(pending)
                }
                if s.finished { return .some(nil) }
                s.reader = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Takes no more; what waits is still read.
    func finish() {
        let reader = state.withLock { s -> CheckedContinuation<PendingMembership?, Never>? in
            s.finished = true
            defer { s.reader = nil }
            return s.reader
        }
        reader?.resume(returning: nil)
    }

    var count: Int { state.withLock { $0.waiting.count } }
    /// Whether the writer waits in `next()` (for tests).
    var readerWaits: Bool { state.withLock { $0.reader != nil } }
}

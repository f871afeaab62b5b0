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
                return (Sent(taken: true), reader)
            }
            var sent = Sent(taken: true)
            var next = pending
            if let older = s.waiting[pending.group] {
                let (first, then) = (older.whenWritten, pending.whenWritten)
                if first != nil || then != nil {
                    next.whenWritten = { written in
                        first?(written)
                        then?(written)
                    }
                }
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

    /// Whoever waits for a record the writer skipped for the group's later one now waits for
    /// that one; false when none of the group's waits (then tell them now).
    func follow(_ group: String, _ whenWritten: @escaping @Sendable (Bool) -> Void) -> Bool {
        state.withLock { s in
            guard var pending = s.waiting[group] else { return false }
            let then = pending.whenWritten
            pending.whenWritten = { written in
                whenWritten(written)
                then?(written)
            }
            s.waiting[group] = pending
            return true
        }
    }

    /// The next record, waiting for one; nil once finished and empty.
    func next() async -> PendingMembership? {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { s -> PendingMembership?? in
                if let pending = s.pop() { return .some(pending) }
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

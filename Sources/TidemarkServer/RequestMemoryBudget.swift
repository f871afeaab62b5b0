import Synchronization

/// The broker-wide bound on request bytes being read or waiting to be answered (Kafka's
/// queued.max.request.bytes idea): a connection reserves a frame's bytes as they arrive (see
/// `KafkaFrameReader`: a frame read at once is one reservation, a larger one a few growing
/// steps) and gives them back when the request has been handled. A connection whose bytes do
/// not fit stops reading until enough is given back, so clients holding huge unfinished
/// frames cannot make the broker buffer without bound, and a size prefix alone reserves nothing.
///
/// Frames up to `smallFrameBytes` may also use `headroomBytes` above the limit, so that
/// ordinary small requests keep being served while big frames wait. A reservation is
/// admitted when nothing else is reserved.
///
/// Progress: frames reserved step by step could otherwise all hold part of the budget and
/// all wait for more (four 100 MiB produces at once: 4 x 64 MiB reserved, each wanting 36 MiB
/// more). So the oldest frame reserved in steps (`beginPartial`, until it is complete) is
/// always granted its steps: it completes, is handled and gives everything back. Only one
/// frame at a time is that frame, so what is reserved stays under the limit plus one frame
/// (`maxRequestBytes`); a frame larger than the limit completes the same way.
///
/// Concurrency: `state` (a Mutex) owns the count, the partial frames and the queue of waiting
/// connections; grants are delivered by calling the waiter's closure after the lock is released.
final class RequestMemoryBudget: Sendable {
    let limitBytes: Int
    let headroomBytes: Int
    let smallFrameBytes: Int

    private struct Waiter {
        var id: Int
        var bytes: Int
        var frame: Int
        var partial: Int?
        var grant: @Sendable () -> Void
    }

    private struct State {
        var usedBytes = 0
        /// The part of `usedBytes` held by small frames: they always have the headroom, even
        /// while the oldest frame in steps is past the limit.
        var smallUsedBytes = 0
        var nextId = 0
        var waiters: [Waiter] = []
        /// Frames holding part of their reservation, oldest first (ids from `nextPartial`).
        var partials: [Int] = []
        var nextPartial = 0
    }

    private let state = Mutex(State())

    init(limitBytes: Int, headroomBytes: Int = 16 << 20, smallFrameBytes: Int = 64 << 10) {
        self.limitBytes = limitBytes
        self.headroomBytes = headroomBytes
        self.smallFrameBytes = smallFrameBytes
    }

    var usedBytes: Int { state.withLock { $0.usedBytes } }

    /// Whether `bytes` more for a frame of `frame` bytes fit; always for the oldest partial frame.
    private func fits(_ bytes: Int, frame: Int, partial: Int?, _ s: State) -> Bool {
        if s.usedBytes == 0 { return true }
        if let partial, partial == s.partials.first { return true }
        if frame <= smallFrameBytes {
            return s.usedBytes + bytes <= limitBytes + headroomBytes || s.smallUsedBytes + bytes <= headroomBytes
        }
        return s.usedBytes + bytes <= limitBytes
    }

    private func take(_ bytes: Int, frame: Int, _ s: inout State) {
        s.usedBytes += bytes
        if frame <= smallFrameBytes { s.smallUsedBytes += bytes }
    }

    /// Reserves `bytes` (of a frame of `frame` bytes, holding a partial reservation numbered
    /// `partial`, if any) if they fit now and nobody waits before them: true. The common case,
    /// without the closure `reserve` needs (an allocation per frame).
    func tryReserve(_ bytes: Int, ofFrame frame: Int? = nil, partial: Int? = nil) -> Bool {
        state.withLock { takeIfFits(bytes, frame: frame ?? bytes, partial: partial, &$0) }
    }

    /// Takes `bytes` when they fit and no one waits before them (a small frame never waits
    /// behind a large one; the oldest partial frame never waits).
    private func takeIfFits(_ bytes: Int, frame: Int, partial: Int?, _ s: inout State) -> Bool {
        let first = partial != nil && partial == s.partials.first
        guard s.waiters.isEmpty || frame <= smallFrameBytes || first, fits(bytes, frame: frame, partial: partial, s) else { return false }
        take(bytes, frame: frame, &s)
        return true
    }

    /// Reserves `bytes` now (returns nil), or queues the request and returns a ticket; `grant`
    /// is called once the bytes are reserved for the caller.
    func reserve(_ bytes: Int, ofFrame frame: Int? = nil, partial: Int? = nil, grant: @escaping @Sendable () -> Void) -> Int? {
        state.withLock { s in
            if takeIfFits(bytes, frame: frame ?? bytes, partial: partial, &s) { return nil }
            s.nextId += 1
            s.waiters.append(Waiter(id: s.nextId, bytes: bytes, frame: frame ?? bytes, partial: partial, grant: grant))
            return s.nextId
        }
    }

    /// A frame now holds part of its reservation: its number, for its next steps.
    func beginPartial() -> Int {
        state.withLock { s in
            s.nextPartial += 1
            s.partials.append(s.nextPartial)
            return s.nextPartial
        }
    }

    /// The frame's reservation is complete (or its connection closed): the next oldest
    /// partial frame goes first now, and may be granted at once.
    func endPartial(_ partial: Int) {
        let granted = state.withLock { s -> [@Sendable () -> Void] in
            s.partials.removeAll { $0 == partial }
            return grantWaiters(&s)
        }
        for grant in granted { grant() }
    }

    /// Withdraws a queued reservation (its connection closed before the grant).
    /// Returns false when it was granted meanwhile: the caller then owns the bytes.
    func cancel(_ ticket: Int) -> Bool {
        state.withLock { s in
            guard let index = s.waiters.firstIndex(where: { $0.id == ticket }) else { return false }
            s.waiters.remove(at: index)
            return true
        }
    }

    /// Gives `bytes` (of a frame of `frame` bytes; a whole frame when nil) back, ends the
    /// frame's privilege (`partial`), and grants the waiters that now fit, oldest first.
    func release(_ bytes: Int, ofFrame frame: Int? = nil, partial: Int? = nil) {
        guard bytes > 0 || partial != nil else { return }
        let granted = state.withLock { s -> [@Sendable () -> Void] in
            if let partial { s.partials.removeAll { $0 == partial } }
            s.usedBytes -= bytes
            if (frame ?? bytes) <= smallFrameBytes { s.smallUsedBytes = max(0, s.smallUsedBytes - bytes) }
            precondition(s.usedBytes >= 0, "request budget released more than it reserved")
            return grantWaiters(&s)
        }
        for grant in granted { grant() }
    }

    private func grantWaiters(_ s: inout State) -> [@Sendable () -> Void] {
        var granted: [@Sendable () -> Void] = []
        var index = 0
        while index < s.waiters.count {
            let waiter = s.waiters[index]
            if fits(waiter.bytes, frame: waiter.frame, partial: waiter.partial, s) {
                take(waiter.bytes, frame: waiter.frame, &s)
                granted.append(s.waiters.remove(at: index).grant)
            } else {
                index += 1
            }
        }
        return granted
    }
}

import Synchronization

/// The broker-wide bound on request bytes being read or waiting to be answered (Kafka's
/// queued.max.request.bytes idea): a connection reserves a small frame's declared size when
/// its size prefix arrives, a large frame's bytes step by step as they arrive (see
/// `KafkaFrameReader`), and gives them back when the request has been handled. A connection
/// whose bytes do not fit stops reading until enough is given back, so clients holding huge
/// unfinished frames cannot make the broker buffer without bound, and a size prefix alone
/// reserves no more than a small frame's worth.
///
/// Frames up to `smallFrameBytes` may also use `headroomBytes` above the limit, so that
/// ordinary small requests keep being served while big frames wait. A reservation is
/// admitted when nothing else is reserved (one larger than the limit could never fit otherwise).
///
/// Concurrency: `state` (a Mutex) owns the count and the queue of waiting connections; grants
/// are delivered by calling the waiter's closure after the lock is released.
final class RequestMemoryBudget: Sendable {
    let limitBytes: Int
    let headroomBytes: Int
    let smallFrameBytes: Int

    private struct Waiter {
        var id: Int
        var bytes: Int
        var frame: Int
        var grant: @Sendable () -> Void
    }

    private struct State {
        var usedBytes = 0
        var nextId = 0
        var waiters: [Waiter] = []
    }

    private let state = Mutex(State())

    init(limitBytes: Int, headroomBytes: Int = 16 << 20, smallFrameBytes: Int = 64 << 10) {
        self.limitBytes = limitBytes
        self.headroomBytes = headroomBytes
        self.smallFrameBytes = smallFrameBytes
    }

    var usedBytes: Int { state.withLock { $0.usedBytes } }

    /// Whether `bytes` more for a frame of `frame` bytes fit.
    private func fits(_ bytes: Int, frame: Int, used: Int) -> Bool {
        if used == 0 { return true }
        let ceiling = frame <= smallFrameBytes ? limitBytes + headroomBytes : limitBytes
        return used + bytes <= ceiling
    }

    /// Reserves `bytes` (of a frame of `frame` bytes; the whole frame when nil) if they fit now
    /// and nobody waits: true. The common case, without the closure `reserve` needs (an
    /// allocation per frame).
    func tryReserve(_ bytes: Int, ofFrame frame: Int? = nil) -> Bool {
        state.withLock { takeIfFits(bytes, frame: frame ?? bytes, &$0) }
    }

    /// Takes `bytes` when they fit and no one waits before them (a small frame never waits
    /// behind a large one).
    private func takeIfFits(_ bytes: Int, frame: Int, _ s: inout State) -> Bool {
        guard s.waiters.isEmpty || frame <= smallFrameBytes, fits(bytes, frame: frame, used: s.usedBytes) else { return false }
        s.usedBytes += bytes
        return true
    }

    /// Reserves `bytes` (of a frame of `frame` bytes) now (returns nil), or queues the request
    /// and returns a ticket; `grant` is called once the bytes are reserved for the caller.
    func reserve(_ bytes: Int, ofFrame frame: Int? = nil, grant: @escaping @Sendable () -> Void) -> Int? {
        state.withLock { s in
            if takeIfFits(bytes, frame: frame ?? bytes, &s) { return nil }
            s.nextId += 1
            s.waiters.append(Waiter(id: s.nextId, bytes: bytes, frame: frame ?? bytes, grant: grant))
            return s.nextId
        }
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

    /// Gives `bytes` back and grants the waiters that now fit, oldest first.
    func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        let granted = state.withLock { s -> [@Sendable () -> Void] in
            s.usedBytes -= bytes
            precondition(s.usedBytes >= 0, "request budget released more than it reserved")
            var granted: [@Sendable () -> Void] = []
            var index = 0
            while index < s.waiters.count {
                if fits(s.waiters[index].bytes, frame: s.waiters[index].frame, used: s.usedBytes) {
                    s.usedBytes += s.waiters[index].bytes
                    granted.append(s.waiters.remove(at: index).grant)
                } else {
                    index += 1
                }
            }
            return granted
        }
        for grant in granted { grant() }
    }
}

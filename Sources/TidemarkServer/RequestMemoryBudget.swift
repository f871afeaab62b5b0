import Synchronization

/// The broker-wide bound on request bytes being read or waiting to be answered (Kafka's
/// queued.max.request.bytes idea): a connection reserves a frame's declared size when its
/// header arrives and gives it back when the request has been handled. A connection whose
/// frame does not fit stops reading until enough is given back, so clients holding huge
/// unfinished frames cannot make the broker buffer without bound.
///
/// Frames up to `smallFrameBytes` may also use `headroomBytes` above the limit, so that
/// ordinary small requests keep being served while big frames wait. A frame larger than the
/// limit is admitted when nothing else is reserved (it could never fit otherwise).
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

    private func fits(_ bytes: Int, used: Int) -> Bool {
        if used == 0 { return true }
        let ceiling = bytes <= smallFrameBytes ? limitBytes + headroomBytes : limitBytes
        return used + bytes <= ceiling
    }

    /// Reserves `bytes` if they fit now and nobody waits: true. The common case, without the
    /// closure `reserve` needs (an allocation per frame).
    func tryReserve(_ bytes: Int) -> Bool {
        state.withLock { takeIfFits(bytes, &$0) }
    }

    /// Takes `bytes` when they fit and no one waits before them (a small frame never waits
    /// behind a large one).
    private func takeIfFits(_ bytes: Int, _ s: inout State) -> Bool {
        guard s.waiters.isEmpty || bytes <= smallFrameBytes, fits(bytes, used: s.usedBytes) else { return false }
        s.usedBytes += bytes
        return true
    }

    /// Reserves `bytes` now (returns nil), or queues the request and returns a ticket; `grant`
    /// is called once the bytes are reserved for the caller.
    func reserve(_ bytes: Int, grant: @escaping @Sendable () -> Void) -> Int? {
        state.withLock { s in
            if takeIfFits(bytes, &s) { return nil }
            s.nextId += 1
            s.waiters.append(Waiter(id: s.nextId, bytes: bytes, grant: grant))
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
                if fits(s.waiters[index].bytes, used: s.usedBytes) {
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

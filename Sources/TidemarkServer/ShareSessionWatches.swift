import NIOCore
import Synchronization
import Tidemark

/// The append watches of one share session: one per partition its fetches read. A watch
/// fires once; it is made anew only when a fetch of the session looks at its partition, and
/// before that fetch's acquire (an append after the new watch wakes the fetch; one before
/// it, the acquire sees). So a long poll over many partitions neither registers a watch per
/// partition at each fetch nor walks every partition at each append: a wake names the
/// partition that was appended to.
///
/// The watches are share waiters (`ShareWake`): an append wakes one waiting poll of the group
/// per record, not every worker's. A poll that was woken decides whether to pass the wake on
/// (`passWakes`); one that cannot use it (its fetch no longer waits, or the watch was
/// forgotten) passes it on at once. The sessions not woken are told: their partitions are
/// `appended`, which their next timer wake, or their fetch before it waits, looks at.
///
/// Kept by the connection across the session's fetches (`ConnectionShares.watches`), made
/// before the session's first acquire; or, past the connection's bound, by one fetch alone
/// (made when it first waits, cancelled when it ends). Confined to the connection's event
/// loop; the watches' callbacks come back to it with `execute`. What the appenders' threads
/// read or write directly is in `shared`.
final class ShareSessionWatches {
    private let broker: Broker
    private let loop: any EventLoop
    let group: String
    /// Whether a long poll of the session waits (an append may wake it), and the partitions
    /// appended to whose wake went to another poll: read and written by appenders' threads.
    private final class Shared: Sendable {
        let waiting = Atomic<Bool>(false)
        let appended = Mutex<Set<TopicPartition>>([])
    }
    private let shared = Shared()
    /// Partitions whose wake a waiting poll took: it passes them on, or not, after its acquire.
    private var owed: [TopicPartition] = []
    /// A watch, and the number its callback names (a callback of a watch since forgotten or
    /// made anew is ignored: it may come back to the loop after that).
    private struct Entry {
        var watch: AppendWatch?
        var serial: UInt64
    }
    private var watches: [TopicPartition: Entry] = [:]
    private var nextSerial: UInt64 = 0
    /// Partitions whose watch fired and was not made anew yet.
    private var fired: [TopicPartition] = []
    /// Partitions whose watch could not be made (their log could not be read then).
    private var unwatched: Set<TopicPartition> = []
    /// The session's list of partitions `sync` last watched all of (nil once any is
    /// forgotten or all are cancelled).
    private var syncedWith: [TopicPartition]?
    private var isClosed = false
    /// Called on the loop when a watch fires, while a long poll of the session waits.
    var waiter: ((TopicPartition) -> Void)? {
        didSet { shared.waiting.store(waiter != nil, ordering: .sequentiallyConsistent) }
    }

    init(broker: Broker, loop: any EventLoop, group: String) {
        self.broker = broker
        self.loop = loop
        self.group = group
    }

    var isEmpty: Bool { watches.isEmpty }
    var hasFired: Bool { !fired.isEmpty }

    /// Watches those of `partitions` not watched yet (dictionary lookups for the others).
    func watch(_ partitions: some Sequence<TopicPartition>) {
        var bound: NIOLoopBound<ShareSessionWatches>?  // (made when one is needed: a check of the loop)
        for tp in partitions where watches[tp] == nil {
            let made = bound ?? NIOLoopBound(self, eventLoop: loop)
            bound = made
            watch(tp, made)
        }
    }

    /// Brings the watches of a kept session up to date with its `partitions`: a lookup of each
    /// (~50 us a fetch over 1,000 partitions, a third of a job's cost there) only when its list
    /// is not the one the watches were last brought up to date with (unchanged, it is the same
    /// storage: one compare; a session's list changes when partitions are added or forgotten,
    /// or its topic is deleted); else only those that could not be watched are tried again.
    /// A changed list also drops what the watches keep of partitions no longer in it (a deleted
    /// topic's, which the client's forget cannot name any more: their failed retries came with
    /// every fetch).
    func sync(_ partitions: SessionPartitions) {
        if let syncedWith, syncedWith == partitions.base {
            if !unwatched.isEmpty { watch(Array(unwatched)) }
            return
        }
        watch(partitions)
        let current = Set(partitions.base)
        drop(Array(watches.keys.filter { !current.contains($0) }) + unwatched.filter { !current.contains($0) })
        syncedWith = partitions.base
    }

    /// Stops watching `partitions` (forgotten by the session).
    func forget(_ partitions: [TopicPartition]) {
        guard !partitions.isEmpty else { return }
        syncedWith = nil
        drop(partitions)
    }

    private func drop(_ partitions: [TopicPartition]) {
        guard !partitions.isEmpty else { return }
        for tp in partitions {
            watches.removeValue(forKey: tp)?.watch?.cancel()
            unwatched.remove(tp)
        }
        let gone = Set(partitions)
        fired.removeAll { gone.contains($0) }
        shared.appended.withLock { $0.subtract(gone) }
    }

    /// The watches that fired are made anew; returns their partitions, each once.
    func rewatchFired() -> [TopicPartition] {
        guard !fired.isEmpty else { return [] }
        let bound = NIOLoopBound(self, eventLoop: loop)
        var partitions: [TopicPartition] = []
        var seen = Set<TopicPartition>()
        for tp in fired where seen.insert(tp).inserted {
            watch(tp, bound)
            partitions.append(tp)
        }
        fired.removeAll()
        return partitions
    }

    /// The partitions appended to since the last call whose wake went to another poll.
    func takeAppended() -> [TopicPartition] {
        shared.appended.withLock { appended in
            guard !appended.isEmpty else { return [] }
            defer { appended.removeAll() }
            return Array(appended)
        }
    }

    /// After a woken poll's acquire: the wakes it took go on to the group's next waiting poll
    /// for the partitions that still have records to take.
    func passWakes() {
        guard !owed.isEmpty else { return }
        let view = broker.shareLogViewWithoutBlocking
        for tp in owed where broker.shares.hasAvailable(group: group, tp, view: view) { passOn(tp) }
        owed.removeAll()
    }

    private func passOn(_ tp: TopicPartition) {
        broker.passShareWake(topic: tp.topic, partition: tp.partition, group: group)
    }

    func cancelAll() {
        for entry in watches.values { entry.watch?.cancel() }
        watches.removeAll()
        syncedWith = nil
        fired.removeAll()
        unwatched.removeAll()
        waiter = nil
        for tp in owed { passOn(tp) }
        owed.removeAll()
    }

    /// Cancels every watch and makes no more (the session or its connection ended: a long poll
    /// still waiting on its timer must not register watches nobody would cancel).
    func close() {
        isClosed = true
        cancelAll()
    }

    /// Tries again to watch the partitions that could not be watched; returns them all (a long
    /// poll's timer wake walks them: whether they got records, no watch said).
    func retryUnwatched() -> [TopicPartition] {
        guard !unwatched.isEmpty else { return [] }
        let tried = Array(unwatched)
        let bound = NIOLoopBound(self, eventLoop: loop)
        for tp in tried { watch(tp, bound) }
        return tried
    }

    /// Watches `tp` for an append past its log end now (in place of its watch, if any). A
    /// partition that cannot be read now is not watched: it is kept in `unwatched`, which a
    /// long poll's timer wakes walk and try again (as does the session's next fetch).
    private func watch(_ tp: TopicPartition, _ bound: NIOLoopBound<ShareSessionWatches>) {
        watches.removeValue(forKey: tp)?.watch?.cancel()
        guard !isClosed else { return }
        guard let (_, end) = try? broker.offsets(topic: tp.topic, partition: tp.partition) else {
            unwatched.insert(tp)
            return
        }
        unwatched.remove(tp)
        nextSerial += 1
        let serial = nextSerial
        // Entered before registering: a watch whose end has passed calls back at once.
        watches[tp] = Entry(watch: nil, serial: serial)
        let (loop, shared) = (self.loop, self.shared)
        let share = ShareWake(
            group: group, isWaiting: { shared.waiting.load(ordering: .sequentiallyConsistent) },
            isLocal: { loop.inEventLoop },
            appended: { busy in
                shared.appended.withLock { _ = $0.insert(tp) }
                // Not waiting when the wakes were chosen, waiting now: its look before the wait
                // may have missed this; it looks now (otherwise it would wait for its timer).
                if busy && shared.waiting.load(ordering: .sequentiallyConsistent) {
                    loop.execute { bound.value.toldWhileWaiting(tp) }
                }
            })
        let watch = broker.watchAppends(topic: tp.topic, partition: tp.partition, beyond: end, share: share) {
            loop.execute { bound.value.didFire(tp, serial) }
        }
        watches[tp]?.watch = watch
    }

    private func toldWhileWaiting(_ tp: TopicPartition) {
        guard watches[tp] != nil, let waiter else { return }
        waiter(tp)
    }

    private func didFire(_ tp: TopicPartition, _ serial: UInt64) {
        // A wake this session cannot use (the watch forgotten or closed, no poll waiting now)
        // goes on to another poll of the group at once.
        guard watches[tp]?.serial == serial else { return passOn(tp) }
        fired.append(tp)
        guard let waiter else { return passOn(tp) }
        owed.append(tp)
        waiter(tp)
    }
}

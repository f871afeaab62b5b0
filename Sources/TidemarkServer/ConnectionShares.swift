import NIOCore
import Synchronization
import Tidemark

/// The share sessions one client connection used (ShareFetch, ShareAcknowledge): when the
/// connection closes, those it used last are closed and their members' records given back
/// (`ShareCoordinator.connectionClosed`), as Kafka does since 4.1.
///
/// Ownership: confined to the connection's event loop (the handler and the share requests
/// it runs there). Bounded: a connection that names more than `maxSessions` sessions (a
/// client inventing member ids) has the rest expire by their locks instead.
final class ConnectionShares {
    private static let numbers = Atomic<UInt64>(0)
    static let maxSessions = 1_024

    /// This connection's number, unique in the process.
    let id: UInt64
    private(set) var sessions: Set<Name> = []
    /// The append watches of sessions this connection holds, kept across their fetches (a
    /// worker's connection holds one session; `maxWatched` bounds what a connection naming
    /// many sessions keeps registered: the others' fetches watch for themselves).
    private var watched: [Name: ShareSessionWatches] = [:]
    static let maxWatched = 8

    struct Name: Hashable {
        var group: String
        var member: String
    }

    init() {
        id = Self.numbers.add(1, ordering: .relaxed).newValue
    }

    /// Keeps only these (the sessions this connection still holds: others were closed, or
    /// moved to another connection).
    func keep(_ names: [(group: String, member: String)]) {
        sessions = Set(names.map { Name(group: $0.group, member: $0.member) })
        for name in watched.keys where !sessions.contains(name) { watched.removeValue(forKey: name)?.close() }
    }

    /// The watches kept for (group, member)'s session, made when there is room; nil past the bound.
    func watches(group: String, member: String, broker: Broker, loop: any EventLoop) -> ShareSessionWatches? {
        let name = Name(group: group, member: member)
        if let watches = watched[name] { return watches }
        guard sessions.contains(name) else { return nil }
        if watched.count >= Self.maxWatched {
            // Sessions closed by the coordinator (a member gone, a group deleted) or moved to
            // another connection since: their watches go.
            let held = broker.shares.sessions(usedLastBy: id, among: watched.keys.map { ($0.group, $0.member) })
            let kept = Set(held.map { Name(group: $0.group, member: $0.member) })
            for other in watched.keys where !kept.contains(other) { watched.removeValue(forKey: other)?.close() }
            guard watched.count < Self.maxWatched else { return nil }
        }
        let watches = ShareSessionWatches(broker: broker, loop: loop, group: group)
        watched[name] = watches
        return watches
    }

    /// The connection's Fetch or ShareFetch still waiting after its first pass (a connection
    /// runs one request at a time; one answered at once is never set): a long poll still
    /// waiting when the connection closes ends then, unanswered.
    weak var longPoll: FetchInFlight?
    weak var shareLongPoll: ShareFetchInFlight?

    /// The connection closed: every watch goes, and a waiting Fetch or ShareFetch ends.
    func closed() {
        longPoll?.abandon()
        longPoll = nil
        shareLongPoll?.abandon()
        shareLongPoll = nil
        for watches in watched.values { watches.close() }
        watched.removeAll()
    }

    /// A share request of this connection used (group, member)'s session; `closed`: it closed it.
    func used(group: String, member: String, closed: Bool) {
        let name = Name(group: group, member: member)
        if closed {
            sessions.remove(name)
            watched.removeValue(forKey: name)?.close()
        } else if sessions.count < Self.maxSessions {
            sessions.insert(name)
        }
    }
}

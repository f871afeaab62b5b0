import Synchronization

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
    }

    /// A share request of this connection used (group, member)'s session; `closed`: it closed it.
    func used(group: String, member: String, closed: Bool) {
        let name = Name(group: group, member: member)
        if closed {
            sessions.remove(name)
        } else if sessions.count < Self.maxSessions {
            sessions.insert(name)
        }
    }
}

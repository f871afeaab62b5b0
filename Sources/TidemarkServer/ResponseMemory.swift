import Synchronization
import TidemarkWire

/// The broker-wide bound on response bytes held in memory until the client has them: large
/// responses count from when they are written to their channel until the write completes
/// (or fails, when the connection closes). A fetch copies records into its response only
/// while the total stays under `limitBytes` (its first partition always: a consumer must
/// progress); past it, partitions are left for the next fetch. So clients that fetch much and
/// read slowly, or not at all, cannot make the broker hold copies without bound (sendfile
/// slices hold no memory; `RequestRouter.maxFileSlicesPerResponse` bounds their descriptors,
/// and past `DescriptorPlan.sendfile` held over all connections a slice is copied, counted
/// from its write, or, when the copy would not fit the room, its connection closes: the client
/// fetches again once descriptors or memory are free). A ShareFetch's answer is a copy: its
/// first partition is read only as far as the room, and none is acquired without any room
/// (the poll waits, answered empty at its deadline).
///
/// Other large responses count apart (`otherHeldBytes`), against a bound of the same size:
/// an answer to a request that changes nothing (Metadata, DescribeConfigs, OffsetFetch...;
/// `RequestRouter.changesNothing`) that would take them past it is not sent, and its
/// connection is closed (`RequestRouter.respond`), so clients that ask for large answers and
/// never read them cannot make the broker hold them without bound either (400 connections
/// asking for 5 MB of DescribeConfigs each held 2 GB). An answer is always sent when no other
/// is held, and fetches do not take this room: a broker busy with consumers still answers
/// Metadata. Answers to requests that changed something (a Produce of thousands of
/// partitions, a JoinGroup leader's) are always sent: closing would lose what was done.
///
/// Responses under `smallResponseBytes` are not counted: each connection holds at most one
/// unsent response past NIO's writability mark before it stops reading (see
/// `KafkaConnectionHandler`), so they are bounded per connection, and the produce path pays
/// nothing for this.
///
/// Concurrency: one atomic counter, added to on event loops and subtracted from in write
/// completions; checks against it are advisory (two loops filling responses at once may go
/// past the limit by what each adds after its check, at most a partition's read).
final class ResponseMemory: Sendable {
    let limitBytes: Int
    static let smallResponseBytes = 64 << 10
    private let held = Atomic<Int>(0)
    /// The part of `held` that is not fetches'.
    private let otherHeld = Atomic<Int>(0)

    init(limitBytes: Int) {
        self.limitBytes = limitBytes
    }

    var heldBytes: Int { held.load(ordering: .relaxed) }

    /// What a fetch may still copy.
    var room: Int { max(0, limitBytes - heldBytes) }

    var otherHeldBytes: Int { otherHeld.load(ordering: .relaxed) }

    /// The in-memory size of an answer (its file slices apart) that is large and would take
    /// the other answers held past the limit while some are; nil when it may be sent.
    func refuses(_ chunks: [RecordsData]) -> Int? {
        let size = chunks.reduce(0) { $0 + ($1.isSlice ? 0 : $1.count) }
        guard size >= Self.smallResponseBytes else { return nil }
        let others = otherHeldBytes
        return others > 0 && others + size > limitBytes ? size : nil
    }

    func hold(_ bytes: Int, fetch: Bool = true) {
        held.add(bytes, ordering: .relaxed)
        if !fetch { otherHeld.add(bytes, ordering: .relaxed) }
    }

    func release(_ bytes: Int, fetch: Bool = true) {
        held.subtract(bytes, ordering: .relaxed)
        if !fetch { otherHeld.subtract(bytes, ordering: .relaxed) }
    }
}

import Synchronization
import TidemarkWire

/// The broker-wide bound on response bytes held in memory until the client has them: large
/// responses count from when they are written to their channel until the write completes
/// (or fails, when the connection closes). A fetch copies records into its response only
/// while the total stays under `limitBytes` (its first partition always: a consumer must
/// progress); past it, partitions are left for the next fetch. So clients that fetch much and
/// read slowly, or not at all, cannot make the broker hold copies without bound (sendfile
/// slices hold no memory, except those copied past the sendfile bound, counted from their
/// write; `RequestRouter.maxFileSlicesPerResponse` bounds their descriptors).
///
/// Other large responses (Metadata, DescribeConfigs, OffsetFetch...) count the same way, and
/// one that would take the total past `limitBytes` is not sent: its connection is closed
/// (`RequestRouter.respond`), so clients that ask for large answers and never read them
/// cannot make the broker hold them without bound either.
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

    init(limitBytes: Int) {
        self.limitBytes = limitBytes
    }

    var heldBytes: Int { held.load(ordering: .relaxed) }

    /// What a fetch may still copy.
    var room: Int { max(0, limitBytes - heldBytes) }

    /// The in-memory size of a response (its file slices apart) when it is large and would
    /// take the held bytes past the limit; nil when it may be sent.
    func refuses(_ chunks: [RecordsData]) -> Int? {
        let size = chunks.reduce(0) { $0 + ($1.isSlice ? 0 : $1.count) }
        return size >= Self.smallResponseBytes && heldBytes + size > limitBytes ? size : nil
    }

    func hold(_ bytes: Int) { held.add(bytes, ordering: .relaxed) }

    func release(_ bytes: Int) { held.subtract(bytes, ordering: .relaxed) }
}

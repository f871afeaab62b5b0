/// The entries of a share partition's window, one per offset from its start offset on
/// (`window[offset - startOffset]`), indexed from 0.
///
/// The window's start moves over finished records one acknowledgement at a time; an array
/// would move every entry behind them each time (a window of 100,000 delayed jobs is 4 MB,
/// moved per acknowledgement). Here the front is dropped by counting it (`head`): the dropped
/// entries stay in `storage` until they are at least half of it (and over
/// `compactionThreshold`), then the live ones move down once. Each entry moves at most once
/// per time it could have been dropped, so dropping is amortized O(1), and `storage` is at
/// most twice the live entries (or the live entries plus the threshold).
///
/// Concurrency: a value, owned with its `SharePartition` by `ShareCoordinator`'s mutex.
struct ShareWindow: RandomAccessCollection, MutableCollection, Sendable, Equatable {
    typealias Entry = SharePartition.Entry

    private var storage: [Entry]
    /// Dropped entries at the front of `storage`.
    private var head = 0

    /// Dropped entries are kept (not moved over) while fewer than this.
    static let compactionThreshold = 1024

    init() { storage = [] }
    init(_ entries: [Entry]) { storage = entries }

    var startIndex: Int { 0 }
    var endIndex: Int { storage.count - head }

    subscript(position: Int) -> Entry {
        get {
            precondition(position >= 0 && position < endIndex, "window index out of range")
            return storage[head + position]
        }
        set {
            precondition(position >= 0 && position < endIndex, "window index out of range")
            storage[head + position] = newValue
        }
    }

    mutating func append(_ entry: Entry) { storage.append(entry) }

    mutating func reserveCapacity(_ count: Int) { storage.reserveCapacity(head + count) }

    /// Drops the first `k` entries (the start moved over them).
    mutating func removeFirst(_ k: Int) {
        precondition(k >= 0 && k <= count, "cannot drop \(k) of \(count) window entries")
        head += k
        compact()
    }

    mutating func removeLast(_ k: Int = 1) {
        precondition(k >= 0 && k <= count, "cannot drop \(k) of \(count) window entries")
        storage.removeLast(k)
        compact()
    }

    /// Moves the live entries down once the dropped ones are half of the storage.
    private mutating func compact() {
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= Self.compactionThreshold && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
    }

    mutating func removeAll() {
        storage.removeAll()
        head = 0
    }

    /// Entries held in memory, dropped ones included: for tests of the bound.
    var storedCount: Int { storage.count }

    static func == (a: ShareWindow, b: ShareWindow) -> Bool { a.elementsEqual(b) }
}

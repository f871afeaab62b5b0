/// The entries of a share partition's window, one per offset from its start offset on
/// (`window[offset - startOffset]`), indexed from 0.
///
/// Two things keep it cheap whatever sits at its start:
/// - The start moves over finished records one acknowledgement at a time; an array would move
///   every entry behind them each time (a window of 100,000 delayed jobs is 4 MB, moved per
///   acknowledgement). Here the front is dropped by counting it (`head`): the dropped entries
///   stay in `storage` until they are at least half of it (and over `compactionThreshold`),
///   then the live ones move down once. Dropping is amortized O(1).
/// - One record that stays unfinished (a job delayed until tomorrow, a long job renewing its
///   lock) holds the start, and every record after it stays in the window. Finished records
///   (acknowledged or archived) are never handed out again and need nothing but that, so they
///   are *cut*: `cutFinished` drops their entries and keeps the positions of the others
///   (`positions`). A cut position reads as `cutEntry` (acknowledged: an archived record cut
///   reads so too, and its delivery count is not kept). The memory a window takes follows the
///   records it keeps, not the distance from its start to its end: once they are under a
///   quarter of its storage's capacity (over `shrinkThreshold`), the storage is given back
///   (`shrinkIfSparse`), so a window that drained does not keep its peak.
///
/// Positions in `positions` are absolute: position `p` of the window is `base + p`. While
/// nothing is cut, the kept entries are exactly `base..<end` and an entry is found by
/// arithmetic; otherwise by binary search. Walks over the window go through `kept`
/// (physical indices) so they never visit cut positions one by one.
///
/// Concurrency: a value, owned with its `SharePartition` by `ShareCoordinator`'s mutex.
struct ShareWindow: RandomAccessCollection, MutableCollection, Sendable, Equatable {
    typealias Entry = SharePartition.Entry

    /// Kept entries in position order, live from `head` on.
    private var storage: [Entry] = []
    /// The absolute position of each entry of `storage`.
    private var positions: [Int] = []
    /// Dropped entries at the front of `storage`.
    private var head = 0
    /// The absolute position of index 0, and of `endIndex`.
    private var base = 0
    private var end = 0

    /// What a cut position reads as: finished, as acknowledged.
    static let cutEntry = Entry(state: .acknowledged, deliveryCount: 1)

    /// Dropped entries are kept (not moved over) while fewer than this.
    static let compactionThreshold = 1024
    /// Storage of at most this capacity is kept however little it holds.
    static let shrinkThreshold = 4096

    init() {}
    init(_ entries: [Entry]) {
        for entry in entries { append(entry) }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { end - base }

    /// Entries held (not cut), and positions cut.
    var keptCount: Int { storage.count - head }
    var cutCount: Int { endIndex - keptCount }

    /// The physical indices of the kept entries, in position order.
    var kept: Range<Int> { head..<storage.count }
    /// The position (0-based, as the subscript) of the kept entry at physical index `k`.
    func position(kept k: Int) -> Int { positions[k] - base }
    func entry(kept k: Int) -> Entry { storage[k] }
    mutating func setEntry(kept k: Int, _ entry: Entry) { storage[k] = entry }

    /// The first physical index whose position is `p` or later (`kept.upperBound`: none).
    func keptIndex(atOrAfter p: Int) -> Int {
        if cutCount == 0 { return head + Swift.min(Swift.max(0, p), keptCount) }
        let target = base + p
        var low = head
        var high = storage.count
        while low < high {
            let mid = (low + high) / 2
            if positions[mid] < target { low = mid + 1 } else { high = mid }
        }
        return low
    }

    private func find(_ p: Int) -> Int? {
        if cutCount == 0 { return head + p }
        let k = keptIndex(atOrAfter: p)
        return k < storage.count && positions[k] == base + p ? k : nil
    }

    subscript(position: Int) -> Entry {
        get {
            precondition(position >= 0 && position < endIndex, "window index out of range")
            return find(position).map { storage[$0] } ?? Self.cutEntry
        }
        set {
            precondition(position >= 0 && position < endIndex, "window index out of range")
            if let k = find(position) {
                storage[k] = newValue
            } else if !newValue.isFinished {
                // A cut record is finished and stays so; only restoring damaged state writes
                // another state there. Kept again, at its place.
                let k = keptIndex(atOrAfter: position)
                storage.insert(newValue, at: k)
                positions.insert(base + position, at: k)
            }
        }
    }

    mutating func append(_ entry: Entry) {
        storage.append(entry)
        positions.append(end)
        end += 1
    }

    /// Appends `count` finished records, cut (a restored run of them).
    mutating func appendCut(_ count: Int) {
        precondition(count >= 0, "cannot cut \(count) records")
        end += count
    }

    /// Drops the first `k` positions (the start moved over them).
    mutating func removeFirst(_ k: Int) {
        precondition(k >= 0 && k <= count, "cannot drop \(k) of \(count) window entries")
        base += k
        while head < storage.count && positions[head] < base { head += 1 }
        compact()
    }

    mutating func removeLast(_ k: Int = 1) {
        precondition(k >= 0 && k <= count, "cannot drop \(k) of \(count) window entries")
        end -= k
        while storage.count > head, let last = positions.last, last >= end {
            storage.removeLast()
            positions.removeLast()
        }
        compact()
    }

    /// Moves the live entries down once the dropped ones are half of the storage.
    private mutating func compact() {
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            positions.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= Self.compactionThreshold && head * 2 >= storage.count {
            storage.removeFirst(head)
            positions.removeFirst(head)
            head = 0
        }
        shrinkIfSparse()
    }

    /// Gives memory back once the kept entries are under a quarter of the storage's capacity
    /// (over `shrinkThreshold`): they are copied into storage of twice their number. The
    /// copy is amortized against the drops or cuts that made the gap (at least half of what
    /// the last copy kept).
    private mutating func shrinkIfSparse() {
        guard Swift.max(storage.capacity, positions.capacity) > Self.shrinkThreshold,
            keptCount * 4 < Swift.max(storage.capacity, positions.capacity)
        else { return }
        let capacity = Swift.max(keptCount * 2, Self.shrinkThreshold / 2)
        var entries: [Entry] = []
        var places: [Int] = []
        entries.reserveCapacity(capacity)
        places.reserveCapacity(capacity)
        entries.append(contentsOf: storage[head...])
        places.append(contentsOf: positions[head...])
        storage = entries
        positions = places
        head = 0
    }

    mutating func removeAll() {
        storage.removeAll()
        positions.removeAll()
        head = 0
        base = 0
        end = 0
    }

    /// Cuts every kept finished entry (one pass over the kept ones). Returns how many.
    @discardableResult
    mutating func cutFinished() -> Int {
        var write = 0
        for read in head..<storage.count where !storage[read].isFinished {
            storage[write] = storage[read]
            positions[write] = positions[read]
            write += 1
        }
        let cut = storage.count - head - write
        storage.removeLast(storage.count - write)
        positions.removeLast(positions.count - write)
        head = 0
        shrinkIfSparse()
        return cut
    }

    /// Sets every position of `range` to `entry`. Cut positions stay cut when `entry` is
    /// finished (a restored run of them costs its kept entries, not its length).
    mutating func fill(_ range: Range<Int>, with entry: Entry) {
        precondition(range.lowerBound >= 0 && range.upperBound <= endIndex, "window range out of range")
        guard !range.isEmpty else { return }
        let from = keptIndex(atOrAfter: range.lowerBound)
        let to = keptIndex(atOrAfter: range.upperBound)
        if entry.isFinished || to - from == range.count {
            for k in from..<to { storage[k] = entry }
            return
        }
        storage.replaceSubrange(from..<to, with: repeatElement(entry, count: range.count))
        positions.replaceSubrange(from..<to, with: (base + range.lowerBound)..<(base + range.upperBound))
    }

    /// Calls `body` with each stretch of `from...through` in order: a kept entry alone
    /// (first == last), or a stretch of cut positions with `cutEntry`.
    func forEachStretch(from: Int, through: Int, _ body: (_ first: Int, _ last: Int, _ entry: Entry) -> Void) {
        guard from <= through else { return }
        var p = from
        var k = keptIndex(atOrAfter: from)
        while p <= through {
            if k < storage.count, positions[k] - base == p {
                body(p, p, storage[k])
                k += 1
                p += 1
            } else {
                let next = k < storage.count ? positions[k] - base : Int.max
                let last = Swift.min(next - 1, through)
                body(p, last, Self.cutEntry)
                p = last + 1
            }
        }
    }

    /// Entries held in memory, dropped ones included, and room for them: for tests of the bound.
    var storedCount: Int { storage.count }
    var capacity: Int { Swift.max(storage.capacity, positions.capacity) }

    /// Equal records: a finished record equals another finished one (a cut one keeps neither
    /// which of acknowledged or archived it was, nor its delivery count).
    static func == (a: ShareWindow, b: ShareWindow) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { x, y in x == y || (x.isFinished && y.isFinished) }
    }
}

/// The key hashes a per-key ordering walk of a share window has met (`SharePartition.searchWindow`):
/// a walk inserts one per unfinished keyed record, up to 22,000 of them past the prefix it keeps
/// (2,000 in flight and ten times that waiting behind their keys), on every fetch that finds
/// fewer records than it may take, and the prefix one per key of the records it holds. `Set<UInt32>` hashed each with the standard library's seeded
/// SipHash; this is an open-addressing table (linear probing, at most half full) indexed by
/// multiply-shift hashing.
///
/// Hostile keys: record keys are chosen by producers, and their hashes (FNV-1a) can be made to
/// share any bits. The multiplier is odd and random per process, which makes multiply-shift a
/// universal family (two distinct keys share a slot with probability about 2/table size,
/// whatever the keys), so no fixed set of keys piles into one run of the table.
struct KeyHashSet: Sendable {
    /// Slots hold key + 1 in 64 bits (0: empty), so every UInt32 is a key.
    private var slots: [UInt64]
    /// 64 - log2(slots.count): the hash is the product's top bits.
    private var shift: UInt64
    private(set) var count = 0
    /// `processMultiplier`, read once per set (a static read per key went through swift_once).
    private let multiplier = Self.processMultiplier

    private static let processMultiplier = UInt64.random(in: 1...UInt64.max) | 1

    /// Allocates nothing until the first insert (a walk without per-key ordering makes one).
    init(minimumCapacity: Int = 0) {
        slots = []
        shift = 64
        if minimumCapacity > 0 { resize(to: Self.size(for: minimumCapacity)) }
    }

    private static func size(for count: Int) -> Int {
        var size = 16
        while size < count * 2 { size *= 2 }
        return size
    }

    var isEmpty: Bool { count == 0 }

    @inline(__always) private func home(_ key: UInt32) -> Int {
        Int(truncatingIfNeeded: (UInt64(key) &* multiplier) &>> shift)
    }

    /// Where `key` is, or the empty slot it would take (slots must not be empty).
    @inline(__always) private func probe(_ key: UInt32) -> (index: Int, found: Bool) {
        let stored = UInt64(key) + 1
        let mask = slots.count - 1
        var i = home(key)
        while true {
            let slot = slots[i]
            if slot == stored { return (i, true) }
            if slot == 0 { return (i, false) }
            i = (i + 1) & mask
        }
    }

    func contains(_ key: UInt32) -> Bool {
        !slots.isEmpty && probe(key).found
    }

    /// Adds `key`; true when it was not there yet.
    @discardableResult
    mutating func insert(_ key: UInt32) -> Bool {
        if (count + 1) * 2 > slots.count { resize(to: Swift.max(16, slots.count * 2)) }
        let (i, found) = probe(key)
        guard !found else { return false }
        slots[i] = UInt64(key) + 1
        count += 1
        return true
    }

    private mutating func resize(to size: Int) {
        let old = slots
        slots = [UInt64](repeating: 0, count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
        count = 0
        for slot in old where slot != 0 { insert(UInt32(truncatingIfNeeded: slot - 1)) }
    }
}

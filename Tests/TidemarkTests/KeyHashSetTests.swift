import TestSupport
import Testing
@testable import Tidemark

/// The key-hash set of per-key ordering's window walks (`KeyHashSet`): the same answers as
/// `Set<UInt32>`, for any keys (0 and UInt32.max included, and keys alike in every low or high
/// bit, as hostile producers can make them), through its growth.
@Suite struct KeyHashSetTests {
    static func check(_ keys: [UInt32], probes: [UInt32]) {
        var set = KeyHashSet()
        var model = Set<UInt32>()
        for (i, key) in keys.enumerated() {
            #expect(set.insert(key) == model.insert(key).inserted, "insert \(key) at \(i)")
            #expect(set.count == model.count)
        }
        for key in keys + probes { #expect(set.contains(key) == model.contains(key), "contains \(key)") }
    }

    @Test func answersAsASetDoesForRandomKeys() {
        var rng = SeededGenerator(seed: 31)
        // Few distinct keys inserted many times, then many keys: growth from 16 slots up.
        let few = (0..<5_000).map { _ in UInt32.random(in: 0..<40, using: &rng) }
        let many = (0..<30_000).map { _ in UInt32.random(in: 0...UInt32.max, using: &rng) }
        let probes = (0..<5_000).map { _ in UInt32.random(in: 0...UInt32.max, using: &rng) }
        Self.check(few + many + [0, UInt32.max, 0, UInt32.max], probes: probes + [0, 1, UInt32.max, UInt32.max - 1])
    }

    @Test func answersAsASetDoesForKeysAlikeInTheirLowOrHighBits() {
        let highOnly = (0..<20_000).map { UInt32($0) << 16 }  // every low 16 bits zero
        let lowOnly = (0..<20_000).map { UInt32($0) }  // every high bit zero
        let strided = (0..<20_000).map { UInt32(truncatingIfNeeded: $0 &* 4_096) }
        Self.check(highOnly + lowOnly + strided, probes: (0..<1_000).map { UInt32($0) << 20 | 1 })
    }

    @Test func startsEmptyAndKeepsItsCapacityHint() {
        var set = KeyHashSet(minimumCapacity: 1_000)
        #expect(set.isEmpty && !set.contains(0) && !set.contains(UInt32.max))
        #expect(set.insert(7) && !set.insert(7) && set.count == 1 && !set.isEmpty)
    }
}

import TestSupport
import Testing
@testable import Tidemark

/// The share window's entries (`ShareWindow`): the same as an array under every change a
/// share partition makes, with its front dropped without moving what stays, and its memory
/// bounded by what it holds.
@Suite struct ShareWindowTests {
    typealias Entry = SharePartition.Entry

    static func entry(_ n: Int) -> Entry {
        Entry(state: n % 3 == 0 ? .acknowledged : .available, deliveryCount: Int16(n % 100), availableAtMs: Int64(n))
    }

    /// A seeded random walk of appends, drops at both ends, stores and clears, checked against
    /// an array after every step; the stored entries never exceed twice the live ones (or the
    /// live ones plus the compaction threshold).
    @Test func behavesAsAnArrayAndStaysBounded() async {
        var rng = SeededGenerator(seed: 9)
        var window = ShareWindow()
        var model: [Entry] = []
        var counter = 0
        var compactions = 0
        for step in 0..<60_000 {
            if step % 500 == 0 { await Task.yield() }
            let before = window.storedCount
            switch rng.next() % 100 {
            case 0..<55:
                for _ in 0..<Int(rng.next() % 8) {
                    counter += 1
                    window.append(Self.entry(counter))
                    model.append(Self.entry(counter))
                }
            case 55..<85:
                let k = model.isEmpty ? 0 : Int(rng.next() % UInt64(min(model.count, 6) + 1))
                window.removeFirst(k)
                model.removeFirst(k)
            case 85..<90:
                let k = model.isEmpty ? 0 : Int(rng.next() % UInt64(min(model.count, 3) + 1))
                window.removeLast(k)
                model.removeLast(k)
            case 90..<99:
                guard !model.isEmpty else { continue }
                let i = Int(rng.next() % UInt64(model.count))
                counter += 1
                window[i].deliveryCount = Int16(counter % 1000)
                model[i].deliveryCount = Int16(counter % 1000)
            default:
                if rng.next() % 20 == 0 {
                    window.removeAll()
                    model.removeAll()
                }
            }
            if window.storedCount < before && !model.isEmpty { compactions += 1 }
            #expect(window.count == model.count)
            #expect(window.storedCount <= max(2 * model.count, model.count + ShareWindow.compactionThreshold))
            if let first = model.first { #expect(window.first == first && window[0] == first) }
            #expect(window.last == model.last)
        }
        #expect(Array(window) == model)
        #expect(window == ShareWindow(model))
        #expect(compactions > 0)  // the walk reached the threshold and moved the live entries down
    }

    /// A window that drained gives its storage back (100,000 delayed jobs that came due and
    /// were done left 3 MB behind, in every window that had held them), whether its start
    /// moved over them, they were cut behind a record that holds it, or its end went back.
    @Test func aDrainedWindowGivesItsMemoryBack() {
        let entries = (0..<100_000).map(Self.entry)
        var front = ShareWindow(entries)
        #expect(front.capacity >= 100_000)
        for _ in 0..<100 { front.removeFirst(999) }
        #expect(front.capacity <= ShareWindow.shrinkThreshold)
        #expect(Array(front) == Array(entries[99_900...]))

        let done = Entry(state: .acknowledged, deliveryCount: 1)
        var held = ShareWindow([Entry(state: .available, deliveryCount: 0)] + Array(repeating: done, count: 100_000))
        #expect(held.cutFinished() == 100_000)
        #expect(held.keptCount == 1 && held.count == 100_001 && held.capacity <= ShareWindow.shrinkThreshold)
        #expect(held[0].state == .available && held[100_000] == ShareWindow.cutEntry)

        var back = ShareWindow(entries)
        for _ in 0..<99_990 { back.removeLast(1) }
        #expect(back.capacity <= ShareWindow.shrinkThreshold)
        #expect(Array(back) == Array(entries[..<10]))
    }

    /// The start moving one record at a time over a large window: the entries behind it stay
    /// where they are until the dropped ones are half of the storage (an array moved all of
    /// them at every step: 100,000 entries, 4 MB per acknowledgement).
    @Test func droppingTheFrontOneAtATimeMovesNothingUntilCompaction() {
        let entries = (0..<100_000).map(Self.entry)
        var window = ShareWindow(entries)
        for k in 1...49_999 {
            window.removeFirst(1)
            #expect(window.storedCount == 100_000, "compacted after \(k) drops")
            if k % 10_000 == 0 { #expect(window[0] == entries[k] && window.count == 100_000 - k) }
        }
        window.removeFirst(1)  // half dropped: the rest moves down once
        #expect(window.storedCount == 50_000 && Array(window) == Array(entries[50_000...]))
    }

    /// A share partition whose start moves over a large window one acknowledgement at a time
    /// keeps every record's state, and hands out what follows.
    @Test func aPartitionAcknowledgingOneAtATimeOverALargeWindow() {
        var settings = ShareSettings()
        settings.maxInFlight = 20_000
        var p = SharePartition(startOffset: 0)
        let offsets = p.candidates(max: 20_000, logEnd: 20_000, settings: settings, nowMs: 0)
        #expect(p.acquire(offsets, member: "w", nowMs: 0, settings: settings).count == 1)
        for offset in Int64(0)..<15_000 {
            #expect(p.acknowledge([ShareAcknowledgement(offset, .accept)], member: "w", nowMs: 1, settings: settings,
                                  allowRenew: false) == nil)
            #expect(p.startOffset == offset + 1)
        }
        #expect(p.entries.count == 5_000 && p.entries.storedCount <= 10_000)
        #expect(p.entries.allSatisfy { $0.state == .acquired && $0.deliveryCount == 1 })
        #expect(p.held(by: "w") == 5_000 && p.holdsAny)
        #expect(p.acknowledge([ShareAcknowledgement(first: 15_000, last: 19_999, types: [.release])], member: "w", nowMs: 2,
                              settings: settings, allowRenew: false) == nil)
        #expect(!p.holdsAny)
        let again = p.candidates(max: 10, logEnd: 20_000, settings: settings, nowMs: 60_000)
        #expect(again == Array(15_000..<15_010))
    }
}

import Foundation
import TestSupport
import Testing
@testable import Tidemark

/// The search for what a fetch may take (`SharePartition.searchWindow`), which remembers what it
/// learned of the window between fetches (a floor; with per-key ordering a prefix of records
/// that change only by time or an event): through a random life of a partition, what it finds
/// and counts is always what a walk of the whole window finds and counts.
@Suite struct ShareWindowSearchTests {
    /// What a search finds, by walking every record of the window from its start: the offsets
    /// that can go out now (at most `max`), and when fewer were found, the records in flight
    /// and those due but behind an unfinished one of their key; with per-key ordering, the
    /// earliest delay of a record its key does not hold back, among the records walked.
    static func walkingAll(_ p: SharePartition, max: Int, nowMs: Int64, keyOrdering: Bool)
        -> (offsets: [Int64], inFlight: Int, blocked: Int, nextDueMs: Int64?)
    {
        var keys = Set<UInt32>()
        var offsets: [Int64] = []
        var inFlight = 0
        var blocked = 0
        var nextDue = Int64.max
        for offset in p.startOffset..<p.endOffset {
            let entry = p.entry(at: offset)!
            guard entry.state == .available || entry.state == .acquired else { continue }
            let first = !keyOrdering || (entry.keyHash.map { keys.insert($0).inserted } ?? true)
            if entry.state == .acquired {
                inFlight += 1
            } else if entry.availableAtMs > nowMs {
                if first { nextDue = min(nextDue, entry.availableAtMs) }
            } else if !first {
                blocked += 1
            } else {
                inFlight += 1
                offsets.append(offset)
                if offsets.count == max { break }
            }
        }
        return (offsets, inFlight, blocked, nextDue < .max ? nextDue : nil)
    }

    /// A record entering the window is first of its key when no unfinished record of its key
    /// is in the window.
    static func keyIsFree(_ p: SharePartition, _ key: UInt32) -> Bool {
        !(p.startOffset..<p.endOffset).contains { p.entry(at: $0)!.keyHash == key && !p.entry(at: $0)!.isFinished }
    }

    /// Jobs of a few keys (and some without one), a third delayed, fetched by three members,
    /// every kind of acknowledgement, lock expiries, undone acquisitions, retention, a log cut
    /// back, offsets reset, the wall clock stepping, finished records cut: after every change,
    /// the search matches the walk. With and without per-key ordering.
    @Test(arguments: [true, false]) func aSearchFindsWhatAWalkOfTheWholeWindowFinds(keyOrdering: Bool) async {
        var rng = SeededGenerator(seed: 20261207)
        var settings = ShareSettings()
        settings.deliveryCountLimit = 3
        settings.deadLetters = true
        settings.lockDurationMs = 1_000
        settings.redeliveryBackoffMs = 300
        settings.keyOrdering = keyOrdering
        var p = SharePartition(startOffset: 0)
        var now: Int64 = 0
        var logStart: Int64 = 0
        var logEnd: Int64 = 0
        let members = ["a", "b", "c"]
        var searches = 0
        var prefixesUsed = 0
        for step in 0..<6_000 {
            if step % 50 == 0 { await Task.yield() }
            now += Int64.random(in: 0...150, using: &rng)
            if Int.random(in: 0..<6, using: &rng) == 0 { p.shedFinished(atLeast: 1) }
            switch Int.random(in: 0..<12, using: &rng) {
            case 0, 1, 2:
                // Records enter the window as a fetch reads them: after a search, each claims
                // its key (first of it, or behind one).
                var found = p.searchWindow(max: Int.max, settings: settings, nowMs: now)
                var claimedHere = Set<UInt32>()
                let metas = (0..<Int.random(in: 1...8, using: &rng)).map { i in
                    let offset = p.endOffset + Int64(i)
                    let key: UInt32? = Int.random(in: 0..<6, using: &rng) == 0 ? nil : UInt32.random(in: 0..<5, using: &rng)
                    let delay: Int64 = offset % 3 != 0 ? 0 : Bool.random(using: &rng) ? now + 10_000_000 : now + Int64.random(in: 1...5_000, using: &rng)
                    return SharePartition.RecordMeta(offset: offset, keyHash: key, deliverAtMs: delay)
                }
                if keyOrdering {
                    for meta in metas {
                        guard let key = meta.keyHash else { continue }
                        let expected = Self.keyIsFree(p, key) && !claimedHere.contains(key)
                        claimedHere.insert(key)
                        #expect(p.claimKey(key, in: &found) == expected, "step \(step)")
                    }
                }
                logEnd = max(logEnd, p.endOffset + Int64(metas.count))
                p.extend(with: metas)
            case 3, 4, 5:
                let max = Int.random(in: 1...5, using: &rng)
                let reference = Self.walkingAll(p, max: max, nowMs: now, keyOrdering: keyOrdering)
                if p.search.keyed != nil { prefixesUsed += 1 }
                let found = p.searchWindow(max: max, settings: settings, nowMs: now)
                searches += 1
                #expect(found.offsets == reference.offsets, "step \(step)")
                if found.offsets.count < max {
                    #expect(found.inFlight == reference.inFlight && found.blocked == reference.blocked, "step \(step)")
                }
                if keyOrdering { #expect(p.keyedNextDueMs == reference.nextDueMs, "step \(step)") }
                // What a fetch then takes, past the window's end too.
                let offsets = p.candidates(max: max, logEnd: logEnd, settings: settings, nowMs: now)
                #expect(Array(offsets.prefix(found.offsets.count)) == found.offsets, "step \(step)")
                _ = p.acquire(offsets, member: members.randomElement(using: &rng)!, nowMs: now, settings: settings)
            case 6, 7:
                let member = members.randomElement(using: &rng)!
                let held = (p.startOffset..<p.endOffset).filter {
                    p.entry(at: $0)?.state == .acquired && p.entry(at: $0)?.owner == p.ownerNumber(member)
                }
                guard !held.isEmpty else { continue }
                let types: [ShareAcknowledgeType] = [.accept, .accept, .accept, .release, .reject, .gap, .renew]
                let acks = held.shuffled(using: &rng).prefix(Int.random(in: 1...held.count, using: &rng)).sorted()
                    .map { ShareAcknowledgement($0, types.randomElement(using: &rng)!) }
                _ = p.acknowledge(acks, member: member, nowMs: now, settings: settings, allowRenew: true)
            case 8:
                p.expireLocks(nowMs: now, settings: settings)
            case 9:
                if Bool.random(using: &rng) {
                    let member = members.randomElement(using: &rng)!
                    let held = (p.startOffset..<p.endOffset).filter { p.entry(at: $0)?.owner == p.ownerNumber(member) && p.entry(at: $0)?.state == .acquired }
                    p.unacquire(Array(held.suffix(2)), member: member)
                } else {
                    p.releaseAll(held: members.randomElement(using: &rng)!, settings: settings, uncounted: Bool.random(using: &rng))
                }
            case 10:
                // The wall clock stepped: delays of jobs never delivered move.
                if Int.random(in: 0..<10, using: &rng) == 0 { _ = p.shiftDelays(by: Int64.random(in: -4_000...4_000, using: &rng)) }
            default:
                if Int.random(in: 0..<4, using: &rng) == 0 { logStart = min(logEnd, logStart + Int64.random(in: 0...3, using: &rng)) }
                if Int.random(in: 0..<40, using: &rng) == 0 { logEnd = max(logStart, logEnd - Int64.random(in: 0...4, using: &rng)) }
                if Int.random(in: 0..<80, using: &rng) == 0 { p.reset(to: max(0, p.startOffset + Int64.random(in: -5...8, using: &rng))) }
                p.follow(logStart: logStart, logEnd: logEnd)
            }
        }
        #expect(searches > 1_000)
        // (The prefix was there to use, not forgotten every time.)
        #expect(!keyOrdering || prefixesUsed > searches / 4, "\(prefixesUsed) of \(searches)")
    }

    /// Delayed jobs in front of due ones, per-key ordering: a search takes the due ones, and
    /// keeps what it learned of the delayed ones (a prefix up to the first job it hands out);
    /// an acknowledgement after it leaves the prefix as it is, the job behind a delayed one of
    /// its key waits, and the prefix is forgotten when the first delay ends.
    @Test func delayedJobsInFrontOfDueOnesAreWalkedOnce() {
        var settings = ShareSettings()
        settings.keyOrdering = true
        var p = SharePartition(startOffset: 0)
        // 0..<1000: keys 0..<1000, due at 60 s; 1000..<1010: keys 2000.., due now; 1010: key 5, due now.
        p.extend(with: (0..<1_000).map { SharePartition.RecordMeta(offset: $0, keyHash: UInt32($0), deliverAtMs: 60_000) })
        p.extend(with: (1_000..<1_010).map { SharePartition.RecordMeta(offset: $0, keyHash: UInt32($0 + 1_000), deliverAtMs: 0) })
        p.extend(with: [SharePartition.RecordMeta(offset: 1_010, keyHash: 5, deliverAtMs: 0)])
        let first = p.searchWindow(max: 4, settings: settings, nowMs: 1_000)
        #expect(first.offsets == [1_000, 1_001, 1_002, 1_003])
        #expect(p.search.keyed?.end == 1_000 && p.search.keyed?.keys.count == 1_000 && p.search.keyed?.validUntilMs == 60_000)
        #expect(p.keyedNextDueMs == 60_000)
        _ = p.acquire(first.offsets, member: "a", nowMs: 1_000, settings: settings)
        #expect(p.acknowledge([ShareAcknowledgement(first: 1_000, last: 1_003, types: [.accept])], member: "a", nowMs: 1_001, settings: settings, allowRenew: false) == nil)
        #expect(p.search.keyed?.end == 1_000)
        let second = p.searchWindow(max: 100, settings: settings, nowMs: 2_000)
        // Key 5's job waits behind offset 5, delayed.
        #expect(second.offsets == Array(1_004..<1_010) && second.blocked == 1)
        // The first prefix ends at the first job held; the second goes on over what was taken
        // and acknowledged, to the first job that can go out.
        #expect(p.search.keyed?.end == 1_000 && p.search.keyedHeld?.end == 1_004)
        // Taken: the second prefix goes on over them; one acknowledged forgets the second only.
        _ = p.acquire(second.offsets, member: "b", nowMs: 2_000, settings: settings)
        #expect(p.searchWindow(max: 100, settings: settings, nowMs: 2_001).offsets.isEmpty)
        #expect(p.search.keyedHeld?.end == 1_011 && p.search.keyedHeld?.acquired == 6)
        #expect(p.acknowledge([ShareAcknowledgement(1_004, .accept)], member: "b", nowMs: 2_002, settings: settings, allowRenew: false) == nil)
        #expect(p.search.keyed?.end == 1_000 && p.search.keyedHeld == nil)
        // The delays end: everything is searched again.
        let later = p.searchWindow(max: 2_000, settings: settings, nowMs: 60_000)
        #expect(later.offsets.count == 1_000 && later.offsets.first == 0 && !later.offsets.contains(1_010))
    }
}

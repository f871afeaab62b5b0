import TestSupport
import Testing
import TidemarkStorage
@testable import Tidemark

/// Finished records cut from a share window's memory (`ShareWindow.cutFinished`): the window
/// reads the same at every position, keeps only what is not finished, and one
/// record that holds the start (a job delayed until tomorrow, a long job renewing its lock)
/// no longer stops the partition once its window has filled.
@Suite struct ShareWindowCutTests {
    typealias Entry = SharePartition.Entry

    static func entry(_ n: Int) -> Entry {
        Entry(state: n % 3 == 0 ? .acknowledged : n % 7 == 0 ? .archived : .available, deliveryCount: Int16(n % 100), availableAtMs: Int64(n))
    }

    /// What a window must read as at a position: a finished record is finished (a cut one keeps
    /// neither which of acknowledged or archived it was, nor its delivery count).
    static func same(_ a: Entry, _ b: Entry) -> Bool { a == b || (a.isFinished && b.isFinished) }

    /// A seeded random walk of every change a window takes, cuts included, checked against an
    /// array after every step: the same count, the same record at sampled positions, the kept
    /// positions in order; after a cut, only unfinished records kept; every 500 steps
    /// the whole window, its stretches, and its memory bound.
    @Test func readsAsAnArrayWhateverIsCut() async {
        var rng = SeededGenerator(seed: 31)
        var window = ShareWindow()
        var model: [Entry] = []
        var counter = 0
        var cuts = 0
        for step in 0..<40_000 {
            if step % 200 == 0 { await Task.yield() }
            switch rng.next() % 100 {
            case 0..<40:
                for _ in 0..<Int(rng.next() % 8) {
                    counter += 1
                    window.append(Self.entry(counter))
                    model.append(Self.entry(counter))
                }
            case 40..<45:
                let n = Int(rng.next() % 50)
                window.appendCut(n)
                model.append(contentsOf: repeatElement(ShareWindow.cutEntry, count: n))
            case 45..<65:
                let k = model.isEmpty ? 0 : Int(rng.next() % UInt64(min(model.count, 12) + 1))
                window.removeFirst(k)
                model.removeFirst(k)
            case 65..<70:
                let k = model.isEmpty ? 0 : Int(rng.next() % UInt64(min(model.count, 5) + 1))
                window.removeLast(k)
                model.removeLast(k)
            case 70..<85:
                // A store anywhere: acknowledging, or (on a cut position: restoring damage)
                // making a record unfinished again.
                guard !model.isEmpty else { continue }
                let i = Int(rng.next() % UInt64(model.count))
                counter += 1
                window[i] = Self.entry(counter)
                model[i] = Self.entry(counter)
            case 85..<92:
                guard !model.isEmpty else { continue }
                let from = Int(rng.next() % UInt64(model.count))
                let to = min(model.count, from + Int(rng.next() % 40))
                counter += 1
                let value = Self.entry(counter)
                window.fill(from..<to, with: value)
                for i in from..<to { model[i] = value }
            case 92..<99:
                let kept = window.keptCount
                let cut = window.cutFinished()
                cuts += cut
                #expect(cut == kept - window.keptCount)
                #expect(window.keptCount == model.filter { !$0.isFinished }.count, "step \(step)")
            default:
                if rng.next() % 20 == 0 {
                    window.removeAll()
                    model.removeAll()
                }
            }
            #expect(window.count == model.count, "step \(step)")
            if !model.isEmpty {
                let i = Int(rng.next() % UInt64(model.count))
                #expect(Self.same(window[i], model[i]), "step \(step) position \(i)")
                #expect(Self.same(window[0], model[0]) && Self.same(window[model.count - 1], model[model.count - 1]))
            }
            guard step % 500 == 0 || step == 39_999 else { continue }
            #expect(zip(window, model).allSatisfy(Self.same), "step \(step)")
            var positions: [Int] = []
            for k in window.kept {
                positions.append(window.position(kept: k))
                #expect(window.entry(kept: k) == window[window.position(kept: k)])
            }
            #expect(positions == positions.sorted() && Set(positions).count == positions.count)
            #expect(window.storedCount <= max(2 * window.keptCount, window.keptCount + ShareWindow.compactionThreshold))
            // Stretches cover the window in order: kept entries one by one, cut runs whole.
            var next = 0
            window.forEachStretch(from: 0, through: model.count - 1) { first, last, entry in
                #expect(first == next && last >= first)
                for i in first...last { #expect(Self.same(entry, model[i])) }
                if first < last { #expect(entry == ShareWindow.cutEntry) }
                next = last + 1
            }
            #expect(next == model.count)
        }
        #expect(cuts > 10_000)
    }

    /// One record holds the start (delayed a day, or held by a worker renewing its lock)
    /// while 100,000 records after it go out and are accepted (a third rejected), 500 at a
    /// time: the start stays,
    /// the window spans them all, and keeps a few thousand entries; the backlog and the
    /// persisted state (a snapshot of a few runs) stay right, and once the held record is
    /// accepted the start jumps past everything.
    @Test(arguments: [false, true]) func aRecordHoldingTheStartStopsNothing(renewed: Bool) async throws {
        var settings = ShareSettings()
        settings.maxWindow = 5_000
        let day: Int64 = 86_400_000
        var p = SharePartition(startOffset: 0)
        p.extend(with: [SharePartition.RecordMeta(offset: 0, keyHash: nil, deliverAtMs: renewed ? 0 : day)])
        if renewed {
            let first = p.candidates(max: 1, logEnd: 1, settings: settings, nowMs: 0)
            #expect(first == [0])
            _ = p.acquire(first, member: "long", nowMs: 0, settings: settings)
        }
        let total: Int64 = 100_000
        var now: Int64 = 1
        while p.endOffset < total + 1 {
            await Task.yield()
            let metas = (p.endOffset..<min(total + 1, p.endOffset + 500)).map {
                SharePartition.RecordMeta(offset: $0, keyHash: nil, deliverAtMs: 0)
            }
            // The window's room, as a fetch counts it: entries kept, not its length.
            #expect(p.entries.keptCount + metas.count <= settings.maxWindow)
            p.extend(with: metas)
            let offsets = p.candidates(max: 500, logEnd: p.endOffset, settings: settings, nowMs: now)
            #expect(offsets == metas.map(\.offset))
            _ = p.acquire(offsets, member: "w", nowMs: now, settings: settings)
            if renewed && now % 20 == 0 {
                #expect(p.acknowledge([ShareAcknowledgement(0, .renew)], member: "long", nowMs: now, settings: settings, allowRenew: true) == nil)
            }
            #expect(p.acknowledge([ShareAcknowledgement(first: offsets[0], last: offsets.last!, types: [now % 3 == 0 ? .reject : .accept])], member: "w",
                                  nowMs: now, settings: settings, allowRenew: false) == nil)
            now += 1
        }
        #expect(p.startOffset == 0 && p.endOffset == total + 1)
        #expect(p.entries.keptCount <= 2 * ShareWindow.compactionThreshold + 500, "\(p.entries.keptCount) entries kept")
        #expect(p.entries.storedCount <= 2 * ShareWindow.compactionThreshold + 1_000)
        #expect(p.backlog(logEnd: total + 1) == 1 && p.finishedCount == Int(total))
        let counts = p.counts(nowMs: now)
        #expect(counts.acknowledged + counts.archived == Int(total) && counts.acquired == (renewed ? 1 : 0) && counts.delayed == (renewed ? 0 : 1))

        // Persisted: a snapshot of a few runs, restored the same; a delta over the whole
        // window (the held record and the last acknowledgement) applies without walking it.
        let snapshot = ShareStateStore.encodeValue(p)
        #expect(snapshot.count < 200, "\(snapshot.count) bytes")
        let restored = try #require(ShareStateStore.decode(snapshot, onto: nil))
        #expect(restored.startOffset == 0 && restored.endOffset == total + 1 && restored.entries.keptCount == 1)
        #expect(ShareStateDeltaTests.persisted(restored) == ShareStateDeltaTests.persisted(p))
        p.markWritten()
        let lastHeld: Int64
        if renewed {
            lastHeld = 0
        } else {
            // The delayed record comes due and goes out.
            #expect(p.candidates(max: 10, logEnd: total + 1, settings: settings, nowMs: day) == [0])
            _ = p.acquire([0], member: "w", nowMs: day, settings: settings)
            lastHeld = 0
        }
        #expect(p.acknowledge([ShareAcknowledgement(lastHeld, .accept)], member: renewed ? "long" : "w", nowMs: renewed ? now : day,
                              settings: settings, allowRenew: false) == nil)
        #expect(p.startOffset == total + 1 && p.entries.isEmpty && p.backlog(logEnd: total + 1) == 0)
        let delta = ShareStateStore.encodeDelta(p)
        let replayed = try #require(ShareStateStore.decode(delta, onto: restored))
        #expect(ShareStateDeltaTests.persisted(replayed) == ShareStateDeltaTests.persisted(p))
    }

    /// After a restart, a window reads its records' keys and delays again only where it has
    /// unfinished ones: ranges joined across gaps under 1,024, not its whole length.
    @Test func aRestoredWindowReadsOnlyAroundItsUnfinishedRecords() {
        var window = ShareWindow()
        window.append(Entry(state: .available, deliveryCount: 0))  // 0: held
        window.appendCut(99_999)
        for _ in 0..<10 { window.append(Entry(state: .available, deliveryCount: 1)) }  // 100,000-100,009
        window.appendCut(490)
        window.append(Entry(state: .archived, deliveryCount: 5))  // 100,500: finished, not read
        window.append(Entry(state: .available, deliveryCount: 0))  // 100,501: joined (gap 491)
        window.appendCut(99_498)
        window.append(Entry(state: .available, deliveryCount: 0))  // 200,000
        let p = SharePartition(startOffset: 0, window: window)
        #expect(p.endOffset == 200_001)
        #expect(p.unfinishedRanges() == [0..<1, 100_000..<100_502, 200_000..<200_001])
    }

    /// A delta that adds records: finished runs among them are cut as they enter (a window that
    /// grew by millions of finished records behind a held one since its last write costs
    /// nothing); unfinished ones are bounded.
    @Test func aDeltaAddsFinishedRunsCut() throws {
        var p = SharePartition(startOffset: 0)
        p.extend(with: [SharePartition.RecordMeta(offset: 0, keyHash: nil, deliverAtMs: 86_400_000)])
        let base = try #require(ShareStateStore.decode(ShareStateStore.encodeValue(p), onto: nil))
        var grown = base
        let applied = grown.applyDelta(
            start: 0, end: 5_000_001, runs: [.init(first: 1, last: 4_999_990, state: .acknowledged, count: 1),
                                             .init(first: 4_999_991, last: 4_999_999, state: .archived, count: 5)],
            deadLetters: ([], 0, -1, 0))
        #expect(applied)
        #expect(grown.endOffset == 5_000_001 && grown.entries.keptCount == 2 && grown.backlog(logEnd: 5_000_001) == 2)
        #expect(grown.entry(at: 5_000_000)?.state == .available && grown.entry(at: 2_000_000)?.isFinished == true)
        var refused = base
        let tooMany = refused.applyDelta(
            start: 0, end: 1_000_002, runs: [], deadLetters: ([], 0, -1, 0))
        #expect(!tooMany)
        #expect(refused == base)
    }

    /// What a window keeps per record: 24 bytes of entry and 8 of position.
    @Test func anEntryTakesTwentyFourBytes() {
        #expect(MemoryLayout<SharePartition.Entry>.stride == 24)
        var entry = Entry(state: .available, deliveryCount: 1, availableAtMs: 500)
        #expect(entry.availableAtMs == 500)
        entry.state = .acquired
        entry.lockExpiryMs = 9_000
        #expect(entry.lockExpiryMs == 9_000 && Entry(state: .acquired, deliveryCount: 1, lockExpiryMs: 9_000).lockExpiryMs == 9_000)
    }

    /// Restoring a window: acknowledged runs of any length cost nothing; other records are
    /// entries, at most 1,000,000 (a damaged snapshot is refused, not allocated).
    @Test func restoredAcknowledgedRunsAreCutAndOtherRecordsBounded() throws {
        func snapshot(_ runs: [(Int64, Int64, ShareRecordState)]) -> [UInt8] {
            // Snapshot v1: version, start, runs (first, last, state, delivery count), dead-letter fields.
            var writer = ByteWriter()
            writer.writeInteger(Int16(1))
            writer.writeInteger(runs[0].0)
            writer.writeInteger(Int32(runs.count))
            for (first, last, state) in runs {
                writer.writeInteger(first)
                writer.writeInteger(last)
                writer.writeInteger(state.rawValue)
                writer.writeInteger(Int16(1))
            }
            writer.writeInteger(Int64(-1))
            writer.writeInteger(Int32(0))
            writer.writeInteger(Int64(0))
            writer.writeInteger(Int32(0))
            return writer.bytes
        }
        let long = try #require(ShareStateStore.decode(
            snapshot([(5, 5, .available), (6, 50_000_000_005, .acknowledged), (50_000_000_006, 50_000_000_009, .available)]), onto: nil))
        #expect(long.startOffset == 5 && long.endOffset == 50_000_000_010 && long.entries.keptCount == 5)
        #expect(long.entry(at: 1_000_000)?.state == .acknowledged && long.entry(at: 50_000_000_007)?.state == .available)
        #expect(long.backlog(logEnd: 50_000_000_010) == 5)
        #expect(ShareStateStore.decode(snapshot([(0, 1_000_000, .available)]), onto: nil) == nil)
        #expect(ShareStateStore.decode(snapshot([(0, 999_999, .available)]), onto: nil)?.entries.keptCount == 1_000_000)
    }
}

import Foundation
import TestSupport
import Testing
import TidemarkStorage
@testable import Tidemark

/// The share-state log's deltas (`ShareStateStore`, value v2): what a replay of snapshots and
/// deltas rebuilds is what was persisted, and a window that stays long (delayed jobs) no
/// longer makes every acknowledgement rewrite it.
@Suite struct ShareStateDeltaTests {
    /// What a restart keeps of a partition: bounds, (state, delivery count) per record with
    /// locks dropped, dead letters. (A finished prefix counts as finished: a restore moves the
    /// start over it, a window moved by the log start may still begin with one.)
    static func persisted(_ p: SharePartition) -> String {
        // (A finished record cut keeps neither which of acknowledged or archived it was, nor its
        // delivery count.)
        // (A held record is written as it was before its delivery: available, one fewer.)
        var entries = p.entries.map {
            $0.isFinished ? "finished" : $0.state == .acquired ? "available.\(max(0, $0.deliveryCount - 1))" : "\($0.state).\($0.deliveryCount)"
        }
        let done = p.entries.prefix { $0.state == .acknowledged || $0.state == .archived }.count
        entries.removeFirst(done)
        return "\(p.startOffset + Int64(done))..<\(p.endOffset) \(entries) \(p.deadLetters) \(p.deadLetterSequence) \(p.deadLetterProducerId) \(p.deadLettered)"
    }

    /// `SharePartition.candidates` without per-key ordering, by walking every record.
    static func candidatesWalkingAll(_ p: SharePartition, max: Int, logEnd: Int64, settings: ShareSettings, nowMs: Int64) -> [Int64] {
        var out = (p.startOffset..<p.endOffset).filter {
            p.entry(at: $0)!.state == .available && p.entry(at: $0)!.availableAtMs <= nowMs
        }.prefix(max).map { $0 }
        var offset = p.endOffset
        while offset < Swift.min(logEnd, p.startOffset + Int64(settings.maxInFlight)) && out.count < max {
            out.append(offset)
            offset += 1
        }
        return out
    }

    /// A random life of one partition (fetches by three members, every kind of acknowledgement
    /// renewals included, lock expiries, undone acquisitions, retention, a log cut back,
    /// offsets reset, delayed records entering the window, dead letters), written as a snapshot
    /// or a delta at random points (a snapshot where a delta cannot say it, as the coordinator
    /// does): replaying the records from the start always gives back what was persisted, deltas
    /// stay small, and what a fetch uses (candidates, counts) always matches a walk of the window.
    /// Twice: as is, and with finished records cut from the window at random steps.
    @Test(arguments: [false, true]) func replayingSnapshotsAndDeltasGivesBackThePersistedState(cutting: Bool) async throws {
        var rng = SeededGenerator(seed: 20261201)
        var settings = ShareSettings()
        settings.deliveryCountLimit = 3
        settings.deadLetters = true
        settings.lockDurationMs = 1_000
        settings.redeliveryBackoffMs = 300  // released records wait before they are candidates again
        var p = SharePartition(startOffset: 0)
        var records: [[UInt8]] = []
        var now: Int64 = 0
        var logStart: Int64 = 0
        var logEnd: Int64 = 0
        var deltas = 0
        var deltaBytes = 0
        var snapshotBytesInstead = 0
        var replayed: SharePartition? = nil
        for step in 0..<3_000 {
            // Seconds of CPU in a debug build: the other tests get the cooperative pool's
            // threads (two here) now and then (see docs/ARCHITECTURE.md, Tests).
            if step % 20 == 0 { await Task.yield() }
            now += Int64.random(in: 0...200, using: &rng)
            let members = ["a", "b", "c"]
            // Now and then, finished records are cut from the window's memory (as a long
            // window does once they are half of it): every change and every write must read
            // them as before.
            if cutting && Int.random(in: 0..<5, using: &rng) == 0 { p.shedFinished(atLeast: 1) }
            switch Int.random(in: 0..<10, using: &rng) {
            case 0, 1:
                // Records enter the window; every third one is delayed far ahead.
                // (Some far ahead, some due within the run.)
                let metas = (0..<Int.random(in: 1...6, using: &rng)).map { i in
                    SharePartition.RecordMeta(
                        offset: p.endOffset + Int64(i), keyHash: nil,
                        deliverAtMs: (p.endOffset + Int64(i)) % 3 != 0 ? 0 : Bool.random(using: &rng) ? now + 10_000_000 : now + Int64.random(in: 1...20_000, using: &rng))
                }
                logEnd = max(logEnd, p.endOffset + Int64(metas.count))
                p.extend(with: metas)
            case 2, 3:
                // What a fetch may take: the same as walking the whole window (the walk starts
                // at a floor kept between fetches).
                let max = Int.random(in: 1...4, using: &rng)
                let offsets = p.candidates(max: max, logEnd: logEnd, settings: settings, nowMs: now)
                #expect(offsets == Self.candidatesWalkingAll(p, max: max, logEnd: logEnd, settings: settings, nowMs: now), "step \(step)")
                // The in-flight cap's count without a walk (as a fetch takes it): when fewer than
                // asked can go out of the window, those are all that can, and with the held ones
                // they are what a walk counts.
                var probe = p
                let due = probe.candidates(max: max, logEnd: p.endOffset, settings: settings, nowMs: now).count
                if due < max {
                    #expect(p.heldTotal + due == ShareWindowSearchTests.walkingAll(p, max: .max, nowMs: now, keyOrdering: false).inFlight, "step \(step)")
                }
                _ = p.acquire(offsets, member: members.randomElement(using: &rng)!, nowMs: now, settings: settings)
            case 4, 5, 6:
                let member = members.randomElement(using: &rng)!
                let held = (p.startOffset..<p.endOffset).filter {
                    p.entry(at: $0)?.state == .acquired && p.entry(at: $0)?.owner == p.ownerNumber(member)
                }
                guard !held.isEmpty else { continue }
                let types: [ShareAcknowledgeType] = [.accept, .accept, .release, .reject, .gap, .renew]
                let acks = held.prefix(Int.random(in: 1...held.count, using: &rng)).map { ShareAcknowledgement($0, types.randomElement(using: &rng)!) }
                _ = p.acknowledge(acks, member: member, nowMs: now, settings: settings, allowRenew: true)
            case 7:
                p.expireLocks(nowMs: now, settings: settings)
            case 8:
                if Bool.random(using: &rng) {
                    let member = members.randomElement(using: &rng)!
                    let held = (p.startOffset..<p.endOffset).filter { p.entry(at: $0)?.owner == p.ownerNumber(member) && p.entry(at: $0)?.state == .acquired }
                    p.unacquire(Array(held.suffix(2)), member: member)
                } else {
                    p.releaseAll(held: members.randomElement(using: &rng)!, settings: settings)
                }
            default:
                if Int.random(in: 0..<4, using: &rng) == 0 { logStart = min(logEnd, logStart + Int64.random(in: 0...3, using: &rng)) }
                // Rarely: the log cut back (recovery after a power loss), or offsets reset.
                if Int.random(in: 0..<25, using: &rng) == 0 { logEnd = max(logStart, logEnd - Int64.random(in: 0...4, using: &rng)) }
                if Int.random(in: 0..<60, using: &rng) == 0 { p.reset(to: max(0, p.startOffset + Int64.random(in: -5...8, using: &rng))) }
                if !p.deadLetters.isEmpty && Bool.random(using: &rng) { p.deadLettersWritten([p.deadLetters[0].sequence]) }
                p.follow(logStart: logStart, logEnd: logEnd)
            }
            // The counts a fetch's fair share uses, kept by every change: as walking the window.
            let finished = p.entries.filter { $0.state == .acknowledged || $0.state == .archived }.count
            #expect(p.finishedCount == finished, "step \(step)")
            for member in members {
                let held = p.entries.filter { $0.state == .acquired && $0.owner == p.ownerNumber(member) }.count
                #expect(p.held(by: member) == held, "step \(step)")
            }
            guard Int.random(in: 0..<3, using: &rng) == 0 || step == 2_999 else { continue }
            let snapshot = records.isEmpty || p.needsSnapshot || Int.random(in: 0..<20, using: &rng) == 0
            let bytes = snapshot ? ShareStateStore.encodeValue(p) : ShareStateStore.encodeDelta(p)
            if !snapshot {
                deltas += 1
                deltaBytes += bytes.count - 15 * p.deadLetters.count
                snapshotBytesInstead += ShareStateStore.encodeValue(p).count - 15 * p.deadLetters.count
            }
            records.append(bytes)
            p.markWritten()
            replayed = ShareStateStore.decode(bytes, onto: replayed) ?? replayed
            var got = try #require(replayed)
            #expect(got.finishedCount == got.entries.filter { $0.state == .acknowledged || $0.state == .archived }.count)
            if step == 2_999 {
                // And from the start, as an open does.
                var again: SharePartition? = nil
                for record in records { again = ShareStateStore.decode(record, onto: again) ?? again }
                got = try #require(again)
            }
            if Self.persisted(got) != Self.persisted(p) {
                let firstDifference = (got.startOffset..<max(got.endOffset, p.endOffset)).first {
                    got.entry(at: $0).map { "\($0.state == .acquired ? .available : $0.state).\($0.deliveryCount)" }
                        != p.entry(at: $0).map { "\($0.state == .acquired ? .available : $0.state).\($0.deliveryCount)" }
                }
                Issue.record("""
                    after step \(step) (\(snapshot ? "snapshot" : "delta")): replayed \(got.startOffset)..<\(got.endOffset), \
                    persisted \(p.startOffset)..<\(p.endOffset); first different offset \(firstDifference.map(String.init) ?? "none"): \
                    \(firstDifference.flatMap { got.entry(at: $0) }.map { "\($0)" } ?? "-") against \(firstDifference.flatMap { p.entry(at: $0) }.map { "\($0)" } ?? "-"); \
                    dead letters \(got.deadLetters.count) against \(p.deadLetters.count)
                    """)
                return
            }
        }
        #expect(deltas > 500)
        // A delta carries what changed since the last write, not the window (and the dead
        // letters only when they changed).
        // (Not when cutting: cut windows' snapshots are a few runs.)
        #expect(cutting || deltaBytes * 5 < snapshotBytesInstead, "\(deltaBytes) bytes of deltas against \(snapshotBytesInstead) of snapshots")
    }

    /// The delta layout, and deltas refused when they cannot apply: nothing before them, runs
    /// outside their window, bytes that end early.
    @Test func deltasThatDoNotFitAreRefused() throws {
        var p = SharePartition(startOffset: 10)
        _ = p.acquire([10, 11, 12], member: "a", nowMs: 0, settings: ShareSettings())
        let base = try #require(ShareStateStore.decode(ShareStateStore.encodeValue(p), onto: nil))
        p.markWritten()
        #expect(p.acknowledge([ShareAcknowledgement(11, .accept)], member: "a", nowMs: 1, settings: ShareSettings(), allowRenew: false) == nil)
        let delta = ShareStateStore.encodeDelta(p)
        // version 2, start 10, end 13, one run: 11-11 acknowledged, delivered once; no dead letters.
        #expect(Array(delta[0..<2]) == [0, 2] && delta.count == 2 + 8 + 8 + 4 + 19 + 24)
        #expect(Array(delta[22..<41]) == [0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 11, 2, 0, 1])
        #expect(ShareStateStore.decode(delta, onto: base)?.entry(at: 11)?.state == .acknowledged)
        #expect(ShareStateStore.decode(delta, onto: nil) == nil)
        #expect(ShareStateStore.decode(Array(delta.dropLast(4)), onto: base) == nil)
        var outside = delta
        outside[33] = 20  // the run's last offset past the window's end
        #expect(ShareStateStore.decode(outside, onto: base) == nil)
        // Dead letters waiting: carried (v2) when they changed since the last write, then left
        // out (v3: as v2 without the dead-letter fields) while they do not change; a v3 keeps
        // what the records before it set.
        var settings = ShareSettings()
        settings.deadLetters = true
        var q = SharePartition(startOffset: 0)
        _ = q.acquire([0, 1, 2], member: "a", nowMs: 0, settings: settings)
        #expect(q.acknowledge([ShareAcknowledgement(0, .reject)], member: "a", nowMs: 1, settings: settings, allowRenew: false) == nil)
        #expect(q.deadLetters.count == 1)
        let changed = ShareStateStore.encodeDelta(q)
        #expect(changed[1] == 2 && changed.count == 2 + 8 + 8 + 4 + 19 + 24 + 15)
        let lettered = try #require(ShareStateStore.decode(ShareStateStore.encodeValue(q), onto: nil))
        q.markWritten()
        #expect(q.acknowledge([ShareAcknowledgement(2, .accept)], member: "a", nowMs: 2, settings: settings, allowRenew: false) == nil)
        let unchanged = ShareStateStore.encodeDelta(q)
        // version 3, start 1 (1 still held), end 3, one run: 2-2 acknowledged, delivered once.
        #expect(Array(unchanged[0..<2]) == [0, 3] && unchanged.count == 2 + 8 + 8 + 4 + 19)
        let after = try #require(ShareStateStore.decode(unchanged, onto: lettered))
        #expect(after.deadLetters == q.deadLetters && after.entry(at: 2)?.state == .acknowledged)
    }

    /// Every other job delayed an hour, the rest taken and acknowledged one at a time: the
    /// window keeps the delayed ones, so it grows by two records per job. Whole snapshots made
    /// that quadratic (4,000 jobs: 159 MB of share state through the Kafka front; here 1,000
    /// jobs would write about 19 MB); now the log grows by about what each acknowledgement
    /// changed. A restart, after a compaction too, still knows every job: done ones never
    /// again, delayed ones still waiting.
    @Test func delayedJobsBesideAcknowledgedOnesKeepTheShareStateSmall() async throws {
        let dir = TemporaryDirectory()
        let later = Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000
        let stateDir = dir.path + "/__share_group_state-0"
        func logged() throws -> Int {
            try FileManager.default.contentsOfDirectory(atPath: stateDir).filter { $0.hasSuffix(".log") }.reduce(0) {
                $0 + ((try FileManager.default.attributesOfItem(atPath: stateDir + "/" + $1)[.size] as? Int) ?? 0)
            }
        }
        func acknowledgeOneByOne(_ worker: ShareConsumer, _ count: Int) async throws {
            var done = 0
            while done < count {
                for job in try await worker.poll(maxRecords: 1, timeout: .milliseconds(200)) {
                    #expect(job.offset % 2 == 1)
                    worker.acknowledge(job, .accept)
                    done += 1
                }
                try await worker.commit()
            }
        }
        var options = BrokerOptions()
        options.groups.shareStateCompactionBytes = 64 << 20  // no compaction while measuring
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options)
            try await broker.createTopic("jobs", partitions: 1)
            var builder = RecordBatchBuilder()
            for i in 0..<2_400 {
                let headers = i % 2 == 0 ? [RecordHeader(key: Broker.deliverAtHeader, value: Array("\(later)".utf8))] : []
                builder.append(timestamp: 0, key: nil, value: Array("job-\(i)".utf8), headers: headers)
            }
            _ = try await broker.append(topic: "jobs", partition: 0, batches: try builder.build())
            let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["jobs"], mode: .explicit)
            try await acknowledgeOneByOne(worker, 1_000)
            let size = try logged()
            #expect(size < 1 << 20, "\(size) bytes of share state")
            try await worker.close()
            try await broker.close()
        }
        options.groups.shareStateCompactionBytes = 16 << 10
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options)
            let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["jobs"], mode: .explicit)
            try await acknowledgeOneByOne(worker, 1)
            let before = try logged()
            await broker.shares.tick()  // compacts: one snapshot, deltas after it
            #expect(try logged() < before)
            try await acknowledgeOneByOne(worker, 1)
            try await worker.close()
            try await broker.close()
        }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options)
        let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["jobs"], mode: .explicit)
        var again: [Int64] = []
        while again.count < 1_200 - 1_002 {
            let jobs = try await worker.poll(maxRecords: 500, timeout: .milliseconds(500))
            if jobs.isEmpty { break }
            again += jobs.map(\.offset)
        }
        #expect(again.count == 1_200 - 1_002 && again.allSatisfy { $0 % 2 == 1 && $0 > 2 * 1_002 - 1 })
        let summary = try #require(broker.shares.summaries("g", view: broker.shareLogView).first)
        #expect(summary.startOffset == 0 && summary.delayed == 1_200)
        try await worker.close()
        try await broker.close()
    }

    /// 20,000 jobs delayed an hour ahead of 300 due now, taken and acknowledged one at a time:
    /// the window keeps the delayed ones, one run in a snapshot of a few bytes, but a snapshot
    /// walks all 20,000. Snapshots came once the deltas added up to 1 KiB (one every ~20
    /// acknowledgements: ~15 us a job behind 50,000 delayed ones); now once they add up to a
    /// byte per entry the window keeps. A restart still knows every job.
    @Test func aLongWindowIsNotWalkedForASnapshotEveryFewAcknowledgements() async throws {
        let dir = TemporaryDirectory()
        let later = Array("\(Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000)".utf8)
        func snapshots(_ broker: Broker) throws -> Int {
            try broker.shares.store.partition.log.readBatches(from: 0, maxBytes: 64 << 20)
                .flatMap(\.records).filter { ($0.value ?? []).starts(with: [0, 1]) }.count
        }
        do {
            let broker = try await Broker.open(dataDirectory: dir.path)
            try await broker.createTopic("jobs", partitions: 1)
            var builder = RecordBatchBuilder()
            for i in 0..<20_300 {
                let headers = i < 20_000 ? [RecordHeader(key: Broker.deliverAtHeader, value: later)] : []
                builder.append(timestamp: 0, key: nil, value: Array("job-\(i)".utf8), headers: headers)
            }
            _ = try await broker.append(topic: "jobs", partition: 0, batches: try builder.build())
            let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["jobs"], mode: .explicit)
            var done = 0
            while done < 300 {
                for job in try await worker.poll(maxRecords: 1, timeout: .milliseconds(500)) {
                    #expect(job.offset >= 20_000)
                    worker.acknowledge(job, .accept)
                    done += 1
                }
                try await worker.commit()
            }
            // The first write (the window's first fill), and at most one more.
            let written = try snapshots(broker)
            #expect(written <= 2, "\(written) snapshots for 300 acknowledgements")
            try await worker.close()
            try await broker.close()
        }
        let broker = try await Broker.open(dataDirectory: dir.path)
        let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["jobs"], mode: .explicit)
        #expect(try await worker.poll(maxRecords: 10, timeout: .milliseconds(300)).isEmpty)
        let summary = try #require(broker.shares.summaries("g", view: broker.shareLogView).first)
        #expect(summary.startOffset == 0 && summary.delayed == 20_000)
        try await worker.close()
        try await broker.close()
    }

    static func produce(_ broker: Broker, count: Int) async throws {
        var builder = RecordBatchBuilder()
        for i in 0..<count { builder.append(timestamp: 0, key: nil, value: Array("job-\(i)".utf8)) }
        _ = try await broker.append(topic: "jobs", partition: 0, batches: try builder.build())
    }

    /// A start moved back (offsets reset past the log end, then the window follows the log
    /// end) cannot be said by a delta, whose replay never moves a start back: it is written
    /// as a snapshot. Written as a delta, a restart kept the reset's start and the jobs
    /// appended between the log end and it were never delivered.
    @Test func aWindowStartMovedBackIsWrittenAsASnapshot() async throws {
        let dir = TemporaryDirectory()
        let tp = TopicPartition("jobs", 0)
        do {
            let broker = try await Broker.open(dataDirectory: dir.path)
            try await broker.createTopic("jobs", partitions: 1)
            try await Self.produce(broker, count: 3)
            try await broker.shares.resetOffsets(group: "g", offsets: [tp: 100], view: broker.shareLogView)
            let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["jobs"], mode: .explicit)
            #expect(try await worker.poll(timeout: .milliseconds(100)).isEmpty)  // the window follows the log end: 3
            #expect(broker.shares.summaries("g", view: broker.shareLogView).first?.startOffset == 3)
            try await Self.produce(broker, count: 2)  // offsets 3 and 4
            try await worker.close()
            try await broker.close()
        }
        let broker = try await Broker.open(dataDirectory: dir.path)
        let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["jobs"], mode: .explicit)
        #expect(try await worker.poll(maxRecords: 10, timeout: .seconds(2)).map(\.offset) == [3, 4])
        try await worker.close()
        try await broker.close()
    }

    /// A compaction whose rewrite fails (a full disk) changes nothing of what the slots still
    /// have to write: what is unwritten is written later and survives a restart. (Marked
    /// written before the rewrite, it was lost, and the slot's later records were deltas with
    /// no snapshot under them: the accepted jobs came back.) The held records come back with
    /// the count they had before the delivery the close cut.
    @Test func aFailedCompactionLeavesWhatIsUnwrittenToWrite() async throws {
        let dir = TemporaryDirectory()
        var options = BrokerOptions()
        options.groups.shareStateCompactionBytes = 1
        do {
            let broker = try await Broker.open(dataDirectory: dir.path, options: options)
            try await broker.createTopic("jobs", partitions: 1)
            try await Self.produce(broker, count: 40)
            let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["jobs"], mode: .explicit)
            // 30 jobs done one by one: the share-state log passes the compaction threshold.
            for _ in 0..<30 {
                for job in try await worker.poll(maxRecords: 1, timeout: .milliseconds(500)) { worker.acknowledge(job, .accept) }
                try await worker.commit()
            }
            // Two more held: acquisitions wait for the slot's next write.
            #expect(try await worker.poll(maxRecords: 2, timeout: .milliseconds(500)).map(\.offset) == [30, 31])
            let stateLog = dir.path + "/__share_group_state-0"
            StorageFaults.inject(.write, .noSpace, pathContains: stateLog, times: nil)
            StorageFaults.inject(.allocate, .noSpace, pathContains: stateLog, times: nil)
            await broker.shares.tick()  // its write and its compaction both fail
            StorageFaults.clear(pathContains: stateLog)
            try await broker.close()  // writes what is still unwritten
        }
        let broker = try await Broker.open(dataDirectory: dir.path, options: options)
        let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["jobs"], mode: .explicit)
        let again = try await worker.poll(maxRecords: 3, timeout: .seconds(2))
        #expect(again.map { [$0.offset, Int64($0.deliveryCount)] } == [[30, 1], [31, 1], [32, 1]])
        try await worker.close()
        try await broker.close()
    }

}

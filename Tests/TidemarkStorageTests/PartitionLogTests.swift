import TestSupport
import Foundation
import Synchronization
import Testing
@testable import TidemarkStorage

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    let now: Mutex<Int64>
    init(_ start: Int64) { now = Mutex(start) }
    func advance(_ ms: Int64) { now.withLock { $0 += ms } }
    var read: @Sendable () -> Int64 { { [self] in now.withLock { $0 } } }
}

@Suite struct PartitionLogTests {
    static func smallConfig() -> LogConfig {
        var config = LogConfig()
        config.segmentBytes = 4096
        config.indexIntervalBytes = 256
        return config
    }

    /// Batches whose records carry no timestamp (-1, Kafka's NO_TIMESTAMP) fill index
    /// intervals without a timestamp to index: no time entry, and no trap (the largest
    /// timestamp's offset is still -1 there).
    @Test func batchesWithoutTimestampsTakeNoTimeEntries() throws {
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path, config: Self.smallConfig())
        for i in 0..<100 {
            try log.append(makeBatch(tag: "untimed-\(i)", count: 1, timestamp: -1))
        }
        #expect(log.logEndOffset == 100 && log.segmentCount > 1)
        #expect(try log.offset(forTimestamp: 0) == nil)
        try log.append(makeBatch(tag: "timed", count: 1))
        #expect(try log.offset(forTimestamp: 0)?.offset == 100)
        try log.close()
        let reopened = try PartitionLog.open(directory: dir.path, config: Self.smallConfig())
        #expect(try reopened.offset(forTimestamp: 0)?.offset == 100)
        try reopened.close()
    }

    /// A batch's partitionLeaderEpoch is stored as -1 (what clients send) or 0 (this node's
    /// only leader epoch); any other is stamped 0, as Kafka stamps its leader epoch (outside
    /// the CRC, which stays valid): consumers would otherwise commit an epoch the node never
    /// had, and reset when OffsetForLeaderEpoch answers that it has none.
    @Test func aBatchIsStoredWithThisNodesLeaderEpoch() throws {
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path, config: Self.smallConfig())
        var sent: [Int32: [UInt8]] = [:]
        for epoch: Int32 in [-1, 0, 7, -5] {
            var batch = makeBatch(tag: "e\(epoch)", count: 2)
            withUnsafeBytes(of: epoch.bigEndian) { batch.replaceSubrange(12..<16, with: $0) }
            sent[epoch] = batch
            try log.append(batch)
        }
        let stored = try log.readBatches(from: 0, maxBytes: 1 << 20)
        #expect(stored.map(\.header.partitionLeaderEpoch) == [-1, 0, 0, 0])
        let bytes = try log.read(from: 4, maxBytes: 1).slice!.readBytes()
        #expect(bytes[12..<16].elementsEqual([0, 0, 0, 0]) && bytes[16...] == sent[7]![16...])
        try bytes.withUnsafeBytes { raw in _ = try RecordBatchHeader.validate(raw, maxBatchBytes: 1 << 20) }  // CRC and all
        try log.close()
    }

    @Test func appendAssignsOffsetsAndReadsBack() throws {
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path, config: Self.smallConfig())
        var expected: [(Int64, String)] = []
        var next: Int64 = 0
        for b in 0..<200 {
            let count = b % 7 + 1
            let info = try log.append(makeBatch(tag: "b\(b)", count: count))
            #expect(info.firstOffset == next)
            #expect(info.lastOffset == next + Int64(count) - 1)
            for i in 0..<count { expected.append((next + Int64(i), "b\(b)-\(i)")) }
            next += Int64(count)
        }
        #expect(log.logEndOffset == next)
        #expect(log.segmentCount > 5)  // rolled at 4 KiB
        let all = try readAll(log)
        #expect(all.map(\.0) == expected.map(\.0))
        #expect(all.map(\.1) == expected.map(\.1))
        // Reads from every offset start at the batch holding it.
        for target in stride(from: Int64(0), to: next, by: 13) {
            let batches = try log.readBatches(from: target, maxBytes: 1)
            #expect(batches.count == 1)
            #expect(batches[0].header.baseOffset <= target && batches[0].header.lastOffset >= target)
        }
        // The stored bytes are the appended bytes but for the baseOffset field.
        let original = makeBatch(tag: "b5", count: 6)
        let stored = try log.read(from: 15, maxBytes: 1).slice!.readBytes()
        #expect(stored[8...] == original[8...])
        try log.close()
    }

    @Test func readLimitsAndRanges() throws {
        let dir = TemporaryDirectory()
        var config = LogConfig()
        config.indexIntervalBytes = 100
        let log = try PartitionLog.open(directory: dir.path, config: config)
        let batch = makeBatch(tag: "r", count: 10, valueBytes: 100)
        for _ in 0..<20 { try log.append(batch) }
        // At least one batch even when it is larger than maxBytes; whole batches only.
        let one = try log.read(from: 0, maxBytes: 10).slice!
        #expect(one.length == batch.count)
        let three = try log.read(from: 25, maxBytes: batch.count * 3 + 5).slice!
        #expect(three.length == batch.count * 3, "\(three.length) vs \(batch.count)")
        #expect(three.firstBaseOffset == 20)
        #expect(try log.read(from: 200, maxBytes: 100).slice == nil)
        #expect(throws: StorageError.self) { try log.read(from: 201, maxBytes: 100) }
        #expect(throws: StorageError.self) { try log.read(from: -1, maxBytes: 100) }
    }

    /// A read near the log's end finds its batches and their bytes in one pread (the header
    /// walk's window): asked to keep them, its slice holds them, byte for byte what the file
    /// has. A read not asked to, or a slice of `heldBelowBytes` or more, keeps nothing, and is
    /// read from the file.
    @Test func aSmallSliceKeepsTheBytesItsWalkRead() throws {
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path, config: LogConfig())
        let batch = makeBatch(tag: "h", count: 10, valueBytes: 100)
        for _ in 0..<100 { try log.append(batch) }
        #expect(try log.read(from: 950, maxBytes: 4 * batch.count).slice?.held == nil)
        let tail = try #require(try log.read(from: 950, maxBytes: 4 * batch.count, keepBytes: true).slice)
        let held = try #require(tail.held)
        #expect(tail.length == 4 * batch.count && held.count == tail.length)
        #expect(held == (try tail.file.read(count: tail.length, at: tail.position)))
        #expect(try tail.readBytes() == held && (try tail.readBytesIfCached()) == held)
        let large = try #require(try log.read(from: 0, maxBytes: 1 << 20, keepBytes: true).slice)
        #expect(large.length >= LogSlice.heldBelowBytes && large.held == nil)
        #expect(try large.readBytes() == (try large.file.read(count: large.length, at: large.position)))
        try log.close()
    }

    @Test func badBatchesAreRejectedAndNothingIsAppended() throws {
        let dir = TemporaryDirectory()
        var config = LogConfig()
        config.maxBatchBytes = 2000
        let log = try PartitionLog.open(directory: dir.path, config: config)
        try log.append(makeBatch(tag: "ok", count: 2))
        var corrupt = makeBatch(tag: "bad", count: 2)
        corrupt[corrupt.count - 1] ^= 1
        // A good batch followed by a corrupt one: the whole append is refused.
        #expect { try log.append(makeBatch(tag: "good", count: 1) + corrupt) } throws: { error in
            (error as? StorageError)?.code == .invalidBatch
        }
        #expect { try log.append(makeBatch(tag: "big", count: 1, valueBytes: 5000)) } throws: { error in
            (error as? StorageError)?.code == .batchTooLarge
        }
        #expect(throws: StorageError.self) { try log.append(Array(makeBatch(tag: "t", count: 2).dropLast())) }
        #expect(log.logEndOffset == 2)
        #expect(try readAll(log).map(\.1) == ["ok-0", "ok-1"])
        try log.append(makeBatch(tag: "after", count: 1))
        #expect(try readAll(log).map(\.1) == ["ok-0", "ok-1", "after-0"])
    }

    @Test func logAppendTimeRestampsAndKeepsCRCValid() throws {
        let dir = TemporaryDirectory()
        var config = LogConfig()
        config.timestampType = .logAppendTime
        let clock = ManualClock(1_800_000_000_000)
        let log = try PartitionLog.open(directory: dir.path, config: config, clock: clock.read)
        let info = try log.append(makeBatch(tag: "t", count: 3, timestamp: 5))
        #expect(info.logAppendTime == 1_800_000_000_000)
        let batch = try log.readBatches(from: 0, maxBytes: 1 << 20)[0]
        #expect(batch.header.timestampType == .logAppendTime)
        #expect(batch.records.allSatisfy { batch.timestamp(of: $0) == 1_800_000_000_000 })
    }

    @Test func timestampLookupMatchesAModel() throws {
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path, config: Self.smallConfig())
        var rng = SeededGenerator(seed: 21)
        var model: [(offset: Int64, timestamp: Int64)] = []
        var clock: Int64 = 1_000_000
        for _ in 0..<150 {
            var builder = RecordBatchBuilder(compression: Bool.random(using: &rng) ? .lz4 : .none)
            let count = Int.random(in: 1...6, using: &rng)
            let first = log.logEndOffset
            for i in 0..<count {
                clock += Int64.random(in: -3...20, using: &rng)
                builder.append(timestamp: clock, key: nil, value: [UInt8(i)])
                model.append((first + Int64(i), clock))
            }
            try log.append(try builder.build())
        }
        for target in stride(from: Int64(999_000), to: clock + 50, by: 37) {
            let expected = model.first { $0.timestamp >= target }
            let got = try log.offset(forTimestamp: target)
            #expect(got?.offset == expected?.offset, "target \(target)")
            #expect(got?.timestamp == expected?.timestamp)
        }
    }

    @Test func retentionBySizeAndAgeKeepsTheActiveSegment() throws {
        let dir = TemporaryDirectory()
        var config = Self.smallConfig()
        config.retentionBytes = 5_000
        config.retentionMs = 60_000
        let clock = ManualClock(1_000_000)  // nothing is older than 60 s yet
        let log = try PartitionLog.open(directory: dir.path, config: config, clock: clock.read)
        for b in 0..<100 { try log.append(makeBatch(tag: "s", count: 5, timestamp: 1_000_000 + Int64(b) * 10_000)) }
        let before = log.segmentCount
        let deleted = try log.enforceRetention()
        #expect(!deleted.isEmpty)
        #expect(log.segmentCount == before - deleted.count)
        #expect(log.sizeInBytes >= 5_000)
        #expect(log.logStartOffset == log.segmentBaseOffsets[0])
        for base in deleted { #expect(!FileManager.default.fileExists(atPath: dir.file(segmentName(base, ".log")))) }
        #expect(throws: StorageError.self) { try log.read(from: 0, maxBytes: 100) }
        #expect(try readAll(log).first?.0 == log.logStartOffset)

        // Everything is older than 60 s now, but the active segment stays.
        clock.advance(10_000_000)
        try log.enforceRetention()
        #expect(log.segmentCount == 1)
        #expect(log.logEndOffset == 500)
        try log.append(makeBatch(tag: "new", count: 1))
        #expect(try readAll(log).last?.1 == "new-0")
    }

    /// Records with no timestamp (-1; accepted under CreateTime with the default window) give
    /// their segment no largest timestamp: time retention counts from when the segment file
    /// was last written, as Kafka does, instead of deleting the segment as soon as it rolls.
    @Test func segmentsWithoutTimestampsAgeByTheirFile() throws {
        let dir = TemporaryDirectory()
        var config = Self.smallConfig()
        config.retentionMs = 3_600_000
        let log = try PartitionLog.open(directory: dir.path, config: config)  // the real clock: files are written now
        for b in 0..<20 { try log.append(makeBatch(tag: "u\(b)", count: 5, timestamp: -1 - 4)) }  // timestamps -5...-1
        try log.roll()
        #expect(log.segmentCount > 1)
        #expect(try log.enforceRetention().isEmpty)
        #expect(log.logStartOffset == 0)
        try log.close()
        // An hour and more later by the clock, they go.
        let later = try PartitionLog.open(directory: dir.path, config: config, clock: { currentTimeMilliseconds() + 7_200_000 })
        #expect(!(try later.enforceRetention()).isEmpty)
        try later.close()
    }

    /// A new log's first flush also syncs its directory (the first segment's entry), so a
    /// durable append to a new partition does not depend on the file system's ordering:
    /// here a failing directory sync fails that flush.
    @Test func aNewLogsFirstFlushSyncsItsDirectory() throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        let log = try PartitionLog.open(directory: dir.path, config: Self.smallConfig())
        try log.append(makeBatch(tag: "n", count: 1))
        StorageFaults.inject(.syncDirectory, .ioError, pathContains: dir.path, times: 1)
        #expect(throws: StorageError.self) { try log.flush() }
        StorageFaults.clear(pathContains: dir.path)
    }

    @Test func truncateRemovesWholeBatchesAndContinues() throws {
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path, config: Self.smallConfig())
        for b in 0..<60 { try log.append(makeBatch(tag: "b\(b)", count: 4)) }
        try log.truncate(to: 101)  // inside batch 25 (offsets 100..103): the batch goes whole
        #expect(log.logEndOffset == 100)
        let info = try log.append(makeBatch(tag: "x", count: 2))
        #expect(info.firstOffset == 100)
        let all = try readAll(log)
        #expect(all.count == 102)
        #expect(all.last?.1 == "x-1")
        try log.close()
        let reopened = try PartitionLog.open(directory: dir.path, config: Self.smallConfig())
        #expect(reopened.logEndOffset == 102)
        #expect(try readAll(reopened).map(\.0) == Array(0..<102))
        try reopened.truncate(to: 0)
        #expect(reopened.logEndOffset == 0)
        #expect(try reopened.append(makeBatch(tag: "z", count: 1)).firstOffset == 0)
    }

    @Test func flushPoliciesMoveTheFlushedPosition() throws {
        let dir = TemporaryDirectory()
        var config = LogConfig()
        config.flushPolicy = .os
        let osLog = try PartitionLog.open(directory: dir.path + "/os", config: config)
        try osLog.append(makeBatch(tag: "a", count: 3))
        #expect(osLog.logEndOffset == 3 && osLog.flushedOffset == 0)
        try osLog.flush()
        #expect(osLog.flushedOffset == 3)

        config.flushPolicy = .everyAppend
        let syncLog = try PartitionLog.open(directory: dir.path + "/sync", config: config)
        try syncLog.append(makeBatch(tag: "a", count: 3))
        #expect(syncLog.flushedOffset == 3)

        config.flushPolicy = .everyMessages(5)
        let countLog = try PartitionLog.open(directory: dir.path + "/count", config: config)
        try countLog.append(makeBatch(tag: "a", count: 3))
        #expect(countLog.flushedOffset == 0)
        try countLog.append(makeBatch(tag: "a", count: 3))
        #expect(countLog.flushedOffset == 6)
    }

    /// Concurrent appenders under fsync-per-append all end durable, with fewer fdatasyncs
    /// than appends being the point of group commit (not asserted: timing-dependent).
    @Test func concurrentAppendersWithGroupCommit() throws {
        let dir = TemporaryDirectory()
        var config = LogConfig()
        config.flushPolicy = .everyAppend
        config.segmentBytes = 64 * 1024
        let log = try PartitionLog.open(directory: dir.path, config: config)
        let threads = 4
        let perThread = 50
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for i in 0..<perThread {
                let info = try! log.append(makeBatch(tag: "t\(t)-\(i)", count: 2))
                precondition(log.flushedOffset > info.lastOffset)
            }
        }
        #expect(log.logEndOffset == Int64(threads * perThread * 2))
        #expect(log.flushedOffset == log.logEndOffset)
        let values = try readAll(log).map(\.1)
        #expect(Set(values).count == threads * perThread * 2)
    }

    @Test func cleanReopenReadsOnlyTheActiveSegment() throws {
        let dir = TemporaryDirectory()
        var config = Self.smallConfig()
        config.maxOpenInactiveSegments = 2
        do {
            let log = try PartitionLog.open(directory: dir.path, config: config)
            for b in 0..<100 { try log.append(makeBatch(tag: "b\(b)", count: 3)) }
            try log.close()
        }
        let log = try PartitionLog.open(directory: dir.path, config: config)
        let report = log.recoveryReport
        #expect(report.wasCleanShutdown)
        #expect(report.scannedSegments == [log.segmentBaseOffsets.last!])
        #expect(log.openInactiveSegmentCount == 0)
        #expect(log.logEndOffset == 300)
        #expect(try readAll(log).count == 300)
        // Reading everything opened old segments lazily, and the limit closed all but two.
        #expect(log.openInactiveSegmentCount <= 2)
        #expect(log.closeIdleSegments(idleNanoseconds: 0) <= 2)
        #expect(log.openInactiveSegmentCount == 0)
        #expect(try log.append(makeBatch(tag: "n", count: 1)).firstOffset == 300)
    }

    @Test func closedLogRefusesWork() throws {
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path)
        try log.append(makeBatch(tag: "a", count: 1))
        try log.close()
        try log.close()
        #expect { try log.append(makeBatch(tag: "b", count: 1)) } throws: { ($0 as? StorageError)?.code == .closed }
        #expect(FileManager.default.fileExists(atPath: dir.file(".clean-shutdown")))
        #expect(fileSize(dir.file(segmentName(0, ".index"))) == 0)
    }

    /// `.clean-shutdown`'s layout (`LogMarkers`): "0" and this boot's id (32 lowercase hex
    /// digits of /proc/sys/kernel/random/boot_id, 33 bytes) while open, new or reopened, and
    /// after a crashed log's recovery; "1" (1 byte) after a clean close.
    @Test func theOpenMarkerNamesTheBoot() throws {
        let dir = TemporaryDirectory()
        let boot = try String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)
            .filter { $0.isHexDigit }.lowercased()
        #expect(boot.count == 32)
        let open = Data(("0" + boot).utf8)
        var log = try PartitionLog.open(directory: dir.path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file(".clean-shutdown"))) == open)
        try log.append(makeBatch(tag: "a", count: 1))
        try log.close()
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file(".clean-shutdown"))) == Data("1".utf8))
        log = try PartitionLog.open(directory: dir.path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file(".clean-shutdown"))) == open)
        #expect(LogMarkers.wasOpenedInThisBoot(dir.path))
        // A crash in another boot: recovered, then marked with this one.
        try Data(("0" + String(repeating: "0", count: 32)).utf8).write(to: URL(fileURLWithPath: dir.file(".clean-shutdown")))
        #expect(!LogMarkers.wasOpenedInThisBoot(dir.path))
        log = try PartitionLog.open(directory: dir.path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file(".clean-shutdown"))) == open)
        try log.close()
    }

    @Test func configValidation() {
        var config = LogConfig()
        config.segmentBytes = Int(Int32.max) + 1
        #expect(throws: StorageError.self) { try PartitionLog.open(directory: "/tmp/never-\(UUID())", config: config) }
    }
}

@Suite struct SegmentRollTests {
    @Test func rollsBySizeAndByBrokerTime() throws {
        let dir = TemporaryDirectory()
        var config = LogConfig()
        config.segmentMs = 1000
        let clock = ManualClock(5_000_000)
        let log = try PartitionLog.open(directory: dir.path, config: config, clock: clock.read)
        // Old producer timestamps do not roll anything.
        for _ in 0..<5 { try log.append(makeBatch(tag: "a", count: 2, timestamp: 1)) }
        #expect(log.segmentCount == 1)
        clock.advance(1001)
        try log.append(makeBatch(tag: "b", count: 2))
        #expect(log.segmentBaseOffsets == [0, 10])
        // A rolled segment is flushed at once, and its indexes are trimmed.
        #expect(log.flushedOffset >= 10)
        #expect(fileSize(dir.file(segmentName(0, ".index"))) % 8 == 0)
        #expect(fileSize(dir.file(segmentName(0, ".timeindex"))) == 12)
        #expect(fileSize(dir.file(segmentName(0, ".log"))) == 5 * makeBatch(tag: "a", count: 2, timestamp: 1).count)
    }

    /// On a log synced every append (`flush.messages=1`) readers see what is synced: reads
    /// `upTo: visibleEndOffset` stop there (Kafka's high watermark on such a topic). A consumer
    /// that read a record before its sync could, after a power loss took it, hold a committed
    /// offset past records appended again under the same offsets.
    @Test func aLogSyncedEveryAppendIsReadAsFarAsItIsSynced() throws {
        let dir = TemporaryDirectory()
        var config = LogConfig()
        config.flushPolicy = .everyAppend
        let log = try PartitionLog.open(directory: dir.path, config: config)
        let first = makeBatch(tag: "a", count: 2), second = makeBatch(tag: "b", count: 2)
        _ = try log.append(first, applyingFlushPolicy: false)
        #expect(log.logEndOffset == 2 && log.visibleEndOffset == 0)
        let unsynced = try log.read(from: 0, maxBytes: 1 << 20, upTo: log.visibleEndOffset)
        #expect(unsynced.slice == nil && unsynced.logEndOffset == 0)
        try log.flush()
        _ = try log.append(second, applyingFlushPolicy: false)
        #expect(log.logEndOffset == 4 && log.visibleEndOffset == 2)
        let synced = try log.read(from: 0, maxBytes: 1 << 20, upTo: log.visibleEndOffset)
        #expect(synced.logEndOffset == 2 && synced.slice?.length == first.count && synced.slice?.reachesLogEnd == true)
        let past = try log.read(from: 3, maxBytes: 1 << 20, upTo: log.visibleEndOffset)
        #expect(past.slice == nil && past.logEndOffset == 2)
        // Without the limit (the log's own readers), everything appended.
        #expect(try log.read(from: 0, maxBytes: 1 << 20).slice?.length == first.count + second.count)
        // Another policy: everything appended is seen; back to syncing every append, synced
        // first, so what readers saw does not move back.
        config.flushPolicy = .os
        try log.update(config: config)
        #expect(log.visibleEndOffset == 4)
        _ = try log.append(makeBatch(tag: "c", count: 1), applyingFlushPolicy: false)
        config.flushPolicy = .everyAppend
        try log.update(config: config)
        #expect(log.visibleEndOffset == 5 && log.flushedOffset == 5)
        try log.close()
    }

    /// A log that comes to sync every append keeps what readers saw: a batch appended while
    /// the switch's sync ran was seen (the log did not sync every append yet); after the
    /// switch, `min(end, flushed)` hid it again, and a share group took the lower end for a
    /// truncation (a job it held went out again once synced).
    @Test func aLogComingToSyncEveryAppendKeepsWhatReadersSaw() throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        let log = try PartitionLog.open(directory: dir.path)
        _ = try log.append(makeBatch(tag: "a", count: 2))
        StorageFaults.slow(.sync, by: 2_000_000_000, pathContains: dir.path)
        let seen = Mutex<Int64>(-1)
        let appended = DispatchSemaphore(value: 0)
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(100)) {
            _ = try? log.append(makeBatch(tag: "b", count: 2), applyingFlushPolicy: false)
            seen.withLock { $0 = log.visibleEndOffset }
            appended.signal()
        }
        var config = LogConfig()
        config.flushPolicy = .everyAppend
        try log.update(config: config)
        appended.wait()
        StorageFaults.clear(pathContains: dir.path)
        #expect(seen.withLock { $0 } == 4)
        #expect(log.readsSyncedOnly && log.visibleEndOffset == 4)
        try log.close()
    }
}

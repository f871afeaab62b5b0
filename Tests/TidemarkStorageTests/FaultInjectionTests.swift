import Foundation
import Glibc
import SystemPackage
import TestSupport
import Testing

@testable import TidemarkStorage

/// Disk faults through `StorageFaults`, without root: each fault is scoped to the test's own
/// directory, so these run beside everything else.
@Suite struct FaultInjectionTests {
    /// Appends one small batch at a time with growing timestamps (so both indexes gain an
    /// entry per batch) until `stop` says so or an append fails.
    static func appendUntilFailure(_ log: PartitionLog, limit: Int) -> (appended: Int, failure: StorageError?) {
        for i in 0..<limit {
            do {
                try log.append(makeBatch(tag: "b\(i)", count: 1, timestamp: 1_700_000_000_000 + Int64(i)))
            } catch {
                return (i, error)
            }
        }
        return (limit, nil)
    }

    static func indexEveryBatch() -> LogConfig {
        var config = LogConfig()
        config.indexIntervalBytes = 0
        return config
    }

    /// The time index (12-byte entries) outgrows its first 64 KiB step after 5,461 entries,
    /// the offset index (8-byte) after 8,192. The growth fails with EIO: the append fails
    /// whole (no bytes stay in the log), reads and lookups go on, appends resume afterwards.
    /// (ENOSPC is not a failure for an index: see the next test.)
    @Test func anIndexGrowthThatFailsFailsTheAppendWhole() throws {
        let dir = TemporaryDirectory("fault-index-growth")
        defer { StorageFaults.clear(pathContains: dir.path) }
        let log = try PartitionLog.open(directory: dir.path + "/t-0", config: Self.indexEveryBatch())
        // Each index reserves its first 64 KiB with its first entry (batch 2): those two
        // allocations go through; the next one is a growth.
        StorageFaults.inject(.allocate, .ioError, pathContains: dir.path + "/t-0/", skip: 2, times: nil)
        let (appended, failure) = Self.appendUntilFailure(log, limit: 20_000)
        #expect(failure?.code == .io, "\(String(describing: failure))")
        // The first batch of a segment gets no entry: 5,461 entries fill 64 KiB at batch 5,462.
        #expect(appended == 5_462)
        let end = log.logEndOffset
        #expect(end == Int64(appended))
        let logFile = dir.path + "/t-0/" + segmentName(0, ".log")
        let sizeAfterFailure = fileSize(logFile)
        // Another attempt fails the same way and leaves the log as it was.
        #expect(throws: StorageError.self) { try log.append(makeBatch(tag: "x", count: 1, timestamp: 1_800_000_000_000)) }
        #expect(fileSize(logFile) == sizeAfterFailure)
        #expect(log.logEndOffset == end)
        // Lookups through both indexes still work (they used to meet an unmapped index).
        let records = try readAll(log)
        #expect(records.count == appended && records.last?.1 == "b\(appended - 1)-0")
        #expect(try log.offset(forTimestamp: 1_700_000_000_000 + 4_000)?.offset == 4_000)

        StorageFaults.clear(pathContains: dir.path)
        let (more, none) = Self.appendUntilFailure(log, limit: 4_000)
        #expect(none == nil && more == 4_000)
        #expect(log.logEndOffset == end + 4_000)
        try log.close()
        let reopened = try PartitionLog.open(directory: dir.path + "/t-0", config: Self.indexEveryBatch())
        #expect(reopened.recoveryReport.truncatedBytes == 0)
        #expect(try readAll(reopened).count == appended + 4_000)
        try reopened.close()
    }

    /// An index that cannot grow for want of space (ENOSPC) goes on in memory: appends
    /// never fail for an index (a disposable one; only the log's own bytes need the disk),
    /// reads and lookups go on. A close that still finds no room removes the index files
    /// (the next open rebuilds them from the log, which this one does while the fault lasts);
    /// once there is room, a close writes them and the open after it trusts them.
    @Test func anIndexThatCannotGrowForWantOfSpaceGoesOnInMemory() throws {
        let dir = TemporaryDirectory("fault-index-memory")
        defer { StorageFaults.clear(pathContains: dir.path) }
        let path = dir.path + "/t-0"
        var config = Self.indexEveryBatch()
        config.indexMemory = IndexMemoryBudget(limit: 1 << 20)
        let log = try PartitionLog.open(directory: path, config: config)
        StorageFaults.inject(.allocate, .noSpace, pathContains: path + "/", skip: 2, times: nil)
        // A write-back's temporary files find no room either, as on a full disk.
        for name in [".index.tmp", ".timeindex.tmp"] {
            StorageFaults.inject(.write, .noSpace, pathContains: path + "/" + segmentName(0, name), times: nil)
        }
        // Past both indexes' first 64 KiB: both move to memory.
        let (appended, failure) = Self.appendUntilFailure(log, limit: 10_000)
        #expect(failure == nil && appended == 10_000, "\(String(describing: failure))")
        // Charged by the page: 9,999 entries of 8 bytes (20 pages) and of 12 (30 pages).
        #expect(config.indexMemory.bytesInUse == 50 * 4096)
        #expect(try readAll(log).count == 10_000)
        #expect(try readAll(log, from: 9_000).first?.0 == 9_000)
        #expect(try log.offset(forTimestamp: 1_700_000_000_000 + 9_500)?.offset == 9_500)
        try log.close()
        #expect(config.indexMemory.bytesInUse == 0)
        let index = path + "/" + segmentName(0, ".index")
        let timeIndex = path + "/" + segmentName(0, ".timeindex")
        #expect(fileSize(index) == -1 && fileSize(timeIndex) == -1)

        let again = try PartitionLog.open(directory: path, config: config)
        #expect(again.recoveryReport.truncatedBytes == 0 && again.logEndOffset == 10_000)
        #expect(try again.offset(forTimestamp: 1_700_000_000_000 + 9_500)?.offset == 9_500)
        StorageFaults.clear(pathContains: dir.path)
        try again.append(makeBatch(tag: "after", count: 1, timestamp: 1_800_000_000_000))
        try again.close()
        // Written back at their sizes: an entry per batch but the first (timestamps all grow).
        #expect(fileSize(index) == 10_000 * 8 && fileSize(timeIndex) == 10_000 * 12)

        #expect(config.indexMemory.bytesInUse == 0)
        let reopened = try PartitionLog.open(directory: path, config: config)
        #expect(try readAll(reopened, from: 9_999).map(\.1) == ["b9999-0", "after-0"])
        #expect(try reopened.offset(forTimestamp: 1_700_000_000_000 + 4_000)?.offset == 4_000)
        try reopened.close()
    }

    /// Indexes keep in memory only what their budget allows: past it, a growth the disk refused
    /// fails the append (whole, as any index failure), and nothing stays charged.
    @Test func indexesInMemoryStayWithinTheirBudget() throws {
        let dir = TemporaryDirectory("fault-index-budget")
        defer { StorageFaults.clear(pathContains: dir.path) }
        var config = Self.indexEveryBatch()
        config.indexMemory = IndexMemoryBudget(limit: 150 * 1024)
        let log = try PartitionLog.open(directory: dir.path + "/t-0", config: config)
        StorageFaults.inject(.allocate, .noSpace, pathContains: dir.path + "/t-0/", skip: 2, times: nil)
        let (appended, failure) = Self.appendUntilFailure(log, limit: 10_000)
        // The time index moved to memory at batch 5,462 and holds 24 pages at batch 8,192; the
        // offset index's move at 8,193 (17 pages) would pass the budget.
        #expect(failure?.code == .noSpace, "\(String(describing: failure))")
        #expect(appended == 8_193)
        #expect(log.logEndOffset == 8_193)
        #expect(config.indexMemory.bytesInUse == 24 * 4096)
        #expect(try readAll(log).count == 8_193)
        try log.close()
        #expect(config.indexMemory.bytesInUse == 0)
    }

    /// A clean close that could write one index but not the other (a full disk) leaves that
    /// one's file removed: the next open rebuilds both from the log rather than trust the one
    /// left beside an empty new one (the time index's largest timestamp, batch 10's here, would
    /// be missed by a scan of the tail alone).
    @Test func aSegmentMissingOneIndexRebuildsBoth() throws {
        let dir = TemporaryDirectory("fault-one-index")
        let path = dir.path + "/t-0"
        let log = try PartitionLog.open(directory: path, config: Self.indexEveryBatch())
        for i in 0..<100 {
            try log.append(makeBatch(tag: "b\(i)", count: 1, timestamp: i == 10 ? 1_900_000_000_000 : 1_700_000_000_000 + Int64(i)))
        }
        try log.close()
        try FileSystem.remove(path + "/" + segmentName(0, ".timeindex"))
        let reopened = try PartitionLog.open(directory: path, config: Self.indexEveryBatch())
        #expect(try reopened.offset(forTimestamp: 1_800_000_000_000)?.offset == 10)
        #expect(try reopened.offset(forTimestamp: 1_700_000_000_050)?.offset == 10)
        try reopened.close()
    }

    /// A recovery checkpoint that cannot be rewritten at open (here EIO) does not keep the log
    /// from opening, and is removed rather than left saying a point recovery may have cut
    /// below: the next crash recovery scans from the start.
    /// A close that fails half way (the clean-shutdown marker's fsync; the trim of the offset
    /// index, after it was unmapped) closes the log all the same: the next append or read gets
    /// an error, where it trapped on the half-sealed segment (a precondition on the append, a
    /// nil mapping on the read); the next open keeps every record.
    @Test(arguments: ["marker", "index"])
    func aCloseThatFailsHalfWayStillClosesTheLog(_ step: String) throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        let log = try PartitionLog.open(directory: dir.path, config: Self.indexEveryBatch())
        #expect(Self.appendUntilFailure(log, limit: 100).appended == 100)
        if step == "marker" {
            StorageFaults.inject(.sync, .ioError, pathContains: dir.path + "/.clean-shutdown")
        } else {
            StorageFaults.inject(.truncate, .ioError, pathContains: dir.path + "/00000000000000000000.index")
        }
        #expect(throws: StorageError.self) { try log.close() }
        #expect(log.isClosed)
        #expect(throws: StorageError.self) { try log.append(makeBatch(tag: "late", count: 1)) }
        #expect(throws: StorageError.self) { _ = try log.read(from: 0, maxBytes: 1 << 20) }
        StorageFaults.clear(pathContains: dir.path)
        let reopened = try PartitionLog.open(directory: dir.path, config: Self.indexEveryBatch())
        #expect(reopened.logEndOffset == 100)
        #expect(try reopened.readBatches(from: 99, maxBytes: 1).first?.header.lastOffset == 99)
        try reopened.close()
    }

    @Test func aCheckpointThatCannotBeRewrittenAtOpenIsRemoved() throws {
        let dir = TemporaryDirectory("fault-checkpoint")
        defer { StorageFaults.clear(pathContains: dir.path) }
        let path = dir.path + "/t-0"
        var config = LogConfig()
        config.segmentBytes = 4096
        do {
            let log = try PartitionLog.open(directory: path, config: config)
            for i in 0..<40 { try log.append(makeBatch(tag: "b\(i)", count: 5, valueBytes: 100)) }
            try log.flush()
            #expect(FileSystem.exists(path + "/recovery-point.checkpoint"))
        }  // a crash
        StorageFaults.inject(.write, .ioError, pathContains: path + "/recovery-point.checkpoint", times: nil)
        let log = try PartitionLog.open(directory: path, config: config)
        #expect(log.logEndOffset == 200)
        #expect(!FileSystem.exists(path + "/recovery-point.checkpoint"))
        StorageFaults.clear(pathContains: dir.path)
        try log.append(makeBatch(tag: "after", count: 1))
        try log.flush()  // the next flush writes it again
        #expect(FileSystem.exists(path + "/recovery-point.checkpoint"))
        try log.close()
    }

    /// A segment made by a roll reserves index space with its first index entry, not at its
    /// creation; when that fails (EIO), the append fails whole, everything before it stays
    /// readable, and appends resume once the fault is gone.
    @Test func anIndexFailureAfterARollFailsTheAppendWhole() throws {
        let dir = TemporaryDirectory("fault-roll")
        defer { StorageFaults.clear(pathContains: dir.path) }
        var config = LogConfig()
        config.segmentBytes = 2500  // two of these batches fit, the third rolls
        config.indexIntervalBytes = 1000  // the new segment's second batch gets an index entry
        let log = try PartitionLog.open(directory: dir.path + "/t-0", config: config)
        let batch = makeBatch(tag: "r", count: 5, valueBytes: 200)
        try log.append(batch)
        try log.append(batch)
        #expect(log.segmentCount == 1)
        // The next segment's files: its base offset is the current end.
        let next = segmentName(log.logEndOffset, ".index")
        StorageFaults.inject(.allocate, .ioError, pathContains: dir.path + "/t-0/" + next, times: nil)
        try log.append(batch)  // rolls: creating the segment reserves nothing
        #expect(log.segmentCount == 2)
        let end = log.logEndOffset
        var failure: StorageError?
        for _ in 0..<10 where failure == nil {
            do { try log.append(batch) } catch { failure = error }
        }
        #expect(failure?.code == .io)
        let failedAt = log.logEndOffset
        #expect(failedAt >= end)
        #expect(try readAll(log).count == Int(failedAt))
        StorageFaults.clear(pathContains: dir.path)
        try log.append(batch)
        #expect(log.logEndOffset == failedAt + 5)
        #expect(try readAll(log).count == Int(failedAt + 5))
        try log.close()
        let reopened = try PartitionLog.open(directory: dir.path + "/t-0", config: config)
        #expect(reopened.recoveryReport.truncatedBytes == 0 && reopened.logEndOffset == failedAt + 5)
        try reopened.close()
    }

    /// A roll whose index seal fails halfway (no descriptor for the time index, or its trim
    /// fails after the offset index was sealed) leaves the old segment active and whole: a
    /// batch that still fits it is appended (this used to trap: the offset index was sealed
    /// under a segment that still took appends), and the roll succeeds once the fault is gone.
    @Test(arguments: [(StorageFaults.Operation.open, Errno.tooManyOpenFiles), (.truncate, .ioError)])
    func anIndexSealFailingHalfwayLeavesTheSegmentActive(operation: StorageFaults.Operation, errno: Errno) throws {
        let dir = TemporaryDirectory("fault-seal")
        defer { StorageFaults.clear(pathContains: dir.path) }
        var config = Self.indexEveryBatch()
        config.segmentBytes = 2500  // two large batches fit, the third rolls
        let log = try PartitionLog.open(directory: dir.path + "/t-0", config: config)
        var timestamp: Int64 = 1_700_000_000_000
        func batch(_ tag: String, large: Bool) -> [UInt8] {
            timestamp += 10
            return makeBatch(tag: tag, count: large ? 5 : 1, timestamp: timestamp, valueBytes: large ? 200 : 0)
        }
        try log.append(batch("a", large: true))
        try log.append(batch("b", large: true))
        StorageFaults.inject(operation, errno, pathContains: dir.path + "/t-0/" + segmentName(0, ".timeindex"))
        #expect(throws: StorageError.self) { try log.append(batch("c", large: true)) }
        #expect(log.segmentCount == 1)
        try log.append(batch("small", large: false))  // fits the old segment
        #expect(log.logEndOffset == 11)
        try log.append(batch("d", large: true))  // rolls
        #expect(log.segmentCount == 2)
        #expect(try log.offset(forTimestamp: timestamp - 10)?.offset == 10)
        try log.close()
        let reopened = try PartitionLog.open(directory: dir.path + "/t-0", config: config)
        #expect(reopened.recoveryReport.truncatedBytes == 0)
        #expect(try readAll(reopened).map { String($0.1.prefix { $0 >= " " }) } == (0..<5).map { "a-\($0)" } + (0..<5).map { "b-\($0)" } + ["small-0"] + (0..<5).map { "d-\($0)" })
        #expect(try reopened.offset(forTimestamp: timestamp - 10)?.offset == 10)
        try reopened.close()
    }

    /// A segment whose descriptor was closed for the open-file budget and cannot be reopened
    /// (EMFILE): a flush fails without failing the log (nothing was synced, nothing dropped:
    /// the next flush works; it used to refuse every append until a restart), and a roll fails
    /// leaving the segment active and writable (it used to leave it sealed, and the next batch
    /// that fit trapped the broker).
    @Test func aDescriptorThatCannotBeReopenedFailsOnlyThatFlushOrRoll() throws {
        let dir = TemporaryDirectory("fault-reopen")
        defer { StorageFaults.clear(pathContains: dir.path) }
        let budget = OpenFileBudget(limit: 1)
        var config = Self.indexEveryBatch()
        config.segmentBytes = 2500  // two large batches fit, the third rolls
        let log = try PartitionLog.open(directory: dir.path + "/a-0", config: config, budget: budget)
        let other = try PartitionLog.open(directory: dir.path + "/b-0", config: config, budget: budget)
        var timestamp: Int64 = 1_700_000_000_000
        func batch(_ tag: String, large: Bool) -> [UInt8] {
            timestamp += 10
            return makeBatch(tag: tag, count: large ? 5 : 1, timestamp: timestamp, valueBytes: large ? 200 : 0)
        }
        let activePath = dir.path + "/a-0/" + segmentName(0, ".log")
        try log.append(batch("a", large: true))
        try other.append(batch("x", large: false))  // the budget closes the other log's descriptor
        StorageFaults.inject(.open, .tooManyOpenFiles, pathContains: activePath)
        #expect(throws: StorageError.self) { try log.flush() }
        try log.append(batch("b", large: true))  // not failed
        try log.flush()

        try other.append(batch("y", large: false))
        StorageFaults.inject(.open, .tooManyOpenFiles, pathContains: activePath)
        #expect(throws: StorageError.self) { try log.append(batch("c", large: true)) }  // needs a roll
        #expect(log.segmentCount == 1)
        try log.append(batch("small", large: false))  // fits the old segment, which is still active
        try log.append(batch("d", large: true))  // rolls
        #expect(log.segmentCount == 2)
        try log.close()
        try other.close()
        let reopened = try PartitionLog.open(directory: dir.path + "/a-0", config: config)
        #expect(try readAll(reopened).map { String($0.1.prefix { $0 >= " " }) } == (0..<5).map { "a-\($0)" } + (0..<5).map { "b-\($0)" } + ["small-0"] + (0..<5).map { "d-\($0)" })
        try reopened.close()
    }

    /// Retention of a log whose every segment expired rolls to delete the active one too; a
    /// roll that fails (a full disk) still lets the inactive ones go, and says why.
    @Test func retentionWhoseRollFailsStillDeletesTheInactiveSegments() throws {
        let dir = TemporaryDirectory("fault-retention")
        defer { StorageFaults.clear(pathContains: dir.path) }
        var config = Self.indexEveryBatch()
        config.segmentBytes = 2500
        config.retentionMs = 60_000
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let future = Int64(now.tv_sec) * 1000 + 3_600_000
        let log = try PartitionLog.open(directory: dir.path + "/t-0", config: config, clock: { future })
        try log.append(makeBatch(tag: "a", count: 5, timestamp: 1_700_000_000_000, valueBytes: 200))
        try log.append(makeBatch(tag: "b", count: 5, timestamp: 1_700_000_000_000, valueBytes: 200))
        try log.append(makeBatch(tag: "c", count: 5, timestamp: 1_700_000_000_000, valueBytes: 200))  // rolls
        #expect(log.segmentCount == 2)
        StorageFaults.inject(.open, .noSpace, pathContains: dir.path + "/t-0/" + segmentName(15, ".log"))
        #expect(throws: StorageError.self) { try log.enforceRetention() }
        #expect(log.segmentCount == 1 && log.logStartOffset == 10)
        #expect(try log.enforceRetention() == [10])  // the disk has room again: the active one goes too
        #expect(log.logStartOffset == 15 && log.logEndOffset == 15)
        try log.close()
    }

    /// EIO on fdatasync fails the log for good (the kernel may have dropped the pages):
    /// appends are refused with a storage error, reads are still served.
    @Test func eioOnFdatasyncFailsTheLogButReadsGoOn() throws {
        let dir = TemporaryDirectory("fault-eio")
        defer { StorageFaults.clear(pathContains: dir.path) }
        var config = LogConfig()
        config.flushPolicy = .everyAppend
        let log = try PartitionLog.open(directory: dir.path + "/t-0", config: config)
        try log.append(makeBatch(tag: "ok", count: 3))
        StorageFaults.inject(.sync, .ioError, pathContains: dir.path + "/t-0/")
        #expect {
            try log.append(makeBatch(tag: "lost", count: 1))
        } throws: { ($0 as? StorageError)?.errno == .ioError }
        StorageFaults.clear(pathContains: dir.path)
        #expect {
            try log.append(makeBatch(tag: "after", count: 1))
        } throws: { ($0 as? StorageError)?.code == .failed }
        #expect(log.flushedOffset == 3)
        #expect(try readAll(log).map(\.1).prefix(3) == ["ok-0", "ok-1", "ok-2"])
        // The kernel may have dropped pages it had been given: the open marker no longer names
        // this boot, so a crash from here on is recovered as after a power loss.
        #expect(!LogMarkers.wasOpenedInThisBoot(dir.path + "/t-0"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.path + "/t-0/.clean-shutdown")) == Data("0".utf8))
    }

    /// EIO on the close's own fsync: the close fails, and so does the log, so that closing it
    /// again leaves no clean-shutdown marker (a second sync would report success over pages the
    /// kernel may have dropped) and the next open scans it as after a crash.
    @Test func eioWhileClosingLeavesTheLogUnclean() throws {
        let dir = TemporaryDirectory("fault-close")
        defer { StorageFaults.clear(pathContains: dir.path) }
        let log = try PartitionLog.open(directory: dir.path + "/t-0", config: LogConfig())
        try log.append(makeBatch(tag: "a", count: 3))
        try log.flush()
        try log.append(makeBatch(tag: "b", count: 3))
        // The first sync (the flush's fdatasync) goes through; the close's fsync fails.
        StorageFaults.inject(.sync, .ioError, pathContains: dir.path + "/t-0/", skip: 1)
        #expect { try log.close() } throws: { ($0 as? StorageError)?.errno == .ioError }
        #expect(!LogMarkers.wasOpenedInThisBoot(dir.path + "/t-0"))
        StorageFaults.clear(pathContains: dir.path)
        try log.close()
        #expect(log.isClosed)
        let reopened = try PartitionLog.open(directory: dir.path + "/t-0", config: LogConfig())
        #expect(!reopened.recoveryReport.wasCleanShutdown)
        try reopened.close()
    }

    /// EINTR is retried by every wrapper: writes, reads, syncs and allocations succeed.
    @Test func eintrIsRetried() throws {
        let dir = TemporaryDirectory("fault-eintr")
        defer { StorageFaults.clear(pathContains: dir.path) }
        let log = try PartitionLog.open(directory: dir.path + "/t-0", config: Self.indexEveryBatch())
        for operation in [StorageFaults.Operation.write, .read, .sync, .truncate] {
            StorageFaults.inject(operation, .interrupted, pathContains: dir.path + "/t-0/", times: 3)
        }
        try log.append(makeBatch(tag: "a", count: 10))
        try log.flush()
        #expect(log.flushedOffset == 10)
        #expect(try readAll(log).count == 10)
        StorageFaults.inject(.allocate, .interrupted, pathContains: dir.path + "/t-0/", times: 3)
        let (appended, failure) = Self.appendUntilFailure(log, limit: 6_000)
        #expect(failure == nil && appended == 6_000)
        try log.roll()
        #expect(try readAll(log).count == 6_010)
        try log.close()
    }

    /// EIO on pread fails that read with a storage error; the next read works.
    @Test func eioOnReadFailsThatRead() throws {
        let dir = TemporaryDirectory("fault-pread")
        defer { StorageFaults.clear(pathContains: dir.path) }
        let log = try PartitionLog.open(directory: dir.path + "/t-0")
        try log.append(makeBatch(tag: "r", count: 5))
        StorageFaults.inject(.read, .ioError, pathContains: dir.path + "/t-0/")
        #expect(throws: StorageError.self) { _ = try log.readBatches(from: 0, maxBytes: 1 << 20) }
        #expect(try readAll(log).count == 5)
        try log.close()
    }
}

import Foundation
import Synchronization
import TestSupport
import Testing

@testable import TidemarkStorage

/// Zeros written ahead of the appends of logs that sync every append
/// (`LogSegment.preallocateAhead`): on disk while the segment is active, never read as data,
/// trimmed at roll and clean close, cut by recovery after a crash without counting as a loss.
@Suite struct PreallocationTests {
    static let batchRecords = 4
    static let batchSize = makeBatch(tag: "b000", count: batchRecords).count

    static func config(_ policy: FlushPolicy = .everyAppend, segmentBytes: Int = 1 << 20) -> LogConfig {
        var config = LogConfig()
        config.flushPolicy = policy
        config.segmentBytes = segmentBytes
        config.indexIntervalBytes = 300
        return config
    }

    /// Appends batches `first..<first+count`; `syncing: false` leaves the sync to a flusher.
    static func append(_ log: PartitionLog, from first: Int, count: Int, syncing: Bool = true) throws {
        for b in first..<(first + count) {
            try log.append(makeBatch(tag: String(format: "b%03d", b), count: batchRecords), applyingFlushPolicy: syncing)
        }
    }

    static func expectRecords(_ log: PartitionLog, batches: Int) throws {
        let records = try readAll(log)
        #expect(records.map(\.0) == Array(0..<Int64(batches * batchRecords)))
        #expect(records.last?.1 == String(format: "b%03d", batches - 1) + "-\(batchRecords - 1)")
    }

    /// The bytes of `path` from `position` to its end.
    static func tail(_ path: String, from position: Int) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)).dropFirst(position))
    }

    /// Appends `batches`, syncs, writes zeros ahead, and "crashes": the log is dropped
    /// without `close()`.
    static func writeZerosAheadAndCrash(_ dir: TemporaryDirectory, batches: Int) throws {
        let log = try PartitionLog.open(directory: dir.path, config: config())
        try append(log, from: 0, count: batches)
        try log.flush()
        log.preallocateAhead()
    }

    /// Appends zeros to `path` up to the next 4 KiB boundary, and `extraPages` pages more:
    /// what zeros written ahead leave.
    static func padWithZeros(_ path: String, extraPages: Int = 0) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(count: 4096 - fileSize(path) % 4096 + 4096 * extraPages))
        try handle.close()
    }

    var log0: String { segmentName(0, ".log") }

    @Test func zerosAheadOfTheAppendsAreNeverReadAndGoAtAClose() throws {
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path, config: Self.config())
        try Self.append(log, from: 0, count: 40, syncing: false)
        // Through the flusher, as the broker does it: after a pass, room ahead.
        let flusher = LogFlusher()
        try flusher.durableBlocking(log, upTo: log.logEndOffset)
        flusher.shutdown()  // waits for the pass (and its preallocation) to finish
        let data = 40 * Self.batchSize
        #expect(log.sizeInBytes == Int64(data))
        let onDisk = fileSize(dir.file(log0))
        #expect(onDisk > data)
        #expect(onDisk <= data + (16 << 10))  // a small segment keeps 16 KiB ahead
        #expect(try Self.tail(dir.file(log0), from: data).allSatisfy { $0 == 0 })
        try Self.expectRecords(log, batches: 40)
        #expect(try log.read(from: log.logEndOffset, maxBytes: 1 << 20).slice == nil)

        // Appends go into the zeros, and reads stop at the last batch.
        try Self.append(log, from: 40, count: 5)
        #expect(fileSize(dir.file(log0)) == onDisk)
        try Self.expectRecords(log, batches: 45)

        try log.close()
        #expect(fileSize(dir.file(log0)) == 45 * Self.batchSize)
        let reopened = try PartitionLog.open(directory: dir.path, config: Self.config())
        defer { try? reopened.close() }
        #expect(reopened.recoveryReport.wasCleanShutdown)
        #expect(reopened.recoveryReport.truncatedBytes == 0)
        try Self.expectRecords(reopened, batches: 45)
    }

    @Test func aCrashLeavesZerosThatRecoveryCutsWithoutALoss() throws {
        let dir = TemporaryDirectory()
        try Self.writeZerosAheadAndCrash(dir, batches: 30)
        let data = 30 * Self.batchSize
        #expect(fileSize(dir.file(log0)) > data)

        // The offline tools see space, not damage.
        var items: [String] = []
        try SegmentInspector.scan(logFile: dir.file(log0)) { item in
            switch item {
            case .batch: break
            case .invalidContent: items.append("invalid")
            case .damaged: items.append("damaged")
            case .preallocatedTail(let position, _): items.append("zeros at \(position)")
            }
        }
        #expect(items == ["zeros at \(data)"])
        let report = try LogVerifier.verify(partitionDirectory: dir.path)
        #expect(report.isHealthy, "\(report.problems)")
        #expect(report.notes.contains { $0.message.contains("space written ahead of appends") })

        let log = try PartitionLog.open(directory: dir.path, config: Self.config())
        defer { try? log.close() }
        #expect(!log.recoveryReport.wasCleanShutdown)
        #expect(log.recoveryReport.truncatedBytes == 0)
        #expect(log.recoveryReport.losses.isEmpty)
        #expect(fileSize(dir.file(log0)) == data)
        try Self.expectRecords(log, batches: 30)
        #expect(try log.append(makeBatch(tag: "next", count: 1)).firstOffset == Int64(30 * Self.batchRecords))
    }

    @Test func aWriteTornInsideTheZerosIsCutAsALoss() throws {
        let dir = TemporaryDirectory()
        try Self.writeZerosAheadAndCrash(dir, batches: 30)
        let data = 30 * Self.batchSize
        let onDisk = fileSize(dir.file(log0))
        // The next batch (two pages long) was copied up to the page boundary when the process
        // was killed (the kernel stops between pages): the rest stayed zeros.
        let torn = makeBatch(tag: "torn", count: Self.batchRecords, valueBytes: 1_500)
        let boundary = (data / 4096 + 1) * 4096
        #expect(torn.count > boundary - data && data + torn.count < onDisk)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file(log0)))
        try handle.seek(toOffset: UInt64(data))
        try handle.write(contentsOf: Data(torn.prefix(boundary - data)))
        try handle.close()
        #expect(fileSize(dir.file(log0)) == onDisk)

        // verify: the unfinished write of a crash (a note), not damage.
        let report = try LogVerifier.verify(partitionDirectory: dir.path)
        #expect(report.isHealthy, "\(report.problems)")
        #expect(report.notes.contains { $0.message.contains("an unfinished write of the crash") })

        let log = try PartitionLog.open(directory: dir.path, config: Self.config())
        defer { try? log.close() }
        #expect(log.recoveryReport.truncatedBytes == onDisk - data)
        #expect(log.recoveryReport.losses.count == 1)
        try Self.expectRecords(log, batches: 30)
    }

    /// A write killed after its first chunk, when the batch began 4-11 bytes before a page
    /// boundary: only its base offset (and part of its length) reached the page cache, zeros
    /// after. Cut as the unfinished write it is, in the same boot (it was refused: the length
    /// read as 0).
    @Test(arguments: [8, 9, 10]) func aWriteKilledInsideItsHeaderIsCut(written: Int) throws {
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path, config: Self.config())
        try Self.append(log, from: 0, count: 30)
        let end = 30 * Self.batchSize
        let padding = try #require((100..<4000).first { makeBatch(tag: "pad", count: 1, valueBytes: $0).count == 4096 - written - end })
        try log.append(makeBatch(tag: "pad", count: 1, valueBytes: padding))
        try log.flush()
        log.preallocateAhead()
        let onDisk = fileSize(dir.file(log0))
        #expect(onDisk > 4096)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file(log0)))
        try handle.seek(toOffset: UInt64(4096 - written))
        // The batch as the log writes it: its base offset is the log's end, 121.
        var torn = makeBatch(tag: "torn", count: Self.batchRecords)
        withUnsafeBytes(of: Int64(30 * Self.batchRecords + 1).bigEndian) { torn.replaceSubrange(0..<8, with: $0) }
        try handle.write(contentsOf: Data(torn.prefix(written)))
        try handle.close()
        // (An offset below 256 is zeros but for its 8th byte: fewer bytes read as zeros alone.)
        let report = try LogVerifier.verify(partitionDirectory: dir.path)
        #expect(report.isHealthy, "\(report.problems)")
        let reopened = try PartitionLog.open(directory: dir.path, config: Self.config())
        #expect(reopened.logEndOffset == Int64(30 * Self.batchRecords + 1))
        try reopened.close()
    }

    /// A byte flipped in the last batch of a log that syncs its appends (zeros written ahead
    /// after it), found after a kill -9: the batch is whole, so the zeros after its last
    /// non-zero byte (most batches end with a 0: no record headers) do not begin where a killed
    /// write stops (a page boundary). Refused, not cut as a write cut short (an outside hunt:
    /// a synced batch of a `flush.messages=1` topic cut, `verify` calling it a note). After a
    /// reboot too: a power loss loses whole sectors, and no sector boundary lies between the
    /// batch's last non-zero byte and its end.
    @Test func aFlippedByteInTheLastSyncedBatchIsRefusedAfterAKill() throws {
        for rebooted in [false, true] {
            let dir = TemporaryDirectory()
            try Self.writeZerosAheadAndCrash(dir, batches: 30)
            var bytes = try Data(contentsOf: URL(fileURLWithPath: dir.file(log0)))
            bytes[29 * Self.batchSize + 70] ^= 0x5A
            try bytes.write(to: URL(fileURLWithPath: dir.file(log0)))
            if rebooted { try simulateReboot(dir.path) }
            #expect(!(try LogVerifier.verify(partitionDirectory: dir.path).isHealthy))
            #expect { try PartitionLog.open(directory: dir.path, config: Self.config()) } throws: {
                ($0 as? StorageError)?.code == .corruptLog
            }
        }
    }

    /// The broker trusts an older segment's size (it does not rescan it): zeros there would
    /// meet readers, so verify calls them a problem. (Rolls trim and fsync, so only a disk or
    /// a hand could leave them.) Zeros are space whatever the log's settings now (they may
    /// have changed since the zeros were written).
    @Test func zerosWhereNoneBelongAreNotTakenForSpace() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try PartitionLog.open(directory: dir.path, config: Self.config(segmentBytes: 8 << 10))
            try Self.append(log, from: 0, count: 200)
            try log.close()
        }
        let first = dir.file(log0)
        let size = fileSize(first)
        try Self.padWithZeros(first)
        let report = try LogVerifier.verify(partitionDirectory: dir.path)
        #expect(report.problems.contains { $0.path == first && $0.message.contains("does not rescan") }, "\(report.problems)")
        // --repair cuts them as space: no loss, and the segments after it stay.
        let segments = try LogVerifier.segmentFiles(in: dir.path).count
        let repaired = try LogVerifier.repair(partitionDirectory: dir.path)
        #expect(repaired.losses.isEmpty, "\(repaired.losses)")
        #expect(repaired.deletedSegments.isEmpty)
        #expect(try LogVerifier.segmentFiles(in: dir.path).count == segments)
        #expect(fileSize(first) == size)
        #expect(try LogVerifier.verify(partitionDirectory: dir.path).isHealthy)
        do {
            let log = try PartitionLog.open(directory: dir.path, config: Self.config(segmentBytes: 8 << 10))
            defer { try? log.close() }
            try Self.expectRecords(log, batches: 200)
        }

        let other = TemporaryDirectory()
        do {
            let log = try PartitionLog.open(directory: other.path, config: Self.config(.os))
            try Self.append(log, from: 0, count: 10)
        }
        let path = other.file(log0)
        try Self.padWithZeros(path)
        let reopened = try PartitionLog.open(directory: other.path, config: Self.config(.os))
        defer { try? reopened.close() }
        #expect(reopened.recoveryReport.truncatedBytes == 0)
        #expect(fileSize(path) == 10 * Self.batchSize)
        try Self.expectRecords(reopened, batches: 10)
    }

    /// A checkpoint written at a segment's end, a roll (which cuts that segment's zeros, in the
    /// page cache only until the next sync), then a crash: the previous segment still ends
    /// with zeros on disk. Recovery scans it too, and cuts them.
    @Test func aCrashRightAfterARollCutsTheZerosItKept() throws {
        let dir = TemporaryDirectory()
        let config = Self.config(.os, segmentBytes: 8 << 10)  // the zeros are written by hand below
        do {
            let log = try PartitionLog.open(directory: dir.path, config: config)
            try Self.append(log, from: 0, count: 200)
            try log.close()
        }
        let segments = try LogVerifier.segmentFiles(in: dir.path)
        #expect(segments.count >= 3)
        let (base, path) = (segments[segments.count - 1].base, segments[segments.count - 2].path)
        try Self.padWithZeros(path, extraPages: 1)
        try LogMarkers.writeRecoveryPoint(base, directory: dir.path, sync: false)
        try Data("0".utf8).write(to: URL(fileURLWithPath: dir.file(".clean-shutdown")))
        #expect(try LogVerifier.verify(partitionDirectory: dir.path).isHealthy)

        let log = try PartitionLog.open(directory: dir.path, config: config)
        defer { try? log.close() }
        #expect(log.recoveryReport.losses.isEmpty, "\(log.recoveryReport.losses)")
        #expect(fileSize(path) % 4096 != 0)
        try Self.expectRecords(log, batches: 200)
    }

    @Test func aRollTrimsTheSegmentItLeaves() throws {
        let dir = TemporaryDirectory()
        let segmentBytes = 64 << 10
        let log = try PartitionLog.open(directory: dir.path, config: Self.config(segmentBytes: segmentBytes))
        defer { try? log.close() }
        let batches = 3 * segmentBytes / Self.batchSize
        for b in 0..<batches {
            try Self.append(log, from: b, count: 1)
            log.preallocateAhead()
            #expect(fileSize(dir.file(log0)) <= max(segmentBytes, Self.batchSize * (b + 1)))
        }
        let segments = try LogVerifier.segmentFiles(in: dir.path)
        #expect(segments.count >= 3)
        for segment in segments.dropLast() {
            var ends: [String] = []
            try SegmentInspector.scan(logFile: segment.path) { item in
                if case .batch = item { return }
                ends.append("\(item)")
            }
            #expect(ends.isEmpty, "\(segment.path): \(ends)")
        }
        try Self.expectRecords(log, batches: batches)
    }

    @Test func logsThatDoNotSyncEveryAppendWriteNoZeros() throws {
        for policy in [FlushPolicy.os, .everyMessages(2), .everyInterval(milliseconds: 1000)] {
            let dir = TemporaryDirectory()
            let log = try PartitionLog.open(directory: dir.path, config: Self.config(policy))
            defer { try? log.close() }
            try Self.append(log, from: 0, count: 10)
            try log.flush()
            log.preallocateAhead()
            #expect(fileSize(dir.file(log0)) == 10 * Self.batchSize, "\(policy)")
        }
        // Unless they are synced often another way (the broker's internal logs).
        var config = Self.config(.os)
        config.preallocate = true
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path, config: config)
        defer { try? log.close() }
        try Self.append(log, from: 0, count: 10)
        log.preallocateAhead()
        #expect(fileSize(dir.file(log0)) > 10 * Self.batchSize)
    }

    @Test func aFullDiskOnlyStopsTheZeros() throws {
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path, config: Self.config())
        defer { try? log.close() }
        try Self.append(log, from: 0, count: 10)
        StorageFaults.inject(.write, .noSpace, pathContains: dir.path)
        log.preallocateAhead()
        StorageFaults.clear(pathContains: dir.path)
        #expect(fileSize(dir.file(log0)) == 10 * Self.batchSize)
        try Self.append(log, from: 10, count: 10)
        try log.flush()
        try Self.expectRecords(log, batches: 20)
        log.preallocateAhead()
        #expect(fileSize(dir.file(log0)) > 20 * Self.batchSize)
    }
}

extension LogFlusher {
    /// `durable` for a synchronous test: blocks the calling thread until the answer.
    func durableBlocking(_ log: PartitionLog, upTo offset: Int64) throws(StorageError) {
        let answered = DispatchSemaphore(value: 0)
        let outcome = Mutex<StorageError?>(nil)
        whenDurable(log, upTo: offset) { error in
            outcome.withLock { $0 = error }
            answered.signal()
        }
        answered.wait()
        if let error = outcome.withLock({ $0 }) { throw error }
    }
}

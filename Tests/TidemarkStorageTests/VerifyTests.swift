import Foundation
import TestSupport
import Testing

@testable import TidemarkStorage

/// `verify` accepts exactly what recovery accepts and reports only real damage.
@Suite struct VerifyTests {
    /// A log left as a kill -9 leaves it: no clean-shutdown marker, indexes with their
    /// zero-filled preallocated tails. Verify used to read the zeros as entries and fail
    /// after every crash; it is healthy, with notes.
    @Test func crashLeftoversAreNotDamage() throws {
        let dir = TemporaryDirectory()
        var config = LogConfig()
        config.indexIntervalBytes = 100
        config.segmentBytes = 64 * 1024
        let path = dir.path + "/t-0"
        do {
            let log = try PartitionLog.open(directory: path, config: config)
            for i in 0..<300 { try log.append(makeBatch(tag: "c\(i)", count: 3, valueBytes: 60)) }
            #expect(log.segmentCount > 1)
            // No close: the process "dies" here.
        }
        let indexFiles = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".index") }.sorted()
        #expect(fileSize(path + "/" + indexFiles.last!) == MappedIndexFile.initialBytes)
        let report = try LogVerifier.verify(partitionDirectory: path)
        #expect(report.isHealthy, "\(report.problems)")
        #expect(!report.wasCleanShutdown && !report.notes.isEmpty)
        #expect(report.records == 900)

        // An interrupted write at the end of the newest segment is crash residue too...
        let active = path + "/" + indexFiles.last!.replacingOccurrences(of: ".index", with: ".log")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: active))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(makeBatch(tag: "torn", count: 5).prefix(40)))
        try handle.close()
        let torn = try LogVerifier.verify(partitionDirectory: path)
        #expect(torn.isHealthy && torn.notes.contains { $0.message.contains("unfinished write") })
        // ... and recovery agrees: it cuts exactly that and keeps every record.
        let reopened = try PartitionLog.open(directory: path, config: config)
        #expect(reopened.recoveryReport.truncatedBytes == 40)
        #expect(try readAll(reopened).count == 900)
        try reopened.close()
        #expect(try LogVerifier.verify(partitionDirectory: path).notes.isEmpty)
    }

    /// Damage recovery would not cut by itself, or would cut with data after it, is a problem.
    @Test func realDamageIsAProblem() throws {
        let dir = TemporaryDirectory()
        var config = LogConfig()
        config.segmentBytes = 16 * 1024
        let path = dir.path + "/t-0"
        let log = try PartitionLog.open(directory: path, config: config)
        for i in 0..<100 { try log.append(makeBatch(tag: "d\(i)", count: 2, valueBytes: 100)) }
        try log.close()
        let first = path + "/" + segmentName(0, ".log")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: first))
        bytes[bytes.count / 2] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: first))
        let report = try LogVerifier.verify(partitionDirectory: path)
        #expect(!report.isHealthy)
        #expect(report.problems.contains { $0.message.contains("bad batch") && $0.message.contains("follow a gap") })
    }

    /// Batches with valid CRCs and wrong contents (what produce now refuses) are flagged in
    /// files written before validation existed.
    @Test func invalidContentsStoredEarlierAreFlagged() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/t-0"
        let log = try PartitionLog.open(directory: path)
        try log.append(makeBatch(tag: "good", count: 2))
        for (_, forged) in ForgedBatch.refusedKinds { try log.append(forged) }
        try log.append(makeBatch(tag: "good", count: 2))
        try log.close()
        let report = try LogVerifier.verify(partitionDirectory: path)
        let flagged = report.problems.filter { $0.message.contains("invalid contents") }
        #expect(flagged.count == ForgedBatch.refusedKinds.count, "\(report.problems)")
    }

    /// Positions are published as atomics: they are read without the log's lock, so a reader
    /// never waits behind a roll or an index rebuild (here: it would deadlock on the lock).
    @Test(.timeLimit(.minutes(1))) func positionsAreReadWithoutTheLock() throws {
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path + "/t-0")
        try log.append(makeBatch(tag: "p", count: 4))
        let seen = log.state.withLock { _ in (log.logStartOffset, log.logEndOffset, log.flushedOffset) }
        #expect(seen.0 == 0 && seen.1 == 4)
        try log.close()
    }
}

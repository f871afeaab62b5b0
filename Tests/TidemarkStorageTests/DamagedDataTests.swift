import Foundation
import TestSupport
import Testing

@testable import TidemarkStorage

#if canImport(Glibc)
import Glibc
#endif

/// Files that were damaged or edited by hand after a clean stop: a base offset changed (it is
/// outside the batch's CRC), a segment named at the end of the offset space, a FIFO where a
/// marker belongs, retention of -1. Each gives an error or Kafka's meaning, never a trap, a
/// start that waits forever, or data deleted.
@Suite struct DamagedDataTests {
    static func config(indexIntervalBytes: Int = 0) -> LogConfig {
        var config = LogConfig()
        config.indexIntervalBytes = indexIntervalBytes
        return config
    }

    /// A batch whose base offset was lowered below the offsets before it: walking the headers
    /// (producer-state replay, tools) stops with a corrupt-log error; it used to read the same
    /// bytes again forever.
    @Test(.timeLimit(.minutes(1))) func offsetsThatGoBackStopAHeaderWalk() throws {
        let dir = TemporaryDirectory()
        // Segment 0 holds a (offsets 0-9) and b (10); c rolls to segment 11, so segment 0 is not
        // scanned at the next open (a clean stop vouches for it).
        let (a, b) = (makeBatch(tag: "a", count: 10), makeBatch(tag: "b", count: 1))
        var config = Self.config(indexIntervalBytes: 1 << 20)
        config.segmentBytes = a.count + b.count
        var log = try PartitionLog.open(directory: dir.path, config: config)
        for batch in [a, b, makeBatch(tag: "c", count: 1)] { try log.append(batch) }
        #expect(log.segmentBaseOffsets == [0, 11])
        try log.close()
        let segment = dir.file(segmentName(0, ".log"))
        let positions = try SegmentSurgery.batchPositions(segment)
        #expect(positions.count == 2)
        try SegmentSurgery.setBaseOffset(segment, position: positions[1], to: 2)

        log = try PartitionLog.open(directory: dir.path, config: config)
        var seen = 0
        #expect { try log.batchHeaders(from: 0) { _ in seen += 1 } } throws: { ($0 as? StorageError)?.code == .corruptLog }
        #expect(seen == 1)
        try log.close()
    }

    /// A cleanly stopped log of three batches of four records (a, b, c), the base offset of one
    /// of them then changed on disk (outside the CRC).
    static func threeBatches(baseOffsetOfBatch batch: Int, setTo offset: Int64) throws -> TemporaryDirectory {
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path, config: Self.config())
        for tag in ["a", "b", "c"] { try log.append(makeBatch(tag: tag, count: 4)) }
        try log.close()
        let segment = dir.file(segmentName(0, ".log"))
        try SegmentSurgery.setBaseOffset(segment, position: try SegmentSurgery.batchPositions(segment)[batch], to: offset)
        return dir
    }

    /// The batch the last index entry points at, with its base offset lowered after a clean
    /// stop: the open refuses it (damage among durable records), and a repair rebuilds the
    /// segment's indexes and cuts that batch. The log's end used to move back to the damaged
    /// batch's end, so the next appends reused offsets that batches before it still had.
    @Test func aDamagedIndexedBatchDoesNotMoveTheEndBack() throws {
        let dir = try Self.threeBatches(baseOffsetOfBatch: 2, setTo: 1)
        var log: PartitionLog

        #expect { try PartitionLog.open(directory: dir.path, config: Self.config()) } throws: {
            ($0 as? StorageError)?.message.contains("it starts at offset 1, expected 8") == true
        }
        _ = try LogVerifier.repair(partitionDirectory: dir.path)
        log = try PartitionLog.open(directory: dir.path, config: Self.config())
        #expect(log.logEndOffset == 8)
        #expect(try log.append(makeBatch(tag: "d", count: 2)).firstOffset == 8)
        #expect(try readAll(log).map(\.0) == Array(0..<10))
        try log.close()
    }

    /// A base offset raised on disk (outside the CRC), in the last batch or the first: offsets
    /// follow on without a gap, so it is damage. (An outside hunt: the open took the jump, the
    /// log's end moved past it (9 to 94 there) and new records went there, while `verify` called it a
    /// problem that `--repair` could not cut; raised in the first batch, the repair cut the good
    /// batches after it and kept the bad one.) `verify` reports it once (the batch after it
    /// was reported too, as starting at an offset other than the damaged one's end).
    @Test(arguments: [2, 0]) func aBaseOffsetRaisedOnDiskIsDamage(batch: Int) throws {
        let dir = try Self.threeBatches(baseOffsetOfBatch: batch, setTo: Int64(batch * 4 + 85))
        var log: PartitionLog
        // One problem, the damaged batch's: the batch after it follows on from where it should
        // have started (it was reported too, "expected \(batch * 4 + 89)").
        let problems = try LogVerifier.verify(partitionDirectory: dir.path).problems.map(\.message)
        #expect(problems.count == 1 && problems.first?.contains("starts at offset \(batch * 4 + 85), expected \(batch * 4)") == true, "\(problems)")
        if batch == 2 {
            // Past the last index entry: read by the open, refused.
            #expect { try PartitionLog.open(directory: dir.path, config: Self.config()) } throws: {
                ($0 as? StorageError)?.message.contains("it starts at offset \(batch * 4 + 85), expected \(batch * 4)") == true
            }
        } else {
            // Before it: trusted by the open, checked by the first read, which refuses it.
            log = try PartitionLog.open(directory: dir.path, config: Self.config())
            #expect { try log.read(from: 0, maxBytes: 1 << 20) } throws: { ($0 as? StorageError)?.code == .corruptLog }
            try log.close()
        }
        _ = try LogVerifier.repair(partitionDirectory: dir.path)
        #expect(try LogVerifier.verify(partitionDirectory: dir.path).problems.isEmpty)
        log = try PartitionLog.open(directory: dir.path, config: Self.config())
        #expect(log.logEndOffset == Int64(batch * 4))
        #expect(try log.append(makeBatch(tag: "d", count: 2)).firstOffset == Int64(batch * 4))
        try log.close()
    }

    /// A segment file named at the end of the offset space (copied in, or made by hand): the
    /// log opens, and an append that would pass Int64.max fails with an error.
    @Test func appendsPastTheLastOffsetFail() throws {
        for base in [Int64.max, Int64.max - 3] {
            let dir = TemporaryDirectory()
            #expect(FileManager.default.createFile(atPath: dir.file(segmentName(base, ".log")), contents: nil))
            let log = try PartitionLog.open(directory: dir.path, config: Self.config())
            #expect(log.logEndOffset == base)
            #expect { try log.append(makeBatch(tag: "x", count: 10)) } throws: { ($0 as? StorageError)?.code == .offsetOutOfRange }
            #expect(log.logEndOffset == base)
            try log.close()
        }
    }

    /// A FIFO where `.clean-shutdown` belongs: the open fails at once with an error naming the
    /// cause (the partition goes offline, the node goes on); it used to wait forever for a
    /// writer. Once the FIFO is moved away, the log opens with everything.
    @Test(.timeLimit(.minutes(1))) func aFifoInPlaceOfAMarkerIsAnErrorNotAWait() throws {
        let dir = TemporaryDirectory()
        var log = try PartitionLog.open(directory: dir.path, config: Self.config())
        try log.append(makeBatch(tag: "a", count: 3))
        try log.close()
        let marker = dir.file(".clean-shutdown")
        try FileManager.default.removeItem(atPath: marker)
        #expect(mkfifo(marker, 0o644) == 0)
        #expect { try FileSystem.readWholeFile(marker) } throws: { ($0 as? StorageError)?.message.contains("not a regular file") == true }
        #expect { _ = try PartitionLog.open(directory: dir.path, config: Self.config()) } throws: {
            ($0 as? StorageError)?.message.contains("not a regular file") == true
        }
        try FileManager.default.removeItem(atPath: marker)
        log = try PartitionLog.open(directory: dir.path, config: Self.config())
        #expect(try readAll(log).map(\.1) == ["a-0", "a-1", "a-2"])
        try log.close()
    }

    /// Retention of -1 (Kafka's "unlimited", written into a config by hand or by an embedder)
    /// deletes nothing; it used to delete every segment, the active one included. A limit far
    /// below zero does not trap on the subtraction either.
    @Test(arguments: [(Int64(-1), Int64(-1)), (Int64.min + 1, Int64.min)])
    func negativeRetentionKeepsEverything(limits: (ms: Int64, bytes: Int64)) throws {
        let dir = TemporaryDirectory()
        var config = Self.config()
        config.segmentBytes = 4096
        config.retentionMs = limits.ms
        config.retentionBytes = limits.bytes
        let log = try PartitionLog.open(directory: dir.path, config: config, clock: { 4_000_000_000_000 })
        for b in 0..<40 { try log.append(makeBatch(tag: "s", count: 5, timestamp: 1_000 + Int64(b))) }
        let segments = log.segmentCount
        #expect(segments > 1)
        #expect(try log.enforceRetention().isEmpty)
        #expect(log.segmentCount == segments && log.logStartOffset == 0 && log.logEndOffset == 200)
        try log.close()
    }

    /// `tidemark verify`'s reading of an index named at the end of the offset space shows the
    /// wrapped offsets (the index's own arithmetic), rather than trapping.
    @Test func inspectingAnIndexNamedAtTheEndDoesNotTrap() throws {
        let dir = TemporaryDirectory()
        let path = dir.file(segmentName(Int64.max, ".index"))
        var entry: [UInt8] = []
        withUnsafeBytes(of: UInt32(5).bigEndian) { entry += $0 }
        withUnsafeBytes(of: UInt32(0).bigEndian) { entry += $0 }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(entry)))
        let entries = try SegmentInspector.offsetIndexEntries(path: path)
        #expect(entries.count == 1 && entries[0].offset == Int64.max &+ 5)
    }

    /// Index files are read a chunk at a time: a sparse one (a hole, 3 chunks and a half) has no
    /// entries and is not held in memory whole; zeros before a real entry are entries, those
    /// after it the tail.
    @Test func indexesAreReadAChunkAtATime() throws {
        let dir = TemporaryDirectory()
        let path = dir.file(segmentName(100, ".index"))
        let size = SegmentInspector.indexChunkBytes * 7 / 2
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        #expect(truncate(path, off_t(size)) == 0)
        var seen = 0
        try SegmentInspector.forEachOffsetIndexEntry(path: path) { _, _ in seen += 1 }
        #expect(seen == 0)
        // One entry past the second chunk: the zeros before it are entries.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seek(toOffset: UInt64(SegmentInspector.indexChunkBytes * 2 + 16))
        var entry: [UInt8] = []
        withUnsafeBytes(of: UInt32(7).bigEndian) { entry += $0 }
        withUnsafeBytes(of: UInt32(9).bigEndian) { entry += $0 }
        handle.write(Data(entry))
        try handle.close()
        let entries = try SegmentInspector.offsetIndexEntries(path: path)
        #expect(entries.count == SegmentInspector.indexChunkBytes * 2 / 8 + 3)
        #expect(entries.last.map { $0.offset == 107 && $0.position == 9 } == true)
        #expect(entries.first.map { $0.offset == 100 && $0.position == 0 } == true)
    }
}

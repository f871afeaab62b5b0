import Glibc
import SystemPackage
import TestSupport
import Testing

@testable import TidemarkStorage

/// ListOffsets by time and by largest timestamp, on logs of many segments.
@Suite struct TimeLookupTests {
    /// One single-record batch per segment, timestamps 1,000 apart.
    static func manySegments(_ dir: TemporaryDirectory, count: Int, config: LogConfig = LogConfig()) throws -> PartitionLog {
        let log = try PartitionLog.open(directory: dir.path + "/t-0", config: config)
        for i in 0..<count {
            try log.append(makeBatch(tag: "s\(i)", count: 1, timestamp: 1_700_000_000_000 + Int64(i) * 1000))
            try log.roll()
        }
        return log
    }

    /// A sealed segment whose time index is empty (a crash while it was rebuilt) has it rebuilt:
    /// it was trusted, and lookups of its times answered the next segment's first offset.
    @Test func anEmptyTimeIndexOfASealedSegmentIsRebuilt() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Self.manySegments(dir, count: 3)
            try log.close()
        }
        let timeIndex = dir.path + "/t-0/" + segmentName(0, ".timeindex")
        #expect(truncate(timeIndex, 0) == 0)
        let log = try PartitionLog.open(directory: dir.path + "/t-0")
        #expect(try log.offset(forTimestamp: 1_700_000_000_000)?.offset == 0)
        #expect(try log.offset(forTimestamp: 1_700_000_000_000 + 1000)?.offset == 1)
        try log.close()
    }

    /// A lookup of a recent time reopened every older segment (indexes mapped and checked),
    /// under the log's lock. Once a segment's largest timestamp is known, it is skipped:
    /// here the older segments cannot even be opened, and the lookup still answers.
    @Test func aLookupOfARecentTimeOpensNoOlderSegment() throws {
        let dir = TemporaryDirectory()
        defer { StorageFaults.clear(pathContains: dir.path) }
        var config = LogConfig()
        config.maxOpenInactiveSegments = 2
        let log = try Self.manySegments(dir, count: 40, config: config)
        #expect(try log.offset(forTimestamp: 1_700_000_000_000 + 39_000)?.offset == 39)  // every segment known now
        for i in 0..<37 {
            StorageFaults.inject(.open, .tooManyOpenFiles, pathContains: dir.path + "/t-0/" + segmentName(Int64(i), "."), times: nil)
        }
        #expect(try log.offset(forTimestamp: 1_700_000_000_000 + 38_500)?.offset == 39)
        #expect(try log.offset(forTimestamp: 1_700_000_000_000 + 50_000) == nil)
        StorageFaults.clear(pathContains: dir.path)
        #expect(try log.offset(forTimestamp: 0)?.offset == 0)
        try log.close()
    }

    /// MAX_TIMESTAMP: the record with the largest timestamp, the first of several, whatever
    /// segment or batch it is in (it used to answer the first record at or after -3: the log start).
    @Test func theRecordWithTheLargestTimestamp() throws {
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path + "/t-0", config: LogConfig())
        #expect(try log.offsetOfMaxTimestamp() == nil)
        var builder = RecordBatchBuilder()
        for timestamp: Int64 in [100, 300, 200, 300] { builder.append(timestamp: timestamp, key: nil, value: [1]) }
        try log.append(try builder.build())  // offsets 0-3
        try log.roll()
        try log.append(makeBatch(tag: "later", count: 2, timestamp: 250))  // 4-5, older
        let found = try #require(try log.offsetOfMaxTimestamp())
        #expect(found.offset == 1 && found.timestamp == 300)
        try log.append(makeBatch(tag: "newest", count: 1, timestamp: 400))  // 6
        #expect(try log.offsetOfMaxTimestamp()?.offset == 6)
        try log.close()
        let reopened = try PartitionLog.open(directory: dir.path + "/t-0", config: LogConfig())
        #expect(try reopened.offsetOfMaxTimestamp()?.offset == 6)
        try reopened.close()
    }

    /// The largest timestamp among records at or after the log start only: the segment's own
    /// largest may belong to a deleted record (DeleteRecords), and a batch straddling the log
    /// start counts only its records from there (it answered a deleted record's segment, or -1).
    @Test func theLargestTimestampLeavesOutDeletedRecords() throws {
        let dir = TemporaryDirectory()
        let log = try PartitionLog.open(directory: dir.path + "/t-0", config: LogConfig())
        var builder = RecordBatchBuilder()
        for timestamp: Int64 in [100, 1000, 200, 300] { builder.append(timestamp: timestamp, key: nil, value: [1]) }
        try log.append(try builder.build())  // 0-3, the largest (1000) at offset 1
        try log.roll()
        try log.append(makeBatch(tag: "later", count: 1, timestamp: 500))  // 4
        _ = try log.deleteRecords(before: 2)
        let found = try #require(try log.offsetOfMaxTimestamp())
        #expect(found.offset == 4 && found.timestamp == 500)
        _ = try log.deleteRecords(before: 5)
        #expect(try log.offsetOfMaxTimestamp() == nil)
        try log.close()
    }
}

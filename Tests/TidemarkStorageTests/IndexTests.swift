import Foundation
import Synchronization
import TestSupport
import Testing
@testable import TidemarkStorage

@Suite struct IndexTests {
    @Test func offsetIndexLookupsMatchASortedModel() throws {
        let dir = TemporaryDirectory()
        var rng = SeededGenerator(seed: 3)
        let base: Int64 = 5000
        let index = try OffsetIndex(path: dir.file("a.index"), baseOffset: base, maxBytes: 1 << 20, writable: true)
        var model: [(Int64, Int)] = []
        var offset = base
        var position = 0
        // Enough entries to pass the first 64 KiB preallocation step several times.
        for _ in 0..<30_000 {
            offset += Int64.random(in: 1...50, using: &rng)
            position += Int.random(in: 1...5000, using: &rng)
            try index.append(offset: offset, position: position)
            model.append((offset, position))
        }
        #expect(index.entryCount == 30_000)
        for _ in 0..<5_000 {
            let target = Int64.random(in: (base - 10)...(offset + 10), using: &rng)
            // The last entry at or below the target (binary search: a linear one over 30,000
            // entries took seconds of a debug build's CPU, holding a cooperative thread).
            var low = 0
            var high = model.count
            while low < high {
                let mid = (low + high) / 2
                if model[mid].0 <= target { low = mid + 1 } else { high = mid }
            }
            let expected = low > 0 ? model[low - 1] : (base, 0)
            let got = index.lookup(target)
            #expect(got.offset == expected.0 && got.position == expected.1)
        }
        #expect(index.validate(logSize: position + 1, offsetLimit: nil))
        #expect(!index.validate(logSize: position, offsetLimit: nil))

        // Sealing trims the file to its entries; reopening read-only finds them all.
        try index.storage.seal()
        #expect(fileSize(dir.file("a.index")) == 30_000 * 8)
        let reopened = try OffsetIndex(path: dir.file("a.index"), baseOffset: base, maxBytes: 1 << 20, writable: false)
        #expect(reopened.entryCount == 30_000)
        #expect(reopened.lookup(offset).offset == offset)

        // Truncation drops entries at or above an offset.
        let writable = try OffsetIndex(path: dir.file("a.index"), baseOffset: base, maxBytes: 1 << 20, writable: true)
        let cut = model[1000].0
        writable.truncate(toOffset: cut)
        #expect(writable.entryCount == 1000)
        #expect(writable.lastEntry?.offset == model[999].0)
    }

    @Test func offsetIndexFileLayoutIsBigEndianRelative() throws {
        let dir = TemporaryDirectory()
        let index = try OffsetIndex(path: dir.file("b.index"), baseOffset: 100, maxBytes: 1024, writable: true)
        try index.append(offset: 103, position: 0x0102)
        try index.append(offset: 0x1_0000 + 100, position: 0x0A0B_0C0D)
        try index.storage.seal()
        let bytes = try SharedFile.open(dir.file("b.index"), .readOnly).read(count: 100, at: 0)
        #expect(bytes == [0, 0, 0, 3, 0, 0, 1, 2, 0, 1, 0, 0, 0x0A, 0x0B, 0x0C, 0x0D])
    }

    @Test func fullIndexReportsFull() throws {
        let dir = TemporaryDirectory()
        let index = try OffsetIndex(path: dir.file("c.index"), baseOffset: 0, maxBytes: 80, writable: true)
        for i in 0..<10 { try index.append(offset: Int64(i), position: i) }
        #expect(index.isFull)
    }

    @Test func timeIndexLookupsMatchASortedModel() throws {
        let dir = TemporaryDirectory()
        var rng = SeededGenerator(seed: 5)
        let index = try TimeIndex(path: dir.file("a.timeindex"), baseOffset: 0, maxBytes: 1 << 20, writable: true)
        var model: [(Int64, Int64)] = []
        var timestamp: Int64 = 1_000_000
        var offset: Int64 = 0
        for _ in 0..<10_000 {
            timestamp += Int64.random(in: -20...40, using: &rng)  // not monotonic: only growth is kept
            offset += Int64.random(in: 0...9, using: &rng)
            let before = index.entryCount
            try index.maybeAppend(timestamp: timestamp, offset: offset)
            if model.isEmpty || (timestamp > model.last!.0 && offset >= model.last!.1) {
                model.append((timestamp, offset))
                #expect(index.entryCount == before + 1)
            } else {
                #expect(index.entryCount == before)
            }
        }
        for _ in 0..<3_000 {
            let target = Int64.random(in: 999_000...(timestamp + 100), using: &rng)
            let expected = model.last { $0.0 <= target } ?? (-1, 0)
            let got = index.lookup(target)
            #expect(got.timestamp == expected.0 && got.offset == expected.1)
        }
        #expect(index.validate(offsetLimit: nil))
    }

    @Test func garbageIndexFailsValidation() throws {
        let dir = TemporaryDirectory()
        var rng = SeededGenerator(seed: 9)
        let path = dir.file("g.index")
        let file = try SharedFile.open(path, .readWrite, options: [.create])
        try rng.bytes(800).withUnsafeBytes { try file.write($0, at: 0) }
        let index = try OffsetIndex(path: path, baseOffset: 0, maxBytes: 1 << 20, writable: false)
        #expect(index.entryCount == 100)
        #expect(!index.validate(logSize: 1 << 20, offsetLimit: 1000))
    }

    /// A small active segment (no offset index entry yet) closes without a final time index
    /// entry: the reopen scans the whole segment and finds its largest timestamp again.
    @Test func aSmallSegmentClosesWithoutATimeEntryAndKeepsItsLargestTimestamp() throws {
        let dir = TemporaryDirectory()
        let t: Int64 = 1_700_000_000_000
        var log = try PartitionLog.open(directory: dir.path, config: LogConfig())
        try log.append(makeBatch(tag: "a", count: 2, timestamp: t))
        try log.append(makeBatch(tag: "b", count: 1, timestamp: t + 10_000))  // offset 2: the largest
        try log.append(makeBatch(tag: "c", count: 1, timestamp: t + 5_000))
        try log.close()
        #expect(fileSize(dir.path + "/" + segmentName(0, ".timeindex")) == 0)
        log = try PartitionLog.open(directory: dir.path, config: LogConfig())
        #expect(try log.offset(forTimestamp: t + 9_000)?.offset == 2)
        #expect(try log.offset(forTimestamp: t + 10_000)?.timestamp == t + 10_000)
        #expect(try log.offset(forTimestamp: t + 10_001) == nil)
        try log.close()
    }

    /// A segment with offset index entries still gets its final time entry at close.
    @Test func anIndexedSegmentClosesWithItsFinalTimeEntry() throws {
        let dir = TemporaryDirectory()
        let t: Int64 = 1_700_000_000_000
        var config = LogConfig()
        config.indexIntervalBytes = 64
        let log = try PartitionLog.open(directory: dir.path, config: config)
        for i in 0..<6 { try log.append(makeBatch(tag: "x\(i)", count: 1, timestamp: t + Int64(i) * 1_000)) }
        try log.close()
        let bytes = fileSize(dir.path + "/" + segmentName(0, ".timeindex"))
        #expect(bytes > 0 && bytes % 12 == 0)
        let reopened = try PartitionLog.open(directory: dir.path, config: config)
        #expect(try reopened.offset(forTimestamp: t + 4_500)?.offset == 5)
        try reopened.close()
    }

    /// ListOffsets by time never answers an offset below the log start (DeleteRecords keeps
    /// the deleted records in their segment until it goes whole): a consumer seeking there
    /// would be out of range. When only deleted records of a segment reach the time, the
    /// answer is in the next segment.
    @Test func offsetsForATimeStartAtTheLogStart() throws {
        let dir = TemporaryDirectory()
        let t: Int64 = 1_700_000_000_000
        let log = try PartitionLog.open(directory: dir.path, config: LogConfig())
        for i in 0..<10 { try log.append(makeBatch(tag: "a\(i)", count: 1, timestamp: t + Int64(i) * 1_000)) }
        #expect(try log.offset(forTimestamp: 0)?.offset == 0)
        _ = try log.deleteRecords(before: 5)
        #expect(try log.offset(forTimestamp: 0)?.offset == 5)
        #expect(try log.offset(forTimestamp: t + 2_000)?.offset == 5)
        #expect(try log.offset(forTimestamp: t + 7_000)?.offset == 7)
        try log.close()

        let dir2 = TemporaryDirectory()
        let late = try PartitionLog.open(directory: dir2.path, config: LogConfig())
        for i in 0..<5 { try late.append(makeBatch(tag: "b\(i)", count: 1, timestamp: t + 50_000)) }  // 0-4: late
        for i in 0..<5 { try late.append(makeBatch(tag: "c\(i)", count: 1, timestamp: t)) }  // 5-9: early
        try late.roll()
        try late.append(makeBatch(tag: "d", count: 1, timestamp: t + 60_000))  // 10, next segment
        _ = try late.deleteRecords(before: 5)
        #expect(try late.offset(forTimestamp: t + 40_000)?.offset == 10)
        #expect(try late.offset(forTimestamp: t + 70_000) == nil)
        try late.close()
    }

    /// DeleteRecords makes the records below the new start durable before it persists the
    /// start: a start persisted past what a power loss keeps would make the recovered log hand
    /// out offsets below it again. Concurrent calls leave the largest start on disk.
    @Test func aNewLogStartIsPersistedOnlyOverDurableRecords() throws {
        let dir = TemporaryDirectory()
        let t: Int64 = 1_700_000_000_000
        var log = try PartitionLog.open(directory: dir.path, config: LogConfig())  // OS flush policy
        for i in 0..<40 { try log.append(makeBatch(tag: "a\(i)", count: 1, timestamp: t + Int64(i))) }
        #expect(log.flushedOffset < 7)
        #expect(try log.deleteRecords(before: 7) == 7)
        #expect(log.flushedOffset >= 7)

        let errors = Mutex(0)
        let shared = log
        DispatchQueue.concurrentPerform(iterations: 24) { i in
            do { _ = try shared.deleteRecords(before: Int64(8 + i)) } catch { errors.withLock { $0 += 1 } }
        }
        #expect(errors.withLock { $0 } == 0)
        #expect(log.logStartOffset == 31)
        try log.close()
        log = try PartitionLog.open(directory: dir.path, config: LogConfig())
        #expect(log.logStartOffset == 31)
        try log.close()
    }
}

import TestSupport
import Foundation
import Testing
@testable import TidemarkStorage

#if canImport(Glibc)
import Glibc
#endif

/// A full disk, for real: a small tmpfs mounted for the test (needs root, as on CI).
@Suite(.serialized) struct FullDiskTests {
    static var canMount: Bool { getuid() == 0 }

    /// Runs `body` with a tmpfs of `size` ("512k") mounted on a fresh temporary directory.
    static func withTmpfs(_ name: String, size: String, _ body: (String) throws -> Void) throws {
        let dir = TemporaryDirectory(name)
        let mountPoint = dir.path
        #expect(mount("tmpfs", mountPoint, "tmpfs", 0, "size=\(size)") == 0, "mount: \(errno)")
        defer { umount2(mountPoint, Int32(MNT_DETACH)) }
        try body(mountPoint)
    }

    @Test(.enabled(if: canMount, "mounting a tmpfs needs root"))
    func fullDiskFailsTheAppendCleanlyAndRecovers() throws {
        try Self.withTmpfs("fulldisk", size: "512k") { mountPoint in

            // A filler file we can delete later to free space.
            try Data(count: 128 * 1024).write(to: URL(fileURLWithPath: mountPoint + "/filler"))
            var config = LogConfig()
            config.segmentBytes = 64 * 1024
            let logDir = mountPoint + "/jobs-0"
            let log = try PartitionLog.open(directory: logDir, config: config)
            let batch = makeBatch(tag: "x", count: 20, valueBytes: 100)
            var appended = 0
            var failure: StorageError?
            while failure == nil && appended < 10_000 {
                do throws(StorageError) {
                    try log.append(batch)
                    appended += 1
                } catch {
                    failure = error
                }
            }
            #expect(failure?.code == .noSpace, "\(String(describing: failure))")
            #expect(appended > 10)
            let end = log.logEndOffset
            #expect(end == Int64(appended * 20))
            // Nothing partial was left: everything appended reads back, and the broker goes on.
            #expect(try readAll(log).count == appended * 20)
            #expect(throws: StorageError.self) { try log.append(batch) }
            #expect(log.logEndOffset == end)

            try FileManager.default.removeItem(atPath: mountPoint + "/filler")
            let info = try log.append(makeBatch(tag: "after", count: 1))
            #expect(info.firstOffset == end)
            try log.close()
            let reopened = try PartitionLog.open(directory: logDir, config: config)
            #expect(reopened.logEndOffset == end + 1)
            #expect(try readAll(reopened).last?.1 == "after-0")
            try reopened.close()
        }
    }

    /// Space runs out when a roll needs a new segment (its index preallocation): the append
    /// fails, the active segment stays writable, and appends resume once space is back.
    @Test(.enabled(if: canMount, "mounting a tmpfs needs root"))
    func fullDiskDuringARoll() throws {
        try Self.withTmpfs("fulldisk-roll", size: "400k") { mountPoint in
            var config = LogConfig()
            config.segmentBytes = 8 * 1024
            let logDir = mountPoint + "/jobs-0"
            let log = try PartitionLog.open(directory: logDir, config: config)
            let batch = makeBatch(tag: "r", count: 5, valueBytes: 200)
            // Fill most of the disk with a file, leaving room for data but not for many index preallocations.
            var appended = 0
            var failure: StorageError?
            try Data(count: 200 * 1024).write(to: URL(fileURLWithPath: mountPoint + "/filler"))
            while failure == nil && appended < 5_000 {
                do throws(StorageError) { try log.append(batch); appended += 1 } catch { failure = error }
            }
            #expect(failure?.code == .noSpace)
            let end = log.logEndOffset
            #expect(try readAll(log).count == Int(end))
            try FileManager.default.removeItem(atPath: mountPoint + "/filler")
            for _ in 0..<10 { try log.append(batch) }
            #expect(log.logEndOffset == end + 50)
            try log.close()
            let reopened = try PartitionLog.open(directory: logDir, config: config)
            #expect(try readAll(reopened).count == Int(end + 50))
        }
    }

    /// Zeros written ahead on a disk that has room for only part of them: the write stops
    /// short, the partial zeros are cut again (the file ends with its last batch), the
    /// appends go on as before, and once space is back the zeros are written.
    @Test(.enabled(if: canMount, "mounting a tmpfs needs root"))
    func fullDiskStopsTheZerosWrittenAhead() throws {
        try Self.withTmpfs("fulldisk-ahead", size: "1m") { mountPoint in
            var config = LogConfig()
            config.flushPolicy = .everyAppend
            config.maxIndexBytes = 4096
            let logDir = mountPoint + "/jobs-0"
            let log = try PartitionLog.open(directory: logDir, config: config)
            defer { try? log.close() }
            let batch = makeBatch(tag: "z", count: 4, valueBytes: 100)
            for _ in 0..<10 { try log.append(batch) }
            let logFile = logDir + "/" + segmentName(0, ".log")
            let data = 10 * batch.count
            // Fill the disk, then free 8 KiB: room for half of the 16 KiB the log wants ahead.
            let filler = mountPoint + "/filler"
            FileManager.default.createFile(atPath: filler, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: filler))
            let chunk = Data(count: 4096)
            while (try? handle.write(contentsOf: chunk)) != nil {}
            let filled = try handle.offset()
            try handle.truncate(atOffset: filled - 8192)
            try handle.close()

            log.preallocateAhead()
            #expect(fileSize(logFile) == data)  // the partial zeros were cut
            try log.append(batch)
            #expect(fileSize(logFile) == data + batch.count)
            #expect(try readAll(log).count == 11 * 4)

            try FileManager.default.removeItem(atPath: filler)
            log.preallocateAhead()
            #expect(fileSize(logFile) > data + batch.count)
            #expect(fileSize(logFile) % 4096 == 0)
            try log.append(batch)
            #expect(try readAll(log).count == 12 * 4)
        }
    }

    /// A crash, then a disk with no block left: every index must be rebuilt from its log and the
    /// disk has no room for one. The log still opens (the indexes live in memory), reads every
    /// record from any offset, and refuses appends with noSpace; a close on the full disk
    /// removes the index files it could not write (never an empty or stale one to trust); once
    /// space is back, appends resume, a close writes the active segment's indexes, and reads
    /// rebuild the others on disk.
    @Test(.enabled(if: canMount, "mounting a tmpfs needs root"))
    func aCrashedLogReopensOnAFullDiskWithItsIndexesInMemory() throws {
        try Self.withTmpfs("fulldisk-index", size: "2m") { mountPoint in
            var config = LogConfig()
            config.segmentBytes = 8 * 1024
            config.indexIntervalBytes = 256
            let logDir = mountPoint + "/jobs-0"
            do {
                let log = try PartitionLog.open(directory: logDir, config: config)
                for i in 0..<190 { try log.append(makeBatch(tag: "b\(i)", count: 5)) }
                #expect(log.segmentBaseOffsets == [0, 310, 615, 915])
            }  // dropped without close: a crash
            // Every index goes (so every segment read is rebuilt), then the disk fills up.
            let indexFiles = { (try FileManager.default.contentsOfDirectory(atPath: logDir)).filter { $0.hasSuffix("index") } }
            for name in try indexFiles() { try FileManager.default.removeItem(atPath: logDir + "/" + name) }
            let filler = mountPoint + "/filler"
            FileManager.default.createFile(atPath: filler, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: filler))
            while (try? handle.write(contentsOf: Data(count: 4096))) != nil {}
            try handle.close()

            let expected = (0..<190).flatMap { i in (0..<5).map { "b\(i)-\($0)" } }
            let log = try PartitionLog.open(directory: logDir, config: config)
            #expect(log.logEndOffset == 950)
            #expect(try readAll(log).map(\.1) == expected)
            #expect(try readAll(log, from: 137).first?.0 == 137)  // an index lookup
            // A batch larger than a segment: the roll makes segment 950, its bytes find no room.
            #expect(throws: StorageError.self) { try log.append(makeBatch(tag: "big", count: 4, valueBytes: 8000)) }
            try log.close()
            let left = try indexFiles()
            #expect(left.allSatisfy { fileSize(logDir + "/" + $0) > 0 || $0.hasPrefix(segmentName(950, "")) }, "\(left)")
            #expect(!FileManager.default.fileExists(atPath: logDir + "/" + segmentName(915, ".index")))

            // Clean, still full: the missing indexes are rebuilt (in memory) again.
            let again = try PartitionLog.open(directory: logDir, config: config)
            #expect(try readAll(again, from: 250).map(\.1) == Array(expected[250...]))
            try FileManager.default.removeItem(atPath: filler)
            let after = (0..<10).map { "after\($0)-0" }
            for i in 0..<10 { try again.append(makeBatch(tag: "after\(i)", count: 1)) }
            try again.close()
            // The active segment's indexes were written at the close; an inactive one's in
            // memory went unwritten (its file was removed at its seal) and is rebuilt on disk
            // by the next read that needs it.
            #expect(fileSize(logDir + "/" + segmentName(950, ".index")) > 0)
            #expect(fileSize(logDir + "/" + segmentName(950, ".timeindex")) > 0)

            let reopened = try PartitionLog.open(directory: logDir, config: config)
            #expect(try readAll(reopened).map(\.1) == expected + after)
            #expect(try readAll(reopened, from: 137).first?.0 == 137)
            #expect(fileSize(logDir + "/" + segmentName(915, ".index")) > 0)
            #expect(fileSize(logDir + "/" + segmentName(915, ".timeindex")) > 0)
            try reopened.close()
        }
    }
}

import Foundation
import TestSupport
import Testing

@testable import TidemarkStorage

/// Many logs under a small `OpenFileBudget`: the open files stay within it, and evicted logs
/// (active and inactive segments) keep appending, reading, flushing and closing correctly.
@Suite struct OpenFileBudgetTests {
    static func config() -> LogConfig {
        var config = LogConfig()
        config.segmentBytes = 4096
        config.maxIndexBytes = 4096
        config.indexIntervalBytes = 256
        return config
    }

    /// Descriptors of this process open on a path under `directory`.
    static func descriptors(under directory: String) -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.filter { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"))?.hasPrefix(directory) ?? false
        }.count
    }

    @Test func manyLogsStayWithinTheBudgetAndLoseNothing() throws {
        let dir = TemporaryDirectory()
        let budget = OpenFileBudget(limit: 10)
        let count = 60
        var logs: [PartitionLog] = []
        for i in 0..<count {
            logs.append(try PartitionLog.open(directory: dir.path + "/p\(i)", config: Self.config(), budget: budget))
            #expect(budget.held <= budget.limit)
        }
        // Every log appends twice, round robin: each append reopens a file another evicted.
        for round in 0..<2 {
            for (i, log) in logs.enumerated() {
                try log.append(makeBatch(tag: "r\(round)-p\(i)", count: 3))
                #expect(budget.held <= budget.limit)
            }
        }
        #expect(budget.sweeps > 0)
        #expect(budget.evictions >= count)
        #expect(Self.descriptors(under: dir.path) <= budget.limit)
        // Reads reopen what they need, and see every record in order.
        for (i, log) in logs.enumerated() {
            let values = try readAll(log).map(\.1)
            #expect(values == (0..<2).flatMap { round in (0..<3).map { "r\(round)-p\(i)-\($0)" } })
        }
        #expect(budget.held <= budget.limit)
        // A flush after the file was evicted reopens it and makes everything durable.
        let first = logs[0]
        try first.append(makeBatch(tag: "late", count: 1), applyingFlushPolicy: false)
        for log in logs.dropFirst() { try log.append(makeBatch(tag: "evict", count: 1)) }
        #expect(first.openFileCount == 0)
        try first.flush()
        #expect(first.flushedOffset == first.logEndOffset)
        for log in logs { try log.close() }
        #expect(budget.held == 0)
        #expect(Self.descriptors(under: dir.path) == 0)
        // Closed cleanly although most were evicted: the next open trusts them.
        for i in 0..<count {
            let log = try PartitionLog.open(directory: dir.path + "/p\(i)", config: Self.config(), budget: budget)
            #expect(log.recoveryReport.wasCleanShutdown)
            #expect(log.logEndOffset == 7)
            try log.close()
        }
        #expect(budget.held == 0)
    }

    @Test func inactiveSegmentsCountAndAreEvictedWhole() throws {
        let dir = TemporaryDirectory()
        let budget = OpenFileBudget(limit: 4)
        let big = try PartitionLog.open(directory: dir.path + "/big", config: Self.config(), budget: budget)
        for b in 0..<80 { try big.append(makeBatch(tag: "b\(b)", count: 4, valueBytes: 100)) }
        #expect(big.segmentCount > 8)
        #expect(try readAll(big).count == 320)  // opens old segments one after another
        #expect(budget.held <= budget.limit)
        #expect(big.openFileCount <= budget.limit)
        // Other logs push the big one's files out, inactive ones included.
        var others: [PartitionLog] = []
        for i in 0..<6 {
            let log = try PartitionLog.open(directory: dir.path + "/o\(i)", config: Self.config(), budget: budget)
            try log.append(makeBatch(tag: "o\(i)", count: 1))
            others.append(log)
        }
        #expect(big.openFileCount == 0)
        #expect(big.openInactiveSegmentCount == 0)
        #expect(try readAll(big).count == 320)
        try big.append(makeBatch(tag: "after", count: 1))
        #expect(big.logEndOffset == 321)
        for log in others + [big] { try log.close() }
        #expect(budget.held == 0)
    }

    @Test func concurrentAppendersUnderATinyBudget() throws {
        let dir = TemporaryDirectory()
        let budget = OpenFileBudget(limit: 3)
        let logs = try (0..<12).map { i in
            try PartitionLog.open(directory: dir.path + "/c\(i)", config: Self.config(), budget: budget)
        }
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for round in 0..<50 {
                for (i, log) in logs.enumerated() where i % 4 == t || round % 5 == 0 {
                    _ = try! log.append(makeBatch(tag: "t\(t)-\(round)", count: 1))
                }
            }
        }
        // The bound is soft by the number of concurrent openers.
        #expect(budget.held <= budget.limit + 4)
        let total = try logs.reduce(0) { $0 + (try readAll($1).count) }
        #expect(total == logs.reduce(0) { $0 + Int($1.logEndOffset) })
        for log in logs { try log.close() }
        #expect(budget.held == 0)
        #expect(Self.descriptors(under: dir.path) == 0)
    }

    /// A partition with less than an index interval of data never maps or reserves its
    /// indexes, nor writes them at close (the next open scans its segment for the largest
    /// timestamp); the first real entry maps the index then.
    @Test func anIdlePartitionsIndexesAreNeitherMappedNorReserved() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/idle"
        do {
            let log = try PartitionLog.open(directory: path, config: Self.config())
            try log.append(makeBatch(tag: "one", count: 1, timestamp: 1_700_000_000_500))
            try log.close()
        }
        #expect(fileSize(path + "/" + segmentName(0, ".index")) == 0)
        #expect(fileSize(path + "/" + segmentName(0, ".timeindex")) == 0)
        let log = try PartitionLog.open(directory: path, config: Self.config())
        #expect(log.recoveryReport.wasCleanShutdown)
        #expect(try log.offset(forTimestamp: 1_700_000_000_000)?.offset == 0)
        for b in 0..<20 {
            try log.append(makeBatch(tag: "b\(b)", count: 3, timestamp: 1_700_000_001_000 + Int64(b) * 10, valueBytes: 60))
        }
        #expect(try readAll(log).count == 61)
        #expect(try log.offset(forTimestamp: 1_700_000_001_050)?.offset == 16)
        try log.close()
        let reopened = try PartitionLog.open(directory: path, config: Self.config())
        #expect(reopened.recoveryReport.wasCleanShutdown && reopened.recoveryReport.truncatedBytes == 0)
        #expect(try readAll(reopened).count == 61)
        try reopened.close()
    }
}

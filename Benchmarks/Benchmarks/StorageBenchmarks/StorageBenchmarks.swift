import Benchmark
import Foundation
import TidemarkStorage

#if canImport(Glibc)
import Glibc
#endif

// Workload of issue #2: 100-byte records in batches of 1,000. One benchmark iteration
// appends `batchesPerIteration` batches (64,000 records, ~6.9 MB) to a fresh log; the raw
// pwrite benchmarks write the very same bytes to a plain file, so the ratio of the two
// throughputs, measured in the same run, is the append path's efficiency.

let recordsPerBatch = 1000
let valueBytes = 100
let batchesPerIteration = 64

func makeBatch(_ seed: Int, compression: CompressionCodec) -> [UInt8] {
    var builder = RecordBatchBuilder(compression: compression, capacity: recordsPerBatch * (valueBytes + 20))
    var value = [UInt8](repeating: 0, count: valueBytes)
    for i in 0..<recordsPerBatch {
        // JSON-ish, partly repetitive payload (compressible like real job payloads).
        let text = Array("{\"job\":\(seed * recordsPerBatch + i),\"queue\":\"emails\",\"attempt\":1,\"payload\":\"".utf8)
        for j in 0..<valueBytes { value[j] = j < text.count ? text[j] : UInt8(97 + (i &* 31 &+ j) % 26) }
        builder.append(timestamp: 1_700_000_000_000 + Int64(i), key: Array("user-\(i % 97)".utf8), value: value)
    }
    return try! builder.build()
}

let plainBatches = (0..<batchesPerIteration).map { makeBatch($0, compression: .none) }
let lz4Batches = (0..<batchesPerIteration).map { makeBatch($0, compression: .lz4) }

func scratchDirectory(_ name: String) -> String {
    let path = FileManager.default.temporaryDirectory.path + "/tidemark-bench-\(name)-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func appendBenchmark(_ benchmark: Benchmark, batches: [[UInt8]], policy: FlushPolicy) {
    for _ in benchmark.scaledIterations {
        let dir = scratchDirectory("append")
        var config = LogConfig()
        config.flushPolicy = policy
        let log = try! PartitionLog.open(directory: dir, config: config)
        benchmark.startMeasurement()
        for batch in batches { try! log.append(batch) }
        benchmark.stopMeasurement()
        try! log.close()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

func rawPwriteBenchmark(_ benchmark: Benchmark, batches: [[UInt8]], syncEach: Bool) {
    for _ in benchmark.scaledIterations {
        let dir = scratchDirectory("pwrite")
        let fd = open(dir + "/raw.log", O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        precondition(fd >= 0)
        benchmark.startMeasurement()
        var position: off_t = 0
        for batch in batches {
            let written = batch.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, position) }
            precondition(written == batch.count)
            position += off_t(written)
            if syncEach { fdatasync(fd) }
        }
        benchmark.stopMeasurement()
        close(fd)
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// Reads a whole file with 1 MiB preads: the physical limit for the read benchmarks.
func rawRead(_ path: String) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    var position: off_t = 0
    while true {
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, position) }
        if n <= 0 { break }
        position += off_t(n)
    }
    close(fd)
    blackHole(buffer)
}

/// A log of about `bytes` bytes left as after a crash (no clean-shutdown marker, no checkpoint).
func makeUncleanLog(bytes: Int) -> String {
    let dir = scratchDirectory("recovery")
    var config = LogConfig()
    config.segmentBytes = Int(Int32.max)
    let log = try! PartitionLog.open(directory: dir, config: config)
    var written = 0
    while written < bytes {
        for batch in plainBatches { try! log.append(batch); written += batch.count }
    }
    try! log.flush()
    return dir
}

// Fixtures are made on first use (globals initialise lazily), not when benchmarks are listed.
let readDir = makeUncleanLog(bytes: 256 << 20)
let readLog = try! PartitionLog.open(directory: readDir)
let recoveryDir = makeUncleanLog(bytes: 1 << 30)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .cpuTotal],
        timeUnits: .milliseconds,
        warmupIterations: 1,
        maxDuration: .seconds(8),
        maxIterations: 30)

    let plainMB = Double(plainBatches.reduce(0) { $0 + $1.count }) / 1e6
    let lz4MB = Double(lz4Batches.reduce(0) { $0 + $1.count }) / 1e6
    print("iteration = \(batchesPerIteration * recordsPerBatch) records; uncompressed \(plainMB) MB, lz4 \(lz4MB) MB")

    Benchmark("append uncompressed, OS flush") { appendBenchmark($0, batches: plainBatches, policy: .os) }
    Benchmark("raw pwrite, same bytes") { rawPwriteBenchmark($0, batches: plainBatches, syncEach: false) }
    Benchmark("append lz4, OS flush") { appendBenchmark($0, batches: lz4Batches, policy: .os) }
    Benchmark("raw pwrite, same lz4 bytes") { rawPwriteBenchmark($0, batches: lz4Batches, syncEach: false) }
    Benchmark("append uncompressed, fsync per batch") { appendBenchmark($0, batches: plainBatches, policy: .everyAppend) }
    Benchmark("raw pwrite + fdatasync per batch") { rawPwriteBenchmark($0, batches: plainBatches, syncEach: true) }

    Benchmark("encode batch of 1000 x 100 B, uncompressed", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for i in benchmark.scaledIterations { blackHole(makeBatch(i, compression: .none)) }
    }

    // Sequential read of ~256 MB through the log (index lookups + preads of whole batches)
    // against plain 1 MiB preads of the same file.
    Benchmark("sequential read via log, ~256 MB, 1 MiB fetches") { benchmark in
        for _ in benchmark.scaledIterations {
            var offset = readLog.logStartOffset
            while let slice = try! readLog.read(from: offset, maxBytes: 1 << 20).slice {
                let bytes = try! slice.readBytes()
                // The next offset is after the last batch in the slice.
                var position = 0
                var last: Int64 = offset
                while position < bytes.count {
                    let length = bytes.withUnsafeBytes { Int(Int32(bigEndian: $0.loadUnaligned(fromByteOffset: position + 8, as: Int32.self))) }
                    last = bytes.withUnsafeBytes { Int64(bigEndian: $0.loadUnaligned(fromByteOffset: position, as: Int64.self)) }
                        + Int64(bytes.withUnsafeBytes { Int32(bigEndian: $0.loadUnaligned(fromByteOffset: position + 23, as: Int32.self)) })
                    position += 12 + length
                }
                offset = last + 1
                blackHole(bytes)
            }
        }
    }
    Benchmark("raw pread of the same file, 1 MiB chunks") { benchmark in
        for _ in benchmark.scaledIterations { rawRead(readDir + "/00000000000000000000.log") }
    }

    // Recovery of an unclean 1 GiB log: every batch's framing and CRC checked, indexes rebuilt.
    Benchmark("recovery of an unclean 1 GiB log", configuration: .init(maxDuration: .seconds(20), maxIterations: 5)) { benchmark in
        for _ in benchmark.scaledIterations {
            try? FileManager.default.removeItem(atPath: recoveryDir + "/recovery-point.checkpoint")
            benchmark.startMeasurement()
            let log = try! PartitionLog.open(directory: recoveryDir)
            benchmark.stopMeasurement()
            precondition(!log.recoveryReport.wasCleanShutdown && log.recoveryReport.scannedSegments == [0])
            blackHole(log)  // dropped without close: the next iteration is unclean again
        }
    }
    Benchmark("raw pread of the 1 GiB log, 1 MiB chunks", configuration: .init(maxDuration: .seconds(20), maxIterations: 5)) { benchmark in
        for _ in benchmark.scaledIterations { rawRead(recoveryDir + "/00000000000000000000.log") }
    }
}

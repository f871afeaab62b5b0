import Benchmark
import Foundation
import Tidemark
import TidemarkStorage

// Issue #3's workload: embedded produce of 100-byte records (1 and 8 partitions), and the
// latency from send() to a long-polling consumer's poll() returning the record.

let recordsPerIteration = 100_000
let senders = 256
let value = [UInt8](repeating: 0x61, count: 100)

func scratch() -> String {
    let path = FileManager.default.temporaryDirectory.path + "/tidemark-engine-bench-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func produceBenchmark(_ benchmark: Benchmark, partitions: Int, compression: TopicConfig.Compression) async {
    for _ in benchmark.scaledIterations {
        let dir = scratch()
        let broker = try! await Broker.open(dataDirectory: dir)
        try! await broker.createTopic("bench", partitions: partitions, config: TopicConfig(compression: compression))
        let producer = try! await Producer(broker: broker)
        benchmark.startMeasurement()
        await withTaskGroup(of: Void.self) { group in
            for s in 0..<senders {
                group.addTask {
                    var i = s
                    while i < recordsPerIteration {
                        _ = try! await producer.send(topic: "bench", key: Array("key-\(i % 1000)".utf8), value: value)
                        i += senders
                    }
                }
            }
        }
        benchmark.stopMeasurement()
        try! await broker.close()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .cpuTotal], timeUnits: .milliseconds, warmupIterations: 1,
        maxDuration: .seconds(10), maxIterations: 10)

    Benchmark("embedded produce 100k x 100 B, 1 partition, \(senders) senders") { benchmark async in
        await produceBenchmark(benchmark, partitions: 1, compression: .none)
    }
    Benchmark("embedded produce 100k x 100 B, 8 partitions, \(senders) senders") { benchmark async in
        await produceBenchmark(benchmark, partitions: 8, compression: .none)
    }
    // Issue #9: one sender awaiting each send before the next (a job enqueued and confirmed).
    Benchmark("awaited send, one at a time, 20k x 100 B, 1 partition") { benchmark async in
        for _ in benchmark.scaledIterations {
            let dir = scratch()
            let broker = try! await Broker.open(dataDirectory: dir)
            try! await broker.createTopic("one", partitions: 1)
            let producer = try! await Producer(broker: broker)
            benchmark.startMeasurement()
            for _ in 0..<20_000 { _ = try! await producer.send(topic: "one", key: nil, value: value) }
            benchmark.stopMeasurement()
            try! await broker.close()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }
    Benchmark("embedded produce 100k x 100 B, 8 partitions, lz4") { benchmark async in
        await produceBenchmark(benchmark, partitions: 8, compression: .lz4)
    }

    // Issue #9: the synchronous appender (embedding as a log), 1M x 100 B per iteration,
    // beside the physical limit measured the same way: the same bytes pwritten in 256 KiB
    // chunks to a file in the same directory.
    Benchmark("appender 1M x 100 B (sync, 256 KiB batches)") { benchmark async in
        for _ in benchmark.scaledIterations {
            let dir = scratch()
            let broker = try! await Broker.open(dataDirectory: dir)
            try! await broker.createTopic("log", partitions: 1)
            let appender = try! Appender(broker: broker, topic: "log", partition: 0, batchBytes: 256 * 1024)
            benchmark.startMeasurement()
            for _ in 0..<1_000_000 { try! appender.append(value: value) }
            try! appender.flush()
            benchmark.stopMeasurement()
            try! await broker.close()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }
    Benchmark("raw pwrite of the same 1M x 100 B records (256 KiB chunks)") { benchmark in
        let record = [UInt8](repeating: 0x61, count: 110)  // 100 B value + its record framing
        let chunk = [UInt8]((0..<(256 * 1024 / record.count)).flatMap { _ in record })
        for _ in benchmark.scaledIterations {
            let dir = scratch()
            let fd = open(dir + "/raw.log", O_CREAT | O_WRONLY, 0o644)
            benchmark.startMeasurement()
            var offset: off_t = 0
            var written = 0
            while written < 1_000_000 * record.count {
                let n = chunk.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, offset) }
                offset += off_t(n)
                written += n
            }
            benchmark.stopMeasurement()
            close(fd)
            try? FileManager.default.removeItem(atPath: dir)
        }
    }
    // The job workload embedded: one `ShareConsumer` worker taking one job per poll, accepting
    // it and committing (durable before the next), 5,000 jobs of 100 B per iteration.
    Benchmark("embedded share worker, one job at a time, 5k x 100 B") { benchmark async in
        for _ in benchmark.scaledIterations {
            await shareWorkerRun(benchmark, partitions: 1, jobs: 5_000) { broker in
                let appender = try! Appender(broker: broker, topic: "jobs", partition: 0, batchBytes: 64 * 1024)
                for _ in 0..<5_000 { try! appender.append(value: value) }
                try! appender.flush()
            }
        }
    }
    // The same worker on a topic of 1,000 partitions, its jobs spread over them: a poll's cost
    // should not grow with the partitions it is not taking from.
    Benchmark("embedded share worker, one job at a time, 2k x 100 B over 1,000 partitions") { benchmark async in
        for _ in benchmark.scaledIterations {
            await shareWorkerRun(benchmark, partitions: 1_000, jobs: 2_000) { broker in
                let producer = try! await Producer(broker: broker)
                for i in 0..<2_000 { _ = try! await producer.send(topic: "jobs", key: nil, value: value, partition: i % 1_000) }
            }
        }
    }
    // The same with every job in one of the 1,000 partitions: the idle ones should cost little.
    Benchmark("embedded share worker, one job at a time, 2k x 100 B in one of 1,000 partitions") { benchmark async in
        for _ in benchmark.scaledIterations {
            await shareWorkerRun(benchmark, partitions: 1_000, jobs: 2_000) { broker in
                let producer = try! await Producer(broker: broker)
                for _ in 0..<2_000 { _ = try! await producer.send(topic: "jobs", key: nil, value: value, partition: 500) }
            }
        }
    }
    // The same worker behind 50,000 jobs delayed by an hour (scheduled jobs waiting in its
    // window): the jobs due now should cost what they cost without them.
    Benchmark("embedded share worker, one job at a time, 2k x 100 B behind 50k delayed jobs") { benchmark async in
        for _ in benchmark.scaledIterations {
            await shareWorkerRun(benchmark, partitions: 1, jobs: 2_000, before: 1) { broker in
                let appender = try! Appender(broker: broker, topic: "jobs", partition: 0, batchBytes: 64 * 1024)
                let later = Array(String(Int64(Date().timeIntervalSince1970 * 1_000) + 3_600_000).utf8)
                for _ in 0..<50_000 {
                    try! appender.append(value: value, headers: [RecordHeader(key: Broker.deliverAtHeader, value: later)])
                }
                for _ in 0..<2_001 { try! appender.append(value: value) }
                try! appender.flush()
            }
        }
    }
    // The consume-process-commit loop of a group member taking one job per poll, out of an
    // appender's 64 KiB batches: the read of the batch that holds each job is its cost.
    Benchmark("embedded group consumer, one job per poll + commit, 5k x 100 B") { benchmark async in
        for _ in benchmark.scaledIterations {
            let dir = scratch()
            let broker = try! await Broker.open(dataDirectory: dir)
            try! await broker.createTopic("jobs", partitions: 1)
            let appender = try! Appender(broker: broker, topic: "jobs", partition: 0, batchBytes: 64 * 1024)
            for _ in 0..<5_000 { try! appender.append(value: value) }
            try! appender.flush()
            let consumer = GroupConsumer(broker: broker, groupId: "bench", topics: ["jobs"])
            benchmark.startMeasurement()
            var done = 0
            while done < 5_000 {
                done += try! await consumer.poll(maxRecords: 1, maxWaitMs: 5_000).count
                try! await consumer.commit()
            }
            benchmark.stopMeasurement()
            await consumer.close()
            try! await broker.close()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }
    // A long poll woken by a send, over 1 and 1,000 partitions (all empty but the one sent to):
    // what a wait and its wake-up cost should not grow with the partitions waited on. Each
    // round trip sleeps 200 us before the send (so the poll waits first): compare CPU.
    for partitions in [1, 1_000] {
        Benchmark("embedded consumer long poll woken by a send, 500 x, \(partitions) partitions") { benchmark async in
            for _ in benchmark.scaledIterations { await wakeRun(benchmark, partitions: partitions, share: false) }
        }
        Benchmark("embedded share worker long poll woken by a send, 500 x, \(partitions) partitions") { benchmark async in
            for _ in benchmark.scaledIterations { await wakeRun(benchmark, partitions: partitions, share: true) }
        }
    }
    // Workers of one share group in one process, all waiting, each job sent once the last was
    // taken: a job's cost should not grow with the workers waiting for the next.
    for workers in [1, 8, 32] {
        Benchmark("embedded share workers waiting for jobs sent one at a time, 1k jobs, \(workers) workers") { benchmark async in
            for _ in benchmark.scaledIterations { await waitingWorkersRun(benchmark, workers: workers, jobs: 1_000) }
        }
    }
    // Sends while share workers wait behind a full window (one worker holds all 100 record
    // locks): what they cost the producer, beside none waiting.
    for waiters in [0, 4] {
        Benchmark("awaited send, one at a time, 20k x 100 B, \(waiters) share workers waiting behind a full window") { benchmark async in
            for _ in benchmark.scaledIterations { await fullWindowRun(benchmark, waiters: waiters) }
        }
    }
    // Awaited one by one, 100 B: the cost of one embedded send.
    Benchmark(
        "awaited send, one at a time, 100 B",
        configuration: .init(
            metrics: [.wallClock, .throughput], timeUnits: .microseconds, warmupIterations: 100, maxDuration: .seconds(5),
            maxIterations: 100_000)
    ) { benchmark async in
        let fixture = await LatencyFixture.shared.get()
        for _ in benchmark.scaledIterations {
            _ = try! await fixture.producer.send(topic: "latency", key: nil, value: value)
        }
    }

    // One iteration = one record from send() to the long-polling consumer's poll() return.
    // The broker, producer and consumer are set up before measuring.
    Benchmark(
        "produce-to-consume latency, 100 B",
        configuration: .init(
            metrics: [.wallClock], timeUnits: .microseconds, warmupIterations: 10, maxDuration: .seconds(10),
            maxIterations: 2000)
    ) { benchmark async in
        let fixture = await LatencyFixture.shared.get()
        for _ in benchmark.scaledIterations {
            benchmark.startMeasurement()
            async let received = fixture.consumer.poll(maxRecords: 1, maxWaitMs: 5_000)
            _ = try! await fixture.producer.send(topic: "latency", key: nil, value: value)
            let got = try! await received
            benchmark.stopMeasurement()
            precondition(got.count == 1)
        }
    }
}

/// One `ShareConsumer` worker of a fresh broker taking `jobs` jobs one per poll, accepting and
/// committing each (measured); `fill` enqueues them first into topic "jobs" of `partitions`.
func shareWorkerRun(_ benchmark: Benchmark, partitions: Int, jobs: Int, before: Int = 0, fill: (Broker) async -> Void) async {
    let dir = scratch()
    let broker = try! await Broker.open(dataDirectory: dir)
    try! await broker.createTopic("jobs", partitions: partitions)
    await fill(broker)
    let worker = try! await ShareConsumer(broker: broker, group: "bench", topics: ["jobs"], mode: .explicit)
    func take(until count: Int, from done: inout Int) async {
        while done < count {
            for job in try! await worker.poll(maxRecords: 1, timeout: .seconds(5)) {
                worker.acknowledge(job, .accept)
                done += 1
            }
            _ = try! await worker.commit()
        }
    }
    // `before` jobs are taken first, unmeasured (the window's first fill).
    var done = -before
    await take(until: 0, from: &done)
    benchmark.startMeasurement()
    await take(until: jobs, from: &done)
    benchmark.stopMeasurement()
    try! await worker.close()
    try! await broker.close()
    try? FileManager.default.removeItem(atPath: dir)
}

/// 500 round trips of a long poll (a `Consumer` assigned every partition of "jobs" at its end,
/// or a `ShareConsumer` worker of it) woken by one send to the next partition (measured).
func wakeRun(_ benchmark: Benchmark, partitions: Int, share: Bool) async {
    let dir = scratch()
    let broker = try! await Broker.open(dataDirectory: dir)
    try! await broker.createTopic("jobs", partitions: partitions)
    let producer = try! await Producer(broker: broker)
    let consumer = Consumer(broker: broker)
    var worker: ShareConsumer?
    if share {
        worker = try! await ShareConsumer(broker: broker, group: "bench", topics: ["jobs"], mode: .explicit)
        _ = try! await worker!.poll(maxRecords: 1, timeout: .milliseconds(10))
    } else {
        for partition in 0..<partitions { try! await consumer.assign(topic: "jobs", partition: partition, from: .latest) }
    }
    let poll: @Sendable () async throws -> Int = { [worker] in
        guard let worker else { return try await consumer.poll(maxRecords: 1, maxWaitMs: 5_000).count }
        let jobs = try await worker.poll(maxRecords: 1, timeout: .seconds(5))
        for job in jobs { worker.acknowledge(job, .accept) }
        return jobs.count
    }
    benchmark.startMeasurement()
    for round in 0..<500 {
        async let got = poll()
        try! await Task.sleep(for: .microseconds(200))
        _ = try! await producer.send(topic: "jobs", key: nil, value: value, partition: round % partitions)
        let count = try! await got
        precondition(count == 1)
    }
    benchmark.stopMeasurement()
    try! await worker?.close()
    try! await broker.close()
    try? FileManager.default.removeItem(atPath: dir)
}

/// `workers` share-group workers of topic "jobs" (4 partitions) polling one job at a time
/// concurrently; `jobs` jobs sent one by one, each once the last was taken (measured).
func waitingWorkersRun(_ benchmark: Benchmark, workers count: Int, jobs: Int) async {
    let dir = scratch()
    let broker = try! await Broker.open(dataDirectory: dir)
    try! await broker.createTopic("jobs", partitions: 4)
    let producer = try! await Producer(broker: broker)
    var workers: [ShareConsumer] = []
    for _ in 0..<count {
        let worker = try! await ShareConsumer(broker: broker, group: "bench", topics: ["jobs"], mode: .explicit)
        _ = try! await worker.poll(maxRecords: 1, timeout: .milliseconds(10))
        workers.append(worker)
    }
    let (taken, tell) = AsyncStream.makeStream(of: Void.self)
    let polling = workers.map { worker in
        Task {
            while !Task.isCancelled {
                guard let jobs = try? await worker.poll(maxRecords: 1, timeout: .seconds(2)) else { continue }
                for job in jobs {
                    worker.acknowledge(job, .accept)
                    tell.yield()
                }
            }
        }
    }
    var next = taken.makeAsyncIterator()
    benchmark.startMeasurement()
    for _ in 0..<jobs {
        _ = try! await producer.send(topic: "jobs", key: nil, value: value)
        _ = await next.next()
    }
    benchmark.stopMeasurement()
    for task in polling { task.cancel() }
    for task in polling { await task.value }
    for worker in workers { try! await worker.close() }
    try! await broker.close()
    try? FileManager.default.removeItem(atPath: dir)
}

/// 20,000 sends awaited one by one to topic "jobs" (measured) while `waiters` share-group
/// workers poll in a loop behind a window full of another worker's 100 record locks
/// (`share.partition.max.record.locks=100`).
func fullWindowRun(_ benchmark: Benchmark, waiters count: Int) async {
    let dir = scratch()
    let broker = try! await Broker.open(dataDirectory: dir)
    try! await broker.createTopic("jobs", partitions: 1)
    try! await broker.alterGroupConfig("bench", changes: [.set("share.partition.max.record.locks", "100")])
    let producer = try! await Producer(broker: broker)
    for _ in 0..<110 { _ = try! await producer.send(topic: "jobs", key: nil, value: value) }
    let holder = try! await ShareConsumer(broker: broker, group: "bench", topics: ["jobs"], mode: .explicit)
    var held = 0
    while held < 100 { held += try! await holder.poll(maxRecords: 100, timeout: .seconds(5)).count }
    var waiters: [ShareConsumer] = []
    for _ in 0..<count { waiters.append(try! await ShareConsumer(broker: broker, group: "bench", topics: ["jobs"], mode: .explicit)) }
    let polling = waiters.map { worker in
        Task {
            while !Task.isCancelled {
                let got = try? await worker.poll(maxRecords: 10, timeout: .seconds(2))
                precondition(got?.isEmpty ?? true, "the window is full")
            }
        }
    }
    try! await Task.sleep(for: .milliseconds(100))
    benchmark.startMeasurement()
    for _ in 0..<20_000 { _ = try! await producer.send(topic: "jobs", key: nil, value: value) }
    benchmark.stopMeasurement()
    for task in polling { task.cancel() }
    for task in polling { await task.value }
    for worker in waiters { try! await worker.close() }
    try! await holder.close()
    try! await broker.close()
    try? FileManager.default.removeItem(atPath: dir)
}

/// One broker for all latency iterations, made on first use.
actor LatencyFixture {
    static let shared = LatencyFixture()
    struct Parts: Sendable {
        let broker: Broker
        let producer: Producer
        let consumer: Consumer
    }
    private var parts: Parts?

    func get() async -> Parts {
        if let parts { return parts }
        let broker = try! await Broker.open(dataDirectory: scratch())
        try! await broker.createTopic("latency", partitions: 1)
        let consumer = Consumer(broker: broker)
        try! await consumer.assign(topic: "latency", partition: 0, from: .latest)
        let made = Parts(broker: broker, producer: try! await Producer(broker: broker), consumer: consumer)
        parts = made
        return made
    }
}

import NIOCore
import Tidemark
import TidemarkStorage
import TidemarkWire

// A fetch's reads and its long poll.
extension RequestRouter {
    /// One pass of a fetch over its partitions.
    struct FetchPass {
        var response = FetchResponse()
        /// Record bytes in the response.
        var total = 0
        /// Partitions whose read may grow with an append, and the offset past which an append
        /// grows it: (topic, partition, offset). Those with nothing at the fetch offset (beyond
        /// it), and those read to the log's end with room left (beyond the end they saw).
        var growing: [(String, Int, Int64)] = []
        /// Partitions that would wait for the disk.
        var blocked: [FetchKey: FetchBlocked] = [:]
        /// The response is as full as it gets (a partition had data that did not fit the
        /// byte limits or the broker's response memory), or a partition failed: answer now.
        var answerNow = false
        /// The reads whose records the response holds: counted as fetched
        /// (`tidemark_bytes_out_total`) when it is answered, not at each read of a long poll.
        var sent: [FetchResult] = []
    }

    /// Reads every partition of `request`; nil entries would block. (The fetch's one pass.)
    ///
    /// Limits, as Kafka's: each partition gets at most its partition_max_bytes and what is left
    /// of max_bytes (clamped to `fetchMaxBytes`), but the response's first batch goes whole,
    /// whatever its size, so consumers progress; a later partition whose first batch passes
    /// its limits gets nothing this time. A partition listed twice is read and answered once
    /// (Kafka keys a fetch's partitions by name). Copies (small reads, and reads past the sendfile
    /// slices a response may hold) stop at the broker's response memory room, but for the
    /// first partition with data.
    func fetchPass(_ request: FetchRequest, preRead: [FetchKey: Result<FetchResult, Error>]) -> FetchPass {
        var pass = FetchPass()
        var fileSlices = 0
        // Clamped, so that a response always fits the int32 size that frames it.
        var budget = min(Int(request.maxBytes > 0 ? request.maxBytes : Int32.max), config.fetchMaxBytes)
        var copyRoom = responseMemory.room
        var seen = Set<TopicPartition>()
        for topicRequest in request.topics {
            var topic = FetchResponse.Topic()
            topic.topic = topicRequest.topic
            topic.topicId = topicRequest.topicId
            // Fetch v13+ names topics by id: a stale id gets UNKNOWN_TOPIC_ID.
            let name = topicRequest.topicId.isZero ? topicRequest.topic : topicName(for: topicRequest.topicId)
            for partitionRequest in topicRequest.partitions {
                var result = FetchResponse.Partition()
                result.partitionIndex = partitionRequest.partition
                result.records = .bytes([][...])
                guard let name else {
                    result.errorCode = KafkaError.unknownTopicId.rawValue
                    pass.answerNow = true  // as every other error (a stale id waited max_wait)
                    topic.partitions.append(result)
                    continue
                }
                // Listed again: answered once (a second entry, without offsets, read as a
                // partition with no high watermark).
                guard seen.insert(TopicPartition(name, Int(partitionRequest.partition))).inserted else { continue }
                let key = FetchKey(topic: name, partition: Int(partitionRequest.partition), offset: partitionRequest.fetchOffset)
                let limit = max(min(Int(partitionRequest.partitionMaxBytes), budget), 1)
                do {
                    let read: FetchResult?
                    if let pre = preRead[key] {
                        read = try pre.get()
                    } else {
                        read = try broker.readNow(
                            topic: key.topic, partition: key.partition, offset: key.offset, maxBytes: limit, countsBytesOut: false)
                    }
                    guard let fetched = read else {
                        pass.blocked[key] = .unopened(limit: limit)
                        topic.partitions.append(result)
                        continue
                    }
                    // Data not in the page cache is brought in by the executor first (a pass
                    // redone with what it read is not probed again: it reads even if cold).
                    let probe = preRead[key] == nil
                    result.highWatermark = fetched.highWatermark
                    result.lastStableOffset = fetched.highWatermark
                    result.logStartOffset = fetched.logStartOffset
                    guard let slice = fetched.slice else {
                        pass.growing.append((key.topic, key.partition, key.offset))
                        topic.partitions.append(result)
                        continue
                    }
                    // Small slices are copied (a pread from the page cache is cheaper than a
                    // sendfile, a dup and a close), and at most `maxFileSlicesPerResponse` go
                    // out by sendfile: each holds a descriptor until written, and a fetch of
                    // thousands of partitions must not run the process out of them.
                    let copy = slice.length < Self.sendfileMinimumBytes || fileSlices >= Self.maxFileSlicesPerResponse
                    guard pass.total == 0 || (slice.length <= limit && (!copy || slice.length <= copyRoom)) else {
                        pass.answerNow = true  // full: the rest waits for the next fetch
                        topic.partitions.append(result)
                        continue
                    }
                    if copy {
                        guard let bytes = probe ? try slice.readBytesIfCached() : try slice.readBytes() else {
                            pass.blocked[key] = .cold(fetched)
                            topic.partitions.append(result)
                            continue
                        }
                        result.records = .bytes(bytes[...])
                        copyRoom -= slice.length
                    } else {
                        guard !probe || slice.isCached() else {
                            pass.blocked[key] = .cold(fetched)
                            topic.partitions.append(result)
                            continue
                        }
                        result.records = .slice(slice)
                        fileSlices += 1
                    }
                    pass.total += slice.length
                    budget -= slice.length
                    pass.sent.append(fetched)
                    // min_bytes counts every partition (Kafka's DelayedFetch): one read to the
                    // log's end with room left grows with the next append. One that stopped
                    // before it (at its byte limit, or at the end of an older segment) already
                    // has what it can take, however many appends come: the fetch is answered
                    // now (Kafka counts such a partition at its limit, or answers at once).
                    if !slice.reachesLogEnd {
                        pass.answerNow = true
                    } else if slice.length < limit {
                        pass.growing.append((key.topic, key.partition, fetched.highWatermark))
                    }
                } catch {
                    let code = KafkaError(error)
                    result.errorCode = code.rawValue
                    pass.answerNow = true
                }
                topic.partitions.append(result)
            }
            // A topic whose partitions were all listed before is not answered again.
            if !topic.partitions.isEmpty || topicRequest.partitions.isEmpty { pass.response.topics.append(topic) }
        }
        return pass
    }
}

/// Identifies one partition read of a fetch.
struct FetchKey: Hashable {
    var topic: String
    var partition: Int
    var offset: Int64
}

/// One fetch being answered on its connection's loop, possibly long-polling: it watches the
/// partitions it found empty and holds one loop timer for its deadline.
///
/// Confined to that loop (reached from other threads only through `NIOLoopBound`).
final class FetchInFlight {
    let request: FetchRequest
    let deadline: NIODeadline
    private var done: ((FetchResponse) -> Void)?
    private var watches: [AppendWatch] = []
    private var timer: Scheduled<Void>?

    init(request: FetchRequest, deadline: NIODeadline, done: @escaping (FetchResponse) -> Void) {
        self.request = request
        self.deadline = deadline
        self.done = done
    }

    func attempt(router: RequestRouter, loop: any EventLoop, preRead: [FetchKey: Result<FetchResult, Error>]) {
        guard done != nil else { return }
        let pass = router.fetchPass(request, preRead: preRead)
        if !pass.blocked.isEmpty {
            // Segments to open, or data not in the page cache: the engine's executor opens or
            // reads them, then one more pass.
            let bound = NIOLoopBound(self, eventLoop: loop)
            let blocked = pass.blocked
            let broker = router.broker
            Task {
                var results = preRead
                for (key, reason) in blocked {
                    router.readsOffLoop.add(1, ordering: .relaxed)
                    do {
                        switch reason {
                        case .unopened(let limit):
                            results[key] = .success(
                                try await broker.fetch(
                                    topic: key.topic, partition: key.partition, offset: key.offset, maxBytes: limit, countsBytesOut: false))
                        case .cold(let fetched):
                            if let slice = fetched.slice { try await broker.warm(slice) }
                            results[key] = .success(fetched)
                        }
                    } catch {
                        results[key] = .failure(error)
                    }
                }
                let reads = results
                loop.execute { bound.value.attempt(router: router, loop: loop, preRead: reads) }
            }
            return
        }
        // min_bytes counts up to what the response may hold (Kafka caps it the same way).
        let enough = min(Int(request.minBytes), min(Int(request.maxBytes > 0 ? request.maxBytes : Int32.max), router.config.fetchMaxBytes))
        // A stopping server answers a woken poll at once (`KafkaServer.stop` waits for it).
        if pass.total >= enough || pass.answerNow || NIODeadline.now() >= deadline || pass.growing.isEmpty || router.broker.isClosed
            || router.draining.load(ordering: .relaxed)
        {
            for read in pass.sent { read.countSent() }
            finish(pass.response)
            return
        }
        // Long poll: the first append to a partition whose read can grow, or the deadline,
        // wakes it (then every partition is read again).
        let bound = NIOLoopBound(self, eventLoop: loop)
        for (topic, partition, end) in pass.growing {
            let watch = router.broker.watchAppends(topic: topic, partition: partition, beyond: end) {
                loop.execute { bound.value.wake(router: router, loop: loop) }
            }
            if let watch { watches.append(watch) }
        }
        if timer == nil {
            timer = loop.scheduleTask(deadline: deadline) { bound.value.wake(router: router, loop: loop) }
        }
    }

    /// Its connection closed: done now, with nothing (the answer is not written), so that
    /// its watches, timer and request memory go at once.
    func abandon() { finish(FetchResponse()) }

    private func wake(router: RequestRouter, loop: any EventLoop) {
        for watch in watches { watch.cancel() }
        watches.removeAll()
        attempt(router: router, loop: loop, preRead: [:])
    }

    private func finish(_ response: FetchResponse) {
        for watch in watches { watch.cancel() }
        watches.removeAll()
        timer?.cancel()
        timer = nil
        guard let done else { return }
        self.done = nil
        done(response)
    }
}

import NIOCore
import Tidemark
import TidemarkStorage
import TidemarkWire

// A fetch's reads and its long poll.
extension RequestRouter {
    /// One pass of a fetch over its partitions.
    struct FetchPass {
        var response = FetchResponse()
        /// Partitions whose read may grow with an append, and the offset past which an append
        /// grows it: (topic, partition, offset). Those with nothing at the fetch offset (beyond
        /// it), and those read to the log's end with room left (beyond the end they saw).
        var growing: [(String, Int, Int64)] = []
        /// Partitions that would wait for the disk (a segment to open, bytes not in the page
        /// cache), in the request's order, with their byte limits and what the response held
        /// and could take before them: the executor reads them. Not their slices: a pass may
        /// find thousands so, and a slice holds its segment's descriptor, outside the
        /// open-file budget, for as long as it is held.
        var blocked: [FetchWait] = []
        /// The response is as full as it gets (a partition had data that did not fit the
        /// byte limits or the broker's response memory), or a partition failed: answer now.
        var answerNow = false
        /// The reads whose records the response holds, with their sizes (their slices let
        /// go): counted as fetched (`tidemark_bytes_out_total`) when it is answered, not at
        /// each read of a long poll.
        var sent: [(FetchResult, bytes: Int)] = []
        /// What the response may still take; the executor's reads for the next pass keep to it.
        var room = Room()
    }

    /// What a fetch response holds and may still take.
    struct Room {
        /// Record bytes in it.
        var total = 0
        /// Bytes it may still take (max_bytes, clamped to `fetchMaxBytes`).
        var budget = 0
        /// Bytes it may still copy (the broker's response memory).
        var copyRoom = 0
        /// Its sendfile slices.
        var fileSlices = 0

        /// A read of `length` bytes is copied into the response, not sent by sendfile: small
        /// slices (a pread from the page cache is cheaper than a sendfile, a dup and a close),
        /// and those past `maxFileSlicesPerResponse` (each holds a descriptor until written,
        /// and a fetch of thousands of partitions must not run the process out of them).
        func copies(_ length: Int) -> Bool {
            length < RequestRouter.sendfileMinimumBytes || fileSlices >= RequestRouter.maxFileSlicesPerResponse
        }

        /// The response takes a read of `length` bytes (`limit`: the partition's): the first
        /// with data whole, whatever its size, the others within the limits and, copied, the
        /// response memory.
        func takes(_ length: Int, limit: Int, copy: Bool) -> Bool {
            total == 0 || (length <= limit && (!copy || length <= copyRoom))
        }
    }

    /// Reads every partition of `request`; partitions that would block are left to the
    /// executor, which reads them for the next pass (`preRead`).
    ///
    /// Limits, as Kafka's: each partition gets at most its partition_max_bytes and what is left
    /// of max_bytes (clamped to `fetchMaxBytes`), but the response's first batch goes whole,
    /// whatever its size, so consumers progress; a later partition whose first batch passes
    /// its limits gets nothing this time. A partition listed twice is read and answered once
    /// (Kafka keys a fetch's partitions by name). Copies (small reads, and reads past the sendfile
    /// slices a response may hold) stop at the broker's response memory room, but for the
    /// first partition with data.
    func fetchPass(_ request: FetchRequest, preRead: [FetchKey: FetchPreRead]) -> FetchPass {
        var pass = FetchPass()
        // Clamped, so that a response always fits the int32 size that frames it.
        pass.room.budget = min(Int(request.maxBytes > 0 ? request.maxBytes : Int32.max), config.fetchMaxBytes)
        pass.room.copyRoom = responseMemory.room
        var seen = Set<TopicPartition>()
        for topicRequest in request.topics {
            var topic = FetchResponse.Topic()
            topic.topic = topicRequest.topic
            topic.topicId = topicRequest.topicId
            // Fetch v13+ names topics by id: a stale (or zero) id gets UNKNOWN_TOPIC_ID.
            let name = request.topicsById ? topicName(for: topicRequest.topicId) : topicRequest.topic
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
                let limit = max(min(Int(partitionRequest.partitionMaxBytes), pass.room.budget), 1)
                do {
                    // The read: the executor's for this pass, or one now (nil: it would block).
                    // Data not in the page cache is brought in by the executor first (a pass
                    // redone with what it read is not probed again: it reads even if cold).
                    let fetched: FetchResult
                    var copied: FetchPreRead.Copy? = nil
                    let probe = preRead[key] == nil
                    switch preRead[key] {
                    case .failed(let error):
                        throw error
                    case .read(let read):
                        fetched = read
                    case .copied(let read, let copy):
                        fetched = read
                        copied = copy
                    case .full(let read):
                        result.highWatermark = read.highWatermark
                        result.lastStableOffset = read.highWatermark
                        result.logStartOffset = read.logStartOffset
                        pass.answerNow = true  // full: the rest waits for the next fetch
                        topic.partitions.append(result)
                        continue
                    case nil:
                        guard
                            let read = try broker.readNow(
                                topic: key.topic, partition: key.partition, offset: key.offset, maxBytes: limit, countsBytesOut: false)
                        else {
                            pass.blocked.append(FetchWait(key: key, limit: limit, before: pass.room))
                            topic.partitions.append(result)
                            continue
                        }
                        fetched = read
                    }
                    result.highWatermark = fetched.highWatermark
                    result.lastStableOffset = fetched.highWatermark
                    result.logStartOffset = fetched.logStartOffset
                    let length: Int
                    let reachesLogEnd: Bool
                    if let copied {
                        (length, reachesLogEnd) = (copied.bytes.count, copied.reachesLogEnd)
                    } else if let slice = fetched.slice {
                        (length, reachesLogEnd) = (slice.length, slice.reachesLogEnd)
                    } else {
                        pass.growing.append((key.topic, key.partition, key.offset))
                        topic.partitions.append(result)
                        continue
                    }
                    let copy = copied != nil || pass.room.copies(length)
                    guard pass.room.takes(length, limit: limit, copy: copy) else {
                        pass.answerNow = true  // full: the rest waits for the next fetch
                        topic.partitions.append(result)
                        continue
                    }
                    if let copied {
                        result.records = .bytes(copied.bytes[...])
                        pass.room.copyRoom -= length
                    } else if let slice = fetched.slice, copy {
                        guard let bytes = probe ? try slice.readBytesIfCached() : try slice.readBytes() else {
                            pass.blocked.append(FetchWait(key: key, limit: limit, before: pass.room))
                            topic.partitions.append(result)
                            continue
                        }
                        result.records = .bytes(bytes[...])
                        pass.room.copyRoom -= length
                    } else if let slice = fetched.slice {
                        guard !probe || slice.isCached() else {
                            pass.blocked.append(FetchWait(key: key, limit: limit, before: pass.room))
                            topic.partitions.append(result)
                            continue
                        }
                        result.records = .slice(slice)
                        pass.room.fileSlices += 1
                    }
                    pass.room.total += length
                    pass.room.budget -= length
                    var counted = fetched
                    counted.slice = nil  // the response holds what it sends; this only counts
                    pass.sent.append((counted, length))
                    // min_bytes counts every partition (Kafka's DelayedFetch): one read to the
                    // log's end with room left grows with the next append. One that stopped
                    // before it (at its byte limit, or at the end of an older segment) already
                    // has what it can take, however many appends come: the fetch is answered
                    // now (Kafka counts such a partition at its limit, or answers at once).
                    if !reachesLogEnd {
                        pass.answerNow = true
                    } else if length < limit {
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

    /// Reads the partitions a pass left (`FetchPass.blocked`) on the engine's executor, for
    /// the next pass; returns the bytes it copied, held in `responseMemory` until that pass
    /// (the caller releases them). What the response can take is judged as the pass would,
    /// each partition at its place in the request (what came before it, the executor's reads
    /// included): copies of small reads, and of reads past the response's sendfile slices, as
    /// bytes (their slices, and descriptors, let go); at most the response's sendfile slices as
    /// slices, brought into the page cache; a read that does not fit as `full` (its offsets
    /// only). The first partition with data goes whole. So a fetch of thousands of partitions
    /// in segments not open holds at most `maxFileSlicesPerResponse` descriptors, and its
    /// copies count toward the broker's response memory. A cancelled task stops reading.
    func readBlocked(_ blocked: [FetchWait], into results: inout [FetchKey: FetchPreRead]) async -> Int {
        // Slices held by earlier rounds' reads (a pass may have left some unsent).
        let heldSlices = results.values.reduce(0) { count, read in
            if case .read(let fetched) = read, fetched.slice != nil { return count + 1 }
            return count
        }
        var (added, copied, slices) = (0, 0, 0)
        for wait in blocked {
            if Task.isCancelled { break }
            readsOffLoop.add(1, ordering: .relaxed)
            do {
                var read = try await broker.fetch(
                    topic: wait.key.topic, partition: wait.key.partition, offset: wait.key.offset, maxBytes: wait.limit,
                    countsBytesOut: false)
                guard let slice = read.slice else {
                    results[wait.key] = .read(read)
                    continue
                }
                read.slice = nil
                // The response at this partition's place: what came before it in the pass, and
                // the reads made here before it.
                var room = wait.before
                room.total += added
                room.budget -= added
                room.copyRoom = min(room.copyRoom - copied, responseMemory.room)
                room.fileSlices = max(room.fileSlices, heldSlices) + slices
                let copy = room.copies(slice.length)
                guard room.takes(slice.length, limit: room.budget, copy: copy) else {
                    results[wait.key] = .full(read)
                    continue
                }
                if copy {
                    let bytes = try await broker.bytes(of: slice)  // checks it read the whole slice
                    responseMemory.hold(bytes.count)
                    copied += bytes.count
                    results[wait.key] = .copied(read, .init(bytes: bytes, reachesLogEnd: slice.reachesLogEnd))
                } else {
                    try await broker.warm(slice)
                    read.slice = slice
                    results[wait.key] = .read(read)
                    slices += 1
                }
                added += slice.length
            } catch {
                results[wait.key] = .failed(error)
            }
        }
        return copied
    }
}

/// A partition a fetch pass left for the executor (`RequestRouter.readBlocked`): its read's
/// byte limit, and what the response held and could take before it.
struct FetchWait: Sendable {
    var key: FetchKey
    var limit: Int
    var before: RequestRouter.Room
}

/// What the executor read for a fetch's next pass (`RequestRouter.readBlocked`).
enum FetchPreRead: Sendable {
    /// The bytes of a read copied off the loop, and whether it ran to the log's end.
    struct Copy: Sendable {
        var bytes: [UInt8]
        var reachesLogEnd: Bool
    }
    /// A read as the engine returned it: nothing at the offset, or a slice to send by
    /// sendfile (in the page cache).
    case read(FetchResult)
    /// A read whose bytes were copied; its slice is nil.
    case copied(FetchResult, Copy)
    /// A read past what the response could take: its offsets, no slice.
    case full(FetchResult)
    case failed(any Error)
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
    /// Answered: it waits for nothing more (an abandoned fetch is once its step in progress,
    /// if any, comes back).
    var isOver: Bool { done == nil }
    private var watches: [AppendWatch] = []
    private var timer: Scheduled<Void>?
    /// The executor's reads for the next pass, while they run (cancelled when abandoned).
    private var reading: Task<Void, Never>?

    init(request: FetchRequest, deadline: NIODeadline, done: @escaping (FetchResponse) -> Void) {
        self.request = request
        self.deadline = deadline
        self.done = done
    }

    func attempt(router: RequestRouter, loop: any EventLoop, preRead: [FetchKey: FetchPreRead]) {
        reading = nil
        guard done != nil else { return }
        let pass = router.fetchPass(request, preRead: preRead)
        if !pass.blocked.isEmpty {
            // Segments to open, or data not in the page cache: the engine's executor opens or
            // reads them, then one more pass.
            let bound = NIOLoopBound(self, eventLoop: loop)
            let blocked = pass.blocked
            reading = Task {
                var results = preRead
                let held = await router.readBlocked(blocked, into: &results)
                let reads = results
                loop.execute {
                    // The next pass counts what it keeps of these copies as it answers.
                    router.responseMemory.release(held)
                    bound.value.attempt(router: router, loop: loop, preRead: reads)
                }
            }
            return
        }
        // min_bytes counts up to what the response may hold (Kafka caps it the same way).
        let enough = min(Int(request.minBytes), min(Int(request.maxBytes > 0 ? request.maxBytes : Int32.max), router.config.fetchMaxBytes))
        // A stopping server answers a woken poll at once (`KafkaServer.stop` waits for it).
        if pass.room.total >= enough || pass.answerNow || NIODeadline.now() >= deadline || pass.growing.isEmpty || router.broker.isClosed
            || router.draining.load(ordering: .relaxed)
        {
            for (read, bytes) in pass.sent { read.countSent(bytes: bytes) }
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
    func abandon() {
        reading?.cancel()
        finish(FetchResponse())
    }

    private func wake(router: RequestRouter, loop: any EventLoop) {
        for watch in watches { watch.cancel() }
        watches.removeAll()
        // The deadline while the executor reads for the next pass: that pass answers (it
        // sees the deadline); a second round of reads would hold what the first holds again.
        guard reading == nil else { return }
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

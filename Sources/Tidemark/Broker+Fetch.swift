import TidemarkStorage

/// What a fetch found in one partition.
public struct FetchResult: Sendable {
    /// Whole stored batches (the first may begin before the requested offset), or nil.
    public var slice: LogSlice?
    /// The end readers see (Kafka's high watermark on a single node): one past the last
    /// appended offset, or on a topic synced every append, the last synced
    /// (`PartitionLog.visibleEndOffset`).
    public var highWatermark: Int64
    public var logStartOffset: Int64
    /// The topic's counters (nil: not counted).
    var traffic: EngineMetrics.TopicTraffic? = nil

    /// Counts the slice as fetched (`tidemark_bytes_out_total`), for a caller that read it
    /// without counting (`countsBytesOut: false`) and sends it.
    public func countSent() { countSent(bytes: slice?.length ?? 0) }

    /// Counts `bytes` of this read as fetched: for a caller that copied the slice's bytes and
    /// let the slice (and its segment's descriptor) go before sending them.
    public func countSent(bytes: Int) {
        if bytes > 0 { traffic?.bytesOut.increment(by: Int64(bytes)) }
    }
}

/// A registered wake-up for appends (`Broker.watchAppends`); `cancel` removes it.
public struct AppendWatch: Sendable {
    let notifier: AppendNotifier
    let id: Int

    /// True when the watch had not fired (and now never will).
    @discardableResult
    public func cancel() -> Bool { notifier.cancel(id) }
}

/// Where a consumer starts reading.
public enum StartPosition: Sendable, Equatable {
    case earliest
    case latest
    case offset(Int64)
    /// The first record whose timestamp is >= this (ms since the epoch); the log end if none.
    case timestamp(Int64)
}

extension Broker {
    /// Reads from `offset`, waiting up to `maxWaitMs` for at least `minBytes` (woken by
    /// appends, no polling). Returns whole batches up to `maxBytes` (at least one).
    /// Throws `.offsetOutOfRange` outside the log.
    public func fetch(
        topic: String, partition: Int, offset: Int64, maxBytes: Int = 1 << 20, minBytes: Int = 1, maxWaitMs: Int64 = 0,
        countsBytesOut: Bool = true
    ) async throws -> FetchResult {
        let state = try partitionState(topic, partition)
        let deadline = ContinuousClock.now + .milliseconds(maxWaitMs)
        while true {
            let result = try await read(state, offset: offset, maxBytes: maxBytes)
            let available = result.slice?.length ?? 0
            if available >= minBytes || ContinuousClock.now >= deadline || isClosed {
                if countsBytesOut { result.countSent() }
                return result
            }
            // Wait for an append past the end we saw, then look again. A cancelled task stops
            // here (its wait returns at once: looping would spin until the deadline).
            await state.notifier.wait(untilEndPasses: result.highWatermark, deadline: deadline, timers: timers) {
                state.log.visibleEndOffset
            }
            try Task.checkCancellation()
        }
    }

    /// Reads on the calling task when the data is in an open segment (page-cache reads); a
    /// read that must open a segment goes to the blocking executor.
    private func read(_ state: PartitionState, offset: Int64, maxBytes: Int) async throws -> FetchResult {
        if let result = try readLocked(state, offset: offset, maxBytes: maxBytes, mayBlock: false) { return result }
        return try await executor.run { [self] in try readLocked(state, offset: offset, maxBytes: maxBytes, mayBlock: true)! }
    }

    /// Brings a slice that `readNow` returned into the page cache on the blocking executor,
    /// for an event loop that found it cold (`LogSlice.readBytesIfCached`, `isCached`).
    public func warm(_ slice: LogSlice) async throws {
        try await executor.run { try slice.warm() }
    }

    /// A slice's bytes, read on the blocking executor (they may come from the disk). A caller
    /// holding many reads keeps these rather than the slices: each slice holds its segment's
    /// descriptor, outside the open-file budget, for as long as it is held.
    public func bytes(of slice: LogSlice) async throws -> [UInt8] {
        try await executor.run { try slice.readBytes() }
    }

    /// The event loop's read: nil when it would block (a segment to open first).
    /// A fetch that can block goes through `read(topic:partition:offset:maxBytes:)`. Both count
    /// the bytes read as fetched (`tidemark_bytes_out_total`).
    /// Without `countsBytesOut`, the caller counts what it sends (`FetchResult.countSent`): a long poll
    /// reads its partitions again at each wake, and counted bytes it never sent.
    public func readNow(
        topic: String, partition: Int, offset: Int64, maxBytes: Int, countsBytesOut: Bool = true
    ) throws(TidemarkError) -> FetchResult? {
        let state = try partitionState(topic, partition)
        let result = try readLocked(state, offset: offset, maxBytes: maxBytes, mayBlock: false)
        if countsBytesOut { result?.countSent() }
        return result
    }


    /// The time of the record at `offset` (the append time on LogAppendTime topics); nil past
    /// the end or when unreadable. For time lag and queue age; may read a segment from disk.
    ///
    /// The batch's first timestamp when the record is the batch's first, when the batch's
    /// largest timestamp is less than a second past its first (a batch stamped newest first is
    /// not told apart), or when the batch is over `timestampReadMaxBytes`. Otherwise the
    /// batch is read and walked (and decompressed) to the record: a batch a producer buffered
    /// through an outage spans minutes, and its first timestamp made a group one record behind
    /// read an hour late. Scrapes call this per lagging partition: the size bounds their cost.
    public func timestamp(topic: String, partition: Int, at offset: Int64) -> Int64? {
        guard let state = try? partitionState(topic, partition),
            let header = try? state.log.batchHeader(containing: offset)
        else { return nil }
        if header.timestampType == .logAppendTime { return header.maxTimestamp }
        guard offset > header.baseOffset, header.maxTimestamp &- header.baseTimestamp >= 1_000,
            header.totalSize <= Self.timestampReadMaxBytes
        else { return header.baseTimestamp }
        guard let slice = try? state.log.read(from: offset, maxBytes: header.totalSize, keepBytes: true).slice,
            let bytes = try? slice.readBytes(),
            let batch = bytes.withUnsafeBytes({ raw in
                try? RecordBatch(decoding: raw, keeping: { $0 == offset }, limit: 1, through: offset)
            }),
            batch.header.baseOffset == header.baseOffset,
            let record = batch.records.first
        else { return header.baseTimestamp }
        return header.baseTimestamp &+ record.timestampDelta
    }

    /// Largest batch `timestamp(topic:partition:at:)` reads to find a record's own time.
    static let timestampReadMaxBytes = 1 << 20

    /// Records damage a reader found in bytes it read (a stored batch whose records or CRC do
    /// not check out): the partition is marked for `tidemark verify --repair` and the damage
    /// logged once. Returns the error to answer (CORRUPT_MESSAGE, as a read of damage gets).
    public func reportDamage(topic: String, partition: Int, at offset: Int64, _ reason: String) -> TidemarkError {
        let what = "share fetch from \(topic)-\(partition) at \(offset): the log is damaged there"
        guard let state = try? partitionState(topic, partition) else { return TidemarkError(.corruptMessage, "\(what) (\(reason))") }
        let marked = state.log.markDamaged(
            StorageError(.corruptLog, "the batch holding offset \(offset) does not check out (\(reason))", path: state.log.directory),
            reading: offset)
        state.reportOnce("read (run `tidemark verify --repair` with the broker stopped)", error: marked, logger: options.logger)
        return TidemarkError(.corruptMessage, what, storage: marked)
    }

    /// `keepBytes`: the caller reads the slice's bytes (a small slice keeps those its header walk
    /// read: `LogSlice.held`); a caller that only warms or looks at headers passes false.
    func readLocked(
        _ state: PartitionState, offset: Int64, maxBytes: Int, mayBlock: Bool, keepBytes: Bool = true
    ) throws(TidemarkError) -> FetchResult? {
        do throws(StorageError) {
            // Up to what readers may see: on a topic synced every append, what is synced.
            let result = try state.log.read(
                from: offset, maxBytes: maxBytes, mayBlock: mayBlock, keepBytes: keepBytes, upTo: state.log.visibleEndOffset)
            return FetchResult(
                slice: result.slice, highWatermark: result.logEndOffset, logStartOffset: result.logStartOffset, traffic: state.traffic)
        } catch where error.code == .wouldBlock {
            return nil
        } catch {
            if error.code == .corruptLog {
                // Damage is answered to this fetch, never skipped over: CORRUPT_MESSAGE, as Kafka
                // answers a read of a damaged log. Clients show it (librdkafka: "Fetch from broker
                // 0 failed: Broker: Corrupt message"; the Java consumer throws) where a storage
                // error would be retried in silence, a consumer stalled with nothing said.
                state.reportOnce("read (run `tidemark verify --repair` with the broker stopped)", error: error, logger: options.logger)
                throw TidemarkError(
                    .corruptMessage, "fetch from \(state.topic)-\(state.partition) at \(offset): the log is damaged there", storage: error)
            }
            throw TidemarkError.servingPartition(error, "fetch from \(state.topic)-\(state.partition) at \(offset)", brokerClosed: isClosed)
        }
    }

    /// Waits until the partition's end passes `offset` or the deadline: the building block
    /// for multi-partition long polls (the embedded consumer).
    public func waitForAppend(topic: String, partition: Int, beyond offset: Int64, until deadline: ContinuousClock.Instant) async {
        guard let state = try? partitionState(topic, partition) else { return }
        await state.notifier.wait(untilEndPasses: offset, deadline: deadline, timers: timers) { state.log.visibleEndOffset }
    }

    /// Calls `wake` once the partition's end passes `offset` (at once if it has, and on
    /// close). Returns a watch to cancel, or nil when `wake` already ran. For event loops:
    /// `wake` runs on the appender's thread and must hand the work back. A share-group poll
    /// passes `share`: it is then woken only when an append is its group's to take (`ShareWake`).
    public func watchAppends(
        topic: String, partition: Int, beyond offset: Int64, share: ShareWake? = nil, _ wake: @escaping @Sendable () -> Void
    ) -> AppendWatch? {
        guard let state = try? partitionState(topic, partition) else {
            wake()
            return nil
        }
        return state.notifier.watch(beyond: offset, currentEnd: { state.log.visibleEndOffset }, share: share, wake: wake).map {
            AppendWatch(notifier: state.notifier, id: $0)
        }
    }

    /// Hands an append's wake to the next waiting share poll of `group` on the partition (see
    /// `ShareWake`): the poll it woke left records another could take, or could take none.
    public func passShareWake(topic: String, partition: Int, group: String) {
        guard let state = try? partitionState(topic, partition) else { return }
        state.notifier.passOn(group: group, end: state.log.visibleEndOffset)
    }

    /// Records of `group` in `tp` may have become available without an append (an
    /// acknowledgement released them, their lock expired, their holder left or its connection
    /// closed, a fetch gave them back): wakes as many waiting share polls of the group there
    /// as could take one. Without this, a waiting worker found them only at its poll's next
    /// timer wake (a released job was redelivered 140-150 ms later). Costs a look at the
    /// partition's waiters when no poll of the group waits there. Opens the group's window
    /// there (`AppendNotifier.openShareWindow`): appends wake its polls again.
    public func offerShareRecords(group: String, _ tp: TopicPartition) {
        guard let state = try? partitionState(tp.topic, tp.partition) else { return }
        let stamp = shareWindowOpens.add(1, ordering: .sequentiallyConsistent).newValue
        state.notifier.openShareWindow(group: group, stamp: stamp)
        let waiting = state.notifier.waitingShareWaiters(group: group)
        guard waiting > 0 else { return }
        let (available, full) = shares.offerable(group: group, tp, view: shareLogViewWithoutBlocking, max: waiting)
        // Full again (the acknowledging worker's own fetch took the lock it freed): closed
        // again, unless opened since (the next append would wake a poll for nothing).
        if full { state.notifier.closeShareWindow(group: group, stampBefore: stamp) }
        state.notifier.offer(group: group, count: available)
    }

    /// The count of share windows opened so far, for `closeShareWindows`: read before the
    /// acquire that finds windows full.
    public var shareWindowStamp: UInt64 { shareWindowOpens.load(ordering: .sequentiallyConsistent) }

    /// `group`'s share windows in `partitions` take no appended record now (an acquire found
    /// every record lock of each in flight: `ShareCoordinator.acquire`'s `full`): appends
    /// there tell the group's waiting polls instead of waking them, until an acknowledgement
    /// frees a lock or records are offered (`offerShareRecords`). `stamp`: `shareWindowStamp`
    /// read before that acquire (a window opened since is left open).
    public func closeShareWindows(group: String, _ partitions: [TopicPartition], stamp: UInt64) {
        for tp in partitions {
            (try? partitionState(tp.topic, tp.partition))?.notifier.closeShareWindow(group: group, stampBefore: stamp)
        }
    }

    /// `offerShareRecords` for each of `released`, once each (a second offer of a partition
    /// would count the records the polls woken by the first have not taken yet, and wake more).
    public func offerShareRecords(_ released: [(group: String, topicPartition: TopicPartition)]) {
        var seen: [String: Set<TopicPartition>] = [:]
        for (group, tp) in released where seen[group, default: []].insert(tp).inserted { offerShareRecords(group: group, tp) }
    }

    /// Resolves a start position to an offset (Kafka's ListOffsets). For a timestamp with
    /// no record at or after it, returns the log end and a nil timestamp.
    public func resolveOffset(topic: String, partition: Int, _ position: StartPosition) async throws -> (
        offset: Int64, timestamp: Int64?
    ) {
        let state = try partitionState(topic, partition)
        switch position {
        case .earliest: return (state.log.logStartOffset, nil)
        case .latest: return (state.log.visibleEndOffset, nil)
        case .offset(let offset):
            guard offset >= state.log.logStartOffset && offset <= state.log.logEndOffset else {
                throw TidemarkError(.offsetOutOfRange, "offset \(offset) is outside \(state.topic)-\(state.partition)")
            }
            return (offset, nil)
        case .timestamp(let timestamp):
            return try await executor.run {
                do {
                    // Only what readers see (Kafka looks below the high watermark).
                    let visible = state.log.visibleEndOffset
                    if let found = try state.log.offset(forTimestamp: timestamp), found.offset < visible { return (found.offset, found.timestamp) }
                    return (visible, nil)
                } catch let error as StorageError {
                    throw TidemarkError.servingPartition(error, "time lookup in \(state.topic)-\(state.partition)", brokerClosed: self.isClosed)
                }
            }
        }
    }

    /// The record with the largest timestamp (the first of them), and that timestamp: Kafka's
    /// ListOffsets MAX_TIMESTAMP. Nil for an empty partition.
    public func offsetOfMaxTimestamp(topic: String, partition: Int) async throws -> (offset: Int64, timestamp: Int64)? {
        let state = try partitionState(topic, partition)
        return try await executor.run {
            do {
                return try state.log.offsetOfMaxTimestamp()
            } catch let error as StorageError {
                throw TidemarkError.servingPartition(error, "largest timestamp of \(state.topic)-\(state.partition)", brokerClosed: self.isClosed)
            }
        }
    }

    /// Offsets of a partition: (log start, the end readers see: the log end, or on a topic
    /// synced every append what is synced of it, `PartitionLog.visibleEndOffset`).
    public func offsets(topic: String, partition: Int) throws(TidemarkError) -> (start: Int64, end: Int64) {
        let state = try partitionState(topic, partition)
        return (state.log.logStartOffset, state.log.visibleEndOffset)
    }
}

import Foundation
import Tidemark
import TidemarkStorage

/// Reading the stored batches that hold one share acquisition's records: from its first
/// offset, keeping the batches that hold an acquired offset and reading no further than the
/// last acquired offset, in growing chunks (one acquired record costs one small read, not
/// `maxBytes`). A large batch of which only a few records were acquired is decoded once into
/// the broker's `ShareBatchCache` (for the fetches that take its records a few at a time)
/// and sent trimmed to those records.
///
/// The walk only decides what to read next and takes what was read: the event loop drives
/// it with page-cache reads (`RequestRouter.readBatchesNow`), a task with reads that may
/// wait for the disk (`readBatches`), and a walk the loop could not finish goes on in the task.
struct ShareBatchWalk: Sendable {
    let topicPartition: TopicPartition
    let topicId: UUID
    let keep: [AcquiredRange]
    let maxBytes: Int
    /// The last acquired offset.
    let target: Int64
    /// The batches kept so far, as they go out.
    private(set) var kept: [UInt8] = []
    /// The last offset the reads reached (acquired offsets past it were not delivered).
    private(set) var covered: Int64
    private var chunk = 16 << 10
    private var ended = false
    /// A batch holding acquired records whose bytes fail their check (damaged on disk after
    /// the window was read): the walk ended before it; (its base offset, why).
    private(set) var damage: (offset: Int64, reason: String)?

    init(_ acquisition: ShareAcquisition, topicId: UUID, maxBytes: Int) {
        topicPartition = acquisition.topicPartition
        self.topicId = topicId
        keep = acquisition.ranges
        self.maxBytes = maxBytes
        target = acquisition.ranges.map(\.last).max() ?? acquisition.offsets[0]
        covered = acquisition.offsets[0] - 1
    }

    /// The next read to make (offset, byte limit), after taking what `cache` holds; nil when done.
    mutating func nextRead(cache: ShareBatchCache) -> (offset: Int64, limit: Int)? {
        while !ended && covered < target && (kept.isEmpty || kept.count < maxBytes) {
            if let cached = cache.batch(topicPartition, id: topicId, containing: covered + 1) {
                kept += RequestRouter.trimmed(cached, keep: keep)
                covered = cached.header.baseOffset + Int64(cached.header.lastOffsetDelta)
                continue
            }
            let limit = kept.isEmpty ? min(chunk, maxBytes) : min(chunk, maxBytes - kept.count)
            return (covered + 1, max(1, limit))
        }
        return nil
    }

    /// Ends the walk at damage a read met (the batches kept so far go out).
    mutating func endAtDamage(_ offset: Int64, _ reason: String) {
        damage = (offset, reason)
        ended = true
    }

    /// Takes the whole stored batches a read returned (nil or nothing new: the log ends there).
    /// On an event loop (`onLoop`: the request's allowance), a compressed batch that would have
    /// to be decoded is left for the task when it is gzip or zstd (whose ratio has no useful
    /// bound: a few KB can make 64 MiB), or when it passes what is left of the allowance (the
    /// produce path's, for the whole request); false then, with the walk before that batch.
    @discardableResult
    mutating func take(_ bytes: [UInt8]?, cache: ShareBatchCache, onLoop: LoopDecodeAllowance? = nil) -> Bool {
        guard let bytes else {
            ended = true
            return true
        }
        var position = 0
        let before = covered
        while position + 61 <= bytes.count {
            let base = bytes.withUnsafeBytes { Int64(bigEndian: $0.loadUnaligned(fromByteOffset: position, as: Int64.self)) }
            let length = bytes.withUnsafeBytes { Int32(bigEndian: $0.loadUnaligned(fromByteOffset: position + 8, as: Int32.self)) }
            let delta = bytes.withUnsafeBytes { Int32(bigEndian: $0.loadUnaligned(fromByteOffset: position + 23, as: Int32.self)) }
            let end = position + 12 + Int(length)
            guard length > 0, end <= bytes.count else { break }
            let last = base + Int64(delta)
            if last > covered {
                let runs = RequestRouter.runs(keep, base: base, last: last)
                if !runs.isEmpty {
                    // What goes out is checked (framing, CRC; a decode checks them too): a batch
                    // that rotted on disk after its records were read into the window would reach
                    // the worker undecodable, its jobs expire unprocessed and end archived in silence.
                    let acquired = runs.reduce(Int64(0)) { $0 + ($1.upperBound - $1.lowerBound + 1) }
                    let slice = bytes[position..<end]
                    let count = bytes.withUnsafeBytes { Int32(bigEndian: $0.loadUnaligned(fromByteOffset: position + 57, as: Int32.self)) }
                    let whole = count <= ShareBatchCache.maxRecordsPerBatch
                    let decodes = end - position > 16 << 10 && acquired * 2 < last - base + 1
                    if let allowance = onLoop, decodes,
                        !allowance.take(Broker.compressedBytes(bytes[position..<end]))
                    {
                        return false
                    }
                    let checked: Result<RecordBatch?, RecordBatchError> = slice.withUnsafeBytes { raw in
                        Result { () throws(RecordBatchError) in
                            // A large batch of which few records go out is decoded (and trimmed);
                            // one that does not decode (beyond the decode's size bound) goes whole.
                            // One of up to `maxRecordsPerBatch` records is decoded whole, for the
                            // cache (later fetches take its other records); one of more, only for
                            // the records that go out (it may hold millions of tiny ones).
                            if decodes {
                                let sorted = runs.sorted { $0.lowerBound < $1.lowerBound }
                                var next = 0
                                let decoded = whole
                                    ? try? RecordBatch(decoding: raw)
                                    : try? RecordBatch(decoding: raw, keeping: { offset in
                                        while next < sorted.count && sorted[next].upperBound < offset { next += 1 }
                                        return next < sorted.count && sorted[next].contains(offset)
                                    }, through: sorted.last!.upperBound)
                                if let decoded { return decoded }
                            }
                            _ = try RecordBatchHeader.validate(raw)
                            return nil
                        }
                    }
                    switch checked {
                    case .failure(let error):
                        damage = (base, "\(error)")
                        ended = true
                        return true
                    case .success(let decoded?):
                        if whole { cache.insert(topicPartition, id: topicId, decoded) }
                        kept += RequestRouter.trimmed(decoded, keep: keep)
                    case .success(nil):
                        kept += slice
                    }
                }
                covered = last
            }
            position = end
            if covered >= target { break }
        }
        if covered == before { ended = true }
        chunk = min(chunk * 4, 4 << 20)
        return true
    }
}

extension RequestRouter {
    /// Drives `walk` with page-cache reads on the calling event loop. Returns false, with
    /// the walk where it stopped, when a read would wait for the disk (a segment to open,
    /// bytes not in the page cache).
    func readBatchesNow(_ walk: inout ShareBatchWalk, allowance: LoopDecodeAllowance) throws -> Bool {
        let tp = walk.topicPartition
        while let (offset, limit) = walk.nextRead(cache: shareBatches) {
            let read: FetchResult?
            do {
                read = try broker.readNow(topic: tp.topic, partition: tp.partition, offset: offset, maxBytes: limit)
            } catch {
                guard error.code == .corruptMessage, !walk.kept.isEmpty else { throw error }
                walk.endAtDamage(offset, "\(error)")  // what was read before it goes out
                return true
            }
            guard let result = read else { return false }
            guard let slice = result.slice else {
                walk.take(nil, cache: shareBatches)
                continue
            }
            guard let bytes = try slice.readBytesIfCached(), walk.take(bytes, cache: shareBatches, onLoop: allowance) else { return false }
        }
        return true
    }

    /// Drives `walk` to its end with reads that may wait for the disk (off the event loop).
    func readBatches(_ walk: inout ShareBatchWalk) async throws {
        let tp = walk.topicPartition
        while let (offset, limit) = walk.nextRead(cache: shareBatches) {
            let result: FetchResult
            do {
                result = try await broker.fetch(topic: tp.topic, partition: tp.partition, offset: offset, maxBytes: limit)
            } catch let error as TidemarkError where error.code == .corruptMessage && !walk.kept.isEmpty {
                return walk.endAtDamage(offset, "\(error)")
            }
            walk.take(try result.slice?.readBytes(), cache: shareBatches)
        }
    }
}

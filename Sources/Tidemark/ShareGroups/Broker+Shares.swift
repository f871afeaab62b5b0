import Foundation
import Synchronization
import SystemPackage
import TidemarkStorage

extension Broker {
    /// Where this broker's partitions are, for share partitions (internal topics excluded).
    /// Its scan reads the log on the calling thread, opening segments and waiting for the disk.
    public var shareLogView: ShareLogView { shareLogView(mayBlock: true) }

    /// The share view for an event loop: a scan that would wait for the disk (a segment to
    /// open, bytes not in the page cache) reads nothing and returns nil (see `ShareLogView.scan`).
    public var shareLogViewWithoutBlocking: ShareLogView { shareLogView(mayBlock: false) }

    private func shareLogView(mayBlock: Bool) -> ShareLogView {
        // One allowance per view (an acquire, over all its partitions' scans).
        let allowance = mayBlock ? nil : LoopDecodeAllowance()
        var view = ShareLogView(
            topicId: { [self] name in isInternalTopic(name) ? nil : try? topicId(of: name) },
            bounds: { [self] topic, partition in isInternalTopic(topic) ? nil : try? offsets(topic: topic, partition: partition) })
        view.syncsEveryAppend = { [self] topic in syncsEveryAppend(topic) }
        view.topicBounds = { [self] name in
            guard !isInternalTopic(name), let topic = try? topicState(name) else { return nil }
            return (
                topic.id,
                { partition in
                    guard partition >= 0 && partition < topic.slots.count, case .online(let state) = topic.slots[partition] else { return nil }
                    return (state.log.logStartOffset, state.log.visibleEndOffset)
                },
                { partition in partition >= 0 && partition < topic.slots.count ? topic.slots[partition].state?.log : nil }
            )
        }
        view.topicsGeneration = { [self] in registry.withLock { $0.generation } }
        if mayBlock {
            view.offsetAtTime = { [self] topic, partition, timestamp in Self.offsetAtTime(partitionState: try? partitionState(topic, partition), timestamp) }
        }
        view.scan = { [self] topic, partition, offset, count throws(TidemarkError) in
            do {
                return try recordMetadata(topic: topic, partition: partition, from: offset, count: count, mayBlock: mayBlock, allowance: allowance)
            } catch {
                // Unreadable for now (no descriptor, the log start moved meanwhile): declined, as
                // a read that would block is, so the window keeps waiting for its keys and delays
                // (an empty answer marked it read: its delayed jobs went out at once, its per-key
                // order was lost) and the next acquire reads again. Damage or an I/O error does
                // not go away by retrying: the acquire answers it for the partition.
                if Broker.isTransient(error) { return nil }
                throw (error as? TidemarkError) ?? TidemarkError(.storage, "share scan of \(topic)-\(partition) at \(offset): \(error)")
            }
        }
        return view
    }

    /// A read failure that a later attempt may not meet: no descriptor or memory now, or the
    /// log start moved between looking and reading.
    static func isTransient(_ error: any Error) -> Bool {
        guard let storage = (error as? StorageError) ?? (error as? TidemarkError)?.storage else {
            return (error as? TidemarkError)?.code == .offsetOutOfRange
        }
        switch storage.code {
        case .wouldBlock, .offsetOutOfRange: return true
        default: return [.tooManyOpenFiles, .tooManyOpenFilesInSystem, .noMemory, .resourceTemporarilyUnavailable].contains(storage.errno)
        }
    }

    /// Acquires with `shareLogView` on the blocking executor: for an event loop whose
    /// `shareLogViewWithoutBlocking` acquire declined a read that needed the disk. What the
    /// scans will read (a segment to open, bytes to bring into the page cache, up to 1 MiB
    /// per partition) is read first, outside the share coordinator's lock, so the acquire that
    /// holds it seldom waits for the disk (and the event loops waiting for that lock with it).
    ///
    /// So are the starts of partitions a `by_duration` group has no state in yet (a time
    /// lookup each): the acquire takes them from what was found, and declines the others.
    public func acquireShares(group: String, member: String, partitions: [TopicPartition], maxRecords: Int) async
        -> [ShareAcquisition]
    {
        let base = shareLogView
        let starts = shares.scanStarts(group: group, partitions: partitions)
        let byTime = shares.startsByTimeNeeded(group: group, partitions: partitions)
        return (try? await executor.run { [self, shares] in
            for (tp, offset) in starts {
                guard let state = try? partitionState(tp.topic, tp.partition),
                    let slice = (try? readLocked(state, offset: offset, maxBytes: 1 << 20, mayBlock: true, keepBytes: false))??.slice
                else { continue }
                try? slice.warm()
            }
            var view = base
            if let (cutoffMs, needed) = byTime {
                var found: [TopicPartition: Int64] = [:]
                for tp in needed {
                    found[tp] = Self.offsetAtTime(partitionState: try? partitionState(tp.topic, tp.partition), cutoffMs)
                }
                view.offsetAtTime = { [found] topic, partition, _ in found[TopicPartition(topic, partition)] }
            }
            return shares.acquire(group: group, member: member, partitions: partitions, maxRecords: maxRecords, view: view)
        }) ?? []
    }

    /// The first offset whose record timestamp is at or after `timestamp` (ms since the
    /// epoch), the log's end when none is; nil when the log cannot be read for it now (no
    /// descriptor, memory: the start is left for a later attempt; taken at the end, the older
    /// records would be skipped for good). A lookup that cannot succeed (damage, an I/O error)
    /// gives the log's start: the window's first read meets the damage and answers it (declined
    /// at every poll, the partition never started and said nothing).
    static func offsetAtTime(partitionState state: PartitionState?, _ timestamp: Int64) -> Int64? {
        guard let state else { return nil }
        do {
            return try state.log.offset(forTimestamp: timestamp)?.offset ?? state.log.logEndOffset
        } catch {
            return isTransient(error) ? nil : state.log.logStartOffset
        }
    }

    /// The header that delays a record for share groups: ms since the epoch, UTF-8 decimal.
    public static let deliverAtHeader = "tidemark.deliver.at"

    /// A record's `tidemark.deliver.at` (the last such header) as written: ms since the epoch,
    /// nil when it has none or it is not a decimal number.
    static func deliverAt(of record: ConsumerRecord) -> Int64? {
        guard let raw = record.headers.last(where: { $0.key == deliverAtHeader })?.value else { return nil }
        return parseDeliverAt(raw)
    }

    /// The header's value read as `deliverAt` reads it: a decimal `Int64` (an optional sign,
    /// digits), blanks and line ends around it not part of it ("…\n" is a delay too). Every
    /// share scan reads it per delayed record: ASCII is read byte by byte here (Foundation's
    /// trimming cost ~1 us a record, most of a scan of delayed jobs); any other byte goes the
    /// slow way, for Unicode's blanks.
    static func parseDeliverAt(_ raw: [UInt8]) -> Int64? {
        guard raw.allSatisfy({ $0 < 0x80 }) else {
            return Int64(String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        // ASCII's blanks and line ends: tab, line feed, vertical tab, form feed, return, space.
        func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }
        var first = raw.startIndex
        var end = raw.endIndex
        while first < end, isBlank(raw[first]) { first += 1 }
        while end > first, isBlank(raw[end - 1]) { end -= 1 }
        var negative = false
        if first < end, raw[first] == UInt8(ascii: "-") || raw[first] == UInt8(ascii: "+") {
            negative = raw[first] == UInt8(ascii: "-")
            first += 1
        }
        guard first < end else { return nil }
        // Accumulated negatively, so that Int64.min reads as Int64(_:) reads it.
        var value: Int64 = 0
        for byte in raw[first..<end] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (next, overflowB) = times.subtractingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflowA, !overflowB else { return nil }
            value = next
        }
        if negative { return value }
        return value == .min ? nil : -value
    }

    /// Keys (hashed) and delays of up to `count` records from `offset`, in offset order; a
    /// synchronous read. With `mayBlock` a closed segment is opened and cold bytes are read
    /// on this thread; without, nil when any of that would be needed (nothing is returned
    /// then, not a part: a window annotated in part would lose keys and delays). Fewer than
    /// `count` before the log's end: the log could not be read past them (damage); the scan
    /// that starts there throws.
    func recordMetadata(
        topic: String, partition: Int, from offset: Int64, count: Int, mayBlock: Bool, allowance: LoopDecodeAllowance? = nil
    ) throws -> [SharePartition.RecordMeta]? {
        let state = try partitionState(topic, partition)
        var out: [SharePartition.RecordMeta] = []
        var next = offset
        var chunk = 64 << 10
        // Without `mayBlock` (an event loop), compressed batches are decoded up to the produce
        // path's allowance, for the whole acquire, and gzip or zstd never (a few KB of them can
        // make 64 MiB): past it the scan declines, and the acquire goes on off the loop.
        let allowance = mayBlock ? nil : allowance ?? LoopDecodeAllowance()
        // tidemark.deliver.at is a wall-clock time; the coordinator waits on the timer clock.
        let (wallNow, timerNow) = (options.clock(), options.timers())
        // Damage met after some records ends the scan with them: they go out first, and the
        // scan that starts at the damage fails (the window stops before it). Any other error
        // fails the scan whole (a transient one declines it: nothing is cut for it).
        while out.count < count {
            let bytes: [UInt8]
            do {
                guard let result = try readLocked(state, offset: next, maxBytes: chunk, mayBlock: mayBlock) else { return nil }
                guard let found = result.slice else { break }
                guard let read = try mayBlock ? found.readBytes() : found.readBytesIfCached() else { return nil }
                bytes = read
                if let allowance, !allowance.take(Self.compressedBytes(bytes[...])) { return nil }
            } catch where !out.isEmpty && (error as? TidemarkError)?.code == .corruptMessage {
                break  // damage: a short answer (the restore path cuts its window there)
            }
            let before = out.count
            let (records, damage) = recordsBeforeDamage(in: bytes, topic: topic, partition: partition, from: next, limit: count - out.count)
            if let damage, records.isEmpty {
                // A stored batch whose header reads but whose records do not decode (damaged on
                // disk after its CRC was checked on append): its keys and delays cannot be known,
                // so it is never handed out, and never skipped over. It fails the scan that starts
                // at it, as a fetch of damage does (CORRUPT_MESSAGE), and is marked for repair.
                guard out.isEmpty else { break }
                throw reportDamage(topic: topic, partition: partition, at: next, damage.message)
            }
            for record in records {
                var deliverAt: Int64 = 0
                if let ms = Self.deliverAt(of: record) {
                    // As far ahead (or behind: a job already due counts its age from its time)
                    // on the timer clock as on the wall's; 0 for none, or before the timer clock's 0.
                    deliverAt = ms <= 0 ? 0 : ms <= wallNow ? max(0, timerNow.saturatingAdd(-(wallNow - ms))) : timerNow.saturatingAdd(ms - wallNow)
                }
                out.append(.init(offset: record.offset, keyHash: record.key.map(Self.fnv1a), deliverAtMs: deliverAt))
                next = record.offset + 1
            }
            if out.count == before || damage != nil { break }
            chunk = min(chunk * 4, 4 << 20)
        }
        return out
    }

    static func fnv1a(_ bytes: [UInt8]) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in bytes {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        return hash
    }

    /// The bytes of the share-state log (`__share_group_state`, not a topic here): its disk use.
    public var shareStateLogBytes: Int64 { shares.store.partition.log.sizeInBytes }

    /// Whether a share group holds this id against a classic or consumer group's request
    /// (JoinGroup, ConsumerGroupHeartbeat, OffsetCommit): one with membership state, or with
    /// share state where no classic or consumer group has the id. (Share state made before
    /// group ids were kept apart may sit beside a classic group's offsets: that group goes on.)
    public func shareGroupHolds(_ groupId: String) -> Bool {
        let (membership, known) = shares.ownership(groupId)
        if membership { return true }
        return known && groups.use(of: groupId) == .free
    }

    /// ShareGroupHeartbeat over this broker's topics. A group id that a classic or consumer
    /// group has, empty or not, is refused (GROUP_ID_NOT_FOUND), as Kafka does: a share group
    /// took the id of an empty group that still had committed offsets, and that group's
    /// consumers were then refused as members of a share group, their offsets kept.
    public func shareGroupHeartbeat(_ request: ShareHeartbeat) -> ConsumerHeartbeatResult {
        if let type = groups.groupType(request.groupId), groups.hasMembers(request.groupId) {
            return .failure(
                .groupIdNotFound, "group \(request.groupId) is a \(type.rawValue.lowercased()) group with members, not a share group",
                memberId: request.memberId)
        }
        if !shares.isShareGroup(request.groupId) {
            switch groups.use(of: request.groupId) {
            case .free: break
            case .taken(let type):
                return .failure(
                    .groupIdNotFound,
                    "group \(request.groupId) is a \(type.rawValue.lowercased()) group, not a share group (delete it to use its id for a share group)",
                    memberId: request.memberId)
            case .busy:
                return .failure(.groupBusy, "the group coordinator is busy: try again", memberId: request.memberId)
            }
        }
        return shares.heartbeat(
            request,
            catalog: TopicCatalog(
                partitionCount: { [self] name in isInternalTopic(name) ? nil : try? partitionCount(of: name) },
                topicNames: { [self] in listTopics() }))
    }
}

extension Broker {
    /// Waits, as one of `group`'s share polls (an append wakes as many of the group's waiting
    /// polls as it appended records: `ShareWake`), until one of the marked partitions grows
    /// past its mark, `deadline` comes or the task is cancelled; returns the mark of the
    /// partition whose wake ended it (an append, records offered there, a close), and the
    /// poll passes that wake on when it leaves records there (`passShareWake`). With no
    /// partitions, it waits out the time.
    func waitForShareAppends(group: String, _ marks: [ShareWaitMark], until deadline: ContinuousClock.Instant) async -> ShareWaitMark? {
        if marks.isEmpty {
            try? await Task.sleep(until: deadline)
            return nil
        }
        return await FirstAppend.wait(marks.map { ($0.state, $0.end) }, until: deadline, timers: timers, group: group).map { marks[$0] }
    }

    /// Waits until one of `partitions` grows past its end as of now, or `timeoutMs` pass, or
    /// the task is cancelled (a share poll's long poll): one wait over all of them
    /// (`FirstAppend`). Partitions that no longer exist are left out; with none left, it
    /// waits out the time.
    public func waitForAppends(_ partitions: [TopicPartition], timeoutMs: Int64) async {
        guard timeoutMs > 0, !isClosed else { return }
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        let watched = partitionStates(partitions).compactMap { $0.map { (state: $0, beyond: $0.log.visibleEndOffset) } }
        if watched.isEmpty {
            try? await Task.sleep(until: deadline)
            return
        }
        await FirstAppend.wait(watched, until: deadline, timers: timers)
    }
}

/// The compressed bytes one request may decode on an event loop: `Broker.maxCompressedBytesNow`
/// in all, as the produce path allows (gzip and zstd count past it whatever their size: see
/// `Broker.compressedBytes`). Per request, not per partition: a share fetch over many
/// partitions decoded 64 KiB of each on its loop. Taken from one thread at a time (its
/// loop); atomic so the views that hold it stay Sendable.
public final class LoopDecodeAllowance: Sendable {
    private let used = Atomic<Int>(0)

    public init() {}

    /// Takes `bytes` if they fit in what is left; false, taking nothing, otherwise.
    public func take(_ bytes: Int) -> Bool {
        guard bytes > 0 else { return true }
        let now = used.load(ordering: .relaxed)
        guard now + bytes <= Broker.maxCompressedBytesNow else { return false }
        used.store(now + bytes, ordering: .relaxed)
        return true
    }
}

/// A partition's end when a share worker looked at it, before its acquire: what its wait
/// afterwards watches past (`Broker.waitForShareAppends`).
struct ShareWaitMark: Sendable {
    let topicPartition: TopicPartition
    let state: PartitionState
    let end: Int64
}

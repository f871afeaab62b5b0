/// Finding offsets by time (Kafka's ListOffsets by timestamp and MAX_TIMESTAMP): the time
/// indexes, then the batches' headers, then the records of the one batch that holds it.
extension PartitionLog {
    /// The first offset at or after the log start whose record timestamp is >= `timestamp`,
    /// with that timestamp, or nil when every such record is older (Kafka's ListOffsets by
    /// time). Records below the log start (deleted by DeleteRecords, still in their segment)
    /// are never answered: a consumer seeking there would be out of range.
    public func offset(forTimestamp timestamp: Int64) throws(StorageError) -> (offset: Int64, timestamp: Int64)? {
        var fromBase = Int64.min
        while true {
            // The first segment based at `fromBase` or later whose largest timestamp reaches
            // the target, and a start position from its time index. (By base offset, not by
            // position in the list: retention may drop segments between two passes.)
            let start: (ReadStart, Int64?)? = try state.withLock { s -> Result<(ReadStart, Int64?)?, StorageError> in
                do throws(StorageError) {
                    guard !s.isClosed else { throw StorageError(.closed, "log is closed", path: directory) }
                    for (index, segment) in s.segments.enumerated() where segment.baseOffset >= fromBase {
                        let nextBase = index + 1 < s.segments.count ? s.segments[index + 1].baseOffset : nil
                        if let nextBase, nextBase <= s.logStartOffset { continue }
                        if index != s.segments.count - 1 {
                            // A segment known to end before the target is not reopened (a lookup
                            // of a recent time reopened every older segment, under this lock).
                            if segment.maxTimestampKnown && segment.maxTimestamp < timestamp { continue }
                            try segment.openForRead(offsetLimit: nextBase)
                        }
                        guard segment.maxTimestamp >= timestamp else { continue }
                        let fromOffset = max(segment.timeIndexLookup(timestamp: timestamp), s.logStartOffset)
                        let position = segment.indexLookup(offset: fromOffset).position
                        let found = ReadStart(
                            file: try segment.file(), position: position, end: segment.size, nextSegmentBase: nextBase,
                            logStartOffset: s.logStartOffset, logEndOffset: s.logEndOffset, segmentBase: segment.baseOffset,
                            checked: nil)  // the batches it reads are decoded, which checks them
                        enforceOpenSegmentLimit(&s)
                        return .success((found, nextBase))
                    }
                    enforceOpenSegmentLimit(&s)
                    return .success(nil)
                } catch {
                    return .failure(error)
                }
            }.get()
            guard let (start, nextBase) = start else { return nil }
            var walker = HeaderWalker(file: start.file, end: start.end)
            var position = start.position
            while let header = try walker.header(at: position) {
                if header.maxTimestamp >= timestamp, header.lastOffset >= start.logStartOffset {
                    let bytes = try start.file.read(count: header.totalSize, at: Int64(position))
                    for batch in try Self.decodeBatches(bytes, path: start.file.path) {
                        for record in batch.records where batch.timestamp(of: record) >= timestamp && batch.offset(of: record) >= start.logStartOffset {
                            return (batch.offset(of: record), batch.timestamp(of: record))
                        }
                    }
                }
                position += header.totalSize
            }
            // Only records below the log start reached the target here: the next segments.
            guard let nextBase else { return nil }
            fromBase = nextBase
        }
    }

    /// The record with the largest timestamp at or after the log start, the first of them on
    /// a tie, with that timestamp (Kafka's ListOffsets MAX_TIMESTAMP, -3); nil for an empty
    /// log. The segment holding the log start is read from there (its largest timestamp may
    /// belong to records below it); of the later ones, only the first holding the largest
    /// timestamp is read, and only when it beats the first segment's.
    public func offsetOfMaxTimestamp() throws(StorageError) -> (offset: Int64, timestamp: Int64)? {
        struct Candidate: Sendable {
            var file: SharedFile
            var position: Int
            var end: Int
        }
        let found: (first: Candidate?, later: Candidate?, laterMax: Int64, logStart: Int64) = try state.withLock { s in
            Result { () throws(StorageError) -> (Candidate?, Candidate?, Int64, Int64) in
                guard !s.isClosed else { throw StorageError(.closed, "log is closed", path: directory) }
                var first: Candidate?
                var later: (index: Int, timestamp: Int64)?
                for (index, segment) in s.segments.enumerated() {
                    let nextBase = index + 1 < s.segments.count ? s.segments[index + 1].baseOffset : nil
                    if let nextBase, nextBase <= s.logStartOffset { continue }
                    if first == nil {
                        if segment.size == 0 { continue }
                        if index != s.segments.count - 1 { try segment.openForRead(offsetLimit: nextBase) }
                        let position = segment.baseOffset < s.logStartOffset ? segment.indexLookup(offset: s.logStartOffset).position : 0
                        first = Candidate(file: try segment.file(), position: position, end: segment.size)
                        continue
                    }
                    if index != s.segments.count - 1 && !segment.maxTimestampKnown {
                        try segment.openForRead(offsetLimit: nextBase)
                        enforceOpenSegmentLimit(&s)  // one at a time: thousands of segments stay within budget
                    }
                    if segment.size > 0 && segment.maxTimestamp > (later?.timestamp ?? .min) { later = (index, segment.maxTimestamp) }
                }
                let laterCandidate = try later.map { later throws(StorageError) in
                    Candidate(file: try s.segments[later.index].file(), position: 0, end: s.segments[later.index].size)
                }
                enforceOpenSegmentLimit(&s)
                return (first, laterCandidate, later?.timestamp ?? .min, s.logStartOffset)
            }
        }.get()
        var best = try found.first.flatMap { first throws(StorageError) in
            try Self.largestTimestamp(in: first.file, from: first.position, end: first.end, logStart: found.logStart)
        }
        if let later = found.later, found.laterMax > (best?.timestamp ?? .min),
            let inLater = try Self.largestTimestamp(in: later.file, from: later.position, end: later.end, logStart: found.logStart),
            inLater.timestamp > (best?.timestamp ?? .min)
        {
            best = inLater
        }
        return best
    }

    /// The first record at or after `logStart` with the largest timestamp among the batches of
    /// `file` from `position` to `end`: batch headers first, then the one batch that holds it
    /// (a batch straddling the log start is decoded to leave out the records below it).
    private static func largestTimestamp(in file: SharedFile, from position: Int, end: Int, logStart: Int64) throws(StorageError)
        -> (offset: Int64, timestamp: Int64)?
    {
        var walker = HeaderWalker(file: file, end: end)
        var at = position
        var best: (offset: Int64, timestamp: Int64)?
        var bestBatch: (position: Int, size: Int)?
        while let header = try walker.header(at: at) {
            defer { at += header.totalSize }
            guard header.lastOffset >= logStart else { continue }
            if header.baseOffset < logStart {
                // Straddling the log start: only its records from there count.
                let bytes = try file.read(count: header.totalSize, at: Int64(at))
                for batch in try decodeBatches(bytes, path: file.path) {
                    for record in batch.records where batch.offset(of: record) >= logStart {
                        if batch.timestamp(of: record) > (best?.timestamp ?? .min) {
                            best = (batch.offset(of: record), batch.timestamp(of: record))
                            bestBatch = nil
                        }
                    }
                }
            } else if header.maxTimestamp > (best?.timestamp ?? .min) {
                best = (-1, header.maxTimestamp)
                bestBatch = (at, header.totalSize)
            }
        }
        guard let found = best else { return nil }
        guard let batchAt = bestBatch else { return found }
        let bytes = try file.read(count: batchAt.size, at: Int64(batchAt.position))
        for batch in try decodeBatches(bytes, path: file.path) {
            for record in batch.records where batch.timestamp(of: record) == found.timestamp {
                return (batch.offset(of: record), found.timestamp)
            }
        }
        return nil
    }
}

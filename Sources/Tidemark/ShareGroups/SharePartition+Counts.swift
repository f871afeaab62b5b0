/// What a share partition's window holds, counted: for the in-flight cap, describes and metrics.
extension SharePartition {
    /// Records not finished that count toward the in-flight cap: held, or available now. With
    /// per-key ordering, a record behind an unfinished one of its key does not count: it
    /// cannot go out, and counting it let one busy (or delayed) key stop every other key.
    func inFlight(nowMs: Int64, keyOrdering: Bool = false) -> Int {
        guard keyOrdering else {
            return entries.reduce(0) { $0 + ($1.state == .acquired || ($1.state == .available && $1.availableAtMs <= nowMs) ? 1 : 0) }
        }
        var keys = Set<UInt32>()
        var count = 0
        for entry in entries where entry.state == .available || entry.state == .acquired {
            let first = entry.keyHash.map { keys.insert($0).inserted } ?? true
            if entry.state == .acquired || (first && entry.availableAtMs <= nowMs) { count += 1 }
        }
        return count
    }

    /// The keys of the window's unfinished records (per-key ordering: a later record of one of
    /// these keys waits).
    func unfinishedKeys() -> Set<UInt32> {
        var keys = Set<UInt32>()
        for entry in entries where entry.state == .available || entry.state == .acquired {
            if let key = entry.keyHash { keys.insert(key) }
        }
        return keys
    }

    /// Counts per state, for describing the partition.
    func counts(nowMs: Int64 = .min) -> (available: Int, acquired: Int, acknowledged: Int, archived: Int, delayed: Int) {
        var result = (available: 0, acquired: 0, acknowledged: 0, archived: 0, delayed: 0)
        for entry in entries {
            switch entry.state {
            case .available where entry.availableAtMs > nowMs: result.delayed += 1
            case .available: result.available += 1
            case .acquired: result.acquired += 1
            case .acknowledged: result.acknowledged += 1
            case .archived: result.archived += 1
            }
        }
        return result
    }

    /// The members holding records now, with how many and their earliest lock deadline.
    func holders() -> [String: (count: Int, earliestExpiryMs: Int64)] {
        var result: [String: (count: Int, earliestExpiryMs: Int64)] = [:]
        for entry in entries where entry.state == .acquired {
            guard entry.owner > 0 else { continue }
            let owner = owners[Int(entry.owner) - 1]
            let previous = result[owner] ?? (0, .max)
            result[owner] = (previous.count + 1, min(previous.earliestExpiryMs, entry.lockExpiryMs))
        }
        return result
    }
}

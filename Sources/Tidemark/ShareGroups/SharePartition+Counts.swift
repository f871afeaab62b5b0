/// What a share partition's window holds, counted: for the in-flight cap, describes and metrics.
extension SharePartition {
    /// Records not finished that count toward the in-flight cap: held, or available now. With
    /// per-key ordering, a record behind an unfinished one of its key does not count: it
    /// cannot go out, and counting it let one busy (or delayed) key stop every other key.
    func inFlight(nowMs: Int64, keyOrdering: Bool = false) -> Int {
        windowCounts(nowMs: nowMs, keyOrdering: keyOrdering).inFlight
    }

    /// One walk of the window: records in flight (as `inFlight`), records available now but
    /// behind an unfinished one of their key (`blocked`, per-key ordering only), and the keys
    /// of unfinished records (per-key ordering only).
    func windowCounts(nowMs: Int64, keyOrdering: Bool) -> (inFlight: Int, blocked: Int, keys: KeyHashSet) {
        var keys = KeyHashSet()
        var inFlight = 0
        var blocked = 0
        for entry in entries where entry.state == .available || entry.state == .acquired {
            let first = !keyOrdering || (entry.keyHash.map { keys.insert($0) } ?? true)
            if entry.state == .acquired {
                inFlight += 1
            } else if entry.availableAtMs <= nowMs {
                if first { inFlight += 1 } else { blocked += 1 }
            }
        }
        return (inFlight, blocked, keys)
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

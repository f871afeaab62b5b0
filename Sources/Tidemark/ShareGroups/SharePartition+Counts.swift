/// What a share partition's window holds, counted: for the in-flight cap, fair shares, describes
/// and metrics.
extension SharePartition {
    /// Records not finished: from the start offset to the log end, less those finished
    /// inside the window.
    func backlog(logEnd: Int64) -> Int64 {
        max(0, max(logEnd, endOffset) - startOffset - Int64(finishedCount))
    }

    /// Whether anyone holds a record here now (from the holders' counts, not a walk).
    var holdsAny: Bool { heldCounts.contains { $0 > 0 } }

    /// Records held now, by anyone (from the holders' counts, not a walk).
    var heldTotal: Int { heldCounts.reduce(0, +) }

    /// How many records `member` holds now.
    func held(by member: String) -> Int {
        guard let owner = ownerNumber(member) else { return 0 }
        return heldCounts[Int(owner) - 1]
    }

    /// How many more records `member` may take so that `members` workers share the backlog:
    /// its fair share (rounded up) less what it holds. One worker alone may take everything.
    func fairShare(for member: String, members: Int, logEnd: Int64) -> Int {
        guard members > 1 else { return Int.max }
        let share = (backlog(logEnd: logEnd) + Int64(members) - 1) / Int64(members)
        return max(0, Int(share) - held(by: member))
    }

    /// Counts per state, for describing the partition.
    func counts(nowMs: Int64 = .min) -> (available: Int, acquired: Int, acknowledged: Int, archived: Int, delayed: Int) {
        // Cut records are acknowledged.
        var result = (available: 0, acquired: 0, acknowledged: entries.cutCount, archived: 0, delayed: 0)
        for k in entries.kept {
            let entry = entries.entry(kept: k)
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

    /// The first record not finished that is not waiting for its delivery time, for the age of
    /// the oldest job not acknowledged: a job scheduled for tomorrow holds the start, and must
    /// not read as a job a day old (one waiting out a retry backoff counts: it is late).
    /// `dueMs`: when it came due if it is a delayed job never delivered (timer clock; its age
    /// counts from then), else nil. Past the records the window keeps: its end, when the log
    /// goes on (records not read into it yet, whose delays are not known). A restored window
    /// knows no delays until its first fetch: its start is taken then. nil: nothing due.
    /// `delivered`: it has gone out before; whether it was a delayed job the window no longer
    /// says (its deadline is its lock's, or its backoff's), so the reader of its age looks at
    /// the record (`Broker.queueReports`).
    func oldestDue(nowMs: Int64, logEnd: Int64) -> (offset: Int64, dueMs: Int64?, delivered: Bool)? {
        for k in entries.kept {
            let entry = entries.entry(kept: k)
            let delayed = entry.state == .available && entry.deliveryCount == 0 && entry.availableAtMs > 0
            guard !entry.isFinished, !delayed || entry.availableAtMs <= nowMs else { continue }
            return (startOffset + Int64(entries.position(kept: k)), delayed ? entry.availableAtMs : nil, entry.deliveryCount > 0)
        }
        return endOffset < logEnd ? (endOffset, nil, false) : nil
    }

    /// The members holding records now, with how many and their earliest lock deadline.
    func holders() -> [String: (count: Int, earliestExpiryMs: Int64)] {
        var result: [String: (count: Int, earliestExpiryMs: Int64)] = [:]
        for k in entries.kept {
            let entry = entries.entry(kept: k)
            guard entry.state == .acquired, entry.owner > 0 else { continue }
            let owner = owners[Int(entry.owner) - 1]
            let previous = result[owner] ?? (0, .max)
            result[owner] = (previous.count + 1, min(previous.earliestExpiryMs, entry.lockExpiryMs))
        }
        return result
    }
}

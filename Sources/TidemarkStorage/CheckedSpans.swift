/// The byte ranges of a segment file whose batches are known to check out (framing and
/// CRC): written by this process (every append is checked on the way in), or scanned by
/// recovery or an index rebuild, or checked by an earlier read.
///
/// A segment a clean stop left is not scanned when the log opens, so bytes damaged on disk
/// since (a bad block, a stray write) would otherwise go to consumers as they are: most
/// clients do not check CRCs (librdkafka's `check.crcs` is off by default) and either stall
/// in silence at a batch whose records do not parse or deliver altered values. A read checks
/// the part of its slice not covered here, once, and records it.
///
/// Sorted, disjoint, non-adjacent half-open ranges, at most `limit` of them: past that the
/// shortest but the last is forgotten (its bytes are checked again by the next read of them,
/// which costs time, never correctness). Value type; owned by its `LogSegment`, under the log's lock.
struct CheckedSpans: Sendable, Equatable {
    static let limit = 16

    private(set) var spans: [Range<Int>] = []

    /// Whether every byte of `range` is checked (an empty range is).
    func covers(_ range: Range<Int>) -> Bool {
        if range.isEmpty { return true }
        // The last span starting at or before the range's start is the only one that can hold it.
        var low = 0
        var high = spans.count
        while low < high {
            let middle = (low + high) / 2
            if spans[middle].lowerBound <= range.lowerBound { low = middle + 1 } else { high = middle }
        }
        return low > 0 && spans[low - 1].upperBound >= range.upperBound
    }

    /// Records `range` as checked, merging it with the spans it overlaps or touches.
    mutating func insert(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        // An append extends the last span in place (no new array on the produce path).
        if let last = spans.last, last.lowerBound <= range.lowerBound, range.lowerBound <= last.upperBound {
            spans[spans.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            return
        }
        if spans.last.map({ $0.upperBound < range.lowerBound }) ?? true, spans.count < Self.limit {
            spans.append(range)
            return
        }
        var merged = range
        var kept: [Range<Int>] = []
        kept.reserveCapacity(spans.count + 1)
        var placed = false
        for span in spans {
            if span.upperBound < merged.lowerBound {
                kept.append(span)
            } else if span.lowerBound > merged.upperBound {
                if !placed {
                    kept.append(merged)
                    placed = true
                }
                kept.append(span)
            } else {
                merged = min(span.lowerBound, merged.lowerBound)..<max(span.upperBound, merged.upperBound)
            }
        }
        if !placed { kept.append(merged) }
        // The last span is never the one forgotten: appends grow it, and a segment's tail is
        // what most reads want (forgotten, every append would take this path and every read of
        // the tail check it again).
        if kept.count > Self.limit, let shortest = kept.indices.dropLast().min(by: { kept[$0].count < kept[$1].count }) {
            kept.remove(at: shortest)
        }
        spans = kept
    }

    /// Forgets everything at or past `size` (the file was cut there).
    mutating func clip(to size: Int) {
        spans = spans.compactMap { span in
            let clipped = span.clamped(to: 0..<max(size, 0))
            return clipped.isEmpty ? nil : clipped
        }
    }
}

import Testing
@testable import TidemarkStorage

/// The byte ranges a segment knows to check out: merged as they touch, bounded in number,
/// cut with the file.
@Suite struct CheckedSpansTests {
    @Test func rangesMergeWhenTheyOverlapOrTouch() {
        var spans = CheckedSpans()
        #expect(spans.covers(0..<0))
        #expect(!spans.covers(0..<1))
        spans.insert(100..<200)
        spans.insert(300..<400)
        #expect(spans.spans == [100..<200, 300..<400])
        #expect(spans.covers(100..<200) && spans.covers(150..<160) && spans.covers(300..<400))
        #expect(!spans.covers(99..<150) && !spans.covers(150..<201) && !spans.covers(150..<350) && !spans.covers(0..<50))
        spans.insert(400..<450)  // an append at the end extends the last span
        #expect(spans.spans == [100..<200, 300..<450])
        spans.insert(0..<50)  // before everything
        #expect(spans.spans == [0..<50, 100..<200, 300..<450])
        spans.insert(200..<300)  // touches both neighbours
        #expect(spans.spans == [0..<50, 100..<450])
        spans.insert(40..<120)  // overlaps both
        #expect(spans.spans == [0..<450])
        #expect(spans.covers(0..<450) && !spans.covers(0..<451))
        spans.insert(10..<20)
        #expect(spans.spans == [0..<450])
    }

    @Test func atMostLimitSpansAreKeptTheShortestForgotten() {
        var spans = CheckedSpans()
        for k in 0..<CheckedSpans.limit { spans.insert((k * 100)..<(k * 100 + 10 + k)) }
        #expect(spans.spans.count == CheckedSpans.limit)
        spans.insert(5_000..<5_050)  // one more: the shortest (the first, 10 bytes) goes
        #expect(spans.spans.count == CheckedSpans.limit)
        #expect(!spans.covers(0..<10) && spans.covers(5_000..<5_050) && spans.covers(100..<111))
        spans.insert(2_000..<2_001)  // shorter than any: it is the one forgotten
        #expect(spans.spans.count == CheckedSpans.limit && !spans.covers(2_000..<2_001))
    }

    /// The last span, the one appends grow, is kept even when it is the shortest.
    @Test func theLastSpanIsNeverForgotten() {
        var spans = CheckedSpans()
        for k in 0..<(CheckedSpans.limit - 1) { spans.insert((k * 100)..<(k * 100 + 50)) }
        spans.insert(10_000..<10_001)
        spans.insert(5_000..<5_080)  // one too many: the shortest but the last (50 bytes) goes
        #expect(spans.spans.count == CheckedSpans.limit)
        #expect(spans.covers(10_000..<10_001) && spans.covers(5_000..<5_080) && !spans.covers(0..<50))
        spans.insert(10_001..<10_100)  // an append extends it
        #expect(spans.spans.last == 10_000..<10_100)
        spans.insert(9_990..<10_050)  // starts before it and overlaps
        #expect(spans.spans.last == 9_990..<10_100 && spans.spans.count == CheckedSpans.limit)
    }

    @Test func aCutForgetsWhatItRemoved() {
        var spans = CheckedSpans()
        spans.insert(0..<100)
        spans.insert(200..<300)
        spans.clip(to: 250)
        #expect(spans.spans == [0..<100, 200..<250])
        spans.clip(to: 150)
        #expect(spans.spans == [0..<100])
        spans.clip(to: 0)
        #expect(spans.spans.isEmpty)
    }
}

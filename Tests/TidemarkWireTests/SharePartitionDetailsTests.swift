import Testing
@testable import TidemarkWire

/// Tidemark's share-partition details (tag 10000 of DescribeShareGroupOffsets), byte by byte
/// as its doc comment lays them out, and read from an earlier version's shorter form.
@Suite struct SharePartitionDetailsTests {
    @Test func theLayoutIsTheDocumentedOne() throws {
        var details = SharePartitionDetails()
        details.endOffset = 10
        details.logEndOffset = 12
        details.available = 3
        details.acquired = 2
        details.acknowledged = 4
        details.archived = 1
        details.holders = [.init(memberId: "m", records: 2, earliestLockExpiryMs: 99)]
        details.deadLettered = 5
        details.deadLettersPending = 1
        details.delayed = 6
        details.startOffset = 7
        details.lag = 8
        let expected = Bytes().i64(10).i64(12).i32(3).i32(2).i32(4).i32(1).i32(1).str("m").i32(2).i64(99)
            .i64(5).i32(1).i32(6).i64(7).i64(8).b
        #expect(try details.encoded() == expected)
        #expect(try SharePartitionDetails.decode(expected) == details)
        // An earlier version's: without the dead letters, or without what follows them.
        let oldest = Array(expected.prefix(expected.count - 32))
        var read = try SharePartitionDetails.decode(oldest)
        #expect(read.deadLettered == 0 && read.delayed == 0 && read.startOffset == -1 && read.lag == -1 && read.holders.count == 1)
        read = try SharePartitionDetails.decode(Array(expected.prefix(expected.count - 20)))
        #expect(read.deadLettered == 5 && read.deadLettersPending == 1 && read.delayed == 0 && read.startOffset == -1)
    }
}

import Testing

@testable import Tidemark

/// The offsets map by group: its count and its groups follow sets and removals.
@Suite struct OffsetTableTests {
    @Test func countAndGroupsFollowTheEntries() {
        var table = OffsetTable()
        let a0 = OffsetStore.Key(group: "a", topicPartition: TopicPartition("t", 0))
        let a1 = OffsetStore.Key(group: "a", topicPartition: TopicPartition("t", 1))
        let b0 = OffsetStore.Key(group: "b", topicPartition: TopicPartition("u", 0))
        table[a0] = CommittedOffset(offset: 1)
        table[a1] = CommittedOffset(offset: 2)
        table[b0] = CommittedOffset(offset: 3)
        table[a0] = CommittedOffset(offset: 4)  // an overwrite is no new entry
        #expect(table.count == 3 && Set(table.groups.keys) == ["a", "b"])
        #expect(table[a0]?.offset == 4 && table.groups["a"]?.count == 2)
        #expect(Set(table.keys(ofGroups: ["a", "missing"])) == [a0, a1])
        #expect(table.keys { $0.topicPartition.topic == "u" } == [b0])
        table[b0] = nil
        table[b0] = nil  // removing what is gone changes nothing
        #expect(table.count == 2 && table.groups["b"] == nil)
        table[a0] = nil
        table[a1] = nil
        #expect(table.count == 0 && table.groups.isEmpty)
    }
}

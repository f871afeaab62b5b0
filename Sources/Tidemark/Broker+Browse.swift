/// Reading records for tools and the console: a page of one partition from an offset, and
/// what a dead letter's original was.
extension Broker {
    /// Up to `limit` records of `topic`-`partition` at or after `offset` (clamped into the
    /// log), reading at most `maxBytes` of batches, and keeping at most `maxRecordBytes` of
    /// keys, values and headers (at least one record): a page of compressed batches
    /// decompressed to a gigabyte (15 batches of 60 MiB of zeros, 260 KB each on disk) per
    /// request, and the console asks for pages by itself. A batch decompressing past
    /// `maxRecordBytes` is refused. Records count what they hold decoded (`DecodeBudget`). The
    /// decoding runs on the `browser` executor, one page at a time. Does not wait for new records.
    public func readRecords(
        topic: String, partition: Int, from offset: Int64, limit: Int, maxBytes: Int = 1 << 20, maxRecordBytes: Int = 8 << 20
    ) async throws -> [ConsumerRecord] {
        let (start, end) = try offsets(topic: topic, partition: partition)
        let from = min(max(offset, start), end)
        guard from < end, limit > 0 else { return [] }
        let fetched = try await fetch(topic: topic, partition: partition, offset: from, maxBytes: maxBytes)
        guard let slice = fetched.slice else { return [] }
        let budget = DecodeBudget(maxBatchBytes: maxRecordBytes, maxBytes: maxRecordBytes)
        return try await browser.run { [self] in
            try records(in: slice, topic: topic, partition: partition, from: from, limit: limit, budget: budget)
        }
    }

    /// The dead-letter topic a share group writes to (`errors.deadletterqueue.topic.name`).
    public func deadLetterTopic(of group: String) -> String? {
        guard let topic = groupConfigs.explicit(group)["errors.deadletterqueue.topic.name"], !topic.isEmpty else { return nil }
        return topic
    }

    /// The record to produce again for a dead letter: its original key, value, timestamp and
    /// headers (the `_dlq.errors.*` ones dropped), to its original topic. nil when the letter
    /// names no original topic or its original was already gone when it was written.
    public func requeueRecord(for letter: ConsumerRecord) -> Producer.OutgoingRecord? {
        func header(_ key: String) -> String? {
            letter.headers.last { $0.key == key }?.value.map { String(decoding: $0, as: UTF8.self) }
        }
        guard let topic = header("_dlq.errors.original.topic"), header("_dlq.errors.original.missing") != "true" else {
            return nil
        }
        return Producer.OutgoingRecord(
            topic: topic, key: letter.key, value: letter.value,
            headers: letter.headers.filter { !$0.key.hasPrefix("_dlq.errors.") })
    }
}

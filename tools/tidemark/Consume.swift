import ArgumentParser
import Foundation
import Tidemark
import TidemarkClient
import TidemarkStorage

/// `tidemark consume TOPIC`: prints records as text or JSON lines.
struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a topic's records as text or JSON lines.",
        discussion: "Without --follow, stops at the end of every partition (as it was at the start).")

    @OptionGroup var data: DataOptions
    @Argument(help: "Topic name.") var topic: String
    @Option(help: "Where to start: an offset, earliest or latest.") var offset = "earliest"
    @Option(help: "Start at the first record at or after this time (ISO 8601; without a zone, local time; or @ms).") var fromTime: String?
    @Option(help: "Read as this consumer group (committed offsets; commits what it prints).") var group: String?
    @Option(parsing: .unconditional, help: "Only this partition.") var partition: Int?
    @Option(parsing: .unconditional, help: "Stop after this many records.") var maxMessages: Int?
    @Flag(help: "JSON lines: topic, partition, offset, timestamp, key, value, headers.") var json = false
    @Flag(help: "Keep waiting for new records.") var follow = false

    func validate() throws {
        if let fromTime, parseTime(fromTime) == nil { throw ValidationError("--from-time: '\(fromTime)' is not a time") }
        if fromTime != nil && offset != "earliest" { throw ValidationError("--offset and --from-time cannot be given together") }
        // As Kafka's console consumer: a group reads from its committed offsets (earliest or
        // latest say where it starts in partitions it has not committed).
        if group != nil {
            if partition != nil { throw ValidationError("--group and --partition cannot be given together: a group reads every partition") }
            if fromTime != nil || !["earliest", "beginning", "latest", "end"].contains(offset) {
                throw ValidationError(
                    "--group reads from the group's committed offsets: move them with `tidemark groups reset-offsets` (--offset earliest or latest only says where to start in partitions it has not committed)")
            }
        }
        if let maxMessages, maxMessages < 1 { throw ValidationError("--max-messages must be at least 1, got \(maxMessages)") }
        if let partition, partition < 0 { throw ValidationError("--partition must be 0 or more, got \(partition)") }
        _ = try parseStart(offset)
    }

    func run() async throws {
        if let client = try data.client() {
            try await consume(with: client)
            return
        }
        // Following a data directory ends on Ctrl-C (or SIGTERM, SIGHUP) with the directory
        // closed cleanly, the group's member left and what it printed committed: at the next
        // poll's end, within a second. A second Ctrl-C exits at once.
        if follow { _ = try StopSignals.install() }
        try await data.withBroker { broker in
            let count = try broker.partitionCount(of: topic)
            try Self.check(partition, of: topic, count: count)
            let partitions = partition.map { [$0] } ?? Array(0..<count)
            var ends: [Int: Int64] = [:]
            for p in partitions { ends[p] = try broker.offsets(topic: topic, partition: p).end }
            var printed = 0
            let limit = maxMessages ?? Int.max
            if let group {
                let member = GroupConsumer(broker: broker, groupId: group, topics: [topic])
                var committed: [TopicPartition: Int64] = [:]
                while printed < limit && StopSignals.first == nil && !Output.readerGone {
                    let records = try await member.poll(maxRecords: min(500, limit - printed), maxWaitMs: 500)
                    records.forEach(print)
                    printed += records.count
                    // Nobody read them (stdout's reader went away, or a write failed): not
                    // committed; the group reads them again next time.
                    if Output.readerGone { break }
                    // Committed whenever the positions moved, also past records no longer
                    // there (a commit below the log start moves to it with nothing printed).
                    let positions = member.positions
                    if positions != committed {
                        try await member.commit()
                        committed = positions
                    }
                    if !follow && records.isEmpty && member.assignment.allSatisfy({ (positions[$0] ?? 0) >= (ends[$0.partition] ?? 0) }) {
                        break
                    }
                }
                await member.close()
                return
            }
            let consumer = Consumer(broker: broker)
            let start = try fromTime.map { StartPosition.timestamp(parseTime($0)!) } ?? parseStart(offset)
            for p in partitions { try await consumer.assign(topic: topic, partition: p, from: start) }
            while printed < limit && StopSignals.first == nil && !Output.readerGone {
                let records = try await consumer.poll(maxRecords: min(500, limit - printed), maxWaitMs: follow ? 1000 : 0)
                records.forEach(print)
                printed += records.count
                if !follow && partitions.allSatisfy({ (consumer.position(topic: topic, partition: $0) ?? 0) >= ends[$0]! }) { break }
            }
        }
    }

    /// `--partition` must name one of the topic's (a number past Int32 trapped on its way to
    /// the wire).
    static func check(_ partition: Int?, of topic: String, count: Int) throws {
        guard let partition, !(0..<count).contains(partition) else { return }
        throw CLIError("topic \(topic) has no partition \(partition) (it has \(count))")
    }

    /// Over the wire. With --group, a standalone member: starts at the group's committed
    /// offsets and commits what it printed (refused by the broker while the group has members).
    private func consume(with client: KafkaClient) async throws {
        let reader = ClientReader(client: client)
        let count = try client.partitionCount(topic)
        try Self.check(partition, of: topic, count: count)
        let partitions = partition.map { [$0] } ?? Array(0..<count)
        let committed = try group.map { try client.committedOffsets($0)[topic] ?? [:] } ?? [:]
        let start = try fromTime.map { StartPosition.timestamp(parseTime($0)!) } ?? parseStart(offset)
        var positions: [Int: Int64] = [:]
        var ends: [Int: Int64] = [:]
        for p in partitions {
            if let offset = committed[p] {
                // A committed offset the log no longer has (retention, DeleteRecords) is its
                // start, as the embedded path and Kafka's consumers (auto.offset.reset) take
                // it: it failed with OFFSET_OUT_OF_RANGE every time. Past the end, the end.
                let earliest = try await reader.resolve(topic, p, .earliest)
                positions[p] = offset < earliest ? earliest : min(offset, try await reader.endOffset(topic, p))
            } else {
                positions[p] = try await reader.resolve(topic, p, start)
            }
            ends[p] = try await reader.endOffset(topic, p)
        }
        var printed = 0
        let limit = maxMessages ?? Int.max
        var idlePasses = 0
        while printed < limit && !Output.readerGone {
            var progressed = false
            for p in partitions where printed < limit {
                let (bytes, highWatermark, aborted) = try client.fetch(topic, p, offset: positions[p]!, maxWaitMs: follow ? 200 : 0)
                if !follow { ends[p] = min(ends[p]!, highWatermark) }
                let chunk = try decodeRecords(bytes, topic: topic, partition: p, aborted: aborted)
                let fresh = chunk.records.filter { $0.offset >= positions[p]! }
                let records = fresh.prefix(limit - printed)
                var written = 0
                for record in records {
                    print(record)
                    if Output.readerGone { break }  // (not written: its reader went away, or a write failed)
                    written += 1
                }
                printed += written
                // Past the last record printed or, when all were, past the batches read, also
                // those with no record (transaction markers, batches compaction emptied); a
                // record not written stays ahead (a group commits only what was printed).
                let after =
                    written < records.count
                    ? records[records.startIndex + written].offset
                    : records.count < fresh.count ? records.last.map { $0.offset + 1 } : chunk.next
                guard let after, after > positions[p]! else { continue }
                positions[p] = after
                progressed = true
            }
            if let group, progressed {
                try client.commitOffsets(group, topic: topic, offsets: positions)
            }
            if !follow && partitions.allSatisfy({ positions[$0]! >= ends[$0]! }) { break }
            // Without --follow each fetch is answered at once: a broker that answers nothing
            // below the end it reported would make this loop spin. A second of that is an error.
            if !follow && !progressed {
                idlePasses += 1
                if idlePasses >= 10, let stuck = partitions.first(where: { positions[$0]! < ends[$0]! }) {
                    throw CLIError(
                        "\(topic)-\(stuck): the broker answered no records at offset \(positions[stuck]!), below its end \(ends[stuck]!)")
                }
                try await Task.sleep(for: .milliseconds(100))
            } else {
                idlePasses = 0
            }
        }
    }

    private func print(_ record: ConsumerRecord) {
        if json {
            var headers: [[String: Any]] = []
            for header in record.headers { headers.append(["key": header.key, "value": Output.json(header.value)]) }
            Output.line(
                Output.jsonLine([
                    "topic": record.topic, "partition": record.partition, "offset": record.offset,
                    "timestamp": record.timestamp, "key": Output.json(record.key), "value": Output.json(record.value),
                    "headers": headers,
                ]))
        } else {
            Output.line(record.key.map { Output.text($0) + "\t" + Output.text(record.value) } ?? Output.text(record.value))
        }
    }
}

import ArgumentParser
import Foundation
import Tidemark
import TidemarkClient
import TidemarkStorage
import TidemarkWire

/// `tidemark replay`: copies a range of a topic's records, keeping keys, values, headers and
/// timestamps, to stdout, a file, another topic, or another Kafka-compatible broker.
struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a topic's records (from an offset or a time) to stdout, a file, a topic or another broker.",
        discussion: """
            Records replayed into a topic carry two extra headers, \(ReplayHeader.name) = \
            "<source topic>/<partition>/<offset>" and \(ReplayHeader.clusterName) = the source's \
            cluster id. A rerun after an interruption reads them from the destination and resumes \
            after the last record already copied from that source, so nothing is duplicated; \
            within a run the producer is idempotent.
            """)

    @Argument(help: "TOPIC or TOPIC:PARTITION.") var source: String
    /// Where the records are read from: a data directory or a broker (one or the other).
    @OptionGroup var input: DataOptions
    @Option(help: "Start: an offset, earliest, or a time (ISO 8601, or @ms).") var from = "earliest"
    @Option(help: "Stop before this offset or time (default: the end when the replay starts).") var until: String?
    @Option(help: "Write JSON lines to this file instead of stdout.") var toFile: String?
    @Option(help: "Append the records to this topic.") var toTopic: String?
    @Option(help: "The broker of --to-topic (default: the source).") var toBootstrap: String?
    @Option(help: "The data directory of --to-topic (another directory than --data).") var toData: String?
    @Option(
        name: .customLong("strip-headers"),
        help: "Leave out headers with this name; a trailing * matches a prefix, e.g. '_dlq.errors.*' (repeatable).")
    var stripHeaders: [String] = []

    func validate() throws {
        if (toBootstrap != nil || toData != nil) && toTopic == nil { throw ValidationError("--to-bootstrap and --to-data need --to-topic") }
        if toBootstrap != nil && toData != nil { throw ValidationError("choose one of --to-bootstrap and --to-data") }
        if let toData, input.bootstrap == nil, toData == input.data { throw ValidationError("--to-data must differ from --data") }
        if toFile != nil && toTopic != nil { throw ValidationError("choose one of --to-file and --to-topic") }
        if !stripHeaders.isEmpty && toTopic == nil { throw ValidationError("--strip-headers applies to copies into a topic (--to-topic)") }
        _ = try parseStart(from)
        if let until { _ = try parseStart(until) }
        _ = try parsedSource()
    }

    func parsedSource() throws -> (topic: String, partition: Int?) {
        let parts = source.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return (source, nil) }
        guard let partition = Int(parts[1]), partition >= 0 else { throw ValidationError("'\(parts[1])' is not a partition") }
        return (parts[0], partition)
    }

    func run() async throws {
        let (topic, onlyPartition) = try parsedSource()
        if let bootstrap = input.bootstrap {
            let reader = ClientReader(client: try KafkaClient(bootstrap: bootstrap))
            try await replay(reader, topic: topic, onlyPartition: onlyPartition)
        } else {
            try await withDataDirectory(input.data) { broker in
                let reader = EmbeddedReader(broker: broker)
                try await replay(reader, topic: topic, onlyPartition: onlyPartition)
            }
        }
    }

    private func replay<R: BatchWriter>(_ reader: R, topic: String, onlyPartition: Int?) async throws {
        let count = try await reader.partitionCount(topic)
        let source = try await reader.clusterId()
        let partitions = try onlyPartition.map { p -> [Int] in
            guard p < count else { throw CLIError("topic '\(topic)' has no partition \(p)") }
            return [p]
        } ?? Array(0..<count)

        if let toData, let toTopic {
            // A second embedded broker over the destination directory.
            try await withDataDirectory(toData) { destination in
                let sink = try await TopicSink(EmbeddedReader(broker: destination), topic: toTopic, sourcePartitions: count, stripHeaders: stripHeaders, sourceCluster: source)
                try await copy(reader, topic: topic, partitions: partitions, into: sink)
            }
            return
        }
        let sink: RecordSink
        if let toTopic {
            if let toBootstrap {
                sink = try await TopicSink(ClientReader(client: KafkaClient(bootstrap: toBootstrap)), topic: toTopic, sourcePartitions: count, stripHeaders: stripHeaders, sourceCluster: source)
            } else {
                sink = try await TopicSink(reader, topic: toTopic, sourcePartitions: count, stripHeaders: stripHeaders, sourceCluster: source)  // the source's own broker
            }
        } else {
            sink = try JSONSink(path: toFile)
        }

        try await copy(reader, topic: topic, partitions: partitions, into: sink)
    }

    private func copy<R: RecordReader>(_ reader: R, topic: String, partitions: [Int], into sink: RecordSink) async throws {
        var total = 0
        for partition in partitions where !Output.readerGone {
            // An offset past a partition's end is its end, from either source (over the wire,
            // `--until 5000` on shorter partitions copied the first and then failed: no records
            // below its end).
            let partitionEnd = try await reader.endOffset(topic, partition)
            var start = min(try await reader.resolve(topic, partition, try parseStart(from)), partitionEnd)
            let end: Int64
            if let until {
                end = min(try await reader.resolve(topic, partition, try parseStart(until)), partitionEnd)
            } else {
                end = partitionEnd
            }
            // Copies of offsets past this range do not count: a range below an earlier run's
            // (a backfill) is copied. (Below `end`, so the resume point cannot overflow.)
            if let resumed = try await sink.lastReplayed(sourceTopic: topic, sourcePartition: partition, below: end),
                resumed + 1 > start
            {
                start = resumed + 1
                Output.error("\(topic)-\(partition): resuming after offset \(resumed), already replayed")
            }
            var next = start
            while next < end && !Output.readerGone {
                let chunk = try await reader.read(topic, partition, from: next)
                // Past the batches read, also those with no record to copy (transaction markers).
                // Nothing below the end the source gave is an error, not the end of the copy.
                guard let after = chunk.next, after > next else {
                    throw CLIError("\(topic)-\(partition): the source answered no records at offset \(next), below its end \(end)")
                }
                let records = chunk.records.filter { $0.offset >= next && $0.offset < end }
                if !records.isEmpty { try await sink.write(records) }
                total += records.count
                next = after
                Output.progress("\(topic)-\(partition)", Int(min(next, end) - start), Int(end - start))
            }
        }
        try await sink.finish()
        guard !Output.readerGone else { return }  // (stdout's reader went away: said nothing more)
        Output.error("replayed \(total) record\(total == 1 ? "" : "s")")
    }
}

enum ReplayHeader {
    static let name = "tidemark.replay.source"

    static func value(_ record: ConsumerRecord) -> [UInt8] { Array("\(record.topic)/\(record.partition)/\(record.offset)".utf8) }

    /// A second header, `tidemark.replay.source.cluster`: the source's cluster id, so that a
    /// run from another cluster with a topic of the same name is not taken for an earlier run
    /// of this one (it resumed after the other's offsets and skipped records). Copies made
    /// before it was written carry none, and count as copies from any source.
    static let clusterName = "tidemark.replay.source.cluster"

    /// Whether a copy's cluster header names `cluster` (nil: a source without one). Only a
    /// cluster header after the copy's last source header is its own (one before it came from
    /// an earlier hop of a chained replay); a copy without one counts for any source.
    static func fromCluster(_ headers: [RecordHeader], _ cluster: String?) -> Bool {
        guard let source = headers.lastIndex(where: { $0.key == name }),
            let own = headers.lastIndex(where: { $0.key == clusterName }), own > source,
            let raw = headers[own].value
        else { return true }
        return String(decoding: raw, as: UTF8.self) == (cluster ?? "")
    }

    /// Whether a record is a copy of a record of `topic` (any partition, any source cluster:
    /// the search for a source's last copy goes on past another cluster's copies).
    static func isCopy(_ headers: [RecordHeader], of topic: String) -> Bool {
        guard let raw = headers.last(where: { $0.key == name })?.value else { return false }
        return String(decoding: raw, as: UTF8.self).split(separator: "/").first.map(String.init) == topic
    }

    /// The source offset in a replayed record's header, if it came from `topic`/`partition`
    /// of `cluster`.
    static func sourceOffset(_ headers: [RecordHeader], topic: String, partition: Int, cluster: String?) -> Int64? {
        guard let raw = headers.last(where: { $0.key == name })?.value, fromCluster(headers, cluster) else { return nil }
        let parts = String(decoding: raw, as: UTF8.self).split(separator: "/")
        guard parts.count == 3, String(parts[0]) == topic, Int(parts[1]) == partition else { return nil }
        return Int64(parts[2])
    }
}

// MARK: Readers

protocol RecordReader {
    /// The source's cluster id (nil if it gives none).
    func clusterId() async throws -> String?
    func partitionCount(_ topic: String) async throws -> Int
    func resolve(_ topic: String, _ partition: Int, _ position: StartPosition) async throws -> Int64
    func endOffset(_ topic: String, _ partition: Int) async throws -> Int64
    /// Records from `offset` on (some), in offset order, and the offset after the batches they
    /// came in (nil when nothing was read: the end, for now).
    func read(_ topic: String, _ partition: Int, from offset: Int64) async throws -> (records: [ConsumerRecord], next: Int64?)
}

struct EmbeddedReader: RecordReader {
    let broker: Broker
    func clusterId() async throws -> String? { broker.clusterId }
    func partitionCount(_ topic: String) async throws -> Int { try broker.partitionCount(of: topic) }
    func resolve(_ topic: String, _ partition: Int, _ position: StartPosition) async throws -> Int64 {
        // An offset past a partition's end is its end, as a Kafka source's (`--until 4` on
        // partitions of 5 and 3 records copies 4 and 3); below its start is an error.
        if case .offset(let offset) = position, offset > (try broker.offsets(topic: topic, partition: partition).end) {
            return try broker.offsets(topic: topic, partition: partition).end
        }
        return try await broker.resolveOffset(topic: topic, partition: partition, position).offset
    }
    func endOffset(_ topic: String, _ partition: Int) async throws -> Int64 { try broker.offsets(topic: topic, partition: partition).end }
    func read(_ topic: String, _ partition: Int, from offset: Int64) async throws -> (records: [ConsumerRecord], next: Int64?) {
        let consumer = Consumer(broker: broker)
        try await consumer.assign(topic: topic, partition: partition, from: .offset(offset))
        let records = try await consumer.poll(maxRecords: 1000, maxWaitMs: 0)
        let position = records.last.map { $0.offset + 1 } ?? consumer.position(topic: topic, partition: partition)
        return (records, position.flatMap { $0 > offset ? $0 : nil })
    }
}

final class ClientReader: RecordReader {
    let client: KafkaClient
    init(client: KafkaClient) { self.client = client }
    func clusterId() async throws -> String? {
        try client.metadata(topics: [])
        return client.clusterId
    }
    func partitionCount(_ topic: String) async throws -> Int { try client.partitionCount(topic) }
    func resolve(_ topic: String, _ partition: Int, _ position: StartPosition) async throws -> Int64 {
        switch position {
        case .earliest: return try client.offset(topic, partition, at: -2) ?? 0
        case .latest: return try await endOffset(topic, partition)
        case .offset(let offset): return offset
        case .timestamp(let ms):
            if let found = try client.offset(topic, partition, at: ms) { return found }
            return try await endOffset(topic, partition)
        }
    }
    func endOffset(_ topic: String, _ partition: Int) async throws -> Int64 { try client.offset(topic, partition, at: -1) ?? 0 }
    func read(_ topic: String, _ partition: Int, from offset: Int64) async throws -> (records: [ConsumerRecord], next: Int64?) {
        let (bytes, _, aborted) = try client.fetch(topic, partition, offset: offset)
        return try decodeRecords(bytes, topic: topic, partition: partition, aborted: aborted)
    }
}

/// Records of the whole batches in fetched bytes (a partial batch at the end is dropped; control
/// batches hold none), and the offset after the last whole batch (nil when there was none).
/// Read committed, as Kafka's consumers read: the records of `aborted` transactions (a producer
/// and the first offset of its transaction, from the fetch answer) are left out, from that offset
/// to the producer's abort marker.
func decodeRecords(
    _ bytes: [UInt8], topic: String, partition: Int, aborted: [(producerId: Int64, firstOffset: Int64)] = []
) throws -> (records: [ConsumerRecord], next: Int64?) {
    var out: [ConsumerRecord] = []
    var next: Int64?
    var position = 0
    let pending = aborted.sorted { $0.firstOffset < $1.firstOffset }
    var nextAborted = 0
    var aborting = Set<Int64>()
    while position + RecordBatchHeader.logOverhead <= bytes.count {
        let length = bytes.withUnsafeBytes { Int(Int32(bigEndian: $0.loadUnaligned(fromByteOffset: position + 8, as: Int32.self))) }
        guard length >= Int(RecordBatchHeader.minimumBatchLength) else {
            throw CLIError("a batch of \(topic)-\(partition) in the fetched bytes has length \(length) (at byte \(position))")
        }
        guard position + RecordBatchHeader.logOverhead + length <= bytes.count else { break }
        let batch = try RecordBatch(decoding: Array(bytes[position..<(position + RecordBatchHeader.logOverhead + length)]))
        position += batch.header.totalSize
        next = batch.header.nextOffset
        while nextAborted < pending.count && pending[nextAborted].firstOffset <= batch.header.lastOffset {
            aborting.insert(pending[nextAborted].producerId)
            nextAborted += 1
        }
        if batch.header.isControl {
            // An abort marker (key: version, type 0) ends its producer's aborted transaction.
            if let key = batch.records.first?.key, key.count >= 4, key[2] == 0, key[3] == 0 {
                aborting.remove(batch.header.producerId)
            }
            continue
        }
        if batch.header.isTransactional && aborting.contains(batch.header.producerId) { continue }
        for record in batch.records {
            out.append(
                ConsumerRecord(
                    topic: topic, partition: partition, offset: batch.offset(of: record), timestamp: batch.timestamp(of: record),
                    timestampType: batch.header.timestampType, key: record.key, value: record.value, headers: record.headers))
        }
    }
    return (out, next)
}

// MARK: Sinks

protocol RecordSink {
    /// The highest source offset of `sourceTopic`/`sourcePartition` already in the destination.
    /// The highest source offset below `end` of `sourceTopic`/`sourcePartition` already in the
    /// destination.
    func lastReplayed(sourceTopic: String, sourcePartition: Int, below end: Int64) async throws -> Int64?
    func write(_ records: [ConsumerRecord]) async throws
    func finish() async throws
}

/// JSON lines to stdout or a file (the format of `consume --json`).
final class JSONSink: RecordSink {
    let handle: FileHandle
    let path: String?
    init(path: String?) throws {
        self.path = path
        if let path {
            // Opened in place, as the shell's `>` opens it: a file given a new inode (Foundation's
            // createFile writes a temporary file and renames it) replaced a symlink, a FIFO or a
            // device node by a regular file, and reset an existing file's owner and mode.
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
            guard fd >= 0 else { throw CLIError("cannot write \(path): \(String(cString: strerror(errno)))") }
            self.handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        } else {
            handle = FileHandle.standardOutput
        }
    }
    func lastReplayed(sourceTopic: String, sourcePartition: Int, below end: Int64) async throws -> Int64? { nil }
    func write(_ records: [ConsumerRecord]) async throws {
        var text = ""
        for record in records {
            let headers: [[String: Any]] = record.headers.map { ["key": $0.key, "value": Output.json($0.value)] }
            text += Output.jsonLine([
                "topic": record.topic, "partition": record.partition, "offset": record.offset, "timestamp": record.timestamp,
                "key": Output.json(record.key), "value": Output.json(record.value), "headers": headers,
            ]) + "\n"
        }
        if handle === FileHandle.standardOutput {
            // A reader that went away (`| head -1`) ends the replay quietly (`copy` stops at
            // `Output.readerGone`); another failure exits 1 (`Output.exitIfStdoutFailed`).
            Output.writeStdout(Array(text.utf8))
        } else {
            do { try handle.write(contentsOf: Data(text.utf8)) } catch { throw CLIError("writing \(path ?? "the file"): \(Self.reason(error))") }
        }
    }
    func finish() async throws {
        guard handle !== FileHandle.standardOutput else { return }
        do {
            try handle.synchronize()
            try handle.close()
        } catch {
            throw CLIError("writing \(path ?? "the file"): \(Self.reason(error))")
        }
    }
    static func reason(_ error: any Error) -> String {
        let code = (error as NSError).code
        return (error as NSError).domain == NSPOSIXErrorDomain ? String(cString: strerror(Int32(code))) : "\(error)"
    }
}

/// Builds idempotent batches for one destination, with the replay header added.
struct BatchMaker {
    let producerId: Int64
    let epoch: Int16
    var sequences: [Int: Int32] = [:]
    /// Header names left out (`--strip-headers`): exact, or a prefix when ending in `*`.
    var strip: [String] = []
    /// The source's cluster id, written in every copy (`ReplayHeader.clusterName`).
    var sourceCluster: String? = nil

    func kept(_ headers: [RecordHeader]) -> [RecordHeader] {
        guard !strip.isEmpty else { return headers }
        return headers.filter { header in
            !strip.contains { pattern in
                pattern.hasSuffix("*") ? header.key.hasPrefix(String(pattern.dropLast())) : header.key == pattern
            }
        }
    }

    /// An idempotent batch of `records` for destination partition `partition`, at the
    /// partition's next sequence; `sent` moves the sequence past it once it is stored.
    func batch(_ records: ArraySlice<ConsumerRecord>, partition: Int) throws -> [UInt8] {
        var builder = RecordBatchBuilder(
            producerId: producerId, producerEpoch: epoch, baseSequence: sequences[partition] ?? 0)
        for record in records {
            builder.append(
                timestamp: record.timestamp, key: record.key, value: record.value,
                headers: kept(record.headers) + [RecordHeader(key: ReplayHeader.name, value: ReplayHeader.value(record))]
                    + [RecordHeader(key: ReplayHeader.clusterName, value: Array((sourceCluster ?? "").utf8))])
        }
        return try builder.build()
    }

    mutating func sent(_ count: Int, partition: Int) {
        sequences[partition] = (sequences[partition] ?? 0) &+ Int32(count)
    }

    /// A record's bytes in a batch, roughly (framing and the replay header counted generously).
    static func estimatedSize(_ record: ConsumerRecord) -> Int {
        var size = 96 + (record.key?.count ?? 0) + (record.value?.count ?? 0)
        for header in record.headers { size += 8 + (header.rawKey?.count ?? header.key.utf8.count) + (header.value?.count ?? 0) }
        return size
    }
}

/// The highest source offset of `sourceTopic`/`sourcePartition` named by a replay header in a
/// destination partition: its newest 10,000 records first, then the 10,000 before them, and so
/// on until one holds a copy from that source partition (a run copies in order, so the newest
/// copy is the furthest). Copies of the topic's other partitions folded onto the same
/// destination partition may be in between: the search goes on while a window holds copies
/// of the topic, and stops at the first that holds none (a destination of another writer's
/// records is not read to its start; past 10,000 records of another writer since the last
/// copy, a rerun copies again what was copied before them). Only source offsets below `end`
/// count (the range being copied); copies of later ones are copies of the topic: a backfill
/// below an earlier run's range is copied, not skipped. (Disjoint earlier runs are not told
/// apart: after runs of 3..<5 and 0..<1, a run of 0..<5 resumes after 4.)
func lastReplayedOffset<R: RecordReader>(
    in reader: R, topic: String, partition: Int, sourceTopic: String, sourcePartition: Int, sourceCluster: String?, below end: Int64
) async throws -> Int64? {
    let start = try await reader.resolve(topic, partition, .earliest)
    var windowEnd = try await reader.endOffset(topic, partition)
    while windowEnd > start {
        let windowStart = max(start, windowEnd - 10_000)
        var offset = windowStart
        var found: Int64?
        var copiesOfTheTopic = false
        while offset < windowEnd {
            let chunk = try await reader.read(topic, partition, from: offset)
            guard let after = chunk.next, after > offset else { break }
            for record in chunk.records where record.offset >= offset && record.offset < windowEnd {
                if let source = ReplayHeader.sourceOffset(record.headers, topic: sourceTopic, partition: sourcePartition, cluster: sourceCluster),
                    source < end
                {
                    found = max(found ?? source, source)
                } else if ReplayHeader.isCopy(record.headers, of: sourceTopic) {
                    copiesOfTheTopic = true
                }
            }
            offset = after
        }
        if let found { return found }
        guard copiesOfTheTopic else { return nil }
        windowEnd = windowStart
    }
    return nil
}

/// Maps a source partition onto the destination's partitions (same index when it exists).
func destinationPartition(_ source: Int, count: Int) -> Int { source < count ? source : source % count }

/// Where a topic destination sends its batches: an embedded broker or a Kafka client.
protocol BatchWriter: RecordReader {
    func initProducerId() async throws -> (Int64, Int16)
    func append(_ topic: String, _ partition: Int, _ batches: [UInt8]) async throws
    /// Creates `topic` with `partitions` unless it exists; true when it made it.
    func createIfMissing(_ topic: String, partitions: Int) async throws -> Bool
}

extension EmbeddedReader: BatchWriter {
    func initProducerId() async throws -> (Int64, Int16) { try await broker.initProducerId() }
    func createIfMissing(_ topic: String, partitions: Int) async throws -> Bool {
        guard (try? broker.partitionCount(of: topic)) == nil else { return false }
        try await broker.createTopic(topic, partitions: partitions)
        return true
    }
    func append(_ topic: String, _ partition: Int, _ batches: [UInt8]) async throws {
        _ = try await broker.append(topic: topic, partition: partition, batches: batches)
    }
}

extension ClientReader: BatchWriter {
    func initProducerId() async throws -> (Int64, Int16) { try client.initProducerId() }
    func createIfMissing(_ topic: String, partitions: Int) async throws -> Bool {
        do {
            _ = try client.partitionCount(topic)
            return false
        } catch let error as KafkaClientError where error.code == KafkaError.unknownTopicOrPartition.rawValue {
            do {
                try client.createTopic(topic, partitions: partitions)
            } catch let error as KafkaClientError where error.code == KafkaError.topicAlreadyExists.rawValue {
                return false  // made meanwhile
            }
            return true
        }
    }
    func append(_ topic: String, _ partition: Int, _ batches: [UInt8]) async throws {
        try client.produce(topic, partition, batches: batches)
    }
}

/// Appends replayed records to a topic (idempotent batches, replay header added), and finds
/// where an earlier run stopped.
final class TopicSink<Writer: BatchWriter>: RecordSink {
    let writer: Writer
    let topic: String
    let partitions: Int
    var maker: BatchMaker

    /// A destination topic that does not exist is made with `sourcePartitions` partitions, so
    /// that each source partition's records stay together and in order, as MirrorMaker makes it.
    init(_ writer: Writer, topic: String, sourcePartitions: Int, stripHeaders: [String] = [], sourceCluster: String?) async throws {
        self.writer = writer
        self.topic = topic
        if try await writer.createIfMissing(topic, partitions: sourcePartitions) {
            FileHandle.standardError.write(Data("created topic '\(topic)' with \(sourcePartitions) partitions, as the source has\n".utf8))
        }
        partitions = try await writer.partitionCount(topic)
        let (id, epoch) = try await writer.initProducerId()
        maker = BatchMaker(producerId: id, epoch: epoch, strip: stripHeaders, sourceCluster: sourceCluster)
    }

    func lastReplayed(sourceTopic: String, sourcePartition: Int, below end: Int64) async throws -> Int64? {
        try await lastReplayedOffset(
            in: writer, topic: topic, partition: destinationPartition(sourcePartition, count: partitions),
            sourceTopic: sourceTopic, sourcePartition: sourcePartition, sourceCluster: maker.sourceCluster, below: end)
    }

    /// Under the 1 MiB `max.message.bytes` Kafka and Tidemark default to; a destination that
    /// takes less refuses a batch as too large, which is then split in two, down to one record.
    static var maxBatchBytes: Int { 512 << 10 }

    func write(_ records: [ConsumerRecord]) async throws {
        // The header names the source partition; the batch goes to the mapped destination one.
        guard let first = records.first else { return }
        let destination = destinationPartition(first.partition, count: partitions)
        for range in batchRanges(count: records.count, maxBytes: Self.maxBatchBytes, size: { BatchMaker.estimatedSize(records[$0]) }) {
            try await append(records[range], to: destination)
        }
    }

    private func append(_ records: ArraySlice<ConsumerRecord>, to destination: Int) async throws {
        do {
            try await writer.append(topic, destination, try maker.batch(records, partition: destination))
            maker.sent(records.count, partition: destination)
        } catch where records.count > 1 && Self.isTooLarge(error) {
            let middle = records.startIndex + records.count / 2
            try await append(records[..<middle], to: destination)
            try await append(records[middle...], to: destination)
        }
    }

    static func isTooLarge(_ error: any Error) -> Bool {
        if let error = error as? KafkaClientError {
            return error.code == KafkaError.messageTooLarge.rawValue || error.code == KafkaError.recordListTooLarge.rawValue
        }
        return (error as? TidemarkError)?.code == .messageTooLarge
    }

    func finish() async throws {}
}

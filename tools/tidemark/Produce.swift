import ArgumentParser
import Foundation
import Tidemark
import TidemarkWire
import TidemarkClient
import TidemarkStorage

/// `tidemark produce TOPIC`: one record per input line, from stdin or files.
struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Produce one record per line of stdin or of the given files.",
        discussion: "With --key-separator, the text before the first separator is the key.")

    @OptionGroup var data: DataOptions
    @Argument(help: "Topic name.") var topic: String
    @Argument(help: "Files to read (default: stdin).") var files: [String] = []
    @Option(help: "Split each line into key and value at the first occurrence of this.") var keySeparator: String?
    @Option(name: .customLong("header"), help: "A header for every record, NAME=VALUE (repeatable).") var headers: [String] = []
    @Option(help: "Send every record to this partition.") var partition: Int?

    func validate() throws {
        for file in files where !FileManager.default.fileExists(atPath: file) { throw ValidationError("no such file: \(file)") }
        for header in headers where !header.contains("=") { throw ValidationError("--header takes NAME=VALUE, got '\(header)'") }
        if keySeparator == "" { throw ValidationError("--key-separator cannot be empty") }
    }

    func run() async throws {
        let recordHeaders = headers.map { entry -> RecordHeader in
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            return RecordHeader(key: parts[0], value: Array(parts[1].utf8))
        }
        // Lines are bytes, sent as they are (kcat does the same): text that is not UTF-8 (a
        // log in Latin-1) was stored with its bytes replaced by U+FFFD.
        let separator = keySeparator.map { Array($0.utf8) }
        func records(_ lines: [[UInt8]]) -> [Producer.OutgoingRecord] {
            lines.map { line in
                var key: [UInt8]? = nil
                var value = line
                if let separator, let range = line.firstRange(of: separator) {
                    key = Array(line[..<range.lowerBound])
                    value = Array(line[range.upperBound...])
                }
                return Producer.OutgoingRecord(topic: topic, key: key, value: value, headers: recordHeaders, partition: partition)
            }
        }
        // Lines are sent as they arrive (`tail -f log | tidemark produce t` streams). A line the
        // topic refuses (too large, say) is reported with its number and left out, and the rest
        // go on, as Kafka's console producer goes on; the command then exits 1. Other failures
        // (the broker gone, no such topic) end it at once.
        var input = try LineInput(files: files)
        var refused = RefusedLines()
        if let client = try data.client() {
            var sender = try WireSender(client: client, topic: topic, partition: partition)
            var line = 0
            while let lines = try input.next() {
                try sender.send(records(lines), firstLine: line + 1, refused: &refused)
                line += lines.count
            }
            try refused.finish(produced: sender.sent, topic: topic)
            return
        }
        let count = try await data.withBroker { broker -> Int in
            let producer = try await Producer(broker: broker)
            // In order, in chunks: lines of one partition keep their order.
            var sent = 0
            var line = 0
            while let lines = try input.next() {
                for result in await producer.send(records(lines)) {
                    line += 1
                    do {
                        _ = try result.get()
                        sent += 1
                    } catch let error as TidemarkError where RefusedLines.isRecordRefusal(error.code) {
                        refused.add(line: line, reason: error.message)
                    }
                }
            }
            return sent
        }
        try refused.finish(produced: count, topic: topic)
    }
}

/// Lines the topic refused, each left out: said with their numbers (the first 10), then the
/// command fails.
struct RefusedLines {
    private(set) var lines: [(line: Int, reason: String)] = []
    private(set) var count = 0

    mutating func add(line: Int, reason: String) {
        count += 1
        if lines.count < 10 { lines.append((line, reason)) }
    }

    /// Refusals of one record, not of the whole command.
    static func isRecordRefusal(_ code: TidemarkError.Code) -> Bool {
        code == .messageTooLarge || code == .invalidRecord
    }
    static func isRecordRefusal(_ code: Int16) -> Bool {
        code == KafkaError.messageTooLarge.rawValue || code == KafkaError.recordListTooLarge.rawValue
            || code == KafkaError.invalidRecord.rawValue
    }

    func finish(produced: Int, topic: String) throws {
        Output.error("produced \(produced) record\(produced == 1 ? "" : "s") to \(topic)")
        guard count > 0 else { return }
        for (line, reason) in lines { Output.error("line \(line) left out: \(reason)") }
        throw CLIError("\(count) line\(count == 1 ? " was" : "s were") refused by \(topic) and left out")
    }
}

/// Over the wire: Kafka's partitioner (sticky for records without a key, switching every
/// 1,000), idempotent batches of up to 1,000 records and `maxBatchBytes`, in order per partition.
struct WireSender {
    let client: KafkaClient
    let topic: String
    let partition: Int?
    let count: Int
    let producerId: Int64
    let epoch: Int16
    private var sequences: [Int: Int32] = [:]
    private var sticky: Int
    /// Records sent to `sticky` since it was chosen.
    private var stuck = 0
    private(set) var sent = 0
    /// Under the 1 MiB `max.message.bytes` Kafka and Tidemark default to, with room for
    /// the batch's and records' framing.
    static let maxBatchBytes = 512 << 10

    init(client: KafkaClient, topic: String, partition: Int?) throws {
        self.client = client
        self.topic = topic
        self.partition = partition
        // A producer's metadata: the broker creates a missing topic if it auto-creates them.
        count = try client.partitionCount(topic, autoCreate: true)
        if let partition, partition >= count { throw CLIError("topic '\(topic)' has no partition \(partition)") }
        (producerId, epoch) = try client.initProducerId()
        sticky = Int.random(in: 0..<count)
    }

    /// A record's bytes in a batch, roughly (its framing counted generously).
    static func estimatedSize(_ record: Producer.OutgoingRecord) -> Int {
        var size = 32 + (record.key?.count ?? 0) + (record.value?.count ?? 0)
        for header in record.headers { size += 8 + header.key.utf8.count + (header.value?.count ?? 0) }
        return size
    }

    /// Sends `records` (lines `firstLine`... of the input); a batch the topic refuses as too
    /// large is sent again a record at a time, and each record it refuses goes to `refused`.
    mutating func send(_ records: [Producer.OutgoingRecord], firstLine: Int, refused: inout RefusedLines) throws {
        var byPartition: [Int: [(line: Int, record: Producer.OutgoingRecord)]] = [:]
        for (index, record) in records.enumerated() {
            let target = record.partition ?? record.key.map { KafkaPartitioner.partition(forKey: $0, partitionCount: count) } ?? sticky
            byPartition[target, default: []].append((firstLine + index, record))
            if record.partition == nil && record.key == nil {
                stuck += 1
                if stuck == 1000 { (sticky, stuck) = ((sticky + 1) % count, 0) }
            }
        }
        let now = currentTimeMilliseconds()
        for (target, list) in byPartition.sorted(by: { $0.key < $1.key }) {
            for range in batchRanges(count: list.count, maxRecords: 1000, maxBytes: Self.maxBatchBytes, size: { Self.estimatedSize(list[$0].record) }) {
                do {
                    try sendBatch(list[range].map(\.record), to: target, now: now)
                } catch let error as KafkaClientError where RefusedLines.isRecordRefusal(error.code) {
                    for (line, record) in list[range] {
                        do {
                            try sendBatch([record], to: target, now: now)
                        } catch let error as KafkaClientError where RefusedLines.isRecordRefusal(error.code) {
                            refused.add(line: line, reason: "\(error)")
                        }
                    }
                }
            }
        }
    }

    private mutating func sendBatch(_ records: [Producer.OutgoingRecord], to target: Int, now: Int64) throws {
        let sequence = sequences[target] ?? 0
        var builder = RecordBatchBuilder(producerId: producerId, producerEpoch: epoch, baseSequence: sequence)
        for record in records { builder.append(timestamp: now, key: record.key, value: record.value, headers: record.headers) }
        try client.produce(topic, target, batches: try builder.build())
        sequences[target] = sequence &+ Int32(records.count)
        sent += records.count
    }
}

/// Lines of stdin or of files, a read at a time: each call returns the complete lines read so
/// far (LF or CRLF ended; empty lines skipped), nil at the end of the input.
struct LineInput {
    private var descriptors: [Int32]
    private var carry: [UInt8] = []
    private var buffer = [UInt8](repeating: 0, count: 256 << 10)

    init(files: [String]) throws {
        descriptors = []
        for file in files {
            let fd = open(file, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw CLIError("cannot read \(file): \(String(cString: strerror(errno)))") }
            descriptors.append(fd)
        }
        if files.isEmpty { descriptors = [STDIN_FILENO] }
    }

    mutating func next() throws -> [[UInt8]]? {
        while let fd = descriptors.first {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw CLIError("reading input failed: \(String(cString: strerror(errno)))") }
            if n == 0 {
                // The end of this input: its last line needs no newline.
                if fd != STDIN_FILENO { close(fd) }
                descriptors.removeFirst()
                let last = carry
                carry = []
                let lines = Self.lines(last[...])
                if !lines.isEmpty { return lines }
                continue
            }
            // Only the new bytes are searched (a long line read in many pieces stays linear).
            guard let newline = buffer[0..<n].lastIndex(of: UInt8(ascii: "\n")) else {
                carry += buffer[0..<n]
                continue
            }
            let end = carry.count + newline
            carry += buffer[0..<n]
            let lines = Self.lines(carry[...end])
            carry.removeSubrange(...end)
            if !lines.isEmpty { return lines }
        }
        return nil
    }

    private static func lines(_ bytes: ArraySlice<UInt8>) -> [[UInt8]] {
        bytes.split(separator: UInt8(ascii: "\n")).compactMap { line in
            let text = line.last == UInt8(ascii: "\r") ? line.dropLast() : line
            return text.isEmpty ? nil : Array(text)
        }
    }
}

import ArgumentParser
import Foundation
import Tidemark
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
        let lines = try readLines()
        let records = lines.map { line -> Producer.OutgoingRecord in
            var key: [UInt8]? = nil
            var value = Array(line.utf8)
            if let keySeparator, let range = line.range(of: keySeparator) {
                key = Array(line[..<range.lowerBound].utf8)
                value = Array(line[range.upperBound...].utf8)
            }
            return Producer.OutgoingRecord(topic: topic, key: key, value: value, headers: recordHeaders, partition: partition)
        }
        if let client = try data.client() {
            let sent = try produce(records, with: client)
            Output.error("produced \(sent) record\(sent == 1 ? "" : "s") to \(topic)")
            return
        }
        let count = try await data.withBroker { broker -> Int in
            let producer = try await Producer(broker: broker)
            // In order, in chunks: lines of one partition keep their order.
            var sent = 0
            var start = 0
            while start < records.count {
                let chunk = Array(records[start..<min(start + 10_000, records.count)])
                for result in await producer.send(chunk) {
                    _ = try result.get()
                    sent += 1
                }
                start += chunk.count
            }
            return sent
        }
        Output.error("produced \(count) record\(count == 1 ? "" : "s") to \(topic)")
    }

    /// Over the wire: Kafka's partitioner, idempotent batches of up to 1,000 records, in order.
    private func produce(_ records: [Producer.OutgoingRecord], with client: KafkaClient) throws -> Int {
        let count = try client.partitionCount(topic)
        if let partition, partition >= count { throw CLIError("topic '\(topic)' has no partition \(partition)") }
        let (producerId, epoch) = try client.initProducerId()
        var byPartition: [Int: [Producer.OutgoingRecord]] = [:]
        var sticky = Int.random(in: 0..<count)
        for (index, record) in records.enumerated() {
            let target = record.partition ?? record.key.map { KafkaPartitioner.partition(forKey: $0, partitionCount: count) } ?? sticky
            if index % 1000 == 999 { sticky = (sticky + 1) % count }
            byPartition[target, default: []].append(record)
        }
        var sent = 0
        let now = currentTimeMilliseconds()
        for (target, list) in byPartition.sorted(by: { $0.key < $1.key }) {
            var sequence: Int32 = 0
            var start = 0
            while start < list.count {
                let chunk = list[start..<min(start + 1000, list.count)]
                var builder = RecordBatchBuilder(producerId: producerId, producerEpoch: epoch, baseSequence: sequence)
                for record in chunk { builder.append(timestamp: now, key: record.key, value: record.value, headers: record.headers) }
                try client.produce(topic, target, batches: try builder.build())
                sequence += Int32(chunk.count)
                sent += chunk.count
                start += chunk.count
            }
        }
        return sent
    }

    private func readLines() throws -> [String] {
        var text = ""
        if files.isEmpty {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            for file in files { text += try String(contentsOfFile: file, encoding: .utf8) + "\n" }
        }
        return text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }
}

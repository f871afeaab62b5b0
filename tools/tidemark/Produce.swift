import ArgumentParser
import Foundation
import Tidemark
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

import ArgumentParser
import Foundation
import TidemarkStorage

/// `tidemark dump FILE`: a segment's batches and records, or an index's entries.
struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a segment's batches and records, or an index's entries.",
        discussion: "FILE is a .log, .index or .timeindex file of a partition directory.")

    @Argument(help: "A .log, .index or .timeindex file.") var file: String
    @Flag(help: "Print batch headers only, not their records.") var headersOnly = false

    func validate() throws {
        guard FileManager.default.fileExists(atPath: file) else { throw ValidationError("no such file: \(file)") }
        guard file.hasSuffix(".log") || file.hasSuffix(".index") || file.hasSuffix(".timeindex") else {
            throw ValidationError("\(file) is not a .log, .index or .timeindex file")
        }
    }

    func run() throws {
        if file.hasSuffix(".index") {
            for entry in try SegmentInspector.offsetIndexEntries(path: file) {
                Output.line("offset: \(entry.offset) position: \(entry.position)")
            }
            return
        }
        if file.hasSuffix(".timeindex") {
            for entry in try SegmentInspector.timeIndexEntries(path: file) {
                Output.line("timestamp: \(entry.timestamp) offset: \(entry.offset)")
            }
            return
        }
        Output.line("Dumping \(file)")
        var damaged = false
        try SegmentInspector.scan(logFile: file) { item in
            switch item {
            case .batch(let h, let position):
                Output.line(
                    "baseOffset: \(h.baseOffset) lastOffset: \(h.lastOffset) count: \(h.recordsCount) position: \(position) "
                        + "size: \(h.totalSize) crc: 0x\(String(h.crc, radix: 16)) crcValid: true "
                        + "compression: \(h.compressionCodec.map { "\($0)" } ?? "unknown") producerId: \(h.producerId) "
                        + "producerEpoch: \(h.producerEpoch) baseSequence: \(h.baseSequence) "
                        + "timestampType: \(h.timestampType) maxTimestamp: \(h.maxTimestamp) "
                        + "isTransactional: \(h.isTransactional) isControl: \(h.isControl)")
                if !headersOnly {
                    let bytes = try SegmentInspector.readBatch(logFile: file, position: position, size: h.totalSize)
                    let batch = try RecordBatch(decoding: bytes)
                    for record in batch.records {
                        let headers = record.headers.map { "\($0.key)=\(Output.text($0.value))" }.joined(separator: ",")
                        Output.line(
                            "| offset: \(batch.offset(of: record)) timestamp: \(batch.timestamp(of: record)) "
                                + "key: \(Output.text(record.key)) value: \(Output.text(record.value))"
                                + (headers.isEmpty ? "" : " headers: \(headers)"))
                    }
                }
            case .damaged(let error, let position, let size):
                damaged = true
                Output.line("damaged at position \(position) (\(size - position) bytes to the end): \(error)")
            }
        }
        if damaged { throw ExitCode(2) }
    }
}

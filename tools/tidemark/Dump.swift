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
        DataDirectoryLock.warnIfLive(file)
        if file.hasSuffix(".index") {
            try SegmentInspector.forEachOffsetIndexEntry(path: file) { offset, position in
                Output.line("offset: \(offset) position: \(position)")
            }
            return
        }
        if file.hasSuffix(".timeindex") {
            try SegmentInspector.forEachTimeIndexEntry(path: file) { timestamp, offset in
                Output.line("timestamp: \(timestamp) offset: \(offset)")
            }
            return
        }
        Output.line("Dumping \(file)")
        var damaged = false
        try SegmentInspector.scan(logFile: file, validator: RecordBatchValidator()) { item in
            let (h, position): (RecordBatchHeader, Int)
            switch item {
            case .invalidContent(let header, let at, let failure):
                damaged = true
                Output.line("invalid contents at position \(at) (offsets \(header.baseOffset)-\(header.lastOffset)): \(failure)")
                (h, position) = (header, at)
            case .batch(let header, let at):
                (h, position) = (header, at)
            case .damaged(let error, let at, let size):
                damaged = true
                Output.line("damaged at position \(at) (\(size - at) bytes to the end): \(error)")
                return
            case .preallocatedTail(let at, let size):
                Output.line("zeros from position \(at) to the end (\(size - at) bytes): space written ahead of appends, not data")
                return
            }
            Output.line(
                "baseOffset: \(h.baseOffset) lastOffset: \(h.lastOffset) count: \(h.recordsCount) position: \(position) "
                    + "size: \(h.totalSize) crc: 0x\(String(h.crc, radix: 16)) crcValid: true "
                    + "compression: \(h.compressionCodec.map { "\($0)" } ?? "unknown") producerId: \(h.producerId) "
                    + "producerEpoch: \(h.producerEpoch) baseSequence: \(h.baseSequence) "
                    + "timestampType: \(h.timestampType) maxTimestamp: \(h.maxTimestamp) "
                    + "isTransactional: \(h.isTransactional) isControl: \(h.isControl)")
            guard !headersOnly else { return }
            let bytes = try SegmentInspector.readBatch(logFile: file, position: position, size: h.totalSize)
            guard let batch = try? RecordBatch(decoding: bytes) else {
                Output.line("| records do not decode")
                return
            }
            for record in batch.records {
                let headers = record.headers.map { "\($0.key)=\(Output.text($0.value))" }.joined(separator: ",")
                Output.line(
                    "| offset: \(batch.offset(of: record)) timestamp: \(batch.timestamp(of: record)) "
                        + "key: \(Output.text(record.key)) value: \(Output.text(record.value))"
                        + (headers.isEmpty ? "" : " headers: \(headers)"))
            }
        }
        if damaged { throw ExitCode(2) }
    }
}

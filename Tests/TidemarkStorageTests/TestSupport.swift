import Foundation
import TestSupport
import TidemarkStorage

/// A batch of `count` records whose values name their index: "<tag>-<i>".
func makeBatch(
    tag: String, count: Int, timestamp: Int64 = 1_700_000_000_000, compression: CompressionCodec = .none,
    valueBytes: Int = 0
) -> [UInt8] {
    var builder = RecordBatchBuilder(compression: compression)
    for i in 0..<count {
        var value = Array("\(tag)-\(i)".utf8)
        if valueBytes > value.count { value += [UInt8](repeating: UInt8(i & 0xFF), count: valueBytes - value.count) }
        builder.append(timestamp: timestamp + Int64(i), key: Array("k\(i)".utf8), value: value)
    }
    return try! builder.build()
}

/// Every record (offset, value as text) readable from `offset` to the end of the log.
func readAll(_ log: PartitionLog, from offset: Int64? = nil, maxBytes: Int = 1 << 20) throws -> [(Int64, String)] {
    var result: [(Int64, String)] = []
    var next = offset ?? log.logStartOffset
    while next < log.logEndOffset {
        let batches = try log.readBatches(from: next, maxBytes: maxBytes)
        guard !batches.isEmpty else { break }
        for batch in batches {
            for record in batch.records where batch.offset(of: record) >= next {
                result.append((batch.offset(of: record), String(decoding: record.value ?? [], as: UTF8.self)))
            }
            next = max(next, batch.header.nextOffset)
        }
    }
    return result
}

func fileSize(_ path: String) -> Int {
    (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
}

func segmentName(_ base: Int64, _ suffix: String) -> String {
    let digits = String(base)
    return String(repeating: "0", count: 20 - digits.count) + digits + suffix
}

/// Makes the crashed log in `directory` read as opened in another boot (its open marker names
/// another boot id): a power loss can have come in between, so what one leaves is cut
/// (`CrashRemnant`, `afterPowerLoss`). A crash in the same boot leaves only its last write.
func simulateReboot(_ directory: String) throws {
    try Data(("0" + String(repeating: "0", count: 32)).utf8).write(to: URL(fileURLWithPath: directory + "/.clean-shutdown"))
}

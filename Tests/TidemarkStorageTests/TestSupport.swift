import Foundation
import TidemarkStorage

/// A fresh directory under the system temp dir, removed when the test scope ends.
final class TemporaryDirectory {
    let path: String

    init(_ label: String = "tidemark") {
        let base = FileManager.default.temporaryDirectory.path
        path = "\(base)/\(label)-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

/// SplitMix64: a small seeded generator so random tests repeat exactly.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension RandomNumberGenerator {
    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }
}

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

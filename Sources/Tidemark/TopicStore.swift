import Foundation
import TidemarkStorage

/// The persisted list of topics: `<data>/topics.json`, rewritten atomically on every change.
///
/// ```json
/// {"version":1,"topics":[{"name":"jobs","partitions":6,"config":{...}}]}
/// ```
struct TopicStore {
    struct Topic: Codable, Equatable, Sendable {
        var name: String
        var partitions: Int
        var config: TopicConfig
    }

    struct File: Codable {
        var version: Int
        var topics: [Topic]
    }

    let path: String

    func load() throws -> [Topic] {
        guard let bytes = try DurableFile.read(path) else { return [] }
        let file = try JSONDecoder().decode(File.self, from: Data(bytes))
        guard file.version == 1 else { throw TidemarkError(.storage, "unknown topics.json version \(file.version)") }
        return file.topics
    }

    func save(_ topics: [Topic]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(File(version: 1, topics: topics.sorted { $0.name < $1.name }))
        try DurableFile.write(Array(data), to: path)
    }
}

/// Allocates producer ids that are never reused, also across restarts: ids are handed out
/// from blocks whose upper end is persisted (`<data>/producer-ids`) before any id of the
/// block is used.
struct ProducerIdAllocator {
    static let blockSize: Int64 = 1000
    let path: String
    private(set) var next: Int64 = 0
    private(set) var blockEnd: Int64 = 0

    init(path: String) throws {
        self.path = path
        if let bytes = try DurableFile.read(path),
            let stored = Int64(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        {
            next = stored
            blockEnd = stored
        }
    }

    mutating func allocate() throws -> Int64 {
        if next >= blockEnd {
            let end = next + Self.blockSize
            try DurableFile.write(Array("\(end)\n".utf8), to: path)
            blockEnd = end
        }
        defer { next += 1 }
        return next
    }
}

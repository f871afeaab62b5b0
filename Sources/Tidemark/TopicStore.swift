import Foundation
import TidemarkStorage

/// The persisted list of topics: `<data>/topics.json`, rewritten atomically on every change.
///
/// ```json
/// {"version":1,
///  "topics":[{"name":"jobs","id":"1f0e…-uuid","partitions":6,"config":{...},
///              "overrides":["retention.ms"]}],
///  "internalTopicIds":{"__consumer_offsets":"…uuid"},
///  "deleting":{"old-topic":6}}
/// ```
/// `deleting` (absent when empty) names topics whose deletion has forgotten them but may not
/// have removed their partition directories yet, with their partition counts: written with
/// the deletion's first save and kept by every save until the directories are gone
/// (`Broker.Registry.deleting`); an open that finds one finishes the deletion (a crash between
/// the save and the renames left the directories for good). Names starting with `__` are
/// ignored (internal logs).
/// `overrides` names (by Kafka name) the settings of `config` the topic sets itself; at a
/// broker's open the others are its defaults of the day (`TopicConfig.resolved`), so a topic
/// follows the broker's settings it does not set (a value edited by hand counts only for a
/// setting named there). An entry without `overrides` (a file from before them) reads as
/// setting what differs from Kafka's defaults or the broker's, and is saved so
/// (`Broker.resolveTopicSettings`); the tools leave the file as it is.
/// `id` is the topic's UUID (Kafka's topic id), made when the topic is created, so a topic
/// deleted and created again under the same name gets a new one. Files from before topic ids
/// get ids at their next load.
struct TopicStore {
    struct Topic: Codable, Equatable, Sendable {
        var name: String
        var partitions: Int
        var config: TopicConfig
        var id: UUID?
        var overrides: [String]?
    }

    struct File: Codable {
        var version: Int
        var topics: [Topic]
        var internalTopicIds: [String: UUID]?
        var deleting: [String: Int]?
    }

    let path: String

    /// The topics, each with its id, and the internal topics' ids; ids missing from an older
    /// file are made now (and saved by the caller).
    func load() throws -> (topics: [Topic], internalIds: [String: UUID], madeIds: Bool) {
        let (topics, internalIds, madeIds, _) = try loadWithDeletions()
        return (topics, internalIds, madeIds)
    }

    /// `load`, and the deletions the file says may be unfinished (names it does not list,
    /// each with a partition count in 1...1,000,000).
    func loadWithDeletions() throws -> (topics: [Topic], internalIds: [String: UUID], madeIds: Bool, deleting: [String: Int]) {
        guard let bytes = try DurableFile.read(path) else { return ([], [:], false, [:]) }
        var file: File
        do {
            file = try JSONDecoder().decode(File.self, from: Data(bytes))
        } catch {
            // Said with its path, and what to do: the node will not guess which topics it has.
            throw TidemarkError(
                .storage, "\(path) cannot be read (\(error)); restore it from a backup, or move it away to start without topics")
        }
        guard file.version == 1 else { throw TidemarkError(.storage, "\(path): unknown version \(file.version)") }
        if let bad = file.topics.first(where: { $0.partitions < 1 || $0.partitions > 1_000_000 }) {
            throw TidemarkError(.storage, "\(path): topic '\(bad.name)' has \(bad.partitions) partitions")
        }
        // A hand-edited file gets the checks the admin API applies: a value out of range would
        // trap or misbehave later (max.message.bytes past Int32.max overflows the batch
        // check's arithmetic; a name with "/" would put a partition outside the data directory).
        var names = Set<String>()
        for index in file.topics.indices {
            let topic = file.topics[index]
            do throws(TidemarkError) {
                try TopicName.validate(topic.name)
                try topic.config.validate()
            } catch {
                throw TidemarkError(.storage, "\(path): topic '\(topic.name)': \(error.message); correct it or restore the file from a backup")
            }
            guard names.insert(topic.name).inserted else {
                throw TidemarkError(.storage, "\(path): topic '\(topic.name)' is listed twice; restore the file from a backup")
            }
            // Kafka's -1, unlimited, as the admin API stores it (nil), so it is described as -1.
            if let ms = topic.config.retentionMs, ms < 0 { file.topics[index].config.retentionMs = nil }
            if let bytes = topic.config.retentionBytes, bytes < 0 { file.topics[index].config.retentionBytes = nil }
        }
        var made = false
        for index in file.topics.indices where file.topics[index].id == nil {
            file.topics[index].id = UUID()
            made = true
        }
        let listed = Set(file.topics.map(\.name))
        // Never an internal log's name (a hand edit must not remove the committed offsets).
        let deleting = (file.deleting ?? [:]).filter { name, count in
            !listed.contains(name) && !name.hasPrefix("__") && (1...1_000_000).contains(count) && (try? TopicName.validate(name)) != nil
        }
        return (file.topics, file.internalTopicIds ?? [:], made, deleting)
    }

    func save(_ topics: [Topic], internalIds: [String: UUID], deleting: [String: Int] = [:]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let file = File(
            version: 1, topics: topics.sorted { $0.name < $1.name }, internalTopicIds: internalIds, deleting: deleting.isEmpty ? nil : deleting)
        try DurableFile.write(Array(try encoder.encode(file)), to: path)
    }
}

extension Broker {
    /// The partition directories (paths) the topics of a data directory's `topics.json` have
    /// (the tools' `verify` checks each is there); nil when it has none. Throws when the file
    /// cannot be read, as the broker would not start.
    public static func listedPartitionDirectories(dataDirectory: String) throws -> [String]? {
        let path = dataDirectory + "/topics.json"
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let topics = try TopicStore(path: path).loadWithDeletions().topics
        return topics.flatMap { topic in (0..<topic.partitions).map { partitionDirectory(dataDirectory, topic.name, $0) } }
    }

    /// The partition directories (paths) of a data directory that its `topics.json` does not
    /// list (a topic it does not have, or a partition past the topic's count): a broker does
    /// not serve them (`verify` names them). Empty when it has no topics.json.
    public static func unlistedPartitionDirectories(dataDirectory: String) throws -> [String] {
        let path = dataDirectory + "/topics.json"
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let (topics, _, _, deleting) = try TopicStore(path: path).loadWithDeletions()
        var listed = Dictionary(topics.map { ($0.name, Optional($0.partitions)) }, uniquingKeysWith: { a, _ in a })
        for name in reservedTopicNames.union(deleting.keys) where listed[name] == nil { listed[name] = .some(nil) }
        return unlistedDirectories(dataDirectory, listed: listed).map { dataDirectory + "/" + $0 }
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

    /// Ids at or above `next` that partitions remember (their producers' sequences): never
    /// handed out. Only those, not every id below the highest of them: a client may pick any
    /// id without asking (Kafka accepts an unknown producer), and one near Int64.max made
    /// every later InitProducerId fail ("exhausted") once the ids continued above it.
    /// Bounded by what the partitions' tables keep: each call replaces the set with what they
    /// remember now (ids they forgot since are not kept, or a client minting high ids between
    /// InitProducerIds grew it for ever).
    private(set) var skipped: Set<Int64> = []

    /// `ids`: every id the partitions remember now (those below `next` are not kept).
    mutating func skip(_ ids: some Sequence<Int64>) {
        skipped = Set(ids.lazy.filter { [next] in $0 >= next })
    }

    mutating func allocate() throws -> Int64 {
        // A damaged file near Int64.max (or negative) cannot trap: ids run out instead.
        guard next >= 0, next < Int64.max - Self.blockSize else {
            throw TidemarkError(.storage, "producer ids exhausted or damaged in \(path) (next \(next))")
        }
        while !skipped.isEmpty, skipped.remove(next) != nil, next < Int64.max - Self.blockSize { next += 1 }
        if next >= blockEnd {
            let end = next + Self.blockSize
            try DurableFile.write(Array("\(end)\n".utf8), to: path)
            blockEnd = end
        }
        defer { next += 1 }
        return next
    }
}

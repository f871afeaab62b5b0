import Foundation
import Tidemark

/// The console's JSON API bodies (`/api/...`): what the pages render and what tests compare
/// with the clients' truth. Field names are the API's contract (README, "Console API").
enum ConsoleModel {
    struct Overview: Codable {
        var version: String
        var nodeId: Int
        var kafkaAddress: String
        var dataDirectory: String
        var uptimeSeconds: Double
        var topics: Int
        var partitions: Int
        var groups: Int
        var queues: Int
        var connections: Double?
        var produceRequestsPerSecond: Double?
        var fetchRequestsPerSecond: Double?
        var recordsInPerSecond: Double
        var bytesInPerSecond: Double?
        var bytesOutPerSecond: Double?
        var fsyncP99Seconds: Double?
        var recordsTotal: Int64
        var partitionsOffline: [OfflinePartition]
        /// Partitions whose log a read found damaged (they serve up to the damage).
        var partitionsDamaged: [OfflinePartition]
    }

    struct OfflinePartition: Codable {
        var topic: String
        var partition: Int
        var reason: String
    }

    struct TopicRow: Codable {
        var name: String
        var isInternal: Bool
        var partitions: Int
        var records: Int64
        var sizeBytes: Int64
        var recordsPerSecond: Double
        var retentionMs: Int64?
        var retentionBytes: Int64?
    }

    struct TopicDetail: Codable {
        var name: String
        var id: String
        var isInternal: Bool
        var configs: [Config]
        var partitions: [PartitionRow]
    }

    struct Config: Codable {
        var name: String
        var value: String
    }

    struct PartitionRow: Codable {
        var partition: Int
        var logStartOffset: Int64
        var logEndOffset: Int64
        var sizeBytes: Int64
        var segments: Int
        var offline: String?
    }

    /// A key, value or header value, its first `preview` bytes shown: as UTF-8 text when they
    /// are valid UTF-8 without control characters but tab and line ends (a cut inside a
    /// character moves back to its start), flagged as JSON when
    /// they parse as a JSON object or array (the page pretty-prints it), and as base64 only when
    /// they are not text (the page's hex view encodes the text back: the same bytes). Sending
    /// both made a page of control characters (six bytes each in JSON) about 60 MiB.
    struct Bytes: Codable {
        var size: Int
        var text: String?
        var isJSON: Bool
        var base64: String?

        init?(_ bytes: [UInt8]?, preview: Int = 64 * 1024) {
            guard let bytes else { return nil }
            var shown = bytes.prefix(preview)
            size = bytes.count
            var text = String(validating: shown, as: UTF8.self)
            if text == nil, shown.count < bytes.count {
                // Cut inside a character: drop its first 1-3 bytes, and try again.
                for drop in 1...3 where text == nil && drop < shown.count {
                    let lead = shown[shown.endIndex - drop]
                    guard lead & 0xC0 == 0xC0 else { continue }  // a character's first byte
                    text = String(validating: shown.dropLast(drop), as: UTF8.self)
                    if text != nil { shown = shown.dropLast(drop) }
                }
            }
            // Control characters other than tab and line ends make it binary, not text.
            if shown.contains(where: { ($0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D) || $0 == 0x7F }) { text = nil }
            self.text = text
            base64 = text == nil ? Data(shown).base64EncodedString() : nil
            isJSON =
                text != nil && shown.first.map { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "[") } == true
                && (try? JSONSerialization.jsonObject(with: Data(shown), options: [.fragmentsAllowed])) != nil
        }
    }

    struct Header: Codable {
        var key: String
        var value: Bytes?
    }

    struct Message: Codable {
        var partition: Int
        var offset: Int64
        var timestamp: Int64
        var timestampType: String
        var key: Bytes?
        var value: Bytes?
        /// The first `maxHeaders` headers; `headerCount` says how many the record has.
        var headers: [Header]
        var headerCount: Int

        /// Headers shown per record: Kafka sets no limit on a record's headers, and an empty one
        /// is two bytes on the wire (four million fit in an 8 MiB batch).
        static let maxHeaders = 64

        init(_ record: ConsumerRecord) {
            partition = record.partition
            offset = record.offset
            timestamp = record.timestamp
            timestampType = record.timestampType == .logAppendTime ? "LogAppendTime" : "CreateTime"
            key = Bytes(record.key)
            value = Bytes(record.value)
            // Keys cut as values are: a header key may be any length (zstd made 20 KB on disk
            // of keys of control characters a 48 MB page).
            headers = record.headers.prefix(Self.maxHeaders).map { Header(key: ConsoleModel.shown($0.key, maxBytes: 1024), value: Bytes($0.value, preview: 4096)) }
            headerCount = record.headers.count
        }
    }

    /// The JSON a page of records (or dead letters) may take: records past it go to the next
    /// page (at least one is shown). Previews bound each record's; this bounds the page's,
    /// which is what a client that does not read its answer holds for up to a minute.
    static let maxPageBytes = 2 << 20

    /// The first of `items` whose JSON fits in `maxPageBytes` (at least one), measured one at
    /// a time: the page is not made whole to be cut.
    static func fitted<T: Encodable>(_ items: [T]) -> [T] {
        let encoder = JSONEncoder.console()
        var total = 0
        var count = 0
        for item in items {
            total += ((try? encoder.encode(item))?.count ?? 0) + 1
            if total > maxPageBytes && count > 0 { break }
            count += 1
        }
        return Array(items.prefix(count))
    }

    struct Messages: Codable {
        var topic: String
        var partition: Int
        var logStartOffset: Int64
        var logEndOffset: Int64
        var from: Int64
        /// The offset of the next page (nil at the end).
        var next: Int64?
        var messages: [Message]
    }

    struct GroupRow: Codable {
        var id: String
        var type: String
        var state: String
        var members: Int
        var topics: [String]
        var lag: Int64
        var timeLagSeconds: Double
    }

    struct GroupMember: Codable {
        var memberId: String
        var clientId: String
        var host: String
        /// Per topic its partitions as ranges (`orders[0-3,7]`), at most
        /// `maxAssignmentPartitions` in all; then `…and N more partitions`.
        var assignment: [String]

        /// Ids and hosts are what clients sent (a client id may be 32 KiB): shown cut.
        init(memberId: String, clientId: String, host: String, assignment: [String]) {
            self.memberId = ConsoleModel.shown(memberId)
            self.clientId = ConsoleModel.shown(clientId)
            self.host = ConsoleModel.shown(host)
            self.assignment = assignment
        }
    }

    /// A client's string as a page shows it: its first 256 bytes (at a character's start) and
    /// "…" when longer.
    static func shown(_ text: String, maxBytes: Int = 256) -> String {
        guard text.utf8.count > maxBytes else { return text }
        let utf8 = Array(text.utf8.prefix(maxBytes + 1))
        var end = maxBytes
        while end > 0 && utf8[end] & 0xC0 == 0x80 { end -= 1 }  // not inside a character
        return String(decoding: utf8[..<end], as: UTF8.self) + "…"
    }

    /// Partitions shown per member: a classic group's leader may assign any bytes up to the
    /// group's member bound (256 MiB), and a million partitions of one topic, shown one by
    /// one, made a page of 259 MB (1 GB of the broker's memory to make it).
    static let maxAssignmentPartitions = 100

    /// Members shown on a group's page (its member count is on the group's row): with
    /// `maxAssignmentPartitions` each and topic names cut at Kafka's 249 characters, a page
    /// stays within a few MB whatever its members wrote.
    static let maxMembersShown = 500

    /// `assignmentText` of partitions in any order, at most `maxAssignmentPartitions` read.
    static func assignmentText(_ partitions: [TopicPartition]) -> [String] {
        var order: [String] = []
        var byTopic: [String: [Int32]] = [:]
        for tp in partitions.prefix(maxAssignmentPartitions) {
            if byTopic[tp.topic] == nil { order.append(tp.topic) }
            byTopic[tp.topic, default: []].append(Int32(clamping: tp.partition))
        }
        return assignmentText(order.map { ($0, byTopic[$0]!) }, omitted: max(0, partitions.count - maxAssignmentPartitions))
    }

    static func assignmentText(_ topics: [(topic: String, partitions: [Int32])], omitted: Int) -> [String] {
        var lines = topics.map { topic, partitions in
            var ranges: [String] = []
            var run: (first: Int32, last: Int32)? = nil
            for p in partitions.sorted() {
                if let current = run, current.last < Int32.max, p == current.last + 1 || p == current.last {
                    run = (current.first, p)
                    continue
                }
                if let current = run { ranges.append(current.first == current.last ? "\(current.first)" : "\(current.first)-\(current.last)") }
                run = (p, p)
            }
            if let current = run { ranges.append(current.first == current.last ? "\(current.first)" : "\(current.first)-\(current.last)") }
            // A name past Kafka's longest topic name names no topic: cut, as a preview.
            return "\(shown(topic, maxBytes: 249))[\(ranges.joined(separator: ","))]"
        }
        if omitted > 0 { lines.append("…and \(omitted) more partition\(omitted == 1 ? "" : "s")") }
        return lines
    }

    struct GroupPartition: Codable {
        var topic: String
        var partition: Int
        var committed: Int64
        var logEndOffset: Int64
        var lag: Int64
    }

    struct LagPoint: Codable {
        var t: Double
        var lag: Int64
    }

    struct GroupDetail: Codable {
        var id: String
        var type: String
        var state: String
        var members: [GroupMember]
        var partitions: [GroupPartition]
        var lag: Int64
        var timeLagSeconds: Double
        var lagHistory: [LagPoint]
    }

    struct ResetRequest: Codable {
        var topic: String
        /// earliest, latest, time (with `timestamp`) or shift (with `shift`).
        var to: String
        /// ms since the epoch; sent as a number, or as a string of ms or ISO 8601 (as the
        /// messages page's `time` takes it).
        var timestamp: Int64?
        var shift: Int64?
        /// A dry run unless false.
        var dryRun: Bool?

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            topic = try c.decode(String.self, forKey: .topic)
            to = try c.decode(String.self, forKey: .to)
            shift = try c.decodeIfPresent(Int64.self, forKey: .shift)
            dryRun = try c.decodeIfPresent(Bool.self, forKey: .dryRun)
            if let ms = (try? c.decodeIfPresent(Int64.self, forKey: .timestamp)) ?? nil {
                timestamp = ms
            } else if let text = try c.decodeIfPresent(String.self, forKey: .timestamp) {
                guard let ms = ConsoleRoutes.parseTime(text) else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .timestamp, in: c, debugDescription: "timestamp must be ms since the epoch or ISO 8601, got \(ConsoleModel.shown(text))")
                }
                timestamp = ms
            } else {
                timestamp = nil
            }
        }
    }

    struct ResetRow: Codable {
        var topic: String
        var partition: Int
        var from: Int64?
        var to: Int64
    }

    struct ResetResult: Codable {
        var dryRun: Bool
        var offsets: [ResetRow]
    }

    struct QueueRow: Codable {
        var group: String
        var topic: String
        var available: Int
        var inFlight: Int
        var delayed: Int
        var archived: Int
        var backlog: Int64
        var deadLettered: Int64
        var deadLettersPending: Int
        var deliveries: Int64
        var redeliveries: Int64
        var lockExpirations: Int64
        var acks: [String: Int64]
        var acksPerSecond: [String: Double]
        var oldestUnackedAgeSeconds: Double
        var members: Int
        var deadLetterTopic: String?
    }

    struct Holder: Codable {
        var member: String
        var records: Int
        var lockDeadlineMs: Int64
    }

    struct QueuePartition: Codable {
        var topic: String
        var partition: Int
        var startOffset: Int64
        var endOffset: Int64
        var logEndOffset: Int64
        var available: Int
        var inFlight: Int
        var delayed: Int
        var archived: Int
        var backlog: Int64
        var holders: [Holder]
    }

    struct QueueDetail: Codable {
        var group: String
        var state: String
        var members: [GroupMember]
        var deadLetterTopic: String?
        var queues: [QueueRow]
        var partitions: [QueuePartition]
    }

    struct DeadLetter: Codable {
        var message: Message
        /// The `_dlq.errors.*` headers, without the prefix (disposition, original.topic, ...).
        var errors: [String: String]
        /// Where this console requeued it ("topic-partition@offset"), if it did since the start.
        var requeuedTo: String?
    }

    struct DeadLetters: Codable {
        var group: String
        var topic: String?
        var partition: Int
        var logStartOffset: Int64
        var logEndOffset: Int64
        var next: Int64?
        var letters: [DeadLetter]
    }

    struct Requeued: Codable {
        var topic: String
        var partition: Int
        var offset: Int64
    }

    /// One Server-Sent Events `snapshot`: what the pages refresh live.
    struct Snapshot: Codable {
        var sequence: Int
        var overview: Overview
        var groups: [GroupRow]
        var queues: [QueueRow]
        var topics: [TopicRow]
    }
}

extension JSONEncoder {
    static func console() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

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
            headers = record.headers.prefix(Self.maxHeaders).map { Header(key: $0.key, value: Bytes($0.value, preview: 4096)) }
            headerCount = record.headers.count
        }
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
        var assignment: [String]
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
        /// earliest, latest, time (with `timestamp`, ms since the epoch) or shift (with `shift`).
        var to: String
        var timestamp: Int64?
        var shift: Int64?
        var dryRun: Bool?
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

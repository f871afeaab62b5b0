import ArgumentParser
import Tidemark
import TidemarkClient

/// `tidemark groups list|describe|reset-offsets` on a data directory.
struct Groups: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect consumer groups and move their committed offsets.",
        subcommands: [List.self, Describe.self, ResetOffsets.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the groups that have committed offsets.")
        @OptionGroup var data: DataOptions
        func run() async throws {
            if let client = try data.client() {
                for group in try client.listGroups() { Output.line(group) }
                return
            }
            for group in try await data.withBroker({ $0.groups.listGroups().map(\.groupId) }) { Output.line(group) }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A group's protocol (classic or consumer), state and members; per partition: committed offset, end offset and lag.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Group id.") var group: String
        func run() async throws {
            let rows: [(String, Int, Int64, Int64, Int64)]
            var summary: KafkaClient.GroupSummary?
            if let client = try data.client() {
                summary = try client.groupSummary(group)
                var list: [(String, Int, Int64, Int64, Int64)] = []
                for (topic, offsets) in try client.committedOffsets(group).sorted(by: { $0.key < $1.key }) {
                    for (partition, committed) in offsets.sorted(by: { $0.key < $1.key }) {
                        let end = try client.offset(topic, partition, at: -1) ?? 0
                        list.append((topic, partition, committed, end, max(0, end - committed)))
                    }
                }
                rows = list
            } else {
                (rows, summary) = try await data.withBroker { broker in
                    let lag = try broker.groupLag(group: group).map { ($0.0.topic, $0.0.partition, $0.committed, $0.end, $0.lag) }
                    let listing = broker.groups.listGroups().first { $0.groupId == group }
                    return (lag, listing.map { KafkaClient.GroupSummary(type: $0.type.rawValue.lowercased(), state: $0.state, members: []) })
                }
            }
            guard !rows.isEmpty || summary != nil else { throw CLIError("group '\(group)' has no members and no committed offsets") }
            if let summary {
                Output.line("GROUP \(group)\tTYPE \(summary.type)\tSTATE \(summary.state)\tMEMBERS \(summary.members.count)")
                if !summary.members.isEmpty {
                    Output.line("MEMBER\tCLIENT\tEPOCH\tASSIGNMENT")
                    for member in summary.members {
                        let assignment = member.assignment.sorted { $0.key < $1.key }
                            .map { "\($0.key):\($0.value.sorted().map(String.init).joined(separator: ","))" }.joined(separator: " ")
                        Output.line("\(member.memberId)\t\(member.clientId)\t\(member.epoch.map(String.init) ?? "-")\t\(assignment.isEmpty ? "-" : assignment)")
                    }
                }
            }
            Output.line("TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG")
            for (topic, partition, committed, end, lag) in rows { Output.line("\(topic)\t\(partition)\t\(committed)\t\(end)\t\(lag)") }
            Output.line("total lag: \(rows.reduce(0) { $0 + $1.4 })")
        }
    }

    struct ResetOffsets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-offsets",
            abstract: "Move a group's committed offsets on a topic (a dry run unless --execute).")
        @OptionGroup var data: DataOptions
        @Argument(help: "Group id.") var group: String
        @Option(help: "Topic whose partitions move.") var topic: String
        @Flag(help: "To each partition's first offset.") var toEarliest = false
        @Flag(help: "To each partition's end.") var toLatest = false
        @Option(help: "To the first record at or after this time (ISO 8601, or @ms).") var toDatetime: String?
        @Option(help: "By this many offsets (negative: back), clamped to the log.") var shiftBy: Int64?
        @Flag(help: "Apply the change (otherwise only print it).") var execute = false

        func validate() throws {
            let chosen = [toEarliest, toLatest, toDatetime != nil, shiftBy != nil].filter { $0 }.count
            guard chosen == 1 else {
                throw ValidationError("choose exactly one of --to-earliest, --to-latest, --to-datetime, --shift-by")
            }
            if let toDatetime, parseTime(toDatetime) == nil { throw ValidationError("--to-datetime: '\(toDatetime)' is not a time") }
        }

        func run() async throws {
            let reset: OffsetReset =
                toEarliest ? .earliest : toLatest ? .latest : toDatetime.map { .timestamp(parseTime($0)!) } ?? .shift(shiftBy!)
            let result: [TopicPartition: Int64]
            if let client = try data.client() {
                result = try resetOverTheWire(client, reset)
            } else {
                result = try await data.withBroker { broker in
                    try await broker.resetOffsets(group: group, topic: topic, to: reset, dryRun: !execute)
                }
            }
            Output.line("TOPIC\tPARTITION\tNEW-OFFSET")
            for (tp, offset) in result.sorted(by: { $0.key.partition < $1.key.partition }) {
                Output.line("\(tp.topic)\t\(tp.partition)\t\(offset)")
            }
            Output.line(execute ? "offsets reset" : "dry run: nothing changed (add --execute to apply)")
        }
    
        /// The same reset through a running broker: ListOffsets, then a standalone OffsetCommit.
        func resetOverTheWire(_ client: KafkaClient, _ reset: OffsetReset) throws -> [TopicPartition: Int64] {
            let committed = try client.committedOffsets(group)[topic] ?? [:]
            var result: [TopicPartition: Int64] = [:]
            for p in 0..<(try client.partitionCount(topic)) {
                let start = try client.offset(topic, p, at: -2) ?? 0
                let end = try client.offset(topic, p, at: -1) ?? 0
                switch reset {
                case .earliest: result[TopicPartition(topic, p)] = start
                case .latest: result[TopicPartition(topic, p)] = end
                case .timestamp(let ms): result[TopicPartition(topic, p)] = try client.offset(topic, p, at: ms) ?? end
                case .shift(let delta): result[TopicPartition(topic, p)] = min(max((committed[p] ?? start) + delta, start), end)
                }
            }
            if execute {
                let (state, members) = try client.describeGroup(group)
                guard members == 0 else { throw CLIError("group '\(group)' is \(state) with \(members) members; stop them first") }
                try client.commitOffsets(group, topic: topic, offsets: Dictionary(uniqueKeysWithValues: result.map { ($0.key.partition, $0.value) }))
            }
            return result
        }
    }
}

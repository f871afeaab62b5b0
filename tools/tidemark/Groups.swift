import ArgumentParser
import Foundation
import Tidemark
import TidemarkClient
import TidemarkServer
import TidemarkWire

/// `tidemark groups list|describe|reset-offsets|configure|delete`, on a data directory or a running broker.
struct Groups: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect groups (classic, consumer and share), move their offsets, set their configs, delete them.",
        subcommands: [List.self, Describe.self, ResetOffsets.self, Configure.self, Delete.self])

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete groups that have no members, with their committed offsets (or a share group's share state), as kafka-consumer-groups --delete does.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Group ids.") var groups: [String]
        func run() async throws {
            guard !groups.isEmpty else { throw ValidationError("name at least one group") }
            let results: [(group: String, error: String?)]
            if let client = try data.client() {
                results = try client.deleteGroups(groups)
            } else {
                results = try await data.withBroker { broker in
                    // Named as over the wire: Kafka's name of the error (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP).
                    await broker.deleteGroups(groups).map { ($0.group, $0.error.map { KafkaError($0).name }) }
                }
            }
            for (group, error) in results { Output.line(error.map { "\(group): not deleted (\($0))" } ?? "deleted group \(group)") }
            if results.contains(where: { $0.error != nil }) { throw ExitCode(1) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the groups with their type (classic, consumer, share) and state.")
        @OptionGroup var data: DataOptions
        func run() async throws {
            let rows: [(group: String, type: String, state: String)]
            if let client = try data.client() {
                rows = try client.listGroupsWithTypes()
            } else {
                rows = try await data.withBroker { broker in
                    let groups = broker.groups.listGroups().map { ($0.groupId, $0.type.rawValue.lowercased(), $0.state) }
                    let known = Set(groups.map(\.0))
                    let shares = broker.shares.groupIds().filter { !known.contains($0) }.map {
                        ($0, "share", broker.shares.describe($0)?.state ?? "Empty")
                    }
                    return (groups + shares).sorted { $0.0 < $1.0 }
                }
            }
            Output.line("GROUP\tTYPE\tSTATE")
            for row in rows { Output.line("\(Output.field(row.group))\t\(row.type)\t\(row.state)") }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A group's protocol (classic or consumer), state and members; per partition: committed offset, end offset and lag.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Group id.") var group: String
        func run() async throws {
            if try await describeShareGroup() { return }
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
                    // The members the broker knows (restored from the log: they stay until their
                    // sessions run out once it runs), as DescribeGroups would list them: they
                    // were left out, and describe said 0 members where reset and delete refused
                    // for one.
                    var members: [KafkaClient.GroupSummary.Member] = []
                    if listing?.type == .consumer, let described = broker.groups.describeConsumerGroup(group) {
                        members = described.members.map { m in
                            KafkaClient.GroupSummary.Member(
                                memberId: m.memberId, clientId: m.clientId, epoch: m.memberEpoch,
                                assignment: Dictionary(grouping: m.assignment, by: \.topic).mapValues { $0.map { Int32($0.partition) } },
                                clientHost: m.clientHost)
                        }
                    } else if listing != nil {
                        let described = broker.groups.describeGroup(group)
                        members = described.members.map { m in
                            // (Assignments are the consumer protocol's only in its groups: a
                            // Connect group's are not partitions.)
                            KafkaClient.GroupSummary.Member(
                                memberId: m.memberId, clientId: m.clientId, assignment: [:], clientHost: m.clientHost,
                                consumerAssignment: described.protocolType == "consumer" ? m.assignment : [])
                        }
                    }
                    return (lag, listing.map { KafkaClient.GroupSummary(type: $0.type.rawValue.lowercased(), state: $0.state, members: members) })
                }
            }
            guard !rows.isEmpty || summary != nil else { throw CLIError("group '\(group)' has no members and no committed offsets yet (a group is described once a consumer or worker has joined it; settings made by `groups configure` wait for it)") }
            if let summary {
                Output.line("GROUP \(group)\tTYPE \(summary.type)\tSTATE \(summary.state)\tMEMBERS \(summary.members.count)")
                printMembers(summary.members)
            }
            // Partitions a member is assigned but the group has not committed, listed as Kafka's
            // tool lists them: "-" for the offset and the lag, which are not known (where the
            // consumer starts is its auto.offset.reset); left out, they hid that part of the lag.
            let committed = Set(rows.map { TopicPartition($0.0, $0.1) })
            var uncommitted = Set<TopicPartition>()
            for member in summary?.members ?? [] {
                for (topic, partitions) in member.assignment { for p in partitions { uncommitted.insert(TopicPartition(topic, Int(p))) } }
                for tp in ConsumerProtocol.decodeAssignment(member.consumerAssignment) ?? [] { uncommitted.insert(tp) }
            }
            uncommitted.subtract(committed)
            let ends = try await endOffsets(of: uncommitted)
            Output.line("TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG")
            var lines = rows.map { (TopicPartition($0.0, $0.1), "\($0.0)\t\($0.1)\t\($0.2)\t\($0.3)\t\($0.4)") }
            lines += uncommitted.map { tp in (tp, "\(tp.topic)\t\(tp.partition)\t-\t\(ends[tp].map(String.init) ?? "-")\t-") }
            for (_, line) in lines.sorted(by: { ($0.0.topic, $0.0.partition) < ($1.0.topic, $1.0.partition) }) { Output.line(line) }
            let unknown = uncommitted.isEmpty ? "" : " (and \(uncommitted.count) assigned partition\(uncommitted.count == 1 ? "" : "s") without a commit, lag not known)"
            Output.line("total lag: \(rows.reduce(0) { $0 + $1.4 })\(unknown)")
        }
    }

}

extension Groups.Describe {
    /// The end offsets of `partitions` (those without a commit), by the same route as the rest.
    func endOffsets(of partitions: Set<TopicPartition>) async throws -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        if let client = try data.client() {
            var ends: [TopicPartition: Int64] = [:]
            for tp in partitions { ends[tp] = try? client.offset(tp.topic, tp.partition, at: -1) }
            return ends
        }
        return try await data.withBroker { broker in
            var ends: [TopicPartition: Int64] = [:]
            for tp in partitions { ends[tp] = try? broker.offsets(topic: tp.topic, partition: tp.partition).end }
            return ends
        }
    }
}

extension Groups {
    struct Configure: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set or reset a group's configs by Kafka name (share.record.lock.duration.ms, share.delivery.count.limit, share.auto.offset.reset, consumer.session.timeout.ms, ...).")
        @OptionGroup var data: DataOptions
        @Argument(help: "Group id.") var group: String
        @OptionGroup var config: ConfigChangeOptions

        func validate() throws {
            guard !config.isEmpty else { throw ValidationError("give --set KEY=VALUE or --delete KEY") }
        }

        func run() async throws {
            if let client = try data.client() {
                try client.alterGroupConfigs(group, config.changes)
            } else {
                try await data.withBroker(creating: false) { broker in
                    do { try await broker.alterGroupConfig(group, changes: config.engineChanges) } catch let error as TidemarkError {
                        throw CLIError(error.message)
                    }
                }
            }
            Output.line("group '\(group)' configured: " + config.summary)
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
        @Option(help: "To the first record at or after this time (ISO 8601; without a zone, local time; or @ms).") var toDatetime: String?
        // Unconditional: `--shift-by -100` (the space form, as kafka-consumer-groups.sh takes
        // it) is a value, not an option.
        @Option(parsing: .unconditional, help: "By this many offsets (negative: back) from the committed ones, clamped to the log.") var shiftBy: Int64?
        @Flag(help: "Apply the change (otherwise only print it).") var execute = false

        func validate() throws {
            let chosen = [toEarliest, toLatest, toDatetime != nil, shiftBy != nil].filter { $0 }.count
            guard chosen == 1 else {
                throw ValidationError("choose exactly one of --to-earliest, --to-latest, --to-datetime, --shift-by")
            }
            if let toDatetime, parseTime(toDatetime) == nil {
                throw ValidationError("--to-datetime: '\(toDatetime)' is not a time (ISO 8601, or @ms since 1970, at least 0)")
            }
        }

        func run() async throws {
            let reset: OffsetReset =
                toEarliest ? .earliest : toLatest ? .latest : toDatetime.map { .timestamp(parseTime($0)!) } ?? .shift(shiftBy!)
            let result: [TopicPartition: Int64]
            if let client = try data.client() {
                if try client.listGroupsWithTypes().contains(where: { $0.group == group && $0.type == "share" }) {
                    result = try resetShareOverTheWire(client, reset)
                } else {
                    result = try resetOverTheWire(client, reset)
                }
            } else if try await data.withBroker({ $0.shares.groupIds().contains(group) }) {
                result = try await data.withBroker { broker in
                    var offsets: [TopicPartition: Int64] = [:]
                    for p in 0..<(try broker.partitionCount(of: topic)) {
                        let (start, end) = try broker.offsets(topic: topic, partition: p)
                        let current = broker.shares.summaries(group, view: broker.shareLogView)
                            .first { $0.topicPartition == TopicPartition(topic, p) }?.startOffset
                        offsets[TopicPartition(topic, p)] =
                            switch reset {
                            case .earliest: start
                            case .latest: end
                            case .timestamp(let ms): try await broker.resolveOffset(topic: topic, partition: p, .timestamp(ms)).offset
                            case .shift(let delta): OffsetReset.shifted(try position(current, TopicPartition(topic, p)), by: delta, start: start, end: end)
                            }
                    }
                    if execute { try await broker.shares.resetOffsets(group: group, offsets: offsets, view: broker.shareLogView) }
                    return offsets
                }
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
    
        /// A share group's reset through a running broker: ListOffsets, then AlterShareGroupOffsets.
        func resetShareOverTheWire(_ client: KafkaClient, _ reset: OffsetReset) throws -> [TopicPartition: Int64] {
            try refuseIfActive(client)
            let current = try client.sharePartitions(group).first { $0.topicName == topic }?.partitions ?? []
            var result: [TopicPartition: Int64] = [:]
            for p in 0..<(try client.partitionCount(topic)) {
                let start = try client.offset(topic, p, at: -2) ?? 0
                let end = try client.offset(topic, p, at: -1) ?? 0
                let startOffset = current.first { $0.partitionIndex == Int32(p) }.flatMap { $0.startOffset >= 0 ? $0.startOffset : nil }
                switch reset {
                case .earliest: result[TopicPartition(topic, p)] = start
                case .latest: result[TopicPartition(topic, p)] = end
                case .timestamp(let ms): result[TopicPartition(topic, p)] = try client.offset(topic, p, at: ms) ?? end
                case .shift(let delta):
                    result[TopicPartition(topic, p)] = OffsetReset.shifted(try position(startOffset, TopicPartition(topic, p)), by: delta, start: start, end: end)
                }
            }
            if execute {
                try client.alterShareOffsets(group, topic: topic, offsets: Dictionary(uniqueKeysWithValues: result.map { ($0.key.partition, $0.value) }))
            }
            return result
        }

        /// The offset a shift moves: the committed one (a share group's start offset). As
        /// Kafka's tool, a partition without one is refused, not shifted from a guess.
        func position(_ offset: Int64?, _ tp: TopicPartition) throws -> Int64 {
            guard let offset else { throw CLIError(OffsetReset.nothingToShift(group: group, tp)) }
            return offset
        }

        /// As Kafka's tools: a group with consumers running is refused, dry run or not (its
        /// consumers would commit over the reset), whatever its protocol.
        func refuseIfActive(_ client: KafkaClient) throws {
            guard let listed = try client.listGroupsWithTypes().first(where: { $0.group == group }) else { return }
            guard ["empty", "dead", ""].contains(listed.state.lowercased()) else {
                throw CLIError("offsets can only be reset while group '\(group)' is inactive, but it is \(listed.state): stop its consumers first")
            }
        }

        /// The same reset through a running broker: ListOffsets, then a standalone OffsetCommit.
        func resetOverTheWire(_ client: KafkaClient, _ reset: OffsetReset) throws -> [TopicPartition: Int64] {
            try refuseIfActive(client)
            let committed = try client.committedOffsets(group)[topic] ?? [:]
            var result: [TopicPartition: Int64] = [:]
            for p in 0..<(try client.partitionCount(topic)) {
                let start = try client.offset(topic, p, at: -2) ?? 0
                let end = try client.offset(topic, p, at: -1) ?? 0
                switch reset {
                case .earliest: result[TopicPartition(topic, p)] = start
                case .latest: result[TopicPartition(topic, p)] = end
                case .timestamp(let ms): result[TopicPartition(topic, p)] = try client.offset(topic, p, at: ms) ?? end
                case .shift(let delta):
                    result[TopicPartition(topic, p)] = OffsetReset.shifted(try position(committed[p], TopicPartition(topic, p)), by: delta, start: start, end: end)
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

extension Groups.Describe {
    /// A share group: its members, and per partition the start and end offsets, what is
    /// available, held (by whom, until when), finished, and the lag. False when `group` is
    /// not a share group.
    func describeShareGroup() async throws -> Bool {
        typealias Row = (topic: String, partition: Int, start: Int64, end: Int64, logEnd: Int64, available: Int, delayed: Int,
                         acquired: Int, archived: Int, lag: Int64, holders: [(String, Int, Int64)], deadLettered: Int64, deadPending: Int)
        var rows: [Row] = []
        var members: [KafkaClient.GroupSummary.Member] = []
        var state = "Empty"
        if let client = try data.client() {
            guard try client.listGroupsWithTypes().contains(where: { $0.group == group && $0.type == "share" }) else { return false }
            (state, members) = try client.shareMembers(group)
            // Every partition of the topics it has state in or its members are assigned: one
            // added while no worker ran has no state yet, and its jobs are the queue's too (as
            // /metrics counts them).
            var topics = Set(try client.sharePartitions(group).map(\.topicName))
            for member in members { topics.formUnion(member.assignment.keys) }
            // (All topics' counts: one deleted since a member was assigned it is left out, not an error.)
            let counts = topics.isEmpty ? [:] : try client.metadata().filter { topics.contains($0.key) }
            for topic in try client.sharePartitions(group, partitions: counts) {
                for p in topic.partitions where p.errorCode == 0 {
                    let d = p.details ?? SharePartitionDetails()
                    let unstarted = p.startOffset < 0 && d.startOffset >= 0
                    rows.append((topic.topicName, Int(p.partitionIndex), unstarted ? d.startOffset : p.startOffset, d.endOffset, d.logEndOffset,
                                 Int(d.available), Int(d.delayed), Int(d.acquired), Int(d.archived), unstarted ? d.lag : p.lag,
                                 d.holders.map { ($0.memberId, Int($0.records), $0.earliestLockExpiryMs) }, d.deadLettered, Int(d.deadLettersPending)))
                }
            }
        } else {
            let found: (String, [Row])? = try await data.withBroker { broker in
                guard broker.shares.groupIds().contains(group) else { return nil }
                let summaries = broker.shares.summaries(group, view: broker.shareLogView).map { s -> Row in
                    (s.topicPartition.topic, s.topicPartition.partition, s.startOffset, s.endOffset, s.logEndOffset, s.available,
                     s.delayed, s.acquired, s.archived, s.lag, s.holders.map { ($0.key, $0.value.count, $0.value.earliestExpiryMs) },
                     s.deadLettered, s.deadLettersPending)
                }
                return (broker.shares.describe(group)?.state ?? "Empty", summaries)
            }
            guard let found else { return false }
            (state, rows) = found
        }
        Output.line("GROUP \(group)\tTYPE share\tSTATE \(state)\tMEMBERS \(members.count)")
        printMembers(members)
        // AVAILABLE: due now; DELAYED: waiting for a delivery time or a retry backoff.
        Output.line("TOPIC\tPARTITION\tSTART\tEND\tLOG-END\tAVAILABLE\tDELAYED\tACQUIRED\tARCHIVED\tLAG\tDEAD-LETTERED\tDLQ-PENDING")
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for row in rows {
            Output.line(
                "\(row.topic)\t\(row.partition)\t\(row.start)\t\(row.end)\t\(row.logEnd)\t\(row.available)\t\(row.delayed)\t\(row.acquired)\t\(row.archived)\t\(row.lag)\t\(row.deadLettered)\t\(row.deadPending)")
            for (member, count, expiry) in row.holders {
                Output.line("  held by \(member): \(count) records, lock expires in \(max(0, expiry - now)) ms")
            }
        }
        Output.line("total lag: \(rows.reduce(0) { $0 + $1.lag })")
        return true
    }
}

/// The members table of `groups describe`: id, client id, host, epoch (consumer-protocol and
/// share groups) and assignment (a classic consumer's read from its leader's bytes), one line
/// each; nothing when there are none.
func printMembers(_ members: [KafkaClient.GroupSummary.Member]) {
    guard !members.isEmpty else { return }
    Output.line("MEMBER\tCLIENT\tHOST\tEPOCH\tASSIGNMENT")
    for member in members {
        var partitions = member.assignment
        for tp in ConsumerProtocol.decodeAssignment(member.consumerAssignment) ?? [] {
            partitions[tp.topic, default: []].append(Int32(tp.partition))
        }
        let assignment = partitions.sorted { $0.key < $1.key }
            .map { "\($0.key):\($0.value.sorted().map(String.init).joined(separator: ","))" }.joined(separator: " ")
        let host = member.clientHost.isEmpty ? "-" : member.clientHost
        Output.line(
            "\(member.memberId)\t\(member.clientId)\t\(host)\t\(member.epoch.map(String.init) ?? "-")\t\(assignment.isEmpty ? "-" : assignment)")
    }
}

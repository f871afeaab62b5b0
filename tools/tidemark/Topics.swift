import ArgumentParser
import Tidemark
import TidemarkClient

/// `tidemark topics list|create|alter|delete|describe`, on a data directory or a running broker.
struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, create, alter, delete and describe topics.",
        subcommands: [List.self, Create.self, Alter.self, Delete.self, Describe.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the topics.")
        @OptionGroup var data: DataOptions
        func run() async throws {
            if let client = try data.client() {
                // Internal topics are left out, as from a data directory; other names starting
                // with "__" are ordinary topics (Debezium's heartbeats).
                let internalNames: Set<String> = ["__consumer_offsets", "__share_group_state", "__transaction_state", "__cluster_metadata"]
                for name in try client.metadata().keys.sorted() where !internalNames.contains(name) { Output.line(name) }
                return
            }
            for name in try await data.withBroker({ $0.listTopics() }) { Output.line(name) }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a topic.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Topic name.") var name: String
        // (Unconditional: `--partitions -1` is a value to refuse, not a missing one.)
        @Option(parsing: .unconditional, help: "Number of partitions (default: the broker's num.partitions over --bootstrap, else 1).")
        var partitions: Int?
        @Option(name: .customLong("config"), help: "A Kafka topic config, NAME=VALUE (repeatable), e.g. retention.ms=3600000.")
        var configs: [String] = []

        func validate() throws {
            if let partitions, partitions < 1 { throw ValidationError("--partitions must be at least 1, got \(partitions)") }
        }

        func run() async throws {
            var config = TopicConfig()
            var pairs: [(String, String)] = []
            for entry in configs {
                let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw ValidationError("--config takes NAME=VALUE, got '\(entry)'") }
                pairs.append((parts[0], parts[1]))
            }
            for (name, value) in TopicConfig.inApplyOrder(pairs, name: \.0) { try config.apply(kafkaName: name, value: value) }
            if let client = try data.client() {
                try client.createTopic(name, partitions: partitions ?? -1, configs: pairs)
                if partitions == nil {
                    Output.line("created topic \(name) with the broker's default partition count")
                    return
                }
            } else {
                try await data.withBroker(creating: true) {
                    try await $0.createTopic(name, partitions: partitions ?? 1, config: config, overrides: Set(pairs.map { TopicConfig.overrideName(of: $0.0) }))
                }
            }
            let count = partitions ?? 1
            Output.line("created topic \(name) with \(count) partition\(count == 1 ? "" : "s")")
        }
    }

    /// Kafka's `kafka-topics --alter --partitions` and `kafka-configs --alter --add-config /
    /// --delete-config` for one topic: CreatePartitions and IncrementalAlterConfigs over the
    /// wire, the same engine calls on a data directory.
    struct Alter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add partitions to a topic, or set or reset its configs by Kafka name (retention.ms, max.message.bytes, ...).")
        @OptionGroup var data: DataOptions
        @Argument(help: "Topic name.") var name: String
        @Option(parsing: .unconditional, help: "The new partition count (only ever more; keyed records of new writes may move).")
        var partitions: Int?
        @OptionGroup var config: ConfigChangeOptions

        func validate() throws {
            guard partitions != nil || !config.isEmpty else {
                throw ValidationError("give --partitions N, --set KEY=VALUE or --delete KEY")
            }
            if let partitions, partitions < 1 { throw ValidationError("--partitions must be at least 1, got \(partitions)") }
        }

        func run() async throws {
            let changes = config.changes
            // The partition count is checked first (validate only), then the configs change (a
            // refused one changes none), then the partitions are added: a count that could not
            // be had changed the configs and said nothing of it. Each change is said as it is made.
            let configured = "topic '\(name)' configured: " + config.summary
            if let client = try data.client() {
                if let partitions { try client.createPartitions(name, count: partitions, validateOnly: true) }
                if !changes.isEmpty {
                    try client.alterTopicConfigs(name, changes)
                    Output.line(configured)
                }
                if let partitions { try client.createPartitions(name, count: partitions) }
            } else {
                let engineChanges = config.engineChanges
                try await data.withBroker { broker in
                    if let partitions { try await broker.createPartitions(topic: name, count: partitions, validateOnly: true) }
                    if !engineChanges.isEmpty {
                        try await broker.alterTopicConfig(name, changes: engineChanges)
                        Output.line(configured)
                    }
                    if let partitions { try await broker.createPartitions(topic: name, count: partitions) }
                }
            }
            if let partitions { Output.line("topic '\(name)' now has \(partitions) partitions") }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a topic and its data.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Topic name.") var name: String
        func run() async throws {
            if let client = try data.client() {
                try client.deleteTopic(name)
            } else {
                try await data.withBroker { try await $0.deleteTopic(name) }
            }
            Output.line("deleted topic \(name)")
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Partitions, offsets, sizes and config of a topic.",
            discussion: "A partition that cannot be read (offline: damage its start refused) is listed with its error, the others "
                + "as usual; the command then exits 1.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Topic name.") var name: String
        func run() async throws {
            var failed = false
            if let client = try data.client() {
                let count = try client.partitionCount(name)
                Output.line("topic: \(name) partitions: \(count)")
                for p in 0..<count {
                    // One offline partition does not hide the others (it ended the listing).
                    do {
                        let start = try client.offset(name, p, at: -2) ?? 0
                        let end = try client.offset(name, p, at: -1) ?? 0
                        Output.line("  partition: \(p) start: \(start) end: \(end)")
                    } catch let error as KafkaClientError where error.code > 0 {
                        Output.line("  partition: \(p) error: \(error)")
                        failed = true
                    }
                }
                Output.line("config:")
                for (key, value) in try client.topicConfigs(name) { Output.line("  \(key)=\(value)") }
                if failed { throw ExitCode(1) }
                return
            }
            let description = try await data.withBroker { try $0.describeTopic(name) }
            Output.line("topic: \(name) partitions: \(description.partitions.count)")
            for p in description.partitions {
                if let offline = p.offline {
                    Output.line("  partition: \(p.partition) offline: \(offline)")
                    failed = true
                    continue
                }
                Output.line(
                    "  partition: \(p.partition) start: \(p.logStartOffset) end: \(p.logEndOffset) "
                        + "flushed: \(p.flushedOffset) bytes: \(p.sizeInBytes) segments: \(p.segmentCount)")
            }
            Output.line("config:")
            for (key, value) in description.config.kafkaConfigs { Output.line("  \(key)=\(value)") }
            if failed { throw ExitCode(1) }
        }
    }
}

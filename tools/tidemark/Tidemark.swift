import ArgumentParser

@main
struct TidemarkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tidemark",
        abstract: "An embeddable, Kafka-compatible log broker.",
        subcommands: [Serve.self, Topics.self, Produce.self, Consume.self, Replay.self, Groups.self, Dump.self, Verify.self])
}

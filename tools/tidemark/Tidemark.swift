import ArgumentParser

@main
struct TidemarkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tidemark",
        abstract: "An embeddable, Kafka-compatible log broker.",
        subcommands: [Serve.self])
}

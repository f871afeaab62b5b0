import ArgumentParser
import Foundation

@main
struct TidemarkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tidemark",
        abstract: "An embeddable, Kafka-compatible log broker.",
        subcommands: [Serve.self, Topics.self, Produce.self, Consume.self, Replay.self, Groups.self, Dump.self, Verify.self])

    /// Every command runs with SIGPIPE ignored: a reader of its output that goes away
    /// (`| head -1`) is an EPIPE (`Output.readerGone`), not a death that leaves a data
    /// directory it opened marked as not shut down cleanly.
    static func main() async {
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
            Output.exitIfStdoutFailed()
        } catch {
            Output.exitIfStdoutFailed()
            exit(withError: error)
        }
    }
}

import ArgumentParser
import Foundation
import Tidemark

@main
struct TidemarkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tidemark",
        abstract: "An embeddable, Kafka-compatible log broker.",
        version: TidemarkVersion.current,
        subcommands: [Serve.self, Topics.self, Produce.self, Consume.self, Replay.self, Groups.self, Dump.self, Verify.self])

    /// Every command runs with SIGPIPE ignored: a reader of its output that goes away
    /// (`| head -1`) is an EPIPE (`Output.readerGone`), not a death that leaves a data
    /// directory it opened marked as not shut down cleanly.
    static func main() async {
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try parseAsRoot()
            // The tools say what they did on stdout and stderr themselves; the engine's
            // routine lines ("data directory opened") are left out, its warnings kept.
            // (`serve` sets up its own logging, with --log-level.)
            if !(command is Serve) { bootstrapLogging(format: .text, level: .warning) }
            // A command group named without its subcommand (`tidemark`, `tidemark topics`) is a
            // usage error, as in Kafka's tools and git: its help on stderr, status 64.
            if command is TidemarkCommand || command is Topics || command is Groups {
                Output.error(type(of: command).helpMessage())
                Foundation.exit(64)
            }
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
            Output.exitIfStdoutFailed()
        } catch let error as TidemarkError {
            // The engine's message, without its code's Swift name ("invalidConfig: ...").
            Output.exitIfStdoutFailed()
            Output.error("Error: \(error.message)\(error.storage.map { " (\($0))" } ?? "")")
            Foundation.exit(1)
        } catch {
            Output.exitIfStdoutFailed()
            exit(withError: error)
        }
    }
}

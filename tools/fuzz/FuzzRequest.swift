import Dispatch
import Foundation
import Logging
import Synchronization
import Tidemark
import TidemarkServer

/// The request fuzz target: one input = one Kafka request frame (header and body, no size
/// prefix), run through decode, the router and the engine, and the response encoder of a
/// real broker over a real data directory (in /dev/shm when it exists).
///
/// Built with `-sanitize=fuzzer -D FUZZING` (tools/fuzz.sh) it is a libFuzzer binary;
/// built normally it replays the files named on its command line, for reproducing a finding.
///
/// The broker is shaped so that an input cannot stall the next ones: long polls, rebalances
/// and session timeouts are clamped to milliseconds, topics have at most 4 partitions and
/// small segments, and topics an input created are deleted after it.
enum FuzzHarness {
    static let seedTopics = ["a", "b"]

    static let shared: (Broker, RequestProcessor, String) = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let directory = "\(base)/tidemark-fuzz-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        var options = BrokerOptions()
        options.maxPartitionsPerTopic = 4
        options.groups.minSessionTimeoutMs = 1
        options.groups.maxSessionTimeoutMs = 100
        options.groups.maxRebalanceTimeoutMs = 20
        options.maintenanceIntervalMs = 50
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        options.logger = logger
        var config = ServerConfig()
        config.autoCreateTopics = false
        config.fetchMaxWaitMs = 2
        config.maxRequestBytes = 1 << 20
        let brokerOptions = options
        let broker = blocking { try! await Broker.open(dataDirectory: directory, options: brokerOptions) }
        return (broker, RequestProcessor(broker: broker, config: config, logger: logger), directory)
    }()

    static func blocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let value = await body()
            result.withLock { $0 = value }
            done.signal()
        }
        done.wait()
        return result.withLock { $0! }
    }

    static func seedTopicConfig() -> TopicConfig {
        TopicConfig(retentionBytes: 1 << 20, segmentBytes: 256 << 10, maxMessageBytes: 128 << 10)
    }

    /// Runs one frame: the broker answers or closes as it must, and never traps.
    static func run(_ frame: [UInt8]) {
        let (broker, processor, _) = shared
        blocking {
            for topic in seedTopics where !broker.listTopics().contains(topic) {
                try? await broker.createTopic(topic, partitions: 2, config: seedTopicConfig())
            }
            let outcome = await processor.process(frame)
            if case .response(let bytes) = outcome {
                // A response always starts with the request's correlation id.
                precondition(bytes.count >= 4 && frame.count >= 8 && Array(bytes[0..<4]) == Array(frame[4..<8]),
                             "response without the request's correlation id")
            }
            for topic in broker.listTopics() where !seedTopics.contains(topic) { try? await broker.deleteTopic(topic) }
        }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneRequest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzHarness.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

/// libFuzzer's driver, entered from our own `main` (SwiftPM names the executable's entry
/// point itself, so libFuzzer's `main` is not the one linked).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@main
struct FuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneRequest))
    }
}
#else
@main
struct ReplayFuzzInputs {
    static func main() {
        let paths = CommandLine.arguments.dropFirst()
        guard !paths.isEmpty else {
            print("usage: tidemark-fuzz FILE...  (runs each file as one request frame)")
            return
        }
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            FuzzHarness.run(Array(data))
            print("ok \(path)")
        }
        try? FileManager.default.removeItem(atPath: FuzzHarness.shared.2)
    }
}
#endif

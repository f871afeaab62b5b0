import Logging
import NIOCore
import NIOPosix
import Tidemark
import TidemarkWire

/// One request frame in, its response frame out, against a broker, without a socket: the
/// server's decode -> engine -> encode path on its own. For tests and the fuzzer.
public struct RequestProcessor: Sendable {
    /// What the broker does with a frame.
    public enum Outcome: Sendable, Equatable {
        /// The response frame (without the size prefix), file slices read into memory.
        case response([UInt8])
        /// No response (acks=0 produce).
        case silent
        /// The connection would be closed, for this reason.
        case close(String)
    }

    let router: RequestRouter

    /// Produce and Fetch complete on an event loop, as on a connection: the processor runs
    /// them on one of its own (`loops`, one thread unless given).
    public init(
        broker: Broker, config: ServerConfig = ServerConfig(), logger: Logger = Logger(label: "tidemark.server"),
        loops: (any EventLoopGroup)? = nil
    ) {
        router = RequestRouter(
            broker: broker, config: config, logger: logger, boundPort: config.port,
            loops: loops ?? MultiThreadedEventLoopGroup.singleton)
    }

    /// Runs one request frame (header and body, without the size prefix).
    public func process(_ frame: [UInt8]) async -> Outcome {
        switch await router.handle(frame) {
        case .silent: return .silent
        case .close(let reason), .failed(let reason), .overResponseMemory(let reason): return .close(reason)
        case .respond(let chunks):
            var bytes: [UInt8] = []
            for chunk in chunks {
                guard let part = try? chunk.materialize() else { return .close("a file slice could not be read") }
                bytes += part
            }
            guard bytes.count <= Int(Int32.max) else { return .close("response too large to frame") }
            return .response(bytes)
        }
    }
}

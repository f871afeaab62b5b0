#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import Synchronization
import TidemarkStorage

/// Which new Kafka connections are admitted: at most `maxConnections` open at once over all
/// clients (Kafka's `max.connections`) and `maxPerAddress` from one client address
/// (`max.connections.per.ip`). A connection past either is closed as it arrives, counted
/// (`tidemark_connections_refused_total`), and logged at most once per 10 s with how many
/// were refused since the last line. On reaching `max.connections` the listener stops
/// accepting (as Kafka's acceptor does) until a connection closes: clients then wait in the
/// kernel's backlog and connect when there is room, instead of being refused; only one
/// accepted while the pause was on its way is refused.
///
/// Why a limit by default: descriptors are shared with the segment files (half the process's
/// limit is their budget). A client opening connections until the process has no descriptor
/// left would make partitions fail to open their segments, and no other client could connect.
///
/// It also keeps the open connections themselves, so that a stopping server can close them
/// while its event loops still run (`KafkaServer.drain`).
///
/// Concurrency: a Mutex owns the counts and the connections; it is taken once when a
/// connection is accepted and once when it closes, never on the request path.
final class ConnectionLimiter: Sendable {
    let maxConnections: Int
    let maxPerAddress: Int
    private let logger: Logger

    private struct State {
        /// Open connections per client address (kept only when `maxPerAddress` limits them).
        var perAddress: [String: Int] = [:]
        var refusedSinceLog = 0
        var lastLog: ContinuousClock.Instant? = nil
        /// The listening channel, and whether it should stop accepting (at `maxConnections`).
        var listener: (any Channel)? = nil
        var full = false
        /// The connections admitted and not closed.
        var channels: [ObjectIdentifier: any Channel] = [:]
        var open: Int { channels.count }
    }

    private let state = Mutex(State())

    init(maxConnections: Int, maxPerAddress: Int, logger: Logger) {
        self.maxConnections = max(1, maxConnections)
        self.maxPerAddress = max(1, maxPerAddress)
        self.logger = logger
    }

    /// The default `max.connections` (`DescriptorPlan.connections`).
    static func defaultMaxConnections(budget: OpenFileBudget = .shared, eventLoops: Int = System.coreCount) -> Int {
        DescriptorPlan.current(budget: budget, eventLoops: eventLoops).connections
    }

    /// The listening channel, whose accepting stops while `maxConnections` are open.
    func attach(_ listener: any Channel) { state.withLock { $0.listener = listener } }

    /// Below `maxConnections` (what `AcceptPauseHandler` asks before it accepts again).
    var mayAccept: Bool { !state.withLock { $0.full } }

    /// Makes the listener accept or not, as `full` says when this runs on its loop (so a
    /// pause and a resume asked from two loops cannot land in the wrong order).
    private func syncListener(_ listener: (any Channel)?) {
        guard let listener else { return }
        listener.eventLoop.execute { [self] in
            try? listener.syncOptions?.setOption(.autoRead, value: mayAccept)
        }
    }

    enum Refusal: String {
        case maxConnections = "max.connections"
        case maxConnectionsPerIp = "max.connections.per.ip"
    }

    /// Admits `channel`, a connection from `address` (nil: unknown), or says which limit
    /// refuses it. The connection that reaches `maxConnections` stops accepting, until one
    /// closes; one accepted past it all the same (an accept already under way) is refused.
    func admit(_ channel: any Channel, from address: String?) -> Refusal? {
        let (refusal, warning, pause) = state.withLock { s -> (Refusal?, (open: Int, refused: Int)?, (any Channel)?) in
            var refusal: Refusal? = nil
            if s.open >= maxConnections {
                refusal = .maxConnections
            } else if maxPerAddress < Int.max, let address, s.perAddress[address, default: 0] >= maxPerAddress {
                refusal = .maxConnectionsPerIp
            }
            if refusal == nil {
                s.channels[ObjectIdentifier(channel)] = channel
                if maxPerAddress < Int.max, let address { s.perAddress[address, default: 0] += 1 }
            } else {
                s.refusedSinceLog += 1
            }
            var pause: (any Channel)? = nil
            if s.open >= maxConnections {
                // Every time, not only the first: the EMFILE pause may have turned accepting on.
                s.full = true
                pause = s.listener
            }
            guard refusal != nil || pause != nil else { return (nil, nil, nil) }
            let now = ContinuousClock.now
            if let last = s.lastLog, now - last < .seconds(10) { return (refusal, nil, pause) }
            s.lastLog = now
            defer { s.refusedSinceLog = 0 }
            return (refusal, (s.open, s.refusedSinceLog), pause)
        }
        syncListener(pause)
        if let warning {
            logger.warning(
                refusal == .maxConnectionsPerIp
                    ? "refusing a connection: max.connections.per.ip" : "max.connections reached: accepting waits until a connection closes",
                metadata: [
                    "max_connections": "\(maxConnections)",
                    "max_connections_per_ip": "\(maxPerAddress == Int.max ? "unlimited" : "\(maxPerAddress)")",
                    "open": "\(warning.open)", "refused_since_last_warning": "\(warning.refused)",
                ])
        }
        return refusal
    }

    /// A connection `admit` let in has closed.
    func release(_ channel: any Channel, from address: String?) {
        let resume = state.withLock { s -> (any Channel)? in
            // Once per connection: a second call for it changes nothing.
            guard s.channels.removeValue(forKey: ObjectIdentifier(channel)) != nil else { return nil }
            if maxPerAddress < Int.max, let address, let count = s.perAddress[address] {
                s.perAddress[address] = count > 1 ? count - 1 : nil
            }
            guard s.full, s.open < maxConnections else { return nil }
            s.full = false
            return s.listener
        }
        syncListener(resume)
    }

    /// Connections admitted and not yet closed.
    var open: Int { state.withLock { $0.open } }

    /// The connections admitted and not yet closed.
    var connections: [any Channel] { state.withLock { Array($0.channels.values) } }
}

/// On the listening channel: when accept fails for want of descriptors or memory (EMFILE,
/// ENFILE, ENOBUFS, ENOMEM), accepting pauses for a second, then resumes by itself; a
/// warning says so (at most once per 10 s).
///
/// Why not NIO's `AcceptBackoffHandler`: it holds back the next `read`, but when the very first
/// accept of a readable event fails, NIO still has a read pending and stays registered for
/// readability, so the listening socket is polled and accept fails again at once: a whole
/// core spent until a descriptor frees (seen with a flood of connections under
/// `ulimit -n 256`). Turning `autoRead` off unregisters the socket from the poller.
///
/// Confined to the listening channel's event loop.
public final class AcceptPauseHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = any Channel
    public typealias InboundOut = any Channel

    static let pause = TimeAmount.seconds(1)
    private let logger: Logger
    /// Whether the listener may accept for other reasons (the Kafka front: below
    /// `max.connections`); the resume after a pause asks it, so the two pauses of one
    /// listener never undo each other.
    private let mayAccept: @Sendable () -> Bool
    private var paused = false
    /// When the last warning went out: at most one per 10 s while descriptors stay short.
    private var lastWarning: NIODeadline? = nil

    public init(logger: Logger, mayAccept: @escaping @Sendable () -> Bool = { true }) {
        self.logger = logger
        self.mayAccept = mayAccept
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? IOError, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode) else {
            return context.fireErrorCaught(error)
        }
        // Off at every such failure: accepting may have been turned on meanwhile by the other
        // pause's end (`ConnectionLimiter`).
        guard let options = context.channel.syncOptions else { return }
        try? options.setOption(.autoRead, value: false)
        guard !paused else { return }
        paused = true
        let now = NIODeadline.now()
        if let last = lastWarning, now - last < .seconds(10) { return resume(context) }
        lastWarning = now
        logger.warning(
            "cannot accept connections, pausing for a second",
            metadata: ["error": "\(error)", "hint": "raise the descriptor limit (ulimit -n) or lower max.connections"])
        resume(context)
    }

    private func resume(_ context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: Self.pause) {
            let (handler, context) = bound.value
            handler.paused = false
            try? context.channel.syncOptions?.setOption(.autoRead, value: handler.mayAccept())
        }
    }
}

/// How the soft descriptor limit is shared, so that the process never runs out: running
/// out (EMFILE) is not only a refused accept, it can end the process (libdispatch's worker
/// monitor aborts when it cannot open /proc/<tid>/stat, and Swift's tasks run on
/// libdispatch). Besides the segment files' budget (`OpenFileBudget.limit(forSoftLimit:)`):
/// 64 for the process's own (listeners, the data directory, the state logs, standard
/// streams: about 25 in use; 32 under a limit of 128), 3 per event loop (epoll, eventfd, timerfd), the HTTP
/// listener's connections (128, or a sixteenth of a limit under 2,048, at least 8), the
/// sendfile descriptors fetch responses hold (`sendfile`: a sixteenth of the limit, at
/// least 16), and the Kafka connections the rest (at least 16).
public struct DescriptorPlan: Equatable, Sendable, CustomStringConvertible {
    /// The process's own and the event loops'.
    public var own: Int
    public var http: Int
    public var sendfile: Int
    public var connections: Int

    /// Whether it all fits the limit: not when the floors and the event loops' descriptors
    /// pass it (`ulimit -n 128` on a machine of 16 cores), which the server warns about.
    public var fits: Bool

    public init(soft: Int, budget: Int, eventLoops: Int) {
        // The HTTP listener's own loop counts with the Kafka ones.
        own = min(64, max(32, soft / 4)) + 3 * (eventLoops + 1)
        http = min(128, max(8, soft / 16))
        sendfile = max(16, soft / 16)
        connections = max(16, soft - budget - own - http - sendfile)
        fits = budget + own + http + sendfile + connections <= soft
    }

    /// As the warning names it: what each use takes.
    public var description: String {
        "\(own) for the process and its event loops, \(http) HTTP connections, \(sendfile) for sendfile, \(connections) Kafka connections"
    }

    /// From this process's soft limit.
    public static func current(budget: OpenFileBudget = .shared, eventLoops: Int = System.coreCount) -> DescriptorPlan {
        var limit = rlimit()
        let soft = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(min(UInt64(limit.rlim_cur), UInt64(Int32.max))) : 1024
        return DescriptorPlan(soft: soft, budget: budget.limit, eventLoops: eventLoops)
    }
}


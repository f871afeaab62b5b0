import Logging
import NIOCore
import NIOPosix
import Synchronization
import Tidemark

/// A Kafka-protocol front over an embedded `Broker`: accepts connections, frames
/// requests, and answers them through `RequestRouter`.
///
/// Lifecycle: `start()` binds and returns; `stop()` stops accepting, closes connections after
/// their in-flight responses, and shuts the event loops down. The broker is the caller's to
/// close afterwards.
public final class KafkaServer: Sendable {
    public let broker: Broker
    public let config: ServerConfig
    let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let serverChannel: any Channel
    private let router: RequestRouter
    /// The address actually bound (the port is chosen by the OS when configured as 0).
    public let boundPort: Int

    /// Fetched partitions read by the executor instead of an event loop since start (their
    /// segment was not open, or their data was not in the page cache).
    public var fetchReadsOffLoop: Int { router.readsOffLoop.load(ordering: .relaxed) }
    /// Descriptors dup'ed for sendfile and not closed yet.
    public var sendfileDescriptorsOpen: Int { router.sendfileDescriptors.load(ordering: .relaxed) }
    /// Fetched slices copied because the sendfile bound was reached.
    public var slicesCopied: Int { router.slicesCopied.load(ordering: .relaxed) }

    /// Request bytes being read or waiting to be handled now, over all connections.
    public var queuedRequestBytes: Int { budget.usedBytes }
    /// Closed connections still appending the Produce requests they had queued.
    public var closedConnectionsAppending: Int { router.closedDrains.load(ordering: .relaxed) }
    /// Large responses' bytes in memory until written, over all connections (`ResponseMemory`).
    public var responseBytesHeld: Int { router.responseMemory.heldBytes }
    /// Decoded batches the broker's share workers keep (`ShareBatchCache`: the share fetches'
    /// and the embedded `ShareConsumer`s'): how many, and their memory.
    public var shareBatchesCached: (count: Int, bytes: Int) { router.shareBatches.held }
    /// Kafka connections open now.
    public var openConnections: Int { limiter.open }
    private let budget: RequestMemoryBudget
    /// The open connections (`stop` closes them while the loops run).
    private let limiter: ConnectionLimiter
    /// The two steps of a stop, each run once (`drain`, `shutdownLoops`).
    private let phases = Mutex<(drain: Task<Void, Never>?, loops: Task<Void, Never>?)>((nil, nil))

    private init(
        broker: Broker, config: ServerConfig, logger: Logger, group: MultiThreadedEventLoopGroup, channel: any Channel,
        port: Int, router: RequestRouter, budget: RequestMemoryBudget, limiter: ConnectionLimiter
    ) {
        self.budget = budget
        self.limiter = limiter
        self.router = router
        self.broker = broker
        self.config = config
        self.logger = logger
        self.group = group
        self.serverChannel = channel
        self.boundPort = port
    }

    public static func start(broker: Broker, config: ServerConfig, logger: Logger = Logger(label: "tidemark.server")) async throws
        -> KafkaServer
    {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: config.eventLoops ?? System.coreCount)
        // The router needs the bound port (for Metadata) before connections arrive: bind
        // first, then install the child handlers through a box the initializer reads.
        let routerBox = RouterBox()
        let maxFrame = config.maxRequestBytes
        let budget = RequestMemoryBudget(limitBytes: config.queuedMaxRequestBytes)
        let frameTimeout = TimeAmount.milliseconds(config.frameTimeoutMs)
        let idleTimeout = TimeAmount.milliseconds(config.connectionsMaxIdleMs)
        let plan = DescriptorPlan.current(budget: broker.options.openFileBudget, eventLoops: config.eventLoops ?? System.coreCount)
        if !plan.fits {
            logger.warning(
                "the descriptor limit (ulimit -n) is too small for this many event loops: raise it, or set --event-loops; running out of descriptors can end the process",
                metadata: ["plan": "\(plan)"])
        }
        if let asked = config.maxConnections, asked > plan.connections {
            logger.warning(
                "max.connections leaves too few descriptors under this descriptor limit (ulimit -n): running out can end the process",
                metadata: ["max_connections": "\(asked)", "fits": "\(plan.connections)"])
        }
        let limiter = ConnectionLimiter(maxConnections: config.maxConnections ?? plan.connections, maxPerAddress: config.maxConnectionsPerIp, logger: logger)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // An accept that fails for want of descriptors (EMFILE) pauses accepting for a
            // second instead of retrying at once: a full descriptor table cost a whole core.
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    limiter.attach(channel)
                    try channel.pipeline.syncOperations.addHandler(AcceptPauseHandler(logger: logger) { limiter.mayAccept })
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let router = routerBox.router else { throw ChannelError.ioOnClosedChannel }
                    let address = channel.remoteAddress?.ipAddress
                    if let refusal = limiter.admit(channel, from: address) {
                        router.metrics.connectionsRefused[refusal]?.increment()
                        throw ChannelError.inappropriateOperationForState  // NIO closes it
                    }
                    channel.closeFuture.whenComplete { _ in limiter.release(channel, from: address) }
                    let gate = ConnectionReadGate()
                    try channel.pipeline.syncOperations.addHandler(
                        KafkaFrameReader(maxFrameBytes: maxFrame, budget: budget, frameTimeout: frameTimeout, gate: gate))
                    try channel.pipeline.syncOperations.addHandler(
                        KafkaConnectionHandler(
                            router: router, logger: logger, budget: budget, idleTimeout: idleTimeout, stallTimeout: frameTimeout,
                            gate: gate))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: config.host, port: config.port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        let port = channel.localAddress?.port ?? config.port
        let router = RequestRouter(broker: broker, config: config, logger: logger, boundPort: port, loops: group)
        routerBox.router = router
        return KafkaServer(
            broker: broker, config: config, logger: logger, group: group, channel: channel, port: port, router: router,
            budget: budget, limiter: limiter)
    }

    /// `drain`, then `shutdownLoops`: what a program that closes its broker afterwards calls.
    public func stop(graceMs: Int64 = 5000) async {
        await drain(graceMs: graceMs)
        await shutdownLoops()
    }

    /// Stops accepting; connections start no new request and close their output once the one
    /// they run is answered (what is written still goes out; requests read but not started
    /// are dropped, unanswered: clients retry them); long polls answer at once with what
    /// there is, and so do members parked in a rebalance. Waits (up to `graceMs`) until every
    /// request being handled has been answered, then closes the output of the remaining
    /// connections while the event loops still run, and waits for their clients to close
    /// (a second at most after the output closed, or the grace's end, then they are closed). (It used to wait for a moment with nothing in flight, which
    /// connected consumers never gave it: the whole `serve` stop took 5 s with three kcat
    /// consumers; 0.09 s now, with a producer too, 0.12 s with kafka-python and aiokafka clients:
    /// clients close when the broker's end comes. One that keeps its connection open after it
    /// costs a second more, one that does not read its answer up to the grace.) Runs once: a
    /// later call waits for the first.
    ///
    /// Nothing may be handed to a loop once it has shut down (NIO's "Cannot schedule tasks on
    /// an EventLoop that has already shut down", a crash in later NIO versions). So the loops
    /// stop last (`shutdownLoops`): after every request's answer has reached its loop
    /// (`RequestRouter.inFlight` counts a request until then, the hop back from a task
    /// included), and after every connection has closed on its own loop, so that what a close
    /// sets off (a closed worker's jobs offered to the polls of other connections, on other
    /// loops; request memory given back to a connection waiting for it) runs while all loops
    /// still take work. The loops' own shutdown used to close the connections, each loop its
    /// own, at once: one loop could be gone while a close on another handed it work.
    /// `tidemark serve` closes its broker between the two steps: what the close answers (a
    /// request still waiting when the grace ran out) reaches a loop that still runs.
    public func drain(graceMs: Int64 = 5000) async {
        let task = phases.withLock { phases in
            if let running = phases.drain { return running }
            let task = Task { await self.drainOnce(graceMs: graceMs) }
            phases.drain = task
            return task
        }
        await task.value
    }

    /// Shuts the event loops down, after a `drain` (made now if none was). Runs once.
    public func shutdownLoops() async {
        await drain()
        let task = phases.withLock { phases in
            if let running = phases.loops { return running }
            let task = Task { [group] in _ = try? await group.shutdownGracefully() }
            phases.loops = task
            return task
        }
        await task.value
    }

    private func drainOnce(graceMs: Int64) async {
        try? await serverChannel.close()
        router.draining.store(true, ordering: .relaxed)
        broker.wakeWaiters()
        let deadline = ContinuousClock.now + .milliseconds(graceMs)
        await waitForRequests(until: deadline)
        // Let the event loops write the last responses out.
        try? await Task.sleep(for: .milliseconds(50))
        // Each connection's output is closed first: NIO writes out what it still holds (a
        // large answer a slow reader has not taken yet, which a plain close threw away), then
        // the socket sends its end, and the client closes its side as Kafka clients do when
        // the broker's end comes. (Closing a socket whose client still sends makes the kernel
        // answer with a reset, which can throw away what the client has not read yet.) A
        // connection still open a second after its output closed, or at the closing deadline
        // (the grace's end, a second from now at the least), is closed, and its close waited
        // for a second more at most: that bound is for a machine whose load keeps a loop from
        // running, not for a normal stop. Asked again while it waits: a connection accepted as
        // the listener closed is admitted a moment later.
        let closing = max(deadline, ContinuousClock.now + .seconds(1))
        let outputClosed = OutputCloses()
        var asked = Set<ObjectIdentifier>()
        var closed = Set<ObjectIdentifier>()
        while ContinuousClock.now < closing + .seconds(1) {
            let open = limiter.connections
            if open.isEmpty { break }
            let now = ContinuousClock.now
            // Only connections still open: a closed one's identifier can be a new one's.
            let ids = Set(open.map { ObjectIdentifier($0) })
            asked.formIntersection(ids)
            closed.formIntersection(ids)
            let ended = outputClosed.times.withLock { times in
                times = times.filter { ids.contains($0.key) }
                return times
            }
            for connection in open {
                let id = ObjectIdentifier(connection)
                if asked.insert(id).inserted {
                    // Completed (or failed: the connection is closing already) once what it
                    // held is written and its end sent.
                    let done = connection.eventLoop.makePromise(of: Void.self)
                    done.futureResult.whenComplete { _ in outputClosed.times.withLock { $0[id] = ContinuousClock.now } }
                    connection.close(mode: .output, promise: done)
                } else if now >= closing || ended[id].map({ now - $0 >= .seconds(1) }) == true, closed.insert(id).inserted {
                    connection.close(promise: nil)
                }
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        await waitForRequests(until: closing)
        let (requests, connections) = (router.inFlight.load(ordering: .relaxed), limiter.open)
        if requests > 0 || connections > 0 {
            logger.warning(
                "stopping with requests still being handled after the grace period",
                metadata: ["requests": "\(requests)", "connections": "\(connections)", "grace_ms": "\(graceMs)"])
        }
    }

    /// Waits until no request is being handled, or `deadline`.
    private func waitForRequests(until deadline: ContinuousClock.Instant) async {
        var checks = 0
        while router.inFlight.load(ordering: .relaxed) > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
            // A fetch or join that was running when the first wake went out may have started
            // waiting since: wake again every 100 ms (a pass over every partition and group).
            checks += 1
            if checks % 10 == 0 { broker.wakeWaiters() }
        }
    }
}

/// When each connection's output closed during a drain: written on the connections' loops,
/// read by the drain.
private final class OutputCloses: Sendable {
    let times = Mutex([ObjectIdentifier: ContinuousClock.Instant]())
}

/// Hands the router to connection initializers once the port is known.
/// `@unchecked Sendable`: written once in `start` before the server accepts any connection
/// (the bind completes first), then only read.
final class RouterBox: @unchecked Sendable {
    var router: RequestRouter?
}

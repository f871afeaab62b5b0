#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import TidemarkStorage
import TidemarkWire

/// What to do with one request's answer.
enum RequestOutcome: Sendable {
    /// Send these chunks as one response frame (the size prefix is added here).
    case respond([RecordsData])
    /// acks=0 produce: no response at all (the next responses keep their order).
    case silent
    /// A malformed or unsupported request: close the connection.
    case close(String)
    /// The broker could not answer (an internal failure), or an acks=0 produce failed (Kafka
    /// tells such a producer by closing): close the connection; not the client's bytes.
    case failed(String)
    /// A large answer to a request that changes nothing did not fit the memory held for
    /// clients' other answers (`ResponseMemory.refuses`): close the connection; the client
    /// asks again.
    case overResponseMemory(String)

    /// Whether the connection is closed after it.
    var closes: Bool {
        switch self {
        case .close, .failed, .overResponseMemory: true
        case .respond, .silent: false
        }
    }
}

/// One client connection: takes frames (reading ahead while earlier ones run: pipelining),
/// runs them one at a time in arrival order, as Kafka does, and writes each response when
/// its request completes. Each frame's request-budget bytes are given back once handled.
///
/// Produce, Fetch, ShareFetch, ShareAcknowledge, OffsetCommit and ApiVersions run to completion on this connection's event loop
/// (`RequestRouter.handleInline`); other requests run as a task and come back to the loop.
///
/// Ownership: all of its state is confined to the channel's event loop.
final class KafkaConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = KafkaFrame
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let router: RequestRouter
    private let logger: Logger
    /// Frames read and not yet started, oldest first.
    private var queue = CircularBuffer<KafkaFrame>()
    /// A request is running (only one at a time per connection).
    private var busy = false
    /// `pump` is on the stack: a request finishing inside it does not start the next itself.
    private var pumping = false
    /// Responses written and not flushed yet (one flush for all that `pump` wrote).
    private var needsFlush = false
    private var closing = false
    /// The stopping server closed this connection (its output, or all of it): what its share
    /// sessions hold goes back uncounted (`ShareCoordinator.connectionClosed`). A worker that
    /// closes or dies on its own during the stop is counted as at any other time.
    private var closedByStop = false
    /// Requests read but not yet answered. Past `maxPending` the connection stops reading
    /// (backpressure) until answers go out. Answers the client does not read are bounded too:
    /// while the channel is not writable (NIO's high watermark, 64 KiB of unsent response
    /// bytes, file slices included), no request starts and nothing more is read, so a client
    /// that pipelines fetches and never reads cannot make the broker buffer responses (or
    /// hold a descriptor per sendfile slice) without bound.
    private var pending: Int { queue.count + (busy ? 1 : 0) }
    static let maxPending = 128
    /// Budget bytes of the frames in `queue`. Past `maxQueuedBytes` the connection stops
    /// reading ahead too: frames queued behind a long poll (up to 5 minutes) would otherwise
    /// hold their share of the broker's request budget all that time.
    private var queuedBytes = 0
    static let maxQueuedBytes = 1 << 20
    private var readAheadFull: Bool { pending >= Self.maxPending || queuedBytes >= Self.maxQueuedBytes }
    /// A read the pipeline asked for while too many requests were unanswered.
    private var heldRead = false
    private let budget: RequestMemoryBudget
    /// Closes a connection that sent nothing and awaits nothing for this long (Kafka's
    /// connections.max.idle.ms).
    private let idleTimeout: TimeAmount
    private var lastActivity = NIODeadline.now()
    private var idleCheck: RepeatedTask?
    /// The client's address as Kafka shows it ("/127.0.0.1"): group members' client host.
    private var clientHost = ""
    /// The client's address, read when the connection opened (a reset one no longer has it).
    private var peer = "?"
    /// The share sessions this connection used: closed with it.
    private let shares = ConnectionShares()

    /// A client that reads none of its answers for this long (the frame timeout, 60 s, the
    /// same patience as for a frame that does not arrive) is closed: the requests it queued
    /// behind them would otherwise hold their share of the request budget for as long as it
    /// likes. Reading slowly is progress, and resets it.
    private let stallTimeout: TimeAmount
    /// While the channel is not writable: the unsent bytes last seen, when they last went
    /// down, and the repeating check.
    private var stall: (bytes: Int, since: NIODeadline, check: RepeatedTask)?

    /// Shared with the connection's `KafkaFrameReader`: reads held, and a long request running.
    private let gate: ConnectionReadGate

    init(
        router: RequestRouter, logger: Logger, budget: RequestMemoryBudget, idleTimeout: TimeAmount, stallTimeout: TimeAmount,
        gate: ConnectionReadGate = ConnectionReadGate()
    ) {
        self.gate = gate
        self.router = router
        self.logger = logger
        self.budget = budget
        self.idleTimeout = idleTimeout
        self.stallTimeout = stallTimeout
    }

    func channelActive(context: ChannelHandlerContext) {
        router.metrics.connections.increment()
        router.metrics.connectionsActive.increment()
        // An IPv4 client of a dual-stack listener shows as itself, as in Kafka.
        peer = context.remoteAddress.map { "\($0)" } ?? "?"
        clientHost = context.remoteAddress?.ipAddress.map { "/" + ($0.hasPrefix("::ffff:") && $0.contains(".") ? String($0.dropFirst(7)) : $0) } ?? ""
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let interval = TimeAmount.nanoseconds(max(idleTimeout.nanoseconds / 4, 1_000_000))
        idleCheck = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let (handler, context) = loopBound.value
            guard handler.pending == 0, NIODeadline.now() - handler.lastActivity >= handler.idleTimeout else { return }
            // A connection with share sessions is a worker that may hold a job (up to its lock
            // duration, an hour at most) and send nothing meanwhile: closing it would give
            // its jobs back. (Only sessions it still holds count.)
            if !handler.shares.sessions.isEmpty {
                let names = handler.shares.sessions.map { (group: $0.group, member: $0.member) }
                handler.shares.keep(handler.router.broker.shares.sessions(usedLastBy: handler.shares.id, among: names))
                guard handler.shares.sessions.isEmpty else { return }
            }
            handler.closeCounted(context: context, .idle, "closing idle connection")
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        router.metrics.connectionsActive.decrement()
        idleCheck?.cancel()
        idleCheck = nil
        stall?.check.cancel()
        stall = nil
        closing = true
        keepQueuedProduces()
        drainKept(context: context)
        shares.closed()
        if !shares.sessions.isEmpty {
            router.broker.offerShareRecords(
                router.broker.shares.connectionClosed(
                    shares.id, sessions: shares.sessions.map { ($0.group, $0.member) }, brokerStopping: closedByStop))
        }
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        if readAheadFull || !context.channel.isWritable {
            heldRead = true
            gate.holdingReads = true
            return
        }
        context.read()
    }

    /// The client has read enough of its answers: start the requests waiting, read again.
    /// Not writable: watch that the client keeps reading.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stall?.check.cancel()
            stall = nil
            lastActivity = .now()
            resumeReading(context: context)
            pump(context: context)
        } else if stall == nil {
            watchStall(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    private func watchStall(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let interval = TimeAmount.nanoseconds(max(stallTimeout.nanoseconds / 4, 1_000_000))
        let check = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let (handler, context) = loopBound.value
            guard let stall = handler.stall else { return }
            let unsent = (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
            if unsent < stall.bytes {
                // Reading, if slowly: progress (for the idle check too).
                handler.stall = (unsent, .now(), stall.check)
                handler.lastActivity = .now()
            } else if NIODeadline.now() - stall.since >= handler.stallTimeout {
                handler.closeCounted(
                    context: context, .notReading, "closing a connection whose client does not read its answers",
                    metadata: ["unsent_bytes": "\(unsent)", "queued_requests": "\(handler.queue.count)"])
            }
        }
        let unsent = (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        stall = (unsent, .now(), check)
    }

    private func resumeReading(context: ChannelHandlerContext) {
        guard heldRead, pending < Self.maxPending / 2, queuedBytes < Self.maxQueuedBytes, context.channel.isWritable else { return }
        heldRead = false
        gate.holdingReads = false
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastActivity = .now()
        guard !closing else {
            budget.release(frame.reservedBytes, partial: frame.partial)
            return
        }
        queue.append(frame)
        queuedBytes += frame.reservedBytes
        pump(context: context)
    }

    /// Starts queued requests, one at a time, until one has to wait.
    private func pump(context: ChannelHandlerContext) {
        guard !pumping else { return }
        pumping = true
        defer {
            pumping = false
            if needsFlush {
                needsFlush = false
                context.flush()
            }
        }
        while !busy, !closing, context.channel.isWritable {
            if router.draining.load(ordering: .relaxed) {
                // The server is stopping: what this connection ran is answered; requests read
                // but not started are dropped, unanswered, so their clients retry them elsewhere.
                closeForStop(context: context)
                break
            }
            guard let frame = queue.popFirst() else { break }
            queuedBytes -= frame.reservedBytes
            busy = true
            start(frame, context: context)
        }
    }

    /// Requests that may wait long for others (a long poll, a rebalance): Fetch, JoinGroup,
    /// SyncGroup, ShareFetch. Large frames are not read ahead behind them.
    /// (A switch: a set's hashing showed in the job workload's profile, once per request.)
    static func mayWaitLong(_ apiKey: Int16) -> Bool {
        switch apiKey {
        case 1, 11, 14, 78: true
        default: false
        }
    }

    private func start(_ frame: KafkaFrame, context: ChannelHandlerContext) {
        if let apiKey = frame.apiKey { gate.longWaitRunning = Self.mayWaitLong(apiKey) }
        let loop = context.eventLoop
        let handledOnLoop = router.handleInline(frame.bytes, on: loop, connection: shares) { outcome in
            self.finish(outcome, reserved: frame.reservedBytes, partial: frame.partial, apiKey: frame.apiKey, context: context)
        }
        if handledOnLoop { return }
        let promise = loop.makePromise(of: RequestOutcome.self)
        let router = self.router
        if frame.apiKey.map(Self.mayWaitLong) == true, let (parsed, request) = router.decodeWaiting(frame.bytes) {
            // Decoded: the frame's bytes go back to the budget now, not after the rebalance.
            budget.release(frame.reservedBytes, partial: frame.partial)
            let host = clientHost
            router.inFlight.add(1, ordering: .relaxed)
            promise.completeWithTask { await RequestRouter.$clientHost.withValue(host) { await router.handleWaiting(parsed, request) } }
            promise.futureResult.assumeIsolated().whenSuccess { outcome in
                self.finish(outcome, reserved: 0, partial: nil, apiKey: frame.apiKey, context: context)
                router.inFlight.subtract(1, ordering: .relaxed)
            }
            return
        }
        let bytes = frame.bytes
        let host = clientHost
        // Counted until its outcome is back on the loop, past `handle`'s own count: a stopping
        // server shuts its loops down only once nothing is on its way to one.
        router.inFlight.add(1, ordering: .relaxed)
        promise.completeWithTask { await RequestRouter.$clientHost.withValue(host) { await router.handle(bytes) } }
        promise.futureResult.assumeIsolated().whenSuccess { outcome in
            self.finish(outcome, reserved: frame.reservedBytes, partial: frame.partial, apiKey: frame.apiKey, context: context)
            router.inFlight.subtract(1, ordering: .relaxed)
        }
    }

    /// A request completed (on the loop): write its answer, start the next.
    private func finish(_ outcome: RequestOutcome, reserved: Int, partial: Int?, apiKey: Int16?, context: ChannelHandlerContext) {
        budget.release(reserved, partial: partial)
        lastActivity = .now()
        busy = false
        gate.longWaitRunning = false
        guard !closing else {
            // A failed acks=0 produce closes an open connection and drops what follows it; so
            // it does after the client's close.
            if outcome.closes { releaseQueued() }
            drainKept(context: context)
            return
        }
        switch outcome {
        case .silent:
            break
        case .close(let reason):
            closeCounted(context: context, .malformed, "closing connection", metadata: ["reason": "\(reason)"])
            return
        case .failed(let reason):
            closeCounted(context: context, .failed, "closing connection", metadata: ["reason": "\(reason)"])
            return
        case .overResponseMemory(let reason):
            closeCounted(context: context, .responseMemory, "closing connection", metadata: ["reason": "\(reason)"])
            return
        case .respond(let chunks):
            let size = chunks.reduce(0) { $0 + $1.count }
            guard size <= Int(Int32.max) else {
                // Cannot be framed (fetches are clamped well below this): drop the connection.
                logger.error("response too large to frame, closing", metadata: ["bytes": "\(size)"])
                close(context: context)
                return
            }
            // The size prefix and the in-memory chunks go out in one buffer, file slices
            // (sendfile) between them.
            var copied = 0
            var buffer = context.channel.allocator.buffer(capacity: 4 + (chunks.first.map { $0.isSlice ? 0 : $0.count } ?? 0))
            buffer.writeInteger(Int32(size))
            for chunk in chunks {
                switch chunk {
                case .bytes(let bytes):
                    buffer.writeBytes(bytes)
                case .slice(let slice):
                    if buffer.readableBytes > 0 {
                        context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
                        buffer = context.channel.allocator.buffer(capacity: 256)
                    }
                    copied += writeSlice(slice, copiedBefore: copied, context: context)
                    if closing { return }  // a copy that did not fit closed the connection
                }
            }
            // Slices copied past the sendfile bound are held like the rest.
            let inMemory = chunks.reduce(4) { $0 + ($1.isSlice ? 0 : $1.count) } + copied
            if inMemory >= ResponseMemory.smallResponseBytes {
                // Counted until written: writes complete in order, so this last one's completion
                // (or failure, on close) means the whole response has left.
                let memory = router.responseMemory
                let fetch = apiKey == ApiKey.fetch.rawValue || apiKey == ApiKey.shareFetch.rawValue
                memory.hold(inMemory, fetch: fetch)
                let written = context.eventLoop.makePromise(of: Void.self)
                written.futureResult.whenComplete { _ in memory.release(inMemory, fetch: fetch) }
                context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: written)
            } else if buffer.readableBytes > 0 {
                context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
            }
            needsFlush = true
        }
        resumeReading(context: context)
        pump(context: context)
    }

    private func close(context: ChannelHandlerContext) {
        closing = true
        releaseQueued()
        context.flush()
        context.close(promise: nil)
    }

    /// The server is stopping: nothing more is started or read, and the output is closed
    /// once what was written has gone out (a plain close throws away what the socket has not
    /// taken: a large answer to a slow reader was cut). The client then closes its side, or
    /// the stop closes the connection (`KafkaServer.drain`).
    /// Every close of the channel passes here: one made while the server drains is the stop's
    /// (`closeForStop`, or `KafkaServer.drain` closing connections).
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if router.draining.load(ordering: .relaxed) { closedByStop = true }
        context.close(mode: mode, promise: promise)
    }

    private func closeForStop(context: ChannelHandlerContext) {
        // (This handler's own context.close goes past its `close` above.)
        closedByStop = true
        closing = true
        releaseQueued()
        context.flush()
        context.close(mode: .output, promise: nil)
    }

    private func releaseQueued() {
        while let frame = queue.popFirst() { budget.release(frame.reservedBytes, partial: frame.partial) }
        queuedBytes = 0
    }

    /// The client closed its connection with requests already framed when its close was read
    /// and not started: its Produce requests are still appended, in order, as Kafka appends
    /// what it received before a disconnect (an acks=0 producer closes as soon as its last
    /// request is written: kcat's final records were lost); the rest are dropped, since nobody
    /// will read their answers. Bounded: at most `maxPending` requests and `maxQueuedBytes`
    /// of them (NIO reads all a closed socket holds, past the read-ahead bound), and at most
    /// `RequestRouter.maxClosedDrains` closed connections at once; beyond that they are
    /// dropped as before.
    private func keepQueuedProduces() {
        func isProduce(_ frame: KafkaFrame) -> Bool { frame.apiKey == ApiKey.produce.rawValue }
        // Not behind a long poll or a rebalance (the kept requests would wait for it, and hold
        // one of the closed connections' places that long); counted only when there is a
        // Produce to keep.
        var admitted = !gate.longWaitRunning && queue.contains(where: isProduce)
        if admitted {
            drainCounted = true
            admitted = router.closedDrains.wrappingAdd(1, ordering: .relaxed).newValue <= RequestRouter.maxClosedDrains
        }
        var kept = CircularBuffer<KafkaFrame>()
        var keptBytes = 0
        var cut = !admitted
        while let frame = queue.popFirst() {
            guard isProduce(frame) else {
                budget.release(frame.reservedBytes, partial: frame.partial)
                continue
            }
            // The bounds of an open connection's read-ahead; past them, no later Produce is kept
            // either (a hole in a producer's records would be worse than a cut).
            if !cut, kept.count < Self.maxPending, keptBytes < Self.maxQueuedBytes {
                kept.append(frame)
                keptBytes += frame.reservedBytes
            } else {
                cut = true
                budget.release(frame.reservedBytes, partial: frame.partial)
            }
        }
        queue = kept
        queuedBytes = keptBytes
        if kept.isEmpty { endDrain() }
    }

    /// This connection counts in `RequestRouter.closedDrains` until its kept requests ran.
    private var drainCounted = false
    /// `drainKept` is on the stack (a request completing inline calls it again).
    private var drainingKept = false

    private func endDrain() {
        guard drainCounted else { return }
        drainCounted = false
        router.closedDrains.subtract(1, ordering: .relaxed)
    }

    /// After a close: starts the kept Produce requests (their answers go nowhere), one at a
    /// time as before the close, in a loop (requests completing inline must not recurse one
    /// stack frame per request). Our own closes release the queue first: nothing runs.
    private func drainKept(context: ChannelHandlerContext) {
        guard !drainingKept else { return }
        drainingKept = true
        defer { drainingKept = false }
        while !busy {
            if router.draining.load(ordering: .relaxed) { releaseQueued() }  // the server is stopping
            guard let frame = queue.popFirst() else {
                endDrain()
                return
            }
            queuedBytes -= frame.reservedBytes
            busy = true
            start(frame, context: context)
        }
    }

    /// sendfile from the segment: a descriptor of its own per write (NIO allows one user per
    /// handle), closed when the write completes. Past the server's bound on such descriptors
    /// the slice is read and written from memory instead (its first and last pages were found
    /// in the page cache as the response was made).
    /// Returns the bytes copied into memory (0 when sent by sendfile).
    /// `copiedBefore`: the bytes this response's earlier slices copied (not held yet).
    private func writeSlice(_ slice: LogSlice, copiedBefore: Int, context: ChannelHandlerContext) -> Int {
        let router = self.router
        guard router.sendfileDescriptors.wrappingAdd(1, ordering: .relaxed).newValue <= router.sendfileDescriptorLimit else {
            router.sendfileDescriptors.wrappingSubtract(1, ordering: .relaxed)
            // A copy is held like any answer: past the response memory's room the connection
            // closes instead (its client fetches again), as an answer that changes nothing
            // does. Connections that fetched 60 MB each and never read, once the sendfile
            // descriptors were all held, each held its copy: 1,300 of them, 2.7 GB.
            guard copiedBefore + slice.length <= router.responseMemory.room else {
                closeCounted(
                    context: context, .responseMemory, "closing connection",
                    metadata: [
                        "reason": "a fetched slice of \(slice.length) bytes to copy (every sendfile descriptor held) would take the answers held for clients past \(router.responseMemory.limitBytes) bytes"
                    ])
                return 0
            }
            router.slicesCopied.wrappingAdd(1, ordering: .relaxed)
            do {
                let bytes = try slice.readBytes()
                context.write(wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(bytes: bytes))), promise: nil)
                return bytes.count
            } catch {
                logger.warning("reading a fetched slice failed, closing", metadata: ["error": "\(error)"])
                close(context: context)
                return 0
            }
        }
        let fd = dup(slice.file.descriptor.rawValue)
        guard fd >= 0 else {
            router.sendfileDescriptors.wrappingSubtract(1, ordering: .relaxed)
            close(context: context)
            return 0
        }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
        let region = FileRegion(fileHandle: handle, readerIndex: Int(slice.position), endIndex: Int(slice.position) + slice.length)
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { _ in
            try? handle.close()
            router.sendfileDescriptors.wrappingSubtract(1, ordering: .relaxed)
        }
        context.write(wrapOutboundOut(.fileRegion(region)), promise: promise)
        return 0
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let reason: RequestMetrics.CloseReason =
            switch error {
            case is KafkaFrameReader.FrameTooLarge: .malformed
            case is KafkaFrameReader.FrameTimedOut: .frameTimeout
            default: .error
            }
        closeCounted(context: context, reason, "connection error, closing", metadata: ["error": "\(Self.reason(error))"])
    }

    /// A socket error as an operator reads it: the system's words and errno ("Connection reset
    /// by peer (errno 104)"), not NIO's call signature ("read(descriptor:pointer:size:): ...").
    static func reason(_ error: Error) -> String {
        guard let io = error as? IOError else { return "\(error)" }
        return "\(String(cString: strerror(io.errnoCode))) (errno \(io.errnoCode))"
    }

    /// Closes the connection (the client's doing, or a request that failed): counted by reason
    /// (`tidemark_connections_closed_total`), and said once a minute per reason and client
    /// host (`RequestRouter.connectionLog`), with how many more there were. A connection this
    /// handler is already closing is not counted again (a socket error after the close).
    private func closeCounted(
        context: ChannelHandlerContext, _ reason: RequestMetrics.CloseReason, _ message: String, metadata: Logger.Metadata = [:]
    ) {
        guard !closing else { return }
        router.metrics.connectionsClosed[reason]?.increment()
        var metadata = metadata
        metadata["peer"] = "\(peer)"
        router.connectionLog.log(.info, logger, message, key: "\(reason.rawValue) \(clientHost)", metadata: metadata)
        close(context: context)
    }
}

extension RecordsData {
    var isSlice: Bool {
        if case .slice = self { return true }
        return false
    }
}

import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The broker's HTTP listener (`tidemark serve --http-port`, default 9644): `/metrics`,
/// `/healthz`, `/readyz` and the console's pages and API, each answered by the first of
/// `routes` that knows the path.
///
/// Execution: NIO's HTTP/1 codec and pipelining handler on the server's own event loops;
/// each complete request runs its route in a Task (a scrape may read segment headers from
/// disk, which never happens on an event loop) and the answer is written back on the
/// connection's loop. One request per connection at a time (HTTP/1 pipelining is answered
/// in order by NIO's handler).
///
/// Bounds: `Limits.maxConnections` open connections (at the bound, a new connection takes the
/// place of the one waiting longest for a request, which is closed: clients holding every
/// connection with requests that never finish cannot keep a health check or a scrape out;
/// only when every connection is being answered is the new one closed at once), request
/// bodies of at most `Limits.maxBodyBytes` (413 at once, then closed), headers as NIO's
/// parser allows (80 KiB), a request complete within `Limits.requestTimeout` (30 s), idle
/// connections closed after `Limits.idleTimeout` (60 s). A streamed body (SSE) is written as
/// its producer yields, one chunk at a time; the producer bounds what it buffers, a chunk
/// not written within the idle timeout (a client that reads nothing) closes the connection,
/// and the stream stops when the connection closes.
public final class HTTPServer: Sendable {
    public struct Limits: Sendable {
        public var maxConnections = 128
        public var maxBodyBytes = 64 * 1024
        /// A connection with no request (or an unfinished one) for this long is closed.
        public var idleTimeout: TimeAmount = .seconds(60)
        /// A request whose head and body do not arrive within this is answered by closing
        /// (a slow drip of bytes cannot hold one of the connections forever).
        public var requestTimeout: TimeAmount = .seconds(30)
        /// At `maxConnections` with none waiting for a request, a connection whose answer has
        /// been going out for this long (its client reads it slowly, or not at all) is closed
        /// to make room: health checks and scrapes get in, whatever other clients do.
        public var slowAnswer: TimeAmount = .seconds(5)
        public init() {}
    }

    /// The port actually bound (the OS picks it when asked for 0).
    public let boundPort: Int
    /// What answers, asked in order (routes may be added once the broker is open).
    let routes: RouteTable
    private let channel: any Channel
    private let group: MultiThreadedEventLoopGroup
    private let connections: ServerConnections

    private init(
        channel: any Channel, group: MultiThreadedEventLoopGroup, port: Int, connections: ServerConnections, routes: RouteTable
    ) {
        self.routes = routes
        self.channel = channel
        self.group = group
        self.boundPort = port
        self.connections = connections
    }

    /// Binds `host:port` and serves `routes` (in order) until `stop()`. `listenerHandler`
    /// makes a handler for the listening channel (the node passes the Kafka front's
    /// `AcceptPauseHandler`, so that accepting pauses when descriptors run out).
    public static func start(
        host: String, port: Int, routes: [any HTTPRoutes], limits: Limits = Limits(), threads: Int = 1,
        logger: Logger = Logger(label: "tidemark.http"), listenerHandler: (@Sendable () -> any ChannelHandler)? = nil
    ) async throws -> HTTPServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let open = ServerConnections()
        let routes = RouteTable(routes)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let listenerHandler { try channel.pipeline.syncOperations.addHandler(listenerHandler()) }
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            // A client that shuts down its sending side after its request (`nc -N`, some probe
            // scripts) still gets its answer; the connection closes after it
            // (`HTTPConnectionHandler.closeIfFinished`).
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard open.admit(channel, limit: limits.maxConnections, slowAnswer: limits.slowAnswer) else {
                        throw ChannelError.inappropriateOperationForState
                    }
                    channel.closeFuture.whenComplete { _ in open.remove(channel) }
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: limits.idleTimeout))
                    let requestStart = RequestStartDeadline(timeout: limits.requestTimeout)
                    try channel.pipeline.syncOperations.addHandler(requestStart)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        HTTPConnectionHandler(
                            routes: routes, maxBodyBytes: limits.maxBodyBytes, requestTimeout: limits.requestTimeout,
                            stallTimeout: limits.idleTimeout, requestStart: requestStart,
                            connections: open, logger: logger))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        return HTTPServer(channel: channel, group: group, port: channel.localAddress?.port ?? port, connections: open, routes: routes)
    }

    /// Adds routes, asked after those already there.
    public func add(_ more: any HTTPRoutes) { routes.add(more) }

    /// Open connections now.
    public var openConnections: Int { connections.count }

    /// Stops accepting and closes every connection (streams included) while the event loops
    /// still run, waits (up to 10 s) for the routes and streams running to finish, then stops
    /// the loops: nothing is handed to a loop that is gone. (Event streams open at a stop used
    /// to write their end onto shut-down loops: NIO's "Cannot schedule tasks" error.) Closed,
    /// they end at once; the bound is for a task the machine's load keeps from running (2 s
    /// could pass before a cancelled stream ran again), not for a normal stop.
    public func stop() async {
        try? await channel.close()
        for connection in connections.all { try? await connection.close() }
        let deadline = ContinuousClock.now + .seconds(10)
        while connections.working.load(ordering: .relaxed) > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        try? await group.shutdownGracefully()
    }
}

/// The routes, in order. Concurrency: a Mutex owns the list; requests take a snapshot.
final class RouteTable: Sendable {
    private let list: Mutex<[any HTTPRoutes]>
    init(_ routes: [any HTTPRoutes]) { list = Mutex(routes) }
    func add(_ route: any HTTPRoutes) { list.withLock { $0.append(route) } }
    var snapshot: [any HTTPRoutes] { list.withLock { $0 } }
}

/// The server's open connections (bounded) and the routes and streams running for them, for
/// its bound and its stop. Concurrency: a Mutex owns the connection table; `working` is atomic.
final class ServerConnections: Sendable {
    struct Entry {
        var channel: any Channel
        /// Admission order (the lowest waited longest).
        var since: UInt64
        /// Waiting for (or reading) a request since `since`, not being answered.
        var waiting = true
        /// Since when (monotonic ns) answers have been going out without all of them having
        /// left: nil when none is unsent.
        var unsentSince: UInt64?
    }
    private let open = Mutex<(table: [ObjectIdentifier: Entry], next: UInt64)>(([:], 0))
    /// Route and stream tasks running now.
    let working = Atomic<Int>(0)

    var count: Int { open.withLock { $0.table.count } }
    var all: [any Channel] { open.withLock { $0.table.values.map(\.channel) } }

    /// Records a new connection. At `limit`, the connection waiting longest for a request
    /// is closed to make room; when none waits, the one whose answers have been going out
    /// longest, if that is over `slowAnswer` (a client reading nothing kept its connection for
    /// as long as it sent a request a minute: with the unread answers under NIO's 64 KiB
    /// watermark, the channel stayed writable and no stall was seen). Otherwise (every
    /// connection is running a route, or answering quickly) the new one is refused. The
    /// table never holds more than `limit`.
    func admit(_ channel: any Channel, limit: Int, slowAnswer: TimeAmount = .seconds(5)) -> Bool {
        let now = NIODeadline.now().uptimeNanoseconds
        let (admitted, evicted) = open.withLock { s -> (Bool, (any Channel)?) in
            var evicted: (any Channel)?
            if s.table.count >= limit {
                let slow = { (entry: Entry) -> UInt64? in
                    guard let since = entry.unsentSince, now &- since >= UInt64(max(slowAnswer.nanoseconds, 0)) else { return nil }
                    return since
                }
                let victim =
                    s.table.filter({ $0.value.waiting }).min(by: { $0.value.since < $1.value.since })?.key
                    ?? s.table.compactMap({ entry in slow(entry.value).map { (entry.key, $0) } }).min(by: { $0.1 < $1.1 })?.0
                guard let victim else { return (false, nil) }
                evicted = s.table.removeValue(forKey: victim)?.channel
            }
            s.table[ObjectIdentifier(channel)] = Entry(channel: channel, since: s.next)
            s.next += 1
            return (true, evicted)
        }
        evicted?.close(promise: nil)
        return admitted
    }

    /// A request of `channel` is being answered (a route runs, an answer or stream is being
    /// written), or it waits for the next one again (then it counts as waiting from now).
    func answering(_ channel: any Channel, _ answering: Bool) {
        open.withLock { s in
            guard s.table[ObjectIdentifier(channel)] != nil else { return }
            s.table[ObjectIdentifier(channel)]!.waiting = !answering
            if !answering {
                s.table[ObjectIdentifier(channel)]!.since = s.next
                s.next += 1
            }
        }
    }

    /// Answers of `channel` are going out (since now), or all of them have left.
    func unsent(_ channel: any Channel, _ unsent: Bool) {
        let now = NIODeadline.now().uptimeNanoseconds
        open.withLock { s in
            guard s.table[ObjectIdentifier(channel)] != nil else { return }
            s.table[ObjectIdentifier(channel)]!.unsentSince = unsent ? now : nil
        }
    }

    func remove(_ channel: any Channel) {
        _ = open.withLock { $0.table.removeValue(forKey: ObjectIdentifier(channel)) }
    }
}

/// One connection: assembles a request, runs the routes in a Task, writes the answer.
/// Owned by its channel's event loop; the Task hands results back through `NIOLoopBound`.
final class HTTPConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let routes: RouteTable
    let maxBodyBytes: Int
    let logger: Logger
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false
    /// The running route or stream, cancelled when the connection goes.
    private var task: Task<Void, Never>?
    /// A route is running or a stream is being written: idleness is not the client's, and
    /// the connection is not one to close to make room for another (`ServerConnections.admit`).
    private var busy = false {
        didSet { reportAnswering() }
    }
    /// Answers written but not yet flushed to the client (a large scrape to a slow reader):
    /// the connection is being answered until they are.
    private var writing = 0 {
        didSet {
            reportAnswering()
            if (oldValue == 0) != (writing == 0), let channel { connections.unsent(channel, writing > 0) }
        }
    }
    private var reportedAnswering = false
    private var channel: (any Channel)?

    private func reportAnswering() {
        let answering = busy || writing > 0
        guard answering != reportedAnswering, let channel else { return }
        reportedAnswering = answering
        connections.answering(channel, answering)
    }

    func handlerAdded(context: ChannelHandlerContext) { channel = context.channel }
    /// An answer held while the client is not reading (the channel is not writable: 64 KiB
    /// unsent), written when it can be. NIO's pipelining handler gives this handler the next
    /// request only once an answer is written, so a client that pipelines requests and never
    /// reads holds at most this one answer beyond NIO's buffer (it used to get every answer
    /// buffered); the idle timeout then closes it (holding is not `busy`).
    private var held: (response: HTTPResponse, head: HTTPRequestHead)?

    let requestTimeout: TimeAmount
    /// Closes the connection if the request being read does not complete in time.
    private var requestDeadline: Scheduled<Void>?
    /// The deadline of a request head still arriving (it runs from the request's first byte).
    let requestStart: RequestStartDeadline

    let connections: ServerConnections

    /// A connection whose channel stays not writable this long (its client reads nothing:
    /// an event stream nobody reads, an answer held) is closed; the stream's task ends with it.
    let stallTimeout: TimeAmount
    private var stallClose: Scheduled<Void>?

    init(
        routes: RouteTable, maxBodyBytes: Int, requestTimeout: TimeAmount, stallTimeout: TimeAmount,
        requestStart: RequestStartDeadline, connections: ServerConnections, logger: Logger
    ) {
        self.requestStart = requestStart
        self.stallTimeout = stallTimeout
        self.connections = connections
        self.requestTimeout = requestTimeout
        self.routes = routes
        self.maxBodyBytes = maxBodyBytes
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body = []
            tooLarge = false
            requestDeadline?.cancel()
            // The whole request keeps the deadline its first byte started.
            requestDeadline = requestStart.handOver()
            if requestDeadline == nil {
                let channel = context.channel
                requestDeadline = context.eventLoop.scheduleTask(in: requestTimeout) { channel.close(promise: nil) }
            }
        case .body(var buffer):
            guard !tooLarge else { return }
            if body.count + buffer.readableBytes > maxBodyBytes, let requestHead = head {
                // Answer at once and close: waiting for the rest of an oversized body would
                // let a client hold the connection (and us read) for as long as it likes.
                tooLarge = true
                body = []
                var refusal = HTTPResponseHead(version: requestHead.version, status: .payloadTooLarge)
                let message = Array("{\"error\":\"request body over \(maxBodyBytes) bytes\"}\n".utf8)
                refusal.headers = ["Content-Type": "application/json", "Content-Length": "\(message.count)", "Connection": "close"]
                context.write(wrapOutboundOut(.head(refusal)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: message)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in
                    channel.close(promise: nil)
                }
            } else if let bytes = buffer.readBytes(length: buffer.readableBytes) {
                body += bytes
            }
        case .end:
            requestDeadline?.cancel()
            requestDeadline = nil
            guard let requestHead = head else { return }
            head = nil
            if tooLarge { return }  // answered (413) and closing
            let peer = context.channel.remoteAddress?.description ?? ""
            let request = HTTPRequest(
                method: requestHead.method, uri: requestHead.uri, headers: requestHead.headers, body: body, peer: peer)
            body = []
            let routes = self.routes.snapshot
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let loop = context.eventLoop
            busy = true
            let connections = self.connections
            connections.working.add(1, ordering: .relaxed)
            task = Task {
                var answer: HTTPResponse? = nil
                for route in routes {
                    answer = await route.respond(to: request)
                    if answer != nil { break }
                }
                let allowed = answer == nil ? routes.flatMap { $0.methods(for: request) } : []
                let response =
                    answer ?? (allowed.isEmpty
                        ? .error(.notFound, "no such page: \(request.path)")
                        : .methodNotAllowed(request.method, request.path, allowed: allowed))
                loop.execute {
                    let (handler, context) = bound.value
                    if context.channel.isWritable {
                        handler.write(response, head: requestHead, context: context)
                    } else {
                        handler.held = (response, requestHead)
                        handler.busy = false
                    }
                    // Counted until here: a stream it starts counts itself.
                    connections.working.subtract(1, ordering: .relaxed)
                }
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stallClose?.cancel()
            stallClose = nil
            if let (response, head) = held {
                held = nil
                busy = true
                write(response, head: head, context: context)
            }
        } else if stallClose == nil {
            let channel = context.channel
            stallClose = context.eventLoop.scheduleTask(in: stallTimeout) { channel.close(promise: nil) }
        }
        context.fireChannelWritabilityChanged()
    }

    /// A malformed request (NIO's error handler has answered 400) or a broken connection:
    /// close it.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// The client shut its sending side: nothing more comes, so the connection closes once its
    /// answer is out. A keep-alive client that went away (curl, a scraper between scrapes) had
    /// its connection kept half-closed (CLOSE-WAIT) until the idle timeout, a descriptor per
    /// request for 60 s, up to the connection limit.
    private var inputClosed = false

    /// Closes the connection if its input has ended and nothing is being answered.
    private func closeIfFinished(_ channel: any Channel) {
        if inputClosed && !busy && writing == 0 && held == nil { channel.close(promise: nil) }
    }

    /// Idle too long (no request while one is not running): close. Input ended: close once
    /// answered.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent, !busy {
            context.close(promise: nil)
        } else if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            closeIfFinished(context.channel)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { channel = nil }

    func channelInactive(context: ChannelHandlerContext) {
        held = nil
        stallClose?.cancel()
        stallClose = nil
        requestDeadline?.cancel()
        requestDeadline = nil
        task?.cancel()
        task = nil
        context.fireChannelInactive()
    }

    /// Writes `response` (on the loop). A stream is pumped by a Task, one chunk at a time.
    private func write(_ response: HTTPResponse, head requestHead: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = response.headers
        let keepAlive = requestHead.isKeepAlive
        switch response.body {
        case .bytes, .shared:
            let buffer = response.body.whole(context.channel.allocator) ?? ByteBuffer()
            writing += 1  // first: the connection stays one being answered until this is out
            busy = false
            task = nil
            // Answered: bytes from here on start the next request's deadline (not before: a
            // request pipelined behind a slow answer is not the client's delay).
            requestStart.requestEnded()
            headers.replaceOrAdd(name: "Content-Length", value: "\(buffer.readableBytes)")
            if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: requestHead.version, status: response.status, headers: headers))), promise: nil)
            if buffer.readableBytes > 0 && requestHead.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            // An answer not out within the stall timeout (plus a second per 64 KiB) closes the
            // connection: its client reads nothing. As for a stream's chunks, the channel's
            // writability does not tell: answers unread below NIO's 64 KiB watermark leave it
            // writable, and a client sending a request a minute held its connection for ever.
            let channel = context.channel
            let stalled = context.eventLoop.scheduleTask(in: stallTimeout + .seconds(Int64(buffer.readableBytes >> 16))) {
                channel.close(promise: nil)
            }
            done.whenComplete { _ in
                stalled.cancel()
                bound.value.writing -= 1
                if !keepAlive { channel.close(promise: nil) } else { bound.value.closeIfFinished(channel) }
            }
        case .stream(let chunks):
            headers.replaceOrAdd(name: "Connection", value: "close")
            headers.remove(name: "Content-Length")
            context.writeAndFlush(
                wrapOutboundOut(.head(HTTPResponseHead(version: requestHead.version, status: response.status, headers: headers))),
                promise: nil)
            let channel = context.channel
            let connections = self.connections
            let stallTimeout = self.stallTimeout
            connections.working.add(1, ordering: .relaxed)
            task = Task {
                defer { connections.working.subtract(1, ordering: .relaxed) }
                for await chunk in chunks {
                    // Cancelled: the connection closed (the server may be stopping, its
                    // loops going away): nothing more is written.
                    guard !Task.isCancelled else { return }
                    // Waits for each chunk to be written: a slow reader slows the producer
                    // (whose own buffer is bounded), nothing piles up here. A chunk not
                    // written within the stall timeout closes the connection: its client
                    // reads nothing. (Writability alone does not tell: a chunk's unsent rest
                    // below NIO's low watermark leaves the channel writable, and the stream
                    // was held open for ever.)
                    let buffer = channel.allocator.buffer(bytes: chunk)
                    let written = channel.eventLoop.makePromise(of: Void.self)
                    channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: written)
                    let stalled = channel.eventLoop.scheduleTask(in: stallTimeout) { channel.close(promise: nil) }
                    written.futureResult.whenComplete { _ in stalled.cancel() }
                    do {
                        try await written.futureResult.get()
                    } catch {
                        return
                    }
                }
                guard !Task.isCancelled else { return }
                try? await channel.writeAndFlush(HTTPServerResponsePart.end(nil))
                try? await channel.close()
            }
        }
    }
}

/// The deadline of a request from its first byte: NIO's HTTP parser hands a request on only
/// once its whole head is in, so a client sending its request line and headers a byte at a
/// time (each byte resetting the idle timeout) could hold a connection for ever; 128 such
/// clients took every connection, and /metrics, /healthz and /readyz with them. Before the
/// HTTP decoder: the first byte after a request was answered (or of the connection) starts
/// the deadline; the request's `.head` takes it over (`handOver`) and its `.end` ends it.
///
/// Confined to its channel's event loop.
final class RequestStartDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let timeout: TimeAmount
    private var deadline: Scheduled<Void>?
    /// A request's head has been handed on and its end not yet seen: its bytes start nothing.
    private var inRequest = false

    init(timeout: TimeAmount) { self.timeout = timeout }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if deadline == nil && !inRequest {
            let channel = context.channel
            deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        }
        context.fireChannelRead(data)
    }

    /// The request's head arrived: its deadline goes to the request handler.
    func handOver() -> Scheduled<Void>? {
        inRequest = true
        defer { deadline = nil }
        return deadline
    }

    /// The request has been answered: the next byte starts the next request's deadline.
    func requestEnded() { inRequest = false }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }
}

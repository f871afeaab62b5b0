#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import TidemarkWire

/// What to do with one request's answer.
enum RequestOutcome: Sendable {
    /// Send these chunks as one response frame (the size prefix is added here).
    case respond([RecordsData])
    /// acks=0 produce: no response at all (the next responses keep their order).
    case silent
    /// A malformed or unsupported request: close the connection.
    case close(String)
}

/// One client connection: takes frames (reading ahead while earlier ones run: pipelining),
/// runs them on the router one at a time in arrival order, and writes the responses in
/// that order. Each frame's request-budget bytes are given back once it has been handled.
///
/// Ownership: all of its state is confined to the channel's event loop; the router's async
/// work comes back to it through a promise completed on that loop.
final class KafkaConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = KafkaFrame
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let router: RequestRouter
    private let logger: Logger
    private var nextSequence = 0
    private var nextToWrite = 0
    private var finished: [Int: RequestOutcome] = [:]
    private var closing = false
    /// Requests read but not yet answered. Past `maxPending` the connection stops reading
    /// (backpressure) until answers go out, so a client that pipelines without reading its
    /// responses cannot make the broker buffer without bound.
    private var pending: Int { nextSequence - nextToWrite }
    static let maxPending = 128
    /// A read the pipeline asked for while too many requests were unanswered.
    private var heldRead = false
    /// The newest request's work; the next one waits for it.
    private var lastRequest: Task<RequestOutcome, Never>?
    private let budget: RequestMemoryBudget
    /// Closes a connection that sent nothing and awaits nothing for this long (Kafka's
    /// connections.max.idle.ms).
    private let idleTimeout: TimeAmount
    private var lastActivity = NIODeadline.now()
    private var idleCheck: RepeatedTask?

    init(router: RequestRouter, logger: Logger, budget: RequestMemoryBudget, idleTimeout: TimeAmount) {
        self.router = router
        self.logger = logger
        self.budget = budget
        self.idleTimeout = idleTimeout
    }

    func channelActive(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let interval = TimeAmount.nanoseconds(max(idleTimeout.nanoseconds / 4, 1_000_000))
        idleCheck = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let (handler, context) = loopBound.value
            guard handler.pending == 0, NIODeadline.now() - handler.lastActivity >= handler.idleTimeout else { return }
            handler.logger.info("closing idle connection", metadata: ["peer": "\(context.remoteAddress.map { "\($0)" } ?? "?")"])
            handler.closing = true
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        if pending >= Self.maxPending {
            heldRead = true
            return
        }
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastActivity = .now()
        guard !closing else {
            budget.release(frame.reservedBytes)
            return
        }
        let bytes = frame.bytes
        let sequence = nextSequence
        nextSequence += 1
        // Requests of one connection run one after another, as Kafka runs them: a client
        // that pipelines produce requests relies on them being appended in order.
        let previous = lastRequest
        let request = Task { [router] in
            _ = await previous?.value
            return await router.handle(bytes)
        }
        lastRequest = request
        let promise = context.eventLoop.makePromise(of: RequestOutcome.self)
        promise.completeWithTask { await request.value }
        let budget = self.budget
        let reserved = frame.reservedBytes
        promise.futureResult.assumeIsolated().whenSuccess { outcome in
            budget.release(reserved)
            self.lastActivity = .now()
            guard !self.closing else { return }
            self.finished[sequence] = outcome
            self.writeReady(context: context)
        }
    }

    /// Writes every finished response whose turn has come.
    private func writeReady(context: ChannelHandlerContext) {
        var wrote = false
        while let outcome = finished.removeValue(forKey: nextToWrite) {
            nextToWrite += 1
            switch outcome {
            case .silent:
                continue
            case .close(let reason):
                logger.info("closing connection", metadata: ["peer": "\(context.remoteAddress.map { "\($0)" } ?? "?")", "reason": "\(reason)"])
                closing = true
                finished.removeAll()
                context.flush()
                context.close(promise: nil)
                return
            case .respond(let chunks):
                let size = chunks.reduce(0) { $0 + $1.count }
                guard size <= Int(Int32.max) else {
                    // Cannot be framed (fetches are clamped well below this): drop the connection.
                    logger.error("response too large to frame, closing", metadata: ["bytes": "\(size)"])
                    closing = true
                    finished.removeAll()
                    context.close(promise: nil)
                    return
                }
                var prefix = context.channel.allocator.buffer(capacity: 4)
                prefix.writeInteger(Int32(size))
                context.write(wrapOutboundOut(.byteBuffer(prefix)), promise: nil)
                for chunk in chunks { write(chunk, context: context) }
                wrote = true
            }
        }
        if wrote { context.flush() }
        if heldRead && pending < Self.maxPending / 2 {
            heldRead = false
            context.read()
        }
    }

    private func write(_ chunk: RecordsData, context: ChannelHandlerContext) {
        switch chunk {
        case .bytes(let bytes):
            guard !bytes.isEmpty else { return }
            context.write(wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(bytes: bytes))), promise: nil)
        case .slice(let slice):
            // sendfile from the segment: a descriptor of its own per write (NIO allows one user
            // per handle), closed when the write completes.
            let fd = dup(slice.file.descriptor.rawValue)
            guard fd >= 0 else {
                context.close(promise: nil)
                return
            }
            let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
            let region = FileRegion(
                fileHandle: handle, readerIndex: Int(slice.position), endIndex: Int(slice.position) + slice.length)
            let promise = context.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenComplete { _ in try? handle.close() }
            context.write(wrapOutboundOut(.fileRegion(region)), promise: promise)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.info(
            "connection error, closing",
            metadata: ["peer": "\(context.remoteAddress.map { "\($0)" } ?? "?")", "error": "\(error)"])
        closing = true
        context.close(promise: nil)
    }
}

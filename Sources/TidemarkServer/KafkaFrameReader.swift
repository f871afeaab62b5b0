import NIOCore

/// What a connection's frame reader and request handler share (both confined to the
/// channel's event loop): whether the handler holds reads (a frame that stops arriving then
/// is not the client's doing: its timer does not run out), and whether the running request
/// may wait long (a long poll, a rebalance; `KafkaConnectionHandler`): a frame larger than
/// the budget's small frames is not read ahead behind it (it would hold its share of the
/// request budget for minutes), but waits, unreserved, until the request is done.
final class ConnectionReadGate {
    var holdingReads = false
    var longWaitRunning = false {
        didSet {
            guard !longWaitRunning, let release = onRelease else { return }
            onRelease = nil
            release()
        }
    }
    /// Set by the reader while a frame waits for the long request to finish.
    var onRelease: (() -> Void)?
}

/// One request frame and the budget bytes reserved for it (given back once it is handled).
///
/// 24 bytes, so that NIO carries it in an `NIOAny` without boxing it on the heap (an
/// existential's inline buffer is three words): `partial` is kept as a plain Int, 0 for none.
struct KafkaFrame {
    var bytes: [UInt8]
    var reservedBytes: Int
    private var partialNumber: Int

    init(bytes: [UInt8], reservedBytes: Int, partial: Int? = nil) {
        self.bytes = bytes
        self.reservedBytes = reservedBytes
        // The budget numbers partial frames from 1.
        precondition(partial.map { $0 > 0 } ?? true, "partial frame numbers start at 1")
        self.partialNumber = partial ?? 0
    }

    /// The frame's number in the budget when it was reserved in steps: its privilege (the
    /// oldest such frame always gets its steps) lasts until its bytes are given back, so the
    /// next frame past the limit waits for this one's bytes, not just for its arrival.
    var partial: Int? { partialNumber == 0 ? nil : partialNumber }

    /// The request's API key (its first two bytes), nil for a frame too short to have one.
    var apiKey: Int16? { bytes.count >= 2 ? Int16(bytes[0]) << 8 | Int16(bytes[1]) : nil }
}

/// Splits the byte stream into Kafka frames (a big-endian int32 size, then that many bytes)
/// under the broker's request memory budget.
///
/// - A declared size above `maxFrameBytes` (or below zero) closes the connection before
///   anything is buffered for the frame.
/// - A frame's bytes are reserved in `budget` as they arrive: a step covers what has arrived
///   (in 4 KiB units) or doubles what the frame holds, whichever is more, up to its size. A
///   frame that arrives in one read (most) is one reservation; a size prefix alone (a client
///   declaring 100 MiB and sending nothing) holds nothing. If a step does not fit, the
///   connection stops reading (reads are held here) until the budget grants it; bytes
///   already read past the reservation (one read's worth at most) wait in `buffer`.
/// - A frame that does not complete within `frameTimeout` closes the connection (a header
///   followed by a byte a second no longer holds a connection and its reservation forever).
///   The time counts only while the client is to blame: not while a step waits for the
///   budget, a large frame waits behind a long request, or the handler holds reads.
///
/// Ownership: confined to its channel's event loop.
final class KafkaFrameReader: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = KafkaFrame
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// A size prefix past the limit, or negative. Its four bytes often say what the client
    /// speaks instead of Kafka (a TLS handshake, an HTTP request), which is named.
    struct FrameTooLarge: Error, CustomStringConvertible {
        var size: Int32
        var limit: Int
        var description: String {
            let bytes = withUnsafeBytes(of: size.bigEndian) { Array($0) }
            if bytes[0] == 0x16 && bytes[1] == 0x03 { return "a TLS handshake on the plaintext Kafka listener (size prefix \(size))" }
            let text = String(decoding: bytes, as: UTF8.self)
            if ["GET ", "POST", "PUT ", "HEAD", "DELE", "OPTI", "PATC", "PRI "].contains(text) {
                return "an HTTP request on the Kafka listener (it begins '\(text.trimmingCharacters(in: .whitespaces))')"
            }
            if size < 0 { return "a negative frame size (\(size))" }
            return "frame of \(size) bytes exceeds the limit of \(limit)"
        }
    }

    struct FrameTimedOut: Error, CustomStringConvertible {
        var size: Int
        var received: Int
        var description: String { "frame of \(size) bytes incomplete after the timeout (\(received) bytes received)" }
    }

    private let maxFrameBytes: Int
    private let budget: RequestMemoryBudget
    private let frameTimeout: TimeAmount
    /// Bytes not yet part of a reserved frame: a size prefix, or what arrived while the frame's
    /// reservation waits, or the start of the next frame.
    private var buffer: ByteBuffer?
    /// The reserved frame being filled: every received byte is copied into it, and the array
    /// is handed on as the frame (no copy out of a buffer). Allocated ahead of the reservation
    /// (`capacityAheadOfReservation`), so a frame reserved in steps is allocated once or twice,
    /// not at each step.
    private var frameBytes: [UInt8] = []
    /// How many times `frameBytes` was allocated or grown for the frames read so far, and its
    /// capacity now (for tests).
    private(set) var frameAllocations = 0
    var frameCapacity: Int { frameBytes.capacity }

    /// How far ahead of its reservation a frame's array is allocated: up to its size, at most
    /// this many times the bytes reserved for it. Growing the array copies what has arrived and
    /// gives the next bytes fresh pages; a 1 MiB frame arriving in 64 KiB reads was allocated at
    /// each doubling of its reservation (5-6 times, about 1.9 MiB copied and faulted in per MiB;
    /// a third of the broker's CPU for 1 MiB produces). Capacity not yet written costs address
    /// space, not memory: pages are touched only as bytes arrive, which stay within the
    /// reservation. The bound keeps even the address space in proportion: a client declaring
    /// 100 MiB and sending a few bytes gets 128 KiB, not 100 MiB.
    static let capacityAheadOfReservation = 32
    /// The frame being read: its size, the bytes of it reserved so far, and the reservation
    /// waiting in the budget (its ticket and size), if any.
    private var frameSize: Int?
    private var reservedBytes = 0
    private var ticket: Int?
    private var requested = 0
    /// The frame's number in the budget while it holds part of its reservation.
    private var partial: Int?
    /// The frame waits for the running long request (`gate`) before it reserves anything.
    private var gateHeld = false
    private let gate: ConnectionReadGate
    /// When the frame being read must be complete, whatever waits (see `startTimer`).
    private var frameDeadline: NIODeadline?
    /// A read the pipeline asked for while the budget was exhausted.
    private var heldRead = false
    private var timer: Scheduled<Void>?
    private var closed = false

    init(maxFrameBytes: Int, budget: RequestMemoryBudget, frameTimeout: TimeAmount, gate: ConnectionReadGate = ConnectionReadGate()) {
        self.maxFrameBytes = maxFrameBytes
        self.budget = budget
        self.frameTimeout = frameTimeout
        self.gate = gate
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer == nil, ticket == nil, !gateHeld, frameSize != nil {
            // The common case for a large frame: straight from the read into the frame.
            fill(from: &incoming)
            if incoming.readableBytes > 0 { buffer = incoming }
        } else if buffer == nil {
            buffer = incoming
        } else {
            buffer!.writeBuffer(&incoming)
        }
        process(context: context)
    }

    /// Moves as many of `source`'s bytes as the frame's reservation still takes into it.
    private func fill(from source: inout ByteBuffer) {
        let take = min(reservedBytes - frameBytes.count, source.readableBytes)
        guard take > 0 else { return }
        if frameBytes.capacity < reservedBytes, let size = frameSize {
            frameBytes.reserveCapacity(min(size, reservedBytes * Self.capacityAheadOfReservation))
            frameAllocations += 1
        }
        source.withUnsafeReadableBytes { raw in
            frameBytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[..<take]))
        }
        source.moveReaderIndex(forwardBy: take)
    }

    private var receivedBytes: Int { frameBytes.count + (buffer?.readableBytes ?? 0) }

    private func process(context: ChannelHandlerContext) {
        while !closed {
            if frameSize == nil {
                guard var buffer = self.buffer else { return }
                guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return }
                guard size >= 0 && Int(size) <= maxFrameBytes else {
                    fail(context: context, FrameTooLarge(size: size, limit: maxFrameBytes))
                    return
                }
                buffer.moveReaderIndex(forwardBy: 4)
                self.buffer = buffer
                frameSize = Int(size)
                reservedBytes = 0
                if Int(size) > budget.smallFrameBytes && gate.longWaitRunning {
                    holdForGate(context: context)
                    return
                }
                startTimer(context: context)
            }
            guard ticket == nil, !gateHeld, let size = frameSize else { return }
            if var pending = buffer {
                fill(from: &pending)
                buffer = pending.readableBytes > 0 ? pending : nil
            }
            if frameBytes.count < size {
                // More has arrived than is reserved: the next step first (reads are held
                // while it waits for the grant).
                guard let arrived = buffer?.readableBytes, frameBytes.count == reservedBytes,
                    reserveStep(arrived: arrived, context: context)
                else { return }
                continue
            }
            let bytes = frameBytes
            let privileged = partial
            frameBytes = []
            frameSize = nil
            reservedBytes = 0
            partial = nil
            frameDeadline = nil
            timer?.cancel()
            timer = nil
            context.fireChannelRead(wrapInboundOut(KafkaFrame(bytes: bytes, reservedBytes: size, partial: privileged)))
        }
    }

    /// Reserves the frame's next step, for `arrived` bytes read past its reservation: true when
    /// reserved now; false when queued in the budget (`granted` continues).
    private func reserveStep(arrived: Int, context: ChannelHandlerContext) -> Bool {
        guard let size = frameSize else { return false }
        let step = min(size - reservedBytes, max((arrived + 4095) & ~4095, reservedBytes))
        guard step > 0 else { return true }
        if budget.tryReserve(step, ofFrame: size, partial: partial) {
            took(step, of: size)
            return true
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        requested = step
        ticket = budget.reserve(step, ofFrame: size, partial: partial) {
            loopBound.eventLoop.execute {
                let (reader, context) = loopBound.value
                reader.granted(context: context)
            }
        }
        guard ticket != nil else {
            took(step, of: size)
            return true
        }
        // Waiting for the budget is the broker's time, not the client's: only the frame's
        // overall deadline runs meanwhile.
        startTimer(context: context, overallOnly: true)
        return false
    }

    /// `step` more bytes are reserved. A frame reserved in steps has a number in the budget
    /// until it is complete (all its bytes here) or gone, so that the oldest such frame always
    /// progresses; it keeps it once fully reserved, so the privilege passes on only when that
    /// frame is done: one frame at a time past the limit, not each in turn.
    private func took(_ step: Int, of size: Int) {
        reservedBytes += step
        if reservedBytes < size && partial == nil { partial = budget.beginPartial() }
    }

    private func granted(context: ChannelHandlerContext) {
        ticket = nil
        guard !closed else {
            budget.release(reservedBytes + requested, ofFrame: frameSize)
            reservedBytes = 0
            if let partial {
                budget.endPartial(partial)
                self.partial = nil
            }
            return
        }
        if let size = frameSize { took(requested, of: size) }
        startTimer(context: context)
        process(context: context)
        if heldRead {
            heldRead = false
            context.read()
        }
    }

    /// A large frame waits (unreserved, reads held) for the running long request to finish.
    private func holdForGate(context: ChannelHandlerContext) {
        gateHeld = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        gate.onRelease = {
            loopBound.eventLoop.execute {
                let (reader, context) = loopBound.value
                reader.gateReleased(context: context)
            }
        }
    }

    /// The long request a large frame waited behind is done: the frame is read now (unless
    /// the next request, started meanwhile, is a long one too).
    private func gateReleased(context: ChannelHandlerContext) {
        guard gateHeld, !closed else { return }
        if gate.longWaitRunning { return holdForGate(context: context) }
        gateHeld = false
        startTimer(context: context)
        process(context: context)
        if heldRead {
            heldRead = false
            context.read()
        }
    }

    /// Arms the frame's timer: `frameTimeout` of the client's time, and never past the frame's
    /// overall deadline (three timeouts from when its reading started), which runs also while
    /// the broker makes it wait (`overallOnly`: for the budget; reads the handler holds): a
    /// frame cannot keep its reservation, or the budget's privilege, for ever.
    private func startTimer(context: ChannelHandlerContext, overallOnly: Bool = false) {
        timer?.cancel()
        timer = nil
        guard let size = frameSize, receivedBytes < size else { return }
        let now = NIODeadline.now()
        if frameDeadline == nil {
            // Saturating: `--frame-timeout-ms` may be Int64.max ("never"), and TimeAmount's `*` traps.
            let (overall, overflow) = frameTimeout.nanoseconds.multipliedReportingOverflow(by: 3)
            frameDeadline = now + .nanoseconds(overflow ? .max : overall)
        }
        let overall = frameDeadline!
        let fireAt = overallOnly ? overall : min(overall, now + frameTimeout)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: fireAt) {
            let (reader, context) = loopBound.value
            guard let size = reader.frameSize else { return }
            // Reads held by the handler (answers the client has not read, too many requests
            // queued): not the client's delay in sending; it gets its time again, up to the
            // overall deadline.
            if NIODeadline.now() < overall && reader.gate.holdingReads { return reader.startTimer(context: context) }
            reader.fail(context: context, FrameTimedOut(size: size, received: reader.receivedBytes))
        }
    }

    func read(context: ChannelHandlerContext) {
        if ticket != nil || gateHeld {
            heldRead = true
            return
        }
        context.read()
    }

    private func fail(context: ChannelHandlerContext, _ error: Error) {
        giveBack()  // before anything closes: the budget is free by the time the peer sees EOF
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    /// Returns the reservation of an unfinished frame (or withdraws its queued one).
    private func giveBack() {
        guard !closed else { return }
        closed = true
        timer?.cancel()
        timer = nil
        buffer = nil
        frameBytes = []
        if gateHeld {
            gateHeld = false
            gate.onRelease = nil
        }
        if let partial {
            budget.endPartial(partial)
            self.partial = nil
        }
        if let ticket {
            // Not granted yet: withdraw it; if the grant raced us, `granted` releases it all.
            if budget.cancel(ticket) {
                self.ticket = nil
                budget.release(reservedBytes, ofFrame: frameSize)
                reservedBytes = 0
            }
        } else {
            budget.release(reservedBytes, ofFrame: frameSize)
            reservedBytes = 0
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        giveBack()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        giveBack()
    }
}

// The floor of an unbatched produce on SwiftNIO: produce_floor.c's work (read a frame, check it
// is Produce v3 for one partition, check the RecordBatch's length, magic and CRC-32C, give it the
// next offset, pwrite it to the end of one log file, write the ProduceResponse), written as a
// SwiftNIO server is: two event loops, a ByteToMessageDecoder cutting frames, a handler that
// answers each and flushes once per read. Beside produce_floor.c and `tidemark serve` in
// Benchmarks/unbatched/run.sh, it splits Tidemark's server CPU per request into what NIO's own
// path costs and what Tidemark adds. Nothing else: no indexes, no idempotence, no metrics, one
// log for every topic and partition; any other request, or a bad batch, closes the connection.
//
//   swift build -c release --package-path Benchmarks --product NIOProduceFloor
//   Benchmarks/.build/release/NIOProduceFloor PORT LOGFILE [THREADS]
//
// Request and response layouts: produce_floor.c's header comment (Produce v3).
import NIOCore
import NIOPosix
import Synchronization
import TidemarkStorage

#if canImport(Glibc)
import Glibc
#endif

/// One log file for every request; its next offset and byte position are taken under a lock
/// held for the assignment only (as produce_floor.c's).
final class FloorLog: Sendable {
    let fd: Int32
    private let next = Mutex<(offset: Int64, position: Int64)>((0, 0))

    init(fd: Int32) { self.fd = fd }

    func reserve(count: Int64, bytes: Int64) -> (offset: Int64, position: Int64) {
        next.withLock { next in
            let taken = next
            next = (next.offset + count, next.position + bytes)
            return taken
        }
    }
}

/// Cuts the stream into frames (the int32 size prefix dropped); a frame over 64 KiB closes.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    struct TooLarge: Error {}

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return .needMoreData }
        guard size >= 0, size <= 65_536 - 4 else { throw TooLarge() }
        guard buffer.readableBytes >= 4 + Int(size) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(size))!))
        return .continue
    }
}

/// Answers each frame; the answers of one read go out in one flush.
final class ProduceHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let log: FloorLog
    private var answered = false

    init(log: FloorLog) { self.log = log }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        guard let answer = handle(&frame, allocator: context.channel.allocator) else {
            context.close(promise: nil)
            return
        }
        context.write(wrapOutboundOut(answer), promise: nil)
        answered = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if answered {
            answered = false
            context.flush()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func handle(_ frame: inout ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard let api = frame.readInteger(as: Int16.self), let version = frame.readInteger(as: Int16.self),
            let correlation = frame.readInteger(as: Int32.self), api == 0, version == 3,
            let client = frame.readInteger(as: Int16.self), client < 0 || frame.readSlice(length: Int(client)) != nil,
            let transactional = frame.readInteger(as: Int16.self),
            transactional < 0 || frame.readSlice(length: Int(transactional)) != nil,
            frame.readInteger(as: Int16.self) != nil, frame.readInteger(as: Int32.self) != nil,  // acks, timeout
            frame.readInteger(as: Int32.self) == 1, let nameLength = frame.readInteger(as: Int16.self), nameLength >= 0,
            let name = frame.readSlice(length: Int(nameLength)), frame.readInteger(as: Int32.self) == 1,
            let index = frame.readInteger(as: Int32.self), let recordsSize = frame.readInteger(as: Int32.self),
            recordsSize >= 61, frame.readableBytes >= Int(recordsSize)
        else { return nil }
        let batch = frame.readerIndex
        // One batch filling the records: its length covers everything after its first 12 bytes.
        guard let length = frame.getInteger(at: batch + 8, as: Int32.self), Int(length) + 12 == Int(recordsSize),
            frame.getInteger(at: batch + 16, as: UInt8.self) == 2,
            let crc = frame.getInteger(at: batch + 17, as: UInt32.self),
            let lastDelta = frame.getInteger(at: batch + 23, as: Int32.self)
        else { return nil }
        let computed = frame.withUnsafeReadableBytes {
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[21..<Int(recordsSize)]))
        }
        guard computed == crc else { return nil }
        let (base, position) = log.reserve(count: Int64(lastDelta) + 1, bytes: Int64(recordsSize))
        frame.setInteger(base, at: batch)
        let fd = log.fd
        let written = frame.withUnsafeReadableBytes { bytes in
            pwrite(fd, bytes.baseAddress, Int(recordsSize), off_t(position))
        }
        guard written == Int(recordsSize) else { return nil }

        var out = allocator.buffer(capacity: 4 + 4 + 4 + 2 + Int(nameLength) + 4 + 4 + 2 + 8 + 8 + 4)
        out.writeInteger(Int32(0))  // the size, set below
        out.writeInteger(correlation)
        out.writeInteger(Int32(1))
        out.writeInteger(nameLength)
        out.writeImmutableBuffer(name)
        out.writeInteger(Int32(1))
        out.writeInteger(index)
        out.writeInteger(Int16(0))
        out.writeInteger(base)
        out.writeInteger(Int64(-1))
        out.writeInteger(Int32(0))
        out.setInteger(Int32(out.readableBytes - 4), at: 0)
        return out
    }
}

let arguments = CommandLine.arguments
guard arguments.count >= 3, let port = Int(arguments[1]) else {
    print("usage: \(arguments[0]) PORT LOGFILE [THREADS]")
    exit(2)
}
let threads = arguments.count > 3 ? Int(arguments[3]) ?? 2 : 2
let fd = open(arguments[2], O_WRONLY | O_CREAT | O_TRUNC, 0o644)
guard fd >= 0 else {
    perror(arguments[2])
    exit(1)
}
let log = FloorLog(fd: fd)
let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
let channel = try await ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 512)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
            try channel.pipeline.syncOperations.addHandler(ProduceHandler(log: log))
        }
    }
    .bind(host: "127.0.0.1", port: port).get()
try await channel.closeFuture.get()

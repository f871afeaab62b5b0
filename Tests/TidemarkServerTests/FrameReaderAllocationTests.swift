import NIOCore
import NIOEmbedded
import Testing
@testable import TidemarkServer

/// How `KafkaFrameReader` allocates a frame that arrives in many reads: once or twice (not at
/// every step of its reservation), and never far ahead of what the client has sent.
@Suite struct FrameReaderAllocationTests {
    /// A reader on an embedded channel, with a budget that never makes a frame wait.
    static func reader(maxFrameBytes: Int = 128 << 20) throws -> (EmbeddedChannel, KafkaFrameReader, RequestMemoryBudget) {
        let budget = RequestMemoryBudget(limitBytes: 256 << 20)
        let reader = KafkaFrameReader(maxFrameBytes: maxFrameBytes, budget: budget, frameTimeout: .seconds(30))
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(reader)
        return (channel, reader, budget)
    }

    static func buffer(_ bytes: some Sequence<UInt8>) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        buffer.writeBytes(Array(bytes))
        return buffer
    }

    static func sizePrefix(_ size: Int) -> [UInt8] { withUnsafeBytes(of: Int32(size).bigEndian) { Array($0) } }

    /// 1 MiB and a bit in a 2 KiB read then 64 KiB reads (as a socket delivers it): the frame's
    /// reservation doubles about nine times; its array is allocated twice (ahead of the first
    /// small reservation, then at its whole size), and the bytes come out intact.
    @Test func aLargeFrameInManyReadsIsAllocatedTwiceAtMost() throws {
        let (channel, reader, budget) = try Self.reader()
        let payload = (0..<((1 << 20) + 100)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let stream = Self.sizePrefix(payload.count) + payload
        var sent = 0
        var first = true
        while sent < stream.count {
            let n = min(stream.count - sent, first ? 2048 : 64 << 10)
            first = false
            try channel.writeInbound(Self.buffer(stream[sent..<(sent + n)]))
            sent += n
        }
        let frame = try #require(try channel.readInbound(as: KafkaFrame.self))
        #expect(frame.bytes == payload)
        #expect(frame.reservedBytes == payload.count && budget.usedBytes == payload.count)
        #expect(reader.frameAllocations <= 2, "allocated \(reader.frameAllocations) times")
        #expect(try channel.readInbound(as: KafkaFrame.self) == nil)
        _ = try channel.finish()
    }

    /// A frame that arrives in one read is allocated once, at its size.
    @Test func aFrameInOneReadIsAllocatedOnceAtItsSize() throws {
        let (channel, reader, _) = try Self.reader()
        let payload = [UInt8](repeating: 7, count: 3000)
        try channel.writeInbound(Self.buffer(Self.sizePrefix(payload.count) + payload))
        let frame = try #require(try channel.readInbound(as: KafkaFrame.self))
        #expect(frame.bytes == payload && frame.bytes.capacity >= payload.count)
        #expect(reader.frameAllocations == 1)
        _ = try channel.finish()
    }

    /// A client declaring 64 MiB and sending 100 bytes: the frame reserves one 4 KiB step and
    /// its array is at most `capacityAheadOfReservation` times that, not the declared size.
    @Test func aDeclaredSizeAloneDoesNotSizeTheArray() throws {
        let (channel, reader, budget) = try Self.reader()
        try channel.writeInbound(Self.buffer(Self.sizePrefix(64 << 20) + [UInt8](repeating: 1, count: 100)))
        #expect(try channel.readInbound(as: KafkaFrame.self) == nil)
        #expect(budget.usedBytes == 4096)
        #expect(reader.frameCapacity >= 100)
        #expect(reader.frameCapacity <= 4096 * KafkaFrameReader.capacityAheadOfReservation + 64)
        #expect(reader.frameCapacity < 1 << 20, "an array of \(reader.frameCapacity) bytes for 100 sent")
        _ = try? channel.finish()
    }

    /// A frame travels the pipeline in an `NIOAny`, whose inline buffer is three words: at 25
    /// bytes (an `Int?` field) it was boxed on the heap once per request.
    @Test func aFrameFitsInAnExistentialsInlineBuffer() {
        #expect(MemoryLayout<KafkaFrame>.size <= 3 * MemoryLayout<Int>.size)
        let frame = KafkaFrame(bytes: [0, 1], reservedBytes: 2, partial: 7)
        #expect(frame.partial == 7)
        #expect(KafkaFrame(bytes: [], reservedBytes: 0).partial == nil)
    }
}

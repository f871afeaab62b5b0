import NIOCore

/// Splits the byte stream into Kafka frames: a big-endian int32 size, then that many bytes.
///
/// A declared size above `maxFrameBytes` (or below zero) fails the decoder, which closes the
/// connection before anything is buffered for the frame.
struct KafkaFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    struct FrameTooLarge: Error, CustomStringConvertible {
        var size: Int32
        var limit: Int
        var description: String { "frame of \(size) bytes exceeds the limit of \(limit)" }
    }

    let maxFrameBytes: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return .needMoreData }
        guard size >= 0 && Int(size) <= maxFrameBytes else { throw FrameTooLarge(size: size, limit: maxFrameBytes) }
        guard buffer.readableBytes >= 4 + Int(size) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let frame = buffer.readSlice(length: Int(size))!
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

import TidemarkStorage

/// The strings of Kafka's classic (non-flexible) layouts that the engine writes itself: the
/// records of `__consumer_offsets` (`OffsetStore`, `GroupMembershipRecord`) and of the
/// share-state log (`ShareStateStore`'s keys), and the consumer protocol's subscriptions and
/// assignments (`ConsumerProtocol`). An i16 byte length, then the
/// UTF-8 bytes; null is length -1.
extension ByteWriter {
    /// Writes `string` (nil: null). One over 32,767 bytes, the most an i16 length can say (a
    /// JoinGroup protocol name is a compact string in recent versions, so it can be longer),
    /// is cut between characters rather than trapped on.
    mutating func writeShortString(_ string: String?) {
        guard let string else {
            writeInteger(Int16(-1))
            return
        }
        var utf8 = Array(string.utf8)
        if utf8.count > Int(Int16.max) {
            var end = Int(Int16.max)
            while end > 0 && utf8[end] & 0xC0 == 0x80 { end -= 1 }  // not inside a character
            utf8.removeSubrange(end...)
        }
        writeInteger(Int16(utf8.count))
        writeBytes(utf8)
    }
}

extension ByteReader {
    /// A string that may be null (nil).
    mutating func readNullableShortString() throws(RecordBatchError) -> String? {
        let length: Int16 = try readInteger()
        guard length >= 0 else { return nil }
        return String(decoding: try readSlice(count: Int(length)), as: UTF8.self)
    }

    /// A string that must not be null.
    mutating func readShortString() throws(RecordBatchError) -> String {
        guard let string = try readNullableShortString() else { throw .invalidRecord("null string") }
        return string
    }
}

extension ByteReader {
    /// Decodes one of those records with `body`: nil when `bytes` is nil, when they end before
    /// `body` is done, or when `body` itself says nil (a version it does not read, a bad count).
    static func decode<T>(_ bytes: [UInt8]?, _ body: (inout ByteReader) throws(RecordBatchError) -> T?) -> T? {
        guard let bytes else { return nil }
        return bytes.withUnsafeBytes { raw -> T? in
            var reader = ByteReader(raw)
            do throws(RecordBatchError) {
                return try body(&reader)
            } catch {
                return nil
            }
        }
    }
}

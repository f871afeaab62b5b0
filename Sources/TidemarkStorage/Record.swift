/// One header of a record: a UTF-8 key and a value that may be null (distinct from empty).
public struct RecordHeader: Sendable, Hashable {
    public var key: String
    public var value: [UInt8]?

    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value
    }
}

/// One record as stored inside a RecordBatch v2.
///
/// Layout (varints are zigzag):
/// ```
/// length          varint  bytes after this field
/// attributes      i8      unused, 0
/// timestampDelta  varlong timestamp - batch.baseTimestamp
/// offsetDelta     varint  offset - batch.baseOffset
/// keyLength       varint  -1 = null key
/// key             bytes
/// valueLength     varint  -1 = null value
/// value           bytes
/// headerCount     varint
/// headers         headerCount × (keyLength varint, key UTF-8, valueLength varint (-1 = null), value)
/// ```
public struct Record: Sendable, Hashable {
    public var attributes: Int8
    public var timestampDelta: Int64
    public var offsetDelta: Int32
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [RecordHeader]

    public init(
        attributes: Int8 = 0, timestampDelta: Int64, offsetDelta: Int32,
        key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader] = []
    ) {
        self.attributes = attributes
        self.timestampDelta = timestampDelta
        self.offsetDelta = offsetDelta
        self.key = key
        self.value = value
        self.headers = headers
    }
}

extension Record {
    /// Size of the fields after `length`.
    @usableFromInline
    static func bodySize(
        timestampDelta: Int64, offsetDelta: Int32, keyCount: Int?, valueCount: Int?, headers: [RecordHeader]
    ) -> Int {
        var size = 1 + ByteWriter.varlongSize(timestampDelta) + ByteWriter.varintSize(offsetDelta)
        size += ByteWriter.varintSize(Int32(keyCount ?? -1)) + (keyCount ?? 0)
        size += ByteWriter.varintSize(Int32(valueCount ?? -1)) + (valueCount ?? 0)
        size += ByteWriter.varintSize(Int32(headers.count))
        for header in headers {
            let keyBytes = header.key.utf8.count
            size += ByteWriter.varintSize(Int32(keyBytes)) + keyBytes
            size += ByteWriter.varintSize(Int32(header.value?.count ?? -1)) + (header.value?.count ?? 0)
        }
        return size
    }

    /// Appends one encoded record.
    static func write(
        to writer: inout ByteWriter, attributes: Int8 = 0, timestampDelta: Int64, offsetDelta: Int32,
        key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: [RecordHeader]
    ) {
        let body = bodySize(
            timestampDelta: timestampDelta, offsetDelta: offsetDelta,
            keyCount: key?.count, valueCount: value?.count, headers: headers)
        writer.writeVarint(Int32(body))
        writer.writeInteger(attributes)
        writer.writeVarlong(timestampDelta)
        writer.writeVarint(offsetDelta)
        if let key {
            writer.writeVarint(Int32(key.count))
            writer.writeBytes(key)
        } else {
            writer.writeVarint(-1)
        }
        if let value {
            writer.writeVarint(Int32(value.count))
            writer.writeBytes(value)
        } else {
            writer.writeVarint(-1)
        }
        writer.writeVarint(Int32(headers.count))
        for header in headers {
            var key = header.key
            key.withUTF8 { utf8 in
                writer.writeVarint(Int32(utf8.count))
                writer.writeBytes(UnsafeRawBufferPointer(utf8))
            }
            if let value = header.value {
                writer.writeVarint(Int32(value.count))
                writer.writeBytes(value)
            } else {
                writer.writeVarint(-1)
            }
        }
    }

    /// Reads one record; every length is checked against the bytes that remain.
    static func read(from reader: inout ByteReader) throws(RecordBatchError) -> Record {
        let length = try reader.readVarint()
        guard length >= 0, Int(length) <= reader.readableBytes else {
            throw .invalidRecord("record length \(length) with \(reader.readableBytes) bytes left")
        }
        let end = reader.readerIndex + Int(length)
        let attributes: Int8 = try reader.readInteger()
        let timestampDelta = try reader.readVarlong()
        let offsetDelta = try reader.readVarint()
        let key = try readNullableBytes(&reader)
        let value = try readNullableBytes(&reader)
        let headerCount = try reader.readVarint()
        // Each header takes at least 2 bytes, which bounds the array before it is built.
        guard headerCount >= 0, Int(headerCount) * 2 <= end - reader.readerIndex else {
            throw .invalidRecord("header count \(headerCount) does not fit the record")
        }
        var headers: [RecordHeader] = []
        headers.reserveCapacity(min(Int(headerCount), 64))
        for _ in 0..<headerCount {
            let keyLength = try reader.readVarint()
            guard keyLength >= 0 else { throw .invalidRecord("null header key") }
            let keyBytes = try reader.readSlice(count: Int(keyLength))
            let headerValue = try readNullableBytes(&reader)
            headers.append(RecordHeader(key: String(decoding: keyBytes, as: UTF8.self), value: headerValue))
        }
        guard reader.readerIndex == end else {
            throw .invalidRecord("record length \(length) disagrees with its fields")
        }
        return Record(
            attributes: attributes, timestampDelta: timestampDelta, offsetDelta: offsetDelta,
            key: key, value: value, headers: headers)
    }

    private static func readNullableBytes(_ reader: inout ByteReader) throws(RecordBatchError) -> [UInt8]? {
        let length = try reader.readVarint()
        if length == -1 { return nil }
        guard length >= 0 else { throw .invalidRecord("length \(length)") }
        return try reader.readBytes(count: Int(length))
    }
}

/// One header of a record: a UTF-8 key and a value that may be null (distinct from empty).
public struct RecordHeader: Sendable, Hashable {
    /// Setting it drops `rawKey`: a header renamed is written under its new name.
    public var key: String {
        didSet { rawKey = nil }
    }
    public var value: [UInt8]?
    /// The key's bytes as stored when they are not UTF-8 (`key` then reads them with U+FFFD
    /// in place of what is not): written back as they came, so copies of a record (replay,
    /// dead letters) keep its headers byte for byte. nil for a UTF-8 key.
    public internal(set) var rawKey: [UInt8]? = nil

    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value
    }

    /// A header read from stored bytes.
    init(keyBytes: UnsafeRawBufferPointer, value: [UInt8]?) {
        if let text = String(validating: keyBytes, as: UTF8.self) {
            key = text
        } else {
            key = String(decoding: keyBytes, as: UTF8.self)
            rawKey = Array(keyBytes)
        }
        self.value = value
    }

    /// The key's length as written.
    var keyCount: Int { rawKey?.count ?? key.utf8.count }
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
/// headers         headerCount × (keyLength varint, key (UTF-8 when written here; kept as
///                 stored otherwise), valueLength varint (-1 = null), value)
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
            let keyBytes = header.keyCount
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
        // The small fields between the key and value bytes go through a stack scratch, so a
        // record costs a few array appends instead of one per varint byte (the embedded
        // appender's hot loop).
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 48) { scratch in
            var fields = VarintScratch(scratch)
            fields.varint(Int32(body))
            fields.byte(UInt8(bitPattern: attributes))
            fields.varlong(timestampDelta)
            fields.varint(offsetDelta)
            fields.varint(Int32(key?.count ?? -1))
            if let key {
                fields.flush(into: &writer)
                writer.writeBytes(key)
            }
            fields.varint(Int32(value?.count ?? -1))
            if let value {
                fields.flush(into: &writer)
                writer.writeBytes(value)
            }
            fields.varint(Int32(headers.count))
            for header in headers {
                if let raw = header.rawKey {
                    fields.varint(Int32(raw.count))
                    fields.flush(into: &writer)
                    raw.withUnsafeBytes { writer.writeBytes($0) }
                } else {
                    var key = header.key
                    key.withUTF8 { utf8 in
                        fields.varint(Int32(utf8.count))
                        fields.flush(into: &writer)
                        writer.writeBytes(UnsafeRawBufferPointer(utf8))
                    }
                }
                fields.varint(Int32(header.value?.count ?? -1))
                if let value = header.value {
                    fields.flush(into: &writer)
                    writer.writeBytes(value)
                }
            }
            fields.flush(into: &writer)
        }
    }

    /// What the record holds outside its own struct once decoded: its key and value, its
    /// headers' array and their keys and values (so a record of many empty headers, 2 bytes
    /// each stored, counts what it takes in memory). For budgets of decoded records.
    public var heapBytes: Int {
        var bytes = (key?.count ?? 0) + (value?.count ?? 0) + headers.count * MemoryLayout<RecordHeader>.stride
        for header in headers { bytes += header.key.utf8.count + (header.rawKey?.count ?? 0) + (header.value?.count ?? 0) }
        return bytes
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
            headers.append(RecordHeader(keyBytes: keyBytes, value: headerValue))
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

/// Zigzag varints written into a small buffer, appended to a `ByteWriter` in one go.
/// (At most 5 + 1 + 10 + 5 + 5 bytes are pending at once: every `flush` point follows fewer.)
struct VarintScratch {
    let buffer: UnsafeMutableBufferPointer<UInt8>
    var count = 0

    init(_ buffer: UnsafeMutableBufferPointer<UInt8>) { self.buffer = buffer }

    @inline(__always)
    mutating func byte(_ value: UInt8) {
        buffer[count] = value
        count += 1
    }

    @inline(__always)
    mutating func unsigned(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            byte(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        byte(UInt8(v))
    }

    @inline(__always)
    mutating func varint(_ value: Int32) { unsigned(UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31)))) }

    @inline(__always)
    mutating func varlong(_ value: Int64) { unsigned(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }

    mutating func flush(into writer: inout ByteWriter) {
        guard count > 0 else { return }
        writer.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[..<count])))
        count = 0
    }
}

import TidemarkStorage

/// Why bytes could not be decoded as a Kafka message.
public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    case truncated(field: String)
    case invalid(String)

    public var description: String {
        switch self {
        case .truncated(let field): "request truncated in \(field)"
        case .invalid(let message): message
        }
    }
}

/// A UUID on the wire (Kafka's topic ids): 16 bytes, big-endian halves. Zero means none.
public struct WireUUID: Sendable, Hashable, CustomStringConvertible {
    public var high: Int64
    public var low: Int64
    public init(high: Int64 = 0, low: Int64 = 0) {
        self.high = high
        self.low = low
    }
    public static let zero = WireUUID()
    public var isZero: Bool { high == 0 && low == 0 }
    public var description: String { String(UInt64(bitPattern: high), radix: 16) + String(UInt64(bitPattern: low), radix: 16) }
}

/// Where a `bytes` field's content is when it is written: in memory, or a range of a
/// segment file that the server sends with sendfile. A records field read from a request is
/// a view of the request's frame (`ArraySlice`: no copy; it keeps the frame alive).
public enum RecordsData: Sendable {
    case bytes(ArraySlice<UInt8>)
    case slice(LogSlice)

    public var count: Int {
        switch self {
        case .bytes(let bytes): bytes.count
        case .slice(let slice): slice.length
        }
    }

    /// The content as bytes (reads the file for a slice).
    public func materialize() throws -> [UInt8] {
        switch self {
        case .bytes(let bytes): Array(bytes)
        case .slice(let slice): try slice.readBytes()
        }
    }
}

/// What a reading `WireCoder` accepts beyond the format: the broker decodes requests with
/// `.requests`; tools reading a broker's answers, and tests, with `.unlimited`.
public struct DecodeLimits: Sendable {
    /// Array elements in the whole message, all arrays together. Decoded elements take far
    /// more memory than the few bytes each takes on the wire (a Fetch topic with no partitions
    /// is 6 bytes, about 90 in memory): bounding them bounds what one frame decodes into.
    public var maxElements: Int
    /// Strings must be in Unicode's stream-safe form: at most 30 combining marks in a row
    /// (UAX #15). Comparing and hashing a Swift string normalizes it, in time that grows with
    /// the square of such a run: one 32 KiB name of combining marks cost 0.3 s of CPU on every
    /// lookup, and a request naming a few hundred held a thread for minutes.
    public var streamSafeStrings: Bool

    public init(maxElements: Int, streamSafeStrings: Bool) {
        self.maxElements = maxElements
        self.streamSafeStrings = streamSafeStrings
    }

    public static let unlimited = DecodeLimits(maxElements: .max, streamSafeStrings: false)
    /// 250,000 elements: past every bound the broker puts on one list of a request (100,000
    /// names), which refuse with their own reasons. Lists of numbers (replica ids, share
    /// acknowledgement types) take no more memory decoded than on the wire and are not counted.
    public static let requests = DecodeLimits(maxElements: 250_000, streamSafeStrings: true)
    /// UAX #15's bound on combining marks in a row.
    public static let maxCombiningRun = 30
}

/// One serializer for both directions: each message lists its fields once, in a
/// `code(_:version:)` method, and the coder either reads them from `input` or writes them.
///
/// Kafka primitives (big-endian): int8/16/32/64, boolean (1 byte), string (int16 length,
/// UTF-8), nullable string (length -1 = null), bytes (int32 length), arrays (int32 count,
/// -1 = null). In flexible versions: compact string/bytes/array (unsigned varint of
/// length + 1, 0 = null) and a tagged-field section (unsigned varint count, then tag,
/// size, bytes) after each structure.
///
/// Reading never trusts a length: every count is checked against the bytes left before
/// anything is allocated for it.
public struct WireCoder {
    public enum Mode { case reading, writing }
    public let mode: Mode
    /// Compact encodings and tagged fields (the message version is flexible).
    public var flexible: Bool

    // Reading state.
    private let input: [UInt8]
    public private(set) var index: Int
    /// Array elements the message may still decode (`DecodeLimits.maxElements`).
    private var elementsLeft: Int
    private let streamSafeStrings: Bool

    // Writing state: finished chunks plus the bytes being accumulated.
    public private(set) var output: [UInt8] = []
    public private(set) var chunks: [RecordsData] = []
    /// The non-zero error codes written so far (fields named `error_code` or
    /// `acknowledge_error_code`), in order: what a response reports, for its API's error metric.
    public private(set) var errorCodesWritten: [Int16] = []

    public init(reading bytes: [UInt8], from index: Int = 0, flexible: Bool = false, limits: DecodeLimits = .unlimited) {
        // Reads load from `input` unchecked past `remaining`'s guards, which assume this.
        precondition(index >= 0 && index <= bytes.count, "reading from \(index) of \(bytes.count) bytes")
        mode = .reading
        input = bytes
        self.index = index
        self.flexible = flexible
        elementsLeft = limits.maxElements
        streamSafeStrings = limits.streamSafeStrings
    }

    public init(writingFlexible flexible: Bool = false, capacity: Int = 256) {
        mode = .writing
        input = []
        index = 0
        self.flexible = flexible
        elementsLeft = .max
        streamSafeStrings = false
        output.reserveCapacity(capacity)
    }

    public var isReading: Bool { mode == .reading }
    public var remaining: Int { input.count - index }

    /// Everything written, as chunks (file slices kept apart for sendfile).
    public func finishedChunks() -> [RecordsData] {
        guard !output.isEmpty else { return chunks }
        var all = chunks
        all.append(.bytes(output[...]))
        return all
    }

    /// Everything written, as one byte array (file slices read into memory).
    public func finishedBytes() throws -> [UInt8] {
        var all: [UInt8] = []
        for chunk in finishedChunks() { all += try chunk.materialize() }
        return all
    }

    // MARK: Fixed-width

    private mutating func take(_ count: Int, _ field: String) throws(WireError) -> ArraySlice<UInt8> {
        guard count >= 0, remaining >= count else { throw .truncated(field: field) }
        defer { index += count }
        return input[index..<(index + count)]
    }

    private mutating func integer<T: FixedWidthInteger>(_ value: inout T, _ field: String) throws(WireError) {
        if isReading {
            // Loaded in place: a slice of `input` per field (`take`) was a retain and a release
            // of the frame each, a few dozen per request.
            let size = MemoryLayout<T>.size
            guard remaining >= size else { throw .truncated(field: field) }
            let at = index
            value = T(bigEndian: input.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: T.self) })
            index += size
        } else {
            withUnsafeBytes(of: value.bigEndian) { output.append(contentsOf: $0) }
        }
    }

    public mutating func int8(_ value: inout Int8, _ field: String = "int8") throws(WireError) { try integer(&value, field) }
    public mutating func int16(_ value: inout Int16, _ field: String = "int16") throws(WireError) {
        try integer(&value, field)
        if value != 0, !isReading, field == "error_code" || field == "acknowledge_error_code" { errorCodesWritten.append(value) }
    }
    public mutating func int32(_ value: inout Int32, _ field: String = "int32") throws(WireError) { try integer(&value, field) }
    public mutating func int64(_ value: inout Int64, _ field: String = "int64") throws(WireError) { try integer(&value, field) }
    /// A float64 (quota values): the IEEE 754 double's 8 bytes, most significant first.
    public mutating func float64(_ value: inout Double, _ field: String = "float64") throws(WireError) {
        var bits = Int64(bitPattern: value.bitPattern)
        try integer(&bits, field)
        value = Double(bitPattern: UInt64(bitPattern: bits))
    }

    /// A UUID (topic ids): 16 bytes, most significant first. All zeros means none.
    public mutating func uuid(_ value: inout WireUUID, _ field: String = "uuid") throws(WireError) {
        try int64(&value.high, field)
        try int64(&value.low, field)
    }

    /// A nullable struct written inline (flexible messages): an int8 marker, -1 for null and 1
    /// for present, then the struct.
    public mutating func nullableStruct<T>(
        _ value: inout T?, _ field: String, make: () -> T, _ body: (inout WireCoder, inout T) throws(WireError) -> Void
    ) throws(WireError) {
        var marker: Int8 = value == nil ? -1 : 1
        try int8(&marker, field)
        if isReading {
            guard marker >= 0 else {
                value = nil
                return
            }
            var item = make()
            try body(&self, &item)
            value = item
        } else if var item = value {
            try body(&self, &item)
        }
    }

    public mutating func bool(_ value: inout Bool, _ field: String = "bool") throws(WireError) {
        var byte: Int8 = value ? 1 : 0
        try integer(&byte, field)
        value = byte != 0
    }

    // MARK: Varints

    public mutating func unsignedVarint(_ value: inout UInt32, _ field: String = "varint") throws(WireError) {
        if isReading {
            var result: UInt32 = 0
            var shift: UInt32 = 0
            while true {
                guard remaining > 0 else { throw .truncated(field: field) }
                let byte = input[index]
                index += 1
                guard shift < 35 else { throw .invalid("\(field): varint too long") }
                result |= UInt32(byte & 0x7F) << shift
                if byte & 0x80 == 0 { break }
                shift += 7
            }
            value = result
        } else {
            var v = value
            while v >= 0x80 {
                output.append(UInt8(v & 0x7F) | 0x80)
                v >>= 7
            }
            output.append(UInt8(v))
        }
    }

    /// Length of a string/bytes/array: int16/int32 classic, or compact (n + 1) when flexible.
    /// -1 means null.
    ///
    /// Writing never traps: a length the field cannot frame (a string over 32,767 bytes in
    /// an int16 length, say) throws, and the caller closes that one connection.
    private mutating func length(_ value: inout Int, classicBytes: Int, _ field: String) throws(WireError) {
        if !isReading {
            let limit = flexible ? Int(Int32.max) - 1 : (classicBytes == 2 ? Int(Int16.max) : Int(Int32.max))
            guard value >= -1 && value <= limit else {
                throw .invalid("\(field): length \(value) does not fit its \(flexible ? "compact" : "int\(classicBytes * 8)") length")
            }
        }
        if flexible {
            var raw = UInt32(truncatingIfNeeded: value + 1)
            try unsignedVarint(&raw, field)
            value = Int(raw) - 1
        } else if classicBytes == 2 {
            var v = Int16(truncatingIfNeeded: value)
            try int16(&v, field)
            value = Int(v)
        } else {
            var v = Int32(truncatingIfNeeded: value)
            try int32(&v, field)
            value = Int(v)
        }
        if isReading && value < -1 { throw .invalid("\(field): negative length \(value)") }
        // A string is at most 32,767 bytes in every version, as Kafka reads it: a compact
        // length could say 100 MiB, and such strings (a JoinGroup protocol name, a rack id)
        // were kept, and could not be written back in the older versions clients use.
        if isReading && classicBytes == 2 && value > Int(Int16.max) {
            throw .invalid("\(field): string of \(value) bytes, over \(Int16.max)")
        }
    }

    // MARK: Strings and bytes

    public mutating func nullableString(_ value: inout String?, _ field: String = "string") throws(WireError) {
        guard isReading else { return try write(value, field) }
        var count = -1
        try length(&count, classicBytes: 2, field)
        guard count >= 0 else {
            value = nil
            return
        }
        // Invalid UTF-8 is refused, not repaired: replacement characters would make the
        // string up to 3 times longer than the field that carried it.
        guard count <= remaining else { throw .truncated(field: field) }
        let at = index
        let valid = input.withUnsafeBufferPointer { Self.validUTF8(UnsafeBufferPointer(rebasing: $0[at..<(at + count)])) }
        guard let (decoded, ascii) = valid else { throw .invalid("\(field): not valid UTF-8") }
        if streamSafeStrings && !ascii && !Self.isStreamSafe(decoded) {
            throw .invalid("\(field): more than \(DecodeLimits.maxCombiningRun) combining marks in a row (not stream-safe Unicode)")
        }
        index += count
        value = decoded
    }

    /// A string's length (-1: null) and its UTF-8 bytes.
    private mutating func write(_ value: String?, _ field: String) throws(WireError) {
        var count = value.map { $0.utf8.count } ?? -1
        try length(&count, classicBytes: 2, field)
        if let value { output.append(contentsOf: value.utf8) }
    }

    /// `bytes` as a string if they are valid UTF-8, else nil. (The standard library's
    /// `String(validating:as:)` is not specialized for byte buffers: resolving its generic
    /// types cost more than the rest of a small produce request's decoding.) ASCII, what client
    /// ids, topics and group ids are, is valid as it is; anything else is decoded with repair,
    /// and valid only if nothing was repaired. Says whether it was ASCII (which is stream-safe).
    static func validUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> (String, ascii: Bool)? {
        var ascii = true
        for byte in bytes where byte >= 0x80 {
            ascii = false
            break
        }
        let decoded = String(decoding: bytes, as: UTF8.self)
        if ascii { return (decoded, true) }
        return decoded.utf8.elementsEqual(bytes) ? (decoded, false) : nil
    }

    /// Whether no more than `DecodeLimits.maxCombiningRun` combining marks (canonical combining
    /// class other than 0) follow each other. Linear: each scalar is looked at once.
    /// Four scalars decompose into two combining marks each (Tibetan U+0F73, U+0F75, U+0F81
    /// have combining class 0, U+0344 230): they add two to the run and do not end it.
    static func isStreamSafe(_ string: String) -> Bool {
        var run = 0
        for scalar in string.unicodeScalars {
            switch scalar.value {
            case 0x0344, 0x0F73, 0x0F75, 0x0F81: run += 2
            default:
                if scalar.properties.canonicalCombiningClass.rawValue == 0 { run = 0 } else { run += 1 }
            }
            if run > DecodeLimits.maxCombiningRun { return false }
        }
        return true
    }

    public mutating func string(_ value: inout String, _ field: String = "string") throws(WireError) {
        // Written without the round trip through an optional (a retain, a release and an
        // assignment back each).
        guard isReading else { return try write(value, field) }
        var optional: String? = value
        try nullableString(&optional, field)
        guard let result = optional else { throw .invalid("\(field): null where a string is required") }
        value = result
    }

    /// A client id in a request header: always int16-length, even in flexible headers.
    public mutating func classicNullableString(_ value: inout String?, _ field: String) throws(WireError) {
        let saved = flexible
        flexible = false
        defer { flexible = saved }
        try nullableString(&value, field)
    }

    public mutating func nullableBytes(_ value: inout [UInt8]?, _ field: String = "bytes") throws(WireError) {
        var count = value?.count ?? -1
        try length(&count, classicBytes: 4, field)
        if isReading {
            value = count < 0 ? nil : Array(try take(count, field))
        } else if let value {
            output.append(contentsOf: value)
        }
    }

    public mutating func bytes(_ value: inout [UInt8], _ field: String = "bytes") throws(WireError) {
        var optional: [UInt8]? = value
        try nullableBytes(&optional, field)
        value = optional ?? []
    }

    /// A records field: read as bytes; written inline or as a file chunk.
    public mutating func records(_ value: inout RecordsData?, _ field: String = "records") throws(WireError) {
        if isReading {
            var count = 0
            try length(&count, classicBytes: 4, field)
            value = count < 0 ? nil : .bytes(try take(count, field))
            return
        }
        var count = value?.count ?? -1
        try length(&count, classicBytes: 4, field)
        switch value {
        case nil: break
        case .bytes(let bytes)?: output.append(contentsOf: bytes)
        case .slice?:
            chunks.append(.bytes(output[...]))
            chunks.append(value!)
            output = []
        }
    }

    // MARK: Arrays

    /// `counted: false` for lists of numbers, which `DecodeLimits.maxElements` leaves alone.
    public mutating func nullableArray<T>(
        _ value: inout [T]?, _ field: String = "array", counted: Bool = true, make: () -> T,
        _ element: (inout WireCoder, inout T) throws(WireError) -> Void
    ) throws(WireError) {
        var count = value?.count ?? -1
        try length(&count, classicBytes: 4, field)
        if isReading {
            guard count >= 0 else {
                value = nil
                return
            }
            // Every element takes at least one byte: a count beyond what is left is a lie.
            guard count <= remaining else { throw .invalid("\(field): \(count) elements in \(remaining) bytes") }
            if counted {
                guard count <= elementsLeft else { throw .invalid("\(field): \(count) more elements than the message may have") }
                elementsLeft -= count
            }
            // No capacity is reserved from the count beyond a few: an element may be far larger
            // in memory than its one byte on the wire. The array grows as elements actually decode.
            var result: [T] = []
            result.reserveCapacity(min(count, 8))
            for _ in 0..<count {
                var item = make()
                try element(&self, &item)
                result.append(item)
            }
            value = result
        } else if let items = value {
            // Each element is written from a copy: writing never changes a message, and
            // writing through `items[i]` would copy the whole array first (the message being
            // encoded still holds it), once per array per response.
            for item in items {
                var item = item
                try element(&self, &item)
            }
        }
    }

    public mutating func array<T>(
        _ value: inout [T], _ field: String = "array", counted: Bool = true, make: () -> T,
        _ element: (inout WireCoder, inout T) throws(WireError) -> Void
    ) throws(WireError) {
        var optional: [T]? = value
        try nullableArray(&optional, field, counted: counted, make: make, element)
        value = optional ?? []
    }

    public mutating func int32Array(_ value: inout [Int32], _ field: String = "int32s") throws(WireError) {
        try array(&value, field, counted: false, make: { 0 }) { (c: inout WireCoder, v: inout Int32) throws(WireError) in try c.int32(&v, field) }
    }

    public mutating func stringArray(_ value: inout [String], _ field: String = "strings") throws(WireError) {
        try array(&value, field, make: { "" }) { (c: inout WireCoder, v: inout String) throws(WireError) in try c.string(&v, field) }
    }

    /// The tagged-field section of a flexible structure: skipped when reading (we know no
    /// tags), written empty.
    /// A tagged-field section that carries fields of ours: written in tag order (an empty
    /// value is left out), read back into `fields` (unknown tags of others are skipped the same).
    public mutating func taggedFields(_ fields: inout [UInt32: [UInt8]]) throws(WireError) {
        guard flexible else { return }
        if isReading {
            var count: UInt32 = 0
            try unsignedVarint(&count, "tagged fields")
            for _ in 0..<count {
                var tag: UInt32 = 0
                var size: UInt32 = 0
                try unsignedVarint(&tag, "tag")
                try unsignedVarint(&size, "tag size")
                fields[tag] = Array(try take(Int(size), "tagged field"))
            }
            return
        }
        let present = fields.filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }
        var count = UInt32(present.count)
        try unsignedVarint(&count, "tagged fields")
        for (tag, bytes) in present {
            var tag = tag
            var size = UInt32(bytes.count)
            try unsignedVarint(&tag, "tag")
            try unsignedVarint(&size, "tag size")
            output.append(contentsOf: bytes)
        }
    }

    public mutating func taggedFields() throws(WireError) {
        guard flexible else { return }
        var count: UInt32 = 0
        try unsignedVarint(&count, "tagged fields")
        guard isReading else { return }
        for _ in 0..<count {
            var tag: UInt32 = 0
            var size: UInt32 = 0
            try unsignedVarint(&tag, "tag")
            try unsignedVarint(&size, "tag size")
            _ = try take(Int(size), "tagged field")
        }
    }
}

import NIOCore
import NIOHTTP1

/// A request as the HTTP module's routes see it: method, path, query, headers, body (the
/// body is bounded by `HTTPServer.Limits.maxBodyBytes` before a route runs).
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The path without the query, percent-decoded.
    public var path: String
    /// The path's non-empty segments, each percent-decoded after the split: a name holding
    /// `/` (`%2F`; Kafka allows it in group ids) stays one segment.
    public var pathSegments: [String]
    /// Query parameters, percent-decoded (`+` as space); the last of a repeated name wins.
    public var query: [String: String]
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// The client's address, for logs.
    public var peer: String

    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders = [:], body: [UInt8] = [], peer: String = "") {
        self.method = method
        self.headers = headers
        self.body = body
        self.peer = peer
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = Self.percentDecode(String(parts.first ?? "/"), plusIsSpace: false)
        pathSegments = (parts.first ?? "/").split(separator: "/").map { Self.percentDecode(String($0), plusIsSpace: false) }
        var query: [String: String] = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = Self.percentDecode(String(kv[0]), plusIsSpace: true)
                query[key] = kv.count > 1 ? Self.percentDecode(String(kv[1]), plusIsSpace: true) : ""
            }
        }
        self.query = query
    }

    /// `%XX` decoding; malformed escapes are kept as they are, invalid UTF-8 is replaced.
    static func percentDecode(_ text: String, plusIsSpace: Bool) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        while let c = utf8.popFirst() {
            if c == UInt8(ascii: "%"), utf8.count >= 2, let h = hex(utf8[utf8.startIndex]),
                let l = hex(utf8[utf8.startIndex + 1])
            {
                bytes.append(h << 4 | l)
                utf8 = utf8.dropFirst(2)
            } else if c == UInt8(ascii: "+") && plusIsSpace {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A route's answer: a status, headers and a body, whole or streamed.
public struct HTTPResponse: Sendable {
    public enum Body: Sendable {
        case bytes([UInt8])
        /// Bytes many answers share (the metrics exposition): written to each connection as
        /// they are, not copied per answer (each copy is held until its client reads it, and
        /// 48 scrapers that read nothing held 48 copies of a 67 MB exposition).
        case shared(ByteBuffer)
        /// Sent chunk by chunk as it comes (Server-Sent Events); the response ends when the
        /// sequence does. The producer must bound what it buffers.
        case stream(AsyncStream<[UInt8]>)

        /// A whole body's bytes to write (nil for a stream); shared ones as they are.
        func whole(_ allocator: ByteBufferAllocator) -> ByteBuffer? {
            switch self {
            case .bytes(let bytes): allocator.buffer(bytes: bytes)
            case .shared(let buffer): buffer
            case .stream: nil
            }
        }
    }

    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: Body

    public init(status: HTTPResponseStatus = .ok, headers: HTTPHeaders = [:], body: Body = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func text(_ text: String, status: HTTPResponseStatus = .ok, contentType: String = "text/plain; charset=utf-8")
        -> HTTPResponse
    {
        HTTPResponse(status: status, headers: ["Content-Type": contentType], body: .bytes(Array(text.utf8)))
    }

    public static func bytes(_ bytes: [UInt8], contentType: String, status: HTTPResponseStatus = .ok) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": contentType], body: .bytes(bytes))
    }

    /// An error as JSON: `{"error": "..."}`.
    public static func error(_ status: HTTPResponseStatus, _ message: String) -> HTTPResponse {
        .bytes(Array("{\"error\":\(JSONText.quote(message))}\n".utf8), contentType: "application/json", status: status)
    }
}

/// What answers requests: the HTTP server asks each in turn, the first non-nil answer wins.
/// When none answers, a path some route has other methods for gets 405 with those methods in
/// `Allow` (RFC 9110); any other, 404.
public protocol HTTPRoutes: Sendable {
    func respond(to request: HTTPRequest) async -> HTTPResponse?
    /// The methods this route answers at the request's path (empty: the path is not its).
    func methods(for request: HTTPRequest) -> [HTTPMethod]
}

extension HTTPRoutes {
    public func methods(for request: HTTPRequest) -> [HTTPMethod] { [] }
}

extension HTTPResponse {
    /// 405 for a path that answers `allowed` only.
    static func methodNotAllowed(_ method: HTTPMethod, _ path: String, allowed: [HTTPMethod]) -> HTTPResponse {
        var response = HTTPResponse.error(.methodNotAllowed, "\(method) is not allowed on \(path)")
        response.headers.replaceOrAdd(name: "Allow", value: allowed.map(\.rawValue).joined(separator: ", "))
        return response
    }
}

/// JSON string quoting (RFC 8259): what every JSON body here is built with.
public enum JSONText {
    public static func quote(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            // Also escaped: < > & (so JSON inlined in a page can never close a script tag),
            // the line separators JavaScript once refused, and controls.
            case "<", ">", "&", "\u{2028}", "\u{2029}":
                out += unicodeEscape(scalar.value)
            default:
                if scalar.value < 0x20 {
                    out += unicodeEscape(scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func unicodeEscape(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "\\u" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

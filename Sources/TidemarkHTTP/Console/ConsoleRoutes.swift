import Foundation
import Logging
import NIOHTTP1
import Prometheus
import Synchronization
import Tidemark

/// The live web console (`/`) and its JSON API (`/api/...`), served by the broker's HTTP
/// listener. Pages are one HTML shell and a hand-written script embedded in the binary (no
/// CDN); the script renders every view from the JSON API with DOM text nodes only, so a
/// record's bytes can never become markup.
///
/// Safety: mutating endpoints (offset reset, dead-letter requeue) are POST only, need the
/// auth token (`--http-auth-token`) in an `X-Tidemark-Token` header — a header a cross-site
/// form cannot send, and that a cross-site script cannot send without a CORS preflight the
/// console never grants — and, when the browser says where the request comes from, an
/// `Origin` naming this host. Without a configured token they are refused. When the listener
/// binds a non-loopback address (only allowed with a token), every `/api/` read needs the
/// token too (the header, or `?token=` for the event stream, which EventSource cannot add
/// headers to).
public final class ConsoleRoutes: HTTPRoutes {
    let data: ConsoleData
    let authToken: String?
    let tokenForReads: Bool
    let logger: Logger
    /// Requeued dead letters go out through one idempotent embedded producer, made on first use.
    private let requeuer = Mutex<Producer?>(nil)
    /// Dead letters requeued from this console since the broker started (see `RequeueLedger`).
    let requeued = Mutex(RequeueLedger())
    /// Open event streams (each one sends a snapshot a second): bounded.
    private let streams = Atomic<Int>(0)
    static let maxStreams = 32

    public init(
        broker: Broker, registry: PrometheusCollectorRegistry?, identity: NodeIdentity, authToken: String?,
        tokenForReads: Bool, maxGroups: Int = 1000, logger: Logger = Logger(label: "tidemark.console")
    ) {
        data = ConsoleData(broker: broker, registry: registry, identity: identity, maxGroups: maxGroups)
        self.authToken = authToken.flatMap { $0.isEmpty ? nil : $0 }
        self.tokenForReads = tokenForReads
        self.logger = logger
        data.start()
    }

    /// Stops the sampler (the broker is about to close).
    public func stop() { data.stop() }

    static let pagePaths = ["/", "/topics", "/groups", "/queues"]

    public func respond(to request: HTTPRequest) async -> HTTPResponse? {
        let path = request.path
        let parts = request.pathSegments
        if request.method == .GET || request.method == .HEAD {
            if Self.pagePaths.contains(path) || (parts.count == 2 && ["topics", "groups", "queues"].contains(parts[0])) {
                return .bytes(Array(ConsoleAssets.html.utf8), contentType: "text/html; charset=utf-8").securityHeaders()
            }
            if path == "/console.js" { return .bytes(Array(ConsoleAssets.script.utf8), contentType: "text/javascript; charset=utf-8") }
            if path == "/console.css" { return .bytes(Array(ConsoleAssets.style.utf8), contentType: "text/css; charset=utf-8") }
        }
        guard parts.first == "api" else { return nil }
        // Reads need no token on a loopback console, so a page of another site must not reach
        // them by pointing its own name at 127.0.0.1 (DNS rebinding): requests addressed to
        // another name (a proxy's) need the token there too.
        // A proxy's forwarding headers count as another name: the request came from elsewhere.
        if !tokenForReads && request.method != .POST
            && (!Self.isLoopbackHost(request.headers.first(name: "Host")) || Self.isForwarded(request))
        {
            if let refusal = authorize(request, mutating: false) { return refusal }
        }
        if tokenForReads || request.method == .POST {
            if let refusal = authorize(request, mutating: request.method == .POST) { return refusal }
        }
        let api = Array(parts.dropFirst())
        // A group named "." or ".." cannot be a path segment (a browser resolves it as a step):
        // the page names it in the `id` query parameter instead, which wins over the segment.
        let named = { (segment: String) in request.query["id"] ?? segment }
        // HEAD is answered wherever GET is (RFC 9110), without the body.
        switch (request.method == .HEAD ? .GET : request.method, api.count) {
        // Reports that read from disk (time lags, queue ages) run as the broker's reports do.
        case (.GET, 1) where api[0] == "overview": return await report { $0.json($0.data.overview()) }
        case (.GET, 1) where api[0] == "topics": return await report { $0.json($0.data.topicRows()) }
        case (.GET, 1) where api[0] == "groups": return await report { $0.json($0.data.groupRows()) }
        case (.GET, 1) where api[0] == "queues": return await report { $0.json($0.data.queueRows()) }
        case (.GET, 1) where api[0] == "events": return events(request)
        case (.GET, 2) where api[0] == "topics":
            let name = api[1]
            return await report { $0.data.topicDetail(name).map($0.json) ?? .error(.notFound, "no topic '\(name)'") }
        case (.GET, 3) where api[0] == "topics" && api[2] == "messages": return await messages(topic: api[1], request)
        case (.GET, 2) where api[0] == "groups":
            let name = named(api[1])
            return await report { $0.data.groupDetail(name).map($0.json) ?? .error(.notFound, "no group '\(name)'") }
        case (.POST, 3) where api[0] == "groups" && api[2] == "reset": return await reset(group: named(api[1]), request)
        case (.GET, 2) where api[0] == "queues":
            let name = named(api[1])
            return await report { $0.data.queueDetail(name).map($0.json) ?? .error(.notFound, "no share group '\(name)'") }
        case (.GET, 3) where api[0] == "queues" && api[2] == "dlq": return await deadLetters(group: named(api[1]), request)
        case (.POST, 4) where api[0] == "queues" && api[2] == "dlq" && api[3] == "requeue":
            return await requeue(group: named(api[1]), request)
        default:
            let allowed = Self.apiMethods(api)
            if allowed.isEmpty { return .error(.notFound, "no such API: \(path)") }
            // A known object without that method (a topic of a name nobody has is a 404 above).
            return .methodNotAllowed(request.method, path, allowed: allowed)
        }
    }

    /// `body`'s answer, built as a broker report (`Broker.report`).
    private func report(_ body: @escaping @Sendable (ConsoleRoutes) -> HTTPResponse) async -> HTTPResponse {
        await data.broker.report({ [self] in body(self) }) ?? MetricsRoutes.busy
    }

    /// The methods the API answers at `api` (the path after /api/): empty when it has no such path.
    static func apiMethods(_ api: [String]) -> [HTTPMethod] {
        switch api.count {
        case 1 where ["overview", "topics", "groups", "queues", "events"].contains(api[0]): [.GET, .HEAD]
        case 2 where ["topics", "groups", "queues"].contains(api[0]): [.GET, .HEAD]
        case 3 where (api[0] == "topics" && api[2] == "messages") || (api[0] == "queues" && api[2] == "dlq"): [.GET, .HEAD]
        case 3 where api[0] == "groups" && api[2] == "reset": [.POST]
        case 4 where api[0] == "queues" && api[2] == "dlq" && api[3] == "requeue": [.POST]
        default: []
        }
    }

    public func methods(for request: HTTPRequest) -> [HTTPMethod] {
        let (path, parts) = (request.path, request.pathSegments)
        if Self.pagePaths.contains(path) || (parts.count == 2 && ["topics", "groups", "queues"].contains(parts[0]))
            || path == "/console.js" || path == "/console.css"
        {
            return [.GET, .HEAD]
        }
        return parts.first == "api" ? Self.apiMethods(Array(parts.dropFirst())) : []
    }

    // MARK: Safety

    private func authorize(_ request: HTTPRequest, mutating: Bool) -> HTTPResponse? {
        guard let authToken else {
            return .error(.forbidden, "this action needs the console's auth token: start tidemark serve with --http-auth-token")
        }
        // In the query only for the event stream (a browser's EventSource sends no headers):
        // elsewhere it would land in proxies' access logs.
        let given =
            request.headers.first(name: "X-Tidemark-Token")?.trimmingCharacters(in: .whitespaces)
            ?? (!mutating && request.path == "/api/events" ? request.query["token"] : nil)
        guard let given, Self.constantTimeEqual(given, authToken) else {
            return .error(.unauthorized, "missing or wrong X-Tidemark-Token")
        }
        // The page's own origin: the Host it was addressed to, or the one a proxy says it was
        // (a header a page of another site cannot add without a preflight, which is refused).
        // (Proxies in a chain list theirs after a comma: the first is the one the browser used.)
        let forwardedHost = request.headers.first(name: "X-Forwarded-Host")?.split(separator: ",").first
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let hosts = [request.headers.first(name: "Host"), forwardedHost].compactMap { $0 }
        if mutating, let origin = request.headers.first(name: "Origin"),
            !hosts.contains(where: { origin == "http://\($0)" || origin == "https://\($0)" })
        {
            return .error(.forbidden, "cross-origin request refused (Origin \(origin), Host \(hosts.joined(separator: ", ")))")
        }
        return nil
    }

    /// Whether a proxy says it passed the request on (RFC 7239 `Forwarded`, the X-Forwarded-*
    /// family, `Via`): a proxy on this machine addresses a loopback console by a loopback name
    /// (nginx's default `Host` is the upstream's), and would serve it to anyone without the token.
    static func isForwarded(_ request: HTTPRequest) -> Bool {
        ["Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP", "Via"].contains {
            !request.headers[canonicalForm: $0].isEmpty
        }
    }

    /// Whether a Host header names this machine's loopback: localhost, 127.x.y.z or [::1], with
    /// any port.
    static func isLoopbackHost(_ host: String?) -> Bool {
        guard var name = host?.lowercased() else { return false }
        if name.hasPrefix("[") {
            name = String(name.dropFirst().prefix { $0 != "]" })
        } else if let colon = name.lastIndex(of: ":") {
            name = String(name[..<colon])
        }
        if name.hasSuffix(".") { name.removeLast() }
        return name == "localhost" || name == "::1" || (name.hasPrefix("127.") && name.split(separator: ".").count == 4
            && name.split(separator: ".").allSatisfy { UInt8($0) != nil })
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return difference == 0
    }

    // MARK: Reads

    func json<T: Encodable>(_ value: T) -> HTTPResponse {
        guard let body = try? JSONEncoder.console().encode(value) else { return .error(.internalServerError, "encoding failed") }
        var response = HTTPResponse.bytes(Array(body), contentType: "application/json")
        response.headers.add(name: "Cache-Control", value: "no-store")
        return response
    }

    private func messages(topic: String, _ request: HTTPRequest) async -> HTTPResponse {
        let broker = data.broker
        guard let count = try? broker.partitionCount(of: topic) else { return .error(.notFound, "no topic '\(topic)'") }
        let partition = Int(request.query["partition"] ?? "0") ?? -1
        guard (0..<count).contains(partition) else { return .error(.badRequest, "partition must be in 0..<\(count)") }
        let limit = min(max(Int(request.query["limit"] ?? "20") ?? 20, 1), 100)
        do {
            let (start, end) = try broker.offsets(topic: topic, partition: partition)
            var from = start
            if let offset = request.query["offset"], !offset.isEmpty {
                guard let value = Int64(offset) else { return .error(.badRequest, "offset must be a number") }
                from = value
            } else if let time = request.query["time"], !time.isEmpty {
                guard let ms = Self.parseTime(time) else { return .error(.badRequest, "time must be ms since the epoch or ISO 8601") }
                from = try await broker.resolveOffset(topic: topic, partition: partition, .timestamp(ms)).offset
            }
            from = min(max(from, start), end)
            let records = try await broker.readRecords(topic: topic, partition: partition, from: from, limit: limit)
            let messages = ConsoleModel.fitted(records.map(ConsoleModel.Message.init))
            let next = messages.last.map { $0.offset + 1 }
            return json(
                ConsoleModel.Messages(
                    topic: topic, partition: partition, logStartOffset: start, logEndOffset: end, from: from,
                    next: next.flatMap { $0 < end ? $0 : nil }, messages: messages))
        } catch {
            return .error(.internalServerError, "\(error)")
        }
    }

    static func parseTime(_ text: String) -> Int64? {
        if let ms = Int64(text) { return ms }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return Int64(exactly: (date.timeIntervalSince1970 * 1000).rounded(.down)) }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text).flatMap { Int64(exactly: ($0.timeIntervalSince1970 * 1000).rounded(.down)) }
    }

    private func deadLetters(group: String, _ request: HTTPRequest) async -> HTTPResponse {
        let broker = data.broker
        guard broker.shares.groupIds().contains(group) else { return .error(.notFound, "no share group '\(group)'") }
        guard let topic = broker.deadLetterTopic(of: group), let count = try? broker.partitionCount(of: topic) else {
            return json(ConsoleModel.DeadLetters(group: group, topic: broker.deadLetterTopic(of: group), partition: 0, logStartOffset: 0, logEndOffset: 0, next: nil, letters: []))
        }
        let partition = Int(request.query["partition"] ?? "0") ?? -1
        guard (0..<count).contains(partition) else { return .error(.badRequest, "partition must be in 0..<\(count)") }
        let limit = min(max(Int(request.query["limit"] ?? "20") ?? 20, 1), 100)
        do {
            let (start, end) = try broker.offsets(topic: topic, partition: partition)
            let from = min(max(Int64(request.query["offset"] ?? "") ?? start, start), end)
            let records = try await broker.readRecords(topic: topic, partition: partition, from: from, limit: limit)
            let letters = ConsoleModel.fitted(records.map { record in
                var errors: [String: String] = [:]
                // (At most 64, cut as header values are: any producer may write to the topic.)
                for header in record.headers.lazy.filter({ $0.key.hasPrefix("_dlq.errors.") }).prefix(ConsoleModel.Message.maxHeaders) {
                    errors[ConsoleModel.shown(String(header.key.dropFirst("_dlq.errors.".count)))] =
                        header.value.map { ConsoleModel.shown(String(decoding: $0, as: UTF8.self), maxBytes: 4096) } ?? ""
                }
                let place = requeued.withLock { $0.place(of: "\(topic)-\(partition)@\(record.offset)") }
                return ConsoleModel.DeadLetter(message: .init(record), errors: errors, requeuedTo: place)
            })
            let next = letters.last.map { $0.message.offset + 1 }
            return json(
                ConsoleModel.DeadLetters(
                    group: group, topic: topic, partition: partition, logStartOffset: start, logEndOffset: end,
                    next: next.flatMap { $0 < end ? $0 : nil }, letters: letters))
        } catch {
            return .error(.internalServerError, "\(error)")
        }
    }

    /// `/api/events`: a `snapshot` event a second (`ConsoleData.sharedSnapshot`: one broker
    /// report a second for all streams; `?max_events=N` ends the stream after N events, for
    /// tests and headless browsers). At most `maxStreams` at once; each buffers at most 2
    /// events (a slow reader skips to the newest).
    private func events(_ request: HTTPRequest) -> HTTPResponse {
        // HEAD: what a stream's answer starts with, and no stream (a monitor's HEAD took a
        // stream's slot and got its events).
        if request.method == .HEAD {
            return HTTPResponse(status: .ok, headers: ["Content-Type": "text/event-stream", "Cache-Control": "no-store"], body: .bytes([]))
        }
        guard streams.wrappingAdd(1, ordering: .relaxed).newValue <= Self.maxStreams else {
            streams.subtract(1, ordering: .relaxed)
            return .error(.serviceUnavailable, "too many open event streams")
        }
        let maxEvents = Int(request.query["max_events"] ?? "").map { max(1, $0) }
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream(bufferingPolicy: .bufferingNewest(2))
        let data = self.data
        let streams = self
        let producer = Task {
            continuation.yield(Array("retry: 2000\n\n".utf8))
            var sequence = 0
            while !Task.isCancelled && !data.broker.isClosed {
                // None this second when `Broker.maxReports` reports run or wait.
                if var snapshot = await data.sharedSnapshot() {
                    sequence += 1
                    snapshot.sequence = sequence
                    if let body = try? JSONEncoder.console().encode(snapshot) {
                        continuation.yield(Array("event: snapshot\nid: \(sequence)\ndata: ".utf8) + Array(body) + Array("\n\n".utf8))
                    }
                    if let maxEvents, sequence >= maxEvents { break }
                }
                try? await Task.sleep(for: .seconds(1))
            }
            continuation.finish()
            streams.streams.subtract(1, ordering: .relaxed)
        }
        continuation.onTermination = { _ in producer.cancel() }
        var response = HTTPResponse(
            status: .ok, headers: ["Content-Type": "text/event-stream", "Cache-Control": "no-store"], body: .stream(stream))
        response.headers.add(name: "X-Accel-Buffering", value: "no")
        return response
    }

    // MARK: Actions

    private func reset(group: String, _ request: HTTPRequest) async -> HTTPResponse {
        let asked: ConsoleModel.ResetRequest
        do {
            asked = try JSONDecoder().decode(ConsoleModel.ResetRequest.self, from: Data(request.body))
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.last?.stringValue == "timestamp" {
            return .error(.badRequest, context.debugDescription)
        } catch {
            return .error(.badRequest, "body must be JSON: {\"topic\", \"to\": earliest|latest|time|shift, \"timestamp\", \"shift\", \"dryRun\"}")
        }
        let target: OffsetReset
        switch asked.to {
        case "earliest": target = .earliest
        case "latest": target = .latest
        case "time":
            guard let ms = asked.timestamp else { return .error(.badRequest, "to=time needs timestamp (ms since the epoch or ISO 8601)") }
            target = .timestamp(ms)
        case "shift":
            guard let shift = asked.shift else { return .error(.badRequest, "to=shift needs shift") }
            target = .shift(shift)
        default: return .error(.badRequest, "to must be earliest, latest, time or shift")
        }
        let dryRun = asked.dryRun ?? true
        let before = data.broker.groups.fetchOffsets(groupId: group)
        do {
            let result = try await data.broker.resetOffsets(group: group, topic: asked.topic, to: target, dryRun: dryRun)
            if !dryRun {
                logger.notice("consumer group offsets reset from the console", metadata: ["group": "\(group)", "topic": "\(asked.topic)", "to": "\(asked.to)"])
            }
            let rows = result.sorted { $0.key.partition < $1.key.partition }.map {
                ConsoleModel.ResetRow(topic: $0.key.topic, partition: $0.key.partition, from: before[$0.key]?.offset, to: $0.value)
            }
            return json(ConsoleModel.ResetResult(dryRun: dryRun, offsets: rows))
        } catch let error as TidemarkError where error.code == .rebalanceInProgress {
            return .error(.conflict, "refused: \(error.message) (stop its consumers first)")
        } catch let error as TidemarkError where error.code == .inconsistentGroupProtocol {
            return .error(.conflict, error.message)
        } catch let error as TidemarkError where error.code == .unknownTopicOrPartition {
            return .error(.notFound, error.message)
        } catch let error as TidemarkError where error.code == .invalidRequest {
            return .error(.badRequest, error.message)
        } catch {
            return .error(.badRequest, "\(error)")
        }
    }

    struct RequeueRequest: Codable {
        var partition: Int
        var offset: Int64
        /// Requeue a letter this console requeued before once more (otherwise 409).
        var force: Bool?
    }

    private func requeue(group: String, _ request: HTTPRequest) async -> HTTPResponse {
        let broker = data.broker
        guard let asked = try? JSONDecoder().decode(RequeueRequest.self, from: Data(request.body)) else {
            return .error(.badRequest, "body must be JSON: {\"partition\", \"offset\"} of the dead letter")
        }
        guard let topic = broker.deadLetterTopic(of: group) else { return .error(.notFound, "group '\(group)' has no dead-letter topic") }
        let letterName = "\(topic)-\(asked.partition)@\(asked.offset)"
        // One requeue per letter (a second click, or a page reloaded, made the job twice),
        // unless asked again with force; two at once are one.
        let previous: String?
        switch requeued.withLock({ $0.begin(letterName, force: asked.force ?? false) }) {
        case .begun(let earlier): previous = earlier
        case .inProgress: return .error(.conflict, "\(letterName) is being requeued")
        case .done(let place): return .error(.conflict, "\(letterName) was requeued to \(place) already (send force: true to requeue it again)")
        }
        do {
            let found = try await broker.readRecords(
                topic: topic, partition: asked.partition, from: asked.offset, limit: 1, maxRecordBytes: 64 << 20)
            guard let letter = found.first, letter.offset == asked.offset else {
                requeued.withLock { $0.cancel(letterName, previous: previous) }
                return .error(.notFound, "no dead letter at \(letterName)")
            }
            guard let record = broker.requeueRecord(for: letter) else {
                requeued.withLock { $0.cancel(letterName, previous: previous) }
                return .error(.conflict, "this dead letter has no original to requeue (its record had left the log)")
            }
            let producer = try await requeueProducer()
            let sent = try await producer.send(
                topic: record.topic, key: record.key, value: record.value, headers: record.headers)
            let place = "\(sent.topic)-\(sent.partition)@\(sent.offset)"
            requeued.withLock { $0.finish(letterName, at: place) }
            logger.notice("dead letter requeued from the console", metadata: ["group": "\(group)", "from": "\(letterName)", "to": "\(place)"])
            return json(ConsoleModel.Requeued(topic: sent.topic, partition: sent.partition, offset: sent.offset))
        } catch {
            requeued.withLock { $0.cancel(letterName, previous: previous) }
            // A partition the topic lacks, or an original topic gone since: the client's to fix.
            if let error = error as? TidemarkError {
                switch error.code {
                case .unknownTopicOrPartition, .unknownTopicId: return .error(.notFound, error.message)
                case .invalidTopicName, .invalidRequest, .messageTooLarge, .invalidRecord, .invalidTimestamp:
                    return .error(.badRequest, error.message)
                default: return .error(.internalServerError, error.message)
                }
            }
            return .error(.internalServerError, "\(error)")
        }
    }

    private func requeueProducer() async throws -> Producer {
        if let made = requeuer.withLock({ $0 }) { return made }
        let made = try await Producer(broker: data.broker)
        return requeuer.withLock { current in
            if let current { return current }
            current = made
            return made
        }
    }
}

extension HTTPResponse {
    /// Headers for the console's page: no framing by other sites, scripts and styles from
    /// this origin only (the page has no inline script), no MIME sniffing.
    func securityHeaders() -> HTTPResponse {
        var response = self
        response.headers.add(name: "Content-Security-Policy", value: "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        response.headers.add(name: "X-Content-Type-Options", value: "nosniff")
        response.headers.add(name: "X-Frame-Options", value: "DENY")
        response.headers.add(name: "Referrer-Policy", value: "no-referrer")
        return response
    }
}

/// Which dead letters this console requeued, and where to: a letter is requeued once unless
/// asked again with force, and its page says where it went. Kept in memory (the dead-letter
/// topic is a log: nothing is taken out of it), for the last `capacity` letters; a restart
/// forgets them. Owned by `ConsoleRoutes`, behind its mutex.
struct RequeueLedger {
    /// `begun`: with where an earlier forced requeue went, to keep if this one fails.
    enum Start: Equatable { case begun(previous: String?), inProgress, done(String) }

    static let capacity = 10_000
    /// Letter ("topic-partition@offset") -> where its copy went, "" while being requeued.
    private(set) var places: [String: String] = [:]
    private var order: [String] = []

    mutating func begin(_ letter: String, force: Bool) -> Start {
        let previous = places[letter]
        if let place = previous {
            if place.isEmpty { return .inProgress }
            if !force { return .done(place) }
        } else {
            order.append(letter)
            if order.count > Self.capacity {
                let dropped = order.removeFirst()
                places[dropped] = nil
            }
        }
        places[letter] = ""
        return .begun(previous: previous)
    }

    /// (A letter evicted while it was being requeued stays out: it would never be evicted again.)
    mutating func finish(_ letter: String, at place: String) {
        if places[letter] != nil { places[letter] = place }
    }

    /// A requeue that did not happen: the letter is as it was before `begin`.
    mutating func cancel(_ letter: String, previous: String?) {
        places[letter] = previous
        if previous == nil { order.removeAll { $0 == letter } }
    }

    /// Where a letter went, if this console requeued it.
    func place(of letter: String) -> String? { places[letter].flatMap { $0.isEmpty ? nil : $0 } }
}

import Foundation
import Synchronization
import TidemarkWire

/// Incremental fetch sessions (KIP-227, Fetch v7+): a consumer of many partitions sends the
/// whole partition list once, then only what changed; the broker answers with only the
/// partitions that have something new (records, a moved high watermark or log start, an error).
///
/// Protocol, by the request's (session_id, session_epoch):
/// - (0, -1): no session, a full fetch (what v4-6 do).
/// - (0 or S, 0): close S if given, open a session over the request's partitions; the answer
///   carries the new session id (0 when the cache is full: the client goes on sessionless).
/// - (S, n > 0): the n-th incremental fetch of S: the request's partitions are added or
///   updated, `forgotten_topics_data` removed; unknown S → FETCH_SESSION_ID_NOT_FOUND, any
///   other n than expected → INVALID_FETCH_SESSION_EPOCH (the client then starts over).
/// - (S, -1): close S; a full fetch.
///
/// Ownership: the sessions live in one `Mutex`, reached from every connection's loop (a
/// session is not tied to a connection, as in Kafka). A session is used by one fetch at a
/// time (the epoch orders them). Bounds: at most `maxSessions` (as
/// `max.incremental.fetch.session.cache.slots`, 1000; the least recently used makes room if
/// unused for `protectedMs`, else the new client fetches without a session), at most
/// `maxPartitionsPerSession` partitions each and `maxCachedPartitions` in all (a session that
/// would pass either ends, or is not opened), and sessions idle for `idleMs` are dropped.
/// A cached partition costs a few hundred bytes: 1000 sessions of 100,000 were tens of GB,
/// which one client could fill with 1,000 requests. Ids are random.
final class FetchSessionCache: Sendable {
    /// One partition of a session, by topic id (v13+) or by name.
    struct Key: Hashable, Sendable {
        var topic: String
        var topicId: WireUUID
        var partition: Int32
    }

    /// What the session remembers of a partition: the client's last request for it and what
    /// the broker last told it.
    struct Cached: Sendable {
        var request: FetchRequest.Partition
        var sentHighWatermark: Int64 = -2
        var sentLogStartOffset: Int64 = -2
    }

    struct Session: Sendable {
        let id: Int32
        /// The epoch the next incremental fetch must carry.
        var nextEpoch: Int32 = 1
        var partitions: [Key: Cached] = [:]
        /// Insertion order: the order partitions are read and answered in.
        var order: [Key] = []
        var lastUsedMs: Int64
        /// Order of last use (ties of the millisecond clock broken): the eviction order.
        var lastUse: UInt64 = 0
    }

    struct State: Sendable {
        var sessions: [Int32: Session] = [:]
        var lastEvictionMs: Int64 = 0
        var uses: UInt64 = 0
        /// Partitions in all sessions.
        var cachedPartitions = 0

        mutating func remove(_ id: Int32) {
            if let gone = sessions.removeValue(forKey: id) { cachedPartitions -= gone.partitions.count }
        }
    }

    let maxSessions: Int
    let maxPartitionsPerSession: Int
    let maxCachedPartitions: Int
    let idleMs: Int64
    private let state = Mutex(State())

    /// A session used this recently is not evicted to make room for a new one.
    let protectedMs: Int64

    init(
        maxSessions: Int = 1000, maxPartitionsPerSession: Int = 100_000, maxCachedPartitions: Int = 200_000, idleMs: Int64 = 120_000,
        protectedMs: Int64 = 10_000
    ) {
        self.protectedMs = protectedMs
        self.maxCachedPartitions = maxCachedPartitions
        self.maxSessions = maxSessions
        self.maxPartitionsPerSession = maxPartitionsPerSession
        self.idleMs = idleMs
    }

    var count: Int { state.withLock { $0.sessions.count } }
    var cachedPartitions: Int { state.withLock { $0.cachedPartitions } }

    /// How a fetch uses the cache.
    enum Plan {
        /// Read `request` as it is (a full fetch); answer every partition with this session id
        /// (0: none), remembering what was sent when `record` is set.
        case full(request: FetchRequest, sessionId: Int32, record: Bool)
        /// Read the session's partitions (`request` holds them all); answer only the changed.
        case incremental(request: FetchRequest, sessionId: Int32)
        /// Answer at once with this top-level error.
        case error(KafkaError)
    }

    static func key(_ topic: FetchRequest.Topic, _ partition: Int32) -> Key {
        Key(topic: topic.topicId.isZero ? topic.topic : "", topicId: topic.topicId, partition: partition)
    }

    /// Decides how `request` (v7+) is served, updating the session it names.
    func plan(_ request: FetchRequest, nowMs: Int64) -> Plan {
        state.withLock { s in
            evictIdle(&s, nowMs: nowMs)
            let sessionId = request.sessionId
            let epoch = request.sessionEpoch
            if epoch == -1 {
                if sessionId != 0 { s.remove(sessionId) }
                return .full(request: request, sessionId: 0, record: false)
            }
            if epoch == 0 {
                if sessionId != 0 { s.remove(sessionId) }
                let count = request.topics.reduce(0) { $0 + $1.partitions.count }
                guard count <= maxPartitionsPerSession, s.cachedPartitions + count <= maxCachedPartitions else {
                    return .full(request: request, sessionId: 0, record: false)
                }
                if s.sessions.count >= maxSessions {
                    // Make room: the least recently used session goes, if its client has not
                    // fetched for `protectedMs` (its client gets FETCH_SESSION_ID_NOT_FOUND next
                    // time and starts a new one). Live sessions are kept: the new client is
                    // answered without one, as Kafka does with a full cache (evicting whichever
                    // was used last made 1,001 consumers take turns failing).
                    guard let oldest = s.sessions.values.min(by: { $0.lastUse < $1.lastUse }),
                        nowMs - oldest.lastUsedMs >= protectedMs
                    else {
                        return .full(request: request, sessionId: 0, record: false)
                    }
                    s.remove(oldest.id)
                }
                let id = Self.allocateId(&s)
                s.uses += 1
                var session = Session(id: id, lastUsedMs: nowMs, lastUse: s.uses)
                for topic in request.topics {
                    for partition in topic.partitions {
                        // A partition listed twice: the first listing, the one the fetch reads.
                        let key = Self.key(topic, partition.partition)
                        guard session.partitions[key] == nil else { continue }
                        session.order.append(key)
                        session.partitions[key] = Cached(request: partition)
                    }
                }
                s.sessions[id] = session
                s.cachedPartitions += session.partitions.count
                return .full(request: request, sessionId: id, record: true)
            }
            guard epoch > 0, var session = s.sessions[sessionId] else { return .error(.fetchSessionIdNotFound) }
            guard epoch == session.nextEpoch else { return .error(.invalidFetchSessionEpoch) }
            let before = session.partitions.count
            session.nextEpoch = epoch == Int32.max ? 1 : epoch + 1
            session.lastUsedMs = nowMs
            s.uses += 1
            session.lastUse = s.uses
            // Forgotten first, so that a session swapping partitions at a cap keeps its room (a
            // partition both listed and forgotten ends forgotten, as in Kafka, which adds first).
            var forgotten: Set<Key> = []
            for topic in request.forgotten {
                for partition in topic.partitions {
                    forgotten.insert(Key(topic: topic.topicId.isZero ? topic.topic : "", topicId: topic.topicId, partition: partition))
                }
            }
            if !forgotten.isEmpty {
                for key in forgotten { session.partitions.removeValue(forKey: key) }
                session.order.removeAll { forgotten.contains($0) }
            }
            for topic in request.topics {
                for partition in topic.partitions {
                    let key = Self.key(topic, partition.partition)
                    if forgotten.contains(key) { continue }
                    if var cached = session.partitions[key] {
                        cached.request = partition
                        session.partitions[key] = cached
                    } else {
                        guard session.partitions.count < maxPartitionsPerSession,
                            s.cachedPartitions + session.partitions.count - before < maxCachedPartitions
                        else {
                            // Past a cap: the session ends (the partition was dropped, and its
                            // client believed it fetched it); its next full fetch is answered
                            // without a session.
                            s.remove(sessionId)
                            return .error(.fetchSessionIdNotFound)
                        }
                        session.partitions[key] = Cached(request: partition)
                        session.order.append(key)
                    }
                }
            }
            s.sessions[sessionId] = session
            s.cachedPartitions += session.partitions.count - before
            // The whole session as one request, topics grouped in session order.
            var whole = request
            whole.topics = []
            for key in session.order {
                let cached = session.partitions[key]!
                if let last = whole.topics.last, last.topic == key.topic, last.topicId == key.topicId {
                    whole.topics[whole.topics.count - 1].partitions.append(cached.request)
                } else {
                    var topic = FetchRequest.Topic()
                    topic.topic = key.topic
                    topic.topicId = key.topicId
                    topic.partitions = [cached.request]
                    whole.topics.append(topic)
                }
            }
            return .incremental(request: whole, sessionId: sessionId)
        }
    }

    /// Notes what a response tells the client; for incremental fetches, drops the partitions
    /// with nothing new (no records, same high watermark and log start, no error).
    func answer(_ response: FetchResponse, sessionId: Int32, incremental: Bool) -> FetchResponse {
        var response = response
        response.sessionId = sessionId
        state.withLock { s in
            guard var session = s.sessions[sessionId] else { return }
            // Partitions that got records go to the back of the order, so that under a full
            // response budget the others are read first next time (no partition starves).
            var served: [Key] = []
            for t in response.topics.indices {
                let topic = response.topics[t]
                response.topics[t].partitions = topic.partitions.filter { p in
                    let key = Key(topic: topic.topicId.isZero ? topic.topic : "", topicId: topic.topicId, partition: p.partitionIndex)
                    guard var cached = session.partitions[key] else { return true }
                    if Self.hasRecords(p) { served.append(key) }
                    let changed =
                        p.errorCode != 0 || Self.hasRecords(p) || p.highWatermark != cached.sentHighWatermark
                        || p.logStartOffset != cached.sentLogStartOffset
                    if changed || !incremental {
                        cached.sentHighWatermark = p.highWatermark
                        cached.sentLogStartOffset = p.logStartOffset
                        session.partitions[key] = cached
                    }
                    return changed || !incremental
                }
            }
            if incremental { response.topics.removeAll { $0.partitions.isEmpty } }
            if !served.isEmpty && served.count < session.order.count {
                let moved = Set(served)
                session.order = session.order.filter { !moved.contains($0) } + session.order.filter { moved.contains($0) }
            }
            s.sessions[sessionId] = session
        }
        return response
    }

    static func hasRecords(_ partition: FetchResponse.Partition) -> Bool {
        switch partition.records {
        case .bytes(let bytes): !bytes.isEmpty
        case .slice(let slice): slice.length > 0
        case nil: false
        }
    }

    /// A random unused id, as Kafka's: counting from 1 at every start gave a client
    /// reconnecting after a restart (it closes its old id) another client's new session, and
    /// let any client close others' sessions by guessing.
    private static func allocateId(_ s: inout State) -> Int32 {
        while true {
            let id = Int32.random(in: 1...Int32.max)
            if s.sessions[id] == nil { return id }
        }
    }

    /// Drops idle sessions; looks at most once a second.
    private func evictIdle(_ s: inout State, nowMs: Int64) {
        guard !s.sessions.isEmpty, nowMs - s.lastEvictionMs >= 1_000 else { return }
        s.lastEvictionMs = nowMs
        for (id, session) in s.sessions where nowMs - session.lastUsedMs > idleMs { s.remove(id) }
    }
}

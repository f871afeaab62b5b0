import Testing
@testable import TidemarkWire

/// Builds expected bytes field by field, independently of `WireCoder`.
final class Bytes {
    var b: [UInt8] = []
    init() {}
    @discardableResult func i8(_ v: Int8) -> Bytes { b.append(UInt8(bitPattern: v)); return self }
    @discardableResult func i16(_ v: Int16) -> Bytes { b += withUnsafeBytes(of: v.bigEndian) { Array($0) }; return self }
    @discardableResult func i32(_ v: Int32) -> Bytes { b += withUnsafeBytes(of: v.bigEndian) { Array($0) }; return self }
    @discardableResult func i64(_ v: Int64) -> Bytes { b += withUnsafeBytes(of: v.bigEndian) { Array($0) }; return self }
    @discardableResult func bool(_ v: Bool) -> Bytes { b.append(v ? 1 : 0); return self }
    @discardableResult func str(_ s: String?) -> Bytes {
        guard let s else { return i16(-1) }
        i16(Int16(s.utf8.count))
        b += Array(s.utf8)
        return self
    }
    @discardableResult func bytes(_ v: [UInt8]?) -> Bytes {
        guard let v else { return i32(-1) }
        i32(Int32(v.count))
        b += v
        return self
    }
    @discardableResult func uvarint(_ v: UInt32) -> Bytes {
        var x = v
        while x >= 0x80 { b.append(UInt8(x & 0x7F) | 0x80); x >>= 7 }
        b.append(UInt8(x))
        return self
    }
    @discardableResult func compactStr(_ s: String) -> Bytes {
        uvarint(UInt32(s.utf8.count + 1))
        b += Array(s.utf8)
        return self
    }
}

func encode<M: KafkaMessage>(_ m: M, _ version: Int16, flexible: Bool = false) throws -> [UInt8] {
    try m.encoded(version: version, flexible: flexible)
}

@Suite struct WireCodecTests {
    @Test func requestHeaderV1AndV2() throws {
        var header = RequestHeader(apiKey: 18, apiVersion: 3, correlationId: 7, clientId: "rdkafka")
        var coder = WireCoder(writingFlexible: true)
        try header.code(&coder, flexible: true)
        let expected = Bytes()
        expected.i16(18).i16(3).i32(7).str("rdkafka").uvarint(0)  // client_id stays int16-length
        #expect(try coder.finishedBytes() == expected.b)
        var reader = WireCoder(reading: expected.b, flexible: true)
        var decoded = RequestHeader()
        try decoded.code(&reader, flexible: true)
        #expect(decoded == header && reader.remaining == 0)
        let nullClient = Bytes()
        nullClient.i16(3).i16(1).i32(-5).str(nil)
        reader = WireCoder(reading: nullClient.b)
        header = RequestHeader()
        try header.code(&reader, flexible: false)
        #expect(header.clientId == nil && header.correlationId == -5)
    }

    @Test func apiVersionsV0AndFlexibleV3() throws {
        var response = ApiVersionsResponse()
        response.apiKeys = [.init(apiKey: 0, minVersion: 0, maxVersion: 7), .init(apiKey: 18, minVersion: 0, maxVersion: 3)]
        let v0 = Bytes()
        v0.i16(0).i32(2).i16(0).i16(0).i16(7).i16(18).i16(0).i16(3)
        #expect(try encode(response, 0) == v0.b)
        let v1 = Bytes()
        v1.b = v0.b
        v1.i32(0)
        #expect(try encode(response, 1) == v1.b)
        let v3 = Bytes()
        v3.i16(0).uvarint(3).i16(0).i16(0).i16(7).uvarint(0).i16(18).i16(0).i16(3).uvarint(0).i32(0).uvarint(0)
        #expect(try encode(response, 3, flexible: true) == v3.b)
        let request = Bytes()
        request.compactStr("librdkafka").compactStr("2.0.2").uvarint(0)
        let decoded = try ApiVersionsRequest.decode(request.b, version: 3, flexible: true)
        #expect(decoded.clientSoftwareName == "librdkafka" && decoded.clientSoftwareVersion == "2.0.2")
        // Unknown tagged fields are skipped.
        let tagged = Bytes()
        tagged.compactStr("x").compactStr("y").uvarint(1).uvarint(5).uvarint(2).i16(0x0102)
        #expect(try ApiVersionsRequest.decode(tagged.b, version: 3, flexible: true).clientSoftwareVersion == "y")
    }

    @Test func metadataVersions() throws {
        let v0 = Bytes()
        v0.i32(0)
        #expect(try MetadataRequest.decode(v0.b, version: 0, flexible: false).topics == nil)  // empty = all
        let v1 = Bytes()
        v1.i32(-1)
        #expect(try MetadataRequest.decode(v1.b, version: 1, flexible: false).topics == nil)
        let v4 = Bytes()
        v4.i32(1).str("jobs").bool(false)
        let request = try MetadataRequest.decode(v4.b, version: 4, flexible: false)
        #expect(request.topics == ["jobs"] && !request.allowAutoTopicCreation)

        var response = MetadataResponse()
        response.brokers = [.init(nodeId: 0, host: "h", port: 9092)]
        response.clusterId = "c"
        response.controllerId = 0
        var topic = MetadataResponse.Topic()
        topic.name = "t"
        var partition = MetadataResponse.Partition()
        partition.replicaNodes = [0]
        partition.isrNodes = [0]
        topic.partitions = [partition]
        response.topics = [topic]
        func partitionBytes(_ b: Bytes) { b.i32(1).i16(0).i32(0).i32(0).i32(1).i32(0).i32(1).i32(0) }
        let e0 = Bytes()
        e0.i32(1).i32(0).str("h").i32(9092).i32(1).i16(0).str("t")
        partitionBytes(e0)
        #expect(try encode(response, 0) == e0.b)
        let e1 = Bytes()
        e1.i32(1).i32(0).str("h").i32(9092).str(nil).i32(0).i32(1).i16(0).str("t").bool(false)
        partitionBytes(e1)
        #expect(try encode(response, 1) == e1.b)
        let e3 = Bytes()
        e3.i32(0).i32(1).i32(0).str("h").i32(9092).str(nil).str("c").i32(0).i32(1).i16(0).str("t").bool(false)
        partitionBytes(e3)
        #expect(try encode(response, 3) == e3.b)
        #expect(try encode(response, 4) == e3.b)
    }

    @Test func produceV3ToV7() throws {
        let records: [UInt8] = Array(1...70)
        for version: Int16 in 3...7 {
            let b = Bytes()
            b.str(nil).i16(-1).i32(1500).i32(1).str("t").i32(1).i32(2).bytes(records)
            let request = try ProduceRequest.decode(b.b, version: version, flexible: false)
            #expect(request.acks == -1 && request.timeoutMs == 1500 && request.topics[0].partitions[0].index == 2)
            guard case .bytes(let view)? = request.topics[0].partitions[0].records, case let got = Array(view) else {
                Issue.record("records missing")
                continue
            }
            #expect(got == records)
            var response = ProduceResponse()
            var p = ProduceResponse.Partition()
            p.index = 2
            p.baseOffset = 10
            p.logStartOffset = 0
            var t = ProduceResponse.Topic()
            t.name = "t"
            t.partitions = [p]
            response.topics = [t]
            let e = Bytes()
            e.i32(1).str("t").i32(1).i32(2).i16(0).i64(10).i64(-1)
            if version >= 5 { e.i64(0) }
            e.i32(0)
            #expect(try encode(response, version) == e.b)
        }
    }

    @Test func fetchRequestAndResponseAcrossVersions() throws {
        for version: Int16 in 4...11 {
            let b = Bytes()
            b.i32(-1).i32(500).i32(1).i32(52_428_800).i8(0)
            if version >= 7 { b.i32(0).i32(-1) }
            b.i32(1).str("t").i32(1).i32(0)
            if version >= 9 { b.i32(-1) }
            b.i64(42)
            if version >= 5 { b.i64(-1) }
            b.i32(1_048_576)
            if version >= 7 { b.i32(0) }
            if version >= 11 { b.str("") }
            let request = try FetchRequest.decode(b.b, version: version, flexible: false)
            #expect(request.topics[0].partitions[0].fetchOffset == 42 && request.maxWaitMs == 500)
            #expect(try encode(request, version) == b.b)

            var response = FetchResponse()
            var p = FetchResponse.Partition()
            p.highWatermark = 50
            p.lastStableOffset = 50
            p.logStartOffset = 0
            p.records = .bytes([9, 9])
            var t = FetchResponse.Topic()
            t.topic = "t"
            t.partitions = [p]
            response.topics = [t]
            let e = Bytes()
            e.i32(0)
            if version >= 7 { e.i16(0).i32(0) }
            e.i32(1).str("t").i32(1).i32(0).i16(0).i64(50).i64(50)
            if version >= 5 { e.i64(0) }
            e.i32(-1)
            if version >= 11 { e.i32(-1) }
            e.bytes([9, 9])
            #expect(try encode(response, version) == e.b)
        }
    }

    @Test func listOffsetsVersions() throws {
        let v0 = Bytes()
        v0.i32(-1).i32(1).str("t").i32(1).i32(0).i64(-2).i32(1)
        #expect(try ListOffsetsRequest.decode(v0.b, version: 0, flexible: false).topics[0].partitions[0].timestamp == -2)
        let v2 = Bytes()
        v2.i32(-1).i8(1).i32(1).str("t").i32(1).i32(3).i64(1000)
        let r2 = try ListOffsetsRequest.decode(v2.b, version: 2, flexible: false)
        #expect(r2.isolationLevel == 1 && r2.topics[0].partitions[0].partitionIndex == 3)
        var response = ListOffsetsResponse()
        var p = ListOffsetsResponse.Partition()
        p.offset = 7
        p.timestamp = 1000
        p.oldStyleOffsets = [7]
        var t = ListOffsetsResponse.Topic()
        t.name = "t"
        t.partitions = [p]
        response.topics = [t]
        let e0 = Bytes()
        e0.i32(1).str("t").i32(1).i32(0).i16(0).i32(1).i64(7)
        #expect(try encode(response, 0) == e0.b)
        let e1 = Bytes()
        e1.i32(1).str("t").i32(1).i32(0).i16(0).i64(1000).i64(7)
        #expect(try encode(response, 1) == e1.b)
        let e2 = Bytes()
        e2.i32(0)
        e2.b += e1.b
        #expect(try encode(response, 2) == e2.b)
    }

    @Test func groupMessages() throws {
        // JoinGroup v0, v1, v5 requests.
        let j0 = Bytes()
        j0.str("g").i32(30000).str("").str("consumer").i32(1).str("range").bytes([1, 2])
        let join0 = try JoinGroupRequestMessage.decode(j0.b, version: 0, flexible: false)
        #expect(join0.sessionTimeoutMs == 30000 && join0.rebalanceTimeoutMs == -1 && join0.protocols[0].metadata == [1, 2])
        let j5 = Bytes()
        j5.str("g").i32(10000).i32(60000).str("m-1").str(nil).str("consumer").i32(1).str("range").bytes([])
        let join5 = try JoinGroupRequestMessage.decode(j5.b, version: 5, flexible: false)
        #expect(join5.memberId == "m-1" && join5.rebalanceTimeoutMs == 60000)
        #expect(try encode(join5, 5) == j5.b)
        var joined = JoinGroupResponseMessage()
        joined.generationId = 3
        joined.protocolName = "range"
        joined.leader = "m-1"
        joined.memberId = "m-1"
        joined.members = [.init(memberId: "m-1", metadata: [5])]
        let je0 = Bytes()
        je0.i16(0).i32(3).str("range").str("m-1").str("m-1").i32(1).str("m-1").bytes([5])
        #expect(try encode(joined, 0) == je0.b)
        let je5 = Bytes()
        je5.i32(0).i16(0).i32(3).str("range").str("m-1").str("m-1").i32(1).str("m-1").str(nil).bytes([5])
        #expect(try encode(joined, 5) == je5.b)
        // SyncGroup v0 and v3.
        let s3 = Bytes()
        s3.str("g").i32(3).str("m-1").str(nil).i32(1).str("m-1").bytes([0, 1])
        let sync3 = try SyncGroupRequestMessage.decode(s3.b, version: 3, flexible: false)
        #expect(sync3.assignments == [.init(memberId: "m-1", assignment: [0, 1])])
        var syncResponse = SyncGroupResponseMessage()
        syncResponse.assignment = [4]
        let se0 = Bytes()
        se0.i16(0).bytes([4])
        #expect(try encode(syncResponse, 0) == se0.b)
        let se1 = Bytes()
        se1.i32(0).i16(0).bytes([4])
        #expect(try encode(syncResponse, 3) == se1.b)
        // Heartbeat / LeaveGroup.
        let hb = Bytes()
        hb.str("g").i32(3).str("m-1")
        #expect(try HeartbeatRequest.decode(hb.b, version: 1, flexible: false).generationId == 3)
        #expect(try encode(ErrorOnlyResponse(errorCode: 27), 0) == [0, 27])
        #expect(try encode(ErrorOnlyResponse(errorCode: 27), 1) == [0, 0, 0, 0, 0, 27])
        let leave = Bytes()
        leave.str("g").str("m-1")
        #expect(try LeaveGroupRequest.decode(leave.b, version: 0, flexible: false).memberId == "m-1")
        // FindCoordinator v0 / v1.
        let fc1 = Bytes()
        fc1.str("g").i8(0)
        #expect(try FindCoordinatorRequest.decode(fc1.b, version: 1, flexible: false).key == "g")
        var coordinator = FindCoordinatorResponse()
        coordinator.host = "h"
        coordinator.port = 9
        let fe0 = Bytes()
        fe0.i16(0).i32(0).str("h").i32(9)
        #expect(try encode(coordinator, 0) == fe0.b)
        let fe1 = Bytes()
        fe1.i32(0).i16(0).str(nil).i32(0).str("h").i32(9)
        #expect(try encode(coordinator, 1) == fe1.b)
    }

    @Test func offsetCommitAndFetchVersions() throws {
        for version: Int16 in 0...3 {
            let b = Bytes()
            b.str("g")
            if version >= 1 { b.i32(4).str("m") }
            if version >= 2 { b.i64(-1) }
            b.i32(1).str("t").i32(1).i32(0).i64(99)
            if version == 1 { b.i64(-1) }
            b.str("meta")
            let request = try OffsetCommitRequest.decode(b.b, version: version, flexible: false)
            #expect(request.topics[0].partitions[0].committedOffset == 99 && request.topics[0].partitions[0].committedMetadata == "meta")
            #expect(try encode(request, version) == b.b)
            var response = OffsetCommitResponse()
            var t = OffsetCommitResponse.Topic()
            t.name = "t"
            var p = OffsetCommitResponse.Partition()
            p.errorCode = 22
            t.partitions = [p]
            response.topics = [t]
            let e = Bytes()
            if version >= 3 { e.i32(0) }
            e.i32(1).str("t").i32(1).i32(0).i16(22)
            #expect(try encode(response, version) == e.b)
        }
        let f2 = Bytes()
        f2.str("g").i32(-1)
        #expect(try OffsetFetchRequest.decode(f2.b, version: 2, flexible: false).topics == nil)
        var response = OffsetFetchResponse()
        var t = OffsetFetchResponse.Topic()
        t.name = "t"
        var p = OffsetFetchResponse.Partition()
        p.committedOffset = 5
        p.metadata = ""
        t.partitions = [p]
        response.topics = [t]
        let e1 = Bytes()
        e1.i32(1).str("t").i32(1).i32(0).i64(5).str("").i16(0)
        #expect(try encode(response, 1) == e1.b)
        let e3 = Bytes()
        e3.i32(0)
        e3.b += e1.b
        e3.i16(0)
        #expect(try encode(response, 3) == e3.b)
    }

    @Test func adminMessages() throws {
        let c3 = Bytes()
        c3.i32(1).str("t").i32(3).i16(1).i32(0).i32(1).str("retention.ms").str("1000").i32(5000).bool(true)
        let create = try CreateTopicsRequest.decode(c3.b, version: 3, flexible: false)
        #expect(create.validateOnly && create.topics[0].configs == [.init(name: "retention.ms", value: "1000")])
        var createResponse = CreateTopicsResponse()
        createResponse.topics = [.init(name: "t", errorCode: 36, errorMessage: "exists")]
        let ce0 = Bytes()
        ce0.i32(1).str("t").i16(36)
        #expect(try encode(createResponse, 0) == ce0.b)
        let ce2 = Bytes()
        ce2.i32(0).i32(1).str("t").i16(36).str("exists")
        #expect(try encode(createResponse, 2) == ce2.b)
        let d1 = Bytes()
        d1.i32(2).str("a").str("b").i32(100)
        #expect(try DeleteTopicsRequest.decode(d1.b, version: 1, flexible: false).topicNames == ["a", "b"])
        var deleteResponse = DeleteTopicsResponse()
        deleteResponse.responses = [.init(name: "a", errorCode: 3)]
        let de1 = Bytes()
        de1.i32(0).i32(1).str("a").i16(3)
        #expect(try encode(deleteResponse, 1) == de1.b)
        let dc = Bytes()
        dc.i32(1).i8(2).str("t").i32(-1).bool(false)
        #expect(try DescribeConfigsRequest.decode(dc.b, version: 1, flexible: false).resources[0].configurationKeys == nil)
        var configs = DescribeConfigsResponse()
        var result = DescribeConfigsResponse.Result()
        result.resourceName = "t"
        result.configs = [.init(name: "retention.ms", value: "1", isDefault: false)]
        configs.results = [result]
        let ce = Bytes()
        ce.i32(0).i32(1).i16(0).str(nil).i8(2).str("t").i32(1).str("retention.ms").str("1").bool(false).bool(false).bool(false)
        #expect(try encode(configs, 0) == ce.b)
        let ce1 = Bytes()
        ce1.i32(0).i32(1).i16(0).str(nil).i8(2).str("t").i32(1).str("retention.ms").str("1").bool(false).i8(1).bool(false).i32(0)
        #expect(try encode(configs, 1) == ce1.b)
        var groups = DescribeGroupsResponse()
        var group = DescribeGroupsResponse.Group()
        group.groupId = "g"
        group.groupState = "Stable"
        groups.groups = [group]
        let ge0 = Bytes()
        ge0.i32(1).i16(0).str("g").str("Stable").str("").str("").i32(0)
        #expect(try encode(groups, 0) == ge0.b)
        let ge3 = Bytes()
        ge3.i32(0).i32(1).i16(0).str("g").str("Stable").str("").str("").i32(0).i32(Int32.min)
        #expect(try encode(groups, 3) == ge3.b)
        var list = ListGroupsResponse()
        list.groups = [.init(groupId: "g", protocolType: "consumer")]
        let le1 = Bytes()
        le1.i32(0).i16(0).i32(1).str("g").str("consumer")
        #expect(try encode(list, 1) == le1.b)
        var ip = InitProducerIdResponse()
        ip.producerId = 1000
        ip.producerEpoch = 0
        let ipe = Bytes()
        ipe.i32(0).i16(0).i64(1000).i16(0)
        #expect(try encode(ip, 0) == ipe.b)
    }

    /// Hostile bytes: every request type at every implemented version either decodes or
    /// throws `WireError`; lying counts never allocate their claim.
    @Test func randomBytesNeverCrashDecoders() {
        var state: UInt64 = 12345
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        let decoders: [(ApiKey, (([UInt8], Int16) throws -> Void))] = [
            (.produce, { _ = try ProduceRequest.decode($0, version: $1, flexible: false) }),
            (.fetch, { _ = try FetchRequest.decode($0, version: $1, flexible: false) }),
            (.listOffsets, { _ = try ListOffsetsRequest.decode($0, version: $1, flexible: false) }),
            (.metadata, { _ = try MetadataRequest.decode($0, version: $1, flexible: false) }),
            (.offsetCommit, { _ = try OffsetCommitRequest.decode($0, version: $1, flexible: false) }),
            (.offsetFetch, { _ = try OffsetFetchRequest.decode($0, version: $1, flexible: false) }),
            (.findCoordinator, { _ = try FindCoordinatorRequest.decode($0, version: $1, flexible: false) }),
            (.joinGroup, { _ = try JoinGroupRequestMessage.decode($0, version: $1, flexible: false) }),
            (.syncGroup, { _ = try SyncGroupRequestMessage.decode($0, version: $1, flexible: false) }),
            (.describeGroups, { _ = try DescribeGroupsRequest.decode($0, version: $1, flexible: false) }),
            (.apiVersions, { _ = try ApiVersionsRequest.decode($0, version: $1, flexible: $1 >= 3) }),
            (.createTopics, { _ = try CreateTopicsRequest.decode($0, version: $1, flexible: false) }),
            (.deleteTopics, { _ = try DeleteTopicsRequest.decode($0, version: $1, flexible: false) }),
            (.describeConfigs, { _ = try DescribeConfigsRequest.decode($0, version: $1, flexible: false) }),
        ]
        for (api, decode) in decoders {
            for version in api.implemented {
                for _ in 0..<300 {
                    let count = Int(next() % 64)
                    // Biased toward small and 0xFF bytes, which make lengths lie.
                    let bytes = (0..<count).map { _ -> UInt8 in
                        let r = next() % 4
                        return r == 0 ? 0xFF : r == 1 ? 0 : UInt8(truncatingIfNeeded: next())
                    }
                    do { try decode(bytes, version) } catch is WireError {} catch { Issue.record("\(api) threw \(error)") }
                }
            }
        }
    }
}

/// Writers throw where a field cannot frame a value; they never trap.
@Suite struct WireWriterBoundsTests {
    @Test func stringLongerThanAnInt16LengthThrows() throws {
        var response = JoinGroupResponseMessage()
        response.memberId = String(repeating: "m", count: 40_000)
        var coder = WireCoder(writingFlexible: false)
        #expect(throws: WireError.self) { try response.encode(into: &coder, version: 4) }
        response.memberId = String(repeating: "m", count: 32_767)
        var fits = WireCoder(writingFlexible: false)
        try response.encode(into: &fits, version: 4)
    }

    /// A compact (flexible) string may say any length up to the frame's; Kafka reads at most
    /// 32,767 bytes, and so does the decoder now (a rack id or protocol name of 100 MiB was
    /// kept, and could not be written back in the older versions most clients use).
    @Test func flexibleStringsLongerThanKafkaReadsAreRefused() throws {
        var request = ConsumerGroupHeartbeatRequest()
        request.groupId = "g"
        request.rackId = String(repeating: "r", count: 32_768)
        var coder = WireCoder(writingFlexible: true)
        try request.encode(into: &coder, version: 0)
        #expect(throws: WireError.self) { _ = try ConsumerGroupHeartbeatRequest.decode(try coder.finishedBytes(), version: 0, flexible: true) }
        request.rackId = String(repeating: "r", count: 32_767)
        var fits = WireCoder(writingFlexible: true)
        try request.encode(into: &fits, version: 0)
        #expect(try ConsumerGroupHeartbeatRequest.decode(try fits.finishedBytes(), version: 0, flexible: true).rackId?.utf8.count == 32_767)
    }

    @Test func invalidUTF8StringsAreRefusedOnRead() throws {
        // group_id of two bytes 0xFF 0xFE: not UTF-8.
        let body: [UInt8] = [0, 2, 0xFF, 0xFE, 0, 0, 0, 1, 0, 0]
        #expect(throws: WireError.self) { _ = try HeartbeatRequest.decode(body, version: 0, flexible: false) }
        let good: [UInt8] = [0, 2, 0x68, 0x69, 0, 0, 0, 1, 0, 1, 0x6D]
        #expect(try HeartbeatRequest.decode(good, version: 0, flexible: false).groupId == "hi")
        // Every kind of sequence the decoder would repair is refused; valid multi-byte UTF-8
        // (2, 3 and 4 bytes) is kept byte for byte.
        let refused: [[UInt8]] = [
            [0xE2, 0x28, 0xA1],  // a 3-byte sequence broken in its middle
            [0xF0, 0x9F, 0x98],  // a 4-byte sequence cut after 3: repaired to as many bytes
            [0xF0, 0x9F, 0x98, 0x41],  // the same, then ASCII
            [0xED, 0xA0, 0x80],  // a UTF-16 surrogate
            [0xC0, 0xAF],  // overlong, 2 bytes
            [0xE0, 0x80, 0x80],  // overlong, 3 bytes
            [0xF0, 0x80, 0x80, 0x80],  // overlong, 4 bytes
            [0xF4, 0x90, 0x80, 0x80],  // beyond U+10FFFF
            [0x61, 0xE2, 0x82],  // cut short at the end
            [0x80],  // a continuation byte alone
        ]
        for bytes in refused {
            let frame: [UInt8] = [0, UInt8(bytes.count)] + bytes + [0, 0, 0, 1, 0, 0]
            #expect(throws: WireError.self, "\(bytes)") { _ = try HeartbeatRequest.decode(frame, version: 0, flexible: false) }
        }
        for text in ["grüße", "注文", "jobs-🚀", "a"] {
            let bytes = Array(text.utf8)
            let frame: [UInt8] = [0, UInt8(bytes.count)] + bytes + [0, 0, 0, 1, 0, 0]
            #expect(try HeartbeatRequest.decode(frame, version: 0, flexible: false).groupId == text)
        }
        // A length beyond the frame is truncation, not a read past its end.
        #expect(throws: WireError.truncated(field: "group_id")) {
            _ = try HeartbeatRequest.decode([0, 9, 0x61, 0x62], version: 0, flexible: false)
        }
    }
}

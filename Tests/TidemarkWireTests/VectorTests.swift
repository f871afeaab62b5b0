import Foundation
import Testing
import TidemarkWire

/// Byte-exact round trips of every version of every API against bodies encoded by another
/// implementation: kafka-python's protocol encoders, checked against Apache Kafka's message
/// schemas (tools/wire-vectors/generate.py writes Vectors/vectors.jsonl). Each body must
/// decode consuming every byte, and encode back to the very same bytes.
@Suite struct VectorTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var api: Int16
        var name: String
        var version: Int16
        var isRequest: Bool
        var bytes: [UInt8]
        var testDescription: String { "\(name) v\(version) \(isRequest ? "request" : "response")" }
    }

    static let vectors: [Vector] = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors/vectors.jsonl").path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let api = object["api"] as? Int, let version = object["version"] as? Int, let kind = object["kind"] as? String,
                let hex = object["hex"] as? String, let name = object["name"] as? String
            else { return nil }
            var bytes: [UInt8] = []
            var index = hex.startIndex
            while index < hex.endIndex {
                let next = hex.index(index, offsetBy: 2)
                bytes.append(UInt8(hex[index..<next], radix: 16)!)
                index = next
            }
            return Vector(api: Int16(api), name: name, version: Int16(version), isRequest: kind == "request", bytes: bytes)
        }
    }()

    /// Decodes with our codec and encodes again.
    static func roundTrip(_ vector: Vector) throws -> [UInt8] {
        let api = try #require(ApiKey(rawValue: vector.api))
        let flexible = api.isFlexible(vector.version)
        func trip<M: KafkaMessage>(_ type: M.Type, _ start: M = M()) throws -> [UInt8] {
            let decoded = try M.decoded(vector.bytes, version: vector.version, flexible: flexible, into: start)
            return try decoded.encoded(version: vector.version, flexible: flexible)
        }
        switch (api, vector.isRequest) {
        case (.produce, true): return try trip(ProduceRequest.self)
        case (.produce, false): return try trip(ProduceResponse.self)
        case (.fetch, true): return try trip(FetchRequest.self)
        case (.fetch, false): return try trip(FetchResponse.self)
        case (.listOffsets, true): return try trip(ListOffsetsRequest.self)
        case (.listOffsets, false): return try trip(ListOffsetsResponse.self)
        case (.metadata, true): return try trip(MetadataRequest.self)
        case (.metadata, false): return try trip(MetadataResponse.self)
        case (.offsetCommit, true): return try trip(OffsetCommitRequest.self)
        case (.offsetCommit, false): return try trip(OffsetCommitResponse.self)
        case (.offsetFetch, true): return try trip(OffsetFetchRequest.self)
        case (.offsetFetch, false): return try trip(OffsetFetchResponse.self)
        case (.findCoordinator, true): return try trip(FindCoordinatorRequest.self)
        case (.findCoordinator, false): return try trip(FindCoordinatorResponse.self)
        case (.joinGroup, true): return try trip(JoinGroupRequestMessage.self)
        case (.joinGroup, false): return try trip(JoinGroupResponseMessage.self)
        case (.heartbeat, true): return try trip(HeartbeatRequest.self)
        case (.heartbeat, false): return try trip(ErrorOnlyResponse.self)
        case (.leaveGroup, true): return try trip(LeaveGroupRequest.self)
        case (.leaveGroup, false): return try trip(LeaveGroupResponse.self)
        case (.syncGroup, true): return try trip(SyncGroupRequestMessage.self)
        case (.syncGroup, false): return try trip(SyncGroupResponseMessage.self)
        case (.describeGroups, true): return try trip(DescribeGroupsRequest.self)
        case (.describeGroups, false): return try trip(DescribeGroupsResponse.self)
        case (.listGroups, true): return try trip(ListGroupsRequest.self)
        case (.listGroups, false): return try trip(ListGroupsResponse.self)
        case (.apiVersions, true): return try trip(ApiVersionsRequest.self)
        case (.apiVersions, false): return try trip(ApiVersionsResponse.self)
        case (.createTopics, true): return try trip(CreateTopicsRequest.self)
        case (.createTopics, false): return try trip(CreateTopicsResponse.self)
        case (.deleteTopics, true): return try trip(DeleteTopicsRequest.self)
        case (.deleteTopics, false): return try trip(DeleteTopicsResponse.self)
        case (.deleteRecords, true): return try trip(DeleteRecordsRequest.self)
        case (.deleteRecords, false): return try trip(DeleteRecordsResponse.self)
        case (.initProducerId, true): return try trip(InitProducerIdRequest.self)
        case (.initProducerId, false): return try trip(InitProducerIdResponse.self)
        case (.offsetForLeaderEpoch, true): return try trip(OffsetForLeaderEpochRequest.self)
        case (.offsetForLeaderEpoch, false): return try trip(OffsetForLeaderEpochResponse.self)
        case (.electLeaders, true): return try trip(ElectLeadersRequest.self)
        case (.electLeaders, false): return try trip(ElectLeadersResponse.self)
        case (.describeAcls, true): return try trip(DescribeAclsRequest.self)
        case (.describeAcls, false): return try trip(DescribeAclsResponse.self)
        case (.createAcls, true): return try trip(CreateAclsRequest.self)
        case (.createAcls, false): return try trip(CreateAclsResponse.self)
        case (.deleteAcls, true): return try trip(DeleteAclsRequest.self)
        case (.deleteAcls, false): return try trip(DeleteAclsResponse.self)
        case (.describeConfigs, true): return try trip(DescribeConfigsRequest.self)
        case (.describeConfigs, false): return try trip(DescribeConfigsResponse.self)
        case (.alterConfigs, true): return try trip(AlterConfigsRequest.self, AlterConfigsRequest(incremental: false))
        case (.alterConfigs, false): return try trip(AlterConfigsResponse.self)
        case (.incrementalAlterConfigs, true): return try trip(AlterConfigsRequest.self, AlterConfigsRequest(incremental: true))
        case (.incrementalAlterConfigs, false): return try trip(AlterConfigsResponse.self)
        case (.describeLogDirs, true): return try trip(DescribeLogDirsRequest.self)
        case (.describeLogDirs, false): return try trip(DescribeLogDirsResponse.self)
        case (.createPartitions, true): return try trip(CreatePartitionsRequest.self)
        case (.createPartitions, false): return try trip(CreatePartitionsResponse.self)
        case (.deleteGroups, true): return try trip(DeleteGroupsRequest.self)
        case (.deleteGroups, false): return try trip(DeleteGroupsResponse.self)
        case (.offsetDelete, true): return try trip(OffsetDeleteRequest.self)
        case (.offsetDelete, false): return try trip(OffsetDeleteResponse.self)
        case (.describeCluster, true): return try trip(DescribeClusterRequest.self)
        case (.describeCluster, false): return try trip(DescribeClusterResponse.self)
        case (.describeProducers, true): return try trip(DescribeProducersRequest.self)
        case (.describeProducers, false): return try trip(DescribeProducersResponse.self)
        case (.listTransactions, true): return try trip(ListTransactionsRequest.self)
        case (.listTransactions, false): return try trip(ListTransactionsResponse.self)
        case (.describeClientQuotas, true): return try trip(DescribeClientQuotasRequest.self)
        case (.describeClientQuotas, false): return try trip(DescribeClientQuotasResponse.self)
        case (.describeUserScramCredentials, true): return try trip(DescribeUserScramCredentialsRequest.self)
        case (.describeUserScramCredentials, false): return try trip(DescribeUserScramCredentialsResponse.self)
        case (.listPartitionReassignments, true): return try trip(ListPartitionReassignmentsRequest.self)
        case (.listPartitionReassignments, false): return try trip(ListPartitionReassignmentsResponse.self)
        case (.alterPartitionReassignments, true): return try trip(AlterPartitionReassignmentsRequest.self)
        case (.alterPartitionReassignments, false): return try trip(AlterPartitionReassignmentsResponse.self)
        case (.consumerGroupHeartbeat, true): return try trip(ConsumerGroupHeartbeatRequest.self)
        case (.consumerGroupHeartbeat, false): return try trip(ConsumerGroupHeartbeatResponse.self)
        case (.consumerGroupDescribe, true): return try trip(ConsumerGroupDescribeRequest.self)
        case (.consumerGroupDescribe, false): return try trip(ConsumerGroupDescribeResponse.self)
        case (.shareGroupHeartbeat, true): return try trip(ShareGroupHeartbeatRequest.self)
        case (.shareGroupHeartbeat, false): return try trip(ShareGroupHeartbeatResponse.self)
        case (.shareGroupDescribe, true): return try trip(ShareGroupDescribeRequest.self)
        case (.shareGroupDescribe, false): return try trip(ShareGroupDescribeResponse.self)
        case (.shareFetch, true): return try trip(ShareFetchRequest.self)
        case (.shareFetch, false): return try trip(ShareFetchResponse.self)
        case (.shareAcknowledge, true): return try trip(ShareAcknowledgeRequest.self)
        case (.shareAcknowledge, false): return try trip(ShareAcknowledgeResponse.self)
        case (.describeShareGroupOffsets, true): return try trip(DescribeShareGroupOffsetsRequest.self)
        case (.describeShareGroupOffsets, false): return try trip(DescribeShareGroupOffsetsResponse.self)
        case (.alterShareGroupOffsets, true): return try trip(AlterShareGroupOffsetsRequest.self)
        case (.alterShareGroupOffsets, false): return try trip(AlterShareGroupOffsetsResponse.self)
        case (.deleteShareGroupOffsets, true): return try trip(DeleteShareGroupOffsetsRequest.self)
        case (.deleteShareGroupOffsets, false): return try trip(DeleteShareGroupOffsetsResponse.self)
        }
    }

    @Test func everyApiVersionHasVectors() {
        #expect(Self.vectors.count >= 300)
        // Each implemented version of each API from Kafka 4.1's floor up has a request and a response vector.
        let floors: [ApiKey: Int16] = [
            .listOffsets: 1, .offsetCommit: 2, .offsetFetch: 1, .createTopics: 2, .deleteTopics: 1, .describeConfigs: 1,
            .describeAcls: 1, .createAcls: 1, .deleteAcls: 1,
        ]
        for api in ApiKey.allCases {
            for version in max(api.implemented.lowerBound, floors[api] ?? 0)...api.implemented.upperBound {
                for isRequest in [true, false] {
                    #expect(
                        Self.vectors.contains { $0.api == api.rawValue && $0.version == version && $0.isRequest == isRequest },
                        "no vector for \(api) v\(version) \(isRequest ? "request" : "response")")
                }
            }
        }
    }

    @Test(arguments: VectorTests.vectors)
    func roundTripIsByteExact(_ vector: Vector) throws {
        let encoded = try Self.roundTrip(vector)
        #expect(encoded == vector.bytes, "\(vector.testDescription): \(encoded.count) bytes back for \(vector.bytes.count)")
    }
}

import Foundation
import TestSupport
import Testing
import TidemarkServer
import TidemarkWire

@testable import Tidemark

/// Consumer-protocol (KIP-848) requests checked as Kafka's group coordinator checks them, over
/// a real socket: malformed ConsumerGroupHeartbeats are INVALID_REQUEST before any group sees
/// them (`ConsumerHeartbeat.malformation`, and the Kafka front's own checks); an OffsetFetch
/// naming a member (v9) needs the member at its epoch; a member commits with OffsetCommit v9+.
@Suite struct ConsumerGroupValidationTests {
    static let invalidRequest: Int16 = 42
    static let unknownMemberId: Int16 = 25
    static let staleMemberEpoch: Int16 = 113
    static let unsupportedVersion: Int16 = 35

    static func heartbeat(_ client: RawClient, _ request: ConsumerGroupHeartbeatRequest) async throws -> ConsumerGroupHeartbeatResponse {
        try client.request(.consumerGroupHeartbeat, version: 1, correlation: 1, request)
        let (_, body) = try #require(await client.response())
        return try ConsumerGroupHeartbeatResponse.decode(body, from: 1, version: 1, flexible: true)
    }

    /// A well-formed join of `member` to `group`, subscribed to `t`.
    static func join(_ group: String, _ member: String) -> ConsumerGroupHeartbeatRequest {
        var request = ConsumerGroupHeartbeatRequest()
        request.groupId = group
        request.memberId = member
        request.memberEpoch = 0
        request.rebalanceTimeoutMs = 5_000
        request.subscribedTopicNames = ["t"]
        request.topicPartitions = []
        return request
    }

    static func fetchError(_ client: RawClient, group: String, member: String?, epoch: Int32) async throws -> Int16 {
        var request = OffsetFetchRequest()
        var g = OffsetFetchRequest.Group()
        g.groupId = group
        g.memberId = member
        g.memberEpoch = epoch
        request.groups = [g]
        try client.request(.offsetFetch, version: 9, correlation: 2, request)
        let (_, body) = try #require(await client.response())
        let response = try OffsetFetchResponse.decode(body, from: 1, version: 9, flexible: true)
        return try #require(response.groups.first).errorCode
    }

    static func commitError(_ client: RawClient, version: Int16, group: String, member: String, epoch: Int32) async throws -> Int16 {
        var request = OffsetCommitRequest()
        request.groupId = group
        request.memberId = member
        request.generationId = epoch
        var topic = OffsetCommitRequest.Topic()
        topic.name = "t"
        var partition = OffsetCommitRequest.Partition()
        partition.committedOffset = 0
        topic.partitions = [partition]
        request.topics = [topic]
        try client.request(.offsetCommit, version: version, correlation: 3, request)
        let (_, body) = try #require(await client.response())
        let flexible = ApiKey.offsetCommit.isFlexible(version)
        let response = try OffsetCommitResponse.decode(body, from: flexible ? 1 : 0, version: version, flexible: flexible)
        return try #require(response.topics.first?.partitions.first).errorCode
    }

    @Test func malformedHeartbeatsFetchesAndCommitsAreRefusedAsKafkaRefusesThem() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("t", partitions: 2)
        var config = ServerConfig()
        config.port = 0
        let server = try await KafkaServer.start(broker: broker, config: config)
        do {
            let client = try RawClient(port: server.boundPort)
            let joined = try await Self.heartbeat(client, Self.join("g", "m1"))
            #expect(joined.errorCode == 0)
            let epoch = joined.memberEpoch
            #expect(epoch >= 1)

            // Each is refused whole, and no group or member comes of it.
            var cases: [(String, ConsumerGroupHeartbeatRequest)] = []
            var r = Self.join("v1", "x")
            r.topicPartitions = nil
            cases.append(("owned partitions not given at a join", r))
            r = Self.join("v2", "x")
            r.topicPartitions = [ConsumerTopicPartitions(topicId: WireUUID(high: 7, low: 9), partitions: [0])]  // of no topic
            cases.append(("owned partitions at a join", r))
            r = Self.join("v3", "x")
            r.rebalanceTimeoutMs = -1
            cases.append(("no rebalance timeout at a join", r))
            r = Self.join("v4", "x")
            r.subscribedTopicNames = []
            cases.append(("a join subscribing to nothing", r))
            r = Self.join("v5", "x")
            r.rackId = ""
            cases.append(("an empty rack id", r))
            r = Self.join("v6", "x")
            r.instanceId = " \t"
            cases.append(("a blank instance id", r))
            r = Self.join("  ", "x")
            cases.append(("a blank group id", r))
            r = Self.join("v7", "  ")
            cases.append(("a blank member id (v1)", r))
            r = Self.join("g", "m1")
            r.memberEpoch = -3
            cases.append(("epoch -3", r))
            r = Self.join("g", "m1")
            r.memberEpoch = -2
            cases.append(("-2 without an instance id", r))
            for (label, request) in cases {
                let answer = try await Self.heartbeat(client, request)
                #expect(answer.errorCode == Self.invalidRequest, "\(label): \(answer.errorCode) \(answer.errorMessage ?? "")")
                #expect(answer.memberEpoch == -1, "\(label)")
            }
            #expect(broker.groups.groupType("v1") == nil && broker.groups.groupType("v2") == nil)
            // m1 is still in g at its epoch (the refused -2 and -3 changed nothing).
            var steady = ConsumerGroupHeartbeatRequest()
            steady.groupId = "g"
            steady.memberId = "m1"
            steady.memberEpoch = epoch
            #expect(try await Self.heartbeat(client, steady).errorCode == 0)

            // OffsetFetch v9: as the member at its epoch, or as no member; not at another epoch,
            // nor as a member the group does not have.
            #expect(try await Self.fetchError(client, group: "g", member: "m1", epoch: epoch) == 0)
            #expect(try await Self.fetchError(client, group: "g", member: nil, epoch: -1) == 0)
            #expect(try await Self.fetchError(client, group: "g", member: "m1", epoch: epoch - 1) == Self.staleMemberEpoch)
            #expect(try await Self.fetchError(client, group: "g", member: "m1", epoch: epoch + 5) == Self.staleMemberEpoch)
            #expect(try await Self.fetchError(client, group: "g", member: "nobody", epoch: epoch) == Self.unknownMemberId)

            // OffsetCommit: v9 at the member's epoch; below v9 the member's commit is refused.
            #expect(try await Self.commitError(client, version: 9, group: "g", member: "m1", epoch: epoch) == 0)
            #expect(try await Self.commitError(client, version: 8, group: "g", member: "m1", epoch: epoch) == Self.unsupportedVersion)
            #expect(try await Self.commitError(client, version: 2, group: "g", member: "m1", epoch: epoch) == Self.unsupportedVersion)
            // A commit from outside group management to a group of no members is not a member's.
            #expect(try await Self.commitError(client, version: 8, group: "empty", member: "", epoch: -1) == 0)
        } catch {
            await server.stop()
            try await broker.close()
            throw error
        }
        await server.stop()
        try await broker.close()
    }
}

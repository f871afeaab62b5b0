import Testing
import TidemarkServer
import TidemarkStorage
import TidemarkWire

@testable import Tidemark

/// ShareGroupHeartbeat's request checks, as Kafka 4.1's group coordinator makes them
/// (GroupCoordinatorService: blank group, member and rack ids, an epoch below -1, a first
/// heartbeat without names), and subscribed names that can be no topic's: kept out of the
/// subscription, not refused (Kafka stores them and assigns nothing for them; INVALID_REQUEST
/// is fatal to librdkafka, so one mistyped name beside good ones ended a worker).
extension ServerTests {
    @Test func shareHeartbeatsAreCheckedAsKafkaChecksThem() async throws {
        try await Self.withServer { server in
            try await server.broker.createTopic("jobs", partitions: 2)
            let client = try RawClient(port: server.boundPort)
            var correlation: Int32 = 0
            func heartbeat(member: String, epoch: Int32 = 0, rack: String? = nil, names: [String]?) async throws -> ShareGroupHeartbeatResponse {
                var request = ShareGroupHeartbeatRequest()
                request.groupId = "workers"
                request.memberId = member
                request.memberEpoch = epoch
                request.rackId = rack
                request.subscribedTopicNames = names
                correlation += 1
                try client.request(.shareGroupHeartbeat, version: 1, correlation: correlation, request)
                let (_, body) = try #require(await client.response())
                return try ShareGroupHeartbeatResponse.decode(body, from: 1, version: 1, flexible: true)
            }
            let refused: [(String, Int32, String?, [String]?, String)] = [
                ("", 0, nil, ["jobs"], "MemberId can't be empty."),
                ("  ", 0, nil, ["jobs"], "MemberId can't be empty."),
                ("m-1", 0, "", ["jobs"], "RackId can't be empty."),
                ("m-1", -2, nil, ["jobs"], "MemberEpoch is invalid."),
                ("m-1", 0, nil, [], "SubscribedTopicNames must be set in first request."),
                ("m-1", 0, nil, nil, "SubscribedTopicNames must be set in first request."),
            ]
            for (member, epoch, rack, names, message) in refused {
                let answer = try await heartbeat(member: member, epoch: epoch, rack: rack, names: names)
                #expect(answer.errorCode == KafkaError.invalidRequest.rawValue && answer.errorMessage == message, "\(member) \(epoch): \(answer)")
            }
            #expect(!server.broker.shares.hasMembership("workers"))
            // A name no topic can have beside a good one: joined, assigned the good one's partitions.
            let joined = try await heartbeat(member: "m-1", names: ["bad name!", ".*", "jobs"])
            #expect(joined.errorCode == 0 && joined.memberEpoch > 0, "\(joined)")
            var assigned = joined
            for _ in 0..<20 where (assigned.assignment?.topicPartitions.flatMap(\.partitions).count ?? 0) < 2 {
                try await Task.sleep(for: .milliseconds(50))
                assigned = try await heartbeat(member: "m-1", epoch: assigned.memberEpoch, names: nil)
                #expect(assigned.errorCode == 0)
            }
            #expect(assigned.assignment?.topicPartitions.flatMap(\.partitions).sorted() == [0, 1])
            // Only names no topic can have: a member, assigned nothing.
            let none = try await heartbeat(member: "m-2", names: ["bad name!"])
            #expect(none.errorCode == 0 && none.memberEpoch > 0, "\(none)")
        }
    }
}

/// The share-group offset admin requests, answered per partition and per topic as Kafka
/// answers them.
extension ServerTests {
    @Test func shareOffsetAdminAnswersEachPartitionAndTopic() async throws {
        try await Self.withServer { server in
            try await server.broker.createTopic("jobs", partitions: 2)
            try await server.broker.createTopic("other", partitions: 1)
            let client = try RawClient(port: server.boundPort)
            // Alter: a topic that does not exist and a partition past the count are refused on
            // their own; the partition that exists is moved (it was all or nothing).
            var alter = AlterShareGroupOffsetsRequest()
            alter.groupId = "workers"
            alter.topics = [
                .init(topicName: "missing", partitions: [.init(partitionIndex: 0, startOffset: 0)]),
                .init(topicName: "jobs", partitions: [.init(partitionIndex: 0, startOffset: 0), .init(partitionIndex: 5, startOffset: 0)]),
            ]
            try client.request(.alterShareGroupOffsets, version: 0, correlation: 1, alter)
            let (_, altered) = try #require(await client.response())
            let answer = try AlterShareGroupOffsetsResponse.decode(altered, from: 1, version: 0, flexible: true)
            var codes: [String: Int16] = [:]
            for topic in answer.responses { for p in topic.partitions { codes["\(topic.topicName)-\(p.partitionIndex)"] = p.errorCode } }
            let unknown = KafkaError.unknownTopicOrPartition.rawValue
            #expect(answer.errorCode == 0 && codes == ["missing-0": unknown, "jobs-0": 0, "jobs-5": unknown], "\(codes)")
            #expect(server.broker.shares.summaries("workers", view: server.broker.shareLogView).contains { $0.topicPartition == TopicPartition("jobs", 0) && $0.started })

            func delete(_ group: String, _ topics: [String]) async throws -> DeleteShareGroupOffsetsResponse {
                var request = DeleteShareGroupOffsetsRequest()
                request.groupId = group
                request.topicNames = topics
                try client.request(.deleteShareGroupOffsets, version: 0, correlation: 2, request)
                let (_, body) = try #require(await client.response())
                return try DeleteShareGroupOffsetsResponse.decode(body, from: 1, version: 0, flexible: true)
            }
            // Delete: a group that is not a share group; then a topic that does not exist and
            // one the group has no state for, each refused on its own.
            let nobody = try await delete("nobody", ["jobs"])
            #expect(nobody.errorCode == KafkaError.groupIdNotFound.rawValue && nobody.responses.isEmpty)
            let deleted = try await delete("workers", ["jobs", "missing", "other"])
            #expect(deleted.errorCode == 0)
            let byName = Dictionary(uniqueKeysWithValues: deleted.responses.map { ($0.topicName, ($0.errorCode, $0.errorMessage)) })
            #expect(byName["jobs"]?.0 == 0 && byName["missing"]?.0 == unknown && byName["other"]?.0 == unknown, "\(byName)")
            #expect(byName["other"]?.1 == "There is no offset information to delete.")
            #expect(!server.broker.shares.summaries("workers", view: server.broker.shareLogView).contains { $0.started })
        }
    }
}

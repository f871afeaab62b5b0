import Dispatch
import Foundation
import TestSupport
import Testing
@testable import Tidemark
@testable import TidemarkServer
import TidemarkStorage
import TidemarkWire

/// Requests no mainstream client sends but tools and hostile clients do, answered as Kafka's
/// ControllerApis, ConfigHelper, KafkaApis and ProduceRequest.validateRecords answer them.
@Suite(.serialized) struct AdminRequestTests {
    /// One request and its answer.
    static func exchange<Q: KafkaMessage>(_ client: RawClient, _ api: ApiKey, version: Int16, _ body: Q) async throws -> [UInt8] {
        try client.request(api, version: version, correlation: 7, body)
        let (_, response) = try #require(await client.response())
        return response
    }

    static func batch(_ values: [String]) throws -> [UInt8] {
        var builder = RecordBatchBuilder()
        for value in values { builder.append(timestamp: 1_700_000_000_000, key: nil, value: Array(value.utf8)) }
        return try builder.build()
    }

    /// kafka-python describes "everything" with an empty key list; Kafka answers every
    /// setting (ConfigHelper: null or empty). It got none.
    @Test func anEmptyKeyListDescribesEverySetting() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("described", partitions: 1)
            let client = try RawClient(port: server.boundPort)
            var request = DescribeConfigsRequest()
            var resource = DescribeConfigsRequest.Resource()
            resource.resourceName = "described"
            resource.configurationKeys = []
            request.resources = [resource]
            let body = try await Self.exchange(client, .describeConfigs, version: 2, request)
            let names = try DescribeConfigsResponse.decode(body, version: 2, flexible: false).results[0].configs.map(\.name)
            #expect(names.contains("retention.ms") && names.contains("flush.ms") && names.count > 10, "\(names)")
        }
    }

    /// A topic setting's source, as Kafka's ConfigHelper gives it: the topic's own when set on
    /// it (also to a default's value), else the broker's when the broker sets it, else Kafka's
    /// default; the synonyms list each level, the one in force first. Broker settings were
    /// described as the topic's own, and a setting given equal to the default as a default.
    @Test func aTopicSettingsSourceIsWhereItsValueComesFrom() async throws {
        let dir = TemporaryDirectory()
        var options = BrokerOptions()
        options.defaultTopicConfig.maxMessageBytes = 2_000_000
        let broker = try await Broker.open(dataDirectory: dir.path, options: options)
        var config = ServerConfig()
        config.port = 0
        let server = try await KafkaServer.start(broker: broker, config: config)
        do {
            try await Self.checkSources(client: try RawClient(port: server.boundPort))
        } catch {
            await server.stop()
            try await broker.close()
            throw error
        }
        await server.stop()
        try await broker.close()
    }

    static func checkSources(client: RawClient) async throws {
        var create = CreateTopicsRequest()
        var topic = CreateTopicsRequest.Topic()
        topic.name = "sourced"
        topic.numPartitions = 1
        topic.replicationFactor = 1
        topic.configs = [.init(name: "retention.ms", value: "60000"), .init(name: "segment.bytes", value: "1073741824")]
        create.topics = [topic]
        let created = try CreateTopicsResponse.decode(
            try await Self.exchange(client, .createTopics, version: 5, create), from: 1, version: 5, flexible: true)
        let createdSources = Dictionary(uniqueKeysWithValues: (created.topics[0].configs ?? []).map { ($0.name, $0.configSource) })
        #expect(createdSources["retention.ms"] == 1 && createdSources["segment.bytes"] == 1)
        #expect(createdSources["max.message.bytes"] == 4 && createdSources["flush.ms"] == 5)

        var request = DescribeConfigsRequest()
        var resource = DescribeConfigsRequest.Resource()
        resource.resourceName = "sourced"
        request.resources = [resource]
        request.includeSynonyms = true
        let body = try await Self.exchange(client, .describeConfigs, version: 2, request)
        let described = Dictionary(
            uniqueKeysWithValues: try DescribeConfigsResponse.decode(body, version: 2, flexible: false).results[0].configs.map { ($0.name, $0) })
        let retention = try #require(described["retention.ms"])
        #expect(retention.configSource == 1 && retention.synonyms.map(\.source) == [1, 5])
        // Kafka's DEFAULT_CONFIG synonym is the first broker name with a default of its own.
        #expect(retention.synonyms.map(\.name) == ["retention.ms", "log.retention.hours"] && retention.synonyms.last?.value == "168")
        #expect(described["segment.ms"]?.synonyms.map(\.name) == ["log.roll.hours"])
        #expect(described["segment.bytes"]?.configSource == 1)
        let maxMessage = try #require(described["max.message.bytes"])
        #expect(maxMessage.configSource == 4 && maxMessage.value == "2000000")
        #expect(maxMessage.synonyms.map(\.source) == [4, 5] && maxMessage.synonyms.last?.value == "1048588")
        #expect(described["flush.ms"]?.configSource == 5)
        // A setting kept without effect is described at Kafka's default while the topic does not set it.
        #expect(described["min.insync.replicas"]?.configSource == 5 && described["min.insync.replicas"]?.value == "1")
    }

    /// OffsetDelete of a partition no topic has is UNKNOWN_TOPIC_OR_PARTITION, as in Kafka's
    /// KafkaApis (it answered success); the partitions that exist are deleted.
    @Test func offsetDeleteOfAnUnknownPartitionSaysSo() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("kept", partitions: 1)
            let committed = try await server.broker.groups.commitOffsets(
                groupId: "g", offsets: [TopicPartition("kept", 0): CommittedOffset(offset: 1)])
            #expect(committed == nil)
            let client = try RawClient(port: server.boundPort)
            var request = OffsetDeleteRequest()
            request.groupId = "g"
            request.topics = [.init(name: "kept", partitions: [0, 7, -1]), .init(name: "no-such-topic", partitions: [0])]
            let body = try await Self.exchange(client, .offsetDelete, version: 0, request)
            let response = try OffsetDeleteResponse.decode(body, version: 0, flexible: false)
            #expect(response.errorCode == 0)
            #expect(response.topics.map { $0.partitions.map(\.errorCode) } == [[0, 3, 3], [3]])
            #expect(server.broker.groups.fetchOffsets(groupId: "g", partitions: [TopicPartition("kept", 0)]).isEmpty)
        }
    }

    /// The ACL APIs are answered SECURITY_DISABLED, as Kafka without an authorizer answers
    /// them, once per creation and filter; the connection stays. They closed it ("unknown api
    /// key 29"), and a client that does not negotiate (sarama's ClusterAdmin listing ACLs) lost
    /// its next calls on it too.
    @Test func aclRequestsAreAnsweredAsWithoutAnAuthorizer() async throws {
        try await ServerTests.withServer { server in
            let client = try RawClient(port: server.boundPort)
            for version: Int16 in 0...3 {
                let flexible = version >= 2
                let described = try DescribeAclsResponse.decode(
                    try await Self.exchange(client, .describeAcls, version: version, DescribeAclsRequest()), from: flexible ? 1 : 0,
                    version: version, flexible: flexible)
                #expect(described.errorCode == 54 && described.resources.isEmpty)
                #expect(described.errorMessage == "No Authorizer is configured on the broker")
                var create = CreateAclsRequest()
                create.creations = [.init(), .init()]
                let created = try CreateAclsResponse.decode(
                    try await Self.exchange(client, .createAcls, version: version, create), from: flexible ? 1 : 0, version: version,
                    flexible: flexible)
                #expect(created.results.map(\.errorCode) == [54, 54])
                var delete = DeleteAclsRequest()
                delete.filters = [AclFilter()]
                let deleted = try DeleteAclsResponse.decode(
                    try await Self.exchange(client, .deleteAcls, version: version, delete), from: flexible ? 1 : 0, version: version,
                    flexible: flexible)
                #expect(deleted.filterResults.map(\.errorCode) == [54] && deleted.filterResults[0].matchingAcls.isEmpty)
            }
            // The same connection still serves.
            let body = try await Self.exchange(client, .metadata, version: 1, MetadataRequest())
            #expect(try MetadataResponse.decode(body, version: 1, flexible: false).brokers.count == 1)
        }
    }

    /// ElectLeaders as Kafka's controller answers it when each partition's leader is already
    /// its preferred one (one node leads them all): ELECTION_NOT_NEEDED, unknown partitions
    /// UNKNOWN_TOPIC_OR_PARTITION, and with every partition asked for, only the partitions
    /// that need something. It was an unsupported API (kafka-leader-election.sh failed).
    @Test func leaderElectionsAreNeverNeeded() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("led", partitions: 2)
            let client = try RawClient(port: server.boundPort)
            for version: Int16 in 0...2 {
                let flexible = version >= 2
                var request = ElectLeadersRequest()
                request.topicPartitions = [.init(topic: "led", partitions: [0, 1, 2]), .init(topic: "none", partitions: [0])]
                let answer = try ElectLeadersResponse.decode(
                    try await Self.exchange(client, .electLeaders, version: version, request), from: flexible ? 1 : 0, version: version,
                    flexible: flexible)
                #expect(answer.errorCode == 0)
                #expect(answer.replicaElectionResults.map { $0.partitionResult.map(\.errorCode) } == [[84, 84, 3], [3]])
                request.topicPartitions = nil
                let all = try ElectLeadersResponse.decode(
                    try await Self.exchange(client, .electLeaders, version: version, request), from: flexible ? 1 : 0, version: version,
                    flexible: flexible)
                #expect(all.replicaElectionResults.contains { $0.topic == "led" })
                #expect(all.replicaElectionResults.allSatisfy { $0.partitionResult.isEmpty })
            }
            var odd = ElectLeadersRequest()
            odd.electionType = 7
            let refused = try ElectLeadersResponse.decode(
                try await Self.exchange(client, .electLeaders, version: 1, odd), from: 0, version: 1, flexible: false)
            #expect(refused.errorCode == 42)
        }
    }

    /// Reassignments on one node: none is ever under way; moving a partition to this node is
    /// where it is already; anything else is refused with Kafka's errors
    /// (kafka-reassign-partitions --list, --execute, --cancel).
    @Test func reassignmentsAreWhereTheReplicasAlreadyAre() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("moved", partitions: 2)
            let client = try RawClient(port: server.boundPort)
            var list = ListPartitionReassignmentsRequest()
            list.topics = [{ var t = ListPartitionReassignmentsRequest.Topic(); t.name = "moved"; t.partitionIndexes = [0, 1]; return t }()]
            let listed = try ListPartitionReassignmentsResponse.decode(
                try await Self.exchange(client, .listPartitionReassignments, version: 0, list), from: 1, version: 0, flexible: true)
            #expect(listed.errorCode == 0 && listed.topics.isEmpty)

            for version: Int16 in 0...1 {
                var alter = AlterPartitionReassignmentsRequest()
                func partition(_ index: Int32, _ replicas: [Int32]?) -> AlterPartitionReassignmentsRequest.Partition {
                    var p = AlterPartitionReassignmentsRequest.Partition()
                    p.partitionIndex = index
                    p.replicas = replicas
                    return p
                }
                var moved = AlterPartitionReassignmentsRequest.Topic()
                moved.name = "moved"
                moved.partitions = [
                    partition(0, [0]), partition(1, [1]), partition(0, nil), partition(1, [0, 5, 0]), partition(1, []), partition(5, [0]),
                    partition(1, [7, 0, -2, 7]), partition(1, [9, 9]),
                ]
                var missing = AlterPartitionReassignmentsRequest.Topic()
                missing.name = "missing"
                missing.partitions = [partition(0, [0])]
                alter.topics = [moved, missing]
                let answer = try AlterPartitionReassignmentsResponse.decode(
                    try await Self.exchange(client, .alterPartitionReassignments, version: version, alter), from: 1, version: version,
                    flexible: true)
                #expect(answer.errorCode == 0)
                #expect(answer.responses.map { $0.partitions.map(\.errorCode) } == [[0, 39, 85, 39, 39, 3, 39, 39], [3]])
                #expect(answer.responses[0].partitions[1].errorMessage == "The manual partition assignment includes broker 1, but no such broker is registered.")
                // Kafka's order: ascending, so the repeated 0 before the unknown 5.
                #expect(answer.responses[0].partitions[3].errorMessage == "The manual partition assignment includes the broker 0 more than once.")
                #expect(answer.responses[1].partitions[0].errorMessage == "Unable to find a topic named missing.")
                // The lowest unknown id first, as Kafka's sorted walk names it.
                #expect(answer.responses[0].partitions[6].errorMessage == "The manual partition assignment includes broker -2, but no such broker is registered.")
                #expect(answer.responses[0].partitions[7].errorMessage == "The manual partition assignment includes broker 9, but no such broker is registered.")
            }
        }
    }

    /// delete.topic.enable=false refuses DeleteTopics as Kafka's controller does:
    /// TOPIC_DELETION_DISABLED, or INVALID_REQUEST to versions before it; the topic stays.
    @Test func topicDeletionCanBeDisabled() async throws {
        try await ServerTests.withServer(configure: { $0.deleteTopicEnable = false }) { server in
            try await server.broker.createTopic("kept", partitions: 1)
            let client = try RawClient(port: server.boundPort)
            for version: Int16 in [1, 4] {
                var request = DeleteTopicsRequest()
                request.topics = [.init(name: "kept")]
                let flexible = ApiKey.deleteTopics.isFlexible(version)
                let answer = try DeleteTopicsResponse.decode(
                    try await Self.exchange(client, .deleteTopics, version: version, request), from: flexible ? 1 : 0, version: version,
                    flexible: flexible)
                #expect(answer.responses.map(\.errorCode) == [version < 3 ? 42 : 73])
            }
            #expect(server.broker.listTopics().contains("kept"))
        }
    }

    /// What kafka-configs and kafka-transactions list on a node that has none of them:
    /// client quotas (filters checked as Kafka checks them), SCRAM users, transactions.
    @Test func quotasUsersAndTransactionsAreListedAsNone() async throws {
        try await ServerTests.withServer { server in
            let client = try RawClient(port: server.boundPort)
            func component(_ type: String, _ match: Int8, _ name: String?) -> DescribeClientQuotasRequest.Component {
                var c = DescribeClientQuotasRequest.Component()
                c.entityType = type
                c.matchType = match
                c.match = name
                return c
            }
            for version: Int16 in 0...1 {
                let flexible = version >= 1
                func quotas(_ components: [DescribeClientQuotasRequest.Component]) async throws -> DescribeClientQuotasResponse {
                    var request = DescribeClientQuotasRequest()
                    request.components = components
                    return try DescribeClientQuotasResponse.decode(
                        try await Self.exchange(client, .describeClientQuotas, version: version, request), from: flexible ? 1 : 0,
                        version: version, flexible: flexible)
                }
                let none = try await quotas([component("user", 2, nil), component("client-id", 0, "worker-1")])
                #expect(none.errorCode == 0 && none.entries == [])
                let twice = try await quotas([component("user", 1, nil), component("user", 2, nil)])
                #expect(twice.errorCode == 42 && twice.entries == nil && twice.errorMessage == "Entity type user cannot appear more than once in the filter.")
                #expect(try await quotas([component("group", 2, nil)]).errorCode == 35)
                #expect(try await quotas([component("user", 0, nil)]).errorCode == 42)
                #expect(try await quotas([component("ip", 2, nil), component("user", 2, nil)]).errorCode == 42)
                #expect(try await quotas([component("ip", 9, nil)]).errorCode == 42)
            }

            var users = DescribeUserScramCredentialsRequest()
            let all = try DescribeUserScramCredentialsResponse.decode(
                try await Self.exchange(client, .describeUserScramCredentials, version: 0, users), from: 1, version: 0, flexible: true)
            #expect(all.errorCode == 0 && all.results.isEmpty)
            users.users = ["alice", "bob", "alice"]
            let named = try DescribeUserScramCredentialsResponse.decode(
                try await Self.exchange(client, .describeUserScramCredentials, version: 0, users), from: 1, version: 0, flexible: true)
            #expect(named.results.map(\.user) == ["alice", "bob"] && named.results.map(\.errorCode) == [92, 91])

            for version: Int16 in 0...2 {
                var transactions = ListTransactionsRequest()
                transactions.stateFilters = ["Ongoing", "Frozen", "Frozen"]
                transactions.transactionalIdPattern = "orders-.*"
                let listed = try ListTransactionsResponse.decode(
                    try await Self.exchange(client, .listTransactions, version: version, transactions), from: 1, version: version, flexible: true)
                #expect(listed.errorCode == 0 && listed.transactionStates.isEmpty && listed.unknownStateFilters == ["Frozen"])
            }
            var badPattern = ListTransactionsRequest()
            badPattern.transactionalIdPattern = "orders-["
            let refused = try ListTransactionsResponse.decode(
                try await Self.exchange(client, .listTransactions, version: 2, badPattern), from: 1, version: 2, flexible: true)
            #expect(refused.errorCode == KafkaError.invalidRegularExpression.rawValue)
        }
    }

    /// Answers an admin tool compares with Kafka's (an outside hunt with confluent-kafka's and
    /// kafka-python's admin clients): DescribeCluster asked for a controller endpoint is
    /// MISMATCHED_ENDPOINT_TYPE and for an unknown one UNSUPPORTED_ENDPOINT_TYPE (it echoed the
    /// type back, error 0: an admin given `bootstrap.controllers` believed it found one);
    /// CreatePartitions with assignments but no increase is INVALID_PARTITIONS (it was
    /// INVALID_REPLICA_ASSIGNMENT, "1 assignments for -3 new partitions"); DeleteTopics v6
    /// naming neither a name nor an id is INVALID_REQUEST (it was UNKNOWN_TOPIC_ID "no topic
    /// has id 00..."); error messages carry no engine code names ("unknownTopicOrPartition: ").
    @Test func adminAnswersAreKafkasForWhatToolsCompare() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("grown", partitions: 4)
            let client = try RawClient(port: server.boundPort)
            for (type, code): (Int8, Int16) in [(1, 0), (2, 114), (0, 115), (7, 115)] {
                var request = DescribeClusterRequest()
                request.endpointType = type
                let answer = try DescribeClusterResponse.decode(
                    try await Self.exchange(client, .describeCluster, version: 1, request), from: 1, version: 1, flexible: true)
                #expect(answer.errorCode == code && answer.endpointType == 1, "endpoint type \(type)")
                #expect((answer.errorMessage == nil) == (code == 0))
                #expect(answer.brokers.isEmpty == (code != 0))
            }

            var grow = CreatePartitionsRequest()
            var topic = CreatePartitionsRequest.Topic(name: "grown", count: 1)
            topic.assignments = [[0]]
            grow.topics = [topic]
            let grown = try CreatePartitionsResponse.decode(
                try await Self.exchange(client, .createPartitions, version: 2, grow), from: 1, version: 2, flexible: true)
            #expect(grown.results.map(\.errorCode) == [37], "\(grown.results)")

            var delete = DeleteTopicsRequest()
            delete.topics = [DeleteTopicsRequest.Topic()]
            let deleted = try DeleteTopicsResponse.decode(
                try await Self.exchange(client, .deleteTopics, version: 6, delete), from: 1, version: 6, flexible: true)
            #expect(deleted.responses.map(\.errorCode) == [42])

            var describe = DescribeConfigsRequest()
            var resource = DescribeConfigsRequest.Resource()
            resource.resourceName = "nosuch"
            describe.resources = [resource]
            let described = try DescribeConfigsResponse.decode(
                try await Self.exchange(client, .describeConfigs, version: 2, describe), version: 2, flexible: false)
            #expect(described.results[0].errorCode == 3)
            #expect(described.results[0].errorMessage?.hasPrefix("unknown topic") == true, "\(described.results[0].errorMessage ?? "")")
        }
    }

    /// AlterConfigs and IncrementalAlterConfigs refuse what Kafka's ConfigAdminManager refuses,
    /// before anything applies: a resource named twice (both were applied), a setting named
    /// twice ("retention.ms is not a list"), a null value to set.
    @Test func configChangesNamingThingsTwiceAreRefused() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("c", partitions: 1)
            try await server.broker.createTopic("d", partitions: 1)
            let client = try RawClient(port: server.boundPort)
            func resource(_ name: String, _ configs: [AlterConfigsRequest.Config]) -> AlterConfigsRequest.Resource {
                var resource = AlterConfigsRequest.Resource()
                resource.resourceName = name
                resource.configs = configs
                return resource
            }
            var request = AlterConfigsRequest(incremental: true)
            request.resources = [
                resource("c", [.init(name: "retention.ms", value: "1000")]),
                resource("c", [.init(name: "retention.ms", value: "2000")]),
                resource("d", [.init(name: "retention.ms", value: "3000"), .init(name: "retention.ms", value: "4000")]),
            ]
            var body = try await Self.exchange(client, .incrementalAlterConfigs, version: 0, request)
            var answer = try AlterConfigsResponse.decode(body, version: 0, flexible: false)
            #expect(answer.responses.map(\.errorCode) == [42, 42, 42])
            #expect(answer.responses[0].errorMessage == "Each resource must appear at most once.")
            #expect(answer.responses[2].errorMessage == "Error due to duplicate config keys")
            request.resources = [
                resource("d", [.init(name: "retention.ms", operation: 0, value: nil)]),
                resource("c", [.init(name: "retention.ms", operation: 1, value: nil), .init(name: "segment.ms", value: "60000")]),
            ]
            body = try await Self.exchange(client, .incrementalAlterConfigs, version: 0, request)
            answer = try AlterConfigsResponse.decode(body, version: 0, flexible: false)
            #expect(answer.responses.map(\.errorCode) == [42, 0])
            #expect(try server.broker.describeTopic("c").config.retentionMs == 7 * 24 * 3_600_000)
            #expect(try server.broker.describeTopic("d").config.retentionMs == 7 * 24 * 3_600_000)
            #expect(try server.broker.describeTopic("c").config.segmentMs == 60000)
        }
    }

    /// A broker setting given under another of its names is described under that name, and
    /// the names of one setting take Kafka's precedence whatever their order (ms, then
    /// minutes, then hours): the file's `log.retention.hours` after `log.retention.ms` changed
    /// nothing in Kafka and replaced it here.
    @Test func brokerSettingsKeepTheNamesTheyWereGivenUnder() throws {
        var settings = BrokerConfig()
        try settings.set("log.retention.ms", "5000")
        try settings.set("log.retention.hours", "24")
        try settings.set("log.roll.hours", "2")
        #expect(settings.broker.defaultTopicConfig.retentionMs == 5000)
        #expect(settings.broker.defaultTopicConfig.segmentMs == 7_200_000)
        // As in Kafka's KafkaConfig: any negative retention is unlimited; 0 is refused.
        var unlimited = BrokerConfig()
        try unlimited.set("log.retention.hours", "-1")
        #expect(unlimited.broker.defaultTopicConfig.retentionMs == nil)  // unlimited
        try unlimited.set("log.retention.minutes", "-5")
        #expect(unlimited.broker.defaultTopicConfig.retentionMs == nil)  // unlimited
        for (key, value) in [("log.retention.ms", "0"), ("log.retention.hours", "0"), ("log.roll.hours", "0"), ("log.roll.hours", "-1")] {
            var fresh = BrokerConfig()
            #expect(throws: BrokerConfig.Failure.self, "\(key)=\(value)") { try fresh.set(key, value) }
        }
        // Only the value in force is judged, as in Kafka: an outranked 0 is not.
        try unlimited.set("log.retention.hours", "0")
        #expect(unlimited.broker.defaultTopicConfig.retentionMs == nil)
        var both = BrokerConfig()
        try both.set("log.retention.hours", "24")
        try both.set("log.retention.ms", "5000")
        let bothEntries = both.describe.map { BrokerConfigEntry(name: $0.name, value: $0.value, isDefault: $0.isDefault) }
        let bothSources = TopicConfigSources(brokerDefaults: both.broker.defaultTopicConfig, brokerEntries: bothEntries)
        #expect(bothSources.entry("retention.ms", "5000", overrides: [], includeSynonyms: true).synonyms.map { "\($0.name)=\($0.value ?? "")" }
            == ["log.retention.ms=5000", "log.retention.hours=24", "log.retention.hours=168"])
        var hours = BrokerConfig()
        try hours.set("log.retention.hours", "24")
        #expect(hours.broker.defaultTopicConfig.retentionMs == 86_400_000)
        let entries = hours.describe.map { BrokerConfigEntry(name: $0.name, value: $0.value, isDefault: $0.isDefault) }
        let byName = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
        #expect(byName["log.retention.hours"]?.value == "24" && byName["log.retention.hours"]?.isDefault == false)
        #expect(byName["log.retention.ms"]?.value == "86400000" && byName["log.retention.ms"]?.isDefault == true)
        let sources = TopicConfigSources(brokerDefaults: hours.broker.defaultTopicConfig, brokerEntries: entries)
        let retention = sources.entry("retention.ms", "86400000", overrides: [], includeSynonyms: true)
        #expect(retention.configSource == 4)
        #expect(retention.synonyms.map { "\($0.name)=\($0.value ?? "")/\($0.source)" } == ["log.retention.hours=24/4", "log.retention.hours=168/5"])
    }

    /// `compression.type` in a Kafka server.properties is every topic's default codec.
    @Test func aBrokerWideCompressionIsTheTopicsDefault() throws {
        var settings = BrokerConfig()
        try settings.set("compression.type", "uncompressed")
        #expect(settings.broker.defaultTopicConfig.compression == .uncompressed)
        try settings.set("compression.type", "zstd")
        #expect(settings.broker.defaultTopicConfig.compression == .zstd)
        #expect(throws: BrokerConfig.Failure.self) { try settings.set("compression.type", "brotli") }
    }

    /// A broker resource is this node's id or "" (Kafka's ConfigHelper): any other name was
    /// answered with every broker setting, so 200,000 made-up names (1.7 MB) made a 330 MB
    /// answer. Now INVALID_REQUEST, with no configs.
    @Test func aBrokerResourceNamesThisNodeOrNone() async throws {
        try await ServerTests.withServer { server in
            let client = try RawClient(port: server.boundPort)
            var request = DescribeConfigsRequest()
            request.resources = ["bogus", "7", "", "\(server.config.nodeId)"].map { name in
                var resource = DescribeConfigsRequest.Resource()
                resource.resourceType = 4
                resource.resourceName = name
                return resource
            }
            let body = try await Self.exchange(client, .describeConfigs, version: 2, request)
            let results = try DescribeConfigsResponse.decode(body, version: 2, flexible: false).results
            #expect(results.map(\.errorCode) == [42, 42, 0, 0])
            #expect(results[0].configs.isEmpty && results[1].configs.isEmpty)
            #expect(results[0].errorMessage?.contains("must be an integer") == true)
            #expect(results[1].errorMessage?.contains("unexpected broker id") == true)
            #expect(results[2].configs.count > 10 && results[3].configs.count > 10)
            // Where it listens, with the port bound (the server was asked for any free one).
            let listed = Dictionary(uniqueKeysWithValues: results[3].configs.map { ($0.name, $0.value) })
            #expect(listed["listeners"] == "PLAINTEXT://127.0.0.1:\(server.boundPort)")
            #expect(listed["advertised.listeners"] == "PLAINTEXT://127.0.0.1:\(server.boundPort)")
            // The topic defaults the README names by their broker names, and whether deletes go
            // through (an outside hunt: log.flush.interval.messages was left out, even when set).
            #expect(listed["delete.topic.enable"] == "true" && listed["log.flush.interval.messages"] == "\(Int64.max)")
            #expect(listed["log.cleanup.policy"] == "delete" && listed["log.index.interval.bytes"] == "4096")
        }
    }

    /// OffsetForLeaderEpoch as Kafka answers it with one leader epoch, 0, since offset 0: the
    /// current epoch is checked first (above 0 unknown, below -1 fenced), then epoch 0 ends at
    /// the log end, -1 and later epochs are -1 at -1 (they were UNKNOWN_LEADER_EPOCH), and an
    /// epoch older than 0 gets the log start.
    @Test func offsetForLeaderEpochAnswersAsKafkaWithOneEpoch() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("epochs", partitions: 1)
            _ = try await server.broker.append(topic: "epochs", partition: 0, batches: try Self.batch(["a", "b", "c"]))
            let client = try RawClient(port: server.boundPort)
            var request = OffsetForLeaderEpochRequest()
            var topic = OffsetForLeaderEpochRequest.Topic()
            topic.topic = "epochs"
            let asked: [(current: Int32, epoch: Int32)] = [(0, 0), (-1, 0), (0, -1), (0, 5), (0, -3), (1, 0), (-7, 0)]
            topic.partitions = asked.map { current, epoch in
                var partition = OffsetForLeaderEpochRequest.Partition()
                partition.currentLeaderEpoch = current
                partition.leaderEpoch = epoch
                return partition
            }
            request.topics = [topic]
            let body = try await Self.exchange(client, .offsetForLeaderEpoch, version: 3, request)
            let answers = try OffsetForLeaderEpochResponse.decode(body, version: 3, flexible: false).topics[0].partitions
            #expect(answers.map(\.errorCode) == [0, 0, 0, 0, 0, 75, 74])
            #expect(answers.prefix(5).map(\.leaderEpoch) == [0, 0, -1, -1, -3])
            #expect(answers.prefix(5).map(\.endOffset) == [3, 3, -1, -1, 0])
        }
    }

    /// A request naming more groups (or topics, or config resources) than one request may is
    /// refused by closing the connection: 8 million made-up group ids in one 46 MiB
    /// DescribeGroups took 2 GB to answer. The bound itself is answered; the broker serves on.
    @Test func aRequestNamingTooManyGroupsIsRefused() async throws {
        try await ServerTests.withServer { server in
            let limit = TooManyEntries.maxEntries
            let client = try RawClient(port: server.boundPort)
            var request = DescribeGroupsRequest()
            request.groups = (0..<limit).map { "g\($0)" }
            let body = try await Self.exchange(client, .describeGroups, version: 4, request)
            #expect(try DescribeGroupsResponse.decode(body, version: 4, flexible: false).groups.count == limit)
            request.groups.append("one-more")
            try client.request(.describeGroups, version: 4, correlation: 8, request)
            #expect(await client.response() == nil)
            var describe = DescribeConfigsRequest()
            describe.resources = (0...TooManyEntries.maxConfigResources).map { index in
                var resource = DescribeConfigsRequest.Resource()
                resource.resourceType = 32
                resource.resourceName = "g\(index)"
                return resource
            }
            let second = try RawClient(port: server.boundPort)
            try second.request(.describeConfigs, version: 2, correlation: 9, describe)
            #expect(await second.response() == nil)
            let third = try RawClient(port: server.boundPort)
            request.groups = ["g1"]
            let answer = try await Self.exchange(third, .describeGroups, version: 4, request)
            #expect(try DescribeGroupsResponse.decode(answer, version: 4, flexible: false).groups.map(\.groupId) == ["g1"])
        }
    }

    /// Produce v3+ carries exactly one batch per partition (INVALID_RECORD otherwise: two
    /// copies of a batch were both stored); a partition listed twice is refused wherever it is
    /// listed; empty records are INVALID_RECORD, which clients do not retry for ever.
    @Test func oneBatchPerPartitionOnce() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("strict", partitions: 1)
            let client = try RawClient(port: server.boundPort)
            let one = try Self.batch(["a"])
            let twice = ServerTests.produceRequest(topic: "strict", batch: one + one)
            var response = try ProduceResponse.decode(try await Self.exchange(client, .produce, version: 7, twice), version: 7, flexible: false)
            #expect(response.topics[0].partitions[0].errorCode == KafkaError.invalidRecord.rawValue)

            var listedTwice = ServerTests.produceRequest(topic: "strict", batch: one)
            listedTwice.topics[0].partitions.append(listedTwice.topics[0].partitions[0])
            response = try ProduceResponse.decode(try await Self.exchange(client, .produce, version: 7, listedTwice), version: 7, flexible: false)
            #expect(response.topics[0].partitions.map(\.errorCode) == [KafkaError.invalidRequest.rawValue, KafkaError.invalidRequest.rawValue])

            // v8+ says why, in words.
            response = try ProduceResponse.decode(try await Self.exchange(client, .produce, version: 8, twice), version: 8, flexible: false)
            #expect(response.topics[0].partitions[0].errorCode == KafkaError.invalidRecord.rawValue)
            var late = RecordBatchBuilder()
            late.append(timestamp: 4_000_000_000_000, key: nil, value: Array("future".utf8))
            let future = ServerTests.produceRequest(topic: "strict", batch: try late.build())
            response = try ProduceResponse.decode(try await Self.exchange(client, .produce, version: 8, future), version: 8, flexible: false)
            #expect(response.topics[0].partitions[0].errorCode == KafkaError.invalidTimestamp.rawValue)
            #expect(response.topics[0].partitions[0].errorMessage?.contains("timestamp") == true, "\(response.topics[0].partitions[0])")

            let empty = ServerTests.produceRequest(topic: "strict", batch: [])
            response = try ProduceResponse.decode(try await Self.exchange(client, .produce, version: 7, empty), version: 7, flexible: false)
            #expect(response.topics[0].partitions[0].errorCode == KafkaError.invalidRecord.rawValue)
            #expect(try server.broker.partitionState("strict", 0).log.logEndOffset == 0)

            let fine = ServerTests.produceRequest(topic: "strict", batch: one)
            response = try ProduceResponse.decode(try await Self.exchange(client, .produce, version: 7, fine), version: 7, flexible: false)
            #expect(response.topics[0].partitions[0].errorCode == 0)
        }
    }

    /// An acks=0 produce that fails closes the connection, as Kafka does: it has no answer,
    /// and the producer otherwise never learns that its records went nowhere. One that
    /// succeeds keeps it open.
    @Test func aFailedAcksZeroProduceClosesTheConnection() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("fire", partitions: 1)
            let client = try RawClient(port: server.boundPort)
            var fine = ServerTests.produceRequest(topic: "fire", batch: try Self.batch(["a"]))
            fine.acks = 0
            try client.request(.produce, version: 7, correlation: 1, fine)
            try client.request(.apiVersions, version: 0, correlation: 2, ApiVersionsRequest())
            #expect(await client.response()?.0 == 2)
            var lost = ServerTests.produceRequest(topic: "nowhere", batch: try Self.batch(["b"]))
            lost.acks = 0
            try client.request(.produce, version: 7, correlation: 3, lost)
            try client.request(.apiVersions, version: 0, correlation: 4, ApiVersionsRequest())
            #expect(await client.closedWithoutAnswer())
        }
    }

    /// Compressed batches are decompressed to be checked; a request's first 64 KiB of them
    /// are checked on the event loop, the rest on the executor (a request of hostile batches,
    /// 64 MiB of zeros each, stalled every connection of the loop). Every batch is stored,
    /// whichever way it went.
    @Test func compressedBatchesBeyondTheLoopsShareAreCheckedOffTheLoop() async throws {
        try await ServerTests.withServer(maxRequestBytes: 8 << 20) { server in
            try await server.broker.createTopic("packed", partitions: 4)
            var builder = RecordBatchBuilder(compression: .lz4)
            for index in 0..<400 {
                builder.append(timestamp: 1_700_000_000_000, key: nil, value: Array((0..<400).map { UInt8(truncatingIfNeeded: $0 &* index &+ $0 >> 3) }))
            }
            let big = try builder.build()
            #expect(big.count > Broker.maxCompressedBytesNow / 2 && Broker.compressedBytes(big[...]) == big.count)
            #expect(try server.broker.appendNow(topic: "packed", partition: 0, batches: big[...], compressedOnLoop: false) == nil)
            var request = ServerTests.produceRequest(topic: "packed", batch: big)
            request.topics[0].partitions = (0..<4).map { p in
                var partition = request.topics[0].partitions[0]
                partition.index = Int32(p)
                return partition
            }
            let client = try RawClient(port: server.boundPort)
            let response = try ProduceResponse.decode(try await Self.exchange(client, .produce, version: 7, request), version: 7, flexible: false)
            #expect(response.topics[0].partitions.map(\.errorCode) == [0, 0, 0, 0])
            for p in 0..<4 { #expect(try server.broker.partitionState("packed", p).log.logEndOffset == 400) }
        }
    }

    /// gzip and zstd batches, however small, are checked off the event loop (their ratio has no
    /// useful bound: a few KB of zstd is 64 MiB of zeros); small lz4 and snappy ones on it.
    /// Over the wire, each is stored.
    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func gzipAndZstdAreNeverDecompressedOnTheLoop(codec: CompressionCodec) async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("small", partitions: 1)
            var builder = RecordBatchBuilder(compression: codec)
            builder.append(timestamp: 1_700_000_000_000, key: nil, value: Array("job".utf8))
            let batch = try builder.build()
            let onLoop = try server.broker.appendNow(topic: "small", partition: 0, batches: batch[...]) != nil
            #expect(onLoop == (codec == .lz4 || codec == .snappy))
            let client = try RawClient(port: server.boundPort)
            let request = ServerTests.produceRequest(topic: "small", batch: batch)
            let response = try ProduceResponse.decode(try await Self.exchange(client, .produce, version: 7, request), version: 7, flexible: false)
            #expect(response.topics[0].partitions.map(\.errorCode) == [0])
            #expect(try server.broker.partitionState("small", 0).log.logEndOffset == (onLoop ? 2 : 1))
        }
    }

    /// zstd needs Produce v7, as in Kafka (ProduceRequest.validateRecords): an older
    /// producer's zstd batch is UNSUPPORTED_COMPRESSION_TYPE for its partition. Kafka 4 reads a
    /// zstd topic to every Fetch version (its check below v10 went with KIP-896), and so does this.
    @Test func zstdIsRefusedToRequestVersionsOlderThanIt() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("z", partitions: 1, config: TopicConfig(compression: .zstd))
            try await server.broker.createTopic("asis", partitions: 1)
            let client = try RawClient(port: server.boundPort)
            var builder = RecordBatchBuilder(compression: .zstd)
            builder.append(timestamp: 1_700_000_000_000, key: nil, value: Array("job".utf8))
            let zstd = try builder.build()
            for version: Int16 in [3, 6, 7] {
                let request = ServerTests.produceRequest(topic: "asis", batch: zstd)
                let response = try ProduceResponse.decode(
                    try await Self.exchange(client, .produce, version: version, request), version: version, flexible: false)
                #expect(response.topics[0].partitions.map(\.errorCode) == [version < 7 ? 76 : 0], "produce v\(version)")
            }
            #expect(try server.broker.partitionState("asis", 0).log.logEndOffset == 1)
            _ = try await server.broker.append(topic: "z", partition: 0, batches: try Self.batch(["a", "b"]))
            for (topic, version) in [("z", Int16(4)), ("z", 10), ("asis", 9)] {
                var request = FetchRequest()
                request.maxWaitMs = 0
                var t = FetchRequest.Topic()
                t.topic = topic
                var p = FetchRequest.Partition()
                p.fetchOffset = 0
                t.partitions = [p]
                request.topics = [t]
                let response = try FetchResponse.decode(
                    try await Self.exchange(client, .fetch, version: version, request), version: version, flexible: false)
                let partition = try #require(response.topics.first?.partitions.first)
                #expect(partition.errorCode == 0, "fetch v\(version) of \(topic)")
                if case .bytes(let bytes)? = partition.records { #expect(!bytes.isEmpty) }
            }
        }
    }

    /// CreateTopics naming a topic twice acts on neither (INVALID_REQUEST); DeleteTopics
    /// naming one by both name and id is refused; Metadata for an invalid name answers
    /// INVALID_TOPIC_EXCEPTION (not the retriable UNKNOWN_TOPIC_OR_PARTITION, which made
    /// Java clients wait for max.block.ms).
    @Test func duplicatesAndBadNamesAreRefusedAsKafkaRefusesThem() async throws {
        try await ServerTests.withServer { server in
            let client = try RawClient(port: server.boundPort)
            var create = CreateTopicsRequest()
            var topic = CreateTopicsRequest.Topic()
            topic.name = "twice"
            topic.numPartitions = 1
            create.topics = [topic, topic]
            let created = try CreateTopicsResponse.decode(try await Self.exchange(client, .createTopics, version: 4, create), version: 4, flexible: false)
            #expect(created.topics.map(\.errorCode) == [KafkaError.invalidRequest.rawValue, KafkaError.invalidRequest.rawValue])
            #expect(server.broker.listTopics().isEmpty)

            try await server.broker.createTopic("named", partitions: 1)
            var delete = DeleteTopicsRequest()
            var entry = DeleteTopicsRequest.Topic()
            entry.name = "named"
            entry.topicId = WireUUID(try server.broker.topicId(of: "named"))
            delete.topics = [entry]
            let deleted = try DeleteTopicsResponse.decode(
                try await Self.exchange(client, .deleteTopics, version: 6, delete), from: 1, version: 6, flexible: true)
            #expect(deleted.responses.map(\.errorCode) == [KafkaError.invalidRequest.rawValue])
            #expect(server.broker.listTopics() == ["named"])

            var metadata = MetadataRequest()
            metadata.topicList = [.init(name: "bad name!")]
            metadata.allowAutoTopicCreation = false
            let answer = try MetadataResponse.decode(try await Self.exchange(client, .metadata, version: 8, metadata), version: 8, flexible: false)
            #expect(answer.topics.map(\.errorCode) == [KafkaError.invalidTopicException.rawValue])
        }
    }

    /// Transactions need a transaction coordinator this node does not have: every way a
    /// transactional producer asks is answered TRANSACTIONAL_ID_AUTHORIZATION_FAILED (fatal in
    /// clients) with the reason, in the old and the batched FindCoordinator layouts; a key
    /// type that is not a client's is INVALID_REQUEST; groups are still found.
    @Test func transactionsAreRefusedAtOnce() async throws {
        try await ServerTests.withServer { server in
            let client = try RawClient(port: server.boundPort)
            let refused = KafkaError.transactionalIdAuthorizationFailed.rawValue
            for (keyType, expected) in [(Int8(0), KafkaError.none.rawValue), (1, refused), (2, KafkaError.invalidRequest.rawValue), (7, KafkaError.invalidRequest.rawValue)] {
                var find = FindCoordinatorRequest()
                find.keyType = keyType
                find.key = "k"
                let old = try FindCoordinatorResponse.decode(
                    try await Self.exchange(client, .findCoordinator, version: 2, find), version: 2, flexible: false)
                #expect(old.errorCode == expected, "key type \(keyType), v2")
                #expect((old.nodeId >= 0) == (expected == 0))
                if keyType == 1 { #expect(old.errorMessage?.contains("transactions are not supported") == true) }
                find.coordinatorKeys = ["a", "b"]
                let batched = try FindCoordinatorResponse.decode(
                    try await Self.exchange(client, .findCoordinator, version: 4, find), from: 1, version: 4, flexible: true)
                #expect(batched.coordinators.map(\.key) == ["a", "b"])
                #expect(batched.coordinators.map(\.errorCode) == [expected, expected], "key type \(keyType), v4")
            }
            var initialize = InitProducerIdRequest()
            initialize.transactionalId = "tx"
            let transactional = try InitProducerIdResponse.decode(
                try await Self.exchange(client, .initProducerId, version: 4, initialize), from: 1, version: 4, flexible: true)
            #expect(transactional.errorCode == refused && transactional.producerId == -1)
            initialize.transactionalId = nil
            let idempotent = try InitProducerIdResponse.decode(
                try await Self.exchange(client, .initProducerId, version: 4, initialize), from: 1, version: 4, flexible: true)
            #expect(idempotent.errorCode == 0 && idempotent.producerId >= 0)

            try await server.broker.createTopic("tx", partitions: 1)
            var produce = ServerTests.produceRequest(topic: "tx", batch: try Self.batch(["a"]))
            produce.transactionalId = "tx"
            let answer = try ProduceResponse.decode(try await Self.exchange(client, .produce, version: 7, produce), version: 7, flexible: false)
            #expect(answer.topics[0].partitions[0].errorCode == refused)
            #expect(try server.broker.offsets(topic: "tx", partition: 0).end == 0)
        }
    }

    /// A request that names an entry many times gets one answer for it (Kafka's Metadata
    /// de-duplicates too). A few kilobytes naming a group or a partition thousands of times
    /// used to make a response repeating its stored data as often: gigabytes of members'
    /// metadata, of a topic's partitions, of a partition's producers.
    @Test func repeatedEntriesAreAnsweredOnce() async throws {
        try await ServerTests.withServer { server in
            try await server.broker.createTopic("dup", partitions: 3)
            #expect(try await server.broker.groups.commitOffsets(
                groupId: "g", offsets: [TopicPartition("dup", 0): CommittedOffset(offset: 4, metadata: "m")]) == nil)
            let client = try RawClient(port: server.boundPort)

            var metadata = MetadataRequest()
            metadata.topicList = Array(repeating: .init(name: "dup"), count: 500)
            let topics = try MetadataResponse.decode(try await Self.exchange(client, .metadata, version: 1, metadata), version: 1, flexible: false)
            #expect(topics.topics.map(\.name) == ["dup"] && topics.topics[0].partitions.count == 3)

            var describe = DescribeGroupsRequest()
            describe.groups = Array(repeating: "g", count: 500) + ["h", "g"]
            let groups = try DescribeGroupsResponse.decode(try await Self.exchange(client, .describeGroups, version: 0, describe), version: 0, flexible: false)
            #expect(groups.groups.map(\.groupId) == ["g", "h"])

            var producers = DescribeProducersRequest()
            var topic = DescribeProducersRequest.Topic()
            topic.name = "dup"
            topic.partitionIndexes = Array(repeating: 0, count: 500) + [1]
            producers.topics = [topic, topic]
            let described = try DescribeProducersResponse.decode(
                try await Self.exchange(client, .describeProducers, version: 0, producers), from: 1, version: 0, flexible: true)
            #expect(described.topics.count == 1 && described.topics[0].partitions.map(\.partitionIndex) == [0, 1])

            var fetch = OffsetFetchRequest()
            fetch.groups = [.init(groupId: "g", topics: [.init(name: "dup", partitionIndexes: Array(repeating: 0, count: 500) + [2])])]
            let offsets = try OffsetFetchResponse.decode(try await Self.exchange(client, .offsetFetch, version: 1, fetch), version: 1, flexible: false)
            #expect(offsets.topics.count == 1 && offsets.topics[0].partitions.map(\.partitionIndex) == [0, 2])
            #expect(offsets.topics[0].partitions[0].committedOffset == 4)

            var configs = DescribeConfigsRequest()
            var resource = DescribeConfigsRequest.Resource()
            resource.resourceName = "dup"
            configs.resources = Array(repeating: resource, count: 500)
            let configured = try DescribeConfigsResponse.decode(
                try await Self.exchange(client, .describeConfigs, version: 0, configs), version: 0, flexible: false)
            #expect(configured.results.map(\.resourceName) == ["dup"] && !configured.results[0].configs.isEmpty)

            // A share group named many times is answered once; a negative partition is unknown.
            var shareOffsets = DescribeShareGroupOffsetsRequest()
            shareOffsets.groups =
                Array(repeating: .init(groupId: "s", topics: [.init(topicName: "dup", partitions: [0, -1])]), count: 500) + [.init(groupId: "t")]
            let shared = try DescribeShareGroupOffsetsResponse.decode(
                try await Self.exchange(client, .describeShareGroupOffsets, version: 0, shareOffsets), from: 1, version: 0, flexible: true)
            #expect(shared.groups.map(\.groupId) == ["s", "t"])
            let asked = shared.groups.first?.topics.first?.partitions ?? []
            #expect(asked.map(\.partitionIndex) == [-1, 0])
            #expect(asked.first?.errorCode == KafkaError.unknownTopicOrPartition.rawValue && asked.last?.errorCode == 0)
        }
    }
}

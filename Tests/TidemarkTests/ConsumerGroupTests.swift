import Synchronization
import TestSupport
import Testing
@testable import Tidemark

/// The consumer-protocol (KIP-848) group state machine and its assignors, driven by hand.
@Suite struct ConsumerGroupTests {
    /// A mutable set of topics behind a `TopicCatalog`.
    final class Topics: Sendable {
        let counts: Mutex<[String: Int]>
        init(_ counts: [String: Int]) { self.counts = Mutex(counts) }
        var catalog: TopicCatalog {
            TopicCatalog(
                partitionCount: { name in self.counts.withLock { $0[name] } },
                topicNames: { self.counts.withLock { Array($0.keys) } })
        }
    }

    static let settings = ConsumerGroup.Settings(sessionTimeoutMs: 45_000, heartbeatIntervalMs: 5_000, maxSize: 100)

    /// What a group's heartbeats cost is its own change, not every member's subscription: with
    /// the topics' generation unchanged, a steady heartbeat looks up no name, and a member that
    /// changes its subscription looks up only the names no member had (40 members of 10,000
    /// names each took the coordinator's lock 0.6 s per heartbeat, re-reading all 400,000,
    /// once a second and at each change; every group waited).
    @Test func heartbeatsLookUpOnlyWhatChanged() {
        let lookups = Atomic<Int>(0)
        let generation = Atomic<UInt64>(1)
        let counts = Mutex(["t": 4])
        let catalog = TopicCatalog(
            partitionCount: { name in
                lookups.add(1, ordering: .relaxed)
                return counts.withLock { $0[name] }
            },
            topicNames: { counts.withLock { Array($0.keys) } },
            generation: { generation.load(ordering: .relaxed) })
        var group = ConsumerGroup(groupId: "g")
        var epochs: [String: Int32] = [:]
        func beat(_ id: String, names: [String]? = nil, now: Int64) -> ConsumerHeartbeatResult {
            let result = group.heartbeat(
                ConsumerHeartbeat(
                    groupId: "g", memberId: id, memberEpoch: epochs[id] ?? 0, rebalanceTimeoutMs: 60_000, subscribedTopicNames: names,
                    clientId: id),
                nowMs: now, settings: Self.settings, catalog: catalog, newMemberId: { id })
            #expect(result.error == nil)
            epochs[id] = result.memberEpoch
            return result
        }
        for m in 0..<40 { _ = beat("m\(m)", names: ["t"] + (0..<1_000).map { "m\(m)-missing-\($0)" }, now: 0) }
        lookups.store(0, ordering: .relaxed)
        for m in 0..<40 { _ = beat("m\(m)", now: 5_000) }
        #expect(lookups.load(ordering: .relaxed) == 0, "steady heartbeats, seconds apart")
        _ = beat("m0", names: ["t", "u"], now: 6_000)
        #expect(lookups.load(ordering: .relaxed) == 1, "the one name new to the group")
        // A topic created: the next heartbeat re-reads every name once, then none again.
        counts.withLock { $0["u"] = 2 }
        generation.store(2, ordering: .relaxed)
        lookups.store(0, ordering: .relaxed)
        _ = beat("m1", now: 7_000)
        #expect(lookups.load(ordering: .relaxed) == 1 + 39 * 1_000 + 1)
        lookups.store(0, ordering: .relaxed)
        for m in 2..<40 { _ = beat("m\(m)", now: 8_000) }
        #expect(lookups.load(ordering: .relaxed) == 0)
        // And the targets are right: u's partitions go to m0, its only subscriber; every member
        // of many names finds t among them (members of many names are searched per topic).
        let targets = Dictionary(uniqueKeysWithValues: group.describe().members.map { ($0.memberId, $0.targetAssignment) })
        #expect(Set(targets.values.joined()) == Set((0..<4).map { TopicPartition("t", $0) } + (0..<2).map { TopicPartition("u", $0) }))
        #expect(targets["m0"]?.filter { $0.topic == "u" }.count == 2)
        #expect(targets.filter { $0.key != "m0" }.values.allSatisfy { $0.allSatisfy { $0.topic == "t" } })
        // A member leaving takes its names' counts with it; the last one leaves nothing subscribed.
        for m in 0..<40 { group.remove("m\(m)") }
        #expect(group.subscribedTopicNames.isEmpty)
    }

    /// One member as a client would run it: remembers its epoch and what it was told.
    struct Client {
        var id: String
        var epoch: Int32 = 0
        var owned: [TopicPartition] = []
        /// group.instance.id: sent when joining, as librdkafka does (its full heartbeats).
        var instance: String? = nil

        mutating func beat(
            _ group: inout ConsumerGroup, _ topics: Topics, now: Int64 = 0, subscribe: [String]? = nil,
            regex: String? = nil, assignor: String? = nil
        ) -> ConsumerHeartbeatResult {
            let joining = epoch == 0
            let request = ConsumerHeartbeat(
                groupId: "g", memberId: id, memberEpoch: epoch, instanceId: joining ? instance : nil,
                rebalanceTimeoutMs: joining ? 60_000 : -1,
                subscribedTopicNames: joining ? (subscribe ?? (regex == nil ? ["t"] : nil)) : subscribe,
                subscribedTopicRegex: regex, serverAssignor: assignor, ownedPartitions: owned, clientId: id)
            let result = group.heartbeat(request, nowMs: now, settings: ConsumerGroupTests.settings, catalog: topics.catalog) {
                "generated"
            }
            if result.error == nil {
                epoch = result.memberEpoch
                // A client revokes at once what it is no longer given, and takes what it is.
                if let assignment = result.assignment { owned = assignment }
            } else if result.error == .fencedMemberEpoch || result.error == .unknownMemberId {
                epoch = 0
                owned = []
            }
            return result
        }
    }

    /// No partition is owned by two clients at once.
    static func expectExclusive(_ clients: [Client], sourceLocation: SourceLocation = #_sourceLocation) {
        var seen: [TopicPartition: String] = [:]
        for client in clients {
            for tp in client.owned {
                #expect(seen[tp] == nil, "\(tp) owned by \(seen[tp] ?? "") and \(client.id)", sourceLocation: sourceLocation)
                seen[tp] = client.id
            }
        }
    }

    @Test func secondMemberGetsPartitionsOnlyAfterTheFirstGivesThemUp() {
        let topics = Topics(["t": 6])
        var group = ConsumerGroup(groupId: "g")
        var a = Client(id: "a")
        var b = Client(id: "b")
        let joined = a.beat(&group, topics)
        #expect(joined.error == nil && joined.memberEpoch == 1 && a.owned.count == 6)
        #expect(group.state == .stable)

        let bJoined = b.beat(&group, topics)
        #expect(bJoined.memberEpoch == 2 && b.owned.isEmpty)  // its target is held by a
        #expect(group.state == .reconciling)
        Self.expectExclusive([a, b])

        // a is told to keep 3 (still at epoch 1, revoking the others).
        let revoke = a.beat(&group, topics)
        #expect(revoke.memberEpoch == 1 && a.owned.count == 3)
        // a confirms (its owned partitions no longer include the revoked): epoch 2.
        let confirmed = a.beat(&group, topics)
        #expect(confirmed.memberEpoch == 2 && a.owned.count == 3)
        Self.expectExclusive([a, b])
        // b now gets the released three.
        let got = b.beat(&group, topics)
        #expect(got.memberEpoch == 2 && b.owned.count == 3)
        Self.expectExclusive([a, b])
        #expect(Set(a.owned + b.owned).count == 6)
        #expect(group.state == .stable)
        // An unchanged heartbeat carries no assignment.
        #expect(a.beat(&group, topics).assignment == nil)
    }

    @Test func staleEpochsAreFencedButALostResponseIsForgiven() {
        let topics = Topics(["t": 4])
        var group = ConsumerGroup(groupId: "g")
        var a = Client(id: "a")
        _ = a.beat(&group, topics)
        var b = Client(id: "b")
        _ = b.beat(&group, topics)
        _ = a.beat(&group, topics)  // revoke
        var lost = a
        _ = a.beat(&group, topics)  // epoch 1 -> 2; pretend the client never saw this response
        lost.owned = a.owned
        let retried = lost.beat(&group, topics)
        #expect(retried.error == nil && retried.memberEpoch == 2)

        var wrong = a
        wrong.epoch = 7
        #expect(wrong.beat(&group, topics).error == .fencedMemberEpoch)
        var stranger = Client(id: "nobody", epoch: 3)
        #expect(stranger.beat(&group, topics).error == .unknownMemberId)
    }

    @Test func leavingAndExpiringMembersHandTheirPartitionsOver() {
        let topics = Topics(["t": 4])
        var group = ConsumerGroup(groupId: "g")
        var clients = ["a", "b", "c"].map { Client(id: $0) }
        for _ in 0..<4 { for i in clients.indices { _ = clients[i].beat(&group, topics) } }
        #expect(clients.map(\.owned.count).sorted() == [1, 1, 2])
        // a leaves (epoch -1).
        let leave = group.heartbeat(
            ConsumerHeartbeat(groupId: "g", memberId: "a", memberEpoch: -1), nowMs: 1, settings: Self.settings,
            catalog: topics.catalog, newMemberId: { "x" })
        #expect(leave.error == nil && leave.memberEpoch == -1)
        clients.removeFirst()
        for _ in 0..<3 { for i in clients.indices { _ = clients[i].beat(&group, topics, now: 2) } }
        #expect(clients.map(\.owned.count) == [2, 2])
        Self.expectExclusive(clients)
        // c stops heartbeating; b goes on. After c's session timeout b gets everything.
        var b = clients[0]
        _ = b.beat(&group, topics, now: 40_000)
        #expect(group.tick(nowMs: 2 + 45_001, sessionTimeoutMs: 45_000) == ["c"])
        _ = b.beat(&group, topics, now: 45_004)
        #expect(b.owned.count == 4)
    }

    /// Static membership (group.instance.id): a member that leaves for now (epoch -2, what
    /// librdkafka sends at close) keeps its partitions, which no other member takes; its new
    /// instance, under a new member id, takes its place and its partitions, without the group
    /// moving to a new epoch. Its old instance is fenced by instance id.
    @Test func aStaticMemberLeavingForNowKeepsItsPartitionsForItsNextInstance() {
        let topics = Topics(["t": 6])
        var group = ConsumerGroup(groupId: "g")
        var a = Client(id: "a1", instance: "host-a")
        var b = Client(id: "b", instance: "host-b")
        for _ in 0..<3 {
            _ = a.beat(&group, topics)
            _ = b.beat(&group, topics)
        }
        #expect(a.owned.count == 3 && b.owned.count == 3 && group.state == .stable)
        let epoch = group.groupEpoch
        let partitionsOfA = a.owned

        let left = group.heartbeat(
            ConsumerHeartbeat(groupId: "g", memberId: "a1", memberEpoch: -2, instanceId: "host-a"), nowMs: 10,
            settings: Self.settings, catalog: topics.catalog, newMemberId: { "x" })
        #expect(left.error == nil && left.memberEpoch == -2)
        #expect(group.describe().members.first { $0.memberId == "a1" }?.memberEpoch == -2)
        #expect(group.state == .reconciling)
        // b goes on with its own three: nothing of a's is handed over.
        for _ in 0..<3 { _ = b.beat(&group, topics, now: 20) }
        #expect(b.owned.count == 3 && group.groupEpoch == epoch)

        // The restarted instance: a new member id, the same instance id.
        var a2 = Client(id: "a2", instance: "host-a")
        let joined = a2.beat(&group, topics, now: 30)
        #expect(joined.error == nil && joined.memberEpoch == epoch && a2.owned == partitionsOfA)
        #expect(group.groupEpoch == epoch && group.state == .stable)
        #expect(group.describe().members.map(\.memberId) == ["a2", "b"])
        Self.expectExclusive([a2, b])
        // The old instance, heartbeating again, is fenced by its instance id.
        let old = group.heartbeat(
            ConsumerHeartbeat(groupId: "g", memberId: "a1", memberEpoch: a.epoch, instanceId: "host-a"), nowMs: 40,
            settings: Self.settings, catalog: topics.catalog, newMemberId: { "x" })
        #expect(old.error == .fencedInstanceId)
        #expect(a.beat(&group, topics, now: 40).error == .unknownMemberId)
    }

    /// An instance id held by a member still in the group is refused to another
    /// (UNRELEASED_INSTANCE_ID); the holder's own member id rejoining is taken (Kafka refuses
    /// it too, and librdkafka takes that as fatal after a lost response). Epoch -2 needs an
    /// instance id; an unknown one is UNKNOWN_MEMBER_ID. A member that left for now and never
    /// comes back expires with its session, and its partitions go to the others.
    @Test func instanceIdsAreHeldOnceAndAMemberAwayForGoodExpires() {
        let topics = Topics(["t": 4])
        var group = ConsumerGroup(groupId: "g")
        var a = Client(id: "a", instance: "host-a")
        var b = Client(id: "b")
        for _ in 0..<3 {
            _ = a.beat(&group, topics)
            _ = b.beat(&group, topics)
        }
        var twin = Client(id: "twin", instance: "host-a")
        #expect(twin.beat(&group, topics).error == .unreleasedInstanceId)
        var rejoin = a
        rejoin.epoch = 0
        rejoin.owned = []
        #expect(rejoin.beat(&group, topics).error == nil && rejoin.owned.count == 2)
        a = rejoin

        func send(_ memberId: String, _ epoch: Int32, _ instance: String?, now: Int64) -> ConsumerHeartbeatResult {
            group.heartbeat(
                ConsumerHeartbeat(groupId: "g", memberId: memberId, memberEpoch: epoch, instanceId: instance), nowMs: now,
                settings: Self.settings, catalog: topics.catalog, newMemberId: { "x" })
        }
        #expect(send("b", -2, nil, now: 1).error == .invalidRequest)
        #expect(send("b", b.epoch, "host-z", now: 1).error == .unknownMemberId)
        #expect(send("a", a.epoch, "", now: 1).error == .invalidRequest)
        #expect(send("a", -2, "host-a", now: 1).memberEpoch == -2)
        // a's session runs from its last heartbeat (at 0): after 45 s it is gone, and b takes all.
        _ = b.beat(&group, topics, now: 30_000)
        #expect(group.tick(nowMs: 45_001, sessionTimeoutMs: 45_000) == ["a"])
        #expect(group.staticMembers.isEmpty)
        for _ in 0..<2 { _ = b.beat(&group, topics, now: 45_002) }
        #expect(b.owned.count == 4)
        // The instance id is free again.
        #expect(twin.beat(&group, topics, now: 45_003).error == nil)
    }

    @Test func aMemberThatKeepsRevokedPartitionsPastItsRebalanceTimeoutIsRemoved() {
        let topics = Topics(["t": 2])
        var group = ConsumerGroup(groupId: "g")
        var a = Client(id: "a")
        var b = Client(id: "b")
        _ = a.beat(&group, topics)
        _ = b.beat(&group, topics)
        _ = a.beat(&group, topics, now: 10)  // told to revoke one
        // a keeps reporting both partitions; its rebalance timeout (60 s) runs out.
        var stubborn = a
        let both = [TopicPartition("t", 0), TopicPartition("t", 1)]
        stubborn.owned = both
        #expect(stubborn.beat(&group, topics, now: 20).error == nil)
        stubborn.owned = both
        #expect(stubborn.beat(&group, topics, now: 60_011).error == .fencedMemberEpoch)
        _ = b.beat(&group, topics, now: 60_012)
        _ = b.beat(&group, topics, now: 60_013)
        #expect(b.owned.count == 2)
    }

    @Test func validationErrors() {
        let topics = Topics(["t": 1])
        var group = ConsumerGroup(groupId: "g")
        var a = Client(id: "a")
        #expect(a.beat(&group, topics, assignor: "sticky").error == .unsupportedAssignor)
        #expect(a.beat(&group, topics, regex: "([unclosed").error == .invalidRegularExpression)
        let noSubscription = group.heartbeat(
            ConsumerHeartbeat(groupId: "g", memberId: "z", memberEpoch: 0), nowMs: 0, settings: Self.settings,
            catalog: topics.catalog, newMemberId: { "x" })
        #expect(noSubscription.error == .invalidRequest)
        #expect(group.isEmpty)
        // A v0 member joining without an id gets one.
        var anonymous = Client(id: "")
        let joined = anonymous.beat(&group, topics)
        #expect(joined.error == nil && joined.memberId == "generated")
    }

    /// A subscription regex matches whole topic names, as Kafka's `matches()` does: the
    /// second alternative counts even where the first matches a prefix.
    @Test func aRegexMatchesWholeTopicNames() throws {
        let regex = try #require(ConsumerGroup.compile("payments|payments-retry"))
        #expect(ConsumerGroup.wholeMatch(regex, "payments-retry"))
        #expect(ConsumerGroup.wholeMatch(regex, "payments"))
        #expect(!ConsumerGroup.wholeMatch(regex, "payments-retry-2") && !ConsumerGroup.wholeMatch(regex, "my-payments"))
        #expect(ConsumerGroup.compile("a)|(b") == nil, "not valid alone, so not valid wrapped")
    }

    @Test func regexSubscriptionsFollowNewTopics() {
        let topics = Topics(["jobs.a": 2, "other": 2])
        var group = ConsumerGroup(groupId: "g")
        var a = Client(id: "a")
        _ = a.beat(&group, topics, now: 0, regex: "jobs\\..*")
        #expect(Set(a.owned.map(\.topic)) == ["jobs.a"])
        topics.counts.withLock { $0["jobs.b"] = 1 }
        // Metadata is re-read at most once a second.
        _ = a.beat(&group, topics, now: 500)
        #expect(a.owned.count == 2)
        _ = a.beat(&group, topics, now: 1_500)
        #expect(Set(a.owned.map(\.topic)) == ["jobs.a", "jobs.b"] && a.owned.count == 3)
    }

    /// A pattern is matched against the topics once, and then against new topics only; one
    /// that would take too long to match (`.*` 2,000 times, against 1,200 topics: 3 s under the
    /// coordinator's lock, at every refresh) is refused, and the group goes on.
    @Test func aPatternTooCostlyToMatchIsRefused() {
        var counts: [String: Int] = [:]
        for index in 0..<1_200 { counts["jobs.\(String(repeating: "x", count: 50))-\(index)"] = 1 }
        let topics = Topics(counts)
        var group = ConsumerGroup(groupId: "g")
        var a = Client(id: "a")
        let costly = a.beat(&group, topics, regex: String(repeating: ".*", count: 2_000))
        #expect(costly.error == .invalidRegularExpression && costly.errorMessage?.contains("1200 topics") == true)
        var b = Client(id: "b")
        #expect(b.beat(&group, topics, regex: "jobs\\..*-1.*").error == nil)
        #expect(b.owned.count == 311)  // -1, -10...-19, -100...-199, -1000...-1199
        topics.counts.withLock { $0["jobs.new-1"] = 2; $0["jobs.\(String(repeating: "x", count: 50))-1"] = nil }
        _ = b.beat(&group, topics, now: 1_500)  // gives up the deleted topic's partition
        _ = b.beat(&group, topics, now: 1_600)  // takes the new topic's
        #expect(b.owned.count == 312 && b.owned.contains(TopicPartition("jobs.new-1", 1)))
    }

    /// A pattern that passed with few short topics, and that new long ones make too costly to
    /// match under the coordinator's lock, is dropped at the refresh that finds out (within
    /// its steps) and its member refused from then on; the group's other patterns go on. The
    /// caches count toward the group's bytes and go when the group empties.
    @Test func aPatternThatNewTopicsMakeTooCostlyIsDropped() {
        let topics = Topics(["t": 1])
        var group = ConsumerGroup(groupId: "g")
        let base = group.memberBytes
        var a = Client(id: "a")
        var b = Client(id: "b")
        #expect(a.beat(&group, topics, regex: String(repeating: ".*", count: 2_000)).error == nil)
        #expect(b.beat(&group, topics, regex: "long-.*").error == nil)
        topics.counts.withLock { counts in
            for index in 0..<10 { counts["long-\(index)-" + String(repeating: "x", count: 240)] = 1 }
        }
        #expect(a.beat(&group, topics, now: 1_500).error == nil)  // the refresh that finds out
        #expect(a.beat(&group, topics, now: 1_600).error == .invalidRegularExpression)
        _ = b.beat(&group, topics, now: 1_700)
        _ = b.beat(&group, topics, now: 1_800)
        #expect(Set(b.owned.map(\.topic)).count == 10 && !b.owned.contains { $0.topic == "t" }, "\(b.owned.map(\.topic))")
        #expect(group.memberBytes > base + 10 * 32)
        // Its member gone (the group keeps another), the pattern is refused no more.
        var c = Client(id: "c")
        #expect(c.beat(&group, topics, now: 1_900, subscribe: ["t"]).error == nil)
        group.remove("a")
        _ = c.beat(&group, topics, now: 3_000)
        var d = Client(id: "d")
        // Matched again (against all 11 topics now, and refused for that), not refused unseen.
        let again = d.beat(&group, topics, now: 3_100, regex: String(repeating: ".*", count: 2_000))
        #expect(again.error == .invalidRegularExpression && again.errorMessage?.contains("against the 11 topics") == true, "\(again)")
        #expect(d.beat(&group, topics, now: 3_200, regex: "long-1.*").error == nil)
        group.remove("b")
        group.remove("c")
        group.remove("d")
        #expect(group.memberBytes == base)
    }

    /// A member told to give up partitions it says it no longer holds gives them up at once
    /// (Kafka's CurrentAssignmentBuilder reads owned partitions so): a member restored from
    /// records written before it gave them up was told to give them up again, and librdkafka,
    /// holding what it was told, said nothing more until its rebalance timeout.
    @Test func partitionsAMemberSaysItNoLongerHoldsAreFreedAtOnce() {
        let topics = Topics(["t": 2])
        var group = ConsumerGroup(groupId: "g")
        var a = Client(id: "a")
        _ = a.beat(&group, topics)
        _ = a.beat(&group, topics)
        #expect(a.owned.count == 2)
        var b = Client(id: "b")
        _ = b.beat(&group, topics)
        // `a` reports that it holds one partition only (it gave the other up already).
        let kept = a.owned.sorted(by: ServerAssignor.partitionOrder).first!
        a.owned = [kept]
        let told = a.beat(&group, topics)
        #expect(told.error == nil)
        #expect(group.describe().members.first { $0.memberId == "a" }?.assignment == [kept])
        // `b` gets the other at its next heartbeat: nothing is pending revocation.
        _ = b.beat(&group, topics)
        #expect(b.owned.count == 1 && b.owned.first != kept)
        Self.expectExclusive([a, b])
    }

    @Test func commitsNeedTheCurrentEpoch() {
        let topics = Topics(["t": 2])
        var group = ConsumerGroup(groupId: "g")
        var a = Client(id: "a")
        _ = a.beat(&group, topics)
        #expect(group.validateCommit(memberId: "a", memberEpoch: a.epoch) == nil)
        #expect(group.validateCommit(memberId: "a", memberEpoch: a.epoch - 1) == .staleMemberEpoch)
        #expect(group.validateCommit(memberId: "b", memberEpoch: 1) == .unknownMemberId)
        #expect(group.validateCommit(memberId: "", memberEpoch: -1) == .unknownMemberId)  // not while it has members
        #expect(group.validateCommit(memberId: "x", memberEpoch: -1) == .unknownMemberId)
        // Once empty, a commit from outside group management goes through whatever member id
        // it names (librdkafka's assign() + commit() sends its own), as in Kafka.
        group.remove("a")
        #expect(group.validateCommit(memberId: "a", memberEpoch: -1) == nil)
        #expect(group.validateCommit(memberId: "", memberEpoch: -1) == nil)
        #expect(group.validateCommit(memberId: "a", memberEpoch: 1) == .unknownMemberId)
    }

    /// Random joins, leaves and heartbeat orders: never two owners, and once heartbeats
    /// settle, every partition has exactly one owner and the spread is at most one.
    @Test(arguments: 1...20)
    func randomScheduleKeepsOwnershipExclusiveAndConverges(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        let topics = Topics(["t": 12, "u": 5])
        var group = ConsumerGroup(groupId: "g")
        var clients: [Client] = []
        var next = 0
        var now: Int64 = 0
        for _ in 0..<200 {
            now += 10
            switch Int.random(in: 0..<10, using: &rng) {
            case 0 where clients.count < 6:
                clients.append(Client(id: "m\(next)"))
                next += 1
            case 1 where clients.count > 1:
                let leaving = clients.remove(at: Int.random(in: 0..<clients.count, using: &rng))
                _ = group.heartbeat(
                    ConsumerHeartbeat(groupId: "g", memberId: leaving.id, memberEpoch: -1), nowMs: now,
                    settings: Self.settings, catalog: topics.catalog, newMemberId: { "x" })
            default:
                guard !clients.isEmpty else { continue }
                let i = Int.random(in: 0..<clients.count, using: &rng)
                _ = clients[i].beat(&group, topics, now: now, subscribe: clients[i].epoch == 0 ? ["t", "u"] : nil)
            }
            Self.expectExclusive(clients)
        }
        for _ in 0..<6 { for i in clients.indices { _ = clients[i].beat(&group, topics, now: now) } }
        Self.expectExclusive(clients)
        #expect(clients.flatMap(\.owned).count == 17)
        let counts = clients.map(\.owned.count)
        #expect((counts.max() ?? 0) - (counts.min() ?? 0) <= 1, "\(counts)")
        #expect(group.state == .stable)
    }

    @Test func uniformIsBalancedAndSticky() {
        let members = (0..<3).map { ServerAssignor.Member(memberId: "m\($0)", topics: ["t"]) }
        let first = ServerAssignor.uniform.assign(members: members, partitionCounts: ["t": 10], previous: [:])
        #expect(first.values.map(\.count).sorted() == [3, 3, 4])
        // A fourth member: only what it needs moves to it.
        let four = members + [ServerAssignor.Member(memberId: "m3", topics: ["t"])]
        let second = ServerAssignor.uniform.assign(members: four, partitionCounts: ["t": 10], previous: first)
        #expect(second.values.map(\.count).sorted() == [2, 2, 3, 3])
        let moved = members.reduce(0) { $0 + first[$1.memberId]!.subtracting(second[$1.memberId]!).count }
        #expect(moved == second["m3"]!.count)
        // Four members of 4 partitions each and a fifth: it gets 3, from three members, and no
        // member both gives and gets (the first gave 2 and got one back).
        let sixteen = (0..<4).map { ServerAssignor.Member(memberId: "k\($0)", topics: ["t"]) }
        let even = ServerAssignor.uniform.assign(members: sixteen, partitionCounts: ["t": 16], previous: [:])
        let five = sixteen + [ServerAssignor.Member(memberId: "k4", topics: ["t"])]
        let joined = ServerAssignor.uniform.assign(members: five, partitionCounts: ["t": 16], previous: even)
        #expect(joined.values.map(\.count).sorted() == [3, 3, 3, 3, 4])
        #expect(sixteen.allSatisfy { joined[$0.memberId]!.isSubset(of: even[$0.memberId]!) })
        #expect(sixteen.reduce(0) { $0 + even[$1.memberId]!.subtracting(joined[$1.memberId]!).count } == 3)
        // Members that subscribe to different topics only get their own topics' partitions.
        let mixed = [ServerAssignor.Member(memberId: "x", topics: ["a"]), ServerAssignor.Member(memberId: "y", topics: ["a", "b"])]
        let assigned = ServerAssignor.uniform.assign(members: mixed, partitionCounts: ["a": 2, "b": 4], previous: [:])
        #expect(assigned["x"]!.allSatisfy { $0.topic == "a" })
        #expect(assigned["x"]!.count + assigned["y"]!.count == 6)
        // Different subscriptions: a member that could give nothing at first (m0) gives once
        // another member eligible for its topic (m1) has given its other topic's partition
        // away (a review found m0 left with 3 and m1 with 1 of t1).
        let overlapping = [
            ServerAssignor.Member(memberId: "m0", topics: ["t1"]), ServerAssignor.Member(memberId: "m1", topics: ["t0", "t1"]),
            ServerAssignor.Member(memberId: "m2", topics: ["t1"]), ServerAssignor.Member(memberId: "m3", topics: ["t0"]),
        ]
        let spread = ServerAssignor.uniform.assign(members: overlapping, partitionCounts: ["t0": 1, "t1": 6], previous: [:])
        let t1 = ["m0", "m1", "m2"].map { id in spread[id]!.filter { $0.topic == "t1" }.count }
        #expect(t1.max()! - t1.min()! <= 1, "\(t1)")
        #expect(spread.values.reduce(0) { $0 + $1.count } == 7)
    }

    /// Large groups: every partition once, to a member subscribed to its topic, balanced among
    /// the members sharing a topic, and sticky when a member goes. (The assignor runs under the
    /// coordinator's lock: these took the previous version seconds each; see the session note.)
    @Test func uniformIsCompleteAndBalancedForLargeGroups() {
        func check(_ members: [ServerAssignor.Member], _ counts: [String: Int], _ assigned: [String: Set<TopicPartition>]) {
            let all = assigned.values.flatMap { $0 }
            #expect(all.count == counts.values.reduce(0, +) && Set(all).count == all.count)
            let topics = Dictionary(members.map { ($0.memberId, $0.topics) }, uniquingKeysWith: { a, _ in a })
            #expect(assigned.allSatisfy { id, owned in owned.allSatisfy { topics[id]!.contains($0.topic) } })
        }
        // 300 members of one topic of 3,000 partitions: 10 each.
        let even = (0..<300).map { ServerAssignor.Member(memberId: "m\($0)", topics: ["t"]) }
        let first = ServerAssignor.uniform.assign(members: even, partitionCounts: ["t": 3_000], previous: [:])
        check(even, ["t": 3_000], first)
        #expect(Set(first.values.map(\.count)) == [10])
        // One leaves: only its 10 partitions move.
        let fewer = Array(even.dropFirst())
        let second = ServerAssignor.uniform.assign(members: fewer, partitionCounts: ["t": 3_000], previous: first)
        check(fewer, ["t": 3_000], second)
        #expect(fewer.reduce(0) { $0 + first[$1.memberId]!.subtracting(second[$1.memberId]!).count } == 0)
        #expect(second.values.map(\.count).max()! - second.values.map(\.count).min()! <= 1)
        // 999 members of a one-partition topic and one of a 3,000-partition topic.
        let lopsided = (0..<999).map { ServerAssignor.Member(memberId: "n\($0)", topics: ["one"]) } + [.init(memberId: "w", topics: ["wide"])]
        let counts = ["one": 1, "wide": 3_000]
        let third = ServerAssignor.uniform.assign(members: lopsided, partitionCounts: counts, previous: [:])
        check(lopsided, counts, third)
        #expect(third["w"]!.count == 3_000)
        // The last 100 of 1,000 members of a 5,000-partition topic joining one at a time (as a
        // group forms): balanced and sticky at each step.
        var forming = (0..<900).map { ServerAssignor.Member(memberId: "j\($0)", topics: ["big"]) }
        var assigned = ServerAssignor.uniform.assign(members: forming, partitionCounts: ["big": 5_000], previous: [:])
        for index in 900..<1_000 {
            forming.append(ServerAssignor.Member(memberId: "j\(index)", topics: ["big"]))
            let next = ServerAssignor.uniform.assign(members: forming, partitionCounts: ["big": 5_000], previous: assigned)
            #expect(next.values.map(\.count).max()! - next.values.map(\.count).min()! <= 1)
            // Sticky: no member both gains and loses (one drained and refilled at every join).
            #expect(assigned.allSatisfy { id, owned in owned.subtracting(next[id]!).count <= max(0, owned.count - next[id]!.count) })
            assigned = next
        }
        check(forming, ["big": 5_000], assigned)
        #expect(Set(assigned.values.map(\.count)) == [5])
    }

    @Test func rangeGivesContiguousRangesPerTopic() {
        let members = ["b", "a"].map { ServerAssignor.Member(memberId: $0, topics: ["t", "u"]) }
        let assigned = ServerAssignor.range.assign(members: members, partitionCounts: ["t": 5, "u": 5], previous: [:])
        #expect(assigned["a"]!.filter { $0.topic == "t" }.map(\.partition).sorted() == [0, 1, 2])
        #expect(assigned["b"]!.filter { $0.topic == "t" }.map(\.partition).sorted() == [3, 4])
        #expect(assigned["a"]!.filter { $0.topic == "u" }.map(\.partition).sorted() == [0, 1, 2])
    }
}

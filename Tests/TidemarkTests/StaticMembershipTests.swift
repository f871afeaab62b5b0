import TestSupport
import Testing
@testable import Tidemark

/// Static membership (KIP-345, `group.instance.id`) in the classic group state machine.
@Suite struct StaticMembershipTests {
    static func request(_ member: String = "", instance: String?, subscription: String = "t", requireKnown: Bool = true)
        -> JoinGroupRequest
    {
        JoinGroupRequest(
            groupId: "g", memberId: member, groupInstanceId: instance, clientId: "c", sessionTimeoutMs: 300_000,
            rebalanceTimeoutMs: 5_000, protocolType: "consumer", protocols: [("range", Array(subscription.utf8))],
            requireKnownMemberId: requireKnown)
    }

    func joined(_ deliveries: [ClassicGroup.Delivery]) -> [String: JoinGroupResponse] {
        var result: [String: JoinGroupResponse] = [:]
        for case .join(let id, let response) in deliveries { result[id] = response }
        return result
    }

    /// Two static members in a Stable group; "pod-1" restarts (joins with no member id): it
    /// gets a new member id and its old assignment back without a rebalance, the other member
    /// goes on in the same generation, and the old member id is fenced everywhere.
    func stableGroupOfTwo() -> (ClassicGroup, a: String, b: String) {
        var group = ClassicGroup(groupId: "g", options: GroupStateMachineTests.options())
        let (first, firstDeliveries) = group.join(Self.request(instance: "pod-1"), nowMs: 0)
        #expect(first == nil, "a static member needs no second join for its id")
        let a = joined(firstDeliveries).keys.first!
        _ = group.sync(memberId: a, instance: "pod-1", generationId: 1, assignments: [a: [1]], nowMs: 0)
        _ = group.join(Self.request(instance: "pod-2"), nowMs: 10)
        let all = joined(group.join(Self.request(a, instance: "pod-1"), nowMs: 20).1)
        let b = all.keys.first { $0 != a }!
        _ = group.sync(memberId: b, instance: "pod-2", generationId: 2, assignments: nil, nowMs: 30)
        _ = group.sync(memberId: a, instance: "pod-1", generationId: 2, assignments: [a: [0xA], b: [0xB]], nowMs: 30)
        #expect(group.state == .stable)
        return (group, a, b)
    }

    @Test func aRestartedInstanceTakesItsPlaceWithoutARebalance() {
        var (group, a, b) = stableGroupOfTwo()
        let (response, deliveries) = group.join(Self.request(instance: "pod-1"), nowMs: 100)
        let rejoined = try! #require(response)
        #expect(deliveries.isEmpty && group.state == .stable && group.generationId == 2)
        #expect(rejoined.error == nil && rejoined.memberId != a && rejoined.generationId == 2 && rejoined.members.isEmpty)
        #expect(rejoined.leaderId == a, "the leader id from before: the new instance just syncs")
        #expect(group.sync(memberId: rejoined.memberId, instance: "pod-1", generationId: 2, assignments: nil, nowMs: 110).0?.assignment == [0xA])
        #expect(group.heartbeat(memberId: b, instance: "pod-2", generationId: 2, nowMs: 120) == nil)
        // The old instance, still running somewhere, is fenced.
        #expect(group.heartbeat(memberId: a, instance: "pod-1", generationId: 2, nowMs: 120) == .fencedInstanceId)
        #expect(group.validateCommit(memberId: a, instance: "pod-1", generationId: 2) == .fencedInstanceId)
        // A member naming an instance id no static member holds is unknown (Kafka's validateMember).
        #expect(group.validateCommit(memberId: b, instance: "pod-9", generationId: 2) == .unknownMemberId)
        #expect(group.validateCommit(memberId: b, instance: "pod-2", generationId: 2) == nil)
        #expect(group.sync(memberId: a, instance: "pod-1", generationId: 2, assignments: nil, nowMs: 120).0?.error == .fencedInstanceId)
        #expect(group.join(Self.request(a, instance: "pod-1"), nowMs: 120).0?.error == .fencedInstanceId)
        #expect(group.members.count == 2 && group.leaderId == rejoined.memberId)
    }

    /// KIP-814: a static leader replaced in a Stable group over JoinGroup v9+ is told it leads,
    /// with the members, and to skip the assignment (so that a Java leader watches its group's
    /// topics again); before v9 it is told the old id leads (it would otherwise assign again).
    @Test func aReplacedLeaderIsToldToSkipTheAssignment() throws {
        var (group, a, b) = stableGroupOfTwo()
        #expect(group.leaderId == a)
        var request = Self.request(instance: "pod-1")
        request.supportsSkipAssignment = true
        let response = try #require(group.join(request, nowMs: 100).0)
        #expect(response.error == nil && response.skipAssignment && response.leaderId == response.memberId)
        #expect(Set(response.members.map(\.memberId)) == [response.memberId, b] && group.generationId == 2 && group.state == .stable)
        #expect(group.sync(memberId: response.memberId, instance: "pod-1", generationId: 2, assignments: [:], nowMs: 110).0?.assignment == [0xA])
        // A follower replaced so is told who leads, and nothing to skip.
        let follower = try #require(group.join(request.with(instance: "pod-2"), nowMs: 120).0)
        #expect(!follower.skipAssignment && follower.leaderId == response.memberId && follower.members.isEmpty)
    }

    /// A static member that misses a rebalance (its pod restarting) stays in the group, as
    /// Kafka keeps it: the leader assigns it its share, and when it comes back within the
    /// rebalance timeout it takes its place without another rebalance. It was dropped at the
    /// join's deadline, and its return rebalanced the group again.
    @Test func aStaticMemberThatMissesARebalanceKeepsItsPlace() throws {
        var (group, a, b) = stableGroupOfTwo()
        // A dynamic member joins; a rejoins; b (restarting) does not.
        let c = group.join(Self.request(instance: nil), nowMs: 200).0!.memberId
        _ = group.join(Self.request(c, instance: nil), nowMs: 210)
        #expect(group.join(Self.request(a, instance: "pod-1"), nowMs: 220).1.isEmpty)
        let done = joined(group.tick(nowMs: 5_300))
        #expect(Set(done.keys) == [a, c], "the join completes at the deadline with the members that rejoined")
        #expect(group.members[b] != nil && group.generationId == 3)
        #expect(Set(done[a]!.members.map(\.memberId)) == [a, b, c], "the leader assigns b its share")
        _ = group.sync(memberId: c, generationId: 3, assignments: nil, nowMs: 5_400)
        _ = group.sync(memberId: a, instance: "pod-1", generationId: 3, assignments: [a: [1], b: [2], c: [3]], nowMs: 5_400)
        #expect(group.state == .stable)
        // b's new instance comes back: no rebalance, its share waiting for it.
        let back = try #require(group.join(Self.request(instance: "pod-2"), nowMs: 6_000).0)
        #expect(back.error == nil && back.generationId == 3 && group.state == .stable)
        #expect(group.sync(memberId: back.memberId, instance: "pod-2", generationId: 3, assignments: nil, nowMs: 6_100).0?.assignment == [2])
        _ = group.heartbeat(memberId: a, instance: "pod-1", generationId: 3, nowMs: 10_000)
        _ = group.heartbeat(memberId: c, generationId: 3, nowMs: 10_000)
        #expect(group.tick(nowMs: 10_500).isEmpty && group.members.count == 3 && group.state == .stable)
    }

    /// A rebalance that no member rejoined (only static members away): the join waits another
    /// rebalance timeout rather than complete with no one to lead; the one that comes back
    /// leads (the old leader did not rejoin) and assigns the other its share.
    @Test func aJoinWithOnlyStaticMembersAwayWaitsForOneToComeBack() {
        var (group, a, b) = stableGroupOfTwo()
        #expect(group.leaderId == a)
        let c = group.join(Self.request(instance: nil), nowMs: 200).0!.memberId
        _ = group.join(Self.request(c, instance: nil), nowMs: 210)
        _ = group.leave(memberIds: [c], nowMs: 220)
        #expect(group.tick(nowMs: 5_300).isEmpty && group.state == .preparingRebalance && group.generationId == 2)
        #expect(group.nextDueMs == 10_300)
        #expect(group.join(Self.request(b, instance: "pod-2"), nowMs: 6_000).1.isEmpty)
        let done = joined(group.tick(nowMs: 10_300))
        #expect(Set(done.keys) == [b] && group.leaderId == b && group.generationId == 3)
        #expect(Set(done[b]!.members.map(\.memberId)) == [a, b] && group.members[a] != nil)
    }

    /// A new static member whose pod restarts while its first join waits is replaced as a
    /// member, not as a new one: the first join's 5-minute clock does not carry over (Kafka's
    /// replacement is not new), only the rebalance's deadline bounds its wait.
    @Test func aReplacedNewStaticMemberKeepsWaitingForItsRebalance() {
        var (group, a, b) = stableGroupOfTwo()
        var first = Self.request(instance: "pod-3")
        first.rebalanceTimeoutMs = 3_600_000
        _ = group.join(first, nowMs: 1_000)
        let old = group.staticMembers["pod-3"]!
        #expect(group.members[old]?.newJoinDeadlineMs == 301_000)
        _ = group.join(first, nowMs: 290_000)  // the pod restarted: same instance, no member id
        let replacement = group.staticMembers["pod-3"]!
        #expect(replacement != old && group.members[replacement]?.newJoinDeadlineMs == nil)
        _ = group.heartbeat(memberId: a, instance: "pod-1", generationId: 2, nowMs: 300_000)
        _ = group.heartbeat(memberId: b, instance: "pod-2", generationId: 2, nowMs: 300_000)
        #expect(group.tick(nowMs: 301_500).isEmpty && group.members[replacement] != nil)
    }

    /// One that does not come back by the pending-sync deadline is removed then, and the
    /// others rebalance without it.
    @Test func aStaticMemberThatDoesNotComeBackIsRemovedAtTheSyncDeadline() {
        var (group, a, b) = stableGroupOfTwo()
        _ = group.join(Self.request(a, instance: "pod-1", subscription: "t,u"), nowMs: 200)
        let done = joined(group.tick(nowMs: 5_300))
        #expect(Set(done.keys) == [a] && group.members[b] != nil)
        _ = group.sync(memberId: a, instance: "pod-1", generationId: 3, assignments: [a: [1], b: [2]], nowMs: 5_400)
        _ = group.heartbeat(memberId: a, instance: "pod-1", generationId: 3, nowMs: 9_000)
        _ = group.tick(nowMs: 10_400)
        #expect(group.members[b] == nil && group.staticMembers["pod-2"] == nil && group.state == .preparingRebalance)
    }

    /// A restart with a changed subscription (other metadata) rebalances.
    @Test func aRestartWithOtherMetadataRebalances() {
        var (group, a, b) = stableGroupOfTwo()
        _ = group.join(Self.request(b, instance: "pod-2"), nowMs: 50)  // b's metadata unchanged: answered at once
        let (response, _) = group.join(Self.request(instance: "pod-1", subscription: "t,u"), nowMs: 100)
        #expect(response == nil && group.state == .preparingRebalance)
        let newA = group.staticMembers["pod-1"]!
        #expect(newA != a)
        let done = joined(group.join(Self.request(b, instance: "pod-2"), nowMs: 110).1)
        #expect(Set(done.keys) == [newA, b] && done.values.allSatisfy { $0.generationId == 3 })
    }

    /// An old instance waiting in a rebalance is answered FENCED_INSTANCE_ID when its new
    /// instance takes its place.
    @Test func theOldInstanceWaitingInJoinIsFenced() {
        var (group, _, b) = stableGroupOfTwo()
        #expect(group.join(Self.request(b, instance: "pod-2", subscription: "t,v"), nowMs: 50).0 == nil)
        let (response, deliveries) = group.join(Self.request(instance: "pod-2"), nowMs: 60)
        #expect(response == nil && group.state == .preparingRebalance)
        #expect(joined(deliveries)[b]?.error == .fencedInstanceId)
    }

    /// LeaveGroup v3+ names a static member by its instance id (AdminClient
    /// removeMembersFromConsumerGroup sends no member id); an older member id is fenced.
    @Test func leavingByInstanceId() {
        var (group, a, _) = stableGroupOfTwo()
        let (response, _) = group.join(Self.request(instance: "pod-1"), nowMs: 100)
        let newA = response!.memberId
        let (results, _) = group.leave(members: [(a, "pod-1"), ("", "pod-9"), ("", "pod-1")], nowMs: 110)
        #expect(results == [.fencedInstanceId, .unknownMemberId, nil])
        #expect(group.members[newA] == nil && group.staticMembers["pod-1"] == nil && group.state == .preparingRebalance)
    }

    /// A static member whose session runs out is removed like any member, and its instance
    /// id is free again.
    @Test func anExpiredStaticMemberFreesItsInstanceId() {
        var (group, a, b) = stableGroupOfTwo()
        #expect(group.heartbeat(memberId: b, instance: "pod-2", generationId: 2, nowMs: 200_000) == nil)
        _ = group.tick(nowMs: 300_100)
        #expect(group.members[a] == nil && group.staticMembers["pod-1"] == nil && group.staticMembers["pod-2"] == b)
    }

    /// Waits (up to 30 s) for the join just started to have begun a rebalance of group g.
    static func untilRebalancing(_ groups: GroupCoordinator) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while groups.describeGroup("g").state != .preparingRebalance && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        try #require(groups.describeGroup("g").state == .preparingRebalance)
    }

    /// Through the coordinator: a static member restarting while the group rebalances waits
    /// under its new member id (its old member's place in the join order, not the last one),
    /// so each caller gets its own answer.
    @Test func aRestartDuringARebalanceIsAnsweredAsItself() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        let groups = broker.groups
        let a = await groups.join(Self.request(instance: "pod-1"))
        _ = await groups.sync(groupId: "g", memberId: a.memberId, groupInstanceId: "pod-1", generationId: a.generationId, assignments: [a.memberId: []])
        async let bJoin = groups.join(Self.request(instance: "pod-2"))
        // a rejoins for b's rebalance; then b and a hold generation 2.
        try await Self.untilRebalancing(groups)
        let aAgain = await groups.join(Self.request(a.memberId, instance: "pod-1"))
        let b = await bJoin
        #expect(aAgain.generationId == 2 && b.generationId == 2)
        _ = await groups.sync(groupId: "g", memberId: a.memberId, groupInstanceId: "pod-1", generationId: 2, assignments: [a.memberId: [1], b.memberId: [2]])
        // b changes its subscription (a rebalance: b waits), then pod-1 restarts.
        async let bWaits = groups.join(Self.request(b.memberId, instance: "pod-2", subscription: "t,u"))
        try await Self.untilRebalancing(groups)
        let restarted = await groups.join(Self.request(instance: "pod-1"))
        let bAnswer = await bWaits
        #expect(restarted.error == nil && restarted.memberId != a.memberId && restarted.memberId != b.memberId)
        #expect(bAnswer.error == nil && bAnswer.memberId == b.memberId)
        #expect(restarted.generationId == 3 && bAnswer.generationId == 3)
        try await broker.close()
    }

    /// A static member replaced in a Stable group is recorded in `__consumer_offsets` in the
    /// same generation, so tools reading it see the new member id.
    @Test func aReplacementInAStableGroupIsRecorded() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        let a = await broker.groups.join(Self.request(instance: "pod-1"))
        _ = await broker.groups.sync(groupId: "g", memberId: a.memberId, groupInstanceId: "pod-1", generationId: 1, assignments: [a.memberId: [1]])
        #expect(try await GroupMembershipRecordTests.waitForRecords(broker, count: 1).count == 1)
        let restarted = await broker.groups.join(Self.request(instance: "pod-1"))
        #expect(restarted.error == nil && restarted.generationId == 1)
        let records = try await GroupMembershipRecordTests.waitForRecords(broker, count: 2)
        #expect(records.count == 2 && records.last?.1?.generation == 1)
        #expect(records.last?.1?.members.map(\.memberId) == [restarted.memberId])
        #expect(records.last?.1?.members.first?.assignment == [1])
        try await broker.close()
    }
}

extension JoinGroupRequest {
    func with(instance: String) -> JoinGroupRequest {
        var request = self
        request.groupInstanceId = instance
        return request
    }
}

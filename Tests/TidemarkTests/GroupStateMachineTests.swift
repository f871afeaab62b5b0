import Testing
@testable import Tidemark

/// The coordinator's state machine on its own, driven by hand with a mock clock.
@Suite struct GroupStateMachineTests {
    static func request(_ member: String = "", protocols: [String] = ["range"], session: Int32 = 10_000, rebalance: Int32 = 5_000)
        -> JoinGroupRequest
    {
        JoinGroupRequest(
            groupId: "g", memberId: member, clientId: "c", sessionTimeoutMs: session, rebalanceTimeoutMs: rebalance,
            protocolType: "consumer", protocols: protocols.map { ($0, Array($0.utf8)) })
    }

    static func options() -> GroupOptions {
        var options = GroupOptions()
        options.minSessionTimeoutMs = 1000
        return options
    }

    func joinedIds(_ deliveries: [ClassicGroup.Delivery]) -> [String: JoinGroupResponse] {
        var result: [String: JoinGroupResponse] = [:]
        for case .join(let id, let response) in deliveries { result[id] = response }
        return result
    }

    @Test func firstMemberBecomesLeaderAndStable() {
        var group = ClassicGroup(groupId: "g", options: Self.options())
        #expect(group.state == .empty)
        let (response, deliveries) = group.join(Self.request(), nowMs: 0)
        #expect(response == nil)  // it waits for its generation, delivered at once here
        let joined = joinedIds(deliveries)
        #expect(joined.count == 1)
        let me = joined.values.first!
        #expect(me.generationId == 1 && me.leaderId == me.memberId && me.members.count == 1 && me.protocolName == "range")
        #expect(group.state == .completingRebalance)
        let (sync, _) = group.sync(memberId: me.memberId, generationId: 1, assignments: [me.memberId: [1, 2]], nowMs: 10)
        #expect(sync?.assignment == [1, 2])
        #expect(group.state == .stable)
        #expect(group.heartbeat(memberId: me.memberId, generationId: 1, nowMs: 20) == nil)
        #expect(group.heartbeat(memberId: me.memberId, generationId: 0, nowMs: 20) == .illegalGeneration)
        #expect(group.heartbeat(memberId: "nobody", generationId: 1, nowMs: 20) == .unknownMemberId)
    }

    /// A leader that heartbeats and never sends SyncGroup: at the rebalance timeout it is
    /// removed (as Kafka's pending-sync timeout does), and the follower waiting in SyncGroup is
    /// told to rejoin (it waited for ever, and the group never became stable).
    @Test func aLeaderThatNeverSyncsIsRemovedAtTheRebalanceTimeout() {
        var group = ClassicGroup(groupId: "g", options: Self.options())
        let a = joinedIds(group.join(Self.request(), nowMs: 0).1).keys.first!
        _ = group.sync(memberId: a, generationId: 1, assignments: [a: []], nowMs: 0)
        _ = group.join(Self.request(), nowMs: 100)
        let joined = joinedIds(group.join(Self.request(a), nowMs: 200).1)
        let b = joined.keys.first { $0 != a }!
        #expect(group.state == .completingRebalance)
        #expect(group.sync(memberId: b, generationId: 2, assignments: nil, nowMs: 210).0 == nil)
        // The leader only heartbeats; before the rebalance timeout (5 s) nothing changes.
        #expect(group.heartbeat(memberId: a, generationId: 2, nowMs: 3_000) == nil)
        #expect(group.tick(nowMs: 4_000).isEmpty && group.state == .completingRebalance)
        let deliveries = group.tick(nowMs: 5_300)
        guard case .sync(let who, let response)? = deliveries.first else {
            Issue.record("the waiting follower was not answered: \(deliveries)")
            return
        }
        #expect(who == b && response.error == .rebalanceInProgress)
        #expect(group.heartbeat(memberId: a, generationId: 2, nowMs: 5_400) == .unknownMemberId)
        // b rejoins alone and leads generation 3.
        let again = joinedIds(group.join(Self.request(b), nowMs: 5_500).1)
        #expect(again[b]?.leaderId == b && again[b]?.generationId == 3)
    }

    static func knownIdRequest(_ member: String = "", session: Int32 = 10_000, rebalance: Int32 = 5_000) -> JoinGroupRequest {
        var request = request(member, session: session, rebalance: rebalance)
        request.requireKnownMemberId = true
        return request
    }

    /// Workers started together: each first gets its id (MEMBER_ID_REQUIRED), and the first to
    /// come back waits for the others' ids to be used (Kafka's pending members), so that all
    /// join generation 1 (it completed with the first alone: one more generation per worker,
    /// each a revoke and reassign). An id never used holds the join until it expires.
    @Test func membersStartedTogetherJoinOneGeneration() {
        var group = ClassicGroup(groupId: "g", options: Self.options())
        let a = group.join(Self.knownIdRequest(), nowMs: 0).0!.memberId
        let b = group.join(Self.knownIdRequest(), nowMs: 1).0!.memberId
        let c = group.join(Self.knownIdRequest(), nowMs: 2).0!.memberId
        #expect(group.join(Self.knownIdRequest(a), nowMs: 10).1.isEmpty, "a waits for the ids handed out")
        #expect(group.state == .preparingRebalance)
        #expect(group.join(Self.knownIdRequest(b), nowMs: 11).1.isEmpty)
        // A LeaveGroup naming an id not used yet forgets it (answered NONE, as Kafka does).
        let (left, deliveries) = group.leave(memberIds: [c], nowMs: 12)
        #expect(left[c]! == nil)
        let joined = joinedIds(deliveries)
        #expect(Set(joined.keys) == [a, b] && joined.values.allSatisfy { $0.generationId == 1 })

        // An id that is never used holds the next join until its session timeout, not longer.
        var other = ClassicGroup(groupId: "g", options: Self.options())
        let x = other.join(Self.knownIdRequest(rebalance: 20_000), nowMs: 0).0!.memberId
        _ = other.join(Self.knownIdRequest(rebalance: 20_000), nowMs: 1)  // never comes back
        #expect(other.join(Self.knownIdRequest(x, rebalance: 20_000), nowMs: 10).1.isEmpty)
        #expect(other.nextDueMs == 10_001, "due when the id expires, not at every pass meanwhile")
        #expect(other.tick(nowMs: 9_000).isEmpty && other.state == .preparingRebalance)
        #expect(joinedIds(other.tick(nowMs: 10_001))[x]?.generationId == 1)
    }

    /// A follower waiting in SyncGroup for a slow leader is not expired by its session (it
    /// sends no heartbeat meanwhile: librdkafka, sarama, kafka-python); the rebalance timeout
    /// bounds the wait. It was removed, and the group rebalanced again once the leader synced.
    @Test func aMemberWaitingForItsAssignmentKeepsItsSession() {
        var group = ClassicGroup(groupId: "g", options: Self.options())
        let a = joinedIds(group.join(Self.request(session: 2_000, rebalance: 8_000), nowMs: 0).1).keys.first!
        _ = group.sync(memberId: a, generationId: 1, assignments: [a: []], nowMs: 0)
        _ = group.join(Self.request(session: 2_000, rebalance: 8_000), nowMs: 100)
        let joined = joinedIds(group.join(Self.request(a, session: 2_000, rebalance: 8_000), nowMs: 200).1)
        let b = joined.keys.first { $0 != a }!
        #expect(group.sync(memberId: b, generationId: 2, assignments: nil, nowMs: 300).0 == nil)
        #expect(group.heartbeat(memberId: a, generationId: 2, nowMs: 1_500) == nil)
        #expect(group.heartbeat(memberId: a, generationId: 2, nowMs: 3_000) == nil)
        #expect(group.tick(nowMs: 3_100).isEmpty, "b waits in SyncGroup past its session: not expired")
        let (response, deliveries) = group.sync(memberId: a, generationId: 2, assignments: [a: [1], b: [2]], nowMs: 4_000)
        #expect(response?.assignment == [1] && group.state == .stable)
        guard case .sync(let who, let answer)? = deliveries.first else {
            Issue.record("b was not answered: \(deliveries)")
            return
        }
        #expect(who == b && answer.error == nil && answer.assignment == [2])
        // Its session starts again as its wait ends: not expired at the next tick.
        #expect(group.tick(nowMs: 4_100).isEmpty && group.members[b] != nil && group.state == .stable)
        #expect(group.nextDueMs == 6_001)
    }

    /// In Stable, a member that heartbeats and never sends its SyncGroup (its partitions went
    /// unread while it lived) is removed at the rebalance timeout after the join, and the
    /// others rebalance (Kafka's pending sync, in Stable too).
    @Test func aMemberThatNeverSyncsIsRemovedInStableToo() {
        var group = ClassicGroup(groupId: "g", options: Self.options())
        let a = joinedIds(group.join(Self.request(), nowMs: 0).1).keys.first!
        _ = group.sync(memberId: a, generationId: 1, assignments: [a: []], nowMs: 0)
        _ = group.join(Self.request(), nowMs: 100)
        let b = joinedIds(group.join(Self.request(a), nowMs: 200).1).keys.first { $0 != a }!
        _ = group.sync(memberId: a, generationId: 2, assignments: [a: [1], b: [2]], nowMs: 300)
        #expect(group.state == .stable)
        #expect(group.nextDueMs == 5_200, "the coordinator's timer comes back at the sync deadline")
        #expect(group.heartbeat(memberId: b, generationId: 2, nowMs: 3_000) == nil)
        #expect(group.tick(nowMs: 5_100).isEmpty && group.state == .stable)
        _ = group.tick(nowMs: 5_300)
        #expect(group.members[b] == nil && group.state == .preparingRebalance)
        #expect(group.heartbeat(memberId: a, generationId: 2, nowMs: 5_400) == .rebalanceInProgress)
        // A member that synced in Stable is not removed.
        var other = ClassicGroup(groupId: "g", options: Self.options())
        let x = joinedIds(other.join(Self.request(), nowMs: 0).1).keys.first!
        _ = other.sync(memberId: x, generationId: 1, assignments: [x: []], nowMs: 0)
        _ = other.join(Self.request(), nowMs: 100)
        let y = joinedIds(other.join(Self.request(x), nowMs: 200).1).keys.first { $0 != x }!
        _ = other.sync(memberId: x, generationId: 2, assignments: [x: [1], y: [2]], nowMs: 300)
        #expect(other.sync(memberId: y, generationId: 2, assignments: nil, nowMs: 400).0?.assignment == [2])
        _ = other.heartbeat(memberId: x, generationId: 2, nowMs: 5_000)
        _ = other.heartbeat(memberId: y, generationId: 2, nowMs: 5_000)
        #expect(other.tick(nowMs: 5_300).isEmpty && other.members.count == 2 && other.state == .stable)
    }

    /// a (generation 1, alone) then b: Stable at generation 2, both synced (a holds [1], b [2]),
    /// 10 s sessions and the given rebalance timeout.
    func stableGroupOfTwo(rebalance: Int32) -> (ClassicGroup, a: String, b: String) {
        var group = ClassicGroup(groupId: "g", options: GroupOptions())
        let a = joinedIds(group.join(Self.request(session: 10_000, rebalance: rebalance), nowMs: 0).1).keys.first!
        _ = group.sync(memberId: a, generationId: 1, assignments: [a: []], nowMs: 0)
        _ = group.join(Self.request(session: 10_000, rebalance: rebalance), nowMs: 100)
        let b = joinedIds(group.join(Self.request(a, session: 10_000, rebalance: rebalance), nowMs: 200).1).keys.first { $0 != a }!
        _ = group.sync(memberId: b, generationId: 2, assignments: nil, nowMs: 300)
        _ = group.sync(memberId: a, generationId: 2, assignments: [a: [1], b: [2]], nowMs: 300)
        #expect(group.state == .stable && group.generationId == 2)
        return (group, a, b)
    }

    /// A worker whose jobs run for hours (max.poll.interval.ms of an hour) is waited for that
    /// long, as Kafka waits: a 30-minute cap evicted it mid-job and gave its job to another.
    @Test func aRebalanceWaitsAsLongAsItsMembersAsk() {
        let hour: Int32 = 3_600_000
        var (group, a, b) = stableGroupOfTwo(rebalance: hour)
        // b rejoins (a new subscription); a is busy with a long job and only heartbeats.
        _ = group.join(Self.request(b, protocols: ["range", "roundrobin"], session: 10_000, rebalance: hour), nowMs: 1_000)
        for t in stride(from: Int64(5_000), through: 3_600_000, by: 5_000) {
            #expect(group.heartbeat(memberId: a, generationId: 2, nowMs: t) == .rebalanceInProgress)
            #expect(group.tick(nowMs: t).isEmpty)
        }
        #expect(group.members[a] != nil && group.state == .preparingRebalance)
        let done = joinedIds(group.tick(nowMs: 3_601_100))
        #expect(Set(done.keys) == [b] && group.members[a] == nil, "a did not rejoin within its hour")
    }

    /// A new member's first JoinGroup waits at most 5 minutes in such a rebalance (Kafka's
    /// new-member join timeout): a client that gave up and came back as another member left
    /// a defunct one, given partitions once the join completed. It is answered UNKNOWN_MEMBER_ID.
    @Test func aNewMembersJoinIsGivenUpAfterFiveMinutes() {
        var group = ClassicGroup(groupId: "g", options: GroupOptions())
        let hour: Int32 = 3_600_000
        let a = joinedIds(group.join(Self.request(session: 10_000, rebalance: hour), nowMs: 0).1).keys.first!
        _ = group.sync(memberId: a, generationId: 1, assignments: [a: []], nowMs: 0)
        _ = group.join(Self.request(session: 10_000, rebalance: hour), nowMs: 100)
        let b = group.members.keys.first { $0 != a }!
        #expect(group.nextDueMs == 10_001)
        _ = group.heartbeat(memberId: a, generationId: 1, nowMs: 295_000)
        #expect(group.tick(nowMs: 295_000).isEmpty && group.nextDueMs == 300_101)
        let deliveries = group.tick(nowMs: 300_101)
        guard case .join(let who, let response)? = deliveries.first else {
            Issue.record("b's join was not answered: \(deliveries)")
            return
        }
        #expect(who == b && response.error == .unknownMemberId && group.members[b] == nil)
        #expect(group.state == .preparingRebalance && group.members[a] != nil)
        // A member that has been in a generation waits as long as its rebalance timeout.
        let done = joinedIds(group.join(Self.request(a, session: 10_000, rebalance: hour), nowMs: 300_200).1)
        #expect(done[a]?.generationId == 2 && group.members[a]?.newJoinDeadlineMs == nil)
    }

    /// A tick that comes after both the rebalance's deadline and a new member's (the
    /// maintenance pass runs once a second, later on a busy broker) completes the generation
    /// with the new member, as Kafka's timers, firing in order, would: it was given up first.
    @Test func aRebalanceDueFirstTakesTheNewMemberIn() {
        let minutes5: Int32 = 300_000
        var (group, a, b) = stableGroupOfTwo(rebalance: minutes5)
        _ = group.join(Self.request(b, protocols: ["range", "roundrobin"], session: 10_000, rebalance: minutes5), nowMs: 1_000)
        _ = group.join(Self.request(session: 10_000, rebalance: minutes5), nowMs: 1_400)
        let c = group.members.keys.first { $0 != a && $0 != b }!
        for t in stride(from: Int64(5_000), through: 300_000, by: 5_000) { _ = group.heartbeat(memberId: a, generationId: 2, nowMs: t) }
        let done = joinedIds(group.tick(nowMs: 301_600))
        #expect(Set(done.keys) == [b, c] && done.values.allSatisfy { $0.error == nil && $0.generationId == 3 })
    }

    /// "Never" for the new-member timeout (`.max`) does not wrap into the past.
    @Test func anEndlessNewMemberTimeoutIsNotAnOverflow() {
        var options = GroupOptions()
        options.newMemberJoinTimeoutMs = .max
        var group = ClassicGroup(groupId: "g", options: options)
        let hour: Int32 = 3_600_000
        let a = joinedIds(group.join(Self.request(session: 10_000, rebalance: hour), nowMs: 1_000).1).keys.first!
        _ = group.sync(memberId: a, generationId: 1, assignments: [a: []], nowMs: 1_000)
        _ = group.join(Self.request(session: 10_000, rebalance: hour), nowMs: 1_100)
        _ = group.heartbeat(memberId: a, generationId: 1, nowMs: 5_000)
        #expect(group.tick(nowMs: 5_000).isEmpty && group.members.count == 2 && group.nextDueMs > 5_000)
    }

    /// SyncGroup v5+ names the protocol type and name: others than the group's are refused
    /// INCONSISTENT_GROUP_PROTOCOL (Kafka's validateSyncGroup); a heartbeat naming an instance
    /// no static member holds is UNKNOWN_MEMBER_ID (Kafka's validateMember).
    @Test func aSyncMustNameTheGroupsProtocol() {
        var group = ClassicGroup(groupId: "g", options: Self.options())
        let a = joinedIds(group.join(Self.request(), nowMs: 0).1).keys.first!
        #expect(group.sync(memberId: a, generationId: 1, protocolType: "connect", assignments: [a: []], nowMs: 1).0?.error == .inconsistentGroupProtocol)
        #expect(group.sync(memberId: a, generationId: 1, protocolName: "roundrobin", assignments: [a: []], nowMs: 1).0?.error == .inconsistentGroupProtocol)
        #expect(group.sync(memberId: a, generationId: 1, protocolType: "consumer", protocolName: "range", assignments: [a: []], nowMs: 1).0?.error == nil)
        #expect(group.heartbeat(memberId: a, instance: "pod-9", generationId: 1, nowMs: 2) == .unknownMemberId)
        #expect(group.heartbeat(memberId: a, generationId: 1, nowMs: 2) == nil)
    }

    @Test func secondMemberTriggersARebalanceAndTheOldGenerationIsFenced() {
        var group = ClassicGroup(groupId: "g", options: Self.options())
        let a = joinedIds(group.join(Self.request(), nowMs: 0).1).keys.first!
        _ = group.sync(memberId: a, generationId: 1, assignments: [a: []], nowMs: 0)
        // b joins: a must rejoin; its heartbeat says so.
        let (bResponse, bDeliveries) = group.join(Self.request(), nowMs: 100)
        #expect(bResponse == nil && bDeliveries.isEmpty)
        #expect(group.state == .preparingRebalance)
        #expect(group.heartbeat(memberId: a, generationId: 1, nowMs: 150) == .rebalanceInProgress)
        // Commits from the current generation are still accepted while preparing.
        #expect(group.validateCommit(memberId: a, generationId: 1) == nil)
        let (aResponse, deliveries) = group.join(Self.request(a), nowMs: 200)
        #expect(aResponse == nil)
        let joined = joinedIds(deliveries)
        #expect(joined.count == 2 && joined.values.allSatisfy { $0.generationId == 2 })
        #expect(joined[a]!.members.count == 2)  // a stays leader
        let b = joined.keys.first { $0 != a }!
        #expect(joined[b]!.members.isEmpty && joined[b]!.leaderId == a)
        // The follower's sync waits for the leader's.
        #expect(group.sync(memberId: b, generationId: 2, assignments: nil, nowMs: 210).0 == nil)
        #expect(group.validateCommit(memberId: a, generationId: 2) == .rebalanceInProgress)
        // Who commits is checked before the state, as in Kafka: a member of the previous
        // generation, or one the group does not know, is told so while the group completes.
        #expect(group.validateCommit(memberId: a, generationId: 1) == .illegalGeneration)
        #expect(group.validateCommit(memberId: "ghost", generationId: 2) == .unknownMemberId)
        let (leaderSync, syncDeliveries) = group.sync(memberId: a, generationId: 2, assignments: [a: [0xA], b: [0xB]], nowMs: 220)
        #expect(leaderSync?.assignment == [0xA])
        guard case .sync(let who, let response)? = syncDeliveries.first else {
            Issue.record("no sync delivery")
            return
        }
        #expect(who == b && response.assignment == [0xB])
        // Stale generation: fenced everywhere.
        #expect(group.validateCommit(memberId: a, generationId: 1) == .illegalGeneration)
        #expect(group.sync(memberId: a, generationId: 1, assignments: nil, nowMs: 230).0?.error == .illegalGeneration)
        #expect(group.validateCommit(memberId: a, generationId: 2) == nil)
        #expect(group.validateCommit(memberId: "", generationId: -1) == .unknownMemberId)
    }

    @Test func sessionExpiryRemovesTheMemberAndRebalances() {
        var group = ClassicGroup(groupId: "g", options: Self.options())
        let a = joinedIds(group.join(Self.request(session: 2000), nowMs: 0).1).keys.first!
        _ = group.sync(memberId: a, generationId: 1, assignments: [:], nowMs: 0)
        _ = group.join(Self.request(session: 2000), nowMs: 10)
        let joined = joinedIds(group.join(Self.request(a, session: 2000), nowMs: 20).1)
        let b = joined.keys.first { $0 != a }!
        _ = group.sync(memberId: a, generationId: 2, assignments: [a: [], b: []], nowMs: 30)
        // a keeps heartbeating; b goes silent.
        for t in stride(from: Int64(500), through: 2500, by: 500) {
            #expect(group.heartbeat(memberId: a, generationId: 2, nowMs: t) == nil)
            _ = group.tick(nowMs: t)
        }
        #expect(group.members[b] == nil)
        #expect(group.state == .preparingRebalance)
        #expect(group.heartbeat(memberId: a, generationId: 2, nowMs: 2600) == .rebalanceInProgress)
        let after = joinedIds(group.join(Self.request(a, session: 2000), nowMs: 2700).1)
        #expect(after[a]?.generationId == 3 && after[a]?.members.count == 1)
    }

    @Test func aMemberThatDoesNotRejoinIsDroppedAtTheRebalanceTimeout() {
        var group = ClassicGroup(groupId: "g", options: Self.options())
        let a = joinedIds(group.join(Self.request(rebalance: 3000), nowMs: 0).1).keys.first!
        _ = group.sync(memberId: a, generationId: 1, assignments: [:], nowMs: 0)
        // b joins; a never rejoins (but keeps its session alive with heartbeats).
        #expect(group.join(Self.request(rebalance: 3000), nowMs: 100).0 == nil)
        #expect(joinedIds(group.tick(nowMs: 2000)).isEmpty)
        _ = group.heartbeat(memberId: a, generationId: 1, nowMs: 2000)
        let joined = joinedIds(group.tick(nowMs: 3200))
        #expect(joined.count == 1 && group.members[a] == nil)
        let b = joined.keys.first!
        #expect(joined[b]!.leaderId == b && joined[b]!.generationId == 2)
    }

    @Test func leaveRebalancesAndTheLastLeaveEmptiesTheGroup() {
        var group = ClassicGroup(groupId: "g", options: Self.options())
        let a = joinedIds(group.join(Self.request(), nowMs: 0).1).keys.first!
        _ = group.sync(memberId: a, generationId: 1, assignments: [:], nowMs: 0)
        _ = group.join(Self.request(), nowMs: 10)
        let joined = joinedIds(group.join(Self.request(a), nowMs: 20).1)
        let b = joined.keys.first { $0 != a }!
        _ = group.sync(memberId: a, generationId: 2, assignments: [:], nowMs: 30)
        let (results, deliveries) = group.leave(memberIds: [a], nowMs: 40)
        #expect(results[a]! == nil && deliveries.isEmpty)
        #expect(group.state == .preparingRebalance)
        let rejoined = joinedIds(group.join(Self.request(b), nowMs: 50).1)
        #expect(rejoined[b]?.leaderId == b && rejoined[b]?.generationId == 3)
        _ = group.sync(memberId: b, generationId: 3, assignments: [:], nowMs: 60)
        _ = group.leave(memberIds: [b], nowMs: 70)
        #expect(group.state == .empty && group.members.isEmpty)
        // As in Kafka, the empty group keeps its protocol type (listed and described as a
        // consumer group), not its protocol.
        #expect(group.protocolType == "consumer" && group.protocolName == nil && group.leaderId == nil)
        // Its next first member names it again, from its join (not once the join completes).
        var connect = Self.request()
        connect.protocolType = "connect"
        _ = group.join(connect, nowMs: 75)
        #expect(group.protocolType == "connect")
        _ = group.leave(memberIds: Array(group.members.keys), nowMs: 76)
        #expect(group.validateCommit(memberId: "", generationId: -1) == nil)  // standalone commits on an empty group
        #expect(group.leave(memberIds: ["ghost"], nowMs: 80).0["ghost"]! == .unknownMemberId)
    }

    @Test func protocolsMustAgreeAndMemberIdMayBeRequired() {
        var group = ClassicGroup(groupId: "g", options: Self.options())
        let a = joinedIds(group.join(Self.request(protocols: ["range", "roundrobin"]), nowMs: 0).1).keys.first!
        _ = group.sync(memberId: a, generationId: 1, assignments: [:], nowMs: 0)
        #expect(group.join(Self.request(protocols: ["sticky"]), nowMs: 10).0?.error == .inconsistentGroupProtocol)
        var other = Self.request(protocols: ["range"])
        other.protocolType = "connect"
        #expect(group.join(other, nowMs: 10).0?.error == .inconsistentGroupProtocol)
        #expect(group.join(Self.request(session: 10), nowMs: 10).0?.error == .invalidSessionTimeout)
        var v4 = Self.request(protocols: ["roundrobin"])
        v4.requireKnownMemberId = true
        let first = group.join(v4, nowMs: 20).0!
        #expect(first.error == .memberIdRequired && !first.memberId.isEmpty)
        v4.memberId = first.memberId
        #expect(group.join(v4, nowMs: 30).0 == nil)
        let joined = joinedIds(group.join(Self.request(a, protocols: ["range", "roundrobin"]), nowMs: 40).1)
        #expect(joined.count == 2 && joined[a]!.protocolName == "roundrobin")  // the only one both support
        #expect(group.join(Self.request("made-up", protocols: ["roundrobin"]), nowMs: 50).0?.error == .unknownMemberId)
    }

    @Test func assignorsGiveEveryPartitionExactlyOneOwner() {
        for assignor in PartitionAssignor.allCases {
            for memberCount in 1...7 {
                let members = (0..<memberCount).map { "m\($0)" }
                let subscriptions = Dictionary(uniqueKeysWithValues: members.map { ($0, ["a", "b"]) })
                let result = assignor.assign(subscriptions: subscriptions, partitionCounts: ["a": 6, "b": 3])
                let all = result.values.flatMap { $0 }
                #expect(all.count == 9 && Set(all).count == 9, "\(assignor) \(memberCount)")
                let sizes = result.values.map(\.count)
                if assignor == .roundRobin { #expect(sizes.max()! - sizes.min()! <= 1) }
            }
        }
        #expect(PartitionAssignor.range.assign(subscriptions: ["x": ["t"], "y": ["t"]], partitionCounts: ["t": 5])
            == ["x": [TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("t", 2)], "y": [TopicPartition("t", 3), TopicPartition("t", 4)]])
    }

    @Test func consumerProtocolRoundTrips() {
        let subscription = ConsumerProtocol.encodeSubscription(topics: ["a", "jobs"])
        #expect(subscription == [0, 0, 0, 0, 0, 2, 0, 1, 0x61, 0, 4, 0x6A, 0x6F, 0x62, 0x73, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(ConsumerProtocol.decodeSubscriptionTopics(subscription) == ["a", "jobs"])
        let assignment = [TopicPartition("jobs", 2), TopicPartition("a", 0), TopicPartition("jobs", 0)]
        let decoded = ConsumerProtocol.decodeAssignment(ConsumerProtocol.encodeAssignment(assignment))!
        #expect(Set(decoded) == Set(assignment))
        #expect(ConsumerProtocol.decodeAssignment([0, 0, 0x7F, 0xFF, 0xFF, 0xFF]) == nil)
        #expect(ConsumerProtocol.decodeSubscriptionTopics([0, 1]) == nil)
    }
}

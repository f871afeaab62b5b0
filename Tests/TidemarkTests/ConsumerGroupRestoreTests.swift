import Foundation
import TestSupport
import Testing
import Synchronization
import TidemarkStorage

@testable import Tidemark

/// Consumer-protocol groups (KIP-848) written to `__consumer_offsets` in Kafka's record layouts
/// (`ConsumerGroupSnapshot`) and brought back when the broker restarts
/// (`ConsumerGroup.init(restoring:)`): members go on at their epochs with their partitions.
@Suite struct ConsumerGroupRestoreTests {
    static func heartbeat(
        _ broker: Broker, _ member: String = "", epoch: Int32 = 0, instance: String? = nil, topics: [String]? = ["t"],
        owned: [TopicPartition]? = nil, host: String = "/10.0.0.1"
    ) -> ConsumerHeartbeatResult {
        broker.consumerGroupHeartbeat(
            ConsumerHeartbeat(
                groupId: "orders", memberId: member, memberEpoch: epoch, instanceId: instance, rebalanceTimeoutMs: 5_000,
                subscribedTopicNames: topics, ownedPartitions: owned, clientId: "worker", clientHost: host))
    }

    /// Heartbeats each member (reporting what it was given) until the group is Stable; returns
    /// each member's epoch and partitions.
    static func settle(
        _ broker: Broker, _ members: [String: (epoch: Int32, owned: [TopicPartition])], instances: [String: String] = [:],
        hosts: [String: String] = [:]
    ) -> [String: (epoch: Int32, owned: [TopicPartition])] {
        var members = members
        for _ in 0..<10 {
            for (id, held) in members {
                let answer = heartbeat(
                    broker, id, epoch: held.epoch, instance: instances[id], topics: nil, owned: held.owned, host: hosts[id] ?? "/10.0.0.1")
                #expect(answer.error == nil, "\(answer.errorMessage ?? "")")
                members[id] = (answer.memberEpoch, answer.assignment ?? held.owned)
            }
            if broker.groups.describeConsumerGroup("orders")?.state == .stable { break }
        }
        #expect(broker.groups.describeConsumerGroup("orders")?.state == .stable)
        return members
    }

    /// Waits for the writer to have written the group's records with these member ids.
    static func waitForSnapshot(_ broker: Broker, members: Set<String>) async throws -> ConsumerGroupSnapshot {
        // Long: a loaded machine (the whole suite, in parallel, on two busy cores) left the
        // write waiting for a cooperative thread past 10 s. Returns as soon as it is there.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let records = broker.groups.store.memberships.withLock { $0["orders"]?.records }
            if let snapshot = records.flatMap({ ConsumerGroupSnapshot(group: "orders", records: $0) }),
                Set(snapshot.members.map(\.memberId)) == members
            {
                return snapshot
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TidemarkError(.timedOut, "no records of \(members)")
    }

    /// The records' bytes are Kafka's: keys with the record type as version and i16 strings,
    /// values flexible version 0 (compact strings and arrays, empty tagged fields), and they
    /// read back as the snapshot they came from.
    @Test func layoutIsKafkasConsumerGroupRecords() throws {
        let topic = UUID(uuid: (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16))
        let snapshot = ConsumerGroupSnapshot(
            epoch: 7, assignmentEpoch: 7,
            members: [
                .init(
                    memberId: "m", instanceId: nil, rackId: "r", clientId: "c", clientHost: "/h", subscribedTopicNames: ["t"],
                    subscribedTopicRegex: nil, rebalanceTimeoutMs: 300, serverAssignor: "uniform", memberEpoch: 7, previousMemberEpoch: 6,
                    state: 0, assigned: [.init(topicId: topic, partitions: [0, 2])], pendingRevocation: [],
                    target: [.init(topicId: topic, partitions: [0, 2])])
            ])
        let records = snapshot.records(group: "g")
        #expect(records.map(\.key) == [
            [0, 3, 0, 1, 0x67],
            [0, 6, 0, 1, 0x67],
            [0, 5, 0, 1, 0x67, 0, 1, 0x6D],
            [0, 7, 0, 1, 0x67, 0, 1, 0x6D],
            [0, 8, 0, 1, 0x67, 0, 1, 0x6D],
        ])
        let uuid = Array(1...16).map(UInt8.init)
        #expect(records[0].value == [0, 0, 0, 0, 0, 7, 0])
        #expect(records[1].value == [0, 0, 0, 0, 0, 7, 0])
        // instance null, rack "r", client "c", host "/h", names ["t"], regex null, timeout 300,
        // assignor "uniform", no tagged fields.
        #expect(records[2].value == [0, 0, 0, 2, 0x72, 2, 0x63, 3, 0x2F, 0x68, 2, 2, 0x74, 0, 0, 0, 1, 0x2C, 8] + Array("uniform".utf8) + [0])
        #expect(records[3].value == [0, 0, 2] + uuid + [3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0])
        #expect(records[4].value == [0, 0, 0, 0, 0, 7, 0, 0, 0, 6, 0, 2] + uuid + [3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0])
        let read = ConsumerGroupSnapshot(group: "g", records: Dictionary(uniqueKeysWithValues: records.map { ($0.key, $0.value) }))
        #expect(read == snapshot)
        // A member without all three of its records is not a whole snapshot; tagged fields a
        // later Kafka adds are skipped.
        #expect(ConsumerGroupSnapshot(group: "g", records: Dictionary(uniqueKeysWithValues: records.dropLast().map { ($0.key, $0.value) })) == nil)
        var tagged = Dictionary(uniqueKeysWithValues: records.map { ($0.key, $0.value) })
        tagged[records[0].key] = [0, 0, 0, 0, 0, 7, 1, 5, 2, 0xAA, 0xBB]
        #expect(ConsumerGroupSnapshot(group: "g", records: tagged) == snapshot)
    }

    /// After a restart (a clean one here; a kill -9 in Tests/interop/test_consumer_protocol.py)
    /// the group is Stable at its epoch: heartbeats and commits with the members' ids and epochs
    /// succeed and change nothing (they got UNKNOWN_MEMBER_ID, and every consumer rejoined from
    /// nothing), and a member that never comes back expires with its session.
    @Test func membersGoOnAcrossARestart() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        var opts = options(clock: clock, maintenanceMs: 3_600_000)
        opts.groups.consumerSessionTimeoutMs = 10_000
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 4)
        let a = Self.heartbeat(broker)
        let b = Self.heartbeat(broker)
        let held = Self.settle(broker, [a.memberId: (a.memberEpoch, []), b.memberId: (b.memberEpoch, [])])
        let before = try #require(broker.groups.describeConsumerGroup("orders"))
        let snapshot = try await Self.waitForSnapshot(broker, members: [a.memberId, b.memberId])
        #expect(snapshot.epoch == before.groupEpoch && snapshot.assignmentEpoch == before.assignmentEpoch)
        try await broker.close()

        clock.advance(5_000)
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        var after = try #require(broker.groups.describeConsumerGroup("orders"))
        // (Members come back in member id order: Kafka's records keep no join order.)
        let joinOrder = before.members.map(\.memberId)
        after.members.sort { x, y in joinOrder.firstIndex(of: x.memberId)! < joinOrder.firstIndex(of: y.memberId)! }
        #expect(after == before)
        for (id, (epoch, owned)) in held {
            let answer = Self.heartbeat(broker, id, epoch: epoch, topics: nil, owned: owned)
            #expect(answer.error == nil && answer.memberEpoch == epoch)
            #expect(answer.assignment == nil, "nothing new to tell")
            #expect(try await broker.groups.commitOffsets(
                groupId: "orders", memberId: id, generationId: epoch, offsets: [owned[0]: CommittedOffset(offset: 3)]) == nil)
        }
        // Only `a` goes on; `b` never comes back and expires, and `a` is given its partitions.
        clock.advance(6_000)
        #expect(Self.heartbeat(broker, a.memberId, epoch: held[a.memberId]!.epoch, topics: nil, owned: held[a.memberId]!.owned).error == nil)
        clock.advance(6_000)
        await broker.groups.tick()
        #expect(broker.groups.describeConsumerGroup("orders")?.members.map(\.memberId) == [a.memberId])
        let alone = Self.settle(broker, [a.memberId: held[a.memberId]!])
        #expect(alone[a.memberId]?.owned.count == 4)
        try await broker.close()
    }

    /// Epochs and partitions moving are written once the group settles (a join, a leave or a
    /// new subscription at once): a member that moved on to a newer epoch since is fenced and
    /// rejoins, as Kafka fences a stale epoch; a group whose last member left is not brought
    /// back; members that were in this process (no client host: the embedded API) are left
    /// out; a group over `group.consumer.max.size` starts empty.
    @Test func whatIsNotAStableGroupIsNotBroughtBack() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        var opts = options(clock: clock, maintenanceMs: 3_600_000)
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 2)
        let a = Self.heartbeat(broker)
        var held = Self.settle(broker, [a.memberId: (a.memberEpoch, [])])
        _ = try await Self.waitForSnapshot(broker, members: [a.memberId])
        // A second member joins (written at once, Reconciling); then `a` gives up a partition
        // and moves to the new epoch: not written, the group has not settled.
        let b = Self.heartbeat(broker)
        #expect(b.error == nil && broker.groups.describeConsumerGroup("orders")?.state != .stable)
        _ = try await Self.waitForSnapshot(broker, members: [a.memberId, b.memberId])
        let revoking = Self.heartbeat(broker, a.memberId, epoch: held[a.memberId]!.epoch, topics: nil, owned: held[a.memberId]!.owned)
        let released = Self.heartbeat(broker, a.memberId, epoch: revoking.memberEpoch, topics: nil, owned: revoking.assignment)
        #expect(released.error == nil && released.memberEpoch > held[a.memberId]!.epoch)
        #expect(broker.groups.describeConsumerGroup("orders")?.state != .stable)
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(Set(broker.groups.describeConsumerGroup("orders")?.members.map(\.memberId) ?? []) == [a.memberId, b.memberId])
        #expect(Self.heartbeat(broker, a.memberId, epoch: released.memberEpoch, topics: nil, owned: revoking.assignment).error == .fencedMemberEpoch)
        #expect(Self.heartbeat(broker, b.memberId, epoch: b.memberEpoch, topics: nil, owned: []).error == nil)
        #expect(Self.heartbeat(broker, b.memberId, epoch: -1, topics: nil).error == nil)
        // `a` rejoins as librdkafka does after a fence (epoch 0, its subscription again).
        let rejoined = Self.heartbeat(broker, a.memberId)
        #expect(rejoined.error == nil)
        held = Self.settle(broker, [a.memberId: (rejoined.memberEpoch, rejoined.assignment ?? [])])
        // The last member leaves: the Empty group's records say so, and it stays empty, listed
        // with its offsets as the consumer group it was (it was listed as classic).
        #expect(try await broker.groups.commitOffsets(
            groupId: "orders", memberId: a.memberId, generationId: held[a.memberId]!.epoch,
            offsets: [TopicPartition("t", 0): CommittedOffset(offset: 1)]) == nil)
        #expect(Self.heartbeat(broker, a.memberId, epoch: -1, topics: nil).error == nil)
        let deadline = ContinuousClock.now + .seconds(10)
        while broker.groups.store.memberships.withLock({ $0["orders"]?.hasMembers(group: "orders") ?? true }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        try await broker.close()
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        // Described Empty at its epoch from its records, as Kafka does (it was not found).
        let empty = try #require(broker.groups.describeConsumerGroup("orders"))
        #expect(empty.state == .empty && empty.members.isEmpty && empty.groupEpoch > 0)
        #expect(broker.groups.listGroups().filter { $0.groupId == "orders" }.map(\.type) == [.consumer])

        // Embedded members are left out; a group with only them starts empty.
        let embedded = Self.heartbeat(broker, host: "")
        let remote = Self.heartbeat(broker)
        _ = Self.settle(
            broker, [embedded.memberId: (embedded.memberEpoch, []), remote.memberId: (remote.memberEpoch, [])], hosts: [embedded.memberId: ""])
        _ = try await Self.waitForSnapshot(broker, members: [embedded.memberId, remote.memberId])
        try await broker.close()
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(broker.groups.describeConsumerGroup("orders")?.members.map(\.memberId) == [remote.memberId])
        try await broker.close()

        opts.groups.consumerGroupMaxSize = 0
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(broker.groups.describeConsumerGroup("orders") == nil)
        try await broker.close()
    }

    /// A static member's new instance takes its place at the same group epoch: that is written
    /// too (the member ids changed), so after a restart the new instance goes on; the old one's
    /// id would have been brought back, and the new instance refused for good
    /// (UNRELEASED_INSTANCE_ID, fatal in librdkafka).
    @Test func aStaticMembersNewInstanceIsWritten() async throws {
        let dir = TemporaryDirectory()
        let opts = options(maintenanceMs: 3_600_000)
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 2)
        let first = Self.heartbeat(broker, "old-instance", instance: "pod-1")
        let held = Self.settle(broker, [first.memberId: (first.memberEpoch, [])], instances: [first.memberId: "pod-1"])
        let epoch = try #require(broker.groups.describeConsumerGroup("orders")?.groupEpoch)
        _ = try await Self.waitForSnapshot(broker, members: ["old-instance"])
        #expect(Self.heartbeat(broker, "old-instance", epoch: ConsumerGroup.leftForNowEpoch, instance: "pod-1", topics: nil).error == nil)
        let second = Self.heartbeat(broker, "new-instance", instance: "pod-1")
        #expect(second.error == nil)
        let now = Self.settle(broker, ["new-instance": (second.memberEpoch, [])], instances: ["new-instance": "pod-1"])
        #expect(broker.groups.describeConsumerGroup("orders")?.groupEpoch == epoch)
        #expect(now["new-instance"]?.owned.count == held[first.memberId]?.owned.count)
        _ = try await Self.waitForSnapshot(broker, members: ["new-instance"])
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        let answer = Self.heartbeat(broker, "new-instance", epoch: now["new-instance"]!.epoch, instance: "pod-1", topics: nil, owned: now["new-instance"]!.owned)
        #expect(answer.error == nil)
        try await broker.close()
    }

    /// A static member that left for now (epoch -2, a restarting instance) is written so: after
    /// a broker restart its next instance takes its place with its partitions. (Written only once
    /// Stable, the old member came back at its epoch and the new instance was refused
    /// UNRELEASED_INSTANCE_ID, fatal in librdkafka, until the old one's session ran out.)
    @Test func aStaticMemberThatLeftForNowIsWritten() async throws {
        let dir = TemporaryDirectory()
        let opts = options(maintenanceMs: 3_600_000)
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 2)
        let first = Self.heartbeat(broker, "old-instance", instance: "pod-1")
        let held = Self.settle(broker, [first.memberId: (first.memberEpoch, [])], instances: [first.memberId: "pod-1"])
        #expect(Self.heartbeat(broker, "old-instance", epoch: ConsumerGroup.leftForNowEpoch, instance: "pod-1", topics: nil).error == nil)
        let deadline = ContinuousClock.now + .seconds(10)
        func leftWritten() -> Bool {
            broker.groups.store.memberships.withLock { $0["orders"] }.flatMap { ConsumerGroupSnapshot(group: "orders", records: $0.records) }?
                .members.first?.memberEpoch == ConsumerGroup.leftForNowEpoch
        }
        while !leftWritten() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(leftWritten())
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        let next = Self.heartbeat(broker, "new-instance", instance: "pod-1")
        #expect(next.error == nil)
        let now = Self.settle(broker, ["new-instance": (next.memberEpoch, [])], instances: ["new-instance": "pod-1"])
        #expect(now["new-instance"]?.owned.sorted(by: ServerAssignor.partitionOrder) == held[first.memberId]?.owned.sorted(by: ServerAssignor.partitionOrder))
        try await broker.close()
    }

    /// Who is in the group and what they subscribe to is written at once, settled or not (only
    /// epochs and partitions moving wait for the group to settle): a static member leaving for
    /// now, or a new subscription, in the middle of a reconciliation survives a restart. (Lost,
    /// the next instance was refused UNRELEASED_INSTANCE_ID, fatal in librdkafka, and a member
    /// whose client never sends its subscription again read its old topics for good.)
    @Test func membershipChangesInTheMiddleOfAReconciliationAreWritten() async throws {
        let dir = TemporaryDirectory()
        let opts = options(maintenanceMs: 3_600_000)
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 2)
        try await broker.createTopic("u", partitions: 2)
        let s = Self.heartbeat(broker, "static", instance: "pod-1")
        let d = Self.heartbeat(broker, "dynamic")
        let held = Self.settle(broker, ["static": (s.memberEpoch, []), "dynamic": (d.memberEpoch, [])], instances: ["static": "pod-1"])
        _ = try await Self.waitForSnapshot(broker, members: ["static", "dynamic"])
        // "dynamic" moves to u: it must first give up its t partition (Reconciling), and
        // "static" leaves for now meanwhile; neither settles before the stop.
        let moved = Self.heartbeat(broker, "dynamic", epoch: held["dynamic"]!.epoch, topics: ["u"], owned: held["dynamic"]!.owned)
        #expect(moved.error == nil)
        #expect(Self.heartbeat(broker, "static", epoch: ConsumerGroup.leftForNowEpoch, instance: "pod-1", topics: nil).error == nil)
        #expect(broker.groups.describeConsumerGroup("orders")?.state != .stable)
        let deadline = ContinuousClock.now + .seconds(10)
        func written() -> ConsumerGroupSnapshot? {
            broker.groups.store.memberships.withLock { $0["orders"] }.flatMap { ConsumerGroupSnapshot(group: "orders", records: $0.records) }
        }
        while written()?.members.first(where: { $0.memberId == "static" })?.memberEpoch != ConsumerGroup.leftForNowEpoch
            && ContinuousClock.now < deadline
        {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(written()?.members.first { $0.memberId == "dynamic" }?.subscribedTopicNames == ["u"])
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(broker.groups.describeConsumerGroup("orders")?.members.first { $0.memberId == "dynamic" }?.subscribedTopicNames == ["u"])
        let next = Self.heartbeat(broker, "static-2", instance: "pod-1")
        #expect(next.error == nil, "\(next.errorMessage ?? "")")
        let settled = Self.settle(
            broker, ["static-2": (next.memberEpoch, []), "dynamic": (moved.memberEpoch, moved.assignment ?? held["dynamic"]!.owned)],
            instances: ["static-2": "pod-1"])
        #expect(settled["dynamic"]?.owned.allSatisfy { $0.topic == "u" } == true)
        #expect(settled["static-2"]?.owned.allSatisfy { $0.topic == "t" } == true)
        try await broker.close()
    }

    /// A member restored in the middle of its reconciliation (the records were written at a
    /// join, before it gave a partition up) is asked what it owns: a heartbeat that does not
    /// say is fenced and rejoins; one that says goes on. (It was told to give up again what it
    /// had given up; librdkafka, holding what it was told, said nothing more, and the partition
    /// stayed unowned until the member's rebalance timeout, 5 minutes by default.)
    @Test func membersRestoredInTheMiddleOfARebalanceSayWhatTheyOwn() async throws {
        let dir = TemporaryDirectory()
        let opts = options(maintenanceMs: 3_600_000)
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 6)
        let a = Self.heartbeat(broker, "a")
        let b = Self.heartbeat(broker, "b")
        let held = Self.settle(broker, ["a": (a.memberEpoch, []), "b": (b.memberEpoch, [])])
        let c = Self.heartbeat(broker, "c")
        _ = try await Self.waitForSnapshot(broker, members: ["a", "b", "c"])
        // a and b are told to give one partition up each; they do, but the broker stops first.
        let toldA = Self.heartbeat(broker, "a", epoch: held["a"]!.epoch, topics: nil, owned: held["a"]!.owned)
        let toldB = Self.heartbeat(broker, "b", epoch: held["b"]!.epoch, topics: nil, owned: held["b"]!.owned)
        #expect(toldA.assignment?.count == 2 && toldB.assignment?.count == 2)
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        // a says nothing about what it owns: fenced, it rejoins and gets its share again.
        #expect(Self.heartbeat(broker, "a", epoch: toldA.memberEpoch, topics: nil).error == .fencedMemberEpoch)
        let rejoined = Self.heartbeat(broker, "a")
        #expect(rejoined.error == nil)
        // b says what it owns: it goes on (once; it was in flight only until then).
        #expect(Self.heartbeat(broker, "b", epoch: toldB.memberEpoch, topics: nil, owned: toldB.assignment).error == nil)
        let settled = Self.settle(
            broker, ["a": (rejoined.memberEpoch, rejoined.assignment ?? []), "b": (toldB.memberEpoch, toldB.assignment ?? []),
                     "c": (c.memberEpoch, [])])
        #expect(settled.values.map(\.owned.count) == [2, 2, 2])
        try await broker.close()
    }

    /// A group whose records would pass 1 MiB is not written; its earlier records are deleted,
    /// so a restart starts it empty (it brought back the older group: members since then fenced,
    /// members gone since held as owners until their sessions ran out).
    @Test func aGroupTooLargeToWriteStartsEmpty() async throws {
        let dir = TemporaryDirectory()
        let opts = options(maintenanceMs: 3_600_000)
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 2)
        let a = Self.heartbeat(broker)
        _ = Self.settle(broker, [a.memberId: (a.memberEpoch, [])])
        _ = try await Self.waitForSnapshot(broker, members: [a.memberId])
        // A second member subscribing to 9,000 names of 200 bytes: about 1.8 MB of records.
        let names = (0..<9_000).map { "missing-\(String(repeating: "x", count: 180))-\($0)" } + ["t"]
        let b = Self.heartbeat(broker, topics: names)
        #expect(b.error == nil)
        _ = Self.settle(broker, [a.memberId: (a.memberEpoch, [TopicPartition("t", 0), TopicPartition("t", 1)]), b.memberId: (b.memberEpoch, [])])
        let deadline = ContinuousClock.now + .seconds(10)
        while broker.groups.store.memberships.withLock({ $0["orders"] != nil }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(broker.groups.store.memberships.withLock { $0["orders"] } == nil)
        try await broker.close()
        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(broker.groups.describeConsumerGroup("orders") == nil)

        // Far past it (members keeping over 8 MiB: four of 10,000 names of 240 bytes each), the
        // records are not even encoded; the earlier ones are deleted the same way.
        let c = Self.heartbeat(broker)
        var big = Self.settle(broker, [c.memberId: (c.memberEpoch, [])])
        _ = try await Self.waitForSnapshot(broker, members: [c.memberId])
        for m in 0..<4 {
            let long = (0..<9_999).map { "m\(m)-\(String(repeating: "y", count: 230))-\($0)" } + ["t"]
            let joined = Self.heartbeat(broker, topics: long)
            #expect(joined.error == nil)
            big[joined.memberId] = (joined.memberEpoch, [])
        }
        _ = Self.settle(broker, big)
        let gone = ContinuousClock.now + .seconds(10)
        while broker.groups.store.memberships.withLock({ $0["orders"] != nil }) && ContinuousClock.now < gone {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(broker.groups.store.memberships.withLock { $0["orders"] } == nil)
        try await broker.close()
    }

    /// The target is checked against the topics at the restart: partitions added after the
    /// last written state (here, by a change the group never reached Stable after) move the
    /// group epoch on, and the members are given them at their next heartbeats. A topic deleted
    /// meanwhile takes its partitions out (they are named by topic id).
    @Test func topicsChangedSinceTheRecordsMoveTheEpochOn() async throws {
        let dir = TemporaryDirectory()
        let opts = options(maintenanceMs: 3_600_000)
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 2)
        try await broker.createTopic("u", partitions: 1)
        let a = Self.heartbeat(broker, topics: ["t", "u"])
        let held = Self.settle(broker, [a.memberId: (a.memberEpoch, [])])
        let epoch = try #require(broker.groups.describeConsumerGroup("orders")?.groupEpoch)
        _ = try await Self.waitForSnapshot(broker, members: [a.memberId])
        try await broker.createPartitions(topic: "t", count: 3)
        try await broker.deleteTopic("u")
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        let restored = try #require(broker.groups.describeConsumerGroup("orders"))
        #expect(restored.groupEpoch == epoch + 1)
        #expect(restored.members.first?.assignment == [TopicPartition("t", 0), TopicPartition("t", 1)])
        let answer = Self.heartbeat(broker, a.memberId, epoch: held[a.memberId]!.epoch, topics: nil, owned: [TopicPartition("t", 0), TopicPartition("t", 1)])
        #expect(answer.error == nil && answer.memberEpoch == epoch + 1)
        #expect(answer.assignment == [TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("t", 2)])
        try await broker.close()
    }

    /// A member whose session runs out in a group that keeps other members is written out at
    /// once (it waited for a heartbeat of the others that changed something: a crash before
    /// that brought it back after the restart, holding its partitions for another session).
    @Test func aMemberWhoseSessionRanOutIsWrittenOutAtOnce() async throws {
        let dir = TemporaryDirectory()
        let clock = TestClock()
        var opts = options(clock: clock, maintenanceMs: 3_600_000)
        opts.groups.consumerSessionTimeoutMs = 10_000
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 4)
        let a = Self.heartbeat(broker)
        let b = Self.heartbeat(broker)
        let held = Self.settle(broker, [a.memberId: (a.memberEpoch, []), b.memberId: (b.memberEpoch, [])])
        _ = try await Self.waitForSnapshot(broker, members: [a.memberId, b.memberId])
        // b goes quiet; a heartbeats (nothing changes for it), then b's session runs out.
        clock.advance(6_000)
        let steady = Self.heartbeat(broker, a.memberId, epoch: held[a.memberId]!.epoch, topics: nil, owned: held[a.memberId]!.owned)
        #expect(steady.error == nil && steady.assignment == nil)
        clock.advance(5_000)
        await broker.groups.tick(topicId: broker.groupCatalog.topicId)
        #expect(broker.groups.describeConsumerGroup("orders")?.members.map(\.memberId) == [a.memberId])
        let snapshot = try await Self.waitForSnapshot(broker, members: [a.memberId])
        #expect(snapshot.members.count == 1)
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        #expect(broker.groups.describeConsumerGroup("orders")?.members.map(\.memberId) == [a.memberId])
        try await broker.close()
    }

    /// A burst of changes over more groups than the writer's line held (10,000, the oldest
    /// dropped): every group's last record is written. 12,000 one-member groups, then every
    /// member leaves at once: after a restart none comes back with its member (those whose
    /// Empty record was dropped came back as they were, their members ghosts for a session).
    @Test func aBurstOverManyGroupsLosesNoGroupsLastRecord() async throws {
        let dir = TemporaryDirectory()
        let opts = options(maintenanceMs: 3_600_000)
        var broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("t", partitions: 1)
        let groups = 12_000
        // The writer is held to a record a second through the bursts, so that it is far behind
        // them.
        let offsetsLog = dir.path + "/__consumer_offsets"
        StorageFaults.slow(.write, by: 1_000_000_000, pathContains: offsetsLog)
        var members: [String] = []
        for g in 0..<groups {
            let joined = broker.consumerGroupHeartbeat(
                ConsumerHeartbeat(
                    groupId: "burst-\(g)", memberId: "m-\(g)", memberEpoch: 0, rebalanceTimeoutMs: 5_000, subscribedTopicNames: ["t"],
                    ownedPartitions: []))
            #expect(joined.error == nil)
            members.append(joined.memberId)
        }
        for g in 0..<groups {
            let left = broker.consumerGroupHeartbeat(ConsumerHeartbeat(groupId: "burst-\(g)", memberId: members[g], memberEpoch: -1))
            #expect(left.error == nil)
        }
        #expect(broker.groups.membershipRecordsDropped.load(ordering: .relaxed) == 0)
        #expect(broker.groups.membershipRecords.count > 10_000, "the writer is behind")
        StorageFaults.clear(pathContains: offsetsLog)
        try await broker.close()

        broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        let back = (0..<groups).filter { broker.groups.hasMembers("burst-\($0)") }
        #expect(back.isEmpty, "\(back.count) groups came back with their member")
        try await broker.close()
    }
}

/// The membership writer's line (`MembershipQueue`): one record per group, its newest, in
/// the order groups first waited; waiters of a replaced record told with its replacement;
/// bounds drop the oldest; what waits at `finish` is still read.
@Suite struct MembershipQueueTests {
    static func record(_ group: String, generation: Int32, _ whenWritten: (@Sendable (Bool) -> Void)? = nil) -> PendingMembership {
        PendingMembership(
            group: group,
            record: .classic(GroupMembershipRecord(protocolType: "consumer", generation: generation, protocolName: nil, leader: nil, members: [])),
            life: 1, whenWritten: whenWritten)
    }

    static func generation(_ pending: PendingMembership?) -> Int32? {
        guard case .classic(let record)? = pending?.record else { return nil }
        return record.generation
    }

    @Test func eachGroupWaitsOnceWithItsNewestRecord() async {
        let queue = MembershipQueue()
        let told = Mutex<[String]>([])
        #expect(queue.send(Self.record("a", generation: 1) { written in told.withLock { $0.append("a1:\(written)") } }).replaced == nil)
        #expect(queue.send(Self.record("b", generation: 1)).taken)
        let sent = queue.send(Self.record("a", generation: 2) { written in told.withLock { $0.append("a2:\(written)") } })
        #expect(Self.generation(sent.replaced) == 1 && sent.dropped.isEmpty)
        #expect(queue.count == 2)
        let first = await queue.next()
        #expect(first?.group == "a" && Self.generation(first) == 2)  // in a's place in the line
        first?.whenWritten?(true)
        #expect(told.withLock { $0 } == ["a1:true", "a2:true"])
        #expect(await queue.next()?.group == "b")
        // A reader waiting gets the next record handed over.
        async let waited = queue.next()
        while !queue.readerWaits { try? await Task.sleep(for: .milliseconds(1)) }
        #expect(queue.send(Self.record("c", generation: 1)).taken)
        #expect(queue.count == 0)
        #expect(await waited?.group == "c")
        queue.finish()
        #expect(await queue.next() == nil)
        #expect(!queue.send(Self.record("d", generation: 1)).taken)
    }

    /// `afterPending`: waits on the group's record waiting, or on the one being written (told
    /// at `done`); a skipped one's waiters go to the group's later record.
    @Test func answersWaitForTheGroupsRecordsOnTheirWay() async {
        let queue = MembershipQueue()
        let told = Mutex<[String]>([])
        #expect(!queue.afterPending("a") { _ in told.withLock { $0.append("none") } })
        _ = queue.send(Self.record("a", generation: 1))
        #expect(queue.afterPending("a") { written in told.withLock { $0.append("waiting:\(written)") } })
        let taken = await queue.next()
        #expect(taken?.group == "a")
        #expect(queue.afterPending("a") { written in told.withLock { $0.append("in flight:\(written)") } })
        taken?.whenWritten?(true)
        #expect(told.withLock { $0 } == ["waiting:true"])
        queue.done(true)
        #expect(told.withLock { $0 } == ["waiting:true", "in flight:true"])
        // Skipped for a later record of the group: its waiters wait for that one.
        _ = queue.send(Self.record("b", generation: 1))
        _ = await queue.next()
        #expect(queue.afterPending("b") { written in told.withLock { $0.append("b1:\(written)") } })
        _ = queue.send(Self.record("b", generation: 2))
        queue.done(false, skipped: true)
        #expect(told.withLock { $0.count } == 2)
        let later = await queue.next()
        later?.whenWritten?(true)
        queue.done(true)
        #expect(told.withLock { $0.last } == "b1:true")
    }

    @Test func boundsDropTheOldestAndFinishLeavesTheRestToRead() async {
        let queue = MembershipQueue(maxGroups: 3, maxBytes: 1 << 20)
        for g in 0..<3 { #expect(queue.send(Self.record("g\(g)", generation: 1)).dropped.isEmpty) }
        let sent = queue.send(Self.record("g3", generation: 1))
        #expect(sent.dropped.map(\.group) == ["g0"])
        let bytes = Self.record("g0", generation: 1).bytes
        let small = MembershipQueue(maxGroups: 100, maxBytes: bytes * 2)
        for g in 0..<3 { _ = small.send(Self.record("g\(g)", generation: 1)) }
        #expect(small.count == 2)
        queue.finish()
        var read: [String] = []
        while let next = await queue.next() { read.append(next.group) }
        #expect(read == ["g1", "g2", "g3"])
    }
}

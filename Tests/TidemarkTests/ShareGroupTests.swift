import Foundation
import TestSupport
import Synchronization
import Testing
import TidemarkStorage
@testable import Tidemark

/// Share groups (KIP-932): the share-partition state machine with a hand-driven clock, its
/// durable snapshot layout, and the coordinator over a real broker (restart included).
@Suite struct SharePartitionTests {
    static func settings(limit: Int16 = 5, lockMs: Int64 = 30_000, maxInFlight: Int = 2_000) -> ShareSettings {
        var settings = ShareSettings()
        settings.deliveryCountLimit = limit
        settings.lockDurationMs = lockMs
        settings.maxInFlight = maxInFlight
        return settings
    }

    /// Acquires what `candidates` offers, as a fetch does.
    static func take(_ p: inout SharePartition, _ member: String, max: Int = 500, logEnd: Int64, now: Int64 = 0,
                     settings: ShareSettings = settings()) -> [AcquiredRange] {
        let offsets = p.candidates(max: max, logEnd: logEnd, settings: settings, nowMs: now)
        return p.acquire(offsets, member: member, nowMs: now, settings: settings)
    }

    @Test func acceptedRecordsMoveTheStartAndAreNeverDeliveredAgain() {
        var p = SharePartition(startOffset: 0)
        #expect(Self.take(&p, "a", max: 5, logEnd: 10) == [AcquiredRange(first: 0, last: 4, deliveryCount: 1)])
        #expect(Self.take(&p, "b", max: 10, logEnd: 10) == [AcquiredRange(first: 5, last: 9, deliveryCount: 1)])
        #expect(p.acknowledge([ShareAcknowledgement(first: 0, last: 4, types: [.accept])], member: "a", nowMs: 1, settings: Self.settings(), allowRenew: false) == nil)
        #expect(p.startOffset == 5 && p.endOffset == 10)
        #expect(Self.take(&p, "a", logEnd: 10).isEmpty)  // b holds the rest
        #expect(p.acknowledge([ShareAcknowledgement(first: 5, last: 9, types: [.accept])], member: "b", nowMs: 1, settings: Self.settings(), allowRenew: false) == nil)
        #expect(p.startOffset == 10 && p.entries.isEmpty)
    }

    /// A delivery limit lowered while records wait for a retry: those whose deliveries reach
    /// the new limit are archived (and dead-lettered) when next offered, not handed out again
    /// up to the old limit (an outside hunt: 10 jobs released 3 times under 5, the limit then
    /// set to 2, went out a 4th and a 5th time).
    @Test func aLoweredDeliveryLimitArchivesWhatReachedIt() {
        var p = SharePartition(startOffset: 0)
        var five = Self.settings(limit: 5)
        five.deadLetters = true
        for round in 1...3 {
            let now = Int64(round) * 10
            let ranges = Self.take(&p, "a", max: 2, logEnd: 3, now: now, settings: five)
            #expect(ranges == [AcquiredRange(first: 0, last: 1, deliveryCount: Int16(round))])
            let release = p.acknowledge(
                [ShareAcknowledgement(first: 0, last: 1, types: [.release])], member: "a", nowMs: now + 1, settings: five, allowRenew: false)
            #expect(release == nil)
        }
        var two = five
        two.deliveryCountLimit = 2
        // Offsets 0 and 1 (3 deliveries) are archived; 2, never delivered, goes out.
        #expect(Self.take(&p, "b", logEnd: 3, now: 100, settings: two) == [AcquiredRange(first: 2, last: 2, deliveryCount: 1)])
        #expect(p.startOffset == 2)
        #expect(p.deadLetters.map(\.offset) == [0, 1] && p.deadLetters.allSatisfy { $0.deliveryCount == 3 })
    }

    /// Holders are numbered, not stored per record: a member that holds nothing any more gives
    /// its number to the next one, so a long stream of short-lived workers (each restart is a
    /// new member id) keeps the table small, and a reused number never makes one member's
    /// records another's.
    @Test func holderNumbersAreReusedAndNeverConfuseMembers() {
        var p = SharePartition(startOffset: 0)
        _ = Self.take(&p, "keeper", max: 1, logEnd: 1_000)  // holds offset 0 throughout
        for i in 0..<200 {
            let ranges = Self.take(&p, "worker-\(i)", max: 1, logEnd: 1_000)
            #expect(ranges.count == 1 && p.held(by: "worker-\(i)") == 1)
            #expect(p.acknowledge([ShareAcknowledgement(ranges[0].first, .accept)], member: "worker-\(i)", nowMs: 1,
                                  settings: Self.settings(), allowRenew: false) == nil)
            #expect(p.held(by: "worker-\(i)") == 0)
        }
        #expect(p.owners.count <= 9)
        #expect(p.held(by: "keeper") == 1 && p.holders().keys.sorted() == ["keeper"])
        // Members whose numbers were reused hold nothing and cannot acknowledge the keeper's record.
        #expect(p.acknowledge([ShareAcknowledgement(0, .accept)], member: "worker-0", nowMs: 1, settings: Self.settings(), allowRenew: false) == .invalidRecordState)
        #expect(p.acknowledge([ShareAcknowledgement(0, .accept)], member: "keeper", nowMs: 1, settings: Self.settings(), allowRenew: false) == nil)
        #expect(p.startOffset == 201 && p.entries.isEmpty)
    }

    /// A partition's acknowledgement batches must ascend without overlapping, as Kafka requires:
    /// otherwise the request is refused whole and nothing changes (ACCEPT then RELEASE of one
    /// record would have finished it and handed it out again).
    @Test func overlappingOrUnorderedAcknowledgementsAreRefusedWhole() {
        var p = SharePartition(startOffset: 0)
        _ = Self.take(&p, "a", max: 5, logEnd: 5)
        let before = p
        for acks in [
            [ShareAcknowledgement(2, .accept), ShareAcknowledgement(2, .release)],
            [ShareAcknowledgement(first: 0, last: 3, types: [.accept]), ShareAcknowledgement(first: 3, last: 4, types: [.accept])],
            [ShareAcknowledgement(3, .accept), ShareAcknowledgement(1, .accept)],
            Array(repeating: ShareAcknowledgement(first: 0, last: 4, types: [.accept]), count: 1_000),
        ] {
            #expect(p.acknowledge(acks, member: "a", nowMs: 1, settings: Self.settings(), allowRenew: false) == .invalidRequest)
            #expect(p == before)
        }
        let ordered = [ShareAcknowledgement(first: 0, last: 1, types: [.accept]), ShareAcknowledgement(2, .release),
                       ShareAcknowledgement(first: 3, last: 4, types: [.accept, .reject])]
        #expect(p.acknowledge(ordered, member: "a", nowMs: 1, settings: Self.settings(), allowRenew: false) == nil)
        #expect(p.startOffset == 2 && Self.take(&p, "b", logEnd: 5, now: 1) == [AcquiredRange(first: 2, last: 2, deliveryCount: 2)])
    }

    /// What the embedded consumer sends: its acknowledgements in offset order, the last type
    /// given to a record winning (a RENEW never replaces a final word), runs of one type in one batch.
    @Test func acknowledgementsAreSentInOffsetOrderWithTheLastTypeOfEachRecord() {
        let given = [ShareAcknowledgement(5, .accept), ShareAcknowledgement(3, .release), ShareAcknowledgement(4, .renew),
                     ShareAcknowledgement(5, .reject), ShareAcknowledgement(3, .renew), ShareAcknowledgement(6, .reject),
                     ShareAcknowledgement(4, .release), ShareAcknowledgement(7, .renew),
                     ShareAcknowledgement(first: 8, last: 9, types: [.accept, .gap]), ShareAcknowledgement(first: 11, last: 12, types: [.accept])]
        #expect(ShareAcknowledgement.ordered(given) == [
            ShareAcknowledgement(first: 3, last: 4, types: [.release]), ShareAcknowledgement(first: 5, last: 6, types: [.reject]),
            ShareAcknowledgement(7, .renew), ShareAcknowledgement(8, .accept), ShareAcknowledgement(9, .gap),
            ShareAcknowledgement(first: 11, last: 12, types: [.accept]),
        ])
    }

    /// Locks are expired without walking the window until the earliest deadline comes; a
    /// renewal under a lock duration shortened since the acquisition brings that deadline
    /// forward, and the lock still runs out on time.
    @Test func aRenewalUnderAShorterLockDurationStillExpiresOnTime() {
        var p = SharePartition(startOffset: 0)
        _ = Self.take(&p, "a", max: 1, logEnd: 1, now: 0, settings: Self.settings(lockMs: 3_600_000))
        #expect(p.expireLocks(nowMs: 5, settings: Self.settings(lockMs: 3_600_000)) == 0)
        #expect(p.acknowledge([ShareAcknowledgement(0, .renew)], member: "a", nowMs: 10, settings: Self.settings(lockMs: 1_000), allowRenew: true) == nil)
        #expect(p.expireLocks(nowMs: 1_009, settings: Self.settings(lockMs: 1_000)) == 0)
        #expect(p.expireLocks(nowMs: 1_010, settings: Self.settings(lockMs: 1_000)) == 1)
    }

    @Test func releaseRedeliversUntilTheLimitThenArchives() {
        var p = SharePartition(startOffset: 0)
        let settings = Self.settings(limit: 3)
        for delivery in 1...3 {
            let ranges = Self.take(&p, "a", logEnd: 2, settings: settings)
            #expect(ranges == [AcquiredRange(first: 0, last: 1, deliveryCount: Int16(delivery))])
            #expect(p.acknowledge([ShareAcknowledgement(first: 0, last: 1, types: [.release])], member: "a", nowMs: 0, settings: settings, allowRenew: false) == nil)
        }
        // The third release reached the limit: archived, and the start moved over them.
        #expect(p.startOffset == 2 && Self.take(&p, "a", logEnd: 2, settings: settings).isEmpty)
    }

    @Test func expiredLocksComeBackAndLateAcknowledgementsAreRefused() {
        var p = SharePartition(startOffset: 0)
        _ = Self.take(&p, "slow", logEnd: 3, now: 0)
        #expect(p.expireLocks(nowMs: 29_999, settings: Self.settings()) == 0)
        #expect(p.expireLocks(nowMs: 30_000, settings: Self.settings()) == 3)
        #expect(p.acknowledge([ShareAcknowledgement(0, .accept)], member: "slow", nowMs: 30_001, settings: Self.settings(), allowRenew: false) == .invalidRecordState)
        #expect(Self.take(&p, "fast", logEnd: 3, now: 30_001) == [AcquiredRange(first: 0, last: 2, deliveryCount: 2)])
        // An acknowledgement of records someone else holds is refused, and changes nothing.
        let before = p
        #expect(p.acknowledge([ShareAcknowledgement(first: 0, last: 2, types: [.accept])], member: "slow", nowMs: 30_002, settings: Self.settings(), allowRenew: false) == .invalidRecordState)
        #expect(p == before)
    }

    @Test func renewExtendsTheLockOnlyWhenAllowed() {
        var p = SharePartition(startOffset: 0)
        _ = Self.take(&p, "a", logEnd: 1, now: 0)
        #expect(p.acknowledge([ShareAcknowledgement(0, .renew)], member: "a", nowMs: 20_000, settings: Self.settings(), allowRenew: false) == .invalidRequest)
        #expect(p.acknowledge([ShareAcknowledgement(0, .renew)], member: "a", nowMs: 20_000, settings: Self.settings(), allowRenew: true) == nil)
        #expect(p.expireLocks(nowMs: 45_000, settings: Self.settings()) == 0)
        #expect(p.expireLocks(nowMs: 50_000, settings: Self.settings()) == 1)
        // A renewal after the lock ran out is refused (the record may be someone else's now).
        _ = Self.take(&p, "a", logEnd: 1, now: 60_000)
        #expect(p.acknowledge([ShareAcknowledgement(0, .renew)], member: "a", nowMs: 90_001, settings: Self.settings(), allowRenew: true) == .invalidRecordState)
    }

    @Test func rejectAndGapArchivePerOffsetTypes() {
        var p = SharePartition(startOffset: 0)
        _ = Self.take(&p, "a", logEnd: 4)
        let ack = ShareAcknowledgement(first: 0, last: 3, types: [.accept, .reject, .gap, .release])
        #expect(p.acknowledge([ack], member: "a", nowMs: 0, settings: Self.settings(), allowRenew: false) == nil)
        #expect(p.startOffset == 3)  // 0-2 finished; 3 released
        #expect(Self.take(&p, "b", logEnd: 4) == [AcquiredRange(first: 3, last: 3, deliveryCount: 2)])
        // A per-offset list of the wrong length is a bad request.
        #expect(p.acknowledge([ShareAcknowledgement(first: 3, last: 3, types: [.accept, .accept])], member: "b", nowMs: 0, settings: Self.settings(), allowRenew: false) == .invalidRequest)
    }

    /// Retry backoff: a released record waits min(max, initial * 2^(n-1)) x [0.5, 1.0]; the
    /// records after it are not held back; a close gives back without a wait.
    @Test func releasedRecordsWaitOutTheirBackoffWithoutBlockingOthers() {
        var settings = Self.settings(limit: 10)
        settings.redeliveryBackoffMs = 1_000
        settings.redeliveryBackoffMaxMs = 3_000
        var p = SharePartition(startOffset: 0)
        _ = Self.take(&p, "a", max: 1, logEnd: 3, now: 0, settings: settings)
        #expect(p.acknowledge([ShareAcknowledgement(0, .release)], member: "a", nowMs: 100, settings: settings, allowRenew: false) == nil)
        let wait1 = try! #require(p.entry(at: 0)).availableAtMs - 100
        #expect(wait1 >= 500 && wait1 <= 1_000)
        // Offset 0 waits; 1 and 2 are delivered meanwhile.
        #expect(Self.take(&p, "b", logEnd: 3, now: 200, settings: settings) == [AcquiredRange(first: 1, last: 2, deliveryCount: 1)])
        #expect(p.acknowledge([ShareAcknowledgement(first: 1, last: 2, types: [.accept])], member: "b", nowMs: 300, settings: settings, allowRenew: false) == nil)
        #expect(Self.take(&p, "b", logEnd: 3, now: 100 + wait1, settings: settings) == [AcquiredRange(first: 0, last: 0, deliveryCount: 2)])
        // The second release waits longer (1 s x 2 x [0.5, 1]); the cap holds later on.
        let t = 100 + wait1
        #expect(p.acknowledge([ShareAcknowledgement(0, .release)], member: "b", nowMs: t, settings: settings, allowRenew: false) == nil)
        let wait2 = try! #require(p.entry(at: 0)).availableAtMs - t
        #expect(wait2 >= 1_000 && wait2 <= 2_000)
        #expect(settings.backoff(deliveries: 9, offset: 0) <= 3_000 && settings.backoff(deliveries: 9, offset: 0) >= 1_500)
        // An expired lock waits too; a close does not.
        _ = Self.take(&p, "c", logEnd: 3, now: t + wait2, settings: settings)
        #expect(p.expireLocks(nowMs: t + wait2 + 30_000, settings: settings) == 1)
        #expect(try! #require(p.entry(at: 0)).availableAtMs > t + wait2 + 30_000)
        _ = Self.take(&p, "c", logEnd: 3, now: t + wait2 + 40_000, settings: settings)
        #expect(p.releaseAll(held: "c", settings: settings) == 1)
        #expect(try! #require(p.entry(at: 0)).availableAtMs == 0)
    }

    @Test func theInFlightWindowIsCapped() {
        var p = SharePartition(startOffset: 0)
        let settings = Self.settings(maxInFlight: 100)
        #expect(Self.take(&p, "a", max: 500, logEnd: 1_000, settings: settings).first?.last == 99)
        #expect(Self.take(&p, "b", max: 500, logEnd: 1_000, settings: settings).isEmpty)
        #expect(p.acknowledge([ShareAcknowledgement(first: 0, last: 9, types: [.accept])], member: "a", nowMs: 0, settings: settings, allowRenew: false) == nil)
        #expect(Self.take(&p, "b", max: 500, logEnd: 1_000, settings: settings) == [AcquiredRange(first: 100, last: 109, deliveryCount: 1)])
    }

    @Test func aLeavingMemberReleasesWhatItHolds() {
        var p = SharePartition(startOffset: 0)
        _ = Self.take(&p, "a", max: 2, logEnd: 4)
        _ = Self.take(&p, "b", max: 2, logEnd: 4)
        #expect(p.releaseAll(held: "a", settings: Self.settings()) == 2)
        #expect(Self.take(&p, "c", logEnd: 4) == [AcquiredRange(first: 0, last: 1, deliveryCount: 2)])
        #expect(p.holders()["b"]?.count == 2)
    }

    /// Limit 2, two records held by "a": offset 0 on its last attempt (released once), offset 1
    /// on its first.
    static func heldOnLastAttempt() -> (SharePartition, ShareSettings) {
        var p = SharePartition(startOffset: 0)
        let settings = Self.settings(limit: 2)
        _ = Self.take(&p, "a", max: 1, logEnd: 2, settings: settings)
        #expect(p.acknowledge([ShareAcknowledgement(0, .release)], member: "a", nowMs: 0, settings: settings, allowRenew: false) == nil)
        #expect(Self.take(&p, "a", logEnd: 2, now: 60_000, settings: settings)
            == [AcquiredRange(first: 0, last: 0, deliveryCount: 2), AcquiredRange(first: 1, last: 1, deliveryCount: 1)])
        return (p, settings)
    }

    /// A stopping broker gives a member's records back with the cut delivery not counted and
    /// archives none: on its last attempt (limit 2), a record counted would be archived.
    @Test func aStoppingBrokerGivesRecordsBackUncounted() {
        let (held, settings) = Self.heldOnLastAttempt()
        var p = held
        #expect(p.releaseAll(held: "a", settings: settings, uncounted: true) == 2)
        #expect(p.entry(at: 0)?.state == .available && p.entry(at: 0)?.deliveryCount == 1)
        #expect(p.entry(at: 1)?.state == .available && p.entry(at: 1)?.deliveryCount == 0)
        #expect(p.holders()["a"] == nil)
        #expect(Self.take(&p, "b", logEnd: 2, now: 60_000, settings: settings)
            == [AcquiredRange(first: 0, last: 0, deliveryCount: 2), AcquiredRange(first: 1, last: 1, deliveryCount: 1)])
        // Counted (a worker's own close), the record on its last attempt is archived.
        #expect(p.releaseAll(held: "b", settings: settings) == 2)
        #expect(p.entry(at: 0) == nil && p.startOffset == 1)  // archived, and behind the window's start
        #expect(p.entry(at: 1)?.state == .available && p.entry(at: 1)?.deliveryCount == 1)
    }

    /// A state persisted while records were held (the maintenance pass writes acquisitions)
    /// and restored after the broker died: the held records come back available with the
    /// count they had before the delivery the broker's end cut, as after a clean stop. (The
    /// job on its last attempt came back with its count past the limit: delivered a third
    /// time with a limit of 2, and dead-lettered with that count.)
    @Test func aRestoredHeldRecordComesBackUncounted() throws {
        let (p, settings) = Self.heldOnLastAttempt()
        // As the share-state log holds it (a snapshot, and a delta), and as a window restored in memory.
        let snapshot = try #require(ShareStateStore.decode(ShareStateStore.encodeValue(p), onto: nil))
        let delta = try #require(ShareStateStore.decode(ShareStateStore.encodeDelta(p), onto: snapshot))
        for read in [snapshot, delta] {
            #expect(read.entry(at: 0)?.state == .available && read.entry(at: 0)?.deliveryCount == 1)
            #expect(read.entry(at: 1)?.state == .available && read.entry(at: 1)?.deliveryCount == 0)
        }
        var restored = SharePartition(startOffset: p.startOffset, window: p.entries)
        #expect(restored.entry(at: 0)?.state == .available && restored.entry(at: 0)?.deliveryCount == 1)
        #expect(restored.entry(at: 1)?.state == .available && restored.entry(at: 1)?.deliveryCount == 0)
        #expect(Self.take(&restored, "b", logEnd: 2, now: 60_000, settings: settings)
            == [AcquiredRange(first: 0, last: 0, deliveryCount: 2), AcquiredRange(first: 1, last: 1, deliveryCount: 1)])
    }

    @Test func undeliveredAcquisitionsAreUndone() {
        var p = SharePartition(startOffset: 0)
        _ = Self.take(&p, "a", logEnd: 10)
        p.unacquire([5, 6, 7, 8, 9], member: "a")
        #expect(p.endOffset == 5)
        #expect(Self.take(&p, "b", logEnd: 10) == [AcquiredRange(first: 5, last: 9, deliveryCount: 1)])
    }

    /// A fetch whose read was slow gives back what it did not deliver, after its session
    /// closed (the records went back) and the same member id acquired them again: only records
    /// still at the delivery count it handed out go back. (The new acquisition went back, and
    /// the job was handed to another worker while this one ran it.)
    @Test func aLateGiveBackLeavesANewerAcquisitionAlone() {
        var p = SharePartition(startOffset: 0)
        let first = Self.take(&p, "a", logEnd: 5)
        #expect(first == [AcquiredRange(first: 0, last: 4, deliveryCount: 1)])
        #expect(p.releaseAll(held: "a", settings: Self.settings()) == 5)
        #expect(Self.take(&p, "a", logEnd: 5) == [AcquiredRange(first: 0, last: 4, deliveryCount: 2)])
        p.unacquire([2, 3, 4], member: "a", acquired: first)
        #expect(p.holders()["a"]?.count == 5)
        #expect(Self.take(&p, "b", logEnd: 5).isEmpty)
        // The acquisition it handed out is given back as before.
        var q = SharePartition(startOffset: 0)
        let taken = Self.take(&q, "a", logEnd: 5)
        q.unacquire([3, 4], member: "a", acquired: taken)
        #expect(q.holders()["a"]?.count == 3)
    }

    @Test func recordsBelowTheLogStartLeaveTheWindow() {
        var p = SharePartition(startOffset: 0)
        _ = Self.take(&p, "a", logEnd: 10)
        p.follow(logStart: 6, logEnd: 10)
        #expect(p.startOffset == 6 && p.endOffset == 10)
    }

    /// A log cut back below the window (recovery after a power loss kept fewer records than
    /// the share state saw): the offsets past the new end are new jobs when appended again.
    @Test func recordsPastACutLogEndLeaveTheWindow() {
        var p = SharePartition(startOffset: 0)
        let taken = Self.take(&p, "a", logEnd: 10)
        _ = p.acknowledge([ShareAcknowledgement(first: 0, last: 9, types: [.accept])], member: "a", nowMs: 0, settings: Self.settings(), allowRenew: false)
        #expect(taken.count == 1 && p.startOffset == 10)
        let cut = p.follow(logStart: 0, logEnd: 7)
        #expect(cut && p.startOffset == 7 && p.endOffset == 7)
        #expect(Self.take(&p, "a", logEnd: 9) == [AcquiredRange(first: 7, last: 8, deliveryCount: 1)])
        // Cut inside the window: the entries before the end stay as they were.
        let cutInside = p.follow(logStart: 0, logEnd: 8)
        #expect(cutInside && p.startOffset == 7 && p.endOffset == 8 && p.counts().acquired == 1)
        let again = p.follow(logStart: 0, logEnd: 8)
        #expect(!again)
    }

    /// A rejected record's dead letter waits for the writer; if the record was lost with the
    /// log's tail, the dead letter goes too (a copy would take the new record at that offset).
    @Test func deadLettersOfRecordsPastACutLogEndAreDropped() {
        var settings = Self.settings()
        settings.deadLetters = true
        var p = SharePartition(startOffset: 0)
        _ = Self.take(&p, "a", logEnd: 10, settings: settings)
        let types: [ShareAcknowledgeType] = [.reject, .accept, .accept, .accept, .reject]
        _ = p.acknowledge([ShareAcknowledgement(first: 4, last: 8, types: types)], member: "a", nowMs: 0, settings: settings, allowRenew: false)
        #expect(p.deadLetters.map(\.offset) == [4, 8])
        p.follow(logStart: 0, logEnd: 6)
        #expect(p.deadLetters.map(\.offset) == [4] && p.endOffset == 6)
    }

    /// The durable layout: runs of (state, delivery count); a lock does not survive.
    @Test func snapshotsRoundTripWithoutLocks() throws {
        var p = SharePartition(startOffset: 100)
        _ = Self.take(&p, "a", max: 6, logEnd: 200)
        #expect(p.acknowledge([ShareAcknowledgement(first: 101, last: 102, types: [.accept, .reject])], member: "a", nowMs: 0, settings: Self.settings(), allowRenew: false) == nil)
        let bytes = ShareStateStore.encodeValue(p)
        // version 1, start 100, 4 runs: 100 (held: available x0, its delivery uncounted),
        // 101 (ack x1), 102 (archived x1), 103-105 (held: available x0); then no dead letters:
        // producer -1, next sequence 0, 0 written, 0 pending.
        #expect(Array(bytes[0..<2]) == [0, 1])
        #expect(Array(bytes[2..<10]) == [0, 0, 0, 0, 0, 0, 0, 100])
        #expect(Array(bytes[10..<14]) == [0, 0, 0, 4])
        #expect(bytes.count == 14 + 4 * 19 + 24)
        #expect(Array(bytes[90..<98]) == [UInt8](repeating: 0xFF, count: 8))
        let restored = try #require(ShareStateStore.decodeValue(bytes))
        #expect(restored.startOffset == 100 && restored.endOffset == 106)
        #expect(restored.entry(at: 100) == SharePartition.Entry(state: .available, deliveryCount: 0))
        #expect(restored.entry(at: 101)?.state == .acknowledged && restored.entry(at: 102)?.state == .archived)
        // Version 0 (no dead-letter part) is still read.
        var v0 = Array(bytes[0..<90])
        v0[1] = 0
        #expect(ShareStateStore.decodeValue(v0)?.endOffset == 106)
        // Truncated or lying snapshots are refused, not trusted.
        #expect(ShareStateStore.decodeValue(Array(bytes.dropLast(3))) == nil)
        var lying = bytes
        lying[13] = 200
        #expect(ShareStateStore.decodeValue(lying) == nil)
        let key = ShareStateStore.Key(group: "jobs", topicId: UUID(), partition: 3)
        #expect(ShareStateStore.decodeKey(ShareStateStore.encodeKey(key)) == key)
    }
}

/// The coordinator over a real broker: sessions, acknowledgements made durable, restarts.
@Suite struct ShareCoordinatorTests {
    static func produce(_ broker: Broker, _ topic: String, count: Int) async throws {
        for i in 0..<count {
            var builder = RecordBatchBuilder()
            builder.append(timestamp: 0, key: nil, value: Array("job-\(i)".utf8))
            _ = try await broker.append(topic: topic, partition: 0, batches: try builder.build())
        }
    }

    static func join(_ broker: Broker, _ member: String) -> ConsumerHeartbeatResult {
        broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: member, memberEpoch: 0, subscribedTopicNames: ["jobs"]))
    }

    /// Opens `member`'s share session (epoch 0) in "workers" on `tp`.
    @discardableResult
    static func openSession(_ broker: Broker, _ member: String, _ tp: TopicPartition, connection: UInt64? = nil) -> ShareSessionUpdate {
        broker.shares.updateSession(
            group: "workers", member: member, epoch: 0, add: [tp], forget: [], acknowledgements: [:], allowRenew: false,
            view: broker.shareLogView, connection: connection)
    }

    static func durable(_ broker: Broker, _ offset: Int64?) async throws {
        guard let offset else { return }
        let error: TidemarkError? = await withCheckedContinuation { c in broker.shares.whenDurable(offset) { c.resume(returning: $0) } }
        if let error { throw error }
    }

    @Test func acknowledgedJobsSurviveARestartAndHeldOnesComeBack() async throws {
        let dir = TemporaryDirectory()
        let tp = TopicPartition("jobs", 0)
        do {
            let broker = try await Broker.open(dataDirectory: dir.path)
            try await broker.createTopic("jobs", partitions: 1, config: TopicConfig(flushPolicy: .everyAppend))
            try await Self.produce(broker, "jobs", count: 10)
            let joined = Self.join(broker, "w1")
            #expect(joined.error == nil && joined.assignment == [tp])
            let view = broker.shareLogView
            let opened = broker.shares.updateSession(
                group: "workers", member: "w1", epoch: 0, add: [tp], forget: [], acknowledgements: [:], allowRenew: false, view: view)
            #expect(opened.error == nil && Array(opened.partitions) == [tp])
            let got = broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 6, view: view)
            #expect(got.first?.ranges == [AcquiredRange(first: 0, last: 5, deliveryCount: 1)])
            let acked = broker.shares.updateSession(
                group: "workers", member: "w1", epoch: 1, add: [], forget: [],
                acknowledgements: [tp: [ShareAcknowledgement(first: 0, last: 2, types: [.accept])]], allowRenew: false, view: view)
            #expect(acked.acknowledged[tp] == .some(nil) && acked.durableAt != nil)
            try await Self.durable(broker, acked.durableAt)
            // A wrong epoch is refused; so is an unknown session.
            #expect(broker.shares.updateSession(
                group: "workers", member: "w1", epoch: 5, add: [], forget: [], acknowledgements: [:], allowRenew: false, view: view
            ).error == .invalidShareSessionEpoch)
            #expect(broker.shares.updateSession(
                group: "workers", member: "w9", epoch: 1, add: [], forget: [], acknowledgements: [:], allowRenew: false, view: view
            ).error == .shareSessionNotFound)
            try await broker.close()
        }
        // After the restart: 0-2 never again; 3-5 (acquired, never acknowledged) again, with the
        // count of the delivery the close cut (it is not counted); 6-9 for the first time.
        let broker = try await Broker.open(dataDirectory: dir.path)
        _ = Self.join(broker, "w2")
        let view = broker.shareLogView
        _ = broker.shares.updateSession(
            group: "workers", member: "w2", epoch: 0, add: [tp], forget: [], acknowledgements: [:], allowRenew: false, view: view)
        let again = broker.shares.acquire(group: "workers", member: "w2", partitions: [tp], maxRecords: 100, view: view)
        #expect(again.first?.ranges == [AcquiredRange(first: 3, last: 9, deliveryCount: 1)])
        let summary = try #require(broker.shares.summaries("workers", view: view).first)
        #expect(summary.startOffset == 3 && summary.acquired == 7 && summary.lag == 7)
        try await broker.close()
    }

    /// Acknowledgements are as durable as the jobs they finish: on a topic that syncs every
    /// append they are answered once synced (`durableAt`), on one flushed by the OS once in the
    /// share-state log; a request that acknowledges both waits.
    @Test func acknowledgementsAreAsDurableAsTheirTopic() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        try await broker.createTopic("synced", partitions: 1, config: TopicConfig(flushPolicy: .everyAppend))
        try await Self.produce(broker, "jobs", count: 3)
        try await Self.produce(broker, "synced", count: 3)
        #expect(broker.shareGroupHeartbeat(
            ShareHeartbeat(groupId: "workers", memberId: "w1", memberEpoch: 0, subscribedTopicNames: ["jobs", "synced"])).error == nil)
        let (jobs, synced) = (TopicPartition("jobs", 0), TopicPartition("synced", 0))
        let view = broker.shareLogView
        _ = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 0, add: [jobs, synced], forget: [], acknowledgements: [:], allowRenew: false, view: view)
        #expect(broker.shares.acquire(group: "workers", member: "w1", partitions: [jobs, synced], maxRecords: 100, view: view).count == 2)
        func ack(_ epoch: Int32, _ acks: [TopicPartition: [ShareAcknowledgement]]) -> ShareSessionUpdate {
            broker.shares.updateSession(
                group: "workers", member: "w1", epoch: epoch, add: [], forget: [], acknowledgements: acks, allowRenew: false, view: view)
        }
        let accept = { (offset: Int64) in [ShareAcknowledgement(first: offset, last: offset, types: [.accept])] }
        let os = ack(1, [jobs: accept(0)])
        #expect(os.acknowledged[jobs] == .some(nil) && os.durableAt == nil)
        let durable = ack(2, [synced: accept(0)])
        #expect(durable.acknowledged[synced] == .some(nil) && durable.durableAt != nil)
        try await Self.durable(broker, durable.durableAt)
        let both = ack(3, [jobs: accept(1), synced: accept(1)])
        #expect(both.durableAt != nil)
        try await Self.durable(broker, both.durableAt)
        try await broker.close()
    }

    /// Power loss on a topic flushed by the OS: the share state (acknowledgements are durable)
    /// can be ahead of what recovery kept of the log. Jobs appended again at the lost offsets
    /// are new jobs: they are delivered, not taken for the acknowledged ones they replace, even
    /// after another restart.
    @Test func jobsAppendedAfterTheLogLostItsTailAreDelivered() async throws {
        let dir = TemporaryDirectory()
        let tp = TopicPartition("jobs", 0)
        do {
            let broker = try await Broker.open(dataDirectory: dir.path)
            try await broker.createTopic("jobs", partitions: 1)
            try await Self.produce(broker, "jobs", count: 10)
            _ = Self.join(broker, "w1")
            let view = broker.shareLogView
            _ = broker.shares.updateSession(
                group: "workers", member: "w1", epoch: 0, add: [tp], forget: [], acknowledgements: [:], allowRenew: false, view: view)
            #expect(broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 100, view: view).first?.offsets.count == 10)
            let acked = broker.shares.updateSession(
                group: "workers", member: "w1", epoch: 1, add: [], forget: [],
                acknowledgements: [tp: [ShareAcknowledgement(first: 0, last: 9, types: [.accept])]], allowRenew: false, view: view)
            try await Self.durable(broker, acked.durableAt)
            try await broker.close()
        }
        // What recovery would keep after a power loss: the first 6 records.
        let log = try PartitionLog.open(directory: dir.path + "/jobs-0", config: LogConfig())
        try log.truncate(to: 6)
        try log.close()

        do {
            let broker = try await Broker.open(dataDirectory: dir.path)
            #expect(try broker.offsets(topic: "jobs", partition: 0).end == 6)
            try await Self.produce(broker, "jobs", count: 4)  // offsets 6-9 again: new jobs
            try await broker.close()
        }
        // Restarted once more before any worker came: the cut was kept.
        let broker = try await Broker.open(dataDirectory: dir.path)
        _ = Self.join(broker, "w2")
        let view = broker.shareLogView
        _ = broker.shares.updateSession(
            group: "workers", member: "w2", epoch: 0, add: [tp], forget: [], acknowledgements: [:], allowRenew: false, view: view)
        let summary = try #require(broker.shares.summaries("workers", view: view).first)
        #expect(summary.startOffset == 6 && summary.lag == 4)
        let again = broker.shares.acquire(group: "workers", member: "w2", partitions: [tp], maxRecords: 100, view: view)
        #expect(again.first?.ranges == [AcquiredRange(first: 6, last: 9, deliveryCount: 1)])
        try await broker.close()
    }

    /// A worker taking one job per fetch: the records already in the window are handed out
    /// without reading (decoding) more of the log each time. (Each fetch used to scan 256 more
    /// records until the window held the whole backlog: 1.3 ms of server CPU per job.)
    @Test func oneJobPerFetchDoesNotRescanTheLog() async throws {
        let dir = TemporaryDirectory()
        let tp = TopicPartition("jobs", 0)
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        var builder = RecordBatchBuilder()
        for i in 0..<2_000 { builder.append(timestamp: 0, key: nil, value: Array("job-\(i)".utf8)) }
        _ = try await broker.append(topic: "jobs", partition: 0, batches: try builder.build())
        _ = Self.join(broker, "w1")
        let scans = Counter()
        var view = broker.shareLogView
        let scan = view.scan!
        view.scan = { topic, partition, offset, count throws(TidemarkError) in
            scans.add()
            return try scan(topic, partition, offset, count)
        }
        _ = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 0, add: [tp], forget: [], acknowledgements: [:], allowRenew: false, view: view)
        let first = broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 1, view: view)
        #expect(first.first?.offsets == [0])
        let scansForTheFirst = scans.value
        #expect(scansForTheFirst >= 1)
        for expected in Int64(1)..<40 {
            let got = broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 1, view: view)
            #expect(got.first?.offsets == [expected])
        }
        #expect(scans.value == scansForTheFirst, "later one-record fetches scanned the log again")
        try await broker.close()
    }

    final class Counter: Sendable {
        private let count = Mutex(0)
        func add() { count.withLock { $0 += 1 } }
        var value: Int { count.withLock { $0 } }
    }

    /// Clients leave (heartbeat epoch -1) and then close their share session (epoch -1): the
    /// close gives back what the member held, at once.
    @Test func aMemberThatLeavesAndClosesGivesItsJobsBack() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        try await Self.produce(broker, "jobs", count: 4)
        let tp = TopicPartition("jobs", 0)
        let view = broker.shareLogView
        let joined = Self.join(broker, "w1")
        Self.openSession(broker, "w1", tp)
        #expect(broker.shares.acquire(group: "workers", member: "w1", partitions: [tp], maxRecords: 10, view: view).first?.offsets.count == 4)
        _ = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: "w1", memberEpoch: -1))
        _ = joined
        // Left but not closed: its records stay locked to it (its last acknowledgements may come).
        _ = Self.join(broker, "w3")
        Self.openSession(broker, "w3", tp)
        #expect(broker.shares.acquire(group: "workers", member: "w3", partitions: [tp], maxRecords: 10, view: view).isEmpty)
        let closed = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: -1, add: [], forget: [], acknowledgements: [:], allowRenew: false, view: view)
        #expect(closed.error == nil)
        _ = Self.join(broker, "w2")
        Self.openSession(broker, "w2", tp)
        // Two members now (w2, w3): each takes its fair half of the four released jobs.
        #expect(broker.shares.acquire(group: "workers", member: "w2", partitions: [tp], maxRecords: 10, view: view).first?.ranges
            == [AcquiredRange(first: 0, last: 1, deliveryCount: 2)])
        #expect(broker.shares.acquire(group: "workers", member: "w3", partitions: [tp], maxRecords: 10, view: view).first?.ranges
            == [AcquiredRange(first: 2, last: 3, deliveryCount: 2)])
        try await broker.close()
    }

    /// A member that left the group takes no more jobs through the session it keeps for its
    /// last acknowledgements (it went on acquiring at epoch 1 and beyond); and what a session's
    /// member holds in a partition it forgot goes back when the session closes (it waited out
    /// its lock).
    @Test func aSessionTakesOnlyForAMemberAndGivesBackAllItHolds() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("jobs", partitions: 2)
        for partition in 0..<2 {
            for i in 0..<3 {
                var builder = RecordBatchBuilder()
                builder.append(timestamp: 0, key: nil, value: Array("job-\(partition)-\(i)".utf8))
                _ = try await broker.append(topic: "jobs", partition: partition, batches: try builder.build())
            }
        }
        let (p0, p1) = (TopicPartition("jobs", 0), TopicPartition("jobs", 1))
        func open(_ member: String) {
            _ = Self.join(broker, member)
            _ = broker.shares.updateSession(
                group: "workers", member: member, epoch: 0, add: [p0, p1], forget: [], acknowledgements: [:], allowRenew: false,
                view: broker.shareLogView, requireMember: true)
        }
        func acquire(_ member: String, _ tp: TopicPartition) -> [Int64] {
            broker.shares.acquire(group: "workers", member: member, partitions: [tp], maxRecords: 1, view: broker.shareLogView)
                .flatMap(\.offsets)
        }
        func update(_ member: String, _ epoch: Int32, forget: [TopicPartition] = []) {
            _ = broker.shares.updateSession(
                group: "workers", member: member, epoch: epoch, add: [], forget: forget, acknowledgements: [:], allowRenew: false,
                view: broker.shareLogView)
        }
        open("w1")
        open("w2")
        #expect(acquire("w1", p0) == [0])
        _ = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: "w1", memberEpoch: -1))
        update("w1", 1)
        #expect(acquire("w1", p0).isEmpty, "a member that left took a job")

        // w2 holds job 0 of partition 1, forgets the partition, and closes its session.
        #expect(acquire("w2", p1) == [0])
        update("w2", 1, forget: [p1])
        update("w2", -1)
        open("w3")
        #expect(acquire("w3", p1) == [0], "job 0 of partition 1 still held by a closed session")
        try await broker.close()
    }

    /// With `share.auto.offset.reset=latest` each partition starts where its log ends when the
    /// session names it, as Kafka starts every partition a ShareFetch names: one the fetch's
    /// record limit did not reach (filled from another topic) started only when a later fetch
    /// reached it, and the jobs produced to it in between were skipped.
    @Test func aLatestGroupStartsEachPartitionWhenItsSessionNamesIt() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("a", partitions: 1)
        try await broker.createTopic("b", partitions: 1)
        try await Self.produce(broker, "b", count: 1)  // before: skipped, as latest says
        try await broker.alterGroupConfig("late", changes: [.set("share.auto.offset.reset", "latest")])
        _ = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "late", memberId: "w", memberEpoch: 0, subscribedTopicNames: ["a", "b"]))
        let (a, b) = (TopicPartition("a", 0), TopicPartition("b", 0))
        _ = broker.shares.updateSession(
            group: "late", member: "w", epoch: 0, add: [a, b], forget: [], acknowledgements: [:], allowRenew: false,
            view: broker.shareLogView, requireMember: true)
        try await Self.produce(broker, "a", count: 2)
        try await Self.produce(broker, "b", count: 2)
        func acquire() -> [String] {
            broker.shares.acquire(group: "late", member: "w", partitions: [a, b], maxRecords: 2, view: broker.shareLogView)
                .flatMap { acquisition in acquisition.offsets.map { "\(acquisition.topicPartition.topic)-\($0)" } }
        }
        #expect(acquire() == ["a-0", "a-1"])
        #expect(acquire() == ["b-1", "b-2"])
        try await broker.close()
    }

    /// A partition's backlog is shared among the members that read its topic, not every member
    /// of the group: nine workers on `emails` held the one `reports` worker to one job per
    /// fetch (its share of nine jobs among ten members).
    @Test func aBacklogIsSharedAmongItsTopicsReaders() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("emails", partitions: 1)
        try await broker.createTopic("reports", partitions: 1)
        try await Self.produce(broker, "emails", count: 18)
        try await Self.produce(broker, "reports", count: 9)
        func join(_ member: String, _ topic: String) -> ShareSessionUpdate {
            _ = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: member, memberEpoch: 0, subscribedTopicNames: [topic]))
            return broker.shares.updateSession(
                group: "workers", member: member, epoch: 0, add: [TopicPartition(topic, 0)], forget: [], acknowledgements: [:],
                allowRenew: false, view: broker.shareLogView)
        }
        func acquire(_ member: String, _ topic: String) -> Int {
            broker.shares.acquire(group: "workers", member: member, partitions: [TopicPartition(topic, 0)], maxRecords: 100, view: broker.shareLogView)
                .reduce(0) { $0 + $1.offsets.count }
        }
        for i in 0..<9 { _ = join("mailer-\(i)", "emails") }
        _ = join("reporter", "reports")
        #expect(acquire("reporter", "reports") == 9)
        // The emails' 18 among their nine readers: two each.
        #expect(acquire("mailer-0", "emails") == 2)
        // One mailer leaves: eight share the 18 unfinished, three each.
        _ = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: "mailer-8", memberEpoch: -1))
        #expect(acquire("mailer-1", "emails") == 3)
        try await broker.close()
    }
}

/// The embedded `ShareConsumer`: workers in the process on the same share groups.
@Suite struct EmbeddedShareConsumerTests {
    @Test func twoWorkersShareTheJobsAndEachIsAcceptedOnce() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 2)
        let a = try await ShareConsumer(broker: broker, group: "pool", topics: ["jobs"], mode: .explicit)
        let b = try await ShareConsumer(broker: broker, group: "pool", topics: ["jobs"], mode: .explicit)
        for i in 0..<100 {
            var builder = RecordBatchBuilder()
            builder.append(timestamp: 0, key: nil, value: Array("job-\(i)".utf8))
            _ = try await broker.append(topic: "jobs", partition: i % 2, batches: try builder.build())
        }
        var seen: [String: Int] = [:]
        var byWorker = [0, 0]
        for _ in 0..<20 where seen.count < 100 {
            for (index, worker) in [a, b].enumerated() {
                for job in try await worker.poll(maxRecords: 10, timeout: .milliseconds(50)) {
                    seen[String(decoding: job.value ?? [], as: UTF8.self), default: 0] += 1
                    byWorker[index] += 1
                    #expect(job.deliveryCount == 1)
                    worker.acknowledge(job, .accept)
                }
                let results = try await worker.commit()
                #expect(results.values.allSatisfy { $0 == nil })
            }
        }
        #expect(seen.count == 100 && seen.values.allSatisfy { $0 == 1 })
        #expect(byWorker.allSatisfy { $0 > 0 }, "\(byWorker)")
        try await a.close()
        try await b.close()
        try await broker.close()
    }

    /// Jobs finished in any order (a worker pool does) are acknowledged: the consumer sends
    /// them in the order a partition's batches must have.
    @Test func jobsAcknowledgedOutOfOrderAreAccepted() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        var builder = RecordBatchBuilder()
        for i in 0..<6 { builder.append(timestamp: 0, key: nil, value: Array("job-\(i)".utf8)) }
        _ = try await broker.append(topic: "jobs", partition: 0, batches: try builder.build())
        let worker = try await ShareConsumer(broker: broker, group: "pool", topics: ["jobs"], mode: .explicit)
        let jobs = try await worker.poll(maxRecords: 6, timeout: .milliseconds(500))
        #expect(jobs.count == 6)
        for job in jobs.reversed() { worker.acknowledge(job, job.offset == 2 ? .release : .accept) }
        worker.acknowledge(jobs[4], .release)  // changed its mind: the last word counts
        #expect(try await worker.commit().values.allSatisfy { $0 == nil })
        let again = try await worker.poll(maxRecords: 6, timeout: .milliseconds(500))
        #expect(again.map(\.offset).sorted() == [2, 4] && again.allSatisfy { $0.deliveryCount == 2 })
        try await worker.close()
        try await broker.close()
    }

    @Test func releaseRetriesRejectArchivesAndCloseGivesBack() async throws {
        let dir = TemporaryDirectory()
        var options = BrokerOptions()
        options.groups.shareDeliveryCountLimit = 3
        let broker = try await Broker.open(dataDirectory: dir.path, options: options)
        try await broker.createTopic("jobs", partitions: 1)
        for value in ["flaky", "poison", "kept"] {
            var builder = RecordBatchBuilder()
            builder.append(timestamp: 0, key: nil, value: Array(value.utf8))
            _ = try await broker.append(topic: "jobs", partition: 0, batches: try builder.build())
        }
        let worker = try await ShareConsumer(broker: broker, group: "retry", topics: ["jobs"], mode: .explicit)
        var flakyCounts: [Int16] = []
        var rejected = false
        for _ in 0..<10 {
            for job in try await worker.poll(timeout: .milliseconds(50)) {
                switch String(decoding: job.value ?? [], as: UTF8.self) {
                case "flaky":
                    flakyCounts.append(job.deliveryCount)
                    worker.acknowledge(job, .release)
                case "poison":
                    #expect(!rejected)
                    rejected = true
                    worker.acknowledge(job, .reject)
                default:
                    break  // "kept": held, never acknowledged
                }
            }
            _ = try await worker.commit()
        }
        #expect(flakyCounts == [1, 2, 3])  // the limit (3) archived it
        #expect(rejected)
        // "kept" is held by `worker`; closing gives it back at once to the next worker.
        try await worker.close()
        let next = try await ShareConsumer(broker: broker, group: "retry", topics: ["jobs"])
        let again = try await next.poll(timeout: .milliseconds(500))
        #expect(again.map { String(decoding: $0.value ?? [], as: UTF8.self) } == ["kept"])
        #expect(again.first?.deliveryCount == 2)
        try await next.close()
        try await broker.close()
    }
}

/// Dead-letter topics (KIP-1191): rejected records and records at the delivery limit are
/// copied, with `_dlq.errors.*` headers, exactly once.
@Suite struct DeadLetterTests {
    static func setUp(_ broker: Broker) async throws {
        try await broker.createTopic("orders", partitions: 1)
        try await broker.alterGroupConfig(
            "billing", changes: [.set("errors.deadletterqueue.topic.name", "dlq.orders"), .set("share.delivery.count.limit", "2")])
        for (i, value) in ["bad", "flaky", "ok"].enumerated() {
            var builder = RecordBatchBuilder()
            builder.append(timestamp: 1_000 + Int64(i), key: Array("k\(i)".utf8), value: Array(value.utf8),
                           headers: [RecordHeader(key: "traceparent", value: Array("00-abc-01".utf8))])
            _ = try await broker.append(topic: "orders", partition: 0, batches: try builder.build())
        }
    }

    /// Acquires `count` records of orders-0 as member "w" and rejects `offsets` of them
    /// through the coordinator, not a ShareConsumer: its commit starts a dead-letter pass of
    /// its own, which would write and mark the copies a test means to leave unmarked.
    static func reject(_ broker: Broker, acquiring count: Int, _ offsets: [Int64]) {
        let tp = TopicPartition("orders", 0)
        let view = broker.shareLogView
        _ = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "billing", memberId: "w", memberEpoch: 0, subscribedTopicNames: ["orders"]))
        _ = broker.shares.updateSession(
            group: "billing", member: "w", epoch: 0, add: [tp], forget: [], acknowledgements: [:], allowRenew: false, view: view)
        #expect(broker.shares.acquire(group: "billing", member: "w", partitions: [tp], maxRecords: count, view: view).first?.offsets.count == count)
        let rejected = broker.shares.updateSession(
            group: "billing", member: "w", epoch: 1, add: [], forget: [],
            acknowledgements: [tp: offsets.map { ShareAcknowledgement($0, .reject) }], allowRenew: false, view: view)
        #expect(rejected.error == nil)
    }

    static func deadLetters(_ broker: Broker) async throws -> [ConsumerRecord] {
        guard let result = try? await broker.fetch(topic: "dlq.orders", partition: 0, offset: 0, maxBytes: 1 << 20),
            let slice = result.slice
        else { return [] }
        return try broker.records(in: slice, topic: "dlq.orders", partition: 0, from: 0, limit: 100)
    }

    static func header(_ record: ConsumerRecord, _ name: String) -> String? {
        record.headers.last { $0.key == name }?.value.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func rejectedAndExhaustedRecordsAreCopiedWithTheirReasons() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await Self.setUp(broker)
        let worker = try await ShareConsumer(broker: broker, group: "billing", topics: ["orders"], mode: .explicit)
        for _ in 0..<6 {
            for job in try await worker.poll(timeout: .milliseconds(50)) {
                switch String(decoding: job.value ?? [], as: UTF8.self) {
                case "bad": worker.acknowledge(job, .reject)
                case "flaky": worker.acknowledge(job, .release)
                default: worker.acknowledge(job, .accept)
                }
            }
            try await worker.commit()
        }
        await broker.writeDeadLetters()
        let letters = try await Self.deadLetters(broker)
        #expect(letters.count == 2)
        let bad = try #require(letters.first { $0.value == Array("bad".utf8) })
        #expect(bad.key == Array("k0".utf8) && bad.timestamp == 1_000)
        #expect(Self.header(bad, "traceparent") == "00-abc-01")
        #expect(Self.header(bad, "_dlq.errors.disposition") == "REJECTED")
        #expect(Self.header(bad, "_dlq.errors.original.topic") == "orders")
        #expect(Self.header(bad, "_dlq.errors.original.partition") == "0")
        #expect(Self.header(bad, "_dlq.errors.original.offset") == "0")
        #expect(Self.header(bad, "_dlq.errors.group") == "billing")
        #expect(Self.header(bad, "_dlq.errors.delivery.count") == "1")
        let flaky = try #require(letters.first { $0.value == Array("flaky".utf8) })
        #expect(Self.header(flaky, "_dlq.errors.disposition") == "MAX_DELIVERY_ATTEMPTS_REACHED")
        #expect(Self.header(flaky, "_dlq.errors.delivery.count") == "2")
        #expect(try broker.describeTopic("dlq.orders").config.deadLetterQueueEnabled == true)
        let summary = try #require(broker.shares.summaries("billing", view: broker.shareLogView).first)
        #expect(summary.deadLettered == 2 && summary.deadLettersPending == 0)
        try await worker.close()
        try await broker.close()
    }

    /// A backlog of dead letters (a worker bug rejected 1,500 jobs) is copied with a few
    /// share-state writes, not one per letter (each rewrote the pending list: quadratic).
    @Test func aLargeBacklogOfDeadLettersIsWrittenInFewShareStateRecords() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("orders", partitions: 1)
        try await broker.alterGroupConfig("billing", changes: [.set("errors.deadletterqueue.topic.name", "dlq.orders")])
        let count = 1_500
        var builder = RecordBatchBuilder()
        for i in 0..<count { builder.append(timestamp: 1_000, key: nil, value: Array("job-\(i)".utf8)) }
        _ = try await broker.append(topic: "orders", partition: 0, batches: try builder.build())
        let tp = TopicPartition("orders", 0)
        let view = broker.shareLogView
        _ = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "billing", memberId: "w", memberEpoch: 0, subscribedTopicNames: ["orders"]))
        _ = broker.shares.updateSession(group: "billing", member: "w", epoch: 0, add: [tp], forget: [], acknowledgements: [:], allowRenew: false, view: view)
        #expect(broker.shares.acquire(group: "billing", member: "w", partitions: [tp], maxRecords: count, view: view).first?.offsets.count == count)
        let rejected = broker.shares.updateSession(
            group: "billing", member: "w", epoch: 1, add: [], forget: [],
            acknowledgements: [tp: [ShareAcknowledgement(first: 0, last: Int64(count - 1), types: [.reject])]], allowRenew: false, view: view)
        #expect(rejected.acknowledged[tp] == .some(nil))
        let stateLog = broker.shares.store.partition.log
        let before = stateLog.logEndOffset
        await broker.writeDeadLetters()
        let summary = try #require(broker.shares.summaries("billing", view: view).first)
        #expect(summary.deadLettered == Int64(count) && summary.deadLettersPending == 0)
        #expect(try broker.describeTopic("dlq.orders").partitions[0].logEndOffset == Int64(count))
        #expect(stateLog.logEndOffset - before <= 10, "\(stateLog.logEndOffset - before) share-state records for \(count) letters")
        try await broker.close()
    }

    /// `writeDeadLetters()` waits for a pass already running, then makes its own: what was
    /// pending when it was called is written when it returns. (It returned at once while a
    /// pass ran, the one a worker's commit starts, and a caller read the topic too early.)
    @Test func aPassWaitsForTheRunningOneThenWrites() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options(maintenanceMs: 3_600_000))
        try await Self.setUp(broker)
        #expect(broker.shares.deadLetterPasses.tryEnter())  // a pass runs
        Self.reject(broker, acquiring: 3, [0])
        final class Done: Sendable { let flag = Atomic<Bool>(false) }
        let done = Done()
        let caller = Task {
            await broker.writeDeadLetters()
            done.flag.store(true, ordering: .releasing)
        }
        await broker.writeDeadLettersUnlessRunning()  // gives up at once
        try await Task.sleep(for: .milliseconds(200))
        let waited = !done.flag.load(ordering: .acquiring)
        #expect(waited)
        #expect(try await Self.deadLetters(broker).isEmpty)
        broker.shares.deadLetterPasses.leave()
        await caller.value
        let finished = done.flag.load(ordering: .acquiring)
        #expect(finished)
        #expect(try await Self.deadLetters(broker).count == 1)
        #expect(broker.shares.pendingDeadLetters().isEmpty)
        try await broker.close()
    }

    /// A copy appended but not marked (a crash right after the append) is recognised when
    /// it is written again after the restart: the topic holds it once.
    @Test func aCopyMadeAgainAfterACrashIsNotDuplicated() async throws {
        let dir = TemporaryDirectory()
        do {
            let broker = try await Broker.open(dataDirectory: dir.path)
            try await Self.setUp(broker)
            Self.reject(broker, acquiring: 3, [0])  // "bad"
            await broker.writeDeadLetters(marking: false)
            #expect(try await Self.deadLetters(broker).count == 1)
            #expect(broker.shares.pendingDeadLetters().first?.letters.count == 1)
            try await broker.close()
        }
        let broker = try await Broker.open(dataDirectory: dir.path)
        #expect(broker.shares.pendingDeadLetters().first?.letters.count == 1)
        await broker.writeDeadLetters()
        #expect(try await Self.deadLetters(broker).count == 1)
        #expect(broker.shares.pendingDeadLetters().isEmpty)
        try await broker.close()
    }

    /// Many copies appended but not marked (a crash after a pass that marks at its end): the
    /// pass after the restart finds them in the dead-letter partition's producer state and
    /// marks them; none is copied twice (appending them again would not be recognised past
    /// the producer state's last five batches).
    @Test func manyCopiesLeftUnmarkedByACrashAreNotCopiedAgain() async throws {
        let dir = TemporaryDirectory()
        let count = 40
        do {
            let broker = try await Broker.open(dataDirectory: dir.path)
            try await broker.createTopic("orders", partitions: 1)
            try await broker.alterGroupConfig("billing", changes: [.set("errors.deadletterqueue.topic.name", "dlq.orders")])
            var builder = RecordBatchBuilder()
            for i in 0..<count { builder.append(timestamp: 1_000, key: nil, value: Array("job-\(i)".utf8)) }
            _ = try await broker.append(topic: "orders", partition: 0, batches: try builder.build())
            Self.reject(broker, acquiring: count, Array(0..<Int64(count)))
            await broker.writeDeadLetters(marking: false)
            #expect(try await Self.deadLetters(broker).count == count)
            try await broker.close()
        }
        let broker = try await Broker.open(dataDirectory: dir.path)
        #expect(broker.shares.pendingDeadLetters().first?.letters.count == count)
        await broker.writeDeadLetters()
        #expect(try await Self.deadLetters(broker).count == count)
        #expect(broker.shares.pendingDeadLetters().isEmpty)
        try await broker.close()
    }

    @Test func deadLetterTopicsMustBeNamedAndMarkedAsSuch() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        // The name must start with the prefix (dlq. by default).
        await #expect(throws: TidemarkError.self) {
            try await broker.alterGroupConfig("g", changes: [.set("errors.deadletterqueue.topic.name", "orders")])
        }
        // An existing topic without errors.deadletterqueue.group.enable is never written.
        try await broker.createTopic("orders", partitions: 1)
        try await broker.createTopic("dlq.business", partitions: 1)
        try await broker.alterGroupConfig("g", changes: [.set("errors.deadletterqueue.topic.name", "dlq.business")])
        var builder = RecordBatchBuilder()
        builder.append(timestamp: 0, key: nil, value: Array("x".utf8))
        _ = try await broker.append(topic: "orders", partition: 0, batches: try builder.build())
        let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["orders"], mode: .explicit)
        for job in try await worker.poll(timeout: .milliseconds(100)) { worker.acknowledge(job, .reject) }
        try await worker.commit()
        await broker.writeDeadLetters()
        #expect(try await broker.offsets(topic: "dlq.business", partition: 0).end == 0)
        #expect(broker.shares.pendingDeadLetters().first?.letters.count == 1)  // waiting, not lost
        try await worker.close()
        try await broker.close()
    }
}

/// Per-key ordering (share.key.ordering) and delayed jobs (`tidemark.deliver.at`), through the
/// coordinator's scan of keys and delays.
@Suite struct KeyOrderingAndDelayTests {
    static func append(
        _ broker: Broker, _ topic: String, key: String?, value: String, deliverAt: Int64? = nil, timestamp: Int64 = 0
    ) async throws {
        var builder = RecordBatchBuilder()
        let headers = deliverAt.map { [RecordHeader(key: Broker.deliverAtHeader, value: Array("\($0)".utf8))] } ?? []
        builder.append(timestamp: timestamp, key: key.map { Array($0.utf8) }, value: Array(value.utf8), headers: headers)
        _ = try await broker.append(topic: topic, partition: 0, batches: try builder.build())
    }

    static func values(_ jobs: [ShareRecord]) -> [String] { jobs.map { String(decoding: $0.value ?? [], as: UTF8.self) } }

    /// The header's value is read byte by byte when it is ASCII, as a trimmed `Int64(_:)` reads
    /// it: the same answer for every edge (signs, blanks and line ends around it, blanks inside,
    /// the bounds and one past them, other digits and Unicode blanks, which go the slow way).
    @Test func aDelayIsReadAsATrimmedDecimal() {
        let values = [
            "", " ", "0", "1700000000000", " 42 ", "\t\n42\r\n", "\u{0B}42\u{0C}", "+5", "-5", "+", "-", "--5", "+-5", " - 5",
            "4 2", "42x", "0x10", "1_000", "1e3", "١٢", "\u{00A0}42", "42\u{2003}", "\u{0085}7", "9223372036854775807",
            "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "00000000000000000000042", "99999999999999999999",
            "\u{1C}42", "42\u{1F}", "\u{00}42", "42\u{7F}", "-0", "+0",
        ]
        for text in values {
            let expected = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(Broker.parseDeliverAt(Array(text.utf8)) == expected, "\(Array(text.utf8))")
        }
    }

    /// One key's backlog behind its delayed head fills what a partition keeps waiting behind
    /// keys (ten times the record locks): the other keys' jobs after it are not read until
    /// some of it goes out, and the log says so (nothing did: workers sat idle beside it).
    @Test func aKeysBacklogPastItsCapIsSaid() async throws {
        let dir = TemporaryDirectory()
        let log = CapturedLog()
        var opts = options(maintenanceMs: 3_600_000)
        opts.logger = log.logger
        opts.groups.sharePartitionMaxRecordLocks = 2
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("orders", partitions: 1)
        try await broker.alterGroupConfig("fifo", changes: [.set("share.key.ordering", "true")])
        try await Self.append(broker, "orders", key: "tenant", value: "head", deliverAt: opts.clock() + 3_600_000)
        for i in 0..<25 { try await Self.append(broker, "orders", key: "tenant", value: "t\(i)") }
        try await Self.append(broker, "orders", key: "other", value: "o1")
        let worker = try await ShareConsumer(broker: broker, group: "fifo", topics: ["orders"], mode: .explicit)
        #expect(Self.values(try await worker.poll(timeout: .milliseconds(50))).isEmpty)
        #expect(log.matching("per-key ordering: jobs waiting behind").isEmpty)
        await broker.shares.tick(logger: opts.logger)
        let said = log.matching("per-key ordering: jobs waiting behind")
        #expect(said.count == 1 && said.first?.metadata["partition"] == "0" && said.first?.metadata["waiting"] == "20", "\(said.map(\.text))")
        try await worker.close()
        try await broker.close()
    }

    @Test func oneRecordPerKeyInFlightInOffsetOrder() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("orders", partitions: 1)
        try await broker.alterGroupConfig("fifo", changes: [.set("share.key.ordering", "true")])
        for (key, value) in [("a", "a1"), ("a", "a2"), ("b", "b1"), (nil, "x1"), ("a", "a3"), ("b", "b2"), (nil, "x2")] {
            try await Self.append(broker, "orders", key: key, value: value)
        }
        let w1 = try await ShareConsumer(broker: broker, group: "fifo", topics: ["orders"], mode: .explicit)
        let w2 = try await ShareConsumer(broker: broker, group: "fifo", topics: ["orders"], mode: .explicit)
        let first = try await w1.poll(timeout: .milliseconds(50))
        #expect(Self.values(first) == ["a1", "b1", "x1", "x2"])  // a2, a3, b2 wait for their keys
        #expect(Self.values(try await w2.poll(timeout: .milliseconds(50))).isEmpty)
        for job in first where job.value == Array("a1".utf8) { w1.acknowledge(job, .accept) }
        try await w1.commit()
        #expect(Self.values(try await w2.poll(timeout: .milliseconds(50))) == ["a2"])
        // A released record keeps its key's place: b1 back, b2 still waits behind it.
        for job in first where job.value == Array("b1".utf8) { w1.acknowledge(job, .release) }
        try await w1.commit()
        #expect(Self.values(try await w2.poll(timeout: .milliseconds(50))) == ["b1"])
        try await w1.close()
        try await w2.close()
        try await broker.close()
    }

    /// A delayed job's `tidemark.deliver.at` is a wall-clock time; the coordinator waits on the
    /// timer clock, which differs from the wall clock by the steps it took since the start
    /// (here: stepped an hour forward). The job goes out when the wall clock reaches its time,
    /// not an hour later.
    @Test func aDelayIsMeasuredOnTheWallClockWhateverTheTimerClockReads() async throws {
        let dir = TemporaryDirectory()
        let wall = TestClock()
        let timers = TestClock(wall.read() - 3_600_000)
        var opts = options(clock: wall, maintenanceMs: 3_600_000)
        opts.timerClock = timers.read
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("later", partitions: 1)
        try await Self.append(broker, "later", key: nil, value: "soon", deliverAt: wall.read() + 10_000)
        let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["later"], mode: .explicit)
        #expect(Self.values(try await worker.poll(timeout: .milliseconds(20))).isEmpty)
        wall.advance(10_001)
        timers.advance(10_001)
        #expect(Self.values(try await worker.poll(timeout: .seconds(10))) == ["soon"])  // returns once it has it
        try await worker.close()
        try await broker.close()
    }

    /// The wall clock stepped after a delayed job was read into the window: the job keeps its
    /// `tidemark.deliver.at` time on the new wall clock. Stepped back an hour, a job read before
    /// the step went out when its delay had passed on the timers' clock, an hour before its
    /// time; stepped forward, one an hour ahead waited the hour out. A retry backoff (a
    /// duration, after a delivery) does not move.
    @Test func delayedJobsFollowAStepOfTheWallClock() async throws {
        let dir = TemporaryDirectory()
        let wall = TestClock()
        let timers = TestClock(wall.read())
        var opts = options(clock: wall, maintenanceMs: 3_600_000)
        opts.timerClock = timers.read
        let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
        try await broker.createTopic("later", partitions: 1)
        try await Self.append(broker, "later", key: nil, value: "at-40s", deliverAt: wall.read() + 40_000)
        try await Self.append(broker, "later", key: nil, value: "in-2h", deliverAt: wall.read() + 7_200_000)
        let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["later"], mode: .explicit)
        #expect(Self.values(try await worker.poll(timeout: .milliseconds(20))).isEmpty)
        await broker.shares.tick()  // the pass before the step sees the clocks agree
        // Back an hour: "at-40s" is now due in an hour and 40 s.
        wall.advance(-3_600_000)
        await broker.shares.tick()
        wall.advance(41_000)
        timers.advance(41_000)
        #expect(Self.values(try await worker.poll(timeout: .milliseconds(20))).isEmpty, "not an hour before its time")
        wall.advance(3_600_000)
        timers.advance(3_600_000)
        let due = try await worker.poll(timeout: .seconds(10))
        #expect(Self.values(due) == ["at-40s"])
        for job in due { worker.acknowledge(job, .accept) }
        try await worker.commit()
        // Forward two hours: "in-2h" (now due in 1 h 59 min) is due at once.
        wall.advance(7_200_000)
        await broker.shares.tick()
        #expect(Self.values(try await worker.poll(timeout: .seconds(10))) == ["in-2h"])
        try await worker.close()
        try await broker.close()
    }

    /// After a restart the window must read its records' keys and delays again. An event
    /// loop's acquire (a view that never waits for the disk) over a cold log declines and leaves
    /// the window as it was; the blocking acquire that follows still knows the delayed job.
    @Test func aColdWindowIsLeftForTheBlockingAcquire() async throws {
        let dir = TemporaryDirectory()
        let tp = TopicPartition("later", 0)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // The fetches' read is the one tested: the open's own is off for the restart.
        func open(readingAtOpen: Bool = true) async throws -> Broker {
            var opts = BrokerOptions()
            opts.readsRestoredShareWindowsAtOpen = readingAtOpen
            let broker = try await Broker.open(dataDirectory: dir.path, options: opts)
            let joined = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "g", memberId: "w1", memberEpoch: 0, subscribedTopicNames: ["later"]))
            #expect(joined.error == nil)
            _ = broker.shares.updateSession(
                group: "g", member: "w1", epoch: 0, add: [tp], forget: [], acknowledgements: [:], allowRenew: false,
                view: broker.shareLogView)
            return broker
        }
        do {
            let broker = try await Broker.open(dataDirectory: dir.path)
            try await broker.createTopic("later", partitions: 1)
            try await broker.close()
        }
        do {
            let broker = try await open()
            try await Self.append(broker, "later", key: nil, value: "in-an-hour", deliverAt: now + 3_600_000)
            try await Self.append(broker, "later", key: nil, value: "now")
            let got = broker.shares.acquire(group: "g", member: "w1", partitions: [tp], maxRecords: 10, view: broker.shareLogView)
            #expect(got.first?.offsets == [1])
            try await broker.close()
        }
        let broker = try await open(readingAtOpen: false)
        let log = broker.dataDirectory + "/later-0/00000000000000000000.log"
        try dropFromPageCache(log)
        StorageFaults.inject(.readNoWait, .resourceTemporarilyUnavailable, pathContains: log, times: nil)
        var wouldBlock = false
        let declined = broker.shares.acquire(
            group: "g", member: "w1", partitions: [tp], maxRecords: 10, view: broker.shareLogViewWithoutBlocking,
            wouldBlock: &wouldBlock)
        #expect(declined.isEmpty && wouldBlock)
        StorageFaults.clear(pathContains: log)
        let got = broker.shares.acquire(group: "g", member: "w1", partitions: [tp], maxRecords: 10, view: broker.shareLogView)
        #expect(got.first?.offsets == [1], "the delayed job stays delayed")
        try await broker.close()
    }

    @Test func delayedJobsWaitAndTenThousandFarFutureJobsDoNotStopImmediateOnes() async throws {
        let dir = TemporaryDirectory()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        var far = RecordBatchBuilder()
        for i in 0..<10_000 {
            far.append(timestamp: 0, key: nil, value: Array("later-\(i)".utf8),
                       headers: [RecordHeader(key: Broker.deliverAtHeader, value: Array("\(now + 3_600_000)".utf8))])
            if far.count == 1_000 {
                _ = try await broker.append(topic: "jobs", partition: 0, batches: try far.build())
                far = RecordBatchBuilder()
            }
        }
        let due = Int64(Date().timeIntervalSince1970 * 1000) + 2_000
        try await Self.append(broker, "jobs", key: nil, value: "soon", deliverAt: due)
        for i in 0..<5 { try await Self.append(broker, "jobs", key: nil, value: "now-\(i)") }
        let worker = try await ShareConsumer(broker: broker, group: "g", topics: ["jobs"], mode: .explicit)
        var delivered: [(String, Int64)] = []
        let started = ContinuousClock.now
        while !delivered.contains(where: { $0.0 == "soon" }) && ContinuousClock.now - started < .seconds(30) {
            for job in try await worker.poll(timeout: .milliseconds(200)) {
                delivered.append((Self.values([job])[0], Int64(Date().timeIntervalSince1970 * 1000)))
                worker.acknowledge(job, .accept)
            }
            try await worker.commit()
        }
        // The immediate ones are not held back by 10,000 far-future records, nor by "soon".
        #expect(Set(delivered.map(\.0)) == Set(["soon"] + (0..<5).map { "now-\($0)" }))
        let soonAt = try #require(delivered.first { $0.0 == "soon" }).1
        #expect(soonAt >= due)
        #expect(delivered.filter { $0.0.hasPrefix("now-") }.allSatisfy { $0.1 < due || $0.1 <= soonAt })
        let summary = try #require(broker.shares.summaries("g", view: broker.shareLogView).first)
        #expect(summary.startOffset == 0 && summary.available == 0 && summary.delayed == 10_000)  // the far-future ones wait
        try await worker.close()
        try await broker.close()
    }
}

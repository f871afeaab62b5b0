import Foundation
import TestSupport
import Testing
import TidemarkStorage
@testable import Tidemark

/// When share state reaches the share-state log: acknowledgements, releases and expiries at
/// once (before they are answered); acquisitions (delivery counts) with the partition's next
/// snapshot or the next maintenance pass, so a worker taking one job at a time costs one
/// snapshot per job, not two. Crash images are copies of the data directory taken while the
/// broker runs (what a kill -9 leaves: everything in the page cache).
@Suite struct ShareStateWriteTests {
    static let tp = TopicPartition("jobs", 0)

    /// A broker whose maintenance never runs by itself (the test calls `tick`).
    static func open(_ path: String) async throws -> Broker {
        try await Broker.open(dataDirectory: path, options: options(maintenanceMs: 3_600_000))
    }

    static func session(_ broker: Broker, _ member: String) {
        _ = broker.shareGroupHeartbeat(ShareHeartbeat(groupId: "workers", memberId: member, memberEpoch: 0, subscribedTopicNames: ["jobs"]))
        _ = broker.shares.updateSession(
            group: "workers", member: member, epoch: 0, add: [tp], forget: [], acknowledgements: [:], allowRenew: false,
            view: broker.shareLogView)
    }

    static func acquireOne(_ broker: Broker, _ member: String) -> AcquiredRange? {
        broker.shares.acquire(group: "workers", member: member, partitions: [tp], maxRecords: 1, view: broker.shareLogView)
            .first?.ranges.first
    }

    /// A broker with `jobs` jobs and worker w1's session open; `start`: the share-state log's end then.
    static func withJobs(_ jobs: Int) async throws -> (dir: TemporaryDirectory, broker: Broker, start: Int64) {
        let dir = TemporaryDirectory()
        let broker = try await open(dir.path)
        try await broker.createTopic("jobs", partitions: 1)
        try await ShareCoordinatorTests.produce(broker, "jobs", count: jobs)
        session(broker, "w1")
        return (dir, broker, written(broker))
    }

    /// Snapshot records in the share-state log so far.
    static func written(_ broker: Broker) -> Int64 { broker.shares.store.partition.log.logEndOffset }

    /// The first job a new worker gets from a crash image of `dir`.
    static func firstJobAfterACrash(_ dir: TemporaryDirectory) async throws -> AcquiredRange? {
        let image = TemporaryDirectory()
        try FileManager.default.removeItem(atPath: image.path)
        try FileManager.default.copyItem(atPath: dir.path, toPath: image.path)
        let broker = try await open(image.path)
        session(broker, "after-crash")
        let first = acquireOne(broker, "after-crash")
        try await broker.close()
        return first
    }

    @Test func acquisitionsAreWrittenWithTheNextSnapshotOrMaintenancePass() async throws {
        let (dir, broker, start) = try await Self.withJobs(4)

        // A fetch alone writes nothing: a crash now gives job 0 back as a first delivery.
        #expect(Self.acquireOne(broker, "w1") == AcquiredRange(first: 0, last: 0, deliveryCount: 1))
        #expect(Self.written(broker) == start)
        #expect(try await Self.firstJobAfterACrash(dir) == AcquiredRange(first: 0, last: 0, deliveryCount: 1))

        // Its acknowledgement is one snapshot, acquisition included.
        let acked = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 1, add: [], forget: [],
            acknowledgements: [Self.tp: [ShareAcknowledgement(first: 0, last: 0, types: [.accept])]], allowRenew: false,
            view: broker.shareLogView)
        #expect(acked.acknowledged[Self.tp] == .some(nil))
        #expect(Self.written(broker) == start + 1)

        // Job 1 held: the maintenance pass writes the slot, once. A held record is written as
        // it was before its delivery: the delivery a crash cuts is not counted (as after a
        // clean stop, and in Kafka), so the job comes back with that delivery's count.
        #expect(Self.acquireOne(broker, "w1") == AcquiredRange(first: 1, last: 1, deliveryCount: 1))
        #expect(Self.written(broker) == start + 1)
        await broker.shares.tick()
        #expect(Self.written(broker) == start + 2)
        await broker.shares.tick()
        #expect(Self.written(broker) == start + 2, "a pass with nothing new wrote again")
        #expect(try await Self.firstJobAfterACrash(dir) == AcquiredRange(first: 1, last: 1, deliveryCount: 1))

        // Job 2 acquired by another worker, then the broker closes: both come back uncounted.
        Self.session(broker, "w2")
        #expect(Self.acquireOne(broker, "w2") == AcquiredRange(first: 2, last: 2, deliveryCount: 1))
        try await broker.close()
        let reopened = try await Self.open(dir.path)
        Self.session(reopened, "w3")
        let again = reopened.shares.acquire(
            group: "workers", member: "w3", partitions: [Self.tp], maxRecords: 10, view: reopened.shareLogView)
        #expect(again.first?.ranges == [AcquiredRange(first: 1, last: 3, deliveryCount: 1)])
        try await reopened.close()
    }

    /// Releases are written before they are answered, like acceptances: a job given back
    /// keeps its delivery count through a crash.
    @Test func aReleaseIsWrittenAtOnce() async throws {
        let (dir, broker, start) = try await Self.withJobs(1)
        #expect(Self.acquireOne(broker, "w1")?.deliveryCount == 1)
        let released = broker.shares.updateSession(
            group: "workers", member: "w1", epoch: 1, add: [], forget: [],
            acknowledgements: [Self.tp: [ShareAcknowledgement(first: 0, last: 0, types: [.release])]], allowRenew: false,
            view: broker.shareLogView)
        #expect(released.acknowledged[Self.tp] == .some(nil))
        #expect(Self.written(broker) == start + 1)
        #expect(try await Self.firstJobAfterACrash(dir) == AcquiredRange(first: 0, last: 0, deliveryCount: 2))
        try await broker.close()
    }
}

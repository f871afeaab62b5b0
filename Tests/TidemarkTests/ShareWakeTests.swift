import Synchronization
import TestSupport
import Testing
import TidemarkStorage

@testable import Tidemark

/// Which waiting share poll an append wakes (`ShareWake`, `AppendNotifier`).
@Suite struct ShareWakeTests {
    /// What one share watch saw: woken, or told.
    final class Seen: Sendable {
        let woken = Atomic<Int>(0)
        let told = Atomic<Int>(0)
    }

    static func watch(_ broker: Broker, local: Bool, _ seen: Seen) throws -> AppendWatch? {
        let end = try broker.offsets(topic: "jobs", partition: 0).end
        let share = ShareWake(
            group: "workers", isWaiting: { true }, isLocal: { local },
            appended: { _ in seen.told.add(1, ordering: .relaxed) })
        return broker.watchAppends(topic: "jobs", partition: 0, beyond: end, share: share) {
            seen.woken.add(1, ordering: .relaxed)
        }
    }

    /// A poll on the appender's own thread (its event loop's) gets the job before polls
    /// registered earlier elsewhere: the job goes out in the appender's pass, with no other
    /// thread woken. Polls in the same place keep their registration order, and a pass-on goes
    /// the same way.
    @Test func anAppendWakesThePollOnItsOwnThreadFirst() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path, options: options())
        try await broker.createTopic("jobs", partitions: 1)
        let (remote, local, laterLocal) = (Seen(), Seen(), Seen())
        let watches = [
            try Self.watch(broker, local: false, remote), try Self.watch(broker, local: true, local),
            try Self.watch(broker, local: true, laterLocal),
        ]
        #expect(watches.allSatisfy { $0 != nil })

        try await ShareCoordinatorTests.produce(broker, "jobs", count: 1)
        #expect(local.woken.load(ordering: .relaxed) == 1)
        #expect(remote.woken.load(ordering: .relaxed) == 0 && remote.told.load(ordering: .relaxed) == 1)
        #expect(laterLocal.woken.load(ordering: .relaxed) == 0 && laterLocal.told.load(ordering: .relaxed) == 1)

        // Passed on: the other local poll, though the remote one was registered before it.
        broker.passShareWake(topic: "jobs", partition: 0, group: "workers")
        #expect(laterLocal.woken.load(ordering: .relaxed) == 1)
        #expect(remote.woken.load(ordering: .relaxed) == 0)
        // No local poll left: the remote one.
        broker.passShareWake(topic: "jobs", partition: 0, group: "workers")
        #expect(remote.woken.load(ordering: .relaxed) == 1)
        try await broker.close()
    }
}

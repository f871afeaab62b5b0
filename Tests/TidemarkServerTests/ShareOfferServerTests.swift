import Foundation
import TestSupport
import Testing
@testable import Tidemark
import TidemarkServer
import TidemarkStorage
import TidemarkWire

/// Records that come back without an append (released, or held by a worker whose connection
/// closed) go at once to a worker whose long poll is waiting: its watch is woken
/// (`Broker.offerShareRecords`), not its timer (which looked again only every 200 ms: a
/// released job was redelivered 140-150 ms later).
extension ServerTests {
    @Suite(.serialized) struct ShareOfferTests {
        /// Worker 1 holds job 0; worker 2 waits. When the job comes back, worker 2's poll
        /// answers with it, woken through its watch: a woken watch is made anew (one more
        /// registration), a timer wake makes none. Returns how long the answer took.
        static func handedOn(
            _ server: KafkaServer, topic: String, giveBack: (_ worker1: RawClient, _ topicId: WireUUID) async throws -> Void
        ) async throws -> Duration {
            let (first, topicId, notifiers) = try await ServerTests.watchedTopic(server, topic, partitions: 1)
            let second = try RawClient(port: server.boundPort)
            try await ServerTests.joinShareGroup(second, topic: topic, member: "worker-2")
            var job = RecordBatchBuilder()
            job.append(timestamp: 1000, key: nil, value: Array("job".utf8))
            _ = try await server.broker.append(topic: topic, partition: 0, batches: try job.build())
            let taken = try await ServerTests.shareFetch(first, topicId: topicId, epoch: 0, correlation: 10)
            #expect(taken.responses.flatMap(\.partitions).flatMap(\.acquiredRecords).map(\.firstOffset) == [0])

            try ServerTests.sendShareFetch(second, topicId: topicId, epoch: 0, correlation: 20, member: "worker-2", maxWaitMs: 5_000)
            let notifier = notifiers[0]
            let deadline = ContinuousClock.now + .seconds(5)
            while notifier.waiterCount != 2 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
            #expect(notifier.waiterCount == 2)  // worker 1's kept watch, worker 2's waiting one
            try await Task.sleep(for: .milliseconds(50))
            let registered = notifier.registrations
            let started = ContinuousClock.now
            try await giveBack(first, topicId)
            let (c, body) = try #require(await second.response())
            let took = ContinuousClock.now - started
            #expect(c == 20)
            let answer = try ShareFetchResponse.decode(body, from: 1, version: 1, flexible: true)
            let acquired = answer.responses.flatMap(\.partitions).flatMap(\.acquiredRecords)
            #expect(acquired.map { [$0.firstOffset, Int64($0.deliveryCount)] } == [[0, 2]])
            #expect(notifier.registrations == registered + 1, "woken through its watch, not by its timer")
            return took
        }

        @Test func aReleasedJobGoesAtOnceToAWorkerAlreadyWaiting() async throws {
            try await ServerTests.withServer { server in
                let took = try await Self.handedOn(server, topic: "released") { worker1, topicId in
                    let response = try await ServerTests.acknowledge(worker1, topicId: topicId, 0, type: 2, epoch: 1, correlation: 11)
                    #expect(response.errorCode == 0)
                    #expect(response.responses.flatMap(\.partitions).map(\.errorCode) == [0])
                }
                #expect(took < .seconds(1), "\(took)")
            }
        }

        /// A worker killed mid-job: its connection closes, its session with it, and the job
        /// goes to the waiting worker (not when its lock runs out, nor at that worker's timer).
        @Test func aKilledWorkersJobGoesAtOnceToAWorkerAlreadyWaiting() async throws {
            try await ServerTests.withServer { server in
                let took = try await Self.handedOn(server, topic: "killed") { worker1, _ in
                    shutdown(worker1.fd, Int32(SHUT_RDWR))
                }
                #expect(took < .seconds(1), "\(took)")
            }
        }

        /// A worker whose connection closes while its ShareFetch long-polls: the poll ends then,
        /// with its timer and its frame's request memory (it woke every 200 ms and held them
        /// until max_wait, although its session had closed and it could take nothing).
        @Test func aClosedConnectionEndsItsShareLongPoll() async throws {
            try await ServerTests.withServer { server in
                let (client, topicId, notifiers) = try await ServerTests.watchedTopic(server, "idle", partitions: 1)
                try ServerTests.sendShareFetch(client, topicId: topicId, epoch: 0, correlation: 2, maxWaitMs: 20_000)
                let parked = ContinuousClock.now + .seconds(5)
                while notifiers[0].waiterCount == 0 && ContinuousClock.now < parked { try await Task.sleep(for: .milliseconds(5)) }
                try await Task.sleep(for: .milliseconds(300))
                #expect(server.queuedRequestBytes > 0, "the poll holds its frame while it waits")
                client.shutdownBoth()
                let released = ContinuousClock.now + .seconds(3)
                while (server.queuedRequestBytes > 0 || notifiers[0].waiterCount > 0) && ContinuousClock.now < released {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(server.queuedRequestBytes == 0)
                #expect(notifiers[0].waiterCount == 0)
            }
        }
    }
}

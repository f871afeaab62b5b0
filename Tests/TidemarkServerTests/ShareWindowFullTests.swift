import Foundation
import TestSupport
import Testing
@testable import Tidemark
import TidemarkServer
import TidemarkStorage
import TidemarkWire

/// A share window with every record lock in flight takes no appended record: appends do not
/// wake the workers waiting behind it (each woken poll took nothing: ~10-15 us of server CPU an
/// append, producers ~25% slower), and an acknowledgement that frees a lock does.
extension ServerTests {
    /// Worker 1 holds the window's 100 locks (`share.partition.max.record.locks=100`), 20 jobs
    /// wait past it, worker 2 long-polls. 20 more appends wake no poll (a woken poll makes its
    /// watch anew: the registrations would grow). Worker 1 accepts one job (not the window's
    /// first: its start stays, a lock is free all the same): worker 2's poll is
    /// woken by that (its watch fired and was made anew; a timer wake would have left it) and
    /// gets the next job.
    @Test func appendsDoNotWakeWorkersWaitingBehindAFullWindow() async throws {
        try await Self.withServer { server in
            let broker = server.broker
            try await broker.alterGroupConfig("workers", changes: [.set("share.partition.max.record.locks", "100")])
            let (first, topicId, notifiers) = try await Self.watchedTopic(server, "full", partitions: 1)
            let notifier = notifiers[0]
            func append(_ count: Int) async throws {
                var jobs = RecordBatchBuilder()
                for i in 0..<count { jobs.append(timestamp: 1000, key: nil, value: Array("job-\(i)".utf8)) }
                _ = try await broker.append(topic: "full", partition: 0, batches: try jobs.build())
            }
            func taken(_ response: ShareFetchResponse) -> [Int64] {
                response.responses.flatMap(\.partitions).flatMap(\.acquiredRecords).flatMap { Array($0.firstOffset...$0.lastOffset) }
            }
            func answer(_ client: RawClient, _ correlation: Int32) async throws -> [Int64] {
                let (c, body) = try #require(await client.response())
                #expect(c == correlation)
                return taken(try ShareFetchResponse.decode(body, from: 1, version: 1, flexible: true))
            }
            try await append(120)
            #expect(taken(try await Self.shareFetch(first, topicId: topicId, maxRecords: 100, epoch: 0, correlation: 10)) == Array(0..<100))

            let second = try RawClient(port: server.boundPort)
            try await Self.joinShareGroup(second, topic: "full", member: "worker-2")
            try Self.sendShareFetch(second, topicId: topicId, maxRecords: 10, epoch: 0, correlation: 20, member: "worker-2", maxWaitMs: 8_000)
            let deadline = ContinuousClock.now + .seconds(5)
            while !notifier.isShareWindowClosed(group: "workers") && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(notifier.isShareWindowClosed(group: "workers"))
            try await Task.sleep(for: .milliseconds(100))
            let registered = notifier.registrations
            for _ in 0..<20 { try await append(1) }
            try await Task.sleep(for: .milliseconds(300))
            #expect(notifier.registrations == registered)
            #expect(notifier.waiterCount == 2)

            let accepted = try await Self.acknowledge(first, topicId: topicId, 50, type: 1, epoch: 1, correlation: 11)
            #expect(accepted.errorCode == 0)
            #expect(try await answer(second, 20) == [100])
            // Woken: its watch fired and was made anew (a timer wake leaves it as it is).
            #expect(notifier.registrations == registered + 1)
        }
    }
}

import Foundation
import NIOCore
import NIOPosix
import TestSupport
import Testing
@testable import Tidemark
@testable import TidemarkServer

/// A kept share session's watches (`ShareSessionWatches`), on their event loop.
@Suite struct ShareSessionWatchesTests {
    /// A topic deleted under a kept session: its partitions' watches fire (their notifiers
    /// close), and made anew they cannot be (the topic is gone), so they wait to be tried
    /// again. The session's list, changed by the deletion, drops them: they were tried again,
    /// and failed, at every fetch (a client's forget names the topic by an id no longer known).
    @Test func aChangedListDropsThePartitionsNoLongerInIt() async throws {
        let dir = TemporaryDirectory()
        let broker = try await Broker.open(dataDirectory: dir.path)
        try await broker.createTopic("gone", partitions: 2)
        try await broker.createTopic("stays", partitions: 1)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let all = [TopicPartition("gone", 0), TopicPartition("gone", 1), TopicPartition("stays", 0)]
        let watches = try await loop.submit {
            let watches = ShareSessionWatches(broker: broker, loop: loop, group: "workers")
            watches.sync(SessionPartitions(all, walksAll: true))
            return NIOLoopBound(watches, eventLoop: loop)
        }.get()
        try await broker.deleteTopic("gone")
        let deadline = ContinuousClock.now + .seconds(5)
        while try await !loop.submit({ watches.value.hasFired }).get() && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        let (unwatched, left) = try await loop.submit {
            #expect(Set(watches.value.rewatchFired()) == Set(all.prefix(2)))
            let unwatched = watches.value.retryUnwatched()
            watches.value.sync(SessionPartitions([TopicPartition("stays", 0)], walksAll: true))
            return (unwatched, watches.value.retryUnwatched())
        }.get()
        #expect(Set(unwatched) == Set(all.prefix(2)))
        #expect(left.isEmpty)
        try await loop.submit { watches.value.close() }.get()
        try await broker.close()
    }
}

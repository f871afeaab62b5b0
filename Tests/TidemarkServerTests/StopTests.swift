import Foundation
import TestSupport
import Testing
@testable import Tidemark
import TidemarkServer
import TidemarkStorage
import TidemarkWire

/// `KafkaServer.stop`: what a stop does to the clients connected.
extension ServerTests {
    @Suite(.serialized) struct StopTests {
        /// Long polls waiting when the server stops (two fetches, a share fetch) are answered at
        /// once, every connection is closed by the stop itself, and the stop does not sit out
        /// its grace period. (A woken poll found nothing new, watched again and waited for its
        /// deadline: the stop took the whole grace, here 20 s.)
        @Test func aStopAnswersWaitingLongPollsAtOnce() async throws {
            let dir = TemporaryDirectory()
            let broker = try await Broker.open(dataDirectory: dir.path)
            var config = ServerConfig()
            config.port = 0
            config.eventLoops = 2
            let server = try await KafkaServer.start(broker: broker, config: config)
            do {
                let (worker, topicId, notifiers) = try await ServerTests.watchedTopic(server, "quiet", partitions: 1)
                try ServerTests.sendShareFetch(worker, topicId: topicId, epoch: 0, correlation: 5, maxWaitMs: 30_000)
                // Two more connections, one on each loop.
                let pollers = try (0..<2).map { _ in try RawClient(port: server.boundPort) }
                for (i, poller) in pollers.enumerated() {
                    try poller.request(
                        .fetch, version: 11, correlation: Int32(10 + i), ResourceBoundTests.fetch("quiet", [(0, 0)], maxWaitMs: 30_000))
                }
                // All three wait (nothing to read).
                let waiting = ContinuousClock.now + .seconds(60)
                while notifiers[0].waiterCount < 3 && ContinuousClock.now < waiting {
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(notifiers[0].waiterCount == 3)
                #expect(server.openConnections == 3)
                let started = ContinuousClock.now
                await server.drain(graceMs: 20_000)
                let took = ContinuousClock.now - started
                #expect(took < .seconds(10), "the stop took \(took)")
                #expect(server.openConnections == 0)
                #expect(notifiers[0].waiterCount == 0)
                // Each step runs once; a second call waits for the first (a stop that returned
                // at once let its caller close the broker under a running drain).
                async let loops: Void = server.shutdownLoops()
                async let again: Void = server.stop()
                _ = await (loops, again)

                let (correlation, body) = try #require(await worker.response(), "the share poll was not answered")
                #expect(correlation == 5)
                let shared = try ShareFetchResponse.decode(body, from: 1, version: 1, flexible: true)
                #expect(shared.errorCode == 0)
                #expect(await worker.closedWithoutAnswer())
                for (i, poller) in pollers.enumerated() {
                    let (correlation, body) = try #require(await poller.response(), "poll \(i) was not answered")
                    #expect(correlation == Int32(10 + i))
                    let answer = try FetchResponse.decode(body, version: 11, flexible: false)
                    #expect(answer.topics.first?.partitions.first?.errorCode == 0)
                    #expect(await poller.closedWithoutAnswer())
                }
            } catch {
                await server.stop()
                try await broker.close()
                throw error
            }
            try await broker.close()
        }

        /// A large answer that a slow reader has not taken yet when the server stops reaches it
        /// whole, then the connection closes. (The stop closed the connection at once, and NIO
        /// threw away what the socket had not taken: the client got the first megabytes of a
        /// 24 MB answer, then the close.)
        @Test func aStopLetsALargeAnswerReachASlowReader() async throws {
            let dir = TemporaryDirectory()
            let broker = try await Broker.open(dataDirectory: dir.path)
            var config = ServerConfig()
            config.port = 0
            let server = try await KafkaServer.start(broker: broker, config: config)
            do {
                try await broker.createTopic("big", partitions: 1)
                try await ResourceBoundTests.fill(broker, "big", partitions: 1, batches: 24, bytes: 1_000_000)
                let reader = try RawClient(port: server.boundPort, receiveBuffer: 4096)
                try reader.request(
                    .fetch, version: 11, correlation: 7, ResourceBoundTests.fetch("big", [(0, 0)], partitionMaxBytes: 40 << 20))
                // The answer has started (its size came); most of it waits in the server.
                let prefix = try #require(await reader.receiveOffLoop(4))
                let size = Int(Int32(bigEndian: prefix.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
                #expect(size > 24_000_000)
                let started = ContinuousClock.now
                async let drained: Void = server.drain(graceMs: 20_000)
                let rest = await reader.receiveOffLoop(size)
                #expect(rest?.count == size, "the answer was cut")
                if let rest {
                    #expect(Int32(bigEndian: rest.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }) == 7)
                }
                // Then its end (the client did not close: the stop closes it a second later).
                #expect(await reader.closedWithoutAnswer())
                await drained
                let took = ContinuousClock.now - started
                #expect(took < .seconds(10), "the stop took \(took)")
                #expect(server.openConnections == 0)
                await server.stop()
            } catch {
                await server.stop()
                try await broker.close()
                throw error
            }
            try await broker.close()
        }

        /// A connection whose reads were held when the server stopped (its read-ahead full:
        /// 128 requests behind a long poll) still sees its client's close at once: the stop
        /// drops the queued requests but does not resume reads, and NIO reads the end (the
        /// socket's hang-up event) whether reads are held or not. Were it not seen, the stop would
        /// close the connection a second after its end, every time.
        @Test func aStopSeesTheCloseOfAClientWhoseReadsWereHeld() async throws {
            let dir = TemporaryDirectory()
            let broker = try await Broker.open(dataDirectory: dir.path)
            var config = ServerConfig()
            config.port = 0
            let server = try await KafkaServer.start(broker: broker, config: config)
            do {
                try await broker.createTopic("quiet", partitions: 1)
                let notifier = try broker.partitionState("quiet", 0).notifier
                let client = try RawClient(port: server.boundPort)
                try client.request(.fetch, version: 11, correlation: 1, ResourceBoundTests.fetch("quiet", [(0, 0)], maxWaitMs: 30_000))
                let waiting = ContinuousClock.now + .seconds(60)
                while notifier.waiterCount < 1 && ContinuousClock.now < waiting {
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(notifier.waiterCount == 1)
                // Past the read-ahead bound: the connection stops reading.
                let more = RawClient.framed(try RawClient.payload(.apiVersions, version: 0, correlation: 2, ApiVersionsRequest()))
                client.send(Array([[UInt8]](repeating: more, count: 200).joined()))
                try await Task.sleep(for: .milliseconds(200))
                let started = ContinuousClock.now
                async let drained: Void = server.drain(graceMs: 20_000)
                // The poll is answered; the requests queued behind it are dropped, then the end.
                let (correlation, _) = try #require(await client.response(), "the poll was not answered")
                #expect(correlation == 1)
                #expect(await client.closedWithoutAnswer())
                client.shutdownBoth()
                await drained
                let took = ContinuousClock.now - started
                // Not the one-second bound on a connection whose client keeps it open.
                #expect(took < .milliseconds(900), "the stop took \(took)")
                #expect(server.openConnections == 0)
                await server.stop()
            } catch {
                await server.stop()
                try await broker.close()
                throw error
            }
            try await broker.close()
        }
    }
}

import Foundation
import Synchronization
import TestSupport
@testable import Tidemark
import TidemarkStorage

/// A clock the test moves by hand (ms since the epoch).
final class TestClock: Sendable {
    let now: Mutex<Int64>
    init(_ start: Int64 = 1_800_000_000_000) { now = Mutex(start) }
    func advance(_ ms: Int64) { now.withLock { $0 += ms } }
    var read: @Sendable () -> Int64 { { [self] in now.withLock { $0 } } }
}

func options(clock: TestClock? = nil, maintenanceMs: Int64 = 50) -> BrokerOptions {
    var options = BrokerOptions()
    options.maintenanceIntervalMs = maintenanceMs
    options.groups.minSessionTimeoutMs = 100
    if let clock { options.clock = clock.read }
    return options
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
func text(_ bytes: [UInt8]?) -> String { String(decoding: bytes ?? [], as: UTF8.self) }

/// One idempotent batch as a Kafka producer would send it.
func idempotentBatch(producerId: Int64, epoch: Int16, sequence: Int32, values: [String]) throws -> [UInt8] {
    var builder = RecordBatchBuilder(producerId: producerId, producerEpoch: epoch, baseSequence: sequence)
    for value in values { builder.append(timestamp: 1_700_000_000_000, key: nil, value: bytes(value)) }
    return try builder.build()
}

/// Every record of a partition, from the start.
func readPartition(_ broker: Broker, _ topic: String, _ partition: Int) async throws -> [ConsumerRecord] {
    let consumer = Consumer(broker: broker)
    try await consumer.assign(topic: topic, partition: partition, from: .earliest)
    var all: [ConsumerRecord] = []
    while true {
        let batch = try await consumer.poll(maxRecords: 10_000, maxWaitMs: 0)
        if batch.isEmpty { return all }
        all += batch
    }
}

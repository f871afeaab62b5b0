import Synchronization

/// The share coordinator's side of dead letters: which partitions have records to copy to
/// their group's dead-letter topic, with which producer id, and which copies are done
/// (`Broker.writeDeadLetters` does the copying). Each change is written to the share state.
extension ShareCoordinator {
    /// One partition's dead letters waiting to be written.
    public struct PendingDeadLetters: Sendable {
        public var group: String
        public var topicPartition: TopicPartition
        public var producerId: Int64
        public var letters: [DeadLetter]
    }

    public func pendingDeadLetters() -> [PendingDeadLetters] {
        state.withLock { s in
            s.slots.compactMap { key, slot in
                slot.state.deadLetters.isEmpty
                    ? nil
                    : PendingDeadLetters(
                        group: key.group, topicPartition: key.topicPartition, producerId: slot.state.deadLetterProducerId,
                        letters: slot.state.deadLetters)
            }.sorted { ($0.group, $0.topicPartition.topic, $0.topicPartition.partition) < ($1.group, $1.topicPartition.topic, $1.topicPartition.partition) }
        }
    }

    /// Records (durably) the producer id a partition's dead letters are written with;
    /// `restart` numbers the pending ones again from 0 (a new id after the old was forgotten).
    public func assignDeadLetterProducer(group: String, _ tp: TopicPartition, producerId: Int64, restart: Bool) async throws {
        let durableAt = try state.withLock { s -> Int64? in
            let key = PartitionKey(group: group, topicPartition: tp)
            guard var slot = s.slots[key] else { return nil }
            if restart { slot.state.restartDeadLetters(producerId: producerId) } else { slot.state.deadLetterProducerId = producerId }
            s.slots[key] = slot
            return try writeSlots([key], &s)
        }
        if let durableAt { try await waitDurable(durableAt) }
    }

    /// The dead letters with these sequences are in the dead-letter topic.
    public func deadLettersWritten(group: String, _ tp: TopicPartition, sequences: Set<Int32>) {
        state.withLock { s in
            let key = PartitionKey(group: group, topicPartition: tp)
            guard s.slots[key] != nil else { return }
            s.slots[key]!.state.deadLettersWritten(sequences)  // in place: a copy would copy the window
            write([key], &s)
        }
    }

    /// Forgets every dead letter waiting in `group`'s partitions: its dead-letter topic was
    /// unset meanwhile, so nobody wants them copied (they waited for ever, written whole into
    /// every share-state change of their partition).
    func dropDeadLetters(group: String) {
        state.withLock { s in
            let keys = s.slots.keys.filter { $0.group == group && !s.slots[$0]!.state.deadLetters.isEmpty }
            for key in keys { s.slots[key]!.state.dropDeadLetters() }
            if !keys.isEmpty { write(keys, &s) }
        }
    }
}

/// Lets one pass run at a time: `enter` waits for a running pass to end (a caller that must
/// see its own pass: `Broker.writeDeadLetters()`), `tryEnter` gives up at once (one that only
/// asks for a pass, after each acknowledgement that made dead letters: a running pass, or the
/// maintenance pass a second later, writes them). Waiting callers are the public API's.
///
/// Concurrency: the mutex owns whether a pass runs and the callers waiting, resumed one at a
/// time in order by `leave`.
final class PassGate: Sendable {
    private struct State {
        var running = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func tryEnter() -> Bool {
        state.withLock { s in
            if s.running { return false }
            s.running = true
            return true
        }
    }

    func enter() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if !s.running {
                    s.running = true
                    return true
                }
                s.waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    /// Ends a pass: the next waiter's begins (the gate stays taken), or the gate opens.
    func leave() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty {
                s.running = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}

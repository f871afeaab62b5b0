import Foundation
import Synchronization

extension Broker {
    /// Where this broker's partitions are, for share partitions (internal topics excluded).
    public var shareLogView: ShareLogView {
        ShareLogView(
            topicId: { [self] name in isInternalTopic(name) ? nil : try? topicId(of: name) },
            bounds: { [self] topic, partition in isInternalTopic(topic) ? nil : try? offsets(topic: topic, partition: partition) })
    }

    /// ShareGroupHeartbeat over this broker's topics. A group id that a classic or consumer
    /// group with members uses is refused (GROUP_ID_NOT_FOUND), as Kafka does.
    public func shareGroupHeartbeat(_ request: ShareHeartbeat) -> ConsumerHeartbeatResult {
        if let type = groups.groupType(request.groupId), groups.hasMembers(request.groupId) {
            return .failure(
                .groupIdNotFound, "group \(request.groupId) is a \(type.rawValue.lowercased()) group, not a share group",
                memberId: request.memberId)
        }
        return shares.heartbeat(
            request,
            catalog: TopicCatalog(
                partitionCount: { [self] name in isInternalTopic(name) ? nil : try? partitionCount(of: name) },
                topicNames: { [self] in listTopics() }))
    }
}

/// Resumes a continuation once, from whichever of several wake-ups comes first, and then
/// cancels the others' registrations.
private final class FirstWake: Sendable {
    private let state: Mutex<(continuation: CheckedContinuation<Void, Never>?, watches: [AppendWatch])>
    init(_ continuation: CheckedContinuation<Void, Never>) { state = Mutex((continuation, [])) }

    func add(_ watch: AppendWatch) {
        let fired = state.withLock { s -> Bool in
            if s.continuation == nil { return true }
            s.watches.append(watch)
            return false
        }
        if fired { watch.cancel() }
    }

    func wake() {
        let (continuation, watches) = state.withLock { s in
            let taken = (s.continuation, s.watches)
            s.continuation = nil
            s.watches = []
            return taken
        }
        for watch in watches { watch.cancel() }
        continuation?.resume()
    }
}

extension Broker {
    /// Waits until one of `partitions` grows past its end as of now, or `timeoutMs` pass
    /// (a share fetch's long poll).
    public func waitForAppends(_ partitions: [TopicPartition], timeoutMs: Int64) async {
        guard timeoutMs > 0, !isClosed else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let first = FirstWake(continuation)
            for tp in partitions {
                guard let (_, end) = try? offsets(topic: tp.topic, partition: tp.partition) else { continue }
                if let watch = watchAppends(topic: tp.topic, partition: tp.partition, beyond: end, { first.wake() }) {
                    first.add(watch)
                }
            }
            Task {
                try? await Task.sleep(for: .milliseconds(timeoutMs))
                first.wake()
            }
        }
    }
}

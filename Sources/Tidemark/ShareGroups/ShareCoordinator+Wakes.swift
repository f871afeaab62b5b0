import Foundation

extension ShareCoordinator {
    /// Whether `group` has records in `tp` that a member could acquire now (ignoring how many
    /// each member may hold: another member may take them). A long poll woken by an append
    /// asks it after its acquire, to pass the wake on (`Broker.passShareWake`) only when the
    /// next poll would find something.
    public func hasAvailable(group: String, _ tp: TopicPartition, view: ShareLogView) -> Bool {
        let now = clock()
        let settings = self.settings(group)
        // Looks only: a group without a window there (deleted meanwhile) gets none made.
        guard let bounds = view.bounds(tp.topic, tp.partition) else { return false }
        return state.withLock { s -> Bool in
            guard var window = s.slots[PartitionKey(group: group, topicPartition: tp)]?.state,
                !window.isCaughtUp(logStart: bounds.start, logEnd: bounds.end)
            else { return false }
            return !window.candidates(max: 1, logEnd: bounds.end, settings: settings, nowMs: now).isEmpty
        }
    }
}

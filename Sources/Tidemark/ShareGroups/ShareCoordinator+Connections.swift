/// Share sessions and the connections that use them.
extension ShareCoordinator {
    /// Removes a share session; what its member still holds in the session's partitions (and in
    /// those it forgot, `Session.heldIn`) goes back (available, or archived at the delivery
    /// limit; with `uncounted`, available with the delivery not counted). Returns the
    /// partitions changed, to write. Under the coordinator's lock.
    func closeSession(_ key: SessionKey, _ session: Session, settings: ShareSettings, uncounted: Bool = false, _ s: inout State)
        -> [PartitionKey]
    {
        var changed: [PartitionKey] = []
        // Its partitions, and those it forgot while holding records there.
        for tp in session.partitions + session.heldIn.subtracting(session.known) {
            let pkey = PartitionKey(group: key.group, topicPartition: tp)
            // In place: a copy of the slot would copy its window.
            if s.slots[pkey]?.state.releaseAll(held: key.member, settings: settings, uncounted: uncounted) ?? 0 > 0 {
                changed.append(pkey)
            }
        }
        s.sessions.removeValue(forKey: key)
        return changed
    }

    /// A client connection closed: the share sessions it used last are closed with it, and
    /// what their members held goes back at once, not when the locks run out (as Kafka does
    /// since 4.1: a worker killed mid-job has its jobs handed out again right away). A session
    /// another connection has used since is left alone. `sessions` are the (group, member)
    /// pairs that connection used. Returns the partitions where records went back (for
    /// `Broker.offerShareRecords`).
    ///
    /// `brokerStopping`: the server closed the connection because it is stopping. The worker
    /// did not fail its jobs, so they go back with the delivery that was cut not counted, and
    /// none is archived or dead-lettered for reaching the limit: a job on its last attempt
    /// is delivered again after the restart, as after a leader change in Kafka (which does
    /// not persist acquisitions). Counted, a rolling restart dead-lettered every job held on
    /// its last attempt, which a kill -9 did not.
    @discardableResult
    public func connectionClosed(_ connection: UInt64, sessions: [(group: String, member: String)], brokerStopping: Bool = false)
        -> [(group: String, topicPartition: TopicPartition)]
    {
        guard !sessions.isEmpty else { return [] }
        var settingsOf: [String: ShareSettings] = [:]
        for (group, _) in sessions where settingsOf[group] == nil { settingsOf[group] = settings(group) }
        return state.withLock { s in
            var changed: [PartitionKey] = []
            for (group, member) in sessions {
                let key = SessionKey(group: group, member: member)
                guard let session = s.sessions[key], session.connection == connection else { continue }
                changed += closeSession(key, session, settings: settingsOf[group]!, uncounted: brokerStopping, &s)
            }
            write(changed, &s)
            return changed.map { ($0.group, $0.topicPartition) }
        }
    }

    /// Of these (group, member) sessions, those `connection` used last (still open).
    public func sessions(usedLastBy connection: UInt64, among sessions: [(group: String, member: String)])
        -> [(group: String, member: String)]
    {
        state.withLock { s in sessions.filter { s.sessions[SessionKey(group: $0.group, member: $0.member)]?.connection == connection } }
    }
}

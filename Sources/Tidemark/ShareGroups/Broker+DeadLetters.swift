import TidemarkStorage

extension Broker {
    /// Copies share groups' pending dead letters to their dead-letter topics (KIP-1191): the
    /// original key, value, headers and timestamp, plus `_dlq.errors.*` headers saying why,
    /// from where and after how many deliveries.
    ///
    /// Exactly once, crashes included: each dead letter's sequence number is fixed and
    /// persisted when its record is archived; the copy is an idempotent append with the
    /// partition's dead-letter producer id and that sequence, marked written in groups after
    /// (at the end of a pass, or every eighth of a long backlog); copies a crash left unmarked
    /// are found in the dead-letter partition's producer state and marked, not copied again.
    ///
    /// The dead-letter topic is created on first use with errors.deadletterqueue.group.enable
    /// =true; an existing topic without it is never written (its letters wait, and the problem
    /// is logged once). One pass runs at a time: this waits for a running one, then makes its
    /// own, so the letters pending when it is called are written (or their problem logged)
    /// when it returns.
    public func writeDeadLetters() async { await writeDeadLetters(marking: true) }

    /// A pass unless one runs (that one, or the maintenance pass a second later, writes what is
    /// pending): after an acknowledgement that made dead letters, and every second.
    public func writeDeadLettersUnlessRunning() async {
        guard shares.deadLetterPasses.tryEnter() else { return }
        await pass(marking: true)
    }

    /// `marking: false` leaves the copies unmarked, as a crash right after the appends would
    /// (tests of the exactly-once copy).
    func writeDeadLetters(marking: Bool) async {
        await shares.deadLetterPasses.enter()
        await pass(marking: marking)
    }

    /// `writeDeadLettersUnlessRunning` after an acknowledgement that left dead letters waiting,
    /// unless a pass met a topic it could not write less than a second ago: letters waiting for
    /// an existing topic not marked as a dead-letter topic (up to 10,000 per partition) were
    /// copied, sorted and tried again after every acknowledgement (231 us a reject, 463 an
    /// accept, with 5,000 waiting). The maintenance pass, each second, tries them again (and
    /// writes meanwhile the letters of other groups, whose topics take them: at most a second
    /// later than at once).
    public func writeDeadLettersAfterAcknowledgement() async { await deadLetterPassAfterAcknowledgement() }

    /// `writeDeadLettersAfterAcknowledgement`; false when the second after a failed pass held
    /// it back.
    @discardableResult
    func deadLetterPassAfterAcknowledgement() async -> Bool {
        let failedAt = shares.deadLetterPassFailedAt.load(ordering: .relaxed)
        if failedAt != 0 && Self.passClockMs() - failedAt < 1_000 { return false }
        await writeDeadLettersUnlessRunning()
        return true
    }

    /// Milliseconds on the monotonic clock (from a fixed origin, never 0).
    static func passClockMs() -> Int64 {
        let elapsed = ContinuousClock.now - passClockOrigin
        return 1 + elapsed.components.seconds * 1_000 + elapsed.components.attoseconds / 1_000_000_000_000_000
    }
    private static let passClockOrigin = ContinuousClock.now

    /// One pass, the gate taken; leaves it.
    private func pass(marking: Bool) async {
        var failed = false
        defer {
            shares.deadLetterPassFailedAt.store(failed ? Self.passClockMs() : 0, ordering: .relaxed)
            shares.deadLetterPasses.leave()
        }
        for pending in shares.pendingDeadLetters() {
            guard let topic = groupConfigs.explicit(pending.group)["errors.deadletterqueue.topic.name"], !topic.isEmpty else {
                shares.dropDeadLetters(group: pending.group)
                continue
            }
            let problem = "\(pending.group) -> \(topic)"
            do {
                try await writeDeadLetters(pending, to: topic, marking: marking)
                if shares.deadLetterProblems.withLock({ $0.remove(problem) != nil }) {
                    options.logger.info("dead letters are written again", metadata: ["group": "\(pending.group)", "topic": "\(topic)"])
                }
            } catch {
                failed = true
                if shares.deadLetterProblems.withLock({ $0.insert(problem).inserted }) {
                    options.logger.error(
                        "dead letters cannot be written; they wait in the share state",
                        metadata: ["group": "\(pending.group)", "topic": "\(topic)", "error": "\(error)"])
                }
            }
        }
    }

    private func writeDeadLetters(_ pending: ShareCoordinator.PendingDeadLetters, to topic: String, marking: Bool) async throws {
        if (try? describeTopic(topic)) == nil {
            var config = options.defaultTopicConfig
            config.deadLetterQueueEnabled = true
            do {
                try await createTopic(
                    topic, partitions: max(1, options.groups.deadLetterTopicPartitions), config: config,
                    overrides: ["errors.deadletterqueue.group.enable"])
                options.logger.info("dead-letter topic created", metadata: ["topic": "\(topic)", "group": "\(pending.group)"])
            } catch let error as TidemarkError where error.code == .topicAlreadyExists {}
        }
        let described = try describeTopic(topic)
        guard described.config.deadLetterQueueEnabled == true else {
            throw TidemarkError(
                .invalidConfig, "topic \(topic) is not a dead-letter topic (errors.deadletterqueue.group.enable is not true)")
        }
        let tp = pending.topicPartition
        var producerId = pending.producerId
        var letters = pending.letters
        if producerId < 0 {
            producerId = try await initProducerId().producerId
            try await shares.assignDeadLetterProducer(group: pending.group, tp, producerId: producerId, restart: false)
        }
        let target = tp.partition % described.partitions.count
        var restarted = false
        var index = 0
        // Copies are marked written in groups, not one by one: each mark rewrites the
        // partition's pending letters in the share state, so marking each of 100,000 letters
        // was quadratic. Copies made but not marked when the broker stopped are recognised by
        // the dead-letter partition's producer state (the last sequence it holds for our
        // producer id; it survives crashes) and only marked. (Appending them again would not
        // do: the producer state remembers only its last five batches as duplicates.)
        var copied = lastCopiedSequence(topic: topic, partition: target, producerId: producerId)
        let syncsSource = syncsEveryAppend(tp.topic)
        if syncsSource && copied >= 0 {
            // Copies found already there (a pass that stopped before marking them) are as
            // durable as new ones before they are marked.
            let dlq = try partitionState(topic, target).log
            try await flusher.durable(dlq, upTo: dlq.logEndOffset)
        }
        var unmarked: Set<Int32> = []
        let markEvery = max(1_000, letters.count / 8)
        defer { if marking && !unmarked.isEmpty { shares.deadLettersWritten(group: pending.group, tp, sequences: unmarked) } }
        while index < letters.count {
            let letter = letters[index]
            if letter.sequence <= copied {
                unmarked.insert(letter.sequence)
                index += 1
                continue
            }
            do {
                let appended: AppendResult
                do {
                    appended = try await append(
                        topic: topic, partition: target,
                        batches: try await deadLetterBatch(letter, group: pending.group, source: tp, producerId: producerId))
                } catch let error as TidemarkError where Self.refusesForGood(error.code) {
                    // The copy does not fit the dead-letter topic (larger than it takes, a
                    // timestamp it refuses): it goes without its payload, so that the letters after
                    // it are not held up for good.
                    appended = try await append(
                        topic: topic, partition: target,
                        batches: try await deadLetterBatch(
                            letter, group: pending.group, source: tp, producerId: producerId, withoutPayload: "\(error.code)"))
                }
                // A job of a topic synced on every append is marked copied only once its copy is
                // as durable: the mark (synced with the next acknowledgement) must not survive a
                // power loss that the copy, in the page cache only, would not.
                if syncsSource {
                    try await flusher.durable(try partitionState(topic, target).log, upTo: appended.lastOffset + 1)
                }
            } catch let error as TidemarkError where error.code == .outOfOrderSequence && !restarted {
                // The broker's producer state no longer matches (it expired): a new producer id,
                // the waiting letters numbered again from 0, once those this pass copied under
                // the old id are marked (else they would be copied again under the new one).
                if marking && !unmarked.isEmpty { shares.deadLettersWritten(group: pending.group, tp, sequences: unmarked) }
                producerId = try await initProducerId().producerId
                try await shares.assignDeadLetterProducer(group: pending.group, tp, producerId: producerId, restart: true)
                unmarked = []
                copied = -1
                letters = shares.pendingDeadLetters().first { $0.group == pending.group && $0.topicPartition == tp }?.letters ?? []
                index = 0
                restarted = true
                continue
            }
            unmarked.insert(letter.sequence)
            if marking && unmarked.count >= markEvery {
                shares.deadLettersWritten(group: pending.group, tp, sequences: unmarked)
                unmarked = []
            }
            index += 1
        }
    }

    /// The last sequence the dead-letter partition holds from `producerId` (-1: none).
    private func lastCopiedSequence(topic: String, partition: Int, producerId: Int64) -> Int32 {
        ((try? producers(topic: topic, partition: partition)) ?? []).first { $0.producerId == producerId }?.lastSequence ?? -1
    }

    /// The dead letter's record: the original record (key, value, headers, timestamp) with the
    /// `_dlq.errors.*` headers; a record no longer in the log (retention) is written with a null
    /// key and value and `_dlq.errors.original.missing: true`.
    /// Refusals an append of the same copy would meet again.
    static func refusesForGood(_ code: TidemarkError.Code) -> Bool {
        [.messageTooLarge, .invalidTimestamp, .corruptMessage, .invalidRecord].contains(code)
    }

    /// `withoutPayload`: the copy carries no key, value or original headers, and says why in
    /// `_dlq.errors.original.unwritable` (and `original.missing`: it cannot be requeued).
    private func deadLetterBatch(
        _ letter: DeadLetter, group: String, source: TopicPartition, producerId: Int64, withoutPayload: String? = nil
    ) async throws -> [UInt8] {
        var original: ConsumerRecord? = nil
        // Missing when the log no longer holds it (retention, a deleted topic) or cannot give
        // it back (a damaged batch); a failure that may pass (no descriptor now) throws: the
        // letter stays pending for the next pass instead of going out without its payload.
        do {
            let fetched = try await fetch(topic: source.topic, partition: source.partition, offset: letter.offset, maxBytes: 1)
            if withoutPayload == nil, let slice = fetched.slice {
                original = try records(in: slice, topic: source.topic, partition: source.partition, from: letter.offset, limit: 1)
                    .first { $0.offset == letter.offset }
            }
        } catch let error where Self.isTransient(error) && (error as? TidemarkError)?.code != .offsetOutOfRange {
            throw error
        } catch {
            original = nil
        }
        var headers = original?.headers ?? []
        func add(_ name: String, _ value: String) { headers.append(RecordHeader(key: name, value: Array(value.utf8))) }
        add("_dlq.errors.disposition", letter.disposition.headerValue)
        add("_dlq.errors.original.topic", source.topic)
        add("_dlq.errors.original.partition", "\(source.partition)")
        add("_dlq.errors.original.offset", "\(letter.offset)")
        add("_dlq.errors.group", group)
        add("_dlq.errors.delivery.count", "\(letter.deliveryCount)")
        if original == nil { add("_dlq.errors.original.missing", "true") }
        if let withoutPayload { add("_dlq.errors.original.unwritable", withoutPayload) }
        var builder = RecordBatchBuilder(producerId: producerId, producerEpoch: 0, baseSequence: letter.sequence)
        builder.append(timestamp: original?.timestamp ?? options.clock(), key: original?.key, value: original?.value, headers: headers)
        return try builder.build()
    }
}

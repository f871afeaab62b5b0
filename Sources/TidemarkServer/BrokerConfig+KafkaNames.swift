// The settings an Apache Kafka 4.1 broker defines (KafkaConfig's ConfigDef, merged from its
// ServerConfigs, KRaftConfigs, SocketServerConfigs, ReplicationConfigs, ServerLogConfigs,
// CleanerConfig, GroupCoordinatorConfig, ShareGroupConfig, ShareCoordinatorConfig, QuorumConfig,
// MetadataLogConfig, TransactionLogConfig, TransactionStateManagerConfig, AddPartitionsToTxnConfig,
// QuotaConfig, MetricConfigs, DelegationTokenManagerConfigs, RemoteLogManagerConfig and
// BrokerSecurityConfigs; 336 names with their types, read from Kafka's 4.1 branch), so that a
// server.properties written for Kafka starts a Tidemark node: a setting here that Tidemark has no
// use for is checked as its type and accepted, and named once in the log; a name in neither
// list is refused as a typo.

extension BrokerConfig {
    /// How Kafka's ConfigDef parses a setting's value (its Type), as far as it is checked here.
    enum KafkaValueKind: Sendable {
        case boolean, short, int, long, double, text
    }

    /// Every broker setting Kafka 4.1 defines, with its type.
    static let kafkaBrokerSettings: [String: KafkaValueKind] = [
        "add.partitions.to.txn.retry.backoff.max.ms": .int, "add.partitions.to.txn.retry.backoff.ms": .int,
        "advertised.listeners": .text, "alter.config.policy.class.name": .text,
        "alter.log.dirs.replication.quota.window.num": .int, "alter.log.dirs.replication.quota.window.size.seconds": .int,
        "authorizer.class.name": .text, "auto.create.topics.enable": .boolean, "auto.leader.rebalance.enable": .boolean,
        "background.threads": .int, "broker.heartbeat.interval.ms": .int, "broker.id": .int, "broker.rack": .text,
        "broker.session.timeout.ms": .int, "client.quota.callback.class": .text, "compression.gzip.level": .int,
        "compression.lz4.level": .int, "compression.type": .text, "compression.zstd.level": .int,
        "connection.failed.authentication.delay.ms": .int, "connections.max.idle.ms": .long, "connections.max.reauth.ms":
        .long, "controlled.shutdown.enable": .boolean, "controller.listener.names": .text,
        "controller.performance.always.log.threshold.ms": .long, "controller.performance.sample.period.ms": .long,
        "controller.quorum.append.linger.ms": .int, "controller.quorum.bootstrap.servers": .text,
        "controller.quorum.election.backoff.max.ms": .int, "controller.quorum.election.timeout.ms": .int,
        "controller.quorum.fetch.timeout.ms": .int, "controller.quorum.request.timeout.ms": .int,
        "controller.quorum.retry.backoff.ms": .int, "controller.quorum.voters": .text, "controller.quota.window.num": .int,
        "controller.quota.window.size.seconds": .int, "controller.socket.timeout.ms": .int,
        "create.topic.policy.class.name": .text, "default.replication.factor": .int,
        "delegation.token.expiry.check.interval.ms": .long, "delegation.token.expiry.time.ms": .long,
        "delegation.token.max.lifetime.ms": .long, "delegation.token.secret.key": .text,
        "delete.records.purgatory.purge.interval.requests": .int, "delete.topic.enable": .boolean, "early.start.listeners":
        .text, "fetch.max.bytes": .int, "fetch.purgatory.purge.interval.requests": .int, "group.consumer.assignors": .text,
        "group.consumer.heartbeat.interval.ms": .int, "group.consumer.max.heartbeat.interval.ms": .int,
        "group.consumer.max.session.timeout.ms": .int, "group.consumer.max.size": .int, "group.consumer.migration.policy":
        .text, "group.consumer.min.heartbeat.interval.ms": .int, "group.consumer.min.session.timeout.ms": .int,
        "group.consumer.regex.refresh.interval.ms": .int, "group.consumer.session.timeout.ms": .int,
        "group.coordinator.append.linger.ms": .int, "group.coordinator.rebalance.protocols": .text,
        "group.coordinator.threads": .int, "group.initial.rebalance.delay.ms": .int, "group.max.session.timeout.ms": .int,
        "group.max.size": .int, "group.min.session.timeout.ms": .int, "group.share.assignors": .text,
        "group.share.delivery.count.limit": .int, "group.share.enable": .boolean, "group.share.heartbeat.interval.ms": .int,
        "group.share.max.heartbeat.interval.ms": .int, "group.share.max.record.lock.duration.ms": .int,
        "group.share.max.session.timeout.ms": .int, "group.share.max.share.sessions": .int, "group.share.max.size": .int,
        "group.share.min.heartbeat.interval.ms": .int, "group.share.min.record.lock.duration.ms": .int,
        "group.share.min.session.timeout.ms": .int, "group.share.partition.max.record.locks": .int,
        "group.share.persister.class.name": .text, "group.share.record.lock.duration.ms": .int,
        "group.share.session.timeout.ms": .int, "group.streams.heartbeat.interval.ms": .int,
        "group.streams.max.heartbeat.interval.ms": .int, "group.streams.max.session.timeout.ms": .int,
        "group.streams.max.size": .int, "group.streams.max.standby.replicas": .int,
        "group.streams.min.heartbeat.interval.ms": .int, "group.streams.min.session.timeout.ms": .int,
        "group.streams.num.standby.replicas": .int, "group.streams.session.timeout.ms": .int,
        "initial.broker.registration.timeout.ms": .int, "inter.broker.listener.name": .text,
        "internal.metadata.delete.delay.millis": .long, "internal.metadata.log.segment.bytes": .int,
        "internal.metadata.max.batch.size.in.bytes": .int, "internal.metadata.max.fetch.size.in.bytes": .int,
        "kafka.metrics.polling.interval.secs": .int, "kafka.metrics.reporters": .text,
        "leader.imbalance.check.interval.seconds": .long, "listener.security.protocol.map": .text, "listeners": .text,
        "log.cleaner.backoff.ms": .long, "log.cleaner.dedupe.buffer.size": .long, "log.cleaner.delete.retention.ms": .long,
        "log.cleaner.enable": .boolean, "log.cleaner.io.buffer.load.factor": .double, "log.cleaner.io.buffer.size": .int,
        "log.cleaner.io.max.bytes.per.second": .double, "log.cleaner.max.compaction.lag.ms": .long,
        "log.cleaner.min.cleanable.ratio": .double, "log.cleaner.min.compaction.lag.ms": .long, "log.cleaner.threads": .int,
        "log.cleanup.policy": .text, "log.dir": .text, "log.dir.failure.timeout.ms": .long, "log.dirs": .text,
        "log.flush.interval.messages": .long, "log.flush.interval.ms": .long, "log.flush.offset.checkpoint.interval.ms":
        .int, "log.flush.scheduler.interval.ms": .long, "log.flush.start.offset.checkpoint.interval.ms": .int,
        "log.index.interval.bytes": .int, "log.index.size.max.bytes": .int, "log.initial.task.delay.ms": .long,
        "log.local.retention.bytes": .long, "log.local.retention.ms": .long, "log.message.timestamp.after.max.ms": .long,
        "log.message.timestamp.before.max.ms": .long, "log.message.timestamp.type": .text, "log.preallocate": .boolean,
        "log.retention.bytes": .long, "log.retention.check.interval.ms": .long, "log.retention.hours": .int,
        "log.retention.minutes": .int, "log.retention.ms": .long, "log.roll.hours": .int, "log.roll.jitter.hours": .int,
        "log.roll.jitter.ms": .long, "log.roll.ms": .long, "log.segment.bytes": .int, "log.segment.delete.delay.ms": .long,
        "max.connection.creation.rate": .int, "max.connections": .int, "max.connections.per.ip": .int,
        "max.connections.per.ip.overrides": .text, "max.incremental.fetch.session.cache.slots": .int,
        "max.request.partition.size.limit": .int, "message.max.bytes": .int, "metadata.log.dir": .text,
        "metadata.log.max.record.bytes.between.snapshots": .long, "metadata.log.max.snapshot.interval.ms": .long,
        "metadata.log.segment.bytes": .int, "metadata.log.segment.ms": .long, "metadata.max.idle.interval.ms": .int,
        "metadata.max.retention.bytes": .long, "metadata.max.retention.ms": .long, "metric.reporters": .text,
        "metrics.num.samples": .int, "metrics.recording.level": .text, "metrics.sample.window.ms": .long,
        "min.insync.replicas": .int, "node.id": .int, "num.io.threads": .int, "num.network.threads": .int, "num.partitions":
        .int, "num.recovery.threads.per.data.dir": .int, "num.replica.alter.log.dirs.threads": .int, "num.replica.fetchers":
        .int, "offset.metadata.max.bytes": .int, "offsets.commit.timeout.ms": .int, "offsets.load.buffer.size": .int,
        "offsets.retention.check.interval.ms": .long, "offsets.retention.minutes": .int, "offsets.topic.compression.codec":
        .int, "offsets.topic.num.partitions": .int, "offsets.topic.replication.factor": .short,
        "offsets.topic.segment.bytes": .int, "principal.builder.class": .text, "process.roles": .text,
        "producer.id.expiration.check.interval.ms": .int, "producer.id.expiration.ms": .int,
        "producer.purgatory.purge.interval.requests": .int, "queued.max.request.bytes": .long, "queued.max.requests": .int,
        "quota.window.num": .int, "quota.window.size.seconds": .int, "remote.fetch.max.wait.ms": .int,
        "remote.list.offsets.request.timeout.ms": .long, "remote.log.index.file.cache.total.size.bytes": .long,
        "remote.log.manager.copier.thread.pool.size": .int, "remote.log.manager.copy.max.bytes.per.second": .long,
        "remote.log.manager.copy.quota.window.num": .int, "remote.log.manager.copy.quota.window.size.seconds": .int,
        "remote.log.manager.expiration.thread.pool.size": .int, "remote.log.manager.fetch.max.bytes.per.second": .long,
        "remote.log.manager.fetch.quota.window.num": .int, "remote.log.manager.fetch.quota.window.size.seconds": .int,
        "remote.log.manager.task.interval.ms": .long, "remote.log.manager.task.retry.backoff.max.ms": .long,
        "remote.log.manager.task.retry.backoff.ms": .long, "remote.log.manager.task.retry.jitter": .double,
        "remote.log.manager.thread.pool.size": .int, "remote.log.metadata.custom.metadata.max.bytes": .int,
        "remote.log.metadata.manager.class.name": .text, "remote.log.metadata.manager.class.path": .text,
        "remote.log.metadata.manager.impl.prefix": .text, "remote.log.metadata.manager.listener.name": .text,
        "remote.log.reader.max.pending.tasks": .int, "remote.log.reader.threads": .int,
        "remote.log.storage.manager.class.name": .text, "remote.log.storage.manager.class.path": .text,
        "remote.log.storage.manager.impl.prefix": .text, "remote.log.storage.system.enable": .boolean,
        "replica.fetch.backoff.ms": .int, "replica.fetch.max.bytes": .int, "replica.fetch.min.bytes": .int,
        "replica.fetch.response.max.bytes": .int, "replica.fetch.wait.max.ms": .int,
        "replica.high.watermark.checkpoint.interval.ms": .long, "replica.lag.time.max.ms": .long, "replica.selector.class":
        .text, "replica.socket.receive.buffer.bytes": .int, "replica.socket.timeout.ms": .int,
        "replication.quota.window.num": .int, "replication.quota.window.size.seconds": .int, "request.timeout.ms": .int,
        "sasl.client.callback.handler.class": .text, "sasl.enabled.mechanisms": .text, "sasl.jaas.config": .text,
        "sasl.kerberos.kinit.cmd": .text, "sasl.kerberos.min.time.before.relogin": .long,
        "sasl.kerberos.principal.to.local.rules": .text, "sasl.kerberos.service.name": .text,
        "sasl.kerberos.ticket.renew.jitter": .double, "sasl.kerberos.ticket.renew.window.factor": .double,
        "sasl.login.callback.handler.class": .text, "sasl.login.class": .text, "sasl.login.connect.timeout.ms": .int,
        "sasl.login.read.timeout.ms": .int, "sasl.login.refresh.buffer.seconds": .short,
        "sasl.login.refresh.min.period.seconds": .short, "sasl.login.refresh.window.factor": .double,
        "sasl.login.refresh.window.jitter": .double, "sasl.login.retry.backoff.max.ms": .long,
        "sasl.login.retry.backoff.ms": .long, "sasl.mechanism.controller.protocol": .text,
        "sasl.mechanism.inter.broker.protocol": .text, "sasl.oauthbearer.assertion.algorithm": .text,
        "sasl.oauthbearer.assertion.claim.aud": .text, "sasl.oauthbearer.assertion.claim.exp.seconds": .int,
        "sasl.oauthbearer.assertion.claim.iss": .text, "sasl.oauthbearer.assertion.claim.jti.include": .boolean,
        "sasl.oauthbearer.assertion.claim.nbf.seconds": .int, "sasl.oauthbearer.assertion.claim.sub": .text,
        "sasl.oauthbearer.assertion.file": .text, "sasl.oauthbearer.assertion.private.key.file": .text,
        "sasl.oauthbearer.assertion.private.key.passphrase": .text, "sasl.oauthbearer.assertion.template.file": .text,
        "sasl.oauthbearer.client.credentials.client.id": .text, "sasl.oauthbearer.client.credentials.client.secret": .text,
        "sasl.oauthbearer.clock.skew.seconds": .int, "sasl.oauthbearer.expected.audience": .text,
        "sasl.oauthbearer.expected.issuer": .text, "sasl.oauthbearer.jwks.endpoint.refresh.ms": .long,
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms": .long, "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms":
        .long, "sasl.oauthbearer.jwks.endpoint.url": .text, "sasl.oauthbearer.jwt.retriever.class": .text,
        "sasl.oauthbearer.jwt.validator.class": .text, "sasl.oauthbearer.scope": .text, "sasl.oauthbearer.scope.claim.name":
        .text, "sasl.oauthbearer.sub.claim.name": .text, "sasl.oauthbearer.token.endpoint.url": .text,
        "sasl.server.callback.handler.class": .text, "sasl.server.max.receive.size": .int, "security.inter.broker.protocol":
        .text, "security.providers": .text, "server.max.startup.time.ms": .long, "share.coordinator.append.linger.ms": .int,
        "share.coordinator.cold.partition.snapshot.interval.ms": .int, "share.coordinator.load.buffer.size": .int,
        "share.coordinator.snapshot.update.records.per.snapshot": .int, "share.coordinator.state.topic.compression.codec":
        .int, "share.coordinator.state.topic.min.isr": .short, "share.coordinator.state.topic.num.partitions": .int,
        "share.coordinator.state.topic.prune.interval.ms": .int, "share.coordinator.state.topic.replication.factor": .short,
        "share.coordinator.state.topic.segment.bytes": .int, "share.coordinator.threads": .int,
        "share.coordinator.write.timeout.ms": .int, "share.fetch.purgatory.purge.interval.requests": .int,
        "socket.connection.setup.timeout.max.ms": .long, "socket.connection.setup.timeout.ms": .long,
        "socket.listen.backlog.size": .int, "socket.receive.buffer.bytes": .int, "socket.request.max.bytes": .int,
        "socket.send.buffer.bytes": .int, "ssl.allow.dn.changes": .boolean, "ssl.allow.san.changes": .boolean,
        "ssl.cipher.suites": .text, "ssl.client.auth": .text, "ssl.enabled.protocols": .text,
        "ssl.endpoint.identification.algorithm": .text, "ssl.engine.factory.class": .text, "ssl.key.password": .text,
        "ssl.keymanager.algorithm": .text, "ssl.keystore.certificate.chain": .text, "ssl.keystore.key": .text,
        "ssl.keystore.location": .text, "ssl.keystore.password": .text, "ssl.keystore.type": .text,
        "ssl.principal.mapping.rules": .text, "ssl.protocol": .text, "ssl.provider": .text,
        "ssl.secure.random.implementation": .text, "ssl.trustmanager.algorithm": .text, "ssl.truststore.certificates":
        .text, "ssl.truststore.location": .text, "ssl.truststore.password": .text, "ssl.truststore.type": .text,
        "telemetry.max.bytes": .int, "transaction.abort.timed.out.transaction.cleanup.interval.ms": .int,
        "transaction.max.timeout.ms": .int, "transaction.partition.verification.enable": .boolean,
        "transaction.remove.expired.transaction.cleanup.interval.ms": .int, "transaction.state.log.load.buffer.size": .int,
        "transaction.state.log.min.isr": .int, "transaction.state.log.num.partitions": .int,
        "transaction.state.log.replication.factor": .short, "transaction.state.log.segment.bytes": .int,
        "transaction.two.phase.commit.enable": .boolean, "transactional.id.expiration.ms": .int,
        "unclean.leader.election.enable": .boolean, "unclean.leader.election.interval.ms": .long,
        "unstable.api.versions.enable": .boolean, "unstable.feature.versions.enable": .boolean
    ]

    /// Settings Kafka reads beside its ConfigDef: listener- and mechanism-prefixed overrides,
    /// the remote-storage plugins' prefixes, config providers, the authorizer's own.
    static func isKafkaPrefixedSetting(_ key: String) -> Bool {
        ["listener.name.", "rsm.config.", "rlmm.config."].contains { key.hasPrefix($0) }
            || ["super.users", "allow.everyone.if.no.acl.found", "leader.replication.throttled.rate",
                "follower.replication.throttled.rate", "replica.alter.log.dirs.io.max.bytes.per.second"].contains(key)
    }

    /// What a value of `kind` must be, for a refusal.
    static func expected(_ kind: KafkaValueKind) -> String {
        switch kind {
        case .boolean: "true or false"
        case .short: "a number (Kafka's SHORT, 16 bits)"
        case .int: "a number (Kafka's INT, 32 bits)"
        case .long: "a number (Kafka's LONG, 64 bits)"
        case .double: "a number (Kafka's DOUBLE)"
        case .text: "a value"
        }
    }

    /// Whether `value` parses as Kafka's ConfigDef parses a value of this kind (trimmed;
    /// booleans in any case).
    static func parses(_ value: String, as kind: KafkaValueKind) -> Bool {
        let v = value.trimmingCharacters(in: .whitespaces)
        switch kind {
        case .boolean: return ["true", "false"].contains(v.lowercased())
        case .short: return Int16(v) != nil
        case .int: return Int32(v) != nil
        case .long: return Int64(v) != nil
        case .double: return Double(v) != nil
        case .text: return true
        }
    }
}

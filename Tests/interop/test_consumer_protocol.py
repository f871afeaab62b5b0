"""The next-generation consumer group protocol (KIP-848) with confluent-kafka's
`group.protocol=consumer`: the broker assigns partitions, members converge by heartbeats,
classic and consumer groups live side by side, and ConsumerGroupDescribe / ListGroups show
both kinds."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import BINARY, Broker, free_port, unique

PARTITIONS = 6


@pytest.fixture
def fast_broker():
    """A broker whose consumer-protocol members heartbeat every 300 ms (default 5 s), so
    reassignments settle in a test's time."""
    root = tempfile.mkdtemp(prefix="tidemark-kip848-")
    node = Broker(os.path.join(root, "data"), free_port(),
                  extra=["--config", "group.consumer.heartbeat.interval.ms=300"])
    node.start()
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def _produce(bootstrap, topic, values):
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, value in enumerate(values):
        producer.produce(topic, key=b"k%d" % i, value=value)
    assert producer.flush(30) == 0


def _consumer(bootstrap, group, name, assignor=None):
    from confluent_kafka import Consumer
    config = {"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
              "auto.offset.reset": "earliest", "client.id": name, "enable.auto.commit": True,
              "auto.commit.interval.ms": 200}
    if assignor:
        config["group.remote.assignor"] = assignor
    return Consumer(config)


def _poll_until(consumers, seen, want, timeout):
    """Polls every consumer in turn, recording (value -> [who]) until `want` values were seen."""
    deadline = time.time() + timeout
    while time.time() < deadline and len(seen) < want:
        for name, consumer in consumers.items():
            message = consumer.poll(0.1)
            if message is None:
                continue
            assert not message.error(), message.error()
            seen.setdefault(message.value(), []).append((name, message.partition()))
    return seen


def _commit(consumer):
    """A synchronous commit; "no offset stored" means auto-commit already stored everything."""
    from confluent_kafka import KafkaError, KafkaException
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as error:
        assert error.args[0].code() == KafkaError._NO_OFFSET, error


def _assignment(consumer):
    return sorted(tp.partition for tp in consumer.assignment())


def _three_each(c1, c2, timeout=20):
    """Polls both members until each holds three partitions, disjoint; their assignments."""
    deadline = time.time() + timeout
    while time.time() < deadline and (len(_assignment(c1)) != 3 or len(_assignment(c2)) != 3):
        c1.poll(0.1)
        c2.poll(0.1)
    a1, a2 = _assignment(c1), _assignment(c2)
    assert len(a1) == 3 and len(a2) == 3 and not set(a1) & set(a2), (a1, a2)
    return a1, a2


@pytest.mark.parametrize("assignor", ["uniform", "range"])
def test_two_members_share_six_partitions_and_one_leaves(fast_broker, assignor):
    from confluent_kafka.admin import AdminClient, NewTopic
    bootstrap = fast_broker.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic, group = unique("kip848"), unique("kip848-group")
    for future in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]).values():
        future.result(10)
    first = ["a%d" % i for i in range(300)]
    _produce(bootstrap, topic, [v.encode() for v in first])

    c1 = _consumer(bootstrap, group, "c1", assignor)
    c2 = _consumer(bootstrap, group, "c2", assignor)
    c1.subscribe([topic])
    c2.subscribe([topic])
    seen = _poll_until({"c1": c1, "c2": c2}, {}, len(first), 60)
    assert len(seen) == len(first), "consumed %d of %d" % (len(seen), len(first))
    # Both converge on three partitions each, disjoint.
    a1, a2 = _three_each(c1, c2)
    if assignor == "range":
        assert {tuple(a1), tuple(a2)} == {(0, 1, 2), (3, 4, 5)}
    # Never were one partition's records read by both members at once: each record was read
    # by one member (a revoked partition's offsets are committed before it moves).
    duplicates = {v: who for v, who in seen.items() if len(who) > 1}
    assert not duplicates, duplicates

    # The broker describes the group with both members and their assignments.
    described = admin.describe_consumer_groups([group])[group].result(10)
    assert len(described.members) == 2
    assert str(described.type).endswith("CONSUMER"), described.type
    listed = admin.list_consumer_groups().result(10)
    assert group in [g.group_id for g in listed.valid]

    # c2 leaves: c1 takes all six partitions and reads what comes next; nothing is lost.
    _commit(c2)
    c2.close()
    second = ["b%d" % i for i in range(120)]
    _produce(bootstrap, topic, [v.encode() for v in second])
    seen2 = _poll_until({"c1": c1}, {}, len(second), 60)
    assert sorted(seen2) == sorted(v.encode() for v in second)
    assert _assignment(c1) == list(range(PARTITIONS))
    _commit(c1)
    c1.close()

    # The committed offsets cover everything produced.
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(PARTITIONS)])
    committed = list(admin.list_consumer_group_offsets([request]).values())[0].result(10)
    assert sum(tp.offset for tp in committed.topic_partitions) == len(first) + len(second)


def test_classic_and_consumer_groups_coexist(fast_broker):
    """A classic group (kafka-python) and a consumer group (confluent-kafka) read the same
    topic at once; ListGroups tells their types apart; neither protocol can take over a group
    the other runs; `tidemark groups` lists and describes both."""
    from confluent_kafka.admin import AdminClient, NewTopic
    from kafka import KafkaConsumer
    bootstrap = fast_broker.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = unique("mixed")
    classic_group, consumer_group = unique("classic"), unique("nextgen")
    for future in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).values():
        future.result(10)
    values = [b"x%d" % i for i in range(90)]
    _produce(bootstrap, topic, values)

    # kafka-python's leader assigns only partitions it has metadata for, and does not rejoin
    # when the metadata arrives later (metadata.max.age.ms is 5 minutes): it must know the
    # new topic before it subscribes.
    classic = KafkaConsumer(bootstrap_servers=bootstrap, group_id=classic_group, auto_offset_reset="earliest")
    deadline = time.time() + 30
    while topic not in classic.topics() and time.time() < deadline:
        time.sleep(0.1)
    classic.subscribe([topic])
    modern = _consumer(bootstrap, consumer_group, "modern")
    modern.subscribe([topic])
    got_classic, got_modern = [], []
    deadline = time.time() + 60
    while time.time() < deadline and (len(got_classic) < 90 or len(got_modern) < 90):
        for records in classic.poll(timeout_ms=100).values():
            got_classic += [r.value for r in records]
        message = modern.poll(0.1)
        if message is not None and not message.error():
            got_modern.append(message.value())
    assert sorted(got_classic) == sorted(values) and sorted(got_modern) == sorted(values)

    from kafka import KafkaAdminClient
    kadmin = KafkaAdminClient(bootstrap_servers=bootstrap)
    groups = {g["group_id"]: g for g in kadmin.list_groups()}
    assert groups[classic_group]["group_type"] == "Classic" and groups[classic_group]["group_state"] == "Stable"
    assert groups[consumer_group]["group_type"] == "Consumer"
    assert [g["group_id"] for g in kadmin.list_groups(types_filter=["consumer"])] == [consumer_group]

    # A consumer-protocol member cannot join the running classic group, nor a classic
    # member the consumer group.
    intruder = _consumer(bootstrap, classic_group, "intruder")
    intruder.subscribe([topic])
    deadline = time.time() + 30
    error = None
    while time.time() < deadline and error is None:
        message = intruder.poll(0.2)
        if message is not None and message.error():
            error = message.error()
    intruder.close()
    assert error is not None and "group id does not exist" in error.str(), error
    from kafka.errors import InconsistentGroupProtocolError
    stranger = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=consumer_group)
    with pytest.raises(InconsistentGroupProtocolError):
        deadline = time.time() + 30
        while time.time() < deadline:
            stranger.poll(timeout_ms=200)
    stranger.close()

    tool = subprocess.run([BINARY, "groups", "list", "--bootstrap", bootstrap], capture_output=True, text=True, timeout=30)
    assert tool.returncode == 0, tool.stderr
    assert classic_group in tool.stdout and consumer_group in tool.stdout
    for group, kind in ((classic_group, "classic"), (consumer_group, "consumer")):
        tool = subprocess.run([BINARY, "groups", "describe", group, "--bootstrap", bootstrap],
                              capture_output=True, text=True, timeout=30)
        assert tool.returncode == 0, tool.stderr
        assert kind in tool.stdout.lower() and topic in tool.stdout, tool.stdout
        # Each member with where it connects from and what it holds (for the classic group,
        # read from the assignment its leader wrote).
        lines = tool.stdout.splitlines()
        members = [line.split("\t") for line in lines[lines.index("MEMBER\tCLIENT\tHOST\tEPOCH\tASSIGNMENT") + 1:]]
        members = members[:[m[0] for m in members].index("TOPIC")]
        assert members and all(m[2] == "/127.0.0.1" and m[4].startswith(topic + ":") for m in members), tool.stdout
    classic.close()
    modern.close()
    kadmin.close()


def test_a_static_member_restarts_without_a_rebalance(fast_broker):
    """Static membership (`group.instance.id`) under `group.protocol=consumer`: librdkafka's
    close() leaves for now (member epoch -2). The other member keeps its three partitions and
    gets none of the leaver's; the restarted instance, a new consumer with the same instance
    id, takes its three back and reads on from its committed offsets. A second live consumer
    with an instance id in use is refused (UNRELEASED_INSTANCE_ID, fatal in librdkafka)."""
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient, NewTopic
    bootstrap = fast_broker.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic, group = unique("static"), unique("static-group")
    for future in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]).values():
        future.result(10)
    first = [b"a%d" % i for i in range(120)]
    _produce(bootstrap, topic, first)

    def static(name, instance):
        # Auto-commit also commits before a partition moves, so the restarted instance resumes
        # where its partitions were left, whichever member read them first.
        config = {"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                  "group.instance.id": instance, "auto.offset.reset": "earliest", "client.id": name,
                  "enable.auto.commit": True, "auto.commit.interval.ms": 200}
        return Consumer(config)

    def read_to_the_end(consumer, timeout=30):
        from confluent_kafka import TopicPartition
        deadline = time.time() + timeout
        while time.time() < deadline:
            consumer.poll(0.1)
            parts = consumer.assignment()
            ends = {tp.partition: consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 5)[1] for tp in parts}
            if parts and all(tp.offset == ends[tp.partition] for tp in consumer.position(parts)):
                return
        raise AssertionError("%s did not reach the end of its partitions" % consumer)

    c1, c2 = static("c1", "host-1"), static("c2", "host-2")
    c1.subscribe([topic])
    c2.subscribe([topic])
    seen = _poll_until({"c1": c1, "c2": c2}, {}, len(first), 60)
    assert len(seen) == len(first)
    a1, a2 = _three_each(c1, c2)
    for consumer in (c1, c2):
        read_to_the_end(consumer)
        _commit(consumer)
    c1.close()

    # c1 is away: its member stays (epoch -2) with its partitions; c2 keeps its own three
    # through several heartbeats (300 ms each).
    described = admin.describe_consumer_groups([group])[group].result(10)
    assert len(described.members) == 2, described.members
    deadline = time.time() + 3
    while time.time() < deadline:
        c2.poll(0.1)
        assert _assignment(c2) == a2

    # Its next instance takes its place and its partitions, and reads what came meanwhile.
    second = [b"b%d" % i for i in range(60)]
    _produce(bootstrap, topic, second)
    c1 = static("c1-restarted", "host-1")
    c1.subscribe([topic])
    seen = _poll_until({"c1": c1, "c2": c2}, {}, len(second), 60)
    assert sorted(seen) == sorted(second), "read %d of %d" % (len(seen), len(second))
    assert _assignment(c1) == a1 and _assignment(c2) == a2
    described = admin.describe_consumer_groups([group])[group].result(10)
    assert len(described.members) == 2
    assert sorted(m.group_instance_id for m in described.members) == ["host-1", "host-2"]

    # An instance id in use is not taken over by a second consumer.
    twin = static("twin", "host-2")
    twin.subscribe([topic])
    error = None
    deadline = time.time() + 30
    while time.time() < deadline and error is None:
        message = twin.poll(0.2)
        if message is not None and message.error():
            error = message.error()
    from confluent_kafka import KafkaError
    assert error is not None and error.code() == KafkaError._FATAL, error
    assert "instance ID is still used by another member" in error.str(), error.str()
    assert _assignment(c2) == a2
    twin.close()
    c1.close()
    c2.close()


def test_members_keep_their_partitions_across_broker_restarts(fast_broker):
    """Two confluent-kafka consumers with group.protocol=consumer and manual commits: the
    broker stops cleanly and restarts, then is killed with -9 and restarts. Each time both go
    on with the partitions they held (no revoke, no lost partitions, no new assignment) and
    their next commit succeeds, because the broker brings the group back from
    __consumer_offsets at its epoch, as Kafka does. Before, both got UNKNOWN_MEMBER_ID,
    lost their partitions and rejoined from nothing."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    topic, group = unique("kip848-restart"), unique("kip848-restart-group")
    admin = AdminClient({"bootstrap.servers": fast_broker.bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]).values():
        future.result(10)
    _produce(fast_broker.bootstrap, topic, [b"v%d" % i for i in range(60)])
    events = []
    consumers = {}
    for name in ("c1", "c2"):
        c = Consumer({"bootstrap.servers": fast_broker.bootstrap, "group.id": group, "group.protocol": "consumer",
                      "auto.offset.reset": "earliest", "client.id": name, "enable.auto.commit": False,
                      "reconnect.backoff.max.ms": 500})
        c.subscribe([topic],
                    on_assign=lambda _c, ps, n=name: events.append((n, "assign", sorted(p.partition for p in ps))),
                    on_revoke=lambda _c, ps, n=name: events.append((n, "revoke", sorted(p.partition for p in ps))),
                    on_lost=lambda _c, ps, n=name: events.append((n, "lost", sorted(p.partition for p in ps))))
        consumers[name] = c
    seen = _poll_until(consumers, {}, 60, 40)
    assert len(seen) == 60, (len(seen), events)
    held = _three_each(consumers["c1"], consumers["c2"])
    for c in consumers.values():
        _commit(c)
    settled = list(events)

    for restart in ("SIGTERM", "kill -9"):
        if restart == "SIGTERM":
            fast_broker.stop()
        else:
            fast_broker.kill()
        fast_broker.start()
        values = [b"%s-%d" % (restart.encode(), i) for i in range(12)]
        _produce(fast_broker.bootstrap, topic, values)
        seen = _poll_until(consumers, {}, 12, 40)
        assert sorted(seen) == sorted(values), (restart, events)
        for c in consumers.values():
            c.commit(asynchronous=False)  # raised (UNKNOWN_MEMBER_ID / STALE_MEMBER_EPOCH) before
        assert events == settled, (restart, events)
        assert (_assignment(consumers["c1"]), _assignment(consumers["c2"])) == held, restart

    committed = consumers["c1"].committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    assert sum(tp.offset for tp in committed) == 84
    for c in consumers.values():
        c.close()


def test_a_static_member_restarting_across_a_broker_restart_keeps_its_place(fast_broker):
    """A static member (`group.instance.id`) closes (epoch -2, leaving for now) and the broker
    is killed with -9 before its next instance starts. After the restart the other member
    goes on with its partitions, and the next instance takes the leaver's place and its
    partitions. Before the group's records were written in that state, the restart brought
    the old member back as it was and the new instance was refused UNRELEASED_INSTANCE_ID
    (fatal in librdkafka) until the old one's session ran out."""
    from confluent_kafka import Consumer, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic
    bootstrap = fast_broker.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic, group = unique("static-restart"), unique("static-restart-group")
    for future in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]).values():
        future.result(10)
    _produce(bootstrap, topic, [b"a%d" % i for i in range(60)])
    errors = []

    def static(name, instance):
        return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                         "group.instance.id": instance, "auto.offset.reset": "earliest", "client.id": name,
                         "enable.auto.commit": True, "auto.commit.interval.ms": 200,
                         "reconnect.backoff.max.ms": 500, "error_cb": lambda e: errors.append(e)})

    c1, c2 = static("c1", "host-1"), static("c2", "host-2")
    c1.subscribe([topic])
    c2.subscribe([topic])
    seen = _poll_until({"c1": c1, "c2": c2}, {}, 60, 60)
    assert len(seen) == 60
    a1, a2 = _three_each(c1, c2)
    c1.close()
    time.sleep(1)  # the leave (epoch -2) reaches the log (a kill -9 keeps what was written)
    fast_broker.kill()
    fast_broker.start()

    second = [b"b%d" % i for i in range(30)]
    _produce(bootstrap, topic, second)
    c1 = static("c1-restarted", "host-1")
    c1.subscribe([topic])
    try:
        seen = _poll_until({"c1": c1, "c2": c2}, {}, len(second), 40)
    except KafkaException as error:  # a fatal error is raised from poll()
        raise AssertionError("the next instance was refused: %s" % error)
    assert sorted(seen) == sorted(second), ("read %d of %d" % (len(seen), len(second)), errors)
    assert _assignment(c1) == a1 and _assignment(c2) == a2
    assert not [e for e in errors if e.fatal()], errors
    for consumer in (c1, c2):
        consumer.close()

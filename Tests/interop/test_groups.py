"""Consumer groups with real clients: two different clients share six partitions, one
leaves mid-stream, nothing is lost; a restarted broker resumes the group where it committed."""
import threading
import time

from conftest import unique


def create_topic(bootstrap, topic, partitions):
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    admin.close()


def produce(bootstrap, topic, start, count):
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(start, start + count):
        producer.produce(topic, key=b"k%d" % i, value=b"%d" % i)
        producer.poll(0)
    assert producer.flush(30) == 0


def test_two_clients_share_a_group_and_a_leaving_member_loses_nothing(broker):
    from confluent_kafka import Consumer
    from kafka import KafkaConsumer
    topic = unique("shared")
    group = topic + "-group"
    create_topic(broker.bootstrap, topic, 6)

    seen = {}
    lock = threading.Lock()
    stop_all = threading.Event()
    stop_b = threading.Event()
    assignments = {}
    # The partitions each member holds now. Records are produced only once the two members
    # share the six partitions: produced earlier, the first member to join reads them all
    # before the second one's rebalance ends (3,000 small records take a few milliseconds).
    held = {"a": set(), "b": set()}

    def record(owner, values):
        with lock:
            for v in values:
                seen[v] = seen.get(v, 0) + 1
            assignments.setdefault(owner, 0)
            assignments[owner] += len(values)

    def hold(owner, partitions):
        with lock:
            held[owner] = set(partitions)

    def member_a():  # librdkafka via confluent-kafka: commit after processing
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, "session.timeout.ms": 10000, "heartbeat.interval.ms": 500})
        c.subscribe([topic], on_assign=lambda _, ps: hold("a", [p.partition for p in ps]),
                    on_revoke=lambda _, ps: hold("a", []))
        while not stop_all.is_set():
            msgs = c.consume(200, 0.5)
            good = [m for m in msgs if m.error() is None]
            if good:
                record("a", [int(m.value()) for m in good])
                c.commit(asynchronous=False)
        c.close()

    def member_b():  # kafka-python: commit after processing, then leave mid-stream
        c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group, auto_offset_reset="earliest",
                          enable_auto_commit=False, session_timeout_ms=10000, heartbeat_interval_ms=500)
        while not stop_b.is_set():
            batches = c.poll(timeout_ms=500, max_records=200)
            hold("b", [tp.partition for tp in c.assignment()])
            values = [int(r.value) for records in batches.values() for r in records]
            if values:
                record("b", values)
                c.commit()
        c.close()  # LeaveGroup: its partitions move to member A

    threads = [threading.Thread(target=member_a), threading.Thread(target=member_b)]
    for t in threads:
        t.start()
    deadline = time.time() + 60
    while time.time() < deadline:
        with lock:
            if held["a"] and held["b"] and held["a"] | held["b"] == set(range(6)) and not held["a"] & held["b"]:
                break
        time.sleep(0.1)
    with lock:
        assert held["a"] and held["b"], "the members never shared the partitions: %s" % held
    produce(broker.bootstrap, topic, 0, 3000)
    deadline = time.time() + 60
    while time.time() < deadline:
        with lock:
            if assignments.get("a", 0) > 0 and assignments.get("b", 0) > 0:
                break
        time.sleep(0.1)
    with lock:
        assert assignments.get("b", 0) > 0, "kafka-python member never got records"
        assert assignments.get("a", 0) > 0, "librdkafka member never got records"
    stop_b.set()
    threads[1].join(30)
    produce(broker.bootstrap, topic, 3000, 2000)
    deadline = time.time() + 90
    while time.time() < deadline:
        with lock:
            if len(seen) >= 5000:
                break
        time.sleep(0.2)
    stop_all.set()
    threads[0].join(30)
    missing = [i for i in range(5000) if i not in seen]
    assert not missing, "lost %d messages, e.g. %s" % (len(missing), missing[:5])


def test_group_resumes_from_committed_offsets_after_a_broker_restart(broker):
    from confluent_kafka import Consumer, TopicPartition
    topic = unique("resume")
    group = topic + "-group"
    create_topic(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, 0, 1000)

    def consumer():
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                      "enable.auto.commit": False})
        c.subscribe([topic])
        return c

    c = consumer()
    got = []
    deadline = time.time() + 30
    while len(got) < 400 and time.time() < deadline:
        got += [m for m in c.consume(100, 1.0) if m.error() is None]
    c.commit(asynchronous=False)
    # -1001 (OFFSET_INVALID): nothing committed for a partition this consumer did not reach.
    committed = {tp.partition: max(tp.offset, 0) for tp in c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], 10)}
    c.close()
    assert sum(committed.values()) == len(got)

    broker.restart()

    c = consumer()
    rest = []
    deadline = time.time() + 60
    while len(rest) < 1000 - len(got) and time.time() < deadline:
        rest += [m for m in c.consume(200, 1.0) if m.error() is None]
    c.close()
    assert len(rest) == 1000 - len(got)
    for m in rest:
        assert m.offset() >= committed[m.partition()]
    values = sorted(int(m.value()) for m in got + rest)
    assert values == list(range(1000))


def test_a_restarted_static_member_gets_its_partitions_back_without_a_rebalance(broker):
    """group.instance.id (KIP-345) with librdkafka: a static member that restarts (closes
    without leaving, as static members do, and comes back with the same instance id) gets
    its partitions back at once, and the other member is never revoked. Without static
    membership the group would wait out the old member's 30 s session. (One thread polls
    both consumers: confluent-kafka's calls on a consumer another thread polls can block.)"""
    from confluent_kafka import Consumer
    topic = unique("static")
    group = topic + "-group"
    create_topic(broker.bootstrap, topic, 4)
    events = []

    def consumer(instance):
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "group.instance.id": instance,
                      "session.timeout.ms": 30000, "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest"})
        c.subscribe([topic],
                    on_assign=lambda _, ps: events.append((instance, "assign", sorted(p.partition for p in ps))),
                    on_revoke=lambda _, ps: events.append((instance, "revoke", sorted(p.partition for p in ps))))
        return c

    b = consumer("pod-2")
    a = consumer("pod-1")
    deadline = time.time() + 30
    while time.time() < deadline and not (len(a.assignment()) == 2 and len(b.assignment()) == 2):
        a.poll(0.1)
        b.poll(0.1)
    held_by_a = sorted(p.partition for p in a.assignment())
    assert len(held_by_a) == 2 and len(b.assignment()) == 2, events
    a.close()  # a static member does not leave: its place is kept for its session
    revokes_before = [e for e in events if e[0] == "pod-2" and e[1] == "revoke"]
    started = time.time()
    a2 = consumer("pod-1")
    while time.time() < started + 25 and not a2.assignment():
        a2.poll(0.1)
        b.poll(0.1)
    waited = time.time() - started
    assert sorted(p.partition for p in a2.assignment()) == held_by_a, events
    assert waited < 20, "%.1f s: the group waited for the old member's 30 s session" % waited
    for _ in range(10):
        a2.poll(0.1)
        b.poll(0.1)
    assert [e for e in events if e[0] == "pod-2" and e[1] == "revoke"] == revokes_before, events
    assert len(b.assignment()) == 2
    a2.close()
    b.close()


def test_a_consumer_keeps_its_place_across_broker_restarts(broker):
    """kafka-python as applications use it (manual commits, a rebalance listener): the broker
    stops cleanly and restarts, then is killed with -9 and restarts; each time the consumer's
    next commit succeeds and no rebalance happens, because the broker brings the group back
    from __consumer_offsets as Kafka does. Before, the group was forgotten: the commit raised
    CommitFailedError (UNKNOWN_MEMBER_ID) and the group rebalanced."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka import ConsumerRebalanceListener
    from kafka.structs import OffsetAndMetadata
    topic = unique("keep")
    group = topic + "-group"
    create_topic(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, 0, 100)
    events = []

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            events.append(("revoke", sorted(p.partition for p in revoked)))

        def on_partitions_assigned(self, assigned):
            events.append(("assign", sorted(p.partition for p in assigned)))

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False,
                      auto_offset_reset="earliest", session_timeout_ms=30000, heartbeat_interval_ms=1000,
                      reconnect_backoff_max_ms=500)
    c.subscribe([topic], listener=Listener())
    seen = 0
    deadline = time.time() + 30
    while seen < 100 and time.time() < deadline:
        seen += sum(len(batch) for batch in c.poll(timeout_ms=500).values())
    assert seen == 100, events
    c.commit()
    # (The first join may come before the client knows the topic's partitions: it then
    # rejoins once it does.)
    assert events[-1] == ("assign", [0, 1]), events
    settled = list(events)

    for restart in ("SIGTERM", "kill -9"):
        if restart == "SIGTERM":
            broker.stop()
        else:
            broker.kill()
        broker.start()
        produce(broker.bootstrap, topic, 0, 10)
        got = 0
        deadline = time.time() + 30
        while got < 10 and time.time() < deadline:
            got += sum(len(batch) for batch in c.poll(timeout_ms=500).values())
        assert got == 10, (restart, events)
        # Raised CommitFailedError before: the broker had forgotten the member.
        c.commit({TopicPartition(topic, p): OffsetAndMetadata(c.position(TopicPartition(topic, p)), "", -1) for p in (0, 1)})
        assert events == settled, (restart, events)
    assert c.committed(TopicPartition(topic, 0)) + c.committed(TopicPartition(topic, 1)) == 120
    c.close()


def test_offline_describe_lists_the_members_a_restart_brings_back(broker):
    # A classic consumer still in its group when the broker stops: the offline tools see the
    # member the log brings back (`groups describe --data` said 0 members, while reset-offsets
    # and delete refused for that one member).
    import subprocess
    from confluent_kafka import Consumer
    from conftest import BINARY
    topic = unique("offline")
    group = topic + "-group"
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, 0, 3)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "client.id": "offline-reader"})
    c.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < 3 and time.time() < deadline:
        got += [m for m in c.consume(10, 1.0) if m.error() is None]
    c.commit(asynchronous=False)
    broker.stop()
    try:
        out = subprocess.run([BINARY, "groups", "describe", group, "--data", broker.data_dir],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "MEMBERS 1" in out.stdout and "offline-reader" in out.stdout, out.stdout
        reset = subprocess.run([BINARY, "groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute",
                                "--data", broker.data_dir], capture_output=True, text=True, timeout=60)
        assert reset.returncode != 0 and "1 member" in reset.stderr, reset.stderr
    finally:
        c.close()
        broker.start()

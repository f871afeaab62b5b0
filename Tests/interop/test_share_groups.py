"""Share groups (KIP-932) with the real confluent-kafka ShareConsumer (librdkafka) against
`tidemark serve`: job-queue consumption with per-record locks, acknowledgements, delivery
counts, redelivery, and a kill -9 of the broker in the middle."""
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import BINARY, Broker, free_port, serving, unique
from helpers import metric, share_fetches_while_polling, share_poll_until_error


@pytest.fixture
def share_broker():
    """Short locks and heartbeats so that expiry and redelivery happen in a test's time."""
    with serving("tidemark-share-", ["group.share.record.lock.duration.ms=3000",
                                     "group.share.heartbeat.interval.ms=500"]) as node:
        yield node


def _topic(bootstrap, name, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        future.result(10)


def _produce(bootstrap, topic, values, partitions=None):
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, value in enumerate(values):
        if partitions:
            producer.produce(topic, value=value, partition=i % partitions)
        else:
            producer.produce(topic, value=value)
    assert producer.flush(30) == 0


def _share_consumer(bootstrap, group, explicit=False):
    from confluent_kafka import ShareConsumer
    config = {"bootstrap.servers": bootstrap, "group.id": group}
    if explicit:
        config["share.acknowledgement.mode"] = "explicit"
    return ShareConsumer(config)


def _messages(batch):
    return [m for m in batch if m.error() is None]


def _configure(bootstrap, group, setting):
    configured = subprocess.run([BINARY, "groups", "configure", group, "--set", setting, "--bootstrap", bootstrap],
                                capture_output=True, text=True, timeout=30)
    assert configured.returncode == 0, configured.stderr


def test_two_workers_share_four_partitions_each_job_accepted_once(share_broker):
    bootstrap = share_broker.bootstrap
    topic, group = unique("jobs"), unique("workers")
    _topic(bootstrap, topic, 4)
    # Locks long enough for a worker starved of the CPU on a loaded run (3 s locks expired
    # under it: jobs handed out twice, as they should be).
    _configure(bootstrap, group, "share.record.lock.duration.ms=30000")
    jobs = [b"job-%d" % i for i in range(1200)]

    done = {}
    lock = threading.Lock()
    ready = [threading.Event(), threading.Event()]

    def work(index):
        name = "w%d" % index
        consumer = _share_consumer(bootstrap, group)
        consumer.subscribe([topic])
        deadline = time.time() + 60
        while time.time() < deadline:
            with lock:
                if len(done) >= len(jobs):
                    break
            batch = _messages(consumer.poll(0.5))
            ready[index].set()
            for message in batch:
                time.sleep(0.002)  # the job's work (2.4 s for all: both workers get some)
                with lock:
                    done.setdefault(message.value(), []).append((name, message.delivery_count()))
        # Implicit mode accepts a batch at the next poll or commit: commit the last one, or
        # close() gives it back (as Kafka does too).
        consumer.commit_sync(10)
        consumer.close()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for w in workers:
        w.start()
    # A pool of workers waiting for jobs, then the jobs.
    for event in ready:
        assert event.wait(30)
    _produce(bootstrap, topic, jobs, partitions=4)
    for w in workers:
        w.join(90)
    assert sorted(done) == sorted(jobs), "%d of %d jobs seen" % (len(done), len(jobs))
    twice = {job: who for job, who in done.items() if len(who) > 1}
    assert not twice, list(twice.items())[:5]
    by_worker = {}
    for who in done.values():
        by_worker[who[0][0]] = by_worker.get(who[0][0], 0) + 1
    assert len(by_worker) == 2 and min(by_worker.values()) > 0, by_worker
    # The broker reports the group with its type.
    tool = subprocess.run([BINARY, "groups", "list", "--bootstrap", bootstrap], capture_output=True, text=True, timeout=30)
    assert group in tool.stdout


def test_release_redelivers_reject_archives_and_the_limit_holds(share_broker):
    from confluent_kafka import AcknowledgeType
    bootstrap = share_broker.bootstrap
    topic, group = unique("retry"), unique("retry-workers")
    _topic(bootstrap, topic, 1)
    _produce(bootstrap, topic, [b"poison", b"good"])
    consumer = _share_consumer(bootstrap, group, explicit=True)
    consumer.subscribe([topic])
    counts = []
    good_done = False
    deadline = time.time() + 60
    while time.time() < deadline:
        messages = _messages(consumer.poll(0.5))
        for m in messages:
            if m.value() == b"poison":
                counts.append(m.delivery_count())
                consumer.acknowledge(m, AcknowledgeType.RELEASE)
            else:
                consumer.acknowledge(m, AcknowledgeType.ACCEPT)
                good_done = True
        if messages:
            result = consumer.commit_sync(10)
            assert all(error is None for error in (result or {}).values()), result
        if len(counts) >= 5 and good_done:
            # Delivered 5 times (the default limit): archived, never again.
            extra = _messages(consumer.poll(2.0))
            assert not [m for m in extra if m.value() == b"poison"]
            break
    assert counts == [1, 2, 3, 4, 5], counts
    assert good_done

    # REJECT archives at once.
    _produce(bootstrap, topic, [b"bad"])
    rejected = False
    deadline = time.time() + 20
    while time.time() < deadline and not rejected:
        for m in _messages(consumer.poll(0.5)):
            if m.value() == b"bad":
                consumer.acknowledge(m, AcknowledgeType.REJECT)
                rejected = True
            else:
                consumer.acknowledge(m, AcknowledgeType.ACCEPT)
        consumer.commit_sync(10)
    assert rejected
    assert not [m for m in _messages(consumer.poll(2.0)) if m.value() == b"bad"]
    consumer.close()


def test_a_stalled_worker_loses_its_jobs_and_its_late_ack_is_refused(share_broker):
    from confluent_kafka import AcknowledgeType
    bootstrap = share_broker.bootstrap
    topic, group = unique("stall"), unique("stall-workers")
    _topic(bootstrap, topic, 1)
    _produce(bootstrap, topic, [b"slow-job"])
    slow = _share_consumer(bootstrap, group, explicit=True)
    slow.subscribe([topic])
    held = []
    deadline = time.time() + 20
    while not held and time.time() < deadline:
        held = _messages(slow.poll(0.5))
    assert [m.value() for m in held] == [b"slow-job"] and held[0].delivery_count() == 1
    # The lock (3 s here) runs out while the slow worker sleeps; another worker gets the job.
    other = _share_consumer(bootstrap, group)
    other.subscribe([topic])
    again = []
    deadline = time.time() + 20
    while not again and time.time() < deadline:
        again = _messages(other.poll(0.5))
    assert [m.value() for m in again] == [b"slow-job"] and again[0].delivery_count() == 2
    # The slow worker's acknowledgement comes too late.
    slow.acknowledge(held[0], AcknowledgeType.ACCEPT)
    result = slow.commit_sync(10)
    errors = [e for e in (result or {}).values() if e is not None]
    assert errors and "INVALID_RECORD_STATE" in str(errors[0]), result
    other.close()
    slow.close()


def test_close_releases_held_jobs_at_once(share_broker):
    bootstrap = share_broker.bootstrap
    topic, group = unique("close"), unique("close-workers")
    _topic(bootstrap, topic, 1)
    _produce(bootstrap, topic, [b"j1", b"j2", b"j3"])
    # Locks of 30 s: the jobs coming back well before that can only be the close's release.
    _configure(bootstrap, group, "share.record.lock.duration.ms=30000")
    first = _share_consumer(bootstrap, group, explicit=True)
    first.subscribe([topic])
    held = []
    deadline = time.time() + 20
    while not held and time.time() < deadline:
        held = _messages(first.poll(0.5))
    assert held
    first.close()  # releases what it held, without waiting for the lock
    second = _share_consumer(bootstrap, group)
    second.subscribe([topic])
    got = []
    started = time.time()
    while len(got) < 3 and time.time() - started < 20:
        got += _messages(second.poll(0.5))
    assert sorted(m.value() for m in got) == [b"j1", b"j2", b"j3"]
    assert time.time() - started < 15, "held jobs came back only after their lock expired"
    assert all(m.delivery_count() == 2 for m in got if m.value() in [h.value() for h in held])
    second.close()


@pytest.mark.parametrize("damage", ["records", "header"])
def test_a_batch_damaged_after_it_was_read_is_an_error_not_garbage(share_broker, damage):
    """A batch that rots on disk while the node runs, after the share window was read past it
    (its jobs handed out once, then released): the next worker gets the jobs before it, then
    CORRUPT_MESSAGE for the partition, never the damaged bytes (they went out as stored: jobs a
    client cannot decode expire unprocessed until the delivery limit archives them, with nothing
    said), and the partition is counted damaged. "records": bytes in the first batch's records;
    "header": the second batch's header (the jobs of the first used to fail with it)."""
    from confluent_kafka import KafkaError
    bootstrap = share_broker.bootstrap
    topic, group = unique("rot"), unique("rot-workers")
    _topic(bootstrap, topic, 1)
    values = [b"%05d-" % i + b"x" * 250 for i in range(200)]
    _produce(bootstrap, topic, values[:100])  # two produces: two batches, each over one 16 KiB read
    _produce(bootstrap, topic, values[100:])
    first = _share_consumer(bootstrap, group, explicit=True)
    first.subscribe([topic])
    held = []
    deadline = time.time() + 20
    while len(held) < 200 and time.time() < deadline:
        held += _messages(first.poll(0.5))
    assert len(held) == 200
    first.close()  # gives them back: the window has been read past them
    with open(os.path.join(share_broker.data_dir, topic + "-0", "00000000000000000000.log"), "r+b") as f:
        length = int.from_bytes(f.read(12)[8:12], "big")  # the first batch's length
        if damage == "records":
            f.seek(12 + length // 2)  # in the middle of its records
            f.write(b"\xff" * 8)
        else:
            f.seek(12 + length + 16)  # the second batch's magic byte
            f.write(b"\xff")
    second = _share_consumer(bootstrap, group)
    second.subscribe([topic])
    got, error = share_poll_until_error(second, 20)
    # Polling on, the worker asks once per long poll, not in a busy loop over the damage.
    fetches, more = share_fetches_while_polling(share_broker, second)
    got += more
    assert fetches < 40
    second.close()
    assert error is not None and error.code() == KafkaError.INVALID_MSG, error
    expected = [] if damage == "records" else values[:len(got)]
    assert got == expected and (damage == "records" or len(got) >= 1), (len(got), got[:2])
    assert metric(share_broker, "tidemark_partitions_damaged") == 1


def test_share_and_consumer_groups_read_one_topic_independently(share_broker):
    from confluent_kafka import Consumer
    bootstrap = share_broker.bootstrap
    topic = unique("both")
    _topic(bootstrap, topic, 2)
    values = [b"v%d" % i for i in range(100)]
    _produce(bootstrap, topic, values, partitions=2)
    share = _share_consumer(bootstrap, unique("share-side"))
    share.subscribe([topic])
    plain = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("plain-side"), "auto.offset.reset": "earliest"})
    plain.subscribe([topic])
    got_share, got_plain = [], []
    deadline = time.time() + 40
    while (len(got_share) < 100 or len(got_plain) < 100) and time.time() < deadline:
        got_share += [m.value() for m in _messages(share.poll(0.2))]
        got_plain += [m.value() for m in plain.consume(100, 0.2) if not m.error()]
    assert sorted(got_share) == sorted(values) and sorted(got_plain) == sorted(values)
    share.close()
    plain.close()


def test_kill_9_loses_no_accepted_job_and_redelivers_held_ones(tmp_path):
    """Accepted (and answered) jobs are never delivered again after kill -9; jobs that were
    acquired but not acknowledged are delivered again, with the delivery count they had (the
    delivery the kill cut is not counted); nothing is lost."""
    from confluent_kafka import AcknowledgeType
    node = Broker(str(tmp_path / "data"), free_port())
    node.start()
    bootstrap = node.bootstrap
    topic, group = unique("crash"), unique("crash-workers")
    _topic(bootstrap, topic, 2)
    jobs = [b"c%d" % i for i in range(200)]
    _produce(bootstrap, topic, jobs, partitions=2)
    consumer = _share_consumer(bootstrap, group, explicit=True)
    consumer.subscribe([topic])
    accepted = set()
    deadline = time.time() + 30
    while len(accepted) < 60 and time.time() < deadline:
        messages = _messages(consumer.poll(0.5))
        for m in messages:
            consumer.acknowledge(m, AcknowledgeType.ACCEPT)
        result = consumer.commit_sync(10)
        assert all(e is None for e in (result or {}).values()), result
        accepted |= {m.value() for m in messages}
    # Take one more batch and never acknowledge it, then kill the broker.
    pending = []
    deadline = time.time() + 30
    while not pending and time.time() < deadline:
        pending = _messages(consumer.poll(0.5))
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait()
    node.proc = None
    node.start()
    try:
        second = _share_consumer(bootstrap, group)
        second.subscribe([topic])
        seen = {}
        deadline = time.time() + 60
        while len(seen) < len(jobs) - len(accepted) and time.time() < deadline:
            for m in _messages(second.poll(0.5)):
                seen[m.value()] = m.delivery_count()
        again = accepted & set(seen)
        assert not again, "accepted jobs delivered again: %r" % sorted(again)[:5]
        assert set(seen) | accepted == set(jobs), "lost: %r" % sorted(set(jobs) - set(seen) - accepted)[:5]
        # The delivery the kill cut is not counted: the held jobs come back with its count.
        assert all(seen[m.value()] == m.delivery_count() for m in pending), \
            [(m.value(), m.delivery_count(), seen.get(m.value())) for m in pending][:5]
        second.close()
        consumer.close()
    finally:
        node.stop()


def test_a_clean_restart_does_not_spend_a_held_jobs_last_attempt(tmp_path):
    """A broker stopped with SIGTERM while a live worker holds a job on its last allowed
    attempt: the stop is not the job's failure, so the job is not archived or dead-lettered;
    after the restart it is delivered again, with the same delivery count as the attempt the
    stop cut (not counted, as in Kafka, whose acquisitions are not persisted). Jobs the worker
    finished before the stop are not delivered again. (Counted, a rolling restart sent every
    job held on its last attempt to the dead-letter topic.)"""
    from confluent_kafka import AcknowledgeType, Consumer
    node = Broker(str(tmp_path / "data"), free_port())
    node.start()
    try:
        bootstrap = node.bootstrap
        topic, group = unique("restarted"), unique("restart-workers")
        dlq = "dlq." + topic
        _topic(bootstrap, topic, 1)
        _configure(bootstrap, group, "share.delivery.count.limit=2")
        _configure(bootstrap, group, "errors.deadletterqueue.topic.name=" + dlq)
        _produce(bootstrap, topic, [b"last-attempt", b"done"])
        worker = _share_consumer(bootstrap, group, explicit=True)
        worker.subscribe([topic])
        held = None
        deadline = time.time() + 30
        while held is None and time.time() < deadline:
            for m in _messages(worker.poll(0.5)):
                if m.value() == b"done":
                    worker.acknowledge(m, AcknowledgeType.ACCEPT)
                elif m.delivery_count() == 1:
                    worker.acknowledge(m, AcknowledgeType.RELEASE)  # the first attempt fails
                else:
                    held = m  # the last attempt, still running when the broker stops
            worker.commit_sync(10)
        assert held is not None and held.delivery_count() == 2
        node.restart()
        again = _share_consumer(bootstrap, group, explicit=True)
        again.subscribe([topic])
        seen = []
        deadline = time.time() + 30
        quiet_until = None
        # Until the job comes back, then 3 s more: nothing else (the finished job) may follow.
        while time.time() < deadline and (quiet_until is None or time.time() < quiet_until):
            for m in _messages(again.poll(0.5)):
                seen.append((m.value(), m.delivery_count()))
                again.acknowledge(m, AcknowledgeType.ACCEPT)
            again.commit_sync(10)
            if seen and quiet_until is None:
                quiet_until = time.time() + 3
        assert seen == [(b"last-attempt", 2)], seen
        again.close()
        try:
            worker.close()
        except Exception:
            pass
        reader = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("dlq-reader"), "auto.offset.reset": "earliest",
                           "topic.metadata.refresh.interval.ms": 500})
        reader.subscribe([dlq])
        letters = [m for m in reader.consume(10, 3) if not m.error()]
        reader.close()
        assert letters == [], [(m.value(), m.headers()) for m in letters]
    finally:
        node.stop()


def test_tools_list_describe_configure_and_reset_share_groups(share_broker):
    """`tidemark groups` over the wire: list shows the share type, describe shows each
    partition's start, end, available, held (by whom) and lag, configure sets group configs
    (unknown keys refused), reset-offsets moves a share group's start (refused while it has
    members)."""
    from confluent_kafka import AcknowledgeType
    bootstrap = share_broker.bootstrap
    topic, group = unique("toolq"), unique("tool-workers")
    _topic(bootstrap, topic, 2)
    _produce(bootstrap, topic, [b"t%d" % i for i in range(10)], partitions=2)

    def tool(*args):
        return subprocess.run([BINARY, "groups", *args, "--bootstrap", bootstrap], capture_output=True, text=True, timeout=30)

    configured = tool("configure", group, "--set", "share.delivery.count.limit=2", "--set", "share.record.lock.duration.ms=20000")
    assert configured.returncode == 0, configured.stderr
    bad = tool("configure", group, "--set", "share.no.such.key=1")
    assert bad.returncode != 0 and "share.no.such.key" in (bad.stderr + bad.stdout)
    worse = tool("configure", group, "--set", "share.delivery.count.limit=99")
    assert worse.returncode != 0

    consumer = _share_consumer(bootstrap, group, explicit=True)
    consumer.subscribe([topic])
    held = []
    deadline = time.time() + 20
    while len(held) < 10 and time.time() < deadline:
        held += _messages(consumer.poll(0.5))
    for m in held[:4]:
        consumer.acknowledge(m, AcknowledgeType.ACCEPT)
    for m in held[4:]:
        consumer.acknowledge(m, AcknowledgeType.RELEASE)
    consumer.commit_sync(10)
    # Hold the released ones again (second delivery) and describe while held.
    again = []
    deadline = time.time() + 20
    while len(again) < 6 and time.time() < deadline:
        again += _messages(consumer.poll(0.5))
    assert all(m.delivery_count() == 2 for m in again)

    listed = tool("list")
    assert listed.returncode == 0 and "%s\tshare" % group in listed.stdout, listed.stdout
    described = tool("describe", group)
    assert described.returncode == 0, described.stderr
    out = described.stdout
    assert "TYPE share" in out and "MEMBERS 1" in out and "held by" in out, out
    assert "total lag: 6" in out, out

    refused = tool("reset-offsets", group, "--topic", topic, "--to-latest", "--execute")
    assert refused.returncode != 0
    # Release everything (limit 2 reached: archived), leave, then reset to the earliest.
    for m in again:
        consumer.acknowledge(m, AcknowledgeType.RELEASE)
    consumer.commit_sync(10)
    consumer.close()
    described = tool("describe", group)
    assert "total lag: 0" in described.stdout, described.stdout
    deadline = time.time() + 30
    while time.time() < deadline:
        reset = tool("reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
        if reset.returncode == 0:
            break
        time.sleep(0.5)
    assert reset.returncode == 0, reset.stderr
    assert "total lag: 10" in tool("describe", group).stdout


def test_a_few_records_of_a_large_batch_arrive_intact(share_broker):
    """A producer's batch of hundreds of records, fetched a few records at a time: each
    fetch carries only the acquired records (rebuilt at their original offsets), every record
    arrives once with its key, value and headers."""
    from confluent_kafka import AcknowledgeType, Producer, ShareConsumer
    bootstrap = share_broker.bootstrap
    topic, group = unique("bigbatch"), unique("bigbatch-workers")
    _topic(bootstrap, topic, 1)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 200, "batch.num.messages": 1000,
                         "compression.type": "lz4"})
    values = [os.urandom(200) for _ in range(400)]  # incompressible: the batch is ~90 KB
    for i in range(400):
        producer.produce(topic, key=b"k%d" % i, value=values[i], headers=[("n", b"%d" % i)])
    assert producer.flush(30) == 0
    consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                              "share.acknowledgement.mode": "explicit", "max.poll.records": 5})
    consumer.subscribe([topic])
    seen = {}
    deadline = time.time() + 60
    while len(seen) < 400 and time.time() < deadline:
        for m in _messages(consumer.poll(0.5)):
            assert m.offset() not in seen
            i = m.offset()
            assert m.key() == b"k%d" % i and m.value() == values[i], (i, m.key())
            assert dict(m.headers() or [])["n"] == b"%d" % i
            seen[i] = m.delivery_count()
            consumer.acknowledge(m, AcknowledgeType.ACCEPT)
        consumer.commit_sync(10)
    assert sorted(seen) == list(range(400)) and set(seen.values()) == {1}
    consumer.close()


def test_retry_backoff_delays_redelivery_without_blocking_others(share_broker):
    """share.redelivery.backoff.ms: a released job comes back only after its backoff (half to
    all of 1.5 s here, then twice that), while the jobs after it flow meanwhile."""
    from confluent_kafka import AcknowledgeType
    bootstrap = share_broker.bootstrap
    topic, group = unique("backoff"), unique("backoff-workers")
    _topic(bootstrap, topic, 1)
    configured = subprocess.run([BINARY, "groups", "configure", group, "--set", "share.redelivery.backoff.ms=1500",
                                 "--bootstrap", bootstrap], capture_output=True, text=True, timeout=30)
    assert configured.returncode == 0, configured.stderr
    _produce(bootstrap, topic, [b"flaky"])
    consumer = _share_consumer(bootstrap, group, explicit=True)
    consumer.subscribe([topic])
    deliveries = []
    others = []
    deadline = time.time() + 30
    while len(deliveries) < 3 and time.time() < deadline:
        for m in _messages(consumer.poll(0.1)):
            if m.value() == b"flaky":
                deliveries.append((time.time(), m.delivery_count()))
                consumer.acknowledge(m, AcknowledgeType.RELEASE)
                if len(deliveries) == 1:
                    _produce(bootstrap, topic, [b"later"])  # must not wait behind the flaky one
            else:
                others.append(time.time())
                consumer.acknowledge(m, AcknowledgeType.ACCEPT)
        consumer.commit_sync(10)
    consumer.close()
    assert [count for _, count in deliveries] == [1, 2, 3], deliveries
    first_wait = deliveries[1][0] - deliveries[0][0]
    second_wait = deliveries[2][0] - deliveries[1][0]
    assert 0.6 <= first_wait <= 10.0, first_wait
    assert 1.4 <= second_wait <= 15.0, second_wait
    assert others and others[0] < deliveries[1][0], "a later job waited behind the backing-off one"


def test_dead_letter_topic_gets_rejected_jobs_and_replay_requeues_them(share_broker):
    """errors.deadletterqueue.topic.name (KIP-1191): a REJECTed job lands once in the DLQ with
    its key, value, headers (traceparent included) and the _dlq.errors.* headers; `tidemark
    replay --strip-headers '_dlq.errors.*'` puts it back into the work topic."""
    from confluent_kafka import AcknowledgeType, Consumer, Producer
    bootstrap = share_broker.bootstrap
    topic, group = unique("orders"), unique("billing")
    dlq = "dlq." + topic
    _topic(bootstrap, topic, 1)
    configured = subprocess.run([BINARY, "groups", "configure", group, "--set", "errors.deadletterqueue.topic.name=" + dlq,
                                 "--bootstrap", bootstrap], capture_output=True, text=True, timeout=30)
    assert configured.returncode == 0, configured.stderr
    refused = subprocess.run([BINARY, "groups", "configure", group, "--set", "errors.deadletterqueue.topic.name=" + topic,
                              "--bootstrap", bootstrap], capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "dlq." in (refused.stderr + refused.stdout)
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=b"order-1", value=b"poison", headers=[("traceparent", b"00-4bf92f-00f067-01")])
    producer.produce(topic, key=b"order-2", value=b"fine")
    assert producer.flush(10) == 0
    worker = _share_consumer(bootstrap, group, explicit=True)
    worker.subscribe([topic])
    handled = 0
    deadline = time.time() + 20
    while handled < 2 and time.time() < deadline:
        for m in _messages(worker.poll(0.5)):
            worker.acknowledge(m, AcknowledgeType.REJECT if m.value() == b"poison" else AcknowledgeType.ACCEPT)
            handled += 1
        worker.commit_sync(10)
    worker.close()
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("dlq-reader"), "auto.offset.reset": "earliest"})
    reader.subscribe([dlq])
    letters = []
    deadline = time.time() + 20
    while not letters and time.time() < deadline:
        letters = [m for m in reader.consume(10, 0.5) if not m.error()]
    reader.close()
    assert len(letters) == 1
    letter = letters[0]
    headers = dict(letter.headers())
    assert letter.key() == b"order-1" and letter.value() == b"poison"
    assert headers["traceparent"] == b"00-4bf92f-00f067-01"
    assert headers["_dlq.errors.disposition"] == b"REJECTED"
    assert headers["_dlq.errors.original.topic"] == topic.encode()
    assert headers["_dlq.errors.original.offset"] == b"0"
    assert headers["_dlq.errors.group"] == group.encode()
    assert headers["_dlq.errors.delivery.count"] == b"1"

    replay = subprocess.run([BINARY, "replay", dlq, "--bootstrap", bootstrap, "--to-topic", topic,
                             "--strip-headers", "_dlq.errors.*"], capture_output=True, text=True, timeout=30)
    assert replay.returncode == 0, replay.stderr
    again = _share_consumer(bootstrap, group, explicit=True)
    again.subscribe([topic])
    requeued = []
    deadline = time.time() + 20
    while not requeued and time.time() < deadline:
        requeued = _messages(again.poll(0.5))
    assert [m.value() for m in requeued] == [b"poison"]
    names = [k for k, _ in requeued[0].headers()]
    assert "traceparent" in names and not [n for n in names if n.startswith("_dlq.errors.")], names
    again.acknowledge(requeued[0], AcknowledgeType.ACCEPT)
    again.commit_sync(10)
    again.close()


def test_delayed_jobs_and_per_key_ordering_over_the_wire(share_broker):
    """A job with header tidemark.deliver.at waits until then (jobs after it do not);
    share.key.ordering=true hands out one job per key at a time, in order."""
    from confluent_kafka import AcknowledgeType, Producer
    bootstrap = share_broker.bootstrap
    topic, group = unique("delayed"), unique("delayed-workers")
    _topic(bootstrap, topic, 1)
    configured = subprocess.run([BINARY, "groups", "configure", group, "--set", "share.key.ordering=true",
                                 "--bootstrap", bootstrap], capture_output=True, text=True, timeout=30)
    assert configured.returncode == 0, configured.stderr
    due = int(time.time() * 1000) + 6000  # well after a loaded run's join
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=b"report", value=b"at-due", headers=[("tidemark.deliver.at", str(due).encode())])
    for i in range(3):
        producer.produce(topic, key=b"user-1", value=b"u1-%d" % i)
    producer.produce(topic, key=b"user-2", value=b"u2-0")
    assert producer.flush(10) == 0
    worker = _share_consumer(bootstrap, group, explicit=True)
    worker.subscribe([topic])
    seen = []
    deadline = time.time() + 30
    while len(seen) < 5 and time.time() < deadline:
        batch = _messages(worker.poll(0.2))
        # Never two records of one key in one batch (the first is not finished yet).
        keys = [m.key() for m in batch]
        assert len(keys) == len(set(keys)), keys
        for m in batch:
            seen.append((time.time(), m.value()))
            worker.acknowledge(m, AcknowledgeType.ACCEPT)
        worker.commit_sync(10)
    worker.close()
    values = [v for _, v in seen]
    assert sorted(values) == sorted([b"at-due", b"u1-0", b"u1-1", b"u1-2", b"u2-0"]), values
    assert [v for v in values if v.startswith(b"u1-")] == [b"u1-0", b"u1-1", b"u1-2"]
    at_due = [t for t, v in seen if v == b"at-due"][0]
    assert at_due * 1000 >= due - 50, "delivered %d ms early" % (due - at_due * 1000)
    assert values.index(b"at-due") == len(values) - 1, "the delayed job held back the others: %r" % values


def test_a_topic_deleted_and_made_again_under_a_running_worker_gives_it_the_new_jobs(share_broker):
    """A worker polls a topic that is deleted and created again under the same name: it gets
    every new job once, and nothing of the old topic's share state (locks, delivery counts)
    reaches them. With the state kept by name, its session went on acquiring the new records
    under the old topic's state, answered under the new topic id the client did not know: it
    never saw them, and each ran out its delivery attempts into the dead-letter topic."""
    from confluent_kafka import AcknowledgeType, Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient
    bootstrap = share_broker.bootstrap
    topic, group, dlq = unique("remade"), unique("remade-g"), unique("dlq.remade")
    _topic(bootstrap, topic, 1)
    _configure(bootstrap, group, "share.delivery.count.limit=2")
    _configure(bootstrap, group, "errors.deadletterqueue.topic.name=" + dlq)
    got, stop, failures = [], threading.Event(), []

    def work():
        try:
            worker = _share_consumer(bootstrap, group, explicit=True)
            worker.subscribe([topic])
            while not stop.is_set():
                batch = _messages(worker.poll(0.5))
                for message in batch:
                    got.append(message.value())
                    worker.acknowledge(message, AcknowledgeType.ACCEPT)
                if batch:
                    worker.commit_sync(10)
            worker.close()
        except Exception as error:  # surfaced by the main thread
            failures.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    try:
        _produce(bootstrap, topic, [b"old-%d" % i for i in range(10)], partitions=1)
        deadline = time.time() + 30
        while len(got) < 10 and time.time() < deadline:
            time.sleep(0.1)
        assert sorted(got) == sorted(b"old-%d" % i for i in range(10))
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.delete_topics([topic]).values():
            future.result(10)
        _topic(bootstrap, topic, 1)
        _produce(bootstrap, topic, [b"new-%d" % i for i in range(100)], partitions=1)
        # Lock duration 3 s, delivery limit 2: the old behaviour had dead-lettered them all in 6 s.
        deadline = time.time() + 30
        while len([v for v in got if v.startswith(b"new-")]) < 100 and time.time() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(20)
    assert not failures, failures
    new = [v for v in got if v.startswith(b"new-")]
    assert sorted(new) == sorted(b"new-%d" % i for i in range(100))
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("audit"), "auto.offset.reset": "earliest"})
    try:
        reader.assign([TopicPartition(dlq, 0, 0)])
        letters = [m for m in reader.consume(1000, 3.0) if m.error() is None]
    finally:
        reader.close()
    assert letters == []


def test_share_auto_offset_reset_by_duration_starts_at_recent_jobs(share_broker):
    """KIP-1106: share.auto.offset.reset=by_duration:<ISO-8601> set with the AdminClient on a
    GROUP resource (it was refused as INVALID_CONFIG): a ShareConsumer's group starts at the
    first job no older than the duration; a negative duration is refused, as in Kafka."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                       ResourceType)
    topic, group = unique("by-duration"), unique("recent-workers")
    _topic(share_broker.bootstrap, topic, 1)
    now = int(time.time() * 1000)
    producer = Producer({"bootstrap.servers": share_broker.bootstrap})
    for i, age_ms in enumerate([7_200_000, 5_400_000, 600_000, 1_000]):
        producer.produce(topic, value=b"job-%d" % i, timestamp=now - age_ms)
    assert producer.flush(30) == 0
    admin = AdminClient({"bootstrap.servers": share_broker.bootstrap})

    def alter(value):
        resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
            ConfigEntry("share.auto.offset.reset", value, incremental_operation=AlterConfigOpType.SET)])
        return admin.incremental_alter_configs([resource])[resource]

    with pytest.raises(Exception) as refused:
        alter("by_duration:-PT1H").result(30)
    assert "share.auto.offset.reset" in str(refused.value), refused.value
    alter("by_duration:PT1H").result(30)
    worker = _share_consumer(share_broker.bootstrap, group)
    worker.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < 2 and time.time() < deadline:
        got += [m.value() for m in _messages(worker.poll(0.5))]
    time.sleep(1)
    got += [m.value() for m in _messages(worker.poll(0.5))]
    worker.close()
    assert got == [b"job-2", b"job-3"], got


def test_describe_shows_delayed_jobs_and_partitions_no_worker_read(share_broker):
    """`tidemark groups describe` over the wire says what /metrics says: a job waiting for its
    delivery time is DELAYED, not AVAILABLE, and a partition added while no worker ran is
    listed with its jobs in the lag (it was left out: the total lag read 1 with 4 jobs waiting)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewPartitions
    topic, group = unique("describe-queue"), unique("describe-workers")
    _topic(share_broker.bootstrap, topic, 1)
    producer = Producer({"bootstrap.servers": share_broker.bootstrap})
    producer.produce(topic, value=b"first", partition=0)
    assert producer.flush(30) == 0
    worker = _share_consumer(share_broker.bootstrap, group)
    worker.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while not got and time.time() < deadline:
        got = _messages(worker.poll(0.5))
    worker.poll(0.5)  # its acceptance goes with this poll (implicit mode)
    worker.close()
    later = int(time.time() * 1000) + 600_000
    producer.produce(topic, value=b"later", partition=0, headers=[("tidemark.deliver.at", str(later).encode())])
    producer.produce(topic, value=b"now", partition=0)
    assert producer.flush(30) == 0
    admin = AdminClient({"bootstrap.servers": share_broker.bootstrap})
    admin.create_partitions([NewPartitions(topic, 2)])[topic].result(30)
    producer = Producer({"bootstrap.servers": share_broker.bootstrap})  # (one that knows partition 1)
    for i in range(3):
        producer.produce(topic, value=b"added-%d" % i, partition=1)
    assert producer.flush(30) == 0
    out = subprocess.run([BINARY, "groups", "describe", group, "--bootstrap", share_broker.bootstrap],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = next(line for line in lines if line.startswith("TOPIC\tPARTITION")).split("\t")
    rows = {int(r[1]): dict(zip(header, r)) for r in (line.split("\t") for line in lines) if r[0] == topic}
    assert set(rows) == {0, 1}, out.stdout
    assert rows[1]["LAG"] == "3" and rows[1]["START"] == "0", out.stdout
    assert rows[0]["LAG"] == "2", out.stdout
    assert "total lag: 5" in out.stdout, out.stdout
    # The window reaches the delayed job once a worker has read that far.
    worker = _share_consumer(share_broker.bootstrap, group, explicit=True)
    worker.subscribe([topic])
    seen = []
    deadline = time.time() + 30
    while len(seen) < 4 and time.time() < deadline:
        batch = _messages(worker.poll(0.5))
        seen += [m.value() for m in batch]
    out = subprocess.run([BINARY, "groups", "describe", group, "--bootstrap", share_broker.bootstrap],
                         capture_output=True, text=True, timeout=30)
    worker.close()
    lines = out.stdout.splitlines()
    rows = {int(r[1]): dict(zip(header, r)) for r in (line.split("\t") for line in lines) if r[0] == topic}
    assert sorted(seen) == [b"added-0", b"added-1", b"added-2", b"now"], seen
    assert rows[0]["DELAYED"] == "1" and rows[0]["AVAILABLE"] == "0", out.stdout

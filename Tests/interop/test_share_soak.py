"""Soak: 100,000 jobs, 4 worker processes, 5% failing once (RELEASE), 1% poison (REJECT) to a
dead-letter topic, and the broker killed with SIGKILL twice along the way. Every job must end
accepted or in the dead-letter topic; none is lost; none is in the dead-letter topic twice."""
import multiprocessing as mp
import os
import signal
import time

from confluent_kafka import KafkaException

from conftest import Broker, free_port, unique

JOBS = 100_000
PARTITIONS = 4
WORKERS = 4


def _worker(bootstrap, topic, group, results, stop):
    from confluent_kafka import AcknowledgeType, ShareConsumer
    consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                              "share.acknowledgement.mode": "explicit", "max.poll.records": 200})
    consumer.subscribe([topic])
    while not stop.is_set():
        try:
            batch = consumer.poll(0.5)
        except Exception:
            time.sleep(0.2)
            continue
        accepted = {}
        for m in batch:
            if m.error():
                continue
            i = int(m.value()[1:])
            if i % 100 == 0:
                consumer.acknowledge(m, AcknowledgeType.REJECT)           # poison
            elif i % 20 == 1 and m.delivery_count() == 1:
                consumer.acknowledge(m, AcknowledgeType.RELEASE)          # fails once
            else:
                consumer.acknowledge(m, AcknowledgeType.ACCEPT)
                accepted.setdefault(m.partition(), []).append(i)
        if not batch:
            continue
        try:
            outcome = consumer.commit_sync(30) or {}
        except Exception:
            continue                                                      # not acknowledged: comes back
        failed = {tp.partition for tp, error in outcome.items() if error is not None}
        done = [i for p, jobs in accepted.items() if p not in failed for i in jobs]
        if done:
            results.put(done)
    try:
        consumer.close()
    except Exception:
        pass


def _dead_letters(bootstrap, dlq):
    """(original partition, original offset) -> job number, and how many copies each has."""
    from confluent_kafka import Consumer, TopicPartition
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("dlq-audit"), "enable.auto.commit": False})
    try:
        metadata = reader.list_topics(dlq, timeout=10)
        if dlq not in metadata.topics or metadata.topics[dlq].error is not None:
            return {}, {}
        parts = list(metadata.topics[dlq].partitions)
        reader.assign([TopicPartition(dlq, p, 0) for p in parts])
        ends = {p: reader.get_watermark_offsets(TopicPartition(dlq, p), timeout=10)[1] for p in parts}
        positions = {p: 0 for p in parts}
        letters, copies = {}, {}
        deadline = time.time() + 60
        while any(positions[p] < ends[p] for p in parts) and time.time() < deadline:
            for m in reader.consume(1000, 1.0):
                if m.error():
                    continue
                positions[m.partition()] = m.offset() + 1
                h = dict(m.headers())
                key = (int(h["_dlq.errors.original.partition"]), int(h["_dlq.errors.original.offset"]))
                letters[key] = int(m.value()[1:])
                copies[key] = copies.get(key, 0) + 1
        return letters, copies
    finally:
        reader.close()


def _stop(workers, stop):
    stop.set()
    for w in workers:
        w.join(30)
        if w.is_alive():
            w.kill()
            w.join(5)


def test_soak_with_two_kills(tmp_path):
    from confluent_kafka import Producer
    import subprocess
    from conftest import BINARY
    node = Broker(str(tmp_path / "data"), free_port(), extra=[
        "--config", "group.share.record.lock.duration.ms=5000",
        "--config", "group.share.delivery.count.limit=4",
        "--config", "group.share.heartbeat.interval.ms=1000",
    ])
    node.start()
    bootstrap = node.bootstrap
    topic, group = unique("soak"), unique("soak-workers")
    dlq = "dlq." + topic
    subprocess.run([BINARY, "topics", "create", topic, "--partitions", str(PARTITIONS), "--bootstrap", bootstrap],
                   check=True, capture_output=True)
    subprocess.run([BINARY, "groups", "configure", group, "--set", "errors.deadletterqueue.topic.name=" + dlq,
                    "--bootstrap", bootstrap], check=True, capture_output=True)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})
    for i in range(JOBS):
        producer.produce(topic, value=b"j%d" % i, partition=i % PARTITIONS)
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0

    ctx = mp.get_context("fork")
    results, stop = ctx.Queue(), ctx.Event()
    workers = [ctx.Process(target=_worker, args=(bootstrap, topic, group, results, stop), daemon=True)
               for _ in range(WORKERS)]
    for w in workers:
        w.start()
    accepted = set()
    kills = 0
    deadline = time.time() + 400
    try:
        while time.time() < deadline:
            try:
                while True:
                    accepted.update(results.get(timeout=0.5))
            except Exception:
                pass
            if kills < 2 and len(accepted) >= JOBS * (kills + 1) // 3:
                node.proc.send_signal(signal.SIGKILL)
                node.proc.wait()
                node.proc = None
                kills += 1
                node.start()
            poison = JOBS // 100
            if kills == 2 and len(accepted) >= JOBS - poison:
                try:
                    letters, _ = _dead_letters(bootstrap, dlq)
                except KafkaException:
                    letters = {}
                if accepted | set(letters.values()) >= set(range(JOBS)):
                    break
                time.sleep(1)
        _stop(workers, stop)
        try:
            while True:
                accepted.update(results.get(timeout=0.2))
        except Exception:
            pass
        letters, copies = _dead_letters(bootstrap, dlq)
    finally:
        # Whatever failed above, no worker outlives the test: a worker left polling a stopped
        # broker would keep the test process (and CI) waiting for it at exit.
        _stop(workers, stop)
        node.stop()
    assert kills == 2
    missing = set(range(JOBS)) - accepted - set(letters.values())
    assert not missing, "%d jobs neither accepted nor dead-lettered, e.g. %r" % (len(missing), sorted(missing)[:10])
    twice = {key: n for key, n in copies.items() if n > 1}
    assert not twice, "dead letters copied more than once: %r" % list(twice.items())[:10]
    poison = {i for i in range(0, JOBS, 100)}
    assert poison <= set(letters.values()), "poison jobs missing from the DLQ: %r" % sorted(poison - set(letters.values()))[:10]

"""Thousands of partitions under a small descriptor limit (ulimit -n 300): a real broker with
1,500 partitions takes a record on every one, stops cleanly, takes a second round, is killed
with SIGKILL, and a consumer then reads both records back from every partition. The broker's
descriptors stay under the limit throughout: segment files are closed and reopened under the
open-file budget, and a fetch of all partitions holds no descriptor per partition.
(Benchmarks/partitions/run.sh does the same with 10,000 partitions and times each step.)"""
import os
import shutil
import tempfile
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker, free_port, unique

LIMIT = 300
TOPICS = 3
PER_TOPIC = 500


def produce_round(bootstrap, names, round_):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5, "log_level": 0})
    failures = []
    for name in names:
        for p in range(PER_TOPIC):
            producer.produce(name, value=b"%d:%s:%d" % (round_, name.encode(), p), partition=p,
                             on_delivery=lambda err, msg: failures.append(err) if err else None)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert failures == []


def test_1500_partitions_under_ulimit_300_survive_stop_and_kill():
    root = tempfile.mkdtemp(prefix="tidemark-interop-")
    node = Broker(os.path.join(root, "data"), free_port(), nofile=LIMIT)
    node.start()
    try:
        names = [unique("many-%d" % i) for i in range(TOPICS)]
        admin = AdminClient({"bootstrap.servers": node.bootstrap, "log_level": 0})
        for future in admin.create_topics([NewTopic(n, PER_TOPIC, 1) for n in names], request_timeout=120).values():
            future.result()
        del admin
        produce_round(node.bootstrap, names, 1)
        assert node.descriptors() < LIMIT
        node.restart()
        produce_round(node.bootstrap, names, 2)
        assert node.descriptors() < LIMIT
        node.kill()
        node.start()

        consumer = Consumer({"bootstrap.servers": node.bootstrap, "group.id": unique("many"),
                             "enable.auto.commit": False, "fetch.wait.max.ms": 10, "log_level": 0})
        consumer.assign([TopicPartition(n, p, 0) for n in names for p in range(PER_TOPIC)])
        seen = {}
        deadline = time.monotonic() + 90
        while sum(len(v) == 2 for v in seen.values()) < TOPICS * PER_TOPIC and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=5000, timeout=1):
                assert msg.error() is None, msg.error()
                round_, topic, partition = msg.value().split(b":")
                assert (topic.decode(), int(partition)) == (msg.topic(), msg.partition())
                seen.setdefault((msg.topic(), msg.partition()), set()).add(round_)
            assert node.descriptors() < LIMIT
        consumer.close()
        assert sum(v == {b"1", b"2"} for v in seen.values()) == TOPICS * PER_TOPIC
        with open(node.log_path, "rb") as log:
            assert b"Too many open files" not in log.read()
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one():
    """`ulimit -Sn 256` under a hard limit of 4096: the broker runs with 4096, and sizes its
    open-file budget from it (half), as /metrics says."""
    import resource
    import urllib.request
    root = tempfile.mkdtemp(prefix="tidemark-interop-")
    node = Broker(os.path.join(root, "data"), free_port())
    node.limit_descriptors = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096))
    node.nofile = 256
    node.start()
    try:
        with open("/proc/%d/limits" % node.proc.pid) as limits:
            line = next(l for l in limits if l.startswith("Max open files"))
        assert line.split()[3:5] == ["4096", "4096"], line
        with urllib.request.urlopen(node.http + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
        assert "\ntidemark_log_open_files_limit 2048" in text
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)

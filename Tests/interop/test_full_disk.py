"""A full disk, for real: the node's data directory on a small tmpfs (mounting needs root, as
on CI), filled to the last block while real clients produce, commit and create topics. Writes
fail with KAFKA_STORAGE_ERROR and lose nothing acknowledged; reads go on; the node restarts
on the full disk (after kill -9 too); once space is freed, writes resume without a restart."""
import os
import subprocess

import pytest

from conftest import Broker, free_port, unique
from helpers import metric, read_values


def _fill(directory):
    """Files of 64 KiB, then smaller ones, until the filesystem has no block left (again: a
    failed append gives back the page its partial write took)."""
    count = len([name for name in os.listdir(directory) if name.startswith("fill-")])
    for size in (64 << 10, 4 << 10):
        while True:
            path = os.path.join(directory, "fill-%d" % count)
            try:
                with open(path, "wb") as f:
                    f.write(b"\0" * size)
                count += 1
            except OSError:
                os.remove(path)
                break
    return count


def _free(directory):
    for name in os.listdir(directory):
        if name.startswith("fill-"):
            os.remove(os.path.join(directory, name))


def _produce(bootstrap, topic, values, idempotent=True):
    """([(offset, value)] acknowledged, errors) for `values` sent to partition 0."""
    from confluent_kafka import Producer
    config = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "message.timeout.ms": 20_000}
    # Without idempotence and retries, a storage error reaches the delivery report as itself
    # (an idempotent producer retries it until message.timeout.ms).
    config.update({"enable.idempotence": True} if idempotent else {"retries": 0})
    producer = Producer(config)
    acked, errors = [], []

    def report(err, msg):
        if err is None:
            acked.append((msg.offset(), msg.value()))
        else:
            errors.append(err)

    for value in values:
        producer.produce(topic, value=value, partition=0, on_delivery=report)
        producer.poll(0)
    producer.flush(60)
    return acked, errors


def _create(bootstrap, topic):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={"segment.bytes": "1048576"})])[topic].result(30)


def _consume_and_commit(bootstrap, topic, group, count, until_failure=False):
    """Reads `count` records of `topic` in a consumer group and commits, returns the commit's
    error; with `until_failure`, commits again until one fails (the offsets log's last page
    may have room for a few)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen = 0
    try:
        import time
        deadline = time.time() + 30
        while seen < count and time.time() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                seen += 1
        assert seen == count, "%d of %d records read" % (seen, count)
        for attempt in range(1000 if until_failure else 1):
            # Explicit offsets: librdkafka sends no commit for an offset it committed already.
            offset = count - attempt % count
            try:
                consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
            except KafkaException as failure:
                return failure.args[0]
        return None
    finally:
        consumer.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_disk_fails_writes_cleanly_keeps_reads_and_recovers(tmp_path):
    from confluent_kafka import KafkaError, KafkaException
    disk = str(tmp_path / "disk")
    os.makedirs(disk)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", disk], check=True)
    node = Broker(os.path.join(disk, "data"), free_port())
    node.log_path = str(tmp_path / "serve.log")  # not on the full disk
    try:
        node.start()
        topic, doomed = unique("full"), unique("doomed")
        _create(node.bootstrap, topic)
        _create(node.bootstrap, doomed)
        first = [b"first-%05d-" % i + b"x" * 1000 for i in range(2000)]
        acked, errors = _produce(node.bootstrap, topic, first)
        assert not errors and sorted(acked) == list(enumerate(first))

        _fill(disk)
        # Produce: what still fits in the segment's last page is stored, the rest fails with
        # KAFKA_STORAGE_ERROR.
        attempted = [b"late-%02d-" % i + b"y" * 4000 for i in range(50)]
        acked, errors = _produce(node.bootstrap, topic, attempted, idempotent=False)
        assert errors and len(acked) + len(errors) == 50 and len(acked) < 2, (len(acked), errors[:3])
        assert {e.code() for e in errors} == {KafkaError.KAFKA_STORAGE_ERROR}, errors[:3]
        first += [value for _, value in sorted(acked)]
        assert [offset for offset, _ in sorted(acked)] == list(range(2000, len(first)))
        # Reads go on; a commit and a topic creation fail with the same error, saying so.
        group = unique("full-group")
        failure = _consume_and_commit(node.bootstrap, topic, group, len(first), until_failure=True)
        assert failure is not None and failure.code() == KafkaError.KAFKA_STORAGE_ERROR, failure
        assert "committing offsets failed" in node.log_tail(300), "a failed commit is not in the log"
        other = unique("full-new")
        _fill(disk)
        with pytest.raises(KafkaException) as refused:
            _create(node.bootstrap, other)
        assert refused.value.args[0].code() == KafkaError.KAFKA_STORAGE_ERROR, refused.value
        assert "No space left" in refused.value.args[0].str()
        # A deletion the full disk refuses (topics.json cannot be rewritten) says why in the log
        # and in its error_message (librdkafka does not show that one; it came empty).
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": node.bootstrap})
        with pytest.raises(KafkaException) as undeleted:
            admin.delete_topics([doomed])[doomed].result(20)
        assert undeleted.value.args[0].code() == KafkaError.KAFKA_STORAGE_ERROR, undeleted.value
        assert any("deleting a topic failed" in line and "No space left" in line for line in node.log_tail(300).splitlines())
        assert metric(node, "tidemark_log_index_memory_bytes") >= 0  # /metrics answers

        # kill -9 and a restart on the full disk: the node comes up and serves what it had,
        # its rebuilt indexes in memory, which /metrics shows.
        node.kill()
        node.start()
        assert read_values(node.bootstrap, topic, len(first)) == first
        assert metric(node, "tidemark_log_index_memory_bytes") > 0

        # Space freed: writes resume without a restart; the failed topic can be created.
        _free(disk)
        second = [b"second-%05d" % i for i in range(100)]
        acked, errors = _produce(node.bootstrap, topic, second)
        assert not errors and sorted(acked) == list(enumerate(second, start=len(first))), (errors[:3], acked[:3])
        assert _consume_and_commit(node.bootstrap, topic, unique("after-group"), len(first) + 100) is None
        _create(node.bootstrap, other)

        node.restart()
        assert read_values(node.bootstrap, topic, len(first) + 100) == first + second
        assert metric(node, "tidemark_log_index_memory_bytes") == 0
    finally:
        node.kill()
        subprocess.run(["umount", "-l", disk])

"""The broker runs as an ordinary user: no part of it may assume root. CI runs as root, so
here the node is started as `nobody` (setpriv) and real clients produce and consume."""
import os
import pwd
import shutil
import tempfile

from conftest import Broker, free_port, unique
from helpers import read_values


def test_broker_runs_as_nobody():
    root = tempfile.mkdtemp(prefix="tidemark-nobody-")
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
    node = Broker(os.path.join(root, "data"), free_port(), user="nobody")
    node.start()
    try:
        from confluent_kafka import Producer
        from kafka import KafkaConsumer, KafkaProducer
        topic = unique("nobody")
        producer = Producer({"bootstrap.servers": node.bootstrap, "acks": "all", "enable.idempotence": True})
        for i in range(500):
            producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i)
        assert producer.flush(30) == 0
        kp = KafkaProducer(bootstrap_servers=node.bootstrap, acks="all")
        for i in range(500, 1000):
            kp.send(topic, key=b"k%d" % i, value=b"v%d" % i)
        kp.flush(30)
        kp.close()

        assert read_values(node.bootstrap, topic, 1000) == [b"v%d" % i for i in range(1000)]

        # A group consumer commits (the offsets log is written by the same user) and a restart
        # as that user keeps everything.
        kc = KafkaConsumer(topic, bootstrap_servers=node.bootstrap, group_id="g-" + topic,
                           auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=5000)
        seen = [m.value for m in kc]
        kc.commit()
        kc.close()
        assert len(seen) == 1000
        node.restart()
        kc = KafkaConsumer(topic, bootstrap_servers=node.bootstrap, group_id="g-" + topic,
                           auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=3000)
        assert [m.value for m in kc] == []
        kc.close()
        if os.geteuid() == 0:
            owners = {os.stat(os.path.join(d, f)).st_uid for d, _, fs in os.walk(node.data_dir) for f in fs}
            assert owners == {pwd.getpwnam("nobody").pw_uid}
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_one_unreadable_partition_goes_offline_alone():
    """A partition directory the broker's user cannot read: the node still starts, the other
    partition serves, the bad one answers KAFKA_STORAGE_ERROR, and SIGTERM exits 0."""
    from confluent_kafka import KafkaError, Producer
    root = tempfile.mkdtemp(prefix="tidemark-offline-")
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
    node = Broker(os.path.join(root, "data"), free_port(), user="nobody",
                  extra=["--default-partitions", "2"])
    node.start()
    try:
        topic = unique("offline")
        producer = Producer({"bootstrap.servers": node.bootstrap, "acks": "all"})
        for p in (0, 1):
            producer.produce(topic, value=b"before", partition=p)
        assert producer.flush(30) == 0
        node.stop()
        bad = os.path.join(node.data_dir, topic + "-1")
        os.chmod(bad, 0)
        try:
            node.start()
            results = {}

            def report(err, msg):
                results[msg.partition()] = err

            producer = Producer({"bootstrap.servers": node.bootstrap, "acks": "all", "message.timeout.ms": 5000,
                                 "retries": 0})
            producer.produce(topic, value=b"after", partition=0, on_delivery=report)
            producer.produce(topic, value=b"after", partition=1, on_delivery=report)
            producer.flush(30)
            assert results[0] is None
            assert results[1] is not None and results[1].code() in (KafkaError.KAFKA_STORAGE_ERROR, KafkaError._MSG_TIMED_OUT)
            # Metadata says so (no leader, as Kafka reports a replica on a failed disk), so that
            # partitioners and operators see it.
            partitions = producer.list_topics(topic, timeout=10).topics[topic].partitions
            assert partitions[1].leader == -1 and partitions[1].error is not None, partitions[1]
            assert partitions[0].leader >= 0 and partitions[0].error is None, partitions[0]
            node.stop()  # asserts exit code 0
        finally:
            os.chmod(bad, 0o755)
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_verify_names_partitions_it_cannot_check():
    """`tidemark verify DATA` said ok (exit 0) with a partition of topics.json missing, emptied,
    or unreadable by its user, and a lock file its user may not open read as "in use by a
    running broker". Each is now a problem named, exit 1, and the lock's real cause is said."""
    import subprocess
    from conftest import BINARY
    root = tempfile.mkdtemp(prefix="tidemark-verify-")
    os.chmod(root, 0o755)
    data = os.path.join(root, "data")
    try:
        made = subprocess.run([BINARY, "topics", "create", "t", "--partitions", "4", "--data", data],
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        sent = subprocess.run([BINARY, "produce", "t", "--data", data], input="".join("%d\n" % i for i in range(400)),
                              capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr

        def verify(*extra, user=None):
            prefix = ["setpriv", "--reuid=" + user, "--regid=nogroup", "--clear-groups"] if user else []
            return subprocess.run(prefix + [BINARY, "verify", data] + list(extra), capture_output=True, text=True, timeout=60)

        assert verify().returncode == 0
        shutil.rmtree(os.path.join(data, "t-1"))
        for name in os.listdir(os.path.join(data, "t-2")):
            os.remove(os.path.join(data, "t-2", name))
        out = verify()
        assert out.returncode == 1, out.stdout
        assert "t-1" in out.stdout and "missing" in out.stdout, out.stdout
        assert "t-2" in out.stdout and "no segment" in out.stdout, out.stdout
        if os.geteuid() == 0:
            for d, dirs, files in os.walk(data):
                os.chmod(d, 0o755)
                for f in files:
                    os.chmod(os.path.join(d, f), 0o644)
            os.chmod(os.path.join(data, "t-3"), 0)
            out = verify(user="nobody")
            assert out.returncode == 1, out.stdout + out.stderr
            assert "t-3" in out.stdout and "cannot be read" in out.stdout, out.stdout
            repair = verify("--repair", user="nobody")
            assert repair.returncode != 0
            assert "in use by a running broker" not in repair.stderr, repair.stderr
            assert "cannot take the lock" in repair.stderr, repair.stderr
    finally:
        os.chmod(os.path.join(data, "t-3"), 0o755) if os.path.exists(os.path.join(data, "t-3")) else None
        shutil.rmtree(root, ignore_errors=True)

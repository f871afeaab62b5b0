"""A share partition's window with one record holding its start: a job delayed until tomorrow
must not stop the jobs behind it once more of them have gone through than the window keeps
(group.share.window.max.records), and what was accepted stays accepted across a kill -9.
And the windows of all groups together stay within group.share.windows.total.max.records."""
import os
import subprocess
import time

from conftest import BINARY, serving, unique
from helpers import metric


def _describe_row(bootstrap, group, topic):
    out = subprocess.run([BINARY, "groups", "describe", group, "--bootstrap", bootstrap],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = next(line for line in lines if line.startswith("TOPIC\tPARTITION\tSTART")).split("\t")
    row = next(line for line in lines if line.startswith(topic + "\t")).split("\t")
    return dict(zip(header, row)), out.stdout


def _consume(bootstrap, topic, group, want, seconds):
    """Values a fresh explicit-ack ShareConsumer receives (each accepted) until it has `want`
    or `seconds` pass."""
    from confluent_kafka import AcknowledgeType, ShareConsumer
    worker = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                            "share.acknowledgement.mode": "explicit"})
    worker.subscribe([topic])
    seen = []
    deadline = time.time() + seconds
    try:
        while len(seen) < want and time.time() < deadline:
            batch = [m for m in worker.poll(0.5) if m.error() is None]
            for m in batch:
                seen.append(m.value())
                worker.acknowledge(m, AcknowledgeType.ACCEPT)
            if batch:
                worker.commit_sync(10)
    finally:
        worker.close()
    return seen


def test_a_job_delayed_until_tomorrow_does_not_stop_the_jobs_behind_it():
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    with serving("tidemark-window-", ["group.share.window.max.records=1000",
                                      "group.share.heartbeat.interval.ms=500"]) as node:
        bootstrap = node.bootstrap
        topic, group = unique("window"), unique("window-workers")
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
            future.result(10)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        tomorrow = int(time.time() * 1000) + 86_400_000
        producer.produce(topic, value=b"tomorrow", headers=[("tidemark.deliver.at", str(tomorrow).encode())])
        jobs = [b"job-%d" % i for i in range(5000)]
        for value in jobs:
            producer.produce(topic, value=value)
        assert producer.flush(30) == 0

        # Five times what the window keeps go out behind the delayed job, each once.
        seen = _consume(bootstrap, topic, group, len(jobs), 120)
        assert len(seen) == len(jobs) and sorted(seen) == sorted(jobs), \
            "%d of %d jobs came (%d distinct); %s" % (len(seen), len(jobs), len(set(seen)),
                                                      _describe_row(bootstrap, group, topic)[1])
        row, text = _describe_row(bootstrap, group, topic)
        assert row["START"] == "0" and row["LAG"] == "1" and row["ACQUIRED"] == "0", text

        # kill -9: the window comes back as it was (the accepted jobs stay accepted, the
        # delayed one still waits), and jobs enqueued after go out.
        node.kill()
        node.start()
        row, text = _describe_row(bootstrap, group, topic)
        assert row["START"] == "0" and row["LAG"] == "1", text
        later = [b"later-%d" % i for i in range(20)]
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        for value in later:
            producer.produce(topic, value=value)
        assert producer.flush(30) == 0
        again = _consume(bootstrap, topic, group, len(later) + 1, 8)
        assert sorted(again) == sorted(later), again


def test_groups_reading_the_same_delayed_jobs_stay_within_the_broker_wide_bound():
    """Each group keeps its own window of a partition: 6,000 jobs for tomorrow read by many
    groups were kept once per group, without bound. With the bound at 10,000 records, the
    first group reads past them to the jobs for now; the second keeps what is left and waits
    (the broker says so in its log); a third keeps its record locks' worth (500). Once the
    first group is deleted, the second reads on."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    with serving("tidemark-windows-", ["group.share.windows.total.max.records=10000",
                                       "group.share.partition.max.record.locks=500"]) as node:
        bootstrap = node.bootstrap
        topic = unique("windows")
        first, second, third = unique("windows-a"), unique("windows-b"), unique("windows-c")
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
            future.result(10)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        tomorrow = str(int(time.time() * 1000) + 86_400_000).encode()
        for i in range(6000):
            producer.produce(topic, value=b"later-%d" % i, headers=[("tidemark.deliver.at", tomorrow)])
        now = [b"now-%d" % i for i in range(10)]
        for value in now:
            producer.produce(topic, value=value)
        assert producer.flush(30) == 0

        assert sorted(_consume(bootstrap, topic, first, 10, 30)) == sorted(now)
        assert _describe_row(bootstrap, first, topic)[0]["END"] == "6010"
        assert _consume(bootstrap, topic, second, 10, 6) == []
        assert _describe_row(bootstrap, second, topic)[0]["END"] == "3990"
        assert _consume(bootstrap, topic, third, 10, 6) == []
        assert _describe_row(bootstrap, third, topic)[0]["END"] == "500"
        # The maintenance pass (once a second) counts the windows and logs the wait.
        deadline = time.time() + 10
        while time.time() < deadline and "broker-wide bound" not in open(node.log_path).read():
            time.sleep(0.2)
        assert "share windows are at their broker-wide bound" in open(node.log_path).read()
        assert metric(node, "tidemark_share_window_records") == 10500
        assert metric(node, "tidemark_share_window_records_limit") == 10000

        # Refused while the closed worker's leave is on its way (NON_EMPTY_GROUP): retried.
        deadline = time.time() + 30
        while True:
            deleted = subprocess.run([BINARY, "groups", "delete", first, "--bootstrap", bootstrap],
                                     capture_output=True, text=True, timeout=30)
            if deleted.returncode == 0 or time.time() > deadline:
                break
            time.sleep(0.5)
        assert deleted.returncode == 0, deleted.stdout + deleted.stderr
        assert sorted(_consume(bootstrap, topic, second, 10, 30)) == sorted(now)
        assert _describe_row(bootstrap, second, topic)[0]["END"] == "6010"

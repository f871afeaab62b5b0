"""A client that never negotiates: a Go program on sarama 1.22 (Debian's source, GOPATH mode)
picks request versions from the Kafka version it is configured for (Metadata v5, Fetch v4,
Produce v3, JoinGroup v1... for Kafka 2.0). It produces, consumes with a consumer group and
commits, then computes lag from __consumer_offsets with no consumer online, as lag exporters do."""
import json
import os
import subprocess
import time

import pytest

from conftest import unique

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def sarama_check():
    binary = os.path.join(ROOT, ".build", "sarama-check")
    source = os.path.join(ROOT, "Tests", "interop", "sarama", "main.go")
    if not os.path.exists(binary) or os.path.getmtime(binary) < os.path.getmtime(source):
        env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off",
                   GOCACHE=os.path.join(ROOT, ".build", "go-cache"))
        subprocess.run(["go", "build", "-o", binary, source], env=env, check=True, cwd=ROOT)
    return binary


@pytest.mark.parametrize("kafka_version", ["0.11.0.0", "2.0.0", "2.2.0"])
def test_sarama_without_negotiation(broker, sarama_check, kafka_version):
    topic, group = unique("sarama"), unique("sarama-group")
    subprocess.run([os.path.join(ROOT, ".build", "debug", "tidemark") if not os.environ.get("TIDEMARK_BIN")
                    else os.environ["TIDEMARK_BIN"], "topics", "create", topic, "--partitions", "3",
                    "--bootstrap", broker.bootstrap], check=True, capture_output=True)
    run = subprocess.run([sarama_check, broker.bootstrap, kafka_version, topic, group, "60"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout)
    assert result == {"consumed": 60, "committed": 60, "lag": 0, "partitions": 3,
                      "offset_records": result["offset_records"]}, result
    assert result["offset_records"] >= 3


def test_sarama_batches_are_stored_with_their_largest_timestamp(broker, sarama_check):
    """sarama 1.22 sends every batch with maxTimestamp -1 (it never sets the field). Kafka's
    LogValidator stores the largest record timestamp instead; so does Tidemark. Such batches
    used to kill the broker (a trap) once a partition took its first time-index entry, after
    about 4 KiB of them, and their records could not be found by time."""
    from confluent_kafka import Consumer, TopicPartition
    topic, group = unique("sarama-time"), unique("sarama-time-group")
    subprocess.run([os.environ.get("TIDEMARK_BIN") or os.path.join(ROOT, ".build", "debug", "tidemark"), "topics",
                    "create", topic, "--partitions", "1", "--bootstrap", broker.bootstrap], check=True, capture_output=True)
    before = int(time.time() * 1000) - 1000
    run = subprocess.run([sarama_check, broker.bootstrap, "2.0.0", topic, group, "400"],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr + broker.log_tail()
    assert json.loads(run.stdout)["consumed"] == 400
    assert broker.proc.poll() is None, broker.log_tail()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group + "-lookup"})
    try:
        found = consumer.offsets_for_times([TopicPartition(topic, 0, before)], timeout=10)
        assert found[0].error is None and found[0].offset == 0, found
        # From the middle: the records' own timestamps, not -1, are what a lookup sees.
        middle = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group + "-read",
                           "enable.auto.commit": False})
        middle.assign([TopicPartition(topic, 0, 200)])
        message = middle.poll(10)
        assert message is not None and message.error() is None
        stamp = message.timestamp()[1]
        middle.close()
        assert before <= stamp <= int(time.time() * 1000)
        again = consumer.offsets_for_times([TopicPartition(topic, 0, stamp)], timeout=10)
        assert again[0].offset <= 200, again
    finally:
        consumer.close()

"""A client that opens connections until the broker has no descriptor left (ulimit -n 256).

Before: the broker accepted them all, then spun a whole core retrying accept() on EMFILE, and
its segment files competed with the flood for descriptors. Now on reaching max.connections
(by default the descriptor limit less the segment files' budget and a reserve) accepting
stops until a connection closes (as Kafka's acceptor does; logged), the rest of the flood
waits in the kernel's backlog, and the clients already connected go on; and when descriptors
do run out (max.connections set above what the limit allows), accepting pauses for a second
instead of spinning."""
import os
import shutil
import socket
import tempfile
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker, free_port, unique

LIMIT = 256
FLOOD = 400


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def flood(port):
    """Opens FLOOD connections that send nothing (the kernel's backlog takes what the broker
    does not accept); returns them, open."""
    held = []
    for _ in range(FLOOD):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        except OSError:
            break
    return held


@pytest.fixture
def limited():
    nodes = []

    def start(extra=()):
        root = tempfile.mkdtemp(prefix="tidemark-interop-")
        node = Broker(os.path.join(root, "data"), free_port(), extra=extra, nofile=LIMIT)
        node.start()
        nodes.append((node, root))
        return node
    yield start
    for node, root in nodes:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def produce_one(producer, topic, value):
    failures = []
    producer.produce(topic, value=value, on_delivery=lambda err, msg: failures.append(err) if err else None)
    assert producer.flush(20) == 0
    assert failures == []


def test_a_connection_flood_waits_and_the_connected_go_on(limited):
    node = limited()
    topic = unique("flood")
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(20)
    producer = Producer({"bootstrap.servers": node.bootstrap, "acks": "all", "log_level": 0})
    produce_one(producer, topic, b"before")

    held = flood(node.port)
    try:
        time.sleep(1)
        before = cpu_seconds(node.proc.pid)
        time.sleep(2)
        assert cpu_seconds(node.proc.pid) - before < 0.5, "the broker spins while flooded"
        assert node.descriptors() < LIMIT - 32, "the flood took the descriptors the storage needs"
        # The producer connected before the flood is still served.
        produce_one(producer, topic, b"during")
    finally:
        for s in held:
            s.close()
    assert "max.connections reached: accepting waits until a connection closes" in node.log_tail(200)
    # Once the flood is gone, new clients connect again.
    produce_one(Producer({"bootstrap.servers": node.bootstrap, "acks": "all", "log_level": 0}), topic, b"after")


def test_accepting_pauses_when_descriptors_run_out(limited):
    node = limited(extra=["--config", "max.connections=100000"])
    held = flood(node.port)
    # The HTTP listener meets the full descriptor table too (its own pause handler), once the
    # Kafka listener has filled it: connected before that, they would simply be accepted.
    deadline = time.time() + 30
    while time.time() < deadline and not any(
            " tidemark: " in line and "cannot accept connections" in line for line in node.log_tail(200).splitlines()):
        time.sleep(0.05)
    for _ in range(5):
        held.append(socket.create_connection(("127.0.0.1", node.http_port), timeout=2))
    try:
        time.sleep(1)
        before = cpu_seconds(node.proc.pid)
        time.sleep(2)
        assert cpu_seconds(node.proc.pid) - before < 0.5, "accept() is retried in a busy loop on EMFILE"
    finally:
        for s in held:
            s.close()
    paused = [line for line in node.log_tail(200).splitlines() if "cannot accept connections, pausing for a second" in line]
    assert any(" tidemark: " in line for line in paused), "the Kafka listener did not pause"
    assert any(" tidemark.http: " in line for line in paused), "the HTTP listener did not pause"
    # Accepting resumes by itself once descriptors are free again.
    topic = unique("after-flood")
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    produce_one(Producer({"bootstrap.servers": node.bootstrap, "acks": "all", "log_level": 0}), topic, b"after")

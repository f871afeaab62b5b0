"""Burrow (LinkedIn's consumer lag monitor, Debian's 1.2.1, built on sarama) against tidemark:
it reads committed offsets and classic groups' membership from `__consumer_offsets`, the
partitions' ends from the broker, and reports each partition's lag and owner. Burrow needs a
ZooKeeper for its own coordination: Debian's, started here on a free port."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import free_port

BURROW_CONFIG = """
[general]
pidfile="{root}/burrow.pid"
[logging]
level="info"
[zookeeper]
servers=["127.0.0.1:{zk_port}"]
timeout=6
root-path="/burrow"
[client-profile.tidemark]
client-id="burrow"
kafka-version="2.0.0"
[cluster.tidemark]
class-name="kafka"
servers=["{bootstrap}"]
client-profile="tidemark"
topic-refresh=2
offset-refresh=1
[consumer.tidemark]
class-name="kafka"
cluster="tidemark"
servers=["{bootstrap}"]
client-profile="tidemark"
offsets-topic="__consumer_offsets"
start-latest=false
[httpserver.default]
address="127.0.0.1:{http_port}"
[storage.default]
class-name="inmemory"
workers=4
intervals=10
expire-group=604800
min-distance=1
"""


def _wait_port(port, proc, what, log, timeout=60):
    import socket
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            with open(log, errors="replace") as lines:
                raise AssertionError("%s exited with %d; its log ends:\n%s" % (what, proc.returncode, "".join(lines.readlines()[-20:])))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.time() < deadline, "%s never listened" % what
            time.sleep(0.1)


def _four_letters(port, command):
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(command)
            answer = b""
            while chunk := connection.recv(4096):
                answer += chunk
            return answer
    except OSError:
        return b""


@pytest.fixture
def burrow(broker):
    root = tempfile.mkdtemp(prefix="tidemark-burrow-")
    zk_port, http_port = free_port(), free_port()
    processes = []
    try:
        zookeeper = subprocess.Popen(
            ["java", "-Xmx128m", "-Dzookeeper.admin.enableServer=false", "-cp", "/usr/share/java/zookeeper.jar",
             "org.apache.zookeeper.server.ZooKeeperServerMain", str(zk_port), os.path.join(root, "zk")],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(root, "zookeeper.log"), "wb"))
        processes.append(zookeeper)
        _wait_port(zk_port, zookeeper, "zookeeper", os.path.join(root, "zookeeper.log"))
        # The port opens before the server takes sessions: wait until it says it serves.
        deadline = time.time() + 60
        while b"Mode: standalone" not in _four_letters(zk_port, b"srvr"):
            assert time.time() < deadline, "zookeeper never served"
            time.sleep(0.1)
        with open(os.path.join(root, "burrow.toml"), "w") as config:
            config.write(BURROW_CONFIG.format(root=root, zk_port=zk_port, bootstrap=broker.bootstrap, http_port=http_port))
        log = open(os.path.join(root, "burrow.log"), "wb")
        process = subprocess.Popen(["Burrow", "-config-dir", root], stdout=log, stderr=log, cwd=root)
        processes.append(process)
        _wait_port(http_port, process, "Burrow", os.path.join(root, "burrow.log"))

        def get(path):
            url = "http://127.0.0.1:%d/v3/kafka/tidemark/%s" % (http_port, path)
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError:
                return None  # not known to Burrow yet
        get.log = os.path.join(root, "burrow.log")
        yield get
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(root, ignore_errors=True)


def _until(check, what, log, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    if callable(what):
        what = what()
    with open(log) as burrow_log:
        # Burrow logs every lookup of a consumer it does not know yet: those lines say nothing.
        lines = [line for line in burrow_log if "unknown consumer" not in line and "not found" not in line]
        tail = "".join(lines[-20:])
    raise AssertionError("%s; Burrow's log ends:\n%s" % (what, tail))


def _show(status):
    """A consumer's status in short: total lag, and each partition's owner and lag."""
    if not status:
        return "unknown"
    return "total %s: %s" % (status["totallag"], [(p["partition"], p["owner"], p["current_lag"]) for p in status["partitions"]])


def test_burrow_reports_lag_and_owners(broker, burrow):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic("orders", 3)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for partition in range(3):
        for n in range(100):
            producer.produce("orders", value=b"job-%d" % n, partition=partition)
    assert producer.flush(30) == 0
    # Burrow drops the commits and owners of partitions whose ends it has not fetched yet.
    _until(lambda: (burrow("topic/orders") or {}).get("offsets") == [100, 100, 100], "Burrow never fetched the ends",
           burrow.log)

    def lag():
        return (burrow("consumer/billing/lag") or {}).get("status")

    def member(name):
        return Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "billing", "client.id": name,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})

    def poll_until(members, done, what):
        deadline = time.time() + 30
        while not done():
            for consumer in members:
                consumer.poll(0.1)
            assert time.time() < deadline, what

    first, second = member("worker-7"), member("worker-8")
    try:
        first.subscribe(["orders"])
        poll_until([first], lambda: len(first.assignment()) == 3, "the first member never got the partitions")
        first.commit(offsets=[TopicPartition("orders", 0, 40), TopicPartition("orders", 1, 100),
                              TopicPartition("orders", 2, 70)], asynchronous=False)
        status = _until(lambda: (lag() or {}).get("totallag") == 90 and lag(), lambda: "Burrow never showed lag 90: " + _show(lag()),
                        burrow.log)
        assert [p["current_lag"] for p in sorted(status["partitions"], key=lambda p: p["partition"])] == [60, 0, 30]

        # A second member joins: the rebalance's record names both, and Burrow shows who owns
        # each partition. (Burrow 1.2 keeps owners only for partitions it has offsets for, so
        # the first generation's record, written before the commit, showed none: the owners
        # seen here come from the second.)
        second.subscribe(["orders"])
        poll_until([first, second], lambda: len(first.assignment()) + len(second.assignment()) == 3
                   and second.assignment(), "the partitions were never shared")

        def owned():
            status = lag()
            return status and [p["owner"] for p in status["partitions"]] == ["/127.0.0.1"] * 3
        _until(owned, lambda: "Burrow never showed every partition owned: " + _show(lag()), burrow.log)
    finally:
        first.close()
        second.close()

    # The members left: the group's record has no members, and Burrow clears the owners.
    def unowned():
        status = lag()
        return status and all(p["owner"] == "" for p in status["partitions"])
    _until(unowned, lambda: "the owners stayed after the members left: " + _show(lag()), burrow.log)

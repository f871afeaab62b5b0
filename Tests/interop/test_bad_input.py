"""Hostile and broken input over raw sockets: each bad connection gets the protocol's answer
or is closed, and a well-behaved client keeps being served throughout."""
import os
import random
import socket
import struct
import threading
import time

from conftest import unique


def connect(broker):
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
    return s


def closed_by_server(s, timeout=5):
    """True when the server closes the connection (EOF or reset) within `timeout`."""
    s.settimeout(timeout)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def request(api_key, version, correlation, body=b"", client=b"raw"):
    header = struct.pack(">hhih", api_key, version, correlation, len(client)) + client
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def read_response(s):
    size = struct.unpack(">i", recv_exactly(s, 4))[0]
    return recv_exactly(s, size)


def recv_exactly(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def test_bad_input_is_refused_and_others_keep_being_served(broker):
    from kafka import KafkaProducer
    topic = unique("steady")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    stop = threading.Event()
    sent = []
    errors = []

    def steady():
        i = 0
        while not stop.is_set():
            try:
                producer.send(topic, value=b"%d" % i).get(timeout=10)
                sent.append(i)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
            i += 1

    worker = threading.Thread(target=steady)
    worker.start()
    try:
        # A lying length prefix far above the 100 MiB limit: closed without buffering it.
        s = connect(broker)
        s.sendall(struct.pack(">i", 2_000_000_000) + b"\x00" * 100)
        assert closed_by_server(s)
        # A negative length.
        s = connect(broker)
        s.sendall(struct.pack(">i", -5))
        assert closed_by_server(s)
        # A frame too short for a header.
        s = connect(broker)
        s.sendall(struct.pack(">i", 3) + b"\x00\x12\x00")
        assert closed_by_server(s)
        # An unknown API key.
        s = connect(broker)
        s.sendall(request(9999, 0, 1))
        assert closed_by_server(s)
        # An unsupported version of a known API (Produce v2 carries old message sets).
        s = connect(broker)
        s.sendall(request(0, 2, 1, b"\x00" * 10))
        assert closed_by_server(s)
        # ApiVersions at an unknown version: a v0 answer with UNSUPPORTED_VERSION (35) and the key list.
        s = connect(broker)
        s.sendall(request(18, 99, 77))
        body = read_response(s)
        correlation, error, count = struct.unpack(">ihi", body[:10])
        assert correlation == 77 and error == 35 and count > 10
        s.close()
        # A Metadata request whose body lies about its array count.
        s = connect(broker)
        s.sendall(request(3, 1, 5, struct.pack(">i", 1_000_000)))
        assert closed_by_server(s)
        # A truncated frame, then the client hangs up: nothing to answer, nothing breaks.
        s = connect(broker)
        s.sendall(struct.pack(">i", 100) + b"\x00\x03\x00\x01")
        s.close()
        # Random garbage, many times.
        rng = random.Random(7)
        for _ in range(30):
            s = connect(broker)
            garbage = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
            try:
                s.sendall(garbage)
            except OSError:
                pass
            s.close()
        # Pipelined requests on one connection are answered in order.
        s = connect(broker)
        s.sendall(b"".join(request(18, 0, c) for c in range(20)))
        for c in range(20):
            assert struct.unpack(">i", read_response(s)[:4])[0] == c
        s.close()
    finally:
        time.sleep(0.5)
        stop.set()
        worker.join(30)
        producer.close()
    assert not errors, errors[:3]
    assert len(sent) > 10


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_unfinished_huge_frames_do_not_grow_memory(tmp_path):
    """Twelve connections push most of a 20 MiB frame each and never finish it. The broker's
    request budget (here 32 MiB) bounds what it buffers, with one frame past it (the oldest
    frame reserved step by step always gets its next step, so frames cannot wait on each
    other): RSS stays near where it was (it grew by the sum of the frames before), and other
    clients are still served."""
    import socket
    import struct
    from kafka import KafkaProducer
    from conftest import Broker, free_port
    node = Broker(str(tmp_path / "data"), free_port(), extra=["--queued-max-request-bytes", str(32 << 20)])
    node.start()
    try:
        baseline = _rss_kib(node.proc.pid)
        sockets = []
        chunk = b"\x07" * (1 << 20)
        for _ in range(12):
            s = socket.create_connection(("127.0.0.1", node.port))
            s.setblocking(False)
            s.send(struct.pack(">i", 20 << 20))
            sockets.append([s, 0])
        deadline = time.time() + 20
        stalled = 0
        while time.time() < deadline and stalled < 5:
            progressed = False
            for entry in sockets:
                if entry[1] >= 18 << 20:
                    continue
                try:
                    entry[1] += entry[0].send(chunk)
                    progressed = True
                except BlockingIOError:
                    pass
            stalled = 0 if progressed else stalled + 1
            if not progressed:
                time.sleep(0.2)
        time.sleep(0.5)
        grown_mib = (_rss_kib(node.proc.pid) - baseline) / 1024
        pushed_mib = sum(sent for _, sent in sockets) / (1 << 20)
        assert grown_mib < 32 + 20 + 16, "RSS grew %.0f MiB while clients pushed %.0f MiB" % (grown_mib, pushed_mib)
        producer = KafkaProducer(bootstrap_servers=node.bootstrap, acks="all")
        producer.send("still-served", b"x").get(timeout=20)
        producer.close()
        for s, _ in sockets:
            s.close()
    finally:
        node.stop()


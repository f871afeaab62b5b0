"""The broker process as service managers and scripts run it: SIGTERM (systemd, docker stop,
Kubernetes) or SIGINT (Ctrl-C) stops it cleanly (exit status 0) whenever it comes, while it
starts or right after "ready"; a closed stdout or stderr does not kill it; a busy port is a
one-line error that leaves the data directory clean."""
import os
import shutil
import signal
import tempfile

from conftest import Broker, free_port


def test_a_stop_signal_right_after_ready_is_never_lost():
    # The handler used to be registered asynchronously (a dispatch signal source) with the
    # signal set to SIG_IGN meanwhile: about 1 start in 40 ignored a SIGTERM sent at once and
    # ran on. 40 starts, each stopped the moment it says ready.
    root = tempfile.mkdtemp(prefix="tidemark-signals-")
    try:
        node = Broker(os.path.join(root, "data"), free_port())
        for round in range(40):
            node.start()
            node.proc.send_signal(signal.SIGINT if round % 4 == 3 else signal.SIGTERM)
            code = node.proc.wait(timeout=15)
            assert code == 0, "round %d: exit status %d; its log ends:\n%s" % (round, code, node.log_tail())
            node.proc = None
    finally:
        if node.proc:
            node.kill()
        shutil.rmtree(root, ignore_errors=True)


def test_a_broker_whose_output_nobody_reads_keeps_serving():
    # `tidemark serve | head -1`, or a supervisor that closes its end: the ready line and the
    # logs meet a closed pipe (EPIPE; serve ignores SIGPIPE). Writing the ready line through
    # FileHandle trapped on it (SIGILL) and the broker died.
    import socket
    import subprocess
    import time
    from conftest import BINARY
    root = tempfile.mkdtemp(prefix="tidemark-closed-output-")
    port = free_port()
    proc = subprocess.Popen(
        [BINARY, "serve", "--data", os.path.join(root, "data"), "--port", str(port), "--http-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    proc.stderr.close()
    try:
        deadline = time.time() + 30
        while True:
            assert proc.poll() is None, "tidemark died with status %d" % proc.returncode
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline, "tidemark never listened"
                time.sleep(0.05)
        # It has written its ready line by now (it listens first); it serves a client.
        time.sleep(0.3)
        from confluent_kafka import Producer
        producer = Producer({"bootstrap.servers": "127.0.0.1:%d" % port})
        producer.produce("closed-output", value=b"x")
        assert producer.flush(30) == 0
        assert proc.poll() is None, "tidemark died with status %d" % proc.returncode
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def _catches(pid, signum):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("SigCgt:"):
                return int(line.split()[1], 16) >> (signum - 1) & 1 == 1
    return False


def test_a_stop_signal_while_starting_stops_once_started():
    # Recovery of many partitions takes a while; SIGTERM then (systemd stopping a unit that
    # is still starting) used to kill the process outright. Now it stops cleanly, without
    # saying ready.
    import subprocess
    import time
    from conftest import BINARY
    root = tempfile.mkdtemp(prefix="tidemark-stop-starting-")
    try:
        node = Broker(os.path.join(root, "data"), free_port())
        node.start()
        made = subprocess.run([BINARY, "topics", "create", "many", "--partitions", "3000", "--bootstrap", node.bootstrap],
                              capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        node.stop()
        log = open(node.log_path, "ab")
        proc = subprocess.Popen(
            [BINARY, "serve", "--data", node.data_dir, "--port", str(node.port), "--http-port", "0"],
            stdout=subprocess.PIPE, stderr=log)
        deadline = time.time() + 30
        while not _catches(proc.pid, signal.SIGTERM):
            assert proc.poll() is None and time.time() < deadline, node.log_tail()
            time.sleep(0.002)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, node.log_tail()
        assert proc.stdout.read() == b"", "said ready"
        assert "a signal came while starting" in node.log_tail()
        # A clean close: every partition's marker says so.
        for partition in (0, 1499, 2999):
            with open(os.path.join(node.data_dir, "many-%d" % partition, ".clean-shutdown")) as marker:
                assert marker.read().strip() == "1"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_busy_port_is_a_clear_error_and_leaves_the_data_clean():
    import subprocess
    from conftest import BINARY
    root = tempfile.mkdtemp(prefix="tidemark-busy-port-")
    try:
        first = Broker(os.path.join(root, "first"), free_port())
        first.start()
        second = os.path.join(root, "second")
        ran = subprocess.run([BINARY, "serve", "--data", second, "--port", str(first.port), "--http-port", "0"],
                             capture_output=True, text=True, timeout=60)
        first.stop()
        assert ran.returncode == 1, ran.stderr
        last = ran.stderr.strip().splitlines()[-1]
        assert last == "Error: cannot listen on 127.0.0.1:%d: Address already in use (another broker on that port? --port sets it)" % first.port, last
        assert "Usage" not in ran.stderr
        # The data directory it had opened was closed as on a stop.
        with open(os.path.join(second, "__consumer_offsets-0", ".clean-shutdown")) as marker:
            assert marker.read().strip() == "1"
    finally:
        shutil.rmtree(root, ignore_errors=True)

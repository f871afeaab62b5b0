"""The broker process as service managers and scripts run it: SIGTERM (systemd, docker stop,
Kubernetes), SIGINT (Ctrl-C) or SIGHUP (its terminal closed) stops it cleanly (exit status 0)
whenever it comes, while it starts or right after "ready"; an inherited SIG_IGN for SIGINT or
SIGHUP is kept; a reader of its output that goes away, or standard descriptors closed at
start, do not harm it; a busy port is a one-line error that leaves the data directory clean.
Ctrl-C on `consume --data --follow` closes its data directory cleanly too."""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from conftest import BINARY, Broker, free_port


@contextlib.contextmanager
def _spawned(prefix, **popen):
    """`tidemark serve` on a new data directory, spawned with `popen`'s stdio and preexec
    (conftest's Broker reads its stdout): yields (process, port, data directory); killed if
    still running, and its directory removed, afterwards."""
    root = tempfile.mkdtemp(prefix=prefix)
    port = free_port()
    data = os.path.join(root, "data")
    proc = subprocess.Popen([BINARY, "serve", "--data", data, "--port", str(port), "--http-port", "0"], **popen)
    try:
        yield proc, port, data
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def _mask(pid, field):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    return 0


def _catches(pid, signum):
    return _mask(pid, "SigCgt") >> (signum - 1) & 1 == 1


def _wait_listening(proc, port, deadline_s=30):
    deadline = time.time() + deadline_s
    while True:
        assert proc.poll() is None, "tidemark died with status %d" % proc.returncode
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.time() < deadline, "tidemark never listened"
            time.sleep(0.05)


def _produce_one(port, topic):
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": "127.0.0.1:%d" % port})
    producer.produce(topic, value=b"x")
    assert producer.flush(30) == 0


def test_a_stop_signal_right_after_ready_is_never_lost():
    # The handler used to be registered asynchronously (a dispatch signal source) with the
    # signal set to SIG_IGN meanwhile: about 1 start in 40 ignored a SIGTERM sent at once and
    # ran on. Each start is stopped the moment it says ready; and at that moment it must
    # already catch both signals (the old code caught neither: this fails it every time).
    root = tempfile.mkdtemp(prefix="tidemark-signals-")
    node = Broker(os.path.join(root, "data"), free_port())
    try:
        for round in range(20):
            node.start()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                assert _catches(node.proc.pid, signum), "round %d: %s not caught" % (round, signum.name)
            node.proc.send_signal((signal.SIGTERM, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)[round % 4])
            code = node.proc.wait(timeout=15)
            assert code == 0, "round %d: exit status %d; its log ends:\n%s" % (round, code, node.log_tail())
            node.proc = None
    finally:
        node.kill()
        shutil.rmtree(root, ignore_errors=True)


def test_an_inherited_sigint_or_sighup_ignore_is_kept():
    # A broker started with `&` from a script ignores SIGINT (the Ctrl-C meant for the terminal
    # does not stop it); one started under nohup ignores SIGHUP (the terminal closing does not
    # stop it). SIGTERM still does.
    for signum in (signal.SIGINT, signal.SIGHUP):
        with _spawned("tidemark-ignored-", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                      preexec_fn=lambda: signal.signal(signum, signal.SIG_IGN)) as (proc, _, _):
            assert b"ready" in proc.stdout.readline()
            assert _mask(proc.pid, "SigIgn") >> (signum - 1) & 1 == 1
            proc.send_signal(signum)
            time.sleep(0.5)
            assert proc.poll() is None, "a %s it was started ignoring stopped it" % signum.name
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0


def test_a_broker_whose_output_nobody_reads_keeps_serving():
    # `tidemark serve | head -1`, or a supervisor that closes its end: the ready line and the
    # logs meet a closed pipe. SIGPIPE killed it (-13), or writing the ready line through
    # FileHandle trapped on EPIPE (SIGILL).
    with _spawned("tidemark-closed-output-", stdout=subprocess.PIPE, stderr=subprocess.PIPE) as (proc, port, _):
        proc.stdout.close()
        proc.stderr.close()
        _wait_listening(proc, port)
        time.sleep(0.3)  # it writes the ready line once it listens
        _produce_one(port, "closed-output")
        assert proc.poll() is None, "tidemark died with status %d" % proc.returncode
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_standard_descriptors_closed_at_start_are_not_reused():
    # `tidemark serve >&- 2>&-`: descriptors 1 and 2 are free, so the next files opened took
    # their numbers (the signal pipe: its reader took log bytes for signals and exited), and
    # log lines could land in them. They are /dev/null now: it serves, stops cleanly, and its
    # data verifies.
    def close_standard():
        os.close(1)
        os.close(2)

    with _spawned("tidemark-closed-descriptors-", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                  preexec_fn=close_standard) as (proc, port, data):
        _wait_listening(proc, port)
        for _ in range(3):
            _produce_one(port, "closed-descriptors")
        assert proc.poll() is None, "tidemark died with status %d" % proc.returncode
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        checked = subprocess.run([BINARY, "verify", data], capture_output=True, text=True, timeout=120)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_stop_signal_while_starting_stops_once_started():
    # Recovery of many partitions takes a while; SIGTERM then (systemd stopping a unit that
    # is still starting) used to kill the process outright. Now it stops cleanly, without
    # saying ready.
    root = tempfile.mkdtemp(prefix="tidemark-stop-starting-")
    node = Broker(os.path.join(root, "data"), free_port())
    proc = None
    try:
        node.start()
        made = subprocess.run([BINARY, "topics", "create", "many", "--partitions", "3000", "--bootstrap", node.bootstrap],
                              capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        node.stop()
        with open(node.log_path, "ab") as log:
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
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        node.kill()
        shutil.rmtree(root, ignore_errors=True)


def test_a_busy_port_is_a_clear_error_and_leaves_the_data_clean():
    root = tempfile.mkdtemp(prefix="tidemark-busy-port-")
    first = Broker(os.path.join(root, "first"), free_port())
    try:
        first.start()
        second = os.path.join(root, "second")
        ran = subprocess.run([BINARY, "serve", "--data", second, "--port", str(first.port), "--http-port", "0"],
                             capture_output=True, text=True, timeout=60)
        assert ran.returncode == 1, ran.stderr
        last = ran.stderr.strip().splitlines()[-1]
        assert last == "Error: cannot listen on 127.0.0.1:%d: Address already in use (another broker on that port? --port sets it)" % first.port, last
        assert "Usage" not in ran.stderr
        # The data directory it had opened was closed as on a stop.
        with open(os.path.join(second, "__consumer_offsets-0", ".clean-shutdown")) as marker:
            assert marker.read().strip() == "1"
    finally:
        first.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_stop_with_busy_clients_is_prompt_and_loses_nothing_acknowledged():
    # Connected consumers always had a fetch in flight, and the stop waited for a moment with
    # none: it sat out its whole 5 s grace, then woke the parked polls onto event loops already
    # shut down. Now connections drain (no new request starts; long polls answer at once) and
    # every acknowledged record is there after the restart.
    import threading
    from confluent_kafka import Consumer, Producer, TopicPartition
    root = tempfile.mkdtemp(prefix="tidemark-busy-stop-")
    node = Broker(os.path.join(root, "data"), free_port())
    stop = threading.Event()
    acked = set()
    lock = threading.Lock()
    threads = []
    try:
        node.start()

        def consume(group):
            consumer = Consumer({"bootstrap.servers": node.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                                 "fetch.wait.max.ms": 500, "reconnect.backoff.max.ms": 200})
            consumer.subscribe(["busy-stop"])
            while not stop.is_set():
                consumer.poll(0.1)
            consumer.close()

        def produce():
            producer = Producer({"bootstrap.servers": node.bootstrap, "acks": "all", "linger.ms": 1,
                                 "message.timeout.ms": 5000, "reconnect.backoff.max.ms": 200})

            def report(err, msg):
                if err is None:
                    with lock:
                        acked.add(int(msg.value()))
            i = 0
            while not stop.is_set():
                producer.produce("busy-stop", value=b"%d" % i, on_delivery=report)
                producer.poll(0)
                i += 1
                if i % 100 == 0:
                    time.sleep(0.005)
            producer.flush(10)

        threads = [threading.Thread(target=consume, args=("busy-stop-%d" % g,)) for g in range(3)]
        threads.append(threading.Thread(target=produce))
        for thread in threads:
            thread.start()
        time.sleep(3)
        started = time.time()
        node.proc.send_signal(signal.SIGTERM)
        assert node.proc.wait(timeout=30) == 0, node.log_tail()
        took = time.time() - started
        node.proc = None
        assert took < 4.5, "the stop took %.1f s: it sat out the 5 s grace period" % took
        assert "Cannot schedule tasks" not in node.log_tail(200)
        # The clients finish against the restarted broker (closing against none is slow).
        node.start()
        stop.set()
        for thread in threads:
            thread.join(60)
        with lock:
            assert len(acked) > 100
        reader = Consumer({"bootstrap.servers": node.bootstrap, "group.id": "busy-stop-check", "enable.auto.commit": False})
        reader.assign([TopicPartition("busy-stop", 0, 0)])
        seen = set()
        deadline = time.time() + 60
        while not acked <= seen and time.time() < deadline:
            for message in reader.consume(1000, 1.0):
                assert message.error() is None, message.error()
                seen.add(int(message.value()))
        reader.close()
        missing = acked - seen
        assert not missing, "%d acknowledged records are missing, e.g. %s" % (len(missing), sorted(missing)[:5])
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_stop_with_console_event_streams_open_is_clean():
    # Event streams open at a stop wrote their end onto the HTTP server's shut-down event
    # loops (NIO: "Cannot schedule tasks on an EventLoop that has already shut down", to be
    # a crash in later NIO versions). Connections now close while the loops run.
    import http.client
    import threading
    root = tempfile.mkdtemp(prefix="tidemark-stop-streams-")
    node = Broker(os.path.join(root, "data"), free_port())
    opened = threading.Semaphore(0)

    def read_stream():
        connection = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=30)
        try:
            connection.request("GET", "/api/events")
            answer = connection.getresponse()
            assert answer.status == 200
            opened.release()
            while answer.readline():  # as a browser's EventSource reads, until the end
                pass
        except OSError:
            pass
        finally:
            connection.close()

    readers = [threading.Thread(target=read_stream) for _ in range(3)]
    try:
        node.start()
        for reader in readers:
            reader.start()
        for _ in readers:
            assert opened.acquire(timeout=30)
        time.sleep(1.5)
        node.proc.send_signal(signal.SIGTERM)
        assert node.proc.wait(timeout=30) == 0, node.log_tail()
        node.proc = None
        assert "Cannot schedule tasks" not in node.log_tail(200), node.log_tail()
    finally:
        node.stop()
        for reader in readers:
            if reader.is_alive() or reader.ident:
                reader.join(30)
        shutil.rmtree(root, ignore_errors=True)


def test_a_stop_during_a_rebalance_does_not_wait_for_it():
    # A member that does not poll holds a rebalance open (up to its max.poll.interval.ms), so
    # the newcomer's JoinGroup waits at the broker: the stop waited for it to its 5 s grace,
    # then woke it onto shut-down event loops. Parked members are answered at once now.
    import threading
    from confluent_kafka import Consumer
    root = tempfile.mkdtemp(prefix="tidemark-stop-rebalance-")
    node = Broker(os.path.join(root, "data"), free_port())
    try:
        node.start()
        _produce_one(node.port, "stop-rebalance")
        config = {"bootstrap.servers": node.bootstrap, "group.id": "stop-rebalance", "session.timeout.ms": 30000,
                  "max.poll.interval.ms": 60000, "reconnect.backoff.max.ms": 200}
        first = Consumer(config)
        first.subscribe(["stop-rebalance"])
        deadline = time.time() + 30
        while not first.assignment() and time.time() < deadline:
            first.poll(0.2)
        assert first.assignment(), "the first member never got its partition"
        # The first member stops polling; a second joins and waits at the broker.
        second = Consumer(config)
        second.subscribe(["stop-rebalance"])
        joining = threading.Thread(target=lambda: second.poll(8))
        joining.start()
        time.sleep(2)
        started = time.time()
        node.proc.send_signal(signal.SIGTERM)
        assert node.proc.wait(timeout=30) == 0, node.log_tail()
        took = time.time() - started
        node.proc = None
        assert took < 4.5, "the stop took %.1f s: it waited for the rebalance (5 s grace)" % took
        assert "Cannot schedule tasks" not in node.log_tail(200), node.log_tail()
        joining.join(30)
        node.start()  # the members close against a broker
        first.close()
        second.close()
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_following_a_data_directory_ends_cleanly_on_ctrl_c():
    # `tidemark consume --data DIR --follow` holds the data directory open; Ctrl-C used to end
    # it as a crash would (the next open recovered every log). Now it leaves the group, commits
    # what it printed and closes the directory, exit status 0.
    root = tempfile.mkdtemp(prefix="tidemark-follow-")
    data = os.path.join(root, "data")
    proc = None
    try:
        made = subprocess.run([BINARY, "topics", "create", "jobs", "--partitions", "2", "--data", data],
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        sent = subprocess.run([BINARY, "produce", "jobs", "--data", data], input="a\nb\nc\n",
                              capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        proc = subprocess.Popen([BINARY, "consume", "jobs", "--data", data, "--follow", "--group", "g"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert sorted(proc.stdout.readline().strip() for _ in range(3)) == [b"a", b"b", b"c"]
        assert _catches(proc.pid, signal.SIGINT)
        started = time.time()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0, proc.stderr.read().decode()
        assert time.time() - started < 3
        for log in ("jobs-0", "jobs-1", "__consumer_offsets-0"):
            with open(os.path.join(data, log, ".clean-shutdown")) as marker:
                assert marker.read().strip() == "1", log
        # What it printed was committed: the group has nothing left to read.
        again = subprocess.run([BINARY, "consume", "jobs", "--data", data, "--group", "g"],
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and again.stdout == "", again.stdout + again.stderr
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def test_a_reader_of_a_data_directory_whose_output_goes_away_closes_it_cleanly():
    # `tidemark consume --data DIR | head -1` (a --follow too): the reader going away killed
    # the command by SIGPIPE, which left every partition "not shut down cleanly" and made the
    # next start recover them all. Now the EPIPE stops it, and it closes the directory.
    root = tempfile.mkdtemp(prefix="tidemark-pipe-")
    data = os.path.join(root, "data")
    try:
        made = subprocess.run([BINARY, "topics", "create", "jobs", "--partitions", "2", "--data", data],
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        sent = subprocess.run([BINARY, "produce", "jobs", "--data", data],
                              input="".join("job-%d\n" % i for i in range(20000)), capture_output=True, text=True, timeout=120)
        assert sent.returncode == 0, sent.stderr
        for follow in ([], ["--follow", "--group", "g"]):
            proc = subprocess.Popen([BINARY, "consume", "jobs", "--data", data] + follow,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert proc.stdout.readline().startswith(b"job-")
            proc.stdout.close()  # the reader goes away
            assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
            for log in ("jobs-0", "jobs-1"):
                with open(os.path.join(data, log, ".clean-shutdown")) as marker:
                    assert marker.read().strip() == "1", (follow, log)
    finally:
        shutil.rmtree(root, ignore_errors=True)

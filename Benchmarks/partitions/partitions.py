"""Thousands of partitions on one node: descriptors, memory, start, stop and crash restart.

Run by run.sh (which picks the binary and the Python). Steps, each timed:
  1. start `tidemark serve` on an empty data directory under `ulimit -n FD_LIMIT`;
  2. create TOPICS topics of PARTITIONS/TOPICS partitions each (CreateTopics over the wire);
  3. produce one record to every partition (confluent-kafka, acks=all) and check every answer;
  4. descriptors and RSS of the broker;
  5. clean stop (SIGTERM) -> exit time;
  6. restart -> time until the Kafka listener accepts (ready), descriptors, RSS; produce to every partition again;
  7. kill -9, restart -> time until ready, RSS, descriptors; consume every partition's two records
     back (nothing acknowledged is lost) and report the figures against the targets.
Prints one `name value` line per figure on stdout (progress on stderr).
"""
import os
import signal
import socket
import subprocess
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BIN = os.environ["TIDEMARK_BIN"]
DATA = os.environ["DATA_DIR"]
PORT = int(os.environ["PORT"])
HAS_HTTP = "--http-port" in subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True).stdout
PARTITIONS = int(os.environ.get("PARTITIONS", "10000"))
TOPICS = int(os.environ.get("TOPICS", "10"))
FD_LIMIT = int(os.environ.get("FD_LIMIT", "2000"))
BOOTSTRAP = f"127.0.0.1:{PORT}"
PER_TOPIC = PARTITIONS // TOPICS
NAMES = [f"scale-{i}" for i in range(TOPICS)]


def log(*parts):
    print("[partitions]", *parts, file=sys.stderr, flush=True)


def emit(name, value):
    print(f"{name} {value}", flush=True)


def start():
    def limit():
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    started = time.monotonic()
    extra = ["--http-port", "0", "--log-level", os.environ.get("TM_LOG_LEVEL", "warning")] if HAS_HTTP else []
    proc = subprocess.Popen(
        [BIN, "serve", "--data", DATA, "--port", str(PORT)] + extra,
        preexec_fn=limit, stdout=subprocess.DEVNULL, stderr=open(os.path.join(DATA, "..", "broker.log"), "a"))
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"broker exited with {proc.returncode} (see broker.log)")
        try:
            # The Kafka listener accepts once the broker is ready (what /readyz reports).
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            return proc, time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() - started > 120:
            raise SystemExit("broker not ready after 120 s")
        time.sleep(0.01)


def descriptors(proc):
    return len(os.listdir(f"/proc/{proc.pid}/fd"))


def rss_mb(proc):
    with open(f"/proc/{proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return -1


def stop(proc):
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    return time.monotonic() - started, proc.returncode


def produce_everywhere(round_):
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5,
                         "enable.idempotence": True, "queue.buffering.max.messages": PARTITIONS * 2})
    failures = []

    def report(err, msg):
        if err is not None:
            failures.append(str(err))

    started = time.monotonic()
    for name in NAMES:
        for p in range(PER_TOPIC):
            producer.produce(name, value=f"{round_}:{name}:{p}".encode(), partition=p, on_delivery=report)
        producer.poll(0)
    left = producer.flush(120)
    elapsed = time.monotonic() - started
    del producer
    if failures or left:
        raise SystemExit(f"produce round {round_}: {len(failures)} failed ({failures[:3]}), {left} unanswered")
    return elapsed


def consume_everything():
    """Reads every partition from offset 0 with assign(); returns how many have both rounds."""
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "scale-check",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    assignment = [TopicPartition(name, p, 0) for name in NAMES for p in range(PER_TOPIC)]
    consumer.assign(assignment)
    seen = {}
    deadline = time.monotonic() + 120
    while len([k for k, v in seen.items() if len(v) >= 2]) < PARTITIONS and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=10000, timeout=1):
            if msg.error():
                continue
            seen.setdefault((msg.topic(), msg.partition()), set()).add(msg.value().split(b":")[0])
    consumer.close()
    return len([k for k, v in seen.items() if v == {b"1", b"2"}])


def main():
    os.makedirs(DATA, exist_ok=True)
    log(f"{PARTITIONS} partitions in {TOPICS} topics, ulimit -n {FD_LIMIT}")
    proc, ready = start()
    emit("first_start_s", f"{ready:.2f}")
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP, "log_level": 0})
    started = time.monotonic()
    for name, future in admin.create_topics(
            [NewTopic(name, PER_TOPIC, 1) for name in NAMES], request_timeout=300).items():
        future.result()
    del admin
    emit("create_topics_s", f"{time.monotonic() - started:.2f}")
    emit("produce_round1_s", f"{produce_everywhere(1):.2f}")
    emit("fds_after_produce", descriptors(proc))
    emit("rss_mb_after_produce", f"{rss_mb(proc):.0f}")
    took, code = stop(proc)
    emit("clean_stop_s", f"{took:.2f}")
    emit("clean_stop_exit_code", code)

    proc, ready = start()
    emit("clean_restart_s", f"{ready:.2f}")
    emit("fds_after_clean_restart", descriptors(proc))
    emit("rss_mb_after_clean_restart", f"{rss_mb(proc):.0f}")
    emit("produce_round2_s", f"{produce_everywhere(2):.2f}")
    emit("fds_after_round2", descriptors(proc))
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    proc, ready = start()
    emit("crash_restart_s", f"{ready:.2f}")
    emit("fds_after_crash_restart", descriptors(proc))
    emit("rss_mb_after_crash_restart", f"{rss_mb(proc):.0f}")
    complete = consume_everything()
    emit("partitions_with_both_records", complete)
    emit("fds_after_consume_all", descriptors(proc))
    emit("rss_mb_after_consume_all", f"{rss_mb(proc):.0f}")
    took, code = stop(proc)
    emit("clean_stop2_s", f"{took:.2f}")
    if complete != PARTITIONS:
        raise SystemExit(f"only {complete} of {PARTITIONS} partitions read back both records")


if __name__ == "__main__":
    main()

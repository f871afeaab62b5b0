"""Celery, unmodified, on tidemark through kombu's confluent-kafka transport
(`broker_url = "confluentkafka://host:port"`): the job workload as Celery users run it. Tasks
sent by a client are each run once by a worker; after a worker is killed in the middle of a
task, the next one (once the dead worker's session has timed out) runs every task after it,
each once.

The task that was running when the worker died may not run again: kombu acknowledges a task
with an asynchronous commit of the consumer's whole position, which librdkafka resolves when it
sends the commit, often after the next task has been fetched (here about one run in two; the
committed offset read after the kill says which). That is the client's, not the broker's, and
the README says so; share groups are the per-job alternative."""
import os
import signal
import subprocess
import sys
import time

TASKS = '''
import os, time
from celery import Celery

app = Celery("tasks", broker="confluentkafka://" + os.environ["BOOTSTRAP"])
app.conf.update(
    worker_enable_remote_control=False, worker_send_task_events=False,
    task_acks_late=True, worker_prefetch_multiplier=1,
    broker_transport_options={
        "wait_time_seconds": 0.5,
        # As the README says to enqueue: librdkafka's producer is not idempotent by default.
        "kafka_producer_config": {"enable.idempotence": True},
        # A killed worker's partitions go to the next one after this, not after 45 s.
        "kafka_consumer_config": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    })
DONE = os.environ["DONE"]

@app.task
def record(n, stall_once=False):
    marker = DONE + ".started-%d" % n
    if stall_once and not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(120)  # killed here
    with open(DONE, "a") as done:
        done.write("%d\\n" % n)
'''


def _done(path):
    if not os.path.exists(path):
        return []
    with open(path) as done:
        return [int(line) for line in done.read().split()]


def _worker(directory, env):
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", "solo", "--loglevel", "INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(directory, "worker.log"), "ab"))


def _wait_for(predicate, what, directory, timeout=60):
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            what = what() if callable(what) else what
            with open(os.path.join(directory, "worker.log")) as log:
                raise AssertionError("%s; the worker's log ends:\n%s" % (what, "".join(log.readlines()[-30:])))
        time.sleep(0.1)


def test_celery_tasks_run_once_and_a_killed_worker_is_taken_over(broker, tmp_path):
    # pytest's own temporary directory: it keeps the last few runs' (the worker's log) and
    # removes older ones.
    directory = str(tmp_path)
    with open(os.path.join(directory, "tasks.py"), "w") as tasks:
        tasks.write(TASKS)
    done = os.path.join(directory, "done.txt")
    env = dict(os.environ, BOOTSTRAP=broker.bootstrap, DONE=done, PYTHONPATH=directory)
    # The client side, as an application enqueues: one message per task, each flushed.
    sender = subprocess.run(
        [sys.executable, "-c",
         "from tasks import record\n"
         "for n in range(30): record.delay(n, stall_once=(n == 10))\n"],
        cwd=directory, env=env, capture_output=True, text=True, timeout=120)
    assert sender.returncode == 0, sender.stderr

    worker = _worker(directory, env)
    try:
        _wait_for(lambda: os.path.exists(done + ".started-10"), "task 10 never started", directory)
        # Killed in the middle of task 10: it was never acknowledged.
        worker.kill()
        worker.wait(timeout=30)
        assert _done(done) == list(range(10))

        worker = _worker(directory, env)
        after = set(range(11, 30))
        _wait_for(lambda: after <= set(_done(done)), lambda: "the tasks after the kill did not all run: %s" % _done(done),
                  directory)
        time.sleep(1)  # a duplicate, or task 10 run again, would show by now
        ran = _done(done)
        assert len(ran) == len(set(ran)), "a task ran twice: %s" % ran
        assert set(ran) in (set(range(30)), set(range(30)) - {10}), ran
        # A warm shutdown (SIGTERM) leaves the group and exits 0.
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    # Every task was acknowledged: the workers' group has no backlog left.
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "celery-consumer-group"})
    try:
        [committed] = consumer.committed([TopicPartition("celery", 0)], timeout=10)
        _, end = consumer.get_watermark_offsets(TopicPartition("celery", 0), timeout=10)
        assert committed.offset == end == 30
    finally:
        consumer.close()
    # Enqueued by an idempotent producer (kombu passed the setting on): every batch has an id.
    from conftest import BINARY
    segment = os.path.join(broker.data_dir, "celery-0", "00000000000000000000.log")
    headers = subprocess.run([BINARY, "dump", segment, "--headers-only"], capture_output=True, text=True, timeout=60)
    batches = [line for line in headers.stdout.splitlines() if line.startswith("baseOffset:")]
    assert batches and all("producerId: -1 " not in line for line in batches), headers.stdout

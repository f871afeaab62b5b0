#!/usr/bin/env python3
"""Enqueueing scheduled jobs while workers wait: what each enqueue costs the broker when the
share partition's window already holds many delayed jobs.

  delayed_enqueue.py BOOTSTRAP SERVER_PID PRE M WORKERS [MODE]

PRE jobs delayed an hour (`tidemark.deliver.at`) go into partition 0 of topic `jobs` first;
WORKERS confluent-kafka ShareConsumer processes (explicit mode, max.poll.records=1) then poll,
getting nothing (their windows hold the PRE jobs), and every job enqueued wakes one of them. Then M
more delayed jobs are produced one per request (linger.ms=0, each flushed). Prints 'RESULT ...':
enqueues/s and server CPU per enqueue (from /proc) over those M.

KEYED=1 (MODE delayed; the group needs share.key.ordering=true): every job has a key of its own.

MODE keyed (the group needs share.key.ordering=true): the same, with jobs of one key, not
delayed: the first goes to a worker that holds it (and polls no more), and every other waits behind it in the window
(up to ten times share.partition.max.record.locks), so each woken fetch finds nothing again.
"""
import multiprocessing as mp
import os
import sys
import time

from confluent_kafka import Producer, ShareConsumer


def cpu_secs(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def work(boot, stop, mode):
    worker = ShareConsumer({"bootstrap.servers": boot, "group.id": "workers",
                            "share.acknowledgement.mode": "explicit", "max.poll.records": 1})
    worker.subscribe(["jobs"])
    while not stop.is_set():
        for m in worker.poll(timeout=0.5) or []:
            if m.error():
                continue
            if mode == "keyed" and m.offset() == 0:
                stop.wait()  # the key's first job: held, never acknowledged; this worker stops polling
                break
            sys.exit(f"job {m.value()} delivered early" if mode != "keyed" else f"job {m.offset()} delivered out of key order")
    worker.close()


def main():
    boot, pid, pre, m, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    mode = sys.argv[6] if len(sys.argv) > 6 else "delayed"
    later = [("tidemark.deliver.at", str(int(time.time() * 1000) + 3_600_000).encode())] if mode != "keyed" else []
    own_keys = os.environ.get("KEYED") == "1" and mode != "keyed"
    key = b"hot" if mode == "keyed" else None
    producer = Producer({"bootstrap.servers": boot, "linger.ms": 5})
    for i in range(pre):
        producer.produce("jobs", key=b"k%d" % i if own_keys else key, value=b"%08d" % i, partition=0, headers=later)
    producer.flush()
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    procs = [ctx.Process(target=work, args=(boot, stop, mode)) for _ in range(workers)]
    for p in procs:
        p.start()
    time.sleep(6)  # joined, and their windows hold the PRE jobs
    producer = Producer({"bootstrap.servers": boot, "linger.ms": 0})
    t0, c0 = time.time(), cpu_secs(pid)
    for i in range(m):
        producer.produce("jobs", key=b"k%d" % (pre + i) if own_keys else key, value=b"%08d" % (pre + i), partition=0, headers=later)
        producer.flush()
    t1, c1 = time.time(), cpu_secs(pid)
    stop.set()
    for p in procs:
        p.join()
    print("RESULT mode %s pre %d enqueued %d enqueues_per_s %d server_us_per_enqueue %.1f" % (mode, pre, m, m / (t1 - t0), (c1 - c0) / m * 1e6))


if __name__ == "__main__":
    main()

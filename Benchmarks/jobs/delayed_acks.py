#!/usr/bin/env python3
"""Delayed jobs beside immediate ones (Celery ETA next to plain tasks), one share-group worker.

  delayed_acks.py BOOTSTRAP SERVER_PID DATA_DIR N [WORKERS]

Enqueues 2N jobs into partition 0 of topic `jobs`: job i is delayed an hour
(`tidemark.deliver.at`) when i is even. WORKERS (default 1) confluent-kafka ShareConsumer
processes (explicit mode, max.poll.records=1) take the N immediate ones between them (N/WORKERS
each), ACCEPT + commit_sync each. The delayed ones
stay in the share partition's window, which therefore grows by two records per job. Prints
'RESULT key value ...' (jobs/s, server CPU per job, bytes of __share_group_state at the end)
and the same per fifth of the run, so a cost that grows with the window shows.
"""
import glob
import multiprocessing as mp
import os
import sys
import time

from confluent_kafka import AcknowledgeType, Producer, ShareConsumer


def cpu_secs(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def work(boot, count, done, start):
    worker = ShareConsumer({"bootstrap.servers": boot, "group.id": "workers",
                            "share.acknowledgement.mode": "explicit", "max.poll.records": 1})
    worker.subscribe(["jobs"])
    start.wait()
    got, deadline = 0, time.time() + 600
    while got < count and time.time() < deadline:
        for m in worker.poll(timeout=1.0) or []:
            if m.error():
                continue
            if int(m.value()) % 2 == 0:
                sys.exit(f"delayed job {int(m.value())} delivered an hour early")
            worker.acknowledge(m, AcknowledgeType.ACCEPT)
            worker.commit_sync()
            got += 1
            with done.get_lock():
                done.value += 1
    worker.close()


def main():
    boot, pid, data, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    workers = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    producer = Producer({"bootstrap.servers": boot, "linger.ms": 5})
    later = str(int(time.time() * 1000) + 3_600_000).encode()
    for i in range(2 * n):
        headers = [("tidemark.deliver.at", later)] if i % 2 == 0 else None
        producer.produce("jobs", value=b"%08d" % i, partition=0, headers=headers)
    producer.flush()
    ctx = mp.get_context("spawn")
    done, start = ctx.Value("i", 0), ctx.Event()
    procs = [ctx.Process(target=work, args=(boot, n // workers + (1 if k < n % workers else 0), done, start)) for k in range(workers)]
    for p in procs:
        p.start()
    time.sleep(2)  # joined and subscribed
    t0, c0, marks = time.time(), cpu_secs(pid), []
    start.set()
    next_mark = max(1, n // 5)
    while any(p.is_alive() for p in procs):
        if done.value >= next_mark:
            marks.append((done.value, time.time() - t0, cpu_secs(pid) - c0))
            next_mark += max(1, n // 5)
        time.sleep(0.01)
    t1, c1, got = time.time(), cpu_secs(pid), done.value
    state = sum(os.path.getsize(f) for f in glob.glob(os.path.join(data, "__share_group_state-0", "*.log")))
    print("RESULT jobs %d workers %d jobs_per_s %d server_us_per_job %.1f share_state_bytes %d"
          % (got, workers, got / (t1 - t0), (c1 - c0) / max(1, got) * 1e6, state))
    previous = (0, 0.0, 0.0)
    for g, t, c in marks:
        print("fifth jobs %d-%d jobs_per_s %d server_us_per_job %.1f"
              % (previous[0], g, (g - previous[0]) / (t - previous[1]), (c - previous[2]) / max(1, g - previous[0]) * 1e6))
        previous = (g, t, c)


if __name__ == "__main__":
    main()

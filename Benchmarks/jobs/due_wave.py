#!/usr/bin/env python3
"""A wave of scheduled jobs coming due at once (Celery ETA, Sidekiq scheduled jobs), taken by one
share-group worker, beside the same jobs enqueued for now.

  due_wave.py BOOTSTRAP SERVER_PID N MODE [DUE_S]

MODE `wave`: N jobs into partition 0 of topic `jobs`, all due DUE_S seconds (default 8) after
they are produced (`tidemark.deliver.at`). A confluent-kafka ShareConsumer (explicit mode,
max.poll.records=1) polls meanwhile, so the share partition's window holds all N when they come
due; then it takes them one at a time, ACCEPT + commit_sync each, and the window's start moves one
record per acknowledgement. MODE `now`: the same jobs without a delay. Prints 'RESULT ...' (jobs/s
and server CPU per job from /proc) and the same per fifth, so a cost that follows the window's
size shows.
"""
import os
import sys
import time

from confluent_kafka import AcknowledgeType, Producer, ShareConsumer


def cpu_secs(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    boot, pid, n, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    due_s = float(sys.argv[5]) if len(sys.argv) > 5 else 8.0
    worker = ShareConsumer({"bootstrap.servers": boot, "group.id": "workers",
                            "share.acknowledgement.mode": "explicit", "max.poll.records": 1})
    worker.subscribe(["jobs"])
    for _ in range(5):  # joined and assigned before the jobs arrive
        worker.poll(timeout=0.3)
    producer = Producer({"bootstrap.servers": boot, "linger.ms": 5})
    due_ms = int(time.time() * 1000 + due_s * 1000) if mode == "wave" else 0
    headers = [("tidemark.deliver.at", str(due_ms).encode())] if due_ms else None
    for i in range(n):
        producer.produce("jobs", value=b"%08d" % i, partition=0, headers=headers)
    producer.flush()
    got, t0, c0, marks, step = 0, None, 0.0, [], max(1, n // 5)
    deadline = time.time() + due_s + 600
    while got < n and time.time() < deadline:
        for m in worker.poll(timeout=1.0) or []:
            if m.error():
                continue
            if due_ms and time.time() * 1000 < due_ms - 5:
                sys.exit(f"job {m.value()} delivered before it was due")
            if t0 is None:
                t0, c0 = time.time(), cpu_secs(pid)
            worker.acknowledge(m, AcknowledgeType.ACCEPT)
            worker.commit_sync()
            got += 1
            if got % step == 0:
                marks.append((got, time.time() - t0, cpu_secs(pid) - c0))
    worker.close()
    if got < n:
        sys.exit(f"took {got} of {n} jobs")
    elapsed, cpu = marks[-1][1], marks[-1][2]
    print("RESULT mode %s jobs %d jobs_per_s %d server_us_per_job %.1f" % (mode, got, got / elapsed, cpu / got * 1e6))
    previous = (0, 0.0, 0.0)
    for g, t, c in marks:
        print("fifth jobs %d-%d jobs_per_s %d server_us_per_job %.1f"
              % (previous[0], g, (g - previous[0]) / (t - previous[1]), (c - previous[2]) / (g - previous[0]) * 1e6))
        previous = (g, t, c)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Jobs flowing behind one job that holds its share partition's start (a job scheduled for
tomorrow), beside the same jobs with nothing held.

  held_start.py BOOTSTRAP SERVER_PID N MODE

MODE `held`: one job (DELAYED of them, default 1) into partition 0 of topic `jobs` due a day
later (`tidemark.deliver.at`), then N jobs for now. MODE `none`: the N jobs alone. KEYED=1: every
job has a key of its own (the group keeps per-key order: run_held_start.sh configures it). A confluent-kafka ShareConsumer (explicit
mode, max.poll.records=500) takes them, ACCEPT for each and one commit_sync per poll. Prints
'RESULT ...': jobs taken, jobs/s, server CPU per job (from /proc) and the broker's resident
memory at the end; when no job comes for STALL_S seconds (default 15) it stops and reports how
many it took.
"""
import os
import sys
import time

from confluent_kafka import AcknowledgeType, Producer, ShareConsumer


def cpu_secs(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    boot, pid, n, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    stall_s = float(os.environ.get("STALL_S", "15"))
    delayed = int(os.environ.get("DELAYED", "1"))
    keyed = os.environ.get("KEYED") == "1"
    producer = Producer({"bootstrap.servers": boot, "linger.ms": 20, "batch.num.messages": 10000,
                         "queue.buffering.max.messages": 1000000})
    if mode == "held":
        tomorrow = int(time.time() * 1000) + 86_400_000
        for i in range(delayed):
            producer.produce("jobs", key=b"t%d" % i if keyed else None, value=b"tomorrow", partition=0,
                             headers=[("tidemark.deliver.at", str(tomorrow).encode())])
    for i in range(n):
        producer.produce("jobs", key=b"k%d" % i if keyed else None, value=b"%08d" % i, partition=0)
        if i % 100_000 == 0:
            producer.poll(0)
    producer.flush()
    worker = ShareConsumer({"bootstrap.servers": boot, "group.id": "workers",
                            "share.acknowledgement.mode": "explicit", "max.poll.records": 500})
    worker.subscribe(["jobs"])
    got, t0, c0, last = 0, None, 0.0, time.time()
    seen = set()
    while got < n and time.time() - last < stall_s:
        batch = [m for m in worker.poll(timeout=1.0) or [] if m.error() is None]
        for m in batch:
            if m.value() == b"tomorrow":
                sys.exit("the job for tomorrow came today")
            if t0 is None:
                t0, c0 = time.time(), cpu_secs(pid)
            worker.acknowledge(m, AcknowledgeType.ACCEPT)
            seen.add(m.value())
            got += 1
        if batch:
            worker.commit_sync()
            last = time.time()
    elapsed = (last - t0) if t0 else 0.0
    cpu = cpu_secs(pid) - c0 if t0 else 0.0
    worker.close()
    print("RESULT mode %s delayed %d keyed %d jobs %d of %d distinct %d %s jobs_per_s %d server_us_per_job %.1f rss_mb %.0f"
          % (mode, delayed if mode == "held" else 0, keyed, got, n, len(seen), "finished" if got == n else "STALLED", got / elapsed if elapsed else 0,
             cpu / got * 1e6 if got else 0, rss_mb(pid)))


if __name__ == "__main__":
    main()

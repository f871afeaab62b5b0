#!/usr/bin/env python3
"""Idle workers: what a pool of job workers waiting on an empty topic costs the broker.

  share_idle.py KIND ADDR WORKERS WARM_S MEASURE_S SERVER_PID

KIND is share (confluent-kafka ShareConsumer, group "idle-share") or classic (Consumer in
group "idle-classic", subscribe). WORKERS processes subscribe to topic "jobs" and call
poll(0.5) in a loop, getting nothing. After WARM_S seconds (joins, assignments and the first
fetches settle) the server's CPU is read from /proc/SERVER_PID/stat, again MEASURE_S seconds
later. Prints 'RESULT server_cpu_pct P polls N' (P: percent of one core over the window).
"""
import multiprocessing as mp
import os
import sys
import time


def cpu_secs(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def worker(kind, addr, until, polls):
    from confluent_kafka import Consumer, ShareConsumer
    if kind == "share":
        c = ShareConsumer({"bootstrap.servers": addr, "group.id": "idle-share"})
    else:
        c = Consumer({"bootstrap.servers": addr, "group.id": "idle-classic", "auto.offset.reset": "latest"})
    c.subscribe(["jobs"])
    n = 0
    while time.time() < until:
        got = c.poll(0.5)
        # ShareConsumer.poll returns a batch of messages, Consumer.poll one or None
        for m in ([] if got is None else got if kind == "share" else [got]):
            if m.error():
                print("error:", m.error(), file=sys.stderr)
        n += 1
    with polls.get_lock():
        polls.value += n
    c.close()


def main():
    kind, addr, workers, warm, measure, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    ctx = mp.get_context("spawn")
    polls = ctx.Value("q", 0)
    until = time.time() + warm + measure + 2
    procs = [ctx.Process(target=worker, args=(kind, addr, until, polls)) for _ in range(workers)]
    for p in procs:
        p.start()
    time.sleep(warm)
    c0, t0 = cpu_secs(pid), time.time()
    time.sleep(measure)
    c1, t1 = cpu_secs(pid), time.time()
    for p in procs:
        p.join()
    print("RESULT server_cpu_pct %.1f polls %d" % (100 * (c1 - c0) / (t1 - t0), polls.value))


if __name__ == "__main__":
    main()

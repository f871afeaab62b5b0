#!/usr/bin/env python3
"""Workers waiting behind a full share window, while a producer runs (run_full_window.sh).

  full_window.py ADDR WAITERS SECONDS

A holder (confluent-kafka ShareConsumer, group "g") polls until it holds 100 jobs (the group's
share.partition.max.record.locks, set by the script) and sits on them without acknowledging;
then WAITERS more ShareConsumers poll in a loop, getting nothing, for SECONDS less 2. Prints
'holder holds N' and 'waiters got N' (0: the window stayed full) on stderr.
"""
import multiprocessing as mp
import sys
import time


def holder(addr, secs, ready):
    from confluent_kafka import ShareConsumer
    c = ShareConsumer({"bootstrap.servers": addr, "group.id": "g", "max.poll.records": 1000})
    c.subscribe(["jobs"])
    end = time.time() + secs
    got = 0
    while got < 100:
        got += len(c.poll(0.5) or [])
    print("holder holds", got, file=sys.stderr)
    ready.set()
    time.sleep(max(0, end - time.time()))
    c.close()


def waiter(addr, secs, total):
    from confluent_kafka import ShareConsumer
    c = ShareConsumer({"bootstrap.servers": addr, "group.id": "g"})
    c.subscribe(["jobs"])
    end = time.time() + secs
    got = 0
    while time.time() < end:
        got += len(c.poll(0.5) or [])
    with total.get_lock():
        total.value += got
    c.close()


if __name__ == "__main__":
    addr, waiters, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    ctx = mp.get_context("spawn")
    ready, total = ctx.Event(), ctx.Value("q", 0)
    procs = [ctx.Process(target=holder, args=(addr, secs, ready))]
    procs[0].start()
    if not ready.wait(60):
        sys.exit("the holder got no jobs")
    procs += [ctx.Process(target=waiter, args=(addr, secs - 2, total)) for _ in range(waiters)]
    for p in procs[1:]:
        p.start()
    for p in procs:
        p.join()
    print("waiters got", total.value, file=sys.stderr)

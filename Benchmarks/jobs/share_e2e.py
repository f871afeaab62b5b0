#!/usr/bin/env python3
"""Job pickup latency: from a job's enqueue to a waiting worker holding it, at a fixed rate.

  share_e2e.py SYSTEM ADDR RATE SECONDS WORKERS

SYSTEM is tidemark (confluent-kafka Producer, acks=all, linger.ms=0; WORKERS ShareConsumer
processes, explicit ACCEPT + commit_async per job; ACKS=implicit in the environment: implicit
acknowledgement, carried by the next ShareFetch), classic (the same producer; WORKERS Consumer
processes in one consumer group, no commits) or redis (XADD per job; WORKERS processes in one
consumer group, XREADGROUP COUNT 1 BLOCK 1000 over the streams, XACK per job). Jobs go
round-robin over PARTS partitions / streams (env, default 4); each payload carries its send
time (time.time(), one clock for every process on this machine). The producer paces itself to
RATE jobs/s for SECONDS; a worker stamps each job when its poll / XREADGROUP returns it.
Latency = receipt - send. The first second is warm-up and left out. Prints one line:
'RESULT jobs N p50_us .. p90_us .. p99_us .. p999_us .. max_us .. missing M duplicates D'.
"""
import multiprocessing as mp
import os
import struct
import sys
import time

PARTS = int(os.environ.get("PARTS", "4"))
TOPIC = "jobs"
GROUP = "e2e"
SIZE = 200


def encode(i, sent):
    head = struct.pack(">qd", i, sent)
    return head + b"x" * (SIZE - len(head))


def decode(value):
    return struct.unpack(">qd", value[:16])


def worker_tidemark(addr, stop, out, ready):
    from confluent_kafka import ShareConsumer, AcknowledgeType
    explicit = os.environ.get("ACKS", "explicit") == "explicit"
    c = ShareConsumer({"bootstrap.servers": addr, "group.id": GROUP, "share.acknowledgement.mode": "explicit" if explicit else "implicit"})
    c.subscribe([TOPIC])
    seen = []
    ready.release()
    while not stop.is_set():
        msgs = c.poll(0.5)
        now = time.time()
        got = 0
        for m in msgs:
            if m.error() is not None:
                continue
            i, sent = decode(m.value())
            seen.append((i, now - sent))
            if explicit:
                c.acknowledge(m, AcknowledgeType.ACCEPT)
            got += 1
        if got and explicit:
            c.commit_async()
    c.close()
    out.put(seen)


def worker_classic(addr, stop, out, ready):
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": addr, "group.id": GROUP + "-classic", "auto.offset.reset": "latest",
                  "fetch.wait.max.ms": 500})
    c.subscribe([TOPIC])
    seen = []
    ready.release()
    while not stop.is_set():
        m = c.poll(0.5)
        now = time.time()
        if m is None or m.error() is not None:
            continue
        i, sent = decode(m.value())
        seen.append((i, now - sent))
    c.close()
    out.put(seen)


def worker_redis(addr, stop, out, ready):
    import redis
    h, p = addr.rsplit(":", 1)
    r = redis.Redis(host=h, port=int(p))
    me = "w%d" % os.getpid()
    streams = {f"{TOPIC}:{k}": ">" for k in range(PARTS)}
    seen = []
    ready.release()
    while not stop.is_set():
        resp = r.xreadgroup(GROUP, me, streams, count=1, block=1000)
        now = time.time()
        for stream, entries in resp or []:
            for eid, fields in entries:
                i, sent = decode(fields[b"d"])
                seen.append((i, now - sent))
                r.xack(stream, GROUP, eid)
    out.put(seen)


def main():
    system, addr, rate, seconds, workers = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    ctx = mp.get_context("spawn")
    stop, out, ready = ctx.Event(), ctx.Queue(), ctx.Semaphore(0)
    if system == "redis":
        import redis
        h, p = addr.rsplit(":", 1)
        r = redis.Redis(host=h, port=int(p))
        for k in range(PARTS):
            r.xgroup_create(f"{TOPIC}:{k}", GROUP, id="$", mkstream=True)
        target = worker_redis
        send = lambda i, v: r.xadd(f"{TOPIC}:{i % PARTS}", {"d": v})
        flush = lambda: None
    else:
        from confluent_kafka import Producer
        prod = Producer({"bootstrap.servers": addr, "acks": "all", "linger.ms": 0})
        target = worker_tidemark if system == "tidemark" else worker_classic
        send = lambda i, v: (prod.produce(TOPIC, v, partition=i % PARTS), prod.poll(0))
        flush = lambda: prod.flush(30)
    procs = [ctx.Process(target=target, args=(addr, stop, out, ready)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()
    time.sleep(3)  # joins, assignments, first (empty) polls
    n = int(rate * seconds)
    start = time.time()
    for i in range(n):
        due = start + i / rate
        pause = due - time.time()
        if pause > 0:
            time.sleep(pause)
        send(i, encode(i, time.time()))
    flush()
    time.sleep(2)
    stop.set()
    seen = []
    for _ in procs:
        seen += out.get(timeout=60)
    for proc in procs:
        proc.join()
    ids = [i for i, _ in seen]
    warm = int(rate)  # the first second
    lat = sorted(l for i, l in seen if i >= warm)
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1e6 if lat else 0
    print("RESULT jobs %d p50_us %.0f p90_us %.0f p99_us %.0f p999_us %.0f max_us %.0f missing %d duplicates %d" % (
        len(lat), q(0.5), q(0.9), q(0.99), q(0.999), (lat[-1] * 1e6 if lat else 0), n - len(set(ids)), len(ids) - len(set(ids))))


if __name__ == "__main__":
    main()

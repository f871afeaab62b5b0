"""Redelivery to a waiting worker: how long a job that comes back without an append takes to
reach a worker whose poll is already waiting.

Two confluent-kafka ShareConsumers (explicit acknowledgement, max.poll.records=1) poll one
partition of "jobs" in threads. Each round produces work; the worker that gets it gives it
back and stops polling for a while, so only the other one can take what comes back:
  release: one job; RELEASE + commit_sync; the other worker's receipt is timed.
  keyed:   two jobs of one key (the group has share.key.ordering=true); the first is
           ACCEPTed + commit_sync, which makes the second one available; its receipt is timed.
  delayed: one job with tidemark.deliver.at 500 ms ahead, while both workers wait; the time
           from that instant to its receipt is timed.
  expired: one job; the worker that gets it holds it without a word (a worker that hung);
           the time from its lock running out (receipt + the group's 1 s lock, set by
           run_redelivery.sh) to the other worker's receipt is timed. The silent worker then
           closes and a new one takes its place.
Prints one line: MODE rounds N done N latency_ms p50 P mean M max X.

  redelivery.py BOOTSTRAP ROUNDS MODE
"""
import statistics
import sys
import threading
import time

from confluent_kafka import AcknowledgeType, Producer, ShareConsumer

boot, rounds, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
state = {"t0": None, "paused": None, "lat": [], "round": 0}
stop = threading.Event()


LOCK_S = 1.0  # expired: the group's share.record.lock.duration.ms


def consumer():
    c = ShareConsumer({"bootstrap.servers": boot, "group.id": "workers",
                       "share.acknowledgement.mode": "explicit", "max.poll.records": 1})
    c.subscribe(["jobs"])
    return c


def worker(name):
    c = consumer()
    silent = False
    while not stop.is_set():
        if state["paused"] == name:
            time.sleep(0.01)
            continue
        if silent:
            c.close()
            c, silent = consumer(), False
        for m in c.poll(timeout=0.5) or []:
            if m.error():
                continue
            with lock:
                now = time.time()
                if mode == "delayed":
                    due = int(dict(m.headers() or [])["tidemark.deliver.at"]) / 1000
                    state["lat"].append(max(0.0, now - due))
                    c.acknowledge(m, AcknowledgeType.ACCEPT)
                    c.commit_sync()
                    state["round"] += 1
                    continue
                if mode == "expired" and state["t0"] is None:
                    state["t0"], state["paused"], silent = now + LOCK_S, name, True
                    continue
                giving_back = state["t0"] is None if mode == "release" else m.value().startswith(b"a")
                if giving_back:
                    kind = AcknowledgeType.RELEASE if mode == "release" else AcknowledgeType.ACCEPT
                    c.acknowledge(m, kind)
                    c.commit_sync()
                    state["t0"], state["paused"] = time.time(), name
                    continue
                if state["t0"] is not None:
                    state["lat"].append(now - state["t0"] if mode == "expired" else max(0.0, now - state["t0"]))
                state["t0"], state["paused"] = None, None
                c.acknowledge(m, AcknowledgeType.ACCEPT)
                c.commit_sync()
                state["round"] += 1
    c.close()


threads = [threading.Thread(target=worker, args=(n,)) for n in ("A", "B")]
for t in threads:
    t.start()
time.sleep(3)  # both joined and polling
p = Producer({"bootstrap.servers": boot})
for r in range(rounds):
    want = state["round"] + 1
    values = [b"a%d" % r, b"b%d" % r] if mode == "keyed" else [b"job%d" % r]
    headers = [("tidemark.deliver.at", str(int(time.time() * 1000) + 500).encode())] if mode == "delayed" else None
    for v in values:
        p.produce("jobs", key=b"k", value=v, partition=0, headers=headers)
    p.flush()
    t = time.time()
    while state["round"] < want and time.time() - t < 5:
        time.sleep(0.005)
    time.sleep(2.0 if mode == "expired" else 0.05)  # expired: the silent worker's replacement joins
stop.set()
for t in threads:
    t.join()
lat = sorted(x * 1000 for x in state["lat"]) or [float("nan")]
print("%s rounds %d done %d latency_ms p50 %.1f mean %.1f max %.1f"
      % (mode, rounds, len(state["lat"]), statistics.median(lat), statistics.mean(lat), lat[-1]))

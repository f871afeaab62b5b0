#!/usr/bin/env python3
"""Consume side of a job queue, one acknowledgement per job, the same workload on four systems.

  share_consume.py preload SYSTEM ADDR N SIZE
  share_consume.py consume SYSTEM ADDR N WORKERS BATCH TIMEOUT_S SERVER_PID

SYSTEM is tidemark | redis | nats | rabbitmq; ADDR is host:port. Run tidemark with a Python that
has confluent-kafka >= 2.15 (ShareConsumer), the others with one that has redis+hiredis, nats-py,
uvloop and pika. Every system gets 4 "partitions": a 4-partition topic (Tidemark), 4 streams
jobs:0..3 (Redis), one work-queue stream with subjects jobs.0..3 (NATS), 4 quorum queues
jobs.0..3 (RabbitMQ). Job i goes to partition i % 4; its payload starts with the job id in 8
decimal digits and is padded to SIZE bytes.

consume: WORKERS processes (multiprocessing, spawn) connect, then wait on one start event. The
clock (and the server CPU reading from /proc/SERVER_PID/stat) starts when they are released
together; each then subscribes / starts consuming and acknowledges one job at a time:
  tidemark: ShareConsumer explicit mode, max.poll.records=BATCH; ACCEPT each record, then
            commit_sync() once per poll batch (the acks are durable when it returns)
  redis:    XREADGROUP COUNT ceil(BATCH/4) over the 4 streams (BLOCK 100); with BATCH below 4,
            COUNT 1 over BATCH of them in turn (one job per request at BATCH=1; see
            RedisWorker.run); one XACK per job
  nats:     one durable pull consumer (AckExplicit, ack_wait default) shared by all workers,
            fetch(BATCH), then msg.ack() per message
  rabbitmq: basic.consume on the 4 queues, basic.qos prefetch ceil(BATCH/4) per consumer,
            basic.ack per message
until WORKERS together have acknowledged N jobs. The clock stops at the last acknowledgement's
confirmation (sync systems: the reply; NATS / RabbitMQ, whose acks are one-way: the worker that
acknowledges the N-th job then round-trips once, nc.flush() / a channel RPC). The server's CPU is
read again when the parent sees the count reach N. Afterwards (untimed) the server is asked
whether anything is still pending, and the job ids the workers saw are checked: every job once.

Prints one line: 'RESULT key value key value ...'.
"""
import math
import multiprocessing as mp
import os
import sys
import time

PARTS = int(os.environ.get("PARTS", "4"))  # topic partitions / streams / subjects / queues
# Tidemark's acknowledgements: "sync" (explicit ACCEPT per job, commit_sync per poll batch: a
# ShareAcknowledge each, waited for), "async" (the same with commit_async: not waited for), or
# "implicit" (share.acknowledgement.mode=implicit: the next poll's ShareFetch carries them, one
# request per job). Jobs count when acknowledged (sync) or handed out (async, implicit); the
# last batch's acknowledgements go out at close, before the server check.
TM_ACKS = os.environ.get("TM_ACKS", "sync")
GROUP = "workers"
TOPIC = "jobs"


def payload(i, size):
    head = b"%08d" % i
    return head + b"x" * max(0, size - len(head))


def job_id(value):
    return int(value[:8])


def cpu_secs(pid):
    if pid <= 0:
        return 0.0
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def machine_ticks():
    """(busy, total) jiffies over all CPUs from /proc/stat"""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


def host_port(addr):
    h, p = addr.rsplit(":", 1)
    return h, int(p)


# ------------------------------------------------------------------------------------------------
# preload
# ------------------------------------------------------------------------------------------------
def preload_tidemark(addr, n, size):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": addr, "acks": "all", "linger.ms": 5,
                  "queue.buffering.max.messages": max(100000, 2 * n)})
    failed = []
    def dr(err, _msg):
        if err is not None:
            failed.append(err)
    for i in range(n):
        p.produce(TOPIC, payload(i, size), partition=i % PARTS, on_delivery=dr)
        if i % 1000 == 999:
            p.poll(0)
    left = p.flush(60)
    assert left == 0 and not failed, (left, failed[:3])
    return n


def preload_redis(addr, n, size):
    import redis
    h, port = host_port(addr)
    r = redis.Redis(host=h, port=port)
    for p in range(PARTS):
        r.xgroup_create(f"{TOPIC}:{p}", GROUP, id="0", mkstream=True)
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(f"{TOPIC}:{i % PARTS}", {"d": payload(i, size)})
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    stored = sum(r.xlen(f"{TOPIC}:{p}") for p in range(PARTS))
    assert stored == n, (stored, n)
    return stored


def preload_nats(addr, n, size):
    import asyncio
    import nats
    from nats.js.api import StreamConfig, ConsumerConfig, AckPolicy, StorageType, DeliverPolicy, RetentionPolicy

    async def main():
        nc = await nats.connect(f"nats://{addr}", pending_size=8 * 1024 * 1024)
        js = nc.jetstream(publish_async_max_pending=1000, timeout=30)
        await js.add_stream(StreamConfig(name="JOBS", subjects=[f"{TOPIC}.*"], storage=StorageType.FILE,
                                         retention=RetentionPolicy.WORK_QUEUE))
        for i in range(n):
            await js.publish_async(f"{TOPIC}.{i % PARTS}", payload(i, size), wait_stall=30)
        await asyncio.wait_for(js.publish_async_completed(), 60)
        # one durable pull consumer for all workers: explicit acks, ack_wait and max_ack_pending default
        await js.add_consumer("JOBS", ConsumerConfig(durable_name=GROUP, ack_policy=AckPolicy.EXPLICIT,
                                                     deliver_policy=DeliverPolicy.ALL))
        info = await js.stream_info("JOBS")
        await nc.close()
        return info.state.messages

    stored = asyncio.run(main())
    assert stored == n, (stored, n)
    return stored


def rabbit_params(addr):
    import pika
    h, port = host_port(addr)
    return pika.ConnectionParameters(host=h, port=port, heartbeat=0,
                                     credentials=pika.PlainCredentials("guest", "guest"))


def rabbit_depth(ch):
    return sum(ch.queue_declare(f"{TOPIC}.{p}", passive=True).method.message_count for p in range(PARTS))


def preload_rabbitmq(addr, n, size):
    import pika
    conn = pika.BlockingConnection(rabbit_params(addr))
    ch = conn.channel()
    for p in range(PARTS):
        ch.queue_declare(f"{TOPIC}.{p}", durable=True, arguments={"x-queue-type": "quorum"})
    props = pika.BasicProperties(delivery_mode=2)
    # publisher confirms, one round trip per 500 messages would need the async API; plain
    # persistent publishes, then wait until every message is in its queue (bounded)
    for i in range(n):
        ch.basic_publish("", f"{TOPIC}.{i % PARTS}", payload(i, size), props)
    deadline = time.time() + 60
    while (depth := rabbit_depth(ch)) < n and time.time() < deadline:
        time.sleep(0.05)
    conn.close()
    assert depth == n, (depth, n)
    return depth


# ------------------------------------------------------------------------------------------------
# workers: each class has setup() (connect, before the clock) and run() (after the start event)
# ------------------------------------------------------------------------------------------------
class Worker:
    def __init__(self, idx, addr, n, batch, deadline, counter):
        self.idx, self.addr, self.n, self.batch, self.deadline, self.counter = idx, addr, n, batch, deadline, counter
        self.ids = []
        self.t_first = None
        self.t_confirm = None
        self.completer = False
        self.errors = 0

    def add(self, k):
        """count k acknowledged jobs; True if this call took the shared count to N"""
        if k == 0:
            return False
        with self.counter.get_lock():
            before = self.counter.value
            self.counter.value = before + k
        return before < self.n <= before + k

    def more(self):
        return self.counter.value < self.n and time.time() < self.deadline


class TidemarkWorker(Worker):
    def setup(self):
        from confluent_kafka import ShareConsumer
        self.c = ShareConsumer({"bootstrap.servers": self.addr, "group.id": GROUP,
                                "share.acknowledgement.mode": "implicit" if TM_ACKS == "implicit" else "explicit",
                                "max.poll.records": self.batch})

    def run(self):
        from confluent_kafka import AcknowledgeType
        c = self.c
        c.subscribe([TOPIC])
        while self.more():
            msgs = c.poll(0.1)
            got = 0
            for m in msgs:
                if m.error() is not None:
                    self.errors += 1
                    continue
                if self.t_first is None:
                    self.t_first = time.time()
                self.ids.append(job_id(m.value()))
                if TM_ACKS != "implicit":
                    c.acknowledge(m, AcknowledgeType.ACCEPT)
                got += 1
            if got:
                if TM_ACKS == "sync":
                    res = c.commit_sync(30)
                    self.errors += sum(1 for e in (res or {}).values() if e is not None)
                elif TM_ACKS == "async":
                    c.commit_async()
                self.t_confirm = time.time()
                self.completer |= self.add(got)

    def close(self):
        self.c.close()


class RedisWorker(Worker):
    def setup(self):
        import redis
        h, port = host_port(self.addr)
        self.r = redis.Redis(host=h, port=port)
        self.r.ping()

    def run(self):
        r = self.r
        # XREADGROUP's COUNT applies to each stream named: asked of all PARTS streams at once it
        # hands out up to PARTS times COUNT jobs per request (4 with BATCH=1 and 4 streams, where
        # the other systems hand out 1). With BATCH below PARTS, a worker asks BATCH of the
        # streams, COUNT 1 each, in turn (starting at its own), without BLOCK; only when a whole
        # round found nothing does it wait (BLOCK 100 on all of them, COUNT 1: streams drained
        # then, so it seldom gets more than one). From PARTS up it takes ceil(BATCH/PARTS) per
        # stream (BATCH exactly when PARTS divides it).
        names = [f"{TOPIC}:{p}" for p in range(PARTS)]
        per = max(1, math.ceil(self.batch / PARTS))
        take = min(PARTS, self.batch)
        turn = self.idx % PARTS
        empty = 0
        me = f"w{self.idx}"
        while self.more():
            if take == PARTS:
                resp = r.xreadgroup(GROUP, me, dict.fromkeys(names, ">"), count=per, block=100)
            elif empty >= PARTS:
                resp = r.xreadgroup(GROUP, me, dict.fromkeys(names, ">"), count=1, block=100)
                empty = 0
            else:
                asked = [names[(turn + k) % PARTS] for k in range(take)]
                turn = (turn + take) % PARTS
                resp = r.xreadgroup(GROUP, me, dict.fromkeys(asked, ">"), count=1)
                empty = 0 if resp else empty + take
            got = 0
            for stream, entries in resp or []:
                for eid, fields in entries:
                    if self.t_first is None:
                        self.t_first = time.time()
                    self.ids.append(job_id(fields[b"d"]))
                    if r.xack(stream, GROUP, eid) != 1:
                        self.errors += 1
                    got += 1
            if got:
                self.t_confirm = time.time()
                self.completer |= self.add(got)

    def close(self):
        self.r.close()


class NatsWorker(Worker):
    def setup(self):
        import asyncio
        try:
            import uvloop
            uvloop.install()
        except ImportError:
            pass
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._setup())

    async def _setup(self):
        import nats
        self.nc = await nats.connect(f"nats://{self.addr}", pending_size=8 * 1024 * 1024)
        self.js = self.nc.jetstream(timeout=30)
        self.psub = await self.js.pull_subscribe_bind(GROUP, "JOBS")

    def run(self):
        self.loop.run_until_complete(self._run())

    async def _run(self):
        import nats
        while self.more():
            try:
                msgs = await self.psub.fetch(self.batch, timeout=0.2)
            except nats.errors.TimeoutError:
                continue
            for m in msgs:
                if self.t_first is None:
                    self.t_first = time.time()
                self.ids.append(job_id(m.data))
                await m.ack()
            if msgs:
                self.t_confirm = time.time()
                if self.add(len(msgs)):
                    self.completer = True
                    await self.nc.flush()     # the last acks have reached the server
                    self.t_confirm = time.time()
        await self.nc.flush()

    def close(self):
        self.loop.run_until_complete(self.nc.close())


class RabbitWorker(Worker):
    def setup(self):
        import pika
        self.conn = pika.BlockingConnection(rabbit_params(self.addr))
        self.ch = self.conn.channel()
        self.per = max(1, math.ceil(self.batch / PARTS))
        self.ch.basic_qos(prefetch_count=self.per)   # per consumer (quorum queues have no global qos)

    def run(self):
        got = 0
        def on_msg(ch, method, _props, body):
            nonlocal got
            if self.t_first is None:
                self.t_first = time.time()
            self.ids.append(job_id(body))
            ch.basic_ack(method.delivery_tag)
            got += 1
        for p in range(PARTS):
            self.ch.basic_consume(f"{TOPIC}.{p}", on_msg, auto_ack=False)
        while self.more():
            got = 0
            self.conn.process_data_events(time_limit=0.05)
            if got:
                self.t_confirm = time.time()
                if self.add(got):
                    self.completer = True
                    self.ch.basic_qos(prefetch_count=self.per)  # a channel RPC: the acks before it are processed
                    self.t_confirm = time.time()
        self.ch.basic_qos(prefetch_count=self.per)

    def close(self):
        self.conn.close()


WORKERS = {"tidemark": TidemarkWorker, "redis": RedisWorker, "nats": NatsWorker, "rabbitmq": RabbitWorker}


def worker_main(system, idx, addr, n, batch, timeout, counter, ready, start, results, release):
    w = WORKERS[system](idx, addr, n, batch, 0, counter)
    w.setup()
    ready.put(idx)
    if not start.wait(120):
        results.put({"idx": idx, "error": "start event never came"}); return
    t0 = time.time()
    w.deadline = t0 + timeout
    c0 = os.times()
    try:
        w.run()
    except Exception as e:  # report, do not hang the parent
        results.put({"idx": idx, "error": repr(e)}); return
    c1 = os.times()
    tc = w.t_confirm or t0
    results.put({"idx": idx, "t0": t0, "t_first": w.t_first, "t_confirm": tc, "completer": w.completer,
                 "ids": w.ids, "errors": w.errors,
                 "cpu": (c1.user - c0.user) + (c1.system - c0.system), "t_run_end": time.time()})
    release.wait(60)
    w.close()


def verify_server(system, addr, n):
    """untimed, after the workers have closed: is anything still pending on the server?"""
    if system == "redis":
        import redis
        h, port = host_port(addr)
        r = redis.Redis(host=h, port=port)
        pending = sum(r.xpending(f"{TOPIC}:{p}", GROUP)["pending"] for p in range(PARTS))
        undelivered = sum(g.get("lag") or 0 for p in range(PARTS) for g in r.xinfo_groups(f"{TOPIC}:{p}"))
        return f"pending {pending} undelivered {undelivered}", pending == 0 and undelivered == 0
    if system == "nats":
        import asyncio
        import nats
        async def q():
            nc = await nats.connect(f"nats://{addr}")
            js = nc.jetstream()
            ci = await js.consumer_info("JOBS", GROUP)
            si = await js.stream_info("JOBS")
            await nc.close()
            return ci, si
        ci, si = asyncio.run(q())
        return (f"ack_pending {ci.num_ack_pending} num_pending {ci.num_pending} redelivered {ci.num_redelivered} "
                f"stream_msgs_left {si.state.messages}",
                ci.num_ack_pending == 0 and ci.num_pending == 0 and si.state.messages == 0)
    if system == "rabbitmq":
        import pika
        conn = pika.BlockingConnection(rabbit_params(addr))
        depth = rabbit_depth(conn.channel())
        conn.close()
        return f"ready_left {depth}", depth == 0
    return "checked by the caller (tidemark groups describe)", True


def consume(system, addr, n, nworkers, batch, timeout, server_pid):
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    ready, results = ctx.Queue(), ctx.Queue()
    start, release = ctx.Event(), ctx.Event()
    procs = [ctx.Process(target=worker_main, args=(system, i, addr, n, batch, timeout, counter, ready, start, results, release),
                         daemon=True) for i in range(nworkers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    time.sleep(0.2)  # let the connect-time chatter settle
    b0, tot0 = machine_ticks()
    c0 = cpu_secs(server_pid)
    t0 = time.time()
    start.set()
    while counter.value < n and time.time() < t0 + timeout + 5 and any(p.is_alive() for p in procs):
        time.sleep(0.002)
    c1 = cpu_secs(server_pid)
    t_seen = time.time()
    b1, tot1 = machine_ticks()
    res = []
    for _ in procs:
        res.append(results.get(timeout=timeout + 60))
    release.set()
    for p in procs:
        p.join(60)
        if p.is_alive():
            p.terminate()
    bad = [r for r in res if "error" in r]
    if bad:
        print(f"worker errors: {bad}", file=sys.stderr)
    ok = [r for r in res if "error" not in r]
    ids = [i for r in ok for i in r["ids"]]
    distinct = len(set(ids))
    t_end = max((r["t_confirm"] for r in ok), default=t_seen)
    el = max(1e-9, t_end - t0)
    firsts = [r["t_first"] - t0 for r in ok if r["t_first"] is not None]
    client_cpu = sum(r["cpu"] for r in ok)
    ticks = os.sysconf("SC_CLK_TCK")
    srv = c1 - c0
    vdesc, vok = verify_server(system, addr, n)
    out = {
        "system": system, "jobs": n, "acked": len(ids), "distinct": distinct,
        "duplicates": len(ids) - distinct, "missing": n - len(set(ids) & set(range(n))),
        "elapsed_s": f"{el:.4f}", "jobs_per_s": f"{len(ids) / el:.0f}",
        "server_cpu_s": f"{srv:.3f}", "server_us_per_job": f"{1e6 * srv / max(1, distinct):.1f}",
        "server_cpu_pct": f"{100 * srv / (t_seen - t0):.0f}",
        "client_cpu_s": f"{client_cpu:.3f}", "client_us_per_job": f"{1e6 * client_cpu / max(1, distinct):.1f}",
        "client_cpu_pct": f"{100 * client_cpu / el:.0f}",
        "machine_busy_pct": f"{100 * (b1 - b0) / max(1, tot1 - tot0):.0f}",
        "first_job_max_ms": f"{1000 * max(firsts):.0f}" if firsts else "-1",
        "first_job_min_ms": f"{1000 * min(firsts):.0f}" if firsts else "-1",
        "per_worker": ",".join(str(len(r["ids"])) for r in sorted(ok, key=lambda r: r["idx"])),
        "worker_errors": sum(r["errors"] for r in ok) + len(bad),
        "server_check_ok": int(vok),
    }
    print("RESULT " + " ".join(f"{k} {v}" for k, v in out.items()), flush=True)
    print(f"server check ({system}): {vdesc}", file=sys.stderr)
    return 0 if (out["missing"] == 0 and not bad and vok) else 1


def main():
    cmd, system, addr = sys.argv[1], sys.argv[2], sys.argv[3]
    if cmd == "preload":
        n, size = int(sys.argv[4]), int(sys.argv[5])
        t = time.time()
        stored = globals()[f"preload_{system}"](addr, n, size)
        print(f"preloaded {stored} jobs of {size} B into {system} in {time.time() - t:.1f} s", file=sys.stderr)
        return 0
    n, nworkers, batch, timeout, server_pid = (int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]),
                                                float(sys.argv[7]), int(sys.argv[8]))
    return consume(system, addr, n, nworkers, batch, timeout, server_pid)


if __name__ == "__main__":
    sys.exit(main())

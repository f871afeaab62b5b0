"""The web console served by `tidemark serve`, in headless Chromium and through its JSON API:
every page loads without console errors and shows the figures the clients see, live updates
(SSE) change them, a hostile record value renders as text, and the offset-reset and requeue
actions work with the token and are refused without it. Screenshots of every page are kept
(`.build/console-screenshots/`, or $TIDEMARK_ARTIFACTS)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import BINARY, ROOT, Broker, free_port, unique

TOKEN = "console-test-token"
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'
ARTIFACTS = os.environ.get("TIDEMARK_ARTIFACTS", os.path.join(ROOT, ".build", "console-screenshots"))


def chromium():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return name
    raise AssertionError("Debian's chromium package is needed (tools/lib/deps.sh installs it)")


def browse(url, screenshot=None, budget=4000):
    """The DOM after the page's scripts ran (and its console messages), or a screenshot."""
    base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--enable-logging=stderr", "--v=0", "--virtual-time-budget=%d" % budget, "--window-size=1280,900"]
    if screenshot:
        os.makedirs(ARTIFACTS, exist_ok=True)
        run = subprocess.run(base + ["--screenshot=" + os.path.join(ARTIFACTS, screenshot), url],
                             capture_output=True, text=True, timeout=120)
        assert os.path.exists(os.path.join(ARTIFACTS, screenshot)), run.stderr[-2000:]
        return None, run.stderr
    run = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    return run.stdout, run.stderr


def console_problems(stderr):
    """Console errors, uncaught exceptions and CSP refusals Chromium logged for the page."""
    # The console logs nothing when all is well: any console line (console.error included,
    # whose text need not say "error") is a problem.
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def api(node, path, method="GET", body=None, token=None, origin=None):
    request = urllib.request.Request(node.http + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("X-Tidemark-Token", token)
    if origin:
        request.add_header("Origin", origin)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def console():
    """A node with the token set, a topic with JSON, text, binary and hostile records, a
    consumer group with lag and no members, and a share group with a dead letter and a
    worker still holding a job."""
    from confluent_kafka import AcknowledgeType, Consumer, Producer, ShareConsumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    root = tempfile.mkdtemp(prefix="tidemark-console-")
    node = Broker(os.path.join(root, "data"), free_port(), extra=[
        "--http-auth-token", TOKEN,
        "--config", "group.share.record.lock.duration.ms=300000",
        "--config", "group.share.heartbeat.interval.ms=500"])
    node.start()
    names = {"topic": unique("shop"), "group": unique("billing"), "queue": unique("workers"), "jobs": unique("jobs")}
    names["dlq"] = "dlq." + names["jobs"]
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    for name, partitions in ((names["topic"], 2), (names["jobs"], 1)):
        for future in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
            future.result(10)
    producer = Producer({"bootstrap.servers": node.bootstrap})
    producer.produce(names["topic"], key=b"order-1", value=b'{"id": 1, "items": ["a", "b"]}', partition=0)
    producer.produce(names["topic"], key=HOSTILE.encode(), value=HOSTILE.encode(), partition=0,
                     headers=[("origin", HOSTILE.encode())])
    producer.produce(names["topic"], key=b"bin", value=bytes(range(0, 256, 7)), partition=0)
    for i in range(12):
        producer.produce(names["topic"], value=b"plain text %d" % i, partition=1)
    for value in (b"poison", b"fine", b"slow"):
        producer.produce(names["jobs"], key=value, value=value)
    assert producer.flush(10) == 0

    # The consumer group: commits, then leaves (lag with nobody to consume it).
    consumer = Consumer({"bootstrap.servers": node.bootstrap, "group.id": names["group"], "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(names["topic"], 0, 1), TopicPartition(names["topic"], 1, 4)], asynchronous=False)
    consumer.close()

    configured = subprocess.run([BINARY, "groups", "configure", names["queue"], "--set",
                                 "errors.deadletterqueue.topic.name=" + names["dlq"], "--bootstrap", node.bootstrap],
                                capture_output=True, text=True, timeout=30)
    assert configured.returncode == 0, configured.stderr
    worker = ShareConsumer({"bootstrap.servers": node.bootstrap, "group.id": names["queue"],
                            "share.acknowledgement.mode": "explicit"})
    worker.subscribe([names["jobs"]])
    seen = set()
    deadline = time.time() + 30
    while len(seen) < 3 and time.time() < deadline:
        for m in worker.poll(0.5):
            if m.error() is None:
                seen.add(m.value())
                if m.value() == b"poison":
                    worker.acknowledge(m, AcknowledgeType.REJECT)
                elif m.value() == b"fine":
                    worker.acknowledge(m, AcknowledgeType.ACCEPT)
        worker.commit_sync(10)
    assert seen == {b"poison", b"fine", b"slow"}
    deadline = time.time() + 20
    while time.time() < deadline:  # the dead letter reaches its topic
        status, rows = api(node, "/api/queues")
        if status == 200 and any(r["deadLettered"] == 1 for r in rows):
            break
        time.sleep(0.3)
    try:
        yield node, names
    finally:
        worker.close()
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_json_api_matches_the_clients_truth(console):
    from confluent_kafka import Consumer, TopicPartition
    node, names = console
    probe = Consumer({"bootstrap.servers": node.bootstrap, "group.id": names["group"]})
    ends = [probe.get_watermark_offsets(TopicPartition(names["topic"], p), timeout=10)[1] for p in range(2)]
    committed = {tp.partition: tp.offset for tp in probe.committed(
        [TopicPartition(names["topic"], p) for p in range(2)], timeout=10)}
    probe.close()

    status, topics = api(node, "/api/topics")
    assert status == 200
    shop = next(t for t in topics if t["name"] == names["topic"])
    assert shop["partitions"] == 2 and shop["records"] == sum(ends) == 15

    status, groups = api(node, "/api/groups")
    row = next(g for g in groups if g["id"] == names["group"])
    assert row["members"] == 0 and row["state"] == "Empty"
    assert row["lag"] == sum(ends[p] - committed[p] for p in range(2))

    status, detail = api(node, "/api/groups/" + names["group"])
    assert [(p["partition"], p["committed"], p["lag"]) for p in detail["partitions"]] == [
        (p, committed[p], ends[p] - committed[p]) for p in range(2)]

    status, queues = api(node, "/api/queues")
    q = next(r for r in queues if r["group"] == names["queue"])
    assert q["inFlight"] == 1 and q["deadLettered"] == 1 and q["acks"]["accept"] == 1 and q["acks"]["reject"] == 1
    assert q["members"] == 1 and q["deadLetterTopic"] == names["dlq"] and q["oldestUnackedAgeSeconds"] >= 0

    status, page = api(node, "/api/topics/%s/messages?partition=0&offset=1&limit=1" % names["topic"])
    assert status == 200 and page["messages"][0]["value"]["text"] == HOSTILE and page["next"] == 2

    status, letters = api(node, "/api/queues/%s/dlq" % names["queue"])
    assert letters["topic"] == names["dlq"] and len(letters["letters"]) == 1
    assert letters["letters"][0]["errors"]["disposition"] == "REJECTED"
    assert letters["letters"][0]["message"]["value"]["text"] == "poison"


PAGES = [
    ("overview.png", "/", ["Overview", "fsync p99", "Records stored"]),
    ("topics.png", "/topics", ["{topic}", "Records/s"]),
    ("topic.png", "/topics/{topic}", ["order-1", "\"items\": [", "Configuration"]),
    ("groups.png", "/groups", ["{group}", "lag, no consumers"]),
    ("group.png", "/groups/{group}", ["This group has lag and no consumers.", "Reset offsets", "Lag, last minutes"]),
    ("queues.png", "/queues", ["{queue}", "{jobs}"]),
    ("queue.png", "/queues/{queue}", ["REJECTED", "Requeue", "{dlq}"]),
]


@pytest.mark.parametrize("shot,path,expected", PAGES, ids=[p[0][:-4] for p in PAGES])
def test_every_page_loads_without_errors_and_shows_the_figures(console, shot, path, expected):
    node, names = console
    url = node.http + path.format(**names) + "?max_events=2"
    dom, log = browse(url)
    assert 'data-ready="true"' in dom, dom[-3000:]
    assert re.search(r'<div id="errors" role="alert"></div>', dom), re.search(r'<div id="errors".*?</div>', dom, re.S).group(0)
    assert not console_problems(log), console_problems(log)
    for text in expected:
        assert text.format(**names) in dom, text
    browse(url, screenshot=shot)


def test_pages_show_the_apis_figures(console):
    node, names = console
    status, detail = api(node, "/api/groups/" + names["group"])
    dom, log = browse(node.http + "/groups/" + names["group"] + "?max_events=1")
    shown_lag = int(re.search(r'data-field="lag">([\d,]+)<', dom).group(1).replace(",", ""))
    assert shown_lag == detail["lag"]
    assert re.search(r'data-field="members">0<', dom)
    for p in detail["partitions"]:
        row = re.search(r'<tr data-key="%s-%d">(.*?)</tr>' % (re.escape(p["topic"]), p["partition"]), dom).group(1)
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        assert [c.replace(",", "") for c in cells[2:5]] == [str(p["committed"]), str(p["logEndOffset"]), str(p["lag"])]
    status, queue = api(node, "/api/queues/" + names["queue"])
    dom, log = browse(node.http + "/queues/" + names["queue"] + "?max_events=1")
    row = re.search(r'<tr data-key="%s/%s"[^>]*>(.*?)</tr>' % (re.escape(names["queue"]), re.escape(names["jobs"])), dom).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    q = queue["queues"][0]
    assert cells[2:8] == [str(q["available"]), str(q["inFlight"]), str(q["delayed"]), str(q["archived"]),
                          str(q["deadLettered"]), str(q["deadLettersPending"])]
    assert not console_problems(log)


def test_groups_named_dot_and_dot_dot_open(console):
    """Kafka allows any group id, "." and ".." too; as a path segment the browser resolves them
    as steps of the path (the link to ".." opened the overview, the one to "." a 404). The page
    names them in the `id` query parameter instead."""
    from confluent_kafka import Consumer, TopicPartition
    node, names = console
    for group, offset in (("..", 2), (".", 3)):
        consumer = Consumer({"bootstrap.servers": node.bootstrap, "group.id": group, "enable.auto.commit": False})
        consumer.commit(offsets=[TopicPartition(names["topic"], 0, offset)], asynchronous=False)
        consumer.close()
    # The page renders the API's list, then the live snapshot (made each second): wait until
    # the snapshot has the new groups, or it replaces the list with an older one.
    deadline = time.time() + 20
    while True:
        with urllib.request.urlopen(node.http + "/api/events?max_events=1", timeout=30) as stream:
            event = stream.read().decode()
        if '"id":".."' in event and '"id":"."' in event:
            break
        assert time.time() < deadline, event[-2000:]
        time.sleep(0.3)
    dom, log = browse(node.http + "/groups?max_events=1")
    assert 'href="/groups/_?id=.."' in dom and 'href="/groups/_?id=."' in dom, re.findall(r'href="/groups/[^"]*"', dom)
    for group, offset in (("..", 2), (".", 3)):
        status, detail = api(node, "/api/groups/_?id=" + group)
        assert status == 200 and detail["id"] == group, (status, detail)
        assert [p["committed"] for p in detail["partitions"] if p["partition"] == 0] == [offset]
        dom, log = browse(node.http + "/groups/_?id=" + group + "&max_events=1")
        assert "<h1>Consumer group " + group + "</h1>" in dom, dom[-2000:]
        assert not console_problems(log), console_problems(log)
    # A group literally named "_" is still its own segment.
    status, detail = api(node, "/api/groups/_")
    assert status == 404


def test_a_hostile_record_renders_as_text(console):
    node, names = console
    dom, log = browse(node.http + "/topics/" + names["topic"] + "?max_events=1")
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=x onerror=" in dom
    assert "<img src=" not in dom and "<script>window" not in dom
    # A value that is not UTF-8 shows as hex (the API leaves its text out; it showed
    # "undefined"), and the last page's button is off (it reloaded the first page).
    assert "undefined" not in dom
    assert "00 07 0e 15 1c" in dom
    assert re.search(r'<button[^>]*disabled[^>]*>Next page</button>', dom)
    assert not console_problems(log)


def test_live_updates_change_the_numbers(console):
    from confluent_kafka import Producer
    node, names = console
    stop = threading.Event()

    def produce():
        producer = Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 0})
        while not stop.is_set():
            producer.produce(names["topic"], value=b"live", partition=1)
            producer.flush(5)
            time.sleep(0.1)

    thread = threading.Thread(target=produce)
    thread.start()
    try:
        dom, log = browse(node.http + "/?max_events=4", budget=8000)
    finally:
        stop.set()
        thread.join(10)
    events = int(re.search(r'data-events="(\d+)"', dom).group(1))
    initial = int(re.search(r'data-initial-records="(\d+)"', dom).group(1))
    shown = int(re.search(r'data-field="recordsTotal">([\d,]+)<', dom).group(1).replace(",", ""))
    assert events >= 2
    assert shown > initial, (initial, shown)
    assert not console_problems(log)


def test_reset_offsets_with_the_token_only(console):
    node, names = console
    path = "/api/groups/%s/reset" % names["group"]
    body = {"topic": names["topic"], "to": "earliest", "dryRun": False}
    assert api(node, path, "POST", body)[0] == 401
    assert api(node, path, "POST", body, token="wrong")[0] == 401
    assert api(node, path, "POST", body, token=TOKEN, origin="http://evil.example")[0] == 403
    status, preview = api(node, path, "POST", dict(body, dryRun=True), token=TOKEN)
    assert status == 200 and preview["dryRun"] and all(r["to"] == 0 for r in preview["offsets"])
    total = next(t for t in api(node, "/api/topics")[1] if t["name"] == names["topic"])["records"]
    assert api(node, "/api/groups/" + names["group"])[1]["lag"] < total  # nothing changed yet
    status, applied = api(node, path, "POST", body, token=TOKEN)
    assert status == 200 and not applied["dryRun"]
    assert api(node, "/api/groups/" + names["group"])[1]["lag"] == total
    status, shifted = api(node, path, "POST", {"topic": names["topic"], "to": "shift", "shift": 2, "dryRun": False}, token=TOKEN)
    assert status == 200 and [r["to"] for r in shifted["offsets"]] == [2, 2]
    # Without dryRun: a dry run, as the CLI's without --execute. A time as ISO 8601 or ms.
    status, unsaid = api(node, path, "POST", {"topic": names["topic"], "to": "earliest"}, token=TOKEN)
    assert status == 200 and unsaid["dryRun"] and [r["from"] for r in unsaid["offsets"]] == [2, 2]
    for when in ("2000-01-01T00:00:00Z", 946684800000, "946684800000"):
        status, timed = api(node, path, "POST", {"topic": names["topic"], "to": "time", "timestamp": when}, token=TOKEN)
        assert status == 200 and [r["to"] for r in timed["offsets"]] == [0, 0], (when, timed)
    status, bad = api(node, path, "POST", {"topic": names["topic"], "to": "time", "timestamp": "yesterday"}, token=TOKEN)
    assert status == 400 and "ISO 8601" in bad["error"] and "JSON" not in bad["error"], bad

    # Refused while the group has a member.
    from confluent_kafka import Consumer
    member = Consumer({"bootstrap.servers": node.bootstrap, "group.id": names["group"], "session.timeout.ms": 6000})
    member.subscribe([names["topic"]])
    deadline = time.time() + 30
    while not member.assignment() and time.time() < deadline:
        member.poll(0.5)
    status, refused = api(node, path, "POST", body, token=TOKEN)
    member.close()
    assert status == 409 and "members" in refused["error"]


def test_requeue_a_dead_letter_with_the_token_only(console):
    from confluent_kafka import Consumer, TopicPartition
    node, names = console
    path = "/api/queues/%s/dlq/requeue" % names["queue"]
    assert api(node, path, "POST", {"partition": 0, "offset": 0})[0] == 401
    status, done = api(node, path, "POST", {"partition": 0, "offset": 0}, token=TOKEN)
    assert status == 200 and done["topic"] == names["jobs"]
    reader = Consumer({"bootstrap.servers": node.bootstrap, "group.id": unique("check")})
    reader.assign([TopicPartition(done["topic"], done["partition"], done["offset"])])
    message = None
    deadline = time.time() + 20
    while message is None and time.time() < deadline:
        got = reader.poll(0.5)
        if got is not None and got.error() is None:
            message = got
    reader.close()
    assert message.key() == b"poison" and message.value() == b"poison"
    assert not any(k.startswith("_dlq.errors.") for k, _ in (message.headers() or []))

    # Once per letter: a second click (or a reloaded page) is refused with where it went, and
    # the page says so; force requeues it again. A partition the topic lacks is 404, not 500.
    place = "%s-%d@%d" % (done["topic"], done["partition"], done["offset"])
    status, again = api(node, path, "POST", {"partition": 0, "offset": 0}, token=TOKEN)
    assert status == 409 and place in again["error"], again
    status, page = api(node, "/api/queues/%s/dlq" % names["queue"])
    assert status == 200 and [l.get("requeuedTo") for l in page["letters"] if l["message"]["offset"] == 0] == [place]
    status, forced = api(node, path, "POST", {"partition": 0, "offset": 0, "force": True}, token=TOKEN)
    assert status == 200 and forced["offset"] > done["offset"]
    for partition in (-1, 5):
        status, missing = api(node, path, "POST", {"partition": partition, "offset": 0}, token=TOKEN)
        assert status == 404, (status, missing)


def test_a_broker_on_every_interface_keeps_its_console_on_loopback_without_a_token():
    """`--host 0.0.0.0` (or Kafka's `listeners=PLAINTEXT://:9092`) without a token starts, the
    console on 127.0.0.1 (it was refused at start: the console followed the Kafka address)."""
    root = tempfile.mkdtemp(prefix="tidemark-console-bind-")
    port = free_port()
    proc = subprocess.Popen([BINARY, "serve", "--data", os.path.join(root, "data"), "--host", "0.0.0.0", "--port", "0",
                             "--http-port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = proc.stdout.readline()
        assert "ready" in ready and "listening on 0.0.0.0:" in ready and f"http 127.0.0.1:{port}" in ready, ready
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def test_beyond_loopback_needs_a_token():
    root = tempfile.mkdtemp(prefix="tidemark-console-bind-")
    try:
        # A name that starts like a loopback address is a name: it may resolve anywhere.
        for host in ["0.0.0.0", "127.example.com", "127.0.0.1.nip.io"]:
            run = subprocess.run([BINARY, "serve", "--data", os.path.join(root, "data"), "--port", "0",
                                  "--http-host", host, "--http-port", str(free_port())],
                                 capture_output=True, text=True, timeout=30)
            assert run.returncode != 0 and "--http-auth-token" in run.stderr, (host, run.stderr)
        # A blank token is none: refused at start, not a console whose every read is refused.
        blank = os.path.join(root, "blank-token")
        with open(blank, "w") as f:
            f.write("   \n")
        for token in [["--http-auth-token", "  "], ["--http-auth-token-file", blank]]:
            run = subprocess.run([BINARY, "serve", "--data", os.path.join(root, "data"), "--port", "0",
                                  "--http-host", "0.0.0.0", "--http-port", str(free_port())] + token,
                                 capture_output=True, text=True, timeout=30)
            assert run.returncode != 0 and "token" in run.stderr, (token, run.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)


class DevTools:
    """Headless Chromium driven over its DevTools pipe (`--remote-debugging-pipe`: commands as
    NUL-terminated JSON on fd 3, answers and events on fd 4), for what a page needs a user for."""

    def __init__(self, url):
        import fcntl

        def high(fd):  # out of the way of 3 and 4, which the shell sets
            moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
            os.close(fd)
            return moved

        to_child, self._send = os.pipe()
        self._receive, from_child = os.pipe()
        to_child, from_child = high(to_child), high(from_child)
        self.profile = tempfile.mkdtemp(prefix="tidemark-chromium-")
        # The pipes go to fds 3 and 4 by bash's redirections (dash takes one-digit fds only; no
        # preexec_fn: this process runs librdkafka's threads); its own session, so that closing
        # kills its helpers too.
        self.process = subprocess.Popen(
            ["bash", "-c", 'exec "$0" "$@" 3<&%d 4>&%d %d<&- %d>&-' % (to_child, from_child, to_child, from_child),
             chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--remote-debugging-pipe", "--user-data-dir=" + self.profile, url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(to_child, from_child), start_new_session=True)
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next = 0
        try:
            deadline = time.time() + 30
            pages = []
            while not pages and time.time() < deadline:
                pages = [t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page"]
                if not pages:
                    time.sleep(0.1)
            assert pages, "no page target"
            self.session = self.call("Target.attachToTarget", targetId=pages[0]["targetId"], flatten=True)["sessionId"]
        except BaseException:
            self.close()
            raise

    def call(self, method, session=None, timeout=30, **params):
        import select
        self._next += 1
        message = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._send, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            while b"\0" not in self._buffer:
                ready, _, _ = select.select([self._receive], [], [], max(0, deadline - time.time()))
                assert ready, "no answer from chromium to %s in %d s" % (method, timeout)
                chunk = os.read(self._receive, 65536)
                assert chunk, "chromium closed its DevTools pipe"
                self._buffer += chunk
            line, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(line)
            if answer.get("id") == self._next:
                assert "error" not in answer, answer
                return answer["result"]

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", session=self.session, expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, expression, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        return self.evaluate(expression)

    def close(self):
        try:
            os.killpg(self.process.pid, 9)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(10)
        finally:
            os.close(self._send)
            os.close(self._receive)
            shutil.rmtree(self.profile, ignore_errors=True)


def test_entering_the_token_starts_live_updates():
    """A console beyond loopback needs its token for reads: the page first asks for it, and its
    event stream is refused. Entering the token shows the pages and starts the live updates
    (the refused stream stayed closed: the page never updated until reloaded)."""
    root = tempfile.mkdtemp(prefix="tidemark-console-token-")
    node = Broker(os.path.join(root, "data"), free_port(), extra=["--http-host", "0.0.0.0", "--http-auth-token", TOKEN])
    node.start()
    browser = None
    try:
        browser = DevTools(node.http + "/")
        assert browser.wait_for("document.body.innerText.includes('needs its auth token')"), browser.evaluate("document.body.innerText")
        assert not browser.evaluate("document.body.dataset.events")
        browser.evaluate("document.getElementById('token').value = %s;"
                         "document.getElementById('token-form').requestSubmit(); true" % json.dumps(TOKEN))
        assert browser.wait_for("document.body.dataset.ready === 'true' && !!document.getElementById('overview-cards')")
        events = browser.wait_for("Number(document.body.dataset.events || 0) >= 2 && document.body.dataset.events")
        assert events and int(events) >= 2, events
    finally:
        if browser:
            browser.close()
        node.stop()
        shutil.rmtree(root, ignore_errors=True)

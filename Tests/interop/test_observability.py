"""Observability against a real `tidemark serve`: /metrics compared with what real clients
see (end offsets, committed offsets, lag, members 1 then 0), promtool's linter, a real
Prometheus scraping the node while clients work, and every query of the Grafana dashboard in
tools/grafana run against that Prometheus (Grafana 7589's five panels plus Tidemark's)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import ROOT, free_port, unique

DASHBOARD = os.path.join(ROOT, "tools", "grafana", "dashboards", "tidemark-overview.json")


def scrape(node):
    with urllib.request.urlopen(node.http + "/metrics", timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return answer.read().decode()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset(labels)): value}; fails on a line it cannot read."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, "unreadable exposition line: %r" % line
        labels = frozenset(LABEL.findall(match.group(2) or ""))
        out[(match.group(1), labels)] = float(match.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())))


def _topic(bootstrap, name, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        future.result(10)


def test_metrics_match_the_clients_truth_and_pass_promtool(broker):
    from confluent_kafka import Consumer, Producer, TopicPartition
    topic, group = unique("obs-orders"), unique("obs-billing")
    _topic(broker.bootstrap, topic, 3)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for i in range(30):
        producer.produce(topic, value=b"order-%d" % i, partition=i % 3)
    assert producer.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
    got = 0
    deadline = time.time() + 30
    while got < 12 and time.time() < deadline:
        message = consumer.poll(1)
        if message is not None and message.error() is None:
            got += 1
            # Commits stop at 6 on partition 0 and 4 on partition 1 (whichever arrive).
            if message.partition() == 0 and message.offset() < 6 or message.partition() == 1 and message.offset() < 4:
                consumer.commit(message=message, asynchronous=False)
    committed = {tp.partition: tp.offset for tp in consumer.committed(
        [TopicPartition(topic, p) for p in range(3)], timeout=10)}
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(3)}
    consumer.close()

    samples = parse(scrape(broker))
    assert value(samples, "kafka_brokers") == 1
    assert value(samples, "kafka_topic_partitions", topic=topic) == 3
    for p in range(3):
        assert value(samples, "kafka_topic_partition_current_offset", partition=p, topic=topic) == ends[p]
        assert value(samples, "kafka_topic_partition_oldest_offset", partition=p, topic=topic) == 0
    for p in range(3):
        mine = committed[p] if committed[p] >= 0 else -1
        assert value(samples, "kafka_consumergroup_current_offset", consumergroup=group, partition=p, topic=topic) == mine
        lag = ends[p] - committed[p] if committed[p] >= 0 else -1
        assert value(samples, "kafka_consumergroup_lag", consumergroup=group, partition=p, topic=topic) == lag
    assert value(samples, "kafka_consumergroup_lag_sum", consumergroup=group, topic=topic) == sum(
        ends[p] - committed[p] for p in range(3) if committed[p] >= 0)
    # Every worker gone: the group is still listed, with members 0 and its lag.
    assert value(samples, "kafka_consumergroup_members", consumergroup=group) == 0

    # A live member: members 1.
    live = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 6000})
    live.subscribe([topic])
    deadline = time.time() + 30
    while not live.assignment() and time.time() < deadline:
        live.poll(0.5)
    assert value(parse(scrape(broker)), "kafka_consumergroup_members", consumergroup=group) == 1
    live.close()

    # Request metrics per API, produce bytes per topic.
    samples = parse(scrape(broker))
    assert value(samples, "tidemark_kafka_requests_total", api="Produce") >= 1
    assert value(samples, "tidemark_kafka_requests_total", api="OffsetCommit") >= 2
    assert value(samples, "tidemark_records_produced_total", topic=topic) == 30
    assert value(samples, "tidemark_kafka_request_duration_seconds_count", api="Fetch") >= 1

    # Prometheus' own linter accepts the exposition.
    lint = subprocess.run(["promtool", "check", "metrics"], input=scrape(broker), capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    with urllib.request.urlopen(broker.http + "/healthz", timeout=5) as answer:
        assert answer.status == 200
    with urllib.request.urlopen(broker.http + "/readyz", timeout=5) as answer:
        assert answer.status == 200


def _prometheus_query(prom, expr):
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.load(answer)
    except urllib.error.HTTPError as error:
        raise AssertionError("query refused (%s): %s: %s" % (error.code, expr, error.read()[:300]))
    assert body["status"] == "success", body
    return body["data"]["result"]


def _label_values(prom, query):
    match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", query)
    assert match, query
    selector, label = match.group(1), match.group(2)
    url = prom + "/api/v1/series?" + urllib.parse.urlencode({"match[]": selector})
    with urllib.request.urlopen(url, timeout=10) as answer:
        series = json.load(answer)["data"]
    return sorted({s[label] for s in series if label in s})


def _substitute(expr, values):
    builtins = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}
    both = dict(builtins, **values)
    expr = re.sub(r"\$\{(\w+)(?::\w+)?\}", lambda m: both[m.group(1)], expr)
    return re.sub(r"\$(\w+)", lambda m: both[m.group(1)], expr)


def check_dashboard(path, prom):
    """Every template variable resolves, and every panel query returns at least one series."""
    dashboard = json.load(open(path))
    values = {}
    for variable in dashboard["templating"]["list"]:
        found = _label_values(prom, _substitute(variable["query"], values))
        assert found, "variable %s has no values" % variable["name"]
        if variable.get("includeAll"):
            # As Grafana's "All" of a multi-value variable (topic names need no escaping).
            values[variable["name"]] = "|".join(found)
        else:
            values[variable["name"]] = found[0]
    empty = []
    queries = 0
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries += 1
            if not _prometheus_query(prom, _substitute(target["expr"], values)):
                empty.append((panel["title"], target["expr"]))
    assert queries >= 20
    assert not empty, "queries without data: %r" % empty


def test_dashboard_variables_come_from_series_every_node_exports():
    """Job and instance come from kafka_brokers, exported whatever the node serves: drawn from
    kafka_consumergroup_current_offset, they had no value on a node with share groups only
    (the job queue) and every panel was empty."""
    dashboard = json.load(open(DASHBOARD))
    queries = {v["name"]: v["query"] for v in dashboard["templating"]["list"]}
    assert queries["job"].startswith("label_values(kafka_brokers")
    assert queries["instance"].startswith("label_values(kafka_brokers")


def test_prometheus_scrapes_and_every_dashboard_query_has_data(broker):
    from confluent_kafka import Consumer, Producer, ShareConsumer
    assert shutil.which("prometheus"), "Debian's prometheus package is needed (tools/lib/deps.sh installs it)"
    topic, group, share_group = unique("obs-live"), unique("obs-group"), unique("obs-queue")
    _topic(broker.bootstrap, topic, 2)

    root = tempfile.mkdtemp(prefix="tidemark-prom-")
    port = free_port()
    config = os.path.join(root, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tidemark\n"
                "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % broker.http_port)
    check = subprocess.run(["promtool", "check", "config", config], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    prom_log = open(os.path.join(root, "prometheus.log"), "wb")
    prometheus = subprocess.Popen(
        ["prometheus", "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(root, "tsdb"),
         "--web.listen-address=127.0.0.1:%d" % port], stdout=prom_log, stderr=subprocess.STDOUT)
    prom = "http://127.0.0.1:%d" % port
    stop = threading.Event()
    failures = []

    def traffic():
        try:
            producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
            consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                                 "auto.offset.reset": "earliest", "auto.commit.interval.ms": 500})
            consumer.subscribe([topic])
            worker = ShareConsumer({"bootstrap.servers": broker.bootstrap, "group.id": share_group})
            worker.subscribe([topic])
            i = 0
            while not stop.is_set():
                producer.produce(topic, value=b"job-%d" % i)
                producer.poll(0)
                i += 1
                consumer.poll(0.05)
                worker.poll(0.05)
            producer.flush(10)
            consumer.close()
            worker.close()
        except Exception as error:  # reported by the test below
            failures.append(error)

    # A fetch past the end (OFFSET_OUT_OF_RANGE, then kcat resets to the end of the empty
    # partition and exits): an error for the errors panel.
    subprocess.run(["kcat", "-C", "-b", broker.bootstrap, "-t", topic, "-p", "0", "-o", "999999", "-e", "-q"],
                   capture_output=True, timeout=30)
    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            time.sleep(1)
            try:
                up = _prometheus_query(prom, 'up{job="tidemark"}')
                offsets = _prometheus_query(prom, "count_over_time(kafka_consumergroup_current_offset[1m])")
            except OSError:
                continue
            if up and up[0]["value"][1] == "1" and offsets and float(offsets[0]["value"][1]) >= 8:
                break
        check_dashboard(DASHBOARD, prom)
        # The shared reference checker, when this machine has it, must agree.
        shared = os.path.join(ROOT, "..", "shared", "tools", "check_dashboard.py")
        if os.path.exists(shared):
            run = subprocess.run(["python3", shared, DASHBOARD, prom], capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stdout + run.stderr
    finally:
        stop.set()
        thread.join(30)
        prometheus.terminate()
        prometheus.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    assert not failures, failures


def test_json_logs_one_object_per_line_with_metadata_fields():
    from conftest import Broker
    root = tempfile.mkdtemp(prefix="tidemark-logs-")
    node = Broker(os.path.join(root, "data"), free_port(), extra=["--log-format", "json", "--log-level", "info"])
    node.start()
    try:
        topic = unique("logged")
        _topic(node.bootstrap, topic, 2)
        from confluent_kafka import Consumer
        consumer = Consumer({"bootstrap.servers": node.bootstrap, "group.id": unique("g"), "session.timeout.ms": 6000})
        consumer.subscribe([topic])
        deadline = time.time() + 30
        while not consumer.assignment() and time.time() < deadline:
            consumer.poll(0.5)
        consumer.close()
    finally:
        node.stop()
    lines = [line for line in open(node.log_path).read().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    created = [r for r in records if r["msg"] == "topic created"]
    assert created and created[0]["topic"] == topic and created[0]["partitions"] == "2"
    assert any(r["msg"] == "group rebalanced" and r.get("members") == "1" for r in records)
    assert any(r["msg"] == "stopped cleanly" for r in records)
    shutil.rmtree(root, ignore_errors=True)


def test_text_logs_escape_what_clients_choose():
    """Group ids are the clients' to choose, and reach log lines ("group rebalanced"): one
    holding a line feed wrote a second line of its own choosing into the default text log (a
    forged "critical ... data directory corrupt"). Control characters are escaped now."""
    from conftest import Broker
    root = tempfile.mkdtemp(prefix="tidemark-textlogs-")
    node = Broker(os.path.join(root, "data"), free_port(), extra=["--log-level", "info"])
    node.start()
    forged = "critical tidemark : data directory corrupt, restore from backup"
    group = unique("g") + "\n" + forged + "\r\x1b[2K"
    try:
        topic = unique("logged")
        _topic(node.bootstrap, topic, 1)
        from confluent_kafka import Consumer
        consumer = Consumer({"bootstrap.servers": node.bootstrap, "group.id": group, "session.timeout.ms": 6000})
        consumer.subscribe([topic])
        deadline = time.time() + 30
        while not consumer.assignment() and time.time() < deadline:
            consumer.poll(0.5)
        assert consumer.assignment()
        consumer.close()
    finally:
        node.stop()
    text = open(node.log_path, "rb").read().decode()
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert not any(line.startswith("critical") for line in lines), [l for l in lines if "critical" in l]
    rebalanced = [line for line in lines if "group rebalanced" in line]
    assert rebalanced and all("\\n" + forged + "\\r\\u{1B}[2K" in line for line in rebalanced), rebalanced
    shutil.rmtree(root, ignore_errors=True)

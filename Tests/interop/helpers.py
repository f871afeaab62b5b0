"""Shared helpers: the messages every client sends, Kafka's partitioner, reading a partition back."""
import time
import urllib.request


def metric(node, series):
    """The value of one series of the node's /metrics, by name and labels as exposed
    ('tidemark_log_index_memory_bytes', 'tidemark_kafka_requests_total{api="Fetch"}')."""
    with urllib.request.urlopen(node.http + "/metrics", timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line.split()[1])
    raise AssertionError("%s not exposed" % series)


def read_values(bootstrap, topic, count, timeout=30):
    """The values of partition 0 of `topic` from offset 0 (confluent-kafka, no group
    coordination), until `count` arrived or `timeout` seconds passed."""
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    deadline = time.time() + timeout
    while len(values) < count and time.time() < deadline:
        for m in consumer.consume(count, 1.0):
            assert m.error() is None, m.error()
            values.append(m.value())
    consumer.close()
    return values


def murmur2_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (murmur2, positive, modulo), as kafka-python computes it."""
    from kafka.partitioner.default import murmur2
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def messages(count, tag, null_headers=True):
    """(key, value, headers, timestamp_ms): keys repeat; some headers have a null value
    (for clients whose producer accepts them)."""
    base = int(time.time() * 1000) - 60_000
    out = []
    for i in range(count):
        key = None if i % 50 == 0 else ("%s-key-%d" % (tag, i % 97)).encode()
        value = ("%s-value-%d-" % (tag, i)).encode() + bytes([i % 256]) * (i % 40)
        headers = [("seq", str(i).encode()), ("empty", b"")] + ([("nul", None)] if null_headers and i % 3 == 0 else [])
        out.append((key, value, headers, base + i))
    return out


def normalize_headers(headers):
    return [(k, (bytes(v) if v is not None else None)) for k, v in (headers or [])]


def share_poll_until_error(worker, seconds):
    """Polls a confluent-kafka ShareConsumer until a poll reports an error (as a message or
    raised) or `seconds` pass: (the values it got, the error or None)."""
    from confluent_kafka import KafkaException
    values, error = [], None
    deadline = time.time() + seconds
    while error is None and time.time() < deadline:
        try:
            for m in worker.poll(0.5):
                if m.error() is not None:
                    error = m.error()
                else:
                    values.append(m.value())
        except KafkaException as e:
            error = e.args[0]
    return values, error


def share_fetches_while_polling(node, worker, seconds=2):
    """ShareFetch requests `node` answered while `worker` polled on for `seconds`, errors
    ignored: (that count, the values it got)."""
    from confluent_kafka import KafkaException
    fetches = 'tidemark_kafka_requests_total{api="ShareFetch"}'
    values, before, started = [], metric(node, fetches), time.time()
    while time.time() - started < seconds:
        try:
            values += [m.value() for m in worker.poll(0.5) if m.error() is None]
        except KafkaException:
            pass
    return metric(node, fetches) - before, values

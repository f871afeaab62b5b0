"""Each real Kafka client produces and consumes 10,000 messages against tidemark and reads
back exactly what it sent: keys, values, headers (null and empty kept apart), timestamps."""
import asyncio
import os
import subprocess
import time

import pytest

from conftest import BINARY, unique
from helpers import messages, murmur2_partition, normalize_headers

COUNT = 10_000


def check_roundtrip(sent, received):
    assert len(received) == len(sent), "got %d of %d" % (len(received), len(sent))
    by_seq = {}
    for key, value, headers, ts in received:
        seq = int(dict(headers)["seq"])
        assert seq not in by_seq, "duplicate message %d" % seq
        by_seq[seq] = (key, value, headers, ts)
    for i, (key, value, headers, ts) in enumerate(sent):
        got = by_seq[i]
        assert got[0] == key and got[1] == value, "message %d differs" % i
        assert normalize_headers(got[2]) == normalize_headers(headers), "headers of %d differ" % i
        if ts is not None:
            assert got[3] == ts, "timestamp of %d differs" % i


# ---------------------------------------------------------------- confluent-kafka (librdkafka)

@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_confluent_kafka_roundtrip(broker, acks):
    from confluent_kafka import Consumer, Producer, TopicPartition
    topic = unique("ck-" + acks)
    sent = messages(COUNT, topic)
    conf = {"bootstrap.servers": broker.bootstrap, "compression.type": "lz4", "acks": acks, "linger.ms": 5}
    if acks == "all":
        conf["enable.idempotence"] = True
    producer = Producer(conf)
    for key, value, headers, ts in sent:
        producer.produce(topic, key=key, value=value, headers=headers, timestamp=ts)
        producer.poll(0)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    received = []
    deadline = time.time() + 60
    while len(received) < COUNT and time.time() < deadline:
        for m in consumer.consume(1000, 1.0):
            assert m.error() is None, m.error()
            received.append((m.key(), m.value(), m.headers() or [], m.timestamp()[1]))
    consumer.close()
    check_roundtrip(sent, received)


# ---------------------------------------------------------------- kafka-python

@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_kafka_python_roundtrip(broker, acks):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    topic = unique("kp-%s" % acks)
    sent = messages(COUNT, topic, null_headers=False)  # its producer refuses null header values
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap, acks=acks, compression_type="lz4",
        enable_idempotence=(acks == "all"), linger_ms=5)
    for key, value, headers, ts in sent:
        producer.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts)
    producer.flush(60)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, consumer_timeout_ms=60_000)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    received = []
    deadline = time.time() + 60
    while len(received) < COUNT and time.time() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            received += [(r.key, r.value, r.headers, r.timestamp) for r in records]
    consumer.close()
    check_roundtrip(sent, received)


@pytest.mark.parametrize("api_version", [(0, 11), (2, 0), (4, 1)])
def test_kafka_python_pinned_api_version(broker, api_version):
    """With api_version pinned, kafka-python skips ApiVersions and picks each request's
    version from its table for that Kafka release: the oldest and newest it knows both work,
    group commits included."""
    from kafka import KafkaConsumer, KafkaProducer
    topic = unique("kpv%d%d" % api_version)
    sent = messages(COUNT, topic, null_headers=False)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=api_version, linger_ms=5)
    for key, value, headers, ts in sent:
        producer.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts)
    producer.flush(60)
    producer.close()
    group = unique("kpv-group")
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, api_version=api_version, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    received = []
    deadline = time.time() + 60
    while len(received) < COUNT and time.time() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            received += [(r.key, r.value, r.headers, r.timestamp) for r in records]
    consumer.commit()
    consumer.close()
    check_roundtrip(sent, received)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=api_version, group_id=group)
    from kafka import TopicPartition
    assert consumer.committed(TopicPartition(topic, 0)) == COUNT
    consumer.close()


# ---------------------------------------------------------------- aiokafka

@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_aiokafka_roundtrip(broker, acks):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    topic = unique("ak-%s" % acks)
    sent = messages(COUNT, topic, null_headers=False)

    async def run():
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap, acks=acks, compression_type="lz4",
            enable_idempotence=(acks == "all"), linger_ms=5)
        await producer.start()
        futures = [await producer.send(topic, key=k, value=v, headers=h, timestamp_ms=ts) for k, v, h, ts in sent]
        await asyncio.gather(*futures)
        await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
        await consumer.start()
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        received = []
        deadline = time.time() + 60
        while len(received) < COUNT and time.time() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                received += [(r.key, r.value, list(r.headers), r.timestamp) for r in records]
        await consumer.stop()
        return received

    check_roundtrip(sent, asyncio.run(run()))


# ---------------------------------------------------------------- kcat (librdkafka 2.0.2 on Debian)

@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_kcat_roundtrip(broker, acks, tmp_path):
    topic = unique("kc-" + acks)
    lines = ["%s-key-%d|%s-value-%d" % (topic, i % 97, topic, i) for i in range(COUNT)]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n")
    extra = ["-X", "enable.idempotence=true"] if acks == "all" else []
    subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-P", "-t", topic, "-K", "|", "-z", "lz4", "-X", "acks=" + acks,
         "-H", "origin=kcat", "-l", str(path)] + extra,
        check=True, timeout=120)
    # With acks=0, kcat is done once its requests are written: the broker may still be storing
    # the last of them (large compressed batches are checked off the event loop).
    deadline = time.time() + (30 if acks == "0" else 0)
    while True:
        out = subprocess.run(
            ["kcat", "-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k|%s|%h\n"],
            check=True, timeout=120, capture_output=True).stdout.decode().splitlines()
        if len(out) >= len(lines) or time.time() > deadline:
            break
        time.sleep(0.5)
    assert out == [line + "|origin=kcat" for line in lines]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_every_kafka_codec_is_stored_as_sent_and_read_back(broker, codec, tmp_path):
    """A producer may compress with any of Kafka's codecs (librdkafka's, through kcat): the
    batches are stored as sent (gzip, snappy and zstd were refused with
    UNSUPPORTED_COMPRESSION_TYPE), read back by a consumer, and decoded by Tidemark itself:
    the tools' consume and dump, and a share group handing their records out."""
    from confluent_kafka import ShareConsumer
    topic = unique("codec-" + codec)
    lines = ["k%d|%s-%d-%s" % (i % 13, codec, i, "x" * (i % 50)) for i in range(2000)]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n")
    subprocess.run(["kcat", "-b", broker.bootstrap, "-P", "-t", topic, "-K", "|", "-z", codec, "-l", str(path)],
                   check=True, timeout=120)
    out = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k|%s\n"],
        check=True, timeout=120, capture_output=True).stdout.decode().splitlines()
    assert out == lines
    consumed = subprocess.run([BINARY, "consume", topic, "--bootstrap", broker.bootstrap],
                              check=True, timeout=120, capture_output=True, text=True).stdout.splitlines()
    assert consumed == [line.replace("|", "\t", 1) for line in lines]
    segment = os.path.join(broker.data_dir, topic + "-0", "00000000000000000000.log")
    dump = subprocess.run([BINARY, "dump", segment], check=True, timeout=120, capture_output=True, text=True).stdout
    assert "compression: " + codec in dump and "invalid contents" not in dump
    worker = ShareConsumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("codec-workers")})
    worker.subscribe([topic])
    got = []
    deadline = time.time() + 60
    while len(got) < len(lines) and time.time() < deadline:
        got += [m.value().decode() for m in worker.poll(0.5) if m.error() is None]
    worker.close()
    assert sorted(got) == sorted(line.split("|", 1)[1] for line in lines)


@pytest.mark.parametrize("topic_codec", ["zstd", "uncompressed"])
def test_a_topics_compression_type_is_how_its_batches_are_stored(broker, topic_codec):
    """A topic created with compression.type (confluent-kafka's AdminClient, as a Kafka
    migration or Terraform spec sets it) stores every batch in that codec: a client's batches in
    another (lz4 from confluent-kafka, gzip from kafka-python) are recompressed, as Kafka's
    broker does, and read back as sent; DescribeConfigs gives the value back."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
    from kafka import KafkaProducer
    topic = unique("topic-codec-" + topic_codec)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={"compression.type": topic_codec})])[topic].result(30)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    described = admin.describe_configs([resource])[resource].result(30)
    assert described["compression.type"].value == topic_codec
    sent = ["lz4-%d-%s" % (i, "y" * (i % 40)) for i in range(500)]
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": "lz4", "linger.ms": 5,
                         "enable.idempotence": True})
    for value in sent:
        producer.produce(topic, value=value.encode())
    assert producer.flush(30) == 0
    more = ["gzip-%d" % i for i in range(200)]
    kp = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type="gzip", linger_ms=5)
    for value in more:
        kp.send(topic, value=value.encode(), partition=0)
    kp.flush(30)
    kp.close()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    received = []
    deadline = time.time() + 60
    while len(received) < len(sent) + len(more) and time.time() < deadline:
        for m in consumer.consume(1000, 1.0):
            assert m.error() is None, m.error()
            received.append(m.value().decode())
    consumer.close()
    assert received == sent + more
    segment = os.path.join(broker.data_dir, topic + "-0", "00000000000000000000.log")
    dump = subprocess.run([BINARY, "dump", segment], check=True, timeout=120, capture_output=True, text=True).stdout
    codecs = {line.split("compression: ")[1].split()[0] for line in dump.splitlines() if "compression: " in line}
    assert codecs == {"none" if topic_codec == "uncompressed" else topic_codec}, codecs


# ---------------------------------------------------------------- partitioning and positions

def test_keyed_messages_land_where_kafka_puts_them(broker):
    from confluent_kafka import Producer
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic
    topic = unique("keyed")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])
    admin.close()
    keys = [("user-%d" % i).encode() for i in range(200)]
    landed = {}

    def report(err, msg):
        assert err is None, err
        landed[msg.key()] = msg.partition()

    # librdkafka's default partitioner is not Kafka's; murmug2_random is the Java-compatible one.
    producer = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})
    for key in keys:
        producer.produce(topic, key=key, value=b"x", on_delivery=report)
    producer.flush(30)
    kp = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for key in keys:
        meta = kp.send(topic, key=key, value=b"y").get(timeout=30)
        assert meta.partition == murmur2_partition(key, 6)
    kp.close()
    for key in keys:
        assert landed[key] == murmur2_partition(key, 6)


def test_consume_from_offset_and_from_timestamp(broker):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    topic = unique("positions")
    base = int(time.time() * 1000) - 100_000
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(100):
        producer.produce(topic, value=b"%d" % i, timestamp=base + i * 10)
    producer.flush(30)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic})
    consumer.assign([TopicPartition(topic, 0, 42)])
    first = None
    while first is None:
        first = consumer.poll(5.0)
    assert first.offset() == 42 and first.value() == b"42"
    found = consumer.offsets_for_times([TopicPartition(topic, 0, base + 555)], 10.0)[0]
    assert found.offset == 56
    consumer.close()
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    result = kc.offsets_for_times({KTP(topic, 0): base + 300})
    assert result[KTP(topic, 0)].offset == 30
    assert kc.offsets_for_times({KTP(topic, 0): base + 10_000})[KTP(topic, 0)] is None
    assert kc.beginning_offsets([KTP(topic, 0)])[KTP(topic, 0)] == 0
    assert kc.end_offsets([KTP(topic, 0)])[KTP(topic, 0)] == 100
    kc.close()


def test_transactions_fail_at_once_and_leave_the_node_serving(broker):
    """Transactions need a transaction coordinator, which one node does not have: a
    transactional producer (Kafka Streams' exactly-once, confluent's `init_transactions`) is
    told at once, with a fatal error naming the reason, rather than left retrying until its
    timeout; other producers go on."""
    from confluent_kafka import KafkaException, Producer
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KPError
    topic = unique("txn")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": topic})
    started = time.time()
    with pytest.raises(KafkaException) as caught:
        producer.init_transactions(30)
    assert time.time() - started < 10, "init_transactions waited for its timeout"
    error = caught.value.args[0]
    assert error.fatal() or not error.retriable(), error
    assert "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" in error.name() or "not supported" in str(error), error
    kp_started = time.time()
    with pytest.raises(KPError):
        KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=topic + "-kp",
                      max_block_ms=30_000).init_transactions()
    assert time.time() - kp_started < 10, "kafka-python waited for its timeout"
    plain = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    plain.produce(topic, value=b"after")
    assert plain.flush(30) == 0

"""Captures real Kafka clients' request frames as fuzz seeds.

Starts `tidemark serve` behind a recording TCP proxy (the broker advertises the proxy's
port, so every connection goes through it), drives kcat, confluent-kafka, kafka-python and
aiokafka through produce, consume, groups and admin calls, and writes each distinct
(api key, version) request frame, without its size prefix, to tools/fuzz/seeds/.

    .build/interop-venv/bin/python tools/fuzz/capture.py [path/to/tidemark]
"""
import asyncio
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "debug", "tidemark")
SEEDS = os.path.join(ROOT, "tools", "fuzz", "seeds")
PER_VERSION = 3
MAX_SEED_BYTES = 64 << 10

seen = {}
lock = threading.Lock()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record(frame):
    if len(frame) < 4 or len(frame) > MAX_SEED_BYTES:
        return
    api, version = struct.unpack(">hh", frame[:4])
    with lock:
        count = seen.get((api, version), 0)
        if count >= PER_VERSION:
            return
        seen[(api, version)] = count + 1
    with open(os.path.join(SEEDS, "api%02d-v%02d-%d.bin" % (api, version, count)), "wb") as f:
        f.write(frame)


def pump(src, dst, capture):
    buffer = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            if capture:
                buffer += data
                while len(buffer) >= 4:
                    size = struct.unpack(">i", buffer[:4])[0]
                    if len(buffer) < 4 + size:
                        break
                    record(buffer[4:4 + size])
                    buffer = buffer[4 + size:]
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def proxy(listen_port, broker_port):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(64)
    while True:
        client, _ = server.accept()
        upstream = socket.create_connection(("127.0.0.1", broker_port))
        threading.Thread(target=pump, args=(client, upstream, True), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, False), daemon=True).start()


def drive(bootstrap):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic, ConfigResource
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic as KNewTopic

    subprocess.run(["kcat", "-b", bootstrap, "-L"], capture_output=True, timeout=30)
    subprocess.run(["kcat", "-b", bootstrap, "-P", "-t", "seed-kcat", "-K:", "-z", "lz4"],
                   input=b"k1:v1\nk2:v2\n:v3\n", capture_output=True, timeout=30)
    subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", "seed-kcat", "-e", "-o", "beginning"], capture_output=True, timeout=30)
    subprocess.run(["kcat", "-b", bootstrap, "-G", "seed-kcat-group", "seed-kcat", "-e"], capture_output=True, timeout=30)

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic("seed-ck", num_partitions=2, replication_factor=1,
                                                config={"retention.ms": "3600000"})]).values():
        future.result(30)
    for future in admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "seed-ck")]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "compression.type": "lz4",
                         "linger.ms": 5})
    for i in range(50):
        producer.produce("seed-ck", key=b"key-%d" % (i % 7), value=b"value-%d" % i, headers=[("h", b"1"), ("n", None)])
    producer.flush(30)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "seed-ck-group", "auto.offset.reset": "earliest"})
    consumer.subscribe(["seed-ck"])
    deadline = time.time() + 20
    got = 0
    while got < 50 and time.time() < deadline:
        for m in consumer.consume(100, 1.0):
            if m.error() is None:
                got += 1
    consumer.commit(asynchronous=False)
    consumer.offsets_for_times([TopicPartition("seed-ck", 0, int(time.time() * 1000) - 60_000)], 10)
    consumer.close()
    admin.delete_topics(["seed-ck"])["seed-ck"].result(30)

    kadmin = KafkaAdminClient(bootstrap_servers=bootstrap)
    kadmin.create_topics([KNewTopic("seed-kp", 1, 1)])
    kproducer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(20):
        kproducer.send("seed-kp", key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"x")])
    kproducer.flush(30)
    kproducer.close()
    kconsumer = KafkaConsumer("seed-kp", bootstrap_servers=bootstrap, group_id="seed-kp-group",
                              auto_offset_reset="earliest", consumer_timeout_ms=3000)
    list(kconsumer)
    kconsumer.commit()
    kconsumer.close()
    kadmin.list_groups()
    kadmin.list_groups(states_filter=["Empty"], types_filter=["classic"])
    kadmin.describe_groups(["seed-kp-group"])
    kadmin.list_group_offsets("seed-kp-group")
    # The operations APIs: partitions, records, log dirs, producers, configs, offsets, cluster.
    from kafka import TopicPartition as KTopicPartition
    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType, NewPartitions
    kadmin.create_partitions({"seed-kp": NewPartitions(2)})
    kadmin.delete_records({KTopicPartition("seed-kp", 0): 5})
    kadmin.describe_log_dirs()
    kadmin.describe_producers([KTopicPartition("seed-kp", 0)])
    kadmin.alter_configs([KConfigResource(ConfigResourceType.TOPIC, "seed-kp", configs={"retention.ms": "7200000"})],
                         incremental=True)
    kadmin.alter_configs([KConfigResource(ConfigResourceType.GROUP, "seed-kp-group",
                                          configs={"consumer.session.timeout.ms": "50000"})], incremental=True)
    kadmin.describe_configs([KConfigResource(ConfigResourceType.TOPIC, "seed-kp")], include_synonyms=True)
    kadmin.delete_group_offsets("seed-kp-group", [KTopicPartition("seed-kp", 0)])
    kadmin.describe_cluster()
    kadmin.delete_topics(["seed-kp"])
    kadmin.close()

    # The consumer group protocol (KIP-848) and incremental fetch sessions.
    admin.create_topics([NewTopic("seed-848", num_partitions=3, replication_factor=1)])["seed-848"].result(30)
    for i in range(30):
        producer.produce("seed-848", value=b"j%d" % i, partition=i % 3)
    producer.flush(30)
    modern = Consumer({"bootstrap.servers": bootstrap, "group.id": "seed-848-group", "group.protocol": "consumer",
                       "auto.offset.reset": "earliest"})
    modern.subscribe(["seed-848"])
    deadline = time.time() + 20
    got = 0
    while got < 30 and time.time() < deadline:
        for m in modern.consume(100, 0.5):
            if m.error() is None:
                got += 1
    admin.describe_consumer_groups(["seed-848-group"])["seed-848-group"].result(30)
    modern.close()
    sessions = KafkaConsumer("seed-848", bootstrap_servers=bootstrap, group_id="seed-sessions",
                             auto_offset_reset="earliest", fetch_max_wait_ms=50)
    for _ in range(10):
        sessions.poll(timeout_ms=100)
    sessions.close()

    async def aio():
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
        await producer.start()
        for i in range(10):
            await producer.send_and_wait("seed-aio", b"a%d" % i)
        await producer.stop()
        consumer = AIOKafkaConsumer("seed-aio", bootstrap_servers=bootstrap, group_id="seed-aio-group",
                                    auto_offset_reset="earliest")
        await consumer.start()
        await consumer.getmany(timeout_ms=2000)
        await consumer.commit()
        await consumer.stop()
    asyncio.run(aio())


def main():
    os.makedirs(SEEDS, exist_ok=True)
    broker_port, proxy_port = free_port(), free_port()
    data = tempfile.mkdtemp(prefix="tidemark-capture-")
    node = subprocess.Popen([BINARY, "serve", "--data", data + "/data", "--port", str(broker_port),
                             "--advertised-port", str(proxy_port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    node.stdout.readline()
    threading.Thread(target=proxy, args=(proxy_port, broker_port), daemon=True).start()
    try:
        drive("127.0.0.1:%d" % proxy_port)
    finally:
        node.terminate()
        node.wait()
    print("captured %d frames over %d (api, version) pairs into %s" % (sum(seen.values()), len(seen), SEEDS))


if __name__ == "__main__":
    main()

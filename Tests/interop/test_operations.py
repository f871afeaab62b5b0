"""The admin APIs operations tools call, through kafka-python's and confluent-kafka's admin
clients: CreatePartitions, DeleteRecords, DescribeLogDirs, DescribeProducers, AlterConfigs and
IncrementalAlterConfigs (TOPIC and GROUP), DescribeConfigs with sources, synonyms and types,
OffsetDelete, DescribeCluster, ListGroups filters, ListOffsets after a DeleteRecords; and what
the tools list on one node that has none of them: reassignments, transactions, SCRAM users."""
import os
import shutil
import tempfile
import time

from conftest import Broker, free_port, unique


def _consume(consumer, count, timeout=20):
    got = []
    deadline = time.time() + timeout
    while len(got) < count and time.time() < deadline:
        for records in consumer.poll(500).values():
            got += records
    return got


def test_kafka_python_operations(broker):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic, OffsetSpec
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    topic, group = unique("ops"), unique("ops-group")
    admin.create_topics([NewTopic(topic, 2, 1)])
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True)
    for i in range(10):
        producer.send(topic, value=b"v%d" % i, partition=0)
    producer.flush()

    # CreatePartitions: 2 -> 4, and the new partitions take records.
    admin.create_partitions({topic: NewPartitions(4)})
    assert len(admin.describe_topics([topic])[0]["partitions"]) == 4
    producer.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send(topic, value=b"new", partition=3).get(10)
    producer.close()

    # DeleteRecords moves the log start offset; ListOffsets and a consumer see it.
    p0 = TopicPartition(topic, 0)
    deleted = admin.delete_records({p0: 4})
    assert deleted[p0]["low_watermark"] == 4, deleted
    assert admin.list_partition_offsets({p0: OffsetSpec.EARLIEST})[p0].offset == 4
    assert admin.list_partition_offsets({p0: OffsetSpec.LATEST})[p0].offset == 10
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    consumer.assign([p0])
    assert [r.offset for r in _consume(consumer, 6)] == [4, 5, 6, 7, 8, 9]
    consumer.commit()
    consumer.close()

    # DescribeLogDirs: the partitions with their sizes.
    dirs = str(admin.describe_log_dirs())
    assert topic in dirs

    # DescribeProducers: the idempotent producer that wrote partition 0.
    producers = admin.describe_producers([p0])
    states = producers[p0].active_producers if hasattr(producers[p0], "active_producers") else producers[p0]
    assert "last_sequence=9" in str(states) or "'last_sequence': 9" in str(states), producers

    # IncrementalAlterConfigs on a topic; DescribeConfigs reports the source and the type.
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "123456"})
    admin.alter_configs([resource], incremental=True)
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], include_synonyms=True)
    entry = described["topic"][topic]["retention.ms"]
    assert entry["value"] == "123456" and entry["config_source"] == "DYNAMIC_TOPIC_CONFIG", entry
    assert entry["config_type"] == "LONG", entry
    # Kafka's DEFAULT_CONFIG synonym: the first broker name with a default of its own.
    assert any(s["name"] == "log.retention.hours" and s["value"] == "168" for s in entry["synonyms"]), entry
    admin.reset_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": None})])
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    assert described["topic"][topic]["retention.ms"]["value"] == "604800000"

    # GROUP resources (type 32).
    admin.alter_configs([ConfigResource(ConfigResourceType.GROUP, group,
                                        configs={"consumer.session.timeout.ms": "50000"})], incremental=True)
    described = admin.describe_configs([ConfigResource(ConfigResourceType.GROUP, group)])
    assert described["group"][group]["consumer.session.timeout.ms"]["value"] == "50000", described

    # ListGroups with state and type filters.
    listed = str(admin.list_groups(states_filter=["Empty"], types_filter=["classic"]))
    assert group in listed
    assert group not in str(admin.list_groups(states_filter=["Stable"]))

    # OffsetDelete: the group's offset for partition 0 goes, and with it the
    # group, which had nothing else.
    assert admin.list_group_offsets(group)[group][p0].offset == 10
    admin.delete_group_offsets(group, [p0])
    assert p0 not in admin.list_group_offsets(group)[group]
    assert group not in str(admin.list_groups())

    cluster = admin.describe_cluster()
    assert len(cluster["brokers"]) == 1 and cluster["cluster_id"], cluster
    admin.close()


def test_each_node_has_a_cluster_id_of_its_own_kept_across_restarts(broker):
    """Kafka's form (a UUID in 22 characters of URL-safe base64), this data directory's: a
    tool watching two nodes tells them apart (every node said "tidemark")."""
    import re
    from kafka import KafkaAdminClient
    from conftest import serving

    def cluster_id(node):
        admin = KafkaAdminClient(bootstrap_servers=node.bootstrap)
        try:
            return admin.describe_cluster()["cluster_id"]
        finally:
            admin.close()

    first = cluster_id(broker)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", first), first
    broker.restart()
    assert cluster_id(broker) == first
    with serving() as other:
        assert cluster_id(other) != first


def test_what_one_node_has_none_of_is_listed_as_none():
    """kafka-reassign-partitions, kafka-transactions and kafka-configs' user listing, through
    kafka-python's admin client: each answers (they were UNSUPPORTED_VERSION), and
    DescribeLogDirs names the data directory absolutely, as Kafka names log.dirs, when the
    broker was given a relative --data."""
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.admin import NewTopic
    from kafka.errors import InvalidReplicationAssignmentError, NoReassignmentInProgressError
    root = tempfile.mkdtemp(prefix="tidemark-interop-ops-")
    node = Broker("data", free_port(), cwd=root)
    node.start()
    try:
        admin = KafkaAdminClient(bootstrap_servers=node.bootstrap)
        topic = unique("placed")
        admin.create_topics([NewTopic(topic, 2, 1)])
        p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)

        assert admin.list_partition_reassignments() == {}
        moved = admin.alter_partition_reassignments({p0: [0], p1: [3]})
        assert moved[p0] is None and moved[p1] is InvalidReplicationAssignmentError, moved
        assert admin.alter_partition_reassignments({p0: None})[p0] is NoReassignmentInProgressError

        assert admin.list_transactions() == {0: []}
        assert admin.find_hanging_transactions() == []
        assert admin.describe_user_scram_credentials() == {}
        named = admin.describe_user_scram_credentials(["alice"])
        assert "does not exist" in named["alice"]["error"], named

        dirs = admin.describe_log_dirs()[0]["log_dirs"]
        assert [d["log_dir"] for d in dirs] == [os.path.join(os.path.realpath(root), "data")], dirs
        admin.close()
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_confluent_operations(broker):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                       NewPartitions,
                                       NewTopic, OffsetSpec, ResourceType)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic, group = unique("cops"), unique("cops-group")
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result(10)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    for i in range(20):
        producer.produce(topic, value=b"c%d" % i, partition=0)
    assert producer.flush(10) == 0

    for future in admin.create_partitions([NewPartitions(topic, 3)]).values():
        future.result(10)
    assert len(admin.list_topics(timeout=10).topics[topic].partitions) == 3

    p0 = TopicPartition(topic, 0, 15)
    result = list(admin.delete_records([p0]).values())[0].result(10)
    assert result.low_watermark == 15, result
    offsets = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.earliest()})
    assert list(offsets.values())[0].result(10).offset == 15
    offsets = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.latest()})
    assert list(offsets.values())[0].result(10).offset == 20

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 20
    while len(got) < 5 and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            got.append(message.offset())
    # Offset 0 is below the log start: the consumer resets to the earliest, 15.
    assert got == [15, 16, 17, 18, 19], got
    consumer.commit(asynchronous=False)
    consumer.close()

    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET)])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(10)
    described = list(admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values())[0].result(10)
    assert described["retention.ms"].value == "7200000"
    assert described["max.message.bytes"].value == "2000000"
    assert described["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    # A record over the new max.message.bytes is refused, one under it is taken.
    for future in admin.incremental_alter_configs([ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
            ConfigEntry("max.message.bytes", "1000", incremental_operation=AlterConfigOpType.SET)])]).values():
        future.result(10)
    errors = []
    producer.produce(topic, value=b"x" * 5000, partition=0, on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    producer.produce(topic, value=b"small", partition=0, on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert errors[0] is not None and errors[1] is None, errors

    described = list(admin.describe_configs([ConfigResource(ResourceType.BROKER, "0")]).values())[0].result(10)
    assert "num.partitions" in described and "log.retention.ms" in described

    cluster = admin.describe_cluster().result(10)
    assert len(cluster.nodes) == 1 and cluster.cluster_id

    groups = admin.list_consumer_groups().result(10)
    assert group in [g.group_id for g in groups.valid]
    admin_offsets = admin.list_consumer_group_offsets([
        __import__("confluent_kafka").ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])])
    listed = list(admin_offsets.values())[0].result(10)
    assert listed.topic_partitions[0].offset == 20

"""Topic administration through the clients' admin APIs."""
import time

import pytest

from conftest import unique


def test_kafka_python_admin_create_describe_delete(broker):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    topic = unique("admin")
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1, topic_configs={"retention.ms": "3600000"})])
    assert topic in admin.list_topics()
    described = admin.describe_topics([topic])[0]
    assert len(described["partitions"]) == 4
    configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    assert "3600000" in str(configs)
    admin.delete_topics([topic])
    assert topic not in admin.list_topics()
    admin.close()


def test_confluent_admin_create_errors_and_delete(broker):
    from confluent_kafka.admin import AdminClient, NewTopic
    from confluent_kafka import KafkaException
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = unique("cadmin")
    for future in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).values():
        future.result(10)
    assert len(admin.list_topics(timeout=10).topics[topic].partitions) == 3
    # Again: TOPIC_ALREADY_EXISTS; a bad name: INVALID_TOPIC_EXCEPTION; replication 3: refused.
    for bad in [NewTopic(topic, num_partitions=1, replication_factor=1),
                NewTopic("bad name!", num_partitions=1, replication_factor=1),
                NewTopic(unique("rf3"), num_partitions=1, replication_factor=3)]:
        with pytest.raises(KafkaException):
            list(admin.create_topics([bad]).values())[0].result(10)
    for future in admin.delete_topics([topic]).values():
        future.result(10)
    assert topic not in admin.list_topics(timeout=10).topics


def test_validate_only_checks_what_create_would(broker):
    """CreateTopics with validate_only answers as the real create would: a partition count of
    0 or a config the broker refuses is an error there too (it used to answer success)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import InvalidConfigurationError, InvalidPartitionsError
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        with pytest.raises(InvalidPartitionsError):
            admin.create_topics([NewTopic(unique("zero"), num_partitions=0, replication_factor=1)], validate_only=True)
        with pytest.raises(InvalidConfigurationError):
            admin.create_topics([NewTopic(unique("cfg"), num_partitions=1, replication_factor=1,
                                          topic_configs={"cleanup.policy": "compact"})], validate_only=True)
        name = unique("fine")
        admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)], validate_only=True)
        assert name not in admin.list_topics()
    finally:
        admin.close()


def test_admin_clients_delete_consumer_groups(broker):
    """kafka-consumer-groups --delete's request (DeleteGroups) from confluent-kafka and
    kafka-python: a group without members goes with its committed offsets; one with a live
    member is refused (NON_EMPTY_GROUP); an unknown one is not found."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    from kafka import KafkaAdminClient
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = unique("delgroups")
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result(10)
    done, kept, live = unique("done"), unique("kept"), unique("live")
    for group in (done, kept):  # commit, then leave: no members, committed offsets
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
        c.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
        c.close()
    member = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": live, "session.timeout.ms": 10000,
                       "auto.offset.reset": "earliest"})
    member.subscribe([topic])
    deadline = time.time() + 20
    while not member.assignment() and time.time() < deadline:
        member.poll(0.2)
    assert member.assignment()

    futures = admin.delete_consumer_groups([done, live], request_timeout=10)
    futures[done].result(10)
    with pytest.raises(KafkaException) as refused:
        futures[live].result(10)
    assert "NON_EMPTY_GROUP" in str(refused.value)
    member.close()

    kadmin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    results = kadmin.delete_groups([kept, unique("nobody")])
    assert results[kept] == "OK", results
    assert [v for k, v in results.items() if k != kept] == ["GroupIdNotFoundError"], results
    for group in (done, kept):
        assert not kadmin.list_group_offsets(group).get(group), group
    kadmin.close()
    # A consumer of a deleted group starts over from its reset policy.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": done, "enable.auto.commit": False})
    committed = c.committed([TopicPartition(topic, 0)], timeout=10)
    assert committed[0].offset < 0, committed
    c.close()


def test_what_kafka_tools_send_is_answered_as_kafka_answers(broker):
    """Requests as kafka-topics.sh, kafka-configs.sh, Terraform and Spring send them (a review
    against Kafka's ControllerApis and ConfigurationControlManager): manual replica
    assignments give the partition count; settings Kafka accepts are accepted (segment.bytes
    below max.message.bytes, min.insync.replicas, segment.ms); flush.messages and flush.ms are
    two settings; APPEND on the list cleanup.policy; an invalid name in Metadata is
    INVALID_TOPIC_EXCEPTION, not a retriable unknown topic."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                       NewPartitions, NewTopic)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    node = list(admin.list_topics(timeout=10).brokers)[0]

    assigned = unique("assigned")
    for future in admin.create_topics([NewTopic(assigned, num_partitions=3, replica_assignment=[[node]] * 3)]).values():
        future.result(10)
    assert len(admin.list_topics(timeout=10).topics[assigned].partitions) == 3
    with pytest.raises(KafkaException) as refused:
        list(admin.create_topics([NewTopic(unique("elsewhere"), num_partitions=1, replica_assignment=[[node + 1]])]).values())[0].result(10)
    assert "INVALID_REPLICA_ASSIGNMENT" in str(refused.value)
    with pytest.raises(KafkaException) as refused:
        list(admin.create_partitions([NewPartitions(assigned, 5, replica_assignment=[[node]])]).values())[0].result(10)
    assert "INVALID_REPLICA_ASSIGNMENT" in str(refused.value)
    list(admin.create_partitions([NewPartitions(assigned, 5, replica_assignment=[[node], [node]])]).values())[0].result(10)
    assert len(admin.list_topics(timeout=10).topics[assigned].partitions) == 5

    configured = unique("configured")
    for future in admin.create_topics([NewTopic(configured, num_partitions=1, replication_factor=1, config={
            "segment.bytes": "1048576", "min.insync.replicas": "1", "segment.ms": "600000",
            "unclean.leader.election.enable": "false"})]).values():
        future.result(10)
    resource = ConfigResource("topic", configured)
    ops = [ConfigEntry("flush.messages", "1000", incremental_operation=AlterConfigOpType.SET),
           ConfigEntry("flush.ms", "500", incremental_operation=AlterConfigOpType.SET),
           ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.APPEND)]
    for future in admin.incremental_alter_configs([ConfigResource("topic", configured, incremental_configs=ops)]).values():
        future.result(10)
    described = list(admin.describe_configs([resource]).values())[0].result(10)
    values = {name: entry.value for name, entry in described.items()}
    assert values["flush.messages"] == "1000" and values["flush.ms"] == "500", values
    assert values["segment.bytes"] == "1048576" and values["segment.ms"] == "600000", values
    assert values["min.insync.replicas"] == "1" and values["cleanup.policy"] == "delete", values

    metadata = admin.list_topics(topic="bad name!", timeout=10)
    error = metadata.topics["bad name!"].error
    assert error is not None and error.name() == "TOPIC_EXCEPTION", error


def test_authorized_operations_are_every_supported_one(broker):
    """confluent-kafka's describe_topics / describe_cluster / describe_consumer_groups with
    include_authorized_operations: with no authorizer, Kafka answers every operation the
    resource supports; this node has no ACLs and does the same (it answered none)."""
    from confluent_kafka import Consumer, TopicCollection, TopicPartition
    from confluent_kafka.admin import AclOperation, AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic, group = unique("authz"), unique("authz-group")
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result(10)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    consumer.close()
    described = list(admin.describe_topics(TopicCollection([topic]), include_authorized_operations=True).values())[0].result(10)
    assert {AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE, AclOperation.ALTER_CONFIGS} <= set(
        described.authorized_operations or []), described.authorized_operations
    cluster = admin.describe_cluster(include_authorized_operations=True).result(10)
    assert {AclOperation.CREATE, AclOperation.DESCRIBE, AclOperation.IDEMPOTENT_WRITE} <= set(
        cluster.authorized_operations or []), cluster.authorized_operations
    groups = list(admin.describe_consumer_groups([group], include_authorized_operations=True).values())[0].result(10)
    assert {AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE} <= set(
        groups.authorized_operations or []), groups.authorized_operations

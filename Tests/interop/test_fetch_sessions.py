"""Incremental fetch sessions (KIP-227) with kafka-python, which implements them: a consumer
of 200 partitions sends the partition list once, then only the partitions whose position
moved; every record still arrives exactly once."""
import logging
import re
import time

from conftest import unique

PARTITIONS = 200


def test_kafka_python_consumer_of_many_partitions_goes_incremental(broker, caplog):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic
    topic = unique("sessions")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    # Records on a few partitions only, in three waves, so most partitions never change.
    expected = []
    caplog.set_level(logging.DEBUG, logger="kafka.consumer.fetcher")
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=unique("sessions-group"),
                             auto_offset_reset="earliest", fetch_max_wait_ms=100)
    received = []
    for wave in range(3):
        for i in range(30):
            value = b"w%d-%d" % (wave, i)
            producer.send(topic, value=value, partition=(wave * 7 + i % 3) % PARTITIONS)
            expected.append(value)
        producer.flush()
        deadline = time.time() + 30
        while len(received) < len(expected) and time.time() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                received += [r.value for r in records]
    # A few more polls with nothing new: incremental fetches with nothing in them.
    for _ in range(5):
        for records in consumer.poll(timeout_ms=200).values():
            received += [r.value for r in records]
    producer.close()

    assert sorted(received) == sorted(expected), "%d received of %d" % (len(received), len(expected))
    handler = consumer._fetcher._session_handlers[0]
    assert handler.next_metadata.session_id != 0 and handler.next_metadata.epoch > 3, handler.next_metadata
    consumer.close()

    text = caplog.text
    assert "unable to process the fetch request" not in text, text[-2000:]
    assert "invalid" not in text.lower() or "invalid full fetch" not in text
    full = re.findall(r"Built full fetch .* with (\d+) partition", text)
    incremental = re.findall(r"Built incremental fetch .*?Added (\{.*?\}|set\(\)), altered (\{.*?\}|set\(\)), removed", text)
    assert full and int(full[-1]) == PARTITIONS
    assert len(incremental) >= 5
    sent = [sum(0 if part == "set()" else part.count("TopicPartition") for part in pair) for pair in incremental]
    # Only partitions whose position moved are sent again, never the whole list.
    assert max(sent) < PARTITIONS // 4, sent

"""One share-group worker taking jobs one at a time from batches of many tiny records.

usage: tiny_records.py BOOTSTRAP BROKER_PID PARTITIONS RECORDS_PER_PARTITION JOBS

Produces RECORDS_PER_PARTITION one-byte records to each partition of a new topic "tiny" in
batches of up to a million records (librdkafka's batch.num.messages), then a ShareConsumer
(explicit acknowledgement, max.poll.records=1) takes and accepts JOBS of them. Prints the
broker's resident memory (VmRSS, and its peak VmHWM) before and after, and the jobs per second.
"""
import sys
import time

from confluent_kafka import Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, pid, parts, per, jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])


def memory():
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmHWM", "VmRSS")):
                name, value = line.split(":")
                fields[name] = int(value.split()[0]) // 1024
    return f"rss {fields['VmRSS']} MB, peak {fields['VmHWM']} MB"


admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic("tiny", parts, 1)])["tiny"].result()
producer = Producer({"bootstrap.servers": bootstrap, "compression.type": "none", "linger.ms": 2000,
                     "batch.num.messages": 1000000, "batch.size": 1000000})
for partition in range(parts):
    for i in range(per):
        while True:
            try:
                producer.produce("tiny", value=bytes([i % 251]), partition=partition)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush()
print(f"produced {parts * per} records: broker {memory()}")

worker = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": "tiny-workers",
                        "share.acknowledgement.mode": "explicit", "max.poll.records": 1})
worker.subscribe(["tiny"])
done = 0
started = time.time()
while done < jobs and time.time() - started < 300:
    for message in worker.poll(timeout=1.0) or []:
        if message.error():
            continue
        worker.acknowledge(message)
        done += 1
took = time.time() - started
print(f"{done} jobs in {took:.1f} s ({done / took:.0f} jobs/s): broker {memory()}")
worker.close()

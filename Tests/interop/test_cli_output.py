"""The tools CLI as scripts use it (from an outside hunt): output into a pipe whose reader goes
away ends quietly, and a group commits only what was written; output that cannot be written
(a full disk) is an error, not a cut-off file and exit status 0; options a group cannot honour
are refused; offsets of a group with running consumers are not reset, dry run or not."""
import os
import subprocess
import time

import pytest

from conftest import BINARY, unique


def _produce(broker, topic, count, partitions=2):
    lines = "".join("job-%06d\n" % i for i in range(count))
    subprocess.run([BINARY, "topics", "create", topic, "--partitions", str(partitions), "--bootstrap", broker.bootstrap],
                   check=True, capture_output=True)
    subprocess.run([BINARY, "produce", topic, "--bootstrap", broker.bootstrap], input=lines.encode(), check=True,
                   capture_output=True)


def _piped_to_head(command):
    """Runs `command | head -1`: (first line, command's exit status, its stderr)."""
    writer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = writer.stdout.readline()
    writer.stdout.close()  # the reader goes away, as `head -1` does
    err = writer.stderr.read().decode(errors="replace")
    return first, writer.wait(timeout=60), err


def test_a_pipe_whose_reader_goes_away_ends_quietly_and_commits_only_what_was_written(broker):
    from kafka import KafkaAdminClient
    topic, group = unique("piped"), unique("piped-group")
    total = 60_000
    _produce(broker, topic, total)

    first, status, err = _piped_to_head([BINARY, "replay", topic, "--bootstrap", broker.bootstrap])
    assert first and status == 0 and "Fatal error" not in err, (status, err)

    first, status, err = _piped_to_head([BINARY, "consume", topic, "--group", group, "--bootstrap", broker.bootstrap])
    assert first.startswith(b"job-") and status == 0 and "Fatal error" not in err, (status, err)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    committed = sum(o.offset for o in admin.list_group_offsets(group)[group].values())
    admin.close()
    # What fits the pipe's buffer (64 KiB of 11-byte lines) may count as written, no more:
    # every record fetched was committed (about 60,000 here) when the pipe broke.
    assert 0 < committed < 10_000, committed


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_output_that_cannot_be_written_is_an_error(broker, tmp_path):
    """On a full disk (a 64 KiB tmpfs): stdout redirected to it, and replay --to-file."""
    topic = unique("full")
    _produce(broker, topic, 5_000, partitions=1)
    disk = str(tmp_path / "disk")
    os.mkdir(disk)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", disk], check=True)
    try:
        with open(os.path.join(disk, "consumed.jsonl"), "wb") as out:
            consumed = subprocess.run([BINARY, "consume", topic, "--json", "--bootstrap", broker.bootstrap],
                                      stdout=out, stderr=subprocess.PIPE, timeout=60)
        assert consumed.returncode == 1 and b"No space left on device" in consumed.stderr, consumed.stderr
        os.remove(os.path.join(disk, "consumed.jsonl"))
        replayed = subprocess.run([BINARY, "replay", topic, "--to-file", os.path.join(disk, "backup.jsonl"),
                                   "--bootstrap", broker.bootstrap], capture_output=True, timeout=60)
        assert replayed.returncode == 1 and b"No space left on device" in replayed.stderr, replayed.stderr
        assert b"Fatal error" not in replayed.stderr
    finally:
        subprocess.run(["umount", "-l", disk])


def test_replay_to_file_writes_where_the_path_leads(broker, tmp_path):
    """`replay --to-file` opens the path as the shell's `>` does (an outside hunt: it put a new
    regular file in its place, so a symlink's target was never written, a FIFO's reader got
    nothing, a device node was replaced, and an existing file lost its mode)."""
    import threading
    topic = unique("tofile")
    _produce(broker, topic, 3, partitions=1)

    def replay(path):
        return subprocess.run([BINARY, "replay", topic, "--to-file", path, "--bootstrap", broker.bootstrap],
                              capture_output=True, timeout=60)

    target = tmp_path / "target.jsonl"
    target.write_text("old\n")
    os.chmod(target, 0o600)
    link = tmp_path / "link.jsonl"
    os.symlink(target, link)
    assert replay(str(link)).returncode == 0
    assert os.path.islink(link) and len(target.read_text().splitlines()) == 3 and "old" not in target.read_text()
    assert os.stat(target).st_mode & 0o777 == 0o600

    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    assert replay(fifo).returncode == 0
    reader.join(timeout=30)
    assert got and got[0].count(b"\n") == 3 and os.path.exists(fifo) and not os.path.isfile(fifo)


def test_group_options_it_cannot_honour_are_refused_and_running_groups_are_not_reset(broker):
    from kafka import KafkaConsumer
    from kafka import OffsetAndMetadata, TopicPartition
    topic, group = unique("grouped"), unique("running")
    _produce(broker, topic, 20, partitions=2)
    for extra in (["--partition", "0"], ["--offset", "5"], ["--from-time", "@0"]):
        refused = subprocess.run([BINARY, "consume", topic, "--group", group, "--bootstrap", broker.bootstrap] + extra,
                                 capture_output=True, timeout=60)
        assert refused.returncode != 0 and b"--group" in refused.stderr, (extra, refused.stderr)

    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group, auto_offset_reset="earliest")
    deadline = time.time() + 30
    while not consumer.assignment() and time.time() < deadline:
        consumer.poll(500)
    # Only partition 0 committed: describe lists partition 1 too, with no offset and no lag
    # (it was left out, and its lag with it).
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1)})
    try:
        described = subprocess.run([BINARY, "groups", "describe", group, "--bootstrap", broker.bootstrap],
                                   capture_output=True, timeout=60)
        lines = described.stdout.decode().splitlines()
        assert any(line.split("\t")[:3] == [topic, "0", "1"] for line in lines), lines
        assert any(line.split("\t")[:3] == [topic, "1", "-"] and line.endswith("\t-") for line in lines), lines
        assert "1 assigned partition without a commit" in lines[-1], lines
        for execute in ([], ["--execute"]):
            reset = subprocess.run([BINARY, "groups", "reset-offsets", group, "--topic", topic, "--to-earliest",
                                    "--bootstrap", broker.bootstrap] + execute, capture_output=True, timeout=60)
            assert reset.returncode == 1 and b"inactive" in reset.stderr, (execute, reset.stderr)
    finally:
        consumer.close()


def test_topics_delete_on_a_node_that_refuses_it_says_why():
    """`delete.topic.enable=false`: the CLI's DeleteTopics names TOPIC_DELETION_DISABLED, as
    Kafka's clients see it (an outside hunt: it said INVALID_REQUEST, from a version that
    predates the error)."""
    from conftest import serving
    with serving(configs=["delete.topic.enable=false"]) as node:
        topic = unique("kept")
        subprocess.run([BINARY, "topics", "create", topic, "--bootstrap", node.bootstrap], check=True, capture_output=True)
        refused = subprocess.run([BINARY, "topics", "delete", topic, "--bootstrap", node.bootstrap], capture_output=True, timeout=60)
        assert refused.returncode == 1 and b"TOPIC_DELETION_DISABLED" in refused.stderr, refused.stderr


def test_produce_and_replay_into_a_topic_not_made_yet(broker):
    """`produce` asks for the topic as a producer does, so a broker that auto-creates topics
    makes it (as kcat and Kafka's console producer find it); `replay` into a missing topic
    makes it with the source's partition count, each source partition's records in one
    (an outside hunt: both failed with UNKNOWN_TOPIC_OR_PARTITION)."""
    made = unique("made")
    produced = subprocess.run([BINARY, "produce", made, "--bootstrap", broker.bootstrap], input=b"a\nb\n",
                              capture_output=True, timeout=60)
    assert produced.returncode == 0, produced.stderr
    source, copy = unique("source"), unique("copy")
    _produce(broker, source, 30, partitions=3)
    replayed = subprocess.run([BINARY, "replay", source, "--to-topic", copy, "--to-bootstrap", broker.bootstrap,
                               "--bootstrap", broker.bootstrap], capture_output=True, timeout=60)
    assert replayed.returncode == 0 and b"created topic" in replayed.stderr, replayed.stderr
    from confluent_kafka.admin import AdminClient
    topics = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10).topics
    assert made in topics and len(topics[copy].partitions) == 3, topics.get(copy)
    total = 0
    for partition in range(3):
        original = subprocess.run([BINARY, "consume", source, "--partition", str(partition), "--bootstrap", broker.bootstrap],
                                  capture_output=True, timeout=60).stdout.split()
        copied = subprocess.run([BINARY, "consume", copy, "--partition", str(partition), "--bootstrap", broker.bootstrap],
                                capture_output=True, timeout=60).stdout.split()
        assert copied == original, (partition, original, copied)
        total += len(copied)
    assert total == 30

"""The tools CLI against a broker that answers wrongly or not at all: a clear error and exit
status 1, never a trap (status 132) and never a loop without end; and against a Kafka source's
aborted transactions: read committed.

The fake broker answers Metadata v4, ListOffsets v2 and Fetch v11 (the versions
`Sources/TidemarkClient` asks for; the layouts are Kafka's) for one topic "t" of one
partition whose end is 10, and closes on anything else."""
import socket
import struct
import subprocess
import threading

import pytest

from conftest import BINARY


def _string(text):
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def _array(items):
    return struct.pack(">i", len(items)) + b"".join(items)


class FakeBroker:
    """`records`: the records field of every Fetch answer; `end`: the partition's end (high
    watermark and latest offset); `aborted`: the answer's aborted transactions, (producer id,
    first offset); `silent`: read requests and answer none."""

    def __init__(self, records, end=10, aborted=None, silent=False):
        self.records = records
        self.end = end
        self.aborted = aborted
        self.silent = silent
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _metadata(self):
        # throttle, brokers (id, host, port, rack), cluster id, controller, topics
        broker = struct.pack(">i", 0) + _string("127.0.0.1") + struct.pack(">ih", self.port, -1)
        partition = struct.pack(">hii", 0, 0, 0) + _array([struct.pack(">i", 0)]) + _array([struct.pack(">i", 0)])
        topic = struct.pack(">h", 0) + _string("t") + b"\x00" + _array([partition])
        return struct.pack(">i", 0) + _array([broker]) + struct.pack(">hi", -1, 0) + _array([topic])

    def _list_offsets(self, body):
        # replica id, isolation level, topics: name, partitions: index, timestamp
        at = 4 + 1 + 4
        at += 2 + struct.unpack(">h", body[at:at + 2])[0]
        at += 4 + 4
        timestamp = struct.unpack(">q", body[at:at + 8])[0]
        offset = 0 if timestamp == -2 else self.end
        return struct.pack(">i", 0) + _array([_string("t") + _array([struct.pack(">ihqq", 0, 0, -1, offset)])])

    def _fetch(self):
        # partition, error, high watermark, last stable offset, log start, aborted, preferred replica
        aborted = (_array([struct.pack(">qq", *a) for a in self.aborted]) if self.aborted is not None
                   else struct.pack(">i", -1))
        partition = struct.pack(">ihqqq", 0, 0, self.end, self.end, 0) + aborted + struct.pack(">i", -1)
        partition += struct.pack(">i", len(self.records)) + self.records
        return struct.pack(">ihi", 0, 0, 0) + _array([_string("t") + _array([partition])])

    def _serve(self, conn):
        with conn:
            while True:
                head = conn.recv(4, socket.MSG_WAITALL)
                if len(head) < 4:
                    return
                frame = conn.recv(struct.unpack(">i", head)[0], socket.MSG_WAITALL)
                api, _, correlation, client_length = struct.unpack(">hhih", frame[:10])
                body = frame[10 + max(client_length, 0):]
                answers = {3: lambda: self._metadata(), 2: lambda: self._list_offsets(body), 1: lambda: self._fetch()}
                if self.silent:
                    continue
                if api not in answers:
                    return
                answer = struct.pack(">i", correlation) + answers[api]()
                conn.sendall(struct.pack(">i", len(answer)) + answer)

    def close(self):
        self.listener.close()


@pytest.mark.parametrize("records, message", [
    # A batch whose length is negative (it trapped: a range with its bounds reversed).
    (struct.pack(">qi", 0, -100), "has length -100"),
    # No records below the end the broker reported (consume fetched again at full speed for
    # ever; replay said "replayed 0 records" and exited 0).
    (b"", "answered no records at offset 0"),
])
@pytest.mark.parametrize("command", [["consume", "t"], ["replay", "t"]])
def test_a_wrong_fetch_answer_is_an_error(records, message, command):
    fake = FakeBroker(records)
    try:
        done = subprocess.run([BINARY, *command, "--bootstrap", f"127.0.0.1:{fake.port}"],
                              capture_output=True, text=True, timeout=60)
    finally:
        fake.close()
    assert done.returncode == 1, done.stderr
    assert message in done.stderr
    assert done.stdout == ""


def _crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _varint(value):
    value = (value << 1) ^ (value >> 63)  # zigzag
    out = b""
    while True:
        if value < 0x80:
            return out + bytes([value])
        out += bytes([(value & 0x7F) | 0x80])
        value >>= 7


def _batch(offset, value, key=None, producer=-1, transactional=False, control=False):
    """A RecordBatch v2 of one record (Kafka's layout), its CRC-32C over attributes onward."""
    def field(data):
        return _varint(-1) if data is None else _varint(len(data)) + data
    body = b"\x00" + _varint(0) + _varint(0) + field(key) + field(value) + _varint(0)
    record = _varint(len(body)) + body
    attributes = (0x10 if transactional else 0) | (0x20 if control else 0)
    after_crc = struct.pack(">hiqqqhii", attributes, 0, 1_700_000_000_000, 1_700_000_000_000,
                            producer, 0 if producer >= 0 else -1, 0 if producer >= 0 and not control else -1, 1) + record
    head = struct.pack(">ib", 0, 2) + struct.pack(">I", _crc32c(after_crc)) + after_crc
    return struct.pack(">qi", offset, len(head)) + head


def test_an_aborted_transaction_of_a_kafka_source_is_left_out():
    """Read committed, as Kafka's consumers read: a transaction's records aborted by its
    producer (listed in the fetch answer's aborted transactions, ended by its abort marker) are
    not printed or copied; they were (the tools fetched read uncommitted)."""
    records = (_batch(0, b"aborted", producer=7, transactional=True)
               + _batch(1, struct.pack(">hi", 0, 0), key=struct.pack(">hh", 0, 0), producer=7,
                        transactional=True, control=True)
               + _batch(2, b"kept"))
    fake = FakeBroker(records, end=3, aborted=[(7, 0)])
    try:
        consumed = subprocess.run([BINARY, "consume", "t", "--bootstrap", f"127.0.0.1:{fake.port}"],
                                  capture_output=True, text=True, timeout=60)
        replayed = subprocess.run([BINARY, "replay", "t", "--bootstrap", f"127.0.0.1:{fake.port}"],
                                  capture_output=True, text=True, timeout=60)
    finally:
        fake.close()
    assert consumed.returncode == 0 and consumed.stdout == "kept\n", consumed.stderr
    assert replayed.returncode == 0 and [line.count('"kept"') for line in replayed.stdout.splitlines()] == [1], \
        replayed.stdout + replayed.stderr


def test_a_broker_that_does_not_answer_is_named_as_such():
    """A receive timeout (30 s) is said as one: it was reported as a closed connection."""
    fake = FakeBroker(b"", silent=True)
    try:
        done = subprocess.run([BINARY, "topics", "list", "--bootstrap", f"127.0.0.1:{fake.port}"],
                              capture_output=True, text=True, timeout=90)
    finally:
        fake.close()
    assert done.returncode == 1
    assert f"no answer from 127.0.0.1:{fake.port} within 30 s" in done.stderr

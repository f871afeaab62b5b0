"""The tools CLI against a broker that answers wrongly: a clear error and exit status 1, never a
trap (status 132) and never a loop without end.

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
    """`records`: the records field of every Fetch answer (high watermark 10)."""

    def __init__(self, records):
        self.records = records
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
        offset = 0 if timestamp == -2 else 10
        return struct.pack(">i", 0) + _array([_string("t") + _array([struct.pack(">ihqq", 0, 0, -1, offset)])])

    def _fetch(self):
        # partition, error, high watermark, last stable offset, log start, aborted, preferred replica
        partition = struct.pack(">ihqqq", 0, 0, 10, 10, 0) + struct.pack(">ii", -1, -1)
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

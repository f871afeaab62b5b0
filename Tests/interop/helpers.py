"""Shared helpers: the messages every client sends, and Kafka's partitioner."""
import time


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

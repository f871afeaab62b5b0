"""Tracing against a real `tidemark serve`: a producer's W3C `traceparent` header reaches the
consumer byte for byte, and the broker's own `produce` span, exported over OTLP/HTTP
(`--otlp-endpoint`) to a local receiver, is a child of the producer's span in the same trace."""
import base64
import http.server
import json
import os
import secrets
import shutil
import tempfile
import threading
import time

from conftest import Broker, free_port, unique


class Receiver(http.server.ThreadingHTTPServer):
    """A stdlib OTLP/HTTP (JSON) trace receiver: keeps every span it is sent."""

    def __init__(self, port):
        self.spans = []
        super().__init__(("127.0.0.1", port), ReceiverHandler)


class ReceiverHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/v1/traces" and self.headers.get("Content-Type", "").startswith("application/json"):
            payload = json.loads(body)
            for resource in payload.get("resourceSpans", []):
                for scope in resource.get("scopeSpans", []):
                    self.server.spans.extend(scope.get("spans", []))
        answer = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def hex_id(value):
    """OTLP/JSON ids: hex per the spec, base64 as protobuf-JSON writes bytes; both accepted."""
    if all(c in "0123456789abcdef" for c in value) and len(value) in (16, 32):
        return value
    return base64.b64decode(value).hex()


def test_traceparent_survives_and_the_broker_span_joins_the_trace():
    from confluent_kafka import Consumer, Producer
    receiver = Receiver(free_port())
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    root = tempfile.mkdtemp(prefix="tidemark-trace-")
    node = Broker(os.path.join(root, "data"), free_port(),
                  extra=["--otlp-endpoint", "http://127.0.0.1:%d" % receiver.server_address[1]],
                  env={"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"})
    node.start()
    try:
        topic = unique("traced")
        trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
        traceparent = "00-%s-%s-01" % (trace_id, span_id)
        producer = Producer({"bootstrap.servers": node.bootstrap})
        producer.produce(topic, value=b"job", headers=[("traceparent", traceparent.encode()), ("tracestate", b"vendor=1")])
        assert producer.flush(30) == 0

        consumer = Consumer({"bootstrap.servers": node.bootstrap, "group.id": unique("g"), "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        message = None
        deadline = time.time() + 30
        while message is None and time.time() < deadline:
            got = consumer.poll(1)
            if got is not None and got.error() is None:
                message = got
        consumer.close()
        assert message is not None
        # Byte for byte: the broker never rewrites record headers.
        assert message.headers() == [("traceparent", traceparent.encode()), ("tracestate", b"vendor=1")]
    finally:
        node.stop()  # flushes the exporter
        shutil.rmtree(root, ignore_errors=True)

    deadline = time.time() + 30
    produce = []
    while not produce and time.time() < deadline:
        produce = [s for s in receiver.spans if s.get("name") == "produce " + topic]
        time.sleep(0.2)
    receiver.shutdown()
    assert produce, "no produce span exported; got %r" % [s.get("name") for s in receiver.spans]
    span = produce[0]
    assert hex_id(span["traceId"]) == trace_id
    assert hex_id(span["parentSpanId"]) == span_id
    attributes = {a["key"]: a["value"] for a in span.get("attributes", [])}
    assert attributes["messaging.destination.name"] == {"stringValue": topic}
    assert attributes["messaging.system"] == {"stringValue": "kafka"}


def test_a_collector_that_never_answers_does_not_hold_the_stop():
    """A collector that takes connections and reads nothing held a stop for an export timeout
    per queued batch (16 s); the flush at a stop is now bounded (about a second), and
    the spans it could not send are dropped with a warning."""
    from confluent_kafka import Producer
    import socket
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(64)
    held = []

    def take():
        while True:
            try:
                held.append(blackhole.accept()[0])
            except OSError:
                return
    threading.Thread(target=take, daemon=True).start()
    root = tempfile.mkdtemp(prefix="tidemark-trace-")
    node = Broker(os.path.join(root, "data"), free_port(),
                  extra=["--otlp-endpoint", "http://127.0.0.1:%d" % blackhole.getsockname()[1]])
    node.start()
    try:
        producer = Producer({"bootstrap.servers": node.bootstrap})
        for _ in range(3):
            producer.produce(unique("traced"), value=b"job")
            assert producer.flush(30) == 0
        time.sleep(2.5)  # a batch export under way, others queued behind it
        started = time.monotonic()
        node.stop()
        took = time.monotonic() - started
        assert took < 3, "the stop took %.1f s with a collector that never answers" % took
    finally:
        node.kill()
        blackhole.close()
        for connection in held:
            connection.close()
        shutil.rmtree(root, ignore_errors=True)

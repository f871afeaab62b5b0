"""Fixtures for the interop tests: a real `tidemark serve` on a free loopback port."""
import contextlib
import faulthandler
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("TIDEMARK_BIN", os.path.join(ROOT, ".build", "debug", "tidemark"))

# Brokers started here get SIGINT at its default action, as from a terminal, even when the
# tests themselves were started with `&` (SIGINT ignored, which a broker keeps): a caught
# signal is reset to its default in an exec'd child, an ignored one stays ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
# Likewise SIGHUP when the tests run under nohup: they keep ignoring it (a handler that does
# nothing), their brokers get the default.
if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
    signal.signal(signal.SIGHUP, lambda signum, frame: None)


# A hung test fails the run within minutes instead of holding CI until its deadline: past
# TEST_LIMIT seconds (setup and teardown included) the process prints every thread's stack,
# which names the test, and exits 1.
TEST_LIMIT = int(os.environ.get("TIDEMARK_TEST_LIMIT", "600"))


@pytest.fixture(autouse=True)
def _test_deadline():
    faulthandler.dump_traceback_later(TEST_LIMIT, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# After the summary is printed the process leaves with os._exit. A client left over by a failed
# test (its traceback keeps it alive) would otherwise be destroyed at interpreter exit, and
# librdkafka's destroy of a group consumer whose broker is gone retries the connection forever.
_session = {}


def pytest_sessionfinish(session, exitstatus):
    _session["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if "status" in _session:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_session["status"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A tidemark node: start, stop (SIGTERM, clean) and restart on the same data."""

    def __init__(self, data_dir, port, extra=(), user=None, env=None, nofile=None, cwd=None):
        self.env = dict(os.environ, **env) if env else None
        # The directory the broker starts in (a relative data_dir is read from it).
        self.cwd = cwd
        # A descriptor limit (ulimit -n) for the broker process, soft and hard.
        self.nofile = nofile
        self.data_dir = data_dir
        self.port = port
        self.extra = list(extra)
        # Run as this (unprivileged) user when the tests run as root, as CI does.
        self.user = user if user and os.geteuid() == 0 else None
        self.proc = None
        self.log_path = os.path.join(cwd or "", os.path.dirname(data_dir), "serve-%d.log" % port)
        # Each node gets its own HTTP port (/metrics, /healthz, /readyz): tests run nodes side by side.
        self.http_port = free_port()

    @property
    def http(self):
        return "http://127.0.0.1:%d" % self.http_port

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        log = open(self.log_path, "ab")
        prefix = ["setpriv", "--reuid=" + self.user, "--regid=" + self.user_group(), "--clear-groups"] if self.user else []
        self.proc = subprocess.Popen(
            prefix + [BINARY, "serve", "--data", self.data_dir, "--port", str(self.port), "--default-partitions", "1",
                      "--http-port", str(self.http_port)] + self.extra,
            stdout=subprocess.PIPE, stderr=log, env=self.env, cwd=self.cwd,
            preexec_fn=self.limit_descriptors if self.nofile else None)
        log.close()
        line = self.proc.stdout.readline().decode()
        if "ready" not in line:
            self.proc.kill()
            self.proc.wait(timeout=30)
            raise RuntimeError("tidemark did not start: %r; its log ends:\n%s" % (line, self.log_tail()))

    def log_tail(self, lines=40):
        with open(self.log_path, "rb") as log:
            return b"\n".join(log.read().splitlines()[-lines:]).decode(errors="replace")

    def limit_descriptors(self):
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def kill(self):
        """kill -9: no clean shutdown."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    def descriptors(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def user_group(self):
        import grp
        import pwd
        return grp.getgrgid(pwd.getpwnam(self.user).pw_gid).gr_name

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(timeout=30)
            assert code == 0, "tidemark exited with %d; its log ends:\n%s" % (code, self.log_tail())
        self.proc = None

    def restart(self):
        self.stop()
        self.start()


@contextlib.contextmanager
def serving(prefix="tidemark-interop-", configs=()):
    """A started `tidemark serve` in a directory of its own, with `--config` for each of
    `configs` ("key=value"); stopped and removed at the end."""
    root = tempfile.mkdtemp(prefix=prefix)
    extra = [arg for config in configs for arg in ("--config", config)]
    node = Broker(os.path.join(root, "data"), free_port(), extra=extra)
    node.start()
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def broker():
    with serving() as node:
        yield node


def unique(name):
    return "%s-%d" % (name, int(time.time() * 1000) % 10_000_000)

#!/usr/bin/env bash
# Thousands of partitions on one node (issue #9, item 4): descriptors, RSS, clean stop, clean and
# kill -9 restart, with every partition written twice and read back (see partitions.py).
#
#   Benchmarks/partitions/run.sh                          (from the project root; ~1-2 min)
#   PARTITIONS=10000 TOPICS=10 FD_LIMIT=2000 TIDEMARK_BIN=.build/release/tidemark ...
#
# Targets: 10,000 partitions under `ulimit -n 2000`, restart (clean or after kill -9) under 2 s
# with RSS under 200 MB, clean stop under 1 s. The script never builds: TIDEMARK_BIN, else
# .build/release/tidemark.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export TIDEMARK_BIN="${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}"
[ -x "$TIDEMARK_BIN" ] || { echo "no tidemark binary at $TIDEMARK_BIN (swift build -c release first)" >&2; exit 1; }
PY="${PY:-$ROOT/.build/interop-venv/bin/python}"
if ! "$PY" -c 'import confluent_kafka' 2>/dev/null; then
  (cd "$ROOT" && source tools/lib/deps.sh && ensure_interop_dependencies >&2)
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tidemark-partitions.XXXXXX")"
trap 'pkill -9 -f "serve --data $WORK/data" 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"' EXIT
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export DATA_DIR="$WORK/data" PORT="$(free_port)"
echo "binary $TIDEMARK_BIN"
echo "partitions ${PARTITIONS:-10000} topics ${TOPICS:-10} ulimit_n ${FD_LIMIT:-2000}"
"$PY" "$HERE/partitions.py" || { echo "--- broker.log (tail)"; tail -20 "$WORK/broker.log"; exit 1; }

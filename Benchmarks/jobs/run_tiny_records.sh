#!/usr/bin/env bash
# Share-group workers on batches of many tiny records (see tiny_records.py): the broker's
# memory and jobs/s, for TIDEMARK_BIN and, when set, BASELINE_BIN one after the other.
#
#   Benchmarks/jobs/run_tiny_records.sh        (from the project root; ~30 s per binary)
#   PARTS=40 PER=100000 JOBS=2000 TIDEMARK_BIN=a BASELINE_BIN=b Benchmarks/jobs/run_tiny_records.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PARTS=${PARTS:-40}
PER=${PER:-100000}
JOBS=${JOBS:-2000}
TIDEMARK_BIN=${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}
TM_PY="${TM_PY:-$ROOT/.build/interop-venv/bin/python}"
if ! "$TM_PY" -c 'from confluent_kafka import ShareConsumer' 2>/dev/null; then
  (cd "$ROOT" && source tools/lib/deps.sh && ensure_interop_dependencies >&2)
fi
run() {
  local bin=$1
  [ -x "$bin" ] || { echo "no tidemark binary at $bin (build it first)" >&2; exit 1; }
  local work port pid
  work=$(mktemp -d "${TMPDIR:-/tmp}/tiny-records.XXXXXX")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" serve --data "$work/data" --host 127.0.0.1 --port "$port" > "$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  echo "## $bin"
  "$TM_PY" "$HERE/tiny_records.py" "127.0.0.1:$port" "$pid" "$PARTS" "$PER" "$JOBS" 2> >(grep -v SHARECONSUMER >&2) || true
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
echo "# tiny_records PARTS=$PARTS PER=$PER JOBS=$JOBS $(date -u +%FT%TZ)"
run "$TIDEMARK_BIN"
if [ -n "${BASELINE_BIN:-}" ]; then run "$BASELINE_BIN"; fi

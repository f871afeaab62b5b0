#!/usr/bin/env bash
# A cold reader beside a hot one (issue #9: disk reads off the event loop). One event loop; a
# 1-partition topic holding ~800 MB that is then dropped from the page cache (root: it writes
# /proc/sys/vm/drop_caches), read from the start by kcat, while a confluent-kafka consumer
# receives 5,000 messages/s from another topic (the jobs peers' e2e_kafka.py). Prints the hot
# consumer's end-to-end latency. With BASELINE_BIN it alternates two binaries ROUNDS times.
#
#   sudo Benchmarks/cold/run.sh                               (from the project root; ~30 s a run)
#   BASELINE_BIN=/tmp/old-tidemark ROUNDS=2 Benchmarks/cold/run.sh
# The script never builds: TIDEMARK_BIN, else .build/release/tidemark.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TIDEMARK_BIN="${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}"
PY="${PY:-$ROOT/.build/interop-venv/bin/python}"
E2E="${E2E:-$ROOT/../shared/peers/jobs/e2e_kafka.py}"
ROUNDS=${ROUNDS:-1}; RATE=${RATE:-5000}; N=${N:-30000}
[ "$(id -u)" = 0 ] || { echo "needs root (drop_caches)" >&2; exit 1; }
command -v kcat >/dev/null || { echo "needs kcat" >&2; exit 1; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tidemark-cold.XXXXXX")"
trap 'pkill -f "serve --data $WORK/" 2>/dev/null || true; rm -rf "$WORK"' EXIT

run() { # run LABEL BINARY
  local label=$1 bin=$2 port pid data
  port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  data="$WORK/$label-$port"
  "$bin" serve --data "$data" --port "$port" --http-port 0 --event-loops 1 --auto-create-topics false >"$data.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  "$bin" topics create hot --partitions 1 --bootstrap "127.0.0.1:$port" >/dev/null
  "$bin" topics create cold --partitions 1 --bootstrap "127.0.0.1:$port" >/dev/null
  head -c 600000000 /dev/urandom | base64 -w 1000 |
    kcat -b "127.0.0.1:$port" -P -t cold -p 0 -X linger.ms=20 -X batch.size=1000000 2>/dev/null
  sync
  echo 1 >/proc/sys/vm/drop_caches
  rm -f "$WORK/ready"
  "$PY" "$E2E" consumer "127.0.0.1:$port" hot "$N" "$WORK/ready" 500 40 >"$WORK/hot.out" 2>/dev/null &
  local consumer=$!
  for _ in $(seq 100); do [ -f "$WORK/ready" ] && break; sleep 0.1; done
  (sleep 1; timeout 20 kcat -b "127.0.0.1:$port" -C -t cold -p 0 -o beginning -e -q -f '' 2>/dev/null || true) &
  local cold=$!
  "$PY" "$E2E" producer "127.0.0.1:$port" hot "$N" "$RATE" 200 0 >/dev/null 2>&1
  wait "$consumer" || true
  wait "$cold" || true
  echo "$label $(sed 's/E2E proto kafka-confluent //; s/fetch.wait.*//' "$WORK/hot.out")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}

echo "# hot consumer at $RATE msg/s beside a cold reader, one event loop, $(nproc) cores $(date -u +%FT%TZ)"
for _ in $(seq "$ROUNDS"); do
  run tidemark "$TIDEMARK_BIN"
  [ -n "${BASELINE_BIN:-}" ] && run baseline "$BASELINE_BIN"
done

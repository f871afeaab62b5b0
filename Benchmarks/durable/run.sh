#!/usr/bin/env bash
# Durable produce (issue #9, item 2) beside the disk's floor, in one run. The floor
# (fsync_floor.c): write 3,000 B and fdatasync, 3,000 times, into a growing file and into one
# whose blocks were zero-filled first (what Tidemark keeps ahead of the appends of a log that
# syncs every append). Then WORKERS Go clients (the jobs peers' qbench: one 200 B message per
# request, acks=all, each waiting for its answer) produce to a flush.messages=1 topic: msgs/s,
# fdatasyncs per second and messages per fsync, server CPU per message. With BASELINE_BIN it
# alternates two binaries ROUNDS times, for an A/B in one run.
#
#   Benchmarks/durable/run.sh                                 (from the project root; ~1 min)
#   BASELINE_BIN=/tmp/old-tidemark WORKERS="16 32" ROUNDS=3 Benchmarks/durable/run.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
source "$PEERS_DIR/jobs/common.sh"   # QBENCH, build_qbench
TIDEMARK_BIN="${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}"
WORKERS=${WORKERS:-"16 32"}; COUNT=${COUNT:-80000}; ROUNDS=${ROUNDS:-1}
[ -x "$QBENCH" ] || build_qbench
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tidemark-durable.XXXXXX")"
trap 'pkill -f "serve --data $WORK/" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cc -O2 -o "$WORK/fsync_floor" "$HERE/fsync_floor.c"
echo "# durable $(date -u +%FT%TZ) $(nproc) cores, $(df -T "$WORK" | awk 'NR==2 {print $2}') on $(df "$WORK" | awk 'NR==2 {print $1}')"
"$WORK/fsync_floor" "$WORK"

run() { # run BINARY WORKERS
  local bin=$1 workers=$2 port data pid perf out syncs
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  data="$WORK/tm-$port"
  "$bin" serve --data "$data" --port "$port" --http-port 0 >"$data.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  "$bin" topics create jobs --partitions 1 --config flush.messages=1 --bootstrap "127.0.0.1:$port" >/dev/null
  "$QBENCH" -proto kafka -addr "127.0.0.1:$port" -topic jobs -workers "$workers" -count 3000 -size 200 >/dev/null
  perf stat -e syscalls:sys_enter_fdatasync -p "$pid" -o "$WORK/perf.txt" >/dev/null 2>&1 &
  perf=$!
  sleep 0.3
  out=$("$QBENCH" -proto kafka -addr "127.0.0.1:$port" -topic jobs -workers "$workers" -count "$COUNT" -size 200 -serverpid "$pid")
  kill -INT "$perf"; wait "$perf" 2>/dev/null || true
  syncs=$(awk '/fdatasync/ {gsub(",", "", $1); print $1}' "$WORK/perf.txt")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$out" | awk -v bin="$bin" -v w="$workers" -v s="${syncs:-0}" '{
    for (i = 1; i <= NF; i++) v[$i] = $(i + 1)
    printf "tidemark %s workers %d msgs_per_s %s p50_us %s p99_us %s server_us_per_msg %s fdatasyncs_per_s %.0f msgs_per_fsync %.1f\n",
      bin, w, v["msgs_per_s"], v["p50_us"], v["p99_us"], v["server_us_per_msg"], s / v["elapsed_s"], (s > 0 ? v["msgs"] / s : 0) }'
}

bins=("$TIDEMARK_BIN"); [ -n "${BASELINE_BIN:-}" ] && bins+=("$BASELINE_BIN")
for _ in $(seq "$ROUNDS"); do
  for w in $WORKERS; do
    for bin in "${bins[@]}"; do run "$bin" "$w"; done
  done
done

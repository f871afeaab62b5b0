#!/usr/bin/env bash
# Large payloads (issue #9, item 5): 1 MiB messages produced by WORKERS Go clients (the jobs
# peers' qbench: one message per request, each waiting for its ack, acks=all) into a 4-partition
# topic, beside the machine's floor for the same bytes: `dd` of 1 MiB buffered writes to a file
# on the same disk (what any broker must at least do with them). Reports MB/s and the server's
# CPU milliseconds per MiB, then medians over the rounds and the ratio to the floor. With two
# binaries (TIDEMARK_BIN and BASELINE_BIN) it alternates them ROUNDS times, for an A/B in one
# run, and prints their ratios.
#
#   Benchmarks/large/run.sh                                   (from the project root; ~1 min)
#   BASELINE_BIN=/tmp/old-tidemark ROUNDS=3 WORKERS=4 TIME_S=12 Benchmarks/large/run.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
source "$PEERS_DIR/jobs/common.sh"   # QBENCH, build_qbench, free ports
TIDEMARK_BIN="${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}"
WORKERS=${WORKERS:-4}; TIME_S=${TIME_S:-12}; ROUNDS=${ROUNDS:-1}; SIZE=$((1 << 20))
[ -x "$QBENCH" ] || build_qbench
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tidemark-large.XXXXXX")"
trap 'pkill -f "serve --data $WORK/" 2>/dev/null || true; rm -rf "$WORK"' EXIT

floor() {
  # dd's last line ends "..., 344 MB/s" (or GB/s): the floor row in MB/s.
  dd if=/dev/zero of="$WORK/dd.dat" bs=1M count=2000 2>&1 | tail -1 |
    awk '{ printf "floor MBps %.0f\n", $(NF-1) * ($NF ~ /^GB/ ? 1000 : 1) }'
  rm -f "$WORK/dd.dat"
}

run() { # run LABEL BINARY
  local label=$1 bin=$2 port data pid out
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  data="$WORK/$label-$port"
  "$bin" serve --data "$data" --port "$port" --config message.max.bytes=8388608 >"$data.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  "$bin" topics create big --partitions 4 --config max.message.bytes=8388608 --bootstrap "127.0.0.1:$port" >/dev/null
  out=$("$QBENCH" -proto kafka -addr "127.0.0.1:$port" -topic big -partitions 4 -workers "$WORKERS" -count 100000 \
    -size "$SIZE" -time "${TIME_S}s" -warmup 20 -serverpid "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  python3 - "$label" "$out" <<'PY'
import sys
label, out = sys.argv[1], sys.argv[2].split()
kv = dict(zip(out[1::2], out[2::2]))
msgs, elapsed = float(kv["msgs"]), float(kv["elapsed_s"])
print(f"{label} MBps {msgs * 1.048576 / elapsed:.0f} server_ms_per_MiB {float(kv['server_us_per_msg']) / 1000:.2f} "
      f"server_cpu_pct {kv['server_cpu_pct']} client_cpu_s {kv['client_cpu_s']} p99_ms {float(kv['p99_us']) / 1000:.1f}")
PY
}

echo "# large payloads: WORKERS=$WORKERS SIZE=1MiB TIME_S=$TIME_S $(nproc) cores $(date -u +%FT%TZ)"
{
  floor
  for _ in $(seq "$ROUNDS"); do
    run tidemark "$TIDEMARK_BIN"
    if [ -n "${BASELINE_BIN:-}" ]; then run baseline "$BASELINE_BIN"; fi
  done
  floor
} | tee "$WORK/rows"
# Medians over the rounds, and the ratios: to the floor, and to the baseline if any.
"$ROOT/Benchmarks/medians.py" "$WORK/rows" MBps,server_ms_per_MiB floor baseline

#!/usr/bin/env bash
# Unbatched produce (issue #9's first target) beside its floor and Redis, in one run.
# WORKERS Go clients (the jobs peers' qbench: one 200 B message per request, acks=all, each
# waiting for its answer) produce to one partition of:
#   floor1, floor2  produce_floor.c with 1 and 2 event loops: the least a Kafka broker does per
#                   request (read, check the batch's CRC-32C, pwrite it, write the answer)
#   nio2            the same work on SwiftNIO with 2 event loops (NIOProduceFloor, built here in
#                   Benchmarks/): what NIO's own path costs, beside what Tidemark adds to it
#   tidemark        `tidemark serve` (TIDEMARK_BIN; TM_ARGS are extra serve arguments)
#   baseline        a second binary, with BASELINE_BIN (an A/B in the same run)
#   redis           XADD, AOF everysec (as ../shared/peers/jobs/run_enqueue.sh runs it)
# Each row: msgs/s, server CPU us per message (from /proc over the phase), p50/p99, and the
# server's syscalls and context switches per message (perf stat). ROUNDS rounds alternate
# them; then medians, and each one's ratios to floor1 and to Redis.
#
#   Benchmarks/unbatched/run.sh                               (from the project root; ~1 min)
#   BASELINE_BIN=/tmp/old-tidemark ROUNDS=3 WORKERS=16 TIME_S=8 Benchmarks/unbatched/run.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
source "$PEERS_DIR/jobs/common.sh"   # QBENCH, build_qbench, start_redis, stop_pid
TIDEMARK_BIN="${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}"
WORKERS=${WORKERS:-16}; TIME_S=${TIME_S:-6}; ROUNDS=${ROUNDS:-2}; SIZE=${SIZE:-200}
read -r -a TM_EXTRA <<< "${TM_ARGS:-}"
[ -x "$QBENCH" ] || build_qbench
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tidemark-unbatched.XXXXXX")"
trap 'pkill -f "$WORK/" 2>/dev/null || true; rm -rf "$WORK"' EXIT
NIO_FLOOR="$ROOT/Benchmarks/.build/release/NIOProduceFloor"
swift build -c release --package-path "$ROOT/Benchmarks" --product NIOProduceFloor >"$WORK/nio-build.log" 2>&1 ||
  { cat "$WORK/nio-build.log"; exit 1; }
cc -O2 -pthread -I "$ROOT/Sources/CCRC32C/include" -o "$WORK/produce_floor" "$HERE/produce_floor.c" \
  "$ROOT/Sources/CCRC32C/crc32c.c"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_open() { for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# Syscalls and context switches of the server over the timed phase, per message (perf stat on
# its PID; left out where perf cannot count them).
EVENTS=syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_pwritev,syscalls:sys_enter_pwrite64,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,context-switches

measure() { # measure LABEL PROTO PORT PID TOPIC: a warm-up, then the timed phase
  local label=$1 proto=$2 port=$3 pid=$4 topic=$5 out perf
  "$QBENCH" -proto "$proto" -addr "127.0.0.1:$port" -topic "$topic" -workers "$WORKERS" -count 3000 -size "$SIZE" >/dev/null
  perf stat -x, -e "$EVENTS" -p "$pid" -o "$WORK/stat.txt" >/dev/null 2>&1 &
  perf=$!
  out=$("$QBENCH" -proto "$proto" -addr "127.0.0.1:$port" -topic "$topic" -workers "$WORKERS" -count 10000000 \
    -size "$SIZE" -time "${TIME_S}s" -serverpid "$pid")
  kill -INT "$perf" 2>/dev/null; wait "$perf" 2>/dev/null || true
  { echo "$out"; cat "$WORK/stat.txt" 2>/dev/null; } | awk -v label="$label" '
    /^RESULT/ { for (i = 1; i <= NF; i++) v[$i] = $(i + 1) }
    /^[0-9]+,/ { split($0, f, ","); n = f[3]; sub(/^syscalls:sys_enter_/, "", n); sub(/-switches$/, "_switches", n); c[n] = f[1] }
    END {
      printf "%s msgs_per_s %s server_us_per_msg %s p50_us %s p99_us %s server_cpu_pct %s client_cpu_s %s",
        label, v["msgs_per_s"], v["server_us_per_msg"], v["p50_us"], v["p99_us"], v["server_cpu_pct"], v["client_cpu_s"]
      # Per message: read, write, pwrite (either call), epoll_wait, futex, context switches.
      if (v["msgs"] > 0 && ("read" in c)) printf " read_per_msg %.2f write_per_msg %.2f pwrite_per_msg %.2f epoll_per_msg %.2f futex_per_msg %.2f cs_per_msg %.2f",
        c["read"] / v["msgs"], c["write"] / v["msgs"], (c["pwritev"] + c["pwrite64"]) / v["msgs"],
        c["epoll_wait"] / v["msgs"], c["futex"] / v["msgs"], c["context_switches"] / v["msgs"]
      printf "\n" }'
}

floor() { # floor THREADS
  local port pid; port=$(free_port)
  "$WORK/produce_floor" "$port" "$WORK/floor-$port.log" "$1" &
  pid=$!
  wait_open "$port"; sleep 0.2   # every loop's listener bound
  measure "floor$1" kafka "$port" "$pid" jobs
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$WORK/floor-$port.log"
}

nio_floor() {
  local port pid; port=$(free_port)
  "$NIO_FLOOR" "$port" "$WORK/nio-$port.log" 2 &
  pid=$!
  wait_open "$port"
  measure nio2 kafka "$port" "$pid" jobs
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$WORK/nio-$port.log"
}

tidemark() { # tidemark LABEL BINARY
  local port pid; port=$(free_port)
  "$2" serve --data "$WORK/tm-$port" --host 127.0.0.1 --port "$port" --http-port 0 "${TM_EXTRA[@]}" >"$WORK/tm-$port.log" 2>&1 &
  pid=$!
  wait_open "$port"
  "$2" topics create jobs --partitions 1 --bootstrap "127.0.0.1:$port" >/dev/null
  measure "$1" kafka "$port" "$pid" jobs
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$WORK/tm-$port"
}

redis() {
  local port; port=$(free_port)
  start_redis "$port" "$WORK/redis-$port" everysec >/dev/null
  measure redis redis "$port" "$RPID" jobs
  stop_pid "$RPID"; rm -rf "$WORK/redis-$port"
}

echo "# unbatched produce: WORKERS=$WORKERS SIZE=$SIZE TIME_S=$TIME_S ROUNDS=$ROUNDS $(nproc) cores $(date -u +%FT%TZ)"
{
  for _ in $(seq "$ROUNDS"); do
    floor 1
    floor 2
    nio_floor
    tidemark tidemark "$TIDEMARK_BIN"
    if [ -n "${BASELINE_BIN:-}" ]; then tidemark baseline "$BASELINE_BIN"; fi
    redis
  done
} | tee "$WORK/rows"
"$ROOT/Benchmarks/medians.py" "$WORK/rows" server_us_per_msg,msgs_per_s floor1 redis

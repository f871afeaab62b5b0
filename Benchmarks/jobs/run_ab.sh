#!/usr/bin/env bash
# Two tidemark binaries on one job workload, alternated ROUNDS times in one run: this 2-core
# machine's figures drift by 10-20% over minutes (other tenants, the disk), so a change worth a
# few percent shows only side by side, in alternation, as a median. For each round and binary,
# on a fresh broker: the client's msgs/s and latency, the broker's CPU per message, and, from
# `perf stat` on the broker over the middle MEASURE_S seconds, its syscalls and context switches
# per message (what a per-request change is meant to move; counts are divided by the client's
# average rate times the window).
#
#   WORKLOAD=enqueue  qbench: WORKERS clients, one SIZE-byte message per Produce, acks=all, each
#                     waiting for its answer (as ../shared/peers/jobs/run_enqueue.sh MODE=fast)
#   WORKLOAD=durable  the same on a flush.messages=1 topic (group commit; MODE=durable)
#   WORKLOAD=e2e      e2e_raw: one producer at RATE msgs/s, one consumer long-polling, no commits
#                     (as run_e2e_go.sh's kafka-raw-nocommit row)
#
#   A_BIN=/tmp/tidemark-before B_BIN=.build/release/tidemark Benchmarks/jobs/run_ab.sh   (project root)
#   WORKLOAD=e2e ROUNDS=5 RATE=5000 TIME_S=8 A_BIN=... B_BIN=... Benchmarks/jobs/run_ab.sh
#   TM_ARGS="--event-loops 1"   (extra `tidemark serve` arguments, both binaries)
#
# Output: one line per round and binary, then per binary the median (and range) of each
# figure, and B/A of the medians.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
source "$PEERS_DIR/jobs/common.sh"   # QBENCH, build_qbench, start_tidemark, stop_pid, cpu_secs, loadavg, cleanup
source "$HERE/lib.sh"          # build_e2e_raw
WORKLOAD=${WORKLOAD:-enqueue}; ROUNDS=${ROUNDS:-3}; TIME_S=${TIME_S:-9}; MEASURE_S=${MEASURE_S:-3}
WORKERS=${WORKERS:-16}; SIZE=${SIZE:-200}; RATE=${RATE:-5000}; MAX_WAIT_MS=${MAX_WAIT_MS:-500}
A_BIN=${A_BIN:?A_BIN: the baseline tidemark binary}; B_BIN=${B_BIN:-$ROOT/.build/release/tidemark}
for bin in "$A_BIN" "$B_BIN"; do [ -x "$bin" ] || { echo "no tidemark binary at $bin" >&2; exit 1; }; done
case "$WORKLOAD" in enqueue | durable | e2e) ;; *) echo "WORKLOAD: enqueue, durable or e2e" >&2; exit 2 ;; esac
command -v perf >/dev/null || need_pkg linux-perf >&2
build_qbench
if [ "$WORKLOAD" = e2e ]; then build_e2e_raw; fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jobs-ab-XXXXXX")  # removed by common.sh's exit trap (KEEP_TMP=1 keeps it)
EVENTS=context-switches,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_pwritev,syscalls:sys_enter_futex,syscalls:sys_enter_fdatasync
echo "# run_ab WORKLOAD=$WORKLOAD ROUNDS=$ROUNDS TIME_S=$TIME_S WORKERS=$WORKERS SIZE=$SIZE RATE=$RATE TM_ARGS=${TM_ARGS:-} $(date -u +%FT%TZ) $(nproc) cores loadavg $(loadavg)"
echo "# A=$A_BIN"
echo "# B=$B_BIN"

# One round of one binary: prints "key value" pairs on one line.
round() {
  local bin=$1 port=$((PORT_BASE + 41)) out n
  rm -rf "$WORK/tm" "$WORK/out" "$WORK/stat"
  TIDEMARK_BIN=$bin start_tidemark "$port" "$WORK/tm" --auto-create-topics false ${TM_ARGS:-}
  local cfg=(); [ "$WORKLOAD" = durable ] && cfg=(--config flush.messages=1)
  "$bin" topics create jobs --partitions 1 "${cfg[@]}" --bootstrap "127.0.0.1:$port" >/dev/null
  if [ "$WORKLOAD" = e2e ]; then
    E2E_COMMIT=0 timeout $((TIME_S + 60)) "$RAW" "127.0.0.1:$port" jobs "$RATE" $((RATE * TIME_S)) "$SIZE" "$MAX_WAIT_MS" "$TPID" > "$WORK/out" &
  else
    "$QBENCH" -workers "$WORKERS" -count 2000 -size "$SIZE" -time 60s -proto kafka -addr "127.0.0.1:$port" -topic jobs -partitions 1 -serverpid "$TPID" >/dev/null
    timeout $((TIME_S + 60)) "$QBENCH" -workers "$WORKERS" -count 100000000 -size "$SIZE" -time "${TIME_S}s" -proto kafka \
      -addr "127.0.0.1:$port" -topic jobs -partitions 1 -serverpid "$TPID" > "$WORK/out" &
  fi
  local client=$!
  sleep $(((TIME_S - MEASURE_S) / 2))
  local c0 c1; c0=$(cpu_secs "$TPID")
  perf stat -x, -e "$EVENTS" -p "$TPID" -o "$WORK/stat" -- sleep "$MEASURE_S" >/dev/null 2>&1 || true
  c1=$(cpu_secs "$TPID")
  wait "$client" || true
  stop_pid "$TPID"
  # Messages in the measured window: from the client's rate (the window is inside its run).
  local rate; rate=$(grep -o 'msgs_per_s [0-9.]*\|rate [0-9.]*' "$WORK/out" | head -1 | awk '{print $2}')
  n=$(awk -v r="${rate:-0}" -v s="$MEASURE_S" 'BEGIN {print r * s}')
  awk -v n="$n" -v c0="$c0" -v c1="$c1" -v rate="${rate:-0}" -F, '
    FNR == NR { for (i = 1; i < NF; i++) if ($i ~ /^(msgs_per_s|p50_us|p99_us|server_us_per_msg)$/) f[$i] = $(i + 1); next }
    $1 ~ /^[0-9]+$/ { name = $3; sub(/syscalls:sys_enter_/, "", name); sub(/context-switches/, "cs", name); s[name] = $1 }
    END {
      printf "msgs_per_s %s p50_us %s p99_us %s cpu_us_per_msg %.2f", (f["msgs_per_s"] != "" ? f["msgs_per_s"] : rate), f["p50_us"], f["p99_us"], (n > 0 ? (c1 - c0) / n * 1e6 : 0)
      for (k in s) printf " %s_per_msg %.3f", k, (n > 0 ? s[k] / n : 0)
      printf "\n"
    }' FS=' ' "$WORK/out" FS=, "$WORK/stat"
}

for r in $(seq "$ROUNDS"); do
  for side in A B; do
    bin=$A_BIN; [ "$side" = B ] && bin=$B_BIN
    line=$(round "$bin")
    echo "$side round $r $line"
    echo "$side $line" >> "$WORK/all"
  done
done
# The median (and range) of each figure per binary, and B/A of the medians.
awk '
  { side = $1; for (i = 2; i < NF; i += 2) { v[side, $i, ++cnt[side, $i]] = $(i + 1); keys[$i] = 1 } }
  function median(side, k,   n, i, j, t, a) {
    n = cnt[side, k]; for (i = 1; i <= n; i++) a[i] = v[side, k, i]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    lo[side, k] = a[1]; hi[side, k] = a[n]
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    for (k in keys) {
      ma = median("A", k); mb = median("B", k)
      printf "%-22s A %10.3f [%s-%s]  B %10.3f [%s-%s]  B/A %s\n", k, ma, lo["A", k], hi["A", k], mb, lo["B", k], hi["B", k], (ma > 0 ? sprintf("%.3f", mb / ma) : "-")
    }
  }' "$WORK/all" | sort
echo "# end loadavg $(loadavg)"

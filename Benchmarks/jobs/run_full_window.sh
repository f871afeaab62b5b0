#!/usr/bin/env bash
# Unbatched producers beside share-group workers waiting behind a full window: one worker holds
# all 100 record locks of the one partition (share.partition.max.record.locks=100) without
# acknowledging, WAITERS workers poll for more, and qbench (16 Go clients, one 200 B message per
# Produce, acks=all) produces for 8 s. Prints msgs/s and server CPU per message for each of
# WAITERS in $KS (0: the producers' cost with nobody waiting), TIDEMARK_BIN and, when set,
# BASELINE_BIN alternated over ROUNDS. Appends past a full window wake no worker (2026-12-08):
# before, each append woke one that took nothing (~10-15 us of server CPU an append).
#
#   Benchmarks/jobs/run_full_window.sh                 (from the project root)
#   KS="0 4" ROUNDS=2 TIDEMARK_BIN=a BASELINE_BIN=b Benchmarks/jobs/run_full_window.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
source "$PEERS_DIR/jobs/common.sh"   # QBENCH, build_qbench
source "$HERE/lib.sh"                # start_bench_tidemark, stop_tidemark, ensure_share_python, alternate_runs
KS=${KS:-"0 4"}
ROUNDS=${ROUNDS:-1}
TIDEMARK_BIN=${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}
ensure_share_python
build_qbench
run() { # run LABEL BIN WAITERS
  start_bench_tidemark "$2"
  track "$TM_PID"
  local addr="127.0.0.1:$TM_PORT"
  "$2" topics create jobs --partitions 1 --bootstrap "$addr" >/dev/null
  "$2" groups configure g --set share.partition.max.record.locks=100 --bootstrap "$addr" >/dev/null
  "$QBENCH" -proto kafka -addr "$addr" -workers 4 -count 400 -warmup 0 -size 200 >/dev/null 2>&1
  "$TM_PY" "$HERE/full_window.py" "$addr" "$3" 25 2> >(grep -v SHARECONSUMER >&2) &
  local workers=$!
  sleep 8
  echo "$1 waiters=$3 $("$QBENCH" -proto kafka -addr "$addr" -workers 16 -count 100000000 -time 8s -size 200 -serverpid "$TM_PID" 2>&1 |
    grep -oE "msgs_per_s [0-9]+|server_us_per_msg [0-9.]+" | tr '\n' ' ')"
  wait "$workers" || true
  stop_tidemark
}
echo "# full_window KS=\"$KS\" ROUNDS=$ROUNDS $(date -u +%FT%TZ)"
# shellcheck disable=SC2086
alternate_runs $KS

#!/usr/bin/env bash
# Enqueueing delayed jobs while idle share-group workers wait, with PRE delayed jobs already in
# the window and with none (see delayed_enqueue.py): server CPU per enqueue, for TIDEMARK_BIN and,
# when set, BASELINE_BIN, alternated over ROUNDS (the machine is shared: compare medians).
#
#   Benchmarks/jobs/run_delayed_enqueue.sh          (from the project root; ~15 s per run)
#   PRE=100000 M=8000 WORKERS=4 ROUNDS=3 TIDEMARK_BIN=a BASELINE_BIN=b Benchmarks/jobs/run_delayed_enqueue.sh
#   KEYED=1 PRE=50000 ...  (every delayed job its own key, the group keeping per-key order)
#   MODE=keyed PRE=20000 ... (jobs of one key under per-key ordering, not delayed: see delayed_enqueue.py)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$HERE/lib.sh"   # start_jobs_topic, stop_tidemark, ensure_share_python, alternate_runs
PRE=${PRE:-100000}
M=${M:-8000}
WORKERS=${WORKERS:-4}
ROUNDS=${ROUNDS:-1}
MODE=${MODE:-delayed}
TIDEMARK_BIN=${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}
ensure_share_python
run() { # run LABEL BIN PRE
  start_jobs_topic "$2" "$([ "$MODE" = keyed ] || [ "${KEYED:-}" = 1 ] && echo keyed)"
  echo "## $1 pre=$3"
  "$TM_PY" "$HERE/delayed_enqueue.py" "127.0.0.1:$TM_PORT" "$TM_PID" "$3" "$M" "$WORKERS" "$MODE" 2> >(grep -v SHARECONSUMER >&2) || true
  stop_tidemark
}
echo "# delayed_enqueue MODE=$MODE KEYED=${KEYED:-0} PRE=$PRE M=$M WORKERS=$WORKERS ROUNDS=$ROUNDS $(date -u +%FT%TZ)"
alternate_runs "$PRE" 0

#!/usr/bin/env bash
# A wave of N scheduled jobs coming due at once, taken one at a time by one share-group worker,
# beside the same N jobs enqueued for now (see due_wave.py): server CPU per job and jobs/s, for
# TIDEMARK_BIN and, when set, BASELINE_BIN, alternated over ROUNDS (the machine is shared: compare
# the rounds' medians).
#
#   Benchmarks/jobs/run_due_wave.sh             (from the project root; N=50000: ~2 min per round)
#   N=100000 ROUNDS=2 TIDEMARK_BIN=a BASELINE_BIN=b Benchmarks/jobs/run_due_wave.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$HERE/lib.sh"   # start_jobs_topic, stop_tidemark, ensure_share_python, alternate_runs
N=${N:-50000}
ROUNDS=${ROUNDS:-1}
DUE_S=${DUE_S:-8}
TIDEMARK_BIN=${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}
ensure_share_python
run() { # run LABEL BIN MODE
  start_jobs_topic "$2"
  echo "## $1 $3"
  "$TM_PY" "$HERE/due_wave.py" "127.0.0.1:$TM_PORT" "$TM_PID" "$N" "$3" "$DUE_S" 2> >(grep -v SHARECONSUMER >&2) || true
  stop_tidemark
}
echo "# due_wave N=$N DUE_S=$DUE_S ROUNDS=$ROUNDS $(date -u +%FT%TZ)"
alternate_runs wave now

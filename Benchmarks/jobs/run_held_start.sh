#!/usr/bin/env bash
# N jobs behind one job scheduled for tomorrow (it holds the share partition's start), beside
# the same N jobs alone (see held_start.py): whether they all go out, jobs/s, server CPU per job
# and the broker's memory, for TIDEMARK_BIN and, when set, BASELINE_BIN, alternated over ROUNDS.
#
#   Benchmarks/jobs/run_held_start.sh             (from the project root; N=300000)
#   N=300000 ROUNDS=2 TIDEMARK_BIN=a BASELINE_BIN=b Benchmarks/jobs/run_held_start.sh
#   KEYED=1 DELAYED=50000 N=20000 ...  (50,000 jobs for tomorrow in front, every job its own key,
#                                       the group keeping per-key order)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$HERE/lib.sh"   # start_jobs_topic, stop_tidemark, ensure_share_python, alternate_runs
N=${N:-300000}
ROUNDS=${ROUNDS:-1}
TIDEMARK_BIN=${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}
ensure_share_python
run() { # run LABEL BIN MODE
  start_jobs_topic "$2" "$([ "${KEYED:-}" = 1 ] && echo keyed)"
  echo "## $1 $3"
  "$TM_PY" "$HERE/held_start.py" "127.0.0.1:$TM_PORT" "$TM_PID" "$N" "$3" 2> >(grep -v SHARECONSUMER >&2) || true
  stop_tidemark
}
echo "# held_start N=$N DELAYED=${DELAYED:-1} KEYED=${KEYED:-0} ROUNDS=$ROUNDS $(date -u +%FT%TZ)"
alternate_runs held none

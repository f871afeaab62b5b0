#!/usr/bin/env bash
# Redelivery to a waiting worker (see redelivery.py): a released job, the next job of a key
# after an accept, a delayed job coming due, and a job whose worker went silent once its lock
# (1 s) runs out, timed until a waiting worker has it. For TIDEMARK_BIN and, when
# set, BASELINE_BIN, alternated over ROUNDS.
#
#   Benchmarks/jobs/run_redelivery.sh          (from the project root; ~10 s per run)
#   N=20 ROUNDS=2 TIDEMARK_BIN=a BASELINE_BIN=b Benchmarks/jobs/run_redelivery.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$HERE/lib.sh"   # start_jobs_topic, stop_tidemark, ensure_share_python, alternate_runs
N=${N:-20}
ROUNDS=${ROUNDS:-1}
TIDEMARK_BIN=${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}
ensure_share_python
run() { # run LABEL BIN MODE
  start_jobs_topic "$2" "$3"
  if [ "$3" = expired ]; then
    "$2" groups configure workers --set share.record.lock.duration.ms=1000 --bootstrap "127.0.0.1:$TM_PORT" >/dev/null
  fi
  echo -n "$1 "
  "$TM_PY" "$HERE/redelivery.py" "127.0.0.1:$TM_PORT" "$N" "$3" 2> >(grep -v SHARECONSUMER >&2) || true
  stop_tidemark
}
echo "# redelivery N=$N ROUNDS=$ROUNDS $(date -u +%FT%TZ)"
alternate_runs ${MODES:-release keyed delayed expired}

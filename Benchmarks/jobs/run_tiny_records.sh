#!/usr/bin/env bash
# Share-group workers on batches of many tiny records (see tiny_records.py): the broker's
# memory and jobs/s, for TIDEMARK_BIN and, when set, BASELINE_BIN one after the other.
#
#   Benchmarks/jobs/run_tiny_records.sh        (from the project root; ~30 s per binary)
#   PARTS=40 PER=100000 JOBS=2000 TIDEMARK_BIN=a BASELINE_BIN=b Benchmarks/jobs/run_tiny_records.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$HERE/lib.sh"   # start_bench_tidemark, stop_tidemark, ensure_share_python
PARTS=${PARTS:-40}
PER=${PER:-100000}
JOBS=${JOBS:-2000}
TIDEMARK_BIN=${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}
ensure_share_python
run() {
  start_bench_tidemark "$1"
  echo "## $1"
  "$TM_PY" "$HERE/tiny_records.py" "127.0.0.1:$TM_PORT" "$TM_PID" "$PARTS" "$PER" "$JOBS" 2> >(grep -v SHARECONSUMER >&2) || true
  stop_tidemark
}
echo "# tiny_records PARTS=$PARTS PER=$PER JOBS=$JOBS $(date -u +%FT%TZ)"
run "$TIDEMARK_BIN"
if [ -n "${BASELINE_BIN:-}" ]; then run "$BASELINE_BIN"; fi

#!/usr/bin/env bash
# The per-job acknowledgement of a Kafka consumer that commits after every job: WORKERS
# connections each send OffsetCommit v2 (a simple consumer group of its own, the next offset)
# and wait for the answer, for TIME_S seconds (e2e_raw/main.go `commits`, no client library).
# Reports commits/s, latency and the server's CPU per commit. A commit is as durable as its
# topic: with TM_TOPIC_CONFIG=flush.messages=1 each is synced before it is answered (the group
# commit of `__consumer_offsets`), by default synced within a second. With BASELINE_BIN it
# alternates the two binaries ROUNDS times, for an A/B in one run.
#
#   Benchmarks/jobs/run_commits.sh                                       (from the project root)
#   BASELINE_BIN=/tmp/old-tidemark WORKERS="1 16" TIME_S=6 ROUNDS=2 Benchmarks/jobs/run_commits.sh
#   TM_TOPIC_CONFIG=flush.messages=1 Benchmarks/jobs/run_commits.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
source "$PEERS_DIR/jobs/common.sh"   # TIDEMARK_BIN, STATE, start_tidemark, stop_pid, loadavg
source "$HERE/lib.sh"          # build_e2e_raw
WORKERS=${WORKERS:-"1 16"}; TIME_S=${TIME_S:-6}; ROUNDS=${ROUNDS:-1}
build_e2e_raw
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jobs-commits-XXXXXX")
cfg=(); [ -n "${TM_TOPIC_CONFIG:-}" ] && cfg=(--config "$TM_TOPIC_CONFIG")
echo "# run_commits WORKERS=$WORKERS TIME_S=$TIME_S TM_TOPIC_CONFIG=${TM_TOPIC_CONFIG:-} $(date -u +%FT%TZ) $(nproc) cores loadavg $(loadavg)"
bins=("$TIDEMARK_BIN"); [ -n "${BASELINE_BIN:-}" ] && bins+=("$BASELINE_BIN")
for _ in $(seq "$ROUNDS"); do
  for w in $WORKERS; do
    for bin in "${bins[@]}"; do
      port=$((PORT_BASE + 31)); rm -rf "$WORK/tm"
      TIDEMARK_BIN="$bin" start_tidemark "$port" "$WORK/tm" --auto-create-topics false
      "$bin" topics create jobs --partitions 1 "${cfg[@]}" --bootstrap "127.0.0.1:$port" >/dev/null
      "$RAW" commits "127.0.0.1:$port" jobs "$w" 1 "$TPID" >/dev/null   # warm-up
      echo "$bin $("$RAW" commits "127.0.0.1:$port" jobs "$w" "$TIME_S" "$TPID") loadavg $(loadavg)"
      stop_pid "$TPID"
    done
  done
done
rm -rf "$WORK"

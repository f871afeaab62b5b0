#!/usr/bin/env bash
# Idle job workers: the broker's CPU while WORKERS confluent-kafka consumers poll an empty
# topic of PARTS partitions, share-group workers (ShareConsumer) beside classic group consumers
# on the same broker and topic, one after the other. Most of a job queue's life is idle;
# what waiting costs should not grow with the partitions more than a classic consumer's does.
#
#   Benchmarks/jobs/run_share_idle.sh                  (from the project root)
#   PARTS=1000 WORKERS=4 WARM_S=8 MEASURE_S=10 TIDEMARK_BIN=.build/release/tidemark ...
#
# Above ~4,000 partitions raise the file limit first (`ulimit -n 20000`): each partition's
# active segment holds a descriptor until the LRU closes it. This script never builds.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
source "$PEERS_DIR/lib.sh"

PARTS=${PARTS:-1000}
WORKERS=${WORKERS:-4}
WARM_S=${WARM_S:-8}
MEASURE_S=${MEASURE_S:-10}
KINDS=${KINDS:-share classic}
TIDEMARK_BIN=${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}
[ -x "$TIDEMARK_BIN" ] || { echo "no tidemark binary at $TIDEMARK_BIN (build it first)" >&2; exit 1; }
TM_PY="${TM_PY:-$ROOT/.build/interop-venv/bin/python}"
if ! "$TM_PY" -c 'from confluent_kafka import ShareConsumer' 2>/dev/null; then
  (cd "$ROOT" && source tools/lib/deps.sh && ensure_interop_dependencies >&2)
fi
make_tmp jobs-idle >/dev/null

PORT=$(free_port)
"$TIDEMARK_BIN" serve --data "$_TMP/data" --host 127.0.0.1 --port "$PORT" --auto-create-topics false \
  > "$_TMP/serve.log" 2>&1 &
TPID=$!; track_pid "$TPID"
wait_port "$PORT" 60
"$TIDEMARK_BIN" topics create jobs --partitions "$PARTS" --bootstrap "127.0.0.1:$PORT" >/dev/null
log "tidemark $TIDEMARK_BIN pid $TPID port $PORT, topic jobs with $PARTS partitions"
sleep 2
for kind in $KINDS; do
  out=$("$TM_PY" "$HERE/share_idle.py" "$kind" "127.0.0.1:$PORT" "$WORKERS" "$WARM_S" "$MEASURE_S" "$TPID")
  log "$kind: $out"
  set -- ${out#RESULT }
  emit "idle_${kind}_server_cpu" "$2" %core
  emit "idle_${kind}_polls" "$4" polls
done
echo "# results ($(basename "$0"), $(date -u +%FT%TZ), $(nproc) cores): PARTS=$PARTS WORKERS=$WORKERS MEASURE_S=$MEASURE_S"
for r in "${_RESULTS[@]}"; do echo "$r"; done

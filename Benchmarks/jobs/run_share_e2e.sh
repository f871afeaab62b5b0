#!/usr/bin/env bash
# Job pickup latency, enqueue to a waiting worker: Tidemark share groups (confluent-kafka
# ShareConsumer workers) beside Redis Streams (XREADGROUP BLOCK workers), at fixed rates, in one
# run; see share_e2e.py for what each side does per job.
#
#   Benchmarks/jobs/run_share_e2e.sh                     (from the project root)
#   RATES="1000 5000" SECONDS_EACH=6 WORKERS=4 PARTS=4 PEERS=redis KINDS="tidemark classic" ...
#
# KINDS: tidemark (share group workers) and/or classic (a consumer group on the same topic).
# PARTS above ~4,000 needs `ulimit -n 20000`. Tidemark binary: TIDEMARK_BIN, else
# .build/release/tidemark. This script never builds.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
source "$PEERS_DIR/lib.sh"

RATES=${RATES:-1000 5000}
SECONDS_EACH=${SECONDS_EACH:-6}
WORKERS=${WORKERS:-4}
export PARTS=${PARTS:-4}
PEERS=${PEERS:-redis}
KINDS=${KINDS:-tidemark}
TIDEMARK_BIN=${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}
[ -x "$TIDEMARK_BIN" ] || { echo "no tidemark binary at $TIDEMARK_BIN (build it first)" >&2; exit 1; }
TM_PY="${TM_PY:-$ROOT/.build/interop-venv/bin/python}"
if ! "$TM_PY" -c 'from confluent_kafka import ShareConsumer' 2>/dev/null; then
  (cd "$ROOT" && source tools/lib/deps.sh && ensure_interop_dependencies >&2)
fi
if [[ " $PEERS " == *" redis "* ]]; then
  ensure_apt redis-server redis-server
  ENSURE_IMPORTS="import redis, hiredis" ensure_venv 'redis[hiredis]'
fi
make_tmp jobs-e2e >/dev/null

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# one_run NAME PYTHON SYSTEM ADDR PID RATE
one_run() {
  local name=$1 py=$2 sys=$3 addr=$4 pid=$5 rate=$6 c0 out
  c0=$(cpu_ticks "$pid")
  out=$("$py" "$HERE/share_e2e.py" "$sys" "$addr" "$rate" "$SECONDS_EACH" "$WORKERS" 2>/dev/null | grep '^RESULT')
  local ticks=$(( $(cpu_ticks "$pid") - c0 ))
  log "$name at $rate/s: $out server_cpu_ticks $ticks"
  set -- ${out#RESULT }
  local -A r; while [ $# -ge 2 ]; do r[$1]=$2; shift 2; done
  emit "${name}_${rate}_p50" "${r[p50_us]}" us
  emit "${name}_${rate}_p99" "${r[p99_us]}" us
  emit "${name}_${rate}_p999" "${r[p999_us]}" us
  emit "${name}_${rate}_missing" "${r[missing]}" jobs
  emit "${name}_${rate}_server_cpu_ticks" "$ticks" ticks
}

PORT=$(free_port)
"$TIDEMARK_BIN" serve --data "$_TMP/tm" --host 127.0.0.1 --port "$PORT" --auto-create-topics false > "$_TMP/tm.log" 2>&1 &
TPID=$!; track_pid "$TPID"
wait_port "$PORT" 60
log "tidemark $TIDEMARK_BIN pid $TPID port $PORT, $PARTS partitions, $WORKERS workers"
for rate in $RATES; do
  for kind in $KINDS; do
    "$TIDEMARK_BIN" topics delete jobs --bootstrap "127.0.0.1:$PORT" >/dev/null 2>&1 || true
    sleep 1
    "$TIDEMARK_BIN" topics create jobs --partitions "$PARTS" --bootstrap "127.0.0.1:$PORT" >/dev/null
    name=tidemark_share; [ "$kind" = classic ] && name=tidemark_classic
    one_run "$name" "$TM_PY" "$kind" "127.0.0.1:$PORT" "$TPID" "$rate"
  done
done
kill "$TPID" 2>/dev/null || true

if [[ " $PEERS " == *" redis "* ]]; then
  RPORT=$(free_port); mkdir -p "$_TMP/redis"
  redis-server --bind 127.0.0.1 --port "$RPORT" --dir "$_TMP/redis" --daemonize no --save '' \
    --appendonly yes --appendfsync everysec --logfile "$_TMP/redis/redis.log" &
  RPID=$!; track_pid "$RPID"
  wait_port "$RPORT" 20
  for rate in $RATES; do
    redis-cli -p "$RPORT" flushall >/dev/null
    one_run redis "$PY" redis "127.0.0.1:$RPORT" "$RPID" "$rate"
  done
fi
echo "# results ($(basename "$0"), $(date -u +%FT%TZ), $(nproc) cores): PARTS=$PARTS WORKERS=$WORKERS SECONDS_EACH=$SECONDS_EACH"
for r in "${_RESULTS[@]}"; do echo "$r"; done

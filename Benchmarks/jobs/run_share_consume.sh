#!/usr/bin/env bash
# Job-queue consume side, one acknowledgement per job: Tidemark share groups (KIP-932) beside
# Redis Streams, NATS JetStream (work-queue stream) and RabbitMQ (quorum queues), in one run.
# For each system, one after another on a fresh server: preload N jobs of SIZE bytes over
# PARTS partitions (topic partitions / streams / subjects / queues; 4 by default), then WORKERS worker processes
# consume and acknowledge them one by one (see share_consume.py for what each does per job).
# Reports jobs/s and server CPU microseconds per acknowledged job, and Tidemark / peer ratios.
#
#   Benchmarks/jobs/run_share_consume.sh                 (from the project root)
#   N=20000 SIZE=1024 WORKERS=4 BATCH=100 PARTS=4 PEERS="redis nats rabbitmq" TIMEOUT_S=120 ...
#   TM_TOPIC_CONFIG="flush.messages=1"   (Tidemark's jobs topic synced: acknowledgements too)
#   TM_IDLE_PARTS=996   (Tidemark's topic gets that many more partitions, never written: every
#                        ShareFetch's session holds them; the jobs stay in the first PARTS)
#
# Tidemark binary: TIDEMARK_BIN, else .build/release/tidemark if it is newer than every file in
# Sources/, else .build/debug/tidemark (the header says which). This script never builds.
# Durability is not equal (see README.md): Tidemark flushes to the OS (default flush policy),
# and so do its acknowledgements (they follow the topic; with TM_TOPIC_CONFIG=flush.messages=1
# both are synced, group-committed, before they are answered); Redis AOF everysec; NATS 2.9
# writes to the OS; RabbitMQ quorum queues fsync their WAL in batches.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
source "$PEERS_DIR/lib.sh"   # log, emit, track_pid, cleanup trap (kills exactly the tracked PIDs), free_port, wait_port, ensure_*

N=${N:-20000}
SIZE=${SIZE:-1024}
WORKERS=${WORKERS:-4}
BATCH=${BATCH:-100}
PEERS=${PEERS:-redis nats rabbitmq}
TIMEOUT_S=${TIMEOUT_S:-120}
export PARTS=${PARTS:-4}
TM_IDLE_PARTS=${TM_IDLE_PARTS:-0}
DRIVER="$HERE/share_consume.py"
T_START=$(date +%s.%N)

# ---------------- which tidemark binary ----------------
newest_src=$(find "$ROOT/Sources" -type f -printf '%T@\n' | sort -n | tail -1)
if [ -n "${TIDEMARK_BIN:-}" ]; then
  TM_KIND="given (TIDEMARK_BIN)"
elif [ -x "$ROOT/.build/release/tidemark" ] && \
     python3 -c "import os,sys; sys.exit(0 if os.path.getmtime('$ROOT/.build/release/tidemark') > $newest_src else 1)"; then
  TIDEMARK_BIN="$ROOT/.build/release/tidemark"; TM_KIND="release (newer than Sources/)"
else
  TIDEMARK_BIN="$ROOT/.build/debug/tidemark"; TM_KIND="DEBUG (no release build newer than Sources/)"
fi
[ -x "$TIDEMARK_BIN" ] || { echo "no tidemark binary at $TIDEMARK_BIN (build it first)" >&2; exit 1; }
log "tidemark binary: $TIDEMARK_BIN [$TM_KIND]"

# ---------------- clients and servers ----------------
TM_PY="${TM_PY:-$ROOT/.build/interop-venv/bin/python}"
if ! "$TM_PY" -c 'from confluent_kafka import ShareConsumer' 2>/dev/null; then
  (cd "$ROOT" && source tools/lib/deps.sh && ensure_interop_dependencies >&2)
fi
[[ " $PEERS " == *" redis "* ]] && { ensure_apt redis-server redis-server; ensure_apt redis-cli redis-tools; }
[[ " $PEERS " == *" nats "* ]] && ensure_apt nats-server nats-server
[[ " $PEERS " == *" rabbitmq "* ]] && ensure_apt /usr/lib/rabbitmq/bin/rabbitmq-server rabbitmq-server
if [ -n "$(echo "$PEERS" | tr -d ' ')" ]; then
  ENSURE_IMPORTS="import redis, hiredis, nats, uvloop, pika" ensure_venv 'redis[hiredis]' nats-py uvloop pika
fi
make_tmp jobs-consume >/dev/null

stop_pid() { local p=$1; kill "$p" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done; kill -9 "$p" 2>/dev/null || true; }

# run_one NAME SYSTEM PYTHON ADDR SERVER_PID : preload, consume, emit. Sets LAST_OUT.
LAST_OUT=""
run_one() {
  local name=$1 sys=$2 py=$3 addr=$4 spid=$5 out
  timeout --foreground $((TIMEOUT_S + 60)) "$py" "$DRIVER" preload "$sys" "$addr" "$N" "$SIZE"
  out=$(timeout --foreground $((2 * TIMEOUT_S + 120)) "$py" "$DRIVER" consume "$sys" "$addr" "$N" "$WORKERS" "$BATCH" "$TIMEOUT_S" "$spid") \
    || { log "$name: consume failed: $out"; return 1; }
  log "$name: $out"
  LAST_OUT="$out"
  local -A r; local k v
  set -- ${out#RESULT }
  while [ $# -ge 2 ]; do r[$1]=$2; shift 2; done
  emit "${name}_jobs_per_s" "${r[jobs_per_s]}" jobs/s
  emit "${name}_server_us_per_job" "${r[server_us_per_job]}" us/job
  emit "${name}_server_cpu" "${r[server_cpu_pct]}" %core
  emit "${name}_client_us_per_job" "${r[client_us_per_job]}" us/job
  emit "${name}_client_cpu" "${r[client_cpu_pct]}" %core
  emit "${name}_machine_busy" "${r[machine_busy_pct]}" %all_cores
  emit "${name}_elapsed" "${r[elapsed_s]}" s
  emit "${name}_first_job_max" "${r[first_job_max_ms]}" ms
  emit "${name}_acked" "${r[acked]}" jobs
  emit "${name}_duplicates" "${r[duplicates]}" jobs
  emit "${name}_missing" "${r[missing]}" jobs
  emit "${name}_per_worker" "${r[per_worker]}" jobs
  [ "$sys" = tidemark ] || emit "${name}_server_check_ok" "${r[server_check_ok]}" bool
  echo "$name ${r[jobs_per_s]} ${r[server_us_per_job]} ${r[server_cpu_pct]} ${r[client_us_per_job]} ${r[client_cpu_pct]} ${r[machine_busy_pct]}" >> "$_TMP/table"
}
: > "$_TMP/table"

# ---------------- Tidemark share group ----------------
PORT=$(free_port)
mkdir -p "$_TMP/tm"
"$TIDEMARK_BIN" serve --data "$_TMP/tm/data" --host 127.0.0.1 --port "$PORT" --auto-create-topics false \
  > "$_TMP/tm/serve.log" 2>&1 &
TPID=$!; track_pid "$TPID"
wait_port "$PORT" 60
log "tidemark pid $TPID port $PORT"
"$TIDEMARK_BIN" topics create jobs --partitions "$((PARTS + TM_IDLE_PARTS))" --bootstrap "127.0.0.1:$PORT" \
  ${TM_TOPIC_CONFIG:+--config "$TM_TOPIC_CONFIG"} >/dev/null
run_one tidemark_share tidemark "$TM_PY" "127.0.0.1:$PORT" "$TPID" || log "tidemark_share FAILED"
"$TIDEMARK_BIN" groups describe workers --bootstrap "127.0.0.1:$PORT" > "$_TMP/tm/describe.txt" 2>&1 || true
log "tidemark groups describe workers:"; sed 's/^/    /' "$_TMP/tm/describe.txt" >&2
# every partition's share-partition start at its log end, nothing available, delayed, acquired or archived
emit tidemark_share_server_check_ok "$(awk -v parts="$((PARTS + TM_IDLE_PARTS))" '$1 == "jobs" && $2 ~ /^[0-9]+$/ { n++; if ($3 != $5 || $6 + $7 + $8 + $9 != 0) bad = 1 }
  END { print (n == parts && !bad) ? 1 : 0 }' "$_TMP/tm/describe.txt")" bool
stop_pid "$TPID"

# ---------------- Redis Streams (AOF everysec, as in ../shared/peers) ----------------
if [[ " $PEERS " == *" redis "* ]]; then
  PORT=$(free_port); mkdir -p "$_TMP/redis"
  redis-server --bind 127.0.0.1 --port "$PORT" --dir "$_TMP/redis" --daemonize no --save '' \
    --appendonly yes --appendfsync everysec --auto-aof-rewrite-percentage 0 --logfile "$_TMP/redis/redis.log" &
  RPID=$!; track_pid "$RPID"
  wait_port "$PORT" 20
  log "redis-server $(redis-server --version | awk '{print $3}') pid $RPID port $PORT"
  run_one redis_streams redis "$PY" "127.0.0.1:$PORT" "$RPID" || log "redis_streams FAILED"
  stop_pid "$RPID"
fi

# ---------------- NATS JetStream (file storage, work-queue retention) ----------------
if [[ " $PEERS " == *" nats "* ]]; then
  PORT=$(free_port); mkdir -p "$_TMP/nats/store"
  nats-server -a 127.0.0.1 -p "$PORT" -js -sd "$_TMP/nats/store" -l "$_TMP/nats/nats.log" &
  NPID=$!; track_pid "$NPID"
  wait_port "$PORT" 20
  log "nats-server $(nats-server --version | awk '{print $2}') pid $NPID port $PORT"
  run_one nats_js_workqueue nats "$PY" "127.0.0.1:$PORT" "$NPID" || log "nats_js_workqueue FAILED"
  stop_pid "$NPID"
fi

# ---------------- RabbitMQ quorum queues (own epmd and node, as in ../shared/peers/rabbitmq.sh) ----
if [[ " $PEERS " == *" rabbitmq "* ]]; then
  D="$_TMP/rabbit"; mkdir -p "$D/mnesia" "$D/log"
  EPORT=$(free_port); APORT=$(free_port); DPORT=$(free_port)
  (
    export HOME="$D" ERL_EPMD_PORT="$EPORT" ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_CONF_ENV_FILE="$D/rabbitmq-env.conf" RABBITMQ_CONFIG_FILE="$D/rabbitmq.conf" \
      RABBITMQ_ENABLED_PLUGINS_FILE="$D/enabled_plugins" RABBITMQ_MNESIA_BASE="$D/mnesia" \
      RABBITMQ_LOG_BASE="$D/log" RABBITMQ_PID_FILE="$D/rabbit.pid" RABBITMQ_NODENAME="jobs$$@localhost" \
      RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$APORT" RABBITMQ_DIST_PORT="$DPORT" \
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    : > "$D/rabbitmq-env.conf"; echo '[].' > "$D/enabled_plugins"
    printf 'listeners.tcp.1 = 127.0.0.1:%s\nloopback_users.guest = true\n' "$APORT" > "$D/rabbitmq.conf"
    epmd -address 127.0.0.1 -port "$EPORT" & echo $! > "$D/epmd.pid"
    /usr/lib/rabbitmq/bin/rabbitmq-server > "$D/log/stdout.log" 2>&1 & echo $! > "$D/script.pid"
  )
  track_pid "$(cat "$D/epmd.pid")"
  RSCRIPT=$(cat "$D/script.pid"); track_pid "$RSCRIPT"
  wait_port "$APORT" 120 || { tail -20 "$D/log/stdout.log" >&2; exit 1; }
  BEAM=""
  for _ in $(seq 1 50); do BEAM=$(pgrep -P "$RSCRIPT" -x beam.smp | head -1 || true); [ -n "$BEAM" ] && break; sleep 0.1; done
  if [ -z "$BEAM" ] && [ "$(cat /proc/"$RSCRIPT"/comm 2>/dev/null)" = beam.smp ]; then BEAM=$RSCRIPT; fi
  [ -n "$BEAM" ] || { log "no beam.smp child of $RSCRIPT"; exit 1; }
  [ "$BEAM" = "$RSCRIPT" ] || track_pid "$BEAM"
  log "rabbitmq $(dpkg-query -W -f='${Version}' rabbitmq-server) beam pid $BEAM amqp 127.0.0.1:$APORT"
  run_one rabbitmq_quorum rabbitmq "$PY" "127.0.0.1:$APORT" "$BEAM" || log "rabbitmq_quorum FAILED"
  stop_pid "$BEAM"; stop_pid "$RSCRIPT"
fi

# ---------------- results ----------------
# ratios: Tidemark / peer (jobs/s above 1: Tidemark faster; server us/job below 1: Tidemark cheaper)
while read -r name jps sus _; do
  [ "$name" = tidemark_share ] && continue
  read -r _ tjps tsus _ < <(grep '^tidemark_share ' "$_TMP/table") || continue
  emit "ratio_jobs_per_s_tidemark_over_${name}" "$(python3 -c "print('%.2f'%($tjps/$jps))")" x
  emit "ratio_server_us_per_job_tidemark_over_${name}" "$(python3 -c "print('%.2f'%($tsus/$sus))")" x
done < "$_TMP/table"
emit wall_time "$(python3 -c "import time;print('%.0f'%(time.time()-$T_START))")" s
echo "# results ($(basename "$0"), $(date -u +%FT%TZ), host $(hostname), $(nproc) cores, loadavg start $_LOAD0 end $(cut -d' ' -f1-3 /proc/loadavg))"
echo "# tidemark binary: $TM_KIND $TIDEMARK_BIN"
echo "# N=$N SIZE=$SIZE WORKERS=$WORKERS (processes) BATCH=$BATCH PEERS=\"$PEERS\"; one ack per job; Tidemark: explicit ACCEPT per record + commit_sync per poll batch"
for r in "${_RESULTS[@]}"; do echo "$r"; done
echo
python3 - "$_TMP/table" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
tm = next((r for r in rows if r[0] == "tidemark_share"), None)
print("%-18s %9s %12s %9s %12s %9s %8s %14s %16s" % ("system", "jobs/s", "server_us/job", "server%", "client_us/job", "client%", "busy%", "jobs/s TM/peer", "srv_us TM/peer"))
for r in rows:
    name, jps, sus, scpu, cus, ccpu, busy = r[0], float(r[1]), float(r[2]), r[3], r[4], r[5], r[6]
    rj = rs = "-"
    if tm and r is not tm:
        rj = "%.2f" % (float(tm[1]) / jps) if jps else "-"
        rs = "%.2f" % (float(tm[2]) / sus) if sus else "-"
    print("%-18s %9.0f %12.1f %9s %12s %9s %8s %14s %16s" % (name, jps, sus, scpu, cus, ccpu, busy, rj, rs))
EOF

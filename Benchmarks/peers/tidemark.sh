#!/usr/bin/env bash
# Tidemark beside the peers in ../../../shared/peers (Redis Streams, NATS JetStream), with the
# same workload and output contract: MSG_COUNT messages of MSG_SIZE bytes produced and
# consumed over loopback by a librdkafka client (kcat), `# results` then `name value unit`.
#   Benchmarks/peers/tidemark.sh                 (then ../shared/peers/redis_streams.sh, ...)
# Durability: the default flush policy (written to the OS, like Redis everysec and NATS 2.9).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
source "$PEERS_DIR/lib.sh"

MSG_COUNT=${MSG_COUNT:-1000000}
MSG_SIZE=${MSG_SIZE:-100}
BATCH=${BATCH:-1000}
RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-300}

ensure_apt kcat kcat
(cd "$ROOT" && source tools/lib/deps.sh && ensure_build_dependencies && swift build -c release --product tidemark >&2)
make_tmp tidemark >/dev/null

PAYLOAD=$(python3 -c "import random,string;r=random.Random(7);print(''.join(r.choice(string.ascii_letters+string.digits) for _ in range($MSG_SIZE)))")
python3 -c "import sys; sys.stdout.write(('$PAYLOAD\n') * $MSG_COUNT)" > "$_TMP/messages.txt"

PORT=$(free_port)
"$ROOT/.build/release/tidemark" serve --data "$_TMP/data" --port "$PORT" > "$_TMP/serve.out" 2> "$_TMP/serve.log" &
TPID=$!; track_pid "$TPID"
wait_port "$PORT" 30
BOOT="127.0.0.1:$PORT"
log "tidemark pid $TPID port $PORT"
log "kcat $(kcat -V 2>&1 | awk '/librdkafka/ {print $NF; exit}'), MSG_COUNT=$MSG_COUNT MSG_SIZE=$MSG_SIZE"

# Produce: acks=all, batches of up to BATCH messages, no compression.
cpu0=$(cpu_secs "$TPID"); t0=$(date +%s.%N)
timeout "$RUN_TIMEOUT_S" kcat -b "$BOOT" -P -t bench -X acks=all -X linger.ms=5 -X batch.num.messages="$BATCH" \
  -X queue.buffering.max.messages=1000000 -l "$_TMP/messages.txt"
t1=$(date +%s.%N); cpu1=$(cpu_secs "$TPID")
rate=$(python3 -c "print('%.0f'%($MSG_COUNT/($t1-$t0)))")
emit tidemark_produce_msgs_per_s "$rate" msg/s
emit tidemark_produce_MBps "$(python3 -c "print('%.1f'%($rate*$MSG_SIZE/1e6))")" MB/s
emit tidemark_produce_server_cpu "$(python3 -c "print('%.0f'%(100*($cpu1-$cpu0)/($t1-$t0)))")" %

# Consume: a group member reading everything (fetches of up to 1 MiB), committing offsets.
cpu0=$(cpu_secs "$TPID"); t0=$(date +%s.%N)
got=$(timeout "$RUN_TIMEOUT_S" kcat -b "$BOOT" -G bench-group bench -o beginning -c "$MSG_COUNT" -q -f '%o\n' \
  -X auto.offset.reset=earliest | wc -l)
t1=$(date +%s.%N); cpu1=$(cpu_secs "$TPID")
[ "$got" = "$MSG_COUNT" ] || { log "consumed $got of $MSG_COUNT"; exit 1; }
rate=$(python3 -c "print('%.0f'%($MSG_COUNT/($t1-$t0)))")
emit tidemark_consume_msgs_per_s "$rate" msg/s
emit tidemark_consume_MBps "$(python3 -c "print('%.1f'%($rate*$MSG_SIZE/1e6))")" MB/s
emit tidemark_consume_server_cpu "$(python3 -c "print('%.0f'%(100*($cpu1-$cpu0)/($t1-$t0)))")" %
du_bytes=$(du -sb "$_TMP/data" | cut -f1)
emit tidemark_disk_bytes_per_msg "$(python3 -c "print('%.0f'%($du_bytes/$MSG_COUNT))")" B/msg
print_results

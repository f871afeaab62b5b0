#!/usr/bin/env bash
# End-to-end latency at fixed rates with Go clients on both sides: Tidemark through sarama
# (e2e_sarama/main.go: async producer, acks=all, one message per request; a partition
# consumer long-polling with MAX_WAIT_MS) beside Redis Streams (XADD, XREADGROUP BLOCK, AOF
# everysec) through the jobs peers' qbench -mode e2e, in one run. `run_e2e.sh` in
# ../shared/peers/jobs measures Tidemark with confluent-kafka in Python against Go for Redis;
# this one takes the client language out of the comparison. A third row, e2e_raw/main.go, speaks
# Produce v3 and Fetch v4 by hand over two connections (as qbench speaks RESP to Redis): no
# client library on either side (its consumer commits each read, as the Redis one XACKs it), so
# what is left between it and Redis is the brokers; it runs twice, the second time without the
# commits (kafka-raw-nocommit: Tidemark syncs each commit, Redis's XACK waits for AOF everysec).
#
#   Benchmarks/jobs/run_e2e_go.sh                          (from the project root)
#   RATES="5000 20000" DUR_S=10 SIZE=200 MAX_WAIT_MS=500 ROUNDS=2 TIDEMARK_BIN=... Benchmarks/jobs/run_e2e_go.sh
#   TM_ARGS="--event-loops 1"   (extra `tidemark serve` arguments)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
source "$PEERS_DIR/jobs/common.sh"   # TIDEMARK_BIN, QBENCH, start_tidemark, start_redis, stop_pid, cleanup
source "$HERE/lib.sh"          # build_e2e_raw
RATES=${RATES:-"5000 20000"}; DUR_S=${DUR_S:-10}; SIZE=${SIZE:-200}; MAX_WAIT_MS=${MAX_WAIT_MS:-500}; ROUNDS=${ROUNDS:-1}
need_pkg golang-github-shopify-sarama-dev >&2
build_qbench
E2E="$STATE/e2e-sarama"
if [ ! -x "$E2E" ] || [ "$HERE/e2e_sarama/main.go" -nt "$E2E" ]; then
  GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE="$STATE/gocache" GOFLAGS= go build -o "$E2E" "$HERE/e2e_sarama/main.go"
fi
build_e2e_raw
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jobs-e2e-go-XXXXXX")
echo "# run_e2e_go RATES=$RATES DUR_S=$DUR_S SIZE=$SIZE MAX_WAIT_MS=$MAX_WAIT_MS $(date -u +%FT%TZ) $(nproc) cores loadavg $(loadavg)"
for _ in $(seq "$ROUNDS"); do
  for rate in $RATES; do
    n=$((rate * DUR_S))
    port=$((PORT_BASE + 21)); rm -rf "$WORK/tm"
    start_tidemark "$port" "$WORK/tm" --auto-create-topics false ${TM_ARGS:-}
    "$TIDEMARK_BIN" topics create e2e --partitions 1 --bootstrap "127.0.0.1:$port" >/dev/null
    echo "tidemark $(timeout $((DUR_S + 60)) "$E2E" "127.0.0.1:$port" e2e "$rate" "$n" "$SIZE" "$MAX_WAIT_MS" "$TPID") loadavg $(loadavg)"
    stop_pid "$TPID"
    for commit in 1 0; do
      port=$((PORT_BASE + 23)); rm -rf "$WORK/tm"
      start_tidemark "$port" "$WORK/tm" --auto-create-topics false ${TM_ARGS:-}
      "$TIDEMARK_BIN" topics create e2e --partitions 1 --bootstrap "127.0.0.1:$port" >/dev/null
      echo "tidemark $(E2E_COMMIT=$commit timeout $((DUR_S + 60)) "$RAW" "127.0.0.1:$port" e2e "$rate" "$n" "$SIZE" "$MAX_WAIT_MS" "$TPID") loadavg $(loadavg)"
      stop_pid "$TPID"
    done
    port=$((PORT_BASE + 22)); rm -rf "$WORK/redis"
    start_redis "$port" "$WORK/redis" everysec
    echo "redis $(timeout $((DUR_S + 60)) "$QBENCH" -mode e2e -proto redis -addr "127.0.0.1:$port" -topic e2e -rate "$rate" -count "$n" -size "$SIZE" -time $((DUR_S + 30))s -serverpid "$RPID") loadavg $(loadavg)"
    stop_pid "$RPID"
  done
done

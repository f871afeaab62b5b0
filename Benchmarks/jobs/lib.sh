# Helpers shared by the scripts in this directory. Source it after ../shared/peers/jobs/common.sh
# (which sets STATE, where built clients are kept).
JOBS_BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Builds e2e_raw/main.go (Produce, Fetch and OffsetCommit by hand, no client library; GOPATH
# mode, offline) into $STATE when it is missing or older than its source. Sets RAW to it.
build_e2e_raw() {
  RAW="$STATE/e2e-raw"
  if [ ! -x "$RAW" ] || [ "$JOBS_BENCH_DIR/e2e_raw/main.go" -nt "$RAW" ]; then
    GO111MODULE=off GOCACHE="$STATE/gocache" GOFLAGS= go build -o "$RAW" "$JOBS_BENCH_DIR/e2e_raw/main.go"
  fi
}

# Starts `BIN serve` on a free loopback port with its data in a new directory and waits until it
# listens. Sets TM_WORK, TM_PORT, TM_PID; stop_tidemark stops it and removes the directory.
# (Not named start_tidemark: the peers' common.sh has one taking PORT DIR, which the scripts
# sourcing both use; this one, sourced after it, replaced it and broke them.)
start_bench_tidemark() {
  local bin=$1
  [ -x "$bin" ] || { echo "no tidemark binary at $bin (build it first)" >&2; exit 1; }
  TM_WORK=$(mktemp -d "${TMPDIR:-/tmp}/tidemark-bench.XXXXXX")
  TM_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" serve --data "$TM_WORK/data" --host 127.0.0.1 --port "$TM_PORT" --http-port 0 > "$TM_WORK/serve.log" 2>&1 &
  TM_PID=$!
  for _ in $(seq 1 100); do (echo > "/dev/tcp/127.0.0.1/$TM_PORT") 2>/dev/null && return 0; sleep 0.1; done
  echo "tidemark did not start: $(tail -5 "$TM_WORK/serve.log")" >&2; exit 1
}
# start_bench_tidemark, then a one-partition topic "jobs"; with "keyed", the share group "workers" keeps
# per-key order (share.key.ordering=true).
start_jobs_topic() {
  start_bench_tidemark "$1"
  "$1" topics create jobs --partitions 1 --bootstrap "127.0.0.1:$TM_PORT" >/dev/null
  if [ "${2:-}" = keyed ]; then
    "$1" groups configure workers --set share.key.ordering=true --bootstrap "127.0.0.1:$TM_PORT" >/dev/null
  fi
}
stop_tidemark() {
  kill "$TM_PID" 2>/dev/null; wait "$TM_PID" 2>/dev/null || true
  rm -rf "$TM_WORK"
}

# The interop venv's Python with confluent-kafka (ShareConsumer), set up when missing. Sets TM_PY.
ensure_share_python() {
  TM_PY="${TM_PY:-$(cd "$JOBS_BENCH_DIR/../.." && pwd)/.build/interop-venv/bin/python}"
  if ! "$TM_PY" -c 'from confluent_kafka import ShareConsumer' 2>/dev/null; then
    (cd "$JOBS_BENCH_DIR/../.." && source tools/lib/deps.sh && ensure_interop_dependencies >&2)
  fi
}

# Calls the script's `run LABEL BIN CASE` for each of ROUNDS rounds and each CASE given, with
# TIDEMARK_BIN (label "tidemark") and, when set, BASELINE_BIN ("baseline") one after the other:
# the machine is shared, so the two binaries are compared in alternation, not in two blocks.
alternate_runs() {
  local case
  for _ in $(seq "$ROUNDS"); do
    for case in "$@"; do
      run tidemark "$TIDEMARK_BIN" "$case"
      if [ -n "${BASELINE_BIN:-}" ]; then run baseline "$BASELINE_BIN" "$case"; fi
    done
  done
}

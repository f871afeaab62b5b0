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

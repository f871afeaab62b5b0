#!/usr/bin/env bash
# Delayed jobs beside immediate ones, acknowledged one at a time by one share-group worker
# (see delayed_acks.py): what each acknowledgement costs as the window of waiting delayed jobs
# grows, and how much share state it writes. Tidemark only (no peer has delayed jobs in a
# stream with per-job acknowledgements).
#
#   Benchmarks/jobs/run_delayed_acks.sh          (from the project root; N=4000: ~10 s)
#   N=10000 WORKERS=4 TIDEMARK_BIN=.build/release/tidemark Benchmarks/jobs/run_delayed_acks.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
N=${N:-4000}
WORKERS=${WORKERS:-1}
TIDEMARK_BIN=${TIDEMARK_BIN:-$ROOT/.build/release/tidemark}
TM_PY="${TM_PY:-$ROOT/.build/interop-venv/bin/python}"
[ -x "$TIDEMARK_BIN" ] || { echo "no tidemark binary at $TIDEMARK_BIN (build it first)" >&2; exit 1; }
if ! "$TM_PY" -c 'from confluent_kafka import ShareConsumer' 2>/dev/null; then
  (cd "$ROOT" && source tools/lib/deps.sh && ensure_interop_dependencies >&2)
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/delayed-acks.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TIDEMARK_BIN" serve --data "$WORK/data" --host 127.0.0.1 --port "$PORT" --auto-create-topics false > "$WORK/serve.log" 2>&1 &
TPID=$!
trap 'kill $TPID 2>/dev/null; wait $TPID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
"$TIDEMARK_BIN" topics create jobs --partitions 1 --bootstrap "127.0.0.1:$PORT" >/dev/null
echo "# delayed_acks N=$N WORKERS=$WORKERS binary=$TIDEMARK_BIN $(date -u +%FT%TZ)"
"$TM_PY" "$HERE/delayed_acks.py" "127.0.0.1:$PORT" "$TPID" "$WORK/data" "$N" "$WORKERS" 2> >(grep -v SHARECONSUMER >&2)

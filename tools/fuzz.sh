#!/usr/bin/env bash
# Builds the request fuzz target (tools/fuzz) with libFuzzer and runs it from the seeds of
# real clients' frames (tools/fuzz/seeds), growing a corpus in .build-fuzz/corpus.
#   tools/fuzz.sh --seconds N      run for N seconds (default 600)
#   tools/fuzz.sh --runs N         run N inputs
#   tools/fuzz.sh --smoke          the short seeded run the test suite does (60 s)
# Any further arguments go to libFuzzer. A crash leaves its input in .build-fuzz/artifacts/
# and exits non-zero; replay it with `swift run tidemark-fuzz FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/lib/deps.sh
ensure_build_dependencies

limit=(-max_total_time=600)
case "${1:-}" in
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --runs) limit=(-runs="$2"); shift 2 ;;
    --smoke) limit=(-max_total_time=60); shift ;;
esac

scratch=.build-fuzz
swift build -c release --product tidemark-fuzz --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING
mkdir -p "$scratch/corpus" "$scratch/artifacts"
exec "$scratch/release/tidemark-fuzz" "$scratch/corpus" tools/fuzz/seeds \
    -max_len=65536 -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$scratch/artifacts/" "${limit[@]}" "$@"

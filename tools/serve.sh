#!/usr/bin/env bash
# Runs a broker node on a fresh machine: installs the build dependencies when missing,
# builds in release mode, and runs `tidemark serve` (data in ./tidemark-data, 127.0.0.1:9092
# by default). Arguments go to `tidemark serve`, e.g. --port 19092 --data /var/lib/tidemark.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/lib/deps.sh
ensure_build_dependencies
swift build -c release --product tidemark >&2
exec .build/release/tidemark serve "$@"

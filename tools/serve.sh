#!/usr/bin/env bash
# Runs a broker node on a fresh machine: installs the build dependencies when missing,
# builds in release mode, and runs `tidemark serve` (data in ./tidemark-data, 127.0.0.1:9092
# by default). Arguments go to `tidemark serve`, e.g. --port 19092 --data /var/lib/tidemark.
# Relative paths (--data, --config-file) are the caller's: the build runs in the repository,
# the broker where the script was called.
set -euo pipefail
caller="$PWD"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source tools/lib/deps.sh
ensure_build_dependencies
swift build -c release --product tidemark >&2
cd "$caller"
exec "$root/.build/release/tidemark" serve "$@"

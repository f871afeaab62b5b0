#!/usr/bin/env bash
# Runs the storage benchmarks (Benchmarks/ is its own package). Extra arguments go to
# `swift package benchmark`, e.g. --filter "append.*".
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/lib/deps.sh
ensure_build_dependencies
cd Benchmarks
exec swift package benchmark --no-progress "$@"

#!/usr/bin/env bash
# The test suite, on a fresh machine too: installs what is missing (the codecs' -dev packages, pkg-config,
# kcat, a virtualenv with the Python Kafka clients), runs the Swift tests, then the interop
# tests against a real `tidemark serve`, then a short seeded run of the request fuzzer.
#   tools/test.sh            everything
#   tools/test.sh --swift    only `swift test`
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/lib/deps.sh
ensure_build_dependencies
swift build --build-tests
swift test --skip-build
[ "${1:-}" = "--swift" ] && exit 0

ensure_interop_dependencies
TIDEMARK_BIN="$PWD/.build/debug/tidemark" .build/interop-venv/bin/pytest -q -p no:warnings -p no:cacheprovider Tests/interop

# The request path under libFuzzer for a minute, from real clients' frames: any crash fails.
tools/fuzz.sh --smoke

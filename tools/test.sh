#!/usr/bin/env bash
# Runs the test suite on a fresh machine: installs the system packages the build needs
# (liblz4-dev, pkg-config) when they are missing, then `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/lib/deps.sh
ensure_build_dependencies
swift build --build-tests
swift test --skip-build

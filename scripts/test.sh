#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite: unit tests (tests/) and real-kernel
# tests in throwaway network namespaces (netns_tests/, root required), then ruff.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "the suite creates network namespaces: run it as root (sudo scripts/test.sh)" >&2; exit 2
fi
scripts/install.sh --dev
.venv/bin/python -m pytest tests netns_tests "$@"
.venv/bin/ruff check .

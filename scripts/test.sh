#!/usr/bin/env bash
# Set up (Debian packages + virtualenv) and run every check: lint, types, the whole test suite.
# Namespace tests need root; with KERNLB_REQUIRE_NETNS=1 (CI) they fail instead of skipping.
# Extra arguments go to pytest (e.g. -k maintenance, tests/unit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"

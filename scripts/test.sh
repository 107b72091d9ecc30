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
# Bytecode caches on: the suite starts ~100 Python processes (xdist workers, kernlb servers,
# the demo, helpers). With PYTHONDONTWRITEBYTECODE set (some shells set it) each of them compiled
# app/ again and each worker re-ran pytest's assertion rewriting of every test module: about a
# tenth of the suite's CPU. __pycache__ is git-ignored; compiled once here, before the workers.
unset PYTHONDONTWRITEBYTECODE
.venv/bin/python -m compileall -q app tests
# Several pytest-xdist workers (KERNLB_TEST_WORKERS, default 4: the namespace tests mostly wait,
# so more workers than cores pay), each taking whole modules (their shared topology, server or
# app is built once), the long modules first (tests/conftest.py; xdist would otherwise reorder
# them by test count). `-n 0` in the arguments runs in one process.
exec .venv/bin/python -m pytest -n "${KERNLB_TEST_WORKERS:-4}" --dist loadfile \
  --no-loadscope-reorder "$@"

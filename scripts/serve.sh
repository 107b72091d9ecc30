#!/usr/bin/env bash
# Set up (Debian packages + virtualenv) and run the ZAPI server: HTTPS on :444 by default.
# Extra arguments go to `kernlb serve` (e.g. --port 8444 --key MYKEY).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/kernlb serve "$@"

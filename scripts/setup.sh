#!/usr/bin/env bash
# Install what kernlb needs on Debian 12 (as root): kernel tooling and a virtualenv.
# `--test` (scripts/test.sh) adds what the tests need: the dev extras and the container tools.
# Idempotent and offline once done: Debian packages already present are not fetched again, and
# the Python dependencies are installed only when pyproject.toml changed since the last install
# (or the dev extras are wanted and not there yet), so `scripts/serve.sh` starts without the
# package index.
set -euo pipefail
cd "$(dirname "$0")/.."

# haproxy: the L7 engine of http/https farms (app/haproxy); the API and traffic tests run it too.
DEBS=(nftables libnftables1 conntrack iproute2 python3-venv python3-pip monitoring-plugins-basic haproxy)
# --test (scripts/test.sh): also what the container tests need (tests/container): rootful
# Podman with runc, and debootstrap to make the Debian base image when it is not cached; and
# for the web GUI's browser tests (tests/netns/test_gui.py) Debian's headless Chromium with its
# WebDriver (same version, from the same source package) and the fonts it renders with.
extras=runtime
if [ "${1:-}" = "--test" ]; then
  DEBS+=(podman runc debootstrap chromium chromium-driver fonts-dejavu-core fonts-liberation)
  extras=dev
  # The cluster tests (tests/api/test_cluster.py, tests/netns/test_cluster.py): a throw-away
  # PostgreSQL, keepalived and conntrackd per LB namespace.
  DEBS+=(postgresql keepalived conntrackd)
fi
missing=()
for pkg in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# The stamp says which pyproject.toml the virtualenv was installed from, and with which extras
# ("dev" includes the runtime dependencies).
stamp=.venv/.kernlb-installed
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
installed="$(cat "$stamp" 2>/dev/null || true)"
if [ "$installed" != "$wanted dev" ] && [ "$installed" != "$wanted $extras" ]; then
  spec=.
  if [ "$extras" = dev ]; then spec=".[dev]"; fi
  PIP_DISABLE_PIP_VERSION_CHECK=1 .venv/bin/python -m pip install -q -e "$spec"
  echo "$wanted $extras" >"$stamp"
fi

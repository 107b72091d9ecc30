#!/usr/bin/env bash
# Install what kernlb needs on Debian 12 (as root): kernel tooling and a virtualenv.
# Idempotent: packages already present are not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(nftables libnftables1 conntrack iproute2 python3-venv python3-pip monitoring-plugins-basic)
# --test (scripts/test.sh): also what the container tests need (tests/container): rootful
# Podman with runc, and debootstrap to make the Debian base image when it is not cached; and
# for the web GUI's browser tests (tests/netns/test_gui.py) Debian's headless Chromium with its
# WebDriver (same version, from the same source package) and the fonts it renders with.
if [ "${1:-}" = "--test" ]; then
  DEBS+=(podman runc debootstrap chromium chromium-driver fonts-dejavu-core fonts-liberation)
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
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[dev]"

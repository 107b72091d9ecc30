#!/bin/sh
# Container health: the ZAPI listener answers GET /openapi.json (the one path without a key)
# with 200, over HTTPS unless KERNLB_TLS is false. Probes the configured port on loopback.
set -eu

host=${KERNLB_HOST:-0.0.0.0}
case "$host" in
    0.0.0.0) host=127.0.0.1 ;;
    ::) host=::1 ;;
esac
case "${KERNLB_TLS:-true}" in
    [Ff]alse | 0 | [Nn]o | [Oo]ff) tls="" ;;
    *) tls="-S" ;;
esac
# shellcheck disable=SC2086  # $tls is one flag or nothing
exec /usr/lib/nagios/plugins/check_http -I "$host" -p "${KERNLB_PORT:-444}" $tls \
    -u /openapi.json -e 200 -t 5

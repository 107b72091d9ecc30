#!/bin/sh
# Container entry point: `kernlb "$@"`, after checking that the container may grant what
# kernlb's interpreter needs. Its file capabilities (cap_net_admin, cap_net_bind_service) make the
# kernel refuse to start it at all when the bounding set lacks one of them, with a bare
# "Operation not permitted"; say what to do instead.
set -eu

bounding=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)
missing=""
[ $(( (0x$bounding >> 12) & 1 )) -eq 1 ] || missing="$missing NET_ADMIN"
[ $(( (0x$bounding >> 10) & 1 )) -eq 1 ] || missing="$missing NET_BIND_SERVICE"
if [ -n "$missing" ]; then
    echo "kernlb: the container lacks the capabilities:$missing" >&2
    echo "kernlb: run it with --cap-add NET_ADMIN (and keep NET_BIND_SERVICE)" >&2
    exit 1
fi
exec /opt/kernlb/bin/kernlb "$@"

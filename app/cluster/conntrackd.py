"""conntrackd's configuration (FTFW over a dedicated link) and keepalived's notify hook.

conntrackd copies every conntrack entry to the peer, NAT mapping and ct mark included: kernlb's
marks are backend database ids, so a synced connection maps to the same backend on both nodes.
The VIPs must not be in `Address Ignore` (their connections would not be synced); only the
nodes' own addresses are.  The hook follows conntrackd's primary-backup procedure
(Debian's /usr/share/doc/conntrackd/examples/sync/primary-backup.sh), with this node's own
`-C`, since the daemon's UNIX socket path names which daemon answers.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from app.cluster.keepalived import INTERFACE, ConfigError

PORT = 3780


@dataclass(frozen=True)
class SyncLink:
    interface: str
    address: str
    peer: str
    own_addresses: tuple[str, ...] = ()  # this node's addresses (not VIPs)
    state_dir: Path = Path("/var/lib/kernlb")

    def validate(self) -> None:
        if not INTERFACE.fullmatch(self.interface):
            raise ConfigError(f"sync interface {self.interface!r} is not an interface name")
        for label, value in (("sync address", self.address), ("sync peer", self.peer)):
            try:
                if ipaddress.ip_address(value).version != 4:
                    raise ConfigError(f"{label} {value!r}: conntrackd's UDP link here is IPv4")
            except ValueError:
                raise ConfigError(f"{label} {value!r} is not an IP address") from None
        for value in self.own_addresses:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ConfigError(f"own address {value!r} is not an address") from None
        if not re.fullmatch(r"/[A-Za-z0-9_./-]+", str(self.state_dir)):
            raise ConfigError(f"state directory {self.state_dir} is not a plain path")


def render(link: SyncLink) -> str:
    link.validate()
    ignored = ["127.0.0.1", link.address, *link.own_addresses]
    v4 = sorted({a for a in ignored if ipaddress.ip_network(a, strict=False).version == 4})
    v6 = sorted({a for a in ignored if ipaddress.ip_network(a, strict=False).version == 6})
    d = link.state_dir
    lines = [
        "# Rendered by kernlb: do not edit (docs/cluster.md).",
        "Sync {",
        "  Mode FTFW {",
        "  }",
        "  UDP {",
        f"    IPv4_address {link.address}",
        f"    IPv4_Destination_Address {link.peer}",
        f"    Port {PORT}",
        f"    Interface {link.interface}",
        "    Checksum on",
        "  }",
        "}",
        "General {",
        "  Systemd off",
        "  HashSize 8192",
        "  HashLimit 262144",
        f"  LogFile {d}/conntrackd.log",
        "  Syslog off",
        f"  LockFile {d}/conntrackd.lock",
        "  UNIX {",
        f"    Path {d}/conntrackd.ctl",
        "  }",
        "  NetlinkBufferSize 2097152",
        "  NetlinkBufferSizeMaxGrowth 8388608",
        "  Filter From Kernelspace {",
        "    Protocol Accept {",
        "      TCP",
        "      UDP",
        "    }",
        "    Address Ignore {",
        *(f"      IPv4_address {a}" for a in v4),
        *(f"      IPv6_address {a}" for a in ["::1", *v6]),
        "    }",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_notify_script(
    *, state_file: Path, conntrackd_conf: Path | None, conntrackd: str = "/usr/sbin/conntrackd"
) -> str:
    """keepalived's notify hook: record the role, then drive conntrackd (when configured)."""
    state = shlex.quote(str(state_file))
    lines = [
        "#!/bin/sh",
        "# Rendered by kernlb: keepalived's notify hook (docs/cluster.md). Do not edit.",
        'role="$1"',
        'case "$role" in MASTER|BACKUP|FAULT|STOP) ;; *) exit 2 ;; esac',
    ]
    if conntrackd_conf is not None:
        conf = shlex.quote(str(conntrackd_conf))
        lines += [
            f'C="{shlex.quote(conntrackd)} -C {conf}"',
            'case "$role" in',
            # Promotion: commit the peer's connections to the kernel, then start afresh from
            # the kernel and send it all to the peer.  (`-f` right after `-c` is ignored while
            # the commit runs; `-f internal` is not.)
            "  MASTER) $C -c; $C -f internal; $C -R; $C -B ;;",
            # Demotion: purge the kernel table later (PurgeTimeout), ask the peer for its state.
            "  BACKUP) $C -t; $C -n ;;",
            "  FAULT) $C -t ;;",
            "esac",
        ]
    # Recorded last: MASTER is reported once the synced connections are in the kernel.
    lines.append(f'printf "%s\\n" "$role" > {state}.tmp && mv {state}.tmp {state}')
    lines.append("exit 0")
    return "\n".join(lines) + "\n"


def render_alive_script(*, pidfile: Path) -> str:
    """keepalived's check that this node's kernlb runs (the PID it wrote at start-up)."""
    quoted = shlex.quote(str(pidfile))
    return (
        "#!/bin/sh\n"
        "# Rendered by kernlb: keepalived's check that kernlb runs (docs/cluster.md).\n"
        f"pid=$(cat {quoted} 2>/dev/null) || exit 1\n"
        '[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null\n'
    )

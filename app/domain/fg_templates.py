"""The farmguardian templates Zevenet ships (zapi31.md §7.1): read-only, copied on first write."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FgTemplate:
    name: str
    description: str
    command: str
    cut_conns: bool = False
    interval: int = 15


TEMPLATES: dict[str, FgTemplate] = {
    t.name: t
    for t in (
        FgTemplate("check_tcp", "Send TCP connection to backend", "check_tcp -p PORT -H HOST"),
        FgTemplate(
            "check_http",
            "Send a HTTP request and check the 200 response code",
            "check_http -I HOST -p PORT -e 200 -t 5",
        ),
        FgTemplate(
            "check_https",
            "Send a HTTPS request and check the 200 response code",
            "check_http -I HOST -p PORT -e 200 -S -t 5",
        ),
        FgTemplate(
            "check_http_response_string",
            "Send a HTTP request and look for a string in the response",
            "check_http -I HOST -p PORT -e 200 -s 'string'",
        ),
        FgTemplate(
            "check_https_response_string",
            "Send a HTTPS request and look for a string in the response",
            "check_http -I HOST -p PORT -S -e 200 -s 'string' -t 5",
        ),
        FgTemplate(
            "check_ldap",
            "Check a LDAP connection",
            "check_ldap -H HOST -p PORT -b ... -D ... -P ... -3 -t 5",
        ),
        FgTemplate(
            "check_ldaps",
            "Check a LDAPS connection",
            "check_ldaps -H HOST -p PORT -b ... -D ... -P ... -3 -t 5",
        ),
        FgTemplate(
            "check_smtp", "Check a SMTP server", "check_smtp -H HOST -p PORT -C 'hello host' -t 5"
        ),
        FgTemplate("check_imap", "Check an IMAP server", "check_imap -H HOST -p PORT -t 5"),
        FgTemplate("check_pop", "Check a POP server", "check_pop -H HOST -p PORT -t 5"),
        FgTemplate(
            "check_udp", "Check an UDP port with nmap", "nmap -sU -p PORT HOST | grep open", True
        ),
        FgTemplate(
            "check_ping",
            "Send ICMP echo requests",
            "check_ping -H HOST -w 2,100% -c 2,100% -p 2",
            True,
        ),
        FgTemplate("check_redis", "Check a Redis server", "check_redis -h HOST -p PORT", True),
        FgTemplate(
            "check_sip",
            "Check a SIP server",
            "check_sip --username <name> --password <pass> -R HOST:PORT",
            True,
        ),
        FgTemplate(
            "check_common",
            "Look for the available checks in the folder /usr/lib/nagios/plugins",
            "",
        ),
    )
}

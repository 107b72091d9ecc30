"""fgscript parsing: which commands kernlb probes natively, which run as plugins, and how."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.health.checks import (
    CheckError,
    CommandCheck,
    HttpCheck,
    TcpCheck,
    missing_plugin,
    parse_check,
    substitute,
    uses_port,
)

PLUGINS = Path("/usr/lib/nagios/plugins")


@pytest.mark.parametrize(
    ("script", "check"),
    [
        ("check_tcp -p PORT -H HOST", TcpCheck(port="PORT")),
        ("check_tcp -H HOST -p 8080 -t 3", TcpCheck(port="8080", timeout=3.0)),
        ("check_tcp --hostname=HOST --port PORT", TcpCheck(port="PORT")),
        (
            "check_http -I HOST -p PORT -e 200 -t 5",
            HttpCheck(port="PORT", expect=("200",), timeout=5.0),
        ),
        (
            "check_http -I HOST -p PORT -e 200 -S -t 5",
            HttpCheck(port="PORT", tls=True, expect=("200",), timeout=5.0),
        ),
        (
            "check_http -I HOST -p PORT -e 200 -s 'string'",
            HttpCheck(port="PORT", expect=("200",), body="string"),
        ),
        (
            "check_http -I HOST -p PORT -S -e 200 -s 'two words' -t 5",
            HttpCheck(port="PORT", tls=True, expect=("200",), body="two words", timeout=5.0),
        ),
        # The Go client's default script: -H is both the address and the Host header.
        ("check_http -H HOST -p PORT", HttpCheck(port="PORT", hostname="HOST")),
        (
            "check_http -I HOST -H www.example.com -u /health -e 200,204 --ssl",
            HttpCheck(tls=True, hostname="www.example.com", url="/health", expect=("200", "204")),
        ),
        (
            "check_http --IP-address=HOST --url=/x --expect=HTTP/1.1 --string=ok",
            HttpCheck(url="/x", expect=("HTTP/1.1",), body="ok"),
        ),
    ],
)
def test_known_commands_are_probed_natively(script: str, check: object) -> None:
    assert parse_check(script, PLUGINS) == check


@pytest.mark.parametrize(
    "script",
    [
        "check_tcp -H HOST -p PORT -w 1 -c 2",  # response-time thresholds
        "check_tcp -H HOST -p PORT -t 2:3",  # timeout with a state
        "check_tcp -H 192.0.2.1 -p PORT",  # not the backend
        "check_tcp -H HOST",  # no port: the plugin reports it
        "check_http -H www.example.com -p PORT",  # connects by name, not to the backend
        "check_http -I HOST -r 'regex'",
        "check_http -I HOST -u http://example.com/",
        "check_http -I HOST --ssl=1.2",
        "check_http -I HOST extra",
        "check_smtp -H HOST -p PORT -C 'hello host' -t 5",
    ],
)
def test_anything_else_runs_the_plugin(script: str) -> None:
    check = parse_check(script, PLUGINS)
    assert isinstance(check, CommandCheck)
    assert check.path == PLUGINS / script.split()[0]


def test_plugin_arguments_keep_their_quoting_and_no_shell_is_involved() -> None:
    check = parse_check("check_ping -H HOST -w '2,100%' -c 2,100% -p 2 '$(reboot)' |", PLUGINS)
    assert check == CommandCheck(
        PLUGINS / "check_ping",
        ("-H", "HOST", "-w", "2,100%", "-c", "2,100%", "-p", "2", "$(reboot)", "|"),
    )


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("", "can't be blank"),
        ("   ", "can't be blank"),
        ("check_http -s 'unterminated", "its quoting is unbalanced"),
        ("/bin/sh -c true", f"the check must be the name of a program in {PLUGINS}"),
        ("../../bin/sh", f"the check must be the name of a program in {PLUGINS}"),
    ],
)
def test_scripts_that_cannot_run(script: str, message: str) -> None:
    with pytest.raises(CheckError, match=f"^{message}$"):
        parse_check(script, PLUGINS)


def test_a_missing_plugin_is_reported_and_native_checks_need_none(tmp_path: Path) -> None:
    plugin = tmp_path / "check_here"
    plugin.write_text("#!/bin/sh\nexit 0\n")
    plugin.chmod(0o755)
    (tmp_path / "check_not_executable").write_text("#!/bin/sh\n")
    assert missing_plugin(parse_check("check_here -H HOST", tmp_path)) is None
    assert missing_plugin(parse_check("check_tcp -H HOST -p PORT", tmp_path)) is None
    assert missing_plugin(parse_check("check_nothing -H HOST", tmp_path)) == (
        f"the check 'check_nothing' is not installed in {tmp_path}"
    )
    assert missing_plugin(parse_check("check_not_executable", tmp_path)) == (
        f"the check 'check_not_executable' is not installed in {tmp_path}"
    )


def test_host_and_port_are_substituted_as_whole_words() -> None:
    assert substitute("HOST:PORT", "198.18.2.1", 80) == "198.18.2.1:80"
    assert substitute("http://HOST:PORT/HOSTNAME", "198.18.2.1", 80) == (
        "http://198.18.2.1:80/HOSTNAME"
    )
    assert substitute("LOCALHOST", "198.18.2.1", 80) == "LOCALHOST"
    assert substitute("PORT", "198.18.2.1", None) == "PORT"


def test_which_checks_need_a_port() -> None:
    assert uses_port(parse_check("check_tcp -H HOST -p PORT", PLUGINS))
    assert not uses_port(parse_check("check_tcp -H HOST -p 22", PLUGINS))
    assert not uses_port(parse_check("check_http -I HOST", PLUGINS))
    assert uses_port(parse_check("check_sip -R HOST:PORT", PLUGINS))
    assert not uses_port(parse_check("check_ping -H HOST -w 2,100% -c 2,100%", PLUGINS))

"""What starting kernlb imports: the modules only some commands or the OpenAPI document need
stay out of a server's start and of the CLI's (docs/testing.md, "Fourth pass")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter has imported after running `code`."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def under(modules: set[str], *packages: str) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)}


def test_the_app_imports_neither_alembic_nor_cryptography_nor_the_document_models() -> None:
    # Alembic runs only for a database below head, cryptography only for certificates, and
    # the response-body models only for the OpenAPI document.
    modules = imported_after("import app.main, app.cli")
    assert "fastapi" in modules  # the probe sees the app's imports
    assert not under(
        modules, "alembic", "cryptography", "app.schemas.docs", "app.schemas.v40_bodies"
    )


def test_cli_help_imports_neither_settings_nor_the_database() -> None:
    modules = imported_after(
        "import contextlib, io\n"
        "from app.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['sync', '--help'])"
    )
    assert "app.cli" in modules
    assert not under(modules, "pydantic", "pydantic_settings", "sqlalchemy", "fastapi")

"""The import contract of app/ (DESIGN.md's layers), read from the source with `ast`.

- No import cycles between modules (imports inside functions count: they hide cycles).
- Layers import only downwards: api -> services -> (health) -> reconcile -> nft/net/db -> domain.
  Packages in one layer are independent of each other.
- `app.domain` is pure: the standard library only, no FastAPI, SQLAlchemy, pydantic or nftables.
- Only the nft adapter loads the libnftables binding (and the lab, to list tables).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"

# The entry points (commands, the application factory) may use each other and everything.
ENTRY_POINTS = (
    "app.main",
    "app.cli",
    "app.openapi_export",
    "app.demo",
    "app.demo_cluster",
    "app.__main__",
)
# Highest first.  A module may import from its own package and from any lower layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ENTRY_POINTS,
    ("app.api",),
    ("app.metrics",),
    ("app.services", "app.stats", "app.cluster"),
    ("app.health",),
    ("app.reconcile",),
    ("app.schemas",),
    ("app.nft", "app.net", "app.db"),
    ("app.haproxy",),  # the L7 engine: its desired-state values sit under the repositories
    ("app.domain",),
)
# Leaf modules every layer but the domain may use (they import nothing of app).
FOUNDATION = ("app", "app.errors", "app.gcpause", "app.settings", "app.tls")
DOMAIN_MAY_IMPORT = frozenset(sys.stdlib_module_names)
# The adapter applies and lists kernlb's rulesets; the lab (demo, bench and namespace tests)
# only lists a namespace's tables, to check that a test left it as it found it.
NFTABLES_BINDING_USERS = ("app.net.lab", "app.nft.adapter")


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (`from a import b` names `a.b` if it is one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def app_graph() -> dict[str, set[str]]:
    """app module -> the app modules it imports (names that are not modules are dropped)."""
    files = {module_name(p): p for p in APP.rglob("*.py")}
    return {
        name: {m for m in imports_of(path) if m in files} - {name} for name, path in files.items()
    }


def owner(module: str, groups: Iterable[str]) -> str | None:
    """The group (a package or module name) that contains `module`."""
    matches = [g for g in groups if module == g or module.startswith(g + ".")]
    return max(matches, key=len) if matches else None


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_violations(
    graph: Mapping[str, Iterable[str]], layers: tuple[tuple[str, ...], ...] = LAYERS
) -> list[str]:
    rank = {group: level for level, groups in enumerate(layers) for group in groups}
    problems = []
    for module, targets in sorted(graph.items()):
        mine = owner(module, rank)
        if mine is None:
            continue
        for target in sorted(targets):
            theirs = owner(target, rank)
            if theirs is None:
                if owner(target, FOUNDATION) is None or mine == "app.domain":
                    problems.append(f"{module} imports {target}, which is in no layer")
            elif theirs in ENTRY_POINTS and mine in ENTRY_POINTS:
                continue
            elif theirs != mine and rank[theirs] <= rank[mine]:
                relation = "a sibling" if rank[theirs] == rank[mine] else "a higher layer"
                problems.append(f"{module} imports {target} ({relation}: {theirs})")
    return problems


def test_every_app_module_is_in_a_layer_or_the_foundation() -> None:
    groups = [g for layer in LAYERS for g in layer]
    orphans = [m for m in app_graph() if owner(m, groups) is None and m not in FOUNDATION]
    assert orphans == []


def test_no_import_cycles() -> None:
    assert cycles(app_graph()) == []


def test_layers_import_only_downwards() -> None:
    assert layer_violations(app_graph()) == []


def test_domain_is_pure() -> None:
    outside = {
        f"{module_name(path)}: {name}"
        for path in (APP / "domain").rglob("*.py")
        for name in imports_of(path)
        if name.split(".")[0] not in DOMAIN_MAY_IMPORT and not name.startswith("app.domain")
    }
    assert outside == set()


def test_only_the_adapter_loads_libnftables() -> None:
    users = sorted(
        module_name(path)
        for path in APP.rglob("*.py")
        if any(name.split(".")[0] == "nftables" for name in imports_of(path))
    )
    assert users == list(NFTABLES_BINDING_USERS)


# The checks themselves, on graphs with a planted fault: they must see it.


def test_a_planted_cycle_is_found() -> None:
    graph = {"app.a": {"app.b"}, "app.b": {"app.c"}, "app.c": {"app.a"}, "app.d": {"app.a"}}
    assert cycles(graph) == [["app.a", "app.b", "app.c"]]


def test_an_upward_or_sideways_import_is_found() -> None:
    graph = {
        "app.services.farms": {"app.api.http", "app.domain.rules"},
        "app.stats.farms": {"app.services.farms"},
        "app.domain.rules": {"app.errors"},
    }
    assert layer_violations(graph) == [
        "app.domain.rules imports app.errors, which is in no layer",
        "app.services.farms imports app.api.http (a higher layer: app.api)",
        "app.stats.farms imports app.services.farms (a sibling: app.services)",
    ]

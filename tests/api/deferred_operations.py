"""Schemathesis builds the Hypothesis test of every operation while it *collects* a
`@schema.parametrize()` test: the explicit examples (`generate_one` per example) and the
coverage-phase cases, attached as `@example`s.  For the 112 operations of
`test_openapi_properties.py` that is ~1.7 s of CPU (~2.9 s under cProfile), paid by every
pytest-xdist worker although only one of them runs the module (`--dist loadfile`).

`defer_operation_tests(test)` keeps the items exactly as schemathesis makes them (same ids,
names, markers, keywords, fixtures, location) but gives each a stand-in made the way
schemathesis makes the real test's base (`create_base_test`, so the same `@given` wrapper,
signature and attributes), with no examples yet.  The real test is built by schemathesis'
own `build_operation_test`, with the arguments it was called with at collection, when the item
is set up (`build_deferred_operation_test`, called from `tests/api/conftest.py`): same phases,
settings, examples and checks, and a malformed operation still fails as its test.

Relies on two schemathesis internals (pinned in pyproject.toml; `tests/api/
test_deferred_operations.py` fails if they change): `SchemathesisCase._gen_items` looks up
`schemathesis.pytest._test_builder.build_operation_test` when it is called, and
`generation.hypothesis.builder.create_base_test` makes the `@given` wrapper.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., Any])

# Test functions whose operation tests are built at set-up, and each stand-in's builder.
_DEFERRED: set[Callable[..., Any]] = set()
_BUILDERS: dict[Callable[..., Any], Callable[[], Callable[..., Any]]] = {}


def defer_operation_tests(test: F) -> F:
    """Mark a `@schema.parametrize()` test whose operation tests are built when they run.

    Apply it above `@schema.parametrize()`.  The function itself is returned unchanged."""
    if inspect.iscoroutinefunction(test):
        raise TypeError("defer_operation_tests: async tests are not supported")
    _install()
    _DEFERRED.add(test)
    return test


def build_deferred_operation_test(item: pytest.Item) -> None:
    """Replace a deferred item's stand-in with its real operation test (at set-up, before
    Hypothesis' and schemathesis' call hooks read `item.obj`)."""
    if not isinstance(item, pytest.Function):
        return
    builder = _BUILDERS.get(item.obj)
    if builder is not None:
        item.obj = builder()


def _install() -> None:
    from schemathesis.pytest import _test_builder

    if getattr(_test_builder.build_operation_test, "defers", False):
        return
    eager = _test_builder.build_operation_test

    def build_operation_test(**kwargs: Any) -> Callable[..., Any]:
        test_func = kwargs["test_func"]
        if test_func not in _DEFERRED or kwargs.get("explicit_settings") is not None:
            return eager(**kwargs)
        stand_in = _stand_in(test_func, kwargs["operation"], kwargs["given_kwargs"])
        _BUILDERS[stand_in] = lambda: _build(eager, kwargs)
        return stand_in

    build_operation_test.defers = True  # type: ignore[attr-defined]
    _test_builder.build_operation_test = build_operation_test


def _build(eager: Callable[..., Callable[..., Any]], kwargs: dict[str, Any]) -> Callable[..., Any]:
    from schemathesis.core.errors import InvalidSchema

    try:
        return eager(**kwargs)
    except InvalidSchema as exc:  # as SchemathesisCase._gen_items does at collection
        return exc.as_failing_test_function()


def _stand_in(
    test_func: Callable[..., Any], operation: Any, given_kwargs: dict[str, Any]
) -> Callable[..., Any]:
    from hypothesis import strategies as st
    from schemathesis.generation.hypothesis.builder import ApiOperationMark, create_base_test

    @functools.wraps(test_func)  # its name, signature and attributes, as the real test's
    def not_built(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(
            "a deferred schemathesis operation test ran without being built at set-up "
            "(tests/api/conftest.py: pytest_runtest_setup)"
        )

    stand_in = create_base_test(
        test_function=not_built, strategy=st.none(), args=(), kwargs=given_kwargs
    )
    # The attributes create_test adds (pytest copies their names into the item's keywords).
    ApiOperationMark.set(stand_in, operation)
    stand_in.hypothesis_explicit_examples = []  # type: ignore[attr-defined]
    return stand_in

"""`deferred_operations` leans on two schemathesis internals (pinned in pyproject.toml): these
tests fail if an upgrade moves them, instead of the property tests silently changing."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from _pytest._code import getfslineno
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.hypothesis.builder import ApiOperationMark
from schemathesis.pytest import _test_builder, plugin

from . import deferred_operations
from . import test_openapi_properties as properties

LABELS = ["GET /metrics", "PUT /zapi/v3.1/zapi.cgi/farms/{name}"]


def operation_test_kwargs(label: str) -> dict[str, Any]:
    [operation] = [
        result.ok()
        for result in properties.schema.get_all_operations()
        if result.ok().label == label
    ]
    return {
        "config": properties.schema.config,
        "operation": operation,
        "test_func": properties.test_every_operation_answers_as_documented,
        "given_kwargs": {},
        "feedback": FeedbackSources(),
    }


def test_schemathesis_builds_operation_tests_through_the_deferring_builder() -> None:
    # SchemathesisCase._gen_items imports build_operation_test from _test_builder at each call.
    assert getattr(_test_builder.build_operation_test, "defers", False)
    source = inspect.getsource(plugin.SchemathesisCase._gen_items)
    assert "from schemathesis.pytest._test_builder import build_operation_test" in source
    assert "funcobj = build_operation_test(" in source


@pytest.mark.parametrize("label", LABELS)
def test_a_stand_in_looks_to_pytest_as_the_real_test_does(label: str) -> None:
    kwargs = operation_test_kwargs(label)
    stand_in = _test_builder.build_operation_test(**kwargs)
    real = deferred_operations._BUILDERS[stand_in]()
    # What pytest and Hypothesis' plugin read at collection: fixtures (the signature), the
    # keywords (attribute names), the location, the `hypothesis` marker.
    assert inspect.signature(stand_in) == inspect.signature(real)
    assert sorted(vars(stand_in)) == sorted(vars(real))
    assert getfslineno(stand_in) == getfslineno(real)
    assert stand_in.is_hypothesis_test and real.is_hypothesis_test  # type: ignore[attr-defined]
    assert ApiOperationMark.get(real) is ApiOperationMark.get(stand_in) is kwargs["operation"]
    # The real test is schemathesis' own, with its explicit examples (examples, coverage).
    assert real.hypothesis_explicit_examples  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="without being built"):
        stand_in(app_client=None)

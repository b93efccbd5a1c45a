"""Schemathesis over a served app's published OpenAPI, each request sent as every caller."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance


def fuzz_openapi(url: str, callers: Sequence[Mapping[str, str]], examples: int) -> set[str]:
    """Generate requests for every operation of `url`'s OpenAPI and send each as every caller.

    Every answer must be non-5xx and match the schema published for its status. Returns the
    labels of the operations exercised (each one at least once).
    """
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    called: set[str] = set()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def each_caller(case: Any) -> None:
            called.add(case.operation.label)
            for headers in callers:
                case.call_and_validate(
                    base_url=url,
                    headers=dict(headers),
                    checks=[not_a_server_error, response_schema_conformance],
                )

        each_caller()
    assert called == {operation.label for operation in operations}
    return called

"""The HTTP API fuzzed from its own description (/openapi.json) with schemathesis, against the
real server: no generated input makes it fail (5xx). Bounded to a few dozen examples per
operation to stay quick."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.web_support import Running, serving, web_settings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("web-schema")
    with serving(web_settings(root, web_confirm="none"), root / "dry-run", worker_poll=None) as r:
        yield r


def test_no_generated_input_makes_the_server_fail(server: Running) -> None:
    api = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            response = case.call(base_url=server.url, timeout=10)
            where = f"{case.method} {case.formatted_path}"
            assert response.status_code < 500, (where, response.status_code, response.text[:300])
            # every refusal says what was wrong, as JSON
            if response.status_code >= 400:
                assert "detail" in response.json(), where

        call()

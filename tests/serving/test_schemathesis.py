"""Property-based run of schemathesis against the server's own OpenAPI document: no 5xx, and no
answer (status, content type, body) that contradicts the document.

Driven through schemathesis' Python API with Hypothesis directly (its pytest plugin does not
load under this pytest), one operation at a time. Digits skips one check (see below); iris runs them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.serving.conftest import EXAMPLES, KEY, ServerPool


@pytest.mark.parametrize("model", ["iris", "digits"])
def test_api_conforms_to_its_document(model: str, tmp_path: Path) -> None:
    pool = ServerPool(tmp_path)
    try:
        server = pool.start(EXAMPLES / model, batch_enabled=model == "digits", queue_size=64)
        schema = schemathesis.openapi.from_url(server.url + "/swagger.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.path for op in operations} >= {"/score", "/v1/score", "/healthz", "/readyz", "/metrics"}
        # JSON Schema cannot say "a PNG image": a base64 string that fits the schema but holds no
        # image is rightly refused with 422, so digits skips only the schema-valid-accepted check.
        excluded = [positive_data_acceptance] if model == "digits" else []
        # nor can it say that a tensor holds as many elements as its shape, or that its name is one of
        # the model's: a schema-valid inference request is rightly refused with 400
        protocol_excluded = [positive_data_acceptance]
        for operation in operations:
            strategy = operation.as_strategy()
            skipped = protocol_excluded if operation.path.startswith(("/v2/models/", "/v1/models/")) else excluded

            @given(data=st.data())
            @settings(
                max_examples=30 if operation.path == "/score" else 5,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def check(data: Any) -> None:
                case = data.draw(strategy)  # noqa: B023 - check() runs inside this iteration
                case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, excluded_checks=skipped)  # noqa: B023

            check()
    finally:
        pool.close()

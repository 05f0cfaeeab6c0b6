"""Schemathesis over the live app's OpenAPI document, with the admin, officer and gate keys.

Zero 500s, and every answer's status code, content type and body as the document says. The
budget is fixed (a seed and a number of cases per operation and role) so that the run takes at
most a few minutes in ``.ci/run``; ``scripts/fuzz`` runs it longer
(``ENTRYEXIT_FUZZ_EXAMPLES``, ``ENTRYEXIT_FUZZ_SEED``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from entryexit.biometrics import FaceEngine
from entryexit.config import Settings
from tests.integration.api.conftest import Api, build_api

pytestmark = [pytest.mark.models, pytest.mark.fuzz]
EXAMPLES = int(os.environ.get("ENTRYEXIT_FUZZ_EXAMPLES", "8"))
SEED = int(os.environ.get("ENTRYEXIT_FUZZ_SEED", "15"))
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)


@pytest.fixture(scope="module")
def fuzz_api(engine: FaceEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = Path(tmp_path_factory.mktemp("fuzz"))
    built, services = build_api(
        Settings(
            data_dir=root / "data",
            database_url=f"sqlite+pysqlite:///{root / 'e.db'}",
            gate_requests_per_second=10_000,
            gate_burst=10_000,
        ),
        engine,
    )
    with built.client:
        built.create_flight()  # something to find
        yield built
    services.uow.engine.dispose()


def test_the_api_answers_as_documented(fuzz_api: Api) -> None:
    """Every operation, ``EXAMPLES`` generated cases each, each case sent with every key."""
    api_schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_api.client.app)
    failures: dict[str, str] = {}
    operations = 0
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],  # report the first failure, unshrunk
        )
        @seed(SEED)
        def run(case: schemathesis.Case[Any]) -> None:
            for role in ("admin", "officer", "gate"):  # each case, as each kind of caller
                case.call_and_validate(headers=fuzz_api.headers(role), checks=list(CHECKS))

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis: a group per operation
            failures[operation.label] = str(exc)[:2000]
    assert operations >= 25
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())

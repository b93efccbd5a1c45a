"""The ingress's OpenAPI contract, fuzzed by schemathesis with every kind of caller.

`POST /v1/messages` and every other operation the ingress publishes get generated requests
(valid and invalid) from a key scoped to two channels, a key trusted to set every trust
field, a revoked-looking bearer token and no credentials at all. The ingress is built as
`escalator connect http` builds it, served by uvicorn, publishing to the real broker. Every
answer must be non-5xx and match the schema published for its status.

`ESCALATOR_FUZZ_API_EXAMPLES` sets the examples per operation (raised by `make fuzz`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from escalator.connector_wiring import build_ingress_app
from escalator.settings import ChannelSettings, KafkaSettings, Settings
from tests.security.desk_support import served
from tests.security.openapi_fuzz import fuzz_openapi
from tests.security.test_ingress_auth import bearer, new_key

EXAMPLES = int(os.environ.get("ESCALATOR_FUZZ_API_EXAMPLES", "8"))

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def fuzzed_ingress(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str
) -> Iterator[tuple[str, dict[str, dict[str, str]]]]:
    """The served ingress and the headers of each kind of caller."""
    tmp_path: Path = tmp_path_factory.mktemp("ingress-openapi")
    keys_file = tmp_path / "ingress-keys.json"
    scoped = new_key(keys_file, "web", "--channels", "chat,webform")
    trusted = new_key(
        keys_file,
        "crm",
        "--channels",
        "*",
        "--trust",
        "customer.id,customer.verified,metadata.staff,metadata.accepted_answer",
    )
    callers = {
        "scoped": bearer(scoped),
        "trusted": bearer(trusted),
        "forged": bearer("eik_" + "0" * 43),
        "nobody": {},
    }
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
        env.setenv("ESCALATOR_TOPIC_PREFIX", "fuzz-ingress.")
        env.setenv("ESCALATOR_INGRESS_KEYS_FILE", str(keys_file))
        env.delenv("ESCALATOR_INGRESS_AUTH", raising=False)
        app = build_ingress_app(Settings(), KafkaSettings(), ChannelSettings())
    with served(app) as url:
        yield url, callers


def test_no_server_error_and_no_answer_outside_the_schema(
    fuzzed_ingress: tuple[str, dict[str, dict[str, str]]],
) -> None:
    url, callers = fuzzed_ingress
    exercised = fuzz_openapi(url, list(callers.values()), EXAMPLES)
    assert "POST /v1/messages" in exercised

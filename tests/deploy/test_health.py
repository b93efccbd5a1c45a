"""Every process of the running stack answers `/healthz` and `/readyz` once it works."""

from __future__ import annotations

import httpx
import pytest

from tests.deploy.conftest import ScrapedStack

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("process", ["worker", "ingress", "projection"])
def test_alive_and_ready(scraped_stack: ScrapedStack, process: str) -> None:
    base = scraped_stack.urls[process]
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    ready = httpx.get(f"{base}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"


def test_projection_readiness_names_its_checks(scraped_stack: ScrapedStack) -> None:
    answer = httpx.get(f"{scraped_stack.urls['projection']}/readyz", timeout=5).json()
    assert answer["checks"] == {"partitions_assigned": True, "database": True, "progressing": True}

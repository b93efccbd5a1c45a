"""The side HTTP server: liveness, readiness from its check, metrics in both formats."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, Counter

from escalator.observability.health_server import HealthServer


def test_health_readiness_and_metrics() -> None:
    registry = CollectorRegistry()
    Counter("escalator_demo", "A demo counter.", registry=registry).inc()
    state = {"kafka": False, "database": True}
    server = HealthServer(0, lambda: state, registry=registry).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        not_ready = httpx.get(f"{base}/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"] == {"kafka": False, "database": True}
        state["kafka"] = True
        assert httpx.get(f"{base}/readyz").status_code == 200
        text = httpx.get(f"{base}/metrics")
        assert text.headers["content-type"].startswith("text/plain")
        assert "escalator_demo_total 1.0" in text.text
        openmetrics = httpx.get(
            f"{base}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.rstrip().endswith("# EOF")
        assert httpx.get(f"{base}/nothing").status_code == 404
    finally:
        server.stop()


def test_a_failing_check_means_not_ready() -> None:
    def broken() -> dict[str, bool]:
        raise RuntimeError("database driver exploded")

    server = HealthServer(0, broken, registry=CollectorRegistry()).start()
    try:
        answer = httpx.get(f"http://127.0.0.1:{server.port}/readyz")
        assert answer.status_code == 503
        assert answer.json()["status"] == "not_ready"
    finally:
        server.stop()

"""`/metrics` and `/readyz` for a FastAPI app that has only `/healthz` of its own (the desk)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from escalator.observability.health_server import ReadinessCheck
from metricsio import render_metrics


def add_operational_routes(app: FastAPI, readiness: ReadinessCheck) -> None:
    """Serve `/metrics` (OpenMetrics when asked) and `/readyz` (200 only if every check holds)."""

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        body, content_type = render_metrics(request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        try:
            checks = dict(readiness())
        except Exception:  # a failing check means not ready, never a crash
            checks = {"check": False}
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status_code=200 if ready else 503,
        )

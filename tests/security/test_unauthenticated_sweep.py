"""An unauthenticated sweep of every route of the desk: only what must be public answers.

Without credentials, every route of the desk's API and console must refuse (401, or a
redirect to the login page for a console page), except the health probes, the login page,
the console's static files and the API's documentation. A route added later without its
authentication check fails this test.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.security.desk_support import desk_app, sqlite_world
from tests.security.route_sweep import routes, sweep

DESK_PUBLIC = {
    ("GET", "/"),  # a redirect to the console
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/console/login"),
    ("POST", "/console/login"),
}
"""What answers without credentials: probes, the way to sign in, and the API's description."""


def test_every_desk_route_refuses_a_caller_without_credentials(tmp_path: Path) -> None:
    with sqlite_world(tmp_path) as world:
        app = desk_app(world)
        table = sorted(set(routes(app.routes)))
        assert len(table) > 30, table
        with TestClient(
            app, base_url="https://desk.test", headers={"Origin": "https://desk.test"}
        ) as client:
            answers = sweep(client, table)
    leaks = []
    for answer in answers:
        if (answer.method, answer.path) in DESK_PUBLIC or answer.path.startswith(
            "/console/static/"
        ):
            continue
        to_login = answer.status in (302, 303) and answer.path.startswith("/console")
        if answer.status not in (401, 405) and not to_login:
            leaks.append(answer)
    assert not leaks, "answered without credentials:\n" + "\n".join(map(str, leaks))

"""The desk as an attacker meets it: the session cookie, tokens in URLs, cross-site writes,
the Content-Security-Policy, and guessing tokens at speed.

Each test is a finding of issue 12 ("a hardened desk") and failed on the desk before the fix.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from queues.desk import Role
from tests.desk.conftest import DeskWorld
from tests.queues.case_event_builders import case_id, conversation
from tests.security.desk_support import desk_app, served, sqlite_world

EVIL = "https://evil.example"


@pytest.fixture
def world(tmp_path: Path) -> DeskWorld:
    with sqlite_world(tmp_path) as made:
        made.add("gina", "general")
        made.add("root", role=Role.ADMIN)
        made.apply(conversation("ana", messages=1))
        yield made


def cookie(world: DeskWorld, agent: str) -> dict[str, str]:
    """The console's session cookie as a browser sends it."""
    return {"Cookie": f"escalator_token={world.tokens[agent]}"}


# --- the session cookie -------------------------------------------------------------------


def test_the_session_cookie_is_secure_even_when_the_desk_sees_plain_http(
    world: DeskWorld,
) -> None:
    # Behind a TLS-terminating proxy whose X-Forwarded-Proto uvicorn does not trust (any
    # address but 127.0.0.1 by default), the desk sees http; the cookie must stay Secure.
    with TestClient(desk_app(world), base_url="http://testserver") as http:
        answer = http.post(
            "/console/login",
            data={"token": world.tokens["gina"]},
            headers={"Origin": "http://testserver"},
            follow_redirects=False,
        )
    assert answer.status_code == 303, answer.text
    attributes = [part.strip().lower() for part in answer.headers["set-cookie"].split(";")]
    assert "secure" in attributes, answer.headers["set-cookie"]
    assert "httponly" in attributes and "samesite=strict" in attributes


def test_only_the_plain_http_development_setting_drops_secure(world: DeskWorld) -> None:
    from queues.desk.hardening import WebSecurity

    app = desk_app(world, web_security=WebSecurity(plain_http=True))
    with TestClient(app, base_url="http://testserver") as http:
        answer = http.post(
            "/console/login",
            data={"token": world.tokens["gina"]},
            headers={"Origin": "http://testserver"},
            follow_redirects=False,
        )
    attributes = [part.strip().lower() for part in answer.headers["set-cookie"].split(";")]
    assert "secure" not in attributes and "httponly" in attributes


# --- tokens in URLs -----------------------------------------------------------------------


def test_a_token_in_the_query_is_refused_and_never_reaches_the_access_log(
    world: DeskWorld, caplog: pytest.LogCaptureFixture
) -> None:
    token = world.tokens["gina"]
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    with served(desk_app(world)) as url:
        with httpx.stream("GET", f"{url}/v1/events?access_token={token}", timeout=30) as answer:
            refused = answer.status_code
        # The console's way: its cookie (EventSource sends it; scripts cannot read it).
        with httpx.stream(
            "GET", f"{url}/v1/events", headers=cookie(world, "gina"), timeout=30
        ) as ok:
            followed = ok.status_code
    assert refused == 401
    assert followed == 200
    logged = [record.getMessage() for record in caplog.records if record.name == "uvicorn.access"]
    assert any("/v1/events" in line for line in logged), logged  # the access log is on
    assert not any(token in line for line in logged), logged


# --- cross-site writes with the cookie ----------------------------------------------------


def test_cookie_authenticated_api_writes_need_our_origin(world: DeskWorld) -> None:
    with TestClient(desk_app(world)) as http:
        settings = {"json": {"strategy": "round_robin"}}
        admin = cookie(world, "root")
        from_evil = http.patch("/v1/queues/general", headers={**admin, "Origin": EVIL}, **settings)
        assert from_evil.status_code == 403, from_evil.text
        evil_referer = {**admin, "Referer": f"{EVIL}/page"}
        assert http.patch("/v1/queues/general", headers=evil_referer, **settings).status_code == 403
        # Neither Origin nor Referer: no browser posts like that, so nobody we trust does.
        assert http.patch("/v1/queues/general", headers=admin, **settings).status_code == 403
        beat = http.post("/v1/me/heartbeat", headers={**cookie(world, "gina"), "Origin": EVIL})
        assert beat.status_code == 403
        null_origin = {**cookie(world, "gina"), "Origin": "null"}
        assert http.post("/v1/me/heartbeat", headers=null_origin).status_code == 403

        same_site = {**admin, "Origin": "http://testserver"}
        assert http.patch("/v1/queues/general", headers=same_site, **settings).status_code == 200
        referer = {**cookie(world, "gina"), "Referer": "http://testserver/console/queue"}
        assert http.post("/v1/me/heartbeat", headers=referer).status_code == 200
        # A bearer token is no ambient credential: no other site can make a browser send it.
        bearer = {**world.auth("root"), "Origin": EVIL}
        assert http.patch("/v1/queues/general", headers=bearer, **settings).status_code == 200


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every route, also inside included routers (FastAPI keeps those apart since 0.16x)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += api_routes(route.original_router.routes)
    return found


def test_every_write_route_refuses_the_cookie_from_another_site(world: DeskWorld) -> None:
    app = desk_app(world)
    writes = [
        (method, re.sub(r"\{[^}]+\}", "x", route.path))
        for route in api_routes(app.routes)
        for method in sorted(route.methods - {"GET", "HEAD", "OPTIONS"})
    ]
    assert len(writes) >= 15, writes  # every API write and every console form
    with TestClient(app) as http:
        for method, path in writes:
            answer = http.request(method, path, headers={**cookie(world, "root"), "Origin": EVIL})
            assert answer.status_code == 403, (method, path, answer.status_code)
            assert "cross-site request refused" in answer.text, (method, path)


def test_console_form_posts_without_origin_or_referer_are_refused(world: DeskWorld) -> None:
    with TestClient(desk_app(world)) as http:
        answer = http.post(
            f"/console/cases/{case_id('ana')}/act",
            data={"action": "claim"},
            headers=cookie(world, "gina"),
        )
        assert answer.status_code == 403, answer.text
        logout = http.post("/console/logout", headers={**cookie(world, "gina"), "Origin": EVIL})
        assert logout.status_code == 403


# --- Content-Security-Policy and friends --------------------------------------------------


def directives(header: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in header.split(";"))):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def test_every_answer_carries_a_strict_csp_and_the_other_headers(world: DeskWorld) -> None:
    with TestClient(desk_app(world)) as http:
        answers = [
            http.get("/console/login"),
            http.get("/console/queue", headers=cookie(world, "gina")),
            http.get(f"/console/cases/{case_id('ana')}", headers=cookie(world, "gina")),
            http.get("/v1/me", headers=world.auth("gina")),
            http.get("/console/static/console.js"),
            http.get("/console/cases/C-NOSUCHCASE", headers=cookie(world, "gina")),
        ]
    for answer in answers:
        where = answer.request.url.path
        csp = directives(answer.headers.get("content-security-policy", ""))
        assert csp.get("default-src") == ["'none'"], (where, csp)
        assert csp.get("script-src") == ["'self'"], (where, csp)
        assert csp.get("frame-ancestors") == ["'none'"], (where, csp)
        assert csp.get("base-uri") == ["'none'"] and csp.get("form-action") == ["'self'"]
        for sources in csp.values():
            assert not {"'unsafe-inline'", "'unsafe-eval'", "*"} & set(sources), (where, csp)
        assert answer.headers.get("x-content-type-options") == "nosniff", where
        assert answer.headers.get("referrer-policy") == "same-origin", where
        assert answer.headers.get("x-frame-options") == "DENY", where


def test_the_console_pages_have_no_inline_script_or_style(world: DeskWorld) -> None:
    with TestClient(desk_app(world)) as http:
        pages = [
            http.get("/console/login").text,
            http.get("/console/queue", headers=cookie(world, "gina")).text,
            http.get(f"/console/cases/{case_id('ana')}", headers=cookie(world, "gina")).text,
        ]
    for html in pages:
        for script in re.findall(r"<script\b[^>]*>", html):
            assert re.search(r'\bsrc="/console/static/', script), script
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html)  # no inline body
        assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handlers
        assert not re.search(r"\sstyle\s*=", html)
        assert "javascript:" not in html


# --- guessing tokens ----------------------------------------------------------------------


def test_failed_logins_from_one_address_are_limited_with_429_and_retry_after(
    world: DeskWorld,
) -> None:
    app = desk_app(world)
    origin = {"Origin": "http://testserver"}
    with TestClient(app):  # runs the app's lifespan; the clients below share its state
        attacker = TestClient(app, client=("203.0.113.7", 40000), follow_redirects=False)
        answers = [
            attacker.post("/console/login", data={"token": f"esk_guess{n}"}, headers=origin)
            for n in range(40)
        ]
        codes = [answer.status_code for answer in answers]
        assert 429 in codes, codes
        first_limited = codes.index(429)
        assert set(codes[:first_limited]) == {401} and set(codes[first_limited:]) == {429}
        assert int(answers[-1].headers["retry-after"]) > 0
        # While limited, the address gets no answer about any token, valid or not, and the
        # API's bearer check is the same door.
        valid = {"token": world.tokens["gina"]}
        assert attacker.post("/console/login", data=valid, headers=origin).status_code == 429
        api = attacker.get("/v1/me", headers=world.auth("gina"))
        assert api.status_code == 429 and int(api.headers["retry-after"]) > 0
        # Another address is not punished for it.
        other = TestClient(app, client=("198.51.100.9", 40000), follow_redirects=False)
        assert other.post("/console/login", data=valid, headers=origin).status_code == 303


def test_bearer_token_guessing_on_the_api_is_limited_per_address(world: DeskWorld) -> None:
    app = desk_app(world)
    with TestClient(app):
        guesser = TestClient(app, client=("203.0.113.8", 40000))
        codes = [
            guesser.get("/v1/me", headers={"Authorization": f"Bearer esk_{n}"}).status_code
            for n in range(40)
        ]
    assert 429 in codes, codes
    assert set(codes[codes.index(429) :]) == {429}


def test_logins_of_one_agent_are_limited_whatever_the_address(world: DeskWorld) -> None:
    app = desk_app(world)
    origin = {"Origin": "http://testserver"}
    with TestClient(app):
        codes = []
        for n in range(40):
            client = TestClient(app, client=(f"192.0.2.{n + 1}", 40000), follow_redirects=False)
            answer = client.post(
                "/console/login", data={"token": world.tokens["gina"]}, headers=origin
            )
            codes.append(answer.status_code)
        assert 429 in codes, codes
        assert set(codes[: codes.index(429)]) == {303}
        assert int(answer.headers["retry-after"]) > 0
        # Other agents log in as usual.
        client = TestClient(app, client=("192.0.2.200", 40000), follow_redirects=False)
        root = client.post("/console/login", data={"token": world.tokens["root"]}, headers=origin)
        assert root.status_code == 303


def test_the_desk_command_passes_the_security_settings_on() -> None:
    from escalator.commands.desk import desk_app as command_app
    from escalator.settings import KafkaSettings, Settings
    from queues.desk.hardening import WebSecurity

    settings = Settings(
        database_url="sqlite://",
        desk_assigner=False,
        desk_plain_http=True,
        desk_login_failures_per_address=4,
        desk_logins_per_agent=3,
        desk_login_window_seconds=60,
    )
    app = command_app(settings, KafkaSettings())
    assert app.state.web_security == WebSecurity(
        plain_http=True, login_failures_per_address=4, logins_per_agent=3, window_seconds=60
    )
    assert command_app(Settings(database_url="sqlite://"), KafkaSettings()).state.web_security == (
        WebSecurity()
    )


def test_no_body_over_the_limit_is_read_whoever_sends_it(world: DeskWorld) -> None:
    """The desk had no overall bound: a gigabyte posted anywhere was read into memory first."""
    from queues.desk.hardening import MAX_BODY_BYTES

    huge = b"x" * (MAX_BODY_BYTES + 1)

    def chunked() -> Any:
        for start in range(0, len(huge), 65_536):
            yield huge[start : start + 65_536]

    with TestClient(desk_app(world)) as http:
        same_site = {**world.auth("gina"), "Origin": "http://testserver"}
        for path in ("/v1/me/heartbeat", "/console/login", "/webhooks/pagerduty"):
            declared = http.post(path, content=huge, headers=same_site)
            assert declared.status_code == 413, (path, declared.status_code, declared.text)
        streamed = http.post(
            f"/v1/cases/{case_id('ana')}/reply", content=chunked(), headers=same_site
        )
        assert streamed.status_code == 413, streamed.text
        # up to the limit the route itself answers (here: no such token, not a size refusal)
        form = {**same_site, "Content-Type": "application/x-www-form-urlencoded"}
        fits = http.post("/console/login", content=b"token=" + b"x" * 1_000_000, headers=form)
        assert fits.status_code not in (413, 500), fits.text

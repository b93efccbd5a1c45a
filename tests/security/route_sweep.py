"""Every route of an ASGI app, asked without credentials: who answers?

`routes` walks a FastAPI/Starlette app's route table (included routers and mounts too) and
`sweep` calls every method of every route with no credentials, a placeholder for each path
parameter and an empty JSON body, returning what each answered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.routing import Mount
from starlette.testclient import TestClient

PLACEHOLDER = "C-AAAAAAAAAA"


@dataclass(frozen=True)
class Answer:
    """One unauthenticated call and its status."""

    method: str
    path: str
    status: int


def routes(route_list: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every endpoint, descending into included routers and mounts."""
    for route in route_list:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from routes(included.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Mount):
            yield ("GET", f"{prefix}{route.path}/{PLACEHOLDER}")
        else:
            for method in sorted(getattr(route, "methods", None) or {"GET"}):
                if method != "HEAD":
                    yield (method, prefix + route.path)


def sweep(client: TestClient, table: Sequence[tuple[str, str]]) -> list[Answer]:
    """Call every route without credentials; path parameters get a placeholder."""
    answers = []
    for method, template in table:
        path = re.sub(r"\{[^}]+\}", PLACEHOLDER, template)
        response = client.request(method, path, json={}, follow_redirects=False)
        answers.append(Answer(method, template, response.status_code))
    return answers

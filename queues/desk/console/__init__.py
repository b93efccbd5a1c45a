"""The agent console: server-rendered pages of the desk (Jinja2 and a little plain JavaScript).

`mount_console` adds the pages under `/console`, their static files under
`/console/static`, and a redirect from `/` to the console, to a desk app.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from queues.desk.console import forms
from queues.desk.console.pages import PREFIX, STATIC_DIR, router

__all__ = ["PREFIX", "mount_console"]


def mount_console(app: FastAPI) -> None:
    """Serve the console from `app` (a desk app: it needs `app.state.desk`)."""
    app.include_router(router)
    app.include_router(forms.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="console-static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/queue", status_code=303)

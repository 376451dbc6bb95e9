"""The web UI: plain HTML, CSS and JavaScript files shipped in the package (static/), served under /ui/ by the
same app as the API they call. No build step and nothing from a CDN, so it works offline; the
Content-Security-Policy header holds the pages to that (only this server's own scripts, styles and API)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).with_name("static")
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


class UIFiles(StaticFiles):
    """The UI's files, each answered with the CSP and revalidated on every load (an upgrade shows at once)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Cache-Control"] = "no-cache"
        return response


def install(app: FastAPI) -> None:
    """/ui/ (the classify page first) and / sending a browser there."""
    app.mount("/ui", UIFiles(directory=STATIC, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

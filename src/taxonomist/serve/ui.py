"""The web UI: plain HTML, CSS and JavaScript files shipped in the package (static/), served under /ui/ by the
same app as the API they call. No build step and nothing from a CDN, so it works offline; the
Content-Security-Policy header holds the pages to that (only this server's own scripts, styles and API).
The API's documentation (/docs) is Swagger UI from the swagger-ui-bundle-v2 package (Connexion's), served from here
too: FastAPI's default loads it from a CDN and is blank offline."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse
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
    """/ui/ (the classify page first), / sending a browser there, and /docs."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/ui", UIFiles(directory=STATIC, html=True), name="ui")
    app.mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
                                   swagger_js_url="/docs/static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/static/swagger-ui.css",
                                   swagger_favicon_url="/docs/static/favicon-32x32.png")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

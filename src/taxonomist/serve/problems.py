"""Errors as RFC 7807 problem+json, the shape Annif (Connexion) answers with: `type`, `title`, `status` and a
string `detail` that says what was wrong. FastAPI's own 422 with a list in `detail` breaks Annif's clients, so
every validation failure here is a 400 with the first problem spelled out."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ..errors import TaxonomistError

PROBLEM = "application/problem+json"
log = logging.getLogger("taxonomist.serve")


class Problem(Exception):
    """Raised by a route to answer with this problem."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


def problem_body(status: int, title: str, detail: str) -> bytes:
    return json.dumps({"type": "about:blank", "title": title, "detail": detail, "status": status}).encode()


def problem(status: int, title: str, detail: str) -> Response:
    return Response(problem_body(status, title, detail), status_code=status, media_type=PROBLEM)


def bad_request(detail: str) -> Problem:
    return Problem(400, "Bad Request", detail)


TITLES = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
          413: "Payload Too Large", 503: "Service Unavailable"}


def validation_detail(error: RequestValidationError) -> str:
    """The first of pydantic's errors as one sentence: where (body.k, query.limit) and what."""
    errors = error.errors()
    if not errors:
        return "the request is not valid"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route takes at this path."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in app.router.routes:
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Every error the app can raise, answered as problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, error: Problem) -> Response:
        return problem(error.status, error.title, error.detail)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        return problem(400, "Bad Request", validation_detail(error))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> Response:
        title = TITLES.get(error.status_code, "Error")
        response = problem(error.status_code, title, str(error.detail))
        for name, value in (error.headers or {}).items():
            response.headers[name] = value
        if error.status_code == 405:  # Starlette names only the first matching route's methods
            response.headers["Allow"] = ", ".join(allowed_methods(app, request))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:  # a bug, not the client's input
        log.exception("%s %s failed", request.method, request.url.path)
        return problem(500, "Internal Server Error", f"the server failed on this request ({type(error).__name__}); "
                       "its log has the details")

    @app.exception_handler(TaxonomistError)
    async def _taxonomist(request: Request, error: TaxonomistError) -> Response:
        status = error.http_status
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, error)
        return problem(status, TITLES.get(status, "Error"), str(error).replace("\n  fix: ", "; fix: "))

"""The server: `create_app(projects, limits)` puts Annif's API (/v1), ours (/api), health and readiness and
problem+json errors behind one FastAPI app, with CORS open as Annif's and the body size limited first.

Models load in a background thread at start-up so the port answers at once; /ready says 200 only once every
project's model is in memory. With a feedback store, suggestions served are recorded and review.py's routes take
feedback; ui.py serves the web UI under /ui/.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from .. import __version__
from ..feedback import FeedbackStore
from . import annif, api, problems, review, ui
from .api import Health, Ready, problems as documented
from .limits import BodyLimit, Limits
from .problems import Problem
from .process import freeze_heap
from .projects import Projects

log = logging.getLogger("taxonomist.serve")


def load_all(projects: Projects, errors: dict[str, str]) -> None:
    """Every project's model, one after another; a failure is kept for /ready to report."""
    for project_id, served in projects.items():
        try:
            served.model  # noqa: B018 - loads it
        except Exception as error:  # reported by /ready; the server keeps answering for the others
            errors[project_id] = str(error)
            log.error("project %s: its model could not be loaded: %s", project_id, error)
    freeze_heap()


def create_app(projects: Projects, limits: Limits | None = None, *, store: FeedbackStore | None = None,
               load_on_start: bool = True) -> FastAPI:
    """`store`: the feedback store that suggestions served and reviewers' feedback go to (None: nothing is
    recorded and the feedback and review routes answer 404); the caller owns it and closes it."""
    limits = limits or Limits()
    load_errors: dict[str, str] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if load_on_start:
            threading.Thread(target=load_all, args=(projects, load_errors), daemon=True, name="load-models").start()
        yield

    # FastAPI's Swagger UI and ReDoc load their scripts from a CDN, blank offline: ui.py serves Swagger UI itself.
    app = FastAPI(title="taxonomist", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Annif's REST API under /v1 (see Annif's annif.yaml) and taxonomist's own under /api. "
                  f"Limits: bodies up to {limits.max_body_bytes:,} bytes, texts up to {limits.max_text_chars:,} "
                  f"characters, {limits.max_documents:,} documents per /api request (Annif's suggest-batch: 32), "
                  f"at most {limits.max_results:,} suggestions per document (larger limit or k are clamped).")
    app.state.projects, app.state.limits, app.state.store = projects, limits, store
    problems.install(app)
    app.include_router(annif.router(projects, limits, store))
    app.include_router(api.router(projects, limits, store))
    app.include_router(review.router(projects, limits, store))
    ui.install(app)

    @app.get("/health", response_model=Health, tags=["service"])
    def health() -> Health:
        """The process answers."""
        return Health(status="alive")

    @app.get("/ready", response_model=Ready, tags=["service"], responses=documented(503))
    def ready() -> Ready:
        """200 once every project's model is loaded; 503 before (or when one failed to load)."""
        waiting = [project_id for project_id, served in projects.items() if not served.loaded]
        if waiting:
            failed = [f"{project_id}: {load_errors[project_id]}" for project_id in waiting if project_id in load_errors]
            detail = f"models not loaded yet: {', '.join(waiting)}"
            raise Problem(503, "Service Unavailable", detail + (f"; failed: {'; '.join(failed)}" if failed else ""))
        return Ready(status="ready", projects=list(projects))

    _without_422(app)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(CORSMiddleware, allow_origins=["*"])  # as Annif's: outermost, so errors carry it too
    return app


def _without_422(app: FastAPI) -> None:
    """FastAPI documents a 422 on every route with input; here validation failures are the 400 problem+json that
    each route documents (problems.py)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

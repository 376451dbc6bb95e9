"""What one request may ask of the server, and the middleware that enforces the body size before any parsing.

Every limit is stated up front (`taxonomist serve --help`, the README) so that a client knows what will be
refused; asking past a limit is the client's mistake, answered 413 or 400 with problem+json, never a 5xx.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI reads the defaults without loading the web stack
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

ANNIF_BATCH = 32  # Annif's suggest-batch maxItems: its clients split their batches by it


@dataclass(frozen=True)
class Limits:
    """`max_body_bytes`: the largest request body (theses posted whole fit in the default 10 MiB);
    `max_text_chars`: the longest document text; `max_documents`: documents per request of our own API
    (Annif's suggest-batch keeps its own 32); `max_results`: the most suggestions per document — a larger
    `limit` or `k` is clamped to it, as Annif's own limit has no maximum."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_text_chars: int = 1_000_000
    max_documents: int = 256
    max_results: int = 1000

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 1:
                raise ValueError(f"the limit {name} must be at least 1, got {value}")


class BodyLimit:
    """Reads the request body up to the limit and hands it on whole; past the limit (by Content-Length or by
    the bytes that actually arrive) answers 413 problem+json without reading more."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send, size)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: int) -> None:
        from .problems import problem_body

        body = problem_body(413, "Payload Too Large",
                            f"the request body of {size:,} bytes or more is over this server's limit of "
                            f"{self.max_bytes:,} bytes; send less at once (split a batch), or start the server "
                            "with a larger --max-body-bytes")
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

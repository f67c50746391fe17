"""Request-size limit, accepted content types, and the bound on requests in progress.

The body limit is ASGI middleware so it holds for every route and every encoding: a
declared ``Content-Length`` over the limit is refused before a byte is read, and a
chunked body is cut off as soon as it passes the limit (nothing is buffered first).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCEPTED_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff", "image/gif",
                  "application/octet-stream", "multipart/form-data")


class _BodyTooLarge(Exception):
    pass


def _too_large(limit: int) -> tuple[Message, Message]:
    body = json.dumps({"error": "too_large", "message": f"request body is larger than {limit:,} bytes",
                       "max_body_bytes": limit}).encode()
    start = {"type": "http.response.start", "status": 413,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                         (b"connection", b"close")]}
    return start, {"type": "http.response.body", "body": body}


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            for message in _too_large(self.max_bytes):
                await send(message)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                for message in _too_large(self.max_bytes):
                    await send(message)


def media_type(content_type: str | None) -> str:
    """``'image/jpeg; charset=x'`` -> ``'image/jpeg'``; missing -> octet-stream."""
    return (content_type or "application/octet-stream").split(";", 1)[0].strip().lower()


def accepted(content_type: str | None) -> bool:
    return media_type(content_type) in ACCEPTED_TYPES


class Overloaded(Exception):
    """Too many requests in progress; answered 503 with ``Retry-After``."""


class Admission:
    """At most ``limit`` requests in progress (decoding, waiting, running, encoding).

    The bounded queue of the service: a request past the limit is refused at once
    instead of queueing without end (latency and memory would grow with the backlog).
    Used from the event loop only, so a plain counter is enough.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        if self.active >= self.limit:
            raise Overloaded(f"{self.active} requests in progress (limit {self.limit})")
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1

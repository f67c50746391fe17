"""Every error the service returns is JSON: ``{"error": CODE, "message": TEXT, ...details}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("styletrans.serving")

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_options",
              500: "internal_error", 503: "overloaded", 504: "timeout"}


class ServeError(Exception):
    """An HTTP error with a machine-readable ``code``, a human ``message`` and optional details."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 headers: dict[str, str] | None = None, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or HTTP_CODES.get(status, "error")
        self.message = message
        self.headers = headers or {}
        self.details = details


def error_response(status: int, message: str, *, code: str | None = None,
                   headers: dict[str, str] | None = None, **details: Any) -> JSONResponse:
    body = {"error": code or HTTP_CODES.get(status, "error"), "message": message, **details}
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """JSON for our errors, FastAPI's validation errors and Starlette's 404/405 (bugs: ``InternalErrorMiddleware``)."""

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return error_response(exc.status, exc.message, code=exc.code, headers=exc.headers, **exc.details)

    @app.exception_handler(RequestValidationError)
    async def invalid_options(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'] if p not in ('query', 'body'))}: {e['msg']}"
                    for e in exc.errors()]
        return error_response(422, "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code in (404, 405):  # no route: say which, and where the API is described
            message = f"{message}: {request.method} {request.url.path[:200]} (the API is described at /docs)"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))


class InternalErrorMiddleware:
    """A bug costs one request, never the server nor the connection: log it, answer 500 JSON.

    (Starlette's own handler for ``Exception`` answers too, but then re-raises, and the
    server drops the keep-alive connection.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started:
                raise  # half a response is out: only closing the connection can tell the client
            response = error_response(500, f"internal error ({type(exc).__name__}); see the server log")
            await response(scope, receive, send)

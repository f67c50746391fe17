"""Bearer-token checks: the API key for ``/v1/*``, the admin token for ``/v1/admin/*``."""

from __future__ import annotations

import secrets

from fastapi import Request

from styletrans.serving.errors import ServeError


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require_token(request: Request, expected: str | None, *, what: str = "API key") -> None:
    """Raise 401 unless the request carries ``Authorization: Bearer <expected>`` (no-op if ``expected`` is None)."""
    if expected is None:
        return
    token = bearer_token(request)
    # compare_digest: the time taken does not reveal how much of a guess was right
    if token is None or not secrets.compare_digest(token.encode(), expected.encode()):
        reason = "missing" if token is None else "wrong"
        raise ServeError(401, f"{reason} {what}: send 'Authorization: Bearer <token>'",
                         headers={"WWW-Authenticate": 'Bearer realm="styletrans"'})

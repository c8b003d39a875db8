"""Bearer-token check for every mutating API call.

No header (or not a bearer one) is 401 with `WWW-Authenticate: Bearer`, a wrong token is 403. Tokens are
compared in constant time and never written anywhere: not in logs, not in error bodies.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status


def require_token(request: Request) -> None:
    """FastAPI dependency: the request carries the service's API token."""
    expected = request.app.state.settings.api_token.get_secret_value()
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="this call changes state and needs the API token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the API token is not valid for this service")

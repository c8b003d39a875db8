"""Browser sessions of the pages: a signed cookie that stands for "this browser gave the service token",
a CSRF token per session, and one-shot flash messages.

The cookie never holds the token. It holds an issue time and a random nonce, signed with HMAC-SHA256 under a
key derived from a random secret and the token's SHA-256. The service keeps the secret in its database
(`session_secret`), so a session outlives a restart and works on every replica behind one load balancer;
changing the token ends every session, and a stolen database or log line gives nothing to forge one with
(the token is not in it). An app without a stored secret (tests mounting the pages alone) makes one per
process. The cookie is
HttpOnly (scripts cannot read it) and SameSite=Strict (another site's form does not carry it), and every
action form also carries a CSRF token, an HMAC of the session value, compared in constant time: an action
needs both. The service always has a token (settings refuse to start without one), so every action needs a
login; there is no open mode.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import quote, unquote

from fastapi import Request, Response

SESSION_COOKIE = "corpusmill_session"
FLASH_COOKIE = "corpusmill_flash"
SESSION_TTL_S = 12 * 3600
MAX_FLASH_CHARS = 300


SESSION_SECRET_NAME = "session-signing-key"


def new_secret() -> str:
    """A fresh signing secret, hex-encoded (what the database stores)."""
    return secrets.token_hex(32)


def _secret(request: Request) -> bytes:
    """The signing secret the app was given at start-up (from the database), or one made for this process."""
    state = request.app.state
    secret = getattr(state, "session_secret", None)
    if secret is None:
        secret = state.session_secret = bytes.fromhex(new_secret())
    return secret


def _key(request: Request) -> bytes:
    token = request.app.state.settings.api_token.get_secret_value()
    return hmac.new(_secret(request), hashlib.sha256(token.encode()).digest(), hashlib.sha256).digest()


def _sign(request: Request, payload: str) -> str:
    return hmac.new(_key(request), payload.encode(), hashlib.sha256).hexdigest()


def token_matches(request: Request, given: str) -> bool:
    """Whether `given` is the service's API token (constant-time)."""
    expected = request.app.state.settings.api_token.get_secret_value()
    return bool(given) and hmac.compare_digest(given.strip().encode(), expected.encode())


def new_session_value(request: Request) -> str:
    """A fresh signed session value: `<issued>.<nonce>.<mac>`."""
    payload = f"{int(time.time())}.{secrets.token_urlsafe(16)}"
    return f"{payload}.{_sign(request, payload)}"


def session_value(request: Request) -> str | None:
    """The request's session cookie when its signature holds and it has not expired; else None."""
    value = request.cookies.get(SESSION_COOKIE, "")
    payload, _, mac = value.rpartition(".")
    issued, _, _nonce = payload.partition(".")
    if not (payload and mac and issued.isdigit()):
        return None
    if not hmac.compare_digest(mac.encode(), _sign(request, payload).encode()):
        return None
    if time.time() - int(issued) > SESSION_TTL_S:
        return None
    return value


def logged_in(request: Request) -> bool:
    """Whether the browser has a valid session."""
    return session_value(request) is not None


def csrf_token(request: Request) -> str | None:
    """The CSRF token of the request's session (None without one), for the hidden field of action forms."""
    value = session_value(request)
    return None if value is None else _sign(request, f"csrf:{value}")


def csrf_ok(request: Request, given: str) -> bool:
    """Whether the request has a valid session and `given` is its CSRF token (constant-time)."""
    expected = csrf_token(request)
    return expected is not None and bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def set_session(response: Response, value: str) -> None:
    """Put the session on the response: HttpOnly, SameSite=Strict, for the whole site."""
    response.set_cookie(
        SESSION_COOKIE, value, max_age=SESSION_TTL_S, httponly=True, samesite="strict", path="/"
    )


def clear_session(response: Response) -> None:
    """End the browser's session."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def flash(response: Response, message: str) -> None:
    """A message for the next page the browser shows (after the 303 redirect of an action); URL-quoted, since
    a cookie holds ASCII only."""
    response.set_cookie(
        FLASH_COOKIE, quote(message[:MAX_FLASH_CHARS]), httponly=True, samesite="strict", path="/"
    )


def pending_flash(request: Request) -> str | None:
    """The flash message the browser brought, if any (clear it with `clear_flash` so it shows once)."""
    message = request.cookies.get(FLASH_COOKIE)
    return unquote(message) if message else None


def clear_flash(response: Response) -> None:
    """Drop the flash message once a page has shown it."""
    response.delete_cookie(FLASH_COOKIE, path="/", httponly=True, samesite="strict")

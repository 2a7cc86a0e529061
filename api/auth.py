"""Accounts, roles and access: argon2 passwords, cookie sessions with CSRF tokens, scoped API tokens for scripts.

Two doors, never mixed: the web pages authenticate with the session cookie (HttpOnly, SameSite=Lax) and every
POST form must carry the session's CSRF token; the JSON API authenticates with `Authorization: Bearer <token>`
only, so a browser's cookie can never be replayed against it cross-site. Passwords and tokens are never logged
or stored in clear.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request

from api.webstore import ROLES, User, WebStore

if TYPE_CHECKING:
    from indexer.store import Store

SESSION_COOKIE = "ptm_session"
SESSION_HOURS = 12
MIN_PASSWORD = 10
#: What an API token may do. A token's scopes are also limited by its user's role (ROLE_SCOPES).
SCOPES = {
    "read": "read matches of stored demands and patents",
    "patents:write": "add, update and delete patents",
    "demands:write": "post and delete demands",
}
ROLE_SCOPES = {"staff": set(SCOPES), "enterprise": {"read", "demands:write"}, "university": {"read", "patents:write"}}

_hasher = PasswordHasher()
# Verified when the user name is unknown, so a login takes as long for a wrong name as for a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password")


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def create_user(web: WebStore, username: str, role: str, org: str, password: str) -> User:
    username = username.strip()
    if not username or len(username) > 64:
        raise ValueError("the user name must have 1–64 characters")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role != "staff" and not org.strip():
        raise ValueError(f"a {role} account needs --org: the {'enterprise name' if role == 'enterprise' else 'applicant name (e.g. 浙江大学)'}")
    return web.add_user(username, role, org.strip(), hash_password(password))


def authenticate(web: WebStore, username: str, password: str) -> User | None:
    found = web.user_by_name(username.strip())
    try:
        _hasher.verify(found[1] if found else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if found is None:
        return None
    user, stored = found
    if _hasher.check_needs_rehash(stored):
        web.set_password_hash(user.id, _hasher.hash(password))
    return user


class LoginThrottle:
    """After MAX_FAILURES wrong passwords for one user name within WINDOW_S, refuse that name until the window
    passes: argon2 makes each guess slow, this makes a dictionary attack on one account hopeless. In memory,
    per process — a restart forgets, which is acceptable for a single-server deployment."""

    MAX_FAILURES = 5
    WINDOW_S = 15 * 60

    def __init__(self) -> None:
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, username: str) -> bool:
        with self._lock:
            recent = [t for t in self._failures.get(username, []) if time.monotonic() - t < self.WINDOW_S]
            self._failures[username] = recent
            return len(recent) >= self.MAX_FAILURES

    def failed(self, username: str) -> None:
        with self._lock:
            self._failures.setdefault(username, []).append(time.monotonic())

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username, None)


def start_session(web: WebStore, user: User) -> str:
    """A new session; returns the cookie value (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    expires = (datetime.now(timezone.utc) + timedelta(hours=SESSION_HOURS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    web.add_session(hash_secret(token), user.id, secrets.token_urlsafe(32), expires)
    return token


def create_token(web: WebStore, username: str, scopes: list[str], label: str = "") -> str:
    """A new API token for `username`; returned once, stored hashed."""
    found = web.user_by_name(username)
    if found is None:
        raise ValueError(f"no user named {username!r}; create it with `ptm user add`")
    user = found[0]
    if not scopes:
        raise ValueError(f"give at least one --scope: {', '.join(SCOPES)}")
    for s in scopes:
        if s not in SCOPES:
            raise ValueError(f"unknown scope {s!r}; scopes are {', '.join(SCOPES)}")
        if s not in ROLE_SCOPES[user.role]:
            raise ValueError(f"a {user.role} account cannot hold scope {s!r} (allowed: {', '.join(sorted(ROLE_SCOPES[user.role]))})")
    token = "ptm_" + secrets.token_urlsafe(32)
    web.add_token(hash_secret(token), user.id, sorted(set(scopes)), label)
    return token


@dataclass(frozen=True)
class Principal:
    """Who is calling the JSON API and what their token allows."""

    user: User
    scopes: frozenset[str]


def api_principal(request: Request, scope: str) -> Principal:
    """The token's owner, or 401 (no or unknown token) / 403 (token lacks `scope`)."""
    web: WebStore = request.app.state.web
    header = request.headers.get("authorization", "")
    kind, _, token = header.partition(" ")
    found = web.token(hash_secret(token.strip())) if kind.lower() == "bearer" and token.strip() else None
    if found is None:
        raise HTTPException(401, "an API token is required: `Authorization: Bearer <token>` (create one with `ptm token add USER --scope ...`)",
                            headers={"WWW-Authenticate": "Bearer"})
    user, scopes = found
    granted = frozenset(scopes) & ROLE_SCOPES[user.role]
    if scope not in granted:
        raise HTTPException(403, f"this token lacks the scope {scope!r}")
    return Principal(user, granted)


def require_scope(scope: str):
    """A FastAPI dependency: the caller's Principal holding `scope`."""
    def dependency(request: Request) -> Principal:
        return api_principal(request, scope)

    return dependency


def session_user(request: Request) -> tuple[User, str] | None:
    """(user, csrf token) of the browser's live session, or None."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    return request.app.state.web.session(hash_secret(cookie))


def csrf_ok(expected: str | None, sent: str | None) -> bool:
    return bool(expected and sent) and hmac.compare_digest(expected, sent)


def owns_patent(user: User, applicants: list[str]) -> bool:
    """A university account owns the patents whose applicants contain its name."""
    return user.role == "university" and bool(user.org) and any(user.org in a for a in applicants)


def may_write_patent(store: "Store", user: User, patent_id: str, applicants: list[str],
                     numbers: tuple[str, ...] = ()) -> bool:
    """Whether `user` may create or change the patent `patent_id`. A stored patent — found by its id or, as the
    store's merge finds it, by its application or publication number — must already name the university among
    its applicants (so a university cannot claim another's patent by re-posting it with its own name); a new
    patent must name it in `applicants`."""
    if user.role == "staff":
        return True
    stored = [p for p in [store.get("patents", patent_id)] if p is not None]
    numbers = tuple(n for n in numbers if n)
    if numbers:
        marks = ",".join("?" * len(numbers))
        ids = store.select_int_ids("patents", f"application_number IN ({marks}) OR publication_number IN ({marks})", numbers * 2)
        stored += list(store.get_by_int_ids("patents", ids).values())
    if stored:
        return all(owns_patent(user, p.applicants) for p in stored)
    return owns_patent(user, applicants)


def owns_demand(user: User, enterprise: str) -> bool:
    return user.role == "enterprise" and bool(user.org) and enterprise == user.org

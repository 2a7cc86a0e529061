"""Sessions, tokens and secrets: login rate limit, session expiry and logout, token scopes, tokens never accepted in
URLs, and passwords and tokens never in any log — checked on a real `ptm serve` (uvicorn's access log included)."""
from __future__ import annotations

import logging
import re

import httpx
import pytest

from api.auth import LoginThrottle, create_token, hash_secret
from tests.reliability.live_server import LiveServer
from tests.security.conftest import USERNAMES, World
from tests.web.helpers import PASSWORD


def _login_token(client) -> str:
    return re.findall(r'name="csrf" value="([^"]+)"', client.get("/login").text)[-1]


def test_login_rate_limit_blocks_the_name_even_with_the_right_password_until_the_window_passes(world: World, monkeypatch) -> None:
    from api.auth import create_user

    create_user(world.app.state.web, "throttled", "staff", "", PASSWORD)
    clock = [1000.0]
    monkeypatch.setattr("api.auth.time.monotonic", lambda: clock[0])
    anon, _ = world.caller("anonymous")
    for _ in range(LoginThrottle.MAX_FAILURES):
        assert anon.post("/login", data={"username": "throttled", "password": "wrong wrong", "csrf": _login_token(anon)}).status_code == 401
    r = anon.post("/login", data={"username": "throttled", "password": PASSWORD, "csrf": _login_token(anon)})
    assert r.status_code == 429 and "15 分钟" in r.text
    clock[0] += LoginThrottle.WINDOW_S + 1
    r = anon.post("/login", data={"username": "throttled", "password": PASSWORD, "csrf": _login_token(anon)})
    assert r.status_code == 303


def test_an_expired_session_is_refused_and_logout_ends_it_on_the_server(world: World) -> None:
    web = world.app.state.web
    client, csrf = world.caller("staff")
    assert client.get("/staff").status_code == 200
    cookie = client.cookies["ptm_session"]
    with web.connect() as con:
        con.execute("UPDATE sessions SET expires='2000-01-01T00:00:00Z' WHERE token_hash=?", (hash_secret(cookie),))
    r = client.get("/staff")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    client, csrf = world.caller("staff")
    cookie = client.cookies["ptm_session"]
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    replay, _ = world.caller("anonymous")
    replay.cookies.set("ptm_session", cookie)
    assert replay.get("/staff").status_code == 303  # the old cookie is dead server-side, not just deleted client-side


def test_token_scopes_limit_what_a_token_may_do(world: World) -> None:
    web = world.app.state.web
    read_only = create_token(web, USERNAMES["staff"], ["read"], label="read only")
    client, _ = world.caller("anonymous")
    client.headers["Authorization"] = f"Bearer {read_only}"
    assert client.get(f"/demands/{world.demand_id}/matches").status_code == 200
    r = client.post("/demands", json={"title": "x", "text": "我们需要锂电池防爆技术"})
    assert r.status_code == 403 and "demands:write" in r.json()["detail"]
    assert client.delete(f"/patents/{world.patent_id}").status_code == 403
    with pytest.raises(ValueError, match="cannot hold scope 'patents:write'"):
        create_token(web, USERNAMES["enterprise"], ["patents:write"])
    with pytest.raises(ValueError, match="unknown scope"):
        create_token(web, USERNAMES["staff"], ["admin"])


def test_tokens_are_never_accepted_in_urls_or_cookies(world: World) -> None:
    # Only the Authorization header counts: a token in a URL would end up in access logs and browser history.
    token = world.tokens["staff"]
    anon, _ = world.caller("anonymous")
    for params in ({"token": token}, {"access_token": token}, {"api_key": token}):
        assert anon.get(f"/demands/{world.demand_id}/matches", params=params).status_code == 401
    anon.cookies.set("ptm_session", token)
    assert anon.get(f"/demands/{world.demand_id}/matches").status_code == 401
    # The session cookie is not an API credential either (no cross-site replay of a browser's cookie).
    staff, _ = world.caller("staff")
    del staff.headers["Authorization"]
    assert staff.get(f"/demands/{world.demand_id}/matches").status_code == 401


def test_secrets_never_reach_logs(world: World, tmp_path, caplog, capfd) -> None:
    """A real server (uvicorn access log at info level) and the in-process app (caplog at DEBUG): sign in, fail a
    sign-in, call the API with tokens — neither the password, a wrong password, a token nor a cookie is logged."""
    import shutil

    home = tmp_path / "ws"
    shutil.copytree(world.app.state.engine.settings.home, home)
    wrong = "wrong-password-secret-42"
    secrets = [PASSWORD, wrong, *world.tokens.values()]
    with caplog.at_level(logging.DEBUG), LiveServer(home) as server:
        with httpx.Client(base_url=server.url, follow_redirects=False) as c:
            c.post("/login", data={"username": "ent1", "password": wrong, "csrf": _login_token(c)})
            assert c.post("/login", data={"username": "ent1", "password": PASSWORD, "csrf": _login_token(c)}).status_code == 303
            secrets.append(c.cookies["ptm_session"])
            assert c.get("/enterprise").status_code == 200
        for who in ("staff", "enterprise", "university"):
            r = httpx.get(f"{server.url}/demands/{world.demand_id}/matches", headers={"Authorization": f"Bearer {world.tokens[who]}"})
            assert r.status_code in (200, 403)
        httpx.get(f"{server.url}/health", headers={"Authorization": "Bearer ptm_not-a-real-token-secret"})
        secrets.append("ptm_not-a-real-token-secret")
        in_process, _ = world.caller("staff")
        in_process.post("/login", data={"username": "staff1", "password": wrong, "csrf": _login_token(in_process)})
        log = server.log.read_text(encoding="utf-8", errors="replace")
    assert '"GET /enterprise HTTP/1.1" 200' in log  # the access log was on: the check below saw real lines
    captured = capfd.readouterr()
    # The test's own HTTP client (httpx/httpcore) logs the headers it receives at DEBUG; the app never uses it.
    app_logs = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    for secret in secrets:
        for where, text in (("server log", log), ("caplog", app_logs), ("stdout", captured.out), ("stderr", captured.err)):
            assert secret not in text, f"a secret ({secret[:6]}…) appears in the {where}"
            assert hash_secret(secret) not in text, f"a secret's hash appears in the {where}"

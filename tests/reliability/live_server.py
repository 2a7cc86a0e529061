"""A real `ptm serve` (uvicorn) in a subprocess on 127.0.0.1, for the crash, concurrency and load harnesses.

The reliability tests need a server that can be SIGKILLed and restarted and that runs in its own process (so its
SQLite connections, threads and index snapshots are really separate from the test's). Only the loopback address
is ever used: these harnesses send traffic to nothing else.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from indexer.settings import REPO_ROOT

HOST = "127.0.0.1"
# Generous: the first request loads the model, which took the server up to 4 minutes on the shared CI machine.
CLIENT_TIMEOUT = 600.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (VmRSS), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class LiveServer:
    """`python -m api.cli --home HOME serve` on a free loopback port; `start()` waits until /health answers."""

    def __init__(self, home: Path, env: dict[str, str] | None = None, log: Path | None = None):
        self.home = Path(home)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.env = {**os.environ, **(env or {})}
        self.log = log or self.home.parent / f"server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 300.0) -> LiveServer:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "--home", str(self.home), "serve", "--host", HOST, "--port", str(self.port)],
                cwd=REPO_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; see {self.log}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the server did not answer /health within {timeout:g} s; see {self.log}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run, exactly like a power cut of the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """A normal stop (SIGINT, as Ctrl-C): uvicorn runs the app's shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


PASSWORD = "reliability harness pw"
ENTERPRISE = "可靠性测试企业"
UNIVERSITY = "可靠性测试大学"


def seed_accounts(db_path: Path) -> dict[str, str]:
    """Accounts `staff-rel`, `ent-rel` (ENTERPRISE) and `uni-rel` (UNIVERSITY), all with PASSWORD, and two fresh
    API tokens: the enterprise's (demands:write, read) and staff's (patents:write, demands:write, read)."""
    from api.auth import create_token, create_user
    from api.webstore import WebStore

    web = WebStore(db_path)
    if web.user_by_name("staff-rel") is None:
        create_user(web, "staff-rel", "staff", "", PASSWORD)
        create_user(web, "ent-rel", "enterprise", ENTERPRISE, PASSWORD)
        create_user(web, "uni-rel", "university", UNIVERSITY, PASSWORD)
    return {"staff": "staff-rel", "password": PASSWORD,
            "enterprise_token": create_token(web, "ent-rel", ["demands:write", "read"], "reliability"),
            "staff_token": create_token(web, "staff-rel", ["patents:write", "demands:write", "read"], "reliability")}


def sign_in(client: httpx.Client, username: str, password: str = PASSWORD) -> None:
    """Sign `client` in through the login form (double-submit CSRF); the session cookie stays in the client."""
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": password, "csrf": csrf_of(page.text)})
    if r.status_code != 303:
        raise RuntimeError(f"sign-in of {username} failed with HTTP {r.status_code}")


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]

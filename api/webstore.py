"""The web application's own tables in the workspace database: users, sessions, API tokens, interests, shortlist, jobs.

They live in the same SQLite file as patents and demands (so `ptm backup` carries them) but are created and
owned here, at app or CLI start, with CREATE TABLE IF NOT EXISTS: indexer/store.py needs no schema change and
the engine never reads them. Secrets are stored only as hashes (argon2 for passwords, SHA-256 for the random
session and API tokens, which have 256 bits of entropy so a slow hash adds nothing).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROLES = ("staff", "enterprise", "university")
ROLE_LABELS = {"staff": "转化中心工作人员", "enterprise": "企业", "university": "高校"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('staff', 'enterprise', 'university')),
    org TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    expires TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS interests (
    demand_id TEXT NOT NULL,
    patent_id TEXT NOT NULL,
    enterprise TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (demand_id, patent_id)
);
CREATE INDEX IF NOT EXISTS interests_patent ON interests(patent_id);
CREATE TABLE IF NOT EXISTS shortlist (
    demand_id TEXT NOT NULL,
    patent_id TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (demand_id, patent_id)
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    user_id INTEGER,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
"""


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    org: str  # enterprise name (enterprise) or applicant name (university); '' for staff

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    status: str  # queued / running / done / failed
    done: int
    total: int
    message: str
    user_id: int | None
    created: str
    updated: str

    def to_dict(self) -> dict:
        pct = 100 if self.status == "done" else int(100 * self.done / self.total) if self.total else 0
        return {"id": self.id, "kind": self.kind, "status": self.status, "done": self.done, "total": self.total,
                "percent": pct, "message": self.message, "finished": self.status in ("done", "failed")}


class WebStore:
    """Per-call connections (like indexer.store.Store), so one instance is shared by requests and job threads."""

    def __init__(self, db_path: Path):
        self.path = Path(db_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            con.executescript(_SCHEMA)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA foreign_keys=ON")
            yield con
        finally:
            con.close()

    # ---- users ------------------------------------------------------------------------------
    def add_user(self, username: str, role: str, org: str, password_hash: str) -> User:
        with self.connect() as con:
            try:
                uid = con.execute("INSERT INTO users(username, role, org, password_hash, created) VALUES (?,?,?,?,?)",
                                  (username, role, org, password_hash, now())).lastrowid
            except sqlite3.IntegrityError as exc:
                raise ValueError(f"a user named {username!r} already exists") from exc
        return User(uid, username, role, org)

    def user_by_name(self, username: str) -> tuple[User, str] | None:
        with self.connect() as con:
            row = con.execute("SELECT id, username, role, org, password_hash FROM users WHERE username=?", (username,)).fetchone()
        return (User(*row[:4]), row[4]) if row else None

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        with self.connect() as con:
            con.execute("UPDATE users SET password_hash=? WHERE id=?", (password_hash, user_id))

    def users(self) -> list[User]:
        with self.connect() as con:
            return [User(*r) for r in con.execute("SELECT id, username, role, org FROM users ORDER BY id")]

    def count_users(self, role: str | None = None) -> int:
        with self.connect() as con:
            if role:
                return con.execute("SELECT COUNT(*) FROM users WHERE role=?", (role,)).fetchone()[0]
            return con.execute("SELECT COUNT(*) FROM users").fetchone()[0]

    # ---- sessions and tokens ----------------------------------------------------------------
    def add_session(self, token_hash: str, user_id: int, csrf: str, expires: str) -> None:
        with self.connect() as con:
            con.execute("DELETE FROM sessions WHERE expires < ?", (now(),))  # housekeeping on each login
            con.execute("INSERT INTO sessions VALUES (?,?,?,?)", (token_hash, user_id, csrf, expires))

    def session(self, token_hash: str) -> tuple[User, str] | None:
        """(user, csrf token) of a live session."""
        with self.connect() as con:
            row = con.execute(
                "SELECT u.id, u.username, u.role, u.org, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id "
                "WHERE s.token_hash=? AND s.expires > ?", (token_hash, now())).fetchone()
        return (User(*row[:4]), row[4]) if row else None

    def delete_session(self, token_hash: str) -> None:
        with self.connect() as con:
            con.execute("DELETE FROM sessions WHERE token_hash=?", (token_hash,))

    def count_sessions(self) -> int:
        with self.connect() as con:
            return con.execute("SELECT COUNT(*) FROM sessions WHERE expires > ?", (now(),)).fetchone()[0]

    def add_token(self, token_hash: str, user_id: int, scopes: list[str], label: str) -> None:
        with self.connect() as con:
            con.execute("INSERT INTO api_tokens VALUES (?,?,?,?,?)", (token_hash, user_id, " ".join(scopes), label, now()))

    def token(self, token_hash: str) -> tuple[User, list[str]] | None:
        with self.connect() as con:
            row = con.execute(
                "SELECT u.id, u.username, u.role, u.org, t.scopes FROM api_tokens t JOIN users u ON u.id = t.user_id "
                "WHERE t.token_hash=?", (token_hash,)).fetchone()
        return (User(*row[:4]), row[4].split()) if row else None

    # ---- interests and shortlist ------------------------------------------------------------
    def add_interest(self, demand_id: str, patent_id: str, enterprise: str) -> bool:
        with self.connect() as con:
            return con.execute("INSERT OR IGNORE INTO interests VALUES (?,?,?,?)",
                               (demand_id, patent_id, enterprise, now())).rowcount == 1

    def remove_interest(self, demand_id: str, patent_id: str) -> None:
        with self.connect() as con:
            con.execute("DELETE FROM interests WHERE demand_id=? AND patent_id=?", (demand_id, patent_id))

    def interests(self, *, demand_id: str | None = None, patent_ids: list[str] | None = None) -> list[dict]:
        sql, params = "SELECT demand_id, patent_id, enterprise, created FROM interests", []
        if demand_id is not None:
            sql, params = sql + " WHERE demand_id=?", [demand_id]
        elif patent_ids is not None:
            if not patent_ids:
                return []
            sql, params = sql + f" WHERE patent_id IN ({','.join('?' * len(patent_ids))})", list(patent_ids)
        with self.connect() as con:
            rows = con.execute(sql + " ORDER BY created DESC", params).fetchall()
        return [dict(zip(("demand_id", "patent_id", "enterprise", "created"), r)) for r in rows]

    def shortlist(self, demand_id: str) -> list[str]:
        with self.connect() as con:
            return [r[0] for r in con.execute("SELECT patent_id FROM shortlist WHERE demand_id=? ORDER BY created", (demand_id,))]

    def set_shortlisted(self, demand_id: str, patent_id: str, on: bool) -> None:
        with self.connect() as con:
            if on:
                con.execute("INSERT OR IGNORE INTO shortlist VALUES (?,?,?)", (demand_id, patent_id, now()))
            else:
                con.execute("DELETE FROM shortlist WHERE demand_id=? AND patent_id=?", (demand_id, patent_id))

    def count(self, table: str) -> int:
        if table not in ("interests", "shortlist"):
            raise ValueError(table)
        with self.connect() as con:
            return con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    # ---- jobs -------------------------------------------------------------------------------
    def add_job(self, kind: str, user_id: int | None, total: int = 0, message: str = "排队中") -> int:
        with self.connect() as con:
            return con.execute("INSERT INTO jobs(kind, status, done, total, message, user_id, created, updated) "
                               "VALUES (?,?,?,?,?,?,?,?)", (kind, "queued", 0, total, message, user_id, now(), now())).lastrowid

    def update_job(self, job_id: int, **values: object) -> None:
        allowed = {"status", "done", "total", "message"}
        if not values or set(values) - allowed:
            raise ValueError(f"job fields are {allowed}")
        assignments = ", ".join(f"{k}=?" for k in values)  # names from the whitelist above
        with self.connect() as con:
            con.execute(f"UPDATE jobs SET {assignments}, updated=? WHERE id=?", (*values.values(), now(), job_id))

    def job(self, job_id: int) -> Job | None:
        with self.connect() as con:
            row = con.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return Job(*row) if row else None

    def jobs(self, limit: int = 10, user_id: int | None = None) -> list[Job]:
        with self.connect() as con:
            if user_id is None:
                rows = con.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            else:
                rows = con.execute("SELECT * FROM jobs WHERE user_id=? ORDER BY id DESC LIMIT ?", (user_id, limit)).fetchall()
        return [Job(*r) for r in rows]

    def fail_interrupted_jobs(self) -> None:
        """Jobs a previous server process left running can never finish; say so instead of spinning forever."""
        with self.connect() as con:
            con.execute("UPDATE jobs SET status='failed', message='服务重启，任务中断；请重新提交', updated=? "
                        "WHERE status IN ('queued', 'running')", (now(),))

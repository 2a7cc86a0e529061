"""SQLite store, the source of truth: patents and demands, upserts in one transaction, schema version."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from indexer.records import Demand, Patent

Kind = Literal["patents", "demands"]
KINDS: tuple[Kind, ...] = ("patents", "demands")
SCHEMA_VERSION = 1
_MODELS: dict[str, type[Patent] | type[Demand]] = {"patents": Patent, "demands": Demand}

# Each kind is one table; `int_id` is the int64 id FAISS stores, `id` the user's own id.
# Filterable patent fields are real columns (indexes later); the whole record is kept as JSON.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS patents (
    int_id INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    text_hash TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS demands (
    int_id INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    text_hash TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""


class StoreError(RuntimeError):
    """The workspace database cannot be used as it is; the message says why and what to do."""


@dataclass(frozen=True)
class UpsertCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_text(record: Patent | Demand) -> str:
    """The text that retrieval sees for a record; its hash tells the index what changed."""
    return record.text() if isinstance(record, Patent) else record.full_text()


class Store:
    """One SQLite file. Connections are per call so the store is safe to share across threads."""

    def __init__(self, path: Path, busy_timeout_s: float = 30.0):
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(_SCHEMA)
            row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(f"{self.path} was written by a newer version (schema {row[0]}); upgrade ptm")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        except sqlite3.Error as exc:  # e.g. a directory or unreadable file at that path
            raise StoreError(f"cannot open the database {self.path}: {exc}") from exc
        try:
            # WAL lets readers (matching, the web UI) run while an import writes.
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA foreign_keys=ON")
            yield con
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise StoreError(f"{self.path} is not a valid ptm database ({exc}); restore a backup or choose another --home") from exc
            raise
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE takes the write lock up front, so a second writer waits instead of failing mid-way."""
        with self._connect() as con:
            try:
                con.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                raise StoreError(
                    f"the database is busy: another import or edit held the write lock for over "
                    f"{self.busy_timeout_s:g} s; nothing was written — try again when it has finished"
                ) from exc
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def upsert(self, kind: Kind, records: Sequence[Patent | Demand]) -> UpsertCounts:
        """Insert or replace by user id, all or nothing. Unchanged records are not rewritten."""
        table = _table(kind)
        added = updated = unchanged = 0
        with self.transaction() as con:
            for rec in records:
                data = rec.model_dump_json()
                h = text_hash(record_text(rec))
                row = con.execute(f"SELECT data FROM {table} WHERE id=?", (rec.id,)).fetchone()
                if row is not None and kind == "demands":
                    data = _keep_created_at(row[0], data)
                if row is None:
                    con.execute(f"INSERT INTO {table}(id, text_hash, data) VALUES (?,?,?)", (rec.id, h, data))
                    added += 1
                elif json.loads(row[0]) == json.loads(data):
                    unchanged += 1
                else:
                    con.execute(
                        f"UPDATE {table} SET text_hash=?, data=?, updated_at=strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id=?",
                        (h, data, rec.id),
                    )
                    updated += 1
        return UpsertCounts(added, updated, unchanged)

    def delete(self, kind: Kind, ids: Iterable[str]) -> int:
        with self.transaction() as con:
            return sum(con.execute(f"DELETE FROM {_table(kind)} WHERE id=?", (i,)).rowcount for i in ids)

    def get(self, kind: Kind, record_id: str) -> Patent | Demand | None:
        with self._connect() as con:
            row = con.execute(f"SELECT data FROM {_table(kind)} WHERE id=?", (record_id,)).fetchone()
        return _MODELS[kind].model_validate_json(row[0]) if row else None

    def get_by_int_ids(self, kind: Kind, int_ids: Sequence[int]) -> dict[int, Patent | Demand]:
        out: dict[int, Patent | Demand] = {}
        model = _MODELS[kind]
        with self._connect() as con:
            for chunk in _chunks(list(int_ids), 500):
                marks = ",".join("?" * len(chunk))
                for iid, data in con.execute(f"SELECT int_id, data FROM {_table(kind)} WHERE int_id IN ({marks})", chunk):
                    out[iid] = model.model_validate_json(data)
        return out

    def int_id(self, kind: Kind, record_id: str) -> int | None:
        with self._connect() as con:
            row = con.execute(f"SELECT int_id FROM {_table(kind)} WHERE id=?", (record_id,)).fetchone()
        return row[0] if row else None

    def text_hashes(self, kind: Kind) -> dict[int, str]:
        """int_id → hash of the retrievable text: what the index must contain."""
        with self._connect() as con:
            return dict(con.execute(f"SELECT int_id, text_hash FROM {_table(kind)}"))

    def text_hashes_for(self, kind: Kind, int_ids: Sequence[int]) -> dict[int, str]:
        with self._connect() as con:
            marks = ",".join("?" * len(int_ids))
            return dict(con.execute(f"SELECT int_id, text_hash FROM {_table(kind)} WHERE int_id IN ({marks})", list(int_ids)))

    def texts(self, kind: Kind, int_ids: Sequence[int]) -> dict[int, str]:
        return {i: record_text(r) for i, r in self.get_by_int_ids(kind, int_ids).items()}

    def count(self, kind: Kind) -> int:
        with self._connect() as con:
            return con.execute(f"SELECT COUNT(*) FROM {_table(kind)}").fetchone()[0]

    def list(self, kind: Kind, limit: int = 100, offset: int = 0) -> list[Patent | Demand]:
        with self._connect() as con:
            rows = con.execute(f"SELECT data FROM {_table(kind)} ORDER BY int_id LIMIT ? OFFSET ?", (limit, offset)).fetchall()
        return [_MODELS[kind].model_validate_json(r[0]) for r in rows]


def _table(kind: str) -> str:
    # Table names cannot be bound parameters; this whitelist is what keeps the f-strings safe.
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind


def _keep_created_at(old_json: str, new_json: str) -> str:
    # created_at is stamped at parse time; a demand keeps the time it was first posted.
    new = json.loads(new_json)
    new["created_at"] = json.loads(old_json).get("created_at", new.get("created_at"))
    return json.dumps(new, ensure_ascii=False)


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]

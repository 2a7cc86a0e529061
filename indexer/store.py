"""SQLite store, the source of truth: patents and demands, upserts in one transaction, schema version and migrations."""
from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from indexer.records import Demand, Patent
from indexer.value import patent_value

Kind = Literal["patents", "demands"]
KINDS: tuple[Kind, ...] = ("patents", "demands")
SCHEMA_VERSION = 3
_MODELS: dict[str, type[Patent] | type[Demand]] = {"patents": Patent, "demands": Demand}

# Each kind is one table; `int_id` is the int64 id FAISS stores, `id` the user's own id. The whole record
# is kept as JSON; this is the version-1 layout, and _MIGRATIONS brings any database (new or old) up to
# SCHEMA_VERSION, so a fresh database and an upgraded one cannot drift apart.
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

# Version 2: the patent fields staff filter on are real columns, derived from the JSON record on every write.
# ipc is ";A01B1/00;H04N5/225;" so a prefix test is instr(ipc, ';H04N') > 0; dates are ISO text.
FILTER_COLUMNS: dict[str, str] = {
    "legal_status": "TEXT", "patent_type": "TEXT", "applicant_type": "TEXT", "region": "TEXT",
    "transferable": "INTEGER", "application_date": "TEXT", "ipc": "TEXT", "value_score": "REAL",
}
# Both numbers, so an export that identifies a patent by the other number finds the stored record.
NUMBER_COLUMNS: dict[str, str] = {"application_number": "TEXT", "publication_number": "TEXT"}
_INDEXED_COLUMNS = ("legal_status", "patent_type", "applicant_type", "application_date", "value_score",
                    "application_number", "publication_number")


def derived_columns(patent: Patent, today: date | None = None) -> dict[str, object]:
    """The values of FILTER_COLUMNS and NUMBER_COLUMNS for a patent (value_score as of `today`)."""
    return {
        "application_number": patent.application_number or None,
        "publication_number": patent.publication_number or None,
        "legal_status": patent.legal_status, "patent_type": patent.patent_type,
        "applicant_type": patent.applicant_type, "region": patent.region,
        "transferable": int(patent.transferable),
        "application_date": patent.application_date.isoformat() if patent.application_date else None,
        "ipc": ";" + "".join(f"{code};" for code in patent.ipc),
        "value_score": patent_value(patent, today).total,
    }


def _set_derived_columns(con: sqlite3.Connection, int_id: int, patent: Patent) -> None:
    values = derived_columns(patent)
    # Column names come from the constants above, never from input; only values are bound.
    assignments = ", ".join(f"{name}=?" for name in values)
    con.execute(f"UPDATE patents SET {assignments} WHERE int_id=?", (*values.values(), int_id))


def _migrate_1_to_2(con: sqlite3.Connection) -> None:
    for name, sql_type in {**FILTER_COLUMNS, **NUMBER_COLUMNS}.items():
        con.execute(f"ALTER TABLE patents ADD COLUMN {name} {sql_type}")
    for name in _INDEXED_COLUMNS:
        con.execute(f"CREATE INDEX IF NOT EXISTS patents_{name} ON patents({name})")
    for int_id, data in con.execute("SELECT int_id, data FROM patents").fetchall():
        _set_derived_columns(con, int_id, Patent.model_validate_json(data))


# Version 3: the centre's ledger (indexer/ledger.py) — matchmaking sessions and the deals that follow them,
# in the same file so `ptm backup` covers them. deals.patent_id is the user id, deliberately not a foreign
# key: a deal stays on record (and in the reports) even when the patent is later removed from the catalogue.
# The table is matchmaking_sessions, not sessions: api/webstore.py keeps its login sessions in this same file.
_LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS matchmaking_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    date TEXT,
    venue TEXT NOT NULL DEFAULT '',
    theme_json TEXT NOT NULL DEFAULT '{}',
    limits_json TEXT NOT NULL DEFAULT '{}',
    plan_json TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS deals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    patent_id TEXT NOT NULL,
    enterprise TEXT NOT NULL,
    demand_id TEXT,
    session_id INTEGER REFERENCES matchmaking_sessions(id) ON DELETE SET NULL,
    stage TEXT NOT NULL,
    kind TEXT,
    amount_wan REAL,
    engine_rank INTEGER,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (patent_id, enterprise)
);
CREATE INDEX IF NOT EXISTS deals_stage ON deals(stage);
CREATE INDEX IF NOT EXISTS deals_session ON deals(session_id);
CREATE TABLE IF NOT EXISTS deal_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deal_id INTEGER NOT NULL REFERENCES deals(id) ON DELETE CASCADE,
    stage TEXT NOT NULL,
    kind TEXT,
    amount_wan REAL,
    on_date TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    user TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS deal_events_deal ON deal_events(deal_id);
"""


def _migrate_2_to_3(con: sqlite3.Connection) -> None:
    # executescript would COMMIT the migration's open transaction; one statement at a time keeps it atomic.
    for statement in _LEDGER_SCHEMA.split(";"):
        if statement.strip():
            con.execute(statement)


#: from-version → the step that upgrades it by one, inside the opening transaction.
_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_1_to_2, 2: _migrate_2_to_3}


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
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', '1')")
        self._migrate()

    def schema_version(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])

    def _migrate(self) -> None:
        """Upgrade in place, one version per transaction; the version is re-read under the write lock so two
        processes opening an old database at once migrate it once."""
        while (version := self.schema_version()) != SCHEMA_VERSION:
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} was written by a newer version (schema {version}); upgrade ptm")
            with self.transaction() as con:
                current = int(con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
                if current != version:
                    continue
                _MIGRATIONS[version](con)
                con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version + 1),))

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
    def transaction(self, rollback: bool = False) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE takes the write lock up front, so a second writer waits instead of failing mid-way.
        `rollback` undoes everything at the end: a preview that runs the real code but writes nothing."""
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
            con.execute("ROLLBACK" if rollback else "COMMIT")

    def upsert(self, kind: Kind, records: Sequence[Patent | Demand], dry_run: bool = False) -> UpsertCounts:
        """Insert or update by user id, all or nothing. Unchanged records are not rewritten. A patent that is
        already stored is merged: the fields the new record sets replace the stored ones, the others are kept
        (see merge). `dry_run` counts what would change and writes nothing."""
        table = _table(kind)
        model = _MODELS[kind]
        added = updated = unchanged = 0
        with self.transaction(rollback=dry_run) as con:
            for rec in records:
                row = con.execute(f"SELECT int_id, data FROM {table} WHERE id=?", (rec.id,)).fetchone()
                if row is None and isinstance(rec, Patent):
                    row = _same_patent(con, rec)
                old = model.model_validate_json(row[1]) if row else None
                if old is not None:
                    rec = merge(old, rec)
                data = rec.model_dump_json()
                h = text_hash(record_text(rec))
                if row is None:
                    int_id = con.execute(f"INSERT INTO {table}(id, text_hash, data) VALUES (?,?,?)", (rec.id, h, data)).lastrowid
                    added += 1
                elif old.model_dump() == rec.model_dump():
                    int_id = row[0]
                    unchanged += 1
                else:
                    int_id = row[0]
                    con.execute(
                        f"UPDATE {table} SET text_hash=?, data=?, updated_at=strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id=?",
                        (h, data, rec.id),
                    )
                    updated += 1
                # Also for unchanged patents: the value score's remaining term moves with the calendar.
                if isinstance(rec, Patent):
                    _set_derived_columns(con, int_id, rec)
        return UpsertCounts(added, updated, unchanged)

    def select_int_ids(self, kind: Kind, where: str, params: Sequence[object]) -> list[int]:
        """int_ids of the rows matching a WHERE clause over FILTER_COLUMNS. The clause is built by code
        (matcher/filters.py) from fixed column names and `?` placeholders; every value is in `params`."""
        with self._connect() as con:
            return [r[0] for r in con.execute(f"SELECT int_id FROM {_table(kind)} WHERE {where}", list(params))]

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

    def value_scores(self, int_ids: Sequence[int]) -> dict[int, float]:
        """Patent int_id → stored value score (0–100), for the optional ranking prior."""
        out: dict[int, float] = {}
        with self._connect() as con:
            for chunk in _chunks(list(int_ids), 500):
                marks = ",".join("?" * len(chunk))
                out.update(con.execute(f"SELECT int_id, value_score FROM patents WHERE int_id IN ({marks})", chunk))
        return {i: v for i, v in out.items() if v is not None}

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


def _same_patent(con: sqlite3.Connection, patent: Patent) -> tuple[int, str] | None:
    """(int_id, data) of a stored patent that shares an application or publication number with `patent`
    although its id differs: one export keyed it by 公开号, another only has the 申请号 or 专利号."""
    numbers = [n for n in (patent.application_number, patent.publication_number) if n]
    if not numbers:
        return None
    marks = ",".join("?" * len(numbers))
    return con.execute(
        f"SELECT int_id, data FROM patents WHERE application_number IN ({marks}) OR publication_number IN ({marks})"
        f" OR id IN ({marks}) ORDER BY int_id LIMIT 1", numbers * 3,
    ).fetchone()


def merge(old: Patent | Demand, new: Patent | Demand) -> Patent | Demand:
    """The record to store when `new` arrives for a stored `old`.

    Patents: the fields `new` was given (pydantic's model_fields_set; readers leave blank cells out) replace
    the stored ones and the rest are kept, so a second export of the same patent with other columns adds
    to the record instead of erasing what the first brought. Demands are replaced whole, except that they
    keep the time they were first posted (created_at is stamped at parse time).
    """
    if isinstance(new, Patent):
        # The stored id wins: the record may have been found by its other number (_same_patent).
        return old.model_copy(update={name: getattr(new, name) for name in new.model_fields_set - {"id"}})
    return new.model_copy(update={"created_at": old.created_at})


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]

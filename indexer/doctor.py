"""`ptm doctor`: checks that the store and each kind's live index generation agree, and repairs drift by a rebuild.

What is checked, per kind: CURRENT names an existing, complete generation; the manifest count, the FAISS ntotal
and the docs.jsonl rows agree (and FAISS holds exactly the listed ids); the FAISS dimension is the manifest's; the
manifest's model signature and tokenizer are the current settings'; the generation holds exactly the store's
int_ids with the store's text hashes (missing / extra / stale); no temp folders are left by a killed sync.
With `PTM_BACKEND=qdrant` the collection's metadata (count, model, tokenizer) and its points' hashes are checked
the same way. For the workspace: SQLite `PRAGMA integrity_check`.

Problem codes fall in two groups. *Drift* ("no_index", "missing", "extra", "stale") is what an interrupted or
not-yet-run `ptm index` leaves: the live generation is complete, only behind the store. "leftover" is debris of a
killed sync. Everything else means the generation (or the database) itself is wrong.
"""
from __future__ import annotations

import fcntl
import json
import shutil
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

from indexer import index as index_mod
from indexer.settings import Settings
from indexer.store import KINDS, Kind

DRIFT_CODES = frozenset({"no_index", "missing", "extra", "stale"})
EXAMPLES = 5  # ids shown per problem

_REBUILD = "run `ptm doctor --repair` (or `ptm index --rebuild`)"
_SYNC = "run `ptm index` (or `ptm doctor --repair`)"


@dataclass(frozen=True)
class Problem:
    kind: str  # "patents", "demands" or "store"
    code: str
    message: str  # what is wrong and what to do
    count: int = 0
    examples: tuple[int | str, ...] = ()

    @property
    def drift(self) -> bool:
        return self.code in DRIFT_CODES

    def __str__(self) -> str:
        more = f" (e.g. {', '.join(map(str, self.examples))})" if self.examples else ""
        return f"{self.kind}: {self.message}{more}"


@dataclass
class DoctorReport:
    problems: list[Problem] = field(default_factory=list)
    kinds: dict[str, dict] = field(default_factory=dict)  # per kind: store count, generation, index count
    repaired: bool = False

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def codes(self) -> set[str]:
        return {p.code for p in self.problems}

    def to_dict(self) -> dict:
        return {"healthy": self.healthy, "repaired": self.repaired, "kinds": self.kinds,
                "problems": [{**asdict(p), "examples": list(p.examples)} for p in self.problems]}

    def format(self) -> str:
        lines = [f"{kind}: {info['store']} stored, {info['indexed']} indexed"
                 f" ({info['generation'] or 'no generation'})" for kind, info in self.kinds.items()]
        if self.healthy:
            lines.append("healthy: the store and the indexes agree" + (" (after repair)" if self.repaired else ""))
        else:
            lines.append(f"{len(self.problems)} problem(s):")
            lines.extend(f"  - {p}" for p in self.problems)
        return "\n".join(lines)


def check(settings: Settings) -> DoctorReport:
    """Inspect the workspace; writes nothing (the database is opened read-only)."""
    report = DoctorReport()
    if not settings.db_path.is_file():
        report.problems.append(Problem("store", "no_database", f"no database at {settings.db_path}; "
                                       "run `ptm ingest` to create one or `ptm restore BACKUP` to bring one back"))
        return report
    store_problem = _integrity(settings.db_path)
    if store_problem:
        report.problems.append(store_problem)
        return report  # the store is the reference for everything else: nothing more can be trusted
    hashes = {kind: _store_hashes(settings.db_path, kind) for kind in KINDS}
    for kind in KINDS:
        info, problems = _check_kind(settings, kind, hashes[kind])
        report.kinds[kind] = info
        report.problems.extend(problems)
    return report


def repair(settings: Settings) -> DoctorReport:
    """Rebuild every index from the store (the source of truth) and check again. A damaged database is not
    something a rebuild can fix: that is reported, and nothing is rebuilt from it."""
    from indexer.pipeline import sync_index

    before = check(settings)
    if before.healthy or any(p.kind == "store" for p in before.problems):
        return before
    sync_index(settings, rebuild=True)
    for kind in KINDS:
        with index_mod.writer_lock(settings.index_dir, kind):  # no sync is writing: temp files are debris
            for path in _temp_files(index_mod.kind_dir(settings.index_dir, kind)):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
    after = check(settings)
    after.repaired = True
    return after


# ---- checks -------------------------------------------------------------------------------------
def _connect_ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)


def _integrity(db: Path) -> Problem | None:
    fix = f"restore a backup (`ptm restore BACKUP --force`); the current file is {db}"
    try:
        con = _connect_ro(db)
        try:
            rows = [r[0] for r in con.execute("PRAGMA integrity_check")]
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        return Problem("store", "integrity", f"the database cannot be read ({exc}); {fix}")
    if rows != ["ok"]:
        return Problem("store", "integrity", f"SQLite integrity_check failed: {'; '.join(rows[:3])}; {fix}")
    if not set(KINDS) <= tables:
        return Problem("store", "integrity", f"the database lacks the tables {', '.join(sorted(set(KINDS) - tables))}; "
                       "it is not a ptm database: " + fix)
    return None


def _store_hashes(db: Path, kind: Kind) -> dict[int, str]:
    con = _connect_ro(db)
    try:
        return dict(con.execute(f"SELECT int_id, text_hash FROM {kind}"))  # kind is one of KINDS
    finally:
        con.close()


def _check_kind(settings: Settings, kind: Kind, want: dict[int, str]) -> tuple[dict, list[Problem]]:
    if settings.backend == "qdrant":
        return _check_qdrant_kind(settings, kind, want)
    base = index_mod.kind_dir(settings.index_dir, kind)
    gen_name = index_mod.current_generation(settings.index_dir, kind)
    info = {"store": len(want), "generation": gen_name, "indexed": 0}
    problems = []
    left = _leftovers(base)
    if left:
        problems.append(Problem(kind, "leftover", f"{len(left)} temp file(s) left by an interrupted `ptm index`; {_SYNC} "
                                "to remove them", len(left), tuple(p.name for p in left[:EXAMPLES])))
    if gen_name is None:
        if want:
            problems.append(Problem(kind, "no_index", f"{len(want)} stored but never indexed; {_SYNC}", len(want)))
        return info, problems
    gen = base / gen_name
    if not gen.is_dir():
        return info, problems + [Problem(kind, "dangling", f"CURRENT names {gen_name}, which does not exist; {_REBUILD}")]
    try:
        manifest, have, dense = _read_parts(gen)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        return info, problems + [Problem(kind, "corrupt", f"{gen} cannot be read ({exc}); {_REBUILD}")]
    info["indexed"] = len(have)
    problems += _check_generation(kind, gen, manifest, have, dense, settings)
    problems += _check_drift(kind, want, have)
    return info, problems


def _read_parts(gen: Path) -> tuple[dict, dict[int, str], object]:
    """manifest, int_id → hash from docs.jsonl, and the FAISS index of one generation; raises if a part is absent."""
    import faiss

    for part in ("manifest.json", "dense.faiss", "docs.jsonl"):
        if not (gen / part).is_file():
            raise FileNotFoundError(f"{part} is missing")
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    have: dict[int, str] = {}
    with open(gen / "docs.jsonl", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            have[doc["i"]] = doc["h"]
    if have and not (gen / "bm25").is_dir():
        raise FileNotFoundError("bm25/ is missing")
    return manifest, have, faiss.read_index(str(gen / "dense.faiss"))


def _check_generation(kind: Kind, gen: Path, manifest: dict, have: dict[int, str], dense, settings: Settings) -> list[Problem]:
    import faiss

    problems = []
    counts = {"manifest count": manifest.get("count"), "FAISS vectors": dense.ntotal, "docs.jsonl rows": len(have)}
    if len(set(counts.values())) != 1:
        problems.append(Problem(kind, "count_mismatch", f"{gen.name} is inconsistent ("
                                + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"); {_REBUILD}"))
    elif hasattr(dense, "id_map"):
        faiss_ids = set(faiss.vector_to_array(dense.id_map).tolist())
        odd = sorted(faiss_ids ^ set(have))
        if odd:
            problems.append(Problem(kind, "id_mismatch", f"{gen.name}: FAISS and docs.jsonl hold different ids; {_REBUILD}",
                                    len(odd), tuple(odd[:EXAMPLES])))
    if dense.d != manifest.get("dim"):
        problems.append(Problem(kind, "dim", f"{gen.name}: FAISS dimension {dense.d} but the manifest says "
                                f"{manifest.get('dim')}; {_REBUILD}"))
    return problems + _check_manifest(kind, gen.name, manifest, settings)


def _check_manifest(kind: Kind, name: str, manifest: dict, settings: Settings) -> list[Problem]:
    from indexer.pipeline import model_signature

    problems = []
    expected = {"format": index_mod.FORMAT_VERSION, "model": model_signature(settings),
                "tokenizer": index_mod.tokenizer_signature(settings.tokenizer)}
    for key, value in expected.items():
        if manifest.get(key) != value:
            problems.append(Problem(kind, key, f"{name} was built with {key} {manifest.get(key)!r}, the settings "
                                    f"want {value!r}; {_REBUILD}"))
    return problems


def _check_qdrant_kind(settings: Settings, kind: Kind, want: dict[int, str]) -> tuple[dict, list[Problem]]:
    """The same agreement for a Qdrant collection: its manifest (collection metadata) and its points' hashes."""
    from indexer.backends import get_backend

    try:
        snap = get_backend(settings).load_snapshot(settings, kind)
    except Exception as exc:  # noqa: BLE001 - an unreachable server or a broken collection: say which
        return {"store": len(want), "generation": None, "indexed": 0}, [Problem(
            kind, "corrupt", f"the Qdrant collection for {kind} cannot be read ({exc}); check PTM_QDRANT_URL, "
            f"then {_REBUILD}")]
    if snap is None:
        problems = [Problem(kind, "no_index", f"{len(want)} stored but never indexed; {_SYNC}", len(want))] if want else []
        return {"store": len(want), "generation": None, "indexed": 0}, problems
    name = f"qdrant:{snap.collection}/{snap.manifest['generation']}"
    info = {"store": len(want), "generation": name, "indexed": len(snap.hashes)}
    problems = []
    if snap.manifest.get("count") != len(snap.hashes):
        problems.append(Problem(kind, "count_mismatch", f"{name} is inconsistent (manifest count "
                                f"{snap.manifest.get('count')}, points {len(snap.hashes)}); {_REBUILD}"))
    return info, problems + _check_manifest(kind, name, snap.manifest, settings) + _check_drift(kind, want, snap.hashes)


def _check_drift(kind: Kind, want: dict[int, str], have: dict[int, str]) -> list[Problem]:
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    stale = sorted(i for i in set(want) & set(have) if want[i] != have[i])
    found = [("missing", missing, "stored but not in the index"), ("extra", extra, "in the index but no longer stored"),
             ("stale", stale, "changed in the store since they were indexed")]
    return [Problem(kind, code, f"{len(ids)} int_id(s) {what}; {_SYNC}", len(ids), tuple(ids[:EXAMPLES]))
            for code, ids, what in found if ids]


def _leftovers(base: Path) -> list[Path]:
    """Temp generations and pointer files of a killed sync; none while a sync holds the lock (they are its own)."""
    return [] if not base.is_dir() or _sync_running(base) else _temp_files(base)


def _temp_files(base: Path) -> list[Path]:
    return sorted([*base.glob(".tmp-*"), *base.glob(".CURRENT-*")])


def _sync_running(base: Path) -> bool:
    lock = base / ".lock"
    if not lock.exists():
        return False
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False

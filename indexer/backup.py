"""`ptm backup` / `ptm restore`: a consistent copy of a workspace (database, live index generations, embedding
cache) with a hashed manifest, and an all-or-nothing restore of one.

Layout of a backup folder (paths as in a workspace, so a restore is a plain copy):
    ptm.sqlite                    SQLite online-backup of the store: one transaction-consistent snapshot
    index/<kind>/CURRENT          the generation that was live
    index/<kind>/gen-NNNNNN/      a copy of it, taken under the index writer lock
    cache/embeddings.sqlite       online-backup of the embedding cache (left out with --no-cache)
    manifest.json                 created, ptm version, counts per kind, sha256 of every other file
The index is copied before the database, so it can only lag the store (what `ptm index` catches up), never run
ahead of it. With `PTM_BACKEND=qdrant` the collections live in Qdrant and are not copied (the manifest says
"backend": "qdrant"): after a restore, `ptm index` brings them in line with the restored store, re-embedding
nothing the restored embedding cache holds.

A running server holds <home>/.serving.lock (a shared flock, dropped by the kernel even on SIGKILL); `ptm restore`
takes it exclusively and refuses while a server has it, because a server would keep serving the index snapshots
and jobs of the workspace that was moved aside.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer import index as index_mod
from indexer.settings import Settings
from indexer.store import KINDS

MANIFEST = "manifest.json"
FORMAT = 1
DB_FILE = "ptm.sqlite"
CACHE_FILE = "cache/embeddings.sqlite"
SERVING_LOCK = ".serving.lock"


class BackupError(RuntimeError):
    """A backup cannot be taken or restored as asked; the message says why and what to do."""


def backup(settings: Settings, dest: Path, include_cache: bool = True) -> dict:
    """Write a backup of the workspace to `dest` (a new or empty folder); returns its manifest."""
    dest = Path(dest)
    if _non_empty(dest):
        raise BackupError(f"{dest} already exists and is not empty; choose a new folder for the backup")
    if not settings.db_path.is_file():
        raise BackupError(f"no database at {settings.db_path}; nothing to back up (check --home)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        generations = {kind: _copy_live_generation(settings.index_dir, kind, tmp / "index") for kind in KINDS}
        sqlite_snapshot(settings.db_path, tmp / DB_FILE)
        if include_cache and settings.embedding_cache.is_file():
            sqlite_snapshot(settings.embedding_cache, tmp / CACHE_FILE)
        manifest = {
            "format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "ptm_version": _version(),
            "home": str(settings.home.resolve()), "cache": include_cache and (tmp / CACHE_FILE).is_file(),
            "backend": settings.backend,
            "counts": _counts(tmp, generations),
            "files": {rel: _sha256(tmp / rel) for rel in _files(tmp)},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        index_mod._fsync_tree(tmp)
        if dest.exists():
            dest.rmdir()  # empty: checked above
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def verify(src: Path) -> dict:
    """The manifest of the backup at `src` once every listed file is present with its recorded sha256."""
    src = Path(src)
    try:
        manifest = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
        files: dict[str, str] = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{src} is not a ptm backup: {MANIFEST} is missing or unreadable ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{src} has backup format {manifest.get('format')!r}; this ptm reads format {FORMAT}")
    bad = []
    for rel, digest in files.items():
        path = src / rel
        if not _safe_relative(rel):
            bad.append(f"{rel} (path leaves the backup)")
        elif not path.is_file():
            bad.append(f"{rel} (missing)")
        elif _sha256(path) != digest:
            bad.append(f"{rel} (sha256 differs)")
    if DB_FILE not in files:
        bad.append(f"{DB_FILE} (not listed)")
    if bad:
        raise BackupError(f"the backup at {src} is damaged, nothing was restored: {'; '.join(bad[:10])}"
                          + (f" and {len(bad) - 10} more" if len(bad) > 10 else "") + "; use another backup")
    return manifest


def restore(settings: Settings, src: Path, force: bool = False) -> tuple[dict, Path | None]:
    """Replace the workspace with the backup at `src`, all at once: the files are copied and re-hashed into a
    staging folder next to the home, then renamed into place. A non-empty home is refused unless `force`; then
    it is moved aside first. Returns the manifest and where the old workspace went (None if there was none)."""
    manifest = verify(src)
    home = Path(settings.home)
    if _non_empty(home) and not force:
        raise BackupError(f"{home} is not empty; pass --force to restore anyway "
                          f"(the current workspace is moved to {home.name}.before-restore-<time>)")
    home.parent.mkdir(parents=True, exist_ok=True)
    with _no_server(home):
        return manifest, _swap_in(manifest, Path(src), home)


def _swap_in(manifest: dict, src: Path, home: Path) -> Path | None:
    """Copy the backup's files next to `home`, re-check their hashes, then rename them into place; returns
    where the old workspace went."""
    staging = home.parent / f".{home.name}.restore-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    aside: Path | None = None
    try:
        for rel, digest in manifest["files"].items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, target)
            if _sha256(target) != digest:  # the backup changed after verify
                raise BackupError(f"{rel} changed while it was restored; nothing was restored, try again")
        index_mod._fsync_tree(staging)
        if _non_empty(home):
            aside = home.with_name(f"{home.name}.before-restore-{time.strftime('%Y%m%d-%H%M%S')}")
            os.rename(home, aside)
        elif home.exists():
            home.rmdir()
        try:
            os.rename(staging, home)
        except OSError:
            if aside is not None:
                os.rename(aside, home)  # put the old workspace back
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return aside


@contextmanager
def serving(home: Path) -> Iterator[None]:
    """Held by a running server for its lifetime (shared, so several server processes may share a workspace).
    Refuses to start while a restore is swapping the workspace."""
    Path(home).mkdir(parents=True, exist_ok=True)
    with open(Path(home) / SERVING_LOCK, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"a restore is replacing {home}; start the server again when it has finished") from None
        yield


@contextmanager
def _no_server(home: Path) -> Iterator[None]:
    """Exclusive hold of the serving lock during a restore; refused while a server runs on `home`."""
    if not _non_empty(home):  # nothing there, so nothing is being served
        yield
        return
    with open(home / SERVING_LOCK, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"a server (`ptm serve`) is running on {home}; nothing was restored — stop the server, "
                              "run the restore again, then start the server") from None
        yield


def sqlite_snapshot(src: Path, dest: Path) -> None:
    """Copy a live SQLite database with the online backup API: one consistent state, even while others write."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)  # all pages in one step, under one read transaction
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    finally:
        target.close()
        source.close()


def _copy_live_generation(index_dir: Path, kind: str, dest_index: Path) -> str | None:
    """Copy the live generation of `kind` and its CURRENT; under the writer lock, so no sync removes it meanwhile."""
    if index_mod.current_generation(index_dir, kind) is None:
        return None
    with index_mod.writer_lock(index_dir, kind):
        gen = index_mod.current_generation(index_dir, kind)
        base = index_mod.kind_dir(index_dir, kind)
        if gen is None or not (base / gen).is_dir():
            raise BackupError(f"the {kind} index names {gen}, which does not exist; run `ptm doctor` first")
        out = dest_index / kind
        shutil.copytree(base / gen, out / gen)
        (out / "CURRENT").write_text(gen, encoding="utf-8")
    return gen


def _counts(root: Path, generations: dict[str, str | None]) -> dict[str, dict]:
    con = sqlite3.connect(root / DB_FILE)
    try:
        stored = {kind: con.execute(f"SELECT COUNT(*) FROM {kind}").fetchone()[0] for kind in KINDS}
    finally:
        con.close()
    out = {}
    for kind, gen in generations.items():
        indexed = 0
        if gen is not None:
            indexed = json.loads((root / "index" / kind / gen / "manifest.json").read_text(encoding="utf-8"))["count"]
        out[kind] = {"stored": stored[kind], "indexed": indexed, "generation": gen}
    return out


def _files(root: Path) -> list[str]:
    return sorted(rel for p in root.rglob("*") if p.is_file() and (rel := p.relative_to(root).as_posix()) != MANIFEST)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _safe_relative(rel: str) -> bool:
    p = Path(rel)
    return not p.is_absolute() and ".." not in p.parts


def _non_empty(path: Path) -> bool:
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("patent-transfer-matcher")
    except PackageNotFoundError:
        return "unknown"

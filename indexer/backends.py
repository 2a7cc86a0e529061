"""The index backend dispatcher: `Settings.backend` → the module that syncs, stores and loads the index.

Both backends keep the same contract (tests/indexer/test_backend_contract.py): `sync` embeds and tokenises
only new or changed texts and drops deleted ids; `load_snapshot` returns a `Snapshot` (or None before the
first sync) whose vectors, token lists, hashes and manifest (count, model, dim) the engine reads;
`current_generation` names what is live, so a reader knows when to reload.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, get_args

from indexer import index as index_mod
from indexer.settings import Backend, Settings

BACKENDS: tuple[str, ...] = get_args(Backend)


class IndexBackend(Protocol):
    def sync(self, settings: Settings, kind: str, inputs: index_mod.SyncInputs, rebuild: bool = False,
             progress: Callable[[int, int], None] | None = None) -> index_mod.SyncReport: ...

    def load_snapshot(self, settings: Settings, kind: str) -> index_mod.Snapshot | None: ...

    def current_generation(self, settings: Settings, kind: str) -> str | None: ...


class FaissBackend:
    """FAISS + bm25s generations on local disk (indexer/index.py), under `settings.index_dir`."""

    def sync(self, settings: Settings, kind: str, inputs: index_mod.SyncInputs, rebuild: bool = False,
             progress: Callable[[int, int], None] | None = None) -> index_mod.SyncReport:
        return index_mod.sync(settings.index_dir, kind, inputs, rebuild=rebuild, progress=progress)

    def load_snapshot(self, settings: Settings, kind: str) -> index_mod.Snapshot | None:
        return index_mod.load_snapshot(settings.index_dir, kind)

    def current_generation(self, settings: Settings, kind: str) -> str | None:
        return index_mod.current_generation(settings.index_dir, kind)


def get_backend(settings: Settings) -> IndexBackend:
    """The backend `settings.backend` names; Qdrant is imported only when chosen."""
    if settings.backend == "faiss":
        return FaissBackend()
    if settings.backend == "qdrant":
        from indexer.qdrant_index import QdrantBackend

        return QdrantBackend()
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {settings.backend!r}")

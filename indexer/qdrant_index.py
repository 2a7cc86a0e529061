"""The Qdrant index backend: one collection per kind holding each record's dense vector, its BM25 terms as a
sparse vector and its bookkeeping (text hash, tokens, words) as payload, synced incrementally with the store.

Where: `Settings.qdrant_url` (a server or cluster), else qdrant-client's local mode in `<index_dir>/qdrant`
(one process at a time — tests and single machines). Collections are `<qdrant_collection>_<kind>`; the
collection's metadata is the manifest (format, model, dim, tokenizer, count, avgdl, generation).

BM25 as sparse vectors: a token's index is a stable 32-bit hash of it; a document's value for a token is the
BM25 term-frequency part tf / (tf + k1·(1 − b + b·dl/avgdl)) with bm25s's k1 = 1.5, b = 0.75; Qdrant multiplies
by its IDF modifier ln(1 + (N − df + 0.5)/(df + 0.5)), which is bm25s's ("lucene") IDF; a query's value for a
token is its count, as bm25s sums repeated query tokens. Two differences from bm25s: avgdl is frozen at the
last full weighting (re-weighted when it drifts by more than AVGDL_TOLERANCE, where bm25s re-weights on every
sync), and two tokens whose hashes collide share one index.

Writes are in place (Qdrant upserts are atomic per point), not generation swaps: a reader that loads while a
sync runs may see part of it; the manifest's generation moves last, so it then reloads.
"""
from __future__ import annotations

import atexit
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer import index as index_mod
from indexer.settings import Settings

DENSE, SPARSE = "dense", "bm25"
K1, B = 1.5, 0.75  # bm25s defaults, so both backends rank alike
AVGDL_TOLERANCE = 0.05  # re-weight every document's BM25 values when the mean length drifts more than this
WRITE_BATCH = 256  # points per upsert request
SCROLL_BATCH = 1024

_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def collection_name(settings: Settings, kind: str) -> str:
    return f"{settings.qdrant_collection}_{kind}"


def local_path(settings: Settings) -> Path:
    return settings.index_dir / "qdrant"


def client_for(settings: Settings) -> "QdrantClient":  # noqa: F821 - qdrant_client is imported lazily
    """One client per server URL or local folder per process (local mode allows only one per folder)."""
    from qdrant_client import QdrantClient

    key = settings.qdrant_url or str(local_path(settings).resolve())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if settings.qdrant_url:
                client = QdrantClient(url=settings.qdrant_url)
            else:
                local_path(settings).mkdir(parents=True, exist_ok=True)
                try:
                    client = QdrantClient(path=str(local_path(settings)))
                except RuntimeError as exc:  # portalocker: another process has the folder open
                    raise index_mod.IndexStateError(
                        f"the local Qdrant folder {local_path(settings)} is in use by another process ({exc}); "
                        "stop it, or run a Qdrant server and set PTM_QDRANT_URL") from exc
            _clients[key] = client
        return client


def close_clients() -> None:
    """Close every cached client (releases local-mode folder locks); the next use opens a new one."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


# Closed before interpreter shutdown: a local client closed by its finaliser during shutdown prints an ImportError.
atexit.register(close_clients)


def token_id(token: str) -> int:
    """A stable 32-bit index for a token: the same in every process and on every node, with no vocabulary."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "little")


def term_counts(tokens: Iterable[str]) -> Counter:
    return Counter(token_id(t) for t in tokens)


def doc_sparse(tokens: Sequence[str], avgdl: float) -> tuple[list[int], list[float]]:
    """BM25 term-frequency weights of one document (Qdrant applies the IDF at query time)."""
    norm = K1 * (1 - B + B * len(tokens) / avgdl) if avgdl > 0 else K1
    counts = term_counts(tokens)
    return list(counts), [tf / (tf + norm) for tf in counts.values()]


def query_sparse(tokens: Sequence[str]) -> tuple[list[int], list[float]]:
    counts = term_counts(tokens)
    return list(counts), [float(c) for c in counts.values()]


@dataclass
class QdrantSnapshot(index_mod.Snapshot):
    """The bookkeeping of one generation (hashes, tokens, words, manifest) in memory; vectors and BM25 stay
    in Qdrant and are searched there. `dense` and `bm25` are None."""

    client: object = None
    collection: str = ""

    def vector(self, int_id: int) -> np.ndarray | None:
        found = self.client.retrieve(self.collection, [int(int_id)], with_vectors=[DENSE], with_payload=False)
        return np.asarray(found[0].vector[DENSE], dtype=np.float32) if found else None

    def dense_top(self, query_vectors: np.ndarray, k: int, allowed: np.ndarray | None = None
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(int_ids, cosines) best first per query row; `allowed` restricts the search to those int_ids."""
        return [self._top(np.asarray(q, dtype=np.float32).tolist(), DENSE, k, allowed) for q in query_vectors]

    def bm25_top(self, query_tokens: list[str], k: int, allowed: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        from qdrant_client import models

        indices, values = query_sparse(query_tokens)
        if not indices:
            return _empty()
        return self._top(models.SparseVector(indices=indices, values=values), SPARSE, k, allowed)

    def _top(self, query: object, using: str, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        from qdrant_client import models

        if k <= 0 or (allowed is not None and len(allowed) == 0):
            return _empty()
        where = None if allowed is None else models.Filter(must=[models.HasIdCondition(has_id=allowed.tolist())])
        hits = self.client.query_points(self.collection, query=query, using=using, limit=k, query_filter=where,
                                        with_payload=False).points
        return (np.asarray([h.id for h in hits], dtype=np.int64), np.asarray([h.score for h in hits], dtype=np.float32))


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)


class QdrantBackend:
    """The `IndexBackend` (indexer/backends.py) over Qdrant."""

    def current_generation(self, settings: Settings, kind: str) -> str | None:
        return _manifest(client_for(settings), collection_name(settings, kind)).get("generation")

    def load_snapshot(self, settings: Settings, kind: str) -> QdrantSnapshot | None:
        client, name = client_for(settings), collection_name(settings, kind)
        manifest = _manifest(client, name)
        if "generation" not in manifest:
            return None
        hashes, tokens, words = _read_payloads(client, name)
        return QdrantSnapshot(
            path=Path(f"qdrant:{name}") / manifest["generation"], manifest=manifest, dense=None, bm25=None,
            int_ids=np.asarray(sorted(hashes), dtype=np.int64), hashes=hashes, tokens=tokens, words=words,
            client=client, collection=name,
        )

    def sync(self, settings: Settings, kind: str, inputs: index_mod.SyncInputs, rebuild: bool = False,
             progress: Callable[[int, int], None] | None = None) -> index_mod.SyncReport:
        start = time.perf_counter()
        client, name = client_for(settings), collection_name(settings, kind)
        with index_mod.writer_lock(settings.index_dir, kind):
            manifest = _manifest(client, name)
            compatible = not rebuild and _compatible(manifest, inputs)
            hashes, tokens, words = _read_payloads(client, name) if compatible else ({}, {}, {})
            want = inputs.current_hashes()
            removed = [i for i in hashes if i not in want]
            todo = [i for i, h in want.items() if hashes.get(i) != h]
            added = sum(1 for i in todo if i not in hashes)
            if compatible and not todo and not removed:
                return index_mod.SyncReport(kind, unchanged=len(want), total=len(want),
                                            seconds=time.perf_counter() - start, generation=manifest["generation"])
            texts = inputs.fetch_texts(todo)
            missing = [i for i in todo if i not in texts]
            todo = [i for i in todo if i in texts]  # deleted meanwhile: the next sync catches up
            ordered = [texts[i] for i in todo]
            dim = manifest.get("dim") if compatible else None
            # Deleting only needs no model: the dimension is in the manifest.
            vectors = index_mod._embed(inputs.embed, ordered, progress) if ordered or dim is None else None
            if vectors is not None:
                if vectors.ndim != 2 or len(vectors) != len(todo) or (dim is not None and vectors.shape[1] != dim):
                    raise index_mod.IndexStateError(
                        f"the encoder returned shape {vectors.shape} for {len(todo)} texts but the {kind} index "
                        f"holds {dim}-dimensional vectors; run `ptm index --rebuild` after changing the model")
                dim = int(vectors.shape[1])
            if not compatible:
                _create(client, name, dim)

            for i in removed:
                tokens.pop(i, None)
                words.pop(i, None)
            new_tokens = inputs.tokenize(ordered)
            new_words = inputs.words(ordered) if inputs.words else new_tokens
            tokens.update(zip(todo, new_tokens))
            words.update(zip(todo, new_words))
            avgdl = _avgdl(tokens)
            old_avgdl = manifest.get("avgdl", 0.0) if compatible else 0.0
            if compatible and abs(avgdl - old_avgdl) <= AVGDL_TOLERANCE * old_avgdl:
                avgdl = old_avgdl  # keep every stored weight valid; below the tolerance the drift is noise
            else:
                fresh = set(todo)
                _reweigh(client, name, {i: t for i, t in tokens.items() if i not in fresh}, avgdl)
            _upsert(client, name, todo, vectors, new_tokens, new_words, [want[i] for i in todo], avgdl)
            if removed:
                from qdrant_client import models

                client.delete(name, points_selector=models.PointIdsList(points=removed), wait=True)
            generation = _next_generation(manifest.get("generation") if compatible else None)
            client.update_collection(name, metadata={
                "format": index_mod.FORMAT_VERSION, "kind": kind, "model": inputs.model, "dim": dim,
                "tokenizer": index_mod.tokenizer_signature(inputs.tokenizer), "count": len(tokens),
                "avgdl": avgdl, "generation": generation, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                **inputs.extra,
            })
            return index_mod.SyncReport(
                kind, added=added, updated=len(todo) - added, removed=len(removed),
                unchanged=len(want) - len(todo) - len(missing), total=len(tokens), rebuilt=not compatible,
                seconds=time.perf_counter() - start, generation=generation,
            )


def _manifest(client, name: str) -> dict:
    if not client.collection_exists(name):
        return {}
    return dict(client.get_collection(name).config.metadata or {})


def _compatible(manifest: dict, inputs: index_mod.SyncInputs) -> bool:
    """The collection can be extended: a model or tokenizer change (or an older format) forces a rebuild."""
    return "generation" in manifest and (manifest.get("format"), manifest.get("model"), manifest.get("tokenizer")) == (
        index_mod.FORMAT_VERSION, inputs.model, index_mod.tokenizer_signature(inputs.tokenizer))


def _create(client, name: str, dim: int) -> None:
    from qdrant_client import models

    if client.collection_exists(name):
        client.delete_collection(name)
    # Dot product on the L2-normalised vectors is the cosine, and the stored vectors stay exactly as given.
    client.create_collection(
        name, vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.DOT)},
        sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        on_disk_payload=True,  # token lists are read once per load, not per query
    )


def _avgdl(tokens: dict[int, list[str]]) -> float:
    return float(np.mean([len(t) for t in tokens.values()])) if tokens else 0.0


def _next_generation(previous: str | None) -> str:
    number = int(previous[4:]) if previous and previous[4:].isdigit() else 0
    return f"gen-{number + 1:06d}"


def _read_payloads(client, name: str) -> tuple[dict[int, str], dict[int, list[str]], dict[int, list[str]]]:
    """int_id → text hash, BM25 tokens, explanation words, for every point of the collection."""
    hashes: dict[int, str] = {}
    tokens: dict[int, list[str]] = {}
    words: dict[int, list[str]] = {}
    if not client.collection_exists(name):
        return hashes, tokens, words
    offset = None
    while True:
        points, offset = client.scroll(name, limit=SCROLL_BATCH, offset=offset, with_payload=True, with_vectors=False)
        for p in points:
            hashes[p.id] = p.payload["h"]
            tokens[p.id] = p.payload["t"]
            words[p.id] = p.payload.get("w", p.payload["t"])
        if offset is None:
            return hashes, tokens, words


def _upsert(client, name: str, ids: list[int], vectors: np.ndarray | None, tokens: list[list[str]],
            words: list[list[str]], hashes: list[str], avgdl: float) -> None:
    from qdrant_client import models

    for start in range(0, len(ids), WRITE_BATCH):
        points = []
        for j in range(start, min(start + WRITE_BATCH, len(ids))):
            indices, values = doc_sparse(tokens[j], avgdl)
            payload = {"h": hashes[j], "t": tokens[j]}
            if words[j] != tokens[j]:  # stored only when they differ (bigram BM25)
                payload["w"] = words[j]
            points.append(models.PointStruct(id=ids[j], payload=payload, vector={
                DENSE: vectors[j].tolist(), SPARSE: models.SparseVector(indices=indices, values=values)}))
        client.upsert(name, points=points, wait=True)


def _reweigh(client, name: str, tokens: dict[int, list[str]], avgdl: float) -> None:
    """New BM25 weights for documents whose text did not change, after the mean length moved."""
    from qdrant_client import models

    ids = list(tokens)
    for start in range(0, len(ids), WRITE_BATCH):
        batch = []
        for i in ids[start : start + WRITE_BATCH]:
            indices, values = doc_sparse(tokens[i], avgdl)
            batch.append(models.PointVectors(id=i, vector={SPARSE: models.SparseVector(indices=indices, values=values)}))
        client.update_vectors(name, points=batch, wait=True)

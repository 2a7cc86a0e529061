"""The Qdrant index backend: one collection per kind holding each record's dense vector, its BM25 terms as a
sparse vector and its bookkeeping as payload ("h" text hash, "t" BM25 tokens, "w" explanation words when they
differ from the tokens, "n" token count), synced incrementally with the store.

Where: `Settings.qdrant_url` (a server or cluster), else qdrant-client's local mode in `<index_dir>/qdrant`
(one process at a time — tests and single machines). Collections are `<qdrant_collection>_<kind>`; the
collection's metadata is the manifest (format, model, dim, tokenizer, count, tokens_total, avgdl, generation).

A snapshot holds only the hashes in memory: its `tokens` and `words` are `QdrantDocs`, which read one point's
lists from the collection when asked (a query explains k results) and stream a scroll to count document
frequencies, so a million documents' token lists never sit in the process as Python strings. A point updated or
deleted by a later sync is read as it is now, not as it was when the snapshot loaded.

BM25 as sparse vectors: a token's index is a stable 32-bit hash of it; a document's value for a token is the
BM25 term-frequency part tf / (tf + k1·(1 − b + b·dl/avgdl)) with bm25s's k1 = 1.5, b = 0.75; Qdrant multiplies
by its IDF modifier ln(1 + (N − df + 0.5)/(df + 0.5)), which is bm25s's ("lucene") IDF; a query's value for a
token is its count, as bm25s sums repeated query tokens. Two differences from bm25s: avgdl is frozen at the
last full weighting (re-weighted when it drifts by more than AVGDL_TOLERANCE, where bm25s re-weights on every
sync), and two tokens whose hashes collide share one index. The true mean length is tracked without reading
every token list: the manifest's tokens_total (sum of all "n") moves by the lengths of the points a sync
removes, replaces and adds; a collection without it (an older version, or a sync that was interrupted after it
cleared the total) is counted once by a scroll.

Writes are in place (Qdrant upserts are atomic per point), not generation swaps: a reader that loads while a
sync runs may see part of it; the manifest's generation moves last, so it then reloads.
"""
from __future__ import annotations

import atexit
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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


class QdrantDocs(Mapping):
    """int_id → BM25 tokens (or explanation words) of a snapshot's documents, read from the collection per
    document on demand; iteration and length are over the int_ids the snapshot loaded."""

    def __init__(self, client, collection: str, int_ids: np.ndarray, of: Literal["tokens", "words"]):
        self.client, self.collection, self.of = client, collection, of
        self._ids = int_ids  # sorted, shared with the snapshot
        # Words equal to the tokens are stored once, as "t" (see _upsert).
        self._keys = ["t"] if of == "tokens" else ["w", "t"]

    def __getitem__(self, int_id: int) -> list[str]:
        if int_id not in self:
            raise KeyError(int_id)
        found = self.client.retrieve(self.collection, [int(int_id)], with_payload=self._keys, with_vectors=False)
        if not found:  # deleted by a sync since the snapshot loaded
            raise KeyError(int_id)
        return _list_of(found[0].payload, self.of)

    def __contains__(self, int_id: object) -> bool:
        # Answered from the loaded ids, without a request (Mapping's default would retrieve the point).
        try:
            pos = int(np.searchsorted(self._ids, int_id))
        except (TypeError, ValueError, OverflowError):  # not an int_id
            return False
        return bool(pos < len(self._ids) and self._ids[pos] == int_id)

    def __iter__(self) -> Iterator[int]:
        return (int(i) for i in self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def document_frequencies(self) -> Counter:
        """Term → documents containing it, over the snapshot's int_ids, from one streamed scroll: a batch of
        lists at a time is held, never all of them."""
        df: Counter = Counter()
        # Only the one key asked for: in bigram mode "t" would double the bytes a words count transfers.
        key = self._keys[0]
        for points in _scroll(self.client, self.collection, [key]):
            ids = np.fromiter((p.id for p in points), dtype=np.int64, count=len(points))
            known = self._known(ids)
            lacking = []
            for p, ok in zip(points, known):
                if not ok:
                    continue  # added by a sync since the snapshot loaded
                terms = (p.payload or {}).get(key)
                if terms is None:
                    lacking.append(p.id)
                else:
                    df.update(set(terms))
            if lacking:  # words stored as the tokens
                for p in self.client.retrieve(self.collection, lacking, with_payload=["t"], with_vectors=False):
                    df.update(set(p.payload["t"]))
        return df

    def _known(self, ids: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(self._ids, ids), max(len(self._ids) - 1, 0))
        return (self._ids[pos] == ids) if len(self._ids) else np.zeros(len(ids), dtype=bool)


def _list_of(payload: dict, of: Literal["tokens", "words"]) -> list[str]:
    return payload["t"] if of == "tokens" else payload.get("w", payload["t"])


@dataclass
class QdrantSnapshot(index_mod.Snapshot):
    """The hashes and manifest of one generation in memory; token and word lists are `QdrantDocs` read from the
    collection per document, and vectors and BM25 stay in Qdrant and are searched there. `dense` and `bm25` are
    None."""

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
        hashes = _read_hashes(client, name)
        int_ids = np.sort(np.fromiter(hashes, dtype=np.int64, count=len(hashes)))
        return QdrantSnapshot(
            path=Path(f"qdrant:{name}") / manifest["generation"], manifest=manifest, dense=None, bm25=None,
            int_ids=int_ids, hashes=hashes, tokens=QdrantDocs(client, name, int_ids, "tokens"),
            words=QdrantDocs(client, name, int_ids, "words"), client=client, collection=name,
        )

    def sync(self, settings: Settings, kind: str, inputs: index_mod.SyncInputs, rebuild: bool = False,
             progress: Callable[[int, int], None] | None = None) -> index_mod.SyncReport:
        start = time.perf_counter()
        client, name = client_for(settings), collection_name(settings, kind)
        with index_mod.writer_lock(settings.index_dir, kind):
            manifest = _manifest(client, name)
            compatible = not rebuild and _compatible(manifest, inputs)
            hashes = _read_hashes(client, name) if compatible else {}
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

            replaced = [i for i in todo if i in hashes]
            count = len(hashes) - len(removed) + len(todo) - len(replaced)
            if compatible:
                total = manifest.get("tokens_total")
                total = int(total) if isinstance(total, (int, float)) else _total_length(client, name)
                total -= _stored_lengths(client, name, removed + replaced)
                # Cleared until the manifest below is written: a sync interrupted in between leaves points whose
                # lengths no total accounts for, so the next one counts them again instead of trusting it.
                client.update_collection(name, metadata={"tokens_total": None})
            else:
                _create(client, name, dim)
                total = 0
            new_tokens = inputs.tokenize(ordered)
            new_words = inputs.words(ordered) if inputs.words else new_tokens
            total += sum(len(t) for t in new_tokens)
            avgdl = total / count if count else 0.0
            old_avgdl = manifest.get("avgdl", 0.0) if compatible else 0.0
            if compatible and abs(avgdl - old_avgdl) <= AVGDL_TOLERANCE * old_avgdl:
                avgdl = old_avgdl  # keep every stored weight valid; below the tolerance the drift is noise
            elif compatible:  # a new collection holds no old points to re-weigh
                _reweigh(client, name, avgdl, skip={*todo, *removed})
            _upsert(client, name, todo, vectors, new_tokens, new_words, [want[i] for i in todo], avgdl)
            if removed:
                from qdrant_client import models

                client.delete(name, points_selector=models.PointIdsList(points=removed), wait=True)
            generation = _next_generation(manifest.get("generation") if compatible else None)
            client.update_collection(name, metadata={
                "format": index_mod.FORMAT_VERSION, "kind": kind, "model": inputs.model, "dim": dim,
                "tokenizer": index_mod.tokenizer_signature(inputs.tokenizer), "count": count,
                "tokens_total": total, "avgdl": avgdl, "generation": generation,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **inputs.extra,
            })
            return index_mod.SyncReport(
                kind, added=added, updated=len(todo) - added, removed=len(removed),
                unchanged=len(want) - len(todo) - len(missing), total=count, rebuilt=not compatible,
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
        on_disk_payload=True,  # token lists are read a few per query (explanations), not kept in RAM
    )


def _next_generation(previous: str | None) -> str:
    number = int(previous[4:]) if previous and previous[4:].isdigit() else 0
    return f"gen-{number + 1:06d}"


def _scroll(client, name: str, payload: list[str]) -> Iterator[list]:
    """Every point of the collection, a batch at a time, carrying only the `payload` keys."""
    offset = None
    while True:
        points, offset = client.scroll(name, limit=SCROLL_BATCH, offset=offset, with_payload=payload, with_vectors=False)
        if points:
            yield points
        if offset is None:
            return


def _read_hashes(client, name: str) -> dict[int, str]:
    """int_id → text hash of every point (the only payload a snapshot or a sync holds for all documents)."""
    if not client.collection_exists(name):
        return {}
    return {p.id: p.payload["h"] for points in _scroll(client, name, ["h"]) for p in points}


def _lengths(client, name: str, points: list) -> int:
    """Summed token counts of `points` read with payload "n"; a point written before "n" was stored is
    counted from its token list."""
    total = sum(p.payload["n"] for p in points if "n" in (p.payload or {}))
    lacking = [p.id for p in points if "n" not in (p.payload or {})]
    if lacking:
        total += sum(len(p.payload["t"]) for p in client.retrieve(name, lacking, with_payload=["t"], with_vectors=False))
    return total


def _stored_lengths(client, name: str, ids: list[int]) -> int:
    """Summed token counts of the stored points `ids` (those about to be removed or replaced)."""
    return sum(_lengths(client, name, client.retrieve(name, ids[s : s + SCROLL_BATCH], with_payload=["n"], with_vectors=False))
               for s in range(0, len(ids), SCROLL_BATCH))


def _total_length(client, name: str) -> int:
    """Summed token counts of every point, streamed (for a collection whose manifest holds no tokens_total)."""
    return sum(_lengths(client, name, points) for points in _scroll(client, name, ["n"]))


def _upsert(client, name: str, ids: list[int], vectors: np.ndarray | None, tokens: list[list[str]],
            words: list[list[str]], hashes: list[str], avgdl: float) -> None:
    from qdrant_client import models

    for start in range(0, len(ids), WRITE_BATCH):
        points = []
        for j in range(start, min(start + WRITE_BATCH, len(ids))):
            indices, values = doc_sparse(tokens[j], avgdl)
            payload = {"h": hashes[j], "t": tokens[j], "n": len(tokens[j])}
            if words[j] != tokens[j]:  # stored only when they differ (bigram BM25)
                payload["w"] = words[j]
            points.append(models.PointStruct(id=ids[j], payload=payload, vector={
                DENSE: vectors[j].tolist(), SPARSE: models.SparseVector(indices=indices, values=values)}))
        client.upsert(name, points=points, wait=True)


def _reweigh(client, name: str, avgdl: float, skip: set[int]) -> None:
    """New BM25 weights for every stored document not in `skip` (replaced or removed by this sync), after the
    mean length moved: streamed over a scroll, one batch of token lists at a time."""
    from qdrant_client import models

    for points in _scroll(client, name, ["t"]):
        kept = [p for p in points if p.id not in skip]
        for start in range(0, len(kept), WRITE_BATCH):
            batch = []
            for p in kept[start : start + WRITE_BATCH]:
                indices, values = doc_sparse(p.payload["t"], avgdl)
                batch.append(models.PointVectors(id=p.id, vector={SPARSE: models.SparseVector(indices=indices, values=values)}))
            client.update_vectors(name, points=batch, wait=True)

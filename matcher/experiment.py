"""The `ptm eval` runner: index a corpus once, score every retrieval variant (the quality levers) per split."""
from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from indexer import index as index_mod
from indexer.settings import Settings
from indexer.text import get_tokenizer
from matcher.engine import Method, Query, make_query, rank_candidates
from matcher.evaluate import METRICS, evaluate_rankings, read_qrels, read_queries, read_splits
from matcher.query import clean_demand


@dataclass(frozen=True)
class Variant:
    """One way of ranking: a retrieval method plus settings overrides and the experiment-only levers."""

    name: str
    method: Method = "hybrid"
    overrides: dict = field(default_factory=dict)  # Settings fields (tokenizer, clean_demands, fusion, weights …)
    title_boost: int = 1  # the title counted this many times in each BM25 document (field weighting)
    prf_docs: int = 0  # pseudo-relevance feedback from this many top documents (0 = off)


#: Single methods, the production default, the untuned issue-3 hybrid, and each lever toggled from the default.
VARIANTS: tuple[Variant, ...] = (
    Variant("bm25 jieba", "bm25", {"tokenizer": "jieba"}),
    Variant("bm25 bigram", "bm25", {"tokenizer": "bigram"}),
    Variant("dense", "dense"),
    Variant("hybrid", "hybrid"),  # the settings as configured: the production default unless overridden
    Variant("hybrid untuned", overrides={"tokenizer": "jieba", "fusion": "rrf", "clean_demands": False}),
    Variant("lever: jieba BM25", overrides={"tokenizer": "jieba"}),
    Variant("lever: jieba no-dict", overrides={"tokenizer": "jieba-nodict"}),
    Variant("lever: jieba no-stop", overrides={"tokenizer": "jieba-nostop"}),
    Variant("lever: no cleaning", overrides={"clean_demands": False}),
    Variant("lever: rrf fusion", overrides={"fusion": "rrf"}),
    Variant("lever: dense x2", overrides={"dense_weight": 2.0}),
    Variant("lever: bm25 x2", overrides={"bm25_weight": 2.0}),
    Variant("lever: title x2", title_boost=2),
    Variant("lever: +prf", prf_docs=3),
)


@dataclass
class Corpus:
    """The indexed corpus plus lazily built BM25 variants, keyed by (tokenizer, title boost)."""

    snapshot: index_mod.Snapshot
    titles: dict[int, str]
    bodies: dict[int, str]
    ids: dict[int, str]
    production_tokenizer: str
    _variants: dict[tuple[str, int], index_mod.Snapshot] = field(default_factory=dict)

    def bm25_variant(self, tokenizer: str, title_boost: int) -> index_mod.Snapshot:
        key = (tokenizer, title_boost)
        if key == (self.production_tokenizer, 1):
            return self.snapshot
        if key not in self._variants:
            tok = get_tokenizer(tokenizer)
            order = self.snapshot.int_ids.tolist()
            tokens = {i: tok("。".join([self.titles[i]] * title_boost + [self.bodies[i]])) for i in order}
            bm25 = index_mod.build_bm25([tokens[i] for i in order])
            self._variants[key] = replace(self.snapshot, bm25=bm25, tokens=tokens, words=self.snapshot.words, _df={})
        return self._variants[key]


def load_corpus(settings: Settings, corpus: Path) -> tuple[Settings, Corpus]:
    """Ingest and index `corpus` in its own workspace under the home (embeddings are cached across runs)."""
    from indexer.pipeline import ingest_file, open_store, sync_index

    digest = hashlib.sha256(Path(corpus).read_bytes()).hexdigest()[:12]
    ws = replace(settings, home=settings.home / "eval" / digest, cache_dir=settings.embedding_cache.parent)
    ingest_file(ws, "patents", corpus)
    sync_index(ws, kinds=("patents",))
    snap = index_mod.load_snapshot(ws.index_dir, "patents")
    records = open_store(ws).get_by_int_ids("patents", snap.int_ids.tolist())
    return ws, Corpus(snap, {i: r.title for i, r in records.items()}, {i: r.abstract for i, r in records.items()},
                      {i: r.id for i, r in records.items()}, ws.tokenizer)


def encode_queries(settings: Settings, texts: list[str]) -> np.ndarray:
    from indexer.encoder import EmbeddingCache, encode_cached, load_encoder

    cache = EmbeddingCache(settings.embedding_cache)
    return encode_cached(load_encoder(settings), cache, texts, "query")


def expand(query: Query, snap: index_mod.Snapshot, top: list[int], n_terms: int = 10, beta: float = 0.5) -> Query:
    """Pseudo-relevance feedback: Rocchio on the vector, and the top docs' most distinctive terms on the tokens."""
    vecs = np.stack([snap.vector(i) for i in top])
    v = query.vector + beta * vecs.mean(axis=0)
    df = snap.document_frequencies("tokens")
    tf = Counter(t for i in top for t in snap.tokens[i] if len(t) > 1)
    n = snap.size
    weight = {t: c * math.log((n + 1) / (df.get(t, 0) + 0.5)) for t, c in tf.items() if t not in query.tokens}
    extra = sorted(weight, key=lambda t: -weight[t])[:n_terms]
    return Query(v / np.linalg.norm(v), query.tokens + extra, query.words)



@dataclass
class Run:
    rankings: dict[str, list[str]]  # query → record ids, best first
    best_dense: dict[str, float]  # query → best dense cosine in the corpus
    cosines: dict[str, list[float]]  # query → dense cosine of each ranked result (nan when not dense-retrieved)


def run_variant(variant: Variant, base: Settings, corpus: Corpus, texts: dict[str, str],
                vectors: dict[str, np.ndarray], k: int = 100) -> Run:
    """Rankings (record ids, best first) of every query under one variant."""
    settings = replace(base, **variant.overrides)
    snap = corpus.bm25_variant(settings.tokenizer, variant.title_boost)
    run = Run({}, {}, {})
    for qid, raw in texts.items():
        text = clean_demand(raw) if settings.clean_demands else raw
        query = make_query(vectors[text], text, settings.tokenizer)
        if variant.prf_docs:
            first, _ = rank_candidates(snap, query, variant.prf_docs, variant.method, settings)
            query = expand(query, snap, [f.int_id for f in first])
        fused, best = rank_candidates(snap, query, k, variant.method, settings)
        run.rankings[qid] = [corpus.ids[f.int_id] for f in fused]
        run.best_dense[qid] = best if best is not None else float("nan")
        run.cosines[qid] = [f.scores.get("dense", float("nan")) for f in fused]
    return run


def calibrate(run: Run, qrels: dict, tune: list[str], test: list[str], precision_strong: float = 0.8) -> dict:
    """Thresholds for 强/中 and the no-good-match verdict, fitted on `tune` and measured on `test`.

    中 (and "no good match" below it): the best-dense-cosine cut that best separates demands with a relevant
    patent from those without (balanced accuracy). 强: the lowest cosine above which at least `precision_strong`
    of top-10 results are relevant.
    """
    def ngm_rates(qs: list[str], t: float) -> tuple[float, float]:
        ans = [q for q in qs if qrels.get(q)]
        una = [q for q in qs if not qrels.get(q)]
        hit = sum(run.best_dense[q] < t for q in una) / len(una) if una else float("nan")
        false = sum(run.best_dense[q] < t for q in ans) / len(ans) if ans else float("nan")
        return hit, false

    def pairs(qs: list[str]) -> list[tuple[float, bool]]:
        return [(c, d in qrels.get(q, {})) for q in qs for d, c in zip(run.rankings[q][:10], run.cosines[q][:10])
                if not math.isnan(c)]

    def precision(ps: list[tuple[float, bool]], lo: float, hi: float = math.inf) -> float:
        sel = [rel for c, rel in ps if lo <= c < hi]
        return sum(sel) / len(sel) if sel else float("nan")

    def balanced_accuracy(t: float) -> float:
        hit, false = ngm_rates(tune, t)
        return (1 - false) + (0 if math.isnan(hit) else hit)

    # Candidates ascending and max() keeps the first best: ties go to the lower cut (fewer false verdicts).
    medium = max(sorted({round(run.best_dense[q], 3) for q in tune}), key=balanced_accuracy)
    tune_pairs = pairs(tune)
    strong = next((t for t in sorted({round(c, 3) for c, _ in tune_pairs}) if t >= medium
                   and precision(tune_pairs, t) >= precision_strong), max((c for c, _ in tune_pairs), default=medium))
    test_pairs = pairs(test)
    hit, false = ngm_rates(test, medium)
    return {"medium_threshold": medium, "strong_threshold": round(strong, 3),
            "test_no_good_match_on_unanswerable": hit, "test_false_no_good_match_on_answerable": false,
            "test_precision_strong": precision(test_pairs, strong), "test_precision_medium": precision(test_pairs, medium, strong),
            "test_precision_weak": precision(test_pairs, -math.inf, medium)}


def run_eval(settings: Settings, corpus_path: Path, queries: Path, qrels_path: Path,
             variants: tuple[Variant, ...] = VARIANTS) -> dict:
    """Every variant's metrics, overall and per split (when the queries carry a `split` field)."""
    ws, corpus = load_corpus(settings, corpus_path)
    qrels, texts, splits = read_qrels(qrels_path), read_queries(queries), read_splits(queries)
    unknown = sorted(set(qrels) - set(texts))
    if unknown:
        raise ValueError(f"{qrels_path} names demands missing from {queries}: {', '.join(unknown[:5])}")
    needed = sorted(set(texts.values()) | {clean_demand(t) for t in texts.values()})
    vectors = dict(zip(needed, encode_queries(ws, needed)))
    groups = {"all": list(texts)} | {s: [q for q in texts if splits.get(q) == s] for s in sorted(set(splits.values()))}
    results: dict = {
        "corpus": str(corpus_path), "patents": corpus.snapshot.size, "queries": len(texts),
        "judged": sum(1 for q in texts if qrels.get(q)), "unanswerable": sum(1 for q in texts if not qrels.get(q)),
        "splits": {g: len(qs) for g, qs in groups.items()}, "metrics": list(METRICS), "variants": {},
    }
    for variant in variants:
        run = run_variant(variant, ws, corpus, texts, vectors)
        results["variants"][variant.name] = {
            g: evaluate_rankings({q: run.rankings[q] for q in qs}, {q: qrels.get(q, {}) for q in qs})
            for g, qs in groups.items() if any(qrels.get(q) for q in qs)
        }
        if variant.name == "hybrid":
            tune, test = groups.get("tune", groups["all"]), groups.get("test", groups["all"])
            results["calibration"] = calibrate(run, qrels, tune, test)
    return results


def format_results(results: dict) -> str:
    names = results["metrics"]
    lines = [f"corpus {results['corpus']}: {results['patents']} patents; {results['queries']} demands "
             f"({results['judged']} with relevant patents, {results['unanswerable']} with none); splits {results['splits']}"]
    for group in results["splits"]:
        lines.append(f"\n[{group}]")
        lines.append(f"{'variant':<22} " + " ".join(f"{n:>9}" for n in names))
        for name, per_group in results["variants"].items():
            if group in per_group:
                lines.append(f"{name:<22} " + " ".join(f"{per_group[group][n]:>9.4f}" for n in names))
    if "calibration" in results:
        lines.append("\nquality labels (fitted on tune, measured on test): " +
                     ", ".join(f"{k} {v:.3f}" for k, v in results["calibration"].items()))
    return "\n".join(lines)

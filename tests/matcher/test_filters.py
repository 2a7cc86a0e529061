"""Filtered matching: validation, the SQL against a brute-force check, and filters applied inside both retrievers
(a filter keeping under 1% of the corpus still fills k)."""
from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from indexer import index as index_mod
from indexer import ipc
from indexer.index import Snapshot, build_bm25
from indexer.normalize import detect_applicant_type
from indexer.records import Patent
from indexer.settings import Settings
from indexer.store import Store
from indexer.value import patent_value
from matcher.engine import Engine, MatchError, Query
from matcher.filters import FilterError, Filters, build_filters
from matcher.retrieve import Allowed, bm25_search, dense_search
from tests.conftest import demo_rows

DIM = 16


def hash_embed(texts: list[str]) -> np.ndarray:
    """Deterministic unit vectors per text, so the test needs no model."""
    rows = [np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)).normal(size=DIM) for t in texts]
    m = np.asarray(rows, dtype=np.float32).reshape(len(texts), DIM)
    return m / np.linalg.norm(m, axis=1, keepdims=True) if len(texts) else m


def bigrams(texts: list[str]) -> list[list[str]]:
    return [[t[i : i + 2] for i in range(len(t) - 1)] for t in texts]


# --- validation -----------------------------------------------------------------------------------

def test_values_are_normalised() -> None:
    f = Filters(legal_status=["有权", "审中"], patent_type="发明授权", ipc_prefix=["h04n 5"], applicant_type=["高校", "科研机构"],
                region=" 北京 ", min_value="60", date_from="2018.1.1", date_to=date(2023, 12, 31))
    assert (f.legal_status, f.patent_type, f.ipc_prefix) == (("有效", "审中"), ("发明",), ("H04N5/",))
    assert f.applicant_type == ("university", "research_institute") and f.region == "北京"
    assert (f.min_value, f.date_from) == (60.0, date(2018, 1, 1))
    assert build_filters() is None and build_filters(legal_status=[], region="") is None


@pytest.mark.parametrize(("values", "field", "listed"), [
    ({"legal_status": ["有效", "good"]}, "legal_status", "有效, 审中, 失效, 驳回, 撤回"),
    ({"patent_type": "软件"}, "patent_type", "发明, 实用新型, 外观设计"),
    ({"applicant_type": "univ"}, "applicant_type", "university, research_institute, enterprise, individual"),
    ({"ipc_prefix": "电视"}, "ipc_prefix", "subclass (H04N)"),
    ({"min_value": 120}, "min_value", "0–100"),
    ({"date_from": "去年"}, "date_from", "YYYY-MM-DD"),
    ({"date_from": "2024-01-01", "date_to": "2020-01-01"}, "date_from", "swap"),
])
def test_invalid_values_name_the_field_and_the_valid_options(values: dict, field: str, listed: str) -> None:
    with pytest.raises(FilterError) as excinfo:
        Filters(**values)
    assert excinfo.value.field == field and listed in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)  # the CLI's exit 2


# --- inside the retrievers, on a synthetic snapshot -----------------------------------------------

@pytest.fixture(scope="module")
def synthetic() -> Snapshot:
    import faiss

    n, rng = 2_000, np.random.default_rng(0)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(n, dtype=np.int64) * 3 + 7  # not 0..n-1: selectors must work on the stored ids
    dense = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    dense.add_with_ids(vectors, ids)
    tokens = {int(i): [f"w{t}" for t in rng.integers(0, 60, size=25)] for i in ids}
    return Snapshot(path=Path("synthetic"), manifest={}, dense=dense, bm25=build_bm25([tokens[int(i)] for i in ids]),
                    int_ids=ids, hashes={}, tokens=tokens, words=tokens)


def test_dense_and_bm25_fill_k_from_a_half_percent_filter(synthetic: Snapshot) -> None:
    rng = np.random.default_rng(1)
    kept = rng.choice(synthetic.int_ids, size=10, replace=False)  # 0.5% of the corpus
    allowed = Allowed.build(synthetic, kept.tolist())
    query = hash_embed(["查询"])
    [dense] = dense_search(synthetic, query, 10, allowed)
    exact = sorted(kept.tolist(), key=lambda i: -float(synthetic.vector(i) @ query[0]))
    assert dense.ids.tolist() == exact  # all 10, in exact cosine order
    tokens = ["w1", "w2", "w3"]
    bm25 = bm25_search(synthetic, tokens, 10, allowed)
    full = bm25_search(synthetic, tokens, synthetic.size)
    expected = [i for i in full.ids.tolist() if i in set(kept.tolist())]
    assert sorted(bm25.ids.tolist()) == sorted(expected) and set(bm25.ids.tolist()) <= set(kept.tolist())
    assert np.all(np.diff(bm25.scores) <= 0)
    # Without the filter inside the search, the top 100 would hold almost none of them.
    assert len(set(dense_search(synthetic, query, 100)[0].ids.tolist()) & set(kept.tolist())) < 10


def test_an_empty_allowed_set_returns_nothing(synthetic: Snapshot) -> None:
    allowed = Allowed.build(synthetic, [])
    assert len(dense_search(synthetic, hash_embed(["查询"]), 5, allowed)[0]) == 0
    assert len(bm25_search(synthetic, ["w1"], 5, allowed)) == 0


# --- through the store and the engine ------------------------------------------------------------

def metadata(i: int) -> dict:
    return {
        "legal_status": ("有效", "审中", "失效")[i % 3],
        "patent_type": ("发明", "实用新型")[i % 2],
        "ipc": (["A01B1/00"], ["H01M10/0525", "H01M2/12"], ["G06F18/00"], ["B64U20/80", "H04N7/18"])[i % 4],
        "region": ("河南省郑州市", "北京市海淀区", "上海市")[i % 3],
        "application_date": date(2008 + i % 17, 1 + i % 12, 1 + i % 28),
        "transferable": i % 5 != 0,
        "transfer_count": i % 3,
    }


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[int]]:
    """400 real demo patents with varied metadata, indexed with hash embeddings (no model); then the 3 patents
    the query ranks lowest are the only ones classified in H04N5 — under 1% of the corpus."""
    from indexer.pipeline import model_signature

    settings = Settings.from_env(home=tmp_path_factory.mktemp("filtered") / "ws", candidates=10)
    store = Store(settings.db_path)
    rows = demo_rows("patents", 400)
    store.upsert("patents", [Patent(**r, **metadata(i), applicant_type=detect_applicant_type(r["applicants"]))
                             for i, r in enumerate(rows)])
    inputs = index_mod.SyncInputs(hashes=store.text_hashes("patents"), fetch_texts=lambda ids: store.texts("patents", ids),
                                  embed=hash_embed, tokenize=bigrams, words=None, model=model_signature(settings))
    index_mod.sync(settings.index_dir, "patents", inputs)
    engine = Engine(replace(settings, candidates=400))
    ranking = engine.search("patents", query_of(engine, rows[0]["id"]), 400, "dense")
    rare = [m.id for m in ranking[-3:]]
    store.upsert("patents", [Patent(id=pid, title=r["title"], abstract=r["abstract"], ipc=["H04N5/225"])
                             for pid in rare for r in rows if r["id"] == pid])
    return settings, rare


def query_of(engine: Engine, patent_id: str) -> Query:
    snap = engine.snapshot("patents")
    int_id = engine.store.int_id("patents", patent_id)
    return Query(snap.vector(int_id), snap.tokens[int_id])


def test_store_resolves_filters_exactly_like_a_brute_force_check(workspace) -> None:
    settings, _ = workspace
    store = Store(settings.db_path)
    patents = {store.int_id("patents", p.id): p for p in store.list("patents", limit=1000)}
    cases = [
        Filters(legal_status=["有效", "审中"]), Filters(patent_type="发明", transferable_only=True),
        Filters(ipc_prefix=["H01M10"]), Filters(ipc_prefix=["H04N", "A01B1/00"]), Filters(region="北京"),
        Filters(applicant_type=["university"]), Filters(min_value=55), Filters(date_from="2015-06-01", date_to="2019-12-31"),
        Filters(legal_status="有效", patent_type="实用新型", ipc_prefix="B64U", date_from="2012-01-01"),
    ]
    for f in cases:
        where, params = f.to_sql()
        expected = {i for i, p in patents.items() if keeps(f, p)}
        assert set(store.select_int_ids("patents", where, params)) == expected, f
        assert 0 < len(expected) < len(patents), f


def keeps(f: Filters, p: Patent) -> bool:
    d = p.application_date
    return all([
        not f.legal_status or p.legal_status in f.legal_status,
        not f.patent_type or p.patent_type in f.patent_type,
        not f.applicant_type or p.applicant_type in f.applicant_type,
        not f.ipc_prefix or any(ipc.matches_prefix(p.ipc, x) for x in f.ipc_prefix),
        f.region in p.region,
        p.transferable or not f.transferable_only,
        f.min_value is None or patent_value(p).total >= f.min_value,
        f.date_from is None or (d is not None and d >= f.date_from),
        f.date_to is None or (d is not None and d <= f.date_to),
    ])


@pytest.mark.parametrize("method", ["hybrid", "dense", "bm25"])
def test_a_filter_keeping_under_one_percent_still_returns_k(workspace, method: str) -> None:
    settings, rare = workspace  # candidates=10: post-filtering each retriever's top 10 would find none
    engine = Engine(settings)
    query = query_of(engine, demo_rows("patents", 1)[0]["id"])
    filters = Filters(ipc_prefix=["H04N5"])
    assert len(engine.allowed("patents", filters)) == 3 < 0.01 * engine.snapshot("patents").size
    unfiltered = {m.id for m in engine.search("patents", query, 10, method)}
    assert not unfiltered & set(rare)
    results = engine.search("patents", query, 3, method, filters)
    if method == "bm25":  # BM25 can only return documents sharing a term with the query
        assert {m.id for m in results} <= set(rare) and len(results) >= 1
    else:
        assert sorted(m.id for m in results) == sorted(rare)
    assert len(engine.search("patents", query, 10, method, filters)) == len(results)  # only 3 exist


def test_resolved_filters_are_reused_and_reverse_matching_refuses_them(workspace) -> None:
    settings, rare = workspace
    engine = Engine(settings)
    allowed = engine.allowed("patents", Filters(ipc_prefix=["H04N"], legal_status=["有效", "审中", "失效"]))
    ids = demo_rows("patents", 5)
    for row in ids:
        results = engine.search("patents", query_of(engine, row["id"]), 3, allowed=allowed)
        assert {m.id for m in results} <= set(rare) | {r["id"] for r in demo_rows("patents", 400)[3::4]}
    assert len(engine.search("patents", query_of(engine, ids[0]["id"]), 5, filters=Filters(region="广州"))) == 0
    with pytest.raises(MatchError, match="patents only"):
        engine.allowed("demands", Filters(region="北京"))

"""Filtered vs unfiltered match latency on the demo corpus, with the unfiltered search as the in-run baseline.

The demo patents carry no legal status, IPC or dates, so each gets deterministic synthetic metadata
(a third each 有效/审中/失效, four IPC groups, dates over 17 years); three patents alone get H04N5/225, which
makes a filter keeping 0.75% of the corpus. Timings exclude the demand's encoding (as in bench_demo.py) and
include resolving the filter (one SQL query + the FAISS selector) unless marked "pre-resolved", which is
what a batch (`ptm match --demands`) pays per demand. Run:
    .venv/bin/python bench/bench_filters.py [--queries 42] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from indexer.settings import DATASETS_DIR, Settings


def metadata(i: int) -> dict:
    return {
        "legal_status": ("有效", "审中", "失效")[i % 3],
        "patent_type": ("发明", "实用新型")[i % 2],
        "ipc": (["A01B1/00"], ["H01M10/0525", "H01M2/12"], ["G06F18/00"], ["B64U20/80", "H04N7/18"])[i % 4],
        "region": ("河南省郑州市", "北京市海淀区", "上海市")[i % 3],
        "application_date": date(2008 + i % 17, 1 + i % 12, 1 + i % 28),
    }


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, p))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=42)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from indexer.pipeline import ingest_file, sync_index
    from indexer.records import Patent
    from matcher.engine import Engine
    from matcher.filters import Filters

    demo = DATASETS_DIR / "demo" / "patents.jsonl"
    rows = [json.loads(line) for line in open(demo, encoding="utf-8")]
    queries = [json.loads(line)["text"] for line in open(DATASETS_DIR / "eval" / "quick" / "demands.jsonl", encoding="utf-8")][: args.queries]
    with tempfile.TemporaryDirectory() as tmp:
        s = Settings.from_env(home=Path(tmp) / "ws")
        ingest_file(s, "patents", demo)
        sync_index(s, kinds=("patents",))
        engine = Engine(s)
        # Metadata only: the texts, hence the index, stay as they are.
        engine.store.upsert("patents", [Patent(id=r["id"], title=r["title"], abstract=r["abstract"], **metadata(i))
                                        for i, r in enumerate(rows)])
        engine.store.upsert("patents", [Patent(id=r["id"], title=r["title"], abstract=r["abstract"], ipc=["H04N5/225"])
                                        for r in rows[100:103]])
        encoded = engine.text_queries(queries)
        broad = Filters(legal_status=["有效"])
        combined = Filters(legal_status=["有效", "审中"], patent_type=["发明"], date_from="2015-01-01")
        selective = Filters(ipc_prefix=["H04N5"])
        kept = {name: len(engine.allowed("patents", f)) for name, f in
                (("broad", broad), ("combined", combined), ("selective", selective))}
        pre = engine.allowed("patents", selective)
        cases = {
            "unfiltered": lambda q: engine.search("patents", q, 10),
            f"status 有效, keeps {kept['broad']}": lambda q: engine.search("patents", q, 10, filters=broad),
            f"status+type+date, keeps {kept['combined']}": lambda q: engine.search("patents", q, 10, filters=combined),
            f"ipc H04N5, keeps {kept['selective']}": lambda q: engine.search("patents", q, 10, filters=selective),
            f"ipc H04N5 pre-resolved, keeps {len(pre)}": lambda q: engine.search("patents", q, 10, allowed=pre),
        }
        lat: dict[str, list[float]] = {name: [] for name in cases}
        for fn in cases.values():  # warm-up: first SQL connection, first FAISS selector
            fn(encoded[0])
        for _ in range(args.rounds):
            for q in encoded:
                for name, fn in cases.items():
                    t0 = time.perf_counter()
                    result = fn(q)
                    lat[name].append(time.perf_counter() - t0)
                    assert name == "unfiltered" or "H04N5" not in name or len(result) == 3

    print(f"corpus: {len(rows)} demo patents (synthetic metadata), {len(queries)} demands × {args.rounds} rounds, k=10, hybrid,"
          " excluding encoding")
    ref = statistics.median(lat["unfiltered"])
    for name, xs in lat.items():
        label = name if name == "unfiltered" else f"filtered: {name}"
        print(f"{label:<40}: p50 {pct(xs, 50):6.2f} ms  p99 {pct(xs, 99):6.2f} ms  (p50 ratio {statistics.median(xs) / ref:4.2f}x)")


if __name__ == "__main__":
    main()

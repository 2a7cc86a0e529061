"""Builds the automatic proxy evaluation sets under datasets/eval/proxy/ (stdlib only, deterministic).

- title/: 300 patent titles of the dev corpus as queries, each relevant to its own patent (title → abstract).
- kppatent/: the KPPatent-ZH abstracts as a corpus and, for 300 of them, their gold keyphrases as the query
  (keyphrases → patent). KPPatent-ZH is MIT-licensed (tanggongbo/KPPatent-ZH, commit 03881440).
Run: python scripts/build_proxies.py [--src /work/shared/data]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "datasets" / "eval" / "proxy"
SEED = 20261128
N = 300


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def write_qrels(path: Path, pairs: list[tuple[str, str]]) -> None:
    path.write_text("demand_id\tpatent_id\tgrade\n" + "".join(f"{q}\t{p}\t2\n" for q, p in pairs), encoding="utf-8")


def title_proxy() -> None:
    rows = [json.loads(line) for line in open(ROOT / "datasets/eval/dev/patents.jsonl", encoding="utf-8")]
    pick = random.Random(SEED).sample(rows, N)
    write_jsonl(OUT / "title" / "queries.jsonl", [{"id": f"T{i:03d}", "text": r["title"]} for i, r in enumerate(pick, 1)])
    write_qrels(OUT / "title" / "qrels.tsv", [(f"T{i:03d}", r["id"]) for i, r in enumerate(pick, 1)])


def kppatent_proxy(src: Path) -> None:
    items = json.load(open(src / "kppatent_zh" / "data_A.json", encoding="utf-8"))
    seen, corpus, keyphrases = set(), [], {}
    for it in items:
        abstract = it["input"].removeprefix("摘要：").strip()
        if abstract in seen or len(abstract) < 30:
            continue
        seen.add(abstract)
        pid = "KP-" + hashlib.sha1(abstract.encode("utf-8")).hexdigest()[:10]
        # KPPatent has no titles; the first clause stands in so the record validates (marked as such).
        title = abstract.split("，")[0][:60]
        corpus.append({"id": pid, "title": title, "abstract": abstract, "source": "kppatent_zh (title = first clause)"})
        keyphrases[pid] = [k for k in it["output"].split(",") if k.strip()]
    write_jsonl(OUT / "kppatent" / "patents.jsonl", corpus)
    eligible = [p for p in corpus if len(keyphrases[p["id"]]) >= 3]
    pick = random.Random(SEED).sample(eligible, N)
    write_jsonl(OUT / "kppatent" / "queries.jsonl",
                [{"id": f"K{i:03d}", "text": " ".join(keyphrases[p["id"]])} for i, p in enumerate(pick, 1)])
    write_qrels(OUT / "kppatent" / "qrels.tsv", [(f"K{i:03d}", p["id"]) for i, p in enumerate(pick, 1)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", type=Path, default=Path(os.environ.get("PTM_SHARED_DATA", "/work/shared/data")))
    args = ap.parse_args()
    title_proxy()
    kppatent_proxy(args.src)


if __name__ == "__main__":
    main()

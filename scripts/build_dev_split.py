"""Merges the two hand-written halves of datasets/eval/dev/ into demands.jsonl + qrels.tsv with a tune/test split.

The split is fixed and stratified: within each half, each length class (short/medium/long) and served vs
unserved, demands alternate tune, test, tune, … in id order. Tune on `tune`, report on `test`.
Run: python scripts/build_dev_split.py
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

DEV = Path(__file__).resolve().parent.parent / "datasets" / "eval" / "dev"


def main() -> None:
    rows = []
    for part in ("a", "b"):
        rows += [json.loads(line) for line in open(DEV / f"demands_{part}.jsonl", encoding="utf-8") if line.strip()]
    strata: dict[tuple, list[dict]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["id"]):
        strata[(r["id"][0], r["length"], r["target"] is None)].append(r)
    for members in strata.values():
        for i, r in enumerate(members):
            r["split"] = "tune" if i % 2 == 0 else "test"
    rows.sort(key=lambda r: r["id"])
    (DEV / "demands.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    lines = ["demand_id\tpatent_id\tgrade"]
    for part in ("a", "b"):
        lines += (DEV / f"qrels_{part}.tsv").read_text(encoding="utf-8").splitlines()[1:]
    (DEV / "qrels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    counts = defaultdict(int)
    for r in rows:
        counts[(r["split"], r["target"] is None)] += 1
    print({f"{s} {'unserved' if u else 'served'}": n for (s, u), n in sorted(counts.items())})


if __name__ == "__main__":
    main()

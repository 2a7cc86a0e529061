"""The `ptm` command line: ingest, index, match (both directions, batch JSON contract), eval, serve, demo."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from indexer.settings import DATASETS_DIR, Settings

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
DEMO_DIR = DATASETS_DIR / "demo"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ptm", description="Patent transfer matchmaking engine (专利转化对接匹配).")
    p.add_argument("--home", help="workspace directory (env PTM_HOME, default ./ptm-data)")
    sub = p.add_subparsers(dest="command", required=True)

    ing = sub.add_parser("ingest", help="import patents or demands from JSONL / CSV / XLSX")
    ing.add_argument("kind", choices=["patents", "demands"])
    ing.add_argument("file", type=Path)
    ing.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    ing.add_argument("--skip-invalid", action="store_true", help="import the valid rows even if some are rejected")
    ing.add_argument("--json", action="store_true", help="print the report as JSON")

    de = sub.add_parser("delete", help="remove patents or demands by id (then `ptm index` drops them from the index)")
    de.add_argument("kind", choices=["patents", "demands"])
    de.add_argument("ids", nargs="+", metavar="ID")

    idx = sub.add_parser("index", help="bring the search indexes in line with the database (incremental)")
    idx.add_argument("--rebuild", action="store_true", help="rebuild from scratch instead of incrementally")

    m = sub.add_parser("match", help="rank patents for a demand, or demands for a patent")
    src = m.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="a demand text in Chinese")
    src.add_argument("--demands", type=Path, metavar="FILE.jsonl", help='lines {"id", "title"?, "text"}')
    src.add_argument("--demand", metavar="ID", help="a stored demand")
    src.add_argument("--patent", metavar="ID", help="a stored patent: which demands it serves")
    m.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    m.add_argument("--method", choices=["hybrid", "dense", "bm25"], default="hybrid")
    m.add_argument("--json", action="store_true", help="JSON output (one line per demand with --demands)")

    ev = sub.add_parser("eval", help="retrieval quality (nDCG@10, Recall@k, MRR@10) of each method")
    ev.add_argument("--corpus", type=Path, default=DEMO_DIR / "patents.jsonl")
    ev.add_argument("--queries", type=Path, default=DATASETS_DIR / "eval" / "quick" / "demands.jsonl")
    ev.add_argument("--qrels", type=Path, default=DATASETS_DIR / "eval" / "quick" / "qrels.tsv")
    ev.add_argument("--json", type=Path, metavar="OUT.json", help="also write the figures as JSON")

    sv = sub.add_parser("serve", help="run the HTTP API")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)

    sub.add_parser("demo", help="load the shipped demo data, index it and show matches")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(home=args.home)
        return COMMANDS[args.command](settings, args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, RuntimeError, OSError) as exc:
        # Every expected failure is an exception whose message says what to fix; no traceback for users.
        print(f"ptm: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ValueError) else EXIT_ERROR


# ---- commands ---------------------------------------------------------------------------------
def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from indexer.pipeline import ImportRejected, ingest_file

    try:
        result = ingest_file(settings, args.kind, args.file, dry_run=args.dry_run, skip_invalid=args.skip_invalid)
    except ImportRejected as exc:
        _print_rejections(exc.report.rejected)
        print(f"ptm: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report, counts = result.report, result.counts
    if args.json:
        print(json.dumps({
            "kind": args.kind, "file": str(args.file), "dry_run": args.dry_run, "format": report.file_format,
            "encoding": report.encoding, "valid": len(report.records), "added": counts.added,
            "updated": counts.updated, "unchanged": counts.unchanged,
            "rejected": [{"row": r.row, "id": r.id, "reason": r.reason} for r in report.rejected],
            "mapping": report.mapping, "unmapped": report.unmapped,
        }, ensure_ascii=False))
        return EXIT_OK
    _print_rejections(report.rejected)
    print(f"{args.file}: {report.file_format}, {report.encoding or 'n/a'}; columns " +
          ", ".join(f"{k}→{v}" for k, v in report.mapping.items()))
    if report.unmapped:
        print("  ignored columns: " + ", ".join(report.unmapped))
    verb = "would import" if args.dry_run else "imported"
    print(f"{verb} {len(report.records)} {args.kind}: {counts.added} added, {counts.updated} updated, "
          f"{counts.unchanged} unchanged; {len(report.rejected)} rejected")
    if not args.dry_run:
        print("next: `ptm index` to make them searchable")
    return EXIT_OK


def cmd_delete(settings: Settings, args: argparse.Namespace) -> int:
    from indexer.pipeline import open_store

    n = open_store(settings).delete(args.kind, args.ids)
    missing = len(set(args.ids)) - n
    print(f"deleted {n} {args.kind}" + (f"; {missing} id(s) were not stored" if missing else "") +
          "; next: `ptm index` to drop them from the index")
    return EXIT_OK if n else EXIT_USAGE


def cmd_index(settings: Settings, args: argparse.Namespace) -> int:
    from indexer.pipeline import sync_index

    for r in sync_index(settings, rebuild=args.rebuild):
        how = "rebuilt" if r.rebuilt else "updated" if r.changed else "up to date"
        print(f"{r.kind}: {how} — {r.total} indexed ({r.added} added, {r.updated} updated, "
              f"{r.removed} removed) in {r.seconds:.1f} s")
    return EXIT_OK


def cmd_match(settings: Settings, args: argparse.Namespace) -> int:
    from matcher.engine import Engine

    engine = Engine(settings)
    if args.demands:
        for demand_id, matches in _match_file(engine, args.demands, args.k, args.method):
            results = [{"patent_id": m.id, "rank": m.rank, "score": m.score} for m in matches]
            print(json.dumps({"demand_id": demand_id, "results": results}, ensure_ascii=False), flush=True)
        return EXIT_OK
    if args.text is not None:
        matches, header = engine.match_text(args.text, args.k, args.method), "patents for the text"
    elif args.demand:
        matches, header = engine.match_demand(args.demand, args.k, args.method), f"patents for demand {args.demand}"
    else:
        matches, header = engine.match_patent(args.patent, args.k, args.method), f"demands served by patent {args.patent}"
    if args.json:
        print(json.dumps([m.to_dict() for m in matches], ensure_ascii=False))
    else:
        print(format_table(header, matches))
    return EXIT_OK


def _match_file(engine, path: Path, k: int, method: str, chunk: int = 256) -> Iterator[tuple[str, list]]:
    """Validate every line first (so a bad line 900 fails before any output), then match in batches."""
    items = read_demand_lines(path, engine.settings.max_text_chars)
    for start in range(0, len(items), chunk):
        part = items[start : start + chunk]
        results = engine.match_texts([text for _, text in part], k, method)
        yield from zip((i for i, _ in part), results)


def read_demand_lines(path: Path, max_chars: int) -> list[tuple[str, str]]:
    from indexer.records import RecordError, check_text

    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    seen: set[str] = set()
    out = []
    with open(path, encoding="utf-8-sig", errors="strict") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict) or "id" not in obj or "text" not in obj:
                    raise ValueError('each line must be an object with "id" and "text"')
                did = str(obj["id"])
                if did in seen:
                    raise ValueError(f"duplicate id {did!r}")
                seen.add(did)
                text = check_text(f"{obj.get('title') or ''}。{obj['text']}" if obj.get("title") else str(obj["text"]),
                                  "text", max_chars)
            except (ValueError, RecordError) as exc:  # JSONDecodeError is a ValueError
                raise ValueError(f"{path} line {n}: {exc}") from exc
            out.append((did, text))
    return out


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    from matcher.experiment import format_results, run_eval

    results = run_eval(settings, args.corpus, args.queries, args.qrels)
    print(format_results(results))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    return EXIT_OK


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(settings), host=args.host, port=args.port)
    return EXIT_OK


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from indexer.pipeline import ingest_file
    from matcher.engine import Engine

    print(f"workspace: {settings.home.resolve()}")
    for kind in ("patents", "demands"):
        r = ingest_file(settings, kind, DEMO_DIR / f"{kind}.jsonl")
        print(f"ingested {len(r.report.records)} demo {kind} ({r.counts.added} new)")
    cmd_index(settings, argparse.Namespace(rebuild=False))
    engine = Engine(settings)
    for demand in engine.store.list("demands", limit=3):
        print()
        print(format_table(f"demand {demand.id}: {demand.title}", engine.match_demand(demand.id, 5)))
    first = engine.store.list("patents", limit=1)[0]
    print()
    print(format_table(f"demands served by patent {first.id}: {first.title}", engine.match_patent(first.id, 3)))
    print("\nnext: `ptm match --text \"...\"`, `ptm serve` (API docs at http://127.0.0.1:8000/docs)")
    return EXIT_OK


def format_table(header: str, matches: list) -> str:
    from matcher.engine import no_good_match

    if not matches:
        return f"{header}\n  (no candidates)"
    lines = [header]
    if no_good_match(matches):
        lines.append("  没有合适的匹配 (no good match): no candidate reaches 中; the closest ones are listed for reference")
    lines.append(f"{'#':>3}  质量  {'score':>8}  {'dense':>5}  {'bm25':>5}  {'id':<34}  title / matched terms")
    for m in matches:
        dr = "-" if m.dense_rank is None else str(m.dense_rank)
        br = "-" if m.bm25_rank is None else str(m.bm25_rank)
        lines.append(f"{m.rank:>3}  {m.quality}    {m.score:>8.4f}  {dr:>5}  {br:>5}  {m.id:<34}  {m.title[:40]}")
        if m.matched_terms:
            lines.append(f"{'':>66}共同词: {'、'.join(m.matched_terms)}")
    return "\n".join(lines)


def _print_rejections(rejected: list) -> None:
    for r in rejected[:50]:
        print(f"  row {r.row}{f' ({r.id})' if r.id else ''}: {r.reason}", file=sys.stderr)
    if len(rejected) > 50:
        print(f"  … and {len(rejected) - 50} more rejected rows", file=sys.stderr)


COMMANDS = {"ingest": cmd_ingest, "delete": cmd_delete, "index": cmd_index, "match": cmd_match, "eval": cmd_eval,
            "serve": cmd_serve, "demo": cmd_demo}

if __name__ == "__main__":
    raise SystemExit(main())

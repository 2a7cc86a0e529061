"""The `ptm` command line: ingest, index, match (both directions, filters, batch JSON contract), show, eval, serve, demo, doctor, backup, restore; web accounts (user) and API tokens (token); matchmaking sessions (sessions); outcomes ledger (deals)."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.settings import DATASETS_DIR, Settings

if TYPE_CHECKING:  # matcher is imported lazily: `ptm ingest` should not pay for it
    from matcher.filters import Filters

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
    idx.add_argument("--ray", action="store_true", help="embed the texts missing from the embedding cache on Ray "
                     "Data first (millions of patents; see README 'Running at national scale')")
    idx.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to use, e.g. auto or ray://head:10001 "
                     "(default: start a local Ray on this machine)")
    idx.add_argument("--ray-workers", type=int, default=1, metavar="N", help="Ray actors, each holding one model")

    m = sub.add_parser("match", help="rank patents for a demand, or demands for a patent")
    src = m.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="a demand text in Chinese")
    src.add_argument("--demands", type=Path, metavar="FILE.jsonl", help='lines {"id", "title"?, "text"}')
    src.add_argument("--demand", metavar="ID", help="a stored demand")
    src.add_argument("--patent", metavar="ID", help="a stored patent: which demands it serves")
    m.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    m.add_argument("--method", choices=["hybrid", "dense", "bm25"], default="hybrid")
    m.add_argument("--json", action="store_true", help="JSON output (one line per demand with --demands)")
    m.add_argument("--explain", action="store_true", help="also show each candidate's marked text and IPC titles")
    m.add_argument("--value-prior", type=float, metavar="W",
                   help="add W × value score/100 to each patent's score (default PTM_VALUE_PRIOR, 0 = off)")
    _add_filter_args(m)

    sh = sub.add_parser("show", help="print a stored patent: fields, IPC path in Chinese, value score components")
    sh.add_argument("kind", choices=["patent"])
    sh.add_argument("id", metavar="ID")
    sh.add_argument("--json", action="store_true", help="JSON output")

    ev = sub.add_parser("eval", help="retrieval quality (nDCG@10, Recall@k, MRR@10) of each method")
    dev = DATASETS_DIR / "eval" / "dev"
    ev.add_argument("--corpus", type=Path, default=dev / "patents.jsonl", help="default: the shipped dev corpus")
    ev.add_argument("--queries", type=Path, default=dev / "demands.jsonl", help="JSONL {id, title?, text, split?}")
    ev.add_argument("--qrels", type=Path, default=dev / "qrels.tsv", help="demand_id<TAB>patent_id<TAB>grade")
    ev.add_argument("--json", type=Path, metavar="OUT.json", help="also write the figures as JSON")

    sv = sub.add_parser("serve", help="run the HTTP API")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)

    sub.add_parser("demo", help="load the shipped demo data, index it, show matches and create the first staff login")

    us = sub.add_parser("user", help="web accounts: staff, enterprise (linked to its name), university (linked to its applicant name)")
    us_sub = us.add_subparsers(dest="user_command", required=True)
    ua = us_sub.add_parser("add", help="create an account (prints a generated password unless --password-stdin)")
    ua.add_argument("username", nargs="?", help="login name (or --name)")
    ua.add_argument("--name", dest="name_opt", metavar="NAME", help="login name")
    ua.add_argument("--role", choices=["staff", "enterprise", "university"], required=True)
    ua.add_argument("--org", default="", help="enterprise name (企业名称) or university applicant name (e.g. 浙江大学)")
    ua.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    us_sub.add_parser("list", help="list accounts")

    tk = sub.add_parser("token", help="API tokens for scripts (Authorization: Bearer <token>)")
    tk_sub = tk.add_subparsers(dest="token_command", required=True)
    ta = tk_sub.add_parser("add", help="create a token for USER and print it once")
    ta.add_argument("user", metavar="USER")
    ta.add_argument("--scope", action="append", required=True, choices=["read", "patents:write", "demands:write"],
                    help="repeat for several scopes; limited by the user's role")
    ta.add_argument("--label", default="", help="what the token is for")

    dr = sub.add_parser("doctor", help="check that the database and the indexes agree (exit 1 with a list of problems)")
    dr.add_argument("--repair", action="store_true", help="rebuild the indexes from the database, then check again")
    dr.add_argument("--json", action="store_true", help="print the report as JSON")

    bk = sub.add_parser("backup", help="copy the database, live indexes and embedding cache to a new folder")
    bk.add_argument("dest", type=Path, metavar="DEST")
    bk.add_argument("--no-cache", action="store_true", help="leave the embedding cache out (smaller; re-embeds later)")

    rs = sub.add_parser("restore", help="replace the workspace with a backup (verified first, swapped in at once)")
    rs.add_argument("src", type=Path, metavar="SRC")
    rs.add_argument("--force", action="store_true", help="restore over a non-empty workspace (kept as <home>.before-restore-<time>)")
    _add_sessions_parser(sub)
    _add_deals_parser(sub)
    return p


def _add_sessions_parser(sub) -> None:
    """`ptm sessions plan|series|list|show|export` (issue 7: matchmaking sessions 对接会)."""
    from api.exports import FORMATS

    se = sub.add_parser("sessions", help="matchmaking sessions (对接会): plan one or a series, list, show, export")
    se_sub = se.add_subparsers(dest="sessions_command", required=True)

    def caps(q: argparse.ArgumentParser) -> None:
        q.add_argument("--slots", type=int, required=True, help="pitch slots = most patents presented")
        q.add_argument("--seats", type=int, required=True, help="enterprise seats = most enterprises invited")
        q.add_argument("--max-per-university", type=int, metavar="N", help="most patents from one owner (first applicant)")
        q.add_argument("--max-per-field", type=int, metavar="N", help="most patents from one IPC subclass")
        q.add_argument("--min-quality", choices=["强", "中"], default="强",
                       help="weakest pair that counts as a match (default 强; 中 for a corpus where nothing reaches 强)")
        q.add_argument("--json", action="store_true", help="print the plan as JSON")
        q.add_argument("--save", action="store_true", help="store it (and a 推荐 deal per realised pair); prints the id")

    pl = se_sub.add_parser("plan", help="propose the patents and enterprises of one session on a theme")
    pl.add_argument("--theme", default="", help='field keywords in Chinese, e.g. "锂电池 正极"')
    pl.add_argument("--ipc", action="append", default=[], metavar="PREFIX", help="IPC prefix (repeat for several)")
    pl.add_argument("--industry", default="", help="industry of the demands, e.g. 新能源")
    caps(pl)
    pl.add_argument("--date", metavar="YYYY-MM-DD", help="the session's date")
    pl.add_argument("--title", help="the session's title (default: 对接会 · <theme>)")
    pl.add_argument("--venue", default="", help="where it takes place")
    for name, what in (("patent", "ID"), ("enterprise", "NAME")):
        pl.add_argument(f"--include-{name}", action="append", default=[], metavar=what, help=f"pin this {name} (repeat)")
        pl.add_argument(f"--exclude-{name}", action="append", default=[], metavar=what, help=f"leave this {name} out (repeat)")

    sr = se_sub.add_parser("series", help="split the corpus into K themed sessions and show the demand coverage")
    sr.add_argument("--k", type=int, required=True, help="number of sessions")
    caps(sr)
    sr.add_argument("--seed", type=int, default=0, help="clustering seed (the same seed gives the same series)")
    sr.add_argument("--title", default="对接会", help="title prefix of the saved sessions")

    se_sub.add_parser("list", help="the saved sessions, latest first")
    ss = se_sub.add_parser("show", help="a saved session's plan")
    ss.add_argument("id", type=int, metavar="ID")
    ss.add_argument("--json", action="store_true", help="print the stored record as JSON")
    sx = se_sub.add_parser("export", help="write a saved session's agenda, letters and briefs as XLSX or printable HTML")
    sx.add_argument("id", type=int, metavar="ID")
    sx.add_argument("--format", choices=FORMATS, default="xlsx", help="xlsx (three sheets) or html (printable)")
    sx.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: session-ID.FORMAT here")
    sx.add_argument("--start", default="09:30", metavar="HH:MM", help="first slot's start (default 09:30)")
    sx.add_argument("--slot-minutes", type=int, default=15, metavar="N", help="length of a slot (default 15)")


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

    if getattr(args, "ray", False):
        embed_on_ray(settings, args.ray_address, args.ray_workers)

    tty = sys.stderr.isatty()

    def progress(kind: str, done: int, total: int) -> None:
        # On a terminal one line is redrawn; in a log each chunk is a line of its own.
        start = "\r" if tty else ""
        print(f"{start}{kind}: embedded {done}/{total}", end="" if tty and done < total else "\n",
              file=sys.stderr, flush=True)

    for r in sync_index(settings, rebuild=args.rebuild, progress=progress):
        how = "rebuilt" if r.rebuilt else "updated" if r.changed else "up to date"
        print(f"{r.kind}: {how} — {r.total} indexed ({r.added} added, {r.updated} updated, "
              f"{r.removed} removed) in {r.seconds:.1f} s")
    return EXIT_OK


def embed_on_ray(settings: Settings, address: str | None, workers: int) -> None:
    """`ptm index --ray`: fill the embedding cache on Ray Data; the sync that follows then embeds nothing."""
    from indexer.ray_embed import embed_with_ray, start_ray

    print(f"ray: connected in {start_ray(address):.1f} s", file=sys.stderr, flush=True)
    for r in embed_with_ray(settings, concurrency=workers,
                            progress=lambda n: print(f"ray: embedded {n}", file=sys.stderr, flush=True)):
        print(f"{r.kind}: {r.texts} texts, {r.cached} already cached, {r.embedded} embedded on Ray")


def cmd_match(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from matcher.engine import Engine

    if args.value_prior is not None:
        settings = replace(settings, value_prior=args.value_prior)
        settings.validate()
    engine = Engine(settings)
    filters = _filters_from_args(args)
    if filters and args.patent:
        raise ValueError("the filters (--legal-status, --ipc, …) select patents; they do not apply to --patent, which ranks demands")
    if args.demands:
        for demand_id, matches in _match_file(engine, args.demands, args.k, args.method, filters):
            results = [{"patent_id": m.id, "rank": m.rank, "score": m.score} for m in matches]
            print(json.dumps({"demand_id": demand_id, "results": results}, ensure_ascii=False), flush=True)
        return EXIT_OK
    if args.text is not None:
        matches, header = engine.match_text(args.text, args.k, args.method, filters), "patents for the text"
    elif args.demand:
        matches, header = engine.match_demand(args.demand, args.k, args.method, filters), f"patents for demand {args.demand}"
    else:
        matches, header = engine.match_patent(args.patent, args.k, args.method), f"demands served by patent {args.patent}"
    if args.json:
        print(json.dumps([m.to_dict() for m in matches], ensure_ascii=False))
    else:
        print(format_table(header + (f" [{filters.describe()}]" if filters else ""), matches, args.explain))
    return EXIT_OK


def _add_filter_args(m: argparse.ArgumentParser) -> None:
    f = m.add_argument_group("filters (patents only; repeat a list option for any-of)")
    f.add_argument("--legal-status", action="append", metavar="S", help="有效, 审中, 失效, 驳回, 撤回")
    f.add_argument("--patent-type", action="append", metavar="T", help="发明, 实用新型, 外观设计")
    f.add_argument("--ipc", action="append", metavar="PREFIX", help="IPC prefix: H, H04, H04N, H04N5, H04N5/22")
    f.add_argument("--applicant-type", action="append", metavar="T",
                   help="university, research_institute, enterprise, individual (or 高校, 科研机构, 企业, 个人)")
    f.add_argument("--region", help="part of the region, e.g. 北京")
    f.add_argument("--transferable-only", action="store_true", help="only patents marked transferable")
    f.add_argument("--min-value", type=float, metavar="0-100", help="minimum value score (`ptm show patent ID`)")
    f.add_argument("--date-from", metavar="YYYY-MM-DD", help="application date on or after")
    f.add_argument("--date-to", metavar="YYYY-MM-DD", help="application date on or before")


def _filters_from_args(args: argparse.Namespace) -> Filters | None:
    """A validated Filters, or None without filter options; a bad value raises ValueError (exit 2)."""
    from matcher.filters import build_filters

    return build_filters(
        legal_status=args.legal_status, patent_type=args.patent_type, ipc_prefix=args.ipc,
        applicant_type=args.applicant_type, region=args.region, transferable_only=args.transferable_only,
        min_value=args.min_value, date_from=args.date_from, date_to=args.date_to,
    )


def _match_file(engine, path: Path, k: int, method: str, filters=None, chunk: int = 256) -> Iterator[tuple[str, list]]:
    """Validate every line first (so a bad line 900 fails before any output), then match in batches."""
    items = read_demand_lines(path, engine.settings.max_text_chars)
    for start in range(0, len(items), chunk):
        part = items[start : start + chunk]
        results = engine.match_texts([text for _, text in part], k, method, filters)
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
    # Real BDCI demands reach at best 中 against the 400 demo patents; the written ones (fictional invitees
    # 演示企业Q…) give the session planner enterprises with strong matches.
    for kind, name in (("patents", "patents"), ("demands", "demands"), ("demands", "demands_written")):
        r = ingest_file(settings, kind, DEMO_DIR / f"{name}.jsonl")
        print(f"ingested {len(r.report.records)} demo {kind} from {name}.jsonl ({r.counts.added} new)")
    cmd_index(settings, argparse.Namespace(rebuild=False))
    engine = Engine(settings)
    # Real BDCI demands mostly ask for things 400 patents do not cover (hence "no good match");
    # two demands written for the demo corpus show what a served demand looks like.
    for demand_id in ("D-07f2949c", "Q014", "Q015"):
        demand = engine.store.get("demands", demand_id)
        print()
        print(format_table(f"demand {demand.id}: {demand.title}", engine.match_demand(demand.id, 5), explain=True))
    first = engine.store.list("patents", limit=1)[0]
    print()
    print(format_table(f"demands served by patent {first.id}: {first.title}", engine.match_patent(first.id, 3)))
    print()
    _demo_session(engine)
    print()
    _demo_staff_login(settings)
    print("\nnext: `ptm serve`, then open http://127.0.0.1:8000/ (API docs at /docs); `ptm match --text \"...\"`")
    return EXIT_OK


def _demo_session(engine) -> None:
    """One matchmaking session planned over the whole demo corpus (not saved), so the planner is seen working."""
    from api.planning import Edits, solve
    from matcher.sessions.candidates import Theme
    from matcher.sessions.plan import Limits

    plan = solve(engine, Theme(), Limits(slots=6, seats=8, max_per_university=2), Edits(), "强")
    print(format_session_plan(plan, engine.store))
    print("plan and save your own: `ptm sessions plan --theme \"污水 污泥\" --slots 6 --seats 8 --save`; "
          "a year's series: `ptm sessions series --k 10 --slots 8 --seats 10`")


def _demo_staff_login(settings: Settings) -> None:
    """The first staff account, so the web UI can be opened right after `ptm demo`; once per workspace."""
    import secrets

    from api.auth import create_user
    from api.webstore import WebStore

    web = WebStore(settings.db_path)
    if web.count_users("staff"):
        print("web login: a staff account exists already (`ptm user list`; `ptm user add` for more)")
        return
    password = secrets.token_urlsafe(12)
    create_user(web, "staff", "staff", "", password)
    # Printed once to the terminal that asked for it; only the argon2 hash is stored.
    print(f"web login created: user `staff`, password `{password}` (shown once; keep it)")


def cmd_user(settings: Settings, args: argparse.Namespace) -> int:
    import secrets

    from api.auth import create_user
    from api.webstore import WebStore

    web = WebStore(settings.db_path)
    if args.user_command == "list":
        for u in web.users():
            print(f"{u.username}\t{u.role}\t{u.org}")
        return EXIT_OK
    username = args.name_opt or args.username
    if not username:
        raise ValueError("give the login name: `ptm user add NAME --role ...` or --name NAME")
    generated = not args.password_stdin
    password = secrets.token_urlsafe(12) if generated else sys.stdin.readline().rstrip("\r\n")
    user = create_user(web, username, args.role, args.org, password)
    print(f"created {user.role} account {user.username!r}" + (f" for {user.org}" if user.org else ""))
    if generated:
        print(f"password: {password}  (shown once; only its hash is stored)")
    return EXIT_OK


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    from api.auth import create_token
    from api.webstore import WebStore

    token = create_token(WebStore(settings.db_path), args.user, args.scope, args.label)
    print(token)
    print(f"(scopes: {' '.join(sorted(set(args.scope)))}; shown once, only its hash is stored; "
          "send it as `Authorization: Bearer <token>`)", file=sys.stderr)
    return EXIT_OK


def format_table(header: str, matches: list, explain: bool = False) -> str:
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
        if explain:
            lines += [f"{'':>66}{line}" for line in [m.snippet, *m.ipc] if line]
    return "\n".join(lines)


def _print_rejections(rejected: list) -> None:
    for r in rejected[:50]:
        print(f"  row {r.row}{f' ({r.id})' if r.id else ''}: {r.reason}", file=sys.stderr)
    if len(rejected) > 50:
        print(f"  … and {len(rejected) - 50} more rejected rows", file=sys.stderr)


def cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    from indexer.pipeline import open_store
    from indexer.value import patent_value

    patent = open_store(settings).get("patents", args.id)
    if patent is None:
        raise ValueError(f"no patent with id {args.id!r}; check the id (publication or application number)")
    value = patent_value(patent)
    if args.json:
        print(json.dumps({"patent": patent.model_dump(mode="json"), "ipc_paths": _ipc_paths(patent.ipc),
                          "value": value.to_dict()}, ensure_ascii=False))
    else:
        print(format_patent(patent, value))
    return EXIT_OK


def _ipc_paths(codes: list[str]) -> dict[str, list[dict]]:
    from indexer import ipc

    return {code: [node._asdict() for node in ipc.path(code)] for code in codes}


def format_patent(patent, value) -> str:
    """A patent for people: its fields, each IPC code's path with Chinese titles, the value components."""
    from indexer import ipc

    lines = [f"{patent.id}  {patent.title}"]
    shown = ("patent_type", "legal_status", "application_date", "application_number", "publication_number",
             "applicants", "applicant_type", "region", "transferable", "price_wan", "licence_terms",
             "claim_count", "citation_count", "transfer_count", "licence_count", "pledge_count")
    for name in shown:
        v = getattr(patent, name)
        if v not in (None, "", [], "unknown"):
            lines.append(f"  {name:<19}{'；'.join(v) if isinstance(v, list) else v}")
    lines.append("  IPC" + ("" if patent.ipc else "  (none)"))
    for code in patent.ipc:
        nodes = ipc.path(code)
        known = "" if nodes and nodes[-1].code == ipc.canonical(code) else "  (not in IPC 2026.01; nearest known level)"
        lines.append(f"    {code}{known}")
        lines.extend(f"      {'  ' * i}{n.code} {n.title[:60]}" for i, n in enumerate(nodes))
    lines.append(f"  value score {value.total:.1f} / 100  ({' + '.join(f'{d.name} × {d.weight:g}' for d in value.dimensions)})")
    for d in value.dimensions:
        lines.append(f"    {d.name:<10} {d.score:5.1f}")
        for f in d.factors:
            flag = "  [no data: neutral]" if f.missing else ""
            lines.append(f"      {f.name:<15} {f.score:5.1f} × {f.weight:.1f}  {f.basis}{flag}")
    lines.append(f"  abstract: {patent.abstract}")
    return "\n".join(lines)


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    from indexer import doctor

    report = doctor.repair(settings) if args.repair else doctor.check(settings)
    print(json.dumps(report.to_dict(), ensure_ascii=False) if args.json else report.format())
    return EXIT_OK if report.healthy else EXIT_ERROR


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from indexer.backup import backup

    manifest = backup(settings, args.dest, include_cache=not args.no_cache)
    print(f"backed up {settings.home} to {args.dest}: " + _describe_counts(manifest) +
          ("" if manifest["cache"] else "; no embedding cache") +
          ("; the Qdrant collections are not in it: after a restore, `ptm index` rebuilds them from the store"
           if manifest.get("backend") == "qdrant" else ""))
    return EXIT_OK


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from indexer.backup import restore

    manifest, aside = restore(settings, args.src, force=args.force)
    print(f"restored {args.src} (taken {manifest['created']}) into {settings.home}: {_describe_counts(manifest)}"
          + (f"; the previous workspace is in {aside}" if aside else "")
          + ("\nnext: `ptm index` (the Qdrant collections follow the restored store), then `ptm doctor`"
             if settings.backend == "qdrant" else "\nnext: `ptm doctor` to check it"))
    return EXIT_OK


def _describe_counts(manifest: dict) -> str:
    return ", ".join(f"{c['stored']} {kind} ({c['indexed']} indexed)" for kind, c in manifest["counts"].items())


# ---- sessions (对接会, issue 7) ----------------------------------------------------------------------
def cmd_sessions(settings: Settings, args: argparse.Namespace) -> int:
    commands = {"plan": _sessions_plan, "series": _sessions_series, "list": _sessions_list,
                "show": _sessions_show, "export": _sessions_export}
    if args.sessions_command not in commands:
        raise ValueError(f"sessions command must be one of {', '.join(commands)}, not {args.sessions_command!r}")
    return commands[args.sessions_command](settings, args)


def _limits_from_args(args: argparse.Namespace):
    from matcher.sessions.plan import Limits

    limits = Limits(slots=args.slots, seats=args.seats, max_per_university=args.max_per_university,
                    max_per_field=args.max_per_field)
    limits.validate()
    return limits


def _parse_date(value: str | None):
    from datetime import date

    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--date must be a date like 2026-12-10, not {value!r}") from None


def _sessions_plan(settings: Settings, args: argparse.Namespace) -> int:
    from api.planning import Edits, limits_dict, save_plan, solve, theme_dict
    from indexer.ledger import Ledger
    from matcher.engine import Engine
    from matcher.sessions.candidates import Theme

    theme = Theme(keywords=args.theme.strip(), ipc=tuple(args.ipc), industry=args.industry.strip())
    if not (theme.keywords or theme.ipc or theme.industry):
        raise ValueError("give a theme: --theme \"锂电池 正极\", --ipc H01M and/or --industry 新能源")
    limits, on = _limits_from_args(args), _parse_date(args.date)
    edits = Edits.from_dict({"include_patents": args.include_patent, "exclude_patents": args.exclude_patent,
                             "include_enterprises": args.include_enterprise,
                             "exclude_enterprises": args.exclude_enterprise})
    engine = Engine(settings)
    plan = solve(engine, theme, limits, edits, args.min_quality)
    saved = None
    if args.save:
        saved = save_plan(Ledger(engine.store), plan, title=args.title or f"对接会 · {theme.label()}", on=on,
                          theme=theme_dict(theme), limits=limits_dict(limits, edits, args.min_quality),
                          venue=args.venue)
    if args.json:
        print(json.dumps({**plan.to_dict(), "session_id": saved[0] if saved else None}, ensure_ascii=False))
    else:
        print(format_session_plan(plan, engine.store))
        if saved:
            print(f"saved as session {saved[0]}; {saved[1]} 推荐 deal(s) recorded; "
                  f"next: `ptm sessions export {saved[0]} --format xlsx`")
    return EXIT_OK


def _sessions_series(settings: Settings, args: argparse.Namespace) -> int:
    from api.planning import Edits, limits_dict, save_plan
    from indexer.ledger import Ledger
    from matcher.engine import Engine
    from matcher.sessions.candidates import plan_series

    if args.k < 1:
        raise ValueError(f"--k must be a whole number >= 1, not {args.k}")
    limits = _limits_from_args(args)
    engine = Engine(settings)
    series = plan_series(engine, args.k, limits, seed=args.seed, min_quality=args.min_quality)
    ids = []
    if args.save:
        ledger = Ledger(engine.store)
        for i, plan in enumerate(series.sessions, start=1):
            ids.append(save_plan(ledger, plan, title=f"{args.title} {i}/{args.k} · {plan.theme}", on=None,
                                 theme={"label": plan.theme, "series": i, "k": args.k, "seed": args.seed},
                                 limits=limits_dict(limits, Edits(), args.min_quality))[0])
    if args.json:
        print(json.dumps({**series.to_dict(), "session_ids": ids}, ensure_ascii=False))
        return EXIT_OK
    for i, plan in enumerate(series.sessions, start=1):
        print(f"== session {i}/{args.k}" + (f" (saved as {ids[i - 1]})" if ids else ""))
        print(format_session_plan(plan, engine.store))
        print()
    print(format_coverage(series.coverage, args.min_quality))
    return EXIT_OK


def _sessions_list(settings: Settings, args: argparse.Namespace) -> int:
    from indexer.ledger import Ledger
    from indexer.pipeline import open_store

    records = Ledger(open_store(settings)).sessions()
    if not records:
        print("no sessions saved yet; plan one with `ptm sessions plan --theme ... --slots N --seats M --save`")
    for r in records:
        plan = r.plan
        print(f"{r.id:>4}  {r.date.isoformat() if r.date else '(no date)':<10}  {len(plan.get('patents', [])):>3} patents  "
              f"{len(plan.get('enterprises', [])):>3} enterprises  objective {float(plan.get('objective', 0)):.3f}  {r.title}")
    return EXIT_OK


def _sessions_show(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from api.planning import saved_plan
    from indexer.ledger import Ledger
    from indexer.pipeline import open_store

    store = open_store(settings)
    record = Ledger(store).session(args.id)
    if record is None:
        raise ValueError(f"there is no session {args.id}; list them with `ptm sessions list`")
    if args.json:
        print(json.dumps(asdict(record), ensure_ascii=False, default=str))
        return EXIT_OK
    print(f"session {record.id}: {record.title}" + (f"  {record.date.isoformat()}" if record.date else "") +
          (f"  {record.venue}" if record.venue else ""))
    print(format_session_plan(saved_plan(record), store))
    return EXIT_OK


def _sessions_export(settings: Settings, args: argparse.Namespace) -> int:
    from api.exports import Timing, parse_start
    from api.planning import export_session
    from indexer.ledger import Ledger
    from matcher.engine import Engine

    engine = Engine(settings)
    data = export_session(engine, Ledger(engine.store), args.id, args.format,
                          Timing(start=parse_start(args.start), slot_minutes=args.slot_minutes))
    out = args.output or Path(f"session-{args.id}.{args.format}")
    out.write_bytes(data)
    print(f"wrote {out} ({len(data):,} bytes, {args.format})")
    return EXIT_OK


def format_session_plan(plan, store) -> str:
    """A plan for the terminal: each slot's patent, owner and matched enterprises; each enterprise's patents."""
    patents = {pid: store.get("patents", pid) for pid in plan.patents}
    lines = [f"session plan: {plan.theme or '(no theme)'}  [{plan.status}]  objective {plan.objective:.4f}; "
             f"{len(plan.patents)} patents, {len(plan.enterprises)} enterprises; "
             f"unfilled: {plan.unfilled_slots} slot(s), {plan.unfilled_seats} seat(s)"]
    if not plan.patents:
        lines.append("  no patent has a strong match with an enterprise on this theme; widen the theme or check "
                     "that demands are indexed")
        return "\n".join(lines)
    lines.append("slots")
    for slot, pid in enumerate(plan.patents, start=1):
        p = patents[pid]
        owner = p.applicants[0] if p and p.applicants else "—"
        lines.append(f"{slot:>4}  {pid:<20}  {(p.title if p else '(deleted)')[:36]}  [{owner}]")
        matched = [f"{q.enterprise} {q.score:.3f}" for q in plan.pairs if q.patent_id == pid]
        lines.append(f"{'':>6}→ {', '.join(matched)}")
    lines.append("invited enterprises")
    for e in plan.enterprises:
        matched = [f"{q.patent_id} {q.score:.3f}" for q in plan.pairs if q.enterprise == e]
        lines.append(f"  {e}: {', '.join(matched)}")
    return "\n".join(lines)


def format_coverage(coverage, min_quality: str = "强") -> str:
    match = "strong (强) match" if min_quality == "强" else f"{min_quality}-or-better match"
    share = coverage.covered / coverage.with_strong_match if coverage.with_strong_match else 0.0
    lines = [f"coverage: {coverage.covered} of the {coverage.with_strong_match} demands that have a {match} "
             f"somewhere ({share:.0%}) meet one in the series; {coverage.demands} demands in all, "
             f"{len(coverage.unmatched)} with no {match} in the corpus"]
    if coverage.uncovered:
        lines.append(f"  left without a presented {match}: " + ", ".join(coverage.uncovered))
    if coverage.unmatched:
        lines.append(f"  no {match} anywhere: " + ", ".join(coverage.unmatched))
    return "\n".join(lines)


# ---- deals: the centre's ledger (issue 7 outcomes) ----------------------------------------------------------
def _add_deals_parser(sub) -> None:
    """`ptm deals record|list|report|eval`: outcomes of matchmaking, stage by stage, amounts in 万元."""
    dl = sub.add_parser("deals", help="outcomes (推荐→意向→洽谈→签约→完成, 终止): record, list, report, evaluate the ranking")
    dl_sub = dl.add_subparsers(dest="deals_command", required=True)
    rc = dl_sub.add_parser("record", help="move the (PATENT, ENTERPRISE) deal to a stage (creates it if new)")
    rc.add_argument("patent", metavar="PATENT")
    rc.add_argument("enterprise", metavar="ENTERPRISE")
    rc.add_argument("--stage", required=True, help="推荐 意向 洽谈 签约 完成 终止 (or recommended interest negotiation "
                                                    "signed completed dropped)")
    rc.add_argument("--kind", help="contract kind at 签约: 转让 许可 作价入股 (assignment licence equity)")
    rc.add_argument("--amount", type=float, metavar="WAN", help="contract amount in 万元 (0 for a free licence)")
    rc.add_argument("--date", metavar="YYYY-MM-DD", help="when the stage was reached (default today)")
    rc.add_argument("--demand", metavar="ID", help="the enterprise's demand this deal answers")
    rc.add_argument("--session", type=int, metavar="ID", help="the session (对接会) it came from")
    rc.add_argument("--note", default="", help="free text kept with this step")
    rc.add_argument("--correct", action="store_true", help="allow moving back (or reopening 终止) to fix a mistaken entry")
    rc.add_argument("--json", action="store_true", help="print the deal as JSON")
    ls = dl_sub.add_parser("list", help="the deals in pipeline order")
    ls.add_argument("--stage", help="only deals at this stage")
    ls.add_argument("--session", type=int, metavar="ID", help="only deals from this session")
    ls.add_argument("--json", action="store_true", help="one JSON array")
    rp = dl_sub.add_parser("report", help="totals and amounts grouped by period, university, field or session")
    rp.add_argument("--by", default="period", help="period | university | field | session (default period)")
    rp.add_argument("--period", default="quarter", help="month | quarter | year of the 签约 date (default quarter)")
    rp.add_argument("--json", action="store_true", help="totals and rows as JSON")
    ev = dl_sub.add_parser("eval", help="how highly the engine ranked the pairs that went on to 意向 / 签约")
    ev.add_argument("--recorded-only", action="store_true", help="only the ranks recorded at recommendation (no re-match)")
    ev.add_argument("--depth", type=int, default=100, metavar="K", help="re-match depth: a pair below it is a miss (default 100)")
    ev.add_argument("--json", action="store_true", help="the metrics as JSON")


def cmd_deals(settings: Settings, args: argparse.Namespace) -> int:
    commands = {"record": _deals_record, "list": _deals_list, "report": _deals_report, "eval": _deals_eval}
    if args.deals_command not in commands:
        raise ValueError(f"deals command must be one of {', '.join(commands)}, not {args.deals_command!r}")
    return commands[args.deals_command](settings, args)


def _ledger(settings: Settings):
    from indexer.ledger import Ledger
    from indexer.pipeline import open_store

    return Ledger(open_store(settings))


def _deal_json(deal) -> dict:
    from dataclasses import asdict

    return {**asdict(deal), "reached": deal.reached, "signed_on": deal.signed_on}


def _wan(amount: float | None) -> str:
    return "" if amount is None else f"{amount:,.2f}"


def _deals_record(settings: Settings, args: argparse.Namespace) -> int:
    on = _parse_date(args.date)
    deal = _ledger(settings).record(args.patent, args.enterprise, args.stage, demand_id=args.demand, kind=args.kind,
                                    amount_wan=args.amount, on=on, session_id=args.session, note=args.note,
                                    user="cli", correct=args.correct)
    if args.json:
        print(json.dumps(_deal_json(deal), ensure_ascii=False, default=str))
        return EXIT_OK
    terms = f" ({deal.kind}, {_wan(deal.amount_wan)} 万元)" if deal.kind else ""
    print(f"deal {deal.id}: {deal.patent_id} × {deal.enterprise} → {deal.stage}{terms} "
          f"on {deal.stage_dates.get(deal.stage)}")
    return EXIT_OK


def _deals_list(settings: Settings, args: argparse.Namespace) -> int:
    deals = _ledger(settings).deals(stage=args.stage, session_id=args.session)
    if args.json:
        print(json.dumps([_deal_json(d) for d in deals], ensure_ascii=False, default=str))
        return EXIT_OK
    rows = [[str(d.id), d.stage, d.patent_id, d.enterprise, d.kind or "", _wan(d.amount_wan),
             str(d.signed_on or ""), str(d.session_id or ""), str(d.engine_rank or "")] for d in deals]
    print(aligned_table(["id", "stage", "patent", "enterprise", "kind", "万元", "signed", "session", "rank"], rows,
                        right=(0, 5, 7, 8)))
    signed = [d for d in deals if d.stage in ("签约", "完成")]
    print(f"{len(deals)} deals; {len(signed)} signed or completed, "
          f"{_wan(sum(d.amount_wan or 0 for d in signed))} 万元")
    return EXIT_OK


_REPORT_COLUMNS = ("deals", "interest", "negotiating", "signed", "completed", "dropped", "signed_amount_wan",
                   "completed_amount_wan")
_REPORT_HEADER = ["deals", "意向", "洽谈", "签约", "完成", "终止", "签约万元", "完成万元"]


def _report_cells(totals) -> list[str]:
    values = totals.to_dict()
    return [_wan(values[c]) if c.endswith("_wan") else str(values[c]) for c in _REPORT_COLUMNS]


def _deals_report(settings: Settings, args: argparse.Namespace) -> int:
    from matcher.sessions.outcomes import ledger_reports

    overall, reports = ledger_reports(_ledger(settings), [args.by], args.period)
    rows = reports[args.by]
    if args.json:
        print(json.dumps({"by": args.by, "period": args.period if args.by == "period" else None,
                          "totals": overall.to_dict(), "rows": [r.to_dict() for r in rows]}, ensure_ascii=False))
        return EXIT_OK
    table = [[r.key, *_report_cells(r.totals)] for r in rows] + [["合计", *_report_cells(overall)]]
    print(aligned_table([args.by, *_REPORT_HEADER], table, right=range(1, len(_REPORT_HEADER) + 1)))
    kinds = ", ".join(f"{k} {t.count} ({_wan(t.amount_wan)} 万元)" for k, t in overall.by_kind.items())
    print(f"by kind: {kinds}")
    return EXIT_OK


def _deals_eval(settings: Settings, args: argparse.Namespace) -> int:
    from matcher.sessions.outcomes import RECALL_KS, current_ranks, evaluate_ranking

    ledger = _ledger(settings)
    deals = ledger.deals()
    current = None
    if not args.recorded_only:
        from matcher.engine import Engine

        current = current_ranks(Engine(settings, ledger.store), deals, depth=args.depth)
    rows = evaluate_ranking(deals, current)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print("no deal has reached 意向 with a known engine rank yet; record outcomes with `ptm deals record`")
        return EXIT_OK
    table = [[r.outcome, r.source, str(r.metrics.pairs), str(r.metrics.found), f"{r.metrics.mrr:.3f}",
              *(f"{r.metrics.recall[k]:.3f}" for k in RECALL_KS),
              "" if r.metrics.median_rank is None else f"{r.metrics.median_rank:g}"] for r in rows]
    print(aligned_table(["reached", "rank", "pairs", "found", "MRR", *(f"R@{k}" for k in RECALL_KS), "median"], table,
                        right=range(2, 9)))
    return EXIT_OK


def _display_width(text: str) -> int:
    import unicodedata

    # Chinese characters take two terminal columns; without this the columns drift.
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def aligned_table(header: list[str], rows: list[list[str]], right: Sequence[int] = ()) -> str:
    """Columns padded to the widest cell (by terminal width); `right` = indexes of right-aligned columns."""
    widths = [max(_display_width(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        pads = [" " * (w - _display_width(c)) for c, w in zip(cells, widths)]
        return "  ".join(p + c if i in right else c + p for i, (c, p) in enumerate(zip(cells, pads))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


COMMANDS = {"ingest": cmd_ingest, "delete": cmd_delete, "index": cmd_index, "match": cmd_match, "eval": cmd_eval,
            "serve": cmd_serve, "demo": cmd_demo, "show": cmd_show, "doctor": cmd_doctor,
            "backup": cmd_backup, "restore": cmd_restore, "user": cmd_user, "token": cmd_token, "sessions": cmd_sessions,
            "deals": cmd_deals}

if __name__ == "__main__":
    raise SystemExit(main())

"""Plans a year's series of matchmaking sessions on the demo data and prints it with its coverage.

    .venv/bin/python scripts/demo_series.py [--home DIR] [--sessions 10] [--slots 8] [--seats 10]
        [--max-per-university 3] [--max-per-field N] [--min-quality 强|中] [--seed 0] [--json]

Reuses the workspace at --home (default: PTM_HOME or ./ptm-data) when it holds an index; otherwise imports and
indexes the shipped demo data there first (what `ptm demo` does, about a minute the first time).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from indexer.settings import DATASETS_DIR, Settings  # noqa: E402
from matcher.engine import Engine  # noqa: E402
from matcher.sessions.candidates import MIN_QUALITIES, plan_series  # noqa: E402
from matcher.sessions.plan import Limits  # noqa: E402
from matcher.sessions.series import format_series  # noqa: E402


def ensure_workspace(settings: Settings) -> None:
    """Import and index the demo data unless the workspace already has a patents index."""
    from indexer import index as index_mod
    from indexer.pipeline import ingest_file, sync_index

    if index_mod.current_generation(settings.index_dir, "patents") is not None:
        return
    print(f"building the demo workspace in {settings.home} …", file=sys.stderr)
    for kind in ("patents", "demands"):
        ingest_file(settings, kind, DATASETS_DIR / "demo" / f"{kind}.jsonl")
    sync_index(settings)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--seats", type=int, default=10)
    ap.add_argument("--max-per-university", type=int, default=3)
    ap.add_argument("--max-per-field", type=int, default=None)
    ap.add_argument("--min-quality", choices=MIN_QUALITIES, default="强")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    settings = Settings.from_env(home=args.home)
    ensure_workspace(settings)
    engine = Engine(settings)
    limits = Limits(args.slots, args.seats, args.max_per_university, args.max_per_field)
    started = time.perf_counter()
    series = plan_series(engine, args.sessions, limits, seed=args.seed, min_quality=args.min_quality,
                         time_limit_s=args.time_limit)
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps(series.to_dict(), ensure_ascii=False, indent=1))
        return 0
    titles = {p: getattr(engine.store.get("patents", p), "title", "") for s in series.sessions for p in s.patents}
    print(f"workspace {settings.home.resolve()}: {engine.store.count('patents')} patents, "
          f"{engine.store.count('demands')} demands; {args.sessions} sessions, slots {args.slots}, seats {args.seats}, "
          f"max per university {args.max_per_university}, pairs of quality >= {args.min_quality}; planned in {seconds:.1f} s")
    print()
    print(format_series(series, titles))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

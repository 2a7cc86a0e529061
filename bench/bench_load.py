"""Load and soak test: a local `ptm serve` under N concurrent simulated users; errors, latency per kind, memory.

    .venv/bin/python bench/bench_load.py [--users 50] [--duration 60] [--home WS] [--quick] [--soak 600] [--only KIND]

Starts the server itself (uvicorn subprocess on 127.0.0.1 only), on a demo workspace made in a temp folder (or
the one given with --home, which gets the harness accounts and two new API tokens), then runs an async client (httpx) where every user
loops over a weighted mix of requests with no think time:
    match      POST /match with a real demand text (anonymous, the public catalogue)
    post       an enterprise posts or edits one of its demands through the API (Bearer token, demands:write);
               each user cycles over 4 demand ids, so the store stays bounded during a soak
    catalogue  GET / and GET /?q=… (anonymous page views)
    dashboard  GET /staff with a signed-in staff session
Any status >= 400 or transport error counts as an error (the run fails if there is one). Prints requests,
errors, p50/p99 per kind, throughput, and the server's RSS at the start and end. `--soak SECONDS` also samples the
server's RSS every 10 s and prints the slope (least squares, MB/min, after a 2-minute warm-up) and the max;
memory is called stable when that slope is below STABLE_MB_PER_MIN. `--only KIND` (repeatable) sends one kind of
request only, to see which one a memory growth comes from.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
import numpy as np

from indexer.settings import DATASETS_DIR, REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))  # the server harness lives with the reliability tests
from tests.reliability.live_server import HOST, LiveServer, rss_mb, seed_accounts, sign_in  # noqa: E402

Kind = Literal["match", "post", "catalogue", "dashboard"]
MIX: dict[Kind, float] = {"match": 0.4, "post": 0.1, "catalogue": 0.3, "dashboard": 0.2}
SAMPLE_EVERY_S = 10.0
WARMUP_S = 120.0
STABLE_MB_PER_MIN = 1.0  # < 10 MB over a 10-minute soak: no sustained growth
QUERIES = ["锂电池包防爆阀", "茶叶烘干设备", "污水处理 膜生物反应器", "智能温室 传感器", "钢材表面耐磨涂层"]


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[str] = field(default_factory=list)

    def record(self, kind: str, seconds: float, error: str | None) -> None:
        self.latencies[kind].append(seconds)
        if error:
            self.errors[kind] += 1
            if len(self.examples) < 10:
                self.examples.append(f"{kind}: {error}")


def demand_texts() -> list[str]:
    with open(DATASETS_DIR / "eval" / "dev" / "demands.jsonl", encoding="utf-8") as fh:
        return [json.loads(line)["text"][:1500] for line in fh if line.strip()]


def make_workspace(root: Path) -> Path:
    """The demo data, ingested and indexed, as `ptm demo` does (without its printed tour)."""
    from indexer.pipeline import ingest_file, sync_index
    from indexer.settings import Settings

    settings = Settings.from_env(home=root / "ws")
    for kind in ("patents", "demands"):
        ingest_file(settings, kind, DATASETS_DIR / "demo" / f"{kind}.jsonl")
    sync_index(settings)
    return settings.home


async def one_request(kind: Kind, client: httpx.AsyncClient, user: int, n: int, rng: random.Random,
                      texts: list[str], token: str) -> httpx.Response:
    if kind == "match":
        return await client.post("/match", json={"text": rng.choice(texts), "k": 10})
    if kind == "post":
        body = {"id": f"LOAD-{user:02d}-{n % 4}", "title": f"负载测试需求 {user}-{n % 4}",
                "text": f"{rng.choice(texts)}（第 {n} 次修改）"}
        return await client.post("/demands", json=body, headers={"Authorization": f"Bearer {token}"})
    if kind == "catalogue":
        return await client.get("/", params={"q": rng.choice(QUERIES)} if n % 2 else None)
    if kind == "dashboard":
        return await client.get("/staff")
    raise ValueError(f"kind must be one of {', '.join(MIX)}, not {kind!r}")


async def user_loop(base: str, user: int, until: float, tally: Tally, texts: list[str], accounts: dict[str, str],
                    cookies: httpx.Cookies) -> None:
    rng = random.Random(user)
    kinds, weights = list(MIX), list(MIX.values())
    async with httpx.AsyncClient(base_url=base, timeout=120, cookies=cookies) as client:
        n = 0
        while time.monotonic() < until:
            kind = rng.choices(kinds, weights)[0]
            start = time.perf_counter()
            error = None
            try:
                r = await one_request(kind, client, user, n, rng, texts, accounts["enterprise_token"])
                if r.status_code >= 400:
                    error = f"HTTP {r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            tally.record(kind, time.perf_counter() - start, error)
            n += 1


async def sample_rss(pid: int, until: float, samples: list[tuple[float, float]]) -> None:
    start = time.monotonic()
    while time.monotonic() < until:
        samples.append((time.monotonic() - start, rss_mb(pid)))
        await asyncio.sleep(min(SAMPLE_EVERY_S, max(0.0, until - time.monotonic())))
    samples.append((time.monotonic() - start, rss_mb(pid)))


def slope_mb_per_min(samples: list[tuple[float, float]], warmup_s: float) -> float:
    """Least-squares slope of RSS over time, ignoring the warm-up (caches and the model filling up)."""
    pts = np.array([s for s in samples if s[0] >= warmup_s] or samples)
    if len(pts) < 2:
        return 0.0
    return float(np.polyfit(pts[:, 0] / 60.0, pts[:, 1], 1)[0])


def report(tally: Tally, seconds: float) -> int:
    total = sum(len(v) for v in tally.latencies.values())
    errors = sum(tally.errors.values())
    print(f"{'kind':<10} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7}")
    for kind in MIX:
        lat = np.array(tally.latencies.get(kind, [])) * 1000
        if len(lat):
            print(f"{kind:<10} {len(lat):>9} {tally.errors.get(kind, 0):>7} {np.percentile(lat, 50):>8.0f} "
                  f"{np.percentile(lat, 99):>8.0f} {len(lat) / seconds:>7.1f}")
    print(f"{'all':<10} {total:>9} {errors:>7} {'':>8} {'':>8} {total / seconds:>7.1f}")
    for line in tally.examples:
        print("  error:", line)
    return errors


async def run(base: str, pid: int, users: int, duration: float, soak: bool, accounts: dict[str, str]) -> int:
    texts = demand_texts()
    tally = Tally()
    samples: list[tuple[float, float]] = []
    with httpx.Client(base_url=base, timeout=600) as staff:  # one staff session, shared by every simulated user
        sign_in(staff, accounts["staff"], accounts["password"])
        cookies = staff.cookies
        rss_boot = rss_mb(pid)
        t0 = time.perf_counter()
        staff.post("/match", json={"text": texts[0], "k": 10}).raise_for_status()  # the model loads on first use
        print(f"warm-up (model load in the server): {time.perf_counter() - t0:.0f} s", flush=True)
    rss_start = rss_mb(pid)
    start = time.monotonic()
    until = start + duration
    await asyncio.gather(sample_rss(pid, until, samples),
                         *(user_loop(base, u, until, tally, texts, accounts, cookies) for u in range(users)))
    seconds = time.monotonic() - start
    print(f"{users} users for {seconds:.0f} s against {base}")
    errors = report(tally, seconds)
    rss_end = rss_mb(pid)
    print(f"server RSS: at start {rss_boot:.0f} MB, after warm-up {rss_start:.0f} MB, end {rss_end:.0f} MB, "
          f"max {max([mb for _, mb in samples] + [rss_end]):.0f} MB")
    if soak:
        slope = slope_mb_per_min(samples, WARMUP_S)
        print("RSS samples (s: MB): " + ", ".join(f"{t:.0f}: {mb:.0f}" for t, mb in samples))
        print(f"RSS slope after {WARMUP_S:.0f} s warm-up: {slope:+.2f} MB/min (stable if < {STABLE_MB_PER_MIN} MB/min): "
              + ("memory stable" if slope < STABLE_MB_PER_MIN else "MEMORY GROWS"))
        return errors + (slope >= STABLE_MB_PER_MIN)
    return errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of traffic (default 60)")
    ap.add_argument("--soak", type=float, metavar="SECONDS", help="soak run: this many seconds, RSS sampled every 10 s")
    ap.add_argument("--quick", action="store_true", help="a 10 s smoke run with 5 users")
    ap.add_argument("--only", choices=list(MIX), action="append",
                    help="send only this kind of request (repeatable), e.g. to see which one grows memory")
    ap.add_argument("--home", type=Path, help="an existing workspace to serve (default: a fresh demo one in a temp dir)")
    ap.add_argument("--host", default=HOST, help=f"only {HOST} is accepted: this tool loads the local machine only")
    args = ap.parse_args(argv)
    if args.host != HOST:
        ap.error(f"--host {args.host} refused: the load test only ever targets {HOST} (a server it starts itself)")
    users, duration = args.users, args.soak or args.duration
    if args.only:
        for kind in MIX:
            MIX[kind] = MIX[kind] if kind in args.only else 0.0
    if args.quick:
        users, duration = min(users, 5), min(duration, 10.0)
    tmp = Path(tempfile.mkdtemp(prefix="ptm-load-"))
    try:
        t0 = time.perf_counter()
        home = args.home or make_workspace(tmp)
        accounts = seed_accounts(home / "ptm.sqlite")
        print(f"workspace {home} ready in {time.perf_counter() - t0:.0f} s", flush=True)
        server = LiveServer(home, log=tmp / "server.log")
        assert server.url.startswith(f"http://{HOST}:"), server.url  # never anything but the local machine
        with server:
            failures = asyncio.run(run(server.url, server.pid, users, duration, args.soak is not None, accounts))
        return 1 if failures else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

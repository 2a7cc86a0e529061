"""A year's series of themed sessions: cluster the patents into k themes, then one assignment model for all sessions.

1. Themes. The patents that have a strong pair are clustered with k-means (faiss, fixed seed) on their index
   vectors, or on IPC features (subclass, class, section) when no vectors are given. Each patent may go to its
   own cluster's session or to the `neighbours` next-nearest ones (keeps the model small). A session is
   labelled by the top shared title terms and the most common IPC subclass of what it presents: "锂电池 · H01M 电池".
2. Assignment (OR-Tools CP-SAT, one model across sessions s):

       x_ps, y_es ∈ {0,1}   patent p presented / enterprise e invited in session s
       z_pes = x_ps ∧ y_es  for each strong pair (p, e) and allowed s
       w_d  ∈ {0,1}         demand d is covered: w_d ≤ Σ_{p strong for d, s} z_{p,e(d),s}
       Σ_s x_ps ≤ 1         each patent presented at most once in the whole series
       per session: the one-session constraints of plan.py (slots, seats, caps, nobody without a strong match)
       maximise  BIG · Σ_d w_d + Σ SCALE·score_pe · z_pes,   BIG > the largest possible score sum
                 (then, among equal plans, the most patents in their own cluster's session)

   so the series covers as many demands as possible first and then maximises the match quality. An enterprise
   may be invited to several sessions.
3. Coverage: how many demands have a strong match anywhere, how many are covered, which are left uncovered.
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from matcher.sessions.plan import (
    Limits, Pair, PatentInfo, SessionPlan, add_capacity, add_strong_match_rules, assemble_plan, conjunction,
    run_solver, scaled, solve_session, validate_inputs,
)

# Words nearly every patent title has ("一种…方法及其应用"): never a theme, however the cluster's counts fall.
GENERIC_TITLE_WORDS = frozenset("方法 应用 用途 装置 系统 设备 制备 制备方法 及其 一种 一类 基于 用于 结构 组件 产品 工艺".split())

# demand id -> (its enterprise, the patents strongly matching it); an empty collection = no strong match at all.
DemandMatches = Mapping[str, tuple[str, Collection[str]]]


@dataclass
class Coverage:
    demands: int  # demands considered
    with_strong_match: int  # demands having >= 1 strong patent anywhere in the corpus
    covered: int  # demands whose enterprise is invited to a session presenting one of its strong patents
    uncovered: list[str]  # demand ids with a strong match somewhere but not covered by the series
    unmatched: list[str]  # demand ids with no strong match in the corpus at all


@dataclass
class SeriesPlan:
    sessions: list[SessionPlan]
    coverage: Coverage

    def to_dict(self) -> dict:
        return {"sessions": [s.to_dict() for s in self.sessions], "coverage": asdict(self.coverage)}


def demand_matches_from_pairs(pairs: Sequence[Pair]) -> dict[str, tuple[str, set[str]]]:
    """What the pairs alone tell about demands: each pair's (best) demand and its patents."""
    out: dict[str, tuple[str, set[str]]] = {}
    for q in pairs:
        out.setdefault(q.demand_id, (q.enterprise, set()))[1].add(q.patent_id)
    return out


def coverage(sessions: Sequence[SessionPlan], demands: DemandMatches) -> Coverage:
    """Who the series serves: a demand is covered when its enterprise sits in a session presenting one of its
    strong patents."""
    met = {(p, e) for s in sessions for p in s.patents for e in s.enterprises}
    with_match = sorted(d for d, (_, strong) in demands.items() if strong)
    covered = {d for d in with_match if any((p, demands[d][0]) in met for p in demands[d][1])}
    return Coverage(
        demands=len(demands),
        with_strong_match=len(with_match),
        covered=len(covered),
        uncovered=[d for d in with_match if d not in covered],
        unmatched=sorted(d for d, (_, strong) in demands.items() if not strong),
    )


def solve_series(patents: Sequence[PatentInfo], pairs: Sequence[Pair], k: int, limits: Limits,
                 vectors: Mapping[str, np.ndarray] | None = None, *, seed: int = 0, time_limit_s: float = 30.0,
                 neighbours: int = 2, demand_matches: DemandMatches | None = None) -> SeriesPlan:
    """k themed sessions covering as many demands as possible (see the module docstring). `demand_matches`
    names every demand considered (default: the demands the pairs carry)."""
    info = validate_inputs(patents, pairs, limits)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k (the number of sessions) must be a whole number >= 1, not {k!r}")
    if not isinstance(neighbours, int) or neighbours < 0:
        raise ValueError(f"neighbours must be a whole number >= 0, not {neighbours!r}")
    demands = demand_matches if demand_matches is not None else demand_matches_from_pairs(pairs)
    by_key = {(q.patent_id, q.enterprise): q for q in pairs}
    _check_demands(demands, by_key)

    candidates = sorted({q.patent_id for q in pairs})
    allowed = allowed_sessions(candidates, info, vectors, k, seed, neighbours)
    chosen = _assign(info, pairs, demands, allowed, k, limits, time_limit_s)
    sessions = []
    for s in range(k):
        members = [p for p in candidates if allowed[p][0] == s]
        presented, invited, status = chosen[s]
        theme = theme_label(presented or members, info, candidates) or f"专场 {s + 1}"
        sessions.append(assemble_plan(presented, invited, pairs, limits, theme=theme,
                                      status=status if presented else "empty"))
    # The fullest sessions first; ties (and empty sessions) keep a stable, theme-based order.
    sessions.sort(key=lambda plan: (plan.status == "empty", -plan.objective, plan.theme))
    return SeriesPlan(sessions, coverage(sessions, demands))


def _check_demands(demands: DemandMatches, by_key: Mapping[tuple[str, str], Pair]) -> None:
    for d, (enterprise, strong) in demands.items():
        missing = sorted(p for p in strong if (p, enterprise) not in by_key)
        if missing:
            raise ValueError(f"demand {d} lists strong patents {', '.join(missing)} but there is no pair between them "
                             f"and its enterprise {enterprise}; build the pairs from the same matches")


def _assign(info: dict[str, PatentInfo], pairs: Sequence[Pair], demands: DemandMatches,
            allowed: Mapping[str, list[int]], k: int, limits: Limits,
            time_limit_s: float) -> list[tuple[list[str], list[str], str]]:
    """Solve the series model; per session (presented patents, invited enterprises, solver status)."""
    from ortools.sat.python import cp_model

    if not pairs:
        return [([], [], "empty") for _ in range(k)]
    model = cp_model.CpModel()
    x = {(p, s): model.NewBoolVar(f"x[{p},{s}]") for p in sorted(allowed) for s in allowed[p]}
    y: dict[tuple[str, int], object] = {}
    z: dict[tuple[Pair, int], object] = {}
    for q in pairs:
        for s in allowed[q.patent_id]:
            if (q.enterprise, s) not in y:
                y[q.enterprise, s] = model.NewBoolVar(f"y[{q.enterprise},{s}]")
            z[q, s] = conjunction(model, x[q.patent_id, s], y[q.enterprise, s], f"z[{q.patent_id},{q.enterprise},{s}]")
    for p in allowed:
        model.Add(sum(x[p, s] for s in allowed[p]) <= 1)
    for s in range(k):
        xs = {p: v for (p, t), v in x.items() if t == s}
        ys = {e: v for (e, t), v in y.items() if t == s}
        add_capacity(model, xs, info, limits)
        model.Add(sum(ys.values()) <= limits.seats)
        add_strong_match_rules(model, xs, ys, {q: v for (q, t), v in z.items() if t == s})
    meets: dict[tuple[str, str], list[object]] = defaultdict(list)
    for (q, _), v in z.items():
        meets[q.patent_id, q.enterprise].append(v)
    covered = {}
    for d, (enterprise, strong) in sorted(demands.items()):
        ways = [v for p in sorted(strong) for v in meets[p, enterprise]]
        if ways:
            covered[d] = model.NewBoolVar(f"w[{d}]")
            model.Add(covered[d] <= sum(ways))
    # Lexicographic: one more covered demand outweighs any score gain (all pair scores together stay below
    # `big`), and one more score unit outweighs placing every patent in its own cluster's session, which
    # only breaks the many ties (a patent can often meet the same enterprises in several sessions).
    big = sum(max(0, scaled(q.score)) for q in pairs) + 1
    home = [v for (p, s), v in x.items() if allowed[p][0] == s]
    quality = big * sum(covered.values()) + sum(scaled(q.score) * v for (q, _), v in z.items())
    model.Maximize((len(home) + 1) * quality + sum(home))
    # Start from each cluster planned on its own (small, fast models): the joint search then improves a good
    # plan instead of building one from nothing, which on a few hundred patents it does not finish in time.
    start = _home_plans(info, pairs, allowed, k, limits, time_limit_s / 3)
    add_hint(model, x, y, z, covered, start, demands)
    result = run_solver(model, time_limit_s * 2 / 3)
    out = []
    for s in range(k):
        presented = [p for (p, t), v in x.items() if t == s and result.value(v)]
        invited = [e for (e, t), v in y.items() if t == s and result.value(v)]
        out.append((presented, invited, result.label))
    return out


def _home_plans(info: dict[str, PatentInfo], pairs: Sequence[Pair], allowed: Mapping[str, list[int]], k: int,
                limits: Limits, time_limit_s: float) -> list[SessionPlan]:
    """Each session planned alone from the patents of its own cluster (a feasible start for the joint model)."""
    plans = []
    for s in range(k):
        members = {p for p in allowed if allowed[p][0] == s}
        own = [q for q in pairs if q.patent_id in members]
        try:
            plans.append(solve_session([info[p] for p in sorted(members)], own, limits, time_limit_s=time_limit_s / k))
        except ValueError:  # no plan within its share of the time: start this session empty (always feasible)
            plans.append(assemble_plan([], [], own, limits, status="empty"))
    return plans


def add_hint(model, x: Mapping, y: Mapping, z: Mapping, covered: Mapping, plans: Sequence[SessionPlan],
             demands: DemandMatches) -> None:
    """A complete hint: every variable's value in `plans` (one per session)."""
    chosen_x = {(p, s) for s, plan in enumerate(plans) for p in plan.patents}
    chosen_y = {(e, s) for s, plan in enumerate(plans) for e in plan.enterprises}
    for key, var in x.items():
        model.AddHint(var, key in chosen_x)
    for key, var in y.items():
        model.AddHint(var, key in chosen_y)
    for (q, s), var in z.items():
        model.AddHint(var, (q.patent_id, s) in chosen_x and (q.enterprise, s) in chosen_y)
    met = coverage(plans, demands)
    for d, var in covered.items():
        model.AddHint(var, d not in met.uncovered)


def allowed_sessions(ids: Sequence[str], info: Mapping[str, PatentInfo], vectors: Mapping[str, np.ndarray] | None,
                     k: int, seed: int, neighbours: int) -> dict[str, list[int]]:
    """For each patent, the sessions it may be presented in: its cluster first, then the `neighbours` nearest."""
    if not ids:
        return {}
    if vectors is not None:
        missing = [p for p in ids if p not in vectors]
        if missing:
            raise ValueError(f"no vector for patents {', '.join(missing[:5])}; run `ptm index` or pass vectors=None")
        data = np.stack([np.asarray(vectors[p], dtype=np.float32) for p in ids])
    else:
        data = ipc_features([info[p].field for p in ids])
    clusters = min(k, len(ids))
    nearest = kmeans_nearest(data, clusters, seed, min(clusters, neighbours + 1))
    return {p: [int(c) for c in row] for p, row in zip(ids, nearest)}


def kmeans_nearest(data: np.ndarray, clusters: int, seed: int, depth: int) -> np.ndarray:
    """k-means on the rows; for each row the `depth` nearest centroids, its own cluster first."""
    import faiss

    data = np.ascontiguousarray(data, dtype=np.float32)
    if clusters == 1:
        return np.zeros((len(data), 1), dtype=np.int64)
    # min_points_per_centroid=1: a few dozen patents per theme is the normal case here, not a warning.
    km = faiss.Kmeans(data.shape[1], clusters, niter=25, seed=seed, min_points_per_centroid=1, verbose=False)
    km.train(data)
    _, nearest = km.index.search(data, depth)
    return nearest


def ipc_features(fields: Sequence[str]) -> np.ndarray:
    """One-hot subclass, class and section (weights 1, 0.5, 0.25), so H01M sits nearer H01G than G06F."""
    keys = sorted({key for f in fields for key in (f, f[:3], f[:1]) if f})
    column = {key: i for i, key in enumerate(keys)}
    out = np.zeros((len(fields), max(1, len(keys))), dtype=np.float32)
    for row, f in enumerate(fields):
        for key, weight in ((f, 1.0), (f[:3], 0.5), (f[:1], 0.25)):
            if f:
                out[row, column[key]] = weight
    return out


def theme_label(members: Sequence[str], info: Mapping[str, PatentInfo], corpus: Sequence[str], terms: int = 2) -> str:
    """"锂电池 正极 · H01M 电池组": the title terms most typical of the members, then their most common subclass."""
    from indexer import ipc
    from indexer.text import tokenize

    if not members:
        return ""
    words = {p: set(tokenize(info[p].title)) for p in set(members) | set(corpus)}
    df = Counter(w for p in corpus for w in words[p])
    inside = Counter(w for p in members for w in words[p] if len(w) > 1 and w not in GENERIC_TITLE_WORDS)
    # A theme term is shared by several members; a session without one is named by its most specific terms.
    shared = [w for w, n in inside.items() if n >= 2] or list(inside)
    ranked = sorted(shared, key=lambda w: (-inside[w] * math.log((len(corpus) + 1) / max(1, df[w])), w))
    fields = Counter(info[p].field for p in members if info[p].field)
    parts = [" ".join(w.upper() if w.isascii() else w for w in ranked[:terms])]  # tokens are case-folded: QTL, SNP
    if fields:
        sub = fields.most_common(1)[0][0]
        parts.append(f"{sub} {_short(ipc.title(sub))}".strip())
    return " · ".join(p for p in parts if p)


def _short(title: str, width: int = 12) -> str:
    """The head of an IPC title: no references in brackets, up to the first comma or semicolon."""
    head = re.split(r"[，；;,]", re.sub(r"〔.*?〕|（.*?）|\(.*?\)", "", title))[0]
    return head[:width] + ("…" if len(head) > width else "")


def format_series(series: SeriesPlan, titles: Mapping[str, str] | None = None) -> str:
    """Plain text for the terminal: each session with its patents and enterprises, then the coverage."""
    titles = titles or {}
    lines = []
    for n, s in enumerate(series.sessions, start=1):
        lines.append(f"第 {n} 场  {s.theme}  [{s.status}]  objective {s.objective:.4f}  "
                     f"patents {len(s.patents)} (free slots {s.unfilled_slots})  "
                     f"enterprises {len(s.enterprises)} (free seats {s.unfilled_seats})")
        lines += [f"  {i}. {p}  {titles.get(p, '')}".rstrip() for i, p in enumerate(s.patents, start=1)]
        if s.enterprises:
            lines.append(f"  invited: {', '.join(s.enterprises)}")
    c = series.coverage
    lines += ["", f"coverage: {c.demands} demands, {c.with_strong_match} with a strong match, {c.covered} covered, "
                  f"{len(c.uncovered)} uncovered, {len(c.unmatched)} unmatched"]
    if c.uncovered:
        lines.append(f"uncovered: {', '.join(c.uncovered)}")
    return "\n".join(lines)

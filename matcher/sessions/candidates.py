"""From the engine to the optimiser: a theme's candidate patents, the strong (patent, enterprise) pairs, and the
entry points `plan_session` / `plan_series` that staff, the CLI and the web app call.

A pair is strong when the patent's dense cosine to one of the enterprise's demands reaches the strong threshold
(settings.strong_threshold, the 强 label; `min_quality="中"` lowers it to the 中 threshold). Each demand's
candidates are its engine match list (hybrid, top `per_demand`) restricted to the theme's patents, so a pair's
rank is the rank staff see for that demand.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from indexer.records import Demand, Patent
from matcher.engine import Engine, Match
from matcher.filters import Filters
from matcher.retrieve import Allowed
from matcher.sessions.plan import Limits, Pair, PatentInfo, SessionPlan, solve_session
from matcher.sessions.series import DemandMatches, SeriesPlan, solve_series

MinQuality = Literal["强", "中"]
MIN_QUALITIES: tuple[MinQuality, ...] = ("强", "中")
PER_DEMAND = 50  # each demand's match list depth: strong matches sit far above this in the hybrid ranking
THEME_DEPTH = 200  # keyword themes: how many of the keyword query's matches are looked at


@dataclass(frozen=True)
class Theme:
    keywords: str = ""  # free Chinese text, e.g. "锂电池 正极材料"
    ipc: tuple[str, ...] = ()  # IPC prefixes, e.g. ("H01M",)
    industry: str = ""  # matched against demand.industry / demand text

    def label(self) -> str:
        parts = [self.keywords.strip(), "/".join(self.ipc), self.industry.strip()]
        return " · ".join(p for p in parts if p) or "全部专利"


def threshold(engine: Engine, min_quality: MinQuality) -> float:
    if min_quality not in MIN_QUALITIES:
        raise ValueError(f"min_quality must be one of {', '.join(MIN_QUALITIES)}, not {min_quality!r}")
    return engine.settings.strong_threshold if min_quality == "强" else engine.settings.medium_threshold


def enterprise_of(demand: Demand) -> str:
    """The enterprise behind a demand; the demand id when the name is unknown (so it is still one invitee)."""
    return demand.enterprise.strip() or demand.id


def theme_patents(engine: Engine, theme: Theme) -> list[int]:
    """int_ids of the transferable patents in the theme: the IPC prefixes filter the store; keywords keep the
    patents among the keyword query's matches that share a term with it or reach 中 (a keyword query is short,
    so its far matches are noise)."""
    filters = Filters(ipc_prefix=theme.ipc, transferable_only=True)
    if not theme.keywords.strip():
        where, params = filters.to_sql()
        return sorted(engine.store.select_int_ids("patents", where, params))
    depth = min(THEME_DEPTH, engine.settings.max_k)
    hits = [m for m in engine.match_text(theme.keywords, depth, filters=filters) if m.bm25_rank is not None or m.quality != "弱"]
    return sorted(i for i in (engine.store.int_id("patents", m.id) for m in hits) if i is not None)


def theme_demands(engine: Engine, theme: Theme) -> list[Demand]:
    """All stored demands, or those whose industry or text mentions the theme's industry."""
    store = engine.store
    demands = [d for d in store.list("demands", limit=max(1, store.count("demands"))) if isinstance(d, Demand)]
    industry = theme.industry.strip()
    if not industry:
        return demands
    return [d for d in demands if industry in d.industry or industry in d.full_text()]


def strong_matches(engine: Engine, demands: Sequence[Demand], patent_ids: Sequence[int], cut: float,
                   per_demand: int = PER_DEMAND) -> dict[str, list[Match]]:
    """Per demand id, its matches among `patent_ids` whose dense cosine reaches `cut`, in engine order."""
    if not patent_ids:
        return {d.id: [] for d in demands}
    allowed = Allowed.build(engine.snapshot("patents"), patent_ids)  # resolved once for all demands
    k = min(per_demand, engine.settings.max_k)
    out = {}
    for d in demands:
        ranked = engine.search("patents", engine.stored_query("demands", d.id), k, "hybrid", allowed=allowed)
        out[d.id] = [m for m in ranked if m.dense_score is not None and m.dense_score >= cut]
    return out


def build_pairs(demands: Sequence[Demand], matches: dict[str, list[Match]]) -> list[Pair]:
    """One pair per (patent, enterprise), keeping the enterprise's best demand (highest cosine, then id)."""
    best: dict[tuple[str, str], Pair] = {}
    for d in sorted(demands, key=lambda d: d.id):
        for m in matches.get(d.id, []):
            pair = Pair(m.id, enterprise_of(d), d.id, float(m.dense_score or 0.0), m.rank)
            key = (pair.patent_id, pair.enterprise)
            if key not in best or pair.score > best[key].score:
                best[key] = pair
    return sorted(best.values(), key=lambda q: (-q.score, q.patent_id, q.enterprise))


def demand_matches(demands: Sequence[Demand], matches: dict[str, list[Match]]) -> DemandMatches:
    return {d.id: (enterprise_of(d), {m.id for m in matches.get(d.id, [])}) for d in demands}


def patent_info(patent: Patent) -> PatentInfo:
    from indexer import ipc

    fields = [c for c in (ipc.canonical(code) for code in patent.ipc[:1]) if c and len(c) >= 4]
    university = patent.applicants[0].strip() if patent.applicants else ""
    return PatentInfo(patent.id, patent.title, university, fields[0][:4] if fields else "")


def patent_infos(engine: Engine, pairs: Sequence[Pair]) -> list[PatentInfo]:
    """The patents the pairs name, strongest first."""
    ids = list(dict.fromkeys(q.patent_id for q in pairs))
    records = [engine.store.get("patents", p) for p in ids]
    return [patent_info(r) for r in records if isinstance(r, Patent)]


def gather(engine: Engine, theme: Theme, min_quality: MinQuality = "强",
           per_demand: int = PER_DEMAND) -> tuple[list[PatentInfo], list[Pair], DemandMatches]:
    """The optimiser's input for a theme: candidate patents, strong pairs, and every demand's strong patents."""
    cut = threshold(engine, min_quality)
    demands = theme_demands(engine, theme)
    matches = strong_matches(engine, demands, theme_patents(engine, theme), cut, per_demand)
    pairs = build_pairs(demands, matches)
    return patent_infos(engine, pairs), pairs, demand_matches(demands, matches)


def plan_session(engine: Engine, theme: Theme, limits: Limits, *, min_quality: MinQuality = "强",
                 **edits) -> tuple[SessionPlan, list[PatentInfo], list[Pair]]:
    """The best session for a theme; `edits` are solve_session's include_*/exclude_*/time_limit_s.
    Returns the plan and the candidates it was chosen from (what check_plan needs after hand edits)."""
    patents, pairs, _ = gather(engine, theme, min_quality)
    plan = solve_session(patents, pairs, limits, **edits)
    plan.theme = theme.label()
    return plan, patents, pairs


def plan_series(engine: Engine, k: int, limits: Limits, *, seed: int = 0, min_quality: MinQuality = "强",
                time_limit_s: float = 30.0) -> SeriesPlan:
    """k themed sessions over all transferable patents and all demands, clustered on the patents' index vectors."""
    patents, pairs, demands = gather(engine, Theme(), min_quality)
    return solve_series(patents, pairs, k, limits, patent_vectors(engine, patents), seed=seed,
                        time_limit_s=time_limit_s, demand_matches=demands)


def patent_vectors(engine: Engine, patents: Sequence[PatentInfo]) -> dict[str, np.ndarray]:
    """The patents' indexed vectors (the ones their matches were scored with)."""
    snap = engine.snapshot("patents")
    out = {}
    for p in patents:
        int_id = engine.store.int_id("patents", p.id)
        vec = snap.vector(int_id) if int_id is not None else None
        if vec is not None:
            out[p.id] = np.asarray(vec, dtype=np.float32)
    return out

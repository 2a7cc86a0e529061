"""Outcome reports over the ledger's deals (totals, grouped tables) and the ranking evaluation they allow.

Pure functions over indexer.ledger.Deal lists plus the patent metadata they need; only current_ranks touches
the engine (to re-match a demand). Counting rules, used everywhere:
- the funnel counts (recommended, interest, negotiating) count deals that *reached* a stage, so a deal dropped
  after talks still shows that talks happened;
- signed / completed counts and amounts leave out deals dropped after signing: a cancelled contract
  transfers nothing. Amounts are in 万元.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Literal

from indexer import ipc
from indexer.ledger import DROPPED, KINDS, STAGES, Deal, Ledger, Stage
from indexer.records import Patent

if TYPE_CHECKING:
    from matcher.engine import Engine

Grouping = Literal["period", "university", "field", "session"]
Period = Literal["month", "quarter", "year"]
GROUPINGS: tuple[Grouping, ...] = ("period", "university", "field", "session")
PERIODS: tuple[Period, ...] = ("month", "quarter", "year")
RankSource = Literal["recorded", "current"]
UNKNOWN = "未知"
UNSIGNED = "未签约"
NO_SESSION = "未关联对接会"
RECALL_KS = (1, 5, 10)


@dataclass(frozen=True)
class PatentMeta:
    """What the reports need of a patent."""

    university: str  # first applicant, "" if unknown
    field: str       # IPC section+class of the first IPC with its Chinese title ("H01 电气元件"), "" if unknown


def patent_meta(patent: Patent) -> PatentMeta:
    first_ipc = next((c for c in map(ipc.canonical, patent.ipc) if c and len(c) >= 3), None)
    field_label = f"{first_ipc[:3]} {ipc.title(first_ipc[:3])}".strip() if first_ipc else ""
    return PatentMeta(university=patent.applicants[0] if patent.applicants else "", field=field_label)


@dataclass
class KindTotal:
    count: int = 0
    amount_wan: float = 0.0


@dataclass
class Totals:
    deals: int = 0
    recommended: int = 0
    interest: int = 0
    negotiating: int = 0
    signed: int = 0
    completed: int = 0
    dropped: int = 0
    signed_amount_wan: float = 0.0
    completed_amount_wan: float = 0.0
    by_kind: dict[str, KindTotal] = field(default_factory=lambda: {k: KindTotal() for k in KINDS})

    def to_dict(self) -> dict:
        return asdict(self)


def _at_least(stage: Stage, reference: Stage) -> bool:
    return stage != DROPPED and STAGES.index(stage) >= STAGES.index(reference)


def totals(deals: Iterable[Deal]) -> Totals:
    """The totals over `deals` by the counting rules in the module docstring."""
    out = Totals()
    for deal in deals:
        out.deals += 1
        out.recommended += 1  # every deal starts as (or skips past) a recommendation
        out.interest += _at_least(deal.reached, "意向")
        out.negotiating += _at_least(deal.reached, "洽谈")
        out.dropped += deal.stage == DROPPED
        amount = deal.amount_wan or 0.0
        if _at_least(deal.stage, "签约"):
            out.signed += 1
            out.signed_amount_wan += amount
            if deal.kind in out.by_kind:
                out.by_kind[deal.kind].count += 1
                out.by_kind[deal.kind].amount_wan += amount
        if deal.stage == "完成":
            out.completed += 1
            out.completed_amount_wan += amount
    return out


@dataclass
class GroupRow:
    key: str
    totals: Totals

    def to_dict(self) -> dict:
        return {"key": self.key, **self.totals.to_dict()}


def period_key(day: date, period: Period) -> str:
    """"2026-05", "2026-Q2" or "2026"; sortable as text."""
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    if period == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    if period == "year":
        return str(day.year)
    raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")


def _group(deals: Iterable[Deal], key: Callable[[Deal], str]) -> dict[str, list[Deal]]:
    groups: dict[str, list[Deal]] = {}
    for deal in deals:
        groups.setdefault(key(deal), []).append(deal)
    return groups


def _key_function(by: Grouping, period: Period, patents: Mapping[str, PatentMeta],
                  sessions: Mapping[int, str]) -> Callable[[Deal], str]:
    if by == "period":
        period_key(date(2000, 1, 1), period)  # validates `period` even when no deal is signed
        return lambda d: period_key(d.signed_on, period) if d.signed_on else UNSIGNED
    if by == "university":
        return lambda d: (patents[d.patent_id].university if d.patent_id in patents else "") or UNKNOWN
    if by == "field":
        return lambda d: (patents[d.patent_id].field if d.patent_id in patents else "") or UNKNOWN
    if by == "session":
        return lambda d: (sessions.get(d.session_id) or f"对接会 #{d.session_id}") if d.session_id else NO_SESSION
    raise ValueError(f"group reports by one of {', '.join(GROUPINGS)}, not {by!r}")


_LAST = (UNSIGNED, UNKNOWN, NO_SESSION)  # catch-all groups go after the real ones


def report(deals: Sequence[Deal], by: Grouping, *, period: Period = "quarter",
           patents: Mapping[str, PatentMeta] | None = None, sessions: Mapping[int, str] | None = None) -> list[GroupRow]:
    """Totals per group. Periods are in time order (by the 签约 date; unsigned deals last); other groupings
    put the largest signed amount first. `patents` maps patent id → PatentMeta, `sessions` id → title."""
    groups = _group(deals, _key_function(by, period, patents or {}, sessions or {}))
    rows = [GroupRow(key, totals(members)) for key, members in groups.items()]
    if by == "period":
        return sorted(rows, key=lambda r: (r.key in _LAST, r.key))
    return sorted(rows, key=lambda r: (r.key in _LAST, -r.totals.signed_amount_wan, -r.totals.signed, -r.totals.deals, r.key))


def patent_metas(ledger: Ledger, patent_ids: Iterable[str]) -> dict[str, PatentMeta]:
    """PatentMeta of each stored patent among `patent_ids` (a deleted patent is simply absent: 未知)."""
    found = {pid: ledger.store.get("patents", pid) for pid in set(patent_ids)}
    return {pid: patent_meta(p) for pid, p in found.items() if isinstance(p, Patent)}


def ledger_reports(ledger: Ledger, groupings: Sequence[Grouping], period: Period = "quarter"
                   ) -> tuple[Totals, dict[Grouping, list[GroupRow]]]:
    """The overall totals and, per grouping, the grouped rows over every deal in the ledger: what
    `ptm deals report` and the staff reports page show. Reads the ledger once."""
    deals = ledger.deals()
    titles = {s.id: s.title for s in ledger.sessions()} if "session" in groupings else {}
    wants_meta = any(by in ("university", "field") for by in groupings)
    metas = patent_metas(ledger, (d.patent_id for d in deals)) if wants_meta else {}
    return totals(deals), {by: report(deals, by, period=period, patents=metas, sessions=titles) for by in groupings}


# --- ranking evaluation -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankMetrics:
    """How highly the engine ranked a set of pairs; a pair the engine did not list counts as a miss."""

    pairs: int
    found: int  # pairs the engine listed (rank known)
    mrr: float
    recall: dict[int, float]  # k → share of pairs ranked within the top k
    median_rank: float | None  # over the pairs that were found

    def to_dict(self) -> dict:
        return {"pairs": self.pairs, "found": self.found, "mrr": self.mrr,
                **{f"recall@{k}": v for k, v in self.recall.items()}, "median_rank": self.median_rank}


def rank_metrics(ranks: Sequence[int | None]) -> RankMetrics:
    """MRR, Recall@1/5/10 and the median rank of 1-based ranks (None = not in the engine's list)."""
    found = [r for r in ranks if r is not None]
    n = len(ranks)
    return RankMetrics(
        pairs=n, found=len(found),
        mrr=sum(1.0 / r for r in found) / n if n else 0.0,
        recall={k: sum(r <= k for r in found) / n if n else 0.0 for k in RECALL_KS},
        median_rank=float(statistics.median(found)) if found else None,
    )


@dataclass(frozen=True)
class EvalRow:
    outcome: Stage        # the pairs that reached at least this stage (意向 or 签约)
    source: RankSource    # the rank recorded at recommendation, or the rank the engine gives now
    metrics: RankMetrics

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "source": self.source, **self.metrics.to_dict()}


EVAL_OUTCOMES: tuple[Stage, ...] = ("意向", "签约")


def evaluate_ranking(deals: Sequence[Deal], current: Mapping[int, int | None] | None = None) -> list[EvalRow]:
    """For the pairs that went on to 意向 and to 签约 (a deal dropped later still reached them): the rank
    recorded at recommendation (deals without one came from outside the engine and are left out) and, if
    `current` is given (deal id → rank now, None = not listed; see current_ranks), the rank the engine gives
    now. Rows with no pairs are omitted."""
    rows = []
    for outcome in EVAL_OUTCOMES:
        reached = [d for d in deals if _at_least(d.reached, outcome)]
        sources: dict[RankSource, list[int | None]] = {
            "recorded": [d.engine_rank for d in reached if d.engine_rank is not None],
            "current": [current[d.id] for d in reached if d.id in current] if current is not None else [],
        }
        rows += [EvalRow(outcome, source, rank_metrics(ranks)) for source, ranks in sources.items() if ranks]
    return rows


def current_ranks(engine: Engine, deals: Sequence[Deal], depth: int = 100) -> dict[int, int | None]:
    """Deal id → the patent's rank when its demand is matched now (None if not in the top `depth`).
    Deals without a demand, or whose demand has since been deleted, cannot be re-matched and are left out."""
    from matcher.engine import NotFoundError

    out: dict[int, int | None] = {}
    for demand_id, members in _group([d for d in deals if d.demand_id], lambda d: d.demand_id or "").items():
        try:
            ranking = {m.id: m.rank for m in engine.match_demand(demand_id, k=depth)}
        except NotFoundError:
            continue
        out.update({d.id: ranking.get(d.patent_id) for d in members})
    return out

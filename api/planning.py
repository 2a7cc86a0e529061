"""Session planning as the CLI and the web pages both do it: staff edits, saving a plan with its 推荐 deals, and
turning a saved session into an export.

The optimiser lives in matcher/sessions; this module only carries the staff's choices (theme, capacities,
pinned and removed patents or enterprises) to it and writes what they decided into the ledger.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from api.exports import ExportFormat, SessionDocument, Timing, build_document, export_document
from indexer.ledger import Ledger, Recommendation, SessionRecord

if TYPE_CHECKING:
    from matcher.engine import Engine
    from matcher.sessions.candidates import MinQuality, Theme
    from matcher.sessions.plan import Limits, SessionPlan

#: Edit lists, as passed to plan_session / solve_session.
EDIT_FIELDS = ("include_patents", "exclude_patents", "include_enterprises", "exclude_enterprises")


@dataclass
class Edits:
    """Staff's hand changes to a proposal: pinned (include) and removed (exclude) patents and enterprises.
    An item is never both pinned and removed: the latest action wins (see `pin`, `drop`, `clear`)."""

    include_patents: list[str] = field(default_factory=list)
    exclude_patents: list[str] = field(default_factory=list)
    include_enterprises: list[str] = field(default_factory=list)
    exclude_enterprises: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict | None) -> Edits:
        d = d or {}
        return cls(**{name: _clean(d.get(name, ())) for name in EDIT_FIELDS})

    def to_dict(self) -> dict[str, list[str]]:
        return asdict(self)

    def pin(self, what: str, item: str) -> None:
        """Keep `item` (a patent id when what == "patents", else an enterprise) in every re-solve."""
        self._place(what, item, 0)

    def drop(self, what: str, item: str) -> None:
        """Leave `item` out of every re-solve."""
        self._place(what, item, 1)

    def clear(self, what: str, item: str) -> None:
        """Neither pinned nor removed any more: the solver decides again."""
        self._place(what, item, None)

    def _place(self, what: str, item: str, into: int | None) -> None:
        """Take `item` off both lists, then put it on list `into` (0 include, 1 exclude) unless None."""
        lists = self._lists(what)
        for lst in lists:
            if item in lst:
                lst.remove(item)
        if into is not None:
            lists[into].append(item)

    def _lists(self, what: str) -> tuple[list[str], list[str]]:
        if what == "patents":
            return self.include_patents, self.exclude_patents
        if what == "enterprises":
            return self.include_enterprises, self.exclude_enterprises
        raise ValueError(f"edits apply to patents or enterprises, not {what!r}")


def _clean(items: Iterable[str] | str) -> list[str]:
    if isinstance(items, str):
        items = items.split("\n")
    out: list[str] = []
    for item in items:
        item = str(item).strip()
        if item and item not in out:
            out.append(item)
    return out


def solve(engine: Engine, theme: Theme, limits: Limits, edits: Edits, min_quality: MinQuality = "强") -> SessionPlan:
    """The optimiser's proposal for this theme and these capacities, honouring the staff's edits. `min_quality`
    中 also counts 中 pairs as matches, for a corpus where few demands reach 强."""
    from matcher.sessions.candidates import plan_session

    plan, _, _ = plan_session(engine, theme, limits, min_quality=min_quality, **edits.to_dict())
    return plan


def theme_dict(theme: Theme) -> dict:
    return {"keywords": theme.keywords, "ipc": list(theme.ipc), "industry": theme.industry, "label": theme.label()}


def theme_from_dict(d: dict) -> Theme:
    from matcher.sessions.candidates import Theme

    return Theme(keywords=str(d.get("keywords", "")), ipc=tuple(d.get("ipc", ())), industry=str(d.get("industry", "")))


def limits_dict(limits: Limits, edits: Edits, min_quality: MinQuality = "强") -> dict:
    """The capacities plus the edits and the match cut: what re-planning this session later needs besides the theme."""
    return {**asdict(limits), "edits": edits.to_dict(), "min_quality": min_quality}


def limits_from_dict(d: dict) -> tuple[Limits, Edits, MinQuality]:
    from matcher.sessions.plan import Limits

    fields = {k: d.get(k) for k in ("slots", "seats", "max_per_university", "max_per_field")}
    return Limits(**fields), Edits.from_dict(d.get("edits")), "中" if d.get("min_quality") == "中" else "强"


def save_plan(ledger: Ledger, plan: SessionPlan, *, title: str, on: date | None, theme: dict, limits: dict,
              venue: str = "", session_id: int | None = None, user: str = "") -> tuple[int, int]:
    """Store the session and a 推荐 deal for every realised pair, in one transaction (Ledger.save_session_with_deals);
    returns (session id, deals recorded)."""
    return ledger.save_session_with_deals(
        title=title, date=on, theme=theme, limits=limits, plan=plan.to_dict(), session_id=session_id, venue=venue,
        recommend=[Recommendation(p.patent_id, p.enterprise, p.demand_id, p.rank) for p in plan.pairs], user=user)


def saved_plan(record: SessionRecord) -> SessionPlan:
    from matcher.sessions.plan import SessionPlan

    return SessionPlan.from_dict(record.plan)


def session_document(engine: Engine, record: SessionRecord, timing: Timing = Timing()) -> SessionDocument:
    return build_document(engine, saved_plan(record), title=record.title, on=record.date, venue=record.venue,
                          timing=timing)


def export_session(engine: Engine, ledger: Ledger, session_id: int, fmt: ExportFormat,
                   timing: Timing = Timing()) -> bytes:
    """The saved session `session_id` as an XLSX workbook or a printable HTML page."""
    record = ledger.session(session_id)
    if record is None:
        raise ValueError(f"there is no session {session_id}; list them with `ptm sessions list`")
    return export_document(session_document(engine, record, timing), fmt)

"""Session exports: the agenda (XLSX and printable HTML), per-enterprise match letters, per-patent one-page briefs;
`safe_cell`, which every spreadsheet cell the project writes goes through.

A saved session is a SessionPlan (matcher/sessions/plan.py) plus its title and date. `build_document` turns it into
a `SessionDocument` — everything a reader needs, fetched once from the store and the index (patent details,
IPC titles in Chinese, value scores, the shared terms and 强/中/弱 label of every realised pair) — and the
renderers only lay that document out, so the XLSX and the HTML always say the same thing.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # matcher and jinja2 are imported when a document is built: `ptm --help` should not pay for them
    from matcher.engine import Engine
    from matcher.explain import Quality
    from matcher.sessions.plan import Pair, SessionPlan

ExportFormat = Literal["xlsx", "html"]
FORMATS: tuple[ExportFormat, ...] = ("xlsx", "html")
MEDIA_TYPES: dict[str, str] = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html; charset=utf-8",
}
#: The HTML export has its style inline and no script: served by the web app it gets this policy instead of the
#: site's (which forbids inline styles), so it prints as designed and still runs nothing.
EXPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
SUMMARY_CHARS = 150
# A cell starting with one of these is run as a formula by Excel / LibreOffice / WPS (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Sentence ends, then clause ends as a fallback: abstracts often run one long sentence through "；".
_BREAKS = (re.compile(r"[。！？!?]|\.(?=\s|$)"), re.compile(r"[；;]"))


def safe_cell(value: object) -> object:
    """`value` as a spreadsheet may hold it: a string that a spreadsheet would evaluate gets a leading
    apostrophe, so a patent title "=HYPERLINK(…)" stays text. Numbers, dates and None pass unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


# ---- the document -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    """When the pitches run: slots of `slot_minutes` back to back from `start` (default 09:30, 15 min)."""

    start: time = time(9, 30)
    slot_minutes: int = 15

    def __post_init__(self) -> None:
        if not 1 <= self.slot_minutes <= 240:
            raise ValueError(f"slot length must be 1–240 minutes, not {self.slot_minutes}")

    def slot(self, index: int, on: date | None = None) -> str:
        """'09:30–09:45' for the first slot (index 0), prefixed by the date when the session has one."""
        begin = datetime.combine(on or date(2000, 1, 1), self.start) + timedelta(minutes=index * self.slot_minutes)
        end = begin + timedelta(minutes=self.slot_minutes)
        span = f"{begin:%H:%M}–{end:%H:%M}"
        return f"{on.isoformat()} {span}" if on else span


def parse_start(value: str) -> time:
    """'9:30' or '09:30' → time(9, 30); anything else raises ValueError saying the expected form."""
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value or "")
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError(f"start time must look like 09:30, not {value!r}")
    return time(int(m.group(1)), int(m.group(2)))


@dataclass(frozen=True)
class Reason:
    """One realised (patent, enterprise) pair and why it is there."""

    patent_id: str
    patent_title: str
    enterprise: str
    demand_id: str
    score: float
    quality: Quality
    terms: tuple[str, ...]  # shared content words, rarest first (matcher/explain.py)

    @property
    def short(self) -> str:
        return f"{self.enterprise}（{self.score:.3f} {self.quality}）"


@dataclass(frozen=True)
class Brief:
    """A presented patent: its agenda slot and its one-page brief."""

    slot: int  # 1-based
    time: str
    patent_id: str
    title: str
    summary: str
    owner: str  # every applicant, "；"-joined
    university: str  # the presenting one: the first applicant
    ipc: tuple[str, ...]  # "CODE 中文标题"
    value_score: float | None
    licence_terms: str
    price_wan: float | None
    reasons: tuple[Reason, ...]  # the invited enterprises matched to it, best first

    @property
    def enterprises(self) -> str:
        return "；".join(r.short for r in self.reasons)


@dataclass(frozen=True)
class Letter:
    """What one invited enterprise is told: the presented patents matched to it, best first."""

    enterprise: str
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class SessionDocument:
    title: str
    date: date | None
    venue: str
    theme: str
    briefs: tuple[Brief, ...]
    letters: tuple[Letter, ...]
    objective: float
    status: str
    unfilled_slots: int
    unfilled_seats: int


def build_document(engine: Engine, plan: SessionPlan, *, title: str, on: date | None = None, venue: str = "",
                   timing: Timing = Timing()) -> SessionDocument:
    """Everything the exports show, fetched from the store and the live index. A patent deleted since the plan
    was made keeps its slot with its id and an empty brief rather than failing the whole export."""
    reasons = explain_pairs(engine, plan.pairs)
    by_patent: dict[str, list[Reason]] = {}
    by_enterprise: dict[str, list[Reason]] = {}
    for r in reasons:  # plan.pairs is score-descending, so each list is best first
        by_patent.setdefault(r.patent_id, []).append(r)
        by_enterprise.setdefault(r.enterprise, []).append(r)
    briefs = tuple(_brief(engine, i, pid, on, timing, by_patent.get(pid, [])) for i, pid in enumerate(plan.patents))
    letters = tuple(Letter(e, tuple(by_enterprise.get(e, []))) for e in plan.enterprises)
    return SessionDocument(title=title, date=on, venue=venue, theme=plan.theme, briefs=briefs, letters=letters,
                           objective=plan.objective, status=plan.status, unfilled_slots=plan.unfilled_slots,
                           unfilled_seats=plan.unfilled_seats)


def explain_pairs(engine: Engine, pairs: Sequence[Pair]) -> list[Reason]:
    """Each pair with the quality label of its score and the words its patent and demand share."""
    from matcher.engine import MatchError
    from matcher.explain import matched_terms, quality_label

    settings, store = engine.settings, engine.store
    try:
        snap = engine.snapshot("patents")
    except MatchError:  # nothing indexed: the pairs keep their scores and labels, without shared words
        snap = None
    demand_words: dict[str, list[str]] = {}
    out = []
    for p in pairs:
        patent = store.get("patents", p.patent_id)
        terms: list[str] = []
        int_id = store.int_id("patents", p.patent_id)
        if snap is not None and int_id is not None:
            if p.demand_id not in demand_words:
                demand_words[p.demand_id] = _demand_words(engine, p.demand_id)
            terms = matched_terms(demand_words[p.demand_id], snap.words.get(int_id, []),
                                  snap.document_frequencies(), snap.size)
        out.append(Reason(
            patent_id=p.patent_id, patent_title=patent.title if patent else "", enterprise=p.enterprise,
            demand_id=p.demand_id, score=p.score,
            quality=quality_label(p.score, settings.strong_threshold, settings.medium_threshold), terms=tuple(terms),
        ))
    return out


def _demand_words(engine: Engine, demand_id: str) -> list[str]:
    from matcher.engine import MatchError

    try:
        return list(engine.stored_query("demands", demand_id).words or [])
    except MatchError:  # deleted or edited since planning: the reason shows no shared words
        return []


def _brief(engine: Engine, index: int, patent_id: str, on: date | None, timing: Timing,
           reasons: list[Reason]) -> Brief:
    from matcher.explain import ipc_labels

    store = engine.store
    patent = store.get("patents", patent_id)
    int_id = store.int_id("patents", patent_id)
    value = store.value_scores([int_id]).get(int_id) if int_id is not None else None
    applicants = list(patent.applicants) if patent else []
    return Brief(
        slot=index + 1, time=timing.slot(index, on), patent_id=patent_id, title=patent.title if patent else "",
        summary=summarize(patent.abstract) if patent else "", owner="；".join(applicants),
        university=applicants[0] if applicants else "", ipc=tuple(ipc_labels(patent.ipc)) if patent else (),
        value_score=value, licence_terms=patent.licence_terms if patent else "",
        price_wan=patent.price_wan if patent else None, reasons=tuple(reasons),
    )


def summarize(text: str, limit: int = SUMMARY_CHARS) -> str:
    """The abstract's first whole sentences within about `limit` characters — or its first clauses, when whole
    sentences would leave under a third of that; a first clause longer than `limit` is cut and marked '…'."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    best = 0
    for pattern in _BREAKS:
        ends = [m.end() for m in pattern.finditer(text, 0, limit + 1)]
        if ends and ends[-1] >= limit // 3:
            return text[: ends[-1]]
        best = max([best, *ends])
    return text[:best] if best else text[:limit] + "…"


# ---- renderers --------------------------------------------------------------------------------
def export_document(doc: SessionDocument, fmt: ExportFormat) -> bytes:
    if fmt == "xlsx":
        return to_xlsx(doc)
    if fmt == "html":
        return to_html(doc).encode("utf-8")
    raise ValueError(f"export format must be one of {', '.join(FORMATS)}, not {fmt!r}")


AGENDA_HEADER = ("时段", "时间", "专利号", "专利名称", "报告单位", "IPC分类（中文）", "价值评分", "匹配企业")
LETTER_HEADER = ("企业", "需求编号", "专利号", "专利名称", "匹配分数", "匹配度", "共同技术词")
BRIEF_HEADER = ("时段", "专利号", "专利名称", "摘要简介", "专利权人", "IPC分类（中文）", "价值评分", "转化方式/条件",
                "报价（万元）", "匹配企业")


def to_xlsx(doc: SessionDocument) -> bytes:
    """Three sheets: 议程 (one row per slot), 邀请企业 (one row per invited enterprise × matched patent),
    专利简介 (one row per brief)."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    _sheet(wb, "议程", AGENDA_HEADER, (
        (b.slot, b.time, b.patent_id, b.title, b.university, "\n".join(b.ipc), _round(b.value_score), b.enterprises)
        for b in doc.briefs))
    _sheet(wb, "邀请企业", LETTER_HEADER, _letter_rows(doc.letters))
    _sheet(wb, "专利简介", BRIEF_HEADER, (
        (b.slot, b.patent_id, b.title, b.summary, b.owner, "\n".join(b.ipc), _round(b.value_score), b.licence_terms,
         b.price_wan, b.enterprises)
        for b in doc.briefs))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _letter_rows(letters: Iterable[Letter]) -> Iterable[tuple]:
    for letter in letters:
        if not letter.reasons:  # invited by hand without a realised pair: still on the guest list
            yield (letter.enterprise, "", "", "", None, "", "")
        for r in letter.reasons:
            yield (r.enterprise, r.demand_id, r.patent_id, r.patent_title, round(r.score, 4), r.quality, "、".join(r.terms))


def _sheet(wb, name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    ws = wb.create_sheet(name)
    ws.append([safe_cell(h) for h in header])
    widths = [len(h) * 2 + 2 for h in header]  # CJK characters are about two columns wide
    for row in rows:
        ws.append([safe_cell(v) for v in row])
        widths = [max(w, min(60, len(str(v or "")) + 2)) for w, v in zip(widths, row)]
    for i, w in enumerate(widths):
        ws.column_dimensions[ws.cell(row=1, column=i + 1).column_letter].width = w
    ws.freeze_panes = "A2"


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def to_html(doc: SessionDocument) -> str:
    """A printable page: agenda, then one letter per invited enterprise, then one brief per patent, each on a
    page of its own when printed. Autoescaped: titles and abstracts are user text."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    return env.get_template("sessions_print.html").render(doc=doc)

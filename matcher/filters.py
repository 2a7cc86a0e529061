"""Filters on patent metadata for matching: validation of what staff type, and the SQL that selects the allowed patents.

A `Filters` is validated when it is built (a bad value raises FilterError, a ValueError naming the field and
the valid options), so everything downstream can trust it. `to_sql` turns it into a WHERE clause over the
store's filter columns (indexer/store.py FILTER_COLUMNS) with `?` placeholders: column names are fixed
here, every value the user typed is a bound parameter.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Literal, get_args

from indexer.ipc import PREFIX_FORMS, prefix_key
from indexer.normalize import detect_applicant_type, normalize_date, normalize_legal_status, normalize_patent_type

LegalStatus = Literal["有效", "审中", "失效", "驳回", "撤回"]
LEGAL_STATUSES: tuple[str, ...] = get_args(LegalStatus)
PATENT_TYPES: tuple[str, ...] = ("发明", "实用新型", "外观设计")
APPLICANT_TYPES: tuple[str, ...] = ("university", "research_institute", "enterprise", "individual", "unknown")


class FilterError(ValueError):
    """A filter value that is not valid; `field` names the filter, the message lists the valid options."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return [str(v).strip() for v in items if str(v).strip()]


def _choices(name: str, values: object, valid: tuple[str, ...], normalise) -> tuple[str, ...]:
    out = []
    for raw in _as_list(values):
        canonical = normalise(raw)
        if canonical not in valid:
            raise FilterError(name, f"{raw!r} is not valid; use one of {', '.join(valid)}")
        out.append(canonical)
    return tuple(dict.fromkeys(out))


def _applicant_type(raw: str) -> str:
    # detect_applicant_type also reads CNIPA's Chinese vocabulary (高校, 科研机构, 企业, 个人); anything it
    # cannot place comes back "unknown", which must stay an error unless "unknown" was asked for.
    if raw.lower() == "unknown":
        return "unknown"
    kind = detect_applicant_type([], raw)
    return kind if kind != "unknown" else raw


def _ipc_prefixes(values: object) -> tuple[str, ...]:
    out = []
    for raw in _as_list(values):
        try:
            out.append(prefix_key(raw))
        except ValueError:
            raise FilterError("ipc_prefix", f"{raw[:40]!r} is not an IPC prefix; use {PREFIX_FORMS}") from None
    return tuple(dict.fromkeys(out))


def _date(name: str, value: object) -> date | None:
    try:
        return normalize_date(value)
    except ValueError as exc:
        raise FilterError(name, str(exc)) from None


@dataclass(frozen=True)
class Filters:
    """What a match may return. Lists mean any-of; an empty list or None means no restriction. Every field
    is normalised on construction: legal_status 有权 → 有效, patent_type 发明授权 → 发明, applicant_type 高校 →
    university, ipc_prefix h04n 5 → H04N5/."""

    legal_status: tuple[str, ...] = ()
    patent_type: tuple[str, ...] = ()
    ipc_prefix: tuple[str, ...] = ()
    applicant_type: tuple[str, ...] = ()
    region: str = ""  # substring of the stored region (河南 matches 河南(41))
    transferable_only: bool = False
    min_value: float | None = None  # value score 0–100 (indexer/value.py)
    date_from: date | None = None  # application date, inclusive; patents without a date are excluded
    date_to: date | None = None
    _clauses: tuple[tuple[str, tuple[object, ...]], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalising in place is only allowed here
        set_(self, "legal_status", _choices("legal_status", self.legal_status, LEGAL_STATUSES, normalize_legal_status))
        set_(self, "patent_type", _choices("patent_type", self.patent_type, PATENT_TYPES, normalize_patent_type))
        set_(self, "applicant_type", _choices("applicant_type", self.applicant_type, APPLICANT_TYPES, _applicant_type))
        set_(self, "ipc_prefix", _ipc_prefixes(self.ipc_prefix))
        set_(self, "region", str(self.region or "").strip())
        set_(self, "transferable_only", bool(self.transferable_only))
        if self.min_value is not None:
            try:
                set_(self, "min_value", float(self.min_value))
            except (TypeError, ValueError):
                raise FilterError("min_value", f"{self.min_value!r} is not a number; use 0–100") from None
            if not 0 <= self.min_value <= 100:
                raise FilterError("min_value", f"{self.min_value:g} is outside 0–100, the range of the value score")
        set_(self, "date_from", _date("date_from", self.date_from))
        set_(self, "date_to", _date("date_to", self.date_to))
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise FilterError("date_from", f"{self.date_from} is after date_to {self.date_to}; swap them")
        set_(self, "_clauses", tuple(self._build_clauses()))

    def _build_clauses(self) -> Iterable[tuple[str, tuple[object, ...]]]:
        for name in ("legal_status", "patent_type", "applicant_type"):
            values = getattr(self, name)
            if values:
                yield f"{name} IN ({','.join('?' * len(values))})", values
        if self.ipc_prefix:
            # ipc is stored as ";A01B1/00;H04N5/225;", so ";" + prefix finds a code that starts with it.
            yield "(" + " OR ".join("instr(ipc, ?) > 0" for _ in self.ipc_prefix) + ")", tuple(f";{p}" for p in self.ipc_prefix)
        if self.region:
            yield "instr(region, ?) > 0", (self.region,)
        if self.transferable_only:
            yield "transferable = 1", ()
        if self.min_value is not None:
            yield "value_score >= ?", (self.min_value,)
        if self.date_from:
            yield "application_date >= ?", (self.date_from.isoformat(),)
        if self.date_to:
            yield "application_date <= ?", (self.date_to.isoformat(),)

    @property
    def active(self) -> bool:
        return bool(self._clauses)

    def to_sql(self) -> tuple[str, list[object]]:
        """(WHERE clause, bound parameters); "1" when nothing is filtered."""
        if not self._clauses:
            return "1", []
        return " AND ".join(c for c, _ in self._clauses), [p for _, params in self._clauses for p in params]

    def describe(self) -> str:
        """One line for a results header: "legal_status=有效, ipc_prefix=H04N"."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("_") or value in ((), "", False, None):
                continue
            parts.append(f"{f.name}={'|'.join(map(str, value)) if isinstance(value, tuple) else value}")
        return ", ".join(parts)


def build_filters(**values: object) -> Filters | None:
    """Filters from loose input (CLI flags, API parameters): None when nothing restricts."""
    filters = Filters(**values)  # type: ignore[arg-type]
    return filters if filters.active else None

"""The patent value / transferability score: legal, technical and economic dimensions, each 0–100, and their weighted total.

The three dimensions are those of the national patent value evaluation guide (专利价值评估指南): legal value
(法律价值), technical value (技术价值) and economic value (经济价值). The guide's indicators are judged by
experts; the sub-formulas here use only what an export carries, so every point of the score can be traced to a
field. Each factor is 0–100; a factor whose data is missing scores the neutral 50 and is flagged, so a sparse
record is neither rewarded nor punished. The formula is written out in README.md, "Patent value score".
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from datetime import date
from typing import Literal, get_args

from indexer.ipc import subclasses
from indexer.records import ApplicantType, Patent

Dimension = Literal["legal", "technical", "economic"]
DIMENSIONS: tuple[Dimension, ...] = get_args(Dimension)

NEUTRAL = 50.0
#: Weights of the dimensions in the total (sum 1). Legal first: a patent without rights cannot be transferred.
DIMENSION_WEIGHTS: dict[Dimension, float] = {"legal": 0.4, "technical": 0.3, "economic": 0.3}
#: Weights of the factors inside each dimension (each sums to 1).
FACTOR_WEIGHTS: dict[Dimension, dict[str, float]] = {
    "legal": {"legal_status": 0.5, "remaining_term": 0.3, "claims": 0.2},
    "technical": {"ipc_breadth": 0.5, "citations": 0.5},
    "economic": {"transactions": 0.6, "applicant_type": 0.4},
}

STATUS_SCORES: dict[str, float] = {"有效": 100.0, "审中": 60.0, "失效": 0.0, "驳回": 0.0, "撤回": 0.0}
_NO_RIGHTS = frozenset({"失效", "驳回", "撤回"})
# Patent Law art. 42; designs filed from 2021-06-01 (the fourth amendment) have 15 years, before that 10.
TERM_YEARS: dict[str, int] = {"发明": 20, "实用新型": 10, "外观设计": 15}
DESIGN_15_YEARS_FROM = date(2021, 6, 1)
CLAIMS_FOR_FULL_SCORE = 10
CITATIONS_FOR_FULL_SCORE = 10
# Points per recorded event: a licence is the market paying to use the patent, a transfer paying to own it,
# a pledge a bank accepting it as collateral. Base 40 = known to have no such history yet.
TRANSACTION_BASE, TRANSACTION_POINTS = 40.0, {"licence_count": 20.0, "transfer_count": 15.0, "pledge_count": 10.0}
# Universities and institutes own patents in order to license them out (and are required to promote
# transfer, 促进科技成果转化法); enterprises mostly use their own; individuals' patents are on average weaker.
APPLICANT_SCORES: dict[ApplicantType, float] = {
    "university": 70.0, "research_institute": 70.0, "enterprise": 60.0, "individual": 40.0,
}


@dataclass(frozen=True)
class Factor:
    """One sub-score. `missing` = the data was absent and the neutral value was used."""

    name: str
    score: float
    weight: float
    missing: bool
    basis: str  # what the score was computed from, for people


@dataclass(frozen=True)
class DimensionScore:
    name: Dimension
    score: float
    weight: float
    factors: tuple[Factor, ...]


@dataclass(frozen=True)
class ValueScore:
    total: float
    dimensions: tuple[DimensionScore, ...]

    @property
    def missing(self) -> list[str]:
        """The factors scored neutrally for lack of data, as "dimension.factor"."""
        return [f"{d.name}.{f.name}" for d in self.dimensions for f in d.factors if f.missing]

    def dimension(self, name: Dimension) -> DimensionScore:
        return next(d for d in self.dimensions if d.name == name)

    def to_dict(self) -> dict:
        return {"total": self.total, "missing": self.missing, "dimensions": [asdict(d) for d in self.dimensions]}


def _factor(dimension: Dimension, name: str, score: float | None, basis: str) -> Factor:
    """score None = missing data → neutral, flagged."""
    weight = FACTOR_WEIGHTS[dimension][name]
    if score is None:
        return Factor(name, NEUTRAL, weight, True, basis)
    return Factor(name, round(min(100.0, max(0.0, score)), 1), weight, False, basis)


# --- legal ----------------------------------------------------------------------------------------

def legal_status_factor(status: str) -> Factor:
    """有效 100, 审中 60 (may still be granted), 失效 / 驳回 / 撤回 0."""
    if status not in STATUS_SCORES:
        return _factor("legal", "legal_status", None, f"status {status!r} unknown" if status else "no legal status")
    return _factor("legal", "legal_status", STATUS_SCORES[status], status)


def term_years(patent_type: str, application_date: date) -> int | None:
    if patent_type == "外观设计" and application_date < DESIGN_15_YEARS_FROM:
        return 10
    return TERM_YEARS.get(patent_type)


def remaining_term_factor(patent_type: str, application_date: date | None, status: str, today: date) -> Factor:
    """100 × remaining / full term, counted from the application date; 0 when the rights are gone."""
    if status in _NO_RIGHTS:
        return _factor("legal", "remaining_term", 0.0, f"no rights left ({status})")
    term = term_years(patent_type, application_date) if application_date else None
    if term is None or application_date is None:
        why = "no application date" if application_date is None else f"patent type {patent_type!r} has no known term"
        return _factor("legal", "remaining_term", None, why)
    elapsed = (today - application_date).days / 365.25
    remaining = max(0.0, min(float(term), term - elapsed))
    return _factor("legal", "remaining_term", 100.0 * remaining / term, f"{remaining:.1f} of {term} years left")


_CLAIM_NUMBER_RE = re.compile(r"(?:^|[。；;\n])\s*(\d{1,3})\s*[.．、]")


def count_claims(claims: str) -> int | None:
    """The number of claims in a claims text ("1.一种…。2.根据权利要求1所述的…"); None when only the first
    claim is there (CNIPA's 主权项), which says nothing about how many there are."""
    numbers = {int(n) for n in _CLAIM_NUMBER_RE.findall(claims or "")}
    return max(numbers) if len(numbers) >= 2 else None


def claims_factor(claim_count: int | None, claims: str) -> Factor:
    """10 points per claim, full marks at 10: more claims, more fallback positions in a dispute."""
    n = claim_count if claim_count is not None else count_claims(claims)
    if n is None:
        return _factor("legal", "claims", None, "claim count unknown (only the first claim or none)" if claims else "no claims")
    return _factor("legal", "claims", 100.0 * min(n, CLAIMS_FOR_FULL_SCORE) / CLAIMS_FOR_FULL_SCORE, f"{n} claims")


# --- technical ------------------------------------------------------------------------------------

def ipc_breadth_factor(ipc: list[str]) -> Factor:
    """20 + 20 per distinct IPC subclass, full marks at 4: a technology classified in several fields has
    more possible buyers."""
    n = len(subclasses(ipc))
    if n == 0:
        return _factor("technical", "ipc_breadth", None, "no IPC codes")
    return _factor("technical", "ipc_breadth", 20.0 + 20.0 * n, f"{n} IPC subclass{'es' if n > 1 else ''}")


def citations_factor(citation_count: int | None) -> Factor:
    """20 + 80 × log(1 + c) / log(11), full marks at 10 forward citations: later patents building on this
    one is the usual evidence of technical influence; the log keeps one heavily cited patent from dominating."""
    if citation_count is None:
        return _factor("technical", "citations", None, "citations unknown")
    c = citation_count
    score = 20.0 + 80.0 * min(1.0, math.log1p(c) / math.log1p(CITATIONS_FOR_FULL_SCORE))
    return _factor("technical", "citations", score, f"cited {c} time{'s' if c != 1 else ''}")


# --- economic -------------------------------------------------------------------------------------

def transactions_factor(transfers: int | None, licences: int | None, pledges: int | None) -> Factor:
    """40 + 20 per licence + 15 per transfer + 10 per pledge, capped at 100; unknown when no count is given."""
    counts = {"transfer_count": transfers, "licence_count": licences, "pledge_count": pledges}
    if all(v is None for v in counts.values()):
        return _factor("economic", "transactions", None, "no transfer / licence / pledge history")
    score = TRANSACTION_BASE + sum(TRANSACTION_POINTS[k] * (v or 0) for k, v in counts.items())
    basis = f"{transfers or 0} transfers, {licences or 0} licences, {pledges or 0} pledges"
    return _factor("economic", "transactions", score, basis)


def applicant_factor(applicant_type: str) -> Factor:
    """university / research institute 70, enterprise 60, individual 40."""
    score = APPLICANT_SCORES.get(applicant_type)  # type: ignore[call-overload]
    return _factor("economic", "applicant_type", score, applicant_type if score is not None else "applicant type unknown")


# --- putting it together --------------------------------------------------------------------------

def _dimension(name: Dimension, factors: tuple[Factor, ...]) -> DimensionScore:
    score = sum(f.score * f.weight for f in factors)
    return DimensionScore(name, round(score, 1), DIMENSION_WEIGHTS[name], factors)


def patent_value(patent: Patent, today: date | None = None) -> ValueScore:
    """The value score of a patent on `today` (the remaining term depends on it), with its components."""
    today = today or date.today()
    legal = (
        legal_status_factor(patent.legal_status),
        remaining_term_factor(patent.patent_type, patent.application_date, patent.legal_status, today),
        claims_factor(patent.claim_count, patent.claims),
    )
    technical = (ipc_breadth_factor(patent.ipc), citations_factor(patent.citation_count))
    economic = (
        transactions_factor(patent.transfer_count, patent.licence_count, patent.pledge_count),
        applicant_factor(patent.applicant_type),
    )
    dims = (_dimension("legal", legal), _dimension("technical", technical), _dimension("economic", economic))
    return ValueScore(round(sum(d.score * d.weight for d in dims), 1), dims)

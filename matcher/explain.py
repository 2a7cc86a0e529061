"""Why a candidate is there: shared key terms (rarest first) with their positions, and a 强/中/弱 quality label."""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Literal

from indexer.text import normalize_text

Quality = Literal["强", "中", "弱"]


def matched_terms(query_tokens: list[str], doc_tokens: list[str], df: Counter, n_docs: int, limit: int = 8) -> list[str]:
    """Shared terms, rarest first: a shared rare term (氮化硼) explains more than a common one (装置)."""
    shared = set(query_tokens) & set(doc_tokens)
    # Single characters are too ambiguous to show as a reason.
    shared = {t for t in shared if len(t) > 1}
    idf = {t: math.log((n_docs + 1) / (df.get(t, 0) + 0.5)) for t in shared}
    return sorted(shared, key=lambda t: (-idf[t], t))[:limit]


def highlight_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) character spans of `terms` in `text`, longest term first, in text order."""
    if not terms:
        return []
    folded = normalize_text(text)
    if len(folded) != len(text):  # NFKC changed lengths (rare ligatures): fall back to plain lower-casing
        folded = text.lower()
    pattern = re.compile("|".join(re.escape(t) for t in sorted(set(terms), key=len, reverse=True)))
    return [(m.start(), m.end()) for m in pattern.finditer(folded)]


def mark(text: str, terms: list[str], left: str = "【", right: str = "】") -> str:
    """`text` with each shared term wrapped in markers (for the terminal; the web UI uses the spans)."""
    out, last = [], 0
    for s, e in highlight_spans(text, terms):
        out += [text[last:s], left, text[s:e], right]
        last = e
    return "".join(out + [text[last:]])


def quality_label(dense_score: float | None, strong: float, medium: float) -> Quality:
    """强 / 中 / 弱 from the cosine similarity; thresholds are calibrated on the dev set (`ptm eval`)."""
    if dense_score is None:
        return "弱"
    if dense_score >= strong:
        return "强"
    return "中" if dense_score >= medium else "弱"


def snippet(text: str, terms: list[str], width: int = 120) -> str:
    """A window of `text` around its first shared term, with every shared term marked 【…】."""
    spans = highlight_spans(text, terms)
    start = max(0, spans[0][0] - width // 4) if spans else 0
    window = text[start : start + width]
    return ("…" if start else "") + mark(window, terms) + ("…" if start + width < len(text) else "")


def ipc_labels(codes: list[str], limit: int = 3) -> list[str]:
    """'CODE 中文标题' for the first codes (the main class comes first in the record)."""
    from indexer import ipc

    return [f"{c} {ipc.title(c)}".strip() for c in codes[:limit]]

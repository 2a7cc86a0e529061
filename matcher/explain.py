"""Why a candidate is there: the shared key terms of query and candidate, weighted by rarity in the corpus."""
from __future__ import annotations

import math
from collections import Counter

from indexer.index import Snapshot

_DF_CACHE: dict[str, Counter] = {}


def document_frequencies(snapshot: Snapshot) -> Counter:
    """Term → number of documents containing it; computed once per loaded generation."""
    key = str(snapshot.path)
    if key not in _DF_CACHE:
        _DF_CACHE.clear()  # one live generation per kind matters; older ones would only leak memory
        df: Counter = Counter()
        for toks in snapshot.tokens.values():
            df.update(set(toks))
        _DF_CACHE[key] = df
    return _DF_CACHE[key]


def matched_terms(query_tokens: list[str], doc_tokens: list[str], df: Counter, n_docs: int, limit: int = 8) -> list[str]:
    """Shared terms, rarest first: a shared rare term (氮化硼) explains more than a common one (装置)."""
    shared = set(query_tokens) & set(doc_tokens)
    # Single characters are too ambiguous to show as a reason.
    shared = {t for t in shared if len(t) > 1}
    idf = {t: math.log((n_docs + 1) / (df.get(t, 0) + 0.5)) for t in shared}
    return sorted(shared, key=lambda t: (-idf[t], t))[:limit]

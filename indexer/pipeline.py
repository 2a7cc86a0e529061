"""The write path: file → readers → store (one transaction), and store → tokens + embeddings → index."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from indexer import index as index_mod
from indexer.backends import get_backend
from indexer.readers import ReadReport, read_file
from indexer.settings import Settings
from indexer.store import KINDS, Kind, Store, UpsertCounts

if TYPE_CHECKING:
    from indexer.encoder import Shapes

#: Retrieval role of each kind: patents are passages, demands are queries (e5 prefixes differ).
EMBED_ROLE: dict[str, str] = {"patents": "passage", "demands": "query"}


class ImportRejected(ValueError):
    """Rows were rejected, so (by default) nothing of the file was written."""

    def __init__(self, report: ReadReport):
        rows = ", ".join(str(r.row) for r in report.rejected[:20])
        more = "" if len(report.rejected) <= 20 else f" and {len(report.rejected) - 20} more"
        super().__init__(
            f"{len(report.rejected)} row(s) rejected (rows {rows}{more}); nothing was imported. "
            "Fix those rows, or pass --skip-invalid to import the valid rows only."
        )
        self.report = report


@dataclass
class IngestResult:
    kind: Kind
    path: Path
    report: ReadReport
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    dry_run: bool = False


def model_signature(settings: Settings) -> str:
    """What the vectors depend on besides the text: the model and the e5 prefixes."""
    return f"{settings.model}|query={settings.query_prefix!r}|passage={settings.passage_prefix!r}"


def open_store(settings: Settings) -> Store:
    return Store(settings.db_path)


def ingest_file(settings: Settings, kind: Kind, path: Path, *, dry_run: bool = False,
                skip_invalid: bool = False) -> IngestResult:
    """Validate the whole file first; write its records in one transaction or not at all."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    report = read_file(Path(path), kind, settings)
    result = IngestResult(kind, Path(path), report, dry_run=dry_run)
    if dry_run:
        # The counts a real run would report, from a rolled-back upsert; no database is created for it.
        exists = settings.db_path.exists()
        result.counts = open_store(settings).upsert(kind, report.records, dry_run=True) if exists else \
            UpsertCounts(added=len(report.records))
        return result
    if report.rejected and not skip_invalid:
        raise ImportRejected(report)
    result.counts = open_store(settings).upsert(kind, report.records)
    return result


def sync_index(settings: Settings, kinds: tuple[Kind, ...] = KINDS, rebuild: bool = False,
               progress: Callable[[str, int, int], None] | None = None,
               shapes: Shapes = "exact") -> list[index_mod.SyncReport]:
    """Incremental unless `rebuild`: only new or changed texts are tokenised and embedded (and embeddings are cached).
    `progress(kind, done, total)` hears about the texts embedded so far; `shapes="bounded"` in long-lived
    processes (see indexer.encoder.Shapes)."""
    from indexer.encoder import EmbeddingCache, encode_cached, load_encoder
    from indexer.text import get_tokenizer, tokenize

    store = open_store(settings)
    cache = EmbeddingCache(settings.embedding_cache)
    tokenizer = get_tokenizer(settings.tokenizer)
    backend = get_backend(settings)  # FAISS files or Qdrant (Settings.backend)
    reports = []
    for kind in kinds:
        role = EMBED_ROLE[kind]
        inputs = index_mod.SyncInputs(
            hashes=lambda kind=kind: store.text_hashes(kind),  # read under the index lock
            fetch_texts=lambda ids, kind=kind: store.texts(kind, ids),
            # The model is loaded lazily: a sync with nothing new to embed starts in well under a second.
            embed=lambda texts, role=role: encode_cached(load_encoder(settings), cache, texts, role, shapes),
            tokenize=lambda texts: [tokenizer(t) for t in texts],
            words=None if settings.tokenizer == "jieba" else (lambda texts: [tokenize(t) for t in texts]),
            model=model_signature(settings),
            tokenizer=settings.tokenizer,
            extra={"role": role},
            index_type=settings.index_type, ann_threshold=settings.ann_threshold, ivf_nprobe=settings.ivf_nprobe,
        )
        step = None if progress is None else (lambda done, total, kind=kind: progress(kind, done, total))
        reports.append(backend.sync(settings, kind, inputs, rebuild=rebuild, progress=step))
    return reports

"""FAISS + BM25 artefacts for one kind of record: incremental sync with the store, atomic generations on disk.

Layout of `<index_dir>/<kind>/`:
    CURRENT          name of the live generation (replaced by rename, so readers see old or new, never a mix)
    gen-000007/      dense.faiss (IndexIDMap2 over inner product), bm25/ (bm25s), docs.jsonl, manifest.json
    .lock            taken while a sync writes, so two `ptm index` runs cannot interleave
Each generation is complete on its own; older ones are removed after the pointer moves.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from indexer.text import TOKENIZER_VERSION

FORMAT_VERSION = 2


class IndexStateError(RuntimeError):
    """The on-disk index cannot serve as it is; the message says how to fix it (usually `ptm index --rebuild`)."""


@dataclass
class Snapshot:
    """One loaded generation: dense vectors, BM25 and the row ↔ int_id maps."""

    path: Path
    manifest: dict
    dense: "faiss.Index"  # noqa: F821 - faiss is imported lazily
    bm25: "bm25s.BM25 | None"  # noqa: F821
    int_ids: np.ndarray  # BM25 row → int_id
    hashes: dict[int, str]
    tokens: dict[int, list[str]]  # BM25 tokens (words or bigrams, per the tokenizer setting)
    words: dict[int, list[str]]  # jieba content words, for explanations (the same lists when BM25 uses words)
    _df: dict[str, Counter] = field(default_factory=dict, repr=False, compare=False)

    @property
    def size(self) -> int:
        return len(self.int_ids)

    def document_frequencies(self, of: Literal["words", "tokens"] = "words") -> Counter:
        """Term → number of documents containing it, computed once per snapshot: `words` (jieba, for
        explanations) or `tokens` (what BM25 indexes, for query expansion)."""
        if of not in ("words", "tokens"):
            raise ValueError(f"of must be 'words' or 'tokens', not {of!r}")
        if of not in self._df:
            self._df[of] = Counter(t for toks in getattr(self, of).values() for t in set(toks))
        return self._df[of]

    def vector(self, int_id: int) -> np.ndarray | None:
        try:
            return self.dense.reconstruct(int(int_id))
        except RuntimeError:  # faiss raises for an id it does not hold
            return None


@dataclass(frozen=True)
class SyncReport:
    kind: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    total: int = 0
    rebuilt: bool = False
    seconds: float = 0.0
    generation: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.rebuilt)


@dataclass
class SyncInputs:
    """What a sync needs from the layers around it, passed in so this module stays free of the store and model."""

    hashes: dict[int, str]  # what the store holds now: int_id → text hash
    fetch_texts: Callable[[Sequence[int]], dict[int, str]]
    embed: Callable[[list[str]], np.ndarray]  # texts → L2-normalised float32 rows (loads the model only when called)
    tokenize: Callable[[list[str]], list[list[str]]]
    words: Callable[[list[str]], list[list[str]]] | None  # explanation words; None: the BM25 tokens are words
    model: str  # the encoder's signature: a change forces a rebuild
    tokenizer: str = "jieba"  # which tokenisation the token lists hold: a change forces a rebuild
    extra: dict = field(default_factory=dict)


def tokenizer_signature(name: str) -> str:
    return f"{TOKENIZER_VERSION}:{name}"


def kind_dir(index_dir: Path, kind: str) -> Path:
    return Path(index_dir) / kind


def load_snapshot(index_dir: Path, kind: str) -> Snapshot | None:
    """The live generation of `kind`, or None when nothing was indexed yet."""
    base = kind_dir(index_dir, kind)
    pointer = base / "CURRENT"
    if not pointer.exists():
        return None
    gen = base / pointer.read_text(encoding="utf-8").strip()
    try:
        return _read_generation(gen)
    except (OSError, ValueError, RuntimeError) as exc:
        raise IndexStateError(f"the {kind} index at {gen} cannot be read ({exc}); run `ptm index --rebuild`") from exc


def current_generation(index_dir: Path, kind: str) -> str | None:
    pointer = kind_dir(index_dir, kind) / "CURRENT"
    return pointer.read_text(encoding="utf-8").strip() if pointer.exists() else None


def writer_lock(index_dir: Path, kind: str) -> AbstractContextManager[None]:
    """The lock a sync holds while it writes `kind`: holding it keeps generations from being added or removed."""
    base = kind_dir(index_dir, kind)
    base.mkdir(parents=True, exist_ok=True)
    return _exclusive(base / ".lock")


def sync(index_dir: Path, kind: str, inputs: SyncInputs, rebuild: bool = False,
         progress: Callable[[int, int], None] | None = None) -> SyncReport:
    """Bring the index of `kind` in line with the store: embed and tokenise only new or changed texts.
    `progress(done, total)` is called as texts are embedded (in chunks of EMBED_CHUNK), for progress bars."""
    start = time.perf_counter()
    base = kind_dir(index_dir, kind)
    base.mkdir(parents=True, exist_ok=True)
    with _exclusive(base / ".lock"):
        old = None if rebuild else _compatible_or_none(index_dir, kind, inputs)
        old_hashes = old.hashes if old else {}
        want = inputs.hashes
        removed = [i for i in old_hashes if i not in want]
        todo = [i for i, h in want.items() if old_hashes.get(i) != h]
        added = sum(1 for i in todo if i not in old_hashes)
        if old is not None and not todo and not removed:
            return SyncReport(kind, unchanged=len(want), total=len(want), seconds=time.perf_counter() - start,
                              generation=current_generation(index_dir, kind) or "")

        texts = inputs.fetch_texts(todo)
        missing = [i for i in todo if i not in texts]
        if missing:  # deleted between reading hashes and texts: index what exists, the next sync catches up
            todo = [i for i in todo if i in texts]
        ordered = [texts[i] for i in todo]
        # Deleting only needs no model: the dimension is known from the previous generation.
        vectors = _embed(inputs.embed, ordered, progress) if ordered or old is None else np.zeros((0, old.dense.d), dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(todo) or (old is not None and vectors.shape[1] != old.dense.d):
            raise IndexStateError(f"the encoder returned shape {vectors.shape} for {len(todo)} texts")
        dim = vectors.shape[1]

        dense = old.dense if old else _new_dense(dim)
        stale = [i for i in todo if i in old_hashes] + removed
        if stale:
            import faiss

            dense.remove_ids(faiss.IDSelectorBatch(np.asarray(stale, dtype=np.int64)))
        if todo:
            dense.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(todo, dtype=np.int64))

        tokens = dict(old.tokens) if old else {}
        words = dict(old.words) if old else {}
        for i in removed:
            tokens.pop(i, None)
            words.pop(i, None)
        new_tokens = inputs.tokenize(ordered)
        tokens.update(zip(todo, new_tokens))
        words.update(zip(todo, inputs.words(ordered) if inputs.words else new_tokens))
        hashes = {i: want[i] for i in tokens}

        manifest = {
            "format": FORMAT_VERSION, "kind": kind, "model": inputs.model, "dim": dim,
            "tokenizer": tokenizer_signature(inputs.tokenizer), "count": len(tokens), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **inputs.extra,
        }
        gen = _write_generation(base, manifest, dense, tokens, words, hashes)
        _publish(base, gen)
        return SyncReport(
            kind, added=added, updated=len(todo) - added, removed=len(removed),
            unchanged=len(want) - len(todo) - len(missing), total=len(tokens), rebuilt=old is None,
            seconds=time.perf_counter() - start, generation=gen,
        )


EMBED_CHUNK = 256


def _embed(embed: Callable[[list[str]], np.ndarray], texts: list[str],
           progress: Callable[[int, int], None] | None) -> np.ndarray:
    """One call without a progress callback (as before); with one, chunks so the caller hears about each."""
    if progress is None or len(texts) <= EMBED_CHUNK:
        vectors = embed(texts)
        if progress is not None:
            progress(len(texts), len(texts))
        return vectors
    parts = []
    for start in range(0, len(texts), EMBED_CHUNK):
        parts.append(embed(texts[start : start + EMBED_CHUNK]))
        progress(min(start + EMBED_CHUNK, len(texts)), len(texts))
    return np.concatenate(parts)


def _compatible_or_none(index_dir: Path, kind: str, inputs: SyncInputs) -> Snapshot | None:
    """The previous generation if it can be extended; a model or tokenizer change forces a rebuild."""
    try:
        snap = load_snapshot(index_dir, kind)
    except IndexStateError:
        return None  # unreadable: rebuild from the store, which is the source of truth
    if snap is None:
        return None
    m = snap.manifest
    if (m.get("format"), m.get("model"), m.get("tokenizer")) != (
        FORMAT_VERSION, inputs.model, tokenizer_signature(inputs.tokenizer)
    ):
        return None
    return snap


def _new_dense(dim: int) -> "faiss.Index":  # noqa: F821
    import faiss

    # Vectors are L2-normalised, so inner product is cosine similarity.
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def build_bm25(token_lists: list[list[str]]) -> "bm25s.BM25":  # noqa: F821
    import bm25s
    from bm25s.tokenization import Tokenized

    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in token_lists]
    retriever = bm25s.BM25()
    retriever.index(Tokenized(ids=ids, vocab=vocab), show_progress=False)
    return retriever


def _write_generation(base: Path, manifest: dict, dense, tokens: dict[int, list[str]], words: dict[int, list[str]],
                      hashes: dict[int, str]) -> str:
    import faiss

    name = _next_generation_name(base)
    tmp = base / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    order = sorted(tokens)
    faiss.write_index(dense, str(tmp / "dense.faiss"))
    if order:
        build_bm25([tokens[i] for i in order]).save(str(tmp / "bm25"), show_progress=False)
    with open(tmp / "docs.jsonl", "w", encoding="utf-8") as fh:
        for i in order:
            doc = {"i": i, "h": hashes[i], "t": tokens[i]}
            if words[i] != tokens[i]:  # stored only when they differ (bigram BM25)
                doc["w"] = words[i]
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
    (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    _fsync_tree(tmp)
    os.rename(tmp, base / name)
    return name


def _read_generation(gen: Path) -> Snapshot:
    import bm25s
    import faiss

    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    dense = faiss.read_index(str(gen / "dense.faiss"))
    int_ids, hashes, tokens, words = [], {}, {}, {}
    with open(gen / "docs.jsonl", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            int_ids.append(doc["i"])
            hashes[doc["i"]] = doc["h"]
            tokens[doc["i"]] = doc["t"]
            words[doc["i"]] = doc.get("w", doc["t"])
    bm25 = bm25s.BM25.load(str(gen / "bm25"), show_progress=False) if int_ids else None
    if dense.ntotal != len(int_ids) or manifest.get("count") != len(int_ids):
        raise ValueError(f"dense index holds {dense.ntotal} vectors but docs.jsonl lists {len(int_ids)}")
    return Snapshot(gen, manifest, dense, bm25, np.asarray(int_ids, dtype=np.int64), hashes, tokens, words)


def _publish(base: Path, gen: str) -> None:
    """Point CURRENT at `gen` by rename (atomic), then drop older generations that no reader can open anew."""
    tmp = base / f".CURRENT-{os.getpid()}"
    tmp.write_text(gen, encoding="utf-8")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, base / "CURRENT")
    _fsync_dir(base)
    # The previous generation stays: a reader that read the old pointer a moment ago can still open it.
    gens = sorted(p.name for p in base.glob("gen-*"))
    for name in gens[:-2]:
        shutil.rmtree(base / name, ignore_errors=True)
    # Under the lock any temp folder left is from a killed run.
    for tmp_dir in base.glob(".tmp-*"):
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _next_generation_name(base: Path) -> str:
    nums = [int(p.name[4:]) for p in base.glob("gen-*") if p.name[4:].isdigit()]
    return f"gen-{max(nums, default=0) + 1:06d}"


def _fsync_tree(path: Path) -> None:
    for root, _dirs, files in os.walk(path):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(Path(root))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    # A second writer waits for the first (a sync takes seconds to minutes) rather than failing.
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

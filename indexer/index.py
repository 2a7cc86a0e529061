"""FAISS + BM25 artefacts for one kind of record: incremental sync with the store, atomic generations on disk.

Layout of `<index_dir>/<kind>/`:
    CURRENT          name of the live generation (replaced by rename, so readers see old or new, never a mix)
    gen-000007/      dense.faiss (flat or IVF by corpus size, see indexer/dense.py), docs.jsonl (int_id and text
                     hash of every live document), manifest.json (type, segments), bm25/ and bm25-delta/ (BM25
                     segments with their token lists on disk, see indexer/segments.py)
    .lock            taken while a sync writes, so two `ptm index` runs cannot interleave
Each generation is complete on its own; an unchanged BM25 main segment is hard-linked from the previous one
rather than rewritten, so adding a few documents to a large index costs the delta, not a rebuild. Older
generations are removed after the pointer moves. Format 2 generations (tokens inside docs.jsonl, one BM25)
still load, and the next sync carries them over without re-embedding.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from indexer import dense as dense_mod
from indexer import segments as seg_mod
from indexer.text import TOKENIZER_VERSION

FORMAT_VERSION = 3
#: Generations this code reads and extends (2: before segments; its token lists are carried over).
READABLE_FORMATS = (2, 3)


class IndexStateError(RuntimeError):
    """The on-disk index cannot serve as it is; the message says how to fix it (usually `ptm index --rebuild`)."""


@dataclass
class Snapshot:
    """One loaded generation: dense vectors, BM25 and the row ↔ int_id maps. Token and word lists are
    mappings read from disk per document (format 3), so a million documents do not sit in memory as strings."""

    path: Path
    manifest: dict
    dense: "faiss.Index"  # noqa: F821 - faiss is imported lazily
    bm25: "bm25s.BM25 | seg_mod.SegmentedBM25 | None"  # noqa: F821 - anything with vocab_dict and get_scores
    int_ids: np.ndarray  # BM25 row → int_id; -1 for a dead row (deleted, or re-indexed in a later segment)
    hashes: dict[int, str]
    tokens: Mapping[int, list[str]]  # BM25 tokens (words or bigrams, per the tokenizer setting)
    words: Mapping[int, list[str]]  # jieba content words, for explanations (the same lists when BM25 uses words)
    segments: list[seg_mod.Segment] = field(default_factory=list, repr=False, compare=False)
    _df: dict[str, Counter] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def size(self) -> int:
        """Live documents (BM25 rows may also hold dead ones, id -1, until the next merge)."""
        return int(np.count_nonzero(self.int_ids >= 0))

    @property
    def index_type(self) -> dense_mod.IndexType:
        return dense_mod.index_type_of(self.dense)

    def document_frequencies(self, of: Literal["words", "tokens"] = "words") -> Counter:
        """Term → number of documents containing it, computed once per snapshot: `words` (jieba, for
        explanations) or `tokens` (what BM25 indexes, for query expansion)."""
        if of not in ("words", "tokens"):
            raise ValueError(f"of must be 'words' or 'tokens', not {of!r}")
        if of not in self._df:
            source = getattr(self, of)
            self._df[of] = source.document_frequencies() if hasattr(source, "document_frequencies") else \
                Counter(t for toks in source.values() for t in set(toks))
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

    # What the store holds: int_id → text hash, or a function returning it. Pass the function: a sync calls it
    # only once it holds the index lock, so a write committed while another process was syncing is not missed.
    hashes: dict[int, str] | Callable[[], dict[int, str]]
    fetch_texts: Callable[[Sequence[int]], dict[int, str]]
    embed: Callable[[list[str]], np.ndarray]  # texts → L2-normalised float32 rows (loads the model only when called)
    tokenize: Callable[[list[str]], list[list[str]]]
    words: Callable[[list[str]], list[list[str]]] | None  # explanation words; None: the BM25 tokens are words
    model: str  # the encoder's signature: a change forces a rebuild
    tokenizer: str = "jieba"  # which tokenisation the token lists hold: a change forces a rebuild
    extra: dict = field(default_factory=dict)
    # Dense index type (Settings.index_type, ann_threshold, ivf_nprobe; see indexer/dense.py).
    index_type: str = "auto"
    ann_threshold: int = dense_mod.ANN_THRESHOLD
    ivf_nprobe: int = dense_mod.IVF_NPROBE
    merge_fraction: float = seg_mod.MERGE_FRACTION  # BM25 delta share of main that triggers a merge

    def current_hashes(self) -> dict[int, str]:
        return self.hashes() if callable(self.hashes) else self.hashes


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
        want = inputs.current_hashes()
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

        stale = [i for i in todo if i in old_hashes] + removed
        todo_set, removed_set = set(todo), set(removed)
        # A kept document keeps the hash it was indexed with (a text deleted mid-sync is retried next time).
        hashes = {i: h for i, h in old_hashes.items() if i not in removed_set and i not in todo_set}
        hashes.update((i, want[i]) for i in todo)
        dense = _updated_dense(old, inputs, vectors, np.asarray(todo, dtype=np.int64), stale, hashes)

        new_tokens = inputs.tokenize(ordered)
        new_docs = list(zip(todo, new_tokens, inputs.words(ordered) if inputs.words else new_tokens))
        manifest = {
            "format": FORMAT_VERSION, "kind": kind, "model": inputs.model, "dim": dim,
            "tokenizer": tokenizer_signature(inputs.tokenizer), "count": len(hashes), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **_dense_manifest(dense, old, inputs), **inputs.extra,
        }
        gen = _write_generation(base, manifest, dense, hashes,
                                lambda tmp: _write_segments(tmp, old, hashes, new_docs, inputs.merge_fraction))
        _publish(base, gen)
        return SyncReport(
            kind, added=added, updated=len(todo) - added, removed=len(removed),
            unchanged=len(want) - len(todo) - len(missing), total=len(hashes), rebuilt=old is None,
            seconds=time.perf_counter() - start, generation=gen,
        )


def _updated_dense(old: Snapshot | None, inputs: SyncInputs, vectors: np.ndarray, todo: np.ndarray,
                   stale: list[int], hashes: dict[int, str]) -> "faiss.Index":  # noqa: F821
    """The previous dense index with stale vectors removed and new ones added in place, or a new one of the type
    the corpus size calls for; an index of the wrong type (the corpus crossed the threshold, the setting changed)
    or an IVF trained on a fraction of today's corpus is rebuilt from its own vectors, never re-embedded."""
    want = dense_mod.resolve_index_type(inputs.index_type, len(hashes), inputs.ann_threshold)
    if old is None or not old.size:
        return dense_mod.build_dense(want, vectors, todo, inputs.ivf_nprobe) if len(todo) else \
            dense_mod.build_dense("flat", vectors, todo)
    index = old.dense
    dense_mod.remove(index, np.asarray(stale, dtype=np.int64))
    if len(todo):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), todo)
    trained_on = int(old.manifest.get("trained_on", 0))
    outgrown = want == "ivf" and trained_on * IVF_RETRAIN_GROWTH < len(hashes)
    if dense_mod.index_type_of(index) != want or outgrown:
        index = dense_mod.convert(index, want, np.fromiter(hashes, dtype=np.int64, count=len(hashes)), inputs.ivf_nprobe)
    elif want == "ivf":
        index.nprobe = min(inputs.ivf_nprobe, index.nlist)  # a changed setting applies from this generation on
    return index


#: Re-train an IVF's lists once the corpus has grown this many times over what they were trained on.
IVF_RETRAIN_GROWTH = 4


def _dense_manifest(dense, old: Snapshot | None, inputs: SyncInputs) -> dict:
    """What the manifest records about the dense index: its type, and for IVF the search depth and training size."""
    kind = dense_mod.index_type_of(dense)
    if kind != "ivf":
        return {"index_type": kind}
    retrained = old is None or old.index_type != "ivf" or dense is not old.dense
    trained_on = dense.ntotal if retrained else int(old.manifest.get("trained_on", dense.ntotal))
    return {"index_type": kind, "nprobe": int(dense.nprobe), "nlist": int(dense.nlist), "trained_on": trained_on}


def _write_segments(tmp: Path, old: Snapshot | None, hashes: dict[int, str], new_docs: list[seg_mod.Doc],
                    merge_fraction: float) -> list[str]:
    """BM25 segments of the new generation: main hard-linked + a rebuilt delta (old delta's live rows and the new
    documents) while the delta stays small; else one merged main, streamed from the old segments on disk."""
    if not hashes:
        return []
    new_ids = {d[0] for d in new_docs}
    kept = np.fromiter((i for i in hashes if i not in new_ids), dtype=np.int64)
    prev = old.segments if old else []
    if prev:
        live = seg_mod.live_rows(prev, kept)
        delta_docs = [*seg_mod.iter_live(prev[1:], live[1:], set()), *new_docs]
        dead_main = int(np.count_nonzero(~live[0]))
        if not seg_mod.needs_merge(len(prev[0]), dead_main, len(delta_docs), merge_fraction):
            seg_mod.link_segment(prev[0].path, tmp / seg_mod.MAIN)
            if not delta_docs:
                return [seg_mod.MAIN]
            seg_mod.write_segment(tmp / seg_mod.DELTA, delta_docs, idf_base=prev[0])
            return [seg_mod.MAIN, seg_mod.DELTA]
        old_docs = seg_mod.iter_live(prev, live, set())
    else:  # a format 2 generation (lists in memory) or nothing yet
        old_docs = ((int(i), old.tokens[int(i)], old.words[int(i)]) for i in np.sort(kept)) if old else iter(())
    seg_mod.write_segment(tmp / seg_mod.MAIN, _chain(old_docs, new_docs))
    return [seg_mod.MAIN]


def _chain(*parts) -> Iterator[seg_mod.Doc]:
    for part in parts:
        yield from part


def build_generation(index_dir: Path, kind: str, ids: np.ndarray, vectors: np.ndarray, docs: Iterable[seg_mod.Doc],
                     hashes: dict[int, str], inputs: SyncInputs) -> SyncReport:
    """A complete generation from vectors and token lists computed elsewhere (a batch embedding job, the
    benchmarks), published like a sync's. `docs` is streamed, so millions of token lists never sit in memory;
    `inputs` supplies the model/tokenizer signatures and the index-type settings (its callables are not used)."""
    start = time.perf_counter()
    base = kind_dir(index_dir, kind)
    base.mkdir(parents=True, exist_ok=True)
    with _exclusive(base / ".lock"):
        kind_ = dense_mod.resolve_index_type(inputs.index_type, len(ids), inputs.ann_threshold)
        dense = dense_mod.build_dense(kind_ if len(ids) else "flat", vectors, ids, inputs.ivf_nprobe)
        manifest = {
            "format": FORMAT_VERSION, "kind": kind, "model": inputs.model, "dim": int(vectors.shape[1]),
            "tokenizer": tokenizer_signature(inputs.tokenizer), "count": len(hashes),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **_dense_manifest(dense, None, inputs), **inputs.extra,
        }
        gen = _write_generation(base, manifest, dense, hashes,
                                lambda tmp: [seg_mod.MAIN] if seg_mod.write_segment(tmp / seg_mod.MAIN, docs) else [])
        _publish(base, gen)
    return SyncReport(kind, added=len(hashes), total=len(hashes), rebuilt=True, seconds=time.perf_counter() - start,
                      generation=gen)


EMBED_CHUNK = 256


def _embed(embed: Callable[[list[str]], np.ndarray], texts: list[str],
           progress: Callable[[int, int], None] | None) -> np.ndarray:
    """One call without a progress callback (as before); with one, chunks so the caller hears about each."""
    if progress is None or len(texts) <= EMBED_CHUNK:
        vectors = embed(texts)
        if progress is not None:
            progress(len(texts), len(texts))
        return vectors
    # Chunks cut from the texts sorted by length, longest first, so the encoder's batches pad as little as one
    # call over all texts would (chunks in input order pad ~9 % more tokens, bench/bench_build.py).
    order = np.argsort([-len(t) for t in texts], kind="stable")
    parts = []
    for start in range(0, len(texts), EMBED_CHUNK):
        parts.append(embed([texts[i] for i in order[start : start + EMBED_CHUNK]]))
        progress(min(start + EMBED_CHUNK, len(texts)), len(texts))
    vectors = np.empty((len(texts), parts[0].shape[1]), dtype=parts[0].dtype)
    vectors[order] = np.concatenate(parts)
    return vectors


def _compatible_or_none(index_dir: Path, kind: str, inputs: SyncInputs) -> Snapshot | None:
    """The previous generation if it can be extended; a model or tokenizer change forces a rebuild."""
    try:
        snap = load_snapshot(index_dir, kind)
    except IndexStateError:
        return None  # unreadable: rebuild from the store, which is the source of truth
    if snap is None:
        return None
    m = snap.manifest
    if m.get("format") not in READABLE_FORMATS or (m.get("model"), m.get("tokenizer")) != (
        inputs.model, tokenizer_signature(inputs.tokenizer)
    ):
        return None
    return snap


def build_bm25(token_lists: list[list[str]]) -> "bm25s.BM25":  # noqa: F821
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in token_lists]
    return seg_mod.index_ids(ids, vocab)


def _write_generation(base: Path, manifest: dict, dense, hashes: dict[int, str],
                      write_segments: Callable[[Path], list[str]]) -> str:
    import faiss

    name = _next_generation_name(base)
    tmp = base / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    faiss.write_index(dense, str(tmp / "dense.faiss"))
    manifest = {**manifest, "segments": write_segments(tmp)}
    with open(tmp / "docs.jsonl", "w", encoding="utf-8") as fh:
        for i in sorted(hashes):
            fh.write(f'{{"i": {i}, "h": {json.dumps(hashes[i])}}}\n')
    (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    _fsync_tree(tmp)
    os.rename(tmp, base / name)
    return name


def _read_generation(gen: Path) -> Snapshot:
    import faiss

    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    if "segments" not in manifest:
        return _read_format2(gen, manifest)
    dense = dense_mod.prepare_for_search(faiss.read_index(str(gen / "dense.faiss")), manifest.get("nprobe"))
    with open(gen / "docs.jsonl", encoding="utf-8") as fh:
        hashes = {doc["i"]: doc["h"] for doc in map(json.loads, fh)}
    segments = [seg_mod.read_segment(gen / name) for name in manifest["segments"]]
    live = seg_mod.live_rows(segments, np.fromiter(hashes, dtype=np.int64, count=len(hashes)))
    int_ids = np.concatenate([np.where(m, s.ids, -1) for s, m in zip(segments, live)]) if segments else np.zeros(0, dtype=np.int64)
    served = int(sum(int(m.sum()) for m in live))
    if not dense.ntotal == served == len(hashes) == manifest.get("count"):
        raise ValueError(f"dense index holds {dense.ntotal} vectors, BM25 {served} live rows, docs.jsonl {len(hashes)}")
    bm25 = seg_mod.SegmentedBM25(segments, live) if segments else None
    return Snapshot(gen, manifest, dense, bm25, int_ids, hashes, seg_mod.SegmentDocs(segments, live, "tokens"),
                    seg_mod.SegmentDocs(segments, live, "words"), segments)


def _read_format2(gen: Path, manifest: dict) -> Snapshot:
    """A generation written before segments: token lists inside docs.jsonl, one BM25 over docs.jsonl's order."""
    import bm25s
    import faiss

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

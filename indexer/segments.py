"""BM25 segments of a generation: a large main segment plus a small delta of recent changes, token lists on disk.

A segment folder holds a bm25s index over its rows, `ids.npy` (row → int_id), `docs.jsonl` (one line per row:
{"t": BM25 tokens, "w": explanation words when they differ}) with `offsets.npy` (byte offset of each line, so one
document's words are read for the k results being explained, never all of them into memory) and `df.json`
(document frequency of every explanation word; a token's is read off the BM25 matrix).

Adding documents rebuilds only the delta; the main segment is hard-linked into the next generation unchanged.
bm25s bakes each term's IDF into its score matrix, and a delta's own IDF (df among a few thousand documents) is
not comparable with the main segment's, so the delta's scores are rescaled term by term to the IDF of main +
delta together. A row whose int_id was deleted, or re-indexed in the delta, is dead: its scores are zeroed.
When the delta plus the dead rows of main exceed MERGE_FRACTION of main, everything is merged into a new main.
"""
from __future__ import annotations

import json
import os
import shutil
from collections import ChainMap, Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

MAIN = "bm25"  # the name older generations used for their only BM25 folder (ptm doctor looks for it)
DELTA = "bm25-delta"
#: Merge the delta into main once delta rows + dead main rows exceed this share of main (bm25_scale in bench/).
MERGE_FRACTION = 0.1

Field = Literal["tokens", "words"]
Doc = tuple[int, list[str], list[str]]  # int_id, BM25 tokens, explanation words


@dataclass
class Segment:
    """One segment as loaded: its bm25s index, row ids, document frequencies, and where each row's token line
    starts on disk. The token file stays open, so a snapshot still reads it after a newer sync deleted the
    generation (positional reads: safe from several threads)."""

    path: Path
    bm25: "bm25s.BM25"  # noqa: F821 - bm25s is imported lazily
    ids: np.ndarray
    offsets: np.ndarray  # n + 1 entries: row r is bytes offsets[r]:offsets[r + 1]
    words_df: Counter
    _docs: BinaryIO = field(repr=False)
    _tokens_df: Counter | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    def read(self, row: int) -> dict:
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        return json.loads(os.pread(self._docs.fileno(), end - start, start))

    def iter_rows(self) -> Iterator[tuple[int, dict]]:
        with open(self.path / "docs.jsonl", "rb") as fh:
            for row, line in enumerate(fh):
                yield row, json.loads(line)

    def doc_freqs(self, of: Field) -> Counter:
        """Documents per word (stored), or per BM25 token (non-zero entries of its score-matrix column)."""
        if of == "words":
            return self.words_df
        if self._tokens_df is None:
            counts = np.diff(self.bm25.scores["indptr"])
            self._tokens_df = Counter({t: int(counts[j]) for t, j in self.bm25.vocab_dict.items() if j < len(counts) and counts[j]})
        return self._tokens_df


def read_segment(path: Path) -> Segment:
    import bm25s

    bm25 = bm25s.BM25.load(str(path), show_progress=False)
    words_df = Counter(json.loads((path / "df.json").read_text(encoding="utf-8"))["words"])
    return Segment(path, bm25, np.load(path / "ids.npy"), np.load(path / "offsets.npy"), words_df, open(path / "docs.jsonl", "rb"))


def write_segment(path: Path, docs: Iterable[Doc], idf_base: Segment | None = None) -> int:
    """Write a segment of `docs` (streamed: only the integer token ids are held while bm25s indexes them);
    with `idf_base`, term scores are rescaled to the IDF of `idf_base` + these documents. Returns the row count."""
    path.mkdir(parents=True)
    vocab: dict[str, int] = {}
    ids, offsets, rows = [], [], []
    words_df: Counter = Counter()
    with open(path / "docs.jsonl", "wb") as fh:
        for int_id, tokens, words in docs:
            ids.append(int_id)
            offsets.append(fh.tell())
            line = {"t": tokens} if words == tokens else {"t": tokens, "w": words}
            fh.write(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")
            rows.append([vocab.setdefault(t, len(vocab)) for t in tokens])
            words_df.update(set(words))
        offsets.append(fh.tell())
    np.save(path / "ids.npy", np.asarray(ids, dtype=np.int64))
    np.save(path / "offsets.npy", np.asarray(offsets, dtype=np.int64))
    (path / "df.json").write_text(json.dumps({"words": words_df}, ensure_ascii=False), encoding="utf-8")
    bm25 = index_ids(rows, vocab)
    del rows
    if idf_base is not None:
        _rescale_to_joint_idf(bm25, len(ids), idf_base)
    bm25.save(str(path), show_progress=False)
    return len(ids)


def index_ids(rows: list[list[int]], vocab: dict[str, int]) -> "bm25s.BM25":  # noqa: F821
    """A bm25s index over documents given as token ids of `vocab`."""
    import bm25s
    from bm25s.tokenization import Tokenized

    retriever = bm25s.BM25()
    retriever.index(Tokenized(ids=rows, vocab=vocab), show_progress=False)
    return retriever


def lucene_idf(df: np.ndarray, n: int) -> np.ndarray:
    """bm25s's default (Lucene) IDF."""
    return np.log(1 + (n - df + 0.5) / (df + 0.5))


def _rescale_to_joint_idf(bm25, n_own: int, base: Segment) -> None:
    base_df = base.doc_freqs("tokens")
    n = n_own + len(base)
    indptr = bm25.scores["indptr"]
    own = np.diff(indptr).astype(np.float64)  # documents per token of this segment (one column each)
    joint = own.copy()
    for token, j in bm25.vocab_dict.items():
        if j < len(joint):
            joint[j] += base_df.get(token, 0)
    factor = np.ones_like(own)
    used = own > 0
    factor[used] = lucene_idf(joint[used], n) / lucene_idf(own[used], n_own)
    data = bm25.scores["data"]
    bm25.scores["data"] = (data * np.repeat(factor, np.diff(indptr))).astype(data.dtype)


def link_segment(src: Path, dest: Path) -> None:
    """`src` into `dest` by hard links (no bytes copied: a segment never changes once written); copies where the
    file system cannot link (another device, no link support)."""
    dest.mkdir(parents=True)
    for entry in src.iterdir():
        try:
            os.link(entry, dest / entry.name)
        except OSError:
            shutil.copy2(entry, dest / entry.name)


def live_rows(segments: list[Segment], live_ids: np.ndarray) -> list[np.ndarray]:
    """Per segment, which rows still count: the int_id is live and no later segment re-indexed it."""
    out: list[np.ndarray] = []
    newer = np.zeros(0, dtype=np.int64)
    for seg in reversed(segments):
        out.append(np.isin(seg.ids, live_ids) & ~np.isin(seg.ids, newer))
        newer = np.concatenate([newer, seg.ids])
    return out[::-1]


class SegmentedBM25:
    """The segments of a snapshot behind the two calls the matcher makes of a bm25s index: `vocab_dict`
    (membership) and `get_scores` (one score per snapshot row, the segments' rows end to end)."""

    def __init__(self, segments: list[Segment], live: list[np.ndarray]):
        self.segments = segments
        self.vocab_dict: Mapping[str, int] = ChainMap(*(s.bm25.vocab_dict for s in segments))
        offsets = np.cumsum([0] + [len(s) for s in segments])
        self.dead = np.concatenate([np.flatnonzero(~m) + o for m, o in zip(live, offsets)]) if segments else np.zeros(0, dtype=np.int64)

    def get_scores(self, tokens: list[str]) -> np.ndarray:
        parts = []
        for seg in self.segments:
            known = [t for t in tokens if t in seg.bm25.vocab_dict]
            parts.append(seg.bm25.get_scores(known) if known else np.zeros(len(seg), dtype=np.float32))
        scores = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if len(self.dead):
            scores[self.dead] = 0.0
        return scores


class SegmentDocs(Mapping):
    """int_id → token list (or word list) of the live documents, read from the segments' docs.jsonl on demand."""

    def __init__(self, segments: list[Segment], live: list[np.ndarray], of: Field):
        self.segments, self.of = segments, of
        where = [(seg.ids[m], np.full(int(m.sum()), s), np.flatnonzero(m)) for s, (seg, m) in enumerate(zip(segments, live))]
        ids = np.concatenate([w[0] for w in where]) if where else np.zeros(0, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        self._ids = ids[order]
        self._seg = (np.concatenate([w[1] for w in where]) if where else np.zeros(0, dtype=np.int64))[order]
        self._row = (np.concatenate([w[2] for w in where]) if where else np.zeros(0, dtype=np.int64))[order]

    def __getitem__(self, int_id: int) -> list[str]:
        pos = int(np.searchsorted(self._ids, int_id))
        if pos == len(self._ids) or self._ids[pos] != int_id:
            raise KeyError(int_id)
        doc = self.segments[int(self._seg[pos])].read(int(self._row[pos]))
        return doc["t"] if self.of == "tokens" else doc.get("w", doc["t"])

    def __iter__(self) -> Iterator[int]:
        return (int(i) for i in self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def document_frequencies(self) -> Counter:
        """Summed over segments; a dead row's terms still count until the next merge (a share ≤ MERGE_FRACTION)."""
        total: Counter = Counter()
        for seg in self.segments:
            total.update(seg.doc_freqs(self.of))
        return total


def iter_live(segments: list[Segment], live: list[np.ndarray], skip: set[int]) -> Iterator[Doc]:
    """The live documents of `segments` in stored order, streamed from disk, except the int_ids in `skip`."""
    for seg, mask in zip(segments, live):
        for row, doc in seg.iter_rows():
            int_id = int(seg.ids[row])
            if mask[row] and int_id not in skip:
                yield int_id, doc["t"], doc.get("w", doc["t"])


def needs_merge(main_rows: int, dead_main_rows: int, delta_rows: int, fraction: float = MERGE_FRACTION) -> bool:
    return main_rows == 0 or delta_rows + dead_main_rows > fraction * main_rows


def dead_count(seg: Segment, still_live: np.ndarray) -> int:
    return int(np.count_nonzero(~np.isin(seg.ids, still_live)))


"""IPC codes in Chinese: the shipped IPC 2026.01 table, code → title, the section → subgroup path, prefix matching.

The table (`datasets/ipc/ipc_zh.tsv.gz`, 77,401 rows: code, level, title_zh, parent_code) is read on first
use, once per process (~0.1 s). Codes are compared in their canonical form, `normalize_ipc`'s output
("H04N5/225"). A code the table does not know — a reclassified group such as H04N5/225 (moved to H04N23 in
2023), a typo in a subgroup — degrades to its nearest known ancestor instead of failing.
"""
from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, NamedTuple, get_args

from indexer.normalize import normalize_ipc
from indexer.settings import DATASETS_DIR

IPC_TABLE = DATASETS_DIR / "ipc" / "ipc_zh.tsv.gz"

Level = Literal["section", "class", "subclass", "main_group", "subgroup"]
LEVELS: tuple[Level, ...] = get_args(Level)


class IpcNode(NamedTuple):
    code: str
    level: Level
    title: str


# section, class digits, subclass letter, main group, subgroup — each part optional after the one before.
_CODE_RE = re.compile(r"^([A-H])(?:(\d\d)(?:([A-Z])(?:(\d{1,4})(?:/(\d{2,6}))?)?)?)?$")
# A prefix may stop inside the subgroup digits ("H04N5/2"), which a full code may not.
_PREFIX_RE = re.compile(r"^([A-H])(?:(\d\d)(?:([A-Z])(?:(\d{1,4})(?:/(\d{0,6}))?)?)?)?$")
PREFIX_FORMS = "a section (H), class (H04), subclass (H04N), main group (H04N5 or H04N5/00) or subgroup start (H04N5/22)"


_TITLE_RE = re.compile(r"[\u3400-\u9fff]|[A-Za-z]{2}")
# Some (sub)class titles run on into their notes ("…的设备注意1.本小类包括…"); the note is not the title.
_NOTE_RE = re.compile(r"\s*注意\s*(?:\d|：|:).*$", re.S)


def _usable_title(title: str) -> bool:
    # The upstream PDF extraction left some titles as a bare digit ("3") or "Code: …"; such a row is
    # treated as untitled so the code degrades to an ancestor with a real title.
    return bool(_TITLE_RE.search(title)) and not title.startswith("Code:")


class _Table:
    """code → (level, title), loaded on first use; the lock makes concurrent first calls load it once."""

    def __init__(self, path: Path):
        self.path = path
        self._rows: dict[str, tuple[str, str]] | None = None
        self._lock = threading.Lock()

    def rows(self) -> dict[str, tuple[str, str]]:
        if self._rows is None:
            with self._lock:
                if self._rows is None:
                    self._rows = _load(self.path)
        return self._rows

    def get(self, code: str) -> IpcNode | None:
        # Nodes are built on lookup: making 77k NamedTuples up front would double the load time.
        row = self.rows().get(code)
        return IpcNode(code, row[0], _NOTE_RE.sub("", row[1])) if row else None  # type: ignore[arg-type]


def _load(path: Path) -> dict[str, tuple[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    rows: dict[str, tuple[str, str]] = {}
    levels = set(LEVELS)
    for line in lines[1:]:
        parts = line.split("\t")
        # Upstream also holds ~20 rows keyed by file names or one-digit subgroups; they are not codes.
        if len(parts) < 3 or parts[1] not in levels or not _CODE_RE.match(parts[0]) or not _usable_title(parts[2]):
            continue
        rows.setdefault(parts[0], (parts[1], parts[2]))
    return rows


_TABLE = _Table(IPC_TABLE)


def canonical(code: object) -> str | None:
    """The canonical spelling of an IPC code ("H04N 5/225 (2006.01)" → "H04N5/225"), None if it is not one.
    A main group written without its subgroup ("H04N5") becomes "H04N5/00"."""
    text = normalize_ipc(code)
    m = _CODE_RE.match(text)
    if not m:
        return None
    if m.group(4) and not m.group(5):
        return f"{text}/00"
    return text


def ancestors(code: object) -> list[str]:
    """The codes from section down to `code` itself, by the structure of the code (known or not)."""
    text = canonical(code)
    if text is None:
        return []
    m = _CODE_RE.match(text)
    assert m is not None
    section, cls, sub, group, subgroup = m.groups()
    chain = [section]
    if cls:
        chain.append(section + cls)
    if sub:
        chain.append(chain[-1] + sub)
    if group:
        chain.append(f"{chain[-1]}{group}/00")
    if subgroup and subgroup != "00":
        chain.append(text)
    return chain


def lookup(code: object) -> IpcNode | None:
    """The table entry of exactly this code, or None."""
    text = canonical(code)
    return _TABLE.get(text) if text else None


def path(code: object) -> list[IpcNode]:
    """Section → class → subclass → main group → subgroup, with Chinese titles, down to the deepest
    level the table knows. Subgroups hang directly under their main group (the table has no dot depth)."""
    return [node for node in map(_TABLE.get, ancestors(code)) if node is not None]


def title(code: object) -> str:
    """The Chinese title of the code, or of its nearest known ancestor; "" if not even the section is known."""
    known = path(code)
    return known[-1].title if known else ""


def format_path(code: object, separator: str = " › ") -> str:
    """One line for people: "H 电学 › H04 电通信技术 › H04N 图像通信 …"."""
    return separator.join(f"{n.code} {n.title}" for n in path(code))


def prefix_key(prefix: object) -> str:
    """A validated prefix in the form stored codes start with: "h04n" → "H04N", "H04N5" and
    "H04N5/00" → "H04N5/" (the whole main group, not H04N51), "H04N5/22" → "H04N5/22".
    Raises ValueError naming the accepted forms."""
    text = normalize_ipc(prefix)
    m = _PREFIX_RE.match(text)
    if not text or not m:
        raise ValueError(f"{str(prefix)[:40]!r} is not an IPC prefix; use {PREFIX_FORMS}")
    group, subgroup = m.group(4), m.group(5)
    if group and subgroup is None:
        return f"{text}/"
    if group and subgroup == "00":
        return text[:-2]
    return text


def matches_prefix(codes: Iterable[object], prefix: object) -> bool:
    """Whether any of the codes falls under the prefix (see prefix_key); the same rule the store's filter uses."""
    key = prefix_key(prefix)
    return any(c.startswith(key) for c in (canonical(code) for code in codes) if c)


def subclasses(codes: Iterable[object]) -> set[str]:
    """The distinct subclasses ("H04N") among the codes; unparseable codes are ignored."""
    return {c[:4] for c in (canonical(code) for code in codes) if c and len(c) >= 4}

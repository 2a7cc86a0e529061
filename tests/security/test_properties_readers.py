"""Property-based tests of every reader (CSV bytes in several encodings, XLSX built from generated cells, JSONL):
generated junk never crashes — read_file returns a report or raises ImportFileError naming the file, each rejected
row carries its row number and a reason — and an import that fails writes nothing.

Settings: derandomize=True makes every run try the same examples, so CI never turns red on a draw that a rerun
would not repeat (a failure is reproducible from the log); deadline=None because the shared CI machine's timing
says nothing about the code. To explore further locally, run with `--hypothesis-seed=<n>` and a larger
max_examples.
"""
from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from indexer.pipeline import ImportRejected, ingest_file
from indexer.readers import HEADER_ALIASES, ImportFileError, ReadReport, read_file
from indexer.settings import Settings
from indexer.store import Store

FAST = hsettings(max_examples=60, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
KINDS = ("patents", "demands")
_names = itertools.count()

# Cells: Chinese, ASCII, CSV/JSON metacharacters, formula starts, the odd control character and astral plane.
_chars = st.one_of(st.sampled_from("锂电池防爆阀技术需求，。、；：“”（）"), st.sampled_from(",;\t\"'\n\r=+-@|\\{}[]%_ "),
                   st.characters(codec="utf-8", exclude_categories=("Cs",)))
cell = st.one_of(st.text(_chars, max_size=40), st.sampled_from(["", " ", "2021-02-30", "CN1234567A", "1e309", "-0", "是", "nan"]))
header = st.one_of(st.sampled_from([h for kind in KINDS for aliases in HEADER_ALIASES[kind].values() for h in aliases[:3]]),
                   st.text(_chars, max_size=12))
table = st.lists(header, min_size=1, max_size=6, unique=True).flatmap(
    lambda hs: st.tuples(st.just(hs), st.lists(st.lists(cell, min_size=len(hs), max_size=len(hs) + 1), max_size=6)))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("junk")


def _file(folder: Path, suffix: str) -> Path:
    return folder / f"junk{next(_names)}{suffix}"


def _check(path: Path, kind: str, settings: Settings) -> ReadReport | None:
    """The property: a report whose rejections name row and reason, or an ImportFileError naming the file."""
    try:
        report = read_file(path, kind, settings)
    except ImportFileError as exc:
        assert path.name in str(exc), f"file-level error does not name the file: {exc}"
        return None
    for r in report.rejected:
        assert (isinstance(r.row, int) and r.row >= 1) and r.reason.strip(), r
    assert len({rec.id for rec in report.records}) == len(report.records)  # duplicates are rejected, not kept
    return report


def _csv_text(headers: list[str], rows: list[list[str]], sep: str) -> str:
    def quote(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if any(c in v for c in f'{sep}"\n\r') else v
    return "\r\n".join(sep.join(map(quote, r)) for r in [headers, *rows])


@FAST
@given(data=table, kind=st.sampled_from(KINDS), encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"]),
       sep=st.sampled_from([",", "\t", ";"]))
def test_csv_in_any_encoding_never_crashes(folder: Path, settings: Settings, data, kind: str, encoding: str, sep: str) -> None:
    text = _csv_text(*data, sep)
    path = _file(folder, ".csv")
    try:
        path.write_bytes(text.encode(encoding))
    except UnicodeEncodeError:
        path.write_bytes(text.encode("utf-8"))
    _check(path, kind, settings)


@FAST
@given(raw=st.binary(max_size=400), kind=st.sampled_from(KINDS), suffix=st.sampled_from([".csv", ".jsonl", ".xlsx", ".tsv"]))
def test_arbitrary_bytes_never_crash_any_reader(folder: Path, settings: Settings, raw: bytes, kind: str, suffix: str) -> None:
    path = _file(folder, suffix)
    path.write_bytes(raw)
    _check(path, kind, settings)


_json_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), cell),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=8)
_json_line = st.one_of(st.dictionaries(header, _json_value, max_size=6).map(lambda d: json.dumps(d, ensure_ascii=False)),
                       _json_value.map(json.dumps), st.text(_chars, max_size=30))


@FAST
@given(lines=st.lists(_json_line, max_size=8), kind=st.sampled_from(KINDS))
def test_jsonl_junk_never_crashes_and_rejections_name_the_line(folder: Path, settings: Settings, lines: list[str], kind: str) -> None:
    path = _file(folder, ".jsonl")
    path.write_text("\n".join(lines), encoding="utf-8")
    report = _check(path, kind, settings)
    if report:
        numbered = {i + 1 for i, line in enumerate("\n".join(lines).split("\n"))}
        assert all(r.row in numbered for r in report.rejected)


_xlsx_cell = st.one_of(st.none(), st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False),
                       st.dates(), st.booleans(),
                       # openpyxl refuses control characters on write; the reader never sees them in real files.
                       st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30), cell.filter(
                           lambda s: not any(ord(c) < 32 and c not in "\t\n\r" for c in s)))


@FAST
@given(headers=st.lists(header.filter(lambda s: not any(ord(c) < 32 for c in s)), min_size=1, max_size=5),
       rows=st.lists(st.lists(_xlsx_cell, max_size=6), max_size=5), kind=st.sampled_from(KINDS))
def test_xlsx_from_generated_cells_never_crashes(folder: Path, settings: Settings, headers, rows, kind: str) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in [headers, *rows]:
        ws.append(row)
    path = _file(folder, ".xlsx")
    wb.save(path)
    _check(path, kind, settings)


@hsettings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=table, kind=st.sampled_from(KINDS))
def test_a_failed_import_writes_nothing(folder: Path, data, kind: str) -> None:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.from_env(home=Path(home) / "ws")
        good = {"patents": "名称,摘要,公开(公告)号\n防爆阀,一种锂电池防爆阀,CN100000001A\n",
                "demands": "需求标题,需求内容\n防爆,我们需要锂电池防爆技术\n"}[kind]
        seed = _file(folder, ".csv")
        seed.write_text(good, encoding="utf-8")
        ingest_file(settings, kind, seed)
        before = Store(settings.db_path).count(kind)
        path = _file(folder, ".csv")
        path.write_text(_csv_text(*data, ","), encoding="utf-8")
        try:
            result = ingest_file(settings, kind, path)
        except (ImportFileError, ImportRejected):
            assert Store(settings.db_path).count(kind) == before  # all or nothing
            return
        assert Store(settings.db_path).count(kind) == before + result.counts.added

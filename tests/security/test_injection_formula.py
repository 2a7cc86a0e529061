"""Spreadsheet formula injection: every XLSX/CSV the project writes neutralises cells starting with = + - @ (and tab,
CR), so a patent title "=HYPERLINK(…)" opens as text in Excel/WPS. Checked on the session export with payloads in
every text field, and by a scan: every module that writes a workbook or CSV routes its cells through safe_cell."""
from __future__ import annotations

import ast
import io
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from api.exports import Brief, Letter, Reason, SessionDocument, safe_cell, to_xlsx

ROOT = Path(__file__).resolve().parents[2]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PAYLOADS = ["=HYPERLINK(\"http://evil.example\",\"点我\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(1,2)", "\t=1+1", "\r=1+1",
            "=1+1"]
#: Calls that create a spreadsheet or CSV writer.
WRITERS = {"Workbook", "writer", "DictWriter"}


def _document(texts: list[str]) -> SessionDocument:
    t = iter(texts * 20)
    reason = Reason(next(t), next(t), next(t), next(t), 0.5, "强", (next(t), next(t)))
    brief = Brief(1, next(t), next(t), next(t), next(t), next(t), next(t), (next(t),), 50.0, next(t), 10.0, (reason,))
    return SessionDocument(next(t), None, next(t), next(t), (brief,), (Letter(next(t), (reason,)), Letter(next(t), ())),
                           1.0, "OPTIMAL", 0, 0)


def _cells(xlsx: bytes) -> list:
    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    return [c for ws in wb.worksheets for row in ws.iter_rows() for c in row]


def test_session_export_neutralises_every_formula_payload() -> None:
    cells = _cells(to_xlsx(_document(PAYLOADS)))
    assert [c for c in cells if c.data_type == "f"] == []
    live = [c.value for c in cells if isinstance(c.value, str) and c.value.startswith(FORMULA_START)]
    assert live == [], f"cells a spreadsheet would evaluate: {live}"
    shown = {c.value for c in cells if isinstance(c.value, str)}
    assert {"'" + p for p in PAYLOADS} & shown, "the payloads should be kept as text, not dropped"


@hsettings(max_examples=100, deadline=None, derandomize=True)
@given(st.one_of(st.text(max_size=20), st.integers(), st.floats(allow_nan=False), st.none()))
def test_safe_cell_property(value) -> None:
    out = safe_cell(value)
    if isinstance(value, str):
        assert not out.startswith(FORMULA_START) and out.endswith(value)
    else:
        assert out == value  # numbers and empty cells stay what they are


def _writer_modules() -> list[Path]:
    found = []
    for path in sorted(p for d in ("api", "indexer", "matcher") for p in (ROOT / d).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
                 for n in ast.walk(tree) if isinstance(n, ast.Call)}
        if calls & WRITERS:
            found.append(path)
    return found


def test_every_module_writing_spreadsheets_uses_safe_cell() -> None:
    modules = _writer_modules()
    assert ROOT / "api" / "exports.py" in modules  # the scan sees the one it must see
    unsafe = [str(p.relative_to(ROOT)) for p in modules if "safe_cell" not in p.read_text(encoding="utf-8")]
    assert not unsafe, f"these modules write XLSX/CSV without api.exports.safe_cell: {unsafe}"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_each_payload_is_prefixed(payload: str) -> None:
    assert safe_cell(payload) == "'" + payload

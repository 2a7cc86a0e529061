#!/usr/bin/env python3
"""Build tests/fixtures/incopat_sample.xlsx: the 10 real CNIPA sample rows as an incoPat/PatSnap-style XLSX export.

Usage:
    .venv/bin/python scripts/build_xlsx_fixture.py [--src /work/shared/data]

The rows are parsed from `patentsemantix_cnipa_sample/专利总表(案例).sql` exactly as scripts/build_datasets.py
parses them for cnipa_sample.csv; only the layout changes, to what commercial databases export:
- incoPat headers (公开（公告）号, 标题, 摘要, 申请人, 申请号, 申请日, IPC, IPC主分类, 法律状态/事件, 专利类型,
  转让次数, 许可次数, 质押次数, 申请人类型) in their order, on a sheet named after the export;
- the cell types Excel holds: 申请日 a real date, 申请号 a number without CN or check-digit dot
  ("2022232206652"; a text cell where the check digit is X), counts as numbers;
- multi-valued cells joined with "; " as incoPat does (申请人, IPC);
- CNIPA's legal status spelled the incoPat way: 有权-审定授权 → 授权, 审中-实质审查 → 实质审查.
No value is invented: columns the sample lacks (被引证次数, 权利要求数量) are left out.
Deterministic: fixed document properties and zip timestamps, so a rebuild gives the same bytes.
"""
from __future__ import annotations

import argparse
import io
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_datasets import DEFAULT_SRC, FIXTURES, parse_cnipa_sql  # noqa: E402

OUT = FIXTURES / "incopat_sample.xlsx"
HEADERS = ["序号", "公开（公告）号", "标题", "摘要", "申请人", "申请号", "申请日", "IPC", "IPC主分类", "法律状态/事件",
           "专利类型", "转让次数", "许可次数", "质押次数", "申请人类型"]
LEGAL_STATUS = {"有权-审定授权": "授权", "审中-实质审查": "实质审查"}
FIXED_TIME = datetime(2024, 6, 1)


def incopat_row(n: int, r: dict[str, str]) -> list[object]:
    digits = r["申请号"].removeprefix("CN").replace(".", "")
    return [
        n,
        r["公开号"],
        r["专利名称"],
        r["申请摘要"],
        "; ".join(a for a in r["申请人"].split(";") if a),
        int(digits) if digits.isdigit() else digits,
        datetime.strptime(r["申请日"], "%Y%m%d"),
        "; ".join(c for c in r["分类号"].split(";") if c),
        r["主分类号"],
        LEGAL_STATUS.get(r["法律状态"], r["法律状态"]),
        r["专利类型"].split(";")[-1],  # "发明公开;发明授权" → its current stage, as incoPat shows it
        int(r["专利转移次数"]),
        int(r["许可次数"]),
        int(r["质押次数"]),
        r["申请人类型"],
    ]


def build(src: Path) -> int:
    columns, rows = parse_cnipa_sql(src / "patentsemantix_cnipa_sample" / "专利总表(案例).sql")
    records = [dict(zip(columns, row)) for row in rows]
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "incoPat检索结果"
    sheet.append(HEADERS)
    for n, record in enumerate(records, start=1):
        sheet.append(incopat_row(n, record))
    for row in sheet.iter_rows(min_row=2, min_col=7, max_col=7):
        row[0].number_format = "yyyy-mm-dd"
    workbook.properties.created = workbook.properties.modified = FIXED_TIME
    buffer = io.BytesIO()
    workbook.save(buffer)
    _write_deterministic_zip(buffer.getvalue(), OUT)
    return len(records)


def _write_deterministic_zip(data: bytes, path: Path) -> None:
    # openpyxl stamps each zip member with the current time; rewrite them with a fixed one.
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            member.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(member, src.read(info))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC, help="shared data folder (default %(default)s)")
    args = ap.parse_args(argv)
    print(f"{OUT.relative_to(FIXTURES.parent.parent)}: {build(args.src)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""read_file on real and deliberately broken exports: what is imported, what is refused, and why."""
from __future__ import annotations

import csv
import io
import json
import random
import struct
import zipfile
from collections import Counter
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from indexer.readers import (
    DEMAND_HEADER_ALIASES,
    HEADER_ALIASES,
    ImportFileError,
    demand_id,
    header_key,
    map_headers,
    read_file,
)
from indexer.settings import Settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CNIPA_UTF8 = FIXTURES / "cnipa_sample.csv"  # 10 real CNIPA rows, 61 columns
CNIPA_GBK = FIXTURES / "cnipa_sample_gbk.csv"
SETTINGS = Settings()


def cnipa_rows() -> list[dict[str, str]]:
    with CNIPA_UTF8.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write_csv(path: Path, headers: list[str], rows: list[list[object]], encoding: str = "utf-8", delimiter: str = ",") -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def patent_csv(path: Path, rows: list[list[object]]) -> Path:
    """A minimal CNIPA-style patent CSV: 公开号, 专利名称, 申请摘要, 申请日, 申请号."""
    return write_csv(path, ["公开号", "专利名称", "申请摘要", "申请日", "申请号"], rows)


def real_patent_row(index: int = 0) -> list[str]:
    row = cnipa_rows()[index]
    return [row["公开号"], row["专利名称"], row["申请摘要"], row["申请日"], row["申请号"]]


# --- the real CNIPA export ----------------------------------------------------------------------

def test_cnipa_export_utf8_and_gbk_give_identical_records() -> None:
    utf8 = read_file(CNIPA_UTF8, "patents", SETTINGS)
    gbk = read_file(CNIPA_GBK, "patents", SETTINGS)
    assert (utf8.encoding, gbk.encoding) == ("utf-8", "gb18030")
    assert utf8.rejected == gbk.rejected == []
    assert [r.model_dump() for r in utf8.records] == [r.model_dump() for r in gbk.records]


def test_cnipa_export_fields_are_normalised() -> None:
    report = read_file(CNIPA_UTF8, "patents", SETTINGS)
    records = report.records
    assert len(records) == 10 and report.file_format == "csv" and report.warnings == []
    # ids are the publication numbers (公开号), not the row number in 序号.
    assert [r.id for r in records] == [row["公开号"] for row in cnipa_rows()]
    assert {r.applicant_type for r in records} == {"research_institute"}
    assert Counter(r.legal_status for r in records) == {"有效": 8, "审中": 2}
    assert Counter(r.patent_type for r in records) == {"实用新型": 7, "发明": 3}
    first = records[0]
    assert first.title == "一种无人机机载多功能盒"
    assert first.applicants == ["中科大数据研究院"]
    assert first.ipc == ["B64U20/80", "B64U101/30"]  # 主分类号 first, then 分类号, deduplicated
    assert first.application_number == "CN202223220665.2"
    assert first.publication_number == "CN218751475U"
    assert first.application_date == date(2022, 12, 2)  # stored as the integer 20221202
    assert first.claims.startswith("1.一种无人机机载多功能盒")
    assert records[2].application_number == "CN202121635235.X"
    assert report.mapping["申请摘要"] == "abstract" and report.mapping["当前权利人"] == "applicants"
    assert {"序号", "发明人", "CPC分类号", "FI分类号"} <= set(report.unmapped)


def test_excel_unicode_text_export_is_read(tmp_path: Path) -> None:
    """Excel's "Unicode text (*.txt)" is UTF-16 with a BOM and tab-separated."""
    rows = cnipa_rows()
    headers = list(rows[0])
    path = write_csv(tmp_path / "export.txt", headers, [list(r.values()) for r in rows], encoding="utf-16", delimiter="\t")
    report = read_file(path, "patents", SETTINGS)
    assert report.encoding == "utf-16"
    assert [r.model_dump() for r in report.records] == [r.model_dump() for r in read_file(CNIPA_UTF8, "patents", SETTINGS).records]


# --- XLSX -----------------------------------------------------------------------------------------

def incopat_workbook(path: Path, extra_rows: tuple[list[object], ...] = ()) -> Path:
    """incoPat-style headers over real CNIPA rows, with the cell types Excel really produces:
    dates as datetimes, 申请号 typed as a number, an instructions sheet before the data."""
    headers = ["公开（公告）号", "标题", "摘要", "申请人", "IPC分类号", "申请日", "法律状态", "申请号", "专利类型"]
    data = []
    for row in cnipa_rows()[:3]:
        applied = datetime.strptime(row["申请日"], "%Y%m%d")
        digits = row["申请号"][2:].replace(".", "")
        number = int(digits) if digits.isdigit() else digits  # typed as a number unless it ends in X
        data.append([row["公开号"], row["专利名称"], row["申请摘要"], f"{row['申请人']}; 郑州大学",
                     row["分类号"].replace(";", "; "), applied, row["法律状态"], number, row["专利类型"]])
    return write_xlsx(path, {
        "说明": [["本表由 incoPat 导出"], ["请勿修改表头"]],
        "专利": [headers, *data, *extra_rows],
    })


def test_xlsx_with_incopat_headers(tmp_path: Path) -> None:
    report = read_file(incopat_workbook(tmp_path / "incopat.xlsx"), "patents", SETTINGS)
    assert report.file_format == "xlsx" and report.encoding is None and report.rejected == []
    assert report.mapping["公开（公告）号"] == "publication_number" and report.mapping["标题"] == "title"
    first = report.records[0]
    assert first.id == "CN218751475U"
    assert first.application_number == "CN202223220665.2"  # from the number 2022232206652
    assert first.application_date == date(2022, 12, 2)
    assert first.applicants == ["中科大数据研究院", "郑州大学"]
    assert first.applicant_type == "research_institute"  # first applicant decides
    assert first.ipc == ["B64U20/80", "B64U101/30"]
    assert first.legal_status == "有效" and first.patent_type == "实用新型"
    assert report.records[2].application_number == "CN202121635235.X"  # text cell "202121635235X"


def test_xlsx_rejections_carry_spreadsheet_row_numbers(tmp_path: Path) -> None:
    # Data rows are 2-4, row 5 is blank (skipped), row 6 has no abstract.
    bad = ["CN999999999A", "一种测试装置", None, "某公司", None, None, None, None, None]
    path = incopat_workbook(tmp_path / "incopat.xlsx", extra_rows=([None] * 9, bad))
    report = read_file(path, "patents", SETTINGS)
    assert len(report.records) == 3
    [rejection] = report.rejected
    assert (rejection.row, rejection.id) == (6, "CN999999999A")
    assert rejection.reason.startswith("摘要: is empty")


def test_xlsx_with_a_wrong_declared_dimension_is_read_in_full(tmp_path: Path) -> None:
    """Some exporters write <dimension ref="A1"/>; read-only openpyxl would then stop at row 1."""
    source = incopat_workbook(tmp_path / "source.xlsx")
    path = tmp_path / "a1.xlsx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet2.xml":
                assert b'<dimension ref="A1:I4" />' in data
                data = data.replace(b'<dimension ref="A1:I4" />', b'<dimension ref="A1" />')
            dst.writestr(info, data)
    assert len(read_file(path, "patents", SETTINGS).records) == 3


def test_truncated_xlsx_is_refused(tmp_path: Path) -> None:
    whole = incopat_workbook(tmp_path / "whole.xlsx").read_bytes()
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImportFileError, match="damaged or truncated; re-export it"):
        read_file(truncated, "patents", SETTINGS)


def test_csv_renamed_to_xlsx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "patents.xlsx"
    path.write_bytes(CNIPA_UTF8.read_bytes())
    with pytest.raises(ImportFileError, match="rename it to .csv"):
        read_file(path, "patents", SETTINGS)


def _forge_uncompressed_size(zip_bytes: bytes, size: int) -> bytes:
    """Make the central directory claim `size` uncompressed bytes for the first member."""
    at = zip_bytes.index(b"PK\x01\x02") + 24  # central directory header: uncompressed size field
    return zip_bytes[:at] + struct.pack("<I", size) + zip_bytes[at + 4:]


def test_zip_bomb_claiming_gigabytes_is_refused_before_parsing(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"<x/>")
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(_forge_uncompressed_size(buffer.getvalue(), 0xFFFF_0000))
    with pytest.raises(ImportFileError, match="refusing to open"):
        read_file(path, "patents", SETTINGS)


def test_highly_compressible_xlsx_over_the_expansion_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "zeros.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", bytes(25 * 1024 * 1024))  # ~25 KiB compressed
    settings = replace(SETTINGS, max_file_bytes=1024 * 1024)  # 20x = 20 MiB may be inflated
    assert path.stat().st_size < settings.max_file_bytes
    with pytest.raises(ImportFileError, match=r"expand to 25 MiB \(limit 20 MiB\)"):
        read_file(path, "patents", settings)


# --- CSV and JSONL ---------------------------------------------------------------------------------

def test_utf8_bom_csv(tmp_path: Path) -> None:
    # Excel's "CSV UTF-8" writes a BOM; it must not end up glued to the first header.
    path = patent_csv(tmp_path / "bom.csv", [real_patent_row(0), real_patent_row(1)])
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-8-sig"))
    report = read_file(path, "patents", SETTINGS)
    assert report.encoding == "utf-8-sig"
    assert report.mapping["公开号"] == "publication_number"
    assert [r.id for r in report.records] == ["CN218751475U", "CN216774847U"]


def test_jsonl_malformed_lines_are_rejected_with_their_line_number(tmp_path: Path) -> None:
    good = [{"公开号": row["公开号"], "专利名称": row["专利名称"], "摘要": row["申请摘要"]} for row in cnipa_rows()[:2]]
    lines = [json.dumps(good[0], ensure_ascii=False), "", '{"公开号": "CN1", "专利名称": ', json.dumps(good[1], ensure_ascii=False), "[1, 2]"]
    path = tmp_path / "patents.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = read_file(path, "patents", SETTINGS)
    assert [r.id for r in report.records] == ["CN218751475U", "CN216774847U"]
    assert [(r.row, r.id) for r in report.rejected] == [(3, None), (5, None)]
    assert "not valid JSON" in report.rejected[0].reason and "JSON object" in report.rejected[1].reason


def test_jsonl_with_canonical_keys_and_explicit_ids(tmp_path: Path) -> None:
    row = cnipa_rows()[7]
    base = {"title": row["专利名称"], "abstract": row["申请摘要"], "applicants": ["中科大数据研究院", "王元卓"]}
    path = tmp_path / "patents.jsonl"
    path.write_text("\n".join(json.dumps(o, ensure_ascii=False) for o in [
        {**base, "id": "P-001", "price_wan": 30, "transferable": False},
        {**base, "id": "cn 116245100 a", "application_date": "2022年12月30日"},  # a patent number: normalised
    ]), encoding="utf-8")
    first, second = read_file(path, "patents", SETTINGS).records
    assert (first.id, first.price_wan, first.transferable) == ("P-001", 30.0, False)
    assert (second.id, second.application_date) == ("CN116245100A", date(2022, 12, 30))
    assert second.applicants == ["中科大数据研究院", "王元卓"]


def test_demand_csv_gets_deterministic_ids_and_merged_contact(tmp_path: Path) -> None:
    headers = ["需求标题", "需求内容", "企业名称", "所属行业", "预算（万元）", "联系人", "联系电话"]
    rows = [
        ["无人机巡检", "需要一种可自动巡检林区并抛投物资的无人机系统", "河南某林业公司", "林业", "50万", "张工", "13800000000"],
        ["", "希望引进大气污染物溯源监测技术", "郑州某环保公司", "环保", "面议", "", ""],
    ]
    report = read_file(write_csv(tmp_path / "demands.csv", headers, rows), "demands", SETTINGS)
    first, second = report.records
    assert first.id == demand_id("无人机巡检", rows[0][1]) and first.id.startswith("D-") and len(first.id) == 14
    assert (first.budget_wan, first.contact, first.industry) == (50.0, "张工；13800000000", "林业")
    assert second.budget_wan is None and second.title == ""
    again = read_file(tmp_path / "demands.csv", "demands", SETTINGS)
    assert [d.id for d in again.records] == [first.id, second.id]


# --- row-level rejections ---------------------------------------------------------------------------

def test_overlong_abstract_is_rejected_with_the_limit(tmp_path: Path) -> None:
    long_row = real_patent_row(1)
    long_row[2] = "无人机" * 33_334  # 100,002 characters
    report = read_file(patent_csv(tmp_path / "p.csv", [real_patent_row(0), long_row]), "patents", SETTINGS)
    assert [r.id for r in report.records] == ["CN218751475U"]
    [rejection] = report.rejected
    assert (rejection.row, rejection.id) == (3, "CN216774847U")
    assert rejection.reason.startswith("申请摘要: has 100,002 characters; the limit is 20,000")


def test_non_chinese_abstract_is_rejected(tmp_path: Path) -> None:
    english = real_patent_row(1)
    english[2] = "A multifunctional box carried by a drone, with CPU and 4G/5G modules."
    report = read_file(patent_csv(tmp_path / "p.csv", [real_patent_row(0), english]), "patents", SETTINGS)
    assert len(report.records) == 1
    assert report.rejected[0].reason == "申请摘要: contains no Chinese characters; patents and demands are matched in Chinese"


def test_duplicate_ids_reject_the_later_row(tmp_path: Path) -> None:
    again = real_patent_row(0)
    again[0] = "cn 218751475 u"  # same publication number, other spelling
    report = read_file(patent_csv(tmp_path / "p.csv", [real_patent_row(0), real_patent_row(1), again]), "patents", SETTINGS)
    assert [r.id for r in report.records] == ["CN218751475U", "CN216774847U"]
    [rejection] = report.rejected
    assert rejection.row == 4
    assert rejection.reason.startswith("duplicate id CN218751475U, first seen in row 2")


def test_bad_date_names_the_column_and_the_format(tmp_path: Path) -> None:
    bad = real_patent_row(1)
    bad[3] = "去年"
    report = read_file(patent_csv(tmp_path / "p.csv", [real_patent_row(0), bad]), "patents", SETTINGS)
    assert len(report.records) == 1
    assert report.rejected[0].reason == "申请日: '去年' is not a date; write it as YYYY-MM-DD (e.g. 2021-01-05)"


def test_row_without_any_number_is_rejected(tmp_path: Path) -> None:
    nameless = real_patent_row(1)
    nameless[0] = nameless[4] = ""
    report = read_file(patent_csv(tmp_path / "p.csv", [nameless]), "patents", SETTINGS)
    assert report.rejected[0].reason.startswith("公开号 / 申请号: is empty")


def test_application_number_is_the_id_without_a_publication_number(tmp_path: Path) -> None:
    row = real_patent_row(2)
    path = write_csv(tmp_path / "p.csv", ["专利号", "专利名称", "摘要"], [["ZL 2021 2 1635235.X", row[1], row[2]]])
    [patent] = read_file(path, "patents", SETTINGS).records
    assert patent.id == patent.application_number == "CN202121635235.X"
    assert patent.patent_type == "实用新型"  # from the number's type digit, no 专利类型 column


def test_wrong_check_digit_is_a_warning_not_a_rejection(tmp_path: Path) -> None:
    row = real_patent_row(0)
    row[4] = "CN202223220665.3"
    report = read_file(patent_csv(tmp_path / "p.csv", [row]), "patents", SETTINGS)
    assert len(report.records) == 1 and report.rejected == []
    assert report.warnings[0].row == 2 and "申请号: the check digit of CN202223220665.3" in report.warnings[0].reason


def test_unquoted_comma_shifts_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    row = real_patent_row(0)
    path.write_text("公开号,专利名称,申请摘要\n" + f"{row[0]},{row[1]},一种盒子,内有CPU模块\n", encoding="utf-8")
    report = read_file(path, "patents", SETTINGS)
    assert report.records == [] and "unquoted ','" in report.rejected[0].reason


# --- file-level refusals ----------------------------------------------------------------------------

def test_headers_found_are_abbreviated_in_the_message(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "wide.csv", ["说明" * 100] + [f"列{i}" for i in range(100)], [["x"] * 101])
    with pytest.raises(ImportFileError) as excinfo:
        read_file(path, "patents", SETTINGS)
    assert len(str(excinfo.value)) < 1500 and "(+71 more)" in str(excinfo.value)


def test_wrong_columns_name_the_expected_ones(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "people.csv", ["姓名", "年龄"], [["张三", "30"]])
    with pytest.raises(ImportFileError) as excinfo:
        read_file(path, "patents", SETTINGS)
    message = str(excinfo.value)
    for expected in ("title (专利名称", "abstract (摘要", "公开号", "申请号", "Headers found: 姓名, 年龄"):
        assert expected in message
    with pytest.raises(ImportFileError, match=r"text \(需求内容"):
        read_file(path, "demands", SETTINGS)


def test_patent_file_without_abstract_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", ["公开号", "专利名称"], [["CN218751475U", "一种无人机机载多功能盒"]])
    with pytest.raises(ImportFileError, match="missing required column") as excinfo:
        read_file(path, "patents", SETTINGS)
    assert "title" not in str(excinfo.value).split("Headers found")[0]


def random_bytes_without_nul(n: int) -> bytes:
    rng = random.Random(7)
    return bytes(rng.randrange(1, 256) for _ in range(n))


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, random_bytes_without_nul(4096)],
    ids=["png", "random-bytes"],
)
def test_binary_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "patents.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFileError, match="binary|PNG|neither UTF-8"):
        read_file(path, "patents", SETTINGS)


@pytest.mark.parametrize(("content", "match"), [(b"", "empty"), (b"  \r\n\n", "whitespace")])
def test_empty_files_are_refused(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "patents.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFileError, match=match):
        read_file(path, "patents", SETTINGS)


def test_header_only_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="no data rows"):
        read_file(patent_csv(tmp_path / "p.csv", []), "patents", SETTINGS)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="not found"):
        read_file(tmp_path / "nope.csv", "patents", SETTINGS)


def test_limits_on_size_and_rows() -> None:
    with pytest.raises(ImportFileError, match="limit is 0.0 MiB"):
        read_file(CNIPA_UTF8, "patents", replace(SETTINGS, max_file_bytes=1000))
    with pytest.raises(ImportFileError, match="more than 5 rows"):
        read_file(CNIPA_UTF8, "patents", replace(SETTINGS, max_rows=5))


@pytest.mark.parametrize(("name", "match"), [("patents.pdf", r"\.csv.*\.xlsx"), ("patents", "none"), ("patents.xls", "save as .xlsx or .csv")])
def test_unsupported_extensions(tmp_path: Path, name: str, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xd0\xcf\x11\xe0" + bytes(100))
    with pytest.raises(ImportFileError, match=match):
        read_file(path, "patents", SETTINGS)


# --- header mapping ---------------------------------------------------------------------------------

def test_header_spellings_are_matched_tolerantly() -> None:
    mapping, unmapped = map_headers([" 申请（专利权）人 ", "*专利名称", "IPC", "价格【万元】", "Abstract", "发明人"], "patents")
    assert mapping == {" 申请（专利权）人 ": "applicants", "*专利名称": "title", "IPC": "ipc",
                       "价格【万元】": "price_wan", "Abstract": "abstract"}
    assert unmapped == ["发明人"]
    assert map_headers(["预算(万元)", "需求 内容"], "demands")[0] == {"预算(万元)": "budget_wan", "需求 内容": "text"}


@pytest.mark.parametrize("kind", sorted(HEADER_ALIASES))
def test_no_header_spelling_maps_to_two_fields(kind: str) -> None:
    owners: dict[str, set[str]] = {}
    for name, aliases in HEADER_ALIASES[kind].items():
        for alias in (*aliases, name):
            owners.setdefault(header_key(alias), set()).add(name)
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}
    assert set(DEMAND_HEADER_ALIASES) <= {"id", "title", "text", "enterprise", "industry", "region", "budget_wan", "contact"}


# --- commercial exports: incoPat XLSX fixture, history counts, blank cells, mixed encodings ---------

INCOPAT_XLSX = FIXTURES / "incopat_sample.xlsx"  # the 10 CNIPA rows as incoPat exports them (scripts/build_xlsx_fixture.py)


def test_incopat_xlsx_fixture_gives_the_same_patents_as_the_cnipa_csv() -> None:
    xlsx = read_file(INCOPAT_XLSX, "patents", SETTINGS)
    csv_records = {r.id: r for r in read_file(CNIPA_UTF8, "patents", SETTINGS).records}
    assert xlsx.rejected == [] and xlsx.warnings == [] and xlsx.unmapped == ["序号"]
    assert xlsx.mapping["法律状态/事件"] == "legal_status" and xlsx.mapping["转让次数"] == "transfer_count"
    assert [r.id for r in xlsx.records] == list(csv_records)
    skipped = {"claims", "region"}  # columns the incoPat layout does not carry
    for record in xlsx.records:
        assert record.model_dump(exclude=skipped) == csv_records[record.id].model_dump(exclude=skipped)
        assert not skipped & record.model_fields_set  # absent, so a re-import cannot erase them


def test_history_counts_are_read_and_blank_means_unknown(tmp_path: Path) -> None:
    first = read_file(CNIPA_UTF8, "patents", SETTINGS).records[0]
    assert (first.transfer_count, first.licence_count, first.pledge_count, first.citation_count) == (0, 0, 0, None)
    headers = ["公开号", "专利名称", "申请摘要", "被引证次数", "权利要求数量", "可转让"]
    path = write_csv(tmp_path / "p.csv", headers, [real_patent_row(0)[:3] + ["3次", "", ""]])
    [patent] = read_file(path, "patents", SETTINGS).records
    assert (patent.citation_count, patent.claim_count, patent.transferable) == (3, None, True)
    assert "citation_count" in patent.model_fields_set
    assert not {"claim_count", "transferable"} & patent.model_fields_set  # blank cells say nothing


def test_a_bad_count_names_the_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", ["公开号", "专利名称", "摘要", "许可次数"], [real_patent_row(0)[:3] + ["多次"]])
    assert read_file(path, "patents", SETTINGS).rejected[0].reason.startswith("许可次数: '多次' is not a count")


def test_mixed_encodings_are_refused_naming_the_lines(tmp_path: Path) -> None:
    lines = CNIPA_UTF8.read_bytes().split(b"\r\n")
    lines[4] = lines[4].decode("utf-8").encode("gbk")  # one row pasted from a GBK export
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"\r\n".join(lines))
    with pytest.raises(ImportFileError, match=r"mixed text encodings — most lines are UTF-8 but line\(s\) 5 are not"):
        read_file(path, "patents", SETTINGS)

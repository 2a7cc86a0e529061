"""JSONL / CSV / XLSX readers: encoding detection, Chinese header mapping, row validation into records.

`read_file` is the one entry point. A problem with the whole file (unreadable, wrong columns,
too big) raises ImportFileError, whose message says what to fix; a problem with one row becomes
a Rejection in the report and the other rows are still imported.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal, TypeVar

import openpyxl
from pydantic import BaseModel, ValidationError

from indexer.normalize import (
    detect_applicant_type,
    normalize_date,
    normalize_ipc,
    normalize_legal_status,
    normalize_number,
    normalize_patent_type,
    parse_bool,
    parse_count,
    parse_number,
    parse_wan,
    patent_type_from_number,
)
from indexer.records import Demand, Patent, RecordError, check_text, first_error
from indexer.settings import Settings

Kind = Literal["patents", "demands"]
Row = Mapping[str, object]
_M = TypeVar("_M", bound=BaseModel)


class ImportFileError(ValueError):
    """The whole file cannot be imported; the message names the file and says what to fix."""


@dataclass(frozen=True)
class Rejection:
    """A row that was not imported. `row` is what the user sees: the JSONL line number, or the
    spreadsheet row number with the header as row 1."""

    row: int
    id: str | None
    reason: str


@dataclass
class ReadReport:
    records: list[Patent | Demand] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    #: Rows that were imported but deserve a look (e.g. an application number's check digit).
    warnings: list[Rejection] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)  # source header → canonical field
    unmapped: list[str] = field(default_factory=list)
    file_format: str = ""
    encoding: str | None = None  # None for .xlsx, which has no text encoding


# --- header mapping -----------------------------------------------------------------------------

# Canonical field → accepted header spellings, best first: when a file has several columns for a
# field the first non-empty one wins (ipc, keywords and contact merge all of them instead). The
# canonical English name is always accepted too. Patent numbers are deliberately not id aliases:
# the id is the explicit id column, else the publication number, else the application number.
PATENT_HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("专利ID", "记录ID", "patent_id"),
    "title": ("专利名称", "发明名称", "名称", "标题", "专利标题", "中文标题"),
    "abstract": ("摘要", "申请摘要", "摘要文本", "中文摘要"),
    "applicants": ("申请人", "申请(专利权)人", "专利权人", "当前权利人", "权利人", "assignee", "applicant"),
    "applicant_type": ("申请人类型",),
    "ipc": ("主分类号", "IPC主分类号", "IPC主分类", "IPC分类号", "分类号", "IPC"),
    "legal_status": ("法律状态", "当前法律状态", "法律状态/事件"),
    "patent_type": ("专利类型",),
    "application_number": ("申请号", "专利号"),
    "publication_number": ("公开号", "公开(公告)号", "公开公告号", "公告号", "授权公告号"),
    "application_date": ("申请日", "申请日期"),
    "region": ("国省代码", "申请人地址省份", "地区", "省份"),
    "claims": ("主权项", "权利要求", "首项权利要求"),
    "keywords": ("关键词",),
    "transferable": ("可转让", "是否可转让"),
    "licence_terms": ("许可方式", "转化方式"),
    "price_wan": ("价格(万元)", "转让价格", "报价", "价格"),
    "claim_count": ("权利要求数量", "权利要求数", "权项数"),
    # Forward citations only: CNIPA's 引证数 counts the patents this one cites, which says nothing of its value.
    "citation_count": ("被引用次数", "被引证次数", "被引次数", "被引用专利数量", "被引证专利数"),
    "transfer_count": ("专利转移次数", "转让次数", "权利转移次数", "转移次数"),
    "licence_count": ("许可次数", "专利许可次数", "许可备案次数"),
    "pledge_count": ("质押次数", "专利质押次数"),
}
DEMAND_HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("需求编号", "编号", "rid", "demand_id"),
    "title": ("需求标题", "标题", "需求名称", "项目名称"),
    "text": ("需求内容", "需求描述", "内容", "技术需求", "需求详情", "content"),
    "enterprise": ("企业名称", "单位名称", "需求方", "企业", "公司名称"),
    "industry": ("行业", "所属行业", "领域", "技术领域"),
    "region": ("地区", "所在地区", "所在地", "省份"),
    "budget_wan": ("预算(万元)", "预算", "投入资金", "拟投入资金(万元)"),
    "contact": ("联系人", "联系方式", "联系电话"),
}
HEADER_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "patents": PATENT_HEADER_ALIASES,
    "demands": DEMAND_HEADER_ALIASES,
}
# Alternatives, each of which must be present: patents need a title, an abstract and something to
# derive the id from.
REQUIRED_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "patents": (("title",), ("abstract",), ("id", "publication_number", "application_number")),
    "demands": (("text",),),
}
_MERGED_FIELDS = {"ipc", "keywords", "contact"}
_BRACKETS = str.maketrans({"[": "(", "]": ")", "【": "(", "】": ")"})


def header_key(header: str) -> str:
    """Spelling-insensitive form of a header: full/half-width, brackets, spaces, case, '*' marks."""
    folded = unicodedata.normalize("NFKC", str(header)).translate(_BRACKETS)
    return re.sub(r"[\s*:]+", "", folded).lower()


def _alias_index(kind: str) -> dict[str, tuple[str, int]]:
    """header_key → (field, priority); lower priority numbers win."""
    index: dict[str, tuple[str, int]] = {}
    for name, aliases in HEADER_ALIASES[kind].items():
        for priority, alias in enumerate((*aliases, name)):
            index.setdefault(header_key(alias), (name, priority))
    return index


_ALIAS_INDEX = {kind: _alias_index(kind) for kind in HEADER_ALIASES}


def map_headers(headers: Iterable[str], kind: Kind) -> tuple[dict[str, str], list[str]]:
    """(source header → canonical field, headers that map to nothing)."""
    mapping: dict[str, str] = {}
    unmapped: list[str] = []
    for header in headers:
        if not str(header).strip():
            continue
        hit = _ALIAS_INDEX[kind].get(header_key(header))
        if hit:
            mapping[header] = hit[0]
        else:
            unmapped.append(header)
    return mapping, unmapped


# --- cell values ----------------------------------------------------------------------------------

_APPLICANT_SEP = re.compile(r"[;；、，|\n]+")  # no ASCII comma: "Huawei Technologies Co., Ltd."
_LIST_SEP = re.compile(r"[;；,，、|\n]+")


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "；".join(t for t in map(_as_text, value) if t)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a 申请号 typed as a number must not become "2021100012345.0"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value).strip()


def _split(value: object, sep: re.Pattern[str]) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else sep.split(_as_text(value))
    return [t for t in map(_as_text, items) if t]


def _is_blank(value: object) -> bool:
    return not isinstance(value, date) and not _as_text(value)


@dataclass(frozen=True)
class _Columns:
    """Which source headers feed each canonical field, best first."""

    by_field: dict[str, list[str]]

    @classmethod
    def of(cls, headers: Iterable[str], kind: Kind) -> _Columns:
        mapping, _ = map_headers(headers, kind)
        by_field: dict[str, list[str]] = {}
        for header in sorted(mapping, key=lambda h: _ALIAS_INDEX[kind][header_key(h)][1]):
            by_field.setdefault(mapping[header], []).append(header)
        return cls(by_field)

    def header(self, name: str) -> str:
        """The name to show the user: the file's own header when the field came from one."""
        return self.by_field.get(name, [name])[0]

    def cell(self, row: Row, name: str) -> tuple[str, object]:
        """(header, value) of the first non-blank column for the field."""
        for header in self.by_field.get(name, ()):
            if not _is_blank(row.get(header)):
                return header, row[header]
        return self.header(name), ""

    def text(self, row: Row, name: str) -> str:
        return _as_text(self.cell(row, name)[1])

    def items(self, row: Row, name: str, sep: re.Pattern[str] = _LIST_SEP) -> list[str]:
        headers = self.by_field.get(name, [])
        if name not in _MERGED_FIELDS:
            headers = [self.cell(row, name)[0]] if headers else []
        return list(dict.fromkeys(t for h in headers for t in _split(row.get(h), sep)))


def _convert(columns: _Columns, row: Row, name: str, parse: Callable[[object], object]) -> object:
    """parse() the field's cell; its ValueError becomes a RecordError naming the column."""
    header, raw = columns.cell(row, name)
    try:
        return parse(raw)
    except ValueError as exc:
        raise RecordError(header, str(exc)) from None


def _required_text(columns: _Columns, row: Row, name: str, why: str) -> str:
    text = columns.text(row, name)
    if not text:
        raise RecordError(columns.header(name), f"is empty; {why}")
    return text


def _validated(model: type[_M], values: dict[str, object], columns: _Columns) -> _M:
    try:
        return model(**values)
    except ValidationError as exc:
        err = first_error(exc)
        raise RecordError(columns.header(err.field.split(".")[0]), err.message) from None


# --- rows → records -------------------------------------------------------------------------------

_PATENT_ID_FIELDS = ("id", "publication_number", "application_number")
_COUNT_FIELDS = ("claim_count", "citation_count", "transfer_count", "licence_count", "pledge_count")
_ALWAYS_GIVEN = frozenset({"id", "title", "abstract"})


def _given(values: dict[str, object]) -> dict[str, object]:
    """The fields the row actually says something about. A blank cell or an absent column is left out,
    so the record's model_fields_set tells the store which stored values a re-import may replace
    (a second export without 主权项 must not erase the claims the first one brought)."""
    return {k: v for k, v in values.items() if k in _ALWAYS_GIVEN or v not in (None, "", [], "unknown")}


def _optional_bool(value: object) -> bool | None:
    return None if _is_blank(value) else parse_bool(value)


def _patent_id(columns: _Columns, row: Row) -> str:
    """Explicit id, else publication number, else application number. Explicit ids that are patent
    numbers are normalised too, so every export of a patent gets the same id."""
    for name in _PATENT_ID_FIELDS:
        text = columns.text(row, name)
        if text:
            return normalize_number(text) if name != "id" or parse_number(text) else text
    return ""


def _check_digit_warning(header: str, raw: object) -> str | None:
    parsed = parse_number(_as_text(raw))
    if parsed and parsed.check_digit_ok is False:
        return f"{header}: the check digit of {parsed.value} does not match its digits; check the number for a typo"
    return None


def _patent(row: Row, columns: _Columns, settings: Settings) -> tuple[Patent, list[str]]:
    patent_id = _patent_id(columns, row)
    if not patent_id:
        headers = " / ".join(columns.header(n) for n in _PATENT_ID_FIELDS if n in columns.by_field)
        raise RecordError(headers, "is empty; every patent needs a publication number (公开号) or application number (申请号)")
    title = _required_text(columns, row, "title", "every patent needs a title (专利名称)")
    abstract_header, abstract = columns.cell(row, "abstract")
    abstract = check_text(_as_text(abstract), abstract_header, settings.max_text_chars)
    application_number = normalize_number(columns.text(row, "application_number"))
    publication_number = normalize_number(columns.text(row, "publication_number"))
    applicants = columns.items(row, "applicants", _APPLICANT_SEP)
    patent_type = normalize_patent_type(columns.text(row, "patent_type"))
    if patent_type == "unknown":
        patent_type = patent_type_from_number(application_number or publication_number)
    values: dict[str, object] = {
        "id": patent_id,
        "title": title,
        "abstract": abstract,
        "applicants": applicants,
        "applicant_type": detect_applicant_type(applicants, columns.text(row, "applicant_type")),
        "ipc": list(dict.fromkeys(normalize_ipc(c) for c in columns.items(row, "ipc"))),
        "legal_status": normalize_legal_status(columns.text(row, "legal_status")),
        "patent_type": patent_type,
        "application_number": application_number,
        "publication_number": publication_number,
        "application_date": _convert(columns, row, "application_date", normalize_date),
        "region": columns.text(row, "region"),
        "transferable": _convert(columns, row, "transferable", _optional_bool),
        "licence_terms": columns.text(row, "licence_terms"),
        "price_wan": _convert(columns, row, "price_wan", parse_wan),
        "claims": columns.text(row, "claims"),
        "keywords": columns.items(row, "keywords"),
        **{name: _convert(columns, row, name, parse_count) for name in _COUNT_FIELDS},
    }
    warning = _check_digit_warning(*columns.cell(row, "application_number"))
    return _validated(Patent, _given(values), columns), [warning] if warning else []


def demand_id(title: str, text: str) -> str:
    """Deterministic id for a demand row without one, so re-importing a file does not duplicate it."""
    return "D-" + hashlib.sha1(f"{title}\n{text}".encode("utf-8")).hexdigest()[:12]


def _demand(row: Row, columns: _Columns, settings: Settings) -> tuple[Demand, list[str]]:
    text_header, text = columns.cell(row, "text")
    text = check_text(_as_text(text), text_header, settings.max_text_chars)
    title = columns.text(row, "title")
    values: dict[str, object] = {
        "id": columns.text(row, "id") or demand_id(title, text),
        "title": title,
        "text": text,
        "enterprise": columns.text(row, "enterprise"),
        "industry": columns.text(row, "industry"),
        "region": columns.text(row, "region"),
        "budget_wan": _convert(columns, row, "budget_wan", parse_wan),
        "contact": "；".join(columns.items(row, "contact", _APPLICANT_SEP)),
    }
    return _validated(Demand, values, columns), []


_BUILDERS: dict[str, Callable[[Row, _Columns, Settings], tuple[Patent | Demand, list[str]]]] = {
    "patents": _patent,
    "demands": _demand,
}


def _id_hint(row: Row, columns: _Columns, kind: Kind) -> str | None:
    """Best-effort id of a rejected row, so the user can find it."""
    hint = _patent_id(columns, row) if kind == "patents" else columns.text(row, "id")
    return hint or None


# --- file-level checks and decoding ---------------------------------------------------------------

_MiB = 1024 * 1024
_XLSX_EXPANSION_CAP = 1024 * _MiB
_XLSX_EXPANSION_FACTOR = 20
# A workbook has a few dozen parts; tens of thousands is an archive built to exhaust the reader.
_XLSX_MAX_MEMBERS = 10_000
# Real sheet XML compresses 5–30×; a zip bomb (one repeated byte or cell) 1000×. Small parts may compress
# extremely (an empty sheet's padding) without harm, so the ratio is judged only above the floor.
_XLSX_MAX_RATIO = 200
_XLSX_RATIO_FLOOR = 8 * _MiB
# Excel never writes a DTD; one in an XML part's prolog can only be an entity trick (billion laughs, external
# entities). The prolog is what precedes the root element, searched within this many inflated bytes.
_XLSX_PROLOG_BYTES = 64 * 1024
_XML_ROOT = re.compile(rb"<[A-Za-z_]")
# Content that is not text, recognised by its first bytes, with the fix to suggest.
_MAGIC = {
    b"PK\x03\x04": "an Excel .xlsx workbook (zip archive); rename it to .xlsx",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls (or password-protected) workbook; open it in Excel/WPS and save as .xlsx or .csv",
    b"%PDF": "a PDF document; export the data as .xlsx or .csv instead",
    b"\x89PNG": "a PNG image, not a data file",
    b"\xff\xd8\xff": "a JPEG image, not a data file",
}
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_ALLOWED_CONTROLS = set("\t\n\r\f\v")


def _check_size(path: Path, settings: Settings) -> None:
    if not path.is_file():
        raise ImportFileError(f"{path}: file not found; check the path")
    size = path.stat().st_size
    if size == 0:
        raise ImportFileError(f"{path.name}: the file is empty (0 bytes); export the data again")
    if size > settings.max_file_bytes:
        raise ImportFileError(
            f"{path.name}: the file is {size / _MiB:,.1f} MiB; the limit is {settings.max_file_bytes / _MiB:,.1f} MiB"
            " — split it into smaller files"
        )


def _foreign_content(data: bytes) -> str | None:
    return next((what for magic, what in _MAGIC.items() if data.startswith(magic)), None)


def _looks_binary(text: str) -> bool:
    sample = text[:100_000]
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS)
    return controls > len(sample) / 100


def decode_text(data: bytes, name: str = "file") -> tuple[str, str]:
    """(text, encoding) of a text export: BOM first, then strict UTF-8, then GB18030 (a superset of
    GBK/GB2312, what Excel on Chinese Windows writes). Anything else is refused, never guessed."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    f"{name}: starts with a {encoding} byte-order mark but is not valid {encoding}"
                    f" ({exc.reason}); re-save it as UTF-8"
                ) from None
    binary = ImportFileError(
        f"{name}: looks like a binary file, not CSV/JSONL text; export the data as .xlsx, or as CSV in UTF-8 or GBK"
    )
    if b"\x00" in data:
        raise binary
    _refuse_mixed_encodings(data, name)
    for encoding in ("utf-8", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_binary(text):
            raise binary
        return text, encoding
    raise ImportFileError(
        f"{name}: the text is neither UTF-8 nor GBK/GB18030{_encoding_hint(data)}; save it as UTF-8 (Excel: 'CSV UTF-8')"
    )


_HAN_RE = re.compile(r"[\u3400-\u9fff]")


def _lines(numbers: list[int], shown: int = 5) -> str:
    return ", ".join(map(str, numbers[:shown])) + (f" and {len(numbers) - shown} more" if len(numbers) > shown else "")


def _refuse_mixed_encodings(data: bytes, name: str) -> None:
    """A UTF-8 file with rows pasted from a GBK file (or the reverse) can decode "successfully" as GB18030
    into mojibake; refuse it and name the odd lines instead. A line counts as UTF-8 only when it holds
    Chinese text, which GBK bytes almost never form by chance."""
    try:
        data.decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    utf8, other = [], []
    for line_no, line in enumerate(data.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            other.append(line_no)
            continue
        if len(_HAN_RE.findall(text)) >= 2:
            utf8.append(line_no)
    if utf8 and other:
        minority, majority = (other, "UTF-8") if len(other) <= len(utf8) else (utf8, "GBK/GB18030")
        raise ImportFileError(
            f"{name}: mixed text encodings — most lines are {majority} but line(s) {_lines(minority)} are not"
            f" (rows pasted from another export?); re-save the whole file in one encoding (Excel: 'CSV UTF-8')"
            " and check those rows' Chinese text"
        )


def _encoding_hint(data: bytes) -> str:
    import charset_normalizer  # only needed for this message; keep import cost off the happy path

    best = charset_normalizer.from_bytes(data[:200_000]).best()
    return f" (it looks like {best.encoding})" if best is not None else " (it may be a binary file)"


def _read_text(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    if what := _foreign_content(data):
        raise ImportFileError(f"{path.name}: this is {what}")
    text, encoding = decode_text(data, path.name)
    if not text.strip():
        raise ImportFileError(f"{path.name}: the file contains only whitespace; export the data again")
    return text, encoding


def _too_many_rows(path: Path, settings: Settings) -> ImportFileError:
    return ImportFileError(f"{path.name}: more than {settings.max_rows:,} rows; split it into smaller files")


# --- format readers -------------------------------------------------------------------------------

@dataclass
class _Table:
    """What a format reader hands back: headers, and (row number, row or why it is unreadable)."""

    headers: list[str]
    rows: Iterable[tuple[int, Row | str]]
    encoding: str | None
    close: Callable[[], None] = lambda: None


def _read_jsonl(path: Path, kind: Kind, settings: Settings) -> _Table:
    text, encoding = _read_text(path)
    headers: dict[str, None] = {}
    rows: list[tuple[int, Row | str]] = []
    # split("\n"), not splitlines(): JSON strings may contain raw U+2028, which splitlines breaks on.
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if len(rows) >= settings.max_rows:
            raise _too_many_rows(path, settings)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append((line_no, f"line is not valid JSON ({exc.msg} at column {exc.colno}); fix or delete the line"))
            continue
        if not isinstance(obj, dict):
            rows.append((line_no, f"expected a JSON object {{...}} on the line, found {type(obj).__name__}"))
            continue
        headers.update(dict.fromkeys(obj))
        rows.append((line_no, obj))
    if rows and not headers:
        raise ImportFileError(
            f"{path.name}: no line is a JSON object (line {rows[0][0]}: {rows[0][1]}); JSONL needs one JSON object per line"
        )
    return _Table(list(headers), rows, encoding)


def _sniff_delimiter(text: str) -> str:
    header_line = text.split("\n", 1)[0]
    return max(",\t;|", key=header_line.count) if any(d in header_line for d in ",\t;|") else ","


def _unique(headers: list[str]) -> list[str]:
    """A repeated header gets a suffix so its column is not silently overwritten in the row dict."""
    seen: dict[str, int] = {}
    out = []
    for header in headers:
        seen[header] = seen.get(header, 0) + 1
        out.append(header if seen[header] == 1 or not header else f"{header}.{seen[header]}")
    return out


def _csv_row(headers: list[str], cells: list[str], delimiter: str) -> Row | str:
    if any(c.strip() for c in cells[len(headers):]):
        shown = "tab" if delimiter == "\t" else f"'{delimiter}'"
        return (f"has {len(cells)} cells but the header row has {len(headers)}; a cell probably contains"
                f" an unquoted {shown} — put that cell in double quotes, or save the file as .xlsx")
    return dict(zip(headers, cells))


def _read_csv(path: Path, kind: Kind, settings: Settings) -> _Table:
    text, encoding = _read_text(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else _sniff_delimiter(text)
    # The default 128 KiB field limit would abort the file on one long cell; check_text judges length.
    csv.field_size_limit(max(csv.field_size_limit(), settings.max_file_bytes))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    headers = _unique([h.strip() for h in next(reader, [])])
    if not any(headers):
        raise ImportFileError(f"{path.name}: the first row must hold the column headers, but it is empty")

    def rows() -> Iterator[tuple[int, Row | str]]:
        try:
            # Spreadsheet row numbers count records, not lines: a quoted cell may span lines.
            for row_no, cells in enumerate(reader, start=2):
                yield row_no, _csv_row(headers, cells, delimiter)
        except csv.Error as exc:
            raise ImportFileError(
                f"{path.name}: the CSV is malformed near line {reader.line_num} ({exc}); check for an unclosed quote"
            ) from None

    return _Table(headers, rows(), encoding)


def _damaged(path: Path) -> ImportFileError:
    return ImportFileError(f"{path.name}: the .xlsx file is damaged or truncated; re-export it")


def _check_xlsx_container(path: Path, settings: Settings) -> None:
    """Refuse non-xlsx content and zip bombs before openpyxl inflates anything."""
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(f"{path.name}: this is {_MAGIC[head[:4]]}")
    if not head.startswith(b"PK"):
        raise ImportFileError(
            f"{path.name}: not an .xlsx workbook (no zip signature); if it is CSV text, rename it to .csv, otherwise re-export it"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            _check_zip_sizes(path, infos, settings)
            for info in infos:
                if info.filename.lower().endswith((".xml", ".rels", ".vml")):
                    _refuse_dtd(path, archive, info)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError):
        raise _damaged(path) from None


def _check_zip_sizes(path: Path, infos: list[zipfile.ZipInfo], settings: Settings) -> None:
    """Judge the archive by its directory only. The declared sizes bound what zipfile will ever inflate (it
    stops a member at its file_size and then checks the CRC), so a lying header cannot sneak more past."""
    if len(infos) > _XLSX_MAX_MEMBERS:
        raise ImportFileError(
            f"{path.name}: refusing to open: the workbook holds {len(infos):,} parts (limit {_XLSX_MAX_MEMBERS:,});"
            " an Excel file has a few dozen — re-export it as .xlsx or .csv"
        )
    limit = min(_XLSX_EXPANSION_FACTOR * settings.max_file_bytes, _XLSX_EXPANSION_CAP)
    expanded = sum(info.file_size for info in infos)
    if expanded > limit:
        raise ImportFileError(
            f"{path.name}: refusing to open: the workbook would expand to {expanded / _MiB:,.0f} MiB"
            f" (limit {limit / _MiB:,.0f} MiB); re-export it as .csv or split it"
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _XLSX_RATIO_FLOOR and ratio > _XLSX_MAX_RATIO:
            raise ImportFileError(
                f"{path.name}: refusing to open: part {info.filename} expands {ratio:,.0f}× to"
                f" {info.file_size / _MiB:,.0f} MiB (limit {_XLSX_MAX_RATIO}×), which only a zip bomb does;"
                " re-export the data from Excel/WPS as .xlsx or .csv"
            )


def _refuse_dtd(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    head = b""
    with archive.open(info) as member:
        while len(head) < _XLSX_PROLOG_BYTES and (chunk := member.read(8192)):
            head += chunk
    head = head.replace(b"\x00", b"")  # UTF-16 parts: the markup is ASCII either way
    root = _XML_ROOT.search(head)
    prolog = head[: root.start()] if root else head
    if b"<!DOCTYPE" in prolog.upper() or b"<!ENTITY" in prolog.upper():
        raise ImportFileError(
            f"{path.name}: refusing to open: part {info.filename} declares a DTD (<!DOCTYPE>), which Excel never"
            " writes and XML entity attacks use; re-export the data from Excel/WPS"
        )
    if root is None and info.file_size > len(head):
        raise ImportFileError(
            f"{path.name}: refusing to open: part {info.filename} has no XML element in its first"
            f" {_XLSX_PROLOG_BYTES // 1024} KiB; re-export the data from Excel/WPS"
        )


def _cell(value: object) -> object:
    """Strings for everything except dates, which normalize_date takes as they are."""
    return value if isinstance(value, date) else _as_text(value)


def _first_sheet_with_columns(workbook: openpyxl.Workbook, kind: Kind) -> tuple[list[str], Iterator[tuple]]:
    """The first sheet whose header row has the required columns (templates often start with an
    instructions sheet); the first sheet if none has."""
    first: tuple[list[str], Iterator[tuple]] | None = None
    for sheet in workbook.worksheets:
        if not hasattr(sheet, "iter_rows"):
            continue  # chart sheets
        sheet.reset_dimensions()  # some exporters declare "A1" as the size; read what is there
        rows = sheet.iter_rows(values_only=True)
        headers = _unique([_as_text(v) for v in next(rows, ())])
        if not _missing_required(_Columns.of(headers, kind), kind):
            return headers, rows
        first = first or (headers, rows)
    return first or ([], iter(()))


def _read_xlsx(path: Path, kind: Kind, settings: Settings) -> _Table:
    _check_xlsx_container(path, settings)
    # openpyxl raises a zoo of types (KeyError, ParseError, zlib.error, …) on a damaged workbook.
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception:
        raise _damaged(path) from None
    try:
        headers, sheet_rows = _first_sheet_with_columns(workbook, kind)
    except Exception:
        workbook.close()
        raise _damaged(path) from None

    def rows() -> Iterator[tuple[int, Row | str]]:
        try:
            for row_no, values in enumerate(sheet_rows, start=2):
                yield row_no, dict(zip(headers, map(_cell, values)))
        except Exception:
            raise _damaged(path) from None

    return _Table(headers, rows(), None, close=workbook.close)


def _refuse_xls(path: Path, kind: Kind, settings: Settings) -> _Table:
    raise ImportFileError(f"{path.name}: old Excel .xls files are not supported; open it in Excel/WPS and save as .xlsx or .csv")


_Reader = Callable[[Path, Kind, Settings], _Table]
_FORMATS: dict[str, tuple[str, _Reader]] = {
    ".jsonl": ("jsonl", _read_jsonl),
    ".ndjson": ("jsonl", _read_jsonl),
    ".json-lines": ("jsonl", _read_jsonl),
    ".csv": ("csv", _read_csv),
    ".tsv": ("tsv", _read_csv),
    ".txt": ("csv", _read_csv),
    ".xlsx": ("xlsx", _read_xlsx),
    ".xlsm": ("xlsx", _read_xlsx),
    ".xls": ("xls", _refuse_xls),
}


# --- putting it together --------------------------------------------------------------------------

def _missing_required(columns: _Columns, kind: Kind) -> list[tuple[str, ...]]:
    return [alts for alts in REQUIRED_FIELDS[kind] if not any(a in columns.by_field for a in alts)]


def _abbreviate(headers: list[str], shown: int = 30, width: int = 30) -> str:
    """Headers for a message: a garbage or very wide header row must not produce a novel."""
    text = ", ".join(h if len(h) <= width else h[:width] + "…" for h in headers[:shown])
    return text + (f" (+{len(headers) - shown} more)" if len(headers) > shown else "")


def _require_columns(columns: _Columns, kind: Kind, headers: list[str], path: Path) -> None:
    missing = _missing_required(columns, kind)
    if not missing:
        return
    needs = "; ".join(
        " or ".join(f"{name} ({', '.join(HEADER_ALIASES[kind][name][:6])})" for name in alts) for alts in missing
    )
    found = _abbreviate([h for h in headers if h]) or "(none)"
    raise ImportFileError(
        f"{path.name}: missing required column(s) for {kind}: {needs}. Headers found: {found}."
        " Rename the columns to one of the accepted spellings."
    )


def _collect(report: ReadReport, table: _Table, columns: _Columns, kind: Kind, settings: Settings, path: Path) -> None:
    first_seen: dict[str, int] = {}
    seen_rows = 0
    for row_no, row in table.rows:
        if not isinstance(row, str) and all(_is_blank(v) for v in row.values()):
            continue  # spreadsheets carry empty trailing rows
        seen_rows += 1
        if seen_rows > settings.max_rows:
            raise _too_many_rows(path, settings)
        if isinstance(row, str):
            report.rejected.append(Rejection(row_no, None, row))
            continue
        try:
            record, warnings = _BUILDERS[kind](row, columns, settings)
        except RecordError as exc:
            report.rejected.append(Rejection(row_no, _id_hint(row, columns, kind), str(exc)))
            continue
        if record.id in first_seen:
            reason = f"duplicate id {record.id}, first seen in row {first_seen[record.id]}; remove one of the two rows"
            report.rejected.append(Rejection(row_no, record.id, reason))
            continue
        first_seen[record.id] = row_no
        report.records.append(record)
        report.warnings.extend(Rejection(row_no, record.id, w) for w in warnings)
    if not seen_rows:
        raise ImportFileError(f"{path.name}: has column headers but no data rows")


def read_file(path: Path | str, kind: Kind, settings: Settings) -> ReadReport:
    """Read a patent or demand export into validated records; see the module docstring."""
    path = Path(path)
    if kind not in HEADER_ALIASES:
        raise ValueError(f"kind must be 'patents' or 'demands', not {kind!r}")
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        valid = ", ".join(s for s in _FORMATS if s != ".xls")
        raise ImportFileError(f"{path.name}: unsupported file type {suffix or '(none)'!r}; use one of {valid}")
    file_format, reader = _FORMATS[suffix]
    _check_size(path, settings)
    table = reader(path, kind, settings)
    try:
        columns = _Columns.of(table.headers, kind)
        _require_columns(columns, kind, table.headers, path)
        mapping, unmapped = map_headers(table.headers, kind)
        report = ReadReport(mapping=mapping, unmapped=unmapped, file_format=file_format, encoding=table.encoding)
        _collect(report, table, columns, kind, settings, path)
    finally:
        table.close()
    return report

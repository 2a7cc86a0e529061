"""patent numbers, dates, legal status, patent type and applicant type: turning export spellings into canonical values.

Every function here is pure and takes the raw cell value of one export (CNIPA, incoPat, a
centre's own spreadsheet). Functions that can fail raise ValueError with a message that says
what a valid value looks like; the readers prefix it with the column name.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from typing import Literal, NamedTuple

from indexer.records import ApplicantType, PatentType


def _fold(value: object) -> str:
    """NFKC folds full-width letters, digits and brackets (ＣＮ２０２１（…）) into ASCII."""
    return unicodedata.normalize("NFKC", "" if value is None else str(value)).strip()


# --- patent numbers ---------------------------------------------------------------------------

class PatentNumber(NamedTuple):
    kind: Literal["application", "publication"]
    value: str  # canonical: "CN202110001234.5" / "CN114232276A"
    check_digit_ok: bool | None  # None for publication numbers, which carry no check digit


# Application numbers: since 2003 YYYY + type digit + 7-digit serial + check digit; before that
# YY + type digit + 5-digit serial + check digit. Type digits: 1/8 invention, 2/9 utility model,
# 3 design (8/9 = PCT national phase). "ZL" is the prefix of a granted patent's number.
_APP_NEW_RE = re.compile(r"^(?:CN|ZL)?((?:19|20)\d\d[12389]\d{7})\.?([0-9X])$")
# The old format needs the dot (or ZL): nine bare digits could equally be a publication number.
_APP_OLD_RE = re.compile(r"^(?:(?:CN)?(\d\d[12389]\d{5})\.|ZL(\d\d[12389]\d{5})\.?)([0-9X])$")
# Publication numbers: CN + 6-9 digits + kind code (A/B/C invention, U/Y utility model, S/D design).
_PUB_RE = re.compile(r"^(?:CN)?(\d{6,9})([ABCUYSD]\d?)$")

_INVENTION_DIGITS, _UTILITY_DIGITS, _DESIGN_DIGITS = "18", "29", "3"


def application_check_digit(digits: str) -> str:
    """CNIPA check digit of an 8- or 12-digit application number: weights 2..9,2..5, mod 11, 10 → X."""
    if not digits.isdigit() or len(digits) not in (8, 12):
        raise ValueError(f"{digits!r} is not an 8- or 12-digit application number body")
    weights = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
    remainder = sum(int(d) * w for d, w in zip(digits, weights)) % 11
    return "X" if remainder == 10 else str(remainder)


def parse_number(value: object) -> PatentNumber | None:
    """Recognise a CN application or publication number in any export spelling; None if it is neither."""
    compact = re.sub(r"\s+", "", _fold(value)).upper()
    if m := _APP_NEW_RE.match(compact):
        body, check = m.group(1), m.group(2)
    elif m := _APP_OLD_RE.match(compact):
        body, check = m.group(1) or m.group(2), m.group(3)
    elif m := _PUB_RE.match(compact):
        return PatentNumber("publication", f"CN{m.group(1)}{m.group(2)}", None)
    else:
        return None
    return PatentNumber("application", f"CN{body}.{check}", application_check_digit(body) == check)


def normalize_number(value: object) -> str:
    """Canonical application ("CN202110001234.5") or publication ("CN114232276A") number.

    Shapes that are not CN patent numbers come back stripped and upper-cased, so they still
    compare equal across exports that differ only in case or padding.
    """
    parsed = parse_number(value)
    return parsed.value if parsed else _fold(value).upper()


def patent_type_from_number(value: object) -> PatentType:
    """The patent type encoded in an application number's type digit or a publication kind code."""
    parsed = parse_number(value)
    if parsed is None:
        return "unknown"
    if parsed.kind == "publication":
        code = parsed.value.rstrip("0123456789")[-1]
        return "发明" if code in "ABC" else "实用新型" if code in "UY" else "外观设计"
    digits = parsed.value[2:].split(".")[0]
    type_digit = digits[4] if len(digits) == 12 else digits[2]
    if type_digit in _INVENTION_DIGITS:
        return "发明"
    return "实用新型" if type_digit in _UTILITY_DIGITS else "外观设计"


# WIPO's fixed-width form: subclass + 4-digit main group + 6-digit subgroup ("H04N0005225000").
_IPC_FIXED_RE = re.compile(r"^([A-H]\d\d[A-Z])(\d{4})(\d{6})$")
# A group number written with leading zeros ("H04N 005/225"); only zeros right after the subclass letter.
_IPC_GROUP_ZEROS_RE = re.compile(r"^([A-H]\d\d[A-Z])0+(?=\d)")


def normalize_ipc(code: object) -> str:
    """'H04N 5/225 (2006.01)' → 'H04N5/225': exports differ in spaces, the version suffix (with CNIPA's
    trailing I/N flag), zero padding of the group, and WIPO's fixed-width form 'H04N0005225000'."""
    text = re.sub(r"\s+", "", _fold(code)).upper()
    text = re.sub(r"\(\d{4}\.\d{2}\)[IN]?$", "", text)
    if m := _IPC_FIXED_RE.match(text):
        # The subgroup keeps at least two digits: 5/225000 → 5/225, 5/000000 → 5/00.
        subgroup = m.group(3).rstrip("0").ljust(2, "0")
        return f"{m.group(1)}{int(m.group(2))}/{subgroup}"
    return _IPC_GROUP_ZEROS_RE.sub(r"\1", text)


# --- dates ----------------------------------------------------------------------------------

_DATE_RE = re.compile(
    r"^(\d{4})\s*[-./年]\s*(\d{1,2})\s*[-./月]\s*(\d{1,2})\s*日?"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"  # a time part from str(datetime) is ignored
)
_EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 = 1900-01-01, allowing for Excel's 1900 leap-year bug
_MAX_EXCEL_SERIAL = 99_999  # ~2173; larger numbers are not plausible spreadsheet dates


def _date_error(raw: object) -> ValueError:
    return ValueError(f"{str(raw)[:40]!r} is not a date; write it as YYYY-MM-DD (e.g. 2021-01-05)")


def _from_number(number: float, raw: object) -> date | None:
    if number == 0:
        return None  # CNIPA dumps store "no date" as 0
    if number == int(number) and 10_000_000 <= number <= 99_999_999:
        year, month_day = divmod(int(number), 10_000)
        return _ymd(year, *divmod(month_day, 100), raw=raw)
    if 0 < number <= _MAX_EXCEL_SERIAL:
        return _EXCEL_EPOCH + timedelta(days=int(number))
    raise _date_error(raw)


def _ymd(year: int, month: int, day: int, raw: object) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise _date_error(raw) from None


def normalize_date(value: object) -> date | None:
    """A date from "2021-01-05", "2021.01.05", "2021/1/5", "20210105", "2021年1月5日", an Excel
    serial number or a date/datetime object; None for an empty cell."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool):
        raise _date_error(value)
    if isinstance(value, (int, float)):
        return _from_number(value, value)
    text = _fold(value)
    if not text:
        return None
    if m := _DATE_RE.match(text):
        return _ymd(int(m.group(1)), int(m.group(2)), int(m.group(3)), raw=value)
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return _from_number(float(text), value)
    raise _date_error(value)


# --- legal status and patent type -----------------------------------------------------------

# Checked in order, first hit wins: terminal states come first because combined cells such as
# "授权;专利权的终止" or "无权-驳回" mention the earlier stages too.
_STATUS_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("驳回", ("驳回", "rejected", "refused")),
    ("撤回", ("撤回", "withdrawn")),
    ("有效", ("部分无效",)),  # a partly invalidated patent stays in force for the remaining claims
    ("失效", ("失效", "无权", "终止", "届满", "期满", "未缴年费", "放弃", "无效",
              "expired", "lapsed", "invalid", "inactive", "dead")),
    ("有效", ("有效", "有权", "授权", "granted", "active", "valid", "alive", "in force")),
    ("审中", ("审中", "审查", "实审", "公开", "pending", "examination", "published")),
)


def normalize_legal_status(value: object) -> str:
    """有效 / 审中 / 失效 / 驳回 / 撤回, or the raw (stripped) text when no rule applies."""
    raw = _fold(value)
    lowered = raw.lower()
    for status, needles in _STATUS_RULES:
        if any(n in lowered for n in needles):
            return status
    return raw


def normalize_patent_type(value: object) -> PatentType:
    """发明 (发明公开 / 发明授权 / 发明专利 / invention), 实用新型, 外观设计, else unknown."""
    text = _fold(value).lower()
    if "实用新型" in text or "utility" in text:
        return "实用新型"
    if "外观" in text or "design" in text:
        return "外观设计"
    if "发明" in text or "invention" in text:
        return "发明"
    return "unknown"


# --- applicant type -------------------------------------------------------------------------

# CNIPA's 申请人类型 vocabulary (plus common variants); substring match, so 工矿企业 → 企业.
_DECLARED_TYPES: tuple[tuple[str, ApplicantType], ...] = (
    ("大专院校", "university"), ("高等院校", "university"), ("高校", "university"),
    ("科研", "research_institute"),  # 科研机构, 科研单位, 科研院所
    ("企业", "enterprise"),
    ("个人", "individual"),
    ("university", "university"), ("research_institute", "research_institute"),
    ("enterprise", "enterprise"), ("individual", "individual"),
)

_NAME_KEYWORDS: tuple[tuple[str, ApplicantType], ...] = (
    ("大学", "university"), ("学院", "university"), ("学校", "university"),
    ("研究院", "research_institute"), ("研究所", "research_institute"),
    ("科学院", "research_institute"), ("实验室", "research_institute"),
    ("研究中心", "research_institute"),
    ("公司", "enterprise"), ("厂", "enterprise"), ("集团", "enterprise"),
    ("有限", "enterprise"), ("股份", "enterprise"), ("合作社", "enterprise"),
    # Foreign applicants in CN exports keep their English names.
    ("university", "university"), ("college", "university"),
    ("institute", "research_institute"), ("academy", "research_institute"),
    ("laboratory", "research_institute"),
    ("company", "enterprise"), ("corporation", "enterprise"), ("co.", "enterprise"),
    ("ltd", "enterprise"), ("inc.", "enterprise"), ("gmbh", "enterprise"), ("llc", "enterprise"),
    # Organisations outside the four types; listed so a short name like 某某医院 is not a person.
    ("医院", "unknown"), ("协会", "unknown"), ("学会", "unknown"), ("基金会", "unknown"),
    ("中心", "unknown"), ("委员会", "unknown"), ("局", "unknown"),
)
_PERSON_RE = re.compile(r"^[\u3400-\u9fff]{2,4}$")


def _type_from_name(name: str) -> ApplicantType:
    """Chinese organisation names are head-final (北京大学科技开发有限公司 is a company), so the
    keyword that ends last decides; on a tie the longer one (科学院 over 学院)."""
    best: tuple[int, int, ApplicantType] | None = None
    for keyword, kind in _NAME_KEYWORDS:
        at = name.rfind(keyword)
        if at >= 0:
            candidate = (at + len(keyword), len(keyword), kind)
            best = candidate if best is None or candidate[:2] > best[:2] else best
    if best:
        return best[2]
    return "individual" if _PERSON_RE.match(re.sub(r"[\s·]", "", name)) else "unknown"


def detect_applicant_type(names: list[str], declared: str = "") -> ApplicantType:
    """Applicant type from a declared CNIPA 申请人类型 value, else from the applicant names.

    The first applicant decides (it is the one CNIPA lists first and usually the owner that
    negotiates a transfer); a declared value naming several types also uses its first.
    """
    first_declared = re.split(r"[;；、,，|]", _fold(declared).lower())[0]
    for needle, kind in _DECLARED_TYPES:
        if first_declared and needle in first_declared:
            return kind
    first_name = next((_fold(n) for n in names if _fold(n)), "")
    return _type_from_name(first_name.lower()) if first_name else "unknown"


# --- yes/no and money -----------------------------------------------------------------------

_YES = {"是", "可", "可以", "可转让", "允许", "y", "yes", "true", "t", "1", "√", "✓"}
_NO = {"否", "不", "不可", "不可以", "不可转让", "不允许", "n", "no", "false", "f", "0", "×", "✗"}


def parse_bool(value: object, default: bool = True) -> bool:
    """是/否-style cell; empty → default."""
    if isinstance(value, bool):
        return value
    text = _fold(value).lower()
    if not text:
        return default
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise ValueError(f"{text[:40]!r} is not yes/no; write 是 or 否")


def parse_count(value: object) -> int | None:
    """A count cell (专利转移次数, 被引用次数 …): "3", 3.0, "3次" → 3; empty → None (unknown, not zero)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a count; write a whole number such as 0 or 3")
    if isinstance(value, (int, float)) and float(value).is_integer() and value >= 0:
        return int(value)
    text = re.sub(r"\s+", "", _fold(value))
    if not text:
        return None
    m = re.fullmatch(r"(\d+)(?:\.0+)?[次件个项]?", text)
    if not m:
        raise ValueError(f"{text[:40]!r} is not a count; write a whole number such as 0 or 3")
    return int(m.group(1))


_NEGOTIABLE = {"面议", "议价", "协商", "待定", "-", "—", "无", "negotiable"}
_WAN_RE = re.compile(
    r"^[¥$]?(\d+(?:\.\d+)?)(?:[-~至到]\d+(?:\.\d+)?)?(亿元?|万元?|千元?|元|rmb|cny)?$"
)
_TO_WAN = {"亿": 10_000.0, "亿元": 10_000.0, "万": 1.0, "万元": 1.0, "千": 0.1, "千元": 0.1,
           "元": 0.000_1, "rmb": 0.000_1, "cny": 0.000_1}


def parse_wan(value: object) -> float | None:
    """An amount in 万元 from "50", "50万", "¥50万元", "5-10万" (a range keeps its lower bound),
    "500000元" or "1.2亿"; None for an empty cell or 面议 (negotiable)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = re.sub(r"[\s,]", "", _fold(value)).lower()
    if not text or text in _NEGOTIABLE:
        return None
    m = _WAN_RE.match(text)
    if not m:
        raise ValueError(f"{text[:40]!r} is not an amount; write a number of 万元 (e.g. 50) or 面议")
    return float(m.group(1)) * _TO_WAN[m.group(2) or "万"]

"""Canonical values from export spellings: numbers, dates, status, type, applicant type, money."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from indexer.normalize import (
    application_check_digit,
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


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CN202110001234.5", "CN202110001234.5"),
        ("202110001234.5", "CN202110001234.5"),
        ("2021100012345", "CN202110001234.5"),
        ("CN 2021 1 0001234.5", "CN202110001234.5"),
        ("cn202121635235.x", "CN202121635235.X"),
        ("ＣＮ２０２１２１６３５２３５．Ｘ", "CN202121635235.X"),  # full-width, as pasted from some portals
        ("ZL200810012345.6", "CN200810012345.6"),
        ("ZL 2008 1 0012345.6", "CN200810012345.6"),
        ("CN98123456.7", "CN98123456.7"),  # pre-2003 8+1 format
        ("ZL981234567", "CN98123456.7"),
        ("CN114232276A", "CN114232276A"),
        ("cn 114232276 a", "CN114232276A"),
        ("CN114232276B", "CN114232276B"),
        ("114232276B", "CN114232276B"),
        ("CN218751475U", "CN218751475U"),
        ("CN1234567A", "CN1234567A"),  # old 7-digit publication number
        # Not CN patent numbers: only stripped and upper-cased.
        ("  us2020123456a1 ", "US2020123456A1"),
        ("114232276", "114232276"),
        ("P-001", "P-001"),
        ("", ""),
    ],
)
def test_normalize_number(raw: str, expected: str) -> None:
    assert normalize_number(raw) == expected


@pytest.mark.parametrize(
    "number",
    # Real application numbers from the CNIPA fixture, including one whose check digit is X.
    ["CN202223220665.2", "CN202121635235.X", "CN202211740332.4", "CN202310605823.6", "CN202211359874.7"],
)
def test_check_digit_of_real_numbers(number: str) -> None:
    parsed = parse_number(number)
    assert parsed is not None and parsed.kind == "application" and parsed.check_digit_ok is True
    assert application_check_digit(number[2:14]) == number[-1]


def test_wrong_check_digit_is_flagged_not_rejected() -> None:
    parsed = parse_number("CN202110001234.5")  # the digits give 8
    assert parsed is not None and parsed.value == "CN202110001234.5" and parsed.check_digit_ok is False
    assert application_check_digit("202110001234") == "8"


def test_publication_numbers_carry_no_check_digit() -> None:
    assert parse_number("CN114232276A") == ("publication", "CN114232276A", None)
    assert parse_number("not a number") is None


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("CN202110001234.5", "发明"),
        ("CN202223220665.2", "实用新型"),
        ("CN202130001234.1", "外观设计"),
        ("CN202180001234.1", "发明"),  # PCT national phase
        ("CN114232276A", "发明"),
        ("CN218751475U", "实用新型"),
        ("CN306123456S", "外观设计"),
        ("whatever", "unknown"),
    ],
)
def test_patent_type_from_number(number: str, expected: str) -> None:
    assert patent_type_from_number(number) == expected


def test_normalize_ipc() -> None:
    assert normalize_ipc(" h04n 5/225 (2006.01)") == "H04N5/225"
    assert normalize_ipc("G06F40/289") == "G06F40/289"
    assert normalize_ipc("H04N5/225(2006.01)I") == "H04N5/225"  # CNIPA's inventive-information flag
    assert normalize_ipc("H04N0005225000") == "H04N5/225"  # WIPO fixed width
    assert normalize_ipc("A01B0001000000") == "A01B1/00"
    assert normalize_ipc("H04N 005/225") == "H04N5/225"
    assert normalize_ipc("H01M10/0525") == "H01M10/0525"  # a subgroup's own leading zero stays


def test_parse_count() -> None:
    assert [parse_count(v) for v in ("3", 3.0, 0, "3次", " 12 ", "", None)] == [3, 3, 0, 3, 12, None, None]
    for bad in ("多次", "-1", "2.5", True):
        with pytest.raises(ValueError, match="not a count"):
            parse_count(bad)


@pytest.mark.parametrize(
    "raw",
    ["2021-01-05", "2021.01.05", "2021/1/5", "20210105", 20210105, "2021年1月5日", "2021 年 1 月 5 日",
     "2021-01-05 00:00:00", "2021-01-05T08:30:00", 44201, 44201.0, "44201",
     datetime(2021, 1, 5, 14, 3), date(2021, 1, 5)],
)
def test_normalize_date_formats(raw: object) -> None:
    assert normalize_date(raw) == date(2021, 1, 5)


@pytest.mark.parametrize("raw", ["", "  ", None, 0, "0"])
def test_empty_dates_are_none(raw: object) -> None:
    # CNIPA database dumps store a missing date as 0.
    assert normalize_date(raw) is None


@pytest.mark.parametrize("raw", ["yesterday", "2021-13-01", "2021-02-30", "20211305", "12/31", True, 123456789])
def test_garbage_dates_raise_with_the_expected_format(raw: object) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        normalize_date(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("有权-审定授权", "有效"), ("授权", "有效"), ("有效", "有效"), ("有权", "有效"), ("部分无效", "有效"),
        ("审中-实质审查", "审中"), ("实质审查", "审中"), ("公开", "审中"), ("审中", "审中"),
        ("失效", "失效"), ("无权-未缴年费", "失效"), ("权利终止", "失效"), ("期限届满", "失效"),
        ("授权;专利权的终止", "失效"), ("全部无效", "失效"),
        ("驳回", "驳回"), ("无权-驳回", "驳回"),
        ("撤回", "撤回"), ("视为撤回", "撤回"), ("无权-视为撤回", "撤回"),
        ("Granted", "有效"), ("expired", "失效"),
        (" 未知状态 ", "未知状态"), ("", ""),
    ],
)
def test_normalize_legal_status(raw: str, expected: str) -> None:
    assert normalize_legal_status(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("发明公开", "发明"), ("发明授权", "发明"), ("发明专利", "发明"), ("invention", "发明"),
        ("实用新型", "实用新型"), ("实用新型专利", "实用新型"), ("外观设计", "外观设计"),
        ("", "unknown"), ("其他", "unknown"),
    ],
)
def test_normalize_patent_type(raw: str, expected: str) -> None:
    assert normalize_patent_type(raw) == expected


@pytest.mark.parametrize(
    ("names", "declared", "expected"),
    [
        # Declared CNIPA 申请人类型 wins over the name.
        (["张三"], "科研机构", "research_institute"),
        (["某某有限公司"], "大专院校", "university"),
        ([], "科研单位", "research_institute"),
        ([], "工矿企业", "enterprise"),
        (["某某大学"], "个人", "individual"),
        # By name; the keyword that ends last decides (Chinese names are head-final).
        (["清华大学"], "", "university"),
        (["郑州铁路职业技术学院"], "", "university"),
        (["中国科学院大学"], "", "university"),
        (["中科大数据研究院"], "", "research_institute"),
        (["中国科学院自动化研究所"], "", "research_institute"),
        (["中国科学院"], "", "research_institute"),
        (["之江实验室"], "", "research_institute"),
        (["北京大学科技开发有限公司"], "", "enterprise"),
        (["华为技术有限公司"], "", "enterprise"),
        (["郑州宇通集团"], "", "enterprise"),
        (["江南造船厂"], "", "enterprise"),
        (["Huawei Technologies Co., Ltd."], "", "enterprise"),
        (["王元卓"], "", "individual"),
        (["欧阳娜娜"], "", "individual"),
        (["某某协会"], "", "unknown"),
        (["郑州人民医院"], "", "unknown"),
        (["国家技术转移郑州中心"], "", "unknown"),
        ([], "", "unknown"),
        # First applicant decides.
        (["刘迪", "中科大数据研究院"], "", "individual"),
        (["中科大数据研究院", "刘迪"], "", "research_institute"),
    ],
)
def test_detect_applicant_type(names: list[str], declared: str, expected: str) -> None:
    assert detect_applicant_type(names, declared) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("50", 50.0), ("50万", 50.0), ("¥50万元", 50.0), ("５０万元", 50.0), ("5-10万", 5.0),
     ("500000元", 50.0), ("1.2亿", 12000.0), (12.5, 12.5), ("面议", None), ("", None)],
)
def test_parse_wan(raw: object, expected: float | None) -> None:
    assert parse_wan(raw) == expected


def test_parse_wan_rejects_prose() -> None:
    with pytest.raises(ValueError, match="万元"):
        parse_wan("大约五十万")


def test_parse_bool() -> None:
    assert parse_bool("是") is True and parse_bool("否") is False and parse_bool("不可转让") is False
    assert parse_bool("", default=True) is True
    with pytest.raises(ValueError, match="是 or 否"):
        parse_bool("看情况")

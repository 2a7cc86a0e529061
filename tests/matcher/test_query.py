"""Demand cleaning: non-technical sections go, technical ones stay, nothing is ever emptied."""
from __future__ import annotations

from matcher.query import clean_demand, split_sections

REAL_STYLE = """需求内容：
    企业需要开发高韧性立方氮化硼CBN单晶新牌号，优化触媒自制工艺。
预期目标：
    100/120粒度的抗冲击韧性≥67%。
现有工作基础：
    1、公司现有标准化厂房3栋，生产设备完善。
合作方式：技术转让
预算：200万元
联系方式：张经理 13812345678"""


def test_sections_are_split_in_order():
    assert [h for h, _ in split_sections(REAL_STYLE)] == ["需求内容", "预期目标", "现有工作基础", "合作方式", "预算", "联系方式"]


def test_non_technical_sections_are_dropped():
    out = clean_demand(REAL_STYLE)
    assert "立方氮化硼" in out and "抗冲击韧性" in out
    for gone in ("厂房", "技术转让", "200万元", "13812345678", "张经理"):
        assert gone not in out


def test_numbered_headings_are_recognised():
    text = "一、需求内容：开发耐高温密封条。\n二、合作方式：联合开发\n三、预算：50万元"
    assert clean_demand(text) == "开发耐高温密封条。"


def test_text_without_headings_is_kept_except_contacts():
    assert clean_demand("想找防爆电池技术，电话13812345678") == "想找防爆电池技术，电话"


def test_never_returns_empty():
    text = "联系方式：张经理"
    assert clean_demand(text) == text

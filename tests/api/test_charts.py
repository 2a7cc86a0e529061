"""api/charts.py: the SVG bar chart parses as XML, has one bar per value scaled to the largest, escapes labels."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from api.charts import LABEL_WIDTH, MAX_LABEL, WIDTH, VALUE_WIDTH, bar_chart

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def test_one_bar_per_value_scaled_to_the_largest():
    root = parse(bar_chart(["2026-Q1", "2026-Q2", "2026-Q3"], [50, 200, 0], "签约金额", "万元"))
    widths = [float(r.get("width")) for r in root.iter(f"{NS}rect")]
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    assert widths == [pytest.approx(span / 4, abs=0.1), pytest.approx(span), 0.0]
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert texts[0] == "签约金额" and "200 万元" in texts and "2026-Q2" in texts


def test_labels_and_title_are_escaped_user_text():
    hostile = ['<script>alert("x")</script>', "A & B 大学", "]]><svg onload=alert(1)>"]
    svg = bar_chart(hostile, [1, 2, 3], '标题 "<b>"', "万元")
    assert "<script>" not in svg and "<svg onload" not in svg and "<b>" not in svg
    root = parse(svg)
    assert [t.text.split(": ")[0] for t in root.iter(f"{NS}title")] == hostile  # intact once parsed
    assert root.get("aria-label") == '标题 "<b>"'


def test_long_labels_are_cut_but_kept_whole_in_the_tooltip():
    label = "某某某某大学" * 10
    root = parse(bar_chart([label], [3.5], "t"))
    shown = [t.text for t in root.iter(f"{NS}text")][1]
    assert len(shown) == MAX_LABEL and shown.endswith("…")
    assert next(root.iter(f"{NS}title")).text == f"{label}: 3.5"


def test_empty_zero_and_bad_values():
    root = parse(bar_chart([], [], "无数据"))
    assert not list(root.iter(f"{NS}rect")) and "暂无数据" in [t.text for t in root.iter(f"{NS}text")]
    root = parse(bar_chart(["a", "b", "c"], [0, float("nan"), -5], "t"))
    assert [float(r.get("width")) for r in root.iter(f"{NS}rect")] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="one value per label"):
        bar_chart(["a"], [1, 2], "t")

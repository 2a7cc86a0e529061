"""Explanations: rarest shared terms first, highlight spans in the original text, quality labels."""
from __future__ import annotations

from collections import Counter

from matcher.explain import highlight_spans, mark, matched_terms, quality_label


def test_rare_shared_terms_come_first_and_single_chars_are_dropped():
    df = Counter({"装置": 90, "氮化硼": 2, "韧性": 10, "高": 50})
    terms = matched_terms(["装置", "氮化硼", "高", "韧性"], ["氮化硼", "装置", "高", "韧性", "单晶"], df, 100)
    assert terms == ["氮化硼", "韧性", "装置"]


def test_highlight_spans_longest_first_and_case_folded():
    text = "采用ＰＬＣ控制的锂电池防爆阀，锂电池组"
    spans = highlight_spans(text, ["锂电池", "锂电", "plc"])
    assert [text[s:e] for s, e in spans] == ["ＰＬＣ", "锂电池", "锂电池"]


def test_mark_wraps_terms():
    assert mark("一种防爆阀", ["防爆"]) == "一种【防爆】阀"
    assert mark("一种防爆阀", []) == "一种防爆阀"


def test_quality_label_thresholds():
    assert [quality_label(x, 0.85, 0.80) for x in (0.9, 0.85, 0.82, 0.79, None)] == ["强", "强", "中", "弱", "弱"]


def test_snippet_centres_on_the_first_term_and_marks_it():
    from matcher.explain import snippet

    text = "前言" * 100 + "本装置用于锂电池防爆" + "后记" * 100
    out = snippet(text, ["防爆"], width=40)
    assert out.startswith("…") and out.endswith("…") and "【防爆】" in out


def test_ipc_labels_carry_chinese_titles():
    from matcher.explain import ipc_labels

    assert ipc_labels(["H04N5/225", "B64U20/80"])[1].startswith("B64U20/80 机载电子设备")

"""Demand text → query text: drop the sections of an enterprise demand that carry no technology."""
from __future__ import annotations

import re

#: Section headings whose content describes the company, money or people, not the technical need.
DROP_HEADINGS = (
    "需求背景", "项目背景", "背景", "现有工作基础", "工作基础", "现有基础", "企业简介", "公司简介", "单位简介", "企业概况",
    "合作方式", "合作模式", "预算", "经费预算", "资金预算", "拟投入资金", "投入资金", "联系方式", "联系人", "联系电话",
)
# A heading: start of a line, optional numbering (一、 1、 1. （一） (1)), a short label, a colon.
_HEADING = re.compile(r"(?m)^[ \t\u3000]*(?:[（(]?[一二三四五六七八九十\d]+[）)、.．]\s*)?([^\n：:，。]{2,12})[：:]")
_CONTACT = re.compile(r"(?:1[3-9]\d{9}|\d{3,4}-\d{7,8}|[\w.+-]+@[\w-]+\.[\w.]+)")


def split_sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) pairs in order; text before the first heading has heading ''."""
    marks = list(_HEADING.finditer(text))
    if not marks:
        return [("", text)]
    out = [("", text[: marks[0].start()])] if marks[0].start() > 0 else []
    for m, nxt in zip(marks, marks[1:] + [None]):
        out.append((m.group(1).strip(), text[m.end() : nxt.start() if nxt else len(text)]))
    return out


def clean_demand(text: str) -> str:
    """Keep the technical sections; if that would leave nothing, keep the original (never return empty)."""
    kept = [body for heading, body in split_sections(text) if not _is_dropped(heading)]
    cleaned = _CONTACT.sub(" ", "\n".join(kept)).strip()
    return cleaned if re.search(r"[\u3400-\u9fff]", cleaned) else text


def _is_dropped(heading: str) -> bool:
    return any(heading.endswith(h) or heading.startswith(h) for h in DROP_HEADINGS)

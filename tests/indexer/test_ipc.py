"""IPC table: titles, section → subgroup paths, degradation of unknown codes, prefix matching."""
from __future__ import annotations

import time

import pytest

from indexer import ipc


def test_table_loads_once_and_fast() -> None:
    fresh = ipc._Table(ipc.IPC_TABLE)
    start = time.perf_counter()
    rows = fresh.rows()
    assert time.perf_counter() - start < 1.5
    assert fresh.rows() is rows  # cached: the second call does not reload
    assert len(rows) > 75_000  # 77,401 rows minus ~1,500 junk keys or untitled entries


def test_path_of_a_subgroup_goes_from_section_to_subgroup() -> None:
    nodes = ipc.path("B64U20/80")
    assert [n.code for n in nodes] == ["B", "B64", "B64U", "B64U20/00", "B64U20/80"]
    assert [n.level for n in nodes] == ["section", "class", "subclass", "main_group", "subgroup"]
    assert nodes[-1].title == "机载电子设备的布置，例如航空电子系统或布线"
    assert nodes[2].title == "无人驾驶飞行器[UAV]；为此的设备"  # the appended 注意 note is cut off


@pytest.mark.parametrize("spelling", ["H01M10/0525", " h01m 10/0525 (2006.01)", "H01M0010052500", "H01M010/0525"])
def test_export_spellings_find_the_same_code(spelling: str) -> None:
    assert ipc.canonical(spelling) == "H01M10/0525"
    assert ipc.title(spelling) == "摇椅式电池，即其两个电极均插入或嵌入有锂的电池；锂离子电池"


def test_unknown_codes_degrade_to_the_nearest_known_ancestor() -> None:
    # H04N5/225 was moved to H04N23 in IPC 2023.01; exports of older patents still carry it.
    assert ipc.lookup("H04N5/225") is None
    assert [n.code for n in ipc.path("H04N5/225")] == ["H", "H04", "H04N", "H04N5/00"]
    assert ipc.title("H04N5/225").startswith("电视系统的零部件")
    # An untitled upstream row (G06F18/2321's title is the stray digit "3") degrades the same way.
    assert ipc.path("G06F18/2321")[-1].code == "G06F18/00"
    assert [n.code for n in ipc.path("H04Z1/00")] == ["H", "H04"]  # unknown subclass: up to the class
    assert ipc.title("H98Z1/00") == "电学"  # unknown class: only the section is known
    assert ipc.path("not a code") == [] and ipc.title("") == ""


def test_partial_codes() -> None:
    assert ipc.canonical("H04N5") == "H04N5/00"
    assert [n.level for n in ipc.path("H04N")] == ["section", "class", "subclass"]
    assert ipc.format_path("H04").startswith("H 电学 › H04 ")


@pytest.mark.parametrize(("prefix", "code", "hit"), [
    ("H04N", "H04N5/225", True),
    ("h04n 5", "H04N5/225", True),
    ("H04N5/00", "H04N5/225", True),  # a main group means the whole group
    ("H04N5", "H04N51/00", False),  # … not another group that starts with the same digit
    ("H04N5/22", "H04N5/225", True),
    ("H04N5/22", "H04N5/232", False),
    ("H", "H04N5/225", True),
    ("G06", "H04N5/225", False),
])
def test_matches_prefix(prefix: str, code: str, hit: bool) -> None:
    assert ipc.matches_prefix([code], prefix) is hit


def test_bad_prefix_names_the_accepted_forms() -> None:
    with pytest.raises(ValueError, match=r"subclass \(H04N\)"):
        ipc.prefix_key("电视")
    with pytest.raises(ValueError, match="not an IPC prefix"):
        ipc.prefix_key("")


def test_subclasses() -> None:
    assert ipc.subclasses(["H04N5/225", "H04N7/18", "G07C1/20", "junk"]) == {"H04N", "G07C"}

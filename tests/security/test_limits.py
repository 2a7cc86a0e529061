"""Size limits on hostile files and payloads: XLSX zip bombs (total expansion, compression ratio, member count, a
lying size header), XML entity tricks, row count, text length, upload size, batch size — through the reader, the
CLI and the web upload, each refused with a message saying what is wrong and the store left unchanged."""
from __future__ import annotations

import io
import re
import tracemalloc
import zipfile
from dataclasses import replace
from pathlib import Path

import openpyxl
import pytest

from api.cli import main as ptm
from indexer.readers import ImportFileError, read_file
from indexer.settings import Settings
from tests.security.conftest import World

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHEET = "xl/worksheets/sheet1.xml"
BILLION_LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + b"".join(b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10 if i > 1 else b"&lol;" * 10)
                             for i in range(1, 10))
                  + b']>\n<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>&lol9;</t></si></sst>')


def _zip(path: Path, members: dict[str, bytes | int]) -> Path:
    """An archive; an int member is that many spaces, streamed so the test never holds them in memory."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, content in members.items():
            if isinstance(content, bytes):
                archive.writestr(name, content)
                continue
            with archive.open(name, "w", force_zip64=True) as fh:
                for _ in range(content >> 20):
                    fh.write(b" " * (1 << 20))
    return path


def _workbook(path: Path, rows: int = 2) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["名称", "摘要", "公开(公告)号"])
    for i in range(rows):
        ws.append([f"一种防爆阀{i}", f"一种用于锂电池包的防爆阀，编号{i}。", f"CN1{i:08d}A"])
    wb.save(path)
    return path


def _replace_member(path: Path, name: str, content: bytes) -> Path:
    with zipfile.ZipFile(path) as src:
        parts = {i.filename: src.read(i) for i in src.infolist()}
    parts[name] = content
    path.unlink()
    return _zip(path, parts)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """A ~200 KB .xlsx whose sheet XML inflates to 210 MiB (a ~1000× ratio)."""
    return _zip(tmp_path_factory.mktemp("bomb") / "bomb.xlsx", {"[Content_Types].xml": b"<Types/>", SHEET: 210 << 20})


@pytest.fixture
def no_openpyxl(monkeypatch):
    """Refusal must come from the zip directory alone: opening the workbook would start inflating it."""
    def refuse(*_a, **_k):
        raise AssertionError("openpyxl.load_workbook was called: the workbook was opened before being judged")

    monkeypatch.setattr("indexer.readers.openpyxl.load_workbook", refuse)


def test_zip_bomb_is_refused_before_inflating(bomb: Path, settings: Settings, no_openpyxl) -> None:
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ImportFileError, match=r"part xl/worksheets/sheet1\.xml expands [\d,]+× .*zip bomb"):
            read_file(bomb, "patents", settings)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak >> 20} MiB allocated while judging a 210 MiB bomb: it was inflated"


def test_workbook_over_the_total_expansion_limit_is_refused(tmp_path: Path, settings: Settings, no_openpyxl) -> None:
    path = _zip(tmp_path / "big.xlsx", {SHEET: 2 << 20})  # under the ratio rule's 8 MiB floor: the total decides
    small = replace(settings, max_file_bytes=64 * 1024)  # may expand to 20 × 64 KiB
    with pytest.raises(ImportFileError, match=r"would expand to 2 MiB \(limit 1 MiB\)"):
        read_file(path, "patents", small)


def test_too_many_zip_members_are_refused(tmp_path: Path, settings: Settings, no_openpyxl) -> None:
    path = _zip(tmp_path / "many.xlsx", {f"xl/media/{i}.bin": b"" for i in range(10_001)})
    with pytest.raises(ImportFileError, match=r"holds 10,001 parts \(limit 10,000\)"):
        read_file(path, "patents", settings)


def test_a_size_header_that_understates_is_caught_by_the_crc(tmp_path: Path, settings: Settings) -> None:
    # The directory claims 4 KiB but the data inflates to 32 MiB: zipfile stops at the claimed size, so the
    # check on declared sizes bounds what can ever be inflated, and the CRC then fails -> "damaged".
    path = _zip(tmp_path / "liar.xlsx", {SHEET: 32 << 20})
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 24:central + 28] = (4096).to_bytes(4, "little")  # uncompressed size in the central directory
    path.write_bytes(bytes(data))
    with pytest.raises(ImportFileError, match="damaged or truncated"):
        read_file(path, "patents", settings)


@pytest.mark.parametrize("member", ["xl/sharedStrings.xml", SHEET])
def test_billion_laughs_is_refused_without_parsing(tmp_path: Path, settings: Settings, member: str, no_openpyxl) -> None:
    path = _replace_member(_workbook(tmp_path / "laughs.xlsx"), member, BILLION_LAUGHS)
    with pytest.raises(ImportFileError, match=rf"part {re.escape(member)} declares a DTD"):
        read_file(path, "patents", settings)


def test_an_entity_hidden_behind_a_long_prolog_is_refused(tmp_path: Path, settings: Settings, no_openpyxl) -> None:
    padded = b'<?xml version="1.0"?>\n' + b"<!--" + b"x" * 100_000 + b"-->" + BILLION_LAUGHS.split(b"\n", 1)[1]
    path = _replace_member(_workbook(tmp_path / "padded.xlsx"), SHEET, padded)
    with pytest.raises(ImportFileError, match="has no XML element in its first 64 KiB"):
        read_file(path, "patents", settings)


def test_real_workbooks_still_pass_the_checks(tmp_path: Path, settings: Settings) -> None:
    # The control: the limits must not refuse what Excel and incoPat write.
    assert len(read_file(FIXTURES / "incopat_sample.xlsx", "patents", settings).records) > 0
    assert len(read_file(_workbook(tmp_path / "ok.xlsx", rows=3000), "patents", settings).records) == 3000


def test_row_count_and_text_length_limits_name_the_problem(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("名称,摘要,公开(公告)号\n" + "".join(f"防爆阀{i},一种锂电池防爆阀{i},CN1{i:08d}A\n" for i in range(11)),
                    encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"more than 10 rows"):
        read_file(path, "patents", replace(settings, max_rows=10))
    path.write_text("名称,摘要,公开(公告)号\n防爆阀,一种" + "锂" * 30 + ",CN100000001A\n", encoding="utf-8")
    report = read_file(path, "patents", replace(settings, max_text_chars=20))
    assert not report.records and re.search(r"摘要.*32 characters; the limit is 20", report.rejected[0].reason)


def _count(settings: Settings) -> int:
    from indexer.store import Store

    return Store(settings.db_path).count("patents") if settings.db_path.exists() else 0


def test_cli_refuses_the_bomb_with_a_message_and_writes_nothing(bomb: Path, settings: Settings, capsys) -> None:
    assert ptm(["--home", str(settings.home), "ingest", "patents", str(bomb)]) == 2
    err = capsys.readouterr().err
    assert "ptm: error:" in err and "zip bomb" in err and "Traceback" not in err
    assert _count(settings) == 0


def test_web_upload_refuses_the_bomb_and_an_oversized_file(world: World, bomb: Path, monkeypatch) -> None:
    client, csrf = world.caller("university")
    before = world.store.count("patents")
    with open(bomb, "rb") as fh:
        r = client.post("/import", data={"csrf": csrf, "kind": "patents"}, files={"file": ("专利.xlsx", fh)})
    assert r.status_code == 422 and "文件无法导入" in r.text and "zip bomb" in r.text
    monkeypatch.setattr("api.routes.common.MAX_UPLOAD_BYTES", 1 << 20)
    r = client.post("/import", data={"csrf": csrf, "kind": "patents"},
                    files={"file": ("专利.csv", io.BytesIO(b"x" * (2 << 20)))})
    assert r.status_code == 422 and "文件超过 1 MB" in r.text
    assert world.store.count("patents") == before
    assert not list((world.app.state.engine.settings.home / "uploads").glob("*.xlsx"))  # refused uploads are deleted


def test_api_refuses_oversized_batches_and_texts(world: World) -> None:
    from api.app import MAX_BATCH

    client, _ = world.caller("staff")
    before = world.store.count("patents"), world.store.count("demands")
    one = {"id": "CN100000001A", "title": "防爆阀", "abstract": "一种锂电池防爆阀。"}
    r = client.post("/patents", json=[one] * (MAX_BATCH + 1))
    assert r.status_code == 422 and "5000" in r.text
    limit = world.app.state.engine.settings.max_text_chars
    r = client.post("/demands", json={"title": "长文本", "text": "锂" * (limit + 1)})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "text"]
    r = client.post("/match", json={"text": "锂" * (limit + 1)})
    assert r.status_code == 422 and "limit" in r.text
    assert (world.store.count("patents"), world.store.count("demands")) == before


def test_web_forms_refuse_oversized_fields(world: World) -> None:
    client, csrf = world.caller("enterprise")
    before = world.store.count("demands")
    r = client.post("/enterprise/demands/new", data={"csrf": csrf, "title": "长", "text": "锂电池防爆" * 1001})
    assert r.status_code == 422 and "需求内容最多 5000 字" in r.text
    anon, _ = world.caller("anonymous")
    assert "检索内容最多 500 字" in anon.get("/", params={"q": "锂" * 501}).text
    assert world.store.count("demands") == before

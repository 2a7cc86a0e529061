"""SQLite store: upsert counts, all-or-nothing transactions, WAL readers during writes."""
from __future__ import annotations

import pytest

from indexer.records import Demand, Patent
from indexer.store import Store, StoreError


def _patent(pid: str, abstract: str = "一种锂电池防爆结构，包括泄压阀和隔热层。") -> Patent:
    return Patent(id=pid, title="锂电池防爆结构", abstract=abstract)


def test_upsert_counts_added_updated_unchanged(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    assert store.upsert("patents", [_patent("CN1A"), _patent("CN2A")]).added == 2
    counts = store.upsert("patents", [_patent("CN1A"), _patent("CN2A", "一种改进的锂电池防爆结构。")])
    assert (counts.added, counts.updated, counts.unchanged) == (0, 1, 1)
    assert store.get("patents", "CN2A").abstract == "一种改进的锂电池防爆结构。"
    assert store.count("patents") == 2


def test_update_keeps_int_id_and_changes_text_hash(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", [_patent("CN1A")])
    before_id, before_hash = store.int_id("patents", "CN1A"), store.text_hashes("patents")
    store.upsert("patents", [_patent("CN1A", "另一种摘要文本。")])
    assert store.int_id("patents", "CN1A") == before_id
    assert store.text_hashes("patents")[before_id] != before_hash[before_id]


def test_failed_batch_writes_nothing(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", [_patent("CN1A")])

    class Boom(Patent):
        def model_dump_json(self, **kw):  # fails in the middle of the transaction
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        store.upsert("patents", [_patent("CN9A"), Boom(id="CN8A", title="t", abstract="一种摘要")])
    assert store.get("patents", "CN9A") is None
    assert store.count("patents") == 1


def test_demand_reimport_keeps_created_at_and_is_unchanged(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("demands", [Demand(id="D1", text="需要一种防爆电池技术")])
    first = store.get("demands", "D1").created_at
    counts = store.upsert("demands", [Demand(id="D1", text="需要一种防爆电池技术")])
    assert counts.unchanged == 1 and store.get("demands", "D1").created_at == first


def test_unknown_kind_is_refused_with_the_valid_options(tmp_path):
    with pytest.raises(ValueError, match="patents, demands"):
        Store(tmp_path / "db.sqlite").count("users; DROP TABLE patents")


def test_not_a_database_gives_a_clear_error(tmp_path):
    bad = tmp_path / "db.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a valid ptm database"):
        Store(bad)


def test_readers_see_committed_data_while_a_writer_holds_the_lock(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", [_patent("CN1A")])
    with store.transaction() as con:
        con.execute("INSERT INTO patents(id, text_hash, data) VALUES ('X', 'h', '{}')")
        assert store.count("patents") == 1  # WAL: the reader is not blocked and sees the last commit
    assert store.count("patents") == 2


def test_second_writer_waits_then_fails_clearly_on_timeout(tmp_path):
    store = Store(tmp_path / "db.sqlite", busy_timeout_s=0.2)
    with store.transaction():
        with pytest.raises(StoreError, match="busy.*nothing was written"):
            store.upsert("patents", [_patent("CN2A")])


# --- schema version 2: filter columns, migration, merging ----------------------------------------

import sqlite3  # noqa: E402
from datetime import date  # noqa: E402

from indexer.store import FILTER_COLUMNS, SCHEMA_VERSION  # noqa: E402

# The version-1 layout exactly as ptm 0.1 created it.
V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE patents (int_id INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, text_hash TEXT NOT NULL,
    data TEXT NOT NULL, updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
CREATE TABLE demands (int_id INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, text_hash TEXT NOT NULL,
    data TEXT NOT NULL, updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
INSERT INTO meta VALUES ('schema_version', '1');
"""
V1_FIELDS = {"id", "title", "abstract", "applicants", "applicant_type", "ipc", "legal_status", "patent_type",
             "application_number", "publication_number", "application_date", "region", "transferable",
             "licence_terms", "price_wan", "claims", "keywords"}


def _rich(pid: str = "CN1A", **fields) -> Patent:
    base = dict(legal_status="有效", patent_type="发明", applicant_type="university", region="北京市海淀区",
                application_date=date(2020, 5, 1), ipc=["H04N5/225", "G06T7/00"], application_number="CN202010001234.5")
    return Patent(id=pid, title="图像去噪方法", abstract="一种图像去噪方法，基于深度学习。", **{**base, **fields})


def _columns(path, pid: str) -> dict:
    with sqlite3.connect(path) as con:
        con.row_factory = sqlite3.Row
        row = con.execute(f"SELECT {', '.join(FILTER_COLUMNS)} FROM patents WHERE id=?", (pid,)).fetchone()
    return dict(row)


def test_a_version_1_database_is_upgraded_in_place_on_open(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:
        con.executescript(V1_SCHEMA)
        data = _rich().model_dump_json(include=V1_FIELDS)  # what version 1 wrote: no count fields
        con.execute("INSERT INTO patents(id, text_hash, data) VALUES ('CN1A', 'h1', ?)", (data,))
        con.execute("INSERT INTO demands(id, text_hash, data) VALUES ('D1', 'h2', ?)",
                    (Demand(id="D1", text="需要一种防爆电池技术").model_dump_json(),))
    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION
    cols = _columns(path, "CN1A")
    assert cols["legal_status"] == "有效" and cols["ipc"] == ";H04N5/225;G06T7/00;" and cols["transferable"] == 1
    assert cols["application_date"] == "2020-05-01" and 0 < cols["value_score"] <= 100
    assert store.get("patents", "CN1A").transfer_count is None and store.get("demands", "D1") is not None
    assert store.text_hashes("patents") == {1: "h1"}  # rows keep their ids and hashes: the index stays valid
    Store(path)  # opening again is a no-op
    assert store.upsert("patents", [_rich()]).unchanged == 1


def test_a_newer_schema_is_refused(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(StoreError, match="newer version"):
        Store(store.path)


def test_filter_columns_follow_every_write(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", [_rich()])
    store.upsert("patents", [_rich(legal_status="失效", ipc=["A01B1/00"])])
    cols = _columns(store.path, "CN1A")
    assert (cols["legal_status"], cols["ipc"]) == ("失效", ";A01B1/00;")
    where = "legal_status IN (?) AND instr(ipc, ?) > 0"
    assert store.select_int_ids("patents", where, ["失效", ";A01B"]) == [store.int_id("patents", "CN1A")]
    # Values are bound, never spliced: a hostile value is just a string that matches nothing.
    assert store.select_int_ids("patents", "region = ?", ["'; DROP TABLE patents; --"]) == []
    assert store.count("patents") == 1


def test_a_second_export_adds_fields_without_erasing_the_first(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", [_rich(claims="1.一种图像去噪方法。")])
    partial = Patent(id="CN1A", title="图像去噪方法", abstract="一种图像去噪方法，基于深度学习。", citation_count=4)
    assert store.upsert("patents", [partial]).updated == 1
    merged = store.get("patents", "CN1A")
    assert merged.citation_count == 4 and merged.claims == "1.一种图像去噪方法。" and merged.region == "北京市海淀区"


def test_the_same_patent_under_its_other_number_is_one_record(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", [_rich("CN111111111A", publication_number="CN111111111A")])
    by_application = Patent(id="CN202010001234.5", application_number="CN202010001234.5", title="图像去噪方法",
                            abstract="一种图像去噪方法，基于深度学习。", price_wan=30)
    counts = store.upsert("patents", [by_application])
    assert (counts.added, counts.updated) == (0, 1) and store.count("patents") == 1
    assert store.get("patents", "CN111111111A").price_wan == 30.0


def test_dry_run_counts_and_writes_nothing(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", [_rich()])
    counts = store.upsert("patents", [_rich(legal_status="失效"), _rich("CN2A", application_number="")], dry_run=True)
    assert (counts.added, counts.updated) == (1, 1)
    assert store.count("patents") == 1 and store.get("patents", "CN1A").legal_status == "有效"

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

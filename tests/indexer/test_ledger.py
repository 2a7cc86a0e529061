"""Tests for indexer/ledger.py: sessions, deal stages and their rules, atomic writes, the v2 -> v3 migration."""
from __future__ import annotations

import sqlite3
from datetime import date

import pytest

from indexer import store as store_module
from indexer.ledger import (ALL_STAGES, KINDS, Ledger, LedgerError, Recommendation, canonical_kind, canonical_stage,
                            check_amount, check_move)
from indexer.records import Demand, Patent
from indexer.store import SCHEMA_VERSION, Store


def _patent(pid: str) -> Patent:
    return Patent(id=pid, title=f"专利{pid}", abstract="一种锂电池正极材料的制备方法。")


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", [_patent("CN1A"), _patent("CN2A")])
    return Ledger(store)


# --- sessions ---------------------------------------------------------------------------------------------------

def test_a_session_round_trips_and_can_be_replaced(ledger):
    plan = {"theme": "锂电池 · H01M", "patents": ["CN1A"], "pairs": [{"patent_id": "CN1A", "score": 0.8}]}
    sid = ledger.save_session(title="锂电池对接会", date=date(2026, 12, 10), theme={"ipc": ["H01M"]},
                              limits={"slots": 8, "seats": 10}, plan=plan, venue="长沙")
    got = ledger.session(sid)
    assert (got.title, got.date, got.venue, got.theme, got.limits, got.plan) == (
        "锂电池对接会", date(2026, 12, 10), "长沙", {"ipc": ["H01M"]}, {"slots": 8, "seats": 10}, plan)
    assert ledger.save_session(title="改名", date=None, theme={}, limits={}, plan={}, session_id=sid) == sid
    assert ledger.session(sid).title == "改名" and ledger.session(sid).date is None
    assert [s.id for s in ledger.sessions()] == [sid]
    with pytest.raises(LedgerError, match="没有编号为 99 的对接会"):
        ledger.save_session(title="x", date=None, theme={}, limits={}, plan={}, session_id=99)
    with pytest.raises(LedgerError, match="标题"):
        ledger.save_session(title="  ", date=None, theme={}, limits={}, plan={})


def test_sessions_list_latest_first_and_deleting_one_keeps_its_deals(ledger):
    old = ledger.save_session(title="旧", date=date(2026, 1, 1), theme={}, limits={}, plan={})
    new = ledger.save_session(title="新", date=date(2026, 6, 1), theme={}, limits={}, plan={})
    undated = ledger.save_session(title="未定", date=None, theme={}, limits={}, plan={})
    assert [s.id for s in ledger.sessions()] == [new, old, undated]
    ledger.record("CN1A", "甲公司", "推荐", session_id=new)
    ledger.delete_session(new)
    assert ledger.session(new) is None
    assert ledger.deal("CN1A", "甲公司").session_id is None
    with pytest.raises(LedgerError):
        ledger.delete_session(new)


# --- deals: stages, aliases, contract terms ---------------------------------------------------------------------

def test_a_deal_moves_forward_and_every_move_is_dated(ledger):
    ledger.record("CN1A", "甲公司", "推荐", demand_id="D1", engine_rank=3, on=date(2026, 1, 5))
    ledger.record("CN1A", "甲公司", "interest", on=date(2026, 2, 1), user="staff")
    deal = ledger.record("CN1A", "甲公司", "签约", kind="转让", amount_wan=120, on=date(2026, 5, 1), note="合同号 7")
    assert (deal.stage, deal.kind, deal.amount_wan, deal.demand_id, deal.engine_rank) == ("签约", "转让", 120.0, "D1", 3)
    assert deal.signed_on == date(2026, 5, 1)
    done = ledger.record("CN1A", "甲公司", "completed", on=date(2026, 7, 1))
    assert (done.stage, done.kind, done.amount_wan) == ("完成", "转让", 120.0)  # carried over from 签约
    assert done.stage_dates == {"推荐": date(2026, 1, 5), "意向": date(2026, 2, 1), "签约": date(2026, 5, 1),
                                "完成": date(2026, 7, 1)}
    events = ledger.events(done.id)
    assert [e.stage for e in events] == ["推荐", "意向", "签约", "完成"]
    assert events[1].user == "staff" and events[2].note == "合同号 7"


def test_on_defaults_to_today(ledger):
    assert ledger.record("CN1A", "甲公司", "推荐").stage_dates["推荐"] == date.today()


def test_stage_and_kind_aliases_and_the_dispatcher_lists_the_valid_values():
    assert [canonical_stage(s) for s in ("recommended", "Signed", " 洽谈 ", "dropped")] == ["推荐", "签约", "洽谈", "终止"]
    assert [canonical_kind(k) for k in ("licence", "license", "equity", "转让")] == ["许可", "许可", "作价入股", "转让"]
    with pytest.raises(ValueError) as err:
        canonical_stage("won")
    assert all(s in str(err.value) for s in ALL_STAGES)
    with pytest.raises(ValueError) as err:
        canonical_kind("sale")
    assert all(k in str(err.value) for k in KINDS)


def test_signing_needs_kind_and_an_explicit_amount(ledger):
    with pytest.raises(LedgerError, match="合同类型"):
        ledger.record("CN1A", "甲公司", "签约", amount_wan=10)
    with pytest.raises(LedgerError, match="金额"):
        ledger.record("CN1A", "甲公司", "签约", kind="许可")
    assert ledger.deal("CN1A", "甲公司") is None  # nothing half-written
    assert ledger.record("CN1A", "甲公司", "签约", kind="许可", amount_wan=0).amount_wan == 0.0  # a free licence


@pytest.mark.parametrize("amount", [-1, float("nan"), float("inf"), 1e7, "十万", True])
def test_bad_amounts_are_refused(amount):
    with pytest.raises(LedgerError):
        check_amount(amount)


def test_amount_bounds_that_are_accepted():
    assert check_amount(0) == 0.0 and check_amount("2071.5") == 2071.5 and check_amount(9_999_999) == 9_999_999.0


def test_moving_backwards_is_refused_unless_it_is_a_correction(ledger):
    ledger.record("CN1A", "甲公司", "签约", kind="转让", amount_wan=50, on=date(2026, 3, 1))
    with pytest.raises(LedgerError, match="已处于签约阶段"):
        ledger.record("CN1A", "甲公司", "洽谈")
    assert ledger.deal("CN1A", "甲公司").stage == "签约"
    fixed = ledger.record("CN1A", "甲公司", "洽谈", correct=True, note="录入错误")
    # The mistaken signature no longer counts, but the history keeps it.
    assert fixed.stage == "洽谈" and fixed.signed_on is None and "签约" not in fixed.stage_dates
    assert [e.stage for e in ledger.events(fixed.id)] == ["签约", "洽谈"]


def test_dropping_is_allowed_from_any_stage_and_reopening_needs_a_correction(ledger):
    ledger.record("CN1A", "甲公司", "洽谈")
    dropped = ledger.record("CN1A", "甲公司", "终止")
    assert dropped.stage == "终止" and dropped.reached == "洽谈"
    with pytest.raises(LedgerError, match="已终止"):
        ledger.record("CN1A", "甲公司", "签约", kind="转让", amount_wan=1)
    assert ledger.record("CN1A", "甲公司", "洽谈", correct=True).stage == "洽谈"


def test_check_move_is_a_pure_rule():
    check_move(None, "完成")
    check_move("推荐", "签约")  # skipping forward is fine: not every step is reported
    check_move("签约", "签约")  # amending the same stage
    check_move("完成", "终止")
    with pytest.raises(LedgerError):
        check_move("意向", "推荐")


def test_unknown_patent_and_session_are_clear_errors_and_write_nothing(ledger):
    with pytest.raises(LedgerError, match="专利号 'CN404' 不存在"):
        ledger.record("CN404", "甲公司", "推荐")
    with pytest.raises(LedgerError, match="没有编号为 7 的对接会"):
        ledger.record("CN1A", "甲公司", "推荐", session_id=7)
    assert ledger.deals() == []


def test_a_failing_write_rolls_back_the_deal_and_its_event(ledger, monkeypatch):
    ledger.record("CN1A", "甲公司", "推荐")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("indexer.ledger._events_by_deal", broken)  # fails after the UPDATE and the INSERT
    with pytest.raises(RuntimeError):
        ledger.record("CN1A", "甲公司", "洽谈")
    monkeypatch.undo()
    deal = ledger.deal("CN1A", "甲公司")
    assert deal.stage == "推荐" and len(ledger.events(deal.id)) == 1


def _save(ledger, recommend, session_id=None):
    return ledger.save_session_with_deals(title="锂电池对接会", date=None, theme={}, limits={}, plan={},
                                          session_id=session_id, recommend=recommend, user="staff")


def test_a_session_and_its_recommended_deals_are_saved_together_or_not_at_all(ledger, monkeypatch):
    pairs = [Recommendation("CN1A", "甲公司", "D1", 1), Recommendation("CN2A", "乙公司", None, 3)]
    with pytest.raises(LedgerError, match="专利号 'CN404' 不存在"):  # the last pair fails: nothing is kept
        _save(ledger, [*pairs, Recommendation("CN404", "丙公司")])
    assert ledger.sessions() == [] and ledger.deals() == []

    def crash(*args, **kwargs):
        raise RuntimeError("killed between the session and its deals")

    monkeypatch.setattr(Ledger, "_apply", staticmethod(crash))
    with pytest.raises(RuntimeError):
        _save(ledger, pairs)
    monkeypatch.undo()
    assert ledger.sessions() == [] and ledger.deals() == []

    sid, recorded = _save(ledger, pairs)
    assert recorded == 2 and {(d.patent_id, d.session_id, d.engine_rank) for d in ledger.deals()} == {
        ("CN1A", sid, 1), ("CN2A", sid, 3)}
    assert [e.note for e in ledger.events(ledger.deal("CN1A", "甲公司").id)] == [f"对接会 #{sid} 推荐"]


def test_saving_a_session_again_neither_repeats_nor_sets_back_its_deals(ledger):
    pairs = [Recommendation("CN1A", "甲公司"), Recommendation("CN2A", "乙公司")]
    sid, _ = _save(ledger, pairs)
    ledger.record("CN2A", "乙公司", "洽谈")
    assert _save(ledger, pairs, session_id=sid) == (sid, 0)
    assert ledger.deal("CN2A", "乙公司").stage == "洽谈" and len(ledger.events(ledger.deal("CN1A", "甲公司").id)) == 1
    other, recorded = _save(ledger, pairs)  # a new session takes over a pair still at 推荐, not one moved on
    assert recorded == 1 and ledger.deal("CN1A", "甲公司").session_id == other


def test_the_first_engine_rank_is_kept_and_pairs_are_unique(ledger):
    ledger.record("CN1A", "甲公司", "推荐", engine_rank=2)
    assert ledger.record("CN1A", "甲公司 ", "意向", engine_rank=9).engine_rank == 2
    ledger.record("CN1A", "乙公司", "推荐")
    ledger.record("CN2A", "甲公司", "洽谈")
    assert len(ledger.deals()) == 3
    assert [d.enterprise for d in ledger.deals(stage="推荐")] == ["乙公司"]
    assert [d.stage for d in ledger.deals()] == ["推荐", "意向", "洽谈"]  # pipeline order
    with pytest.raises(LedgerError, match="引擎排名"):
        ledger.record("CN2A", "丙公司", "推荐", engine_rank=0)


def test_interest_marked_on_the_platform_advances_only_new_or_recommended_deals(ledger):
    assert ledger.note_interest("CN1A", "甲公司", demand_id="D1").stage == "意向"
    ledger.record("CN2A", "甲公司", "签约", kind="许可", amount_wan=5)
    assert ledger.note_interest("CN2A", "甲公司").stage == "签约"
    assert ledger.note_interest("CN404", "甲公司") is None


# --- schema migration v2 -> v3 ----------------------------------------------------------------------------------

def test_a_version_2_database_gains_the_ledger_tables_on_open(tmp_path):
    path = tmp_path / "v2.sqlite"
    with sqlite3.connect(path) as con:
        # The version-2 layout as ptm created it: the v1 tables plus the real 1 -> 2 step.
        con.executescript(store_module._SCHEMA)
        con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        con.execute("INSERT INTO patents(id, text_hash, data) VALUES ('CN1A', 'h1', ?)", (_patent("CN1A").model_dump_json(),))
        con.execute("INSERT INTO demands(id, text_hash, data) VALUES ('D1', 'h2', ?)",
                    (Demand(id="D1", text="需要一种锂电池技术").model_dump_json(),))
        store_module._migrate_1_to_2(con)
        con.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
        assert "deals" not in {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION == 3
    assert store.text_hashes("patents") == {1: "h1"} and store.get("demands", "D1") is not None
    ledger = Ledger(store)
    assert ledger.record("CN1A", "甲公司", "推荐").stage == "推荐"
    Store(path)  # opening again is a no-op
    assert len(ledger.deals()) == 1


def test_the_ledger_leaves_the_web_apps_login_sessions_table_alone(tmp_path):
    # api/webstore.py keeps its login sessions in a `sessions` table of the same file; both must coexist.
    path = tmp_path / "db.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, user_id INTEGER, csrf TEXT, expires TEXT)")
    store = Store(path)
    store.upsert("patents", [_patent("CN1A")])
    sid = Ledger(store).save_session(title="对接会", date=None, theme={}, limits={}, plan={})
    assert Ledger(store).record("CN1A", "甲公司", "推荐", session_id=sid).session_id == sid
    with sqlite3.connect(path) as con:
        assert [r[1] for r in con.execute("PRAGMA table_info(sessions)")] == ["token_hash", "user_id", "csrf", "expires"]

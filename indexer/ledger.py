"""The centre's ledger: matchmaking sessions (对接会) and the deals that follow them, stage by stage, in the store.

Sessions and deals live in the store's SQLite file (schema version 3, see indexer/store.py), so `ptm backup`
covers them. A deal is one (patent, enterprise) pair moving 推荐 → 意向 → 洽谈 → 签约 → 完成, or leaving by
终止 from any stage; every move is kept as a DealEvent with its date, so reports can group by the day a deal
was signed and the ranking evaluation can ask how far a pair got.
"""
from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Literal, cast

from indexer.store import Store

Stage = Literal["推荐", "意向", "洽谈", "签约", "完成", "终止"]
DealKind = Literal["转让", "许可", "作价入股"]

STAGES: tuple[Stage, ...] = ("推荐", "意向", "洽谈", "签约", "完成")  # forward order
DROPPED: Stage = "终止"  # the side exit, reachable from any stage
ALL_STAGES: tuple[Stage, ...] = (*STAGES, DROPPED)
KINDS: tuple[DealKind, ...] = ("转让", "许可", "作价入股")

STAGE_ALIASES: dict[str, Stage] = {
    "recommended": "推荐", "interest": "意向", "negotiation": "洽谈", "signed": "签约", "completed": "完成",
    "dropped": "终止",
}
KIND_ALIASES: dict[str, DealKind] = {"assignment": "转让", "transfer": "转让", "licence": "许可", "license": "许可",
                                     "equity": "作价入股"}
#: Stages that need a contract kind and an amount: signing fixes them, completion carries them over.
CONTRACT_STAGES: tuple[Stage, ...] = ("签约", "完成")
#: Upper bound on an amount (万元): 1e7 万元 = 1000 亿元, far above any patent deal, so larger is a typo.
MAX_AMOUNT_WAN = 1e7
MAX_TEXT = 200  # enterprise names, titles, venues
MAX_NOTE = 2000


@dataclass(frozen=True)
class Recommendation:
    """A pair a saved session recommends: becomes a 推荐 deal attached to the session."""

    patent_id: str
    enterprise: str
    demand_id: str | None = None
    engine_rank: int | None = None


@dataclass(frozen=True)
class _Move:
    """A deal move whose arguments passed the checks; applied inside a transaction by Ledger._apply."""

    patent_id: str
    enterprise: str
    target: Stage
    demand_id: str | None
    kind: DealKind | None
    amount: float | None
    on: date
    session_id: int | None
    engine_rank: int | None
    note: str
    user: str
    correct: bool


class LedgerError(ValueError):
    """A ledger write that was refused; the message says what to fix. Nothing was written."""


@dataclass(frozen=True)
class SessionRecord:
    id: int
    title: str
    date: date | None
    venue: str
    theme: dict
    limits: dict
    plan: dict  # SessionPlan.to_dict()
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class DealEvent:
    id: int
    deal_id: int
    stage: Stage
    kind: DealKind | None
    amount_wan: float | None
    on_date: date
    note: str
    user: str
    at: str


@dataclass(frozen=True)
class Deal:
    id: int
    patent_id: str
    enterprise: str
    demand_id: str | None
    session_id: int | None
    stage: Stage
    kind: DealKind | None
    amount_wan: float | None
    engine_rank: int | None  # 1-based rank the engine gave the patent for the demand when it was recommended
    created_at: str
    updated_at: str
    #: forward stage → the date it was reached (终止 too), as the event history stands after any correction
    stage_dates: dict[str, date] = field(default_factory=dict)

    @property
    def reached(self) -> Stage:
        """The furthest forward stage this deal reached, even if it was dropped afterwards."""
        return max((s for s in self.stage_dates if s in STAGES), key=STAGES.index, default="推荐")

    @property
    def signed_on(self) -> date | None:
        """The contract date: the 签约 date, or the 完成 date for a deal recorded straight as completed."""
        return self.stage_dates.get("签约") or self.stage_dates.get("完成")


# --- validation: small pure functions, shared by the CLI and the web forms ------------------------------------


def _canonical(value: str, names: Sequence[str], aliases: Mapping[str, str], what: str) -> str:
    text = str(value).strip()
    if text in names:
        return text
    if text.lower() in aliases:
        return aliases[text.lower()]
    valid = "、".join(f"{n} ({'/'.join(a for a, m in aliases.items() if m == n)})" for n in names)
    raise LedgerError(f"未知的{what} {text!r}；可选：{valid}")


def canonical_stage(value: str) -> Stage:
    """A stage name, Chinese or its English alias, as the Chinese stage; LedgerError lists the valid ones."""
    return cast(Stage, _canonical(value, ALL_STAGES, STAGE_ALIASES, "阶段"))


def canonical_kind(value: str) -> DealKind:
    """A contract kind (转让/许可/作价入股 or assignment/licence/equity) as the Chinese kind."""
    return cast(DealKind, _canonical(value, KINDS, KIND_ALIASES, "合同类型"))


def check_amount(value: object) -> float:
    """An amount in 万元: finite, >= 0 (0 is a free licence and must be given explicitly), < MAX_AMOUNT_WAN."""
    if isinstance(value, bool):
        raise LedgerError(f"金额须为数字（万元），而不是 {value!r}")
    try:
        amount = float(cast(float, value))
    except (TypeError, ValueError):
        raise LedgerError(f"金额须为数字（万元），而不是 {value!r}") from None
    if not math.isfinite(amount) or amount < 0:
        raise LedgerError(f"金额须为不小于 0 的有限数字（万元），而不是 {value!r}")
    if amount >= MAX_AMOUNT_WAN:
        raise LedgerError(f"金额 {amount:g} 万元过大（上限 {MAX_AMOUNT_WAN:g} 万元）；金额单位是万元，不是元")
    return amount


def check_move(current: Stage | None, target: Stage, *, correct: bool = False) -> None:
    """Refuse a move backwards (or out of 终止) unless it is an explicit correction.

    Staying at the same stage is allowed: it amends that stage's details (a later date, the final amount).
    """
    if correct or current is None or current == target or target == DROPPED:
        return
    if current == DROPPED:
        raise LedgerError(f"该项目已终止；改为{target}即重新开启，如确属此情况请作为更正提交（网页勾选“更正”，命令行加 --correct）")
    if STAGES.index(target) < STAGES.index(current):
        raise LedgerError(f"该项目已处于{current}阶段，不能退回{target}；如果之前录入有误，请作为更正提交（网页勾选“更正”，命令行加 --correct）")


def _text(value: str, what: str, limit: int = MAX_TEXT, required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise LedgerError(f"{what}为空，请填写{what}")
    if len(text) > limit:
        raise LedgerError(f"{what}超过 {limit} 字，请缩短")
    return text


def _no_session(session_id: int) -> str:
    return f"没有编号为 {session_id} 的对接会（`ptm sessions list` 列出全部）"


def stage_dates(events: Sequence[DealEvent]) -> dict[str, date]:
    """Stage → date reached, replaying the history: a correction back to an earlier stage forgets the dates
    of the stages after it, so a mistaken 签约 does not count as a signature."""
    dates: dict[str, date] = {}
    for ev in events:
        if ev.stage in STAGES:
            for later in STAGES[STAGES.index(ev.stage) + 1:]:
                dates.pop(later, None)
            dates.pop(DROPPED, None)
        dates[ev.stage] = ev.on_date
    return dates


# --- rows -------------------------------------------------------------------------------------------------------

_SESSION_COLUMNS = "id, title, date, venue, theme_json, limits_json, plan_json, created_at, updated_at"
_DEAL_COLUMNS = ("id, patent_id, enterprise, demand_id, session_id, stage, kind, amount_wan, engine_rank, "
                 "created_at, updated_at")
_EVENT_COLUMNS = "id, deal_id, stage, kind, amount_wan, on_date, note, user, at"
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def _session_from_row(row: sqlite3.Row) -> SessionRecord:
    return SessionRecord(
        id=row["id"], title=row["title"], date=date.fromisoformat(row["date"]) if row["date"] else None,
        venue=row["venue"], theme=json.loads(row["theme_json"]), limits=json.loads(row["limits_json"]),
        plan=json.loads(row["plan_json"]), created_at=row["created_at"], updated_at=row["updated_at"],
    )


def _event_from_row(row: sqlite3.Row) -> DealEvent:
    return DealEvent(id=row["id"], deal_id=row["deal_id"], stage=row["stage"], kind=row["kind"],
                     amount_wan=row["amount_wan"], on_date=date.fromisoformat(row["on_date"]), note=row["note"],
                     user=row["user"], at=row["at"])


def _deal_from_row(row: sqlite3.Row, events: Sequence[DealEvent]) -> Deal:
    return Deal(id=row["id"], patent_id=row["patent_id"], enterprise=row["enterprise"], demand_id=row["demand_id"],
                session_id=row["session_id"], stage=row["stage"], kind=row["kind"], amount_wan=row["amount_wan"],
                engine_rank=row["engine_rank"], created_at=row["created_at"], updated_at=row["updated_at"],
                stage_dates=stage_dates(events))


def _json(value: dict, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise LedgerError(f"对接会的{what}无法保存（不是 JSON 数据）：{exc}") from exc


class Ledger:
    """Sessions and deals in one Store's database; every write is one transaction (all or nothing)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- sessions ---------------------------------------------------------------------------------------------

    def save_session(self, *, title: str, date: date | None, theme: dict, limits: dict, plan: dict,
                     session_id: int | None = None, venue: str = "") -> int:
        """Create a session, or replace every field of session `session_id`; returns its id."""
        return self.save_session_with_deals(title=title, date=date, theme=theme, limits=limits, plan=plan,
                                            session_id=session_id, venue=venue)[0]

    def save_session_with_deals(self, *, title: str, date: date | None, theme: dict, limits: dict, plan: dict,
                                session_id: int | None = None, venue: str = "",
                                recommend: Sequence[Recommendation] = (), user: str = "") -> tuple[int, int]:
        """save_session, and a 推荐 deal for each recommended pair, in one transaction: a crash or a refused pair
        leaves neither the session nor any of its deals. A pair whose deal has moved on (意向 and later, or 终止)
        is left alone, and a 推荐 already attached to this session is not logged twice when it is saved again.
        Returns (session id, deals recorded)."""
        values = (_text(title, "对接会标题"), date.isoformat() if date else None,
                  _text(venue, "地点", required=False), _json(theme, "主题"), _json(limits, "容量限制"),
                  _json(plan, "方案"))
        moves = [self._move(r.patent_id, r.enterprise, "推荐", demand_id=r.demand_id, engine_rank=r.engine_rank,
                            user=user) for r in recommend]  # session id and note are known inside the transaction
        with self.store.transaction() as con:
            con.row_factory = sqlite3.Row
            if session_id is None:
                session_id = int(con.execute(
                    "INSERT INTO matchmaking_sessions(title, date, venue, theme_json, limits_json, plan_json) VALUES (?,?,?,?,?,?)",
                    values).lastrowid)
            elif not con.execute(
                    f"UPDATE matchmaking_sessions SET title=?, date=?, venue=?, theme_json=?, limits_json=?, plan_json=?, "
                    f"updated_at={_NOW} WHERE id=?", (*values, session_id)).rowcount:
                raise LedgerError(_no_session(session_id))
            recorded = 0
            for move in moves:
                row = con.execute("SELECT stage, session_id FROM deals WHERE patent_id=? AND enterprise=?",
                                  (move.patent_id, move.enterprise)).fetchone()
                if row is not None and (row["stage"] != "推荐" or row["session_id"] == session_id):
                    continue
                self._apply(con, replace(move, session_id=session_id, note=f"对接会 #{session_id} 推荐"))
                recorded += 1
            return session_id, recorded

    def session(self, session_id: int) -> SessionRecord | None:
        with self._read() as con:
            row = con.execute(f"SELECT {_SESSION_COLUMNS} FROM matchmaking_sessions WHERE id=?", (session_id,)).fetchone()
        return _session_from_row(row) if row else None

    def sessions(self) -> list[SessionRecord]:
        """All sessions, the latest date first (undated ones last)."""
        with self._read() as con:
            rows = con.execute(f"SELECT {_SESSION_COLUMNS} FROM matchmaking_sessions "
                               "ORDER BY date IS NULL, date DESC, id DESC").fetchall()
        return [_session_from_row(r) for r in rows]

    def delete_session(self, session_id: int) -> None:
        """Remove a session; its deals stay on record, no longer attached to a session."""
        with self.store.transaction() as con:
            if not con.execute("DELETE FROM matchmaking_sessions WHERE id=?", (session_id,)).rowcount:
                raise LedgerError(_no_session(session_id))

    # --- deals ------------------------------------------------------------------------------------------------

    def record(self, patent_id: str, enterprise: str, stage: str, *, demand_id: str | None = None,
               kind: str | None = None, amount_wan: float | None = None, on: date | None = None,
               session_id: int | None = None, engine_rank: int | None = None, note: str = "", user: str = "",
               correct: bool = False) -> Deal:
        """Move the (patent, enterprise) deal to `stage`, creating it if new, and log the move.

        签约 needs `kind` and `amount_wan` (0 allowed, but given); 完成 takes them over from the signature
        unless given. `correct=True` allows a move backwards or out of 终止: staff do mistype a stage, and
        the correction is itself logged, so the history shows both the mistake and its fix.
        """
        move = self._move(patent_id, enterprise, stage, demand_id=demand_id, kind=kind, amount_wan=amount_wan, on=on,
                          session_id=session_id, engine_rank=engine_rank, note=note, user=user, correct=correct)
        with self.store.transaction() as con:
            con.row_factory = sqlite3.Row
            return self._deal(con, self._apply(con, move))

    @staticmethod
    def _move(patent_id: str, enterprise: str, stage: str, *, demand_id: str | None = None, kind: str | None = None,
              amount_wan: float | None = None, on: date | None = None, session_id: int | None = None,
              engine_rank: int | None = None, note: str = "", user: str = "", correct: bool = False) -> _Move:
        """The checks a move needs before any I/O."""
        target = canonical_stage(stage)
        patent_id = _text(patent_id, "专利号", limit=64)
        enterprise = _text(enterprise, "企业名称")
        new_kind = canonical_kind(kind) if kind not in (None, "") else None
        new_amount = check_amount(amount_wan) if amount_wan is not None else None
        if engine_rank is not None and (isinstance(engine_rank, bool) or not isinstance(engine_rank, int)
                                        or engine_rank < 1):
            raise LedgerError(f"引擎排名须为正整数（1 = 第一名），而不是 {engine_rank!r}")
        note = _text(note, "备注", limit=MAX_NOTE, required=False)
        return _Move(patent_id=patent_id, enterprise=enterprise, target=target, demand_id=demand_id or None,
                     kind=new_kind, amount=new_amount, on=on or date.today(), session_id=session_id,
                     engine_rank=engine_rank, note=note, user=_text(user, "操作人", required=False), correct=correct)

    @staticmethod
    def _apply(con: sqlite3.Connection, move: _Move) -> int:
        """Carry out a checked move inside the caller's transaction; returns the deal id."""
        if con.execute("SELECT 1 FROM patents WHERE id=?", (move.patent_id,)).fetchone() is None:
            raise LedgerError(f"专利号 {move.patent_id!r} 不存在；请先导入该专利或核对号码")
        if move.session_id is not None and con.execute("SELECT 1 FROM matchmaking_sessions WHERE id=?",
                                                       (move.session_id,)).fetchone() is None:
            raise LedgerError(_no_session(move.session_id))
        row = con.execute(f"SELECT {_DEAL_COLUMNS} FROM deals WHERE patent_id=? AND enterprise=?",
                          (move.patent_id, move.enterprise)).fetchone()
        target = move.target
        check_move(row["stage"] if row else None, target, correct=move.correct)
        final_kind = move.kind or (row["kind"] if row else None)
        final_amount = move.amount if move.amount is not None else (row["amount_wan"] if row else None)
        if target == "签约" and (move.kind is None or move.amount is None):
            raise LedgerError("签约需要合同类型（转让/许可/作价入股）和金额（万元；免费许可填 0）")
        if target in CONTRACT_STAGES and (final_kind is None or final_amount is None):
            raise LedgerError(f"{target}需要合同类型和金额；签约时没有记录，请补填")
        if row is None:
            deal_id = int(con.execute(
                "INSERT INTO deals(patent_id, enterprise, demand_id, session_id, stage, kind, amount_wan, "
                "engine_rank) VALUES (?,?,?,?,?,?,?,?)",
                (move.patent_id, move.enterprise, move.demand_id, move.session_id, target, final_kind, final_amount,
                 move.engine_rank)).lastrowid)
        else:
            deal_id = row["id"]
            # engine_rank is the rank at recommendation: the first one recorded is kept.
            con.execute(
                f"UPDATE deals SET stage=?, kind=?, amount_wan=?, demand_id=COALESCE(?, demand_id), "
                f"session_id=COALESCE(?, session_id), engine_rank=COALESCE(engine_rank, ?), updated_at={_NOW} "
                f"WHERE id=?",
                (target, final_kind, final_amount, move.demand_id, move.session_id, move.engine_rank, deal_id))
        con.execute("INSERT INTO deal_events(deal_id, stage, kind, amount_wan, on_date, note, user) "
                    "VALUES (?,?,?,?,?,?,?)",
                    (deal_id, target, move.kind, move.amount, move.on.isoformat(), move.note, move.user))
        return deal_id

    def note_interest(self, patent_id: str, enterprise: str, *, demand_id: str | None = None, user: str = "",
                      on: date | None = None) -> Deal | None:
        """An enterprise marked interest in the web app: the deal becomes 意向 if it is new or at 推荐.
        A deal already further on (or dropped) is left as it is. Returns the deal, or None when the patent is
        not stored (marking interest must not fail the enterprise's page over the centre's bookkeeping)."""
        current = self.deal(patent_id, enterprise)
        if current is not None and current.stage != "推荐":
            return current
        try:
            return self.record(patent_id, enterprise, "意向", demand_id=demand_id, on=on, user=user,
                               note="企业在平台上标记了意向")
        except LedgerError:
            # Staff moved the deal on in the meantime, or the patent was deleted since the page was shown.
            return self.deal(patent_id, enterprise)

    def deal(self, patent_id: str, enterprise: str) -> Deal | None:
        with self._read() as con:
            row = con.execute("SELECT id FROM deals WHERE patent_id=? AND enterprise=?",
                              (patent_id.strip(), enterprise.strip())).fetchone()
            return self._deal(con, row["id"]) if row else None

    def deal_by_id(self, deal_id: int) -> Deal | None:
        with self._read() as con:
            return self._deal(con, deal_id)

    def deals(self, *, stage: str | None = None, session_id: int | None = None) -> list[Deal]:
        """Deals in pipeline order (stage, then the most recently updated first), optionally filtered."""
        where, params = [], []
        if stage is not None:
            where.append("stage=?")
            params.append(canonical_stage(stage))
        if session_id is not None:
            where.append("session_id=?")
            params.append(session_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._read() as con:
            rows = con.execute(f"SELECT {_DEAL_COLUMNS} FROM deals {clause} ORDER BY updated_at DESC, id DESC",
                               params).fetchall()
            events = _events_by_deal(con, [r["id"] for r in rows])
        deals = [_deal_from_row(r, events.get(r["id"], [])) for r in rows]
        return sorted(deals, key=lambda d: ALL_STAGES.index(d.stage))

    def events(self, deal_id: int) -> list[DealEvent]:
        with self._read() as con:
            return _events_by_deal(con, [deal_id]).get(deal_id, [])

    def _deal(self, con: sqlite3.Connection, deal_id: int) -> Deal | None:
        row = con.execute(f"SELECT {_DEAL_COLUMNS} FROM deals WHERE id=?", (deal_id,)).fetchone()
        return _deal_from_row(row, _events_by_deal(con, [deal_id]).get(deal_id, [])) if row else None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # The store's own connection (WAL, busy timeout, clear errors), with rows addressable by column name.
        with self.store._connect() as con:
            con.row_factory = sqlite3.Row
            yield con


def _events_by_deal(con: sqlite3.Connection, deal_ids: Sequence[int]) -> dict[int, list[DealEvent]]:
    out: dict[int, list[DealEvent]] = {}
    for start in range(0, len(deal_ids), 500):
        chunk = list(deal_ids[start:start + 500])
        marks = ",".join("?" * len(chunk))
        # The insertion order (id) is the order of the moves; on_date may be back-dated.
        for row in con.execute(f"SELECT {_EVENT_COLUMNS} FROM deal_events WHERE deal_id IN ({marks}) ORDER BY id",
                               chunk):
            out.setdefault(row["deal_id"], []).append(_event_from_row(row))
    return out

"""Property-based tests of every API payload and web form: generated junk never gets a 500; it gets a result or a
4xx whose message names the field, and a refused write leaves the store exactly as it was (no partial batch).

derandomize=True: the same examples every run, so CI cannot go red on a draw a rerun would not repeat; deadline=None:
the shared machine's timing is not the code's. See test_properties_readers.py for running a wider search locally.
"""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from tests.security.conftest import World

FAST = hsettings(max_examples=50, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ERRORS = (400, 401, 403, 404, 409, 413, 422)  # 400: a body that is not UTF-8 JSON

_text = st.one_of(st.text(max_size=30), st.sampled_from(["", "锂电池防爆阀技术", "锂" * 30, "\x00", "<b>", "' OR 1=1 --"]))
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False, allow_infinity=False), _text)
_value = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                      max_leaves=6)
MATCH_FIELDS = ["text", "k", "legal_status", "patent_type", "ipc", "applicant_type", "region", "transferable_only",
                "min_value", "date_from", "date_to"]
DEMAND_FIELDS = ["id", "title", "text", "enterprise", "industry", "region", "budget_wan", "contact"]
PATENT_FIELDS = ["id", "title", "abstract", "applicants", "ipc", "legal_status", "patent_type", "application_date",
                 "price_wan", "transferable", "claims", "keywords"]


def _body(fields: list[str]):
    return st.dictionaries(st.one_of(st.sampled_from(fields), _text), _value, max_size=6)


def _counts(world: World) -> tuple[int, int]:
    return world.store.count("patents"), world.store.count("demands")


def _names_a_field(response) -> bool:
    detail = response.json().get("detail")
    if isinstance(detail, str):
        return bool(detail.strip())
    return all(isinstance(d.get("loc"), list) and d.get("msg") for d in detail)


def _answered(r, ok: int, world: World | None = None, before: tuple[int, int] | None = None) -> None:
    """The property: `ok`, or a known error naming the problem; a refused write changed nothing."""
    assert r.status_code in (ok, *ERRORS), r.text
    if r.status_code != ok and r.status_code != 400:
        assert _names_a_field(r), r.text
    if r.status_code != ok and world is not None:
        assert _counts(world) == before, f"refused with {r.status_code} but the store changed: {r.text}"


@FAST
@given(body=st.one_of(_body(MATCH_FIELDS), _value))
def test_post_match_with_junk(world: World, body) -> None:
    anon, _ = world.caller("anonymous")
    _answered(anon.post("/match", json=body), 200)


@FAST
@given(raw=st.binary(max_size=200))
def test_post_match_with_raw_bytes(world: World, raw: bytes) -> None:
    anon, _ = world.caller("anonymous")
    _answered(anon.post("/match", content=raw, headers={"Content-Type": "application/json"}), 200)


@FAST
@given(body=st.one_of(_body(DEMAND_FIELDS), _value))
def test_post_demand_with_junk_writes_all_or_nothing(world: World, body) -> None:
    staff, _ = world.caller("staff")
    before = _counts(world)
    _answered(staff.post("/demands", json=body), 201, world, before)


@FAST
@given(items=st.lists(st.one_of(_body(PATENT_FIELDS), _value), min_size=1, max_size=4),
       good=st.integers(0, 3))
def test_post_patents_batch_with_junk_is_all_or_nothing(world: World, items: list, good: int) -> None:
    # A valid patent among the junk: if any item is refused, it must not be written either.
    valid = {"id": "CN600000001A", "title": "一种防爆阀", "abstract": "一种用于锂电池包的防爆阀，包括阀体和泄压膜。"}
    items.insert(min(good, len(items)), valid)
    staff, _ = world.caller("staff")
    before = _counts(world)
    _answered(staff.post("/patents", json=items), 200, world, before)


@FAST
@given(params=st.dictionaries(st.one_of(st.sampled_from(MATCH_FIELDS), _text), _text, max_size=5))
def test_match_list_query_params_with_junk(world: World, params: dict) -> None:
    staff, _ = world.caller("staff")
    _answered(staff.get(f"/demands/{world.demand_id}/matches", params=params), 200)


@FAST
@given(form=st.dictionaries(st.sampled_from(["title", "text", "industry", "region", "budget_wan", "contact", "x"]),
                            _text.map(lambda s: s.replace("\x00", "")), max_size=7))
def test_demand_form_with_junk(world: World, form: dict) -> None:
    ent, csrf = world.caller("enterprise")
    before = _counts(world)
    r = ent.post("/enterprise/demands/new", data={**form, "csrf": csrf})
    assert r.status_code in (303, 422), r.text[:300]
    if r.status_code == 422:  # the message sits under the field it concerns
        assert 'class="field-error" id="' in r.text and _counts(world) == before


@FAST
@given(q=_text, page=st.one_of(_text, st.integers(-10**6, 10**6).map(str)))
def test_catalogue_search_with_junk(world: World, q: str, page: str) -> None:
    anon, _ = world.caller("anonymous")
    r = anon.get("/", params={"q": q, "page": page})
    assert r.status_code in (200, 422), r.text[:300]
    if r.status_code == 422:
        assert json.loads(r.text)["detail"][0]["loc"] == ["query", "page"]

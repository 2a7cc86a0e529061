"""One session's optimiser against brute force on small random cases; constraints are never violated; edits and errors."""
from __future__ import annotations

import json
import random
from itertools import combinations

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from matcher.sessions.plan import Limits, Pair, PatentInfo, SessionPlan, assemble_plan, check_plan, solve_session

UNIVERSITIES = ("清华大学", "浙江大学", "")
FIELDS = ("H01M", "G06T", "")


def random_case(rng: random.Random, n: int, m: int):
    patents = [PatentInfo(f"P{i}", f"专利{i}", rng.choice(UNIVERSITIES), rng.choice(FIELDS)) for i in range(n)]
    density = rng.uniform(0.2, 0.8)
    pairs = [Pair(p.id, f"E{e}", f"D{e}", round(rng.uniform(0.9, 1.0), 6), rng.randint(1, 20))
             for p in patents for e in range(m) if rng.random() < density]
    limits = Limits(rng.randint(1, 4), rng.randint(1, 4), rng.choice([None, 1, 2]), rng.choice([None, 1, 2]))
    return patents, pairs, limits


def feasible(chosen_p: set[str], chosen_e: set[str], patents, pairs, limits: Limits, edits: dict) -> bool:
    """The constraints, written independently of the solver."""
    info = {p.id: p for p in patents}
    if len(chosen_p) > limits.slots or len(chosen_e) > limits.seats:
        return False
    for attr, cap in (("university", limits.max_per_university), ("field", limits.max_per_field)):
        values = [getattr(info[p], attr) for p in chosen_p if getattr(info[p], attr)]
        if cap is not None and any(values.count(v) > cap for v in values):
            return False
    links = {(q.patent_id, q.enterprise) for q in pairs}
    if any(not any((p, e) in links for e in chosen_e) for p in chosen_p):
        return False
    if any(not any((p, e) in links for p in chosen_p) for e in chosen_e):
        return False
    return (set(edits.get("include_patents", ())) <= chosen_p and set(edits.get("include_enterprises", ())) <= chosen_e
            and not chosen_p & set(edits.get("exclude_patents", ())) and not chosen_e & set(edits.get("exclude_enterprises", ())))


def brute_force(patents, pairs, limits: Limits, edits: dict) -> float | None:
    """The best objective over every subset of patents and enterprises; None when no subset is feasible."""
    ids = [p.id for p in patents]
    enterprises = sorted({q.enterprise for q in pairs} | set(edits.get("include_enterprises", ())))
    best = None
    for a in range(len(ids) + 1):
        for ps in combinations(ids, a):
            for b in range(len(enterprises) + 1):
                for es in combinations(enterprises, b):
                    chosen_p, chosen_e = set(ps), set(es)
                    if feasible(chosen_p, chosen_e, patents, pairs, limits, edits):
                        value = sum(q.score for q in pairs if q.patent_id in chosen_p and q.enterprise in chosen_e)
                        best = value if best is None or value > best else best
    return best


def random_edits(rng: random.Random, patents, pairs) -> dict:
    edits: dict[str, list[str]] = {}
    enterprises = sorted({q.enterprise for q in pairs})
    if rng.random() < 0.3:
        edits["include_patents"] = [rng.choice(patents).id]
    if rng.random() < 0.3:
        edits["exclude_patents"] = [rng.choice(patents).id]
    if enterprises and rng.random() < 0.3:
        edits["include_enterprises"] = [rng.choice(enterprises)]
    if enterprises and rng.random() < 0.3:
        edits["exclude_enterprises"] = [rng.choice(enterprises)]
    return edits


@pytest.mark.parametrize("seed", range(60))
def test_solver_equals_brute_force(seed):
    rng = random.Random(seed)
    patents, pairs, limits = random_case(rng, rng.randint(1, 7), rng.randint(1, 6))
    edits = random_edits(rng, patents, pairs)
    best = brute_force(patents, pairs, limits, edits)
    if best is None:
        with pytest.raises(ValueError):
            solve_session(patents, pairs, limits, **edits)
        return
    plan = solve_session(patents, pairs, limits, **edits)
    assert check_plan(plan, patents, pairs, limits) == []
    assert feasible(set(plan.patents), set(plan.enterprises), patents, pairs, limits, edits)
    # Scores are scaled to integers (1e-4) for CP-SAT: the optimum may differ by that rounding per pair.
    assert plan.objective <= best + 1e-9
    assert plan.objective >= best - 1e-4 * max(1, len(pairs))
    assert plan.status == ("empty" if not plan.patents else "optimal")


@hsettings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(0, 9), m=st.integers(0, 8))
def test_constraints_are_never_violated(seed, n, m):
    rng = random.Random(seed)
    patents, pairs, limits = random_case(rng, n, m)
    plan = solve_session(patents, pairs, limits)
    assert check_plan(plan, patents, pairs, limits) == []
    assert len(set(plan.patents)) == len(plan.patents) <= limits.slots
    assert plan.unfilled_slots == limits.slots - len(plan.patents)
    assert plan.unfilled_seats == limits.seats - len(plan.enterprises)


P = [PatentInfo("p1", "a", "清华大学", "H01M"), PatentInfo("p2", "b", "清华大学", "H01M"),
     PatentInfo("p3", "c", "北京大学", "G06F"), PatentInfo("p4", "d", "", "")]
Q = [Pair("p1", "e1", "d1", 0.95, 1), Pair("p2", "e1", "d1", 0.93, 2), Pair("p2", "e2", "d2", 0.94, 1),
     Pair("p3", "e3", "d3", 0.92, 1), Pair("p4", "e3", "d3", 0.925, 1)]


def test_slot_order_and_realised_pairs():
    plan = solve_session(P, Q, Limits(slots=10, seats=10))
    # More slots than candidates: everyone with a strong match comes, the rest of the slots stay free.
    assert sorted(plan.patents) == ["p1", "p2", "p3", "p4"] and plan.unfilled_slots == 6
    assert plan.patents[0] == "p2"  # two realised pairs (0.93 + 0.94) open the session
    assert [q.score for q in plan.pairs] == sorted((q.score for q in Q), reverse=True)
    assert plan.objective == pytest.approx(sum(q.score for q in Q))


def test_caps_and_unknown_owner():
    plan = solve_session(P, Q, Limits(slots=4, seats=4, max_per_university=1, max_per_field=1))
    assert len({"p1", "p2"} & set(plan.patents)) == 1
    assert "p4" in plan.patents  # an unknown owner and field is not a group that a cap limits


def test_no_pairs_is_empty():
    plan = solve_session(P, [], Limits(3, 3))
    assert (plan.status, plan.patents, plan.enterprises, plan.objective) == ("empty", [], [], 0.0)
    assert (plan.unfilled_slots, plan.unfilled_seats) == (3, 3)


def test_excludes_are_respected():
    plan = solve_session(P, Q, Limits(4, 4), exclude_patents=["p1"], exclude_enterprises=["e3"])
    assert plan.patents == ["p2"] and plan.enterprises == ["e2", "e1"]


@pytest.mark.parametrize("edits, limits, message", [
    ({"include_patents": ["p1", "p2"]}, Limits(4, 4, max_per_university=1), "2 patents forced from 清华大学 but max_per_university=1"),
    ({"include_patents": ["p1", "p2", "p3"]}, Limits(2, 4), "3 patents are included but there are only slots=2"),
    ({"include_enterprises": ["e1", "e2"]}, Limits(2, 1), "2 enterprises are included but there are only seats=1"),
    ({"include_patents": ["p1"], "exclude_enterprises": ["e1"]}, Limits(2, 2), "included patents p1 have no strong match"),
    ({"include_enterprises": ["nobody"]}, Limits(2, 2), "included enterprises nobody have no strong match"),
    ({"include_patents": ["p9"]}, Limits(2, 2), "p9 are not among the candidates"),
    ({"include_patents": ["p1"], "exclude_patents": ["p1"]}, Limits(2, 2), "both included and excluded"),
    # p1's only partner is e1, but the one seat is forced to e3: the solver names the includes that clash.
    ({"include_patents": ["p1"], "include_enterprises": ["e3"]}, Limits(2, 1), "patent p1, enterprise e3"),
])
def test_infeasible_includes_say_what_conflicts(edits, limits, message):
    with pytest.raises(ValueError, match=message):
        solve_session(P, Q, limits, **edits)


@pytest.mark.parametrize("pairs, limits, message", [
    (Q, Limits(0, 3), "slots must be"),
    (Q, Limits(3, 0), "seats must be"),
    (Q, Limits(3, 3, max_per_university=0), "max_per_university must be"),
    ([Pair("p1", "e1", "d1", float("nan"), 1)], Limits(3, 3), "finite"),
    ([Pair("zz", "e1", "d1", 0.9, 1)], Limits(3, 3), "not in the patent list"),
    (Q + [Pair("p1", "e1", "d9", 0.91, 3)], Limits(3, 3), "given twice"),
])
def test_bad_input_is_refused(pairs, limits, message):
    with pytest.raises(ValueError, match=message):
        solve_session(P, pairs, limits)


def test_check_plan_names_every_violation():
    limits = Limits(slots=2, seats=1, max_per_university=1)
    bad = assemble_plan(["p1", "p2", "p3"], ["e2"], Q, limits)  # a hand edit: one patent too many, same university
    bad.pairs.append(Q[0])  # and a stale pair left over from an earlier version
    problems = check_plan(bad, P, Q, limits)
    assert "路演专利 3 项，超过路演席位 2 个" in problems
    assert "单位 清华大学 有 2 项专利路演，超过上限 1 项" in problems
    assert "专利 p1 与本场邀请的企业都没有强匹配" in problems and "专利 p3 与本场邀请的企业都没有强匹配" in problems
    assert "对接 (p1, e1) 不是本场实现的强匹配" in problems
    assert len(problems) == 5
    dup = assemble_plan(["p4"], ["e3"], Q, limits)
    dup.patents.append("p4")
    dup.objective = 2.0
    assert check_plan(dup, P, Q, limits) == ["专利 p4 在本场出现了 2 次（每个只能出现一次）",
                                             "目标值 2.0000 与本场强匹配得分之和 0.9250 不符"]


def test_round_trip_is_json_safe_and_deterministic():
    plan = solve_session(P, Q, Limits(3, 2, max_per_university=1))
    again = SessionPlan.from_dict(json.loads(json.dumps(plan.to_dict(), ensure_ascii=False)))
    assert again == plan == solve_session(P, Q, Limits(3, 2, max_per_university=1))
    with pytest.raises(ValueError, match="status must be one of"):
        SessionPlan.from_dict({**plan.to_dict(), "status": "done"})

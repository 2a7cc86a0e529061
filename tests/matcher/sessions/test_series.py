"""The series planner: brute force on tiny cases (k=2), coverage recomputed independently, constraints per session."""
from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest

from matcher.sessions.plan import Limits, Pair, PatentInfo, check_plan
from matcher.sessions.series import solve_series, theme_label
from tests.matcher.sessions.test_plan import feasible


def random_series_case(rng: random.Random, n: int, m: int):
    """n patents, m enterprises with one or two demands each; pairs keep each enterprise's best demand."""
    patents = [PatentInfo(f"P{i}", f"专利{i}", rng.choice(["清华大学", "浙江大学", ""]), rng.choice(["H01M", "G06T"]))
               for i in range(n)]
    demands: dict[str, tuple[str, set[str]]] = {}
    scores: dict[tuple[str, str], float] = {}
    for e in range(m):
        for j in range(rng.randint(1, 2)):
            strong = {p.id for p in patents if rng.random() < 0.4}
            demands[f"D{e}-{j}"] = (f"E{e}", strong)
            for p in strong:
                scores[p, f"D{e}-{j}"] = round(rng.uniform(0.9, 1.0), 6)
    best: dict[tuple[str, str], Pair] = {}
    for (p, d), s in sorted(scores.items()):
        e = demands[d][0]
        if (p, e) not in best or s > best[p, e].score:
            best[p, e] = Pair(p, e, d, s, 1)
    limits = Limits(rng.randint(1, 2), rng.randint(1, 2), rng.choice([None, 1]), rng.choice([None, 1]))
    return patents, list(best.values()), demands, limits


def covered(sessions: list[tuple[set[str], set[str]]], demands) -> set[str]:
    return {d for d, (e, strong) in demands.items() if any(p in ps and e in es for ps, es in sessions for p in strong)}


def brute_force(patents, pairs, demands, limits: Limits) -> tuple[int, float]:
    """Best (covered demands, total score) over every assignment of patents to sessions 0/1/none and every
    pair of invitation lists."""
    ids = [p.id for p in patents]
    enterprises = sorted({q.enterprise for q in pairs})
    subsets = [set(c) for r in range(len(enterprises) + 1) for c in itertools.combinations(enterprises, r)]
    best = (0, 0.0)
    for where in itertools.product((None, 0, 1), repeat=len(ids)):
        ps = [{p for p, w in zip(ids, where) if w == s} for s in (0, 1)]
        for es0 in subsets:
            if not feasible(ps[0], es0, patents, pairs, limits, {}):
                continue
            for es1 in subsets:
                if not feasible(ps[1], es1, patents, pairs, limits, {}):
                    continue
                sessions = [(ps[0], es0), (ps[1], es1)]
                score = sum(q.score for q in pairs for p_s, e_s in sessions if q.patent_id in p_s and q.enterprise in e_s)
                best = max(best, (len(covered(sessions, demands)), score))
    return best


@pytest.mark.parametrize("seed", range(20))
def test_series_equals_brute_force(seed):
    rng = random.Random(seed)
    patents, pairs, demands, limits = random_series_case(rng, rng.randint(1, 4), rng.randint(1, 3))
    want_covered, want_score = brute_force(patents, pairs, demands, limits)
    series = solve_series(patents, pairs, 2, limits, demand_matches=demands)
    assert len(series.sessions) == 2
    got = [(set(s.patents), set(s.enterprises)) for s in series.sessions]
    assert series.coverage.covered == len(covered(got, demands)) == want_covered
    total = sum(s.objective for s in series.sessions)
    assert want_score - 1e-4 * max(1, len(pairs)) <= total <= want_score + 1e-9
    assert_valid(series, patents, pairs, limits)


def assert_valid(series, patents, pairs, limits):
    presented = [p for s in series.sessions for p in s.patents]
    assert len(presented) == len(set(presented))  # each patent at most once in the whole series
    for s in series.sessions:
        assert check_plan(s, patents, pairs, limits) == []


def clustered_case(n_per_group: int = 6):
    """Two well separated themes (batteries, imaging), each with its own enterprises."""
    rng = np.random.default_rng(0)
    patents, pairs, vectors = [], [], {}
    for g, (field, word) in enumerate((("H01M", "锂电池"), ("G06T", "图像"))):
        centre = np.zeros(8, dtype=np.float32)
        centre[g] = 1.0
        for i in range(n_per_group):
            pid = f"{field}-{i}"
            patents.append(PatentInfo(pid, f"一种{word}{['正极', '检测', '封装'][i % 3]}方法", f"大学{i % 4}", field))
            vectors[pid] = centre + rng.normal(scale=0.05, size=8).astype(np.float32)
            for e in range(3):
                pairs.append(Pair(pid, f"{field}-E{e}", f"{field}-D{e}", round(0.92 + 0.01 * ((i + e) % 5), 4), 1))
    return patents, pairs, vectors


@pytest.mark.parametrize("use_vectors", [True, False])
def test_themes_do_not_mix_without_neighbours(use_vectors):
    patents, pairs, vectors = clustered_case()
    series = solve_series(patents, pairs, 2, Limits(slots=4, seats=3), vectors if use_vectors else None, neighbours=0)
    for s in series.sessions:
        assert len({p.split("-")[0] for p in s.patents}) == 1, s.patents
    themes = sorted(s.theme for s in series.sessions)
    assert themes[0].startswith("图像") and "G06T" in themes[0]
    assert themes[1].startswith("锂电池") and "H01M" in themes[1]
    assert_valid(series, patents, pairs, Limits(slots=4, seats=3))


def test_coverage_lists_uncovered_and_unmatched():
    patents, pairs, _ = clustered_case(2)
    demands = {d: (e, {q.patent_id for q in pairs if q.demand_id == d}) for q in pairs for d, e in [(q.demand_id, q.enterprise)]}
    demands["lonely"] = ("无名企业", set())
    # One session with one seat: only one enterprise's demands can be covered.
    series = solve_series(patents, pairs, 1, Limits(slots=4, seats=1), demand_matches=demands)
    c = series.coverage
    got = [(set(s.patents), set(s.enterprises)) for s in series.sessions]
    assert c.demands == 7 and c.with_strong_match == 6 and c.unmatched == ["lonely"]
    assert c.covered == len(covered(got, demands)) == 1
    assert sorted(c.uncovered) == sorted(d for d in demands if d != "lonely" and d not in covered(got, demands))
    assert json.loads(json.dumps(series.to_dict(), ensure_ascii=False))["coverage"]["unmatched"] == ["lonely"]


def test_more_sessions_than_patents_and_no_pairs():
    patents, pairs, vectors = clustered_case(1)
    series = solve_series(patents, pairs, 5, Limits(2, 3), vectors)
    assert len(series.sessions) == 5
    assert [s.status for s in series.sessions].count("empty") == 3
    assert solve_series(patents, [], 3, Limits(2, 2)).coverage.with_strong_match == 0


def test_bad_input_is_refused():
    patents, pairs, vectors = clustered_case(1)
    with pytest.raises(ValueError, match="k .* must be"):
        solve_series(patents, pairs, 0, Limits(2, 2))
    with pytest.raises(ValueError, match="no vector for patents"):
        solve_series(patents, pairs, 2, Limits(2, 2), {})
    with pytest.raises(ValueError, match="no pair between them"):
        solve_series(patents, pairs, 2, Limits(2, 2), demand_matches={"d": ("E", {"H01M-0"})})


def test_theme_label_prefers_shared_specific_terms():
    patents, _, _ = clustered_case()
    info = {p.id: p for p in patents}
    ids = [p.id for p in patents]
    assert theme_label([p for p in ids if p.startswith("H01M")], info, ids).startswith("锂电池")
    assert theme_label([], info, ids) == ""

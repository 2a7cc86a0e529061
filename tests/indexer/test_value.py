"""The patent value score: each documented sub-formula, neutral-and-flagged missing data, the weighted total."""
from __future__ import annotations

import math
from datetime import date

import pytest

from indexer.records import Patent
from indexer.value import (
    DIMENSION_WEIGHTS,
    FACTOR_WEIGHTS,
    NEUTRAL,
    count_claims,
    patent_value,
    remaining_term_factor,
)

TODAY = date(2026, 1, 1)


def patent(**fields) -> Patent:
    return Patent(id="CN1A", title="一种锂电池防爆结构", abstract="一种锂电池防爆结构，包括泄压阀。", **fields)


def test_weights_sum_to_one() -> None:
    assert math.isclose(sum(DIMENSION_WEIGHTS.values()), 1.0)
    assert all(math.isclose(sum(w.values()), 1.0) for w in FACTOR_WEIGHTS.values())


def test_a_bare_record_is_neutral_and_every_factor_is_flagged() -> None:
    value = patent_value(patent(), TODAY)
    assert value.total == NEUTRAL
    assert len(value.missing) == 7 and "legal.remaining_term" in value.missing


def test_full_record_components_and_total() -> None:
    p = patent(
        legal_status="有效", patent_type="发明", application_date=date(2016, 1, 1),  # 10 of 20 years left
        claims="1.一种电池，包括壳体。2.根据权利要求1所述的电池。3.根据权利要求2所述的电池。4.一种方法。",
        ipc=["H01M10/0525", "H01M2/12", "B60L58/10"], citation_count=3,
        transfer_count=1, licence_count=1, pledge_count=0, applicant_type="university",
    )
    value = patent_value(p, TODAY)
    legal = value.dimension("legal")
    assert [f.score for f in legal.factors] == [100.0, pytest.approx(50.0, abs=0.1), 40.0]  # status, term, 4 claims
    technical = value.dimension("technical")
    citations = 20 + 80 * math.log(4) / math.log(11)
    assert [f.score for f in technical.factors] == [60.0, round(citations, 1)]  # 2 subclasses, 3 citations
    economic = value.dimension("economic")
    assert [f.score for f in economic.factors] == [75.0, 70.0]  # 40 + 20 + 15; university
    assert value.missing == []
    expected = 0.4 * legal.score + 0.3 * technical.score + 0.3 * economic.score
    assert value.total == pytest.approx(expected, abs=0.05)
    assert value.to_dict()["dimensions"][0]["factors"][0]["basis"] == "有效"


@pytest.mark.parametrize(("patent_type", "filed", "term"), [
    ("发明", date(2020, 1, 1), 20),
    ("实用新型", date(2020, 1, 1), 10),
    ("外观设计", date(2021, 6, 1), 15),  # the fourth amendment of the Patent Law
    ("外观设计", date(2021, 5, 31), 10),
])
def test_remaining_term_by_type(patent_type: str, filed: date, term: int) -> None:
    factor = remaining_term_factor(patent_type, filed, "有效", filed)
    assert factor.score == 100.0 and factor.basis.endswith(f"of {term} years left")


def test_lapsed_patents_have_no_term_and_expired_terms_floor_at_zero() -> None:
    assert remaining_term_factor("发明", date(2024, 1, 1), "失效", TODAY).score == 0.0
    assert remaining_term_factor("实用新型", date(2000, 1, 1), "有效", TODAY).score == 0.0
    missing = remaining_term_factor("unknown", date(2020, 1, 1), "有效", TODAY)
    assert missing.missing and missing.score == NEUTRAL


def test_claim_counting() -> None:
    assert count_claims("1.一种盒子，包括内盒（1）和4G/5G模块。") is None  # CNIPA's 主权项: the first claim only
    assert count_claims("1.一种盒子。2.根据权利要求1所述的盒子。\n3、根据权利要求2所述的盒子。") == 3
    assert patent_value(patent(claim_count=25), TODAY).dimension("legal").factors[2].score == 100.0  # capped at 10


def test_transactions_cap_and_unknown_history() -> None:
    assert patent_value(patent(licence_count=9), TODAY).dimension("economic").factors[0].score == 100.0
    unknown = patent_value(patent(), TODAY).dimension("economic").factors[0]
    assert unknown.missing and unknown.score == NEUTRAL
    zero = patent_value(patent(transfer_count=0), TODAY).dimension("economic").factors[0]
    assert not zero.missing and zero.score == 40.0  # known to have none: below neutral


def test_status_scores() -> None:
    scores = {s: patent_value(patent(legal_status=s), TODAY).dimension("legal").factors[0].score
              for s in ("有效", "审中", "失效", "驳回", "撤回")}
    assert scores == {"有效": 100.0, "审中": 60.0, "失效": 0.0, "驳回": 0.0, "撤回": 0.0}

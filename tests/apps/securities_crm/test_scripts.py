"""The bundle's restricted-Python scripts, run through the real sandbox with the bundle's own
reference data (score bands, suitability matrix, parameters) read from its fixture files."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from engine.sandbox import SandboxCompileError, compile_script

BUNDLE = Path(__file__).resolve().parents[3] / "apps" / "securities_crm"
TODAY = date(2026, 11, 20)


def fixture_records(name: str) -> list[dict]:
    return yaml.safe_load((BUNDLE / "fixtures" / name).read_text("utf-8"))["records"]


def script(name: str):
    return compile_script((BUNDLE / "scripts" / f"{name}.py").read_text("utf-8"), f"securities_crm.{name}")


@pytest.fixture(scope="module")
def bands():
    return fixture_records("risk_bands.yaml")


@pytest.fixture(scope="module")
def matrix():
    return fixture_records("suitability_matrix.yaml")


@pytest.fixture(scope="module")
def params():
    rows = {r["code"]: r["value"] for r in fixture_records("parameters.yaml")}
    return {k: rows[k] for k in ("expired_assessment_max_rating", "lowest_category_max_rating")}


@pytest.fixture(scope="module")
def questionnaire():
    return fixture_records("questionnaire.yaml")[0]


# -- scoring -----------------------------------------------------------------------------------------

def one_question(score_values, lowest_value=None):
    """A one-question questionnaire whose options score exactly the given points (band edges)."""
    opts = [{"value": f"S{s}", "score": s, "text_zh": str(s), "text_en": str(s)} for s in score_values]
    if lowest_value is not None:
        opts.append({"value": "L", "score": lowest_value, "forces_lowest": True, "text_zh": "不能承受任何损失",
                     "text_en": "cannot bear any loss"})
    return {"code": "T", "version_no": 1, "band_scale": "CITIC",
            "questions": [{"code": "Q1", "text_zh": "测试", "text_en": "test", "options": opts}]}


EDGES = [(0, "C1", True), (1, "C1", False), (19, "C1", False), (20, "C2", False), (36, "C2", False),
         (37, "C3", False), (53, "C3", False), (54, "C4", False), (82, "C4", False), (83, "C5", False),
         (100, "C5", False)]


@pytest.mark.parametrize("score,level,lowest", EDGES)
def test_citic_band_edges(bands, score, level, lowest):
    run = script("score_questionnaire")
    q = one_question([s for s, _, _ in EDGES])
    out = run.execute({"questionnaire": q, "answers": {"Q1": f"S{score}"}, "bands": bands,
                       "override_lowest": False})["result"]
    assert out["ok"] and out["score"] == score
    assert (out["risk_level"], out["lowest_category"]) == (level, lowest)


def test_even_scale_is_configurable(bands):
    """The questionnaire names its band scale: the same 37 points are C2 on the even 20-point scale."""
    q = one_question([37])
    q["band_scale"] = "EVEN20"
    out = script("score_questionnaire").execute({"questionnaire": q, "answers": {"Q1": "S37"}, "bands": bands,
                                                 "override_lowest": False})["result"]
    assert out["risk_level"] == "C2"


def test_lowest_category_option_overrides_a_high_score(bands, questionnaire):
    answers = {q["code"]: max(q["options"], key=lambda o: o["score"])["value"] for q in questionnaire["questions"]}
    run = script("score_questionnaire")
    top = run.execute({"questionnaire": questionnaire, "answers": answers, "bands": bands,
                       "override_lowest": False})["result"]
    assert (top["score"], top["risk_level"], top["lowest_category"]) == (100, "C5", False)
    answers["Q10"] = "A"            # "cannot bear any loss"
    out = run.execute({"questionnaire": questionnaire, "answers": answers, "bands": bands,
                       "override_lowest": False})["result"]
    assert out["risk_level"] == "C1" and out["lowest_category"] is True
    assert any(r["code"] == "forces_lowest" for r in out["reasons"])
    # the snapshot keeps the question and answer texts as answered
    snap = {a["question"]: a for a in out["answers"]}
    assert snap["Q10"]["answer_zh"] == "不能承受任何损失" and snap["Q10"]["score"] == 0


def test_kyc_override_flag_forces_lowest(bands, questionnaire):
    answers = {q["code"]: q["options"][1]["value"] for q in questionnaire["questions"]}
    out = script("score_questionnaire").execute({"questionnaire": questionnaire, "answers": answers, "bands": bands,
                                                 "override_lowest": True})["result"]
    assert out["lowest_category"] is True and out["risk_level"] == "C1" and out["score"] > 0


def test_unanswered_and_unknown_questions_are_reported(bands, questionnaire):
    answers = {"Q01": "B", "Q02": "Z", "Q99": "A"}
    out = script("score_questionnaire").execute({"questionnaire": questionnaire, "answers": answers, "bands": bands,
                                                 "override_lowest": False})["result"]
    assert out["ok"] is False and out["risk_level"] is None
    codes = {(p["field"], p["code"]) for p in out["problems"]}
    assert ("Q02", "bad_option") in codes and ("Q99", "unknown_question") in codes and ("Q03", "unanswered") in codes
    assert all(p["message"]["zh-CN"] and p["message"]["en"] for p in out["problems"])


# -- suitability -------------------------------------------------------------------------------------

def customer(**kw):
    base = {"investor_class": "ordinary", "risk_level": "C3", "lowest_category": False,
            "assessment_expiry": "2027-06-30", "horizon": "long", "varieties": ["equity", "fixed_income", "hybrid"]}
    base.update(kw)
    return base


def product(rating, **kw):
    base = {"code": "P", "name": "p", "risk_rating": rating, "horizon": "medium", "variety": "equity"}
    base.update(kw)
    return base


def match(matrix, params, c, p, today=TODAY):
    return script("suitability_match").execute({"customer": c, "product": p, "matrix": matrix, "today": today,
                                                "params": params})["result"]


def test_c2_buying_r4_needs_the_signed_warning(matrix, params):
    out = match(matrix, params, customer(risk_level="C2"), product("R4"))
    assert out["result"] == "warn" and out["warning_required"] is True
    assert out["matrix_decision"] == "warn"
    reason = next(r for r in out["reasons"] if r["code"] == "level_above")
    assert "特别风险警示书" in reason["message"]["zh-CN"] and "warning" in reason["message"]["en"]


def test_lowest_category_is_refused_above_r1(matrix, params):
    c = customer(risk_level="C1", lowest_category=True)
    assert match(matrix, params, c, product("R2"))["result"] == "refuse"
    assert match(matrix, params, c, product("R1", variety="cash", horizon="short"))["result"] == "match"


def test_expired_assessment_blocks_above_r1(matrix, params):
    c = customer(risk_level="C5", assessment_expiry="2026-11-19")
    out = match(matrix, params, c, product("R3"))
    assert out["result"] == "refuse"
    assert any(r["code"] == "assessment_expired" for r in out["reasons"])
    assert match(matrix, params, c, product("R1", variety="cash", horizon="short"))["result"] == "match"
    # valid on its last day
    assert match(matrix, params, customer(risk_level="C5", assessment_expiry="2026-11-20"), product("R3"))["result"] == "match"


def test_horizon_and_variety_mismatch_warn(matrix, params):
    out = match(matrix, params, customer(risk_level="C5", horizon="short"), product("R3", horizon="long"))
    assert out["result"] == "warn" and [r["code"] for r in out["reasons"] if r["severity"] == "warn"] == ["horizon_mismatch"]
    out = match(matrix, params, customer(risk_level="C5", varieties=["fixed_income"]), product("R3"))
    assert out["result"] == "warn" and any(r["code"] == "variety_mismatch" for r in out["reasons"])


def test_professionals_may_buy_r5_and_matrix_is_data(matrix, params):
    assert match(matrix, params, customer(investor_class="professional_b", risk_level=None), product("R5"))["result"] == "match"
    # change the reference data, not the code: make C3 x R4 a refusal
    stricter = [dict(r, decision="refuse") if r["code"] == "C3-R4" else r for r in matrix]
    assert match(stricter, params, customer(), product("R4"))["result"] == "refuse"


# -- identity numbers --------------------------------------------------------------------------------

@pytest.mark.parametrize("number,valid,sex", [("11010519491231002X", True, "F"), ("110105194912310021", False, "F"),
                                              ("440524188001010014", False, "M"), ("11010519490231002X", False, "F")])
def test_identity_number_check_digit(number, valid, sex):
    out = script("id_check").execute({"number": number, "birthday": None, "gender": None, "today": TODAY})["result"]
    assert out["valid"] is valid and out["gender"] == sex


def test_identity_number_must_match_birthday_and_sex():
    out = script("id_check").execute({"number": "11010519491231002X", "birthday": "1950-01-01", "gender": "M",
                                      "today": TODAY})["result"]
    assert {p["code"] for p in out["problems"]} == {"birthday_mismatch", "gender_mismatch"}
    bad = script("id_check").execute({"number": "12345", "birthday": None, "gender": None, "today": None})["result"]
    assert bad["valid"] is False and bad["problems"][0]["code"] == "format"


def test_scripts_compile_under_the_sandbox_policy():
    for path in (BUNDLE / "scripts").glob("*.py"):
        try:
            script(path.stem)
        except SandboxCompileError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{path.name}: {exc.message}")

"""Portfolio analytics scripts of the CRM bundle, run in the sandbox: Brinson-Fachler effects that
add up exactly to the active return, HHI / N_eff on a known portfolio, return against a benchmark
with volatility and drawdown, and allocation proposals that use suitable products only."""
from __future__ import annotations

from decimal import Decimal

import pytest

from engine.sandbox import compile_script
from tests.apps.securities_crm.conftest import BUNDLE
from tests.apps.securities_crm.test_demo import items

D = Decimal


def script(name: str):
    return compile_script((BUNDLE / "scripts" / f"analytics_{name}.py").read_text("utf-8"))


def attribution(portfolio, benchmark):
    return script("attribution").execute({"portfolio": portfolio, "benchmark": benchmark})["result"]


def test_brinson_fachler_worked_example():
    portfolio = {"equity": {"weight": "0.50", "return": "0.10"}, "bonds": {"weight": "0.30", "return": "0.04"},
                 "cash": {"weight": "0.20", "return": "-0.02"}}
    benchmark = {"equity": {"weight": "0.40", "return": "0.08"}, "bonds": {"weight": "0.40", "return": "0.05"},
                 "cash": {"weight": "0.20", "return": "0.01"}}
    r = attribution(portfolio, benchmark)
    assert r["portfolio_return"] == D("0.058") and r["benchmark_return"] == D("0.054")
    assert r["active_return"] == D("0.004")
    seg = {s["segment"]: s for s in r["segments"]}
    assert seg["equity"]["allocation"] == D("0.0026")      # (0.5-0.4)(0.08-0.054)
    assert seg["equity"]["selection"] == D("0.008")        # 0.4(0.10-0.08)
    assert seg["equity"]["interaction"] == D("0.002")      # 0.1(0.02)
    assert seg["bonds"]["allocation"] == D("0.0004")
    assert seg["bonds"]["selection"] == D("-0.004")
    assert seg["bonds"]["interaction"] == D("0.001")
    assert seg["cash"]["allocation"] == 0 and seg["cash"]["selection"] == D("-0.006")
    assert (r["allocation"], r["selection"], r["interaction"]) == (D("0.0030"), D("-0.002"), D("0.003"))
    assert r["allocation"] + r["selection"] + r["interaction"] == r["active_return"]
    assert r["check"] is True


def test_effects_sum_exactly_with_awkward_numbers():
    """Thirds and many digits: binary floats leave a residual, Decimal does not."""
    portfolio = {f"ind{k}": {"weight": w, "return": ret} for k, (w, ret) in enumerate(
        [("0.3333333333", "0.0712345678"), ("0.3333333333", "-0.0398765432"), ("0.3333333334", "0.1234567891")])}
    benchmark = {"ind0": {"weight": "0.2", "return": "0.0523456789"}, "ind1": {"weight": "0.5", "return": "-0.011"},
                 "ind3": {"weight": "0.3", "return": "0.0301"}}
    r = attribution(portfolio, benchmark)
    total = sum((s["allocation"] + s["selection"] + s["interaction"] for s in r["segments"]), D(0))
    assert total == r["active_return"] == r["portfolio_return"] - r["benchmark_return"]
    assert r["check"] is True
    assert {s["segment"] for s in r["segments"]} == {"ind0", "ind1", "ind2", "ind3"}


def test_attribution_refuses_weights_that_do_not_sum_to_one():
    r = attribution({"a": {"weight": "0.6", "return": "0.1"}}, {"a": {"weight": "1", "return": "0.1"}})
    assert r["problems"] and r["problems"][0]["field"] == "portfolio"
    assert "0.6" in r["problems"][0]["message"]


def portfolio(holdings, values=(), benchmark=(), params=None):
    products = [{"code": "600519", "industry": "食品饮料", "asset_class": "equity"},
                {"code": "000858", "industry": "食品饮料", "asset_class": "equity"},
                {"code": "601318", "industry": "非银金融", "asset_class": "equity"},
                {"code": "511990", "industry": None, "asset_class": "cash"}]
    return script("portfolio").execute({"holdings": holdings, "products": products, "values": list(values),
                                        "benchmark": list(benchmark), "params": params or {}})["result"]


def test_hhi_and_effective_number_on_a_known_portfolio():
    r = portfolio([{"security_code": "600519", "market_value": "500000"},
                   {"security_code": "601318", "market_value": "300000"},
                   {"security_code": "511990", "market_value": "200000.00"}])
    assert r["hhi"] == D("0.38")                     # 0.5^2 + 0.3^2 + 0.2^2
    assert abs(r["n_eff"] - D("2.631578947368421052631578947")) < D("1e-20")
    flagged = {f.get("security_code") for f in r["flags"] if f["code"] == "single_name"}
    assert flagged == {"600519", "601318"}           # 20% is not above the 20% line
    assert any(f["code"] == "hhi" for f in r["flags"])
    ind = {i["industry"]: i["weight"] for i in r["industries"]}
    assert ind == {"食品饮料": D("0.5"), "非银金融": D("0.3"), "现金/货币": D("0.2")}


def test_industry_concentration_and_configurable_flags():
    r = portfolio([{"security_code": "600519", "market_value": "400000"},
                   {"security_code": "000858", "market_value": "400000"},
                   {"security_code": "601318", "market_value": "200000"}],
                  params={"hhi_flag": "0.5", "single_name_flag": "0.45"})
    assert r["hhi"] == D("0.36") and r["hhi_industry"] == D("0.68")
    assert r["flags"] == []                          # raised lines: nothing flagged


def test_return_against_the_benchmark_volatility_and_drawdown():
    days = ["2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08"]
    values = [{"date": d, "value": v} for d, v in zip(days, ["100", "110", "99", "121"])]
    csi300 = [{"date": d, "close": c} for d, c in zip(days, ["4000", "4040", "3999.6", "4080"])]
    r = portfolio([], values, csi300)["returns"]
    assert r["portfolio_return"] == pytest.approx(0.21)
    assert r["benchmark_return"] == pytest.approx(0.02)
    assert r["active_return"] == pytest.approx(0.19)
    assert r["max_drawdown"] == pytest.approx(99 / 110 - 1)
    rets = [0.1, 99 / 110 - 1, 121 / 99 - 1]
    mean = sum(rets) / 3
    sd = (sum((x - mean) ** 2 for x in rets) / 2) ** 0.5
    assert r["volatility"] == pytest.approx(sd * 252 ** 0.5)
    assert r["beta"] is not None and r["beta"] > 1   # the portfolio swings harder than the index
    assert r["tracking_error"] > 0 and r["information_ratio"] > 0


def proposal(crm, customer, amount="1000000.00"):
    data = {"customer": customer, "models": items(crm, "model_allocation"), "products": items(crm, "product"),
            "matrix": items(crm, "suitability_rule"), "amount": amount, "params": {}}
    return script("allocation").execute(data)["result"], data


@pytest.mark.parametrize("level", ["C1", "C2", "C3", "C4", "C5"])
def test_allocation_proposal_uses_only_suitable_products(crm, level):
    r, data = proposal(crm, {"risk_level": level, "lowest_category": False})
    assert not r["problems"]
    allowed = {(m["customer_level"], m["product_rating"]) for m in data["matrix"] if m["decision"] == "allow"}
    model = next(m for m in data["models"] if m["risk_level"] == level)
    by_code = {p["code"]: p for p in data["products"]}
    assert [line for line in r["lines"] if line["asset_class"] == "cash" and line["code"]], "cash products proposed"
    for line in r["lines"]:
        if line["code"] is None:
            continue
        p = by_code[line["code"]]
        assert p["status"] == "on_sale"
        assert (level, p["risk_rating"]) in allowed
        assert int(p["risk_rating"][1]) <= int(model["max_product_rating"][1])
        assert not p.get("access_gate")
    assert sum(line["amount"] for line in r["lines"]) == D("1000000.00")
    assert sum(line["weight"] for line in r["lines"]) == 1
    equity = sum(line["weight"] for line in r["lines"] if line["asset_class"] == "equity")
    if level == "C2":      # no equity or alternatives product is `allow` for C2: their weight waits in cash
        assert r["moved_to_cash"] == ["equity", "alternatives"] and equity == 0
    else:
        assert r["moved_to_cash"] == [] and equity == D(model["equity_pct"]) / 100
    if level in ("C4", "C5"):
        assert {line["risk_rating"] for line in r["lines"] if line["asset_class"] == "equity"} & {"R3", "R4"}
    assert r["disclaimer"]["zh-CN"] and r["disclaimer"]["en"]


def test_lowest_category_gets_r1_products_only(crm):
    r, data = proposal(crm, {"risk_level": "C1", "lowest_category": True}, "50000")
    ratings = {line["risk_rating"] for line in r["lines"] if line["code"]}
    assert ratings == {"R1"}
    assert sum(line["amount"] for line in r["lines"]) == D("50000")


def test_allocation_names_a_bad_input(crm):
    r, _ = proposal(crm, {"risk_level": "C9"})
    assert r["problems"][0]["field"] == "risk_level"

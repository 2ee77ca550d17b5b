# An asset-allocation proposal (投资建议) for one customer: the model allocation of the customer's
# risk level (model_allocation reference rows) filled with *suitable* products only -- the
# suitability matrix must say `allow` for the customer's level (C1L for the lowest category) and
# the product's rating, the rating may not exceed the model's max_product_rating, and products
# behind an access gate or a high-risk procedure are left out (they need their own qualification
# step). A class with no suitable product moves its weight to cash, and the proposal says so.
# Amounts are Decimal, rounded to the cent, and add up exactly to the amount invested.
#
# Inputs: customer {risk_level, lowest_category}, models (model_allocation rows), products
# (product rows), matrix (suitability_rule rows), amount (the sum to allocate), params
# {max_products_per_class: 3}. Result: {risk_level, lines: [...], moved_to_cash, disclaimer,
# problems}.

CLASSES = [("cash", "cash_pct"), ("fixed_income", "fixed_income_pct"), ("equity", "equity_pct"),
           ("alternatives", "alternatives_pct")]
CENT = Decimal("0.01")
WEIGHT_STEP = Decimal("0.000001")
DISCLAIMER = {
    "zh-CN": "本建议依据您的风险承受能力等级与公司模型配置生成，仅供参考，不构成收益承诺。投资有风险，入市需谨慎。",
    "en": "This proposal follows your risk tolerance level and the firm's model allocation. It is for reference only "
          "and promises no return. Investing involves risk.",
}


def rating_no(r):
    return int(str(r or "R9")[1:]) if str(r or "").startswith("R") else 9


def suitable(customer, product, model, matrix):
    level = "C1L" if customer.get("lowest_category") else customer.get("risk_level")
    if product.get("status") not in (None, "on_sale"):
        return False
    if product.get("access_gate") or product.get("high_risk_procedure"):
        return False
    if rating_no(product.get("risk_rating")) > rating_no(model.get("max_product_rating")):
        return False
    for row in matrix:
        if row.get("customer_level") == level and row.get("product_rating") == product.get("risk_rating"):
            return row.get("decision") == "allow"
    return False


def propose(customer, models, products, matrix, amount, params):
    params = params or {}
    per_class = int(params.get("max_products_per_class", 3))
    level = customer.get("risk_level")
    model = None
    for m in models:
        if m.get("risk_level") == level:
            model = m
    if model is None:
        return {"problems": [{"field": "risk_level", "message": "no model allocation for risk level `" + str(level) + "`"}]}
    if amount is None or amount == "":
        return {"problems": [{"field": "amount", "message": {"zh-CN": "客户资产总额为空，无法生成配置建议",
                                                             "en": "The customer's AUM is empty: no proposal"}}]}
    total = Decimal(str(amount))
    if total <= 0:
        return {"problems": [{"field": "amount", "message": {"zh-CN": "配置金额须大于零（客户资产总额为零）",
                                                             "en": "`amount` must be positive (the customer's AUM is zero)"}}]}
    if customer.get("lowest_category"):
        # the lowest category may hold R1 only: everything in cash and fixed income at R1
        model = dict(model, max_product_rating="R1")
    weights = {}
    for cls, fld in CLASSES:
        weights[cls] = Decimal(str(model.get(fld) or 0)) / 100
    picks = {}
    for cls, fld in CLASSES:
        ok = [p for p in products if p.get("asset_class") == cls and suitable(customer, p, model, matrix)]
        ok = sorted(ok, key=lambda p: (-rating_no(p.get("risk_rating")), str(p.get("code"))))
        picks[cls] = ok[:per_class]
    moved = []
    for cls, fld in CLASSES:
        if weights[cls] > 0 and not picks[cls] and cls != "cash":
            weights["cash"] = weights["cash"] + weights[cls]
            moved.append(cls)
            weights[cls] = Decimal(0)
    lines = []
    for cls, fld in CLASSES:
        w = weights[cls]
        if w <= 0:
            continue
        chosen = picks[cls]
        if not chosen:
            lines.append({"asset_class": cls, "product": None, "code": None, "risk_rating": None, "weight": w})
            continue
        # equal shares to 6 decimals, the rounding remainder on the last product: weights add up to 1 exactly
        share = (w / len(chosen)).quantize(WEIGHT_STEP)
        for k, p in enumerate(chosen):
            wk = share if k < len(chosen) - 1 else w - share * (len(chosen) - 1)
            lines.append({"asset_class": cls, "product": p.get("id"), "code": p.get("code"), "name": p.get("name"),
                          "risk_rating": p.get("risk_rating"), "weight": wk})
    allocated = Decimal(0)
    for k, line in enumerate(lines):
        if k == len(lines) - 1:
            line["amount"] = total - allocated
        else:
            line["amount"] = (total * line["weight"]).quantize(CENT)
            allocated += line["amount"]
    return {"risk_level": level, "lowest_category": bool(customer.get("lowest_category")),
            "max_product_rating": model.get("max_product_rating"), "benchmark": model.get("benchmark"),
            "lines": lines, "moved_to_cash": moved, "amount": total, "disclaimer": DISCLAIMER, "problems": []}


# Entry point: the caller passes customer, models, products, matrix, amount and params; the script leaves `result`.
result = propose(customer, models, products, matrix, amount, params)

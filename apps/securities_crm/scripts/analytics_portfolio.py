# Portfolio analytics for the customer 360 page and the advisor: industry distribution,
# concentration (HHI and the effective number of positions), return against a benchmark (the
# CSI 300 by default), volatility and maximum drawdown. Definitions: domain reference, section 4.
#
# Inputs:
#   holdings  -- [{security_code, market_value}] (holding records; market_value may be text)
#   products  -- [{code, industry, asset_class}] (product records; an unknown industry is "其他/Other")
#   values    -- the portfolio's value series [{date, value}] in date order (may be empty)
#   benchmark -- the benchmark's closing levels [{date, close}] (may be empty)
#   params    -- {hhi_flag: 0.25, single_name_flag: 0.2, trading_days: 252} (parameter rows;
#                missing keys take these defaults)
# Result: {industries, positions, hhi, hhi_industry, n_eff, flags, returns} -- weights and HHI as
# Decimal (exact), return statistics as floats.


def to_dec(v):
    if v is None or v == "":
        return Decimal(0)
    return Decimal(str(v))


def weights_of(amounts):
    total = sum(amounts.values(), Decimal(0))
    if total <= 0:
        return {}
    return {k: v / total for k, v in amounts.items() if v != 0}


def hhi_of(weights):
    return sum([w * w for w in weights.values()], Decimal(0))


def industry_distribution(holdings, products):
    info = {p["code"]: p for p in products}
    by_industry, by_position = {}, {}
    for h in holdings:
        mv = to_dec(h.get("market_value"))
        if mv <= 0:
            continue
        p = info.get(h["security_code"]) or {}
        ind = p.get("industry") or ("现金/货币" if p.get("asset_class") == "cash" else "其他")
        by_industry[ind] = by_industry.get(ind, Decimal(0)) + mv
        by_position[h["security_code"]] = by_position.get(h["security_code"], Decimal(0)) + mv
    return by_industry, by_position


def period_returns(series, key):
    out = []
    for k in range(1, len(series)):
        prev, cur = to_dec(series[k - 1][key]), to_dec(series[k][key])
        if prev > 0:
            out.append(float(cur / prev - 1))
    return out


def max_drawdown(series, key):
    peak, worst = None, 0.0
    for row in series:
        v = float(to_dec(row[key]))
        if peak is None or v > peak:
            peak = v
        if peak and peak > 0:
            worst = min(worst, v / peak - 1)
    return worst


def stdev(xs):
    if len(xs) < 2:
        return None
    m = sum(xs) / len(xs)
    return math.sqrt(sum([(x - m) ** 2 for x in xs]) / (len(xs) - 1))


def versus(values, benchmark, days):
    rp = period_returns(values, "value")
    out = {"portfolio_return": None, "benchmark_return": None, "active_return": None, "volatility": None,
           "max_drawdown": max_drawdown(values, "value") if len(values) >= 2 else None, "beta": None,
           "tracking_error": None, "information_ratio": None}
    if len(values) >= 2:
        out["portfolio_return"] = float(to_dec(values[-1]["value"]) / to_dec(values[0]["value"]) - 1)
    sd = stdev(rp)
    out["volatility"] = sd * math.sqrt(days) if sd is not None else None
    closes = {row["date"]: row["close"] for row in benchmark}
    common = [row for row in values if row["date"] in closes]
    if len(common) >= 2:
        bench = [{"date": row["date"], "close": closes[row["date"]]} for row in common]
        rb = period_returns(bench, "close")
        rpc = period_returns(common, "value")
        out["benchmark_return"] = float(to_dec(bench[-1]["close"]) / to_dec(bench[0]["close"]) - 1)
        out["active_return"] = float(to_dec(common[-1]["value"]) / to_dec(common[0]["value"]) - 1) - \
            out["benchmark_return"]
        n = min(len(rb), len(rpc))
        if n >= 2:
            mb = sum(rb[:n]) / n
            mp = sum(rpc[:n]) / n
            cov = sum([(rpc[k] - mp) * (rb[k] - mb) for k in range(n)]) / (n - 1)
            var = sum([(rb[k] - mb) ** 2 for k in range(n)]) / (n - 1)
            out["beta"] = cov / var if var > 0 else None
            te = stdev([rpc[k] - rb[k] for k in range(n)])
            if te:
                out["tracking_error"] = te * math.sqrt(days)
                out["information_ratio"] = out["active_return"] / out["tracking_error"]
    return out


def analyse(holdings, products, values, benchmark, params):
    params = params or {}
    hhi_flag = to_dec(params.get("hhi_flag", "0.25"))
    single_flag = to_dec(params.get("single_name_flag", "0.2"))
    days = int(params.get("trading_days", 252))
    by_industry, by_position = industry_distribution(holdings, products)
    wi, wp = weights_of(by_industry), weights_of(by_position)
    hhi = hhi_of(wp)
    flags = []
    if wp and hhi > hhi_flag:
        flags.append({"code": "hhi", "message": {"zh-CN": "持仓集中度（HHI）高于 " + str(hhi_flag),
                                                  "en": "position concentration (HHI) above " + str(hhi_flag)}})
    for code, w in sorted(wp.items()):
        if w > single_flag:
            flags.append({"code": "single_name", "security_code": code,
                          "message": {"zh-CN": code + " 占组合 " + str(round(float(w) * 100, 1)) + "%",
                                      "en": code + " is " + str(round(float(w) * 100, 1)) + "% of the portfolio"}})
    industries = [{"industry": k, "market_value": by_industry[k], "weight": wi[k]}
                  for k in sorted(wi, key=lambda k: (-wi[k], k))]
    positions = [{"security_code": k, "market_value": by_position[k], "weight": wp[k]}
                 for k in sorted(wp, key=lambda k: (-wp[k], k))]
    return {"industries": industries, "positions": positions, "hhi": hhi, "hhi_industry": hhi_of(wi),
            "n_eff": (Decimal(1) / hhi) if hhi > 0 else None, "flags": flags,
            "returns": versus(values or [], benchmark or [], days)}


# Entry point: the caller passes holdings, products, values, benchmark and params; the script leaves `result`.
result = analyse(holdings, products, values, benchmark, params)

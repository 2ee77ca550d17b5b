# Brinson-Fachler attribution of a portfolio's active return against a benchmark, by segment
# (SW level-1 industries or asset classes), in Decimal so the effects add up *exactly*:
#
#   allocation  A_i = (w_p,i - w_b,i) * (R_b,i - R_b)
#   selection   S_i = w_b,i * (R_p,i - R_b,i)
#   interaction I_i = (w_p,i - w_b,i) * (R_p,i - R_b,i)
#   sum_i (A_i + S_i + I_i) = R_p - R_b   (when both weight sets sum to 1)
#
# Binary floats would leave a residual of a few 1e-17 and a report that "does not add up"; decimal
# inputs with a handful of digits multiply and add without rounding within 28 significant digits.
# (Some public repositories get these formulas wrong -- see the domain reference, section 4.)
#
# Inputs: `portfolio` and `benchmark`, each {segment: {"weight": w, "return": r}} (numbers or
# decimal strings; a segment missing on one side has weight 0 there and, for its return, the other
# side's return). Result: {"segments": [...], "allocation", "selection", "interaction",
# "portfolio_return", "benchmark_return", "active_return", "check"} with Decimal values, or
# {"problems": [...]} naming the input that is wrong.


def dec(value, where, problems):
    if value is None:
        return Decimal(0)
    try:
        return Decimal(str(value))
    except Exception:
        problems.append({"field": where, "message": "`" + where + "`: `" + str(value) + "` is not a number"})
        return Decimal(0)


def side(data, name, problems):
    out = {}
    if not isinstance(data, dict) or not data:
        problems.append({"field": name, "message": "`" + name + "`: expected {segment: {weight, return}}"})
        return out
    for seg, row in data.items():
        if not isinstance(row, dict):
            problems.append({"field": name + "." + str(seg), "message": "expected {weight, return}"})
            continue
        out[seg] = {"weight": dec(row.get("weight"), name + "." + str(seg) + ".weight", problems),
                    "return": row.get("return")}
    total = sum([r["weight"] for r in out.values()], Decimal(0))
    if out and total != Decimal(1):
        problems.append({"field": name, "message": "`" + name + "`: weights sum to " + str(total)
                         + ", not 1 (add a cash segment for the rest)"})
    return out


def brinson_fachler(portfolio, benchmark):
    problems = []
    p = side(portfolio, "portfolio", problems)
    b = side(benchmark, "benchmark", problems)
    if problems:
        return {"problems": problems}
    segments = sorted(set(p) | set(b))
    rows = {}
    for seg in segments:
        wp = p[seg]["weight"] if seg in p else Decimal(0)
        wb = b[seg]["weight"] if seg in b else Decimal(0)
        rp_raw = p[seg]["return"] if seg in p else None
        rb_raw = b[seg]["return"] if seg in b else None
        rp = dec(rp_raw if rp_raw is not None else rb_raw, "portfolio." + seg + ".return", problems)
        rb = dec(rb_raw if rb_raw is not None else rp_raw, "benchmark." + seg + ".return", problems)
        rows[seg] = (wp, wb, rp, rb)
    if problems:
        return {"problems": problems}
    r_p = sum([wp * rp for wp, wb, rp, rb in rows.values()], Decimal(0))
    r_b = sum([wb * rb for wp, wb, rp, rb in rows.values()], Decimal(0))
    out = []
    ta, ts, ti = Decimal(0), Decimal(0), Decimal(0)
    for seg in segments:
        wp, wb, rp, rb = rows[seg]
        a = (wp - wb) * (rb - r_b)
        s = wb * (rp - rb)
        i = (wp - wb) * (rp - rb)
        ta, ts, ti = ta + a, ts + s, ti + i
        out.append({"segment": seg, "portfolio_weight": wp, "benchmark_weight": wb, "portfolio_return": rp,
                    "benchmark_return": rb, "allocation": a, "selection": s, "interaction": i, "total": a + s + i})
    active = r_p - r_b
    return {"segments": out, "allocation": ta, "selection": ts, "interaction": ti,
            "portfolio_return": r_p, "benchmark_return": r_b, "active_return": active,
            "check": ta + ts + ti == active}


# Entry point: the caller passes `portfolio` and `benchmark`; the script leaves `result`.
result = brinson_fachler(portfolio, benchmark)

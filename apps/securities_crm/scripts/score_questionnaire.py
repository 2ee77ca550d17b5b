# Score a risk questionnaire and derive the risk level (C1-C5) with the C1 lowest-category override.
#
# Restricted Python, run in the sandbox. Plain functions over data passed in, no imports:
#   questionnaire: {"code", "version_no", "band_scale", "questions": [{"code", "text_zh", "text_en",
#                   "options": [{"value", "score", "forces_lowest", "text_zh", "text_en"}]}]}
#   answers:       {question code: chosen option value}
#   bands:         risk_band rows [{"code", "scale", "level", "lowest_category", "min_score", "max_score"}]
#   override_lowest: True when KYC found a legal condition (no full civil capacity...) -- lowest
#                    category whatever the score.
# Returns {"ok", "score", "risk_level", "lowest_category", "band", "answers" (the snapshot to store),
#          "reasons": [{"code", "message": {"zh-CN", "en"}}], "problems": [...]} -- never raises on bad answers.


def msg(zh, en):
    return {"zh-CN": zh, "en": en}


def find_band(bands, scale, total):
    """The band of `scale` whose [min_score, max_score] holds `total`, or None."""
    for b in bands:
        if b.get("scale") == scale and int(b["min_score"]) <= total <= int(b["max_score"]):
            return b
    return None


def score_questionnaire(questionnaire, answers, bands, override_lowest=False):
    problems = []
    snapshot = []
    reasons = []
    total = 0
    lowest = bool(override_lowest)
    if override_lowest:
        reasons.append({"code": "override", "message": msg("KYC认定为最低类别（如无完全民事行为能力）",
                                                             "KYC set the lowest category (e.g. no full civil capacity)")})
    answers = answers or {}
    known = set()
    for q in questionnaire.get("questions") or []:
        code = q["code"]
        known.add(code)
        chosen = answers.get(code)
        option = None
        for o in q.get("options") or []:
            if o.get("value") == chosen:
                option = o
        if option is None:
            if chosen is None:
                problems.append({"field": code, "code": "unanswered",
                                 "message": msg(f"第{code}题未作答", f"question {code} is not answered")})
            else:
                problems.append({"field": code, "code": "bad_option",
                                 "message": msg(f"第{code}题没有选项“{chosen}”", f"question {code} has no option `{chosen}`")})
            continue
        score = int(option.get("score") or 0)
        total += score
        if option.get("forces_lowest"):
            lowest = True
            reasons.append({"code": "forces_lowest", "question": code,
                            "message": msg(f"第{code}题所选“{option.get('text_zh') or chosen}”直接认定为最低类别",
                                            f"question {code}: answer `{option.get('text_en') or chosen}` means the lowest category")})
        snapshot.append({"question": code, "text_zh": q.get("text_zh"), "text_en": q.get("text_en"),
                         "answer": chosen, "answer_zh": option.get("text_zh"), "answer_en": option.get("text_en"),
                         "score": score, "forces_lowest": bool(option.get("forces_lowest"))})
    for code in sorted(answers):
        if code not in known:
            problems.append({"field": code, "code": "unknown_question",
                             "message": msg(f"问卷中没有第{code}题", f"the questionnaire has no question {code}")})
    if problems:
        return {"ok": False, "problems": problems, "score": None, "risk_level": None,
                "lowest_category": None, "answers": snapshot, "reasons": reasons}
    scale = questionnaire.get("band_scale") or "CITIC"
    band = find_band(bands, scale, total)
    if band is None:
        return {"ok": False, "score": total, "risk_level": None, "lowest_category": None, "answers": snapshot,
                "reasons": reasons,
                "problems": [{"field": "band_scale", "code": "no_band",
                              "message": msg(f"评分区间方案{scale}没有覆盖{total}分",
                                              f"score band scale {scale} has no band for {total} points")}]}
    if band.get("lowest_category"):
        lowest = True
        reasons.append({"code": "lowest_band", "message": msg(f"得分{total}分属于最低类别区间",
                                                               f"a score of {total} falls in the lowest-category band")})
    level = "C1" if lowest else band["level"]
    reasons.append({"code": "band", "message": msg(f"得分{total}分，对应{band['code']}（{band['level']}）",
                                                    f"score {total} -> band {band['code']} ({band['level']})")})
    return {"ok": True, "score": total, "risk_level": level, "lowest_category": lowest, "band": band["code"],
            "questionnaire": questionnaire.get("code"), "questionnaire_version": questionnaire.get("version_no"),
            "answers": snapshot, "reasons": reasons, "problems": []}


# Entry point: the caller passes questionnaire, answers, bands and override_lowest; the script leaves `result`.
result = score_questionnaire(questionnaire, answers, bands, override_lowest)

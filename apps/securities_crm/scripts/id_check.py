# Mainland resident identity number check (GB 11643-1999): 6-digit region, 8-digit birth date,
# 3-digit sequence (odd = male), ISO 7064 MOD 11-2 check character (0-9 or X).
#
# Restricted Python, run in the sandbox; plain functions, no imports. Self-contained for now; the
# plugins package may later provide the same check as plugins/cn_identity.

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK_CHARS = "10X98765432"
DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def msg(zh, en):
    return {"zh-CN": zh, "en": en}


def check_digit(first17):
    """The check character for the first 17 digits."""
    total = 0
    for i in range(17):
        total += int(first17[i]) * WEIGHTS[i]
    return CHECK_CHARS[total % 11]


def is_leap(y):
    return (y % 4 == 0 and y % 100 != 0) or y % 400 == 0


def check_id_number(number, birthday=None, gender=None, today=None):
    """{"valid", "problems": [{"code", "message"}], "birthday" (ISO), "gender" (M/F), "region"}.

    ``birthday`` (a date or ISO text) and ``gender`` (M/F), when given, must agree with the number.
    """
    problems = []
    text = str(number or "").strip().upper()
    if len(text) != 18 or not text[:17].isdigit() or not (text[17].isdigit() or text[17] == "X"):
        return {"valid": False, "birthday": None, "gender": None, "region": None,
                "problems": [{"code": "format", "message": msg("身份证号码应为17位数字加1位校验码（数字或X）",
                                                               "an ID number is 17 digits and a check character (digit or X)")}]}
    y, m, d = int(text[6:10]), int(text[10:12]), int(text[12:14])
    iso = None
    days = DAYS_IN_MONTH[m - 1] + (1 if m == 2 and is_leap(y) else 0) if 1 <= m <= 12 else 0
    if y < 1900 or not 1 <= m <= 12 or not 1 <= d <= days:
        problems.append({"code": "birth_date", "message": msg("号码中的出生日期无效", "the birth date in the number is not a real date")})
    else:
        iso = text[6:10] + "-" + text[10:12] + "-" + text[12:14]
        if today is not None and iso > str(today)[:10]:
            problems.append({"code": "birth_date", "message": msg("出生日期晚于今天", "the birth date is in the future")})
    expected = check_digit(text[:17])
    if text[17] != expected:
        problems.append({"code": "check_digit", "message": msg(f"校验码应为{expected}", f"the check character should be {expected}")})
    sex = "M" if int(text[16]) % 2 == 1 else "F"
    if birthday is not None and iso is not None and str(birthday)[:10] != iso:
        problems.append({"code": "birthday_mismatch", "message": msg("出生日期与证件号码不一致",
                                                                       "the date of birth does not match the ID number")})
    if gender is not None and gender != sex:
        problems.append({"code": "gender_mismatch", "message": msg("性别与证件号码不一致", "the sex does not match the ID number")})
    return {"valid": not problems, "problems": problems, "birthday": iso, "gender": sex, "region": text[:6]}


# Entry point: the caller passes number, birthday, gender and today (None when unknown); the script leaves `result`.
result = check_id_number(number, birthday, gender, today)

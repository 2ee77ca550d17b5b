# Mainland China identity checks, as restricted Python run in Loom's sandbox (no imports: the
# sandbox library provides date, today, re_fullmatch, ...).
#
# Resident identity number (GB 11643-1999): 6-digit region code, 8-digit birth date (YYYYMMDD),
# 3-digit sequence (odd = male, even = female), check character by ISO 7064 MOD 11-2 (0-9 or X).
# Unified social credit code (GB 32100-2015): 18 characters from a 31-letter alphabet (no I, O,
# S, V, Z); the last is a MOD 31 check character.

ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"
# first two digits: provinces, autonomous regions and municipalities (71 Taiwan, 81 Hong Kong,
# 82 Macao, 83 residence permits of Taiwan residents)
PROVINCES = ["11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
             "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
             "65", "71", "81", "82", "83"]
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
USCC_AUTHORITIES = "123456789ANY"


def msg(zh, en):
    return {"zh-CN": zh, "en": en}


def clean(value):
    return str(value or "").strip().replace(" ", "").upper()


def id_check_char(first17):
    total = 0
    for i in range(17):
        total += int(first17[i]) * ID_WEIGHTS[i]
    return ID_CHECK[total % 11]


def id_date(text):
    """The birth date written in an 18-digit number, or None when it is not a real date."""
    try:
        return date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return None


def id_problems(number):
    """Every problem of an identity number as {zh-CN, en} messages (an empty list: valid)."""
    text = clean(number)
    if len(text) != 18 or not text[:17].isdigit() or not (text[17].isdigit() or text[17] == "X"):
        return [msg("身份证号码应为17位数字加1位校验码（数字或X）",
                    "an identity number is 17 digits and a check character (a digit or X)")]
    problems = []
    if text[:2] not in PROVINCES or text[2:6] == "0000":
        problems.append(msg("号码前6位不是有效的行政区划代码", "the first 6 digits are not a valid region code"))
    born = id_date(text)
    min_year = config.get("min_birth_year", 1900)
    if born is None or born.year < min_year:
        problems.append(msg("号码中的出生日期无效", "the birth date in the number is not a real date"))
    elif born > today():
        problems.append(msg("号码中的出生日期晚于今天", "the birth date in the number is in the future"))
    expected = id_check_char(text[:17])
    if text[17] != expected:
        problems.append(msg("校验码错误，应为" + expected, "wrong check character; it should be " + expected))
    return problems


def check_id(number):
    """True for a valid 18-digit resident identity number."""
    return not id_problems(number)


def birth_date(number):
    """The birth date of a valid identity number, else None."""
    text = clean(number)
    return id_date(text) if check_id(text) else None


def sex(number):
    """"M" or "F" from the sequence digit of a valid identity number, else None."""
    text = clean(number)
    if not check_id(text):
        return None
    return "M" if int(text[16]) % 2 == 1 else "F"


def check_uscc(code):
    """True for a unified social credit code with a correct check character (GB 32100-2015)."""
    text = clean(code)
    if len(text) != 18 or text[0] not in USCC_AUTHORITIES or not text[2:8].isdigit():
        return False
    total = 0
    for i in range(17):
        pos = USCC_CHARS.find(text[i])
        if pos < 0:
            return False
        total += pos * USCC_WEIGHTS[i]
    check = (31 - total % 31) % 31
    return text[17] == USCC_CHARS[check]


def normalize_mobile(number):
    """A mainland mobile number without +86, spaces or dashes ("" when it is not one)."""
    text = clean(number).replace("-", "")
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif len(text) == 13 and text.startswith("86"):
        text = text[2:]
    return text if re_fullmatch("1[3-9][0-9]{9}", text) else ""


def check_mobile(number):
    """True for a mainland mobile number (11 digits starting 13-19, optionally +86)."""
    return normalize_mobile(number) != ""


def verify_action(params, context):
    """Service task `cn_identity.verify`: {"valid", "birth_date", "sex", "problems"} for params.id_number."""
    number = params.get("id_number")
    problems = id_problems(number)
    born = birth_date(number)
    return {"valid": not problems, "birth_date": born.isoformat() if born else None, "sex": sex(number),
            "problems": [p["en"] for p in problems]}

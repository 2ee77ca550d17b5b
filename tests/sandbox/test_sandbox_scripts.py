"""The good path: what analysts write runs unchanged and gives the plain Python answer."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from engine.sandbox import (Budget, SandboxRuntimeError, compile_expression, compile_script, standard_api)


def run(source: str, **variables) -> dict:
    return compile_script(source, "crm.test.script").execute(variables)


def value(source: str, **variables):
    return compile_expression(source, "crm.test.expr").evaluate(variables)


def test_computed_field_expressions():
    rec = {"qty": 3, "price": Decimal("9.99"), "discount": Decimal("0.1")}
    assert value("(qty * price * (1 - discount)).quantize(Decimal('0.01'))", **rec) == Decimal("26.97")
    assert value("round(qty * price, 2) if qty else 0", **rec) == Decimal("29.97")
    assert value("money(qty * price * Decimal('1.13'))", **rec) == Decimal("33.87")
    assert value("f'{name} ({code})'", name="张三", code="C3") == "张三 (C3)"
    assert value("risk in ('C4', 'C5') and aum > 1_000_000", risk="C4", aum=Decimal("2000000")) is True


def test_dict_item_writes_augmented_assignment_and_del():
    out = run("totals = {}\nfor t in trades:\n    totals[t['side']] = totals.get(t['side'], 0) + t['qty']\n"
              "totals['buy'] += 1\ncount = 0\ncount += len(trades)\ndel trades\nitems = [1, 2]\nitems[0] = 9\n"
              "del items[1]",
              trades=[{"side": "buy", "qty": 10}, {"side": "sell", "qty": 4}, {"side": "buy", "qty": 1}])
    assert out == {"totals": {"buy": 12, "sell": 4}, "count": 3, "items": [9], "t": {"side": "buy", "qty": 1}}


def test_augmented_assignment_on_items_keeps_list_identity():
    out = run("d = {'l': [1]}\nalias = d['l']\nd['l'] += [2]\nsame = alias is d['l']")
    assert out["d"] == {"l": [1, 2]} and out["same"] is True


def test_tuple_unpacking_and_starred():
    out = run("a, b = 1, 2\n(c, (d, e)) = (3, (4, 5))\nfirst, *rest = [1, 2, 3]\npairs = []\n"
              "for k, v in sorted(m.items()):\n    pairs.append(k + str(v))\nx, y = (i for i in range(2))",
              m={"b": 2, "a": 1})
    assert (out["a"], out["b"], out["c"], out["d"], out["e"]) == (1, 2, 3, 4, 5)
    assert out["first"] == 1 and out["rest"] == [2, 3]
    assert out["pairs"] == ["a1", "b2"] and (out["x"], out["y"]) == (0, 1)


def test_comprehensions_and_generators():
    out = run("sq = [x * x for x in range(5) if x % 2 == 0]\nst = {c for c in 'hello'}\n"
              "dc = {k: v * 2 for k, v in src.items()}\ntotal = sum(v for v in src.values())\n"
              "nested = [[i * j for j in range(3)] for i in range(2)]\nall_pos = all(v > 0 for v in src.values())",
              src={"a": 1, "b": 2})
    assert out["sq"] == [0, 4, 16] and out["st"] == set("hello")
    assert out["dc"] == {"a": 2, "b": 4} and out["total"] == 3
    assert out["nested"] == [[0, 0, 0], [0, 1, 2]] and out["all_pos"] is True


def test_comprehension_sees_record_variables():
    assert value("[l['qty'] * rate for l in lines if l['qty'] > minimum]",
                 lines=[{"qty": 1}, {"qty": 5}], rate=2, minimum=2) == [10]


def test_functions_defined_in_the_script_and_recursion_within_limits():
    out = run("def fact(n):\n    return 1 if n <= 1 else n * fact(n - 1)\n"
              "def fib(n, memo={}):\n    if n < 2:\n        return n\n    if n not in memo:\n"
              "        memo[n] = fib(n - 1) + fib(n - 2)\n    return memo[n]\n"
              "f50 = fact(50)\nfib80 = fib(80)\ndouble = lambda x: x * 2\ntwice = double(21)\n"
              "by_len = sorted(['ccc', 'a', 'bb'], key=lambda s: len(s))")
    assert out["f50"] == 30414093201713378043612608166064768844377641568960512000000000000
    assert out["fib80"] == 23416728348467685 and out["twice"] == 42 and out["by_len"] == ["a", "bb", "ccc"]
    assert "fact" not in out and "double" not in out          # functions are not data


def test_global_statement_and_closures():
    out = run("counter = 0\ndef bump():\n    global counter\n    counter += 1\nbump()\nbump()\n"
              "def make(k):\n    return lambda x: x * k\ntriple = make(3)(5)")
    assert out["counter"] == 2 and out["triple"] == 15


def test_exceptions_inside_scripts():
    out = run("try:\n    x = 1 / 0\nexcept ZeroDivisionError as e:\n    msg = str(e)\nelse:\n    msg = 'no'\n"
              "finally:\n    done = True\ntry:\n    raise ValueError('bad input')\nexcept Exception as e:\n"
              "    caught = e.args[0]")
    assert out == {"msg": "division by zero", "done": True, "caught": "bad input"}


def test_decimal_money_arithmetic():
    out = run("fee = (amount * rate).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)\n"
              "net = amount - fee\nsplit = [money(net / 3)] * 3\nrest = net - sum(split)",
              amount=Decimal("1000.005"), rate=Decimal("0.0003"))
    assert out["fee"] == Decimal("0.30") and out["net"] == Decimal("999.705")
    assert out["split"] == [Decimal("333.24")] * 3 and out["rest"] == Decimal("-0.015")


def test_dates_and_times():
    out = run("due = add_days(d, 30)\nnext_m = add_months(date(2024, 1, 31), 1)\nyears = age(born, on=d)\n"
              "span = days_between(d, due)\nmonths = months_between(date(2024, 1, 15), date(2024, 4, 14))\n"
              "eom = end_of_month(d)\niso = d.isoformat()\nwd = d.weekday()\nlater = moment + timedelta(hours=5)\n"
              "text = format_date(d, '%Y年%m月%d日')\nparsed = parse_date('2025-03-01')\n"
              "when = parse_datetime('2025-03-01T08:00:00Z')\nlocal = local_time(when).hour",
              d=date(2025, 2, 10), born=date(1990, 2, 11), moment=datetime(2025, 1, 1, 20, tzinfo=timezone.utc))
    assert out["due"] == date(2025, 3, 12) and out["next_m"] == date(2024, 2, 29)
    assert out["years"] == 34 and out["span"] == 30 and out["months"] == 2
    assert out["eom"] == date(2025, 2, 28) and out["iso"] == "2025-02-10" and out["wd"] == 0
    assert out["later"] == datetime(2025, 1, 2, 1, tzinfo=timezone.utc) and out["text"] == "2025年02月10日"
    assert out["parsed"] == date(2025, 3, 1) and out["local"] == 16
    assert value("today() <= date.today() + timedelta(days=1)") is True
    assert value("now().tzinfo is not None") is True


def test_math_statistics_json_regex_and_strings():
    assert value("math.sqrt(16) + math.floor(2.7) + math.pi > 9") is True
    assert value("(mean(xs), median(xs), pstdev([2, 4, 4, 4, 5, 5, 7, 9]))", xs=[1, 2, 3, 10]) == (4, 2.5, 2.0)
    assert value("statistics.stdev([1, 2, 3, 4])") == pytest.approx(1.2909944)
    assert value("json.loads(text)['a'] + 1", text='{"a": 1.5}') == Decimal("2.5")
    assert value("json.dumps({'amount': Decimal('1.10'), 'on': date(2025, 1, 2)}, sort_keys=True)") == \
        '{"amount": "1.10", "on": "2025-01-02"}'
    assert value("re_search(r'(?P<year>\\d{4})-(\\d{2})', 'on 2025-03').group('year')") == "2025"
    assert value("re.findall(r'\\d+', 'a1b22c333')") == ["1", "22", "333"]
    assert value("re_sub(r'\\s+', ' ', '  a   b ')") == " a b "
    assert value("re_fullmatch(r'1[3-9]\\d{9}', phone) is not None", phone="13800138000") is True
    assert value("re_match('x', 'abc')") is None
    m = value("re_search('(b)(c)?', 'abd')")
    assert m.groups() == ("b", None) and m.span() == (1, 2) and m[1] == "b"
    assert value("mask(id_no, 6, 4)", id_no="110101199001011234") == "110101********1234"
    assert value("format_number(Decimal('1234567.891'))") == "1,234,567.89"
    assert value("coalesce(None, '', 'x')") == "" and value("is_blank('  ')") is True
    assert value("truncate('abcdef', 4)") == "a..." and value("pad_left('7', 3, '0')") == "007"
    assert value("'a,b,,c'.split(',')") == ["a", "b", "", "c"] and value("'-'.join(['a', 'b'])") == "a-b"
    assert value("'Hello'.replace('l', 'L').upper().center(9, '*')") == "**HELLO**"


def test_builtins_behave_like_python():
    assert value("isinstance(x, list) and isinstance(y, (int, Decimal)) and not isinstance(x, dict)",
                 x=[1], y=Decimal(1)) is True
    assert value("list(range(3)) + list((1, 2)) + sorted({3, 1})") == [0, 1, 2, 1, 2, 1, 3]
    assert value("dict(a=1, b=2) == dict([('a', 1), ('b', 2)]) == dict.fromkeys('ab', 0) or True") is True
    assert value("str(12) + str([1, 'a']) + repr('x')") == "12[1, 'a']'x'"
    assert value("int('42') + int(Decimal('3.9')) + int(True)") == 46
    assert value("(min(3, 1, 2), max([4, 5]), abs(-2), len('abc'), round(2.567, 2))") == (1, 5, 2, 3, 2.57)
    assert value("list(zip('ab', [1, 2])) == [('a', 1), ('b', 2)] and list(enumerate('a')) == [(0, 'a')]") is True
    assert value("list(map(str, filter(None, [0, 1, 2]))) + list(reversed([1, 2]))") == ["1", "2", 2, 1]
    assert value("next(iter([7, 8]))") == 7
    assert value("getattr(x, 'upper')() + str(hasattr(x, 'nope'))", x="a") == "AFalse"
    assert value("sum([Decimal('0.1')] * 3)") == Decimal("0.3")
    assert value("{**a, 'c': 3} == {'a': 1, 'c': 3} and [*b, 3] == [1, 2, 3]", a={"a": 1}, b=[1, 2]) is True
    assert value("2 ** 100 == 1 << 100 and 7 % 3 == 1 and '%s=%05.1f' % ('x', 2.25) == 'x=002.2'") is True


def test_print_is_log_and_messages_are_collected():
    messages = []
    code = compile_script("print('start', 1)\nlog('value', {'a': [1, 2]})\nx = 1", "crm.test.script")
    assert code.execute({}, messages=messages) == {"x": 1}
    assert messages == ["start 1", "value {'a': [1, 2]}"]
    messages = []
    compile_expression("log('hi') or 5", "e").evaluate({}, messages=messages)
    assert messages == ["hi"]


def test_log_messages_come_with_a_failure():
    code = compile_script("log('about to fail', n)\nx = 1 / n", "crm.test.script")
    with pytest.raises(SandboxRuntimeError) as info:
        code.execute({"n": 0})
    assert info.value.messages == ["about to fail 0"]
    assert info.value.message == "crm.test.script, line 2: ZeroDivisionError: division by zero"
    assert info.value.line == 2 and info.value.problems[0].line == 2
    assert isinstance(info.value.original, ZeroDivisionError)


def test_execute_returns_plain_data_only_and_leaves_the_input_alone():
    variables = {"keep": 1, "_private": 2, "gone": 3}
    out = compile_script("def helper():\n    return 1\nnew = helper()\ngen = (i for i in [])\nf = len\ndel gone",
                         "s").execute(variables)
    assert out == {"keep": 1, "new": 1}
    assert variables == {"keep": 1, "_private": 2, "gone": 3}


def test_expressions_must_produce_data():
    with pytest.raises(SandboxRuntimeError, match="produced a function"):
        compile_expression("lambda: 1", "e").evaluate({})
    with pytest.raises(SandboxRuntimeError, match="generator"):
        compile_expression("(x for x in [1])", "e").evaluate({})
    assert compile_expression("{'a': [1, (2, 3)]}", "e").evaluate({}) == {"a": [1, (2, 3)]}


def test_evaluate_and_execute_keep_to_their_mode():
    with pytest.raises(TypeError, match="is a script; run it with execute"):
        compile_script("x = 1", "s").evaluate({})
    with pytest.raises(TypeError, match="is an expression; run it with evaluate"):
        compile_expression("1", "e").execute({})


def test_variables_can_be_any_mapping_and_shadow_the_library():
    assert compile_expression("date", "e").evaluate({"date": "2025-01-01"}) == "2025-01-01"
    assert compile_expression("[date for _ in [1]]", "e").evaluate({"date": "x"}) == ["x"]


def test_names_lists_what_the_code_reads():
    assert compile_expression("(qty * price).quantize(Decimal('0.01'))", "e").names == {"qty", "price", "Decimal"}
    assert compile_expression("[l['amount'] * fx for l in lines if l['ok']]", "e").names == {"lines", "fx"}
    code = compile_script("total = total + 1\nlimit = 5\nok = total < limit\ndef f(a):\n    return a + bonus\n"
                          "r = f(1)\nx = [y for y in items]", "s")
    assert code.names == {"total", "bonus", "items"}


def test_standard_api_is_a_copy_of_the_curated_library():
    api = standard_api()
    for name in ("Decimal", "date", "add_working_days", "working_days_between", "mean", "median", "pstdev",
                 "stdev", "json", "math", "log", "round", "min", "max", "sum", "sorted", "len", "abs", "any", "all",
                 "enumerate", "zip", "range", "dict", "list", "set", "tuple", "str", "int", "float", "bool",
                 "isinstance", "re_search"):
        assert name in api, name
    for name in ("open", "eval", "exec", "compile", "type", "vars", "globals", "locals", "dir", "setattr",
                 "object", "input"):
        assert name not in api, name
    api["open"] = open
    assert "open" not in standard_api()


def test_budget_can_be_given_per_call():
    code = compile_script("n = 0\nfor i in range(2000):\n    n += i", "s")
    assert code.execute({}, budget=Budget(max_iterations=5000))["n"] == sum(range(2000))

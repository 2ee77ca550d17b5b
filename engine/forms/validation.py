"""Record (de)serialization and validation: a marshmallow schema generated per entity.

The schema is built once per published entity version and turns raw input (JSON from the API,
strings from a CSV line or an HTML form) into typed Python values: ``Decimal`` for money, ``date``
and aware ``datetime``, ``int`` ids for links, lists of child rows. Errors are reported as
language-neutral codes ("max_length|max=100") that :mod:`engine.forms.messages` renders in the
actor's language.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from engine.errors import InvalidInput, Problem
from engine.forms import messages

CHINA_TZ = timezone(timedelta(hours=8))
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TRUE = {"true", "1", "yes", "y", "on", "是", "t"}
FALSE = {"false", "0", "no", "n", "off", "否", "f", ""}


def _base_messages(code: str) -> dict:
    return {"required": "required", "null": "null", "invalid": code}


class Text(fields.String):
    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            value = str(value)
        return super()._deserialize(value, attr, data, **kw)


INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1     # what a BIGINT column holds


class Integer(fields.Integer):
    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, str):
            value = value.strip().replace(",", "")
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        result = super()._deserialize(value, attr, data, **kw)
        if result is not None and not INT_MIN <= result <= INT_MAX:
            raise ValidationError(f"max|max={INT_MAX}" if result > 0 else f"min|min={INT_MIN}")
        return result


class Money(fields.Field):
    """Decimal with a fixed scale; accepts numbers and strings ("1,234.50"), never returns floats."""

    def __init__(self, precision: int, scale: int, **kw):
        super().__init__(**kw)
        self.precision, self.scale = precision, scale
        self.quantum = Decimal(1).scaleb(-scale)

    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        try:
            if isinstance(value, float):
                value = repr(value)
            d = Decimal(str(value).strip().replace(",", "")) if not isinstance(value, Decimal) else value
        except (InvalidOperation, ValueError):
            raise self.make_error("invalid") from None
        if not d.is_finite():
            raise self.make_error("invalid")
        try:
            d = d.quantize(self.quantum)
        except InvalidOperation:   # more digits than the decimal context holds: far too large anyway
            raise ValidationError(f"digits|digits={self.precision - self.scale}") from None
        if d.adjusted() + 1 > self.precision - self.scale:
            raise ValidationError(f"digits|digits={self.precision - self.scale}")
        return d

    def _serialize(self, value, attr, obj, **kw):
        return None if value is None else str(value)


class Bool(fields.Field):
    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
            return value.strip().lower() in TRUE
        raise self.make_error("invalid")


class Day(fields.Field):
    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value).strip()[:10])
        except ValueError:
            raise self.make_error("invalid") from None

    def _serialize(self, value, attr, obj, **kw):
        return None if value is None else value.isoformat()


class Moment(fields.Field):
    """Aware datetime; naive input is read as China Standard Time."""

    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, datetime):
            dt = value
        else:
            text = str(value).strip().replace("Z", "+00:00")
            try:
                dt = datetime.fromisoformat(text)
            except ValueError:
                raise self.make_error("invalid") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=CHINA_TZ)
        return dt

    def _serialize(self, value, attr, obj, **kw):
        return None if value is None else value.isoformat()


class Choice(fields.Field):
    def __init__(self, choices: list, **kw):
        super().__init__(**kw)
        self.choices = choices
        self._by_text = {str(c): c for c in choices}

    def _deserialize(self, value, attr, data, **kw):
        if value in self.choices:
            return value
        if str(value).strip() in self._by_text:
            return self._by_text[str(value).strip()]
        raise ValidationError(f"choice|value={value}|choices={', '.join(map(str, self.choices))}")


class MultiChoice(fields.Field):
    def __init__(self, choices: list, **kw):
        super().__init__(**kw)
        self.inner = Choice(choices)

    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, str):
            value = [v.strip() for v in re.split(r"[,;，；]", value) if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise self.make_error("invalid")
        out = []
        for v in value:
            c = self.inner._deserialize(v, attr, data)
            if c not in out:
                out.append(c)
        return out


class Pattern(fields.String):
    def __init__(self, regex: re.Pattern, code: str, **kw):
        super().__init__(**kw)
        self.regex, self.code = regex, code

    def _deserialize(self, value, attr, data, **kw):
        value = super()._deserialize(value, attr, data, **kw).strip()
        if not self.regex.match(value):
            raise ValidationError(self.code)
        return value


def _length(f) -> list:
    spec = f.spec
    out = []
    lo, hi = spec.get("min_length"), spec.get("max_length")
    if f.type == "text" and hi is None:
        hi = 255
    if lo:
        out.append(validate.Length(min=lo, error=f"min_length|min={lo}"))
    if hi:
        out.append(validate.Length(max=hi, error=f"max_length|max={hi}"))
    if spec.get("pattern"):
        out.append(validate.Regexp(spec["pattern"], error="pattern"))
    return out


def _range(f, conv) -> list:
    spec, out = f.spec, []
    if spec.get("min") is not None:
        out.append(validate.Range(min=conv(spec["min"]), error=f"min|min={spec['min']}"))
    if spec.get("max") is not None:
        out.append(validate.Range(max=conv(spec["max"]), error=f"max|max={spec['max']}"))
    return out


def schema_field(f, child_schema: type[Schema] | None = None) -> fields.Field:
    """The marshmallow field for one entity field."""
    t = f.type
    kw: dict[str, Any] = {"required": False, "allow_none": not f.required}
    if t in {"text", "long_text"}:
        return Text(validate=_length(f), error_messages=_base_messages("invalid_text"), **kw)
    if t == "email":
        return Pattern(EMAIL_RE, "invalid_email", validate=_length(f), error_messages=_base_messages("invalid_email"), **kw)
    if t == "phone":
        return Pattern(PHONE_RE, "invalid_phone", error_messages=_base_messages("invalid_phone"), **kw)
    if t == "integer":
        return Integer(validate=_range(f, int), error_messages=_base_messages("invalid_integer"), **kw)
    if t == "decimal":
        return Money(f.spec.get("precision") or 18, f.spec.get("scale") if f.spec.get("scale") is not None else 2,
                     validate=_range(f, lambda v: Decimal(str(v))), error_messages=_base_messages("invalid_decimal"), **kw)
    if t == "boolean":
        return Bool(error_messages=_base_messages("invalid_boolean"), **kw)
    if t == "date":
        return Day(validate=_range(f, lambda v: date.fromisoformat(str(v))), error_messages=_base_messages("invalid_date"), **kw)
    if t == "datetime":
        return Moment(error_messages=_base_messages("invalid_datetime"), **kw)
    if t == "select":
        return Choice(f.option_values(), error_messages=_base_messages("invalid"), **kw)
    if t == "multi_select":
        return MultiChoice(f.option_values(), error_messages=_base_messages("invalid_list"), **kw)
    if t == "link":
        return Integer(strict=False, error_messages=_base_messages("invalid_link"), **kw)
    if t in {"json", "attachment"}:
        return fields.Raw(error_messages=_base_messages("invalid"), **kw)
    if t == "table":
        return fields.List(fields.Nested(child_schema, unknown=RAISE), allow_none=True, required=False,
                           error_messages=_base_messages("invalid_rows"))
    raise ValueError(t)


def build_schema(entity) -> type[Schema]:
    """A Schema class for an entity (child tables become nested schemas; rows may carry `id`)."""
    attrs: dict[str, fields.Field] = {}
    for f in entity.fields.values():
        if f.type == "computed":
            continue
        child = build_schema(f.children) if f.type == "table" else None
        attrs[f.key] = schema_field(f, child)
    if entity.is_child:
        attrs["id"] = Integer(allow_none=True, required=False)
    schema_cls = Schema.from_dict(attrs, name=f"{entity.app}_{entity.key}_Schema")
    return schema_cls


class RecordValidator:
    """Compiled once per entity version; ``load`` returns typed data or raises InvalidInput."""

    def __init__(self, entity):
        self.entity = entity
        cls = build_schema(entity)
        self.full = cls(unknown=RAISE)
        self.partial = cls(unknown=RAISE, partial=True)
        self.computed = {f.key for f in entity.computed_fields}
        self.fast = compile_fast_loader(entity)

    def load(self, data: dict, partial: bool = False, locale: str = "zh-CN") -> dict:
        if not isinstance(data, dict):
            raise InvalidInput(problems=[Problem(messages.render("invalid", locale), code="invalid")])
        if self.computed and self.computed & data.keys():
            data = {k: v for k, v in data.items() if k not in self.computed}
        try:
            return self.fast(data)
        except Exception:  # noqa: BLE001 -- anything unusual or invalid: the reference schema decides
            pass
        return self.load_reference(data, partial, locale)

    def load_reference(self, data: dict, partial: bool = False, locale: str = "zh-CN") -> dict:
        """The marshmallow path (the reference semantics; error messages always come from here)."""
        try:
            return (self.partial if partial else self.full).load(data)
        except ValidationError as exc:
            raise InvalidInput(problems=list(self._problems(exc.messages, locale))) from None

    def _problems(self, errors, locale, prefix="", entity=None):
        entity = entity or self.entity
        for key, value in errors.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                # nested rows: {index: {field: [...]}} or {field: [...]}
                f = entity.fields.get(key)
                for idx, sub in value.items():
                    if isinstance(sub, dict) and f is not None and f.children is not None:
                        yield from self._problems(sub, locale, f"{name}[{idx}].", f.children)
                    elif isinstance(sub, list):
                        for raw in sub:
                            yield self._problem(f"{name}[{idx}]" if isinstance(idx, int) else f"{name}.{idx}", raw, locale)
                continue
            for raw in (value if isinstance(value, list) else [value]):
                if raw == "Unknown field.":
                    raw = "unknown"
                yield self._problem(name, raw, locale)

    def _problem(self, name: str, raw: str, locale: str) -> Problem:
        code, params = messages.parse(str(raw))
        if code not in messages.MESSAGES:
            return Problem(str(raw), field=name, code="invalid")
        return Problem(messages.render(code, locale, **params), field=name, code=code)


# -- the fast path ---------------------------------------------------------------------------------
#
# marshmallow's Schema.load costs ~27 us for a 15-field record; most of that is generic machinery
# (field objects, error containers, hooks). For each entity we generate one plain Python function
# that does exactly the conversions of the schema above for the common, *valid* shapes of input
# (str/int/Decimal/bool/list/dict) and gives up -- raising -- on anything else: an unusual type, a
# value that fails a check, an unknown key. ``RecordValidator.load`` then runs the marshmallow
# schema, which stays the reference: it produces the error messages and handles the rare shapes.
# So errors are always marshmallow's, and accepted values are marshmallow's by construction and by
# the equivalence test (tests/forms/test_fast_validation.py). The source contains only our own
# names and ``repr()`` of field keys; every value from a definition is passed in the namespace.


class _Fallback(Exception):
    """The fast path does not handle this input; the marshmallow schema decides."""


_MISSING = object()


class _Gen:
    def __init__(self):
        self.ns: dict[str, Any] = {"FB": _Fallback, "M": _MISSING, "D": Decimal, "date": date,
                                   "date_fromiso": date.fromisoformat, "dt_fromiso": datetime.fromisoformat,
                                   "CHINA": CHINA_TZ, "TRUE": frozenset(TRUE), "FALSE": frozenset(FALSE),
                                   "SPLIT": re.compile(r"[,;，；]").split, "EMAIL": EMAIL_RE, "PHONE": PHONE_RE}
        self.lines: list[str] = []
        self.n = 0

    def const(self, value) -> str:
        self.n += 1
        name = f"C{self.n}"
        self.ns[name] = value
        return name

    def entity(self, entity) -> str:
        """Emit the function for ``entity`` (children first); returns its name."""
        children = {f.key: self.entity(f.children) for f in entity.fields.values() if f.type == "table"}
        self.n += 1
        fname = f"load_{self.n}"
        body: list[str] = []
        for f in entity.fields.values():
            if f.type == "computed":
                continue
            body += self.field(f, children.get(f.key))
        if entity.is_child:
            body += ["v = g('id', M)", "if v is not M:", "    n += 1",
                     "    if v is None or type(v) is int:", "        out['id'] = v",
                     "    elif type(v) is str:", "        out['id'] = int(v.strip().replace(',', ''))",
                     "    else:", "        raise FB"]
        self.lines += [f"def {fname}(data):", "    if type(data) is not dict:", "        raise FB",
                       "    g = data.get", "    out = {}", "    n = 0"]
        self.lines += ["    " + line for line in body]
        self.lines += ["    if n != len(data):", "        raise FB", "    return out", ""]
        return fname

    def field(self, f, child_fn: str | None) -> list[str]:
        key = repr(f.key)
        conv = self.convert(f, child_fn)
        allow_none = (not f.required) or f.type == "table"
        lines = [f"v = g({key}, M)", "if v is not M:", "    n += 1", "    if v is None:",
                 f"        out[{key}] = None" if allow_none else "        raise FB", "    else:"]
        lines += ["        " + c for c in conv]
        lines.append(f"        out[{key}] = x")
        return lines

    def _length(self, f, var: str) -> list[str]:
        spec, out = f.spec, []
        lo, hi = spec.get("min_length"), spec.get("max_length")
        if f.type == "text" and hi is None:
            hi = 255
        if lo:
            out.append(f"if len({var}) < {self.const(lo)}: raise FB")
        if hi:
            out.append(f"if len({var}) > {self.const(hi)}: raise FB")
        if spec.get("pattern"):
            out.append(f"if {self.const(re.compile(spec['pattern']))}.match({var}) is None: raise FB")
        return out

    def _range(self, f, conv, var: str) -> list[str]:
        spec, out = f.spec, []
        if spec.get("min") is not None:
            out.append(f"if {var} < {self.const(conv(spec['min']))}: raise FB")
        if spec.get("max") is not None:
            out.append(f"if {var} > {self.const(conv(spec['max']))}: raise FB")
        return out

    def _choice(self, f, src: str, dst: str) -> list[str]:
        values = f.option_values()
        cset = self.const(frozenset(v for v in values if isinstance(v, str)))
        by_text = self.const({str(c): c for c in values})
        return [f"if type({src}) is not str: raise FB",
                f"if {src} in {cset}: {dst} = {src}",
                f"else: {dst} = {by_text}[{src}.strip()]"]

    def convert(self, f, child_fn: str | None) -> list[str]:
        t = f.type
        if t in {"text", "long_text"}:
            return ["if type(v) is not str: raise FB", *self._length(f, "v"), "x = v"]
        if t in {"email", "phone"}:
            regex = "EMAIL" if t == "email" else "PHONE"
            extra = self._length(f, "x") if t == "email" else []
            return ["if type(v) is not str: raise FB", "x = v.strip()",
                    f"if {regex}.match(x) is None: raise FB", *extra]
        if t in {"integer", "link"}:
            rng = self._range(f, int, "x") if t == "integer" else []
            return ["if type(v) is int: x = v", "elif type(v) is str: x = int(v.strip().replace(',', ''))",
                    "else: raise FB", f"if x > {INT_MAX} or x < {INT_MIN}: raise FB", *rng]
        if t == "decimal":
            precision = f.spec.get("precision") or 18
            scale = f.spec.get("scale") if f.spec.get("scale") is not None else 2
            q = self.const(Decimal(1).scaleb(-scale))
            return ["if type(v) is str: x = D(v.strip().replace(',', ''))",
                    "elif type(v) is int or type(v) is D: x = D(v)",
                    "else: raise FB",
                    "if not x.is_finite(): raise FB",
                    f"x = x.quantize({q})",
                    f"if x.adjusted() + 1 > {self.const(precision - scale)}: raise FB",
                    *self._range(f, lambda v: Decimal(str(v)), "x")]
        if t == "boolean":
            return ["if type(v) is bool: x = v",
                    "elif type(v) is str:",
                    "    s = v.strip().lower()",
                    "    if s in TRUE: x = True",
                    "    elif s in FALSE: x = False",
                    "    else: raise FB",
                    "elif type(v) is int and (v == 0 or v == 1): x = v == 1",
                    "else: raise FB"]
        if t == "date":
            return ["if type(v) is str: x = date_fromiso(v.strip()[:10])",
                    "elif type(v) is date: x = v",
                    "else: raise FB", *self._range(f, lambda v: date.fromisoformat(str(v)), "x")]
        if t == "datetime":
            return ["if type(v) is not str: raise FB",
                    "x = dt_fromiso(v.strip().replace('Z', '+00:00'))",
                    "if x.tzinfo is None: x = x.replace(tzinfo=CHINA)"]
        if t == "select":
            return self._choice(f, "v", "x")
        if t == "multi_select":
            return ["if type(v) is str: items = [p.strip() for p in SPLIT(v) if p.strip()]",
                    "elif type(v) is list: items = v",
                    "else: raise FB",
                    "x = []",
                    "for it in items:",
                    *["    " + c for c in self._choice(f, "it", "c")],
                    "    if c not in x: x.append(c)"]
        if t in {"json", "attachment"}:
            return ["x = v"]
        if t == "table":
            return ["if type(v) is not list: raise FB", f"x = [{child_fn}(r) for r in v]"]
        raise ValueError(t)


def compile_fast_loader(entity):
    """A function ``data -> typed dict`` for valid input in common shapes; raises otherwise."""
    gen = _Gen()
    name = gen.entity(entity)
    source = "\n".join(gen.lines)
    code = compile(source, f"<loom fast validator {entity.app}.{entity.key}>", "exec")
    ns = dict(gen.ns)
    exec(code, ns)  # noqa: S102 -- our own generated source; definition values live in `ns`, not in the text
    fn = ns[name]
    fn.source = source
    return fn

"""Validation messages in zh-CN and en.

Generated schemas report a *code* with parameters ("length:1:100"); the record service renders it
in the actor's language, so one compiled schema serves every locale.
"""
from __future__ import annotations

from engine.forms.labels import normalize_locale

MESSAGES = {
    "required": {"zh-CN": "必填", "en": "is required"},
    "null": {"zh-CN": "不能为空", "en": "may not be empty"},
    "unknown": {"zh-CN": "未知字段", "en": "is not a field of this entity"},
    "invalid": {"zh-CN": "格式不正确", "en": "is not valid"},
    "invalid_integer": {"zh-CN": "必须是整数", "en": "must be a whole number"},
    "invalid_decimal": {"zh-CN": "必须是数字", "en": "must be a number"},
    "invalid_boolean": {"zh-CN": "必须是“是”或“否”", "en": "must be yes or no"},
    "invalid_date": {"zh-CN": "日期格式应为 YYYY-MM-DD", "en": "must be a date (YYYY-MM-DD)"},
    "invalid_datetime": {"zh-CN": "日期时间格式不正确", "en": "must be a date and time (ISO 8601)"},
    "invalid_email": {"zh-CN": "不是有效的电子邮箱", "en": "is not a valid email address"},
    "invalid_phone": {"zh-CN": "不是有效的手机号码（11位，1开头）", "en": "is not a valid mainland mobile number"},
    "invalid_list": {"zh-CN": "必须是列表", "en": "must be a list"},
    "invalid_text": {"zh-CN": "必须是文本", "en": "must be text"},
    "invalid_link": {"zh-CN": "必须是记录编号", "en": "must be a record id"},
    "invalid_rows": {"zh-CN": "必须是行的列表", "en": "must be a list of rows"},
    "choice": {"zh-CN": "“{value}”不是可选值（{choices}）", "en": "option `{value}` is not one of {choices}"},
    "min_length": {"zh-CN": "至少 {min} 个字符", "en": "must have at least {min} characters"},
    "max_length": {"zh-CN": "最多 {max} 个字符", "en": "must have at most {max} characters"},
    "min": {"zh-CN": "不能小于 {min}", "en": "must be at least {min}"},
    "max": {"zh-CN": "不能大于 {max}", "en": "must be at most {max}"},
    "pattern": {"zh-CN": "格式不符合要求", "en": "does not match the required format"},
    "digits": {"zh-CN": "整数部分最多 {digits} 位", "en": "may have at most {digits} digits before the decimal point"},
    "unique": {"zh-CN": "“{value}”已存在", "en": "`{value}` is already used by another record"},
    "link_missing": {"zh-CN": "关联的记录 {value} 不存在", "en": "links to record {value}, which does not exist"},
    "readonly": {"zh-CN": "只读字段，不能修改", "en": "is read-only"},
    "computed_failed": {"zh-CN": "计算失败：{error}", "en": "could not be computed: {error}"},
    "rule_failed": {"zh-CN": "校验规则无法执行：{error}", "en": "validation rule could not run: {error}"},
    "attachment_type": {"zh-CN": "不允许的文件类型 {value}", "en": "file type {value} is not allowed"},
    "attachment_size": {"zh-CN": "文件超过 {max} MB", "en": "file is larger than {max} MB"},
    "stale": {"zh-CN": "{entity} {id} 已被他人修改（您的版本 {yours}，当前版本 {current}），请刷新后重试",
              "en": "{entity} {id} was changed by someone else (you have version {yours}, current is {current}); reload and try again"},
    "not_found": {"zh-CN": "{entity} {id} 不存在或您无权查看", "en": "{entity} {id} not found"},
    "still_linked": {"zh-CN": "{entity} {id} 仍被其他记录引用，不能删除",
                     "en": "{entity} {id} is still linked from other records and cannot be deleted"},
    "attachment_missing": {"zh-CN": "附件不存在", "en": "attachment was not uploaded"},
}


def render(code: str, locale: str | None = "zh-CN", **params) -> str:
    loc = normalize_locale(locale)
    template = MESSAGES.get(code, {}).get(loc) or MESSAGES.get(code, {}).get("en") or code
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template


def parse(raw: str) -> tuple[str, dict]:
    """Split a schema error like ``"min_length|min=3"`` into code and parameters."""
    code, _, rest = raw.partition("|")
    params = {}
    for part in rest.split("|") if rest else []:
        k, _, v = part.partition("=")
        params[k] = v
    return code, params

"""A user at the staff screens in headless Chromium: log in, create a customer with an account and
a nested position, see a validation error in Chinese, fix it, edit, search, switch to English."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package").expect

pytestmark = pytest.mark.browser
# the README's screenshots are refreshed only on request (LOOM_SCREENSHOTS=1); a normal test run
# must not change tracked files, so it writes to a temporary folder
SHOTS = (Path(__file__).resolve().parents[2] / "docs" / "screenshots" if os.environ.get("LOOM_SCREENSHOTS") == "1"
         else Path(tempfile.gettempdir()) / "loom-screenshots")


def login(page, user="alice", password="alice-pass-1"):
    page.goto(page.base + "/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit].btn-primary")
    page.wait_for_selector("h1:has-text('应用')")


def navigate(page, selector):
    with page.expect_navigation():
        page.click(selector)


def test_wrong_password_is_refused_in_chinese(page):
    page.goto(page.base + "/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "nope")
    page.click("button[type=submit].btn-primary")
    assert "用户名或密码错误" in page.locator(".alert-error").inner_text()


def test_customer_lifecycle_through_the_screens(page):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page)
    navigate(page, "nav a:text-is('客户')")
    assert page.url.endswith("/r/mini/customer")
    navigate(page, "text=新建")
    page.fill("#f-name", "测试客户")
    page.fill("#f-mobile", "12345")                     # not a mainland mobile number
    page.select_option("#f-risk_level", "C3")
    page.fill("#f-aum", "88888.5")
    # the link field: a searchable select
    page.fill("#f-branch", "上海")
    page.click(".lookup-option >> text=上海营业部")
    # a child row with a nested row
    page.click("text=+ 添加账户")
    page.locator("[data-row] input[name$='.number']").first.fill("ACC-9")
    page.locator("[data-row] .nested button.add-row").first.click()
    expect(page.locator("input[name*='.positions['][name$='.symbol']")).to_have_count(1)
    page.locator("input[name*='.positions['][name$='.symbol']").first.fill("600036")
    page.locator("input[name*='.positions['][name$='.qty']").first.fill("300")
    navigate(page, "button[data-save]")
    # the error is shown at the field, in Chinese, and the input is kept
    err = page.locator("[data-path=mobile] .field-error")
    assert "不是有效的手机号码" in err.inner_text()
    assert page.input_value("#f-name") == "测试客户"
    assert page.locator("input[name$='.symbol']").first.input_value() == "600036"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "form-zh-CN.png"), full_page=True)
    page.fill("#f-mobile", "13612345678")
    navigate(page, "button[data-save]")
    assert re.search(r"/r/mini/customer/\d+\?saved=1$", page.url)
    body = page.inner_text("main")
    for text in ["测试客户", "上海营业部", "88,888.50", "ACC-9", "600036", "300"]:
        assert text in body
    # edit it
    navigate(page, "text=编辑")
    page.fill("#f-aum", "99999")
    navigate(page, "button[data-save]")
    assert re.search(r"/r/mini/customer/\d+\?saved=1$", page.url)
    assert "99,999.00" in page.inner_text("main")
    assert "88,888.50" in page.inner_text(".history")          # change history shows the old value
    # find it in the list by search (htmx partial update)
    navigate(page, "nav a:text-is('客户')")
    page.fill("input[name=q]", "测试")
    expect(page.locator("#list-region tbody tr")).to_have_count(1)
    assert "测试客户" in page.inner_text("#list-region")
    assert "张三" not in page.inner_text("#list-region")
    page.fill("input[name=q]", "")
    expect(page.locator("#list-region tbody tr")).to_have_count(3)
    page.screenshot(path=str(SHOTS / "list-zh-CN.png"), full_page=True)
    # switch to English: labels follow
    page.click("button[data-locale=en]")
    page.wait_for_selector("text=Risk level")
    assert "Customers" in page.inner_text("nav")
    assert "Balanced" in page.inner_text("#list-region")
    assert errors == []


def test_remove_child_row_and_tabs_free_of_script_errors(page):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login(page)
    page.goto(page.base + "/r/mini/customer/new")
    page.click("text=+ 添加账户")
    expect(page.locator("[data-row]")).to_have_count(1)
    page.click("text=+ 添加账户")
    expect(page.locator("[data-row]")).to_have_count(2)
    page.locator("[data-remove-row]").first.click()
    expect(page.locator("[data-row]")).to_have_count(1)
    assert errors == []

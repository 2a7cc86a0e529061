"""Each role's main path in a real headless Chromium (Debian's, driven by Playwright) against a live uvicorn.

Screenshots of the main pages go to test-artifacts/ (gitignored) for a person to look at; every page is also
checked for horizontal overflow. Skipped when Playwright or /usr/bin/chromium is missing (`scripts/install.sh --dev`).
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.web.helpers import PASSWORD, write_csv

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# In CI the install step must have provided the browser: a skip there would hide a broken install, so it fails.
if os.environ.get("CI"):
    import playwright.sync_api as playwright_api

    assert CHROMIUM.exists(), "CI: /usr/bin/chromium is missing; scripts/install.sh --dev should have installed it"
else:
    playwright_api = pytest.importorskip("playwright.sync_api")
    pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/install.sh --dev)")


@pytest.fixture(scope="module")
def base_url(web_app):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(web_app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"])
        yield b
        b.close()


@pytest.fixture
def page(browser, base_url):
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.set_default_timeout(20_000)
    pg = context.new_page()
    yield pg
    context.close()


def shot(page, name: str, full_page: bool = True) -> None:
    """Screenshot for people, plus the checks a screenshot would show: no sideways overflow, labelled inputs."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the window"
    unlabelled = page.evaluate("""[...document.querySelectorAll('input:not([type=hidden]):not([type=submit]), textarea, select')]
        .filter(e => !(e.labels && e.labels.length)).map(e => e.name)""")
    assert unlabelled == [], f"{name}: inputs without a label: {unlabelled}"


def sign_in(page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state()


def test_visitor_searches_the_public_catalogue(page):
    page.goto("/")
    assert page.get_by_role("heading", name="可转化专利目录").is_visible()
    shot(page, "01-catalogue")
    page.get_by_label("用一句话描述您需要的技术").fill("提高锂电池安全性，防止热失控和爆炸")
    page.get_by_role("button", name="检索").click()
    page.wait_for_selector("article.match")
    assert page.locator("article.match").count() > 0 and page.locator("article.match mark").count() > 0
    shot(page, "02-catalogue-search")


def test_enterprise_posts_a_demand_and_sees_candidates(page):
    sign_in(page, "ent1")
    assert page.url.endswith("/enterprise")
    page.goto("/enterprise/demands/new")
    page.get_by_label("需求内容").fill("太短")
    page.get_by_role("button", name="发布并匹配").click()
    assert page.get_by_text("请填写需求标题").is_visible() and page.get_by_text("请至少写 20 字").is_visible()
    shot(page, "03-enterprise-demand-form-errors")
    page.get_by_label("需求标题").fill("动力电池热失控防护技术")
    page.get_by_label("需求内容").fill("我们生产动力电池，想找防止电池热失控和爆炸的安全技术，要求针刺不起火，用于电动汽车电池包。")
    page.get_by_label("预算（万元）").fill("200")
    page.get_by_label("联系方式").fill("王经理 13800000000")
    page.get_by_role("button", name="发布并匹配").click()
    page.wait_for_selector("article.match")
    assert "/enterprise/demands/D-" in page.url and page.locator("article.match").count() == 10
    assert page.get_by_text("匹配度").first.is_visible()
    shot(page, "04-enterprise-candidates")
    page.locator("article.match").first.get_by_role("button", name="有意向").click()
    page.wait_for_selector("text=已表达意向")
    page.goto("/enterprise")
    assert page.get_by_text("动力电池热失控防护技术").is_visible()
    shot(page, "05-enterprise-my-demands")


def test_university_uploads_a_csv_and_sees_the_report(page, web_app, tmp_path):
    org = web_app.state.web.user_by_name("uni1")[0].org
    sign_in(page, "uni1")
    assert page.url.endswith("/university")
    shot(page, "06-university-patents")
    page.goto("/import")
    page.get_by_label("文件（CSV、XLSX 或 JSONL，50 MB 以内）").set_input_files(str(write_csv(tmp_path / "本校专利.csv", org)))
    page.get_by_role("button", name="上传并校验").click()
    page.wait_for_selector("text=校验报告")
    assert page.get_by_text("CN990000003A").is_visible()  # the foreign row is listed, not imported
    shot(page, "07-university-import-report")
    page.get_by_role("button", name="确认导入").click()
    page.wait_for_selector("#status:text('已完成')", timeout=60_000)
    shot(page, "08-job-progress")
    page.goto("/university")
    edit = page.locator("tr", has_text="一种锂电池防爆阀").get_by_role("link", name="修改转化条件")
    edit.click()
    page.get_by_label("转化方式").select_option("许可")
    page.get_by_label("报价（万元）").fill("35")
    shot(page, "09-university-patent-terms")
    page.get_by_role("button", name="保存").click()
    assert page.locator("tr", has_text="一种锂电池防爆阀").get_by_text("许可").is_visible()


def test_staff_sees_the_dashboard_and_demands(page):
    sign_in(page, "staff1")
    assert page.url.endswith("/staff")
    assert page.get_by_text("可转化专利").is_visible() and page.get_by_text("已完成转化").is_visible()
    shot(page, "10-staff-dashboard")
    page.get_by_role("link", name="需求与匹配").first.click()
    page.wait_for_selector("table.list")
    shot(page, "11-staff-demands")
    page.locator("table.list a").first.click()
    page.wait_for_selector("h2:text('候选专利')")
    shot(page, "12-staff-demand-detail")


def test_narrow_screen_has_no_overflow(browser, base_url):
    context = browser.new_context(base_url=base_url, viewport={"width": 390, "height": 844}, locale="zh-CN")
    pg = context.new_page()
    pg.goto("/?q=耐磨涂层钢材表面")
    pg.wait_for_selector("article.match")
    shot(pg, "13-mobile-search", full_page=False)
    context.close()


def test_staff_plans_saves_and_exports_a_session(page, web_app, tmp_path):
    """Issue 7: plan a 对接会, remove a patent (re-solved), save, then both export links deliver."""
    import re

    import openpyxl

    from tests.conftest import add_session_demands

    add_session_demands(web_app.state.engine.settings)  # the demo demands have no strong match
    sign_in(page, "staff1")
    page.get_by_role("link", name="对接会", exact=True).click()
    page.get_by_label("行业", exact=True).fill("我们企业需要")
    page.get_by_label("路演席位（项专利）").fill("4")
    page.get_by_label("企业席位（家）").fill("3")
    page.get_by_label("日期", exact=True).fill("2026-12-10")
    shot(page, "14-sessions-new")
    page.get_by_role("button", name="生成方案").click()
    page.wait_for_selector("table.plan-patents")
    rows = page.locator("table.plan-patents tbody tr")
    removed = rows.first.locator("small").inner_text()
    rows.first.get_by_role("button", name="移除").click()
    page.wait_for_selector("ul.removed")
    assert removed in page.locator("ul.removed").inner_text()
    assert removed not in page.locator("table.plan-patents").inner_text()
    shot(page, "15-sessions-plan")
    page.get_by_role("button", name="保存方案").click()
    page.wait_for_url(re.compile(r"/staff/sessions/\d+$"))
    assert page.get_by_role("heading", name="议程").is_visible()
    shot(page, "16-sessions-saved")
    with page.expect_download() as download:
        page.get_by_role("link", name="导出议程 XLSX").click()
    saved = tmp_path / "agenda.xlsx"
    download.value.save_as(saved)
    assert openpyxl.load_workbook(saved).sheetnames == ["议程", "邀请企业", "专利简介"]
    page.goto(page.get_by_role("link", name=re.compile("打印版")).get_attribute("href"))
    assert page.get_by_role("heading", name="议程").is_visible() and page.locator("section.brief").count() >= 1
    assert removed not in page.locator("section.agenda").inner_text()
    shot(page, "17-sessions-print")

"""The web UI in a real browser: Playwright driving Debian's chromium against a live server with a feedback store.
Classify shows bars, paths and evidence; the review queue takes verdicts from the keyboard into SQLite and undoes
them; a label is added by type-ahead; the label browser opens a branch; project info shows the checksum. Every
page is checked for console errors and for requests that leave the server (no CDN), and photographed into a
folder under tmp (or $TAXONOMIST_SCREENS)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import httpx
import pytest
from live import live
from test_serve import FRUIT, LIMITS, SAUCE, from_folder, trained_folders, zero_shot

from taxonomist.feedback import FeedbackStore
from taxonomist.serve.projects import Projects

os.environ["HF_HUB_OFFLINE"] = "1"
CHROMIUM = "/usr/bin/chromium"
# Debian's chromium as root in a closed network: no sandbox, no GPU, and none of its calls home
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
TO_REVIEW = ["I ate a banana and two apples", "football and tennis on sunday", "a guitar and a drum",
             "carrots and apples for the soup"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(base URL, store path): projects zs (zero-shot tree, with documents waiting for review) and tr (trained)."""
    from taxonomist.serve.app import create_app

    trained, _ = trained_folders(tmp_path_factory)
    path = tmp_path_factory.mktemp("store") / "taxonomist.db"
    store = FeedbackStore(path)
    with live(create_app(Projects([zero_shot("zs"), from_folder("tr", trained)]), LIMITS, store=store)) as base:
        answer = httpx.post(f"{base}/api/projects/zs/documents", json={"documents": [{"text": t} for t in TO_REVIEW]})
        assert answer.status_code == 201, answer.text
        yield base, path
    store.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no {CHROMIUM}: run `make setup` (it installs Debian's chromium with apt-get)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def screens(tmp_path_factory) -> Path:
    folder = os.environ.get("TAXONOMIST_SCREENS")
    return Path(folder) if folder else tmp_path_factory.mktemp("screens")


@pytest.fixture
def page(browser, site):
    """A fresh browser context (empty localStorage) whose console errors, uncaught exceptions and requests to
    anywhere but the server fail the test."""
    base = site[0]
    context = browser.new_context(base_url=base, viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    errors: list[str] = []
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    tab.on("request", lambda request: None if request.url.startswith((base, "data:"))
           else errors.append(f"request outside the server: {request.url}"))
    tab.console_errors = errors  # a test that provokes an error answer takes its expected line out
    yield tab
    context.close()
    assert errors == []


def shoot(page, screens: Path, name: str) -> None:
    screens.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screens / f"{name}.png"), full_page=True)
    assert (screens / f"{name}.png").stat().st_size > 5_000


def rows(path: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(sql, args).fetchall()


def first_suggestion(page, project: str, text: str):
    """The classify page's first suggestion card for `text`, once it is shown."""
    page.goto(f"/ui/?project={project}")
    page.fill("#text", text)
    page.click("#suggest")
    first = page.locator("#suggestions li.suggestion").first
    first.wait_for()
    return first


def test_classify_shows_bars_paths_and_evidence_and_filters_by_branch(page, screens):
    first = first_suggestion(page, "zs", FRUIT)
    assert first.get_attribute("data-label") == "banana"  # named in the text, above the parents it lifts
    assert page.locator("#suggestions li.suggestion[data-label=fruit] .path").inner_text() == "food › fruit"
    assert float(first.locator(".bar.score [role=meter]").get_attribute("aria-valuenow")) > 0
    assert first.locator(".bar.score .fill").evaluate("e => e.getBoundingClientRect().width") > 10
    banana = page.locator("#suggestions li.suggestion[data-label=banana]")
    assert banana.locator(".path").inner_text() == "food › fruit › banana"
    assert {"banana", "apples"} <= set(page.locator("#evidence mark").all_inner_texts())
    banana.hover()
    assert set(page.locator("#evidence mark.active").all_inner_texts()) == {"banana"}
    shoot(page, screens, "classify")

    page.fill("#branch", "spo")
    page.locator("#branch + .typeahead [role=option]", has_text="sport").wait_for()
    page.press("#branch", "Enter")
    assert page.locator("#branches .chip").inner_text() == "sport ×"
    page.click("#suggest")
    page.wait_for_function("""() => {  // the new answer replaced the old one: every path in the branch
      const paths = [...document.querySelectorAll("#suggestions .path")].map((p) => p.textContent);
      return paths.length > 0 && paths.every((p) => p.startsWith("sport"));
    }""")


def test_classify_explains_a_trained_models_suggestion_by_scorers_and_nearest_training_documents(page, screens):
    first = first_suggestion(page, "tr", SAUCE)
    assert first.get_attribute("data-label") == "a"
    assert not first.locator(".reasons ol.examples").is_visible()  # folded until asked for
    first.locator(".reasons summary").click()
    assert "neighbours" in first.locator(".reasons .scorers").inner_text()
    nearest = first.locator(".reasons ol.examples > li")
    assert nearest.count() > 0
    row = nearest.first.inner_text()
    assert row.startswith("doc-") and "tomato basil garlic" in row  # its id and opening words
    shoot(page, screens, "classify-why")


def test_review_accept_undo_and_add_by_the_keyboard_land_in_sqlite(page, site, screens):
    _, db = site
    page.goto("/ui/review.html?project=zs")
    page.locator("#review-suggestions li.suggestion").first.wait_for()
    document = int(page.locator("#doc-title").inner_text().split()[1])
    page.fill("#reviewer", "rita")
    page.press("#reviewer", "Escape")  # out of the text box: keys now act on the queue
    page.keyboard.press("j")
    second = page.locator("#review-suggestions li.suggestion").nth(1)
    assert second.get_attribute("aria-current") == "true"
    label = second.get_attribute("data-label")
    page.keyboard.press("a")
    second.locator(".badge.accept").wait_for()
    [(feedback, verdict, who)] = rows(db, "SELECT id, verdict, who FROM feedback WHERE document = ? AND label_id = ?",
                                      document, label)
    assert (verdict, who) == ("accept", "rita")
    page.locator("#progress-text", has_text="1 accepted").wait_for()

    page.keyboard.press("u")
    second.locator(".badge").wait_for(state="detached")
    assert rows(db, "SELECT verdict, withdraws FROM feedback WHERE withdraws = ?", feedback) == [("withdraw", feedback)]
    with FeedbackStore(db) as store:
        assert [v for v in store.current_verdicts("zs") if v.document == document] == []

    page.keyboard.press("/")
    page.keyboard.type("guit")
    page.locator("#add-label + .typeahead [role=option]", has_text="guitar").wait_for()
    page.keyboard.press("Enter")
    page.locator("#review-suggestions li.add[data-label=guitar] .badge.add").wait_for()
    assert rows(db, "SELECT verdict, who FROM feedback WHERE document = ? AND label_id = 'guitar'",
                document) == [("add", "rita")]
    shoot(page, screens, "review")

    page.reload()
    assert page.locator("#reviewer").input_value() == "rita"  # kept in localStorage
    page.locator("#review-suggestions li.suggestion").first.wait_for()
    assert int(page.locator("#doc-title").inner_text().split()[1]) != document  # reviewed: no longer queued


def test_label_browser_opens_a_branch_and_searches(page, screens):
    page.goto("/ui/labels.html?project=zs")
    toggle = page.locator("li[data-label=food] > button.toggle")
    toggle.click()
    page.locator("li[data-label=food] li[data-label=fruit]").wait_for()
    assert toggle.get_attribute("aria-expanded") == "true"
    page.locator("li[data-label=fruit] > button.toggle").click()
    page.locator("li[data-label=fruit] li[data-label=banana]").wait_for()
    shoot(page, screens, "labels")
    page.fill("#search", "soccer")  # an alias
    page.locator("#found li", has_text="football").wait_for()
    assert page.locator("#found-title").inner_text() == "Found 1 label for “soccer”"


def test_project_info_and_the_project_picker(page, screens):
    page.goto("/ui/info.html?project=tr")
    checksum = page.locator("dd[data-key=checksum] code")
    checksum.wait_for()
    assert len(checksum.inner_text()) == 64
    assert page.locator("dd[data-key=labels]").inner_text() == "4"
    assert "P@1" in page.locator("dd[data-key=held_out]").inner_text()
    page.locator("#review-section").wait_for()
    shoot(page, screens, "info")
    page.select_option("#project", "zs")
    page.wait_for_url("**/info.html?project=zs")
    page.locator("#title", has_text="Project zs").wait_for()
    assert "zero-shot" in page.locator("dd[data-key=checksum]").inner_text()


def test_errors_from_the_server_are_shown_on_the_page(page):
    page.goto("/ui/?project=zs")
    page.fill("#text", "x" * (LIMITS.max_text_chars + 1))
    page.click("#suggest")
    message = page.locator("#message[role=alert]")
    message.wait_for()
    assert "at most" in message.inner_text()  # the server's problem detail, in words
    expected = [e for e in page.console_errors if e.startswith("Failed to load resource") and "status of 413" in e]
    assert len(expected) == 1  # chromium's own line for the 413 answer, taken out; any other error still fails
    page.console_errors.remove(expected[0])


def test_the_api_documentation_renders_offline(page, screens):
    page.goto("/docs")
    page.locator(".opblock-summary-path[data-path='/api/projects/{project_id}/suggest']").wait_for()
    shoot(page, screens, "docs")

"""The built book in a real browser: Debian's Chromium, driven by Selenium through
/usr/bin/chromedriver (nothing downloaded), offline, the book served on loopback.

Every page is visited once (module fixture `visits`) and checked for console
errors, failed or off-machine requests, formulas left as raw LaTeX, images that
do not load or lack alt text, and internal links or anchors that lead nowhere.
Then: the sidebar opens at phone, tablet and desktop widths, search finds a
term, and formulas render from file:// too.

BOOK_HTML=path/to/html runs it on an HTML folder already built (no rebuild).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.book

# Debian's packages (.ci/run installs them); CHROMIUM and CHROMEDRIVER name others.
CHROMIUM = Path(os.environ.get("CHROMIUM") or "/usr/bin/chromium")
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER") or "/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]  # fmt: skip
PAGE_TIMEOUT = 60  # seconds for a page, its scripts and MathJax (a loaded CI machine)
WIDTHS = {"phone": 390, "tablet": 800, "desktop": 1280}
SEARCH_TERM = "pooling"
RAW_MATH = re.compile(r"\\[(\[]")
ID_ATTRIBUTE = re.compile(r"""\bid=["']([^"']+)["']""")


def _need_browser():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (make install)")
    if missing:
        message = f"the browser test needs {', '.join(missing)} (Debian: chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)  # .ci/run installs them: their absence is an error there
        pytest.skip(message)


# -- the book, a server, a browser ------------------------------------------------------


@pytest.fixture(scope="module")
def book(request) -> Path:
    _need_browser()
    given = os.environ.get("BOOK_HTML")
    return Path(given).resolve() if given else request.getfixturevalue("built_book")


class _Handler(http.server.SimpleHTTPRequestHandler):
    failures: list[str]

    def log_message(self, *args):  # quiet; failures are recorded below
        pass

    def log_request(self, code="-", size="-"):
        if isinstance(code, int) and code >= 400:  # HTTPStatus is an int
            self.failures.append(f"{int(code)} {self.path}")


@pytest.fixture(scope="module")
def server(book):
    """The book over HTTP on 127.0.0.1; `.failures` lists every request answered >= 400."""
    handler = type("Handler", (_Handler,), {"failures": []})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(book))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.origin = f"http://127.0.0.1:{httpd.server_port}"
    httpd.failures = handler.failures
    yield httpd
    httpd.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    _need_browser()
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,900"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    driver.set_script_timeout(PAGE_TIMEOUT)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def set_width(driver, width: int) -> None:
    """The viewport a phone, tablet or desktop of that CSS width would give."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def drain_logs(driver) -> tuple[list[str], list[str], list[str]]:
    """(console errors, failed requests, every URL requested) since the last call."""
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    urls, failed = {}, []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        method, params = message["method"], message.get("params", {})
        if method == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            failed.append(f"{params['response']['status']} {params['response']['url']}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            failed.append(f"{params['errorText']} {urls.get(params['requestId'], '?')}")
    return errors, failed, list(urls.values())


WAIT_FOR_PAGE = """
const done = arguments[arguments.length - 1];
const mathjax = window.MathJax && MathJax.startup ? MathJax.startup.promise : Promise.resolve();
mathjax.then(() => {
  const images = [...document.images].map(img => { img.loading = "eager"; return img; });
  return Promise.allSettled(images.map(img => img.decode()));
}).then(() => done("ok"), error => done("MathJax failed: " + error));
"""

INSPECT_PAGE = """
const text = document.body.cloneNode(true);
text.querySelectorAll("pre, code, script, style, textarea").forEach(e => e.remove());
return {
  text: text.textContent,
  typeset: document.querySelectorAll("mjx-container").length,
  untypeset: [...document.querySelectorAll(".math")]
    .filter(e => !e.querySelector("mjx-container")).map(e => e.textContent.slice(0, 80)),
  // TeX errors, and undefined macros (which MathJax shows in red, as text)
  mathErrors: [...document.querySelectorAll(
      "[data-mjx-error], mjx-assistive-mml merror, mjx-assistive-mml mtext[mathcolor=red]")]
    .map(e => e.getAttribute("data-mjx-error") || e.textContent),
  badImages: [...document.images]
    .filter(img => !(img.complete && img.naturalWidth > 0)
                   || !(img.getAttribute("alt") || "").trim())
    .map(img => `${img.getAttribute("src")} (alt: ${JSON.stringify(img.getAttribute("alt"))})`),
  links: [...document.querySelectorAll("a[href]")].map(a => a.href),
};
"""


@dataclass
class Visit:
    page: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    typeset: int = 0
    raw_math: list[str] = field(default_factory=list)
    untypeset: list[str] = field(default_factory=list)
    math_errors: list[str] = field(default_factory=list)
    bad_images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


def visit(driver, url: str, page: str, origin: str) -> Visit:
    drain_logs(driver)
    driver.get(url)
    waited = driver.execute_async_script(WAIT_FOR_PAGE)
    seen = driver.execute_script(INSPECT_PAGE)
    driver.get("about:blank")  # the page is done: what it logged so far is all its own
    errors, failed, requested = drain_logs(driver)
    if waited != "ok":
        errors.append(waited)
    foreign = [u for u in requested if not u.startswith((origin, "data:", "blob:", "about:"))]
    text = seen["text"]
    raw = [text[max(0, m.start() - 30) : m.end() + 30] for m in RAW_MATH.finditer(text)]
    return Visit(
        page,
        console_errors=errors,
        failed_requests=failed,
        foreign_requests=foreign,
        typeset=seen["typeset"],
        raw_math=raw,
        untypeset=seen["untypeset"],
        math_errors=seen["mathErrors"],
        bad_images=seen["badImages"],
        links=seen["links"],
    )


def pages_of(book: Path) -> list[str]:
    """The book's pages (not the theme's template fragments under _static/)."""
    pages = (p.relative_to(book) for p in book.rglob("*.html"))
    return sorted(p.as_posix() for p in pages if not p.parts[0].startswith("_"))


@pytest.fixture(scope="module")
def visits(book, server, browser) -> list[Visit]:
    set_width(browser, WIDTHS["desktop"])
    return [
        visit(browser, f"{server.origin}/{page}", page, server.origin) for page in pages_of(book)
    ]


def report(problems: dict[str, list[str]]) -> str:
    return "\n".join(f"{page}: {item}" for page, items in problems.items() for item in items[:5])


# -- every page --------------------------------------------------------------------------


def test_the_book_has_its_pages(visits):
    pages = {v.page for v in visits}
    assert {"index.html", "intro.html", "assignments.html", "search.html"} <= pages
    assert any(p.startswith("chapters/") for p in pages)


def test_every_page_loads_without_console_errors(visits):
    problems = {v.page: v.console_errors for v in visits if v.console_errors}
    assert not problems, "console errors:\n" + report(problems)


def test_no_request_fails(visits, server):
    problems = {v.page: v.failed_requests for v in visits if v.failed_requests}
    assert not problems, "failed requests:\n" + report(problems)
    assert not server.failures, f"the server answered errors: {server.failures[:10]}"


def test_no_request_leaves_the_machine(visits):
    """An offline classroom gets the whole book: nothing from a CDN or another site."""
    problems = {v.page: v.foreign_requests for v in visits if v.foreign_requests}
    assert not problems, "requests to other hosts:\n" + report(problems)


def test_every_formula_is_typeset(visits):
    """MathJax typeset each formula: none left as raw LaTeX, none shown as an error."""
    problems = {}
    for v in visits:
        found = [f"not typeset: {m}" for m in v.untypeset] + [f"raw: {m!r}" for m in v.raw_math]
        found += [f"MathJax error: {m}" for m in v.math_errors]
        if found:
            problems[v.page] = found
    assert not problems, "formulas:\n" + report(problems)
    assert sum(v.typeset for v in visits) > 0, "no formula typeset anywhere"


def test_every_image_loads_and_has_alt_text(visits):
    problems = {v.page: v.bad_images for v in visits if v.bad_images}
    assert not problems, "images that did not load or lack alt text:\n" + report(problems)


def _ids(path: Path, cache: dict) -> set[str]:
    if path not in cache:
        cache[path] = set(ID_ATTRIBUTE.findall(path.read_text(encoding="utf-8", errors="replace")))
    return cache[path]


def test_every_internal_link_and_anchor_resolves(visits, book, server):
    broken, ids, checked = {}, {}, 0
    for v in visits:
        for link in v.links:
            if not link.startswith(server.origin):
                continue  # another site (Colab, GitHub): not ours to check offline
            parts = urlsplit(link)
            target = book / unquote(parts.path).lstrip("/")
            if target.is_dir():
                target = target / "index.html"
            checked += 1
            if not target.is_file():
                broken.setdefault(v.page, []).append(f"{link}: no such file")
            elif parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in _ids(target, ids):
                    broken.setdefault(v.page, []).append(f"{link}: no such anchor")
    assert checked > 0
    assert not broken, "broken internal links:\n" + report(broken)


# -- navigation, search, file:// -----------------------------------------------------------


def first_chapter(book: Path) -> str:
    return sorted(p.relative_to(book).as_posix() for p in (book / "chapters").glob("*.html"))[0]


def chapter_with_math(book: Path) -> str:
    pages = sorted((book / "chapters").glob("*.html"))
    return (
        next(p for p in pages if 'class="math' in p.read_text(encoding="utf-8"))
        .relative_to(book)
        .as_posix()
    )


def eventually(condition, seconds: float = 10) -> bool:
    """Whether ``condition()`` holds within ``seconds`` (the sidebar slides, it takes time)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def visible_toggles(driver) -> list:
    from selenium.webdriver.common.by import By

    return [b for b in driver.find_elements(By.CSS_SELECTOR, ".primary-toggle") if b.is_displayed()]


def shown_links(element) -> list:
    from selenium.webdriver.common.by import By

    return [a for a in element.find_elements(By.CSS_SELECTOR, "nav a") if a.is_displayed()]


@pytest.mark.parametrize("device", ["phone", "tablet"])
def test_sidebar_opens_on_narrow_screens(browser, book, server, device):
    from selenium.webdriver.common.by import By

    set_width(browser, WIDTHS[device])
    browser.get(f"{server.origin}/{first_chapter(book)}")
    dialog = browser.find_element(By.ID, "pst-primary-sidebar-modal")
    assert not shown_links(dialog), "the table of contents shows before the toggle is pressed"
    toggles = visible_toggles(browser)
    assert toggles, "no visible sidebar toggle"
    toggles[0].click()
    assert eventually(lambda: shown_links(dialog)), "the toggle did not open the sidebar"
    assert dialog.get_attribute("open") is not None
    hrefs = [a.get_attribute("href") or "" for a in shown_links(dialog)]
    assert any("chapters/" in href for href in hrefs), hrefs
    browser.get("about:blank")  # leave no modal behind for the next test


def test_sidebar_hides_and_shows_on_desktop(browser, book, server):
    from selenium.webdriver.common.by import By

    set_width(browser, WIDTHS["desktop"])
    browser.get(f"{server.origin}/{first_chapter(book)}")
    sidebar = browser.find_element(By.ID, "pst-primary-sidebar")
    [toggle] = visible_toggles(browser)
    assert shown_links(sidebar), "the desktop sidebar should start open"
    toggle.click()
    assert eventually(lambda: not shown_links(sidebar)), "the toggle did not hide the sidebar"
    toggle.click()
    assert eventually(lambda: shown_links(sidebar)), "the toggle did not bring it back"


def test_search_finds_a_term(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    set_width(browser, WIDTHS["desktop"])
    browser.get(f"{server.origin}/search.html?q={SEARCH_TERM}")
    results = WebDriverWait(browser, PAGE_TIMEOUT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results ul.search li a")
    )
    assert any("chapters/" in (a.get_attribute("href") or "") for a in results)


def test_formulas_render_from_file_url_too(browser, book):
    set_width(browser, WIDTHS["desktop"])
    page = chapter_with_math(book)
    v = visit(browser, (book / page).as_uri(), page, origin=book.as_uri())
    assert v.typeset > 0, "no formula typeset from file://"
    assert not v.untypeset and not v.raw_math, f"untypeset: {v.untypeset[:3]} raw: {v.raw_math[:3]}"
    assert not v.console_errors, v.console_errors[:5]

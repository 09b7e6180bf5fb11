"""The review page in a real headless Chromium: keyboard review, persistence across reload, export, import, and a
team: two tabs deciding different samples, a stale tab's conflict shown and settled, the token URL."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from surd.review.exporter import ExportConfig, export_review, write_site
from surd.review.journal import read_journal
from surd.review.server import ServeConfig, make_server
from tests.review.test_review import cli, make_dataset, outcome

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists() or not CHROMEDRIVER.exists(),
                       reason="needs Debian's chromium + chromium-driver: apt-get install -y chromium chromium-driver"),
]


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        opts.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def wait_for(driver, script: str, timeout: float = 20.0):
    """Poll a JS expression until truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script("return " + script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}")


def open_page(driver, url: str) -> None:
    driver.get(url)
    wait_for(driver, "document.body.dataset.ready === '1'")


def press(driver, *keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    for k in keys:
        ActionChains(driver).send_keys(k).perform()


def set_name(driver, name: str) -> None:
    """Type the reviewer's name into the header field (what a reviewer does once)."""
    field = driver.find_element("id", "reviewer")
    field.clear()
    field.send_keys(name + "\n")
    wait_for(driver, f"SURD_STATE.reviewer === {json.dumps(name)}")


def saved(driver) -> bool:
    return driver.execute_script("return !SURD_STATE.pending.size && !SURD_STATE.save.inFlight && "
                                 "document.getElementById('save-status').dataset.state === 'saved'")


def review_with_keyboard(driver, n: int) -> tuple[str, str]:
    """Reject the 2nd and 4th samples (one with a note), try and undo a mistake, accept the rest; returns the 2 keys."""
    keys = driver.execute_script("return SURD_INDEX.keys")
    press(driver, "a")  # accept #0
    press(driver, "n")  # a note on #1, typed before deciding it
    note = driver.switch_to.active_element
    assert note.get_attribute("id") == "d-note"
    note.send_keys("hands are wrong\n")  # Enter keeps the note and leaves the field
    press(driver, "r")  # reject #1 (with its note)
    press(driver, "r")  # #2 rejected by mistake ...
    press(driver, "u")  # ... undone: #2 is undecided again and under the cursor
    assert driver.execute_script("return SURD_STATE.decisions.has(arguments[0])", keys[2]) is False
    assert driver.execute_script("return SURD_INDEX.keys[SURD_STATE.view[SURD_STATE.pos]]") == keys[2]
    press(driver, "a")  # #2 accepted
    press(driver, "k", "j")  # back and forth keeps the cursor on #3
    press(driver, "r")  # #3 rejected
    press(driver, *["a"] * (n - 4))
    wait_for(driver, f"SURD_STATE.counts.accept === {n - 2} && SURD_STATE.counts.reject === 2")
    return keys[1], keys[3]


def check_page_state(driver, rejected: tuple[str, str], n: int) -> None:
    cards = driver.execute_script(
        "return [...document.querySelectorAll('.card')].map(c => [c.dataset.key, c.dataset.decision])")
    assert len(cards) == n
    assert {k for k, d in cards if d == "reject"} == set(rejected)
    assert all(d == "accept" for k, d in cards if k not in rejected)
    assert "2 rejected" in driver.find_element("id", "progress-text").text


def export_download(driver) -> Path:
    driver.find_element("id", "export").click()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done = [p for p in driver.downloads.glob("decisions-*.json") if p.stat().st_size > 0]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError("the Export button produced no download")


def check_import(data: Path, exported: Path, rejected: tuple[str, str], keys: list[str], out: Path) -> None:
    res = cli("review", "import", str(data), str(exported), "--out", str(out))
    assert res.exit_code == 0, res.output
    kept, rejects = outcome(out)
    assert kept == set(keys) - set(rejected)
    assert rejects == {rejected[0]: ("manual_reject", "hands are wrong"), rejected[1]: ("manual_reject", "")}


def test_served_review_round_trip(browser, tmp_path):
    keys = make_dataset(tmp_path / "data", 9, shards=2)
    export_review(tmp_path / "data", tmp_path / "rev", progress=False)
    server = make_server(tmp_path / "rev", port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        open_page(browser, url)
        assert "saving to the review server" in browser.find_element("id", "mode").text
        press(browser, "a")  # no name yet: the page asks for it instead of deciding
        assert browser.switch_to.active_element.get_attribute("id") == "reviewer"
        assert browser.execute_script("return SURD_STATE.decisions.size") == 0
        set_name(browser, "alice")
        rejected = review_with_keyboard(browser, 9)
        wait_for(browser, "SURD_STATE.pending.size === 0 && !SURD_STATE.save.inFlight")
        wait_for(browser, "document.getElementById('save-status').dataset.state === 'saved'")
        on_disk = {k: r for k, r in read_journal(tmp_path / "rev" / "decisions.jsonl").current.items()
                   if r["decision"] != "undecided"}
        assert {k for k, v in on_disk.items() if v["decision"] == "reject"} == set(rejected)
        assert on_disk[rejected[0]]["note"] == "hands are wrong" and len(on_disk) == 9
        assert {v["reviewer"] for v in on_disk.values()} == {"alice"}
        last = browser.execute_script("return SURD_INDEX.keys[8]")
        press(browser, "u")  # undo a saved decision: sent as an explicit "undecided", not a missing key
        wait_for(browser, f"SURD_STATE.revs.get('{last}') === 2 && !SURD_STATE.pending.size")
        assert read_journal(tmp_path / "rev" / "decisions.jsonl").current[last]["decision"] == "undecided"
        press(browser, "a")
        wait_for(browser, f"SURD_STATE.revs.get('{last}') === 3 && !SURD_STATE.pending.size")

        open_page(browser, url)  # reload: decisions come back from disk
        check_page_state(browser, rejected, 9)
        exported = export_download(browser)
    finally:
        server.shutdown()
        server.server_close()
    check_import(tmp_path / "data", exported, rejected, keys, tmp_path / "out")


def test_file_mode_review_round_trip(browser, tmp_path):
    keys = make_dataset(tmp_path / "data", 7, shards=1)
    export_review(tmp_path / "data", tmp_path / "rev", progress=False)
    url = (tmp_path / "rev" / "index.html").as_uri()
    open_page(browser, url)
    assert "file mode" in browser.find_element("id", "mode").text
    rejected = review_with_keyboard(browser, 7)
    browser.refresh()  # reload: decisions come back from browser storage
    wait_for(browser, "document.body.dataset.ready === '1'")
    check_page_state(browser, rejected, 7)
    exported = export_download(browser)
    assert not (tmp_path / "rev" / "decisions.json").exists()
    check_import(tmp_path / "data", exported, rejected, keys, tmp_path / "out")


def test_filters_show_only_matching_samples(browser, tmp_path):
    make_dataset(tmp_path / "data", 30, shards=1)
    export_review(tmp_path / "data", tmp_path / "rev", progress=False)
    open_page(browser, (tmp_path / "rev" / "index.html").as_uri())
    press(browser, "r", "r", "a")
    browser.execute_script("document.getElementById('f-status').value = 'reject';"
                           "document.getElementById('f-status').dispatchEvent(new Event('change'))")
    wait_for(browser, "document.querySelectorAll('.card').length === 2")
    browser.execute_script("const s = document.getElementById('f-status'); s.value = 'all';"
                           "document.getElementById('f-field').value = 'margin';"
                           "document.getElementById('f-min').value = '0.15';"
                           "document.getElementById('f-apply').click()")
    # margins are 2*(i % 10)/100: i % 10 >= 8 passes, i.e. 6 of 30 samples
    wait_for(browser, "document.querySelectorAll('.card').length === 6")
    assert "6 shown" in browser.find_element("id", "page-info").text


def test_first_page_of_5000_loads_fast(browser, tmp_path, record_property):
    make_dataset(tmp_path / "data", 5000, shards=5)
    t0 = time.perf_counter()
    export_review(tmp_path / "data", tmp_path / "rev", ExportConfig(), progress=False)
    export_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    open_page(browser, (tmp_path / "rev" / "index.html").as_uri())
    wall_ms = (time.perf_counter() - t0) * 1000
    page_ms = browser.execute_script("return window.SURD_FIRST_PAGE_MS")
    record_property("export_5000_seconds", round(export_s, 2))
    record_property("first_page_ms", round(page_ms, 1))
    print(f"5000 samples: export {export_s:.2f}s, first page {page_ms:.0f} ms after navigation ({wall_ms:.0f} ms wall)")
    # only the visible page is rendered and only the chunks it needs are loaded
    assert browser.execute_script("return document.querySelectorAll('.card').length") == 24
    assert browser.execute_script("return SURD_STATE.chunks.size") <= 2
    assert page_ms < 5000
    from selenium.webdriver.common.keys import Keys

    press(browser, Keys.PAGE_DOWN)
    wait_for(browser, "SURD_STATE.pos === 24 && document.querySelector('.card.current').dataset.pos === '24'")


def test_60000_samples_stay_smooth(browser, tmp_path, record_property):
    """A 60,000-sample site (data files only): first page, a filter over everything, and paging stay fast."""
    rows = [{"key": f"{i:016x}", "ext": "jpg", "thumb": False, "simple_prompt": f"a photo of a cat number {i}",
             "complex_prompt": f"cat {i}, " + "highly detailed, octane render, 8k, artstation, " * 3,
             "simple_score": 0.2 + (i % 100) / 1000, "complex_score": 0.25} for i in range(60_000)]
    site = tmp_path / "site"
    site.mkdir()
    write_site(rows, site, ExportConfig(), {"dataset": str(tmp_path / "data"), "batch": 0, "batches": 1})
    open_page(browser, site.joinpath("index.html").as_uri())
    first_ms = browser.execute_script("return window.SURD_FIRST_PAGE_MS")
    filter_ms = browser.execute_script(
        "const t = performance.now(); const f = (id, v) => document.getElementById(id).value = v;"
        "f('f-status', 'undecided'); f('f-field', 'margin'); f('f-min', '0.0295');"
        "document.getElementById('f-apply').click(); return performance.now() - t")
    # margin = (i % 100) / 1000 - 0.05 >= 0.0295 for i % 100 >= 80: 12,000 of 60,000
    wait_for(browser, "SURD_STATE.view.length === 12000 && document.querySelectorAll('.card').length === 24")
    from selenium.webdriver.common.keys import Keys

    t0 = time.perf_counter()
    press(browser, *[Keys.PAGE_DOWN] * 20, "a", "r")
    wait_for(browser, "SURD_STATE.counts.accept === 1 && SURD_STATE.counts.reject === 1")
    paging_ms = (time.perf_counter() - t0) * 1000
    record_property("first_page_ms_60000", round(first_ms, 1))
    record_property("filter_ms_60000", round(filter_ms, 1))
    print(f"60000 samples: first page {first_ms:.0f} ms, filter {filter_ms:.0f} ms, 20 pages + 2 decisions {paging_ms:.0f} ms")
    assert browser.execute_script("return document.querySelectorAll('.card').length") == 24
    assert first_ms < 5000 and filter_ms < 1000 and paging_ms < 10000


@pytest.fixture
def team_site(tmp_path):
    keys = sorted(make_dataset(tmp_path / "data", 12, shards=1))
    export_review(tmp_path / "data", tmp_path / "rev", ExportConfig(thumb_size=64), progress=False)
    server = make_server(tmp_path / "rev", cfg=ServeConfig(port=0))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, f"http://127.0.0.1:{server.server_port}/", keys
    server.shutdown()
    server.server_close()


def card_decision(driver, key: str) -> str:
    return driver.execute_script(
        "const c = document.querySelector(`.card[data-key='${arguments[0]}']`); return c ? c.dataset.decision : null", key)


def test_two_tabs_deciding_different_samples_keep_both(browser, team_site):
    server, url, keys = team_site
    open_page(browser, url)
    set_name(browser, "alice")
    tab_a = browser.current_window_handle
    browser.switch_to.new_window("tab")  # opened before A decides anything
    open_page(browser, url)
    set_name(browser, "bob")
    tab_b = browser.current_window_handle

    browser.switch_to.window(tab_a)
    press(browser, "a")  # keys[0] accepted in tab A
    wait_for(browser, "SURD_STATE.revs.get(SURD_INDEX.keys[0]) === 1")
    browser.switch_to.window(tab_b)
    press(browser, "j", "j", "j", "r")  # keys[3] rejected in tab B, which never saw A's decision
    wait_for(browser, "SURD_STATE.revs.get(SURD_INDEX.keys[3]) === 1")
    browser.switch_to.window(tab_a)
    press(browser, "a")  # keys[1] accepted in tab A
    wait_for(browser, "SURD_STATE.revs.get(SURD_INDEX.keys[1]) === 1")
    for tab in (tab_a, tab_b):
        browser.switch_to.window(tab)
        wait_for(browser, "!SURD_STATE.pending.size && !SURD_STATE.save.inFlight && !SURD_STATE.conflicts.size")

    journal = read_journal(server.state.journal.path).current
    assert {k: (r["decision"], r["reviewer"]) for k, r in journal.items()} == {
        keys[0]: ("accept", "alice"), keys[1]: ("accept", "alice"), keys[3]: ("reject", "bob")}
    browser.switch_to.window(tab_a)  # each tab catches up with the other's decisions (polling)
    wait_for(browser, f"document.querySelector(`.card[data-key='{keys[3]}']`).dataset.decision === 'reject'")
    browser.switch_to.window(tab_b)
    wait_for(browser, f"document.querySelector(`.card[data-key='{keys[1]}']`).dataset.decision === 'accept'")
    wait_for(browser, "document.getElementById('team').textContent.includes('alice 2')")
    assert "bob 1" in browser.find_element("id", "team").text and "9 left" in browser.find_element("id", "team").text
    server.state.journal.write_snapshot()
    snapshot = json.loads((server.state.root / "decisions.json").read_text())["decisions"]
    assert set(snapshot) == {keys[0], keys[1], keys[3]}


def test_stale_tab_shows_the_conflict_instead_of_overwriting(browser, team_site):
    server, url, keys = team_site
    open_page(browser, url)
    set_name(browser, "alice")
    tab_a = browser.current_window_handle
    browser.switch_to.new_window("tab")
    open_page(browser, url)
    set_name(browser, "bob")
    browser.execute_script("SURD_STATE.poll.stopped = true")  # tab B goes stale: it never hears of A's changes
    tab_b = browser.current_window_handle

    browser.switch_to.window(tab_a)
    press(browser, "a", "r")  # A: keys[0] accept, keys[1] reject
    wait_for(browser, "SURD_STATE.revs.get(SURD_INDEX.keys[1]) === 1 && !SURD_STATE.pending.size")

    browser.switch_to.window(tab_b)
    press(browser, "r", "a", "a")  # B, stale: keys[0] reject, keys[1] accept (both conflict), keys[2] accept (fine)
    wait_for(browser, "SURD_STATE.conflicts.size === 2 && !document.getElementById('conflicts').hidden")
    wait_for(browser, "!SURD_STATE.pending.size && !SURD_STATE.save.inFlight")
    items = browser.execute_script("return [...document.querySelectorAll('#conflict-list li')].map(li => [li.dataset.key,"
                                   " li.textContent])")
    assert {k for k, _ in items} == {keys[0], keys[1]}
    assert "you: reject" in dict(items)[keys[0]] and "alice: accept" in dict(items)[keys[0]]
    assert browser.execute_script(f"return document.querySelector(`.card[data-key='{keys[0]}']`)"
                                  ".classList.contains('conflict')")
    journal = read_journal(server.state.journal.path).current
    assert journal[keys[0]]["decision"] == "accept" and journal[keys[1]]["decision"] == "reject"  # not overwritten
    assert journal[keys[2]]["reviewer"] == "bob"  # the change that did not conflict was saved

    browser.find_element("css selector", f"#conflict-list li[data-key='{keys[0]}'] .keep-mine").click()
    browser.find_element("css selector", f"#conflict-list li[data-key='{keys[1]}'] .take-theirs").click()
    wait_for(browser, "SURD_STATE.conflicts.size === 0 && document.getElementById('conflicts').hidden")
    wait_for(browser, "!SURD_STATE.pending.size && !SURD_STATE.save.inFlight")
    assert card_decision(browser, keys[1]) == "reject"  # took alice's
    journal = read_journal(server.state.journal.path).current
    assert (journal[keys[0]]["decision"], journal[keys[0]]["reviewer"], journal[keys[0]]["rev"]) == ("reject", "bob", 2)
    assert (journal[keys[1]]["decision"], journal[keys[1]]["rev"]) == ("reject", 1)


def test_token_url_opens_the_site_and_saves(browser, tmp_path):
    make_dataset(tmp_path / "data", 4, shards=1)
    export_review(tmp_path / "data", tmp_path / "rev", ExportConfig(thumb_size=64), progress=False)
    token = "a-team-token-for-this-test"
    server = make_server(tmp_path / "rev", cfg=ServeConfig(port=0, token=token))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}/"
        browser.get(base)
        assert "missing or wrong token" in browser.page_source
        open_page(browser, base + "?token=" + token)
        assert browser.current_url == base  # the token moved into a cookie, out of the address bar
        # the thumbnail came through the cookie-authenticated server (it loads after the page: waited for, not raced)
        assert wait_for(browser, "(document.querySelector('.card img') || {}).naturalWidth") > 0
        set_name(browser, "carol")
        press(browser, "r")
        wait_for(browser, "SURD_STATE.revs.get(SURD_INDEX.keys[0]) === 1")
        assert read_journal(server.state.journal.path).current[sorted(server.state.keys)[0]]["reviewer"] == "carol"
    finally:
        server.shutdown()
        server.server_close()

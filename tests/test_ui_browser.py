"""Issue 17 in a real browser: headless Chromium from Debian's packages (`chromium`, `chromium-driver`) driven
by Selenium, against `gitflows ui`'s app served by uvicorn on 127.0.0.1, with a real agent running the flow.

Each page loads; a run started from the form reaches success while the agent runs it, its logs arriving on
the page as they are written, the graph showing each task. Screenshots of the main pages are written to
GITFLOWS_UI_SCREENSHOTS when it is set (docs/ui/ holds the ones the docs show), else to a temp folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

FLOW = '''
import time

from gitflows import Flow, Parameter, task


@task
def greet(name):
    for i in range(4):
        print(f"hello {name} {i}", flush=True)
        time.sleep(0.6)
    return name


@task
def shout(word):
    return word.upper()


with Flow("hello") as flow:
    shout(greet(Parameter("name", default="world")))
'''
TOKEN = "browser-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A registry holding the flow (registered from a Local script), the app on 127.0.0.1, and its URL."""
    import uvicorn

    from gitflows.script import extract_flow_from_file
    from gitflows.storage import Local
    from gitflows.ui import create_app

    url = f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("GITFLOWS_REGISTRY", url)
    script = tmp_path / "hello.py"
    script.write_text(FLOW)
    flow = extract_flow_from_file(str(script))
    flow.storage = Local(path=str(script), stored_as_script=True, directory=str(tmp_path / "local"),
                         add_default_labels=False)
    flow.register(labels=["demo"])
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(url, TOKEN), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield url, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not os.path.exists(driver_path):
        pytest.fail("chromium-driver is not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("GITFLOWS_UI_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _wait(browser, seconds):
    """Waits that look again when an element went stale: a page that navigates (a form's redirect) or reloads
    itself (run.js) replaces its elements between finding one and reading it."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))


@pytest.mark.slow
def test_start_a_run_in_the_browser_and_watch_it_succeed(served, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from gitflows.agent import Agent

    url, base = served
    folder = shots(tmp_path)
    wait = _wait(browser, 60)

    browser.get(base + "/")
    assert browser.find_element(By.ID, "flows").text.count("hello") >= 1
    assert "demo" in browser.find_element(By.CSS_SELECTOR, "tr.flow-row").text
    for path, marker in (("/runs", "Runs"), ("/agents", "Agents"), ("/flows/hello", "Versions"),
                         ("/flows/hello/versions/1", "Files (closure)")):
        browser.get(base + path)
        assert marker in browser.page_source, path
    graph = browser.find_element(By.ID, "graph").get_attribute("innerHTML")
    assert "greet" in graph and "shout" in graph and "<svg" in graph

    # log in with the token, then start a run from the form with a parameter
    browser.get(base + "/login?next=/flows/hello")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "login").click()
    wait.until(lambda d: "/login" not in d.current_url and d.find_elements(By.NAME, "param:name"))
    field = browser.find_element(By.NAME, "param:name")
    field.send_keys('"browser"')
    browser.find_element(By.ID, "start").click()
    wait.until(lambda d: "/runs/" in d.current_url)
    assert browser.find_element(By.ID, "run-state").text == "scheduled"

    agent = Agent(url, labels=["demo"], poll=0.1, lease=3.0, heartbeat=0.5, timeout=120)
    worker = threading.Thread(target=agent.run, daemon=True)
    worker.start()
    try:
        # the logs arrive while the run goes on (stored with each heartbeat), without reloading the page
        wait.until(lambda d: "hello browser 0" in d.find_element(By.ID, "run-logs").text)
        seen_running = browser.find_element(By.ID, "run-state").text
        wait.until(lambda d: d.find_element(By.ID, "run-state").text in ("success", "failed"))
        assert browser.find_element(By.ID, "run-state").text == "success", browser.find_element(By.ID, "run-logs").text
        assert seen_running in ("running", "success")
        logs = browser.find_element(By.ID, "run-logs").text
        assert "hello browser 3" in logs
        # a change of state reloads the page: the finished run's facts, task states and coloured graph
        wait.until(lambda d: d.find_elements(By.ID, "task-states"))
        drawn = browser.find_element(By.ID, "run-graph").get_attribute("innerHTML")
        assert "greet" in drawn and "shout" in drawn and "Success" in drawn
        assert agent.name in browser.find_element(By.ID, "run-facts").text
        browser.save_screenshot(str(folder / "run.png"))
        states = browser.find_element(By.ID, "task-states").text
        assert "greet Success" in states and "shout Success" in states
    finally:
        agent.stopping.set()
        worker.join(30)

    browser.get(base + "/")
    assert "success" in browser.find_element(By.CSS_SELECTOR, "tr.flow-row").text
    browser.save_screenshot(str(folder / "flows.png"))
    browser.get(base + "/flows/hello/versions/1")
    browser.save_screenshot(str(folder / "version.png"))
    browser.get(base + "/agents")
    assert "alive" in browser.find_element(By.ID, "agents").text
    for name in ("run.png", "flows.png", "version.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_cancel_a_scheduled_run_and_bad_input_in_the_browser(served, browser):
    from selenium.webdriver.common.by import By

    url, base = served
    wait = _wait(browser, 30)
    browser.get(base + "/login?next=/flows/hello")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "login").click()
    wait.until(lambda d: "/login" not in d.current_url and d.find_elements(By.NAME, "param:name"))
    browser.find_element(By.NAME, "param:name").send_keys("1e999999")
    browser.find_element(By.ID, "start").click()
    error = wait.until(lambda d: d.find_element(By.ID, "form-error")).text
    assert "not a finite number" in error
    field = browser.find_element(By.NAME, "param:name")
    assert field.get_attribute("value") == "1e999999"  # kept for correcting
    field.clear()
    browser.find_element(By.ID, "start").click()
    wait.until(lambda d: "/runs/" in d.current_url)
    browser.find_element(By.ID, "cancel").click()
    wait.until(lambda d: d.find_element(By.ID, "run-state").text == "cancelled")
    browser.get(base + "/runs/99999")
    assert "404" in browser.title and "run 99999" in browser.find_element(By.ID, "message").text

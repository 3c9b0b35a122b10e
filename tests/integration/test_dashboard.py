"""The live page in a real headless Chromium (Debian's chromium and chromedriver, driven by
selenium), against real deployments on the test's mosquitto: the model version shown rises, a
gateway killed shows offline, a screenshot is saved; and the page's server stops with what
serves it, leaving its port free."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from broker.mosquitto import free_port
from fleetlearn.deploy.up import LocalDeployment, UpSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")
PNG = b"\x89PNG\r\n\x1a\n"

#: The page as the test reads it, in one call: version shown, each node's status, the banner.
READ_PAGE = """
const rows = [...document.querySelectorAll('#nodes tbody tr')];
return {version: document.getElementById('model-version').textContent,
        nodes: Object.fromEntries(rows.map(r => [r.dataset.node, r.dataset.online])),
        pids: Object.fromEntries(rows.map(r => [r.dataset.node, r.cells[5].textContent])),
        exits: Object.fromEntries(rows.map(r => [r.dataset.node, r.dataset.exit ?? null])),
        banner: document.getElementById('connection').textContent,
        rejected: document.getElementById('rate-rejected').textContent,
        letters: [...document.querySelectorAll('#deadletters tbody tr')].map(
            r => r.cells[2].textContent),
        lines: document.querySelectorAll('#chart-error polyline').length};
"""


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    if not (CHROMEDRIVER.is_file() and CHROMIUM.is_file()):
        pytest.fail("chromium and chromium-driver are not installed: run `make setup` (as "
                    "root it installs them) or `sudo apt-get install chromium chromium-driver`")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,1100"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


def page(driver: webdriver.Chrome) -> dict:
    return driver.execute_script(READ_PAGE)


def wait(driver: webdriver.Chrome, condition, timeout: float, what: str, alive=None):
    """Poll the page until ``condition(page)`` holds (its value is returned); fail after
    ``timeout`` seconds, or at once when ``alive()`` says what serves the page died."""
    def check(_):
        if alive is not None:
            alive()
        return condition(page(driver))
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        check, f"timed out after {timeout}s waiting for {what}; the page: {page(driver)}")


def open_page(driver: webdriver.Chrome, url: str, timeout: float, alive) -> None:
    """Load the page once its server listens (until then loading it fails)."""
    def loaded(_):
        alive()
        driver.get(url)
        return driver.title == "fleetlearn: live"
    WebDriverWait(driver, timeout, poll_frequency=0.5, ignored_exceptions=(WebDriverException,)
                  ).until(loaded, f"no page at {url}")


def rate(text: str) -> float:
    """A rate as the page shows it ("1,234.5"; a dash before there is one)."""
    return float(text.replace(",", "")) if text[:1].isdigit() else 0.0


def version_number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def child_pid(parent: int, node: str) -> int:
    """The pid of the node process ``parent`` started with ``--id node`` (its own child:
    never a process of another test or user)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == parent and b"--id" in argv and argv[argv.index(b"--id") + 1] == node.encode():
            found.append(int(stat.parent.name))
    assert len(found) == 1, f"{node}: {found}"
    return found[0]


def nothing_listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def screenshot(driver: webdriver.Chrome, path: Path) -> None:
    assert driver.save_screenshot(str(path))
    data = path.read_bytes()
    assert len(data) > len(PNG) and data.startswith(PNG)


def test_up_dashboard_shows_the_version_rise_and_a_killed_gateway_offline(
        browser, address, prefix, tmp_path):
    port = free_port()
    up = subprocess.Popen(
        [sys.executable, "-m", "fleetlearn", "up", "--quiet", "--broker", str(address),
         "--prefix", prefix, "--duration", "120", "--seed", "3", "--dashboard", str(port),
         "--log-dir", str(tmp_path / "logs")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def alive() -> None:
        assert up.poll() is None, f"up ended early: {up.communicate()}"

    try:
        open_page(browser, f"http://127.0.0.1:{port}/", 60, alive)
        first = wait(browser, lambda p: version_number(p["version"]), 90,
                     "a model version on the page", alive)
        wait(browser, lambda p: (version_number(p["version"]) or 0) > first, 30,
             f"the version shown to rise above {first}", alive)
        shown = wait(browser, lambda p: p if p["nodes"].get("gw-1") == "online" else None, 30,
                     "gw-1 online", alive)
        assert {"aggregator", "gw-0", "gw-1", "predictor", "fleet"} <= set(shown["nodes"])
        assert shown["lines"] >= 2  # error curves drawn: the gateways' (and federated)
        victim = child_pid(up.pid, "gw-1")
        assert shown["pids"]["gw-1"] == str(victim)  # the page names up's own process

        # SIGKILL: no clean stop, its last will says offline; up then stops the run
        os.kill(victim, signal.SIGKILL)
        wait(browser, lambda p: p["nodes"].get("gw-1") == "offline", 30, "gw-1 offline")
        screenshot(browser, tmp_path / "dashboard.png")

        _, err = up.communicate(timeout=60)
        assert up.returncode == 1 and "gw-1 exited with code -9" in err, err
        final = wait(browser, lambda p: p if "stopped" in p["banner"] else None, 15,
                     "the page to say the run stopped")
        # up then stopped the rest: all offline, but only gw-1 killed (SIGKILL: -9)
        assert final["nodes"]["gw-1"] == "offline" and final["exits"]["gw-1"] == "-9"
        assert final["exits"]["gw-0"] == "0" and "killed" in final["pids"]["gw-1"]
        assert nothing_listens(port)  # the page's server went with up
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)  # up stops what it started
            try:
                up.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                up.kill()
                up.communicate()


def test_dashboard_command_watches_a_running_deployment(browser, address, prefix, tmp_path):
    # faults: readings refused, hence rejections and dead letters to show
    own_page = free_port()  # the deployment's own page too, run in this process
    dep = LocalDeployment(UpSettings(broker=address, prefix=prefix, duration=None, seed=5,
                                     faults="all=0.05", log_dir=tmp_path / "logs",
                                     dashboard=own_page))
    port = free_port()
    dashboard = None
    try:
        dep.start()  # aggregator, 2 gateways, predictor, fleet: running until stopped
        dashboard = subprocess.Popen(
            [sys.executable, "-m", "fleetlearn", "dashboard", "--broker", str(address),
             "--prefix", prefix, "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def alive() -> None:
            assert dashboard.poll() is None, f"dashboard ended: {dashboard.communicate()}"

        open_page(browser, f"http://127.0.0.1:{port}/", 60, alive)
        first = wait(browser, lambda p: version_number(p["version"]), 60,
                     "a model version on the page", alive)
        wait(browser, lambda p: (version_number(p["version"]) or 0) > first, 30,
             f"the version shown to rise above {first}", alive)
        wait(browser, lambda p: p["nodes"].get("gw-0") == p["nodes"].get("gw-1") == "online",
             30, "both gateways online", alive)
        shown = wait(browser, lambda p: p if p["letters"] and rate(p["rejected"]) > 0
                     else None, 30, "dead letters and a rate of rejections", alive)
        assert all(re.fullmatch(r"[a-z_]+", reason) for reason in shown["letters"]), shown

        gw1 = next(c for c in dep.children if c.name == "gw-1").process
        gw1.send_signal(signal.SIGKILL)
        gw1.wait(10)
        # the deployment goes on: gw-1 shows offline while gw-0 is still online
        wait(browser, lambda p: (p["nodes"].get("gw-1"), p["nodes"].get("gw-0"))
             == ("offline", "online"), 30, "gw-1 offline beside gw-0 online", alive)
        screenshot(browser, tmp_path / "dashboard-command.png")

        dashboard.send_signal(signal.SIGTERM)
        out, err = dashboard.communicate(timeout=15)
        assert dashboard.returncode == 0, err
        assert f"http://127.0.0.1:{port}/" in out
        wait(browser, lambda p: "stopped" in p["banner"], 15, "the page to say it stopped")
        assert nothing_listens(port)

        # the deployment's own page stops with it: no thread, nothing on its port
        assert "dashboard" in {t.name for t in threading.enumerate()}
        dep.stop_all()
        assert "dashboard" not in {t.name for t in threading.enumerate()}
        assert nothing_listens(own_page)
    finally:
        if dashboard is not None and dashboard.poll() is None:
            dashboard.kill()
            dashboard.communicate()
        dep.stop_all()


def test_up_with_a_taken_port_says_so_and_leaves_nothing_running(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "fleetlearn", "up", "--quiet", "--duration", "5",
             "--dashboard", str(port), "--log-dir", str(tmp_path / "logs")],
            capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith(f"fleetlearn: error: cannot serve the dashboard on "
                                  f"127.0.0.1:{port}"), done.stderr
    assert done.stderr.count("\n") == 1
    # the broker up had started is gone, and no node was started
    left = [p for p in Path("/proc").glob("[0-9]*/cmdline")
            if str(tmp_path).encode() in _read(p)]
    assert left == []
    assert not (tmp_path / "logs" / "aggregator.log").exists()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""  # gone meanwhile

"""`jaxbp ui` in a real browser: headless Debian chromium (Playwright, nothing downloaded) opens the compare
view of a finished sweep and finds its child runs and their eta values."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from helpers import CHROMIUM, free_port, listening, require_package
from jaxbp.sweeps.run import run_sweep
from jaxbp.sweeps.spec import parse_spec

pytestmark = pytest.mark.browser

JAXBP = str(Path(sys.executable).with_name("jaxbp"))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
SPEC = {"name": "ui", "dataset": "xor", "base": {"sizes": [2, 4, 2], "epochs": 2, "batch_size": 8},
        "sweep": {"eta": [0.25, 4.0], "seed": [0, 1]}}



@pytest.fixture
def ui(tmp_path, monkeypatch):
    """A finished sweep in a SQLite store, served by `jaxbp ui` on a free loopback port."""
    require_package(CHROMIUM, "chromium")
    monkeypatch.setenv("JAXBP_SPOOL", str(tmp_path / "spool"))
    monkeypatch.chdir(tmp_path)
    result = run_sweep(parse_spec(SPEC), f"sqlite:///{tmp_path / 'mlflow.db'}")
    port = free_port()
    proc = subprocess.Popen([JAXBP, "ui", "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines, deadline = [], time.monotonic() + 120
    while not any("compare ui sweep:" in line for line in lines):
        assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
        lines.append(proc.stdout.readline())
    yield result, "".join(lines), port
    assert listening(port)
    proc.send_signal(signal.SIGTERM)  # as Ctrl-C: jaxbp ui stops its server too
    assert proc.wait(timeout=60) == 0
    assert not listening(port)


def test_compare_view_shows_the_children_and_their_eta(ui, tmp_path):
    result, printed, port = ui
    found = re.search(r"compare ui sweep: (\S+)", printed)
    assert found, printed
    url = found.group(1)
    assert all(row.run_id in url for row in result.rows)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)  # a fresh temporary profile
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(url, wait_until="load")
        page.wait_for_selector("text=Comparing 4 Runs", timeout=90_000)
        page.wait_for_selector(f"text={result.rows[0]['name']}", timeout=60_000)
        page.wait_for_timeout(1000)
        text = page.inner_text("body")
        page.screenshot(path=str(tmp_path / "compare.png"))
        browser.close()
    for row in result.rows:
        assert row.name in text  # e.g. "eta=0.25 seed=1"
    assert "eta" in text and "0.25" in text and "4" in text



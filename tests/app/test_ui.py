"""`jaxbp ui` in a real browser: headless Debian chromium (Playwright, nothing downloaded) opens the URLs it
prints for a finished sweep: the experiment in MLflow 3's model-training view (not its GenAI overview), and
the sweep's configs ranked by the spec's metric with their η and sizes, without a click."""

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
METRIC = "validation_accuracy"  # the spec's (default) metric
GRID_ROWS = """rows => rows.map(r => [Number(r.getAttribute('row-index')), Object.fromEntries(
    [...r.querySelectorAll('.ag-cell')].map(c => [c.getAttribute('col-id'), c.innerText.trim()]))])"""


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
    while not any("Ctrl-C stops it" in line for line in lines):  # printed after every URL
        assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
        lines.append(proc.stdout.readline())
    yield result, "".join(lines), port
    assert listening(port)
    proc.send_signal(signal.SIGTERM)  # as Ctrl-C: jaxbp ui stops its server too
    assert proc.wait(timeout=60) == 0
    assert not listening(port)


def grid(page, part: str) -> list[dict]:
    """{column id: text} of each row of the runs table's ``part`` (pinned-left or center), in display order."""
    return [cells for _, cells in sorted(page.eval_on_selector_all(f".ag-{part}-cols-container .ag-row", GRID_ROWS))]


def ranked_table(browser, url: str, rows, screenshot: Path) -> tuple[list[str], list[dict]]:
    """Open ``url`` in a fresh browser context and wait, without a click, for the runs table of ``rows``'
    configs; return its run names and its {column id: text} rows, in display order."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})  # a new context: a fresh profile
    page.goto(url, wait_until="load")
    for row in rows:
        page.wait_for_selector(f"text={row.name}", timeout=60_000)
    page.wait_for_selector(f".ag-header-cell >> text={METRIC}", timeout=30_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(screenshot))
    text = page.inner_text("body")
    assert "/runs?workflowType=machine_learning" in page.url and "Token Usage" not in text  # not the GenAI page
    names = [cells["attributes.`Run Name`"].splitlines()[-1] for cells in grid(page, "pinned-left")]
    return names, grid(page, "center")


def test_printed_urls_open_the_configs_ranked_in_the_model_training_view(ui, tmp_path):
    result, printed, port = ui
    experiment = re.search(rf"experiment ui, configs ranked by {METRIC}: (\S+)", printed)
    sweep = re.search(rf"ui sweep, ranked by {METRIC}: (\S+)", printed)
    assert experiment and sweep and "compare ui sweep: " in printed, printed
    by_name = {row.name: row for row in result.rows}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        tables = [ranked_table(browser, found.group(1), result.rows, tmp_path / f"{label}.png")
                  for label, found in (("experiment", experiment), ("sweep", sweep))]
        browser.close()
    for names, cells in tables:
        assert sorted(names) == sorted(by_name)  # every config, and only configs (no collapsed parent)
        for name, shown in zip(names, cells, strict=True):
            assert float(shown["params.`eta`"]) == by_name[name].eta
            assert shown["params.`sizes`"] == by_name[name].sizes
        values = [float(shown[f"metrics.`{METRIC}`"]) for shown in cells]
        assert values == sorted(values, reverse=True)  # best first
        assert values == pytest.approx([by_name[name].value for name in names])

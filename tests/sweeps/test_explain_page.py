"""The explain renderers: JSON holds every number (strictly valid), Markdown's LaTeX is well formed and summarises
wide layers, and the HTML page opens in real chromium with one node per neuron and equations on click."""

import json
import re
from html.parser import HTMLParser

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import CHROMIUM, problem, require_package
from jaxbp.core.explain import explain
from jaxbp.sweeps.explain_page import (
    EDGE_NEURONS,
    PAGE_NEURONS,
    number,
    render_html,
    render_json,
    render_markdown,
    shown,
)

pytestmark = pytest.mark.x64
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def small_trace(batch=False, **kwargs):
    params, X, Y = problem([2, 3, 2], m=3)
    return explain(params, X if batch else X[0], Y if batch else Y[0], eta=3.0, **kwargs)


def wide_trace():
    """A digits-shaped network: 64 inputs and 20 hidden neurons are wider than a page; a batch of 4."""
    data = jaxbp.load_dataset("digits", dtype="float64")
    params = jaxbp.init_params(jax.random.key(1), [64, 20, 10], dtype=jnp.float64)
    return explain(params, data.train.X[:4], data.train.Y[:4], output_activation="softmax", cost="log_likelihood",
                   eta=0.5)


def test_a_page_shows_up_to_page_neurons_and_summarises_wider_layers():
    assert shown(PAGE_NEURONS) == list(range(PAGE_NEURONS))
    wide = shown(PAGE_NEURONS + 1)
    assert wide == [*range(EDGE_NEURONS), None, *range(PAGE_NEURONS + 1 - EDGE_NEURONS, PAGE_NEURONS + 1)]
    assert shown(784)[:EDGE_NEURONS] == list(range(EDGE_NEURONS)) and shown(784)[-1] == 783
    assert [number(v) for v in (0.123456, -2.5, 3.14159e-5, 0.0, 12345.6)] == ["0.1235", "-2.5", "3.142e-05", "0",
                                                                               "1.235e+04"]


def test_json_holds_every_number_and_names_each_equation():
    trace = small_trace(batch=True)
    data = json.loads(render_json(trace))
    assert data["info"]["sizes"] == [2, 3, 2] and data["info"]["m"] == 3 and data["info"]["bp1"] == "elementwise"
    for layer, entry in zip(trace.layers, data["layers"]):
        for name in ("net", "a", "delta", "nabla_w", "w_new", "angel"):
            # floats round-trip exactly through JSON
            np.testing.assert_array_equal(np.array(entry[name]["value"]), np.asarray(getattr(layer, name).value))
    assert [entry["delta"]["equation"] for entry in data["layers"]] == ["BP2", "BP1"]
    assert data["layers"][0]["nabla_w"]["equation"] == "BP4"
    assert data["cost_after"]["value"] < data["cost_before"]["value"]


def test_json_is_strict_where_the_numbers_are_not_finite():
    # a saturated sigmoid output a = 1 (in float64, σ(40) rounds to 1) with y = 0: ∇_a C of cross-entropy is
    # (1 − y)/(1 − a) = inf, while the closed form δ = a − y that the code uses stays finite
    params = (jaxbp.Layer(jnp.array([[40.0]]), jnp.array([0.0])),)
    trace = explain(params, jnp.array([1.0]), jnp.array([0.0]), cost="cross_entropy", eta=1.0)
    text = render_json(trace)
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert data["layers"][0]["upstream"]["value"] == ["inf"] and data["layers"][0]["delta"]["value"] == [1.0]
    assert "closed form" in data["layers"][0]["delta"]["formula"]


def math_blocks(markdown: str) -> list[str]:
    return re.findall(r"\$\$\n(.*?)\n\$\$", markdown, flags=re.S) + re.findall(r"(?<!\$)\$([^$\n]+)\$(?!\$)", markdown)


def balanced(tex: str) -> bool:
    depth = 0
    for char in re.sub(r"\\[{}]", "", tex):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def test_markdown_is_the_walk_through_in_latex_github_and_jupyter_render():
    trace = small_trace()
    text = render_markdown(trace, "2-3-2")
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == ["# 2-3-2", "## 1. Feedforward", "## 2. Output error (BP1) and backpropagation (BP2)",
                        "## 3. Gradient (BP3, BP4)", "## 4. Gradient descent (Algorithm 5.3)",
                        "## 5. The angel: nudge $\\mathrm{net}^l_j$ by $\\pm\\Delta$ and watch $C$"]
    blocks = math_blocks(text)
    assert len(blocks) > 10 and all(balanced(b) for b in blocks)
    assert text.count("$$") % 2 == 0 and "\\\\" not in text  # matrix rows by \cr: markdown never eats them
    assert all(b.count("\\begin{pmatrix}") == b.count("\\end{pmatrix}") for b in blocks)
    assert number(float(trace.cost_before.value)) in text and number(float(trace.cost_after.value)) in text
    assert "\\delta^{2} = \\nabla_a C \\odot \\sigma'" in text  # BP1 as the slides write it


def test_markdown_summarises_wide_layers_and_large_batches():
    trace = wide_trace()
    text = render_markdown(trace)
    assert all(balanced(b) for b in math_blocks(text))
    assert "\\dots" in text and "\\|\\cdot\\|" in text and "20 \\times 64" in text  # w^1 as its shape and norm
    assert "the per-example steps are written out for the first 3" in text
    assert "closed form used by the code" in text  # log-likelihood with softmax: δ^L = a Σy − y
    assert max(len(re.findall(r"[-\d.]+(?: \\times 10\^\{-?\d+\})?", b)) for b in math_blocks(text)) < 200


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.attrs = []

    def handle_starttag(self, tag, attrs):
        self.attrs.append((tag, dict(attrs)))


def test_html_is_one_self_contained_page():
    page = render_html(small_trace())  # from the trace alone, as a sweep logs it
    parser = Tags()
    parser.feed(page)
    links = [(tag, a.get("src") or a.get("href")) for tag, a in parser.attrs if a.get("src") or a.get("href")]
    assert links == [("link", "data:,")]  # no file, script, style or font fetched
    assert "One step of Algorithm 5.3: network 2-3-2, one example" in page
    assert sum(tag == "g" and a.get("class") == "node" for tag, a in parser.attrs) == 7


def open_page(browser, path, screenshot):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri(), wait_until="load")
    page.screenshot(path=str(screenshot), full_page=True)
    return page, errors


@pytest.mark.browser
def test_html_opens_in_chromium_with_one_node_per_neuron(tmp_path):
    require_package(CHROMIUM, "chromium")
    from playwright.sync_api import sync_playwright

    trace, wide = small_trace(), wide_trace()
    (tmp_path / "small.html").write_text(render_html(trace))
    (tmp_path / "wide.html").write_text(render_html(wide, "digits"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page, errors = open_page(browser, tmp_path / "small.html", tmp_path / "small.png")
        assert page.locator("svg .node").count() == 2 + 3 + 2  # one per neuron
        assert page.locator("svg .edge").count() == 2 * 3 + 3 * 2  # one per weight
        delta = number(float(trace.layers[0].delta.value[1])).replace("-", "−")
        assert page.locator("#n-1-1 .v-d").text_content() == f"δ {delta}"
        page.locator("#n-1-1").click()  # a hidden neuron: its BP2 with the numbers plugged in
        panel = page.inner_text("#panel")
        assert "Neuron 2 of layer 1" in panel and "BP2" in panel and "BP3" in panel and delta in panel
        # w^2_13: BP4 and its update (crossing edges overlap where they cross: the click goes to this edge's own g)
        page.locator(".edge[data-l='2'][data-j='0'][data-k='2']").dispatch_event("click")
        panel = page.inner_text("#panel")
        new = number(float(trace.layers[1].w_new.value[0, 2])).replace("-", "−")
        assert "w213" in panel.replace("\n", "") and "BP4" in panel and new in panel
        page.screenshot(path=str(tmp_path / "small-edge.png"), full_page=True)
        assert errors == []
        page, errors = open_page(browser, tmp_path / "wide.html", tmp_path / "wide.png")
        assert page.locator("svg .node").count() == 10 + 10 + 10  # 64 and 20 wide: first and last 5 of each
        assert page.locator("svg .more").count() == 2
        first = page.locator("#n-2-0 .v-net").text_content()
        page.select_option("#example", "1")  # a batch: the chooser shows example 2's numbers
        second = page.locator("#n-2-0 .v-net").text_content()
        assert second == "net " + number(float(wide.layers[1].net.value[1, 0])).replace("-", "−") != first
        norm_x = number(float(np.linalg.norm(wide.x.value[1])))  # and the norms of the summarised layers
        assert page.locator(".norms[data-l='0']").text_content() == f"‖x‖ = {norm_x}"
        page.locator("#n-2-0").click()
        assert "closed form" in page.inner_text("#panel") and errors == []
        browser.close()
    assert all((tmp_path / f"{name}.png").stat().st_size > 10_000 for name in ("small", "small-edge", "wide"))

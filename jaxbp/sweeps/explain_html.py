"""The HTML page of ``render_html``: the network of a trace as an SVG, and the script that explains each part.

What it is for: ``page(trace, title)`` lays out one column per layer and one node per neuron (net, a and δ of
the example shown; the input layer shows x), one edge per weight (width ∝ |w|, blue for w > 0, orange for
w < 0), and embeds the numbers the script (``explain_script``) plugs into the equations of whatever node or
edge is hovered or clicked. Layers wider than ``PAGE_NEURONS`` show their first and last neurons and a "⋯ n
more" marker. Everything is inline: no file, font, script or style is fetched.
What it is not: no computing beyond laying out and rounding; nothing here imports jax.
"""

from __future__ import annotations

import html
import json

import numpy as np

from jaxbp.sweeps.explain_page import (
    PER_EXAMPLE,
    angel_rows,
    examples,
    layer_arrays,
    norm,
    number,
    plain,
    shown,
    trace_data,
)
from jaxbp.sweeps.explain_script import SCRIPT, STYLE

NODE_W, NODE_H, GAP, COLUMN = 112, 62, 14, 250  # node box, vertical gap, distance between layer columns (px)
TOP, LEFT = 56, 24  # room above the first node (layer titles) and left of the input layer
MAX_EXAMPLES = 64  # a batch's examples the page can switch between (the sums use all of them)
POSITIVE, NEGATIVE = "#2b6cb0", "#dd6b20"


def _minus(text: str) -> str:
    return text.replace("-", "−") if not text.startswith(("inf", "nan")) else text


def _n(value) -> str:
    return _minus(number(value))


def _cut(array: np.ndarray, axes: dict[int, list[int]]) -> list:
    """``array`` restricted to the shown indices along ``axes`` ({axis: indices}), as nested lists."""
    for axis, keep in axes.items():
        array = np.take(array, keep, axis=axis)
    return plain(array)


def page_data(trace) -> dict:
    """The numbers the page's script needs: every layer restricted to its shown neurons and the first
    ``MAX_EXAMPLES`` examples, plus what the trace says about itself."""
    info, arrays = trace.info, layer_arrays(trace)
    X, Y = examples(trace)
    keep_x = list(range(min(info.m, MAX_EXAMPLES)))
    idx = [[i for i in shown(n) if i is not None] for n in info.sizes]
    layers = []
    for l, layer in enumerate(arrays, start=1):
        rows, cols = idx[l], idx[l - 1]
        entry = {"l": l, "n": info.sizes[l], "shown": shown(info.sizes[l])}
        for name in PER_EXAMPLE:
            axes = {0: keep_x, 1: rows, 2: rows} if layer[name].ndim == 3 else {0: keep_x, 1: rows}
            entry[name] = _cut(layer[name], axes)
        for name in ("b", "nabla_b", "b_new"):
            entry[name] = _cut(layer[name], {0: rows})
        for name in ("w", "nabla_w", "w_new"):
            entry[name] = _cut(layer[name], {0: rows, 1: cols})
        entry["norm_a"] = [norm(layer["a"][x]) for x in keep_x]  # what a summarised layer shows of itself
        entry["norm_delta"] = [norm(layer["delta"][x]) for x in keep_x]
        entry["formulas"] = {name: [getattr(trace.layers[l - 1], name).equation,
                                    getattr(trace.layers[l - 1], name).formula] for name in ("delta", "sigma_prime")}
        layers.append(entry)
    data = trace_data(trace)
    return {"info": data["info"], "eta": data["eta"]["value"], "cost_before": data["cost_before"]["value"],
            "cost_after": data["cost_after"]["value"], "examples": len(keep_x), "input_shown": shown(info.sizes[0]),
            "x_norm": [norm(X[x]) for x in keep_x],
            "x": _cut(X, {0: keep_x, 1: idx[0]}), "y": _cut(Y, {0: keep_x, 1: idx[-1]}), "layers": layers}


def _position(sizes) -> tuple[list[list[tuple[float, int | None]]], float, float]:
    """(y of each shown slot with its neuron index or None, per layer), and the SVG's width and height."""
    slots = [shown(n) for n in sizes]
    height = TOP + max(len(s) for s in slots) * (NODE_H + GAP) + 8
    columns = []
    for s in slots:
        top = TOP + (height - TOP - 8 - len(s) * (NODE_H + GAP)) / 2
        columns.append([(top + i * (NODE_H + GAP) + NODE_H / 2, j) for i, j in enumerate(s)])
    width = LEFT + (len(sizes) - 1) * COLUMN + NODE_W + 90
    return columns, width, height


def _node(l: int, j: int, x: float, y: float, lines: list[tuple[str, str]], extra: str = "") -> str:
    """A neuron: a box of one line per value (an input's box holds one line), centred at (x, y)."""
    h = 17 * len(lines) + 11
    texts = "".join(f'<text class="{cls}" x="{x - NODE_W / 2 + 10}" y="{y - h / 2 + 18 + 17 * i}">{html.escape(t)}'
                    "</text>" for i, (cls, t) in enumerate(lines))
    return (f'<g class="node" id="n-{l}-{j}" data-l="{l}" data-j="{j}" tabindex="0">'
            f'<rect x="{x - NODE_W / 2}" y="{y - h / 2}" width="{NODE_W}" height="{h}" rx="9"/>{texts}{extra}</g>')


def svg(trace) -> str:
    """The network as an SVG: nodes for the shown neurons (values of example 1), edges for their weights."""
    info, arrays = trace.info, layer_arrays(trace)
    X, Y = examples(trace)
    columns, width, height = _position(info.sizes)
    xs = [LEFT + NODE_W / 2 + i * COLUMN for i in range(len(info.sizes))]
    w_max = max(float(np.max(np.abs(layer["w"]), initial=0.0)) for layer in arrays) or 1.0
    parts = [f'<svg id="network" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
             f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="the network">']
    for i, n in enumerate(info.sizes):
        name = "input" if i == 0 else "output" if i == len(info.sizes) - 1 else "hidden"
        sigma = "" if i == 0 else ", " + (info.output_activation if name == "output" else info.activation)
        parts.append(f'<text class="layer-title" x="{xs[i]}" y="22">layer {i} ({name})</text>'
                     f'<text class="layer-sub" x="{xs[i]}" y="40">{n} neuron{"s" * (n != 1)}{sigma}</text>')
    for l, layer in enumerate(arrays, start=1):  # edges first, under the nodes
        for y_j, j in columns[l]:
            for y_k, k in columns[l - 1]:
                if j is None or k is None:
                    continue
                w = layer["w"][j, k]
                stroke = 0.6 + 5.4 * min(abs(w) / w_max, 1.0) if np.isfinite(w) else 1
                x1, x2 = xs[l - 1] + NODE_W / 2, xs[l] - NODE_W / 2
                d = f"M{x1},{y_k} C{x1 + 60},{y_k} {x2 - 60},{y_j} {x2},{y_j}"
                parts.append(f'<g class="edge" data-l="{l}" data-j="{j}" data-k="{k}">'
                             f'<path class="hit" d="{d}"/><path class="wire" d="{d}" stroke-width="{stroke:.2f}" '
                             f'stroke="{POSITIVE if w >= 0 else NEGATIVE}"/></g>')
    for i, column in enumerate(columns):
        for y, j in column:
            if j is None:  # the hidden middle of a wide layer: how many, and the whole layer's norms
                hidden = info.sizes[i] - (len(column) - 1)
                sizes = (f"‖x‖ = {_n(norm(X[0]))}" if i == 0 else
                         f"‖a‖ = {_n(norm(arrays[i - 1]['a'][0]))}, ‖δ‖ = {_n(norm(arrays[i - 1]['delta'][0]))}")
                parts.append(f'<text class="more" x="{xs[i]}" y="{y - 4}">⋯ {hidden} more ⋯</text>'
                             f'<text class="norms" data-l="{i}" x="{xs[i]}" y="{y + 12}">{sizes}</text>')
            elif i == 0:
                parts.append(_node(0, j, xs[0], y, [("v-x", f"x{j + 1} = {_n(X[0, j])}")]))
            else:
                layer = arrays[i - 1]
                target = (f'<text class="v-y" x="{xs[i] + NODE_W / 2 + 8}" y="{y + 5}">y = {_n(Y[0, j])}</text>'
                          if i == len(info.sizes) - 1 else "")
                parts.append(_node(i, j, xs[i], y, [("v-net", f"net {_n(layer['net'][0, j])}"),
                                                   ("v-a", f"a {_n(layer['a'][0, j])}"),
                                                   ("v-d", f"δ {_n(layer['delta'][0, j])}")], target))
    parts.append("</svg>")
    return "".join(parts)


def _angel_table(trace) -> str:
    rows = ['<tr><td></td><td>⋯</td><td></td><td></td><td></td></tr>' if row is None else
            f"<tr><td>{row[0]}</td><td>{row[1]}</td><td>{_n(row[2])}</td><td>{_n(row[3])}</td><td>{row[4]:.1e}</td></tr>"
            for row in angel_rows(layer_arrays(trace))]
    batch = " (example 1; δ of the mean cost, δ<sup>x,l</sup><sub>j</sub>/m)" if trace.info.batch else ""
    return ('<section class="angel"><h2>The angel: nudge net<sup>l</sup><sub>j</sub> by ±Δ and watch C</h2>'
            f"<p>Δ = {number(trace.info.step, 3)}{batch}. ΔC/Δ = [C(net + Δ) − C(net − Δ)] / 2Δ should equal "
            "δ<sup>l</sup><sub>j</sub> = ∂C/∂net<sup>l</sup><sub>j</sub>.</p>"
            "<table><thead><tr><th>layer l</th><th>neuron j</th><th>δ<sup>l</sup><sub>j</sub></th>"
            "<th>ΔC/Δ</th><th>relative error</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></section>")


def page(trace, title: str) -> str:
    """The whole page as one string."""
    info = trace.info
    data = json.dumps(page_data(trace), allow_nan=False).replace("</", "<\\/")
    before, after = (float(np.asarray(q.value)) for q in (trace.cost_before, trace.cost_after))
    what = f"a mini-batch of m = {info.m} examples" if info.batch else "one example"
    chooser = ""
    if info.batch:
        count = min(info.m, MAX_EXAMPLES)
        options = "".join(f'<option value="{x}">example {x + 1}</option>' for x in range(count))
        chooser = f'<label>showing <select id="example">{options}</select></label>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body><header><h1>{html.escape(title)}</h1>
<p>Sizes {'-'.join(map(str, info.sizes))} · hidden σ = {info.activation} · output {info.output_activation} ·
cost {info.cost} · η = {_n(np.asarray(trace.eta.value))} · {what} · {info.dtype}</p>
<p class="cost">C = {_n(before)} before the step → <b>{_n(after)}</b> after it {chooser}</p></header>
<main><div class="figure">{svg(trace)}
<p class="legend"><span class="swatch" style="background:{POSITIVE}"></span>w &gt; 0
<span class="swatch" style="background:{NEGATIVE}"></span>w &lt; 0 · edge width ∝ |w| ·
each neuron shows net<sup>l</sup><sub>j</sub>, a<sup>l</sup><sub>j</sub>, δ<sup>l</sup><sub>j</sub> ·
hover or click a neuron or a weight</p></div>
<aside id="panel"><h2>Algorithm 5.3, one step</h2><ol>
<li>Feedforward: net<sup>l</sup> = w<sup>l</sup> a<sup>l−1</sup> + b<sup>l</sup>,
a<sup>l</sup> = σ(net<sup>l</sup>)</li>
<li>BP1: δ<sup>L</sup> = ∇<sub>a</sub>C ⊙ σ′(net<sup>L</sup>)</li>
<li>BP2: δ<sup>l</sup> = ((w<sup>l+1</sup>)<sup>T</sup> δ<sup>l+1</sup>) ⊙ σ′(net<sup>l</sup>)</li>
<li>BP3: ∂C/∂b<sup>l</sup><sub>j</sub> = δ<sup>l</sup><sub>j</sub>; BP4: ∂C/∂w<sup>l</sup><sub>jk</sub> =
a<sup>l−1</sup><sub>k</sub> δ<sup>l</sup><sub>j</sub></li>
<li>Update: w<sup>l</sup> ← w<sup>l</sup> − (η/m) Σ<sub>x</sub> δ<sup>x,l</sup> (a<sup>x,l−1</sup>)<sup>T</sup>,
b<sup>l</sup> ← b<sup>l</sup> − (η/m) Σ<sub>x</sub> δ<sup>x,l</sup></li></ol>
<p class="hint">Hover or click a neuron or a weight to see its equations with the numbers plugged in.</p></aside></main>
{_angel_table(trace)}
<script type="application/json" id="trace-data">{data}</script>
<script>{SCRIPT}</script></body></html>
"""

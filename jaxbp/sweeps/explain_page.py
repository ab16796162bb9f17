"""A trace of one step of Algorithm 5.3 (``jaxbp.explain``) as Markdown with LaTeX, as one HTML page, as JSON.

What it is for: ``render_markdown`` (LaTeX in $…$ and $$…$$ that GitHub and Jupyter render; rows of a matrix are
separated by ``\\cr``, which both read), ``render_html`` (one self-contained page, see ``explain_html``) and
``render_json`` (every number, non-finite ones as the strings "inf", "-inf", "nan"), all from a ``Trace`` alone;
plus what the terminal walk-through shares with them: how many neurons fit a page (``PAGE_NEURONS``; wider
layers show their first and last ``EDGE_NEURONS`` and their norms), how many examples of a batch are written
out (``PAGE_EXAMPLES``), and numbers rounded to what a learner reads (``number``).
What it is not: no computing (the trace holds every number), no file writing, no MLflow; standard library and
numpy only.
"""

from __future__ import annotations

import json

import numpy as np

PAGE_NEURONS = 12  # a layer this wide or narrower is shown neuron by neuron; a wider one is summarised
EDGE_NEURONS = 5  # a summarised layer shows its first and last EDGE_NEURONS neurons, and norms
PAGE_MATRIX = 6  # Markdown writes a matrix out entry by entry up to this many rows and columns, else its norm
PAGE_EXAMPLES = 3  # a batch's per-example steps are written out for its first PAGE_EXAMPLES examples
FIELDS = ("w", "b", "net", "a", "upstream", "sigma_prime", "delta", "nabla_b", "nabla_w", "w_new", "b_new",
          "angel", "angel_delta", "angel_rel")
PER_EXAMPLE = ("net", "a", "upstream", "sigma_prime", "delta", "angel", "angel_delta", "angel_rel")


def shown(n: int) -> list[int | None]:
    """The indices of a layer of ``n`` neurons that a page shows, None standing for the hidden middle."""
    if n <= PAGE_NEURONS:
        return list(range(n))
    return [*range(EDGE_NEURONS), None, *range(n - EDGE_NEURONS, n)]


def number(value: float, digits: int = 4) -> str:
    """``value`` rounded to ``digits`` significant digits, as a learner reads it: 0.1235, -2.5, 3.1e-05."""
    value = float(value)
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


def norm(v) -> float:
    """The Euclidean (Frobenius) norm of ``v``: what a summarised row or layer shows."""
    return float(np.linalg.norm(np.asarray(v, np.float64)))


def layer_arrays(trace) -> list[dict[str, np.ndarray]]:
    """Every layer's numbers as float64 numpy arrays; per-example ones always with a leading example axis."""
    out = []
    for layer in trace.layers:
        arrays = {}
        for name in FIELDS:
            value = np.asarray(getattr(layer, name).value, np.float64)
            batched = trace.info.batch or name not in PER_EXAMPLE
            arrays[name] = value if batched else value[None]
        out.append(arrays)
    return out


def angel_rows(arrays: list[dict[str, np.ndarray]], x: int = 0):
    """(l, j, δ^l_j, ΔC/Δ, relative error) of each shown neuron (j from 1) of example ``x``, and None where a
    summarised layer leaves neurons out: the angel's table, whatever it is rendered as."""
    for l, layer in enumerate(arrays, start=1):
        for j in shown(layer["angel"].shape[-1]):
            yield None if j is None else (l, j + 1, layer["angel_delta"][x, j], layer["angel"][x, j],
                                          layer["angel_rel"][x, j])


def examples(trace) -> tuple[np.ndarray, np.ndarray]:
    """x and y with a leading example axis: (m, n_in), (m, n_out)."""
    x, y = (np.asarray(q.value, np.float64) for q in (trace.x, trace.y))
    return (x, y) if trace.info.batch else (x[None], y[None])


def plain(value):
    """``value`` (numpy) as JSON-able lists of floats, non-finite numbers as strings."""
    array = np.asarray(value, np.float64)
    if array.ndim == 0:
        v = float(array)
        return v if np.isfinite(v) else ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf"))
    return [plain(v) for v in array]


def _quantity(q) -> dict:
    return {"value": plain(q.value), "equation": q.equation, "formula": q.formula}


def trace_data(trace) -> dict:
    """The trace as plain JSON-able data: info, x, y, η, C before and after, and every layer's quantities."""
    info = trace.info
    return {
        "format": "jaxbp-explain", "version": 1,
        "info": {"sizes": list(info.sizes), "activation": info.activation, "output_activation": info.output_activation,
                 "cost": info.cost, "loss": info.loss, "m": info.m, "batch": info.batch, "bp1": info.bp1,
                 "jacobian": info.jacobian, "step": info.step, "dtype": info.dtype},
        **{name: _quantity(getattr(trace, name)) for name in ("x", "y", "eta", "cost_before", "cost_after")},
        "layers": [{"l": l, **{name: _quantity(getattr(layer, name)) for name in FIELDS}}
                   for l, layer in enumerate(trace.layers, start=1)],
    }


def render_json(trace) -> str:
    """Every number of the trace as JSON (see ``trace_data``); strictly valid JSON (no NaN literals)."""
    return json.dumps(trace_data(trace), allow_nan=False)


def render_html(trace, title: str | None = None) -> str:
    """ONE self-contained HTML page of the trace (no external resources): the network as an SVG, one node per
    neuron showing net, a and δ, edges as wide as |w| and coloured by sign; hovering or clicking a node or an
    edge shows its equations with the numbers plugged in. Layers wider than ``PAGE_NEURONS`` are summarised."""
    from jaxbp.sweeps.explain_html import page

    return page(trace, title or default_title(trace))


def default_title(trace) -> str:
    info = trace.info
    what = f"a mini-batch of m = {info.m}" if info.batch else "one example"
    return f"One step of Algorithm 5.3: network {'-'.join(map(str, info.sizes))}, {what}"


# ---- Markdown with LaTeX ---------------------------------------------------------------------------------------

def tex_number(value: float) -> str:
    """A number for LaTeX: 0.1235, -2.5, 3.1 \\times 10^{-5}."""
    text = number(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa} \\times 10^{{{int(exponent)}}}"
    text = {"inf": "\\infty", "-inf": "-\\infty", "nan": "\\mathrm{NaN}"}.get(text, text)
    return f"{{{text}}}" if text.startswith("-") else text  # braced: a sign, not a binary minus after a comma


def tex_vector(v: np.ndarray) -> str:
    """A vector as a transposed row, (v_1, …, v_n)ᵀ; a wide one as its first and last entries and its norm."""
    parts = ["\\dots" if i is None else tex_number(v[i]) for i in shown(len(v))]
    norm = f"\\ \\|\\cdot\\| = {tex_number(np.linalg.norm(v))}" if len(v) > PAGE_NEURONS else ""
    sep = ",\\ "
    return f"\\left({sep.join(parts)}\\right)^{{\\top}}{norm}"


def tex_column(v: np.ndarray) -> str:
    """A vector as a column (a pmatrix), or as a transposed row where it is longer than ``PAGE_MATRIX``."""
    return tex_matrix(np.asarray(v)[:, None]) if len(v) <= PAGE_MATRIX else tex_vector(v)


def tex_matrix(w: np.ndarray) -> str:
    """A matrix in a pmatrix (rows separated by \\cr); one with more than ``PAGE_MATRIX`` rows or columns as
    its shape and Frobenius norm."""
    if max(w.shape) > PAGE_MATRIX:
        return f"\\big[{w.shape[0]} \\times {w.shape[1]},\\ \\|\\cdot\\|_F = {tex_number(np.linalg.norm(w))}\\big]"
    body = " \\cr ".join(" & ".join(tex_number(v) for v in row) for row in w)
    return f"\\begin{{pmatrix}} {body} \\end{{pmatrix}}"


def _display(text: str) -> str:
    return f"$$\n{text}\n$$\n"


def render_markdown(trace, title: str | None = None) -> str:
    """The walk-through in Markdown: feedforward, C, BP1, BP2, BP3 and BP4, the update, C after, the angel."""
    info, arrays = trace.info, layer_arrays(trace)
    X, Y = examples(trace)
    L, m = len(arrays), info.m
    eta = float(np.asarray(trace.eta.value))
    which = list(range(min(m, PAGE_EXAMPLES)))
    sup = (lambda x, l: f"{x + 1},{l}") if info.batch else (lambda x, l: f"{l}")
    out = [f"# {title or default_title(trace)}\n",
           f"Sizes {'-'.join(map(str, info.sizes))}; hidden $\\sigma$ = {info.activation}, "
           f"output {info.output_activation}; "
           f"cost {info.cost}, ${_tex_loss(info.cost)}$; $\\eta = {tex_number(eta)}$; {info.dtype}. "
           "Notation of the lecture: $\\mathrm{net}^l = w^l a^{l-1} + b^l$, $a^l = \\sigma(\\mathrm{net}^l)$.\n"]
    if info.batch and m > len(which):
        out.append(f"The batch has m = {m} examples; the per-example steps are written out for the first "
                   f"{len(which)} (the sums and the update use all {m}).\n")
    out.append("## 1. Feedforward\n")
    for x in which:
        out.append(_display(f"a^{{{sup(x, 0)}}} = x = {tex_vector(X[x])}, \\quad y = {tex_vector(Y[x])}"))
        for l, layer in enumerate(arrays, start=1):
            a_prev = X[x] if l == 1 else arrays[l - 2]["a"][x]
            plugged = (f"{tex_matrix(layer['w'])} {tex_column(a_prev)} + {tex_column(layer['b'])} = "
                       if max(layer["w"].shape) <= PAGE_MATRIX else "")
            out.append(_display(
                f"\\mathrm{{net}}^{{{sup(x, l)}}} = w^{{{l}}} a^{{{sup(x, l - 1)}}} + b^{{{l}}} = {plugged}"
                f"{tex_column(layer['net'][x])}"))
            out.append(_display(
                f"a^{{{sup(x, l)}}} = "
                f"\\mathrm{{{info.output_activation if l == L else info.activation}}}(\\mathrm{{net}}^{{{sup(x, l)}}})"
                f" = {tex_vector(layer['a'][x])}"))
    out.append(f"Cost before the step: $C = {tex_number(np.asarray(trace.cost_before.value))}$.\n")
    out.append("## 2. Output error (BP1) and backpropagation (BP2)\n")
    top = arrays[-1]
    for x in which:
        out.append(_display(_tex_bp1(info, top, x, sup(x, L))))
        for l in range(L - 1, 0, -1):
            layer = arrays[l - 1]
            out.append(_display(
                f"\\delta^{{{sup(x, l)}}} = \\left((w^{{{l + 1}}})^{{\\top}} "
                f"\\delta^{{{sup(x, l + 1)}}}\\right) \\odot "
                f"\\sigma'(\\mathrm{{net}}^{{{sup(x, l)}}}) = {tex_vector(layer['upstream'][x])} \\odot "
                f"{tex_vector(layer['sigma_prime'][x])} = {tex_vector(layer['delta'][x])}"))
    mean = "\\frac{1}{m} \\sum_x " if info.batch else ""
    dx, ax = ("\\delta^{x,%d}", "a^{x,%d}") if info.batch else ("\\delta^{%d}", "a^{%d}")
    out.append("## 3. Gradient (BP3, BP4)" + (f", averaged over the m = {m} examples\n" if info.batch else "\n"))
    for l, layer in enumerate(arrays, start=1):
        out.append(_display(
            f"\\frac{{\\partial C}}{{\\partial b^{{{l}}}}} = {mean}{dx % l} = {tex_vector(layer['nabla_b'])}, \\quad "
            f"\\frac{{\\partial C}}{{\\partial w^{{{l}}}}} = {mean}{dx % l} ({ax % (l - 1)})^{{\\top}} = "
            f"{tex_matrix(layer['nabla_w'])}"))
    out.append("## 4. Gradient descent (Algorithm 5.3)\n")
    for l, layer in enumerate(arrays, start=1):
        out.append(_display(
            f"w^{{{l}}} \\leftarrow w^{{{l}}} - \\frac{{\\eta}}{{m}} \\sum_x \\delta^{{x,{l}}} "
            f"(a^{{x,{l - 1}}})^{{\\top}} = w^{{{l}}} - \\eta \\frac{{\\partial C}}{{\\partial w^{{{l}}}}} = "
            f"{tex_matrix(layer['w'])} - {tex_number(eta)} {tex_matrix(layer['nabla_w'])} = "
            f"{tex_matrix(layer['w_new'])}"))
        out.append(_display(
            f"b^{{{l}}} \\leftarrow b^{{{l}}} - \\frac{{\\eta}}{{m}} \\sum_x \\delta^{{x,{l}}} = "
            f"b^{{{l}}} - \\eta \\frac{{\\partial C}}{{\\partial b^{{{l}}}}} = "
            f"{tex_vector(layer['b'])} - {tex_number(eta)} {tex_vector(layer['nabla_b'])} = "
            f"{tex_vector(layer['b_new'])}"))
    before, after = (float(np.asarray(q.value)) for q in (trace.cost_before, trace.cost_after))
    out.append(f"Cost: $C = {tex_number(before)}$ before the step, ${tex_number(after)}$ after it "
               f"(change ${tex_number(after - before)}$).\n")
    out.append(_markdown_angel(trace, arrays))
    return "\n".join(out)


def _tex_loss(cost: str) -> str:
    return {"quadratic": "l(x) = \\tfrac12 \\|y - a^L\\|^2",
            "cross_entropy": "l(x) = -\\sum_j [y_j \\ln a^L_j + (1 - y_j) \\ln(1 - a^L_j)]",
            "log_likelihood": "l(x) = -\\sum_j y_j \\ln a^L_j"}.get(cost, "l(x)")


def _tex_bp1(info, top: dict, x: int, s: str) -> str:
    """BP1 as the code computes it: ∇_a C ⊙ σ', Jᵀ ∇_a C for softmax, or the closed form where σ' cancels."""
    grad = f"\\nabla_a C = {tex_vector(top['upstream'][x])}"
    delta = tex_vector(top["delta"][x])
    if info.bp1 == "closed":
        form = "a^{L} \\textstyle\\sum_i y_i - y" if info.jacobian else "a^{L} - y"
        return (f"\\delta^{{{s}}} = {form} = {delta} \\quad \\text{{(closed form used by the code: with {info.cost} "
                f"and {info.output_activation}, }} \\sigma' \\text{{ cancels; }} {grad})")
    if info.bp1 == "jacobian":
        return (f"\\delta^{{{s}}} = J^{{\\top}} \\nabla_a C = {delta}, \\quad {grad}, \\quad J = "
                f"\\frac{{\\partial a^L}}{{\\partial \\mathrm{{net}}^L}} = {tex_matrix(top['sigma_prime'][x])}"
                " \\ \\text{(softmax: } \\sigma' \\text{ is a Jacobian)}")
    return (f"\\delta^{{{s}}} = \\nabla_a C \\odot \\sigma'(\\mathrm{{net}}^{{{s}}}) = "
            f"{tex_vector(top['upstream'][x])} \\odot {tex_vector(top['sigma_prime'][x])} = {delta}")


def _markdown_angel(trace, arrays) -> str:
    info = trace.info
    x = 0
    rows = ["## 5. The angel: nudge $\\mathrm{net}^l_j$ by $\\pm\\Delta$ and watch $C$\n",
            f"$\\Delta = {tex_number(info.step)}$; "
            + ("for a batch, example 1's $\\mathrm{net}^{1,l}_j$ is nudged and $\\delta$ is that of the mean cost, "
               "$\\delta^{1,l}_j / m$.\n" if info.batch else "$\\Delta C / \\Delta$ should equal $\\delta^l_j$.\n"),
            "| layer $l$ | neuron $j$ | $\\delta^l_j$ | $\\Delta C / \\Delta$ | relative error |",
            "|---:|---:|---:|---:|---:|"]
    for row in angel_rows(arrays, x):
        rows.append("| | … | | | |" if row is None else
                    f"| {row[0]} | {row[1]} | {number(row[2])} | {number(row[3])} | {row[4]:.1e} |")
    return "\n".join(rows) + "\n"

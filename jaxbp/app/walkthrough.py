"""The terminal walk-through of ``jaxbp explain``: one step of Algorithm 5.3 as rich tables, in the slides' order.

What it is for: ``walkthrough(trace, heading)`` gives the renderables ``jaxbp explain`` prints: the network and
its input, 1 feedforward, 2 BP1, 3 BP2, 4 BP3 and BP4, 5 the update, 6 C before and after, 7 the angel's
table. Numbers are rounded as a learner reads them (``explain_page.number``); layers wider than
``PAGE_NEURONS`` show their first and last neurons and a norm row, weights wider than ``PAGE_MATRIX`` columns
their row norms, and a batch's per-example steps its first ``PAGE_EXAMPLES`` examples.
What it is not: no computing (every number is the trace's), no Markdown or HTML (``jaxbp.sweeps.explain_page``).
"""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from jaxbp.sweeps.explain_page import (
    PAGE_EXAMPLES,
    PAGE_MATRIX,
    PAGE_NEURONS,
    examples,
    layer_arrays,
    norm,
    number,
    shown,
)

PLUGGED = 4  # a neuron's sum Σ_k w_jk a_k is written out term by term up to this many inputs


def _vector(v) -> str:
    parts = ["…" if i is None else number(v[i]) for i in shown(len(v))]
    size = f"  ‖·‖ = {number(norm(v))}" if len(v) > PAGE_NEURONS else ""
    return f"({', '.join(parts)}){size}"


def _p(v: float) -> str:
    """A factor of a product: negative numbers in parentheses."""
    return f"({number(v)})" if v < 0 else number(v)


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1),
                  title_style="bold")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 1 and "Σ" in name else "right")
    return table


def _titled(table: Table) -> Group:
    """The table under its title as a line of its own (a table's title would wrap at the table's width)."""
    title, table.title = table.title, None
    return Group(Text(str(title), style="bold"), table)


def _rows(table: Table, n: int, cells, norms: list[str] | None = None) -> Group:
    """One row per shown neuron j (``cells(j)``), "…" for the hidden middle, and a norm row for a wide layer."""
    width = len(table.columns)
    for j in shown(n):
        table.add_row(*(["…"] + [""] * (width - 1) if j is None else [str(j + 1), *cells(j)]))
    if norms is not None and n > PAGE_NEURONS:
        table.add_row("‖·‖", *norms, style="dim")
    return _titled(table)


def _norm(v) -> str:
    return number(norm(v))


def _feedforward(trace, arrays, X, x: int, sup) -> list:
    info, out = trace.info, []
    for l, layer in enumerate(arrays, start=1):
        a_prev = X[x] if l == 1 else arrays[l - 2]["a"][x]
        sigma = info.output_activation if l == len(arrays) else info.activation
        plug = info.sizes[l - 1] <= PLUGGED
        cols = ["j", *([f"Σ_k w^{l}_jk a^{sup(l - 1)}_k + b^{l}_j"] if plug else []), f"net^{sup(l)}_j",
                f"a^{sup(l)}_j = {sigma}(net)"]
        table = _table(f"layer {l}: net^{sup(l)} = w^{l} a^{sup(l - 1)} + b^{l},  a^{sup(l)} = {sigma}(net^{sup(l)})",
                       cols)

        def cells(j, layer=layer, a_prev=a_prev, plug=plug):
            terms = " + ".join(f"{_p(layer['w'][j, k])}·{_p(a_prev[k])}" for k in range(len(a_prev)))
            return [*([f"{terms} + {_p(layer['b'][j])}"] if plug else []), number(layer["net"][x, j]),
                    number(layer["a"][x, j])]

        out.append(_rows(table, info.sizes[l], cells, [*([""] if plug else []), _norm(layer["net"][x]),
                                                       _norm(layer["a"][x])]))
    return out


def _bp1(trace, top: dict, y, x: int, sup) -> Group:
    info, L = trace.info, len(trace.layers)
    if info.bp1 == "closed":
        form = "a^L Σ_i y_i − y" if info.jacobian else "a^L − y"
        title = (f"BP1, closed form: δ^{sup(L)} = {form}  (what the code computes: with {info.cost} and "
                 f"{info.output_activation}, σ' cancels in ∇_a C ⊙ σ'(net^L); ∇_a C shown for comparison)")
        cols, cells = ["j", f"a^{sup(L)}_j", "y_j", "∇_a C_j", f"δ^{sup(L)}_j"], lambda j: [
            number(top["a"][x, j]), number(y[j]), number(top["upstream"][x, j]), number(top["delta"][x, j])]
    elif info.bp1 == "jacobian":
        title = (f"BP1: δ^{sup(L)} = Jᵀ ∇_a C  ({info.output_activation} couples the outputs: its σ' is the "
                 "Jacobian J = ∂a^L/∂net^L = diag(a) − a aᵀ, not an elementwise σ')")
        cols, cells = ["j", f"a^{sup(L)}_j", "y_j", "∇_a C_j", "J_jj", f"δ^{sup(L)}_j"], lambda j: [
            number(top["a"][x, j]), number(y[j]), number(top["upstream"][x, j]),
            number(top["sigma_prime"][x, j, j]), number(top["delta"][x, j])]
    else:
        grad = " = a − y" if info.cost == "quadratic" else ""
        title = f"BP1: δ^{sup(L)} = ∇_a C ⊙ σ'(net^{sup(L)})"
        cols = ["j", f"a^{sup(L)}_j", "y_j", f"∇_a C_j{grad}", f"σ'(net^{sup(L)}_j)", f"δ^{sup(L)}_j"]
        cells = lambda j: [
            number(top["a"][x, j]), number(y[j]), number(top["upstream"][x, j]), number(top["sigma_prime"][x, j]),
            number(top["delta"][x, j])]
    return _rows(_table(title, cols), info.sizes[-1], cells)


def _bp2(trace, arrays, x: int, sup) -> list:
    out = []
    for l in range(len(arrays) - 1, 0, -1):
        layer = arrays[l - 1]
        table = _table(f"BP2, layer {l}: δ^{sup(l)} = ((w^{l + 1})ᵀ δ^{sup(l + 1)}) ⊙ σ'(net^{sup(l)})",
                       ["j", f"((w^{l + 1})ᵀ δ^{sup(l + 1)})_j", f"σ'(net^{sup(l)}_j)", f"δ^{sup(l)}_j"])
        out.append(_rows(table, trace.info.sizes[l], lambda j, layer=layer: [
            number(layer["upstream"][x, j]), number(layer["sigma_prime"][x, j]), number(layer["delta"][x, j])],
            [_norm(layer["upstream"][x]), "", _norm(layer["delta"][x])]))
    return out


def _weights(title: str, layer: dict, n_prev: int, pair) -> Group:
    """Rows j of a layer: (bias cell, weight cells) from ``pair(name, j, k)``; row norms when n_{l-1} is wide."""
    wide = n_prev > PAGE_MATRIX
    cols = ["j", pair.b_title, *([pair.w_norm_title] if wide else [pair.w_title(k) for k in range(n_prev)])]
    return _rows(_table(title, cols), layer["b"].shape[0], lambda j: [
        pair.b(j), *([pair.w_norm(j)] if wide else [pair.w(j, k) for k in range(n_prev)])])


class _Gradient:
    def __init__(self, l, layer):
        self.layer, self.b_title, self.w_norm_title = layer, f"∂C/∂b^{l}_j", f"‖∂C/∂w^{l}_j·‖"
        self.w_title = lambda k: f"∂C/∂w^{l}_j{k + 1}"

    def b(self, j):
        return number(self.layer["nabla_b"][j])

    def w(self, j, k):
        return number(self.layer["nabla_w"][j, k])

    def w_norm(self, j):
        return _norm(self.layer["nabla_w"][j])


class _Update(_Gradient):
    def __init__(self, l, layer):
        super().__init__(l, layer)
        self.b_title, self.w_norm_title = f"b^{l}_j → new", f"‖w^{l}_j·‖ → new"
        self.w_title = lambda k: f"w^{l}_j{k + 1} → new"

    def b(self, j):
        return f"{number(self.layer['b'][j])} → {number(self.layer['b_new'][j])}"

    def w(self, j, k):
        return f"{number(self.layer['w'][j, k])} → {number(self.layer['w_new'][j, k])}"

    def w_norm(self, j):
        return f"{_norm(self.layer['w'][j])} → {_norm(self.layer['w_new'][j])}"


def _angel(trace, arrays) -> Group:
    info = trace.info
    which = "example 1's net^{1,l}_j" if info.batch else "net^l_j"
    should = "δ of the mean cost, δ^{1,l}_j / m" if info.batch else "δ^l_j = ∂C/∂net^l_j"
    table = _table(f"The angel: nudge {which} by ±Δ (Δ = {number(info.step, 2)}) and measure "
                   f"ΔC/Δ = [C(net + Δ) − C(net − Δ)] / 2Δ; it should equal {should}",
                   ["layer l", "j", "δ^{1,l}_j / m" if info.batch else "δ^l_j", "ΔC/Δ", "relative error"])
    for l, layer in enumerate(arrays, start=1):
        for j in shown(info.sizes[l]):
            if j is None:
                table.add_row("", "…", "", "", "")
                continue
            table.add_row(str(l), str(j + 1), number(layer["angel_delta"][0, j]), number(layer["angel"][0, j]),
                          f"{layer['angel_rel'][0, j]:.1e}")
    return _titled(table)


def walkthrough(trace, heading: str | None = None) -> Group:
    """Everything ``jaxbp explain`` prints for ``trace``, in the order of the slides."""
    info, arrays = trace.info, layer_arrays(trace)
    X, Y = examples(trace)
    eta = float(trace.eta.value)
    before, after = (float(q.value) for q in (trace.cost_before, trace.cost_after))
    sup = (lambda x: lambda l: f"{{{x + 1},{l}}}") if info.batch else (lambda x: str)
    what = f"a mini-batch of m = {info.m} examples" if info.batch else "one example (m = 1)"
    parts: list = [
        Text(heading or f"One step of Algorithm 5.3 — network {'-'.join(map(str, info.sizes))}", style="bold"),
        Text(f"hidden σ = {info.activation}, output {info.output_activation}, cost {info.cost}: {info.loss}; "
             f"η = {number(eta)}; {what}; {info.dtype}"),
    ]
    which = range(min(info.m, PAGE_EXAMPLES))
    if info.batch and info.m > len(which):
        parts.append(Text(f"Steps 1–3 run for every example x; shown for the first {len(which)} of {info.m} "
                          "(the sums in step 4 use all of them).", style="dim"))
    for x in which:
        head = f" — example x = {x + 1}" if info.batch else ""
        parts += [Text(""), Text(f"input a^{sup(x)(0)} = x = {_vector(X[x])}    target y = {_vector(Y[x])}")]
        parts.append(Text(f"\n1. Feedforward{head}", style="bold cyan"))
        parts += _feedforward(trace, arrays, X, x, sup(x))
        if not info.batch:
            parts.append(Text(f"cost C = {info.loss} = {number(before)}"))
        parts.append(Text(f"\n2. Output error (BP1){head}", style="bold cyan"))
        parts.append(_bp1(trace, arrays[-1], Y[x], x, sup(x)))
        if len(arrays) > 1:
            parts.append(Text(f"\n3. Backpropagate the error (BP2), l = L−1 … 1{head}", style="bold cyan"))
            parts += _bp2(trace, arrays, x, sup(x))
    if info.batch:
        parts.append(Text(f"\ncost over the batch: C = (1/m) Σ_x l(x) = {number(before)}, {info.loss}"))
    mean = f", the mean over the m = {info.m} examples: (1/m) Σ_x" if info.batch else ""
    parts.append(Text(f"\n4. Gradient (BP3: ∂C/∂b^l_j = δ^l_j; BP4: ∂C/∂w^l_jk = a^(l−1)_k δ^l_j){mean}",
                      style="bold cyan"))
    parts += [_weights(f"layer {l}", layer, info.sizes[l - 1], _Gradient(l, layer)) for l, layer in
              enumerate(arrays, start=1)]
    parts.append(Text(f"\n5. Gradient descent: w^l ← w^l − (η/m) Σ_x δ^(x,l) (a^(x,l−1))ᵀ, "
                      f"b^l ← b^l − (η/m) Σ_x δ^(x,l)   (η = {number(eta)}, m = {info.m})", style="bold cyan"))
    parts += [_weights(f"layer {l}", layer, info.sizes[l - 1], _Update(l, layer)) for l, layer in
              enumerate(arrays, start=1)]
    parts.append(Text("\n6. The cost", style="bold cyan"))
    parts.append(Text(f"C = {number(before)} before the step → {number(after)} after it "
                      f"(change {number(after - before)})"))
    parts.append(Text("\n7. Check δ by its definition", style="bold cyan"))
    parts.append(_angel(trace, arrays))
    return Group(*parts)

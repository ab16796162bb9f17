"""PNG figures of training histories and sweep results.

What it is for: learning curves of one or many configs, one config's learning-slowdown diagnostics per layer
(mean |δ^l|, saturated and low-activation fractions), and a sweep's metric against η (lines, seeds as min–max
bars) or against (η, sizes) (an annotated heatmap). Diverged runs are shown as ×/grey, never dropped silently.
What it is not: no training, no tracking, no screen output. It draws on a fresh ``Figure`` with the Agg canvas,
so no pyplot state is created or left behind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

DPI = 110
MAX_LEGEND = 12  # more lines than this: no per-line legend, the title says "N configs"
MISSING = "—"  # heatmap cell with no finite value


class Cell(NamedTuple):
    """The runs sharing one key: mean, min, max of the finite values; ``n`` runs, ``diverged`` of them not finite."""
    mean: float
    lo: float
    hi: float
    n: int
    diverged: int


def sort_key(value) -> tuple:
    """Numbers numerically, sizes like "784-30-10" by their tuple of ints, anything else as text."""
    if isinstance(value, (int, float)):
        return (0, float(value), ())
    parts = str(value).split("-")
    return (1, 0.0, tuple(map(int, parts))) if all(p.isdigit() for p in parts) else (2, 0.0, (str(value),))


def aggregate(rows: Sequence[Mapping], metric: str, keys: Sequence[str] = ("eta", "sizes")) -> dict[tuple, Cell]:
    """{(row[k] for k in keys): Cell} over ``rows``; None, NaN and ±inf count as diverged."""
    _check_rows(rows, metric, keys)
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        groups.setdefault(tuple(_key(row[k]) for k in keys), []).append(_number(row[metric], metric))
    cells = {}
    for key, values in groups.items():
        ok = np.array(values)[np.isfinite(values)]
        stats = (ok.mean(), ok.min(), ok.max()) if ok.size else (np.nan,) * 3
        cells[key] = Cell(*map(float, stats), len(values), len(values) - ok.size)
    return cells


def learning_curves(histories: Mapping[str, list[dict]], path, *, title: str = "Learning curves") -> Path:
    """Train cost and accuracy (validation solid, else test dashed) vs epoch, one line per label."""
    path = _png(path)
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError("histories must be a non-empty mapping {label: list of per-epoch dicts}")
    for label, history in histories.items():
        _check_history(history, f"history {label!r}")
    fig, ((cost_ax, acc_ax),) = _figure(1, 2, 5.2, 3.8)
    colors = _colors(len(histories))
    for history, color in zip(histories.values(), colors):
        _plot_cost(cost_ax, history, color)
        key = "validation_accuracy" if _has(history, "validation_accuracy") else "test_accuracy"
        _plot(acc_ax, *_series(history, key), color=color, ls="-" if key.startswith("val") else "--")
    _axes(cost_ax, "Train cost (× diverged)", "cost", log_of=[_series(h, "train_cost")[1] for h in histories.values()])
    _axes(acc_ax, "Accuracy (solid: validation, dashed: test)", "accuracy")
    fig.suptitle(title + _legend(fig, list(zip(histories, colors))))
    return _save(fig, path)


def config_curves(history: list[dict], path, *, title: str) -> Path:
    """One config: cost, accuracies, then per layer mean |δ^l| and the saturated / low-activation fractions."""
    path = _png(path)
    _check_history(history, "history")
    fig, ((cost_ax, acc_ax), (delta_ax, frac_ax)) = _figure(2, 2, 5.2, 3.4)
    _plot_cost(cost_ax, history, "C0")
    _axes(cost_ax, "Train cost (× diverged)", "cost", log_of=[_series(history, "train_cost")[1]])
    for split, color in zip(("train", "validation", "test"), ("C0", "C1", "C2")):
        if _has(history, f"{split}_accuracy"):
            _plot(acc_ax, *_series(history, f"{split}_accuracy"), color=color, label=split)
    _axes(acc_ax, "Accuracy", "accuracy")
    acc_ax.legend(fontsize="small")
    layers = sorted({int(m[1]) for k in history[0] if (m := re.fullmatch(r"mean_abs_delta_(\d+)", k))})
    colors = _colors(len(layers))
    for l, color in zip(layers, colors):
        _plot(delta_ax, *_series(history, f"mean_abs_delta_{l}"), color=color)
        _plot(frac_ax, *_series(history, f"saturated_fraction_{l}"), color=color)
        _plot(frac_ax, *_series(history, f"low_activation_fraction_{l}"), color=color, ls=":")
    _axes(delta_ax, r"Mean $|\delta^l|$ per layer (BP1, BP2)", r"mean $|\delta^l|$",
          log_of=[_series(history, f"mean_abs_delta_{l}")[1] for l in layers])
    frac_ax.set_ylim(-0.03, 1.03)
    _axes(frac_ax, r"Saturated $|\sigma'| < 0.01$ (solid), low $|a^{l-1}| < 0.01$ (dotted)", "fraction")
    _legend(fig, [(f"layer {l}", color) for l, color in zip(layers, colors)], title="lower panels")
    fig.suptitle(title)
    return _save(fig, path)


def metric_vs_eta(rows: Sequence[Mapping], metric: str, path, *, group_by: str = "sizes") -> Path:
    """``metric`` vs η (log axis), one line per ``group_by`` value; mean with min–max bars; diverged as × below."""
    path = _png(path)
    cells = aggregate(rows, metric, ("eta", group_by))
    if not all(isinstance(eta, float) for eta, _ in cells):
        raise ValueError("metric_vs_eta expects every row's 'eta' to be a number")
    groups = sorted({group for _, group in cells}, key=sort_key)
    fig, ((ax,),) = _figure(1, 1, 6.4, 4.2)
    colors = _colors(len(groups))
    for group, color in zip(groups, colors):
        ok = sorted((eta, c.mean, c.lo, c.hi) for (eta, g), c in cells.items() if g == group and c.n > c.diverged)
        if ok:
            eta, mean, lo, hi = map(np.array, zip(*ok))
            ax.errorbar(eta, mean, yerr=[mean - lo, hi - mean], color=color, marker="o", ms=4, capsize=3)
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom - 0.1 * (top - bottom), top)  # a strip below the data for the × of diverged runs
    for group, color in zip(groups, colors):
        _mark_diverged(ax, [eta for (eta, g), c in cells.items() if g == group and c.diverged], color, at=0.04)
    ax.set_xscale("log")
    note = _legend(fig, [(_label(g), c) for g, c in zip(groups, colors)], title=group_by)
    _axes(ax, f"{metric} vs learning rate η{note}", metric, xlabel="η (log scale)")
    return _save(fig, path)


def metric_heatmap(rows: Sequence[Mapping], metric: str, path, *, x: str = "eta", y: str = "sizes") -> Path:
    """Mean ``metric`` per (x, y) cell, annotated; cells with no finite value grey with "—"; a colorbar."""
    path = _png(path)
    cells = aggregate(rows, metric, (x, y))
    xs, ys = (sorted({key[i] for key in cells}, key=sort_key) for i in (0, 1))
    table = [[cells.get((xv, yv)) for xv in xs] for yv in ys]
    grid = np.array([[c.mean if c else np.nan for c in row] for row in table])
    fig, ((ax,),) = _figure(1, 1, max(5.0, 0.9 * len(xs) + 2.5), max(3.2, 0.55 * len(ys) + 1.6))
    finite = grid[np.isfinite(grid)]
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=colormaps["viridis"].with_extremes(bad="lightgrey"),
                      aspect="auto", **dict(vmin=finite.min(), vmax=finite.max()) if finite.size else {})
    for (i, j), value in np.ndenumerate(grid):
        shade = np.dot(image.cmap(image.norm(value))[:3], (0.299, 0.587, 0.114)) if np.isfinite(value) else 1
        ax.text(j, i, annotation(table[i][j]), ha="center", va="center", fontsize="small",
                color="black" if shade > 0.5 else "white")
    ax.set_xticks(range(len(xs)), [_label(v) for v in xs], rotation=45 if len(xs) > 6 else 0)
    ax.set_yticks(range(len(ys)), [_label(v) for v in ys])
    fig.colorbar(image, ax=ax, label=f"mean {metric}")
    ax.set(title=f"Mean {metric} by {x} and {y} (grey: diverged or missing)", xlabel=x, ylabel=y)
    return _save(fig, path)


def annotation(cell: Cell | None) -> str:
    """A heatmap cell's text: the mean to 3 digits and how many runs diverged, or "—" with no finite value."""
    if cell is None or cell.n == cell.diverged:
        return MISSING
    return f"{cell.mean:.3g}" + (f"\n({cell.diverged}/{cell.n} diverged)" if cell.diverged else "")


def _png(path) -> Path:
    """``path`` as a Path ending in .png, its parent folders created."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"expected a path ending in .png, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _figure(nrows: int, ncols: int, width: float, height: float) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)  # attaches the Agg canvas: PNG output, nothing on screen
    fig.savefig(path, dpi=DPI)
    return path


def _check_rows(rows, metric: str, keys: Sequence[str]) -> None:
    if isinstance(rows, (str, Mapping)) or not isinstance(rows, Sequence) or not rows:
        raise ValueError("rows must be a non-empty sequence of dicts")
    for i, row in enumerate(rows):
        if missing := [k for k in (*keys, metric) if not isinstance(row, Mapping) or k not in row]:
            raise ValueError(f"expected every row to have keys {[*keys, metric]}; row {i} lacks {missing}")


def _check_history(history, name: str) -> None:
    if not isinstance(history, Sequence) or not history:
        raise ValueError(f"{name} must be a non-empty list of per-epoch dicts")
    if not all(isinstance(h, Mapping) and "epoch" in h and "train_cost" in h for h in history):
        raise ValueError(f"expected every epoch of {name} to have 'epoch' and 'train_cost'")


def _key(value):
    """A hashable, sortable key: a sizes list becomes "784-30-10", a number or numeric text a float."""
    if isinstance(value, (list, tuple)):
        return "-".join(map(str, value))
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _number(value, metric: str) -> float:
    try:
        return np.nan if value is None else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected {metric!r} to be a number or None, got {value!r}") from None


def _colors(n: int) -> list:
    """tab10 for up to 10 lines, else n shades of viridis."""
    return list(colormaps["tab10"].colors[:n]) if n <= 10 else list(colormaps["viridis"](np.linspace(0, 0.9, n)))


def _label(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _series(history: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of ``key``; None or absent → NaN."""
    values = [np.nan if h.get(key) is None else h[key] for h in history]
    return np.array([h["epoch"] for h in history], float), np.array(values, float)


def _has(history: list[dict], key: str) -> bool:
    return any(h.get(key) is not None for h in history)


def _plot(ax, x: np.ndarray, y: np.ndarray, **style) -> None:
    """A line through the finite points only (a lone point gets a marker)."""
    ok = np.isfinite(y)
    ax.plot(x[ok], y[ok], marker="o" if ok.sum() == 1 else None, **style)


def _plot_cost(ax, history: list[dict], color) -> None:
    """Train cost vs epoch; a run whose last cost is NaN/inf gets a × at the top, at that epoch."""
    epochs, cost = _series(history, "train_cost")
    _plot(ax, epochs, cost, color=color)
    _mark_diverged(ax, [] if np.isfinite(cost[-1]) else [epochs[-1]], color, at=0.96)


def _mark_diverged(ax, xs: list, color, *, at: float) -> None:
    """× markers at data ``xs``, at height ``at`` (a fraction of the axes): runs that diverged there."""
    if xs:
        ax.plot(xs, [at] * len(xs), ls="", marker="x", ms=8, mew=2, color=color, transform=ax.get_xaxis_transform())


def _legend(fig: Figure, lines: list[tuple[str, object]], title: str | None = None) -> str:
    """A legend right of the figure: one entry per (label, color), and "diverged" if a × was drawn. With more
    than MAX_LEGEND lines only "diverged" stays; the returned title note then says how many configs there are."""
    many = len(lines) > MAX_LEGEND
    handles = [] if many else [Line2D([], [], color=color, label=label) for label, color in lines]
    if any(line.get_marker() == "x" for ax in fig.axes for line in ax.lines):
        handles.append(Line2D([], [], color="dimgray", marker="x", ls="", label="diverged"))
    if handles:
        fig.legend(handles=handles, loc="outside right upper", title=None if many else title, fontsize="small")
    return f" ({len(lines)} configs)" if many else ""


def _axes(ax, title: str, ylabel: str, *, xlabel: str = "epoch", log_of: Sequence[np.ndarray] = ()) -> None:
    """Title, labels, a light grid, integer epochs; a log y axis when every finite value in ``log_of`` is > 0."""
    finite = np.concatenate([s[np.isfinite(s)] for s in log_of] or [np.array([])])
    if finite.size and (finite > 0).all():
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if xlabel == "epoch":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def ladder(histories: Mapping[int, list[dict]], metric: str, brackets: Sequence[Sequence[int]],
           rungs: Sequence[Sequence[int]], pruned: set[int], path, *, title: str,
           names: Mapping[int, str] | None = None) -> Path:
    """A successive-halving ladder: ``metric`` vs epoch of every config (``histories`` by config index), one
    panel per bracket (``brackets``: its config indices; ``rungs``: its rung epochs, dotted lines). Configs
    the search stopped (``pruned``) are thin grey lines ending in a dot where they stopped; those that went
    on are coloured and named (``names``) in the legend; a diverged one ends in a ×."""
    path = _png(path)
    fig, axes = _figure(1, len(brackets), 5.2, 3.8)
    lines = []
    for b, (ax, members, epochs) in enumerate(zip(axes[0], brackets, rungs)):
        for i in members:
            if i in pruned and i in histories:
                x, y = _series(histories[i], metric)
                _plot(ax, x, y, color="0.6", lw=0.8, alpha=0.8)
                ax.plot(x[-1:], y[-1:], ls="", marker="o", ms=3, color="0.45")
        kept = [i for i in members if i not in pruned and i in histories]
        for i, color in zip(kept, _colors(len(kept))):
            _plot(ax, *_series(histories[i], metric), color=color, lw=1.6)
            _mark_diverged(ax, [] if np.isfinite(histories[i][-1]["train_cost"]) else [histories[i][-1]["epoch"]],
                           color, at=0.96)
            lines.append((f"{(names or {}).get(i, i)}", color))
        for e in epochs:
            ax.axvline(e, color="0.3", ls=":", lw=0.8)
        _axes(ax, f"bracket {b + 1}: {len(members)} configs" if len(brackets) > 1 else f"{len(members)} configs",
              metric)
    handles = [Line2D([], [], color=color, lw=1.6, label=label) for label, color in lines[:MAX_LEGEND]]
    handles += [Line2D([], [], color="0.6", marker="o", ms=3, label="stopped (pruned)"),
                Line2D([], [], color="0.3", ls=":", label="end of a rung")]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(3, len(handles)), fontsize="small")
    fig.suptitle(title)
    return _save(fig, path)


def pbt_figure(histories: Mapping[int, list[dict]], metric: str, events: Sequence[Mapping], generations: Sequence[int],
               path, *, title: str, names: Mapping[int, str] | None = None) -> Path:
    """Population-based training: ``metric`` vs epoch of every config (``histories`` by config index, rows with
    ``eta``) on the left, η vs epoch (log axis) on the right; dotted lines at the ends of ``generations``. Each
    exploit (``events``: epoch, target, source) is drawn on the target's curve: its own value at that epoch
    ends in a ○, a dotted jump leads to the source's value (▲), from where its curve goes on; a diverged
    config ends in a ×."""
    path = _png(path)
    fig, ((ax, eta_ax),) = _figure(1, 2, 5.6, 4.2)
    order = sorted(histories)
    colors = dict(zip(order, _colors(len(order))))

    def at(i: int, epoch: int, key: str) -> float:
        rows = [h.get(key) for h in histories.get(i, []) if h["epoch"] == epoch]
        return np.nan if not rows or rows[0] is None else float(rows[0])

    copies = {}
    for e in events:
        copies.setdefault(e["target"], []).append((e["epoch"], e["source"]))
    for i in order:
        x, y = _series(histories[i], metric)
        color, starts = colors[i], [0.0]
        for epoch, source in copies.get(i, []):  # in the order they happened
            here, there = at(i, epoch, metric), at(source, epoch, metric)
            ax.plot([epoch, epoch], [here, there], color=color, ls=":", lw=1.4)
            ax.plot([epoch], [here], ls="", marker="o", mfc="white", ms=4, color=color)
            ax.plot([epoch], [there], ls="", marker="^", ms=6, color=color)
            starts.append(epoch)
        for b, start in enumerate(starts):  # one segment per stretch of its own weights, from the copied point
            end = starts[b + 1] if b + 1 < len(starts) else np.inf
            seg = (x >= start) & (x <= end)
            sx, sy = x[seg], y[seg]
            if b:
                sx, sy = np.r_[start, sx[sx > start]], np.r_[at(copies[i][b - 1][1], start, metric), sy[sx > start]]
            _plot(ax, sx, sy, color=color, lw=1.4)
        _mark_diverged(ax, [] if np.isfinite(at(i, x[-1], "train_cost")) else [x[-1]], color, at=0.96)
        ex, eta = _series(histories[i], "eta")
        ok = np.isfinite(eta)
        eta_ax.plot(ex[ok], eta[ok], drawstyle="steps-mid", color=color, lw=1.4, marker=".", ms=4)
    for axis in (ax, eta_ax):
        for g in generations:
            axis.axvline(g + 0.5 * (axis is eta_ax), color="0.75", lw=0.8, zorder=0)
    _axes(ax, f"{metric} (○ → ▲: copied a better config)", metric)
    _axes(eta_ax, "Learning rate η (changes after each copy)", "η (log scale)")
    eta_ax.set_yscale("log")
    many = len(order) > MAX_LEGEND  # then no line per config: the title says how many there are
    handles = [] if many else [Line2D([], [], color=colors[i], lw=1.4, label=f"{(names or {}).get(i, i)}")
                               for i in order]
    handles += [Line2D([], [], color="0.3", ls=":", marker="^", label="copy (exploit), to the source's value"),
                Line2D([], [], color="0.75", lw=0.8, label="end of a generation")]
    if any(line.get_marker() == "x" for line in ax.lines):
        handles.append(Line2D([], [], color="dimgray", marker="x", ls="", label="diverged"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)), fontsize="small")
    fig.suptitle(title + (f" ({len(order)} configs)" if many else ""))
    return _save(fig, path)

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

from jaxbp.training.metrics import train_metric

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
    path = png_path(path)
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError("histories must be a non-empty mapping {label: list of per-epoch dicts}")
    for label, history in histories.items():
        _check_history(history, f"history {label!r}")
    fig, ((cost_ax, acc_ax),) = new_figure(1, 2, 5.2, 3.8)
    colors = palette(len(histories))
    for history, color in zip(histories.values(), colors):
        _plot_cost(cost_ax, history, color)
        key = "validation_accuracy" if _has(history, "validation_accuracy") else "test_accuracy"
        plot_line(acc_ax, *series(history, key), color=color, ls="-" if key.startswith("val") else "--")
    style_axes(cost_ax, "Train cost (× diverged)", "cost",
               log_of=[cost_series(h)[1] for h in histories.values()])
    style_axes(acc_ax, "Accuracy (solid: validation, dashed: test)", "accuracy")
    fig.suptitle(title + _legend(fig, list(zip(histories, colors))))
    return save_png(fig, path)


def config_curves(history: list[dict], path, *, title: str) -> Path:
    """One config: cost, accuracies, then per layer mean |δ^l| and the saturated / low-activation fractions."""
    path = png_path(path)
    _check_history(history, "history")
    fig, ((cost_ax, acc_ax), (delta_ax, frac_ax)) = new_figure(2, 2, 5.2, 3.4)
    _plot_cost(cost_ax, history, "C0")
    style_axes(cost_ax, "Train cost (× diverged)", "cost", log_of=[cost_series(history)[1]])
    running = not _has(history, "train_accuracy")
    for split, color in zip(("train", "validation", "test"), ("C0", "C1", "C2")):
        key = f"{split}_accuracy" + ("_running" if split == "train" and running else "")
        if _has(history, key):
            plot_line(acc_ax, *series(history, key), color=color, label=key.replace("_accuracy", "").replace("_", " "))
    style_axes(acc_ax, "Accuracy", "accuracy")
    acc_ax.legend(fontsize="small")
    layers = sorted({int(m[1]) for k in history[0] if (m := re.fullmatch(r"mean_abs_delta_(\d+)", k))})
    colors = palette(len(layers))
    for l, color in zip(layers, colors):
        plot_line(delta_ax, *series(history, f"mean_abs_delta_{l}"), color=color)
        plot_line(frac_ax, *series(history, f"saturated_fraction_{l}"), color=color)
        plot_line(frac_ax, *series(history, f"low_activation_fraction_{l}"), color=color, ls=":")
    style_axes(delta_ax, r"Mean $|\delta^l|$ per layer (BP1, BP2)", r"mean $|\delta^l|$",
          log_of=[series(history, f"mean_abs_delta_{l}")[1] for l in layers])
    frac_ax.set_ylim(-0.03, 1.03)
    style_axes(frac_ax, r"Saturated $|\sigma'| < 0.01$ (solid), low $|a^{l-1}| < 0.01$ (dotted)", "fraction")
    _legend(fig, [(f"layer {l}", color) for l, color in zip(layers, colors)], title="lower panels")
    fig.suptitle(title)
    return save_png(fig, path)


def metric_vs_eta(rows: Sequence[Mapping], metric: str, path, *, group_by: str = "sizes") -> Path:
    """``metric`` vs η (log axis), one line per ``group_by`` value; mean with min–max bars; diverged as × below."""
    path = png_path(path)
    cells = aggregate(rows, metric, ("eta", group_by))
    if not all(isinstance(eta, float) for eta, _ in cells):
        raise ValueError("metric_vs_eta expects every row's 'eta' to be a number")
    groups = sorted({group for _, group in cells}, key=sort_key)
    fig, ((ax,),) = new_figure(1, 1, 6.4, 4.2)
    colors = palette(len(groups))
    for group, color in zip(groups, colors):
        ok = sorted((eta, c.mean, c.lo, c.hi) for (eta, g), c in cells.items() if g == group and c.n > c.diverged)
        if ok:
            eta, mean, lo, hi = map(np.array, zip(*ok))
            ax.errorbar(eta, mean, yerr=[mean - lo, hi - mean], color=color, marker="o", ms=4, capsize=3)
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom - 0.1 * (top - bottom), top)  # a strip below the data for the × of diverged runs
    for group, color in zip(groups, colors):
        mark_diverged(ax, [eta for (eta, g), c in cells.items() if g == group and c.diverged], color, at=0.04)
    ax.set_xscale("log")
    note = _legend(fig, [(_label(g), c) for g, c in zip(groups, colors)], title=group_by)
    style_axes(ax, f"{metric} vs learning rate η{note}", metric, xlabel="η (log scale)")
    return save_png(fig, path)


def metric_heatmap(rows: Sequence[Mapping], metric: str, path, *, x: str = "eta", y: str = "sizes") -> Path:
    """Mean ``metric`` per (x, y) cell, annotated; cells with no finite value grey with "—"; a colorbar."""
    path = png_path(path)
    cells = aggregate(rows, metric, (x, y))
    xs, ys = (sorted({key[i] for key in cells}, key=sort_key) for i in (0, 1))
    table = [[cells.get((xv, yv)) for xv in xs] for yv in ys]
    grid = np.array([[c.mean if c else np.nan for c in row] for row in table])
    fig, ((ax,),) = new_figure(1, 1, max(5.0, 0.9 * len(xs) + 2.5), max(3.2, 0.55 * len(ys) + 1.6))
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
    return save_png(fig, path)


def annotation(cell: Cell | None) -> str:
    """A heatmap cell's text: the mean to 3 digits and how many runs diverged, or "—" with no finite value."""
    if cell is None or cell.n == cell.diverged:
        return MISSING
    return f"{cell.mean:.3g}" + (f"\n({cell.diverged}/{cell.n} diverged)" if cell.diverged else "")


def png_path(path) -> Path:
    """``path`` as a Path ending in .png, its parent folders created."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"expected a path ending in .png, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def new_figure(nrows: int, ncols: int, width: float, height: float) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def save_png(fig: Figure, path: Path) -> Path:
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
    if not all(isinstance(h, Mapping) and "epoch" in h and ("train_cost" in h or "train_cost_running" in h)
               for h in history):
        raise ValueError(f"expected every epoch of {name} to have 'epoch' and 'train_cost' or 'train_cost_running'")


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


def palette(n: int) -> list:
    """tab10 for up to 10 lines, else n shades of viridis."""
    return list(colormaps["tab10"].colors[:n]) if n <= 10 else list(colormaps["viridis"](np.linspace(0, 0.9, n)))


def _label(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def series(history: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of ``key``; None or absent → NaN."""
    values = [np.nan if h.get(key) is None else h[key] for h in history]
    return np.array([h["epoch"] for h in history], float), np.array(values, float)


def cost_series(history: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, training costs): the whole split's where measured, else the running means (``metrics.train_metric``)."""
    values = [train_metric(h) for h in history]
    return np.array([h["epoch"] for h in history], float), np.array([np.nan if v is None else v for v in values])


def _has(history: list[dict], key: str) -> bool:
    return any(h.get(key) is not None for h in history)


def plot_line(ax, x: np.ndarray, y: np.ndarray, **style) -> None:
    """A line through the finite points only (a lone point gets a marker)."""
    ok = np.isfinite(y)
    ax.plot(x[ok], y[ok], marker="o" if ok.sum() == 1 else None, **style)


def _plot_cost(ax, history: list[dict], color) -> None:
    """Train cost vs epoch; a run whose last cost is NaN/inf gets a × at the top, at that epoch."""
    epochs, cost = cost_series(history)
    plot_line(ax, epochs, cost, color=color)
    mark_diverged(ax, [] if np.isfinite(cost[-1]) else [epochs[-1]], color, at=0.96)


def mark_diverged(ax, xs: list, color, *, at: float) -> None:
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


def style_axes(ax, title: str, ylabel: str, *, xlabel: str = "epoch", log_of: Sequence[np.ndarray] = ()) -> None:
    """Title, labels, a light grid, integer epochs; a log y axis when every finite value in ``log_of`` is > 0."""
    finite = np.concatenate([s[np.isfinite(s)] for s in log_of] or [np.array([])])
    if finite.size and (finite > 0).all():
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if xlabel == "epoch":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


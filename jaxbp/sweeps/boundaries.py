"""Decision boundaries of a whole sweep on a 2-D dataset, one panel per config, in one PNG for its parent run.

What it is for: TensorFlow Playground trains one network at a time; ``sweep_boundaries`` draws every config of
a finished sweep whose data has two inputs (xor, moons, circle, gauss, spiral) side by side, each at the
weights it ended with (its child run's ``checkpoint.msgpack``): the network's predicted class over a grid of
the input plane (the class's colour, paler where the two largest outputs are close), the boundary between
classes as a black contour, the training points on top, and a title with the config's name and its test
accuracy, computed from those very weights. ``boundary_figure`` draws given ``Panel``s and returns the
``Figure``; ``boundary_grid`` saves it.

Layout. Rows are sizes (shallow before deep, narrow before wide) and columns η, ascending. Other swept
axes (seed, l2, init, activation, …) add rows: one row per sizes and combination of their values, labelled on
the left ("2-8-2 · seed=1"). Where every row has the same η values once each (a grid), a column is one η;
otherwise (random draws, a search's own proposals) each row holds its configs in order of η, wrapped after
``MAX_COLUMNS``, and each panel's title gives its η.

Searches. Halving, Hyperband and Optuna draw every config they started: one they stopped (status ``pruned``) at
the weights it had when stopped, its panel framed in dashed grey and titled with the epoch it stopped at. PBT
draws each config at its final weights, which may have been copied from other configs on the way (its
``lineage.json`` says whose); a PBT panel's η is the config's starting η. A diverged config is drawn at its
last finite weights, framed in red; the best config by the spec's metric has a thick black frame and a ★.

What it is not: no training; no figure for data of another width (the input plane must be two-dimensional).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from jaxbp.core.network import feedforward
from jaxbp.core.types import Params
from jaxbp.sweeps.contracts import Row
from jaxbp.sweeps.plots import new_figure, palette, png_path, save_png, sort_key
from jaxbp.training.checkpoint import Checkpoint, load_checkpoint
from jaxbp.training.data import Dataset

RESOLUTION = 120  # grid points per side of the input plane
MARGIN = 0.05  # the plane spans the data's range widened by this share on each side
MAX_COLUMNS = 6  # panels per row where columns are not one η each
PANEL_INCHES = 2.3
MIN_WIDTH = 5.5  # inches: room for the title and legend above and below a row of one or two panels
FILE = "decision_boundaries.png"
PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"  # MLflow draws one per downloaded checkpoint unless "false"


class Panel(NamedTuple):
    """One config to draw: its name, weights and activations, η, the row it belongs to, how it ended."""

    name: str
    params: Params
    activation: str
    output_activation: str | None
    eta: float
    row: tuple  # sort key and label of its row: (sizes, other swept axes' values)
    status: str = "finished"  # finished / stopped_early / diverged / pruned
    epochs: int | None = None  # how many epochs it trained (a pruned config: where it stopped)
    best: bool = False


def plane(X: np.ndarray, resolution: int = RESOLUTION) -> tuple[tuple[float, float, float, float], np.ndarray]:
    """The input plane around inputs ``X`` (n, 2): its extent (x0, x1, y0, y1) and the centres of its
    resolution × resolution cells, row by row from the bottom (``imshow``'s ``origin="lower"`` order), (r², 2)."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = MARGIN * np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad, hi + pad
    xs, ys = ((lo[i] + (np.arange(resolution) + 0.5) * (hi[i] - lo[i]) / resolution) for i in (0, 1))
    gx, gy = np.meshgrid(xs, ys)
    return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])), np.c_[gx.ravel(), gy.ravel()]


def outputs(panel: Panel, X: np.ndarray) -> np.ndarray:
    """The network's output a^L for each row of ``X``, as a float64 NumPy array (n, n_L)."""
    _, a = feedforward(panel.params, X, panel.activation, panel.output_activation)
    return np.asarray(a[-1], np.float64)


def accuracy(a: np.ndarray, Y: np.ndarray) -> float:
    """The share of examples whose largest output a^L is at their label (one-hot ``Y``)."""
    return float(np.mean(np.argmax(a, axis=1) == np.argmax(np.asarray(Y), axis=1)))


def _layout(panels: Sequence[Panel]) -> tuple[list[tuple], list[list[Panel | None]]]:
    """(row labels, panel grid) as the module's docstring says: η columns for a grid, else η-ordered wraps."""
    def order(p: Panel) -> tuple:
        sizes = sort_key(p.row[0])  # "2-8-8-2": depth first, then widths
        return (len(sizes[2]), sizes, *(sort_key(v) for v in p.row[1:]), p.eta)

    rows: dict[tuple, list[Panel]] = {}
    for p in sorted(panels, key=order):
        rows.setdefault(p.row, []).append(p)
    etas = [[p.eta for p in members] for members in rows.values()]
    if all(e == etas[0] and len(set(e)) == len(e) for e in etas) and len(etas[0]) <= 2 * MAX_COLUMNS:
        return list(rows), list(rows.values())  # a grid: column j is the j-th η of every row
    labels, grid = [], []
    for row, members in rows.items():
        for start in range(0, len(members), MAX_COLUMNS):
            labels.append(row)
            grid.append(members[start:start + MAX_COLUMNS])
    return labels, grid


def boundary_figure(panels: Sequence[Panel], data: Dataset, *, title: str) -> Figure:
    """One panel per config (``panels``), laid out as the module's docstring says, over ``data``'s input plane
    with its training points. Each panel's image holds the predicted class of every cell (``get_array``), its
    alpha how sure the network is (the gap between its two largest outputs, clipped to [0, 1])."""
    if not panels:
        raise ValueError("boundary_figure needs at least one panel (a config with weights)")
    if data.n_in != 2:
        raise ValueError(f"decision boundaries need a 2-D input plane; dataset {data.name!r} has {data.n_in} inputs")
    X, labels = np.asarray(data.train.X, np.float64), np.argmax(np.asarray(data.train.Y), axis=1)
    extent, cells = plane(np.concatenate([X, np.asarray(data.test.X, np.float64)]))
    colors = palette(data.n_classes)
    cmap = ListedColormap(colors)
    row_labels, grid = _layout(panels)
    ncols = max(len(line) for line in grid)
    fig, axes = new_figure(len(grid), ncols, max(PANEL_INCHES, MIN_WIDTH / ncols), PANEL_INCHES + 0.35)
    for r, (label, line) in enumerate(zip(row_labels, grid)):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set(xticks=[], yticks=[], aspect="equal")
            if c == 0:
                ax.set_ylabel(" · ".join(str(v) for v in label), fontsize="small")
            if c >= len(line):
                ax.axis("off")
                continue
            _draw(ax, line[c], data, cells, extent, cmap, X, labels, colors)
    handles = [Line2D([], [], ls="", marker="o", color=color, mec="white", label=f"class {k}")
               for k, color in enumerate(colors)]
    handles.append(Line2D([], [], color="black", lw=1.2, label="boundary"))
    shown = {p.status for p in panels} | ({"best"} if any(p.best for p in panels) else set())
    handles += [Line2D([], [], label=label, **style) for status, label, style in (
        ("pruned", "pruned (its weights where it stopped)", dict(color="0.5", ls="--")),
        ("diverged", "diverged (its last finite weights)", dict(color="tab:red")),
        ("best", "★ best by the spec's metric", dict(color="black", lw=2.5))) if status in shown]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3 if ncols > 2 else 2),
               fontsize="small")
    fig.suptitle(title, fontsize="medium")
    return fig


def _draw(ax, panel: Panel, data: Dataset, cells, extent, cmap, X, labels, colors) -> None:
    """One config's panel: class field, boundary contour, training points, title and frame."""
    res = int(round(np.sqrt(len(cells))))
    a = outputs(panel, np.concatenate([cells, np.asarray(data.test.X, np.float64)]))  # one forward pass for both
    a, test = a[:len(cells)], a[len(cells):]
    top2 = np.sort(a, axis=1)[:, -2:]
    finite = np.isfinite(a).all(axis=1)
    classes = np.where(finite, np.argmax(np.nan_to_num(a), axis=1), 0).reshape(res, res)
    sure = np.where(finite, np.clip(np.nan_to_num(top2[:, 1] - top2[:, 0]), 0, 1), 0).reshape(res, res)
    ax.imshow(classes, cmap=cmap, vmin=-0.5, vmax=len(colors) - 0.5, alpha=np.where(
        finite.reshape(res, res), 0.2 + 0.6 * sure, 0.0), extent=extent, origin="lower", interpolation="nearest")
    if len(colors) == 2 and finite.all():
        field, levels = (a[:, 1] - a[:, 0]).reshape(res, res), [0.0]
    else:
        field, levels = classes.astype(float), np.arange(len(colors) - 1) + 0.5
    if any(field.min() < level < field.max() for level in levels):  # a boundary crosses the plane
        ax.contour(*np.meshgrid(cells[:res, 0], cells[::res, 1]), field, levels=levels, colors="black",
                   linewidths=1.2)
    ax.scatter(X[:, 0], X[:, 1], c=[colors[k] for k in labels], s=5, linewidths=0.3, edgecolors="white")
    ax.set(xlim=extent[:2], ylim=extent[2:])
    note = {"pruned": f"pruned at epoch {panel.epochs}", "diverged": "diverged"}.get(panel.status, "")
    star = "★ " if panel.best else ""
    ax.set_title(f"{star}{panel.name}\ntest {accuracy(test, data.test.Y):.3f}" + (f" · {note}" if note else ""),
                 fontsize="small", color="0.35" if panel.status == "pruned" else "black")
    frame = {"pruned": dict(color="0.5", ls="--", lw=1.4), "diverged": dict(color="tab:red", lw=1.6)}.get(
        panel.status, dict(color="black", lw=0.8))
    if panel.best:
        frame = dict(frame, lw=2.8)
    for spine in ax.spines.values():
        spine.set(linestyle=frame.get("ls", "-"), color=frame["color"], linewidth=frame["lw"])


def boundary_grid(panels: Sequence[Panel], data: Dataset, path, *, title: str) -> Path:
    """``boundary_figure`` saved as the PNG ``path``."""
    path = png_path(path)
    return save_png(boundary_figure(panels, data, title=title), path)


def row_key(row: Row, axes: Sequence[str]) -> tuple:
    """A config's row in the figure: its sizes and the values of the swept ``axes`` other than η and sizes."""
    others = [a for a in axes if a not in ("eta", "hidden", "sizes")]
    return (row.sizes, *(f"{a}={row.params.get(a)}" for a in others))


def child_checkpoint(client, run_id: str, folder: Path) -> Checkpoint:
    """The ``checkpoint.msgpack`` of a sweep's child run (its config's weights where it ended), downloaded into
    ``folder`` without MLflow's progress bar (unless the user set ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR``)."""
    quiet = PROGRESS_BAR not in os.environ
    if quiet:
        os.environ[PROGRESS_BAR] = "false"
    try:
        return load_checkpoint(client.download_artifacts(run_id, "checkpoint.msgpack", str(folder)))
    finally:
        if quiet:
            del os.environ[PROGRESS_BAR]


def panels_of(rows: Sequence[Row], axes: Sequence[str], client, folder: Path) -> list[Panel]:
    """The ``Panel`` of each ranked row (best first), its weights read from its child run's checkpoint."""
    panels = []
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        for rank, row in enumerate(rows):
            checkpoint = child_checkpoint(client, row.run_id, Path(tmp))
            config = checkpoint.config
            panels.append(Panel(row.name, checkpoint.params, config.activation, config.output_activation,
                                row.eta, row_key(row, axes), row.status, row.epochs,
                                best=rank == 0 and row.value is not None))
    return panels


def sweep_boundaries(spec, rows: Sequence[Row], client, data: Dataset, folder: Path) -> list[Path]:
    """[the parent's ``decision_boundaries.png``] for a sweep on a 2-D dataset (``data.n_in == 2``), drawn in
    ``folder`` from every config's checkpoint in the store of ``client``; [] for any other dataset."""
    if data.n_in != 2 or not rows:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    panels = panels_of(rows, list(spec.sweep), client, folder)
    title = f"{spec.name}: decision boundaries on {data.name}\nat each config's last epoch (rows: sizes, columns: η)"
    return [boundary_grid(panels, data, folder / FILE, title=title)]

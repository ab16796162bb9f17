"""The figures of the adaptive searches (PNG, drawn with the Agg canvas as ``plots`` draws, no pyplot state).

What it is for: ``ladder`` (successive halving and Hyperband: every config's metric against epochs, where
each stopped), ``pbt_figure`` (population-based training: the copies and η over time) and ``optuna_figure``
(each trial's value and the best so far). What it is not: no search, no logging.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from jaxbp.sweeps.plots import (
    MAX_LEGEND,
    cost_series,
    mark_diverged,
    new_figure,
    palette,
    plot_line,
    png_path,
    save_png,
    series,
    style_axes,
)


def ladder(histories: Mapping[int, list[dict]], metric: str, brackets: Sequence[Sequence[int]],
           rungs: Sequence[Sequence[int]], pruned: set[int], path, *, title: str,
           names: Mapping[int, str] | None = None) -> Path:
    """A successive-halving ladder: ``metric`` vs epoch of every config (``histories`` by config index), one
    panel per bracket (``brackets``: its config indices; ``rungs``: its rung epochs, dotted lines). Configs
    the search stopped (``pruned``) are thin grey lines ending in a dot where they stopped; those that went
    on are coloured and named (``names``) in the legend; a diverged one ends in a ×."""
    path = png_path(path)
    fig, axes = new_figure(1, len(brackets), 5.2, 3.8)
    lines = []
    for b, (ax, members, epochs) in enumerate(zip(axes[0], brackets, rungs)):
        for i in members:
            if i in pruned and i in histories:
                x, y = series(histories[i], metric)
                plot_line(ax, x, y, color="0.6", lw=0.8, alpha=0.8)
                ax.plot(x[-1:], y[-1:], ls="", marker="o", ms=3, color="0.45")
        kept = [i for i in members if i not in pruned and i in histories]
        for i, color in zip(kept, palette(len(kept))):
            plot_line(ax, *series(histories[i], metric), color=color, lw=1.6)
            mark_diverged(ax, [] if np.isfinite(cost_series(histories[i])[1][-1]) else [histories[i][-1]["epoch"]],
                           color, at=0.96)
            lines.append((f"{(names or {}).get(i, i)}", color))
        for e in epochs:
            ax.axvline(e, color="0.3", ls=":", lw=0.8)
        style_axes(ax, f"bracket {b + 1}: {len(members)} configs" if len(brackets) > 1 else f"{len(members)} configs",
              metric)
    handles = [Line2D([], [], color=color, lw=1.6, label=label) for label, color in lines[:MAX_LEGEND]]
    handles += [Line2D([], [], color="0.6", marker="o", ms=3, label="stopped (pruned)"),
                Line2D([], [], color="0.3", ls=":", label="end of a rung")]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(3, len(handles)), fontsize="small")
    fig.suptitle(title)
    return save_png(fig, path)


def pbt_figure(histories: Mapping[int, list[dict]], metric: str, events: Sequence[Mapping], generations: Sequence[int],
               path, *, title: str, names: Mapping[int, str] | None = None) -> Path:
    """Population-based training: ``metric`` vs epoch of every config (``histories`` by config index, rows with
    ``eta``) on the left, η vs epoch (log axis) on the right; dotted lines at the ends of ``generations``. Each
    exploit (``events``: epoch, target, source) is drawn on the target's curve: its own value at that epoch
    ends in a ○, a dotted jump leads to the source's value (▲), from where its curve goes on; a diverged
    config ends in a ×."""
    path = png_path(path)
    fig, ((ax, eta_ax),) = new_figure(1, 2, 5.6, 4.2)
    order = sorted(histories)
    colors = dict(zip(order, palette(len(order))))

    def at(i: int, epoch: int, key: str) -> float:
        rows = [h.get(key) for h in histories.get(i, []) if h["epoch"] == epoch]
        return np.nan if not rows or rows[0] is None else float(rows[0])

    copies = {}
    for e in events:
        copies.setdefault(e["target"], []).append((e["epoch"], e["source"]))
    for i in order:
        x, y = series(histories[i], metric)
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
            plot_line(ax, sx, sy, color=color, lw=1.4)
        mark_diverged(ax, [] if np.isfinite(cost_series(histories[i])[1][-1]) else [x[-1]], color, at=0.96)
        ex, eta = series(histories[i], "eta")
        ok = np.isfinite(eta)
        eta_ax.plot(ex[ok], eta[ok], drawstyle="steps-mid", color=color, lw=1.4, marker=".", ms=4)
    for axis in (ax, eta_ax):
        for g in generations:
            axis.axvline(g + 0.5 * (axis is eta_ax), color="0.75", lw=0.8, zorder=0)
    style_axes(ax, f"{metric} (○ → ▲: copied a better config)", metric)
    style_axes(eta_ax, "Learning rate η (changes after each copy)", "η (log scale)")
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
    return save_png(fig, path)


def optuna_figure(done: Sequence[tuple[int, float]], pruned: Sequence[tuple[int, float]], failed: Sequence[int],
                  maximize: bool, metric: str, path, *, title: str) -> Path:
    """An Optuna search: the value of each trial trained to the end (``done``: (trial, value)), each pruned one
    at the epoch it stopped (hollow), each failed one as a × at the bottom (top when lower is better), and
    the best so far as a step line."""
    path = png_path(path)
    fig, ((ax,),) = new_figure(1, 1, 7.5, 4.4)
    best = list(itertools.accumulate([v for _, v in done], max if maximize else min))
    ax.plot([n for n, _ in done], [v for _, v in done], "o", color="tab:blue", label="trained to the end")
    if pruned:
        ax.plot(*zip(*pruned), "o", mfc="none", color="0.5", label="pruned (value at the epoch it stopped)")
    last = max([n for n, _ in (*done, *pruned)] + list(failed), default=0)
    if done:
        end = [last] if last > done[-1][0] else []  # the best so far, drawn to the last trial
        ax.step([n for n, _ in done] + end, best + best[-1:] * len(end), where="post", color="tab:orange", lw=1.8,
                label="best so far")
    if failed:
        ax.plot(failed, [0.03 if maximize else 0.97] * len(failed), "x", ms=8, mew=2, color="tab:red",
                transform=ax.get_xaxis_transform(), label="failed (no finite value)")
    style_axes(ax, title + (f", best {metric} {best[-1]:.4g}" if best else ""), f"{metric} at the last epoch",
               xlabel="trial (config index)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    fig.legend(loc="outside lower center", ncols=4, fontsize="small")
    return save_png(fig, path)

"""boundaries: real sweeps on 2-D datasets (a grid with a seed axis, random draws, successive halving) into
SQLite stores; the parent gets decision_boundaries.png with one panel per config, each panel's class field
is its own config's network on its checkpoint, pruned configs are drawn at their stopped weights and marked."""

import os
import re

import matplotlib.image
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from helpers import store
from jaxbp.core.network import feedforward
from jaxbp.sweeps import boundaries
from jaxbp.sweeps.plots import DPI
from jaxbp.sweeps.run import run_sweep
from jaxbp.sweeps.spec import parse_spec
from jaxbp.training.checkpoint import load_checkpoint
from jaxbp.training.data import load_dataset

BASE = {"sizes": [2, 4, 2], "epochs": 3, "batch_size": 16, "activation": "tanh", "output_activation": "softmax",
        "cost": "log_likelihood", "optimizer": "adam", "init": "scaled"}
GRID = {"name": "boundaries", "dataset": "circle", "base": BASE,
        "sweep": {"eta": [0.01, 0.1], "hidden": [[3], [8]], "seed": [0, 1]}}  # 8 configs, 2 shapes
RANDOM = {"name": "boundaries-random", "dataset": "xor", "mode": "random", "samples": 14,
          "base": {**BASE, "epochs": 2},  # 14 draws of 2 sizes: one of them has ≥ 7, so its row wraps after 6
          "sweep": {"eta": {"log_uniform": [0.001, 0.3]}, "hidden": [[3], [8]]}}
HALVING = {"name": "boundaries-halving", "dataset": "xor", "mode": "halving", "base": {**BASE, "epochs": 4},
           "search": {"min_epochs": 1, "reduction_factor": 2},
           "sweep": {"eta": [0.003, 0.03, 0.1, 0.3], "hidden": [[4]]}}  # rungs at 1, 2, 4 epochs: 3 pruned


def swept(table, tmp):
    """A finished sweep of ``table`` in a store in ``tmp``, and the boundary figure it drew (captured before
    it was saved: the real ``boundary_figure``, wrapped)."""
    os.environ["JAXBP_SPOOL"] = str(tmp / "spool")
    drawn = []

    def capture(*args, **kwargs):
        drawn.append(figure(*args, **kwargs))
        return drawn[-1]

    figure = boundaries.boundary_figure
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(boundaries, "boundary_figure", capture)
        result = run_sweep(parse_spec(table), store(tmp))
    assert len(drawn) == 1
    return result, MlflowClient(store(tmp)), drawn[0], tmp


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    return swept(GRID, tmp_path_factory.mktemp("grid"))


@pytest.fixture(scope="module")
def halving(tmp_path_factory):
    return swept(HALVING, tmp_path_factory.mktemp("halving"))


def panels(fig) -> dict[str, object]:
    """{config name: axes} of the figure's panels (the axes that hold a class field)."""
    found = {}
    for ax in fig.axes:
        if ax.images:
            name = ax.get_title().splitlines()[0].removeprefix("★ ")
            assert name not in found, f"two panels for {name}"
            found[name] = ax
    return found


def checkpoint(client, run_id, folder):
    return load_checkpoint(client.download_artifacts(run_id, "checkpoint.msgpack", str(folder)))


def field_of(ax, params, config) -> tuple[np.ndarray, np.ndarray]:
    """(the panel's drawn classes, the classes ``params`` give on the same cells), recomputed from the image's
    extent and size: cell centres x0 + (i + ½)(x1 − x0)/r, rows from the bottom."""
    image = ax.images[0]
    drawn = np.asarray(image.get_array())
    x0, x1, y0, y1 = image.get_extent()
    r = drawn.shape[0]
    xs, ys = (lo + (np.arange(r) + 0.5) * (hi - lo) / r for lo, hi in ((x0, x1), (y0, y1)))
    gx, gy = np.meshgrid(xs, ys)
    _, a = feedforward(params, np.c_[gx.ravel(), gy.ravel()], config.activation, config.output_activation)
    return drawn, np.argmax(np.asarray(a[-1]), axis=1).reshape(r, r)


def test_the_parent_gets_the_png_of_the_figure_with_one_panel_per_config(grid):
    result, client, fig, tmp = grid
    files = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert boundaries.FILE in files
    png = matplotlib.image.imread(client.download_artifacts(result.parent_run_id, boundaries.FILE, str(tmp)))
    width, height = fig.get_size_inches() * DPI
    assert png.shape[:2] == (round(height), round(width))  # the PNG is this figure
    drawn = panels(fig)
    assert sorted(drawn) == sorted(r.name for r in result.rows) and len(drawn) == 8
    # rows: sizes × seed (4), columns: η (2), every cell a panel; the rows labelled on the left
    assert [len([ax for ax in fig.axes if ax.images and ax.get_subplotspec().colspan.start == c]) for c in (0, 1)] \
        == [4, 4]
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == ["2-3-2 · seed=0", "2-3-2 · seed=1", "2-8-2 · seed=0", "2-8-2 · seed=1"]
    for name, ax in drawn.items():
        column = ax.get_subplotspec().colspan.start
        assert f"eta={[0.01, 0.1][column]}" in name
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ  # set only while the checkpoints downloaded


def test_each_panel_is_its_own_configs_network(grid):
    result, client, fig, tmp = grid
    drawn = panels(fig)
    fields = {}
    for row in result.rows:
        saved = checkpoint(client, row.run_id, tmp / row.run_id)
        classes, expected = field_of(drawn[row.name], saved.params, saved.config)
        np.testing.assert_array_equal(classes, expected)
        fields[row.name] = expected
        # its title's test accuracy is the child's logged final one, computed here from the drawn weights
        shown = float(re.search(r"test (\d\.\d+)", drawn[row.name].get_title())[1])
        assert shown == pytest.approx(client.get_run(row.run_id).data.metrics["test_accuracy"], abs=5e-4)
    assert len({f.tobytes() for f in fields.values()}) > 1  # the configs' fields differ: the check can fail
    best = [ax for ax in drawn.values() if ax.get_title().startswith("★")]
    assert [ax.get_title().splitlines()[0][2:] for ax in best] == [result.rows[0].name]


def test_pruned_configs_are_drawn_at_their_stopped_weights_and_marked(halving):
    result, client, fig, tmp = halving
    drawn = panels(fig)
    assert sorted(drawn) == sorted(r.name for r in result.rows) and len(drawn) == 4
    pruned = [r for r in result.rows if r.status == "pruned"]
    assert len(pruned) == 3
    for row in result.rows:
        ax, run = drawn[row.name], client.get_run(row.run_id)
        saved = checkpoint(client, row.run_id, tmp / row.run_id)
        np.testing.assert_array_equal(*field_of(ax, saved.params, saved.config))
        styles = {spine.get_linestyle() for spine in ax.spines.values()}
        if row.status == "pruned":
            stopped = int(run.data.tags["jaxbp.stopped_at_epoch"])
            assert saved.metrics["epoch"] == stopped < 4  # the weights it had when the search stopped it
            assert f"pruned at epoch {stopped}" in ax.get_title() and styles == {"--"}
        else:
            assert saved.metrics["epoch"] == 4 and "pruned" not in ax.get_title() and styles == {"-"}


def test_random_draws_fill_rows_in_order_of_eta(tmp_path):
    result, client, fig, _ = swept(RANDOM, tmp_path)
    assert boundaries.FILE in {a.path for a in client.list_artifacts(result.parent_run_id)}
    drawn = panels(fig)
    assert len(drawn) == 14 == len(result.rows)
    lines: dict[int, list] = {}
    for ax in sorted(drawn.values(), key=lambda ax: ax.get_subplotspec().colspan.start):
        lines.setdefault(ax.get_subplotspec().rowspan.start, []).append(ax)
    assert all(len(line) <= boundaries.MAX_COLUMNS for line in lines.values())
    sizes = [line[0].get_ylabel() for _, line in sorted(lines.items())]
    assert sizes == sorted(sizes) and set(sizes) == {"2-3-2", "2-8-2"} and len(sizes) == 3  # one size wraps
    for label in set(sizes):  # each size's configs in order of η, across its wrapped lines
        axes = [ax for _, line in sorted(lines.items()) for ax in line if line[0].get_ylabel() == label]
        assert all(f"hidden={label.split('-')[1]}" in ax.get_title() for ax in axes)
        etas = [float(re.search(r"eta=([\d.e-]+)", ax.get_title())[1]) for ax in axes]
        assert etas == sorted(etas) and len(set(etas)) == len(etas)


def test_no_figure_without_a_two_dimensional_plane(grid, tmp_path):
    result, client, _, _ = grid
    digits = load_dataset("digits")
    assert boundaries.sweep_boundaries(parse_spec(GRID), result.rows, client, digits, tmp_path) == []
    with pytest.raises(ValueError, match="need a 2-D input plane; dataset 'digits' has 64 inputs"):
        boundaries.boundary_figure(boundaries.panels_of(result.rows[:1], ["eta"], client, tmp_path), digits,
                                   title="x")
    with pytest.raises(ValueError, match="at least one panel"):
        boundaries.boundary_figure([], load_dataset("circle"), title="x")

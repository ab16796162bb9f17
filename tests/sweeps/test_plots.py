"""plots: each figure is a real PNG; diverged runs, seeds, sorting, many configs and bad input."""

import math
import sys

import matplotlib.image
import numpy as np
import pytest
from matplotlib.axes import Axes

from jaxbp.sweeps import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def history(epochs=5, layers=2, diverge=False, validation=True, seed=0):
    """Per-epoch dicts shaped like train()'s history; the last train_cost is NaN when ``diverge``."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(1, epochs + 1):
        row = {"epoch": e, "train_cost": 1.0 / e, "train_accuracy": 1 - 0.5 / e,
               "validation_accuracy": 1 - 0.6 / e if validation else None, "test_accuracy": 1 - 0.7 / e,
               "epoch_seconds": 0.01}
        for l in range(1, layers + 1):
            row |= {f"mean_abs_delta_{l}": 10.0 ** -(l + e / 5), f"saturated_fraction_{l}": rng.uniform(),
                    f"low_activation_fraction_{l}": rng.uniform() / 4}
        rows.append(row)
    if diverge:
        rows[-1]["train_cost"] = math.nan
    return rows


def sweep_rows():
    """Two sizes × three etas × two seeds (784-100-10 is 0.03 better); eta 3.0 diverges for 784-30-10 (None and
    NaN) and for one seed of 784-100-10."""
    rows = []
    for sizes, offset in (("784-100-10", 0.03), ("784-30-10", 0.0)):
        for eta, base in ((0.1, 0.80), (0.5, 0.90), (3.0, 0.50)):
            for seed, jitter in ((0, -0.02), (1, 0.02)):
                rows.append({"eta": eta, "sizes": sizes, "seed": seed, "test_accuracy": base + offset + jitter})
    for row in rows:
        if row["eta"] == 3.0 and (row["sizes"] == "784-30-10" or row["seed"] == 1):
            row["test_accuracy"] = None if row["seed"] == 0 else math.nan
    return rows


def assert_png(path, min_width=400):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[1] >= min_width and image.shape[0] >= 250
    assert image[..., :3].std() > 0.05  # something was drawn, not a blank canvas


@pytest.fixture(autouse=True)
def no_open_figures():
    yield
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_learning_curves_png_with_diverged_run_and_missing_validation(tmp_path):
    histories = {"784-30-10 η=0.5": history(), "784-30-10 η=30": history(3, diverge=True),
                 "no validation": history(validation=False)}
    path = plots.learning_curves(histories, tmp_path / "sub" / "dir" / "curves.png")
    assert path == tmp_path / "sub" / "dir" / "curves.png"
    assert_png(path)


def test_learning_curves_more_than_twelve_configs(tmp_path):
    histories = {f"config {i}": history(seed=i) for i in range(plots.MAX_LEGEND + 3)}
    assert_png(plots.learning_curves(histories, tmp_path / "many.png", title="Fifteen"))


def test_learning_curves_non_positive_cost_and_single_epoch(tmp_path):
    one, inf = history(1), history(3)
    one[0]["train_cost"] = 0.0  # no log axis possible: drawn linear
    inf[-1]["train_cost"] = math.inf
    assert_png(plots.learning_curves({"one epoch": one, "inf": inf}, tmp_path / "one.png"))


def test_config_curves_png_including_divergence(tmp_path):
    assert_png(plots.config_curves(history(8, layers=3), tmp_path / "config.png", title="784-30-30-10 η=3"))
    h = history(4, layers=2, diverge=True)
    h[-1]["mean_abs_delta_1"] = math.inf
    assert_png(plots.config_curves(h, tmp_path / "diverged.png", title="diverged"))
    assert_png(plots.config_curves(history(3, layers=0), tmp_path / "no_layers.png", title="no diagnostics"))


def test_aggregate_means_min_max_and_diverged_counts():
    cells = plots.aggregate(sweep_rows(), "test_accuracy", ("eta", "sizes"))
    assert set(cells) == {(eta, s) for eta in (0.1, 0.5, 3.0) for s in ("784-30-10", "784-100-10")}
    assert cells[(0.5, "784-30-10")].mean == pytest.approx(0.90)
    assert (cells[(0.1, "784-100-10")].lo, cells[(0.1, "784-100-10")].hi) == pytest.approx((0.81, 0.85))
    assert cells[(0.1, "784-100-10")].n == 2 and cells[(0.1, "784-100-10")].diverged == 0
    partly = cells[(3.0, "784-100-10")]  # seed 1 diverged: the mean is seed 0's value alone
    assert (partly.mean, partly.n, partly.diverged) == (pytest.approx(0.51), 2, 1)
    fully = cells[(3.0, "784-30-10")]
    assert math.isnan(fully.mean) and fully.diverged == 2


def test_aggregate_normalises_keys():
    rows = [{"eta": "0.5", "sizes": [784, 30, 10], "m": 1.0}, {"eta": 0.5, "sizes": "784-30-10", "m": 3.0}]
    assert plots.aggregate(rows, "m") == {(0.5, "784-30-10"): plots.Cell(2.0, 1.0, 3.0, 2, 0)}


def test_sort_key_orders_sizes_numerically_and_eta_as_numbers():
    sizes = ["784-100-10", "784-30-10", "784-30-30-10", "784-5-10"]
    assert sorted(sizes, key=plots.sort_key) == ["784-5-10", "784-30-10", "784-30-30-10", "784-100-10"]
    assert sorted([3.0, 0.25, 10, 1.0], key=plots.sort_key) == [0.25, 1.0, 3.0, 10]


def test_heatmap_annotations_are_the_aggregated_means(tmp_path, monkeypatch):
    texts, original = [], Axes.text
    monkeypatch.setattr(Axes, "text", lambda ax, x, y, s, **kw: texts.append((x, y, s)) or original(ax, x, y, s, **kw))
    rows = sweep_rows()
    assert_png(plots.metric_heatmap(rows, "test_accuracy", tmp_path / "heat.png"))
    cells = plots.aggregate(rows, "test_accuracy")
    xs, ys = [0.1, 0.5, 3.0], ["784-30-10", "784-100-10"]  # sorted: numerically, then by tuple of ints
    expected = {(j, i): f"{cells[(x, y)].mean:.3g}" for i, y in enumerate(ys) for j, x in enumerate(xs)}
    expected[(2, 0)] = plots.MISSING  # eta 3.0, 784-30-10: both seeds diverged
    expected[(2, 1)] = "0.51\n(1/2 diverged)"  # eta 3.0, 784-100-10: one seed left
    assert {(x, y): s for x, y, s in texts} == expected
    assert expected[(1, 0)] == "0.9" and expected[(1, 1)] == "0.93"


def test_heatmap_single_row_single_column_and_all_diverged(tmp_path):
    one = [{"eta": 0.5, "sizes": "784-30-10", "cost": 0.12}]
    assert_png(plots.metric_heatmap(one, "cost", tmp_path / "one.png"), min_width=300)
    line = [{"eta": eta, "sizes": "784-30-10", "cost": c} for eta, c in ((0.1, 0.3), (1.0, 0.2), (10.0, None))]
    assert_png(plots.metric_heatmap(line, "cost", tmp_path / "line.png"))
    dead = [{"eta": 30.0, "sizes": s, "cost": math.nan} for s in ("784-30-10", "784-100-10")]
    assert_png(plots.metric_heatmap(dead, "cost", tmp_path / "dead.png"), min_width=300)


def test_metric_vs_eta_png_with_seeds_and_diverged(tmp_path):
    assert_png(plots.metric_vs_eta(sweep_rows(), "test_accuracy", tmp_path / "eta.png"))
    rows = [r | {"init": "scaled" if r["seed"] else "normal"} for r in sweep_rows()]
    assert_png(plots.metric_vs_eta(rows, "test_accuracy", tmp_path / "by_init.png", group_by="init"))


def test_metric_vs_eta_many_groups(tmp_path):
    rows = [{"eta": eta, "sizes": f"784-{n}-10", "acc": 0.9 - eta / 100} for n in range(1, 16) for eta in (0.1, 1.0)]
    assert_png(plots.metric_vs_eta(rows, "acc", tmp_path / "many.png"))


@pytest.mark.parametrize("call, message", [
    (lambda p: plots.learning_curves({}, p), "non-empty mapping"),
    (lambda p: plots.learning_curves({"a": []}, p), "non-empty list"),
    (lambda p: plots.learning_curves({"a": [{"epoch": 1}]}, p), "'train_cost'"),
    (lambda p: plots.config_curves([], p, title="t"), "non-empty list"),
    (lambda p: plots.metric_vs_eta([], "acc", p), "non-empty sequence"),
    (lambda p: plots.metric_heatmap([{"eta": 1.0, "sizes": "2-1"}], "acc", p), "lacks \\['acc'\\]"),
    (lambda p: plots.metric_vs_eta([{"eta": 1.0, "acc": 1.0}], "acc", p), "lacks \\['sizes'\\]"),
    (lambda p: plots.metric_vs_eta([{"eta": "fast", "sizes": "2-1", "acc": 1.0}], "acc", p), "'eta' to be a number"),
    (lambda p: plots.metric_heatmap([{"eta": 1.0, "sizes": "2-1", "acc": "high"}], "acc", p), "number or None"),
])
def test_bad_input_raises(tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("name", ["plot.pdf", "plot", "plot.png.txt"])
def test_path_must_end_in_png(tmp_path, name):
    with pytest.raises(ValueError, match=r"\.png"):
        plots.learning_curves({"a": history()}, tmp_path / name)
    assert list(tmp_path.iterdir()) == []

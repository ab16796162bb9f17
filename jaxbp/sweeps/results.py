"""A finished sweep's results: its configs ranked, ``results.csv``, and the figures MLflow cannot draw.

What it is for: ``ranked_rows`` reads every child run back as a ``Row`` (best first by the spec's metric);
``write_csv`` writes them with every split's final accuracy and cost; ``summary_figures`` draws the sweep's
figures (metric vs η, the η × sizes heatmap, every config's learning curves) and the per-layer learning
curves of the ``TOP_FIGURES`` best configs, which it logs into their child runs. MLflow's own charts show every
per-epoch metric of every run; ``jaxbp plot RUN_ID`` draws the per-layer figure of any other config on demand.
What it is not: no training, no logging of children (see ``recorder``).
"""

from __future__ import annotations

import csv
import math
import tempfile
from pathlib import Path

from jaxbp.sweeps import plots
from jaxbp.sweeps.contracts import Row
from jaxbp.sweeps.spec import SweepSpec
from jaxbp.sweeps.tracking import EPOCHS, INDEX, KIND, Tracker, metric_history
from jaxbp.training.loop import SPLITS

TOP_FIGURES = 3  # the best configs whose per-layer learning curves are drawn at the end of a sweep
# every split's final accuracy and cost; train_accuracy and train_cost only where measure = "full"
FINAL_KEYS = ("train_accuracy_running", "train_cost_running",
              *(f"{split}_{kind}" for split in SPLITS for kind in ("accuracy", "cost")))


def _finite(value) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def ranked_rows(tracker: Tracker, parent: str, spec: SweepSpec) -> list[Row]:
    """One row per child run, best first by ``spec.metric`` (final epoch); configs a search stopped (pruned)
    after those that ran to their end; diverged or missing values last."""
    rows = []
    for run in tracker.children(parent):
        metrics, tags = run.data.metrics, run.data.tags
        rows.append(Row(run.info.run_id, run.info.run_name, int(tags.get(INDEX, -1)), tags.get("status", ""),
                        _finite(metrics.get(spec.metric)), float(run.data.params["eta"]), run.data.params["sizes"],
                        int(tags[EPOCHS]) if EPOCHS in tags else None,
                        {k: _finite(metrics.get(k)) for k in FINAL_KEYS}, dict(run.data.params)))
    sign = -1 if spec.maximize else 1
    return sorted(rows, key=lambda r: (r.value is None, r.status == "pruned", sign * (r.value or 0), r.index))


def write_csv(rows: list[Row], metric: str, path: Path) -> Path:
    """Every config, ranked: run, status, the metric, every split's final accuracy and cost, epochs, params."""
    keys = sorted({k for r in rows for k in r.params})
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "run_id", "name", "status", metric, *(f"final_{k}" for k in FINAL_KEYS),
                         "epochs", *keys])
        for rank, r in enumerate(rows, start=1):
            writer.writerow([rank, r.run_id, r.name, r.status, r.value, *(r.final[k] for k in FINAL_KEYS),
                             r.epochs, *(r.params.get(k) for k in keys)])
    return path


def summary_figures(spec: SweepSpec, rows: list[Row], histories: dict[int, list[dict]], tracker: Tracker,
                    folder: Path) -> list[Path]:
    """The parent's figures, written to ``folder``; the top configs' per-layer figures are logged into their
    child runs. Histories of children logged in an earlier session are read back from MLflow."""
    folder.mkdir(parents=True, exist_ok=True)
    for r in rows:
        if r.index not in histories:
            histories[r.index] = metric_history(tracker.client, r.run_id)
    by_name = {r.name: histories[r.index] for r in sorted(rows, key=lambda r: r.index)}
    plot_rows = [{"eta": r.eta, "sizes": r.sizes, spec.metric: r.value} for r in rows]
    for rank, r in enumerate(rows[:TOP_FIGURES], start=1):
        path = plots.config_curves(histories[r.index], folder / "top" / str(rank) / "learning_curves.png",
                                   title=f"#{rank} {r.name}")
        tracker.client.log_artifact(r.run_id, str(path))
    return [plots.metric_vs_eta(plot_rows, spec.metric, folder / f"{spec.metric}_vs_eta.png"),
            plots.metric_heatmap(plot_rows, spec.metric, folder / f"{spec.metric}_heatmap.png"),
            plots.learning_curves(by_name, folder / "learning_curves.png", title=f"{spec.name}: every config")]


def config_figure(client, run_id: str, path: Path, *, log: bool = False) -> Path:
    """The per-layer learning curves of one config's child run (``jaxbp plot RUN_ID``), drawn from its metric
    history into ``path``; with ``log`` also attached to the run as ``learning_curves.png``."""
    run = client.get_run(run_id)
    if run.data.tags.get(KIND) != "config":
        raise ValueError(f"run {run_id} is not a jaxbp config run (a sweep's child); its figures, if it is a "
                         "sweep, are among its artifacts")
    history = metric_history(client, run_id)
    if not history:
        raise ValueError(f"run {run_id} has no per-epoch metrics to draw")
    path = plots.config_curves(history, path, title=run.info.run_name)
    if log:
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / "learning_curves.png"
            staged.write_bytes(path.read_bytes())
            client.log_artifact(run_id, str(staged))
    return path
